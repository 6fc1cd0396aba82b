//! Forward mode (`enableForwardingHttpRequest`): the client's request goes
//! to the handler as it came, and the handler's response goes back as it is
//! (azure-functions-host at 89dc438: `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`
//! `ToHttpRequestMessage`, `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`
//! `ProcessHttpInAndOutInvocationRequest`).
//!
//! What the host changes on the way in: the query is rebuilt from the parsed
//! collection; content headers other than `Content-Type`/`Content-Length` are
//! dropped (.NET keeps them off request headers) and those two travel only
//! with a body, which is sent only when `Content-Length` > 0; the host's
//! headers are added. Hop-by-hop headers are the client connection's, not the
//! forwarded request's, so they are not copied either way.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use http_body_util::Full;

use crate::client;
use crate::url::Query;

/// Content headers .NET's `HttpRequestMessage.Headers` refuses
/// (`TryAddWithoutValidation` fails, so the host drops them).
const CONTENT_HEADERS: [HeaderName; 11] = [
    header::ALLOW,
    HeaderName::from_static("content-disposition"),
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LENGTH,
    header::CONTENT_LOCATION,
    HeaderName::from_static("content-md5"),
    header::CONTENT_RANGE,
    header::CONTENT_TYPE,
    header::EXPIRES,
    header::LAST_MODIFIED,
];

/// Headers about one connection, which a proxy neither forwards nor relays.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The request the handler gets for `head` and `body` (`path` is the
/// original path, or `/{FunctionName}` for the legacy `httpWorker` section).
pub(crate) fn request(
    head: &Parts,
    body: Bytes,
    path: &str,
    query: &Query,
    invocation_id: &str,
    handler_port: u16,
) -> Request<Bytes> {
    let mut headers = HeaderMap::with_capacity(head.headers.len() + 3);
    for (name, value) in &head.headers {
        if !CONTENT_HEADERS.contains(name) && !HOP_BY_HOP.contains(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if !headers.contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(&format!("127.0.0.1:{handler_port}"))
    {
        headers.insert(header::HOST, host);
    }
    let body = if declared_length(&head.headers) > 0 {
        if let Some(content_type) = head.headers.get(header::CONTENT_TYPE) {
            headers.insert(header::CONTENT_TYPE, content_type.clone());
        }
        body
    } else {
        Bytes::new()
    };
    client::add_host_headers(&mut headers, invocation_id);
    let mut request = Request::new(body);
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = format!("{path}{}", query.rebuild())
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    *request.headers_mut() = headers;
    request
}

/// The client's response: the handler's status, headers and body.
pub(crate) fn response(handler_response: Response<Bytes>) -> Response<Full<Bytes>> {
    let (mut head, body) = handler_response.into_parts();
    for name in &HOP_BY_HOP {
        head.headers.remove(name);
    }
    // The body is buffered, so hyper computes its length again; an empty body
    // keeps the handler's length, which is that of the entity a HEAD request
    // asked about.
    if !body.is_empty() {
        head.headers.remove(header::CONTENT_LENGTH);
    }
    Response::from_parts(head, Full::new(body))
}

/// `Content-Length` as declared (0 when absent or not a number).
pub(crate) fn declared_length(headers: &HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn forwards_path_rebuilt_query_headers_and_host_headers() {
        let head = head(
            "GET",
            "/api/catalog/42?b=1&code=k&B=2",
            &[
                ("host", "localhost:7071"),
                ("x-functions-key", "k"),
                ("x-correlation-id", "6d9f"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
                ("user-agent", "curl/8.5.0"),
                ("content-language", "en"),
                ("connection", "keep-alive"),
            ],
        );
        let query = Query::parse(head.uri.query());
        let forwarded = request(&head, Bytes::new(), head.uri.path(), &query, "inv-1", 9);
        assert_eq!(forwarded.method(), http::Method::GET);
        assert_eq!(forwarded.uri(), "/api/catalog/42?b=1%2C2&code=k");
        let headers = forwarded.headers();
        assert_eq!(headers["host"], "localhost:7071");
        assert_eq!(headers["x-functions-key"], "k");
        assert_eq!(headers["x-correlation-id"], "6d9f");
        assert!(headers.contains_key("traceparent"));
        assert_eq!(headers["x-azure-functions-invocationid"], "inv-1");
        assert_eq!(
            headers["x-azure-functions-hostversion"],
            client::HOST_VERSION
        );
        assert_eq!(
            headers["user-agent"],
            format!("curl/8.5.0 Azure-Functions-Host/{}", client::HOST_VERSION).as_str()
        );
        assert!(!headers.contains_key("content-language"));
        assert!(!headers.contains_key("connection"));
        assert!(!headers.contains_key("content-length"));
    }

    #[test]
    fn the_body_and_its_type_travel_only_with_a_declared_length() {
        let with_body = head(
            "POST",
            "/api/x",
            &[("content-type", "text/plain"), ("content-length", "5")],
        );
        let forwarded = request(
            &with_body,
            Bytes::from("hello"),
            "/api/x",
            &Query::default(),
            "i",
            9,
        );
        assert_eq!(forwarded.headers()["content-type"], "text/plain");
        assert_eq!(forwarded.headers()["host"], "127.0.0.1:9");

        let chunked = head(
            "POST",
            "/api/x",
            &[
                ("content-type", "text/plain"),
                ("transfer-encoding", "chunked"),
            ],
        );
        let forwarded = request(
            &chunked,
            Bytes::from("lost"),
            "/Fn",
            &Query::default(),
            "i",
            9,
        );
        assert!(!forwarded.headers().contains_key("content-type"));
        assert!(!forwarded.headers().contains_key("transfer-encoding"));
        assert_eq!(forwarded.uri(), "/Fn");
        assert!(forwarded.body().is_empty());
    }

    #[test]
    fn the_response_is_relayed_without_hop_by_hop_headers() {
        let handler = Response::builder()
            .status(304)
            .header("etag", "\"abc\"")
            .header("x-correlation-id", "6d9f")
            .header("connection", "close")
            .header("content-length", "0")
            .body(Bytes::new())
            .expect("a response");
        let relayed = response(handler);
        assert_eq!(relayed.status(), 304);
        assert_eq!(relayed.headers()["etag"], "\"abc\"");
        assert_eq!(relayed.headers()["x-correlation-id"], "6d9f");
        assert!(!relayed.headers().contains_key("connection"));
    }
}
