//! The host's HTTP pipeline for one request: availability (503 while no
//! handler is ready), routing (404), authorization (401), the body, then the
//! invocation (reference §2, §4; the host's middleware order).

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use tokio::sync::watch;

use crate::auth::{self, Keys};
use crate::functions::FunctionIndex;
use crate::invocation::{Invocation, empty};
use crate::launcher::HandlerState;
use crate::url::Query;

/// The largest request body the host accepts (Azure's front end limit, 100 MB).
pub(crate) const MAX_REQUEST_BODY: usize = 100 * 1024 * 1024;

/// What the host serves.
pub(crate) struct Pipeline {
    index: FunctionIndex,
    keys: Keys,
    handler: watch::Receiver<HandlerState>,
    timeout: Option<Duration>,
}

impl Pipeline {
    /// A pipeline for the functions in `index`.
    pub(crate) fn new(
        index: FunctionIndex,
        keys: Keys,
        handler: watch::Receiver<HandlerState>,
        timeout: Option<Duration>,
    ) -> Self {
        Pipeline {
            index,
            keys,
            handler,
            timeout,
        }
    }

    /// Answers one request.
    pub(crate) async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let HandlerState::Ready(handler_port) = *self.handler.borrow() else {
            return empty(StatusCode::SERVICE_UNAVAILABLE);
        };
        let Some(route) = self
            .index
            .routes
            .find(request.method(), request.uri().path())
        else {
            return empty(StatusCode::NOT_FOUND);
        };
        let function = &self.index.http[route.function];
        let query = Query::parse(request.uri().query());
        let presented = auth::presented_key(request.headers(), &query);
        let Ok(caller) =
            self.keys
                .authorize(&function.name, function.auth_level, presented.as_deref())
        else {
            return empty(StatusCode::UNAUTHORIZED);
        };
        let (head, body) = request.into_parts();
        let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return empty(StatusCode::PAYLOAD_TOO_LARGE);
            }
            // The client went away or sent a broken body.
            Err(_) => return empty(StatusCode::BAD_REQUEST),
        };
        Invocation {
            function,
            head,
            body,
            query,
            route_values: route.values,
            caller,
            handler_port,
            timeout: self.timeout,
        }
        .run()
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use functions_contract::AppConfig;

    fn pipeline(state: HandlerState, keys: Keys) -> Pipeline {
        let app = AppConfig::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../functionapp"
        )))
        .expect("loads");
        let (_sender, receiver) = watch::channel(state);
        Pipeline::new(FunctionIndex::build(&app), keys, receiver, None)
    }

    fn get(path: &str) -> Request<Full<Bytes>> {
        Request::get(path)
            .body(Full::new(Bytes::new()))
            .expect("a request")
    }

    #[tokio::test]
    async fn no_ready_handler_means_503() {
        for state in [HandlerState::Starting, HandlerState::Stopped] {
            let response = pipeline(state, Keys::disabled())
                .handle(get("/api/catalog/42"))
                .await;
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
    }

    #[tokio::test]
    async fn refusals_come_before_any_invocation() {
        // Port 9 (discard) is never asked: each request is refused first.
        let keys = Keys::enabled(Some("master".into()), Vec::new(), Vec::new());
        let pipeline = pipeline(HandlerState::Ready(9), keys);
        let status = |response: Response<Full<Bytes>>| response.status();
        assert_eq!(
            status(pipeline.handle(get("/api/nothing")).await),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(pipeline.handle(get("/catalog/42")).await),
            StatusCode::NOT_FOUND
        );
        let post = Request::post("/api/catalog/42")
            .body(Full::new(Bytes::new()))
            .expect("a request");
        assert_eq!(status(pipeline.handle(post).await), StatusCode::NOT_FOUND);
        assert_eq!(
            status(pipeline.handle(get("/api/catalog/42")).await),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(pipeline.handle(get("/api/catalog/42?code=wrong")).await),
            StatusCode::UNAUTHORIZED
        );
    }
}
