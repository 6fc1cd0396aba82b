//! The invocation request of payload mode (azure-functions-host
//! `src/WebJobs.Script/Workers/MessageExtensions/HttpScriptInvocationContextExtensions.cs`
//! and `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`):
//! `{"Data": {"<trigger>": <the HTTP request>}, "Metadata": {...}}`.

use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use http::header;
use http::request::Parts;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::forward::declared_length;
use crate::routes::RouteValues;
use crate::url::Query;

/// The HTTP request of one invocation, as the host received it.
pub(crate) struct TriggerRequest<'a> {
    pub(crate) head: &'a Parts,
    pub(crate) body: &'a Bytes,
    pub(crate) query: &'a Query,
    pub(crate) route_values: &'a RouteValues,
    pub(crate) caller: &'a Caller,
}

/// The `sys` binding data of one invocation.
pub(crate) struct SystemData<'a> {
    pub(crate) method_name: &'a str,
    pub(crate) utc_now: SystemTime,
    pub(crate) rand_guid: &'a str,
}

/// The JSON body the host POSTs to `/{FunctionName}`.
pub(crate) fn envelope(
    trigger_name: &str,
    request: &TriggerRequest<'_>,
    sys: &SystemData<'_>,
) -> Value {
    let mut data = Map::new();
    data.insert(trigger_name.to_owned(), http_request(request));
    json!({ "Data": data, "Metadata": metadata(request, sys) })
}

/// `Data.<trigger>`: HttpRequestExtensions.GetRequestAsJObject.
fn http_request(request: &TriggerRequest<'_>) -> Value {
    let head = request.head;
    let mut object = Map::new();
    object.insert("Url".into(), url(head).into());
    object.insert("Method".into(), head.method.as_str().into());
    let query: Map<String, Value> = request
        .query
        .joined()
        .map(|(key, value)| (key.to_owned(), value.into()))
        .collect();
    object.insert("Query".into(), query.into());
    let mut headers = Map::new();
    for name in head.headers.keys() {
        let values: Vec<Value> = head
            .headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into())
            .collect();
        headers.insert(canonical_header_name(name.as_str()), values.into());
    }
    object.insert("Headers".into(), headers.into());
    // The host keeps the route values of every routed request, with optional
    // parameters that were absent as null (FunctionInvocationMiddleware.PopulateRouteData).
    let params: Map<String, Value> = request
        .route_values
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().map_or(Value::Null, Value::from)))
        .collect();
    object.insert("Params".into(), params.into());
    object.insert("Identities".into(), identities(request.caller));
    if declared_length(&head.headers) > 0 {
        let body = if is_binary(head) {
            base64::engine::general_purpose::STANDARD
                .encode(request.body)
                .into()
        } else {
            body_text(request.body).into()
        };
        object.insert("Body".into(), body);
    }
    Value::Object(object)
}

/// `Metadata`: the trigger's binding data (HttpTriggerAttributeBindingProvider
/// .GetRequestBindingDataAsync) plus `sys`, each value that is not an object
/// serialized to a JSON string (so `"42"` arrives as `"\"42\""`); null values
/// and names ending in "trigger" are left out (ToHttpScriptInvocationContext).
fn metadata(request: &TriggerRequest<'_>, sys: &SystemData<'_>) -> Value {
    let mut data = BindingData::default();
    let head = request.head;
    if declared_length(&head.headers) > 0 {
        for (name, value) in body_properties(&body_text(request.body)) {
            data.set(&name, value);
        }
    }
    // Each query parameter but `code`; the last of repeated values wins.
    for (key, value) in request.query.last_values() {
        if !key.eq_ignore_ascii_case(crate::auth::KEY_PARAMETER) {
            data.set(key, value.into());
        }
    }
    for (name, value) in request.route_values {
        data.set(name, value.clone().map_or(Value::Null, Value::from));
    }
    if !data.contains("Query") {
        let query: Map<String, Value> = request
            .query
            .last_values()
            .map(|(key, value)| (key.to_owned(), value.into()))
            .collect();
        data.set("Query", query.into());
    }
    if !data.contains("Headers") {
        let headers: Map<String, Value> = head
            .headers
            .keys()
            .map(|name| {
                let joined = head
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                    .collect::<Vec<_>>()
                    .join(",");
                (canonical_header_name(name.as_str()), joined.into())
            })
            .collect();
        data.set("Headers", headers.into());
    }
    data.set(
        "sys",
        json!({
            "MethodName": sys.method_name,
            "UtcNow": dotnet_utc(sys.utc_now),
            "RandGuid": sys.rand_guid,
        }),
    );
    let metadata: Map<String, Value> = data
        .0
        .into_iter()
        .filter(|(name, value)| !value.is_null() && !name.to_lowercase().ends_with("trigger"))
        .map(|(name, value)| {
            let value = match value {
                Value::Object(_) => value,
                other => Value::String(other.to_string()),
            };
            (name, value)
        })
        .collect();
    Value::Object(metadata)
}

