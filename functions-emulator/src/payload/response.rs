//! The handler's answer in payload mode, read as the Functions host reads it,
//! and the HTTP response the host makes from it.
//!
//! azure-functions-host at 89dc438: `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`
//! (`EnsureSuccessStatusCode`, then `ReadAsAsync<HttpScriptInvocationResult>`,
//! then the `Logs`), `HttpScriptInvocationResultExtensions.cs` (outputs,
//! `$return` and base64), `src/WebJobs.Script/Description/Workers/WorkerFunctionInvoker.cs`
//! (a `ReturnValue` object overwrites outputs), `src/WebJobs.Script/Binding/Http/HttpBinding.cs`
//! and `RawScriptResult.cs` (the response); aspnet/AspNetWebStack v3.2.8
//! `src/System.Net.Http.Formatting/HttpContentExtensions.cs` and
//! `Formatting/JsonMediaTypeFormatter.cs` (which answers can be read).

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
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
    #[error("Response status code does not indicate success: {0}")]
    Status(StatusCode),
    #[error(
        "No MediaTypeFormatter is available to read an object of type 'HttpScriptInvocationResult' \
         from content with media type '{0}'."
    )]
    UnsupportedMediaType(String),
    #[error(
        "Invalid HttpResponseMessage: the XmlMediaTypeFormatter cannot read {0:?} as an invocation result"
    )]
    Xml(String),
    #[error("Invalid HttpResponseMessage: the body is not JSON ({0})")]
    NotJson(String),
    #[error("Invalid HttpResponseMessage: {0}")]
    Shape(String),
    #[error("the HTTP output {binding:?} cannot be a response: {reason}")]
    HttpOutput { binding: String, reason: String },
}

/// Which of the default formatters reads an answer of a media type
/// (`MediaTypeFormatterCollection`: JSON, XML, form data, in that order;
/// `supported.IsSubsetOf(answer's)`: type and subtype without case,
/// parameters ignored, so `*/*`, `application/*` and `text/*` pick JSON).
enum Reader {
    Json,
    Xml,
    /// None does: the media type, as the error names it.
    Nothing(String),
}

fn reader(headers: &HeaderMap) -> Reader {
    // No Content-Type is read as application/octet-stream.
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    match media_type.as_str() {
        "application/json" | "text/json" | "*/*" | "application/*" | "text/*" => Reader::Json,
        "application/xml" | "text/xml" => Reader::Xml,
        _ => Reader::Nothing(media_type),
    }
}

impl HandlerResult {
    /// Reads the handler's answer as the host does: `Ok(None)` is no result
    /// (an empty or `null` body, or any body declared with `Content-Length:
    /// 0`), which the host never completes the invocation with.
    pub(crate) fn parse(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Option<Self>, InvalidResult> {
        if !status.is_success() {
            return Err(InvalidResult::Status(status));
        }
        let declared_empty = headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() == b"0");
        let text = String::from_utf8_lossy(body);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        match reader(headers) {
            Reader::Json => {}
            _ if declared_empty => return Ok(None),
            Reader::Xml => return Err(InvalidResult::Xml(text.chars().take(60).collect())),
            Reader::Nothing(media_type) => {
                return Err(InvalidResult::UnsupportedMediaType(media_type));
            }
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| InvalidResult::NotJson(e.to_string()))?;
        if value.is_null() {
            return Ok(None);
        }
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
        Ok(Some(HandlerResult {
            logs,
            outputs,
            return_value,
        }))
    }

    /// The client's response for a function whose HTTP output is `output`.
    pub(crate) fn http_response(
        &self,
        output: &HttpOutput,
    ) -> Result<Response<Full<Bytes>>, InvalidResult> {
        match output {
            HttpOutput::None => Ok(Response::new(Full::new(Bytes::new()))),
            HttpOutput::Binding(name) => self.binding_response(name),
            HttpOutput::Return => self.return_response(),
        }
    }

