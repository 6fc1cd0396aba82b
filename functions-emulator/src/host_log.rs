//! The console, as `func start` prints it: every line on stdout, each log line
//! prefixed with a UTC timestamp such as `[2026-11-24T00:00:00.000Z]`.
//!
//! `func start` shows levels with colours; here Information lines carry no
//! tag and Warning and Error lines say `[Warning]` or `[Error]` after the
//! timestamp, so the level survives a pipe or a log file:
//!
//! ```text
//! [2026-11-24T00:00:00.000Z] Executing 'Functions.catalog-item' (Reason='...', Id=...)
//! [2026-11-24T00:00:00.001Z] [Information] Handled APIM backend request item_id=42 ...
//! [2026-11-24T00:00:00.002Z] [Error] Executed 'Functions.catalog-item' (Failed, Id=..., Duration=3ms)
//! ```
//!
//! (The second line is a handler's stdout line; `wasm-handler` writes its own
//! `[Information]`.) Everything goes through this module so that lines are
//! written whole, one `write_all` each, however many tasks log at once.

use std::fmt::Display;
use std::io::Write as _;
use std::time::SystemTime;

use functions_contract::log_text;

/// A .NET log level, as far as the console distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Information,
    Warning,
    Error,
}

impl Level {
    /// The level of a line the handler wrote to stderr: the Functions host logs
    /// them as errors, or as warnings when they contain "warn" in any case
    /// (azure-functions-host `src/WebJobs.Script/Workers/ProcessManagement/WorkerProcess.cs`).
    pub(crate) fn of_handler_stderr(line: &str) -> Self {
        if line.to_lowercase().contains("warn") {
            Level::Warning
        } else {
            Level::Error
        }
    }
}

/// Logs `message` at Information.
pub(crate) fn info(message: impl Display) {
    log(Level::Information, message);
}

/// Logs `message` at Warning.
pub(crate) fn warn(message: impl Display) {
    log(Level::Warning, message);
}

/// Logs `message` at Error.
pub(crate) fn error(message: impl Display) {
    log(Level::Error, message);
}

/// Logs `message` at `level`, timestamped now.
pub(crate) fn log(level: Level, message: impl Display) {
    write(&format_line(SystemTime::now(), level, &message.to_string()));
}

/// Writes lines without a timestamp: the banner and the function list.
pub(crate) fn plain(lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    write(&text);
}

/// One log line, newline included. Whatever the message holds (a handler's
/// line, a path), it stays one line: see [`log_text`].
pub(crate) fn format_line(now: SystemTime, level: Level, message: &str) -> String {
    let timestamp = humantime::format_rfc3339_millis(now);
    let message = log_text::escape(message);
    match level {
        Level::Information => format!("[{timestamp}] {message}\n"),
        Level::Warning => format!("[{timestamp}] [Warning] {message}\n"),
        Level::Error => format!("[{timestamp}] [Error] {message}\n"),
    }
}

fn write(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (the reader went away) must not take the host down.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn lines_carry_a_utc_timestamp_and_a_tag_above_information() {
        let now = UNIX_EPOCH + Duration::from_millis(1_795_478_400_007);
        assert_eq!(
            format_line(now, Level::Information, "hello"),
            "[2026-11-24T00:00:00.007Z] hello\n"
        );
        assert_eq!(
            format_line(now, Level::Warning, "careful"),
            "[2026-11-24T00:00:00.007Z] [Warning] careful\n"
        );
        assert_eq!(
            format_line(now, Level::Error, "broken"),
            "[2026-11-24T00:00:00.007Z] [Error] broken\n"
        );
    }

    #[test]
    fn a_message_stays_one_line() {
        let line = format_line(
            UNIX_EPOCH,
            Level::Information,
            "ok\u{2028}[Error] forged\u{85}\u{9b}31m\n",
        );
        assert_eq!(
            line,
            "[1970-01-01T00:00:00.000Z] ok\\u{2028}[Error] forged\\u{85}\\u{9b}31m\\n\n"
        );
    }

    #[test]
    fn handler_stderr_is_an_error_unless_it_warns() {
        assert_eq!(Level::of_handler_stderr("boom"), Level::Error);
        assert_eq!(
            Level::of_handler_stderr("[Warning] slow guest"),
            Level::Warning
        );
        assert_eq!(Level::of_handler_stderr("WARN: disk"), Level::Warning);
        assert_eq!(Level::of_handler_stderr("forewarned"), Level::Warning);
    }
}
