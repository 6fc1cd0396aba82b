//! `rate-limit-by-key` (learn.microsoft.com/azure/api-management/rate-limit-by-key-policy):
//! `calls` per `renewal-period` seconds per counter key, over a sliding
//! window; a call past the limit is refused with the seconds until the
//! oldest call in the window leaves it (the Retry-After).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counters by key, one per key value for all scopes.
#[derive(Default)]
pub struct RateLimits {
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// The outcome of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; this many calls are left in the window.
    Allowed { remaining: u64 },
    /// Over the limit: retry after this many seconds (at least 1).
    Refused { retry_after_seconds: u64 },
}

impl RateLimits {
    /// Counts a call under `key`, `calls` per `period`.
    pub fn admit(&self, key: &str, calls: u64, period: Duration) -> Admission {
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else {
            return Admission::Allowed { remaining: 0 };
        };
        // Keys of callers gone quiet would otherwise stay forever.
        if windows.len() > 10_000 {
            windows.retain(|_, w| {
                w.back()
                    .is_some_and(|last| now.duration_since(*last) < period)
            });
        }
        let window = windows.entry(key.to_owned()).or_default();
        while window
            .front()
            .is_some_and(|first| now.duration_since(*first) >= period)
        {
            window.pop_front();
        }
        let used = window.len() as u64;
        if used >= calls {
            let oldest = window.front().copied().unwrap_or(now);
            let wait = period.saturating_sub(now.duration_since(oldest));
            return Admission::Refused {
                retry_after_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
            };
        }
        window.push_back(now);
        Admission::Allowed {
            remaining: calls - used - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_past_the_limit_waits_for_the_window() {
        let limits = RateLimits::default();
        let period = Duration::from_secs(60);
        for left in (0..3).rev() {
            assert_eq!(
                limits.admit("k", 3, period),
                Admission::Allowed { remaining: left }
            );
        }
        match limits.admit("k", 3, period) {
            Admission::Refused {
                retry_after_seconds,
            } => assert!((59..=60).contains(&retry_after_seconds)),
            other => panic!("{other:?}"),
        }
        // Another key has its own.
        assert_eq!(
            limits.admit("other", 3, period),
            Admission::Allowed { remaining: 2 }
        );
    }
}
