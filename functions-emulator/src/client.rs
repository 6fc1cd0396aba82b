//! The host's HTTP client to the handler on `http://127.0.0.1:<port>`: the
//! headers the host adds to every invocation request, and one buffered
//! exchange per request (azure-functions-host
//! `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use functions_contract::protocol;
use http::header::{self, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The Functions host version the emulator presents (the release whose
/// source it follows, as `ScriptHost.Version` prints it).
pub(crate) const HOST_VERSION: &str = "4.1037.0.0";
/// `X-Azure-Functions-HostVersion`.
pub(crate) const HOST_VERSION_HEADER: HeaderName =
    HeaderName::from_static(protocol::HOST_VERSION_HEADER);
/// `X-Azure-Functions-InvocationId`.
pub(crate) const INVOCATION_ID_HEADER: HeaderName =
    HeaderName::from_static(protocol::INVOCATION_ID_HEADER);

/// Adds the host's headers as `AddHeaders` does, with `Headers.Add`: after
/// any values a forwarded client already sent under the same name, which
/// .NET then writes on one line joined by `, ` (so a client's invocation id
/// arrives first: `X-Azure-Functions-InvocationId: <client's>, <host's>`);
/// and `Azure-Functions-Host/<version>` appended to `User-Agent` with a space.
pub(crate) fn add_host_headers(headers: &mut HeaderMap, invocation_id: &str) {
    append_on_one_line(headers, HOST_VERSION_HEADER, HOST_VERSION, ", ");
    append_on_one_line(headers, INVOCATION_ID_HEADER, invocation_id, ", ");
    let product = format!("{}/{HOST_VERSION}", protocol::USER_AGENT_PRODUCT);
    append_on_one_line(headers, USER_AGENT, &product, " ");
}

/// `name: <existing values>, <value>` as one header line.
fn append_on_one_line(headers: &mut HeaderMap, name: HeaderName, value: &str, separator: &str) {
    let mut values: Vec<String> = headers
        .get_all(&name)
        .iter()
        .map(|existing| String::from_utf8_lossy(existing.as_bytes()).into_owned())
        .collect();
    values.push(value.to_owned());
    if let Ok(line) = HeaderValue::from_str(&values.join(separator)) {
        headers.insert(name, line);
    }
}

/// Why an exchange with the handler failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// Nothing accepted the connection: the handler is not listening (yet).
    #[error("connecting to the handler: {0}")]
    Connect(std::io::Error),
    /// Connected, but no complete response came back.
    #[error("exchanging with the handler: {0}")]
    Exchange(hyper::Error),
    /// The client's timeout passed.
    #[error("the handler did not answer within {0:?}")]
    Timeout(Duration),
    /// A redirect the emulator cannot follow.
    #[error("{0}")]
    Redirect(String),
}

/// How a request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`, no length: how .NET sends an
    /// `ObjectContent`, whose length it cannot compute beforehand.
    Chunked,
}

/// The host's `HttpClient` to the handler (`DefaultHttpWorkerService`
/// constructor): no cookies; redirects followed unless forwarding is on
/// (up to 50, as .NET's `HttpClientHandler`); a timeout of `functionTimeout`
/// plus a minute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostClient {
    /// Whether 3xx answers are followed.
    pub(crate) follow_redirects: bool,
    /// The client timeout, per exchange.
    pub(crate) timeout: Option<Duration>,
}

/// .NET's `HttpClientHandler.MaxAutomaticRedirections`.
const MAX_REDIRECTS: usize = 50;

impl HostClient {
    /// Sends `request` to `127.0.0.1:port` (on a new connection each time)
    /// and reads the whole response, following redirects when it does.
    pub(crate) async fn send(
        &self,
        port: u16,
        request: Request<Bytes>,
        framing: Framing,
    ) -> Result<Response<Bytes>, SendError> {
        let exchange = async {
            let (mut head, mut body) = request.into_parts();
            let mut port = port;
            for _ in 0..=MAX_REDIRECTS {
                let request = Request::from_parts(head.clone(), body.clone());
                let response = exchange(port, request, framing).await?;
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|value| value.to_str().ok());
                let status = response.status();
                let Some(location) =
                    location.filter(|_| self.follow_redirects && is_redirect(status))
                else {
                    return Ok(response);
                };
                let (target_port, path) = loopback_target(location, port)
                    .ok_or_else(|| SendError::Redirect(format!(
                        "the handler redirected to {location:?}, which the emulator follows only on 127.0.0.1"
                    )))?;
                // 301, 302 and 303 turn a POST into a GET without a body (303 anything but HEAD).
                let rewrite = match status.as_u16() {
                    303 => head.method != Method::HEAD,
                    301 | 302 => head.method == Method::POST,
                    _ => false,
                };
                if rewrite {
                    head.method = Method::GET;
                    body = Bytes::new();
                    head.headers.remove(header::CONTENT_TYPE);
                }
                head.uri = path.parse().map_err(|_| {
                    SendError::Redirect(format!("the handler redirected to {location:?}"))
                })?;
                port = target_port;
            }
            Err(SendError::Redirect(format!(
                "more than {MAX_REDIRECTS} redirects"
            )))
        };
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or(Err(SendError::Timeout(limit))),
            None => exchange.await,
        }
    }
}

