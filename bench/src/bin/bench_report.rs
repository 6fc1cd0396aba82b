//! The markdown report of one `scripts/bench` run, from its raw results:
//!
//! ```text
//! RESULTS/context.txt                  `name: value` lines (versions, settings), listed as they are
//! RESULTS/loadavg-start                /proc/loadavg when the run began
//! RESULTS/load/<N>-<row>/label         the row's name in the table
//! RESULTS/load/<N>-<row>/skipped       why the row did not run (instead of the rest)
//! RESULTS/load/<N>-<row>/c<C>.json     oha's JSON output at C connections
//! RESULTS/load/<N>-<row>/c<C>.rss_kib  the server's VmHWM after that cell
//! RESULTS/load/<N>-<row>/c<C>.cpu      `bench-probe cpu-during`'s accounting of the measured load
//! RESULTS/startup/*.json, hotswap/*.json   bench-probe's output
//! RESULTS/memory/*.json                bench-probe envelope-memory's output
//! ```
//!
//! The rows `wasm-handler` (fresh instances), `wasm-handler-reuse`,
//! `wasmtime-serve` (its defaults), `wasmtime-serve-reuse` (the same reuse
//! settings) and `native` are compared with the project's goals. Exits 1
//! when any request failed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use serde_json::Value;
use wasm_handler_bench::cpu;
use wasm_handler_bench::summary::{Timings, millis};

/// Writes the markdown report of a `scripts/bench` run to stdout.
#[derive(Parser)]
#[command(version)]
struct Options {
    /// The run's results directory
    #[arg(long)]
    results: PathBuf,
}

/// The connection count the throughput goals are stated at.
const GOAL_CONNECTIONS: u32 = 32;

/// One load cell: a server at one connection count, as oha measured it.
#[derive(Clone)]
struct Cell {
    connections: u32,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    /// Transport errors plus answers that were not `200`.
    failures: u64,
    failure_detail: String,
    peak_rss_kib: Option<u64>,
    cpu: Option<CpuUse>,
}

/// Where the machine's CPU time went while a cell was measured, in cores
/// (CPU seconds per second).
#[derive(Clone, Copy)]
struct CpuUse {
    server_cores: f64,
    load_generator_cores: f64,
    /// Everything else on the machine: other processes, the kernel's own threads.
    other_cores: f64,
    /// The server's CPU time per request.
    server_us_per_request: f64,
    /// The part of the server's CPU time spent in the kernel.
    server_system_share: f64,
}

/// Other work above this (in cores) makes a cell's figures disturbed.
const DISTURBED_CORES: f64 = 0.2;

struct Row {
    /// The row's directory name, `<N>-<slug>`.
    directory: String,
    slug: String,
    label: String,
    outcome: Result<Vec<Cell>, String>,
}

