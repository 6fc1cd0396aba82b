//! A guest's stdout and stderr, per request. Each complete line becomes a log
//! event in the request's span, with the request's secrets redacted. A line
//! that is a JSON object with a `message` (the guest's structured log line)
//! keeps its level and fields; any other line is logged as it is.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::io::AsyncWrite;
use tracing::{Level, Span};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use crate::console::Stdio;
use crate::context::Secrets;
use crate::logging;

/// The field through which a structured guest line's own fields reach the
/// log formatter, as one JSON object (see [`crate::logging`]).
pub(crate) const GUEST_FIELDS: &str = "guest_fields";
/// Log target of guest lines.
pub(crate) const TARGET: &str = "guest";

/// A line longer than this is logged in pieces.
const MAX_LINE: usize = 16 * 1024;
/// Output logged per request; past it lines are counted, not logged, so a
/// chatty guest cannot flood the Functions host's log.
const MAX_LOGGED_PER_REQUEST: usize = 256 * 1024;
/// What `check-write` grants: writes never wait.
const WRITE_PERMIT: usize = 64 * 1024;

/// Where a guest's lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// Log events in the request's span, on the host's console.
    Console,
    /// Text lines for a payload-mode invocation's `Logs` (and not the
    /// console), so the Functions host logs them once, with the invocation;
    /// each carries the request's correlation id.
    Envelope {
        /// The request's correlation id.
        correlation_id: String,
    },
}

/// The output of one request's guest instance.
#[derive(Clone)]
pub(crate) struct GuestOutput(Arc<Mutex<Lines>>);

struct Lines {
    span: Span,
    secrets: Secrets,
    destination: Destination,
    partial: [Vec<u8>; 2],
    logged: usize,
    dropped_lines: u64,
    /// The lines kept for [`Destination::Envelope`].
    kept: Vec<String>,
}

impl GuestOutput {
    /// Output whose lines go to `destination`, in `span`, with `secrets` redacted.
    pub(crate) fn new(span: Span, secrets: Secrets, destination: Destination) -> Self {
        Self(Arc::new(Mutex::new(Lines {
            span,
            secrets,
            destination,
            partial: [Vec::new(), Vec::new()],
            logged: 0,
            dropped_lines: 0,
            kept: Vec::new(),
        })))
    }

    /// The lines kept for an envelope so far, a partial last line included.
    /// Call once the guest is done.
    pub(crate) fn take_logs(&self) -> Vec<String> {
        let mut lines = self.lock();
        lines.flush_partial_lines();
        std::mem::take(&mut lines.kept)
    }

    /// A WASI output stream that writes into this output.
    pub(crate) fn stream(&self, stream: Stdio) -> GuestStream {
        GuestStream {
            output: self.clone(),
            stream,
        }
    }

    fn write(&self, stream: Stdio, bytes: &[u8]) {
        self.lock().write(stream, bytes);
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        // A poisoned lock only means a log formatter panicked; the lines are intact.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Lines {
    fn write(&mut self, stream: Stdio, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let partial = &mut self.partial[stream as usize];
            let room = MAX_LINE - partial.len();
            match bytes[..bytes.len().min(room)]
                .iter()
                .position(|&b| b == b'\n')
            {
                Some(end) => {
                    partial.extend_from_slice(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                }
                None if bytes.len() < room => {
                    partial.extend_from_slice(bytes);
                    return;
                }
                None => {
                    partial.extend_from_slice(&bytes[..room]);
                    bytes = &bytes[room..];
                }
            }
            let line = std::mem::take(&mut self.partial[stream as usize]);
            self.log(stream, &line);
        }
    }

    fn log(&mut self, stream: Stdio, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.trim().is_empty() {
            return;
        }
        if self.logged + line.len() > MAX_LOGGED_PER_REQUEST {
            self.dropped_lines += 1;
            return;
        }
        self.logged += line.len();
        let record = GuestRecord::parse(stream, line, &self.secrets);
        match &self.destination {
            Destination::Console => record.emit(&self.span),
            Destination::Envelope { correlation_id } => {
                let fields = record
                    .members
                    .iter()
                    .map(|(name, value)| (name.as_str(), value));
                self.kept.push(logging::render_text(
                    record.level,
                    &record.message,
                    fields,
                    Some(correlation_id),
                ));
            }
        }
    }

    fn flush_partial_lines(&mut self) {
        for stream in [Stdio::Stdout, Stdio::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream as usize]);
            self.log(stream, &rest);
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.flush_partial_lines();
        if self.dropped_lines > 0 {
            tracing::warn!(
                parent: &self.span,
                dropped_lines = self.dropped_lines,
                "Guest output exceeded {MAX_LOGGED_PER_REQUEST} bytes for one request; later lines were not logged"
            );
        }
    }
}

/// One guest line, ready to log.
struct GuestRecord {
    level: Level,
    message: String,
    /// The structured line's other members.
    members: Map<String, Value>,
}

