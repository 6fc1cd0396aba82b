//! Ingress: what kind of request the Functions host sent.
//!
//! The Functions host polls `GET /` until the handler answers. It forwards an
//! HTTP-in/HTTP-out function's requests as they arrived (path `/api/...`, all
//! headers), when `enableForwardingHttpRequest` is on; every other function is
//! invoked in payload mode, `POST /{FunctionName}` with a JSON envelope. Which
//! functions those are follows from `host.json` and the `function.json`
//! files, read once at start-up by the same rules the Functions host applies.

use functions_contract::protocol;
use http::{Method, Response, StatusCode, header, request};

use crate::body::{HostBody, full};
use crate::payload::{PayloadFunction, PayloadFunctions};

/// What an incoming request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ingress<'f> {
    /// The Functions host's readiness poll, answered by the host at once.
    Readiness,
    /// A forwarded HTTP request, for the guest.
    Forward,
    /// A payload-mode invocation of this function.
    Payload(&'f PayloadFunction),
}

/// Classifies a request by its head.
pub(crate) fn classify<'f>(head: &request::Parts, payload: &'f PayloadFunctions) -> Ingress<'f> {
    let path = head.uri.path();
    if head.method == Method::GET && path == protocol::READINESS_PATH {
        return Ingress::Readiness;
    }
    if head.method == Method::POST
        && let Some(function) = payload.at(path)
    {
        return Ingress::Payload(function);
    }
    Ingress::Forward
}

/// The answer to the readiness poll: the guests are loaded before the listener opens.
pub(crate) fn readiness_response() -> Response<HostBody> {
    let mut response = Response::new(full(r#"{"status":"ready"}"#));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
