//! Ingress: what kind of request the Functions host sent.
//!
//! The Functions host polls `GET /` until the handler answers, then forwards
//! each HTTP-triggered request as it arrived (`enableForwardingHttpRequest`),
//! path `/api/...` and all headers included.

use http::{Method, Response, StatusCode, header, request};

use crate::body::{HostBody, full};

/// What an incoming request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// The Functions host's readiness poll, answered by the host at once.
    Readiness,
    /// A forwarded HTTP request, for the guest.
    Forward,
}

/// Classifies a request by its head.
pub fn classify(head: &request::Parts) -> Ingress {
    if head.method == Method::GET && head.uri.path() == "/" {
        Ingress::Readiness
    } else {
        Ingress::Forward
    }
}

/// The answer to the readiness poll: the guest is loaded before the listener opens.
pub fn readiness_response() -> Response<HostBody> {
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
