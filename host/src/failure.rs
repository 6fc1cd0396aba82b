//! Every way a request can end without the guest's answer, and what the
//! caller is told for each: a refusal by the host ([`Rejection`]) or a failure
//! of the guest ([`GuestFailure`]). Each knows its status and its `detail`;
//! [`crate::egress`] turns either into a problem+json response.

use std::time::Duration;

use http::StatusCode;

use crate::limits::{MAX_HEADER_FIELDS, MAX_URI_BYTES};

/// Seconds a client is told to wait after a `503`.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 1;

/// What a caller is told about a request that got no answer from its guest.
pub(crate) trait Problem: std::fmt::Display {
    /// The response status.
    fn status(&self) -> StatusCode;
    /// The problem's `detail`: what happened, in a sentence.
    fn detail(&self) -> String;
    /// Seconds the caller should wait before trying again, if it should.
    fn retry_after(&self) -> Option<u32> {
        None
    }
    /// Whether the guest is at fault (logged as an error) rather than the
    /// request or the load (logged as a warning).
    fn is_guest_fault(&self) -> bool;
    /// A short, stable name of the kind of problem: a trace's
    /// `exception.type` and the metrics' `error.type`.
    fn kind(&self) -> &'static str;
}

/// Why the host refused a request before, or instead of, running its guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    /// The request target is longer than [`MAX_URI_BYTES`].
    #[error("request target too long")]
    UriTooLong,
    /// The header section is larger than the limit.
    #[error("request headers too large")]
    HeadersTooLarge {
        /// `--max-header-size`, bytes.
        limit: usize,
    },
    /// The body is, or says it is, larger than the limit.
    #[error("request body too large")]
    BodyTooLarge {
        /// The limit, bytes.
        limit: u64,
    },
    /// The body did not arrive in time.
    #[error("request body too slow")]
    BodyTooSlow {
        /// `--body-read-timeout`.
        timeout: Duration,
    },
    /// The body could not be read (the connection failed, or its framing).
    #[error("request body unreadable")]
    BodyBroken,
    /// Every instance slot is in use.
    #[error("every instance is busy")]
    Overloaded {
        /// `--max-instances`.
        instances: u32,
    },
    /// The head could not be parsed (hyper refused it before the host saw it).
    #[error("request head unparsable")]
    Unparsable,
    /// hyper refused the head before the host saw it: more fields than it
    /// parses, or far more bytes than its buffer (unlike
    /// [`Rejection::HeadersTooLarge`], the host's own byte limit).
    #[error("request head too large")]
    HeadOverParserLimits {
        /// `--max-header-size`, bytes.
        limit: usize,
    },
    /// A request target with a fragment (`#`), which RFC 9112 section 3.2
    /// does not allow and the `http` crate would drop.
    #[error("fragment in the request target")]
    FragmentInTarget,
    /// An HTTP/1.1 request without a `Host`, or with more than one.
    #[error("no single Host header")]
    HostHeader,
    /// No component is routed at the request's path.
    #[error("no component serves the path")]
    NoRoute,
}

