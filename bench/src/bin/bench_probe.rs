//! Timings that a load generator cannot take, polled over loopback with raw
//! HTTP/1.1 requests in a tight loop:
//!
//! - `start-up`: from spawning a server to its first `200`, repeated on a
//!   fresh port each run;
//! - `hot-swap`: from renaming a new component over the one a running
//!   wasm-handler serves to the first response from the new version (its
//!   `x-component-digest`);
//! - `wait-ready`: waits for a server's first `200` (for `scripts/bench`);
//! - `wait-quiet`: waits until the machine's processes keep less than a
//!   fraction of a core busy, so a measurement does not start amid a build;
//! - `cpu-during`: runs the load generator and writes where the CPU time
//!   went meanwhile: the server (user, system), the load generator, the rest;
//! - `tag-component`: a copy of a component with one custom section added,
//!   so that it behaves the same but has another digest (two versions to swap);
//! - `envelope-memory`: a payload-mode server's peak RSS for the largest
//!   envelope alone and for many at once, and how soon RSS falls back.
//!
//! `start-up` and `hot-swap` print one JSON object (see
//! `wasm_handler_bench::summary`) to stdout and a readable line to stderr.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::{Parser, Subcommand};
use wasm_handler_bench::cpu::{self, ProcessTicks};
use wasm_handler_bench::loopback::{self, Target};
use wasm_handler_bench::memory;
use wasm_handler_bench::summary::{Timings, millis};

#[derive(Parser)]
#[command(version, about = "Start-up and hot-swap timings over loopback")]
struct Options {
    #[command(subcommand)]
    command: Probe,
}

