//! A guest's stdout and stderr, per request. Each complete line becomes a log
//! event in the request's span, with the request's secrets redacted. A line
//! that is a JSON object with a `message` (the guest's structured log line)
//! keeps its level and fields; any other line is logged as it is.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::io::AsyncWrite;
use tracing::{Level, Span};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use crate::console::Stdio;
use crate::context::Secrets;
use crate::logging;
use crate::telemetry::RequestTrace;

/// Log target of guest lines.
pub(crate) const TARGET: &str = "guest";

/// A line is held up to this many bytes, and the rest of a longer line is
/// dropped and counted: a line is redacted whole and logged as one event.
const MAX_HELD_LINE: usize = 64 * 1024;
/// A logged message longer than this is cut, after redaction, so no cut
/// can split a secret.
const MAX_MESSAGE: usize = 16 * 1024;
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
    trace: RequestTrace,
    secrets: Secrets,
    destination: Destination,
    partial: [HeldLine; 2],
    logged: usize,
    dropped_lines: u64,
    /// The lines kept for [`Destination::Envelope`].
    kept: Vec<String>,
}

impl GuestOutput {
    /// Output whose lines go to `destination`, in the request's log span,
    /// with `secrets` redacted.
    pub(crate) fn new(trace: RequestTrace, secrets: Secrets, destination: Destination) -> Self {
        Self(Arc::new(Mutex::new(Lines {
            trace,
            secrets,
            destination,
            partial: [HeldLine::default(), HeldLine::default()],
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

    /// From now on, also redacts the secrets of `request`'s output: this
    /// output is a shared instance's, which `request`'s guest writes to.
    pub(crate) fn redact_also(&self, request: &GuestOutput) {
        let secrets = request.lock().secrets.clone();
        self.lock().secrets.extend(&secrets);
    }

    #[cfg(test)]
    fn write(&self, stream: Stdio, bytes: &[u8]) {
        lock(&self.0).write(stream, bytes);
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        lock(&self.0)
    }
}

fn lock(lines: &Mutex<Lines>) -> MutexGuard<'_, Lines> {
    // A poisoned lock only means a log formatter panicked; the lines are intact.
    lines
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where an instance's stdout and stderr go: the output of the request it
/// serves now. A fresh instance is connected once; a reused one to each
/// request in turn, and to nothing between them, so a request's last
/// partial line is logged with that request when it ends.
#[derive(Clone)]
pub(crate) struct Outlet(Arc<ArcSwapOption<Mutex<Lines>>>);

impl Outlet {
    /// An outlet connected to `output`.
    pub(crate) fn to(output: &GuestOutput) -> Self {
        Self(Arc::new(ArcSwapOption::from(Some(output.0.clone()))))
    }

    /// From now on, lines go to `output`.
    pub(crate) fn connect(&self, output: &GuestOutput) {
        self.0.store(Some(output.0.clone()));
    }

    /// From now on, lines go nowhere.
    pub(crate) fn disconnect(&self) {
        self.0.store(None);
    }

    /// A WASI output stream that writes into the connected output.
    pub(crate) fn stream(&self, stream: Stdio) -> GuestStream {
        GuestStream {
            outlet: self.clone(),
            stream,
        }
    }

    /// The trace of the request served now, if one is.
    pub(crate) fn trace(&self) -> Option<RequestTrace> {
        self.0
            .load()
            .as_deref()
            .map(|lines| lock(lines).trace.clone())
    }

    fn write(&self, stream: Stdio, bytes: &[u8]) {
        if let Some(lines) = self.0.load().as_deref() {
            lock(lines).write(stream, bytes);
        }
    }
}

/// The start of a line, up to [`MAX_HELD_LINE`] bytes, and how many bytes
/// of it were dropped.
#[derive(Default)]
struct HeldLine {
    bytes: Vec<u8>,
    dropped: usize,
}

impl HeldLine {
    fn hold(&mut self, bytes: &[u8]) {
        if self.dropped > 0 {
            self.dropped += bytes.len();
            return;
        }
        let room = MAX_HELD_LINE - self.bytes.len();
        if bytes.len() <= room {
            self.bytes.extend_from_slice(bytes);
            return;
        }
        self.bytes.extend_from_slice(&bytes[..room]);
        // Cut at a character, not inside one.
        let kept = complete_utf8_len(&self.bytes);
        self.dropped = self.bytes.len() - kept + bytes.len() - room;
        self.bytes.truncate(kept);
    }
}

/// The length of `bytes` without an incomplete UTF-8 sequence at its end.
fn complete_utf8_len(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(4) {
        let byte = bytes[len - back];
        if byte & 0xC0 == 0x80 {
            continue; // a continuation byte
        }
        let needed = match byte {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if back < needed { len - back } else { len };
    }
    len
}

impl Lines {
    fn write(&mut self, stream: Stdio, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.partial[stream as usize].hold(&bytes[..end]);
            bytes = &bytes[end + 1..];
            let line = std::mem::take(&mut self.partial[stream as usize]);
            self.log(stream, line);
        }
        self.partial[stream as usize].hold(bytes);
    }

    fn log(&mut self, stream: Stdio, held: HeldLine) {
        let line = String::from_utf8_lossy(&held.bytes);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.trim().is_empty() {
            return;
        }
        if self.logged + line.len() > MAX_LOGGED_PER_REQUEST {
            self.dropped_lines += 1;
            return;
        }
        self.logged += line.len();
        let mut record = GuestRecord::parse(stream, line, &self.secrets);
        let mut missing = held.dropped;
        if held.dropped > 0 {
            // A secret the cut at MAX_HELD_LINE split was not redacted: drop its start.
            let kept = self
                .secrets
                .without_secret_start_at_end(&record.message)
                .len();
            missing += record.message.len() - kept;
            record.message.truncate(kept);
        }
        record.cut_message(missing);
        match &self.destination {
            Destination::Console => record.emit(self.trace.span()),
            Destination::Envelope { correlation_id } => {
                let ids = self.trace.ids().into_iter().flatten();
                let ids: Vec<(&str, Value)> =
                    ids.map(|(name, id)| (name, Value::String(id))).collect();
                let fields = record
                    .members
                    .iter()
                    .map(|(name, value)| (name.as_str(), value))
                    .chain(ids.iter().map(|(name, value)| (*name, value)));
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
            self.log(stream, rest);
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.flush_partial_lines();
        if self.dropped_lines > 0 {
            tracing::warn!(
                parent: self.trace.span(),
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

    /// Cuts a message over [`MAX_MESSAGE`], and says how much of the line
    /// is missing (`missing` bytes were cut before).
    fn cut_message(&mut self, missing: usize) {
        let over = self.message.len().saturating_sub(MAX_MESSAGE);
        if over == 0 && missing == 0 {
            return;
        }
        let mut end = self.message.len().min(MAX_MESSAGE);
        while !self.message.is_char_boundary(end) {
            end -= 1;
        }
        let cut = self.message.len() - end + missing;
        self.message.truncate(end);
        self.message
            .push_str(&format!(" [{cut} more bytes not logged]"));
    }

    fn emit(self, span: &Span) {
        let Self {
            level,
            message,
            members,
        } = self;
        macro_rules! emit_at {
            ($level:expr) => {
                tracing::event!(target: TARGET, parent: span, $level, "{message}")
            };
        }
        logging::with_guest_fields(members, || match level {
            Level::ERROR => emit_at!(Level::ERROR),
            Level::WARN => emit_at!(Level::WARN),
            Level::INFO => emit_at!(Level::INFO),
            Level::DEBUG => emit_at!(Level::DEBUG),
            _ => emit_at!(Level::TRACE),
        });
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
    outlet: Outlet,
    stream: Stdio,
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.outlet.stream(self.stream))
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.outlet.stream(self.stream))
    }
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.outlet.write(self.stream, &bytes);
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
        self.outlet.write(self.stream, buf);
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
                RequestTrace::untraced(tracing::info_span!("request", correlation_id = "c")),
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

    #[test]
    fn a_long_line_is_redacted_whole_and_logged_as_one_event() {
        let secret = "straddling-secret-value";
        let head = http::Request::builder()
            .header("x-functions-key", secret)
            .body(())
            .expect("a request")
            .into_parts()
            .0;
        let secrets = crate::context::RequestContext::new(&head).secrets;
        let log = |line: Vec<u8>| {
            capture(LogFormat::Text, || {
                let output = GuestOutput::new(
                    RequestTrace::untraced(tracing::info_span!("request", correlation_id = "c")),
                    secrets.clone(),
                    Destination::Console,
                );
                output.write(Stdio::Stdout, &line);
            })
            .into_iter()
            .map(|(_, line)| line)
            .collect::<Vec<_>>()
        };
        // Across the message cut: redacted, one event.
        let mut line = vec![b'a'; MAX_MESSAGE - 5];
        line.extend_from_slice(secret.as_bytes());
        line.extend_from_slice(b" tail\n");
        let lines = log(line);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(!lines[0].contains("straddling"), "{}", lines[0]);
        assert!(lines[0].contains("more bytes not logged"), "{}", lines[0]);

        // Across the hold cut, in a line that redaction shrinks below the
        // message cut: the start of the cut secret is not logged either.
        let long_secret = format!("long-secret-{}", "z".repeat(90));
        let head = http::Request::builder()
            .header("x-functions-key", &long_secret)
            .body(())
            .expect("a request")
            .into_parts()
            .0;
        let long_secrets = crate::context::RequestContext::new(&head).secrets;
        let mut line = Vec::new();
        while line.len() + long_secret.len() < MAX_HELD_LINE - 50 {
            line.extend_from_slice(long_secret.as_bytes());
            line.push(b' ');
        }
        line.resize(MAX_HELD_LINE - 10, b'p');
        line.extend_from_slice(long_secret.as_bytes());
        line.push(b'\n');
        let lines = capture(LogFormat::Text, || {
            let output = GuestOutput::new(
                RequestTrace::untraced(tracing::info_span!("request", correlation_id = "c")),
                long_secrets.clone(),
                Destination::Console,
            );
            output.write(Stdio::Stdout, &line);
        });
        assert_eq!(lines.len(), 1);
        let logged = &lines[0].1;
        assert!(logged.len() < MAX_MESSAGE, "redaction shrank the line");
        assert!(
            !logged.contains("long-s"),
            "{}",
            &logged[logged.len() - 120..]
        );
        assert!(
            logged.contains("pp [102 more bytes not logged]"),
            "the cut secret's 10 bytes and the 92 never held: {}",
            &logged[logged.len() - 120..]
        );

        // A structured line longer than the message cut stays structured.
        let structured = format!(
            r#"{{"level":"error","message":"{}","item_id":"7"}}"#,
            "m".repeat(MAX_MESSAGE + 100)
        );
        let lines = log(format!("{structured}\n").into_bytes());
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("[Error] mmm"), "{}", &lines[0][..40]);
        assert!(lines[0].contains("item_id=7"));
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        assert_eq!(complete_utf8_len("aé".as_bytes()), 3);
        assert_eq!(complete_utf8_len(&"aé".as_bytes()[..2]), 1);
        assert_eq!(complete_utf8_len(&"a€".as_bytes()[..3]), 1);
        assert_eq!(complete_utf8_len(&"a😀".as_bytes()[..4]), 1);
        assert_eq!(complete_utf8_len(b"abc"), 3);
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
