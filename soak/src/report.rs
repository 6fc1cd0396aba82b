//! The report: requests by kind with their answers, errors, unexpected
//! answers and lost requests, the RSS over the run, and the verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitStatus;
use std::time::Duration;

use crate::checks::Outcome;
use crate::mix::Kind;
use crate::rss::{Handles, RSS_EVERY, Sample, mib};
use crate::run::{OVERLOAD_EVERY, OVERLOAD_FIRST_AFTER};

/// Failures printed with their detail.
const FAILURES_SHOWN: usize = 10;

/// Counts of one kind of request.
#[derive(Default)]
pub(crate) struct KindTally {
    requests: u64,
    by_label: BTreeMap<String, u64>,
    total_time: Duration,
    longest: Duration,
}

/// Everything counted during the run.
#[derive(Default)]
pub(crate) struct Tally {
    by_kind: BTreeMap<Kind, KindTally>,
    by_label: BTreeMap<String, u64>,
    pub(crate) unexpected: u64,
    pub(crate) lost: u64,
    failures: Vec<String>,
}

impl Tally {
    pub(crate) fn record(&mut self, kind: Kind, outcome: Outcome, took: Duration, at: Duration) {
        let label = match outcome {
            Outcome::Expected(label) => label,
            Outcome::Unexpected(label, why) => {
                self.unexpected += 1;
                self.note_failure(format!(
                    "{at:.1?} unexpected {} ({label}): {why}",
                    kind.describe()
                ));
                label
            }
            Outcome::Lost(why) => {
                self.lost += 1;
                self.note_failure(format!("{at:.1?} lost {}: {why}", kind.describe()));
                "lost".to_owned()
            }
        };
        let counts = self.by_kind.entry(kind).or_default();
        counts.requests += 1;
        counts.total_time += took;
        counts.longest = counts.longest.max(took);
        *counts.by_label.entry(label.clone()).or_default() += 1;
        *self.by_label.entry(label).or_default() += 1;
    }

    pub(crate) fn note_failure(&mut self, failure: String) {
        if self.failures.len() < FAILURES_SHOWN {
            eprintln!("[soak] {failure}");
            self.failures.push(failure);
        }
    }

    pub(crate) fn requests(&self) -> u64 {
        self.by_kind.values().map(|counts| counts.requests).sum()
    }
}

/// What the RSS samples came to.
pub(crate) struct RssFigures<'a> {
    /// Before the load, KiB.
    pub(crate) at_start: u64,
    /// The length of the first and the last window.
    pub(crate) window: Duration,
    /// Mean over the first window, KiB.
    pub(crate) first: Option<f64>,
    /// Mean over the last window, KiB.
    pub(crate) last: Option<f64>,
    /// `last - first`, KiB.
    pub(crate) growth: Option<f64>,
    /// The largest sample, KiB.
    pub(crate) peak: Option<u64>,
    /// The largest growth that passes, KiB.
    pub(crate) limit: u64,
    /// Every sample: when, and KiB.
    pub(crate) samples: &'a [Sample],
}

/// Everything the report says.
pub(crate) struct Report<'a> {
    pub(crate) ran_for: Duration,
    pub(crate) workers: u32,
    pub(crate) duration: Duration,
    pub(crate) pid: u32,
    pub(crate) host_args: String,
    pub(crate) tally: &'a Tally,
    pub(crate) rss: RssFigures<'a>,
    pub(crate) handles_at_start: Handles,
    pub(crate) handles_at_end: Handles,
    pub(crate) still_serving: bool,
    pub(crate) exit: ExitStatus,
    pub(crate) shutdown_took: Duration,
    pub(crate) passed: bool,
    pub(crate) host_stderr: &'a [String],
}

