//! RFC 9457 problem details: the one error envelope of the API, shared in shape
//! with the host's own errors and APIM's `on-error` policy.

use crate::json;

/// The media type of every error body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// Renders a problem document. `type` is `about:blank`: the status code carries
/// the meaning, `title` is its reason phrase and `detail` says what happened.
pub fn render(status: u16, detail: &str, instance: &str, correlation_id: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(160 + detail.len() + instance.len());
    body.extend_from_slice(br#"{"type":"about:blank","title":"#);
    json::push_string(&mut body, reason_phrase(status));
    body.extend_from_slice(format!(r#","status":{status},"detail":"#).as_bytes());
    json::push_string(&mut body, detail);
    body.extend_from_slice(br#","instance":"#);
    json::push_string(&mut body, instance);
    body.extend_from_slice(br#","correlation_id":"#);
    json::push_string(&mut body, correlation_id);
    body.push(b'}');
    body
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_rfc_9457_members_and_the_correlation_id() {
        let body = super::render(404, "No item \"7\".", "/api/catalog/7", "c-1");
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(
            problem,
            serde_json::json!({
                "type": "about:blank", "title": "Not Found", "status": 404,
                "detail": "No item \"7\".", "instance": "/api/catalog/7", "correlation_id": "c-1"
            })
        );
    }
}
