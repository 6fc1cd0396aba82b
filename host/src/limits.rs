//! Limits: what one request may cost the host, each set by a `serve` option.
//!
//! They are checked as the request goes: the head (URI, headers, declared
//! body size) before anything runs; admission (a free instance slot) before an
//! instance is made; the body while it streams; the deadline and the memory
//! cap while the guest runs ([`crate::dispatch`], [`crate::sandbox`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{header, request};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::failure::Rejection;

/// Longest request target (path and query) accepted; Azure's front end stops at 4 KiB.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields hyper parses in one head (its default), as Kestrel's
/// `MaxRequestHeaderCount`, in front of the handler in Azure, allows.
pub(crate) const MAX_HEADER_FIELDS: usize = 100;

/// The limits one host process applies.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Longest a guest may run for one request, response body included.
    pub(crate) request_timeout: Duration,
    /// Guest instances alive at once; past it requests get `503`.
    pub(crate) max_instances: u32,
    /// Largest linear memory of one instance.
    pub(crate) max_memory_bytes: usize,
    /// Largest request body.
    pub(crate) max_request_body_bytes: u64,
    /// Largest request header section (names, values and separators).
    pub(crate) max_header_bytes: usize,
    /// Longest a client may take to send its request head.
    pub(crate) header_read_timeout: Duration,
    /// Longest a payload-mode envelope may take to arrive in full.
    pub(crate) body_read_timeout: Duration,
}

/// Checks the request head against the limits, before anything else runs.
pub(crate) fn check_head(head: &request::Parts, limits: &Limits) -> Result<(), Rejection> {
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
        return Err(Rejection::HeadersTooLarge {
            limit: limits.max_header_bytes,
        });
    }
    let declared_length = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok());
    if declared_length
        .and_then(|length| length.parse::<u64>().ok())
        .is_some_and(|length| length > limits.max_request_body_bytes)
    {
        return Err(Rejection::BodyTooLarge {
            limit: limits.max_request_body_bytes,
        });
    }
    Ok(())
}

/// How long a request waits for an instance when every permit is held
/// before it gets `503`. A permit is held until the instance is gone, which
/// can be a moment after its client has read the whole response (a 0.3
/// guest's store lives until its body has ended; a reused instance goes
/// back to its route then), and that client's next request may already be
/// here: without the wait, a closed-loop load of exactly `--max-instances`
/// clients got `503`s. Far too short to queue behind real overload.
pub(crate) const ADMISSION_WAIT: Duration = Duration::from_millis(20);

/// How long past [`ADMISSION_WAIT`] a request goes on waiting while some
/// instance whose response is complete still holds its permit
/// ([`Finishing`]). Such a permit is as good as free: on a busy machine the
/// task that drops a finished 0.3 store (or puts a reused instance back) ran
/// more than 20 ms after the client had read the response and sent its next
/// one, which then got `503` although no instance was serving anybody
/// (bench/RESULTS.md). Bounded all the same.
pub(crate) const FINISHING_WAIT: Duration = Duration::from_secs(1);

/// The instances whose response body is complete but which have not given
/// their permit back yet: a 0.3 guest's store, dropped after its body's end,
/// or a reused instance on its way back to its route.
#[derive(Debug, Clone, Default)]
pub(crate) struct Finishing(Arc<AtomicUsize>);

/// One instance counted in [`Finishing`] until this is dropped, which is
/// after its store and permit are gone.
#[derive(Debug)]
pub(crate) struct FinishingInstance(Arc<AtomicUsize>);

impl Finishing {
    /// Counts one more instance until the returned value is dropped.
    pub(crate) fn start(&self) -> FinishingInstance {
        self.0.fetch_add(1, Ordering::AcqRel);
        FinishingInstance(self.0.clone())
    }

    /// Whether any instance is finishing.
    pub(crate) fn any(&self) -> bool {
        self.0.load(Ordering::Acquire) > 0
    }
}

impl Drop for FinishingInstance {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The gate in front of instance creation. It has as many permits as the
/// pooling allocator has slots for requests, and a permit is held until the
/// request's instance is dropped, so the pool never runs dry: past the bound
/// a request gets `503` at once instead of waiting or failing inside wasmtime.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    permits: Arc<Semaphore>,
    max_instances: u32,
}

impl Admission {
    /// A gate for `max_instances` instances.
    pub(crate) fn new(max_instances: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_instances as usize)),
            max_instances,
        }
    }

    /// A permit for one instance, once one is free.
    pub(crate) async fn acquire(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// A permit for one instance, or [`Rejection::Overloaded`].
    pub(crate) fn try_admit(&self) -> Result<OwnedSemaphorePermit, Rejection> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejection::Overloaded {
                instances: self.max_instances,
            })
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
            body_read_timeout: Duration::from_secs(10),
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
            Err(Rejection::HeadersTooLarge { limit: 200 })
        );
        assert_eq!(
            check_head(&head("/", &[("content-length", "1001")]), &limits),
            Err(Rejection::BodyTooLarge { limit: 1000 })
        );
    }

    #[test]
    fn admission_is_bounded_and_permits_return() {
        let admission = Admission::new(2);
        let first = admission.try_admit().expect("a first slot");
        let _second = admission.try_admit().expect("a second slot");
        assert_eq!(
            admission.try_admit().err(),
            Some(Rejection::Overloaded { instances: 2 })
        );
        drop(first);
        assert!(admission.try_admit().is_ok());
    }

    #[test]
    fn an_instance_is_finishing_until_its_mark_is_dropped() {
        let finishing = Finishing::default();
        assert!(!finishing.any());
        let first = finishing.start();
        let second = finishing.clone().start();
        drop(first);
        assert!(finishing.any());
        drop(second);
        assert!(!finishing.any());
    }
}
