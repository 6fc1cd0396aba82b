//! RFC 9457 problem details for the host's own errors, in the same envelope as
//! the guest's errors and APIM's `on-error` policy: `type`, `title`, `status`,
//! `detail`, `instance` and `correlation_id`.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::{HostBody, full};

/// The media type of every error body.
pub(crate) const CONTENT_TYPE: &str = "application/problem+json";

/// A problem document. `type` is `about:blank`, so `title` is the status's
/// reason phrase and `detail` says what happened. `instance` is the request
/// path only: a query string can carry a function key.
pub(crate) fn text(status: StatusCode, detail: &str, path: &str, correlation_id: &str) -> String {
    serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "instance": path,
        "correlation_id": correlation_id,
    })
    .to_string()
}

/// The headers of every problem response: the media type, and `no-store`.
pub(crate) fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
}

/// A problem response: [`text`] with [`headers`].
pub(crate) fn response(
    status: StatusCode,
    detail: &str,
    path: &str,
    correlation_id: &str,
) -> Response<HostBody> {
    let mut response = Response::new(full(text(status, detail, path, correlation_id)));
    *response.status_mut() = status;
    *response.headers_mut() = headers();
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn renders_the_shared_envelope() {
        let response = response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The component trapped.",
            "/api/x",
            "c-9",
        );
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a full body")
            .to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            problem,
            serde_json::json!({
                "type": "about:blank", "title": "Internal Server Error", "status": 500,
                "detail": "The component trapped.", "instance": "/api/x", "correlation_id": "c-9"
            })
        );
    }
}
