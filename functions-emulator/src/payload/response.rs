//! The handler's answer in payload mode (reference §3.2): a 2xx response whose
//! body is `{"Outputs": {...}, "Logs": [...], "ReturnValue": ...}` (names in
//! any case), and the HTTP response the host makes from it.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value};

use crate::functions::HttpOutput;
use functions_contract::json;

/// A well-formed answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HandlerResult {
    /// `Logs`: logged as the invocation's lines.
    pub(crate) logs: Vec<String>,
    /// `Outputs`; `None` when null or absent.
    pub(crate) outputs: Option<Map<String, Value>>,
    /// `ReturnValue`.
    pub(crate) return_value: Value,
}

/// Why the invocation failed: the client gets 500 with an empty body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidResult {
    #[error("the handler answered {0} (the host requires a success status)")]
    Status(StatusCode),
    #[error("invalid HttpResponseMessage: the body is not JSON ({0})")]
    NotJson(String),
    #[error("invalid HttpResponseMessage: {0}")]
    Shape(String),
    #[error("the HTTP output {binding:?} cannot be a response: {reason}")]
    HttpOutput { binding: String, reason: String },
}

impl HandlerResult {
    /// Reads the handler's answer (`EnsureSuccessStatusCode`, then
    /// `ReadAsAsync<HttpScriptInvocationResult>`).
    pub(crate) fn parse(status: StatusCode, body: &[u8]) -> Result<Self, InvalidResult> {
        if !status.is_success() {
            return Err(InvalidResult::Status(status));
        }
        let text = String::from_utf8_lossy(body);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let value: Value =
            serde_json::from_str(text).map_err(|e| InvalidResult::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(InvalidResult::Shape(format!(
                "expected an object with Outputs, Logs and ReturnValue, got {value}"
            )));
        }
        let outputs = match json::get(&value, "Outputs") {
            None => None,
            Some(Value::Object(outputs)) => Some(outputs.clone()),
            Some(other) => {
                return Err(InvalidResult::Shape(format!(
                    "Outputs must be an object, got {other}"
                )));
            }
        };
        let logs = match json::get(&value, "Logs") {
            None => Vec::new(),
            Some(Value::Array(lines)) => lines
                .iter()
                .filter(|line| !line.is_null())
                .map(|line| {
                    json::scalar(line).ok_or_else(|| {
                        InvalidResult::Shape(format!("Logs must hold strings, got {line}"))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(InvalidResult::Shape(format!(
                    "Logs must be an array, got {other}"
                )));
            }
        };
        let return_value = json::get(&value, "ReturnValue")
            .cloned()
            .unwrap_or(Value::Null);
        Ok(HandlerResult {
            logs,
            outputs,
            return_value,
        })
    }

    /// The client's response for a function whose HTTP output is `output`.
    pub(crate) fn http_response(
        &self,
        output: &HttpOutput,
    ) -> Result<Response<Full<Bytes>>, InvalidResult> {
        match output {
            HttpOutput::None => Ok(empty_ok()),
            HttpOutput::Binding(name) => self.binding_response(name),
            HttpOutput::Return => self.return_response(),
        }
    }

    /// `Outputs.<name>` (GetHttpOutputBindingResponse): binding names are
    /// case-sensitive keys; without `Outputs` there is no HTTP result (200,
    /// empty); with `Outputs` but no such output the host builds an empty
    /// response object (200, `{}`; code reading, UNCONFIRMED).
    fn binding_response(&self, name: &str) -> Result<Response<Full<Bytes>>, InvalidResult> {
        let Some(outputs) = &self.outputs else {
            return Ok(empty_ok());
        };
        let invalid = |reason: String| InvalidResult::HttpOutput {
            binding: name.to_owned(),
            reason,
        };
        let object = match outputs.get(name) {
            None | Some(Value::Null) => return Ok(json_ok(&Value::Object(Map::new()))),
            Some(Value::Object(object)) => object.clone(),
            // The host re-parses the value's text, so a string holding a JSON object works.
            Some(Value::String(text)) => match serde_json::from_str(text) {
                Ok(Value::Object(object)) => object,
                _ => return Err(invalid(format!("{text:?} is not a JSON object"))),
            },
            Some(other) => return Err(invalid(format!("{other} is not an object"))),
        };
        // The host copies it into a fresh object with a StatusCode key, so a
        // lone `status` is not read here (reference §3.2).
        response_object(&Value::Object(object), StatusField::StatusCodeOnly).map_err(invalid)
    }

    /// `ReturnValue` for an output named `$return` (HttpBinding.CreateResult):
    /// a value, or a string holding JSON, that is an object with a `body` is
    /// a response object; anything else is a 200 body.
    fn return_response(&self) -> Result<Response<Full<Bytes>>, InvalidResult> {
        let invalid = |reason: String| InvalidResult::HttpOutput {
            binding: "$return".to_owned(),
            reason,
        };
        let value = match &self.return_value {
            Value::Null => return Ok(empty_ok()),
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(parsed @ Value::Object(_)) => parsed,
                _ => return Ok(plain_ok(Bytes::from(text.clone()))),
            },
            other => other.clone(),
        };
        let has_body = value
            .as_object()
            .is_some_and(|object| object.keys().any(|key| key.eq_ignore_ascii_case("body")));
        if has_body {
            return response_object(&value, StatusField::StatusCodeOrStatus).map_err(invalid);
        }
        match value {
            // An object that is not a response: serialized as the body (UNCONFIRMED formatting).
            Value::Object(_) | Value::Array(_) => Ok(json_ok(&value)),
            other => Ok(plain_ok(Bytes::from(json::dotnet_text(&other)))),
        }
    }
}

/// Which members give the status code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StatusField {
    StatusCodeOnly,
    StatusCodeOrStatus,
}

/// A response object `{statusCode, headers, body}` as RawScriptResult writes
/// it: the status as a number or numeric string (200 when absent or not a
/// whole number); each header's value as text, `content-type` in any case
/// setting Content-Type; a string body verbatim, an object or array body as
/// indented JSON, null as no body.
fn response_object(
    object: &Value,
    status_field: StatusField,
) -> Result<Response<Full<Bytes>>, String> {
    let mut status_value = json::get(object, "statusCode");
    if status_value.is_none() && status_field == StatusField::StatusCodeOrStatus {
        status_value = json::get(object, "status");
    }
    let status = match status_value {
        None => 200,
        Some(Value::Number(number)) => number
            .as_i64()
            .and_then(|code| i32::try_from(code).ok())
            .unwrap_or(200),
        Some(Value::String(text)) => json::integer(text)
            .and_then(|code| i32::try_from(code).ok())
            .unwrap_or(200),
        Some(Value::Bool(_)) => 200,
        Some(other) => return Err(format!("statusCode {other} is not a number")),
    };
    let status = u16::try_from(status)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| format!("{status} is not an HTTP status code"))?;

    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    match json::get(object, "headers") {
        None => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                if value.is_null() {
                    return Err(format!("header {name:?} is null"));
                }
                let header_name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("{name:?} is not a header name"))?;
                let text = json::dotnet_text(value);
                let header_value = HeaderValue::from_str(&text).map_err(|_| {
                    format!("header {name:?} has a value that cannot be sent: {text:?}")
                })?;
                if header_name == header::CONTENT_TYPE {
                    response.headers_mut().insert(header_name, header_value);
                } else if !is_framing(&header_name) {
                    response.headers_mut().append(header_name, header_value);
                }
            }
        }
        Some(other) => return Err(format!("headers must be an object, got {other}")),
    }
    let body = json::get(object, "body")
        .map(json::dotnet_text)
        .unwrap_or_default();
    *response.body_mut() = Full::new(Bytes::from(body));
    Ok(response)
}

