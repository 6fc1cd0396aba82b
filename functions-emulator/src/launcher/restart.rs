//! What the host does when the handler exits (reference §1.3,
//! WorkerProcess.OnProcessExited, HttpFunctionInvocationDispatcher): exit code
//! 0 closes the worker without a restart; 200 asks for a restart; anything
//! else, a failed start or a readiness timeout is an error, and the third
//! error within 30 minutes shuts the host down.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Errors tolerated within [`ERROR_WINDOW`] before the host gives up.
pub(crate) const MAX_ERRORS: usize = 3;
/// The window errors are counted in.
pub(crate) const ERROR_WINDOW: Duration = Duration::from_secs(30 * 60);
/// What the host logs when it gives up.
pub(crate) const RETRIES_EXCEEDED: &str =
    "Exceeded http worker restart retry count. Shutting down Functions Host";

/// What to do after the handler stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Exit code 0: leave it stopped.
    Stay,
    /// Start it again (`errors` errors in the window so far; 0 for exit code 200).
    Restart { errors: usize },
    /// Too many errors: shut the host down.
    ShutDown,
}

/// Error events in the window.
#[derive(Debug, Default)]
pub(crate) struct RestartPolicy {
    errors: VecDeque<Instant>,
}

impl RestartPolicy {
    /// The handler exited with `code` (`None`: killed by a signal).
    pub(crate) fn exited(&mut self, code: Option<i32>, now: Instant) -> Decision {
        match code {
            Some(0) => Decision::Stay,
            Some(200) => Decision::Restart { errors: 0 },
            _ => self.error(now),
        }
    }

    /// An error event: a crash, a failed start or a readiness timeout.
    pub(crate) fn error(&mut self, now: Instant) -> Decision {
        while self
            .errors
            .front()
            .is_some_and(|first| now.duration_since(*first) > ERROR_WINDOW)
        {
            self.errors.pop_front();
        }
        self.errors.push_back(now);
        if self.errors.len() >= MAX_ERRORS {
            Decision::ShutDown
        } else {
            Decision::Restart {
                errors: self.errors.len(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_third_error_in_the_window_shuts_the_host_down() {
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
    fn errors_older_than_the_window_are_forgotten() {
        let start = Instant::now();
        let mut policy = RestartPolicy::default();
        policy.error(start);
        policy.error(start + Duration::from_secs(60));
        let later = start + ERROR_WINDOW + Duration::from_secs(1);
        assert_eq!(policy.error(later), Decision::Restart { errors: 2 });
        assert_eq!(policy.error(later), Decision::ShutDown);
    }
}
