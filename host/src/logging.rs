//! Log output. Everything is logged through `tracing`; this layer writes one
//! line per event the way the Functions host reads a custom handler's console:
//! Information and below on stdout, Warning and Error on stderr (the host logs
//! every stderr line as an error, or a warning when it contains "warn").
//!
//! Text lines use .NET level names and `name=value` fields, as in
//! `[Information] Handled APIM backend request item_id=42 correlation_id=6d9f`;
//! `func start` and Azure add the timestamp. JSON lines carry everything,
//! timestamp and span fields included.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::Write as _;
use std::time::SystemTime;

use functions_contract::log_text;
use serde::ser::{Serialize, Serializer};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::console::{self, Console, FlushGuard};
use crate::guest_output;

/// The environment variable with the log filter (`tracing` directives).
pub(crate) const FILTER_ENV: &str = "WASM_HANDLER_LOG";
/// The field that text lines show from the enclosing request span.
const CORRELATION_ID: &str = "correlation_id";
/// The fields that text lines show from the enclosing spans: a traced
/// request's ids, and the shared instance whose guest wrote the line
/// ([`crate::shared`]: its lines belong to no one request).
const SHOWN_SPAN_FIELDS: [&str; 3] = ["trace_id", "span_id", "shared_instance"];

thread_local! {
    /// A guest line's own fields, parsed once ([`crate::guest_output`]), on
    /// their way to the one event that logs them ([`with_guest_fields`]).
    static GUEST_FIELDS: Cell<Option<Map<String, Value>>> = const { Cell::new(None) };
}

/// Runs `emit`, which logs one event with target [`guest_output::TARGET`],
/// with `fields` as that event's fields. A `tracing` field carries only
/// scalars and strings; rendering a guest's fields to a string for the
/// layer to parse back was most of what a guest line cost (perf, under
/// load). The event is formatted on this thread, inside `emit`.
pub(crate) fn with_guest_fields(fields: Map<String, Value>, emit: impl FnOnce()) {
    GUEST_FIELDS.set(Some(fields));
    emit();
    // Filtered out, the event never took them.
    GUEST_FIELDS.take();
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// `[Information] message name=value ...`, for people.
    Text,
    /// One JSON object a line, for machines.
    Json,
}

/// Installs the global subscriber: the filter from [`FILTER_ENV`] (default
/// `info`) and the console layer. Lines are written in batches: hold the
/// guard until exit, when it writes the last ones.
pub(crate) fn init(format: LogFormat) -> wasmtime::Result<FlushGuard> {
    let filter = EnvFilter::try_from_env(FILTER_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let (console, guard) = Console::stdio();
    tracing_subscriber::registry()
        .with(filter)
        .with(ConsoleLayer::new(format, console))
        .try_init()
        .map_err(|e| wasmtime::format_err!("installing the log subscriber: {e}"))?;
    Ok(guard)
}

/// Where formatted lines go.
pub(crate) trait LineSink: Send + Sync + 'static {
    /// Writes one complete line (newline included) logged at `level`.
    fn write_line(&self, level: Level, line: &str);
}

/// The process console: stdout for Information and below, stderr above.
impl LineSink for Console {
    fn write_line(&self, level: Level, line: &str) {
        let stream = if level <= Level::WARN {
            console::Stdio::Stderr
        } else {
            console::Stdio::Stdout
        };
        Console::write_line(self, stream, line);
    }
}

/// The layer that formats events into lines.
pub(crate) struct ConsoleLayer<W> {
    format: LogFormat,
    sink: W,
}

impl<W: LineSink> ConsoleLayer<W> {
    /// A layer writing `format` lines to `sink`.
    pub(crate) fn new(format: LogFormat, sink: W) -> Self {
        Self { format, sink }
    }
}

/// Recorded fields of a span or event, in order.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: Vec<(String, Value)>,
}

impl Fields {
    fn set(&mut self, name: &str, value: Value) {
        match self.slot(name) {
            Some(slot) => *slot = value,
            None => self.values.push((name.to_owned(), value)),
        }
    }

    fn set_owned(&mut self, name: String, value: Value) {
        match self.slot(&name) {
            Some(slot) => *slot = value,
            None => self.values.push((name, value)),
        }
    }

    fn slot(&mut self, name: &str) -> Option<&mut Value> {
        self.values
            .iter_mut()
            .find(|(existing, _)| existing == name)
            .map(|(_, value)| value)
    }

    fn get(&self, name: &str) -> Option<&Value> {
        find(
            self.values
                .iter()
                .map(|(name, value)| (name.as_str(), value)),
            name,
        )
    }
}

/// The value of `name` among `fields`.
fn find<'v>(
    mut fields: impl Iterator<Item = (&'v str, &'v Value)>,
    name: &str,
) -> Option<&'v Value> {
    fields
        .find(|(existing, _)| *existing == name)
        .map(|(_, value)| value)
}