    /// `Outputs.<name>`: without `Outputs` nothing is bound and the host
    /// answers 200 with no body. Otherwise the value, read as an
    /// `HttpOutputBindingResponse` (with a `StatusCode` member always there,
    /// so a lone `status` is not read; an absent output is an empty object,
    /// which the host writes as the text `{}`). A `ReturnValue` object with
    /// the binding's name as a key overwrites it, and is read as a response
    /// object (`statusCode` or `status`, and only with a `body`).
    fn binding_response(&self, name: &str) -> Result<Response<Full<Bytes>>, InvalidResult> {
        let invalid = |reason: String| InvalidResult::HttpOutput {
            binding: name.to_owned(),
            reason,
        };
        if let Some(replaced) = self
            .return_value
            .as_object()
            .and_then(|returned| returned.get(name))
        {
            return content_result(replaced.clone()).map_err(invalid);
        }
        let Some(outputs) = &self.outputs else {
            return Ok(Response::new(Full::new(Bytes::new())));
        };
        let object = match outputs.get(name) {
            None | Some(Value::Null) => {
                return written(200, &Map::new(), Content::Text("{}".into())).map_err(invalid);
            }
            Some(object @ Value::Object(_)) => object.clone(),
            // The host re-parses the value's text, so a string holding a JSON object works.
            Some(Value::String(text)) => match serde_json::from_str(text) {
                Ok(object @ Value::Object(_)) => object,
                _ => return Err(invalid(format!("{text:?} is not a JSON object"))),
            },
            Some(other) => return Err(invalid(format!("{other} is not an object"))),
        };
        let status = status_code(&object, StatusField::StatusCodeOnly).map_err(invalid)?;
        let headers = headers_of(&object).map_err(invalid)?;
        let body = json::get(&object, "body").map_or_else(String::new, json::dotnet_text);
        written(status, &headers, Content::Text(body)).map_err(invalid)
    }

    /// `ReturnValue` for an output named `$return`: a string that is valid
    /// base64 becomes those bytes, written raw; any other value is bound as
    /// HttpBinding.CreateResult binds it.
    fn return_response(&self) -> Result<Response<Full<Bytes>>, InvalidResult> {
        let invalid = |reason: String| InvalidResult::HttpOutput {
            binding: "$return".to_owned(),
            reason,
        };
        match &self.return_value {
            Value::Null => Ok(Response::new(Full::new(Bytes::new()))),
            Value::String(text) => match dotnet_base64(text) {
                Some(bytes) => {
                    written(200, &Map::new(), Content::Bytes(bytes.into())).map_err(invalid)
                }
                None => {
                    let parsed = serde_json::from_str::<Value>(text)
                        .unwrap_or_else(|_| Value::String(text.clone()));
                    content_result(parsed).map_err(invalid)
                }
            },
            other => content_result(other.clone()).map_err(invalid),
        }
    }
}

/// HttpBinding.CreateResult for a value: an object with a `body` (any case)
/// is a response object; anything else is the body itself, as text.
fn content_result(value: Value) -> Result<Response<Full<Bytes>>, String> {
    let has_body = value
        .as_object()
        .is_some_and(|object| object.keys().any(|key| key.eq_ignore_ascii_case("body")));
    if !has_body {
        return written(200, &Map::new(), Content::Text(json::dotnet_text(&value)));
    }
    let status = status_code(&value, StatusField::StatusCodeOrStatus)?;
    let headers = headers_of(&value)?;
    let body = json::get(&value, "body").map_or_else(String::new, json::dotnet_text);
    written(status, &headers, Content::Text(body))
}

/// `Convert.FromBase64String`: white space ignored, the length a multiple
/// of four, padding where it belongs.
fn dotnet_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    engine.decode(compact).ok()
}

/// Which members give the status code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StatusField {
    StatusCodeOnly,
    StatusCodeOrStatus,
}