impl Report<'_> {
    /// The report as text.
    pub(crate) fn render(&self) -> String {
        let mut report = String::new();
        let tally = self.tally;
        let requests = tally.requests();
        let _ = writeln!(
            report,
            "soak: {:.0} s, {} mixed workers + 1 heavy-fault worker + an overload round at {} s and every {} s, one wasm-handler process (pid {}) on loopback",
            self.ran_for.as_secs_f64(),
            self.workers,
            OVERLOAD_FIRST_AFTER.as_secs(),
            OVERLOAD_EVERY.as_secs(),
            self.pid,
        );
        let _ = writeln!(report, "host: wasm-handler serve {}", self.host_args);
        let _ = writeln!(
            report,
            "requests: {requests} ({:.0}/s)",
            requests as f64 / self.ran_for.as_secs_f64()
        );
        let _ = writeln!(
            report,
            "\n{:<40} {:>9}  {:>9} {:>9}  answers",
            "kind", "requests", "mean ms", "max ms"
        );
        for (kind, counts) in &tally.by_kind {
            let answers: Vec<String> = counts
                .by_label
                .iter()
                .map(|(label, count)| format!("{label}: {count}"))
                .collect();
            let _ = writeln!(
                report,
                "{:<40} {:>9}  {:>9.1} {:>9.1}  {}",
                kind.describe(),
                counts.requests,
                counts.total_time.as_secs_f64() * 1e3 / counts.requests as f64,
                counts.longest.as_secs_f64() * 1e3,
                answers.join(", ")
            );
        }
        let (good, errors): (Vec<_>, Vec<_>) = tally
            .by_label
            .iter()
            .partition(|(label, _)| label.parse::<u16>().is_ok_and(|status| status < 400));
        let listed = |answers: Vec<(&String, &u64)>| {
            let answers: Vec<String> = answers
                .into_iter()
                .map(|(label, count)| format!("{label}: {count}"))
                .collect();
            answers.join(", ")
        };
        let _ = writeln!(report, "\ngood answers: {}", listed(good));
        let _ = writeln!(report, "errors by status: {}", listed(errors));
        let _ = writeln!(report, "unexpected: {}", tally.unexpected);
        let _ = writeln!(report, "lost: {}", tally.lost);
        for failure in &tally.failures {
            let _ = writeln!(report, "  {failure}");
        }
        self.render_rss(&mut report);
        let show_count =
            |count: Option<u64>| count.map_or_else(|| "?".to_owned(), |n| n.to_string());
        let _ = writeln!(
            report,
            "open fds: {} at start, {} after the load; threads: {} at start, {} after the load",
            show_count(self.handles_at_start.fds),
            show_count(self.handles_at_end.fds),
            show_count(self.handles_at_start.threads),
            show_count(self.handles_at_end.threads),
        );
        let _ = writeln!(
            report,
            "after the load: {}; SIGTERM -> {} in {:.0?}",
            if self.still_serving {
                "still serving"
            } else {
                "NOT serving"
            },
            self.exit,
            self.shutdown_took,
        );
        let _ = writeln!(
            report,
            "result: {}",
            if self.passed { "PASS" } else { "FAIL" }
        );
        if !self.passed && !self.exit.success() {
            let tail = &self.host_stderr[self.host_stderr.len().saturating_sub(20)..];
            let _ = writeln!(report, "host stderr (last lines):\n{}", tail.join("\n"));
        }
        report
    }

    fn render_rss(&self, report: &mut String) {
        let rss = &self.rss;
        let show = |kib: Option<f64>| kib.map_or_else(|| "?".to_owned(), mib);
        let _ = writeln!(
            report,
            "RSS: at start {}, first {} s {} (mean), last {} s {} (mean), growth {}{} (limit {}), peak {}",
            mib(rss.at_start as f64),
            rss.window.as_secs(),
            show(rss.first),
            rss.window.as_secs(),
            show(rss.last),
            if rss.growth.is_some_and(|growth| growth >= 0.0) {
                "+"
            } else {
                ""
            },
            show(rss.growth),
            mib(rss.limit as f64),
            show(rss.peak.map(|kib| kib as f64)),
        );
        let every = (self.duration / 10).max(RSS_EVERY);
        let timeline: Vec<String> = rss
            .samples
            .iter()
            .scan(Duration::ZERO, |next, sample| {
                let due = sample.at >= *next;
                if due {
                    *next = sample.at + every;
                }
                Some(due.then(|| {
                    format!(
                        "{:.0}s {:.1}",
                        sample.at.as_secs_f64(),
                        sample.kib as f64 / 1024.0
                    )
                }))
            })
            .flatten()
            .collect();
        let _ = writeln!(report, "RSS over the run (MiB): {}", timeline.join(", "));
    }
}
