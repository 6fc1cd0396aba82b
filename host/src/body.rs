//! Bodies: the one response body type of the host, and the adapters a
//! request's bodies pass through: [`RequestBody`] and [`LimitedBody`] on the
//! way in (read to the end even when unused; the size limit, and whether a
//! body ran over it) and [`cut_off_visibly`] on the way out (a guest that
//! fails after its head never leaves a response that looks complete).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::oneshot;
pub(crate) use wasmtime_wasi_http::p2::body::HyperOutgoingBody as HostBody;

use crate::limits::{Finishing, FinishingInstance};

/// A complete body from bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> HostBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The body of a request as hyper reads it. When the host answers without
/// reading all of it (a refusal on the declared length, a guest that never
/// reads its body, a body cut at the limit), dropping it keeps reading in the
/// background, up to [`DRAIN_BYTES`] or [`DRAIN_TIME`]. Why: hyper closes the
/// connection after such an answer, and closing a socket with unread bytes
/// sends a TCP reset that can destroy the answer before the client reads it
/// (the lingering close of RFC 9112 section 9.6).
pub(crate) struct RequestBody(Option<Incoming>);

/// How much of an unused request body is read before the connection closes.
pub(crate) const DRAIN_BYTES: usize = 32 << 20;
/// How long an unused request body is read before the connection closes.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(5);

impl RequestBody {
    pub(crate) fn new(body: Incoming) -> Self {
        Self(Some(body))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.0.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(body) = self.0.take().filter(|body| !body.is_end_stream()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(body));
        }
    }
}

