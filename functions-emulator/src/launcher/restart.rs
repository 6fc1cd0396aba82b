//! What the host does when the handler exits (azure-functions-host at
//! 89dc438: `src/WebJobs.Script/Workers/ProcessManagement/WorkerProcess.cs`
//! `OnProcessExited`, `src/WebJobs.Script/Workers/Http/HttpFunctionInvocationDispatcher.cs`
//! `AddOrUpdateErrorBucket`, `RestartWorkerChannel`): exit code 0 closes the
//! worker without a restart; 200 asks for a restart; any other exit, a failed
//! readiness wait or a readiness timeout is an error event. The error count is
//! cleared only by an error that comes more than 30 minutes after the one
//! before it, and the third error in a row shuts the host down: a handler
//! that crashes every 20 minutes stops the app at its third crash.

use std::time::{Duration, Instant};

/// Errors in a row before the host gives up (`ErrorEventsThreshold`).
pub(crate) const MAX_ERRORS: usize = 3;
/// A gap longer than this between two errors starts the count again
/// (`WorkerRestartErrorIntervalThresholdInMinutes`).
pub(crate) const ERROR_GAP: Duration = Duration::from_secs(30 * 60);
/// What the host logs when it gives up.
pub(crate) const RETRIES_EXCEEDED: &str =
    "Exceeded http worker restart retry count. Shutting down Functions Host";

/// What to do after the handler stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Exit code 0: leave it stopped.
    Stay,
    /// Start it again (`errors` errors in the count so far; 0 for exit code 200).
    Restart { errors: usize },
    /// Too many errors: shut the host down.
    ShutDown,
}

/// The error events counted so far: how many, and when the last one came.
#[derive(Debug, Default)]
pub(crate) struct RestartPolicy {
    errors: usize,
    last: Option<Instant>,
}

impl RestartPolicy {
    /// The handler exited with `code` (`None`: killed by a signal, which
    /// .NET reports as 128 + the signal's number).
    pub(crate) fn exited(&mut self, code: Option<i32>, now: Instant) -> Decision {
        match code {
            Some(0) => Decision::Stay,
            Some(200) => Decision::Restart { errors: 0 },
            _ => self.error(now),
        }
    }

    /// An error event: a crash, a failed start or a readiness timeout.
    pub(crate) fn error(&mut self, now: Instant) -> Decision {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) > ERROR_GAP)
        {
            self.errors = 0;
        }
        self.errors += 1;
        self.last = Some(now);
        if self.errors >= MAX_ERRORS {
            Decision::ShutDown
        } else {
            Decision::Restart {
                errors: self.errors,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(n: u64) -> Duration {
        Duration::from_secs(n * 60)
    }

    #[test]
    fn the_third_error_in_a_row_shuts_the_host_down() {
        let start = Instant::now();
        let mut policy = RestartPolicy::default();
        assert_eq!(
            policy.exited(Some(1), start),
            Decision::Restart { errors: 1 }
        );
        assert_eq!(policy.error(start), Decision::Restart { errors: 2 });
        assert_eq!(policy.exited(None, start), Decision::ShutDown);
    }

    #[test]
    fn exit_codes_0_and_200_are_not_errors() {
        let now = Instant::now();
        let mut policy = RestartPolicy::default();
        assert_eq!(policy.exited(Some(0), now), Decision::Stay);
        for _ in 0..10 {
            assert_eq!(
                policy.exited(Some(200), now),
                Decision::Restart { errors: 0 }
            );
        }
        assert_eq!(
            policy.exited(Some(139), now),
            Decision::Restart { errors: 1 }
        );
    }

    #[test]
    fn errors_20_minutes_apart_stop_the_host_at_the_third() {
        // Counting in a window of 30 minutes from the first error would allow
        // this forever: the host counts a chain whose links are under 30 minutes.
        let start = Instant::now();
        let mut policy = RestartPolicy::default();
        assert_eq!(policy.error(start), Decision::Restart { errors: 1 });
        assert_eq!(
            policy.error(start + minutes(20)),
            Decision::Restart { errors: 2 }
        );
        assert_eq!(policy.error(start + minutes(40)), Decision::ShutDown);
    }

    #[test]
    fn a_gap_over_30_minutes_starts_the_count_again() {
        let start = Instant::now();
        let mut policy = RestartPolicy::default();
        policy.error(start);
        policy.error(start + minutes(1));
        let later = start + minutes(1) + ERROR_GAP + Duration::from_secs(1);
        assert_eq!(policy.error(later), Decision::Restart { errors: 1 });
        assert_eq!(
            policy.error(later + minutes(29)),
            Decision::Restart { errors: 2 }
        );
        assert_eq!(policy.error(later + minutes(29)), Decision::ShutDown);
    }
}
