//! The process console, written in batches. Under load the host logs a line
//! per request; one `write` per line was a system call on every request's
//! path (and, behind the Functions host, a wake-up of its pipe reader). Lines
//! are collected per stream and written together when a batch fills or every
//! [`FLUSH_EVERY`], whichever comes first, and once more when the
//! [`FlushGuard`] is dropped at exit, so a line is late by at most that tick
//! and never lost on a clean exit.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// How long a line may wait for its batch.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// A batch this large is written at once, without waiting for the tick.
const BATCH_BYTES: usize = 32 << 10;

/// Which stream a line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A console whose lines go out in batches. Cloning shares the batches.
#[derive(Clone)]
pub struct Console(Arc<Mutex<Batches>>);

struct Batches {
    /// Stdout's and stderr's writers, in [`Stream`] order.
    out: [Box<dyn Write + Send>; 2],
    pending: [Vec<u8>; 2],
}

impl Batches {
    fn flush(&mut self, stream: Stream) {
        let (out, pending) = (
            &mut self.out[stream as usize],
            &mut self.pending[stream as usize],
        );
        if !pending.is_empty() {
            // A console that cannot be written to has nowhere to report it.
            let _ = out.write_all(pending).and_then(|()| out.flush());
            pending.clear();
        }
    }

    fn flush_all(&mut self) {
        self.flush(Stream::Stdout);
        self.flush(Stream::Stderr);
    }
}

/// Writes what is pending when dropped: hold it until the process exits.
#[must_use = "dropping the guard flushes the console; hold it until exit"]
pub struct FlushGuard(Console);

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.0.lock().flush_all();
    }
}

impl Console {
    /// The process's stdout and stderr, flushed every [`FLUSH_EVERY`] by a
    /// thread of its own until the guard is dropped.
    pub fn stdio() -> (Self, FlushGuard) {
        let console = Self::new(Box::new(std::io::stdout()), Box::new(std::io::stderr()));
        console.start_flusher();
        let guard = FlushGuard(console.clone());
        (console, guard)
    }

    /// A console writing to `stdout` and `stderr`, flushed only when a batch
    /// fills or by [`Console::flush`].
    pub fn new(stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>) -> Self {
        Self(Arc::new(Mutex::new(Batches {
            out: [stdout, stderr],
            pending: [
                Vec::with_capacity(BATCH_BYTES),
                Vec::with_capacity(BATCH_BYTES),
            ],
        })))
    }

    /// Adds one complete line (newline included) to `stream`'s batch.
    pub fn write_line(&self, stream: Stream, line: &str) {
        let mut batches = self.lock();
        let pending = &mut batches.pending[stream as usize];
        pending.extend_from_slice(line.as_bytes());
        if pending.len() >= BATCH_BYTES {
            batches.flush(stream);
        }
    }

    /// Writes out every pending line.
    pub fn flush(&self) {
        self.lock().flush_all();
    }

    fn start_flusher(&self) {
        let console = Arc::downgrade(&self.0);
        std::thread::Builder::new()
            .name("console-flush".into())
            .spawn(move || flush_until_dropped(&console))
            .expect("spawning the console flush thread");
    }

    fn lock(&self) -> MutexGuard<'_, Batches> {
        lock(&self.0)
    }
}

fn flush_until_dropped(console: &Weak<Mutex<Batches>>) {
    loop {
        std::thread::sleep(FLUSH_EVERY);
        let Some(batches) = console.upgrade() else {
            return;
        };
        lock(&batches).flush_all();
    }
}

fn lock(batches: &Mutex<Batches>) -> MutexGuard<'_, Batches> {
    // A poisoned lock only means a writer panicked mid-line; the batches are intact.
    batches
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into shared bytes, counting its writes.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut shared = self.0.lock().expect("not poisoned");
            shared.0.extend_from_slice(bytes);
            shared.1 += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("not poisoned").0.clone()).expect("UTF-8")
        }

        fn writes(&self) -> usize {
            self.0.lock().expect("not poisoned").1
        }
    }

    #[test]
    fn lines_wait_for_a_flush_and_keep_their_order_and_stream() {
        let (stdout, stderr) = (Shared::default(), Shared::default());
        let console = Console::new(Box::new(stdout.clone()), Box::new(stderr.clone()));
        console.write_line(Stream::Stdout, "one\n");
        console.write_line(Stream::Stderr, "oops\n");
        console.write_line(Stream::Stdout, "two\n");
        assert_eq!(stdout.text(), "", "nothing is written before a flush");
        console.flush();
        assert_eq!(stdout.text(), "one\ntwo\n");
        assert_eq!(stderr.text(), "oops\n");
        assert_eq!(stdout.writes(), 1, "a batch is one write");
    }

    #[test]
    fn a_full_batch_goes_out_at_once_and_the_guard_flushes_the_rest() {
        let (stdout, stderr) = (Shared::default(), Shared::default());
        let console = Console::new(Box::new(stdout.clone()), Box::new(stderr));
        let line = format!("{}\n", "x".repeat(99));
        let lines = BATCH_BYTES / line.len() + 10;
        for _ in 0..lines {
            console.write_line(Stream::Stdout, &line);
        }
        assert_eq!(stdout.writes(), 1, "the full batch, without a flush");
        drop(FlushGuard(console));
        assert_eq!(stdout.text(), line.repeat(lines));
    }

    #[test]
    fn the_flusher_writes_within_its_tick() {
        let stdout = Shared::default();
        let console = Console::new(Box::new(stdout.clone()), Box::new(Shared::default()));
        console.start_flusher();
        console.write_line(Stream::Stdout, "soon\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while stdout.text().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(FLUSH_EVERY / 2);
        }
        assert_eq!(stdout.text(), "soon\n");
    }
}
