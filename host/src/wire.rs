//! The wire: what HTTP/1.1 itself requires of a request before the host
//! looks at it, and hyper's own answers to heads it cannot parse.
//!
//! hyper answers a head it cannot parse (bad syntax, conflicting framing,
//! a target over 64 KiB, more than 100 fields or a head over its buffer) by
//! itself, with an empty body, before any handler runs. [`ProblemsForUnparsed`]
//! sits between hyper and the socket and writes those answers as the host's
//! problem+json with a correlation id instead, so that every refusal looks
//! the same to a client and is logged. It also follows the read side far
//! enough to refuse a fragment in a request target, which the `http` crate
//! would silently drop ([`request_lines`]).

mod request_lines;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{StatusCode, Version, header, request};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use self::request_lines::RequestLines;
use crate::failure::{Problem, Rejection};
use crate::problem;

/// RFC 9112 section 3.2: an HTTP/1.1 request carries exactly one `Host`
/// (HTTP/1.0 may omit it).
pub(crate) fn check_host(head: &request::Parts) -> Result<(), Rejection> {
    let hosts = head.headers.get_all(header::HOST).iter().count();
    match (head.version, hosts) {
        (_, 1) | (Version::HTTP_09 | Version::HTTP_10, 0) => Ok(()),
        _ => Err(Rejection::HostHeader),
    }
}

/// A connection's socket whose writes pass through, except hyper's own
/// answer to a head it could not parse, which becomes a problem response;
/// reads pass through with any `#` in a request target made unparsable.
pub(crate) struct ProblemsForUnparsed<S> {
    inner: S,
    max_header_bytes: usize,
    lines: RequestLines,
    /// The problem response being written in place of hyper's answer, how
    /// much of it is written, and the length of hyper's answer.
    replacement: Option<Replacement>,
}

struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    replaces: usize,
}

impl<S> ProblemsForUnparsed<S> {
    /// Wraps a connection's socket; `max_header_bytes` is for the detail of a 431.
    pub(crate) fn new(inner: S, max_header_bytes: usize) -> Self {
        Self {
            inner,
            max_header_bytes,
            lines: RequestLines::default(),
            replacement: None,
        }
    }
}

/// hyper's answer to an unparsable head (`Server::on_error` in
/// `proto/h1/role.rs`): one of three statuses, `connection: close`,
/// `content-length: 0` and its `date`, nothing else. The host's own answers
/// always carry `x-correlation-id`, so they never look like this.
fn hyper_refusal(bytes: &[u8]) -> Option<StatusCode> {
    let rest = bytes.strip_prefix(b"HTTP/1.1 ")?;
    let (status, rest) = [
        (StatusCode::BAD_REQUEST, b"400 Bad Request".as_slice()),
        (StatusCode::URI_TOO_LONG, b"414 URI Too Long"),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            b"431 Request Header Fields Too Large",
        ),
    ]
    .into_iter()
    .find_map(|(status, line)| rest.strip_prefix(line).map(|rest| (status, rest)))?;
    let date = rest.strip_prefix(b"\r\nconnection: close\r\ncontent-length: 0\r\ndate: ")?;
    // An IMF-fixdate is 29 bytes.
    (date.len() == 29 + 4 && date.ends_with(b"\r\n\r\n")).then_some(status)
}

impl<S> ProblemsForUnparsed<S> {
    fn replacement_for(&self, status: StatusCode, replaces: usize) -> Replacement {
        let rejection = match status {
            StatusCode::URI_TOO_LONG => Rejection::UriTooLong,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Rejection::HeadOverParserLimits {
                limit: self.max_header_bytes,
            },
            _ if self.lines.fragment_seen() => Rejection::FragmentInTarget,
            _ => Rejection::Unparsable,
        };
        let correlation_id = crate::context::new_correlation_id();
        let detail = rejection.detail();
        tracing::warn!(
            status = status.as_u16(),
            correlation_id = correlation_id.as_str(),
            "Request refused: {detail}"
        );
        let body = problem::text(status, &detail, "", &correlation_id);
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {}\r\ncache-control: no-store\r\n\
             {}: {correlation_id}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            problem::CONTENT_TYPE,
            crate::context::CORRELATION_ID,
            body.len(),
        );
        Replacement {
            bytes: [head.into_bytes(), body.into_bytes()].concat(),
            written: 0,
            replaces,
        }
    }
}