/// The fields of an event's spans, from the root, each name once with its
/// innermost value; borrowed, not copied, for every event.
fn span_fields<'f>(spans: impl IntoIterator<Item = &'f Fields>) -> Vec<(&'f str, &'f Value)> {
    let mut merged: Vec<(&str, &Value)> = Vec::new();
    for (name, value) in spans.into_iter().flat_map(|fields| &fields.values) {
        match merged.iter_mut().find(|(existing, _)| existing == name) {
            Some((_, slot)) => *slot = value,
            None => merged.push((name, value)),
        }
    }
    merged
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            name => self.set(name, Value::String(value.to_owned())),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            // Formatted once, into the line's message.
            "message" => self.message = Some(format!("{value:?}")),
            _ => self.record_str(field, &format!("{value:?}")),
        }
    }
}

impl<S, W> Layer<S> for ConsoleLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: LineSink,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        if metadata.target() == guest_output::TARGET
            && let Some(guest) = GUEST_FIELDS.take()
        {
            guest
                .into_iter()
                .for_each(|(name, value)| fields.set_owned(name, value));
        }
        let spans: Vec<_> = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().collect())
            .unwrap_or_default();
        let extensions: Vec<_> = spans.iter().map(|span| span.extensions()).collect();
        let spans = span_fields(extensions.iter().filter_map(|e| e.get::<Fields>()));
        let line = match self.format {
            LogFormat::Text => text_line(*metadata.level(), &fields, &spans),
            LogFormat::Json => json_line(*metadata.level(), metadata.target(), &fields, &spans),
        };
        self.sink.write_line(*metadata.level(), &line);
    }
}

/// .NET `LogLevel` names, as the Functions host prints them.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "Error",
        Level::WARN => "Warning",
        Level::INFO => "Information",
        Level::DEBUG => "Debug",
        _ => "Trace",
    }
}

fn text_line(level: Level, event: &Fields, spans: &[(&str, &Value)]) -> String {
    let span = |name| find(spans.iter().copied(), name);
    let correlation_id = span(CORRELATION_ID).and_then(Value::as_str);
    // A traced request's ids, so a text line finds its trace too.
    let trace_ids = SHOWN_SPAN_FIELDS
        .iter()
        .filter(|name| event.get(name).is_none())
        .filter_map(|name| Some((*name, span(name)?)));
    let fields = event
        .values
        .iter()
        .map(|(name, value)| (name.as_str(), value))
        .chain(trace_ids);
    let mut line = render_text(
        level,
        event.message.as_deref().unwrap_or(""),
        fields,
        correlation_id,
    );
    line.push('\n');
    line
}

/// A text line without its newline: `[Level] message name=value ...`, with
/// `correlation_id` added when the fields lack one. Console lines and
/// payload-mode `Logs` entries are both written by this function.
pub(crate) fn render_text<'f>(
    level: Level,
    message: &str,
    fields: impl IntoIterator<Item = (&'f str, &'f Value)>,
    correlation_id: Option<&str>,
) -> String {
    let mut line = format!("[{}] {}", level_name(level), log_text::escape(message));
    let mut has_correlation_id = false;
    for (name, value) in fields {
        has_correlation_id |= name == CORRELATION_ID;
        write_text_field(&mut line, name, value);
    }
    if let Some(id) = correlation_id.filter(|_| !has_correlation_id) {
        write_text_field(&mut line, CORRELATION_ID, &Value::String(id.to_owned()));
    }
    line
}

fn write_text_field(line: &mut String, name: &str, value: &Value) {
    match value {
        Value::String(text) if is_bare(text) => {
            let _ = write!(line, " {name}={text}");
        }
        // Quoted and escaped: the line stays one line and `name=value` stays
        // parseable. Written in place; copied only if JSON left a line
        // breaker in it (JSON escapes C0 controls, not NEL or U+2028).
        other => {
            let start = line.len();
            let _ = write!(line, " {name}={other}");
            if let Cow::Owned(escaped) = log_text::escape(&line[start..]) {
                line.truncate(start);
                line.push_str(&escaped);
            }
        }
    }
}

/// Whether a text value can be written without quotes.
fn is_bare(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || log_text::is_unsafe(c) || matches!(c, '"' | '=' | '\\'))
}

fn json_line(level: Level, target: &str, event: &Fields, spans: &[(&str, &Value)]) -> String {
    let timestamp = Value::String(humantime::format_rfc3339_micros(SystemTime::now()).to_string());
    let level = Value::from(level_name(level));
    let message = Value::String(event.message.clone().unwrap_or_default());
    let target = Value::from(target);
    let mut members: Vec<(&str, &Value)> = vec![
        ("timestamp", &timestamp),
        ("level", &level),
        ("message", &message),
    ];
    // The event's fields before its spans'; the host's own members first.
    for (name, value) in event
        .values
        .iter()
        .map(|(name, value)| (name.as_str(), value))
        .chain(spans.iter().copied())
    {
        if !members.iter().any(|(existing, _)| *existing == name) {
            members.push((name, value));
        }
    }
    match members.iter_mut().find(|(name, _)| *name == "target") {
        Some((_, slot)) => *slot = &target,
        None => members.push(("target", &target)),
    }
    let object = JsonObject(&members);
    let mut line = log_text::escape_json(serde_json::to_string(&object).unwrap_or_default());
    line.push('\n');
    line
}

