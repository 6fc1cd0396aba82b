//! The soak run: one `wasm-handler` process on loopback serving the catalog
//! at `/api` and the `misbehave` guest at `/api/faults`, a bounded mixed load
//! for a fixed time, then a report. `scripts/soak` builds and runs it.
//!
//! - `--workers` tasks (default 8) each keep one request in flight, picked at
//!   random from [`MIX`]: mostly good catalog requests, plus every fault that
//!   answers at once and every refusal of the host's limits;
//! - one more task cycles through the costly faults ([`HEAVY`]: a spinning
//!   loop and a sleep cut at the 1 s deadline, memory exhaustion, a large
//!   body), so at most one guest spins at a time on a small machine;
//! - right after the start and then every [`OVERLOAD_EVERY`] the load pauses
//!   while an overload round holds every instance with slow requests and
//!   checks that one more gets `503` with `Retry-After`. The first round comes
//!   at once so that every pool slot has held an instance before the first
//!   minute's RSS is taken: a slot keeps what its guests touched, up to a
//!   bound, so the slots' share of RSS rises while they fill and then stops;
//! - the host's RSS (`VmRSS`) is sampled every second.
//!
//! Every request has one expected outcome (status, and what the body or
//! headers must say). Exits non-zero when an answer was unexpected, a request
//! was lost (no answer where one was due), the average RSS of the last minute
//! (last 20% of a shorter run) is more than [`RSS_GROWTH_LIMIT_KIB`] above the
//! first's, or the host does not exit 0 on SIGTERM.

mod checks;
mod mix;
mod report;
mod rss;
mod run;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use clap::Parser;
use test_harness::functions_host::Forward;
use test_harness::http as client;
use test_harness::{Handler, current_binary, guests};

use crate::mix::{Item, Target};
use crate::report::{Report, RssFigures};
use crate::run::Run;

/// Runs a bounded mixed load against one wasm-handler process and reports
/// requests, answers by status, unexpected answers, lost requests and RSS.
#[derive(Parser)]
struct Options {
    /// How long the load runs (`60s`, `5m`)
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Tasks sending the random mix, one request in flight each
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
    /// The host's --max-instance-reuse-count for both routes: above 1, the
    /// same load runs on reused instances, which every fault must retire
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    max_instance_reuse_count: u32,
}

/// The host's limits for the run. The deadline is short so that looping
/// guests are cut quickly; the body and header limits are small so that
/// refusing them is cheap.
pub(crate) const REQUEST_TIMEOUT: &str = "1s";
pub(crate) const MAX_MEMORY_MIB: usize = 32;
pub(crate) const MAX_REQUEST_BODY: usize = 64 << 10;
pub(crate) const MAX_HEADER_SIZE: usize = 8 << 10;
/// The host's fixed limit on the request target.
pub(crate) const MAX_TARGET: usize = 8 << 10;

/// The first and the last window whose mean RSS is compared.
const RSS_WINDOW: Duration = Duration::from_secs(60);
const RSS_GROWTH_LIMIT_KIB: u64 = 8 << 10;
/// Console lines kept: the host logs a line or more per request.
const CONSOLE_LINES_KEPT: usize = 4000;

