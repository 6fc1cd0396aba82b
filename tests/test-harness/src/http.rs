//! A small HTTP/1.1 client over loopback, one connection per request, with
//! full control of what is sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame};
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
        self.problem(status, correlation_id)
            .unwrap_or_else(|mismatch| panic!("{mismatch}"))
    }

    /// The RFC 9457 problem with this status and correlation id, or what is
    /// wrong with it (for callers that count failures instead of panicking).
    pub fn problem(
        &self,
        status: u16,
        correlation_id: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        let body = String::from_utf8_lossy(&self.body);
        if self.status != status {
            return Err(format!(
                "status {} instead of {status}: {body:?}",
                self.status
            ));
        }
        let content_type = self.header("content-type");
        if content_type != Some("application/problem+json") {
            return Err(format!(
                "content-type {content_type:?} of a {status} problem"
            ));
        }
        let cache_control = self.header("cache-control");
        if cache_control != Some("no-store") {
            return Err(format!(
                "cache-control {cache_control:?} of a {status} problem"
            ));
        }
        let problem: serde_json::Value = serde_json::from_slice(&self.body)
            .map_err(|e| format!("problem body is not JSON ({e}): {body:?}"))?;
        if problem["status"] != status {
            return Err(format!("problem status mismatch: {body:?}"));
        }
        if !(problem["type"].is_string()
            && problem["title"].is_string()
            && problem["detail"].is_string())
        {
            return Err(format!("problem lacks type, title or detail: {body:?}"));
        }
        let Some(header_id) = self.header("x-correlation-id") else {
            return Err(format!("a {status} problem without x-correlation-id"));
        };
        if problem["correlation_id"] != header_id {
            return Err(format!(
                "correlation id {header_id:?} in the header but not in the body: {body:?}"
            ));
        }
        if let Some(expected) = correlation_id
            && header_id != expected
        {
            return Err(format!(
                "correlation id {header_id:?} instead of {expected:?}"
            ));
        }
        Ok(problem)
    }
}

/// Sends `request` to `127.0.0.1:port` on a new connection.
pub async fn send(port: u16, request: ::http::Request<Bytes>) -> std::io::Result<Response> {
    send_body(port, request.map(Full::new)).await
}

/// POSTs `chunks` to `path` with chunked transfer coding: no declared length.
pub async fn send_chunked(
    port: u16,
    path: &str,
    chunks: VecDeque<Bytes>,
) -> std::io::Result<Response> {
    let request = ::http::Request::post(path)
        .header("host", "localhost")
        .body(Chunked(chunks))
        .expect("a request");
    send_body(port, request).await
}

/// A body of chunks whose total length is not declared.
struct Chunked(VecDeque<Bytes>);

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

async fn send_body<B>(port: u16, request: ::http::Request<B>) -> std::io::Result<Response>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(port, request))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out"))?
}

async fn exchange<B>(port: u16, request: ::http::Request<B>) -> std::io::Result<Response>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
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

/// What came back for raw bytes: the status line's code, if any, and all bytes
/// read until the server closed the connection or went quiet.
#[derive(Debug)]
pub struct RawReply {
    /// The status code of the first response, when one came.
    pub status: Option<u16>,
    /// Everything read.
    pub bytes: Vec<u8>,
}

impl RawReply {
    /// The bytes as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Writes `bytes` to a new connection, then reads until the server closes it
/// or sends nothing for `quiet`.
pub async fn send_raw(port: u16, bytes: &[u8], quiet: Duration) -> std::io::Result<RawReply> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(bytes).await?;
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match tokio::time::timeout(quiet, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            // A reset after the answer is a close.
            Ok(Err(error))
                if !received.is_empty() || error.kind() == std::io::ErrorKind::ConnectionReset =>
            {
                break;
            }
            Ok(Err(error)) => return Err(error),
        }
    }
    let status = received
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok());
    Ok(RawReply {
        status,
        bytes: received,
    })
}