fn is_redirect(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 300..=303 | 307 | 308)
}

/// The port and path of a redirect target on loopback: a path, or an
/// absolute `http://127.0.0.1[:port]` or `http://localhost[:port]` URL.
fn loopback_target(location: &str, current_port: u16) -> Option<(u16, String)> {
    if location.starts_with('/') {
        return Some((current_port, location.to_owned()));
    }
    let uri: http::Uri = location.parse().ok()?;
    let host = uri.host()?;
    let loopback = host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost");
    (uri.scheme_str() == Some("http") && loopback).then(|| {
        (
            uri.port_u16().unwrap_or(80),
            uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        )
    })
}

/// A body of one chunk and no declared length, so hyper sends it chunked.
struct OneChunk(Option<Bytes>);

impl hyper::body::Body for OneChunk {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.0
                .take()
                .map(|bytes| Ok(hyper::body::Frame::data(bytes))),
        )
    }
}

async fn exchange(
    port: u16,
    request: Request<Bytes>,
    framing: Framing,
) -> Result<Response<Bytes>, SendError> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(SendError::Connect)?;
    let _ = stream.set_nodelay(true);
    let stream = ReadsOnAfterWritesFail {
        inner: stream,
        writes_failed: false,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Exchange)?;
    let connection = tokio::spawn(connection);
    let (head, body) = request.into_parts();
    let body = match framing {
        Framing::Length => Full::new(body).boxed(),
        Framing::Chunked => OneChunk(Some(body)).boxed(),
    };
    let response = sender
        .send_request(Request::from_parts(head, body))
        .await
        .map_err(SendError::Exchange)?;
    let (head, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(SendError::Exchange)?
        .to_bytes();
    // One request per connection: closing it lets the handler free the socket.
    drop(sender);
    connection.abort();
    Ok(Response::from_parts(head, body))
}

/// A connection whose writes, once one fails, are dropped as if sent, while
/// its reads go on. Why: a handler may answer before it has read the whole
/// request body (a 413 on the declared length) and then close; writing the
/// rest of the body then fails, and hyper would report that failure instead
/// of the answer already on its way. This way hyper reads the answer, or
/// finds the connection closed without one.
struct ReadsOnAfterWritesFail {
    inner: TcpStream,
    writes_failed: bool,
}

impl AsyncRead for ReadsOnAfterWritesFail {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadsOnAfterWritesFail {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.writes_failed {
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Err(_)) => {
                self.writes_failed = true;
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.writes_failed {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.writes_failed {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_append_to_the_user_agent() {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static("curl/8.5.0"));
        add_host_headers(&mut headers, "6d9f0c4e-1b2a-4c3d-8e9f-0a1b2c3d4e5f");
        assert_eq!(
            headers[USER_AGENT],
            format!("curl/8.5.0 Azure-Functions-Host/{HOST_VERSION}").as_str()
        );
        assert_eq!(headers[HOST_VERSION_HEADER], HOST_VERSION);
        assert_eq!(
            headers[INVOCATION_ID_HEADER],
            "6d9f0c4e-1b2a-4c3d-8e9f-0a1b2c3d4e5f"
        );

        let mut chosen = HeaderMap::new();
        chosen.insert(
            INVOCATION_ID_HEADER,
            HeaderValue::from_static("by-the-client"),
        );
        add_host_headers(&mut chosen, "by-the-host");
        assert_eq!(
            chosen[INVOCATION_ID_HEADER], "by-the-client, by-the-host",
            "appended on the client's line, last"
        );

        let mut bare = HeaderMap::new();
        add_host_headers(&mut bare, "id");
        assert_eq!(
            bare[USER_AGENT],
            format!("Azure-Functions-Host/{HOST_VERSION}").as_str()
        );
    }
}
