//! Payload mode: the Functions host invokes a function that is not forwarded
//! as `POST /{FunctionName}` with a JSON envelope ([`request`]), and reads
//! the HTTP response back from a JSON envelope ([`result`]). The request
//! inside goes through the same spine as a forwarded one
//! ([`Handler::serve`]); only the way in and the way out differ.
//!
//! What an envelope may cost is bounded before it is read: its declared
//! length, an instance permit (so at most `--max-instances` envelopes are in
//! memory at once), a size limit while it streams, and a deadline for the
//! whole of it. Parsing builds only the members the host uses. Each
//! envelope in flight costs at most its size twice over (the bytes, and a
//! body that JSON escaping or base64 forced to be copied).

mod envelope;
mod request;
mod result;

use std::collections::HashMap;

use functions_contract::{AppConfig, FunctionConfig, HostConfig, HttpOutput, Mode};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header, request as http_request};
use http_body_util::{BodyExt as _, Full, Limited};

use crate::body::{HostBody, LimitedBody, RequestBody};
use crate::context::RequestContext;
use crate::failure::{Problem, Rejection};
use crate::guest_output::Destination;
use crate::handler::{Admit, Handler};
use crate::problem;
use envelope::{EnvelopeBuffer, OverLimit};

/// Largest response a payload-mode invocation buffers into its envelope.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// A function the Functions host invokes in payload mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PayloadFunction {
    /// Its name: the path of its invocations is `/{name}`.
    pub(crate) name: String,
    /// The trigger binding: the request is `Data.<trigger>`.
    trigger: String,
    /// Where the response goes.
    output: HttpOutput,
}

impl PayloadFunction {
    /// The function, if the Functions host invokes it in payload mode with an
    /// HTTP request (the only trigger a wasi:http guest can answer).
    fn of(host: &HostConfig, function: &FunctionConfig) -> Option<Self> {
        let trigger = function.http_trigger()?;
        (Mode::of(host, function) == Mode::Payload).then(|| PayloadFunction {
            name: function.name.clone(),
            trigger: trigger.name.clone(),
            output: HttpOutput::of(function),
        })
    }
}

/// The functions of the app that are invoked in payload mode, by lower-case
/// name (the Functions host matches function names case-insensitively).
#[derive(Debug, Default)]
pub(crate) struct PayloadFunctions(HashMap<String, PayloadFunction>);

impl PayloadFunctions {
    /// The payload-mode HTTP functions of `app`.
    pub(crate) fn of(app: &AppConfig) -> Self {
        Self(
            app.functions
                .iter()
                .filter_map(|function| PayloadFunction::of(&app.host, function))
                .map(|function| (function.name.to_ascii_lowercase(), function))
                .collect(),
        )
    }

    /// The function invoked at `path` (`/{FunctionName}`), if any.
    pub(crate) fn at(&self, path: &str) -> Option<&PayloadFunction> {
        let name = path.strip_prefix('/')?;
        self.0.get(&name.to_ascii_lowercase())
    }

    /// Their names.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(|function| function.name.as_str())
    }
}

/// Why an envelope was not read to its end.
enum Unread {
    TooLarge(u64),
    TooSlow,
    Broken,
}