#[derive(Subcommand)]
enum Probe {
    /// Spawns COMMAND and times it to its first 200 at URL, `--runs` times.
    /// `{port}` in URL and COMMAND becomes a free port, new for each run.
    StartUp {
        /// What the report calls this measurement
        #[arg(long)]
        label: String,
        /// E.g. `http://127.0.0.1:{port}/api/catalog/42`
        #[arg(long)]
        url: String,
        /// Measured runs
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Runs before the measured ones, not counted (to fill a cache)
        #[arg(long, default_value_t = 0)]
        warm_up: usize,
        #[command(flatten)]
        polling: Polling,
        /// Where the server's stdout and stderr go (appended)
        #[arg(long)]
        log: Option<PathBuf>,
        /// The server command and its arguments
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Replaces SERVED with each of VERSIONS in turn (write beside, rename
    /// over) and times each rename to the first response of the new version.
    /// A version's sidecar (`<version>.json`, as `wasm-handler compile`
    /// writes it) is renamed over SERVED's just before it.
    HotSwap {
        /// What the report calls this measurement
        #[arg(long)]
        label: String,
        /// A URL the running wasm-handler serves from SERVED
        #[arg(long)]
        url: String,
        /// The component file the running wasm-handler serves
        #[arg(long)]
        served: PathBuf,
        /// Two or more components, installed in turn, starting with the first
        /// that is not the one serving now
        #[arg(long, num_args = 2.., required = true)]
        versions: Vec<PathBuf>,
        /// Measured swaps
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Pause after each swap, so that the next starts from a quiet host
        #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration)]
        settle: Duration,
        #[command(flatten)]
        polling: Polling,
    },
    /// Waits until URL answers 200.
    WaitReady {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        polling: Polling,
    },
    /// Waits until the machine's processes use less than BELOW cores over a
    /// second, for at most MAX_WAIT; then returns anyway.
    WaitQuiet {
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        max_wait: Duration,
        #[arg(long, default_value_t = 0.2)]
        below: f64,
    },
    /// Runs COMMAND (the load generator) and writes to OUTPUT, as `name=value`
    /// lines, the CPU time used meanwhile, in clock ticks: the server's
    /// (`server_user`, `server_system`), COMMAND's (`load_generator`) and every
    /// other process's (`other`), and `elapsed_ms`.
    CpuDuring {
        #[arg(long)]
        server_pid: u32,
        #[arg(long)]
        output: PathBuf,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Spawns COMMAND (`{port}` becomes a free port), then posts payload-mode
    /// envelopes of ENVELOPE_BYTES to PATH: one alone, then CONCURRENT at
    /// once; prints the server's peak RSS for each and how soon RSS falls
    /// back near its idle figure.
    EnvelopeMemory(EnvelopeMemory),
    /// Writes a copy of a component with a custom section named
    /// `bench-version` holding TAG: valid, same behaviour, another digest.
    TagComponent {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        tag: String,
    },
    /// Takes OTLP/HTTP exports on LISTEN and answers each with success, as a
    /// collector does, without keeping them: the export-on row's collector.
    OtlpSink {
        /// E.g. `127.0.0.1:4318`
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
}

#[derive(clap::Args)]
struct EnvelopeMemory {
    /// What the report calls this measurement
    #[arg(long)]
    label: String,
    /// The payload-mode function's path, e.g. `/catalog-item`
    #[arg(long)]
    path: String,
    /// Size of each envelope (just under the server's 413 limit)
    #[arg(long, default_value_t = 14_000_000)]
    envelope_bytes: usize,
    /// Envelopes sent at once in the second phase
    #[arg(long, default_value_t = 64)]
    concurrent: usize,
    /// "Near idle": within this many MiB of the idle RSS
    #[arg(long, default_value_t = 16)]
    near_mib: u64,
    /// Longest wait for RSS to fall back
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Where the server's stdout and stderr go
    #[arg(long)]
    log: Option<PathBuf>,
    /// The server command and its arguments
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(clap::Args, Clone, Copy)]
struct Polling {
    /// Pause between two attempts
    #[arg(long, default_value = "150us", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
    /// Give up after this long
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn main() -> ExitCode {
    match run(Options::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-probe: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(probe: Probe) -> anyhow::Result<()> {
    match probe {
        Probe::StartUp {
            label,
            url,
            runs,
            warm_up,
            polling,
            log,
            command,
        } => {
            let mut times = Vec::with_capacity(runs);
            for run in 0..warm_up + runs {
                let time = time_start_up(&url, &command, polling, log.as_deref())
                    .with_context(|| format!("start-up run {}", run + 1))?;
                if run >= warm_up {
                    times.push(time);
                }
            }
            report(Timings {
                label,
                runs: times,
                non_200: 0,
            })
        }
        Probe::HotSwap {
            label,
            url,
            served,
            versions,
            runs,
            settle,
            polling,
        } => {
            let timings = time_hot_swaps(
                label,
                &Target::parse(&url)?,
                &served,
                &versions,
                runs,
                settle,
                polling,
            )?;
            report(timings)
        }
        Probe::WaitReady { url, polling } => {
            let target = Target::parse(&url)?;
            let deadline = Instant::now() + polling.timeout;
            while !loopback::get(&target).is_ok_and(|answer| answer.status == 200) {
                ensure!(
                    Instant::now() < deadline,
                    "{url} did not answer 200 within {:?}",
                    polling.timeout
                );
                std::thread::sleep(polling.poll_interval);
            }
            Ok(())
        }
        Probe::WaitQuiet { max_wait, below } => {
            let started = Instant::now();
            loop {
                let busy = cpu::busy_cores(Duration::from_secs(1));
                if busy < below {
                    return Ok(());
                }
                if started.elapsed() >= max_wait {
                    eprintln!(
                        "the machine is still busy ({busy:.2} cores); measuring anyway (the report shows how busy)"
                    );
                    return Ok(());
                }
                if started.elapsed() < Duration::from_millis(1500) {
                    eprintln!(
                        "waiting up to {max_wait:?} for the machine to be quiet ({busy:.2} cores busy)..."
                    );
                }
            }
        }
        Probe::CpuDuring {
            server_pid,
            output,
            command,
        } => cpu_during(&server_pid.to_string(), &output, &command),
        Probe::EnvelopeMemory(options) => envelope_memory(&options),
        Probe::OtlpSink { listen } => {
            let listener =
                std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || loopback::answer_each_request(stream));
            }
            Ok(())
        }
        Probe::TagComponent { input, output, tag } => {
            let mut bytes =
                std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            ensure!(
                bytes.starts_with(b"\0asm"),
                "{} is not WebAssembly",
                input.display()
            );
            bytes.extend(custom_section("bench-version", tag.as_bytes()));
            std::fs::write(&output, bytes).with_context(|| format!("writing {}", output.display()))
        }
    }
}

fn cpu_during(server_pid: &str, output: &Path, command: &[String]) -> anyhow::Result<()> {
    let gone = || anyhow::anyhow!("the server (pid {server_pid}) is not running");
    let server_before = ProcessTicks::of(server_pid).ok_or_else(gone)?;
    let own_before = ProcessTicks::of("self").ok_or_else(gone)?;
    let all_before = cpu::all_processes_ticks();
    let started = Instant::now();
    let status = Command::new(&command[0])
        .args(&command[1..])
        .status()
        .with_context(|| format!("running {}", command[0]))?;
    let elapsed = started.elapsed();
    let all = cpu::all_processes_ticks().saturating_sub(all_before);
    // The load generator is our reaped child: its time is in our `children`.
    let own = ProcessTicks::of("self").ok_or_else(gone)?.since(own_before);
    let server = ProcessTicks::of(server_pid)
        .ok_or_else(gone)?
        .since(server_before);
    let other = all.saturating_sub(own.total() + server.total());
    std::fs::write(
        output,
        format!(
            "elapsed_ms={}\nserver_user={}\nserver_system={}\nload_generator={}\nother={other}\n",
            elapsed.as_millis(),
            server.user,
            server.system,
            own.total()
        ),
    )?;
    ensure!(status.success(), "{} failed: {status}", command[0]);
    Ok(())
}

fn envelope_memory(options: &EnvelopeMemory) -> anyhow::Result<()> {
    let port = free_port()?;
    let mut server = spawn_server(&options.command, port, options.log.as_deref())?;
    let outcome = (|| {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let ready = Target::parse(&format!("http://127.0.0.1:{port}/"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !loopback::get(&ready).is_ok_and(|answer| answer.status == 200) {
            ensure!(Instant::now() < deadline, "the server did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_secs(1));
        let pid = server.id();
        let (idle, _) = memory::rss(pid).context("the server exited")?;
        let measurement = memory::Measurement {
            pid,
            address,
            path: &options.path,
            envelope: std::sync::Arc::new(memory::envelope(options.envelope_bytes)),
            idle,
            near: options.near_mib << 20,
            wait: options.settle,
        };
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        let mut phases = Vec::new();
        for at_once in [1, options.concurrent] {
            let phase = measurement.phase(at_once)?;
            eprintln!(
                "{}: {at_once} x {}-byte envelope: peak RSS {:.0} MiB (idle {:.0} MiB), \
                 inner statuses {:?} in {:.2} s; RSS {:.0} MiB 1 s later, within {} MiB of idle after {}",
                options.label,
                options.envelope_bytes,
                mib(phase.peak),
                mib(idle),
                phase.statuses,
                phase.elapsed.as_secs_f64(),
                mib(phase.after_1s),
                options.near_mib,
                phase.settled_after.map_or_else(
                    || format!("more than {:?}", options.settle),
                    |after| format!("{:.2} s", after.as_secs_f64())
                ),
            );
            phases.push(serde_json::json!({
                "concurrent": at_once,
                "envelope_bytes": options.envelope_bytes,
                "statuses": phase.statuses.iter()
                    .map(|(status, count)| serde_json::json!({"status": status, "count": count}))
                    .collect::<Vec<_>>(),
                "idle_rss_bytes": idle,
                "peak_rss_bytes": phase.peak,
                "rss_1s_after_bytes": phase.after_1s,
                "settled_after_ms": phase.settled_after.map(|after| after.as_millis() as u64),
                "elapsed_ms": phase.elapsed.as_millis() as u64,
            }));
        }
        let measured = serde_json::json!({ "label": options.label, "phases": phases });
        writeln!(std::io::stdout().lock(), "{measured}")?;
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    outcome
}

fn report(timings: Timings) -> anyhow::Result<()> {
    eprintln!(
        "{}: min {:.3} ms, median {:.3} ms, max {:.3} ms over {} runs{}",
        timings.label,
        millis(timings.min()),
        millis(timings.median()),
        millis(timings.max()),
        timings.runs.len(),
        if timings.non_200 > 0 {
            format!(", {} responses not 200", timings.non_200)
        } else {
            String::new()
        }
    );
    writeln!(std::io::stdout().lock(), "{}", timings.to_json())?;
    Ok(())
}

/// One start-up: spawn, poll until `200`, kill.
fn time_start_up(
    url: &str,
    command: &[String],
    polling: Polling,
    log: Option<&Path>,
) -> anyhow::Result<Duration> {
    let port = free_port()?;
    let target = Target::parse(&url.replace("{port}", &port.to_string()))?;
    let started = Instant::now();
    let mut child = spawn_server(command, port, log)?;
    let arguments = command;
    let outcome = loop {
        if let Ok(answer) = loopback::get(&target)
            && answer.status == 200
        {
            break Ok(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!(
                "{} exited ({status}) before answering 200",
                arguments[0]
            ));
        }
        if started.elapsed() > polling.timeout {
            break Err(anyhow::anyhow!(
                "no 200 from {} within {:?}",
                arguments[0],
                polling.timeout
            ));
        }
        std::thread::sleep(polling.poll_interval);
    };
    // SIGKILL: the measurement is over, and a graceful drain would only slow the next run.
    let _ = child.kill();
    child.wait()?;
    outcome
}

/// A port nobody listens on now.
/// Spawns `command` with `{port}` in its arguments replaced by `port`, its
/// output appended to `log` (or dropped).
fn spawn_server(
    command: &[String],
    port: u16,
    log: Option<&Path>,
) -> anyhow::Result<std::process::Child> {
    let port = port.to_string();
    let arguments: Vec<String> = command
        .iter()
        .map(|argument| argument.replace("{port}", &port))
        .collect();
    let (output, errors) = match log {
        Some(path) => {
            let file = File::options().create(true).append(true).open(path)?;
            (Stdio::from(file.try_clone()?), Stdio::from(file))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    Command::new(&arguments[0])
        .args(&arguments[1..])
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .spawn()
        .with_context(|| format!("spawning {}", arguments[0]))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(functions_contract::protocol::unused_tcp_port()?)
}

/// Swaps `runs` times; each time installs the next version that is not the
/// one serving, and times the rename to the first answer with a new digest.
fn time_hot_swaps(
    label: String,
    target: &Target,
    served: &Path,
    versions: &[PathBuf],
    runs: usize,
    settle: Duration,
    polling: Polling,
) -> anyhow::Result<Timings> {
    let staging = served.with_extension("bench-staging");
    let staging_sidecar = served.with_extension("bench-staging-sidecar");
    let mut serving = digest_now(target)?;
    // Which digest each version turned out to have, to check every swap landed the right one.
    let mut known_digests: Vec<Option<String>> = vec![None; versions.len()];
    let serving_now = contents(served)?;
    let mut next = 0;
    for (index, version) in versions.iter().enumerate() {
        if contents(version)? == serving_now {
            known_digests[index] = Some(serving.clone());
            next = (index + 1) % versions.len();
        }
    }
    let mut times = Vec::with_capacity(runs);
    let mut non_200 = 0;
    for run in 1..=runs {
        // Written beside, outside the timing: only the renames are the swap.
        let sidecar = sidecar_of(&versions[next]);
        let swap_sidecar = sidecar.is_file();
        if swap_sidecar {
            std::fs::copy(&sidecar, &staging_sidecar)
                .with_context(|| format!("copying {}", sidecar.display()))?;
        }
        std::fs::copy(&versions[next], &staging)
            .with_context(|| format!("copying {}", versions[next].display()))?;
        let renamed = Instant::now();
        if swap_sidecar {
            std::fs::rename(&staging_sidecar, sidecar_of(served))?;
        }
        std::fs::rename(&staging, served)?;
        let new_digest = loop {
            match loopback::get(target) {
                Ok(answer) if answer.status == 200 => {
                    if let Some(digest) = answer.component_digest
                        && digest != serving
                    {
                        break digest;
                    }
                }
                // Anything but 200 during a swap is a dropped request.
                Ok(_) | Err(_) => non_200 += 1,
            }
            if renamed.elapsed() > polling.timeout {
                bail!(
                    "swap {run}: {} still served {serving} {:?} after the rename (see the host's log)",
                    target.path,
                    polling.timeout
                );
            }
            std::thread::sleep(polling.poll_interval);
        };
        times.push(renamed.elapsed());
        match &known_digests[next] {
            Some(expected) => ensure!(
                *expected == new_digest,
                "swap {run}: {} came back as {new_digest}, earlier as {expected}",
                versions[next].display()
            ),
            None => known_digests[next] = Some(new_digest.clone()),
        }
        serving = new_digest;
        next = (next + 1) % versions.len();
        std::thread::sleep(settle);
    }
    Ok(Timings {
        label,
        runs: times,
        non_200,
    })
}

/// A component file's bytes and its sidecar's, if any: two `.cwasm` files
/// compiled from different sources can be the same but for their sidecars.
fn contents(path: &Path) -> anyhow::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((bytes, std::fs::read(sidecar_of(path)).ok()))
}

/// The sidecar `wasm-handler compile` writes beside a `.cwasm`: `<file>.json`.
fn sidecar_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

fn digest_now(target: &Target) -> anyhow::Result<String> {
    let answer = loopback::get(target).context("asking the running server for its version")?;
    ensure!(
        answer.status == 200,
        "the server answered {} before any swap",
        answer.status
    );
    answer
        .component_digest
        .ok_or_else(|| anyhow::anyhow!("the server sends no x-component-digest"))
}

/// A WebAssembly custom section (id 0): valid at the end of a module or a
/// component, and ignored by every runtime.
fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut contents = leb128(name.len());
    contents.extend_from_slice(name.as_bytes());
    contents.extend_from_slice(payload);
    let mut section = vec![0];
    section.extend(leb128(contents.len()));
    section.extend(contents);
    section
}

fn leb128(mut value: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(byte);
            return bytes;
        }
        bytes.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_encodes_lengths() {
        assert_eq!(leb128(0), [0]);
        assert_eq!(leb128(127), [0x7f]);
        assert_eq!(leb128(128), [0x80, 0x01]);
        assert_eq!(leb128(624_485), [0xe5, 0x8e, 0x26]);
    }

    #[test]
    fn custom_section_layout() {
        assert_eq!(
            custom_section("ab", b"xyz"),
            [0, 6, 2, b'a', b'b', b'x', b'y', b'z']
        );
    }
}
