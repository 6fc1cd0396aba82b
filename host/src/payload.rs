//! Payload mode (reference §3.1 and §3.2): the Functions host sends a
//! function that is not forwarded as `POST /{FunctionName}` with a JSON
//! envelope, and reads the HTTP response from a JSON envelope in return.
//!
//! [`parse_invocation`] turns the envelope's request (`Data.<trigger>`) into
//! the same `http::Request` a forwarded call would be, so the guest cannot
//! tell the modes apart; [`result_envelope`] turns the response into
//! `{"Outputs": {"<binding>": {statusCode, headers, body}}, "Logs": [...],
//! "ReturnValue": null}` (or the response in `ReturnValue` for `$return`).

use base64::Engine as _;
use bytes::Bytes;
use function_app::{FunctionConfig, HttpOutput, Mode, json};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, request};
use serde_json::{Map, Value};

/// A function the Functions host invokes in payload mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFunction {
    /// Its name: the path of its invocations is `/{name}`.
    pub name: String,
    /// The trigger binding: the request is `Data.<trigger>`.
    pub trigger: String,
    /// Where the response goes.
    pub output: HttpOutput,
}

impl PayloadFunction {
    /// The function, if the Functions host invokes it in payload mode with an
    /// HTTP request (the only trigger a wasi:http guest can answer).
    pub fn of(host: &function_app::HostConfig, function: &FunctionConfig) -> Option<Self> {
        let trigger = function.http_trigger()?;
        (Mode::of(host, function) == Mode::Payload).then(|| PayloadFunction {
            name: function.name.clone(),
            trigger: trigger.name.clone(),
            output: HttpOutput::of(function),
        })
    }
}

/// Why an envelope cannot be an invocation: answered with `400`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON at all.
    #[error("the invocation is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not `{"Data": {...}}`.
    #[error("the invocation has no Data object")]
    NoData,
    /// `Data` has no object for the trigger binding.
    #[error("Data has no {0:?} object (the function's HTTP trigger binding)")]
    NoRequest(String),
    /// A member of the request is missing or of the wrong type.
    #[error("Data.{binding}.{member}: {problem}")]
    Member {
        /// The trigger binding.
        binding: String,
        /// The member (`Url`, `Method`, `Headers`, `Body`).
        member: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// The request inside an invocation envelope, as a forwarded request would
/// arrive: method, path and query from `Url`, headers from `Headers` (plus the
/// invocation id the Functions host put on the POST), body from `Body`
/// (base64 for `application/octet-stream` and `multipart/*`, as the host
/// sends those as bytes).
pub fn parse_invocation(
    envelope: &[u8],
    function: &PayloadFunction,
    outer: &request::Parts,
) -> Result<(request::Parts, Bytes), EnvelopeError> {
    let text = std::str::from_utf8(envelope).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    let value = json::parse(text).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    let data = json::get(&value, "Data")
        .filter(|data| data.is_object())
        .ok_or(EnvelopeError::NoData)?;
    let invocation = json::get(data, &function.trigger)
        .filter(|request| request.is_object())
        .ok_or_else(|| EnvelopeError::NoRequest(function.trigger.clone()))?;
    let problem = |member: &'static str, problem: String| EnvelopeError::Member {
        binding: function.trigger.clone(),
        member,
        problem,
    };

    let url = json::get(invocation, "Url")
        .and_then(Value::as_str)
        .ok_or_else(|| problem("Url", "a string is required".into()))?;
    let uri: http::Uri = url
        .parse()
        // Not echoed: a URL may carry a function key in `code`.
        .map_err(|_| problem("Url", "not a URL".into()))?;
    let path_and_query = uri.path_and_query().map_or("/", |target| target.as_str());
    let method = json::get(invocation, "Method")
        .and_then(Value::as_str)
        .ok_or_else(|| problem("Method", "a string is required".into()))?;
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| problem("Method", format!("{method:?} is not a method")))?;

    let mut headers = HeaderMap::new();
    match json::get(invocation, "Headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(members)) => {
            for (name, values) in members {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| problem("Headers", format!("{name:?} is not a header name")))?;
                let values: Vec<&str> = match values {
                    Value::String(value) => vec![value.as_str()],
                    Value::Array(items) => items
                        .iter()
                        .map(|item| {
                            item.as_str().ok_or_else(|| {
                                problem("Headers", format!("{name}: values must be strings"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    _ => {
                        return Err(problem(
                            "Headers",
                            format!("{name}: an array of strings is required"),
                        ));
                    }
                };
                for value in values {
                    let value = HeaderValue::from_str(value).map_err(|_| {
                        problem(
                            "Headers",
                            // Not echoed: header values may be secrets.
                            format!("{name}: a value is not a valid header value"),
                        )
                    })?;
                    headers.append(name.clone(), value);
                }
            }
        }
        Some(_) => return Err(problem("Headers", "an object is required".into())),
    }
    // Framing is the host's to decide from the body below.
    headers.remove(CONTENT_LENGTH);
    headers.remove(TRANSFER_ENCODING);
    if !headers.contains_key(HOST)
        && let Some(authority) = uri
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
    {
        headers.insert(HOST, authority);
    }
    if !headers.contains_key(INVOCATION_ID)
        && let Some(value) = outer.headers.get(INVOCATION_ID)
    {
        headers.insert(INVOCATION_ID, value.clone());
    }

    let body = match json::get(invocation, "Body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) if is_binary(&headers) => {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(Bytes::from)
                .map_err(|e| {
                    problem(
                        "Body",
                        format!("base64 is required for this content type: {e}"),
                    )
                })?
        }
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(_) => return Err(problem("Body", "a string is required".into())),
    };
    if !body.is_empty() || method_has_body(&method) {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }

    let mut builder = http::Request::builder().method(method).uri(path_and_query);
    if let Some(target) = builder.headers_mut() {
        *target = headers;
    }
    let (head, ()) = builder
        .body(())
        .map_err(|e| problem("Url", e.to_string()))?
        .into_parts();
    Ok((head, body))
}

const INVOCATION_ID: HeaderName = HeaderName::from_static("x-azure-functions-invocationid");

/// Whether the Functions host sends this request's body as bytes (base64).
fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| {
            let content_type = content_type.trim().to_ascii_lowercase();
            content_type.starts_with("application/octet-stream")
                || content_type.starts_with("multipart/")
        })
}

