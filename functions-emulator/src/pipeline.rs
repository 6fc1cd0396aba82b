//! The host's HTTP pipeline for one request, in the order of its middleware
//! (azure-functions-host at 89dc438: `src/WebJobs.Script.WebHost/WebJobsApplicationBuilderExtension.cs`,
//! `src/WebJobs.Script.WebHost/Middleware/FunctionInvocationMiddleware.cs`):
//! routing (404 when no function matches), authorization (401), the body,
//! then the invocation, which first waits for the handler to be ready
//! (`src/WebJobs.Script/Description/Workers/WorkerFunctionInvoker.cs`):
//! up to 4 × `initializationTimeout` while it starts or restarts, counted
//! in 25 ms steps; after that the host shuts down and the request goes on,
//! and fails, anyway.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use tokio::sync::{Notify, mpsc, watch};

use crate::auth::{self, Keys};
use crate::client::HostClient;
use crate::functions::FunctionIndex;
use crate::host_log;
use crate::invocation::{Invocation, empty};
use crate::launcher::restart::MAX_ERRORS;
use crate::launcher::{HandlerState, RestartRequest};
use crate::url::Query;

/// The largest request body the host accepts (Azure's front end limit, 100 MB).
pub(crate) const MAX_REQUEST_BODY: usize = 100 * 1024 * 1024;
/// The step of the wait for the handler (`WorkerReadyCheckPollingIntervalMilliseconds`).
const READY_CHECK: Duration = Duration::from_millis(25);

/// The handler as invocations see it.
pub(crate) struct Handler {
    /// Its port, kept across restarts.
    pub(crate) port: u16,
    pub(crate) state: watch::Receiver<HandlerState>,
    pub(crate) initialization_timeout: Duration,
    /// The host's client to it.
    pub(crate) client: HostClient,
    /// `functionTimeout`, as the plan enforces it; `None`: no limit.
    pub(crate) function_timeout: Option<Duration>,
    /// Where a timed-out invocation asks for the handler to be restarted.
    pub(crate) restart: mpsc::UnboundedSender<RestartRequest>,
    /// Notified when the host must shut down.
    pub(crate) host_stop: Arc<Notify>,
}

impl Handler {
    /// Waits, as `WorkerFunctionInvoker.InvokeCore` does, until the handler
    /// is no longer starting: at most `(ErrorEventsThreshold + 1) ×
    /// initializationTimeout`, in whole seconds, counted in 25 ms steps.
    async fn wait_until_started(&self) {
        let limit = self.initialization_timeout.as_secs() * (MAX_ERRORS as u64 + 1);
        let limit = Duration::from_secs(limit);
        let mut state = self.state.clone();
        let mut waited = Duration::ZERO;
        while *state.borrow_and_update() == HandlerState::Starting {
            if waited >= limit {
                host_log::error(
                    "Final functionDispatcher state: Initializing. Initialization timed out and host is shutting down",
                );
                self.host_stop.notify_one();
                return;
            }
            let _ = tokio::time::timeout(READY_CHECK, state.changed()).await;
            waited += READY_CHECK;
        }
    }
}

/// What the host serves.
pub(crate) struct Pipeline {
    index: FunctionIndex,
    keys: Keys,
    handler: Handler,
}

impl Pipeline {
    /// A pipeline for the functions in `index`, invoked on `handler`.
    pub(crate) fn new(index: FunctionIndex, keys: Keys, handler: Handler) -> Self {
        Pipeline {
            index,
            keys,
            handler,
        }
    }

    /// Answers one request.
    pub(crate) async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
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
        self.handler.wait_until_started().await;
        Invocation {
            function,
            head,
            body,
            query,
            route_values: route.values,
            caller,
            handler: &self.handler,
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

    /// A pipeline whose handler, on port 9 (discard), is never asked.
    fn pipeline(state: HandlerState, keys: Keys, initialization_timeout: Duration) -> Pipeline {
        let app = AppConfig::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../functionapp"
        )))
        .expect("loads");
        let (sender, receiver) = watch::channel(state);
        std::mem::forget(sender);
        let (restart, _) = mpsc::unbounded_channel();
        let handler = Handler {
            port: unused_port(),
            state: receiver,
            initialization_timeout,
            client: HostClient {
                follow_redirects: false,
                timeout: Some(Duration::from_secs(5)),
            },
            function_timeout: Some(Duration::from_secs(5)),
            restart,
            host_stop: Arc::new(Notify::new()),
        };
        Pipeline::new(FunctionIndex::build(&app), keys, handler)
    }

    fn unused_port() -> u16 {
        functions_contract::protocol::unused_tcp_port().expect("a port")
    }

    fn get(path: &str) -> Request<Full<Bytes>> {
        Request::get(path)
            .body(Full::new(Bytes::new()))
            .expect("a request")
    }

    #[tokio::test]
    async fn a_request_waits_for_a_starting_handler_then_stops_the_host() {
        // 1 s of initializationTimeout: 4 s of waiting, then the host shuts down.
        let pipeline = pipeline(
            HandlerState::Starting,
            Keys::disabled(),
            Duration::from_secs(1),
        );
        let started = std::time::Instant::now();
        let stopped = pipeline.handler.host_stop.clone();
        let response = pipeline.handle(get("/api/catalog/42")).await;
        assert!(
            started.elapsed() >= Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "invoked anyway: nothing listens"
        );
        tokio::time::timeout(Duration::from_secs(1), stopped.notified())
            .await
            .expect("the host was told to stop");
    }

    #[tokio::test]
    async fn a_handler_that_exited_with_code_0_fails_every_request() {
        let response = pipeline(
            HandlerState::Stopped,
            Keys::disabled(),
            Duration::from_secs(30),
        )
        .handle(get("/api/catalog/42"))
        .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn refusals_come_before_any_invocation() {
        let keys = Keys::enabled(Some("master".into()), Vec::new(), Vec::new(), Vec::new());
        let pipeline = pipeline(HandlerState::Ready, keys, Duration::from_secs(30));
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