/// `HttpBinding.TryParseStatusCode`: a number or a numeric string; 200
/// when absent or not a whole number.
fn status_code(object: &Value, field: StatusField) -> Result<u16, String> {
    let mut value = json::get(object, "statusCode");
    if value.is_none() && field == StatusField::StatusCodeOrStatus {
        value = json::get(object, "status");
    }
    let status = match value {
        None | Some(Value::Bool(_)) => 200,
        Some(Value::Number(number)) => number
            .as_i64()
            .and_then(|code| i32::try_from(code).ok())
            .unwrap_or(200),
        Some(Value::String(text)) => json::integer(text)
            .and_then(|code| i32::try_from(code).ok())
            .unwrap_or(200),
        Some(other) => return Err(format!("statusCode {other} is not a number")),
    };
    u16::try_from(status)
        .ok()
        .filter(|code| StatusCode::from_u16(*code).is_ok())
        .ok_or_else(|| format!("{status} is not an HTTP status code"))
}

fn headers_of(object: &Value) -> Result<Map<String, Value>, String> {
    match json::get(object, "headers") {
        None => Ok(Map::new()),
        Some(Value::Object(headers)) => Ok(headers.clone()),
        Some(other) => Err(format!("headers must be an object, got {other}")),
    }
}

/// What `RawScriptResult` writes.
enum Content {
    /// A string: `StringOutputFormatter`, which sets the media type (the
    /// `content-type` header's, else `text/plain`) and always rewrites its
    /// charset to the one it writes, UTF-8 (aspnetcore `TextOutputFormatter.WriteAsync`).
    Text(String),
    /// Bytes: `ByteArrayOutputFormatter`, with no media type of its own.
    Bytes(Bytes),
}

