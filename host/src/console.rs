//! The process console, written in batches by a thread of its own. Under
//! load the host logs a line per request; one `write` per line was a system
//! call on every request's path (and, behind the Functions host, a wake-up
//! of its pipe reader). Request threads only append a line to their stream's
//! batch; the flush thread writes the batches every [`FLUSH_EVERY`], or as
//! soon as one holds [`BATCH_BYTES`], and once more when the [`FlushGuard`]
//! is dropped at exit. A line is late by at most that tick and never lost on
//! a clean exit, and no request waits for the console's I/O (a pipe whose
//! reader, the Functions host, may be slow to drain it). A console nobody
//! reads must not grow the host's memory: past [`MAX_PENDING_BYTES`] a
//! stream's lines are dropped and counted, and the count is logged once the
//! console is written again.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait for its batch.
const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// A batch this large wakes the flush thread before its tick.
const BATCH_BYTES: usize = 32 << 10;
/// Most bytes a stream holds while its writes block; later lines are dropped.
const MAX_PENDING_BYTES: usize = 4 << 20;

/// One of the two standard output streams: of the process for the
/// console, of a guest for [`crate::guest_output`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdio {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A console whose lines go out in batches. Cloning shares the batches.
#[derive(Clone)]
pub(crate) struct Console(Arc<Shared>);

struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when a batch is full or the console is closing.
    wake: Condvar,
    /// Stdout's and stderr's writers, in [`Stdio`] order. Held for a whole
    /// flush, so batches are written in the order they were taken.
    out: Mutex<[Box<dyn Write + Send>; 2]>,
}

#[derive(Default)]
struct Pending {
    batches: [Vec<u8>; 2],
    /// Emptied batches, swapped in at the next flush: the same buffers go
    /// round, with no allocation per flush.
    spare: [Vec<u8>; 2],
    /// Lines dropped per stream since the last flush.
    dropped: [u64; 2],
    closing: bool,
}

impl Pending {
    fn is_full(&self) -> bool {
        self.batches.iter().any(|batch| batch.len() >= BATCH_BYTES)
    }
}

/// Writes what is pending when dropped, and stops the flush thread: hold it
/// until the process exits.
#[must_use = "dropping the guard flushes the console; hold it until exit"]
pub(crate) struct FlushGuard {
    console: Console,
    flusher: Option<JoinHandle<()>>,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.console.pending().closing = true;
        self.console.0.wake.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        // A second flush writes the notice of dropped lines the first one logged.
        if self.console.flush() > 0 {
            self.console.flush();
        }
    }
}

impl Console {
    /// The process's stdout and stderr, written by a flush thread until the
    /// guard is dropped.
    pub(crate) fn stdio() -> (Self, FlushGuard) {
        let console = Self::new(Box::new(std::io::stdout()), Box::new(std::io::stderr()));
        let guard = console.start_flusher();
        (console, guard)
    }

    /// A console writing to `stdout` and `stderr` only when flushed (see
    /// [`Console::stdio`] for one with a flush thread).
    pub(crate) fn new(stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>) -> Self {
        Self(Arc::new(Shared {
            pending: Mutex::default(),
            wake: Condvar::new(),
            out: Mutex::new([stdout, stderr]),
        }))
    }

    /// Adds one complete line (newline included) to `stream`'s batch, or
    /// drops it if the batch is full because writes block.
    pub(crate) fn write_line(&self, stream: Stdio, line: &str) {
        let mut pending = self.pending();
        if pending.batches[stream as usize].len() + line.len() > MAX_PENDING_BYTES {
            pending.dropped[stream as usize] += 1;
            return;
        }
        let batch = &mut pending.batches[stream as usize];
        let was_short = batch.len() < BATCH_BYTES;
        batch.extend_from_slice(line.as_bytes());
        if was_short && batch.len() >= BATCH_BYTES {
            self.0.wake.notify_one();
        }
    }

    /// Writes out every pending line, then logs how many lines were
    /// dropped since the last flush, if any, and returns that number.
    pub(crate) fn flush(&self) -> u64 {
        let mut out = lock(&self.0.out);
        let (mut batches, dropped) = {
            let mut pending = self.pending();
            let spare = std::mem::take(&mut pending.spare);
            let dropped = std::mem::take(&mut pending.dropped);
            (std::mem::replace(&mut pending.batches, spare), dropped)
        };
        for (out, batch) in out.iter_mut().zip(&mut batches) {
            if !batch.is_empty() {
                // A console that cannot be written to has nowhere to report it.
                let _ = out.write_all(batch).and_then(|()| out.flush());
                batch.clear();
            }
        }
        self.pending().spare = batches;
        drop(out);
        for (stream, dropped) in [Stdio::Stdout, Stdio::Stderr].into_iter().zip(dropped) {
            if dropped > 0 {
                tracing::warn!(
                    dropped_lines = dropped,
                    stream = ?stream,
                    "The console was not read for a while: {dropped} log lines were dropped"
                );
            }
        }
        dropped.iter().sum()
    }

