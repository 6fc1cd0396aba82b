//! Egress: what goes back to the Functions host. The guest's response passes
//! through with the correlation id added; a guest that produced no response
//! becomes a problem+json response with the correlation id, never an empty
//! body or an HTML page.

use http::{HeaderValue, Response, StatusCode};

use crate::body::HostBody;
use crate::context::{CORRELATION_ID, RequestContext};
use crate::dispatch::GuestFailure;
use crate::problem;

/// The guest's response, as the caller gets it.
pub fn guest_response(
    response: Response<HostBody>,
    context: &RequestContext,
) -> Response<HostBody> {
    with_correlation_id(response, context)
}

/// The response for a guest failure. The details go to the log; the caller
/// gets the status, a short reason and the correlation id to find them.
pub fn failure_response(
    failure: &GuestFailure,
    path: &str,
    context: &RequestContext,
) -> Response<HostBody> {
    let (status, detail) = match failure {
        GuestFailure::Instantiation(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component could not be started for this request.",
        ),
        GuestFailure::Trap(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component failed before it sent a response.",
        ),
        GuestFailure::NoResponse => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component finished without sending a response.",
        ),
        GuestFailure::ErrorCode(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component answered with an error instead of a response.",
        ),
        GuestFailure::Host(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The host could not pass the request to the component.",
        ),
    };
    tracing::error!(status = status.as_u16(), error = %failure, "Request failed");
    with_correlation_id(
        problem::response(status, detail, path, &context.correlation_id),
        context,
    )
}

/// Any host-made response, with the correlation id.
pub fn with_correlation_id(
    mut response: Response<HostBody>,
    context: &RequestContext,
) -> Response<HostBody> {
    if let Ok(value) = HeaderValue::from_str(&context.correlation_id) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}
