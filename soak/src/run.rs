//! The load: the mixed workers, the heavy-fault worker and the overload
//! rounds, sharing one target, one tally and one gate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::RwLock;

use crate::checks::Outcome;
use crate::mix::{HEAVY, Kind, Target, pick_from_mix};
use crate::report::Tally;

/// How often the overload round runs, when it first runs, and when its
/// extra request is sent.
pub(crate) const OVERLOAD_EVERY: Duration = Duration::from_secs(20);
pub(crate) const OVERLOAD_FIRST_AFTER: Duration = Duration::from_secs(1);
const OVERLOAD_PROBE_AFTER: Duration = Duration::from_millis(300);
/// Lets instances of the requests answered just before a pause go away.
const OVERLOAD_SETTLE: Duration = Duration::from_millis(100);

/// What every task of the run shares.
pub(crate) struct Run {
    target: Target,
    tally: Mutex<Tally>,
    /// Held shared for each request, exclusively by the overload round, which
    /// needs the host to itself.
    gate: RwLock<()>,
    started: Instant,
    ends: Instant,
}

impl Run {
    /// A run against `target` that lasts `duration` from now.
    pub(crate) fn new(target: Target, duration: Duration) -> Self {
        let started = Instant::now();
        Self {
            target,
            tally: Mutex::default(),
            gate: RwLock::new(()),
            started,
            ends: started + duration,
        }
    }

    /// Time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Requests so far, unexpected answers, lost requests.
    pub(crate) fn progress(&self) -> (u64, u64, u64) {
        let tally = self.tally();
        (tally.requests(), tally.unexpected, tally.lost)
    }

    /// What has been counted.
    pub(crate) fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().expect("not poisoned")
    }

    /// Whether the run's time is up.
    pub(crate) fn is_over(&self) -> bool {
        Instant::now() >= self.ends
    }

    /// Sends one request when the gate is open and counts its outcome.
    async fn request(&self, kind: Kind, rng: &mut fastrand::Rng) {
        let _open = self.gate.read().await;
        let sent = Instant::now();
        let outcome = self.target.send(kind, rng).await;
        self.record(kind, outcome, sent);
    }

    fn record(&self, kind: Kind, outcome: Outcome, sent: Instant) {
        self.tally()
            .record(kind, outcome, sent.elapsed(), sent - self.started);
    }
}

/// Sends requests from the mix, one at a time, until the run is over.
pub(crate) async fn mixed_worker(run: Arc<Run>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    while !run.is_over() {
        let kind = pick_from_mix(&mut rng);
        run.request(kind, &mut rng).await;
    }
}

/// Sends the costly faults in turn, one at a time, until the run is over.
pub(crate) async fn heavy_worker(run: Arc<Run>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    for kind in HEAVY.iter().cycle() {
        if run.is_over() {
            break;
        }
        run.request(*kind, &mut rng).await;
    }
}

/// After [`OVERLOAD_FIRST_AFTER`] and then every [`OVERLOAD_EVERY`]: pause
/// the load, hold every instance with a slow request, check that one more is
/// refused with 503, and let the load go on.
pub(crate) async fn overload_rounds(run: Arc<Run>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pause = OVERLOAD_FIRST_AFTER;
    loop {
        tokio::time::sleep(pause).await;
        pause = OVERLOAD_EVERY;
        if run.ends.saturating_duration_since(Instant::now()) < OVERLOAD_EVERY / 2 {
            break;
        }
        let _paused = run.gate.write().await;
        tokio::time::sleep(OVERLOAD_SETTLE).await;
        let holds: Vec<_> = (0..run.target.max_instances)
            .map(|_| {
                let run = run.clone();
                tokio::spawn(async move {
                    let sent = Instant::now();
                    let mut rng = fastrand::Rng::new();
                    let outcome = run.target.send(Kind::OverloadHold, &mut rng).await;
                    run.record(Kind::OverloadHold, outcome, sent);
                })
            })
            .collect();
        tokio::time::sleep(OVERLOAD_PROBE_AFTER).await;
        let sent = Instant::now();
        let outcome = run.target.send(Kind::OverloadRefused, &mut rng).await;
        run.record(Kind::OverloadRefused, outcome, sent);
        for hold in holds {
            hold.await.expect("a hold request task");
        }
    }
}
