//! One invocation: a new invocation id, the `Executing`/`Executed` console
//! lines, the exchange with the handler in the function's mode, and the
//! host's answer when it fails (500, empty body; reference §1.3).

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use crate::auth::Caller;
use functions_contract::protocol::new_guid;

use crate::client;
use crate::forward;
use crate::functions::{ForwardPath, HttpFunction, Mode};
use crate::host_log;
use crate::payload::{self, HandlerResult, SystemData, TriggerRequest};
use crate::routes::RouteValues;
use crate::url::Query;

/// Everything one invocation needs.
pub(crate) struct Invocation<'a> {
    pub(crate) function: &'a HttpFunction,
    pub(crate) head: Parts,
    pub(crate) body: Bytes,
    pub(crate) query: Query,
    pub(crate) route_values: RouteValues,
    pub(crate) caller: Caller,
    pub(crate) handler_port: u16,
    /// The host's client timeout (`functionTimeout` + 1 minute), if any.
    pub(crate) timeout: Option<Duration>,
}

impl Invocation<'_> {
    /// Runs the invocation and returns the client's response.
    pub(crate) async fn run(self) -> Response<Full<Bytes>> {
        let id = new_guid();
        let name = &self.function.name;
        host_log::info(format!(
            "Executing 'Functions.{name}' (Reason='This function was programmatically called via the host APIs.', Id={id})"
        ));
        let started = Instant::now();
        let result = match self.function.mode {
            Mode::Forward(path) => self.forward(path, &id).await,
            Mode::Payload => self.payload(&id).await,
        };
        let duration = started.elapsed().as_millis();
        match result {
            Ok(response) => {
                host_log::info(format!(
                    "Executed 'Functions.{name}' (Succeeded, Id={id}, Duration={duration}ms)"
                ));
                response
            }
            Err(error) => {
                host_log::error(format!(
                    "Executed 'Functions.{name}' (Failed, Id={id}, Duration={duration}ms)"
                ));
                host_log::error(format!(
                    "Exception while executing function: Functions.{name}. {error:#}"
                ));
                empty(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    async fn forward(&self, path: ForwardPath, id: &str) -> anyhow::Result<Response<Full<Bytes>>> {
        let path = match path {
            ForwardPath::Original => self.head.uri.path().to_owned(),
            ForwardPath::FunctionName => format!("/{}", self.function.name),
        };
        let request = forward::request(
            &self.head,
            self.body.clone(),
            &path,
            &self.query,
            id,
            self.handler_port,
        );
        let response = client::send(self.handler_port, request, self.timeout)
            .await
            .context("forwarding the request to the handler")?;
        Ok(forward::response(response))
    }

    async fn payload(&self, id: &str) -> anyhow::Result<Response<Full<Bytes>>> {
        let function = self.function;
        let trigger = TriggerRequest {
            head: &self.head,
            body: &self.body,
            query: &self.query,
            route_values: &self.route_values,
            caller: &self.caller,
        };
        let rand_guid = new_guid();
        let sys = SystemData {
            method_name: &function.name,
            utc_now: SystemTime::now(),
            rand_guid: &rand_guid,
        };
        let envelope = payload::envelope(&function.trigger_name, &trigger, &sys);
        let mut request = Request::post(format!("/{}", function.name))
            .body(Full::new(Bytes::from(envelope.to_string())))
            .context("building the invocation request")?;
        let headers = request.headers_mut();
        headers.insert(
            HOST,
            HeaderValue::from_str(&format!("127.0.0.1:{}", self.handler_port))?,
        );
        // JsonMediaTypeFormatter's content type (the charset is UNCONFIRMED).
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        client::add_host_headers(headers, id);

        let response = client::send(self.handler_port, request, self.timeout)
            .await
            .context("sending the invocation request to the handler")?;
        let result = HandlerResult::parse(response.status(), response.body())?;
        for line in &result.logs {
            host_log::info(format!("{line} (Functions.{}, Id={id})", function.name));
        }
        Ok(result.http_response(&function.output)?)
    }
}

/// A response with `status` and no body: what the host sends for 401, 404,
/// 500 and 503.
pub(crate) fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
