//! Instance reuse, opted into per route. A fresh instance per request is the
//! default, because isolation is the product: reuse gives it up, since state
//! in an instance's memory survives from one caller to the next.
//!
//! A route that allows reuse keeps an instance after a request that ended
//! cleanly, for up to [`Reuse::max_requests`] requests and while it has been
//! idle less than [`Reuse::idle_timeout`]. Any doubt retires it for good: a
//! trap, a deadline, the memory limit, a request or response body that
//! failed, a response never set ([`crate::dispatch`] decides). When a version
//! is swapped out its idle instances are dropped, and busy ones are dropped
//! when their request is done.
//!
//! An idle instance keeps its admission permit and its pool slot, so the
//! accounting of [`crate::limits::Admission`] holds as it is: instances
//! alive, busy or idle, never outnumber the pool's slots. When admission runs
//! out, an idle instance is evicted to make room ([`crate::handler`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;
use wasmtime_wasi_http::handler::Proxy;

use crate::registry::Registry;
use crate::sandbox::Sandbox;
use crate::shared::SharedLease;

/// How a route reuses its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reuse {
    /// Requests one instance serves, one after another, before it is
    /// dropped; 1 means a fresh instance per request.
    pub(crate) max_requests: u32,
    /// Requests one 0.3 instance serves at once ([`crate::shared`]); 1
    /// means one after another.
    pub(crate) max_concurrent: u32,
    /// How long an instance may wait for its next request.
    pub(crate) idle_timeout: Duration,
}

impl Reuse {
    /// The defaults, those of `wasmtime serve` for 0.2 components: one
    /// request per instance, and 1 s idle when reuse is raised.
    pub(crate) const FRESH: Self = Self {
        max_requests: 1,
        max_concurrent: 1,
        idle_timeout: Duration::from_secs(1),
    };

    /// Whether an instance may serve more than one request.
    pub(crate) fn enabled(&self) -> bool {
        self.max_requests > 1
    }

    /// Whether an instance of a 0.3 component may serve more than one
    /// request at once.
    pub(crate) fn concurrent(&self) -> bool {
        self.enabled() && self.max_concurrent > 1
    }
}

impl std::fmt::Display for Reuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.enabled() {
            write!(f, "up to {} requests per instance", self.max_requests)?;
            if self.concurrent() {
                write!(f, ", {} at once (0.3)", self.max_concurrent)?;
            }
            write!(
                f,
                ", {} idle",
                humantime::format_duration(self.idle_timeout)
            )
        } else {
            f.write_str("a fresh instance per request")
        }
    }
}

/// What a request runs in.
pub(crate) enum Lease {
    /// A new instance, under this admission permit.
    Fresh(OwnedSemaphorePermit),
    /// An idle instance of the route's version.
    Reused(Worker),
    /// A 0.3 instance of the route's version with room for one more request.
    Shared(SharedLease),
}

/// An instance that has served and may serve again. Its fields drop in
/// order: the store (its pool slot) before the permit, so that admission
/// never lets in a request the pool has no slot for.
pub(crate) struct Worker {
    pub(crate) store: Store<Sandbox>,
    pub(crate) proxy: Proxy,
    /// Requests it has served.
    pub(crate) served: u32,
    pub(crate) permit: OwnedSemaphorePermit,
}

/// The idle instances of one component version on its route (generic only
/// so the unit tests can pool something lighter than a [`Worker`]).
pub(crate) struct IdleInstances<W = Worker> {
    reuse: Reuse,
    state: Mutex<State<W>>,
    /// Told each time an instance comes back.
    returned: tokio::sync::Notify,
}

struct State<W> {
    /// Most recently idle last: the next request takes the warmest.
    idle: Vec<(W, Instant)>,
    retired: bool,
}

impl<W> IdleInstances<W> {
    /// None yet, under `reuse`.
    pub(crate) fn new(reuse: Reuse) -> Self {
        Self {
            reuse,
            state: Mutex::new(State {
                idle: Vec::new(),
                retired: false,
            }),
            returned: tokio::sync::Notify::new(),
        }
    }

    /// The most recently idle instance that has not timed out, if any.
    pub(crate) fn take(&self) -> Option<W> {
        if !self.reuse.enabled() {
            return None;
        }
        let mut state = self.lock();
        let (worker, since) = state.idle.pop()?;
        if since.elapsed() < self.reuse.idle_timeout {
            return Some(worker);
        }
        // It and every one idle longer have timed out.
        let expired = std::mem::take(&mut state.idle);
        drop(state);
        drop((worker, expired));
        None
    }

    /// How its instances are reused.
    pub(crate) fn reuse(&self) -> Reuse {
        self.reuse
    }

    /// Whether a worker that has served `served` requests may serve again.
    pub(crate) fn may_serve_again(&self, served: u32) -> bool {
        served < self.reuse.max_requests
    }

