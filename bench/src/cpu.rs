//! Where the machine's CPU time goes, from the scheduler's own accounting in
//! `/proc/PID/stat`. `/proc/stat` is sampled at each tick, which misses much
//! of a ping-pong load's short bursts, so it is not used.
//!
//! Summing `utime + stime + cutime + cstime` over every process also counts
//! the processes that start and end between two snapshots (a build's `rustc`s):
//! their time lands in the `cutime` of whoever reaps them.

use std::time::{Duration, Instant};

/// Clock ticks per second in `/proc` (`USER_HZ`, 100 on every Linux ABI we run on).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time of one process, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessTicks {
    /// `utime`, its threads in user mode.
    pub user: u64,
    /// `stime`, its threads in the kernel.
    pub system: u64,
    /// `cutime + cstime`, its children it has waited for.
    pub children: u64,
}

impl ProcessTicks {
    /// Everything: its own time and its reaped children's.
    pub fn total(self) -> u64 {
        self.user + self.system + self.children
    }

    /// Reads `/proc/<pid>/stat`; `None` if the process is gone.
    pub fn of(pid: &str) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    fn parse(stat: &str) -> Option<Self> {
        // The command name (field 2) is in parentheses and may hold spaces.
        let after_name = stat.get(stat.rfind(')')? + 1..)?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // fields[0] is field 3 of proc(5).
        let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
        Some(Self {
            user: field(14)?,
            system: field(15)?,
            children: field(16)? + field(17)?,
        })
    }

    /// The time used since `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            children: self.children.saturating_sub(earlier.children),
        }
    }
}

/// All the CPU time processes have used, in clock ticks (see the module doc).
pub fn all_processes_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|byte| byte.is_ascii_digit())
        })
        .filter_map(|entry| ProcessTicks::of(&entry.file_name().to_string_lossy()))
        .map(ProcessTicks::total)
        .sum()
}

/// How many cores the machine's processes kept busy over `window`.
pub fn busy_cores(window: Duration) -> f64 {
    let before = all_processes_ticks();
    let started = Instant::now();
    std::thread::sleep(window);
    cores(
        all_processes_ticks().saturating_sub(before),
        started.elapsed(),
    )
}

/// `ticks` of CPU time over `elapsed`, in cores.
pub fn cores(ticks: u64, elapsed: Duration) -> f64 {
    ticks as f64 / TICKS_PER_SECOND / elapsed.as_secs_f64().max(f64::EPSILON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let stat = "4242 (tokio runtime) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 40 7 3 20 0 4 0 1000 0 0";
        assert_eq!(
            ProcessTicks::parse(stat),
            Some(ProcessTicks {
                user: 250,
                system: 40,
                children: 10
            })
        );
        assert_eq!(ProcessTicks::parse("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let own = ProcessTicks::of("self").expect("/proc/self/stat");
        assert!(own.since(own) == ProcessTicks::default());
        assert!(all_processes_ticks() >= own.total());
    }
}
