//! Egress: what goes back to the Functions host. The guest's response passes
//! through with the correlation id and the serving component's digest added;
//! a request that was refused, or whose guest produced no response, becomes a
//! problem+json response with the correlation id, never an empty body or an
//! HTML page.

use http::{HeaderName, HeaderValue, Response, StatusCode, header};

use crate::body::HostBody;
use crate::context::{CORRELATION_ID, RequestContext};
use crate::dispatch::GuestFailure;
use crate::guest::Guest;
use crate::limits::{Limits, RETRY_AFTER_SECONDS, Rejection};
use crate::problem;

/// The response header naming the component version that served a request.
pub const COMPONENT_DIGEST: HeaderName = HeaderName::from_static("x-component-digest");

/// The guest's response, as the caller gets it.
pub fn guest_response(
    response: Response<HostBody>,
    context: &RequestContext,
    guest: &Guest,
) -> Response<HostBody> {
    with_digest(with_correlation_id(response, context), guest)
}

/// The response for a guest failure. The details go to the log; the caller
/// gets the status, a short reason and the correlation id to find them.
pub fn failure_response(
    failure: &GuestFailure,
    path: &str,
    context: &RequestContext,
    guest: &Guest,
) -> Response<HostBody> {
    let (status, detail) = match failure {
        GuestFailure::PoolExhausted => {
            return with_digest(
                rejection_response(Rejection::Overloaded, None, path, context),
                guest,
            );
        }
        GuestFailure::Deadline(timeout) => (
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "The component did not answer within its {} deadline.",
                humantime::format_duration(*timeout)
            ),
        ),
        GuestFailure::MemoryLimit { limit_bytes, .. } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "The component hit its memory limit of {} MiB.",
                limit_bytes >> 20
            ),
        ),
        GuestFailure::StackOverflow(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component overflowed its stack.".to_owned(),
        ),
        GuestFailure::Trap(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component failed before it sent a response.".to_owned(),
        ),
        GuestFailure::NoResponse => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component finished without sending a response.".to_owned(),
        ),
        GuestFailure::ErrorCode(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component answered with an error instead of a response.".to_owned(),
        ),
        GuestFailure::Instantiation(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component could not be started for this request.".to_owned(),
        ),
        GuestFailure::Host(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The host could not pass the request to the component.".to_owned(),
        ),
    };
    tracing::error!(status = status.as_u16(), error = %failure, "Request failed");
    with_digest(problem_response(status, &detail, path, context), guest)
}

/// The response for a request the host refused. `limits` words the detail;
/// without it (a pool that ran dry despite admission) a generic one is used.
pub fn rejection_response(
    rejection: Rejection,
    limits: Option<&Limits>,
    path: &str,
    context: &RequestContext,
) -> Response<HostBody> {
    let detail = match limits {
        Some(limits) => rejection.detail(limits),
        None => format!("No instance is free; retry in {RETRY_AFTER_SECONDS} second(s)."),
    };
    tracing::warn!(
        status = rejection.status().as_u16(),
        "Request refused: {detail}"
    );
    let mut response = problem_response(rejection.status(), &detail, path, context);
    if rejection == Rejection::Overloaded {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    response
}

/// A problem response carrying the request's correlation id.
pub fn problem_response(
    status: StatusCode,
    detail: &str,
    path: &str,
    context: &RequestContext,
) -> Response<HostBody> {
    with_correlation_id(
        problem::response(status, detail, path, &context.correlation_id),
        context,
    )
}

/// The body of [`problem_response`], for an envelope.
pub fn problem_body(
    status: StatusCode,
    detail: &str,
    path: &str,
    context: &RequestContext,
) -> bytes::Bytes {
    problem::body(status, detail, path, &context.correlation_id)
}

/// The headers of [`problem_response`], for an envelope.
pub fn problem_headers(context: &RequestContext) -> http::HeaderMap {
    let mut headers = problem::headers();
    if let Ok(value) = HeaderValue::from_str(&context.correlation_id) {
        headers.insert(CORRELATION_ID, value);
    }
    headers
}

/// Any response, with the correlation id.
pub fn with_correlation_id(
    mut response: Response<HostBody>,
    context: &RequestContext,
) -> Response<HostBody> {
    if let Ok(value) = HeaderValue::from_str(&context.correlation_id) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}

fn with_digest(mut response: Response<HostBody>, guest: &Guest) -> Response<HostBody> {
    if let Ok(value) = HeaderValue::from_str(guest.digest()) {
        response.headers_mut().insert(COMPONENT_DIGEST, value);
    }
    response
}