/// Framing headers the emulator's server computes itself from the body.
fn is_framing(name: &HeaderName) -> bool {
    [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ]
    .contains(name)
}

fn empty_ok() -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::new()))
}

fn plain_ok(body: Bytes) -> Response<Full<Bytes>> {
    Response::new(Full::new(body))
}

fn json_ok(value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(json::indented(value))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;
    use serde_json::json;

    use super::*;

    fn parse(body: &str) -> Result<HandlerResult, InvalidResult> {
        HandlerResult::parse(StatusCode::OK, body.as_bytes())
    }

    fn respond(
        body: Value,
        output: &HttpOutput,
    ) -> Result<(u16, http::HeaderMap, String), InvalidResult> {
        let response = parse(&body.to_string())?.http_response(output)?;
        let (head, body) = response.into_parts();
        let bytes = futures_body(body);
        Ok((
            head.status.as_u16(),
            head.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }

    fn futures_body(body: Full<Bytes>) -> Bytes {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime
            .block_on(body.collect())
            .map(|collected| collected.to_bytes())
            .unwrap_or_default()
    }

    fn res() -> HttpOutput {
        HttpOutput::Binding("res".to_owned())
    }

    #[test]
    fn the_recorders_answer_maps_to_201_with_an_indented_body() {
        let answer = json!({
            "Outputs": {"res": {"statusCode": "201", "headers": {"Content-Type": "application/json"}, "body": {"ok": true}}},
            "Logs": ["line 1"],
            "ReturnValue": null
        });
        let (status, headers, body) = respond(answer.clone(), &res()).expect("valid");
        assert_eq!(status, 201);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body, "{\n  \"ok\": true\n}");
        assert_eq!(parse(&answer.to_string()).expect("valid").logs, ["line 1"]);
    }

    #[test]
    fn property_names_are_case_insensitive_but_binding_names_are_not() {
        let answer = json!({
            "outputs": {"res": {"STATUSCODE": 202, "Headers": {"content-TYPE": "text/plain", "X-Count": 3, "X-Flag": true}, "BODY": "verbatim {"}},
            "LOGS": ["a", 5],
            "returnvalue": "ignored"
        });
        let result = parse(&answer.to_string()).expect("valid");
        assert_eq!(result.logs, ["a", "5"]);
        let (status, headers, body) = respond(answer.clone(), &res()).expect("valid");
        assert_eq!((status, body.as_str()), (202, "verbatim {"));
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(headers["x-count"], "3");
        assert_eq!(headers["x-flag"], "True");
        // `Res` is another binding: the host builds an empty response object.
        let (status, headers, body) =
            respond(answer, &HttpOutput::Binding("Res".to_owned())).expect("valid");
        assert_eq!((status, body.as_str()), (200, "{}"));
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    }

    #[test]
    fn status_codes_default_to_200() {
        let status =
            |output: Value| respond(json!({"Outputs": {"res": output}}), &res()).map(|r| r.0);
        assert_eq!(status(json!({"body": "x"})), Ok(200));
        assert_eq!(status(json!({"statusCode": "abc"})), Ok(200));
        assert_eq!(status(json!({"statusCode": 201.5})), Ok(200));
        assert_eq!(
            status(json!({"status": 404})),
            Ok(200),
            "a lone status is ignored"
        );
        assert_eq!(status(json!({"statusCode": " 404 "})), Ok(404));
        assert!(status(json!({"statusCode": 42})).is_err());
        assert!(status(json!({"statusCode": {"code": 201}})).is_err());
    }

    #[test]
    fn bodies_and_outputs_without_an_http_result() {
        let body = |value: Value| {
            respond(json!({"Outputs": {"res": {"body": value}}}), &res()).map(|r| r.2)
        };
        assert_eq!(body(Value::Null), Ok(String::new()));
        assert_eq!(body(json!([1, 2])), Ok("[\n  1,\n  2\n]".to_owned()));
        assert_eq!(body(json!(12)), Ok("12".to_owned()));
        let (status, _, body) = respond(json!({"Logs": []}), &res()).expect("valid");
        assert_eq!((status, body.as_str()), (200, ""));
        let (status, _, body) =
            respond(json!({"Outputs": {"res": "{\"statusCode\": 204}"}}), &res())
                .expect("a string holding an object is re-parsed");
        assert_eq!((status, body.as_str()), (204, ""));
        assert!(respond(json!({"Outputs": {"res": "plain"}}), &res()).is_err());
        assert!(
            respond(
                json!({"Outputs": {"res": {"headers": {"x": null}}}}),
                &res()
            )
            .is_err()
        );
        assert!(
            respond(
                json!({"Outputs": {"res": {"headers": {"x": [1, 2]}}}}),
                &res()
            )
            .is_err()
        );
        let (status, _, _) = respond(json!({"Outputs": {}}), &HttpOutput::None).expect("valid");
        assert_eq!(status, 200);
    }

    #[test]
    fn return_values_become_responses() {
        let returned = |value: Value| respond(json!({"ReturnValue": value}), &HttpOutput::Return);
        let (status, _, body) = returned(json!("hello")).expect("valid");
        assert_eq!((status, body.as_str()), (200, "hello"));
        let (status, headers, body) = returned(json!(
            "{\"status\": 201, \"body\": \"made\", \"headers\": {\"Location\": \"/x\"}}"
        ))
        .expect("valid");
        assert_eq!((status, body.as_str()), (201, "made"));
        assert_eq!(headers["location"], "/x");
        let (status, _, body) =
            returned(json!({"Body": {"a": 1}, "statusCode": 202})).expect("valid");
        assert_eq!((status, body.as_str()), (202, "{\n  \"a\": 1\n}"));
        let (status, headers, body) = returned(json!({"a": 1})).expect("valid");
        assert_eq!((status, body.as_str()), (200, "{\n  \"a\": 1\n}"));
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        let (status, _, body) = returned(Value::Null).expect("valid");
        assert_eq!((status, body.as_str()), (200, ""));
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            HandlerResult::parse(StatusCode::INTERNAL_SERVER_ERROR, b"{}"),
            Err(InvalidResult::Status(StatusCode::INTERNAL_SERVER_ERROR))
        );
        assert!(matches!(parse("not json"), Err(InvalidResult::NotJson(_))));
        assert!(matches!(parse(""), Err(InvalidResult::NotJson(_))));
        assert!(matches!(parse("null"), Err(InvalidResult::Shape(_))));
        assert!(matches!(parse("[1]"), Err(InvalidResult::Shape(_))));
        assert!(matches!(
            parse(r#"{"Outputs": 1}"#),
            Err(InvalidResult::Shape(_))
        ));
        assert!(matches!(
            parse(r#"{"Logs": [{"a": 1}]}"#),
            Err(InvalidResult::Shape(_))
        ));
        assert!(parse("{}").is_ok());
        assert!(HandlerResult::parse(StatusCode::NO_CONTENT, b"{}").is_ok());
    }
}
