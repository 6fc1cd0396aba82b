//! Routing and responses of the catalog API, in plain Rust types so that the
//! same code runs in the component, in native unit tests and natively behind
//! hyper (the benchmark's ceiling).

use crate::{catalog, conditional, json, log, openapi, parse_item_id, problem};

/// Correlation id, set by APIM and always present when the host forwards a request.
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";
/// Name of the gateway that routed the request, set by APIM.
pub const GATEWAY_HEADER: &str = "x-apim-gateway";
/// APIM's cache status for the request (`hit`, `miss`, ...).
pub const CACHE_STATUS_HEADER: &str = "x-apim-cache";
/// `routed_by` when [`GATEWAY_HEADER`] is absent.
pub const DEFAULT_GATEWAY: &str = "azure-api-management";
/// `cache_status` when [`CACHE_STATUS_HEADER`] is absent.
pub const DEFAULT_CACHE_STATUS: &str = "bypass";
/// Freshness of item and document responses. APIM's `cache-store` duration
/// must equal it (checked by the APIM policy tests).
pub const MAX_AGE_SECONDS: u32 = 300;
/// The only method the API serves.
pub const ALLOWED_METHODS: &str = "GET";

const ITEM_PATH_PREFIX: &str = "/api/catalog/";
const HEALTH_PATH: &str = "/api/catalog/health";
const OPENAPI_PATH: &str = "/api/openapi.json";

/// The parts of an HTTP request the API reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Method name, e.g. `GET`.
    pub method: &'a str,
    /// Path without the query string, e.g. `/api/catalog/42`.
    pub path: &'a str,
    /// The request's correlation id (the host always provides one).
    pub correlation_id: &'a str,
    /// Value of [`GATEWAY_HEADER`].
    pub routed_by: Option<&'a str>,
    /// Value of [`CACHE_STATUS_HEADER`].
    pub cache_status: Option<&'a str>,
    /// Value of `If-None-Match`.
    pub if_none_match: Option<&'a str>,
}

/// What the API answers, plus the log line the request produced.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(&'static str, String)>,
    /// Response body; empty for `304`.
    pub body: Vec<u8>,
    /// The request's JSON log line, newline-terminated (see [`log`]).
    pub log_line: Vec<u8>,
}

enum Route<'a> {
    Health,
    OpenApi,
    Item(&'a str),
    Unknown,
}

/// Handles one request as an HTTP server receives it: the path with its query
/// string, headers read through `header`, and, when the request has no
/// [`CORRELATION_ID_HEADER`] (the host always sets one; `wasmtime serve` does
/// not), a new id made of `random_bytes()` in hex. The wasi:http glue and the
/// native benchmark server both serve through this, so they do the same work.
pub fn handle_http(
    method: &str,
    path_with_query: &str,
    header: impl Fn(&str) -> Option<String>,
    random_bytes: impl FnOnce() -> Vec<u8>,
) -> Response {
    let path = path_with_query
        .split_once('?')
        .map_or(path_with_query, |(path, _)| path);
    let correlation_id = header(CORRELATION_ID_HEADER).unwrap_or_else(|| {
        random_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    });
    let routed_by = header(GATEWAY_HEADER);
    let cache_status = header(CACHE_STATUS_HEADER);
    let if_none_match = header("if-none-match");
    handle(&Request {
        method,
        path,
        correlation_id: &correlation_id,
        routed_by: routed_by.as_deref(),
        cache_status: cache_status.as_deref(),
        if_none_match: if_none_match.as_deref(),
    })
}

impl Response {
    /// The `Content-Length` to send: none for a `304`, which has no body.
    pub fn content_length(&self) -> Option<usize> {
        (self.status != 304).then_some(self.body.len())
    }
}

/// Handles one request.
pub fn handle(request: &Request<'_>) -> Response {
    let routed_by = request.routed_by.unwrap_or(DEFAULT_GATEWAY);
    let cache_status = request.cache_status.unwrap_or(DEFAULT_CACHE_STATUS);
    let route = route(request.path);
    let logged_item_id = match route {
        Route::Item(raw_id) => Some(raw_id),
        _ => None,
    };
    let (status, mut headers, body) = match route {
        Route::Unknown => error(404, "No operation of this API matches the path.", request),
        _ if request.method != "GET" => {
            let (status, mut headers, body) = error(
                405,
                &format!(
                    "{} is not allowed here; use {ALLOWED_METHODS}.",
                    request.method
                ),
                request,
            );
            headers.push(("allow", ALLOWED_METHODS.to_owned()));
            (status, headers, body)
        }
        Route::Health => health(),
        Route::OpenApi => (
            200,
            vec![("content-type", "application/json".to_owned()), cacheable()],
            openapi::DOCUMENT.into(),
        ),
        Route::Item(raw_id) => item(raw_id, request, routed_by, cache_status),
    };
    headers.push((CORRELATION_ID_HEADER, request.correlation_id.to_owned()));
    Response {
        status,
        headers,
        body,
        log_line: log::handled_request(
            logged_item_id,
            routed_by,
            request.correlation_id,
            cache_status,
        ),
    }
}