/// A private copy of the guests, so that a rebuild during the run does not
/// swap them under the load.
fn app_folder() -> PathBuf {
    let folder = std::env::temp_dir().join(format!("wasm-handler-soak-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("creating the app folder");
    for (name, source) in [
        ("catalog.wasm", guests::CATALOG),
        ("misbehave.wasm", guests::MISBEHAVE),
    ] {
        std::fs::copy(source, folder.join(name))
            .unwrap_or_else(|e| panic!("copying {source}: {e}"));
    }
    folder
}

/// Item ids 1 to 99: the ones the catalog has, with their ETags, and the ones it has not.
async fn discover_catalog(port: u16) -> (Vec<Item>, Vec<String>) {
    let (mut items, mut unknown) = (Vec::new(), Vec::new());
    for item in 1..100 {
        let response = Forward::get(&format!("/api/catalog/{item}"))
            .send(port)
            .await;
        match (response.status, response.header("etag")) {
            (200, Some(etag)) => items.push(Item {
                id: item.to_string(),
                etag: etag.to_owned(),
            }),
            (404, _) => unknown.push(item.to_string()),
            (status, _) => panic!("item {item}: unexpected {status} before the run"),
        }
    }
    assert!(
        !items.is_empty() && !unknown.is_empty(),
        "the catalog has items and gaps"
    );
    (items, unknown)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    // Twice what the load can hold at once, so only the overload round reaches it.
    let max_instances = (options.workers + 1) * 2;
    let folder = app_folder();
    let host_args = [
        "--max-instance-reuse-count".to_owned(),
        options.max_instance_reuse_count.to_string(),
        "--route".to_owned(),
        "/api=catalog.wasm".to_owned(),
        "--route".to_owned(),
        "/api/faults=misbehave.wasm".to_owned(),
        "--request-timeout".to_owned(),
        REQUEST_TIMEOUT.to_owned(),
        "--max-instances".to_owned(),
        max_instances.to_string(),
        "--max-memory".to_owned(),
        format!("{MAX_MEMORY_MIB}MiB"),
        "--max-request-body".to_owned(),
        format!("{}KiB", MAX_REQUEST_BODY >> 10),
        "--max-header-size".to_owned(),
        format!("{}KiB", MAX_HEADER_SIZE >> 10),
    ];
    let mut handler = Handler::new(current_binary("wasm-handler"))
        .builder_in(&folder)
        .args(host_args.clone())
        .keep_console_lines(CONSOLE_LINES_KEPT)
        .start()
        .await;
    let (port, pid) = (handler.port(), handler.id());
    let (items, unknown_ids) = discover_catalog(port).await;
    let rss_at_start = rss::rss_kib(pid).expect("the host's /proc status");
    let handles_at_start = rss::handles(pid);
    eprintln!(
        "[soak] wasm-handler serve {} (pid {pid}, port {port}); {} workers for {:?}",
        host_args.join(" "),
        options.workers,
        options.duration
    );

    let run = Arc::new(Run::new(
        Target {
            port,
            max_instances,
            items,
            unknown_ids,
            next_request: AtomicU64::new(0),
        },
        options.duration,
    ));
    let seed = fastrand::u64(..);
    let mut load: Vec<_> = (0..options.workers)
        .map(|n| {
            tokio::spawn(run::mixed_worker(
                run.clone(),
                seed.wrapping_add(u64::from(n)),
            ))
        })
        .collect();
    load.push(tokio::spawn(run::heavy_worker(run.clone(), seed ^ 0xdead)));
    let overload = tokio::spawn(run::overload_rounds(run.clone(), seed ^ 0xbeef));
    let samples = rss::sample(run.clone(), pid).await;
    for task in load {
        task.await.expect("a load task");
    }
    overload.abort();
    let _ = overload.await;
    let ran_for = run.elapsed();

    // The load's last connections close, the host still serves, then drains
    // and exits 0 on SIGTERM.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let handles_at_end = rss::handles(pid);
    let health = Forward::get("/api/catalog/health").into_request();
    let still_serving = handler.is_running()
        && client::send(port, health)
            .await
            .is_ok_and(|response| response.status == 200);
    let signalled = Instant::now();
    handler.signal(15);
    let exit = handler.wait_for_exit(Duration::from_secs(30)).await;
    let shutdown_took = signalled.elapsed();
    let _ = std::fs::remove_dir_all(&folder);

    let tally = run.tally();
    let window = RSS_WINDOW.min(options.duration / 5);
    let first = rss::average_kib(&samples, |at| at < window);
    let last = rss::average_kib(&samples, |at| at + window > ran_for);
    let peak = samples.iter().map(|sample| sample.kib).max();
    let growth = match (first, last) {
        (Some(first), Some(last)) => Some(last - first),
        _ => None,
    };
    let rss_ok = growth.is_some_and(|growth| growth <= RSS_GROWTH_LIMIT_KIB as f64);
    let passed =
        tally.unexpected == 0 && tally.lost == 0 && rss_ok && still_serving && exit.success();

    let report = Report {
        ran_for,
        workers: options.workers,
        duration: options.duration,
        pid,
        host_args: host_args.join(" "),
        tally: &tally,
        rss: RssFigures {
            at_start: rss_at_start,
            window,
            first,
            last,
            growth,
            peak,
            limit: RSS_GROWTH_LIMIT_KIB,
            samples: &samples,
        },
        handles_at_start,
        handles_at_end,
        still_serving,
        exit,
        shutdown_took,
        passed,
        host_stderr: &handler.stderr(),
    }
    .render();
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(report.as_bytes());
    let _ = stdout.flush();
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