/// Reads and discards `body`, within the drain bounds.
async fn drain(mut body: Incoming) {
    let read = async {
        let mut left = DRAIN_BYTES;
        while let Some(Ok(frame)) = body.frame().await {
            let length = frame.data_ref().map_or(0, Bytes::len);
            match left.checked_sub(length) {
                Some(rest) => left = rest,
                None => return,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

/// A request body that stops with `HTTP-request-body-size` once it has
/// carried more than the limit, and says so through its [`BodyReport`], so
/// the host can answer `413` even for a chunked body whose size was not
/// declared.
pub(crate) struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    limit: u64,
    report: BodyReport,
}

/// What became of a request body handed to a guest, readable after: whether
/// it ran over its limit, and whether it failed at all (over the limit, or a
/// connection or framing error), which retires a reused instance.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyReport(Arc<[AtomicBool; 2]>);

const TOO_LARGE: usize = 0;
const FAILED: usize = 1;

impl BodyReport {
    /// Whether the body carried more than its limit.
    pub(crate) fn too_large(&self) -> bool {
        self.0[TOO_LARGE].load(Ordering::Acquire)
    }

    /// Whether the body ended in an error instead of at its end.
    pub(crate) fn failed(&self) -> bool {
        self.0[FAILED].load(Ordering::Acquire)
    }

    fn set(&self, flag: usize) {
        self.0[flag].store(true, Ordering::Release);
    }
}

impl<B> LimitedBody<B> {
    /// Wraps `inner`, limited to `limit` bytes, and the report of what
    /// became of it.
    pub(crate) fn new(inner: B, limit: u64) -> (Self, BodyReport) {
        let report = BodyReport::default();
        let body = Self {
            inner,
            remaining: limit,
            limit,
            report: report.clone(),
        };
        (body, report)
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
            Poll::Ready(Some(Err(error))) => {
                self.report.set(FAILED);
                return Poll::Ready(Some(Err(error.into())));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let length = data.len() as u64;
            if length > self.remaining {
                self.report.set(TOO_LARGE);
                self.report.set(FAILED);
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

/// A guest's streamed body that ends in an error, not cleanly, when the
/// guest failed after sending the head (`guest_failed`, set before the
/// guest's store is dropped, which is what ends the body), so a chunked
/// response is never mistaken for a complete one. Before failing it is
/// pending once: hyper sends what it holds (the head and the body so far)
/// and then closes the connection, instead of dropping those bytes and
/// leaving the client an empty reply.
///
/// `watch`, if given, is told when the body is complete ([`EndWatch`]).
pub(crate) fn cut_off_visibly(
    body: HostBody,
    content_length: Option<u64>,
    guest_failed: Arc<AtomicBool>,
    watch: Option<EndWatch>,
) -> HostBody {
    CutOffVisibly {
        inner: body,
        unsent: content_length,
        guest_failed,
        failure: None,
        watch,
    }
    .boxed_unsync()
}

/// Where a body whose instance outlives its response (a 0.3 guest's, or a
/// reused one's) tells that it is complete: read to its end, or to the
/// `content_length` its head declared (hyper stops there, dropping the body
/// unpolled). With the news goes the instance's mark in [`Finishing`], made
/// here, before the client can have the last bytes, so that its next
/// request, if it finds every permit held, knows one is about to be free.
/// Dropped untold if the body fails or is dropped short.
pub(crate) struct EndWatch {
    pub(crate) ended: oneshot::Sender<FinishingInstance>,
    pub(crate) finishing: Finishing,
}

struct CutOffVisibly {
    inner: HostBody,
    /// Bytes of the declared length not sent yet.
    unsent: Option<u64>,
    guest_failed: Arc<AtomicBool>,
    failure: Option<wasmtime_wasi_http::Error>,
    watch: Option<EndWatch>,
}

impl CutOffVisibly {
    fn tell_ended(&mut self) {
        if let Some(watch) = self.watch.take() {
            // Unread (the instance already gone), the mark is dropped at once.
            let _ = watch.ended.send(watch.finishing.start());
        }
    }
}

impl Body for CutOffVisibly {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(failure) = self.failure.take() {
            return Poll::Ready(Some(Err(failure)));
        }
        let failure = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(failure))) => failure,
            Poll::Ready(None) if self.guest_failed.load(Ordering::Acquire) => {
                wasmtime_wasi_http::Error::HttpResponseIncomplete
            }
            Poll::Ready(None) => {
                self.tell_ended();
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(unsent), Some(data)) = (self.unsent.as_mut(), frame.data_ref()) {
                    *unsent = unsent.saturating_sub(data.len() as u64);
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Pending => return Poll::Pending,
        };
        self.watch = None;
        // Pending once: hyper flushes its buffer, then polls again.
        self.failure = Some(failure);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.failure.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CutOffVisibly {
    fn drop(&mut self) {
        // hyper stops polling at `is_end_stream` or at the declared length.
        if self.failure.is_none()
            && !self.guest_failed.load(Ordering::Acquire)
            && (self.inner.is_end_stream() || self.unsent == Some(0))
        {
            self.tell_ended();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_over_its_limit_fails_and_says_so() {
        let (body, report) = LimitedBody::new(Full::new(Bytes::from_static(b"12345")), 4);
        assert!(!report.too_large());
        assert!(body.collect().await.is_err());
        assert!(report.too_large() && report.failed());

        let (body, report) = LimitedBody::new(Full::new(Bytes::from_static(b"1234")), 4);
        let collected = body.collect().await.expect("within the limit");
        assert_eq!(collected.to_bytes().as_ref(), b"1234");
        assert!(!report.too_large() && !report.failed());
    }

    /// A watched body, read to its declared length, hands over the
    /// instance's mark in `finishing`, made before hyper could have the
    /// last bytes; a body dropped short hands over nothing.
    #[tokio::test]
    async fn a_complete_body_marks_its_instance_finishing() {
        for (content_length, complete) in [(Some(3), true), (None, true), (Some(3), false)] {
            let finishing = Finishing::default();
            let (ended, mut told) = oneshot::channel();
            let body = cut_off_visibly(
                full(&b"abc"[..]),
                content_length,
                Arc::new(AtomicBool::new(false)),
                Some(EndWatch {
                    ended,
                    finishing: finishing.clone(),
                }),
            );
            if complete {
                let _ = body.collect().await;
            } else {
                drop(body);
            }
            let mark = told.try_recv().ok();
            assert_eq!(mark.is_some(), complete, "{content_length:?}");
            assert_eq!(finishing.any(), complete);
            drop(mark);
            assert!(!finishing.any());
        }
    }
}