/// Members serialised as one JSON object, in order, without copying them.
struct JsonObject<'m>(&'m [(&'m str, &'m Value)]);

impl Serialize for JsonObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Lines captured by a test subscriber.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<(Level, String)>>>);

    impl Captured {
        pub(crate) fn lines(&self) -> Vec<(Level, String)> {
            self.0.lock().expect("not poisoned").clone()
        }
    }

    impl LineSink for Captured {
        fn write_line(&self, level: Level, line: &str) {
            self.0
                .lock()
                .expect("not poisoned")
                .push((level, line.to_owned()));
        }
    }

    /// Runs `f` with a subscriber that captures `format` lines at all levels.
    pub(crate) fn capture(format: LogFormat, f: impl FnOnce()) -> Vec<(Level, String)> {
        let captured = Captured::default();
        let subscriber =
            tracing_subscriber::registry().with(ConsoleLayer::new(format, captured.clone()));
        tracing::subscriber::with_default(subscriber, f);
        captured.lines()
    }

    /// Logs `emit`'s event with `fields` as a guest line's own fields.
    fn guest_line(fields: Value, emit: impl FnOnce()) {
        let Value::Object(fields) = fields else {
            panic!("an object")
        };
        with_guest_fields(fields, emit);
    }

    #[test]
    fn text_lines_read_like_the_functions_console() {
        let lines = capture(LogFormat::Text, || {
            let span =
                tracing::info_span!("request", correlation_id = "6d9f", invocation_id = "inv-1");
            let guest = serde_json::json!({"item_id":"42","routed_by":"azure-api-management","correlation_id":"6d9f","cache_status":"hit"});
            guest_line(
                guest,
                || tracing::info!(target: "guest", parent: &span, "Handled APIM backend request"),
            );
            tracing::error!(parent: &span, error = "boom \"quoted\"", "The component trapped");
            tracing::warn!("multi\nline");
        });
        assert_eq!(
            lines,
            [
                (
                    Level::INFO,
                    "[Information] Handled APIM backend request item_id=42 routed_by=azure-api-management \
                     correlation_id=6d9f cache_status=hit\n"
                        .to_owned()
                ),
                (
                    Level::ERROR,
                    "[Error] The component trapped error=\"boom \\\"quoted\\\"\" correlation_id=6d9f\n".to_owned()
                ),
                (Level::WARN, "[Warning] multi\\nline\n".to_owned()),
            ]
        );
    }

    #[test]
    fn json_lines_carry_event_and_span_fields() {
        let lines = capture(LogFormat::Json, || {
            let span =
                tracing::info_span!("request", correlation_id = "6d9f", invocation_id = "inv-1");
            guest_line(
                serde_json::json!({"item_id": "42", "n": 3}),
                || tracing::info!(target: "guest", parent: &span, "Handled"),
            );
        });
        let [(Level::INFO, line)] = lines.as_slice() else {
            panic!("one info line: {lines:?}")
        };
        let object: Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(object["level"], "Information");
        assert_eq!(object["message"], "Handled");
        assert_eq!(object["item_id"], "42");
        assert_eq!(object["n"], 3);
        assert_eq!(object["correlation_id"], "6d9f");
        assert_eq!(object["invocation_id"], "inv-1");
        assert_eq!(object["target"], "guest");
        assert!(
            object["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }

    #[test]
    fn no_field_or_message_can_forge_a_line_in_either_format() {
        let forged = "ok\u{2028}[Error] forged\u{85}x\u{9b}31m\u{202e}\r\ny";
        let log = || {
            let span = tracing::info_span!("request", correlation_id = "c");
            tracing::info!(parent: &span, header = forged, "{forged}");
            guest_line(
                serde_json::json!({ "path": forged }),
                || tracing::info!(target: "guest", parent: &span, "m"),
            );
        };
        let breakers = ['\n', '\r', '\u{85}', '\u{9b}', '\u{2028}', '\u{202e}'];
        for format in [LogFormat::Text, LogFormat::Json] {
            for (_, line) in capture(format, log) {
                let line = line.strip_suffix('\n').expect("one newline, at the end");
                assert!(!line.contains(breakers), "{format:?}: {line}");
                if format == LogFormat::Json {
                    let object: Value = serde_json::from_str(line).expect("still JSON");
                    assert!(object.to_string().contains("forged"));
                }
            }
        }
    }
}
