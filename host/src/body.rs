//! The one response body type of the host: the guest's streamed body and the
//! host's own small bodies share it, so every path returns the same type.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
pub use wasmtime_wasi_http::p2::body::HyperOutgoingBody as HostBody;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> HostBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A guest's streamed body that ends in an error, not cleanly, when the
/// guest failed after sending the head (`guest_failed`, set before the
/// guest's store is dropped, which is what ends the body), so a chunked
/// response is never mistaken for a complete one. Before failing it is
/// pending once: hyper sends what it holds (the head and the body so far)
/// and then closes the connection, instead of dropping those bytes and
/// leaving the client an empty reply.
pub fn cut_off_visibly(body: HostBody, guest_failed: Arc<AtomicBool>) -> HostBody {
    CutOffVisibly {
        inner: body,
        guest_failed,
        failure: None,
    }
    .boxed_unsync()
}

struct CutOffVisibly {
    inner: HostBody,
    guest_failed: Arc<AtomicBool>,
    failure: Option<wasmtime_wasi_http::Error>,
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
            other => return other,
        };
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