    /// Starts the flush thread; it runs until the returned guard is dropped.
    fn start_flusher(&self) -> FlushGuard {
        let console = self.clone();
        let flusher = std::thread::Builder::new()
            .name("console-flush".into())
            .spawn(move || console.flush_until_closed())
            .expect("spawning the console flush thread");
        FlushGuard {
            console: self.clone(),
            flusher: Some(flusher),
        }
    }

    fn flush_until_closed(&self) {
        loop {
            let pending = self.pending();
            let (pending, _) = self
                .0
                .wake
                .wait_timeout_while(pending, FLUSH_EVERY, |pending| {
                    !pending.closing && !pending.is_full()
                })
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let closing = pending.closing;
            drop(pending);
            let _ = self.flush();
            if closing {
                return;
            }
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        lock(&self.0.pending)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a writer panicked mid-line; the data is intact.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into shared bytes, counting its writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut captured = self.0.lock().expect("not poisoned");
            captured.0.extend_from_slice(bytes);
            captured.1 += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("not poisoned").0.clone()).expect("UTF-8")
        }

        fn writes(&self) -> usize {
            self.0.lock().expect("not poisoned").1
        }
    }

    fn console() -> (Console, Captured, Captured) {
        let (stdout, stderr) = (Captured::default(), Captured::default());
        let console = Console::new(Box::new(stdout.clone()), Box::new(stderr.clone()));
        (console, stdout, stderr)
    }

    #[test]
    fn lines_wait_for_a_flush_and_keep_their_order_and_stream() {
        let (console, stdout, stderr) = console();
        console.write_line(Stdio::Stdout, "one\n");
        console.write_line(Stdio::Stderr, "oops\n");
        console.write_line(Stdio::Stdout, "two\n");
        assert_eq!(stdout.text(), "", "nothing is written before a flush");
        console.flush();
        assert_eq!(stdout.text(), "one\ntwo\n");
        assert_eq!(stderr.text(), "oops\n");
        assert_eq!(stdout.writes(), 1, "a batch is one write");
    }

    #[test]
    fn a_console_nobody_reads_holds_a_bounded_amount_and_counts_the_rest() {
        let (console, stdout, _) = console();
        let line = format!("{}\n", "x".repeat(1023));
        let lines = 2 * MAX_PENDING_BYTES / line.len();
        for _ in 0..lines {
            console.write_line(Stdio::Stdout, &line);
        }
        let held = console.pending().batches[Stdio::Stdout as usize].len();
        assert!(held <= MAX_PENDING_BYTES, "{held} bytes held");
        let kept = MAX_PENDING_BYTES / line.len();
        assert_eq!(console.flush(), (lines - kept) as u64);
        assert_eq!(stdout.text().len(), kept * line.len());
        assert_eq!(console.flush(), 0, "counted once");
        console.write_line(Stdio::Stdout, "again\n");
        console.flush();
        assert!(
            stdout.text().ends_with("x\nagain\n"),
            "lines are kept again"
        );
    }

    #[test]
    fn the_flush_thread_writes_within_its_tick() {
        let (console, stdout, _) = console();
        let _guard = console.start_flusher();
        console.write_line(Stdio::Stdout, "soon\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while stdout.text().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(FLUSH_EVERY / 2);
        }
        assert_eq!(stdout.text(), "soon\n");
    }

    #[test]
    fn dropping_the_guard_writes_every_line_and_stops_the_flush_thread() {
        let (console, stdout, stderr) = console();
        let guard = console.start_flusher();
        let line = format!("{}\n", "x".repeat(99));
        let lines = 3 * BATCH_BYTES / line.len();
        for n in 0..lines {
            console.write_line(Stdio::Stdout, &line);
            if n % 100 == 0 {
                console.write_line(Stdio::Stderr, "e\n");
            }
        }
        drop(guard);
        assert_eq!(stdout.text(), line.repeat(lines));
        assert_eq!(stderr.text(), "e\n".repeat(lines.div_ceil(100)));
    }
}