type Parts = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// Matches a path the way the Functions host does before it forwards it:
/// literals compare case-insensitively and one trailing slash is ignored.
fn route(path: &str) -> Route<'_> {
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    if path.eq_ignore_ascii_case(HEALTH_PATH) {
        return Route::Health;
    }
    if path.eq_ignore_ascii_case(OPENAPI_PATH) {
        return Route::OpenApi;
    }
    match path.get(..ITEM_PATH_PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(ITEM_PATH_PREFIX) => {
            let raw_id = &path[ITEM_PATH_PREFIX.len()..];
            if raw_id.is_empty() || raw_id.contains('/') {
                Route::Unknown
            } else {
                Route::Item(raw_id)
            }
        }
        _ => Route::Unknown,
    }
}

fn item(raw_id: &str, request: &Request<'_>, routed_by: &str, cache_status: &str) -> Parts {
    let Some(id) = parse_item_id(raw_id) else {
        let detail = format!("item_id must match {}.", crate::ITEM_ID_PATTERN);
        return error(400, &detail, request);
    };
    let Some(item) = catalog::find(id) else {
        return error(404, &format!("The catalog has no item {id}."), request);
    };
    let headers = vec![("etag", item.etag.to_owned()), cacheable()];
    if request
        .if_none_match
        .is_some_and(|value| conditional::if_none_match_matches(value, item.etag))
    {
        return (304, headers, Vec::new());
    }
    let mut body = Vec::with_capacity(item.json_members.len() + 128);
    body.push(b'{');
    body.extend_from_slice(item.json_members.as_bytes());
    for (name, value) in [
        ("routed_by", routed_by),
        ("correlation_id", request.correlation_id),
        ("cache_status", cache_status),
    ] {
        body.extend_from_slice(format!(r#","{name}":"#).as_bytes());
        json::push_string(&mut body, value);
    }
    body.push(b'}');
    let mut headers = headers;
    headers.insert(0, ("content-type", "application/json".to_owned()));
    (200, headers, body)
}

fn health() -> Parts {
    let body = format!(
        r#"{{"status":"ok","backend":"functions","version":"{}","catalog_version":"{}"}}"#,
        env!("CARGO_PKG_VERSION"),
        catalog::DATA_VERSION
    );
    (
        200,
        vec![("content-type", "application/json".to_owned()), no_store()],
        body.into_bytes(),
    )
}

fn error(status: u16, detail: &str, request: &Request<'_>) -> Parts {
    let body = problem::render(status, detail, request.path, request.correlation_id);
    (
        status,
        vec![
            ("content-type", problem::CONTENT_TYPE.to_owned()),
            no_store(),
        ],
        body,
    )
}

fn cacheable() -> (&'static str, String) {
    (
        "cache-control",
        format!("public, max-age={MAX_AGE_SECONDS}"),
    )
}

fn no_store() -> (&'static str, String) {
    ("cache-control", "no-store".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request<'_> {
        Request {
            method: "GET",
            path,
            correlation_id: "corr-1",
            routed_by: None,
            cache_status: None,
            if_none_match: None,
        }
    }

    #[test]
    fn http_requests_map_query_headers_and_a_missing_correlation_id() {
        let headers = [("x-apim-cache", "hit"), ("x-correlation-id", "c-7")];
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let response = handle_http("GET", "/api/catalog/42?x=1", lookup, || {
            unreachable!("the request has a correlation id")
        });
        assert_eq!(response.status, 200);
        assert_eq!(header(&response, "x-correlation-id"), Some("c-7"));
        assert!(String::from_utf8_lossy(&response.body).contains(r#""cache_status":"hit""#));
        assert_eq!(response.content_length(), Some(response.body.len()));

        let response = handle_http("GET", "/api/catalog/health", |_| None, || vec![0xab, 0x01]);
        assert_eq!(header(&response, "x-correlation-id"), Some("ab01"));
    }

    #[test]
    fn not_modified_has_no_content_length() {
        let etag = header(&handle(&get("/api/catalog/42")), "etag")
            .expect("an ETag")
            .to_owned();
        let response = handle(&Request {
            if_none_match: Some(&etag),
            ..get("/api/catalog/42")
        });
        assert_eq!((response.status, response.content_length()), (304, None));
    }

    fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
        response
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.body).expect("body is JSON")
    }

    #[test]
    fn item_carries_its_fields_and_the_apim_context() {
        let request = Request {
            routed_by: Some("apim-west"),
            cache_status: Some("hit"),
            ..get("/api/catalog/42")
        };
        let response = handle(&request);
        assert_eq!(response.status, 200);
        let body = json(&response);
        assert_eq!(body["item_id"], "42");
        assert!(body["name"].is_string());
        assert_eq!(body["routed_by"], "apim-west");
        assert_eq!(body["correlation_id"], "corr-1");
        assert_eq!(body["cache_status"], "hit");
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        assert_eq!(
            header(&response, "cache-control"),
            Some("public, max-age=300")
        );
        assert_eq!(
            header(&response, "etag"),
            catalog::find(42).map(|item| item.etag)
        );
        assert_eq!(header(&response, "x-correlation-id"), Some("corr-1"));
    }

    #[test]
    fn defaults_apply_without_apim_headers() {
        let body = json(&handle(&get("/api/catalog/42")));
        assert_eq!(body["routed_by"], DEFAULT_GATEWAY);
        assert_eq!(body["cache_status"], DEFAULT_CACHE_STATUS);
    }

    #[test]
    fn header_values_are_escaped_into_valid_json() {
        let request = Request {
            routed_by: Some("a\"b\\c\u{1}"),
            ..get("/api/catalog/42")
        };
        assert_eq!(json(&handle(&request))["routed_by"], "a\"b\\c\u{1}");
    }

    #[test]
    fn matching_if_none_match_gives_304_with_validators_and_no_body() {
        let etag = catalog::find(42).expect("item 42").etag;
        let response = handle(&Request {
            if_none_match: Some(etag),
            ..get("/api/catalog/42")
        });
        assert_eq!(response.status, 304);
        assert!(response.body.is_empty());
        assert_eq!(header(&response, "etag"), Some(etag));
        assert_eq!(
            header(&response, "cache-control"),
            Some("public, max-age=300")
        );
        let stale = handle(&Request {
            if_none_match: Some("\"stale\""),
            ..get("/api/catalog/42")
        });
        assert_eq!(stale.status, 200);
    }

    #[test]
    fn malformed_unknown_and_unrouted_give_problems() {
        for (path, status) in [
            ("/api/catalog/abc", 400),
            ("/api/catalog/042", 400),
            ("/api/catalog/1234567890", 400),
            ("/api/catalog/%34%32", 400),
            ("/api/catalog/13", 404),
            ("/api/catalog/999999999", 404),
            ("/api/catalog/42/extra", 404),
            ("/api/catalog/", 404),
            ("/api/other", 404),
            ("/", 404),
        ] {
            let response = handle(&get(path));
            assert_eq!(response.status, status, "{path}");
            assert_eq!(
                header(&response, "content-type"),
                Some("application/problem+json"),
                "{path}"
            );
            assert_eq!(
                header(&response, "cache-control"),
                Some("no-store"),
                "{path}"
            );
            let problem = json(&response);
            assert_eq!(problem["status"], status, "{path}");
            assert_eq!(problem["correlation_id"], "corr-1", "{path}");
            assert_eq!(problem["instance"], path, "{path}");
        }
    }

    #[test]
    fn other_methods_give_405_with_allow() {
        for method in ["POST", "PUT", "DELETE", "HEAD", "PATCH"] {
            for path in [
                "/api/catalog/42",
                "/api/catalog/health",
                "/api/openapi.json",
            ] {
                let response = handle(&Request {
                    method,
                    ..get(path)
                });
                assert_eq!(response.status, 405, "{method} {path}");
                assert_eq!(header(&response, "allow"), Some("GET"));
                assert_eq!(json(&response)["status"], 405);
            }
        }
    }

    #[test]
    fn routing_is_case_insensitive_and_ignores_one_trailing_slash() {
        assert_eq!(handle(&get("/API/Catalog/42")).status, 200);
        assert_eq!(handle(&get("/api/catalog/42/")).status, 200);
        assert_eq!(handle(&get("/api/catalog/HEALTH")).status, 200);
        assert_eq!(handle(&get("/api/catalog/42//")).status, 404);
    }

    #[test]
    fn health_reports_backend_and_versions() {
        let response = handle(&get("/api/catalog/health"));
        assert_eq!(response.status, 200);
        let body = json(&response);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["backend"], "functions");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(body["catalog_version"], catalog::DATA_VERSION);
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
    }

    #[test]
    fn every_request_logs_one_line_item_id_only_for_items() {
        let item: serde_json::Value =
            serde_json::from_slice(&handle(&get("/api/catalog/abc")).log_line).expect("JSON line");
        assert_eq!(item["item_id"], "abc");
        assert_eq!(item["message"], log::HANDLED_REQUEST);
        let health: serde_json::Value =
            serde_json::from_slice(&handle(&get("/api/catalog/health")).log_line)
                .expect("JSON line");
        assert!(health.get("item_id").is_none());
        assert_eq!(health["correlation_id"], "corr-1");
    }
}
