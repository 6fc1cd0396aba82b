//! Limits: what one request may cost the host, each set by a `serve` option.
//!
//! They are checked as the request goes: the head (URI, headers, declared
//! body size) before anything runs; admission (a free instance slot) before an
//! instance is made; the body while it streams; the deadline and the memory
//! cap while the guest runs ([`crate::dispatch`], [`crate::sandbox`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, header, request};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Longest request target (path and query) accepted; Azure's front end stops at 4 KiB.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Seconds a client is told to wait after a `503`.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The limits one host process applies.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest a guest may run for one request, response body included.
    pub request_timeout: Duration,
    /// Guest instances alive at once; past it requests get `503`.
    pub max_instances: u32,
    /// Largest linear memory of one instance.
    pub max_memory_bytes: usize,
    /// Largest request body.
    pub max_request_body_bytes: u64,
    /// Largest request header section (names, values and separators).
    pub max_header_bytes: usize,
    /// Longest a client may take to send its request head.
    pub header_read_timeout: Duration,
}

/// Why a request was refused before, or instead of, its guest's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The request target is longer than [`MAX_URI_BYTES`].
    UriTooLong,
    /// The header section is larger than the limit.
    HeadersTooLarge,
    /// The body is, or says it is, larger than the limit.
    BodyTooLarge,
    /// Every instance slot is in use.
    Overloaded,
    /// No component is routed at the request's path.
    NoRoute,
}

impl Rejection {
    /// The status this rejection is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::UriTooLong => StatusCode::URI_TOO_LONG,
            Rejection::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Rejection::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::NoRoute => StatusCode::NOT_FOUND,
        }
    }

    /// What the caller is told.
    pub fn detail(self, limits: &Limits) -> String {
        match self {
            Rejection::UriTooLong => {
                format!("The request target is longer than {MAX_URI_BYTES} bytes.")
            }
            Rejection::HeadersTooLarge => {
                format!(
                    "The request headers are larger than {} bytes.",
                    limits.max_header_bytes
                )
            }
            Rejection::BodyTooLarge => {
                format!(
                    "The request body is larger than {} bytes.",
                    limits.max_request_body_bytes
                )
            }
            Rejection::Overloaded => format!(
                "All {} instances are busy; retry in {RETRY_AFTER_SECONDS} second(s).",
                limits.max_instances
            ),
            Rejection::NoRoute => "No component serves this path.".to_owned(),
        }
    }
}

/// Checks the request head against the limits, before anything else runs.
pub fn check_head(head: &request::Parts, limits: &Limits) -> Result<(), Rejection> {
    let target_len = head
        .uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target_len > MAX_URI_BYTES {
        return Err(Rejection::UriTooLong);
    }
    // As on the wire: `name: value\r\n`.
    let header_bytes: usize = head
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(Rejection::HeadersTooLarge);
    }
    let declared_length = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok());
    if declared_length
        .and_then(|length| length.parse::<u64>().ok())
        .is_some_and(|length| length > limits.max_request_body_bytes)
    {
        return Err(Rejection::BodyTooLarge);
    }
    Ok(())
}

/// The gate in front of instance creation. It has as many permits as the
/// pooling allocator has slots for requests, and a permit is held until the
/// request's instance is dropped, so the pool never runs dry: past the bound
/// a request gets `503` at once instead of waiting or failing inside wasmtime.
#[derive(Debug, Clone)]
pub struct Admission(Arc<Semaphore>);

impl Admission {
    /// A gate for `max_instances` instances.
    pub fn new(max_instances: u32) -> Self {
        Self(Arc::new(Semaphore::new(max_instances as usize)))
    }

    /// A permit for one instance, or [`Rejection::Overloaded`].
    pub fn try_admit(&self) -> Result<OwnedSemaphorePermit, Rejection> {
        self.0
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejection::Overloaded)
    }

    /// Instances in use now.
    pub fn in_use(&self, max_instances: u32) -> usize {
        max_instances as usize - self.0.available_permits()
    }
}

/// A request body that stops with `HTTP-request-body-size` once it has
/// carried more than the limit, and remembers that it did, so the host can
/// answer `413` even for a chunked body whose size was not declared.
pub struct LimitedBody<B = Incoming> {
    inner: B,
    remaining: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl<B> LimitedBody<B> {
    /// Wraps `inner`; `exceeded` turns true if it goes past `limit` bytes.
    pub fn new(inner: B, limit: u64, exceeded: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            remaining: limit,
            limit,
            exceeded,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let length = data.len() as u64;
            if length > self.remaining {
                self.exceeded.store(true, Ordering::Release);
                self.remaining = 0;
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(
                    Some(self.limit),
                ))));
            }
            self.remaining -= length;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            request_timeout: Duration::from_secs(30),
            max_instances: 2,
            max_memory_bytes: 1 << 20,
            max_request_body_bytes: 1000,
            max_header_bytes: 200,
            header_read_timeout: Duration::from_secs(10),
        }
    }

    fn head(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn head_checks() {
        let limits = limits();
        assert_eq!(
            check_head(&head("/ok", &[("content-length", "1000")]), &limits),
            Ok(())
        );
        let long_uri = format!("/{}", "a".repeat(MAX_URI_BYTES));
        assert_eq!(
            check_head(&head(&long_uri, &[]), &limits),
            Err(Rejection::UriTooLong)
        );
        let big_value = "v".repeat(200);
        assert_eq!(
            check_head(&head("/", &[("x-big", &big_value)]), &limits),
            Err(Rejection::HeadersTooLarge)
        );
        assert_eq!(
            check_head(&head("/", &[("content-length", "1001")]), &limits),
            Err(Rejection::BodyTooLarge)
        );
    }

    #[test]
    fn admission_is_bounded_and_permits_return() {
        let admission = Admission::new(2);
        let first = admission.try_admit().expect("a first slot");
        let _second = admission.try_admit().expect("a second slot");
        assert_eq!(admission.try_admit().err(), Some(Rejection::Overloaded));
        assert_eq!(admission.in_use(2), 2);
        drop(first);
        assert!(admission.try_admit().is_ok());
    }
}
