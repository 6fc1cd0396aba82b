//! The host's resident set, open files and threads, read from `/proc`.

use std::sync::Arc;
use std::time::Duration;

use crate::run::Run;

/// How often the RSS is sampled.
pub(crate) const RSS_EVERY: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// One RSS sample.
pub(crate) struct Sample {
    /// Since the start of the run.
    pub(crate) at: Duration,
    /// `VmRSS`, KiB.
    pub(crate) kib: u64,
}

/// Open file descriptors and threads of the host: leaks of either show as
/// growth between the start and the end of the run.
pub(crate) struct Handles {
    pub(crate) fds: Option<u64>,
    pub(crate) threads: Option<u64>,
}

/// The resident set of process `pid` in KiB, from `/proc/<pid>/status`.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_field(pid, "VmRSS:")
}

/// A number from `/proc/<pid>/status`, such as `VmRSS:` (in KiB) or `Threads:`.
fn proc_status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The open file descriptors and threads of process `pid` now.
pub(crate) fn handles(pid: u32) -> Handles {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|entries| entries.count() as u64);
    Handles {
        fds,
        threads: proc_status_field(pid, "Threads:"),
    }
}

/// Samples the host's RSS every second until the run ends, with a progress
/// line now and then.
pub(crate) async fn sample(run: Arc<Run>, pid: u32) -> Vec<Sample> {
    let mut samples: Vec<Sample> = Vec::new();
    let mut ticks = tokio::time::interval(RSS_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_progress = PROGRESS_EVERY;
    while !run.is_over() {
        ticks.tick().await;
        let at = run.elapsed();
        if let Some(kib) = rss_kib(pid) {
            samples.push(Sample { at, kib });
        }
        if at >= next_progress {
            next_progress += PROGRESS_EVERY;
            let (requests, unexpected, lost) = run.progress();
            eprintln!(
                "[soak] {:>4.0} s: {requests} requests, {unexpected} unexpected, {lost} lost, RSS {}",
                at.as_secs_f64(),
                samples
                    .last()
                    .map_or("?".to_owned(), |sample| mib(sample.kib as f64)),
            );
        }
    }
    samples
}

/// `kib` as `12.3 MiB`.
pub(crate) fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

/// The mean of the samples taken at times `within` accepts, KiB.
pub(crate) fn average_kib(samples: &[Sample], within: impl Fn(Duration) -> bool) -> Option<f64> {
    let chosen: Vec<u64> = samples
        .iter()
        .filter(|sample| within(sample.at))
        .map(|sample| sample.kib)
        .collect();
    (!chosen.is_empty()).then(|| chosen.iter().sum::<u64>() as f64 / chosen.len() as f64)
}