impl<S: AsyncWrite + Unpin> ProblemsForUnparsed<S> {
    /// Writes the replacement to its end; then hyper's answer counts as written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(replacement) = self.replacement.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while replacement.written < replacement.bytes.len() {
            let rest = &replacement.bytes[replacement.written..];
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            replacement.written += written;
        }
        let replaces = replacement.replaces;
        self.replacement = None;
        Poll::Ready(Ok(replaces))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemsForUnparsed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        self.lines.follow(&mut buf.filled_mut()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemsForUnparsed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_none() {
            match hyper_refusal(buf) {
                Some(status) => self.replacement = Some(self.replacement_for(status, buf.len())),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        self.poll_replacement(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper's answer is a head without a body: one buffer.
        if self.replacement.is_none()
            && let [only] = bufs
            && let Some(status) = hyper_refusal(only)
        {
            self.replacement = Some(self.replacement_for(status, only.len()));
        }
        if self.replacement.is_some() {
            return self.poll_replacement(cx);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn head(version: Version, hosts: &[&str]) -> request::Parts {
        let mut builder = http::Request::builder().version(version).uri("/api/x");
        for host in hosts {
            builder = builder.header(header::HOST, *host);
        }
        builder.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn http_1_1_needs_exactly_one_host() {
        assert!(check_host(&head(Version::HTTP_11, &["a"])).is_ok());
        assert!(check_host(&head(Version::HTTP_10, &[])).is_ok());
        assert!(matches!(
            check_host(&head(Version::HTTP_11, &[])),
            Err(Rejection::HostHeader)
        ));
        assert!(matches!(
            check_host(&head(Version::HTTP_11, &["a", "b"])),
            Err(Rejection::HostHeader)
        ));
    }

    #[test]
    fn only_hypers_exact_refusal_is_recognized() {
        let date = "Wed, 02 Dec 2026 03:27:58 GMT";
        let refusal = |line: &str| {
            format!(
                "HTTP/1.1 {line}\r\nconnection: close\r\ncontent-length: 0\r\ndate: {date}\r\n\r\n"
            )
        };
        assert_eq!(
            hyper_refusal(refusal("414 URI Too Long").as_bytes()),
            Some(StatusCode::URI_TOO_LONG)
        );
        assert_eq!(
            hyper_refusal(refusal("431 Request Header Fields Too Large").as_bytes()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            hyper_refusal(refusal("400 Bad Request").as_bytes()),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(hyper_refusal(refusal("404 Not Found").as_bytes()), None);
        let with_body = format!("{}x", refusal("400 Bad Request"));
        assert_eq!(hyper_refusal(with_body.as_bytes()), None);
        let ours = format!(
            "HTTP/1.1 400 Bad Request\r\nx-correlation-id: c\r\nconnection: close\r\ncontent-length: 0\r\ndate: {date}\r\n\r\n"
        );
        assert_eq!(hyper_refusal(ours.as_bytes()), None);
    }

    #[tokio::test]
    async fn hypers_refusal_is_written_as_a_problem_and_counted_as_written() {
        let (client, server) = tokio::io::duplex(64);
        let mut wire = ProblemsForUnparsed::new(server, 32 << 10);
        let refusal = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 03:27:58 GMT\r\n\r\n";
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut text = String::new();
            client.read_to_string(&mut text).await.map(|_| text)
        });
        let written = wire.write(refusal).await.expect("written");
        assert_eq!(written, refusal.len());
        wire.write_all(b"after").await.expect("passes through");
        wire.shutdown().await.expect("closed");
        drop(wire);
        let text = reader.await.expect("joined").expect("read");
        let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(
            head.contains("content-type: application/problem+json"),
            "{head}"
        );
        assert!(head.contains("x-correlation-id: "), "{head}");
        let body = rest
            .strip_suffix("after")
            .expect("later bytes pass through");
        let problem: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(problem["status"], 414);
        assert_eq!(
            head.split("content-length: ")
                .nth(1)
                .and_then(|l| l.split("\r\n").next()),
            Some(body.len().to_string().as_str())
        );
    }
}
