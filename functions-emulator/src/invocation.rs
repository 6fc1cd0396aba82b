//! One invocation: a new invocation id, the `Executing`/`Executed` console
//! lines, the exchange with the handler in the function's mode, and the
//! host's answer when it fails: 500 with an empty body
//! (`src/WebJobs.Script.WebHost/Middleware/ExceptionMiddleware.cs`).
//!
//! `functionTimeout` bounds every invocation (azure-webjobs-sdk
//! `src/Microsoft.Azure.WebJobs.Host/Executors/FunctionExecutor.cs`): past
//! it the caller gets the 500, and if the invocation is not done 2 seconds
//! later the handler is killed and restarted, failing every request in
//! flight on it (azure-functions-host
//! `src/WebJobs.Script.WebHost/WebScriptHostExceptionHandler.cs`
//! `OnTimeoutExceptionAsync`). An answer the host reads as no result (an
//! empty or `null` payload-mode body) never completes the invocation, so it
//! always ends that way.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use functions_contract::protocol::new_guid;
use functions_contract::timespan;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderValue, TRANSFER_ENCODING};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use crate::auth::Caller;
use crate::client::{self, Framing};
use crate::forward;
use crate::functions::{ForwardPath, HttpFunction, Mode};
use crate::host_log;
use crate::payload::{self, HandlerResult, SystemData, TriggerRequest};
use crate::pipeline::Handler;
use crate::routes::RouteValues;
use crate::url::Query;

/// How long a timed-out invocation may still finish before the handler is
/// restarted (`TimeoutAttribute.GracePeriod`'s default).
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// Everything one invocation needs.
pub(crate) struct Invocation<'a> {
    pub(crate) function: &'a HttpFunction,
    pub(crate) head: Parts,
    pub(crate) body: Bytes,
    pub(crate) query: Query,
    pub(crate) route_values: RouteValues,
    pub(crate) caller: Caller,
    pub(crate) handler: &'a Handler,
}

impl Invocation<'_> {
    /// Runs the invocation and returns the client's response.
    pub(crate) async fn run(self) -> Response<Full<Bytes>> {
        let id = new_guid();
        let name = self.function.name.clone();
        host_log::info(format!(
            "Executing 'Functions.{name}' (Reason='This function was programmatically called via the host APIs.', Id={id})"
        ));
        let started = Instant::now();
        let function_timeout = self.handler.function_timeout;
        let restart = self.handler.restart.clone();
        let exchange = self.exchange(id.clone());
        let result = match function_timeout {
            None => exchange.await,
            Some(limit) => {
                // The exchange goes on after the timeout: the grace period
                // is whether it ends by itself.
                let mut exchange = tokio::spawn(exchange);
                match tokio::time::timeout(limit, &mut exchange).await {
                    Ok(joined) => joined.unwrap_or_else(|e| Err(anyhow::anyhow!(e))),
                    Err(_) => {
                        let id = id.clone();
                        tokio::spawn(async move {
                            if tokio::time::timeout(TIMEOUT_GRACE, exchange).await.is_err() {
                                let _ = restart.send(id);
                            }
                        });
                        Err(anyhow::anyhow!(
                            "Timeout value of {} was exceeded by function: Functions.{name}",
                            timespan(limit)
                        ))
                    }
                }
            }
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

    /// The exchange with the handler, owning what it needs so that it can
    /// outlive a timeout.
    fn exchange(
        self,
        id: String,
    ) -> impl Future<Output = anyhow::Result<Response<Full<Bytes>>>> + Send + 'static {
        let function = self.function.clone();
        let port = self.handler.port;
        let client = self.handler.client;
        let Invocation {
            head,
            body,
            query,
            route_values,
            caller,
            ..
        } = self;
        async move {
            match function.mode {
                Mode::Forward(path) => {
                    forward_request(&function, &head, body, &query, path, &id, port, client).await
                }
                Mode::Payload => {
                    let trigger = TriggerRequest {
                        head: &head,
                        body: &body,
                        query: &query,
                        route_values: &route_values,
                        caller: &caller,
                    };
                    payload_request(&function, &trigger, &id, port, client).await
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn forward_request(
    function: &HttpFunction,
    head: &Parts,
    body: Bytes,
    query: &Query,
    path: ForwardPath,
    id: &str,
    port: u16,
    client: client::HostClient,
) -> anyhow::Result<Response<Full<Bytes>>> {
    // HttpRequestExtensions.ToHttpRequestMessage copies Transfer-Encoding
    // but attaches a body only when Content-Length says there is one; .NET's
    // SocketsHttpHandler then refuses to send the request.
    if head.headers.contains_key(TRANSFER_ENCODING) && !head.headers.contains_key(CONTENT_LENGTH) {
        anyhow::bail!(
            "An error occurred while sending the request. ---> 'Transfer-Encoding: chunked' header \
             can not be used when content object is not specified."
        );
    }
    let path = match path {
        ForwardPath::Original => head.uri.path().to_owned(),
        ForwardPath::FunctionName => format!("/{}", function.name),
    };
    let request = forward::request(head, body, &path, query, id, port);
    let response = client
        .send(port, request, Framing::Length)
        .await
        .context("forwarding the request to the handler")?;
    Ok(forward::response(response))
}

async fn payload_request(
    function: &HttpFunction,
    trigger: &TriggerRequest<'_>,
    id: &str,
    port: u16,
    client: client::HostClient,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let rand_guid = new_guid();
    let sys = SystemData {
        method_name: &function.name,
        utc_now: SystemTime::now(),
        rand_guid: &rand_guid,
    };
    let envelope = payload::envelope(&function.trigger_name, trigger, &sys);
    let mut request = Request::post(format!("/{}", function.name))
        .body(Bytes::from(envelope.to_string()))
        .context("building the invocation request")?;
    let headers = request.headers_mut();
    headers.insert(HOST, HeaderValue::from_str(&format!("127.0.0.1:{port}"))?);
    // JsonMediaTypeFormatter.SetDefaultContentHeaders: its first media type, UTF-8.
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    client::add_host_headers(headers, id);

    // ObjectContent cannot tell its length beforehand: chunked, no Content-Length.
    let response = client
        .send(port, request, Framing::Chunked)
        .await
        .context("sending the invocation request to the handler")?;
    let Some(result) =
        HandlerResult::parse(response.status(), response.headers(), response.body())?
    else {
        // No result: the invocation is never completed (DefaultHttpWorkerService
        // skips SetResult), and only functionTimeout ends it.
        return std::future::pending().await;
    };
    for line in &result.logs {
        host_log::info(format!("{line} (Functions.{}, Id={id})", function.name));
    }
    Ok(result.http_response(&function.output)?)
}

/// A response with `status` and no body: what the host sends for 401, 404,
/// 500 and 503.
pub(crate) fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