fn main() -> ExitCode {
    let options = Options::parse();
    match report(&options.results) {
        Ok((text, failures)) => {
            let written = std::io::stdout().lock().write_all(text.as_bytes());
            if written.is_err() || failures > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("bench-report: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The report and the number of failed requests it found.
fn report(results: &Path) -> anyhow::Result<(String, u64)> {
    let rows = load_rows(&results.join("load"))?;
    let telemetry = match results.join("telemetry").is_dir() {
        true => load_rows(&results.join("telemetry"))?,
        false => Vec::new(),
    };
    let start_ups = timings(&results.join("startup"))?;
    let swaps = timings(&results.join("hotswap"))?;
    let mut out = String::new();

    writeln!(out, "# wasm-handler benchmark\n")?;
    let failures = failures_banner(rows.iter().chain(&telemetry), &swaps);
    if !failures.is_empty() {
        writeln!(out, "{failures}")?;
    }
    writeln!(out, "## Machine and versions\n")?;
    writeln!(out, "- CPU: {}", cpu_model())?;
    writeln!(
        out,
        "- cores: {}",
        std::thread::available_parallelism().map_or(0, |cores| cores.get())
    )?;
    writeln!(
        out,
        "- kernel: {}",
        read_trimmed("/proc/sys/kernel/osrelease")
    )?;
    writeln!(
        out,
        "- load average (1/5/15 min) at start: {}; at end: {}",
        first_fields(&read_trimmed(results.join("loadavg-start")), 3),
        first_fields(&read_trimmed("/proc/loadavg"), 3)
    )?;
    for line in read_trimmed(results.join("context.txt")).lines() {
        writeln!(out, "- {line}")?;
    }

    writeln!(
        out,
        "\n## Throughput and latency: `GET /api/catalog/42` over loopback (oha)\n"
    )?;
    writeln!(
        out,
        "| server | conns | requests/s | p50 ms | p99 ms | requests | errors + non-200 | peak RSS MiB | server CPU µs/req (kernel) | cores: server / oha / other |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for row in &rows {
        match &row.outcome {
            Err(reason) => writeln!(out, "| {} | | skipped: {reason} | | | | | | | |", row.label)?,
            Ok(cells) => {
                for cell in cells {
                    writeln!(
                        out,
                        "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {} | {} |",
                        row.label,
                        cell.connections,
                        cell.requests_per_second,
                        cell.p50_ms,
                        cell.p99_ms,
                        cell.requests,
                        if cell.failures == 0 {
                            "0".to_owned()
                        } else {
                            format!("**{} ({})**", cell.failures, cell.failure_detail)
                        },
                        cell.peak_rss_kib
                            .map_or("?".to_owned(), |kib| format!("{:.1}", kib as f64 / 1024.0)),
                        cell.cpu.map_or("?".to_owned(), |cpu| format!(
                            "{:.1} ({:.0}%)",
                            cpu.server_us_per_request,
                            cpu.server_system_share * 100.0
                        )),
                        cell.cpu.map_or("?".to_owned(), |cpu| format!(
                            "{:.2} / {:.2} / {:.2}",
                            cpu.server_cores, cpu.load_generator_cores, cpu.other_cores
                        )),
                    )?;
                }
            }
        }
    }

    let disturbed = disturbed_cells(&rows);
    if !disturbed.is_empty() {
        writeln!(
            out,
            "\n**Disturbed:** other work used more than {DISTURBED_CORES} cores while measuring {}; \
             those figures are not a quiet machine's (usually lower).",
            disturbed.join(", ")
        )?;
    }

    let rounds = telemetry_rounds(&telemetry);
    if !rounds.is_empty() {
        writeln!(
            out,
            "\n## Telemetry's cost: {GOAL_CONNECTIONS} connections, interleaved rounds\n"
        )?;
        writeln!(
            out,
            "Each round runs the host without telemetry, this host with `OTEL_*` unset, and this host \
             exporting every span over OTLP, one after another. Requests/s (server CPU µs/req):\n"
        )?;
        writeln!(
            out,
            "| round | without telemetry | OTEL_* unset | OTLP export on | unset / without | export on / unset |"
        )?;
        writeln!(out, "|---:|---:|---:|---:|---:|---:|")?;
        let figure = |cell: Option<&Cell>| {
            cell.map_or("?".to_owned(), |cell| {
                format!(
                    "{:.0} ({})",
                    cell.requests_per_second,
                    cell.cpu.map_or("?".to_owned(), |cpu| format!(
                        "{:.1}",
                        cpu.server_us_per_request
                    ))
                )
            })
        };
        let ratio = |ours: Option<&Cell>, theirs: Option<&Cell>| match (ours, theirs) {
            (Some(ours), Some(theirs)) => {
                format!(
                    "{:.3}×",
                    ours.requests_per_second / theirs.requests_per_second
                )
            }
            _ => "?".to_owned(),
        };
        for round in &rounds {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                round.number,
                figure(round.untraced.as_ref()),
                figure(round.unset.as_ref()),
                figure(round.otlp.as_ref()),
                ratio(round.unset.as_ref(), round.untraced.as_ref()),
                ratio(round.otlp.as_ref(), round.unset.as_ref()),
            )?;
        }
    }

    writeln!(out, "\n## Against the goals\n")?;
    writeln!(out, "| measure | value | goal | met |")?;
    writeln!(out, "|---|---:|---:|---|")?;
    for line in goal_lines(&rows)
        .into_iter()
        .chain(telemetry_lines(&rounds))
    {
        writeln!(out, "{line}")?;
    }

    if !start_ups.is_empty() {
        writeln!(
            out,
            "\n## Start-up: process spawn to first `200` (bench-probe)\n"
        )?;
        writeln!(out, "| server | min ms | median ms | max ms | runs |")?;
        writeln!(out, "|---|---:|---:|---:|---:|")?;
        for timing in &start_ups {
            writeln!(
                out,
                "| {} | {:.1} | {:.1} | {:.1} | {} |",
                timing.label,
                millis(timing.min()),
                millis(timing.median()),
                millis(timing.max()),
                timing.runs.len()
            )?;
        }
    }
    if !swaps.is_empty() {
        writeln!(
            out,
            "\n## Hot swap: rename over the served file to the first response from the new version\n"
        )?;
        writeln!(
            out,
            "| swap | min ms | median ms | max ms | swaps | non-200 while swapping |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
        for timing in &swaps {
            writeln!(
                out,
                "| {} | {:.1} | {:.1} | {:.1} | {} | {} |",
                timing.label,
                millis(timing.min()),
                millis(timing.median()),
                millis(timing.max()),
                timing.runs.len(),
                timing.non_200
            )?;
        }
    }
    memory_section(&mut out, &results.join("memory"))?;
    if !failures.is_empty() {
        writeln!(out, "\n{failures}")?;
    }
    let failed = rows
        .iter()
        .filter_map(|row| row.outcome.as_ref().ok())
        .flatten()
        .map(|cell| cell.failures)
        .sum::<u64>()
        + swaps.iter().map(|timing| timing.non_200).sum::<u64>();
    Ok((out, failed))
}

/// A loud paragraph naming every cell with failed requests; empty if none.
fn failures_banner<'a>(rows: impl IntoIterator<Item = &'a Row>, swaps: &[Timings]) -> String {
    let mut lines = Vec::new();
    for row in rows {
        for cell in row.outcome.iter().flatten() {
            if cell.failures > 0 {
                lines.push(format!(
                    "{} at {} connections: {} failed requests ({})",
                    row.label, cell.connections, cell.failures, cell.failure_detail
                ));
            }
        }
    }
    for swap in swaps {
        if swap.non_200 > 0 {
            lines.push(format!(
                "{}: {} responses not 200 while swapping",
                swap.label, swap.non_200
            ));
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "**FAILED REQUESTS — these figures are not valid:**\n\n{}\n",
        lines
            .iter()
            .map(|line| format!("- **{line}**"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn goal_lines(rows: &[Row]) -> Vec<String> {
    let cell = |slug: &str, connections: u32| {
        rows.iter()
            .find(|row| row.slug == slug)
            .and_then(|row| row.outcome.as_ref().ok())
            .and_then(|cells| cells.iter().find(|cell| cell.connections == connections))
    };
    let verdict = |met: bool| if met { "yes" } else { "**no**" };
    let unavailable = |measure: &str, goal: &str| format!("| {measure} | n/a | {goal} | n/a |");
    // One row's requests/s over another's, against the least ratio wanted.
    let ratio_line = |ours_slug: &str, peer_slug: &str, least: f64| {
        let measure = format!("requests/s, {ours_slug} / {peer_slug}, {GOAL_CONNECTIONS} conns");
        let goal = format!("≥ {least}×");
        match (
            cell(ours_slug, GOAL_CONNECTIONS),
            cell(peer_slug, GOAL_CONNECTIONS),
        ) {
            (Some(ours), Some(theirs)) => {
                let ratio = ours.requests_per_second / theirs.requests_per_second;
                format!(
                    "| {measure} | {ratio:.2}× | {goal} | {} |",
                    verdict(ratio >= least)
                )
            }
            _ => unavailable(&measure, &goal),
        }
    };
    // One row's p99 over native's, against the most wanted.
    let p99_line = |ours_slug: &str, most: f64| {
        let measure = format!("p99, {ours_slug} / native, {GOAL_CONNECTIONS} conns");
        let goal = format!("≤ {most}×");
        match (
            cell(ours_slug, GOAL_CONNECTIONS),
            cell("native", GOAL_CONNECTIONS),
        ) {
            (Some(ours), Some(native)) => {
                let ratio = ours.p99_ms / native.p99_ms;
                format!(
                    "| {measure} | {ratio:.2}× ({:.3} ms / {:.3} ms) | {goal} | {} |",
                    ours.p99_ms,
                    native.p99_ms,
                    verdict(ratio <= most)
                )
            }
            _ => unavailable(&measure, &goal),
        }
    };
    let mut lines = vec![
        ratio_line("wasm-handler", "wasmtime-serve", 5.0),
        ratio_line("wasm-handler-reuse", "native", 0.5),
        ratio_line("wasm-handler-reuse", "wasmtime-serve-reuse", 1.5),
        ratio_line("wasm-handler-p3-shared", "wasmtime-serve-p3", 1.5),
        p99_line("wasm-handler", 1.5),
        p99_line("wasm-handler-reuse", 1.5),
    ];
    let measure = "p50, wasm-handler − native, 1 conn";
    lines.push(match (cell("wasm-handler", 1), cell("native", 1)) {
        (Some(ours), Some(native)) => {
            let difference_us = (ours.p50_ms - native.p50_ms) * 1e3;
            format!(
                "| {measure} | {difference_us:+.0} µs | ≤ 50 µs | {} |",
                verdict(difference_us <= 50.0)
            )
        }
        _ => unavailable(measure, "≤ 50 µs"),
    });
    lines
}

/// One round of the telemetry comparison: its three cells at 32 connections.
struct Round {
    number: u32,
    untraced: Option<Cell>,
    unset: Option<Cell>,
    otlp: Option<Cell>,
}

/// The telemetry rows (`r<N>-untraced`, `r<N>-unset`, `r<N>-otlp`) as rounds.
fn telemetry_rounds(rows: &[Row]) -> Vec<Round> {
    let mut rounds: BTreeMap<u32, Round> = BTreeMap::new();
    for row in rows {
        let Some((number, variant)) = row
            .directory
            .strip_prefix('r')
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(number, variant)| Some((number.parse::<u32>().ok()?, variant)))
        else {
            continue;
        };
        let cell = row.outcome.as_ref().ok().and_then(|cells| {
            cells
                .iter()
                .find(|cell| cell.connections == GOAL_CONNECTIONS)
                .cloned()
        });
        let round = rounds.entry(number).or_insert(Round {
            number,
            untraced: None,
            unset: None,
            otlp: None,
        });
        match variant {
            "untraced" => round.untraced = cell,
            "unset" => round.unset = cell,
            "otlp" => round.otlp = cell,
            _ => {}
        }
    }
    rounds.into_values().collect()
}

/// The median of the rounds' ratios of `ours` over `theirs` (requests/s).
fn median_ratio(
    rounds: &[Round],
    ours: impl Fn(&Round) -> Option<&Cell>,
    theirs: impl Fn(&Round) -> Option<&Cell>,
) -> Option<(f64, usize)> {
    let mut ratios: Vec<f64> = rounds
        .iter()
        .filter_map(|round| {
            Some(ours(round)?.requests_per_second / theirs(round)?.requests_per_second)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let count = ratios.len();
    let median = match count {
        0 => return None,
        _ if count % 2 == 1 => ratios[count / 2],
        _ => (ratios[count / 2 - 1] + ratios[count / 2]) / 2.0,
    };
    Some((median, count))
}

/// What telemetry costs: with `OTEL_*` unset, within 3% of the host built
/// without it; with export on, measured (no goal).
fn telemetry_lines(rounds: &[Round]) -> Vec<String> {
    let unset = median_ratio(rounds, |r| r.unset.as_ref(), |r| r.untraced.as_ref());
    let export = median_ratio(rounds, |r| r.otlp.as_ref(), |r| r.unset.as_ref());
    let measure = |what: &str, count: Option<usize>| {
        format!(
            "requests/s, {what}, {GOAL_CONNECTIONS} conns, median of {} rounds",
            count.unwrap_or(0)
        )
    };
    vec![
        match unset {
            Some((ratio, count)) => format!(
                "| {} | {ratio:.3}× | ≥ 0.97× | {} |",
                measure("OTEL_* unset / without telemetry", Some(count)),
                if ratio >= 0.97 { "yes" } else { "**no**" }
            ),
            None => format!(
                "| {} | n/a | ≥ 0.97× | n/a |",
                measure("OTEL_* unset / without telemetry", None)
            ),
        },
        match export {
            Some((ratio, count)) => format!(
                "| {} | {ratio:.3}× | (export's cost, measured) | n/a |",
                measure("OTLP export on / OTEL_* unset", Some(count))
            ),
            None => format!(
                "| {} | n/a | (export's cost, measured) | n/a |",
                measure("OTLP export on / OTEL_* unset", None)
            ),
        },
    ]
}

/// The load rows, in the order of their directory names.
fn load_rows(load: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for directory in sorted_entries(load)? {
        let name = file_name(&directory);
        let slug = name
            .split_once('-')
            .map_or(name.as_str(), |(_, slug)| slug)
            .to_owned();
        let label = read_trimmed(directory.join("label"));
        let outcome = match std::fs::read_to_string(directory.join("skipped")) {
            Ok(reason) => Err(reason.trim().to_owned()),
            Err(_) => Ok(cells(&directory)?),
        };
        rows.push(Row {
            directory: name.clone(),
            slug,
            label: if label.is_empty() { name } else { label },
            outcome,
        });
    }
    Ok(rows)
}

fn cells(directory: &Path) -> anyhow::Result<Vec<Cell>> {
    let mut cells = Vec::new();
    for path in sorted_entries(directory)? {
        let name = file_name(&path);
        let Some(connections) = name
            .strip_prefix('c')
            .and_then(|rest| rest.strip_suffix(".json"))
            .and_then(|count| count.parse::<u32>().ok())
        else {
            continue;
        };
        let oha: Value = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("reading oha's output {}", path.display()))?;
        let peak_rss_kib = read_trimmed(directory.join(format!("c{connections}.rss_kib")))
            .parse()
            .ok();
        let mut cell = cell_from_oha(connections, &oha, peak_rss_kib);
        cell.cpu = cpu_use(
            &read_trimmed(directory.join(format!("c{connections}.cpu"))),
            cell.requests,
        );
        cells.push(cell);
    }
    cells.sort_by_key(|cell| cell.connections);
    Ok(cells)
}

/// Reads oha 1.x's `--output-format json`.
fn cell_from_oha(connections: u32, oha: &Value, peak_rss_kib: Option<u64>) -> Cell {
    let counts = |key: &str| -> BTreeMap<String, u64> {
        oha[key]
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(name, count)| (name.clone(), count.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let statuses = counts("statusCodeDistribution");
    let errors = counts("errorDistribution");
    let mut detail: Vec<String> = statuses
        .iter()
        .filter(|(status, _)| status.as_str() != "200")
        .map(|(status, count)| format!("{count}× {status}"))
        .collect();
    detail.extend(
        errors
            .iter()
            .map(|(error, count)| format!("{count}× {error}")),
    );
    let seconds_to_ms = |value: &Value| value.as_f64().unwrap_or(f64::NAN) * 1e3;
    Cell {
        connections,
        requests_per_second: oha["summary"]["requestsPerSec"]
            .as_f64()
            .unwrap_or(f64::NAN),
        p50_ms: seconds_to_ms(&oha["latencyPercentiles"]["p50"]),
        p99_ms: seconds_to_ms(&oha["latencyPercentiles"]["p99"]),
        requests: statuses.values().sum::<u64>() + errors.values().sum::<u64>(),
        failures: statuses
            .iter()
            .filter(|(status, _)| status.as_str() != "200")
            .map(|(_, count)| count)
            .sum::<u64>()
            + errors.values().sum::<u64>(),
        failure_detail: detail.join(", "),
        peak_rss_kib,
        cpu: None,
    }
}

/// Reads a cell's `.cpu` file (`name=value` lines, clock ticks but `elapsed_ms`).
fn cpu_use(text: &str, requests: u64) -> Option<CpuUse> {
    let values: BTreeMap<&str, u64> = text
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once('=')?;
            Some((name.trim(), value.trim().parse().ok()?))
        })
        .collect();
    let elapsed = Duration::from_millis(*values.get("elapsed_ms").filter(|ms| **ms > 0)?);
    let (user, system) = (*values.get("server_user")?, *values.get("server_system")?);
    let server = user + system;
    Some(CpuUse {
        server_cores: cpu::cores(server, elapsed),
        load_generator_cores: cpu::cores(*values.get("load_generator")?, elapsed),
        other_cores: cpu::cores(*values.get("other")?, elapsed),
        server_us_per_request: server as f64 / cpu::TICKS_PER_SECOND * 1e6 / requests.max(1) as f64,
        server_system_share: system as f64 / server.max(1) as f64,
    })
}

/// The cells during which other work used more than [`DISTURBED_CORES`].
fn disturbed_cells(rows: &[Row]) -> Vec<String> {
    let mut cells = Vec::new();
    for row in rows {
        for cell in row.outcome.iter().flatten() {
            if let Some(cpu) = cell.cpu.filter(|cpu| cpu.other_cores > DISTURBED_CORES) {
                cells.push(format!(
                    "{} at {} conns ({:.2} cores)",
                    row.label, cell.connections, cpu.other_cores
                ));
            }
        }
    }
    cells
}

fn timings(directory: &Path) -> anyhow::Result<Vec<Timings>> {
    sorted_entries(directory)?
        .into_iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .map(|path| {
            let value: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
            Timings::from_json(&value).with_context(|| format!("reading {}", path.display()))
        })
        .collect()
}

/// The entries of `directory` by name; none if it does not exist.
fn sorted_entries(directory: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Ok(Vec::new());
    };
    let mut paths = entries
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<_>, _>>()?;
    paths.sort();
    Ok(paths)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_trimmed(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

fn first_fields(text: &str, count: usize) -> String {
    text.split_whitespace()
        .take(count)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cpu_model() -> String {
    read_trimmed("/proc/cpuinfo")
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The payload-mode memory table, from `bench-probe envelope-memory`'s JSON.
fn memory_section(out: &mut String, dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .collect();
    files.sort();
    if files.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n## Payload mode: resident memory under the largest envelopes (bench-probe)\n"
    )?;
    writeln!(
        out,
        "| server | envelopes at once | inner statuses | idle MiB | peak MiB | 1 s after MiB | within 16 MiB of idle after |"
    )?;
    writeln!(out, "|---|---:|---|---:|---:|---:|---:|")?;
    let mib = |value: &serde_json::Value| {
        value.as_u64().map_or("?".to_owned(), |bytes| {
            format!("{:.0}", bytes as f64 / f64::from(1 << 20))
        })
    };
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let measured: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("reading {}", file.display()))?;
        for phase in measured["phases"].as_array().into_iter().flatten() {
            let statuses: Vec<String> = phase["statuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|status| format!("{} × {}", status["count"], status["status"]))
                .collect();
            writeln!(
                out,
                "| {} | {} × {} MB | {} | {} | {} | {} | {} |",
                measured["label"].as_str().unwrap_or("?"),
                phase["concurrent"],
                phase["envelope_bytes"].as_u64().unwrap_or(0) / 1_000_000,
                statuses.join(", "),
                mib(&phase["idle_rss_bytes"]),
                mib(&phase["peak_rss_bytes"]),
                mib(&phase["rss_1s_after_bytes"]),
                phase["settled_after_ms"].as_u64().map_or(
                    "not within the wait".to_owned(),
                    |ms| format!("{:.1} s", ms as f64 / 1000.0)
                ),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oha_json() {
        let oha = serde_json::json!({
            "summary": {"requestsPerSec": 1234.5},
            "latencyPercentiles": {"p50": 0.000250, "p99": 0.0012},
            "statusCodeDistribution": {"200": 100, "503": 2},
            "errorDistribution": {"connection reset": 1},
        });
        let cell = cell_from_oha(32, &oha, Some(2048));
        assert_eq!(cell.requests, 103);
        assert_eq!(cell.failures, 3);
        assert_eq!(cell.failure_detail, "2× 503, 1× connection reset");
        assert!((cell.p50_ms - 0.25).abs() < 1e-9);
        assert!((cell.p99_ms - 1.2).abs() < 1e-9);
        assert!((cell.requests_per_second - 1234.5).abs() < 1e-9);
    }

    #[test]
    fn reads_cpu_ticks() {
        let text =
            "elapsed_ms=10000\nserver_user=750\nserver_system=250\nload_generator=700\nother=200\n";
        let cpu = cpu_use(text, 50_000).expect("complete");
        assert!((cpu.server_cores - 1.0).abs() < 1e-9);
        assert!((cpu.load_generator_cores - 0.7).abs() < 1e-9);
        assert!((cpu.other_cores - 0.2).abs() < 1e-9);
        // 10 s of server CPU over 50,000 requests.
        assert!((cpu.server_us_per_request - 200.0).abs() < 1e-9);
        assert!((cpu.server_system_share - 0.25).abs() < 1e-9);
        assert!(cpu_use("elapsed_ms=0", 1).is_none());
    }

    #[test]
    fn goals_compare_the_named_rows() {
        let row = |slug: &str, rps: f64, p50_ms: f64, p99_ms: f64| Row {
            directory: format!("1-{slug}"),
            slug: slug.to_owned(),
            label: slug.to_owned(),
            outcome: Ok([1, GOAL_CONNECTIONS]
                .into_iter()
                .map(|connections| Cell {
                    connections,
                    requests_per_second: rps,
                    p50_ms,
                    p99_ms,
                    requests: 1,
                    failures: 0,
                    failure_detail: String::new(),
                    peak_rss_kib: None,
                    cpu: None,
                })
                .collect()),
        };
        let lines = goal_lines(&[
            row("wasm-handler", 6000.0, 0.130, 1.2),
            row("wasm-handler-reuse", 6000.0, 0.120, 1.6),
            row("wasmtime-serve", 1000.0, 0.5, 1.0),
            row("wasmtime-serve-reuse", 5000.0, 0.5, 1.0),
            row("native", 10000.0, 0.100, 1.0),
        ]);
        assert!(lines[0].contains("6.00×") && lines[0].ends_with("| yes |"));
        assert!(lines[1].contains("0.60×") && lines[1].ends_with("| yes |"));
        assert!(lines[2].contains("1.20×") && lines[2].ends_with("| **no** |"));
        assert!(lines[3].contains("n/a"), "no 0.3 rows: {}", lines[3]);
        assert!(lines[4].contains("1.20×") && lines[4].ends_with("| yes |"));
        assert!(lines[5].contains("1.60×") && lines[5].ends_with("| **no** |"));
        assert!(lines[6].contains("+30 µs") && lines[6].ends_with("| yes |"));
        let missing = goal_lines(&[row("wasm-handler", 6000.0, 0.130, 1.0)]);
        assert!(missing[1].contains("n/a"), "{}", missing[1]);
    }

    #[test]
    fn telemetry_is_judged_by_the_median_round() {
        let row = |directory: &str, rps: f64| Row {
            directory: directory.to_owned(),
            slug: String::new(),
            label: directory.to_owned(),
            outcome: Ok(vec![Cell {
                connections: GOAL_CONNECTIONS,
                requests_per_second: rps,
                p50_ms: 1.0,
                p99_ms: 2.0,
                requests: 1,
                failures: 0,
                failure_detail: String::new(),
                peak_rss_kib: None,
                cpu: None,
            }]),
        };
        // Unset over untraced: 0.90, 1.00, 0.98; export on over unset: 0.8 each.
        let rounds = telemetry_rounds(&[
            row("r1-untraced", 100.0),
            row("r1-unset", 90.0),
            row("r1-otlp", 72.0),
            row("r2-untraced", 100.0),
            row("r2-unset", 100.0),
            row("r2-otlp", 80.0),
            row("r3-untraced", 100.0),
            row("r3-unset", 98.0),
            row("r3-otlp", 78.4),
        ]);
        assert_eq!(rounds.len(), 3);
        let lines = telemetry_lines(&rounds);
        assert!(
            lines[0].contains("0.980×")
                && lines[0].contains("median of 3")
                && lines[0].ends_with("| yes |"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("0.800×"), "{}", lines[1]);
        let none = telemetry_lines(&[]);
        assert!(none[0].contains("n/a"), "{}", none[0]);
    }
}