impl GuestRecord {
    fn parse(stream: Stdio, line: &str, secrets: &Secrets) -> Self {
        let default_level = match stream {
            Stdio::Stdout => Level::INFO,
            Stdio::Stderr => Level::WARN,
        };
        if line.starts_with('{')
            && let Ok(Value::Object(mut members)) = serde_json::from_str::<Value>(line)
            && let Some(Value::String(message)) = members.shift_remove("message")
        {
            let level = match members.shift_remove("level") {
                Some(Value::String(level)) => parse_level(&level).unwrap_or(default_level),
                _ => Level::INFO,
            };
            redact_strings(&mut members, secrets);
            return Self {
                level,
                message: secrets.redact(&message).into_owned(),
                members,
            };
        }
        Self {
            level: default_level,
            message: secrets.redact(line).into_owned(),
            members: Map::new(),
        }
    }

    fn emit(&self, span: &Span) {
        let message = &self.message;
        let fields = if self.members.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&self.members).unwrap_or_default()
        };
        let fields = fields.as_str();
        macro_rules! emit_at {
            ($level:expr) => {
                tracing::event!(target: TARGET, parent: span, $level, guest_fields = fields, "{message}")
            };
        }
        match self.level {
            Level::ERROR => emit_at!(Level::ERROR),
            Level::WARN => emit_at!(Level::WARN),
            Level::INFO => emit_at!(Level::INFO),
            Level::DEBUG => emit_at!(Level::DEBUG),
            _ => emit_at!(Level::TRACE),
        }
    }
}

fn parse_level(level: &str) -> Option<Level> {
    Some(match level.to_ascii_lowercase().as_str() {
        "trace" => Level::TRACE,
        "debug" => Level::DEBUG,
        "info" | "information" => Level::INFO,
        "warn" | "warning" => Level::WARN,
        "error" | "critical" | "fatal" => Level::ERROR,
        _ => return None,
    })
}

fn redact_strings(members: &mut Map<String, Value>, secrets: &Secrets) {
    fn redact(value: &mut Value, secrets: &Secrets) {
        match value {
            Value::String(text) => {
                if let std::borrow::Cow::Owned(redacted) = secrets.redact(text) {
                    *text = redacted;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| redact(item, secrets)),
            Value::Object(members) => members
                .values_mut()
                .for_each(|member| redact(member, secrets)),
            _ => {}
        }
    }
    members
        .values_mut()
        .for_each(|value| redact(value, secrets));
}

/// One of a guest's output streams, as WASI sees it.
pub(crate) struct GuestStream {
    output: GuestOutput,
    stream: Stdio,
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(GuestStream {
            output: self.output.clone(),
            stream: self.stream,
        })
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(GuestStream {
            output: self.output.clone(),
            stream: self.stream,
        })
    }
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.output.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.output.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::logging::LogFormat;
    use crate::logging::tests::capture;

    /// The text lines logged for `writes`, each `(stream, bytes)`.
    fn logged(writes: &[(Stdio, Vec<u8>)]) -> Vec<String> {
        capture(LogFormat::Text, || {
            let output = GuestOutput::new(
                tracing::info_span!("request", correlation_id = "c"),
                Secrets::default(),
                Destination::Console,
            );
            for (stream, bytes) in writes {
                output.write(*stream, bytes);
            }
        })
        .into_iter()
        .map(|(_, line)| line)
        .collect()
    }

    #[test]
    fn structured_lines_keep_level_and_fields_plain_lines_keep_their_stream() {
        let lines = logged(&[
            (
                Stdio::Stderr,
                br#"{"level":"error","message":"boom","item_id":"7"}"#.to_vec(),
            ),
            (Stdio::Stderr, b"\nplain warning\n".to_vec()),
            (Stdio::Stdout, b"partial ".to_vec()),
            (Stdio::Stdout, b"line without newline".to_vec()),
        ]);
        assert_eq!(
            lines,
            [
                "[Error] boom item_id=7 correlation_id=c\n",
                "[Warning] plain warning correlation_id=c\n",
                "[Information] partial line without newline correlation_id=c\n",
            ]
        );
    }

    #[test]
    fn a_flood_is_cut_at_the_per_request_budget() {
        let line = vec![b'x'; 1000];
        let writes: Vec<(Stdio, Vec<u8>)> = (0..400)
            .map(|_| (Stdio::Stdout, [line.as_slice(), b"\n"].concat()))
            .collect();
        let lines = logged(&writes);
        assert_eq!(
            lines.len(),
            MAX_LOGGED_PER_REQUEST / 1000 + 1,
            "the budget's lines and one warning"
        );
        assert!(
            lines
                .last()
                .is_some_and(|last| last.contains("dropped_lines="))
        );
    }

    proptest! {
        #[test]
        fn lines_do_not_depend_on_how_writes_are_split(
            text in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'{'), any::<u8>()], 0..400),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let whole = logged(&[(Stdio::Stdout, text.clone())]);
            let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(text.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for point in points.into_iter().chain([text.len()]) {
                pieces.push((Stdio::Stdout, text[start..point].to_vec()));
                start = point;
            }
            prop_assert_eq!(whole, logged(&pieces));
        }
    }
}
