//! Trace ids for requests that arrive without a `traceparent`: the trace id
//! the correlation rules already chose (a `Request-Id` root, the Functions
//! invocation id, or the id the host made), so that a request's correlation
//! id and its trace id are one value wherever it can be one.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

thread_local! {
    /// The trace id the next root span started on this thread takes.
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// The SDK's random ids, except a root span's trace id chosen by [`with_trace_id`].
#[derive(Debug, Default)]
pub(super) struct CorrelatedIds(RandomIdGenerator);

impl IdGenerator for CorrelatedIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .take()
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

/// Runs `start` (which starts one root span, synchronously) with the trace id
/// `trace_id`. The SDK takes a root span's trace id only from its id
/// generator, and a span starts on the calling thread: a thread-local hands
/// it over without a lock.
pub(super) fn with_trace_id<T>(trace_id: Option<TraceId>, start: impl FnOnce() -> T) -> T {
    NEXT_TRACE_ID.set(trace_id);
    let started = start();
    NEXT_TRACE_ID.set(None);
    started
}

/// A correlation id read as a trace id: 32 hex digits, or a GUID (the
/// Functions invocation id, APIM's `context.RequestId`), not all zero.
pub(super) fn trace_id_of(correlation_id: &str) -> Option<TraceId> {
    let hex: String = match correlation_id.len() {
        32 => correlation_id.to_owned(),
        36 if correlation_id
            .bytes()
            .enumerate()
            .all(|(i, b)| matches!(i, 8 | 13 | 18 | 23) == (b == b'-')) =>
        {
            correlation_id.replace('-', "")
        }
        _ => return None,
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    TraceId::from_hex(&hex.to_ascii_lowercase())
        .ok()
        .filter(|id| *id != TraceId::INVALID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_that_are_trace_ids() {
        assert_eq!(
            trace_id_of("4bf92f3577b34da6a3ce929d0e0e4736").map(|id| id.to_string()),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned())
        );
        assert_eq!(
            trace_id_of("7D2B6C1E-0A4F-4E59-9C1B-3F7A2E8D9B10").map(|id| id.to_string()),
            Some("7d2b6c1e0a4f4e599c1b3f7a2e8d9b10".to_owned())
        );
        for not_one in [
            "",
            "6d9f",
            "00000000000000000000000000000000",
            "zz2b6c1e0a4f4e599c1b3f7a2e8d9b10",
            "7d2b6c1e0a4f-4e59-9c1b-3f7a2e8d9b10",
            "7d2b6c1e-0a4f-4e59-9c1b+3f7a2e8d9b10",
        ] {
            assert_eq!(trace_id_of(not_one), None, "{not_one}");
        }
    }

    #[test]
    fn a_chosen_trace_id_is_taken_once() {
        let ids = CorrelatedIds::default();
        let chosen = trace_id_of("4bf92f3577b34da6a3ce929d0e0e4736");
        let (first, second) = with_trace_id(chosen, || (ids.new_trace_id(), ids.new_trace_id()));
        assert_eq!(Some(first), chosen);
        assert_ne!(Some(second), chosen, "the next root gets a random id");
        assert_ne!(with_trace_id(None, || ids.new_trace_id()), TraceId::INVALID);
    }
}
