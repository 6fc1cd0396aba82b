//! The one response body type of the host: the guest's streamed body and the
//! host's own small bodies share it, so every path returns the same type.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
pub use wasmtime_wasi_http::p2::body::HyperOutgoingBody as HostBody;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> HostBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