fn method_has_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// Why a response cannot travel in an envelope: the envelope's `body` is a
/// string, which the Functions host writes as it is.
pub const BINARY_BODY: &str =
    "The response body is not UTF-8 text, which payload mode cannot carry (forward mode can).";

/// The invocation result: the response under the function's HTTP output
/// (scalar header values, the body as text) and the invocation's log lines.
pub fn result_envelope(
    function: &PayloadFunction,
    status: u16,
    headers: &HeaderMap,
    body: &str,
    logs: Vec<String>,
) -> Vec<u8> {
    let mut header_object = Map::new();
    for name in headers.keys() {
        if [CONTENT_LENGTH, TRANSFER_ENCODING].contains(name) || name.as_str() == "connection" {
            continue;
        }
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        header_object.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    let response =
        serde_json::json!({ "statusCode": status, "headers": header_object, "body": body });
    let (outputs, return_value) = match &function.output {
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

    fn function(output: HttpOutput) -> PayloadFunction {
        PayloadFunction {
            name: "catalog".into(),
            trigger: "req".into(),
            output,
        }
    }

    fn outer() -> request::Parts {
        http::Request::post("/catalog")
            .header("x-azure-functions-invocationid", "inv-1")
            .body(())
            .expect("a request")
            .into_parts()
            .0
    }

    fn parse(envelope: Value) -> Result<(request::Parts, Bytes), EnvelopeError> {
        parse_invocation(
            envelope.to_string().as_bytes(),
            &function(HttpOutput::Binding("res".into())),
            &outer(),
        )
    }

    #[test]
    fn an_envelope_becomes_the_request_a_forwarded_call_would_be() {
        let (head, body) = parse(serde_json::json!({
            "Data": { "req": {
                "Url": "http://localhost:7071/api/catalog/42?x=1&code=k",
                "Method": "GET",
                "Query": { "x": "1" },
                "Headers": { "Accept": ["*/*"], "Host": ["localhost:7071"], "x-correlation-id": ["6d9f"], "Content-Length": ["999"] },
                "Params": { "item_id": "42" },
                "Identities": [],
            } },
            "Metadata": { "sys": { "MethodName": "catalog" } },
        }))
        .expect("a valid envelope");
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.uri, "/api/catalog/42?x=1&code=k");
        assert_eq!(head.headers["host"], "localhost:7071");
        assert_eq!(head.headers["x-correlation-id"], "6d9f");
        assert_eq!(
            head.headers["x-azure-functions-invocationid"], "inv-1",
            "from the POST"
        );
        assert!(
            head.headers.get("content-length").is_none(),
            "a GET without a body declares none"
        );
        assert!(body.is_empty());
    }

    #[test]
    fn bodies_are_text_or_base64_by_content_type() {
        let envelope = |content_type: &str, body: &str| {
            serde_json::json!({ "data": { "REQ": {
                "url": "http://h/api/x", "method": "POST",
                "headers": { "Content-Type": content_type }, "body": body,
            } } })
        };
        let (head, body) = parse(envelope("application/json", "{\"a\":1}")).expect("text");
        assert_eq!(
            (body.as_ref(), &head.headers["content-length"]),
            (b"{\"a\":1}".as_ref(), &HeaderValue::from(7))
        );
        let (_, bytes) = parse(envelope("application/octet-stream", "AP8Q")).expect("base64");
        assert_eq!(bytes.as_ref(), [0x00, 0xff, 0x10]);
        assert!(matches!(
            parse(envelope("multipart/form-data; boundary=x", "not base64!")),
            Err(EnvelopeError::Member { member: "Body", .. })
        ));
    }

    #[test]
    fn malformed_envelopes_say_what_is_wrong() {
        let cases = [
            (serde_json::json!([]), "no Data"),
            (serde_json::json!({ "Data": {} }), "no \"req\""),
            (
                serde_json::json!({ "Data": { "req": { "Method": "GET" } } }),
                "Url",
            ),
            (
                serde_json::json!({ "Data": { "req": { "Url": 7, "Method": "GET" } } }),
                "Url",
            ),
            (
                serde_json::json!({ "Data": { "req": { "Url": "http://h/", "Method": "G ET" } } }),
                "Method",
            ),
            (
                serde_json::json!({ "Data": { "req": { "Url": "http://h/", "Method": "GET", "Headers": [] } } }),
                "Headers",
            ),
            (
                serde_json::json!({ "Data": { "req": { "Url": "http://h/", "Method": "GET", "Headers": { "a b": ["1"] } } } }),
                "Headers",
            ),
            (
                serde_json::json!({ "Data": { "req": { "Url": "http://h/", "Method": "GET", "Headers": { "a": [1] } } } }),
                "Headers",
            ),
            (
                serde_json::json!({ "Data": { "req": { "Url": "http://h/", "Method": "POST", "Body": { "a": 1 } } } }),
                "Body",
            ),
        ];
        for (envelope, expected) in cases {
            let error = parse(envelope.clone()).expect_err("malformed");
            assert!(error.to_string().contains(expected), "{envelope}: {error}");
        }
        assert!(matches!(
            parse_invocation(b"{not json", &function(HttpOutput::Return), &outer()),
            Err(EnvelopeError::NotJson(_))
        ));
    }

    #[test]
    fn results_go_to_the_binding_or_the_return_value() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("content-length", HeaderValue::from_static("2"));
        headers.append("vary", HeaderValue::from_static("a"));
        headers.append("vary", HeaderValue::from_static("b"));
        let logs = vec!["[Information] handled".to_owned()];
        let named = result_envelope(
            &function(HttpOutput::Binding("res".into())),
            201,
            &headers,
            "{}",
            logs.clone(),
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
        let returned = result_envelope(
            &function(HttpOutput::Return),
            304,
            &HeaderMap::new(),
            "",
            vec![],
        );
        let returned: Value = serde_json::from_slice(&returned).expect("JSON");
        assert_eq!(returned["ReturnValue"]["statusCode"], 304);
        assert_eq!(returned["Outputs"], serde_json::json!({}));
    }
}
