//! A small HTTP/1.1 client over loopback, one connection per request, with
//! full control of what is sent.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long any one request may take in a test before it fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A received response, body read in full.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: ::http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Response {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts an RFC 9457 problem with this status and correlation id, and returns it.
    pub fn assert_problem(&self, status: u16, correlation_id: Option<&str>) -> serde_json::Value {
        assert_eq!(
            self.status,
            status,
            "status of {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
        let problem = self.json();
        assert_eq!(problem["status"], status);
        assert!(
            problem["type"].is_string()
                && problem["title"].is_string()
                && problem["detail"].is_string()
        );
        let header_id = self
            .header("x-correlation-id")
            .expect("problems carry x-correlation-id");
        assert_eq!(problem["correlation_id"], header_id);
        if let Some(expected) = correlation_id {
            assert_eq!(header_id, expected);
        }
        problem
    }
}

/// Sends `request` to `127.0.0.1:port` on a new connection.
pub async fn send(port: u16, request: ::http::Request<Bytes>) -> std::io::Result<Response> {
    tokio::time::timeout(REQUEST_TIMEOUT, send_inner(port, request))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out"))?
}

async fn send_inner(port: u16, request: ::http::Request<Bytes>) -> std::io::Result<Response> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request.map(Full::new))
        .await
        .map_err(std::io::Error::other)?;
    let (head, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(Response {
        status: head.status.as_u16(),
        headers: head.headers,
        body,
    })
}