impl Problem for Rejection {
    fn status(&self) -> StatusCode {
        match self {
            Rejection::UriTooLong => StatusCode::URI_TOO_LONG,
            Rejection::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Rejection::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::BodyTooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            Rejection::BodyBroken => StatusCode::BAD_REQUEST,
            Rejection::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::NoRoute => StatusCode::NOT_FOUND,
            Rejection::Unparsable | Rejection::HostHeader | Rejection::FragmentInTarget => {
                StatusCode::BAD_REQUEST
            }
            Rejection::HeadOverParserLimits { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    fn detail(&self) -> String {
        match self {
            Rejection::UriTooLong => {
                format!("The request target is longer than {MAX_URI_BYTES} bytes.")
            }
            Rejection::HeadersTooLarge { limit } => {
                format!("The request headers are larger than {limit} bytes.")
            }
            Rejection::BodyTooLarge { limit } => {
                format!("The request body is larger than {limit} bytes.")
            }
            Rejection::BodyTooSlow { timeout } => format!(
                "The request body did not arrive within {}.",
                humantime::format_duration(*timeout)
            ),
            Rejection::BodyBroken => "The request body could not be read.".to_owned(),
            Rejection::Overloaded { instances } => format!(
                "All {instances} instances are busy; retry in {RETRY_AFTER_SECONDS} second(s)."
            ),
            Rejection::NoRoute => "No component serves this path.".to_owned(),
            Rejection::Unparsable => {
                "The request is not valid HTTP/1.1: its request line or a header could not be parsed."
                    .to_owned()
            }
            Rejection::HeadOverParserLimits { limit } => format!(
                "The request head has more than {MAX_HEADER_FIELDS} header fields, or is far larger than {limit} bytes."
            ),
            Rejection::FragmentInTarget => {
                "A request target may not carry a fragment ('#'; RFC 9112, section 3.2).".to_owned()
            }
            Rejection::HostHeader => {
                "An HTTP/1.1 request must carry exactly one Host header (RFC 9112, section 3.2)."
                    .to_owned()
            }
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, Rejection::Overloaded { .. }).then_some(RETRY_AFTER_SECONDS)
    }

    fn kind(&self) -> &'static str {
        match self {
            Rejection::UriTooLong => "uri_too_long",
            Rejection::HeadersTooLarge { .. } => "headers_too_large",
            Rejection::BodyTooLarge { .. } => "body_too_large",
            Rejection::BodyTooSlow { .. } => "body_too_slow",
            Rejection::BodyBroken => "body_broken",
            Rejection::Overloaded { .. } => "overloaded",
            Rejection::Unparsable => "unparsable",
            Rejection::HeadOverParserLimits { .. } => "head_over_parser_limits",
            Rejection::FragmentInTarget => "fragment_in_target",
            Rejection::HostHeader => "host_header",
            Rejection::NoRoute => "no_route",
        }
    }

    fn is_guest_fault(&self) -> bool {
        false
    }
}

/// Why a guest produced no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GuestFailure {
    /// Every pool slot was taken (admission should prevent this).
    #[error("no instance slot was free")]
    PoolExhausted,
    /// No instance could be made from the component.
    #[error("the component could not be instantiated: {0:#}")]
    Instantiation(wasmtime::Error),
    /// The guest ran past its deadline before it sent a response.
    #[error("the component ran past its {0:?} deadline")]
    Deadline(Duration),
    /// The guest asked for more memory than its cap, and then failed.
    #[error("the component exceeded its memory limit of {limit_bytes} bytes: {trap:#}")]
    MemoryLimit {
        /// The cap.
        limit_bytes: usize,
        /// The trap that followed the refused allocation.
        trap: wasmtime::Error,
    },
    /// The guest exhausted its stack.
    #[error("the component overflowed its stack: {0:#}")]
    StackOverflow(wasmtime::Error),
    /// The guest trapped (or panicked) before it set a response.
    #[error("the component trapped before it sent a response: {0:#}")]
    Trap(wasmtime::Error),
    /// The guest returned without calling `response-outparam.set`.
    #[error("the component returned without sending a response")]
    NoResponse,
    /// The guest set an error code instead of a response.
    #[error("the component answered with the error code {0:?}")]
    ErrorCode(wasmtime_wasi_http::Error),
    /// The host could not hand the request to the guest.
    #[error("the request could not be passed to the component: {0:#}")]
    Host(wasmtime::Error),
    /// The shared instance serving the request went down for another reason
    /// than this request ([`crate::shared`]).
    #[error("the instance serving the request was lost: {cause}")]
    InstanceLost {
        /// Why.
        cause: String,
    },
    /// The host's code running the guest panicked, or its task was cancelled.
    #[error("the task running the component ended: {cause}")]
    Task {
        /// Why.
        cause: String,
    },
}

impl Problem for GuestFailure {
    fn status(&self) -> StatusCode {
        match self {
            GuestFailure::PoolExhausted => StatusCode::SERVICE_UNAVAILABLE,
            GuestFailure::Deadline(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> String {
        match self {
            GuestFailure::PoolExhausted => {
                format!("No instance is free; retry in {RETRY_AFTER_SECONDS} second(s).")
            }
            GuestFailure::Deadline(timeout) => format!(
                "The component did not answer within its {} deadline.",
                humantime::format_duration(*timeout)
            ),
            GuestFailure::MemoryLimit { limit_bytes, .. } => format!(
                "The component hit its memory limit of {} MiB.",
                limit_bytes >> 20
            ),
            GuestFailure::StackOverflow(_) => "The component overflowed its stack.".to_owned(),
            GuestFailure::Trap(_) => "The component failed before it sent a response.".to_owned(),
            GuestFailure::NoResponse => {
                "The component finished without sending a response.".to_owned()
            }
            GuestFailure::ErrorCode(_) => {
                "The component answered with an error instead of a response.".to_owned()
            }
            GuestFailure::Instantiation(_) => {
                "The component could not be started for this request.".to_owned()
            }
            GuestFailure::InstanceLost { cause } => {
                format!("The instance serving this request was lost: {cause}.")
            }
            GuestFailure::Host(_) | GuestFailure::Task { .. } => {
                "The host could not pass the request to the component.".to_owned()
            }
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, GuestFailure::PoolExhausted).then_some(RETRY_AFTER_SECONDS)
    }

    fn kind(&self) -> &'static str {
        match self {
            GuestFailure::PoolExhausted => "pool_exhausted",
            GuestFailure::Instantiation(_) => "instantiation",
            GuestFailure::Deadline(_) => "deadline",
            GuestFailure::MemoryLimit { .. } => "memory_limit",
            GuestFailure::StackOverflow(_) => "stack_overflow",
            GuestFailure::Trap(_) => "trap",
            GuestFailure::NoResponse => "no_response",
            GuestFailure::ErrorCode(_) => "error_code",
            GuestFailure::Host(_) => "host",
            GuestFailure::InstanceLost { .. } => "instance_lost",
            GuestFailure::Task { .. } => "task",
        }
    }

    fn is_guest_fault(&self) -> bool {
        !matches!(self, GuestFailure::PoolExhausted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_which_limit() {
        let cases: [(Rejection, u16, &str); 5] = [
            (Rejection::UriTooLong, 414, "longer than 8192 bytes"),
            (
                Rejection::HeadersTooLarge { limit: 200 },
                431,
                "larger than 200 bytes",
            ),
            (
                Rejection::BodyTooLarge { limit: 1000 },
                413,
                "larger than 1000 bytes",
            ),
            (
                Rejection::Overloaded { instances: 2 },
                503,
                "All 2 instances",
            ),
            (Rejection::NoRoute, 404, "No component"),
        ];
        for (rejection, status, detail) in cases {
            assert_eq!(rejection.status().as_u16(), status, "{rejection}");
            assert!(rejection.detail().contains(detail), "{rejection}");
            assert_eq!(
                rejection.retry_after().is_some(),
                status == 503,
                "{rejection}"
            );
        }
    }

    #[test]
    fn guest_failures_are_500_but_deadlines_and_an_empty_pool() {
        assert_eq!(
            GuestFailure::Deadline(Duration::from_secs(2)).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            GuestFailure::Deadline(Duration::from_secs(2)).detail(),
            "The component did not answer within its 2s deadline."
        );
        assert_eq!(
            GuestFailure::PoolExhausted.retry_after(),
            Some(RETRY_AFTER_SECONDS)
        );
        assert_eq!(
            GuestFailure::NoResponse.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert!(GuestFailure::NoResponse.is_guest_fault());
        assert!(!GuestFailure::PoolExhausted.is_guest_fault());
    }
}