/// The response `RawScriptResult` writes: `headers` (each value as text;
/// `content-type` in any case sets the media type), then the body.
fn written(
    status: u16,
    headers: &Map<String, Value>,
    content: Content,
) -> Result<Response<Full<Bytes>>, String> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::from_u16(status).map_err(|e| e.to_string())?;
    let mut media_type = None;
    for (name, value) in headers {
        if value.is_null() {
            return Err(format!("header {name:?} is null"));
        }
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name:?} is not a header name"))?;
        let text = json::dotnet_text(value);
        let header_value = HeaderValue::from_str(&text)
            .map_err(|_| format!("header {name:?} has a value that cannot be sent: {text:?}"))?;
        if header_name == header::CONTENT_TYPE {
            media_type = Some(text);
        } else if !is_framing(&header_name) {
            response.headers_mut().append(header_name, header_value);
        }
    }
    let (content_type, body) = match content {
        Content::Text(text) => {
            let media_type = media_type.as_deref().unwrap_or("text/plain");
            let without_charset: Vec<&str> = media_type
                .split(';')
                .map(str::trim)
                .filter(|part| {
                    !part
                        .split('=')
                        .next()
                        .is_some_and(|key| key.trim().eq_ignore_ascii_case("charset"))
                })
                .collect();
            (
                Some(format!("{}; charset=utf-8", without_charset.join("; "))),
                Bytes::from(text),
            )
        }
        Content::Bytes(bytes) => (media_type, bytes),
    };
    if let Some(content_type) = content_type {
        let value = HeaderValue::from_str(&content_type)
            .map_err(|_| format!("content-type {content_type:?} cannot be sent"))?;
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    *response.body_mut() = Full::new(body);
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

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;
    use serde_json::json;

    use super::*;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers
    }

    fn parse(body: &str) -> Result<Option<HandlerResult>, InvalidResult> {
        HandlerResult::parse(StatusCode::OK, &json_headers(), body.as_bytes())
    }

    fn respond(
        body: Value,
        output: &HttpOutput,
    ) -> Result<(u16, http::HeaderMap, Bytes), InvalidResult> {
        let response = parse(&body.to_string())?
            .expect("a result")
            .http_response(output)?;
        let (head, body) = response.into_parts();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let bytes = runtime
            .block_on(body.collect())
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        Ok((head.status.as_u16(), head.headers, bytes))
    }

    fn res() -> HttpOutput {
        HttpOutput::Binding("res".to_owned())
    }

    #[test]
    fn only_json_typed_answers_are_read() {
        let body = br#"{"Outputs": {}}"#;
        let with_type = |content_type: Option<&str>, length: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(content_type) = content_type {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_str(content_type).expect("a value"),
                );
            }
            if let Some(length) = length {
                headers.insert(
                    header::CONTENT_LENGTH,
                    HeaderValue::from_str(length).expect("a value"),
                );
            }
            headers
        };
        for accepted in [
            "application/json",
            "Application/JSON; charset=utf-16",
            "text/json",
            "*/*",
            "text/*",
        ] {
            let read = HandlerResult::parse(StatusCode::OK, &with_type(Some(accepted), None), body);
            assert!(matches!(read, Ok(Some(_))), "{accepted}: {read:?}");
        }
        for refused in [Some("text/plain"), Some("application/problem+json"), None] {
            let read = HandlerResult::parse(StatusCode::OK, &with_type(refused, None), body);
            assert!(
                matches!(read, Err(InvalidResult::UnsupportedMediaType(_))),
                "{refused:?}: {read:?}"
            );
        }
        assert!(matches!(
            HandlerResult::parse(StatusCode::OK, &with_type(Some("text/xml"), None), body),
            Err(InvalidResult::Xml(_))
        ));
        // Content-Length: 0 is no result whatever the type.
        assert_eq!(
            HandlerResult::parse(
                StatusCode::OK,
                &with_type(Some("text/plain"), Some("0")),
                b""
            ),
            Ok(None)
        );
    }

    #[test]
    fn an_empty_or_null_answer_is_no_result() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("  "), Ok(None));
        assert_eq!(parse("null"), Ok(None));
        assert!(matches!(parse("{}"), Ok(Some(_))));
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
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        assert_eq!(body, "{\n  \"ok\": true\n}");
        let result = parse(&answer.to_string())
            .expect("valid")
            .expect("a result");
        assert_eq!(result.logs, ["line 1"]);
    }

    #[test]
    fn string_bodies_get_text_plain_and_always_a_utf8_charset() {
        let body = |headers: Value| {
            respond(
                json!({"Outputs": {"res": {"headers": headers, "body": "x"}}}),
                &res(),
            )
            .map(|(_, headers, _)| headers["content-type"].clone())
        };
        assert_eq!(body(json!({})).expect("valid"), "text/plain; charset=utf-8");
        assert_eq!(
            body(json!({"content-type": "text/html; charset=iso-8859-1"})).expect("valid"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            body(json!({"Content-Type": "application/problem+json"})).expect("valid"),
            "application/problem+json; charset=utf-8"
        );
    }

    #[test]
    fn property_names_are_case_insensitive_but_binding_names_are_not() {
        let answer = json!({
            "outputs": {"res": {"STATUSCODE": 202, "Headers": {"content-TYPE": "text/plain", "X-Count": 3, "X-Flag": true}, "BODY": "verbatim {"}},
            "LOGS": ["a", 5],
            "returnvalue": "ignored"
        });
        let result = parse(&answer.to_string())
            .expect("valid")
            .expect("a result");
        assert_eq!(result.logs, ["a", "5"]);
        let (status, headers, body) = respond(answer.clone(), &res()).expect("valid");
        assert_eq!((status, body.as_ref()), (202, b"verbatim {".as_ref()));
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(headers["x-count"], "3");
        assert_eq!(headers["x-flag"], "True");
        // `Res` is another binding: the host binds an empty object, written as text.
        let (status, headers, body) =
            respond(answer, &HttpOutput::Binding("Res".to_owned())).expect("valid");
        assert_eq!((status, body.as_ref()), (200, b"{}".as_ref()));
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
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
        assert_eq!(body(Value::Null), Ok(Bytes::new()));
        assert_eq!(body(json!([1, 2])), Ok(Bytes::from("[\n  1,\n  2\n]")));
        assert_eq!(body(json!(12)), Ok(Bytes::from("12")));
        let (status, _, body) = respond(json!({"Logs": []}), &res()).expect("valid");
        assert_eq!((status, body.as_ref()), (200, b"".as_ref()));
        let (status, _, body) =
            respond(json!({"Outputs": {"res": "{\"statusCode\": 204}"}}), &res())
                .expect("a string holding an object is re-parsed");
        assert_eq!((status, body.as_ref()), (204, b"".as_ref()));
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
    fn a_return_value_object_overwrites_the_output_of_its_key() {
        let answer = json!({
            "Outputs": {"res": {"statusCode": 200, "body": "from Outputs"}},
            "ReturnValue": {"res": {"status": 201, "body": "from ReturnValue"}},
        });
        let (status, _, body) = respond(answer, &res()).expect("valid");
        assert_eq!((status, body.as_ref()), (201, b"from ReturnValue".as_ref()));
        // Without the binding's name as a key, nothing is overwritten.
        let answer = json!({"ReturnValue": {"statusCode": 201, "body": "x"}});
        let (status, _, body) = respond(answer, &res()).expect("valid");
        assert_eq!(
            (status, body.as_ref()),
            (200, b"".as_ref()),
            "Outputs null: no result"
        );
    }

    #[test]
    fn return_values_that_look_like_base64_arrive_as_their_bytes() {
        let returned = |value: Value| respond(json!({"ReturnValue": value}), &HttpOutput::Return);
        let (status, headers, body) = returned(json!("test")).expect("valid");
        assert_eq!((status, body.as_ref()), (200, [0xb5, 0xeb, 0x2d].as_ref()));
        assert!(
            headers.get("content-type").is_none(),
            "bytes have no media type"
        );
        let (_, _, body) = returned(json!("OK==")).expect("valid");
        assert_eq!(body.as_ref(), [0x38]);
        let (status, headers, body) = returned(json!("hello")).expect("valid");
        assert_eq!((status, body.as_ref()), (200, b"hello".as_ref()));
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        let (status, headers, body) = returned(json!(
            "{\"status\": 201, \"body\": \"made\", \"headers\": {\"Location\": \"/x\"}}"
        ))
        .expect("valid");
        assert_eq!((status, body.as_ref()), (201, b"made".as_ref()));
        assert_eq!(headers["location"], "/x");
        let (status, _, body) =
            returned(json!({"Body": {"a": 1}, "statusCode": 202})).expect("valid");
        assert_eq!((status, body.as_ref()), (202, b"{\n  \"a\": 1\n}".as_ref()));
        let (status, headers, body) = returned(json!({"a": 1})).expect("valid");
        assert_eq!((status, body.as_ref()), (200, b"{\n  \"a\": 1\n}".as_ref()));
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        let (status, _, body) = returned(Value::Null).expect("valid");
        assert_eq!((status, body.as_ref()), (200, b"".as_ref()));
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            HandlerResult::parse(StatusCode::INTERNAL_SERVER_ERROR, &json_headers(), b"{}"),
            Err(InvalidResult::Status(StatusCode::INTERNAL_SERVER_ERROR))
        );
        assert!(matches!(parse("not json"), Err(InvalidResult::NotJson(_))));
        assert!(matches!(parse("[1]"), Err(InvalidResult::Shape(_))));
        assert!(matches!(
            parse(r#"{"Outputs": 1}"#),
            Err(InvalidResult::Shape(_))
        ));
        assert!(matches!(
            parse(r#"{"Logs": [{"a": 1}]}"#),
            Err(InvalidResult::Shape(_))
        ));
        assert!(HandlerResult::parse(StatusCode::NO_CONTENT, &json_headers(), b"{}").is_ok());
    }
}
