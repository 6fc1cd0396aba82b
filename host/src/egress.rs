//! Egress: what goes back to the Functions host. The guest's response passes
//! through with the correlation id and the serving component's digest added;
//! a request that was refused, or whose guest produced no response, becomes a
//! problem+json response with the correlation id, never an empty body or an
//! HTML page.

use http::{HeaderName, HeaderValue, Response, header};

use crate::body::HostBody;
use crate::component::ComponentVersion;
use crate::context::{CORRELATION_ID, RequestContext};
use crate::failure::Problem;
use crate::problem;

/// The response header naming the component version that served a request.
const COMPONENT_DIGEST: HeaderName = HeaderName::from_static("x-component-digest");

/// The guest's response, as the caller gets it.
pub(crate) fn guest_response(
    response: Response<HostBody>,
    context: &RequestContext,
    version: &ComponentVersion,
) -> Response<HostBody> {
    with_digest(with_correlation_id(response, context), version)
}

/// The response for a refusal or a guest failure, logged: the details go to
/// the log, the caller gets the status, the `detail` and the correlation id
/// to find them. `version` is the component that was to serve, if any.
pub(crate) fn problem_response(
    failure: &dyn Problem,
    path: &str,
    context: &RequestContext,
    version: Option<&ComponentVersion>,
) -> Response<HostBody> {
    let (status, detail) = (failure.status(), failure.detail());
    if failure.is_guest_fault() {
        tracing::error!(status = status.as_u16(), error = %failure, "Request failed");
    } else {
        tracing::warn!(status = status.as_u16(), "Request refused: {detail}");
    }
    let mut response = with_correlation_id(
        problem::response(status, &detail, path, &context.correlation_id),
        context,
    );
    if let Some(seconds) = failure.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    match version {
        Some(version) => with_digest(response, version),
        None => response,
    }
}

fn with_correlation_id(
    mut response: Response<HostBody>,
    context: &RequestContext,
) -> Response<HostBody> {
    if let Ok(value) = HeaderValue::from_str(&context.correlation_id) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}

fn with_digest(mut response: Response<HostBody>, version: &ComponentVersion) -> Response<HostBody> {
    if let Ok(value) = HeaderValue::from_str(version.digest()) {
        response.headers_mut().insert(COMPONENT_DIGEST, value);
    }
    response
}
