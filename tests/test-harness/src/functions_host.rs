//! Requests as the Azure Functions host forwards them to a custom handler
//! with `enableForwardingHttpRequest`: same method, the original path and
//! query, every client header (Host included), plus
//! `X-Azure-Functions-HostVersion`, `X-Azure-Functions-InvocationId` and
//! `Azure-Functions-Host/<version>` appended to `User-Agent`
//! (azure-functions-host `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`
//! `ToHttpRequestMessage`, `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`
//! `AddHeaders`).

use bytes::Bytes;
use functions_contract::protocol;

use crate::http::{self, Response};

/// The host version these tests present, as a recent Functions host would.
pub const HOST_VERSION: &str = "4.1037.0.0";

/// A new invocation id, a GUID as the Functions host makes them.
pub fn invocation_id() -> String {
    protocol::new_guid()
}

/// A forwarded request: what a client sent to the Functions host on port 7071.
pub struct Forward {
    method: ::http::Method,
    path_and_query: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Forward {
    /// A `GET` of `path_and_query` (for example `/api/catalog/42?x=1`).
    pub fn get(path_and_query: &str) -> Self {
        Self::new(::http::Method::GET, path_and_query)
    }

    /// Any method.
    pub fn new(method: ::http::Method, path_and_query: &str) -> Self {
        Self {
            method,
            path_and_query: path_and_query.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A client header, as APIM or the caller set it.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A request body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The request as the handler receives it, with a fresh invocation id.
    pub fn into_request(self) -> ::http::Request<Bytes> {
        let mut builder = ::http::Request::builder()
            .method(self.method)
            .uri(self.path_and_query);
        let mut user_agent = None;
        let mut has_host = false;
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("user-agent") {
                user_agent = Some(value.clone());
                continue;
            }
            has_host |= name.eq_ignore_ascii_case("host");
            builder = builder.header(name, value);
        }
        if !has_host {
            builder = builder.header("host", "localhost:7071");
        }
        let product = format!("{}/{HOST_VERSION}", protocol::USER_AGENT_PRODUCT);
        let user_agent = match user_agent {
            Some(agent) => format!("{agent} {product}"),
            None => product,
        };
        builder
            .header("user-agent", user_agent)
            .header(protocol::HOST_VERSION_HEADER, HOST_VERSION)
            .header(protocol::INVOCATION_ID_HEADER, invocation_id())
            .body(self.body)
            .expect("a valid request")
    }

    /// Sends the request to a handler listening on `port`.
    pub async fn send(self, port: u16) -> Response {
        let description = format!("{} {}", self.method, self.path_and_query);
        http::send(port, self.into_request())
            .await
            .unwrap_or_else(|e| panic!("{description}: {e}"))
    }
}
