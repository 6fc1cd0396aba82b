//! The invocation result the handler answers a payload-mode POST with:
//! `{"Outputs": {"<binding>": {statusCode, headers, body}}, "Logs": [...],
//! "ReturnValue": null}`, or the response in `ReturnValue` for `$return`.
//!
//! The Functions host reads it with `ReadAsAsync<HttpScriptInvocationResult>`
//! after `EnsureSuccessStatusCode` (azure-functions-host
//! `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`): only a 2xx
//! answer typed `application/json` (or `text/json`) is read, and an empty or
//! `null` body is taken as no result at all, which leaves the invocation
//! hanging until `functionTimeout`. So every answer to a payload-mode POST is
//! a 200 `application/json` envelope, refusals and failures included: the
//! real status travels inside, as the response's `statusCode`.

use bytes::Bytes;
use functions_contract::HttpOutput;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Response};
use serde_json::{Map, Value};

use crate::body::{HostBody, full};

/// The response to a payload-mode POST: a 200 carrying `envelope`.
pub(crate) fn answer(envelope: Vec<u8>) -> Response<HostBody> {
    let mut response = Response::new(full(Bytes::from(envelope)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// The envelope for the response (`status`, `headers`, `body` as text) under
/// the function's HTTP output, with the invocation's log lines.
pub(crate) fn envelope(
    output: &HttpOutput,
    status: u16,
    headers: &HeaderMap,
    body: &str,
    logs: Vec<String>,
) -> Vec<u8> {
    let mut header_object = Map::new();
    for name in headers.keys() {
        if [CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION].contains(name) {
            continue;
        }
        // One string each: the host writes `value.ToString()`, so an array
        // would arrive as its JSON text.
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        header_object.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    let response =
        serde_json::json!({ "statusCode": status, "headers": header_object, "body": body });
    // A `$return` value is an object, never a string: the host would try to
    // base64-decode a string (HttpScriptInvocationResultExtensions.GetBindingValue).
    let (outputs, return_value) = match output {
        HttpOutput::Binding(name) => (serde_json::json!({ name: response }), Value::Null),
        HttpOutput::Return => (serde_json::json!({}), response),
        HttpOutput::None => (serde_json::json!({}), Value::Null),
    };
    let envelope =
        serde_json::json!({ "Outputs": outputs, "Logs": logs, "ReturnValue": return_value });
    envelope.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_go_to_the_binding_or_the_return_value() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("content-length", HeaderValue::from_static("2"));
        headers.append("vary", HeaderValue::from_static("a"));
        headers.append("vary", HeaderValue::from_static("b"));
        let logs = vec!["[Information] handled".to_owned()];
        let named = envelope(
            &HttpOutput::Binding("res".into()),
            201,
            &headers,
            "{}",
            logs,
        );
        let named: Value = serde_json::from_slice(&named).expect("JSON");
        assert_eq!(
            named,
            serde_json::json!({
                "Outputs": { "res": { "statusCode": 201, "headers": { "content-type": "application/json", "vary": "a, b" }, "body": "{}" } },
                "Logs": ["[Information] handled"],
                "ReturnValue": null,
            })
        );
        let returned = envelope(&HttpOutput::Return, 304, &HeaderMap::new(), "", vec![]);
        let returned: Value = serde_json::from_slice(&returned).expect("JSON");
        assert_eq!(returned["ReturnValue"]["statusCode"], 304);
        assert_eq!(returned["Outputs"], serde_json::json!({}));
    }

    #[test]
    fn the_answer_is_always_json_the_host_reads() {
        let response = answer(b"{}".to_vec());
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }
}