    /// Keeps `worker` for its next request, or drops it if this version has
    /// been retired meanwhile (or is not reused).
    pub(crate) fn put_back(&self, worker: W) {
        let mut state = self.lock();
        if state.retired || !self.reuse.enabled() {
            drop(state);
            drop(worker);
            return;
        }
        state.idle.push((worker, Instant::now()));
        drop(state);
        self.returned.notify_one();
    }

    /// Resolves when an instance has come back (perhaps before this call:
    /// one notice is kept), for a request waiting for one.
    pub(crate) async fn returned(&self) {
        self.returned.notified().await;
    }

    /// Drops the instances idle past the timeout.
    pub(crate) fn expire(&self) {
        let mut state = self.lock();
        let fresh_from = state
            .idle
            .partition_point(|(_, since)| since.elapsed() >= self.reuse.idle_timeout);
        let expired: Vec<_> = state.idle.drain(..fresh_from).collect();
        drop(state);
        drop(expired);
    }

    /// Drops the longest idle instance, freeing its slot and permit; false
    /// when there is none.
    pub(crate) fn evict_one(&self) -> bool {
        let mut state = self.lock();
        if state.idle.is_empty() {
            return false;
        }
        let evicted = state.idle.remove(0);
        drop(state);
        drop(evicted);
        true
    }

    /// No instance of this version serves again: idle ones are dropped now,
    /// busy ones when their request is done.
    pub(crate) fn retire(&self) {
        let mut state = self.lock();
        state.retired = true;
        let idle = std::mem::take(&mut state.idle);
        drop(state);
        drop(idle);
    }

    fn lock(&self) -> MutexGuard<'_, State<W>> {
        // Nothing can panic while the lock is held; recover regardless.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Drops idle instances past their route's timeout, for as long as the
/// registry lives: an instance nobody asks for gives its slot, its permit
/// and its memory back.
pub(crate) fn expire_idle_instances(registry: &Arc<Registry>) {
    let Some(period) = registry
        .routes()
        .iter()
        .map(|route| route.reuse())
        .filter(Reuse::enabled)
        .map(|reuse| reuse.idle_timeout / 2)
        .min()
    else {
        return;
    };
    let period = period.max(Duration::from_millis(10));
    let registry = Arc::downgrade(registry);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(registry) = registry.upgrade() else {
                return;
            };
            for route in registry.routes() {
                let version = route.current();
                version.idle().expire();
                version.shared().expire();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_is_the_default_and_says_so() {
        assert!(!Reuse::FRESH.enabled());
        assert_eq!(Reuse::FRESH.to_string(), "a fresh instance per request");
        let reuse = Reuse {
            max_requests: 16,
            max_concurrent: 1,
            idle_timeout: Duration::from_secs(2),
        };
        assert!(reuse.enabled() && !reuse.concurrent());
        assert_eq!(reuse.to_string(), "up to 16 requests per instance, 2s idle");
        let concurrent = Reuse {
            max_concurrent: 4,
            ..reuse
        };
        assert!(concurrent.concurrent());
        assert_eq!(
            concurrent.to_string(),
            "up to 16 requests per instance, 4 at once (0.3), 2s idle"
        );
        assert!(
            !Reuse {
                max_concurrent: 4,
                ..Reuse::FRESH
            }
            .concurrent(),
            "one request per instance leaves nothing to share"
        );
        let idle: IdleInstances<u32> = IdleInstances::new(reuse);
        assert!(idle.may_serve_again(15));
        assert!(!idle.may_serve_again(16));
    }

    fn pool(idle_timeout: Duration) -> IdleInstances<u32> {
        IdleInstances::new(Reuse {
            max_requests: 8,
            max_concurrent: 1,
            idle_timeout,
        })
    }

    #[test]
    fn the_warmest_goes_first_and_the_coldest_is_evicted() {
        let idle = pool(Duration::from_secs(60));
        for worker in 1..=3 {
            idle.put_back(worker);
        }
        assert_eq!(idle.take(), Some(3));
        assert!(idle.evict_one());
        assert_eq!(idle.take(), Some(2));
        assert_eq!(idle.take(), None);
        assert!(!idle.evict_one());
    }

    #[test]
    fn idle_instances_time_out() {
        let idle = pool(Duration::from_millis(20));
        idle.put_back(1);
        std::thread::sleep(Duration::from_millis(30));
        idle.put_back(2);
        idle.expire();
        assert_eq!(idle.take(), Some(2));
        idle.put_back(3);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(idle.take(), None, "timed out, so dropped on the way out");
    }

    #[test]
    fn a_retired_version_keeps_nothing() {
        let idle = pool(Duration::from_secs(60));
        idle.put_back(1);
        idle.retire();
        assert_eq!(idle.take(), None);
        idle.put_back(2);
        assert_eq!(
            idle.take(),
            None,
            "a busy instance is dropped when it is done"
        );
    }

    #[test]
    fn fresh_keeps_nothing() {
        let idle: IdleInstances<u32> = IdleInstances::new(Reuse::FRESH);
        idle.put_back(1);
        assert_eq!(idle.take(), None);
    }
}