/// Binding data: names compare case-insensitively; setting an existing name
/// replaces the value in place and keeps the first spelling (a .NET
/// `Dictionary` with `OrdinalIgnoreCase`).
#[derive(Default)]
struct BindingData(Vec<(String, Value)>);

impl BindingData {
    fn set(&mut self, name: &str, value: Value) {
        match self
            .0
            .iter_mut()
            .find(|(existing, _)| existing.eq_ignore_ascii_case(name))
        {
            Some((_, slot)) => *slot = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|(existing, _)| existing.eq_ignore_ascii_case(name))
    }
}

/// Top-level properties of a JSON object body (Utility.ApplyBindingData):
/// objects as they are, arrays and nulls left out, other values as the
/// strings .NET converts them to.
fn body_properties(body: &str) -> Vec<(String, Value)> {
    let trimmed = body.trim();
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return Vec::new();
    }
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(trimmed) else {
        return Vec::new();
    };
    object
        .into_iter()
        .filter_map(|(name, value)| match value {
            Value::Array(_) | Value::Null => None,
            Value::Object(_) => Some((name, value)),
            scalar => functions_contract::json::scalar(&scalar).map(|text| (name, text.into())),
        })
        .collect()
}

/// `scheme://Host` + path + raw query, as the request arrived.
fn url(head: &Parts) -> String {
    let host = head
        .headers
        .get(header::HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned())
        .or_else(|| head.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let query = match head.uri.query() {
        Some(query) if !query.is_empty() => format!("?{query}"),
        _ => String::new(),
    };
    format!("http://{host}{}{query}", head.uri.path())
}

/// `application/octet-stream` and `multipart/*` bodies are sent as bytes,
/// which Newtonsoft writes as base64 (HttpRequestExtensions.IsMediaTypeOctetOrMultipart).
fn is_binary(head: &Parts) -> bool {
    let Some(content_type) = head.headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let media_type = String::from_utf8_lossy(content_type.as_bytes());
    let media_type = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_lowercase();
    media_type == "application/octet-stream" || media_type.contains("multipart/")
}

/// The body read as UTF-8, a byte order mark dropped (`ReadAsStringAsync`).
fn body_text(body: &Bytes) -> String {
    let text = String::from_utf8_lossy(body);
    text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned()
}

/// `HttpContext.User.Identities` as Newtonsoft serializes them
/// (GetUserIdentitiesAsJArray; a claim's `Subject` is a reference loop and
/// left out). Without `--enable-auth` every caller is authenticated at Admin
/// level, as `func start`'s CliAuthenticationHandler does; an anonymous caller
/// has ASP.NET Core's empty, unauthenticated identity. The exact property
/// set is inferred from the .NET types (UNCONFIRMED against a capture).
fn identities(caller: &Caller) -> Value {
    const CLAIMS: &str = "http://schemas.microsoft.com/2017/07/functions/claims";
    let (authentication_type, claims) = match caller {
        Caller::Anonymous => (Value::Null, Vec::new()),
        Caller::Key { level, key_name } => {
            let mut claims = vec![claim(&format!("{CLAIMS}/authlevel"), level.claim_value())];
            if let Some(key_name) = key_name {
                claims.push(claim(&format!("{CLAIMS}/keyid"), key_name));
            }
            (Value::from("WebJobsAuthLevel"), claims)
        }
    };
    json!([{
        "AuthenticationType": authentication_type,
        "IsAuthenticated": !claims.is_empty(),
        "Actor": null,
        "BootstrapContext": null,
        "Claims": claims,
        "Label": null,
        "Name": null,
        "NameClaimType": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "RoleClaimType": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }])
}

fn claim(kind: &str, value: &str) -> Value {
    json!({
        "Issuer": "LOCAL AUTHORITY",
        "OriginalIssuer": "LOCAL AUTHORITY",
        "Properties": {},
        "Type": kind,
        "Value": value,
        "ValueType": "http://www.w3.org/2001/XMLSchema#string",
    })
}

/// A UTC time as Newtonsoft writes a `DateTime`: up to seven fractional
/// digits, trailing zeros dropped, `Z`.
fn dotnet_utc(time: SystemTime) -> String {
    let text = humantime::format_rfc3339_nanos(time).to_string();
    let Some((seconds, nanos)) = text.trim_end_matches('Z').split_once('.') else {
        return text;
    };
    let ticks = nanos.get(..7).unwrap_or(nanos).trim_end_matches('0');
    if ticks.is_empty() {
        format!("{seconds}Z")
    } else {
        format!("{seconds}.{ticks}Z")
    }
}

/// Header names as ASP.NET Core exposes them: Kestrel's spelling for the
/// headers it knows; others as hyper gives them, lower case (the real host
/// keeps the client's spelling, which hyper does not keep).
pub(crate) fn canonical_header_name(name: &str) -> String {
    const KNOWN: [&str; 52] = [
        "Accept",
        "Accept-Charset",
        "Accept-Encoding",
        "Accept-Language",
        "Access-Control-Request-Headers",
        "Access-Control-Request-Method",
        "Allow",
        "Authorization",
        "baggage",
        "Cache-Control",
        "Connection",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Location",
        "Content-MD5",
        "Content-Range",
        "Content-Type",
        "Cookie",
        "Correlation-Context",
        "Date",
        "Expect",
        "Expires",
        "From",
        "Grpc-Accept-Encoding",
        "Grpc-Encoding",
        "Grpc-Timeout",
        "Host",
        "If-Match",
        "If-Modified-Since",
        "If-None-Match",
        "If-Range",
        "If-Unmodified-Since",
        "Keep-Alive",
        "Last-Modified",
        "Max-Forwards",
        "Origin",
        "Pragma",
        "Proxy-Authorization",
        "Range",
        "Referer",
        "Request-Id",
        "TE",
        "traceparent",
        "tracestate",
        "Trailer",
        "Transfer-Encoding",
        "Translate",
        "Upgrade",
        "Upgrade-Insecure-Requests",
        "User-Agent",
        "Via",
    ];
    KNOWN
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |known| (*known).to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use http::Request;

    use super::*;
    use crate::auth::AuthLevel;

    const NOW_MS: u64 = 1_795_478_400_123;

    fn envelope_for(request: Request<Bytes>, route_values: &RouteValues, caller: &Caller) -> Value {
        let (head, body) = request.into_parts();
        let query = Query::parse(head.uri.query());
        let request = TriggerRequest {
            head: &head,
            body: &body,
            query: &query,
            route_values,
            caller,
        };
        let sys = SystemData {
            method_name: "items",
            utc_now: UNIX_EPOCH + Duration::from_millis(NOW_MS),
            rand_guid: "00000000-0000-4000-8000-000000000000",
        };
        envelope("req", &request, &sys)
    }

    fn admin() -> Caller {
        Caller::Key {
            level: AuthLevel::Admin,
            key_name: None,
        }
    }

    fn sample() -> Value {
        let request = Request::post("/api/items/42?x=1&x=2&code=secret&Name=%C3%A9")
            .header("host", "localhost:7071")
            .header("accept", "*/*")
            .header("x-test", "a")
            .header("x-test", "b")
            .header("content-type", "text/plain")
            .header("content-length", "5")
            .body(Bytes::from("hello"))
            .expect("a request");
        let route_values = vec![
            ("id".to_owned(), Some("42".to_owned())),
            ("tag".to_owned(), None),
        ];
        envelope_for(request, &route_values, &admin())
    }

    #[test]
    fn data_holds_the_request_as_the_host_serializes_it() {
        let envelope = sample();
        let req = &envelope["Data"]["req"];
        assert_eq!(
            req["Url"],
            "http://localhost:7071/api/items/42?x=1&x=2&code=secret&Name=%C3%A9"
        );
        assert_eq!(req["Method"], "POST");
        assert_eq!(
            req["Query"],
            json!({"x": "1,2", "code": "secret", "Name": "é"})
        );
        assert_eq!(req["Headers"]["Host"], json!(["localhost:7071"]));
        assert_eq!(req["Headers"]["Accept"], json!(["*/*"]));
        assert_eq!(req["Headers"]["x-test"], json!(["a", "b"]));
        assert_eq!(req["Headers"]["Content-Type"], json!(["text/plain"]));
        assert_eq!(req["Params"], json!({"id": "42", "tag": null}));
        assert_eq!(req["Body"], "hello");
        let identity = &req["Identities"][0];
        assert_eq!(identity["AuthenticationType"], "WebJobsAuthLevel");
        assert_eq!(identity["IsAuthenticated"], true);
        assert_eq!(identity["Claims"][0]["Value"], "Admin");
        let keys: Vec<_> = req
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "Url",
                "Method",
                "Query",
                "Headers",
                "Params",
                "Identities",
                "Body"
            ]
        );
    }

    #[test]
    fn metadata_double_encodes_scalars() {
        let envelope = sample();
        let metadata = &envelope["Metadata"];
        assert_eq!(metadata["x"], "\"2\"");
        assert_eq!(metadata["Name"], "\"é\"");
        assert_eq!(metadata["id"], "\"42\"");
        assert!(metadata.get("code").is_none(), "code is not binding data");
        assert!(metadata.get("tag").is_none(), "null values are left out");
        assert_eq!(
            metadata["Query"],
            json!({"x": "2", "code": "secret", "Name": "é"})
        );
        assert_eq!(metadata["Headers"]["x-test"], "a,b");
        assert_eq!(metadata["Headers"]["Host"], "localhost:7071");
        assert_eq!(
            metadata["sys"],
            json!({
                "MethodName": "items",
                "UtcNow": "2026-11-24T00:00:00.123Z",
                "RandGuid": "00000000-0000-4000-8000-000000000000"
            })
        );
        let keys: Vec<_> = metadata
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["x", "Name", "id", "Query", "Headers", "sys"]);
    }

    #[test]
    fn json_body_properties_join_the_metadata() {
        let body = r#"{"name": "Atlas", "count": 3, "flag": true, "nested": {"a": 1}, "list": [1], "none": null, "reqTrigger": "x"}"#;
        let request = Request::post("/api/items?name=query")
            .header("content-type", "application/json")
            .header("content-length", body.len().to_string())
            .body(Bytes::from(body))
            .expect("a request");
        let envelope = envelope_for(request, &Vec::new(), &admin());
        let metadata = &envelope["Metadata"];
        // The query parameter replaces the body's value but keeps its place.
        assert_eq!(metadata["name"], "\"query\"");
        assert_eq!(metadata["count"], "\"3\"");
        assert_eq!(metadata["flag"], "\"True\"");
        assert_eq!(metadata["nested"], json!({"a": 1}));
        assert!(metadata.get("list").is_none() && metadata.get("none").is_none());
        assert!(metadata.get("reqTrigger").is_none());
        assert_eq!(envelope["Data"]["req"]["Body"], body);
        assert_eq!(envelope["Data"]["req"]["Params"], json!({}));
    }

    #[test]
    fn bodies_are_base64_for_binary_types_and_absent_without_a_length() {
        let binary = Request::post("/api/upload")
            .header("content-type", "application/octet-stream")
            .header("content-length", "3")
            .body(Bytes::from_static(&[0, 159, 255]))
            .expect("a request");
        let envelope = envelope_for(binary, &Vec::new(), &admin());
        assert_eq!(envelope["Data"]["req"]["Body"], "AJ//");

        let multipart = Request::post("/api/upload")
            .header("content-type", "multipart/form-data; boundary=x")
            .header("content-length", "2")
            .body(Bytes::from_static(b"hi"))
            .expect("a request");
        let envelope = envelope_for(multipart, &Vec::new(), &admin());
        assert_eq!(envelope["Data"]["req"]["Body"], "aGk=");

        let chunked = Request::post("/api/upload")
            .header("transfer-encoding", "chunked")
            .body(Bytes::from_static(b"hi"))
            .expect("a request");
        let envelope = envelope_for(chunked, &Vec::new(), &admin());
        assert!(envelope["Data"]["req"].get("Body").is_none());
        let empty = Request::get("/api/x")
            .header("content-length", "0")
            .body(Bytes::new())
            .expect("a request");
        assert!(
            envelope_for(empty, &Vec::new(), &admin())["Data"]["req"]
                .get("Body")
                .is_none()
        );
    }

    #[test]
    fn identities_follow_the_caller() {
        let anonymous = identities(&Caller::Anonymous);
        assert_eq!(anonymous[0]["IsAuthenticated"], false);
        assert_eq!(anonymous[0]["AuthenticationType"], Value::Null);
        assert_eq!(anonymous[0]["Claims"], json!([]));
        let keyed = identities(&Caller::Key {
            level: AuthLevel::Function,
            key_name: Some("default".to_owned()),
        });
        let claims = &keyed[0]["Claims"];
        assert_eq!(claims[0]["Value"], "Function");
        assert_eq!(
            claims[1]["Type"],
            "http://schemas.microsoft.com/2017/07/functions/claims/keyid"
        );
        assert_eq!(claims[1]["Value"], "default");
    }

    #[test]
    fn times_are_written_as_newtonsoft_writes_dates() {
        let at = |nanos| {
            dotnet_utc(
                UNIX_EPOCH + Duration::from_secs(1_795_478_400) + Duration::from_nanos(nanos),
            )
        };
        assert_eq!(at(0), "2026-11-24T00:00:00Z");
        assert_eq!(at(123_456_789), "2026-11-24T00:00:00.1234567Z");
        assert_eq!(at(500_000_000), "2026-11-24T00:00:00.5Z");
    }
}
