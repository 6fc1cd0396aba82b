//! A backend's circuit breaker
//! (learn.microsoft.com/azure/api-management/backends#circuit-breaker):
//! `count` failures (a status in the ranges, or an error reason in the
//! list) within `interval` open it for `tripDuration`, or for as long as
//! the backend's `Retry-After` says when `acceptRetryAfter` is set. While
//! it is open the backend gets nothing, and callers get 503.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::parse_iso8601;
use crate::config::{CircuitBreakerRule, StatusCodeRange};

/// One breaker.
pub struct Breaker {
    count: usize,
    interval: Duration,
    trip: Duration,
    accept_retry_after: bool,
    ranges: Vec<StatusCodeRange>,
    reasons: Vec<String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: VecDeque<Instant>,
    open_until: Option<Instant>,
}

impl Breaker {
    /// The breaker of `rule`.
    pub fn new(rule: &CircuitBreakerRule) -> anyhow::Result<Self> {
        Ok(Breaker {
            count: rule.failure_condition.count.max(1) as usize,
            interval: parse_iso8601(&rule.failure_condition.interval)?,
            trip: parse_iso8601(&rule.trip_duration)?,
            accept_retry_after: rule.accept_retry_after,
            ranges: rule.failure_condition.status_code_ranges.clone(),
            reasons: rule.failure_condition.error_reasons.clone(),
            state: Mutex::new(State::default()),
        })
    }

    /// Whether it is open now; an open breaker whose time is up closes.
    pub fn is_open(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        match state.open_until {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                state.open_until = None;
                state.failures.clear();
                false
            }
            None => false,
        }
    }

    /// Records a response; `retry_after` is its Retry-After in seconds.
    pub fn record_status(&self, status: u16, retry_after: Option<u64>) {
        if self
            .ranges
            .iter()
            .any(|r| (r.min..=r.max).contains(&status))
        {
            self.failure(retry_after);
        }
    }

    /// Records a request that got no response, with its LastError.Reason.
    pub fn record_error(&self, reason: &str) {
        if self.reasons.iter().any(|r| r == reason) {
            self.failure(None);
        }
    }

    fn failure(&self, retry_after: Option<u64>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        state.failures.push_back(now);
        while state
            .failures
            .front()
            .is_some_and(|first| now.duration_since(*first) > self.interval)
        {
            state.failures.pop_front();
        }
        if state.failures.len() >= self.count && state.open_until.is_none() {
            // A backend's Retry-After lengthens the trip, within an hour; a
            // zero would not trip at all.
            let trip = match retry_after {
                Some(seconds) if self.accept_retry_after && seconds > 0 => {
                    Duration::from_secs(seconds.min(3600))
                }
                _ => self.trip,
            };
            state.open_until = Some(now + trip);
            tracing::warn!(
                trip_seconds = trip.as_secs(),
                "a backend's circuit breaker opened"
            );
        }
    }
}