/// One payload-mode invocation: the envelope's request through the spine,
/// the whole response and the guest's log lines back in an envelope.
pub(crate) async fn invoke(
    handler: &Handler,
    function: &PayloadFunction,
    head: http_request::Parts,
    body: RequestBody,
) -> Response<HostBody> {
    let outer = RequestContext::new(&head);
    let refuse = |problem: &dyn Problem| refusal(function, problem, head.uri.path(), &outer);
    let limits = handler.limits();
    // Base64 makes a body a third larger; headers and the rest of the envelope come on top.
    let envelope_limit =
        limits.max_request_body_bytes / 3 * 4 + 2 * limits.max_header_bytes as u64 + (64 << 10);
    let declared = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|length| length.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > envelope_limit) {
        return refuse(&Rejection::BodyTooLarge {
            limit: envelope_limit,
        });
    }
    // The permit before the bytes: at most --max-instances envelopes are read at once.
    let permit = match handler.admit().await {
        Ok(permit) => permit,
        Err(rejection) => return refuse(&rejection),
    };
    let envelope = match read(body, envelope_limit, limits.body_read_timeout).await {
        Ok(envelope) => envelope.into_bytes(),
        Err(Unread::TooLarge(limit)) => return refuse(&Rejection::BodyTooLarge { limit }),
        Err(Unread::TooSlow) => {
            return refuse(&Rejection::BodyTooSlow {
                timeout: limits.body_read_timeout,
            });
        }
        Err(Unread::Broken) => return refuse(&Rejection::BodyBroken),
    };
    let (inner_head, inner_body) = match request::parse_invocation(
        &envelope,
        &function.trigger,
        &head,
    ) {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(function = function.name.as_str(), %error, "Refused a malformed invocation");
            return refuse(&Malformed {
                function: &function.name,
                error,
            });
        }
    };
    drop(envelope);

    // From here on, problems are about the guest's request: its path and correlation id.
    let context = RequestContext::new(&inner_head);
    let path = inner_head.uri.path().to_owned();
    let (inner_body, report) =
        LimitedBody::new(Full::new(inner_body), limits.max_request_body_bytes);
    let destination = Destination::Envelope {
        correlation_id: context.correlation_id.clone(),
    };
    let served = handler
        .serve(
            inner_head,
            inner_body,
            report,
            destination,
            Admit::Held(permit),
        )
        .await;
    let (mut parts, body) = served.response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes());
    if let Some(finished) = served.finished {
        finished.wait().await;
    }
    let mut logs = served
        .output
        .map(|output| output.take_logs())
        .unwrap_or_default();
    // Nothing has reached the caller yet: a body that failed, ran over or is
    // not text becomes a clean 500 problem.
    let checked = body
        .map_err(|error| {
            format!(
                "The component's response body failed or was too large for payload mode \
                 ({error})."
            )
        })
        .and_then(|body| String::from_utf8(body.into()).map_err(|_| BINARY_BODY.to_owned()));
    let text = match checked {
        Ok(text) => text,
        Err(detail) => {
            tracing::error!(
                function = function.name.as_str(),
                detail,
                "An invocation's response cannot be returned"
            );
            logs.push(format!("[Error] {detail}"));
            parts.status = StatusCode::INTERNAL_SERVER_ERROR;
            parts.headers = problem_headers(&context);
            problem::text(parts.status, &detail, &path, &context.correlation_id)
        }
    };
    result::answer(result::envelope(
        &function.output,
        parts.status.as_u16(),
        &parts.headers,
        &text,
        logs,
    ))
}

/// Why a response cannot travel in an envelope: the envelope's `body` is a
/// string, which the Functions host writes as it is.
const BINARY_BODY: &str =
    "The response body is not UTF-8 text, which payload mode cannot carry (forward mode can).";

/// Reads the envelope: at most `limit` bytes, within `timeout`.
async fn read(
    mut body: RequestBody,
    limit: u64,
    timeout: std::time::Duration,
) -> Result<EnvelopeBuffer, Unread> {
    let read = async {
        let mut envelope = EnvelopeBuffer::new(usize::try_from(limit).unwrap_or(usize::MAX));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Unread::Broken)?;
            if let Some(data) = frame.data_ref() {
                envelope
                    .extend(data)
                    .map_err(|OverLimit| Unread::TooLarge(limit))?;
            }
        }
        Ok(envelope)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(Unread::TooSlow))
}

/// A refusal in the envelope a payload-mode POST must get, logged as every
/// refusal is.
fn refusal(
    function: &PayloadFunction,
    problem: &dyn Problem,
    path: &str,
    context: &RequestContext,
) -> Response<HostBody> {
    let response = crate::egress::problem_response(problem, path, context, None);
    let (parts, _) = response.into_parts();
    let body = problem::text(
        problem.status(),
        &problem.detail(),
        path,
        &context.correlation_id,
    );
    result::answer(result::envelope(
        &function.output,
        parts.status.as_u16(),
        &parts.headers,
        &body,
        Vec::new(),
    ))
}

fn problem_headers(context: &RequestContext) -> HeaderMap {
    let mut headers = problem::headers();
    if let Ok(value) = HeaderValue::from_str(&context.correlation_id) {
        headers.insert(crate::context::CORRELATION_ID, value);
    }
    headers
}

/// An envelope that is not an invocation.
struct Malformed<'f> {
    function: &'f str,
    error: request::EnvelopeError,
}

impl std::fmt::Display for Malformed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed invocation: {}", self.error)
    }
}

impl Problem for Malformed<'_> {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn detail(&self) -> String {
        format!(
            "The invocation of {} is malformed: {}.",
            self.function, self.error
        )
    }

    fn is_guest_fault(&self) -> bool {
        false
    }

    fn kind(&self) -> &'static str {
        "malformed_invocation"
    }
}
