//! The handler process: launched as the Functions host launches it, polled
//! until ready, its console relayed, restarted per the host's policy, and
//! stopped as the host stops it (azure-functions-host at 89dc438:
//! `src/WebJobs.Script/Workers/ProcessManagement/WorkerProcess.cs`,
//! `src/WebJobs.Script/Workers/Http/HttpWorkerChannel.cs`,
//! `src/WebJobs.Script/Workers/Http/HttpFunctionInvocationDispatcher.cs`).
//!
//! - Stopping, restarting after an error or after a function timeout: the
//!   host calls `Process.Kill()`, SIGKILL to the handler's process alone,
//!   and waits a second. With `--graceful-stop` the emulator sends SIGTERM
//!   to the handler's process group at shutdown instead and waits for it
//!   to drain (for a person pressing Ctrl-C); a restart still kills.
//! - An exit with code 0 after start-up leaves the handler stopped, and
//!   every later request fails to connect; during start-up it is not
//!   noticed, and the readiness wait runs out and counts as an error.
//! - A handler that cannot be spawned at all is never retried: requests
//!   wait for it and then stop the host (see `crate::pipeline`).

pub(crate) mod command;
pub(crate) mod readiness;
pub(crate) mod restart;

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::Signal;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub(crate) use command::{HostEnvironment, Launch};
use readiness::Readiness;
use restart::{Decision, RestartPolicy};

use crate::client::HostClient;
use crate::host_log::{self, Level};
use crate::lifecycle::stop_requested;
use functions_contract::protocol::new_guid;

/// How long `--graceful-stop` gives the handler after SIGTERM before SIGKILL.
/// (`wasm-handler` drains in-flight requests for 10 s by default.)
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long the host waits for a killed handler to exit (`processExitTimeoutInMilliseconds`).
const KILL_WAIT: Duration = Duration::from_secs(1);
/// Lines starting with this go to the host's own log, not the function console.
const SYSTEM_LOG_PREFIX: &str = "LanguageWorkerConsoleLog";

/// Whether requests can be invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandlerState {
    /// Starting or restarting: requests wait for it.
    Starting,
    /// Answered the readiness poll.
    Ready,
    /// Exited with code 0 after start-up and is not restarted: requests
    /// are invoked, and fail to connect.
    Stopped,
}

/// Why the supervisor returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Shutdown was requested; the handler has been stopped.
    ShutDown,
    /// The handler failed too often; the host must shut down.
    RetriesExceeded,
}

/// How the handler is stopped at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMode {
    /// SIGKILL, as the Functions host.
    Kill,
    /// SIGTERM to its process group, then SIGKILL after [`STOP_GRACE`].
    Graceful,
}

/// A request to kill and restart the handler after a function timeout: the
/// invocation id it is for.
pub(crate) type RestartRequest = String;

/// Keeps the handler running.
pub(crate) struct Supervisor {
    launch: Launch,
    port: u16,
    initialization_timeout: Duration,
    client: HostClient,
    stop_mode: StopMode,
    state: watch::Sender<HandlerState>,
    restarts: mpsc::UnboundedReceiver<RestartRequest>,
    policy: RestartPolicy,
}

/// How one run of the handler ended.
enum Ended {
    /// It exited by itself (or was killed outside the emulator).
    Exited(std::io::Result<ExitStatus>),
    /// It was killed after a function timeout: restart, not counted.
    TimeoutRestart,
    /// Its start failed (timed out, or a ping failed): an error event.
    Failed,
    /// It could not be spawned: nothing will restart it.
    NotSpawned,
    ShutdownRequested,
}

impl Supervisor {
    /// A supervisor for `launch` on `port` (chosen once, kept across restarts),
    /// the channel for restart requests, and the handler's state.
    pub(crate) fn new(
        launch: Launch,
        port: u16,
        initialization_timeout: Duration,
        client: HostClient,
        stop_mode: StopMode,
    ) -> (
        Self,
        mpsc::UnboundedSender<RestartRequest>,
        watch::Receiver<HandlerState>,
    ) {
        let (state, receiver) = watch::channel(HandlerState::Starting);
        let (restart, restarts) = mpsc::unbounded_channel();
        let supervisor = Supervisor {
            launch,
            port,
            initialization_timeout,
            client,
            stop_mode,
            state,
            restarts,
            policy: RestartPolicy::default(),
        };
        (supervisor, restart, receiver)
    }

    /// Runs the handler until shutdown is requested or it fails too often.
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Outcome {
        loop {
            self.state.send_replace(HandlerState::Starting);
            let now = std::time::Instant::now;
            let decision = match self.run_once(&mut shutdown).await {
                Ended::ShutdownRequested => return Outcome::ShutDown,
                Ended::NotSpawned => {
                    stop_requested(&mut shutdown).await;
                    return Outcome::ShutDown;
                }
                Ended::TimeoutRestart => Decision::Restart { errors: 0 },
                Ended::Failed => self.policy.error(now()),
                Ended::Exited(status) => {
                    let code = status.as_ref().ok().and_then(ExitStatus::code);
                    match &status {
                        Ok(status) if status.success() => host_log::info(
                            "The handler exited with code 0; the Functions host does not restart it, \
                             and requests fail to connect.",
                        ),
                        Ok(status) if code == Some(200) => host_log::info(format!(
                            "The handler exited with code 200 ({status}): restarting it, as it asked."
                        )),
                        Ok(status) => host_log::error(format!(
                            "Language Worker Process exited: {} exited with {status}.",
                            self.launch.program.display()
                        )),
                        Err(error) => {
                            host_log::error(format!("Waiting for the handler failed: {error}"))
                        }
                    }
                    self.policy.exited(code, now())
                }
            };
            match decision {
                Decision::Stay => {
                    self.state.send_replace(HandlerState::Stopped);
                    stop_requested(&mut shutdown).await;
                    return Outcome::ShutDown;
                }
                Decision::Restart { errors: 0 } => {}
                Decision::Restart { errors } => host_log::warn(format!(
                    "Restarting the handler ({errors} error(s) in a row; the host stops at {}, \
                     and only a gap of more than 30 minutes starts the count again).",
                    restart::MAX_ERRORS
                )),
                Decision::ShutDown => {
                    host_log::error(restart::RETRIES_EXCEEDED);
                    return Outcome::RetriesExceeded;
                }
            }
        }
    }

    /// Starts the handler once and follows it until it ends.
    async fn run_once(&mut self, shutdown: &mut watch::Receiver<bool>) -> Ended {
        if *shutdown.borrow() {
            return Ended::ShutdownRequested;
        }
        // Requests from invocations of a handler that is gone already.
        while self.restarts.try_recv().is_ok() {}
        let worker_id = new_guid();
        host_log::info(format!(
            "Starting the handler: {} (port {}, working directory {})",
            self.launch.display(self.port, &worker_id),
            self.port,
            self.launch.working_directory.display()
        ));
        let mut child = match self.spawn(&worker_id) {
            Ok(child) => child,
            Err(error) => {
                host_log::error(format!(
                    "Failed to start Worker Channel. Process fileName: {}: {error}",
                    self.launch.program.display()
                ));
                return Ended::NotSpawned;
            }
        };
        let output = relay_console(&mut child);

        let readiness =
            readiness::wait_until_ready(self.port, self.initialization_timeout, self.client);
        tokio::pin!(readiness);
        let mut exited_with_zero = false;
        let readiness = loop {
            tokio::select! {
                readiness = &mut readiness => break readiness,
                status = child.wait(), if !exited_with_zero => {
                    match &status {
                        // Not an error event: the poll goes on until it runs out.
                        Ok(status) if status.success() => exited_with_zero = true,
                        _ => return finish(Ended::Exited(status), output).await,
                    }
                }
                () = stop_requested(shutdown) => {
                    self.stop(&mut child).await;
                    return finish(Ended::ShutdownRequested, output).await;
                }
            }
        };
        match readiness {
            Readiness::Ready if !exited_with_zero => {}
            Readiness::Ready | Readiness::TimedOut => {
                host_log::error("Initializing HttpWorker timed out.");
                host_log::error(format!(
                    "Failed to start http worker process. workerId:{worker_id}"
                ));
                kill(&mut child).await;
                return finish(Ended::Failed, output).await;
            }
            Readiness::Failed(why) => {
                host_log::error(format!(
                    "Failed to start http worker process. workerId:{worker_id}: {why}"
                ));
                kill(&mut child).await;
                return finish(Ended::Failed, output).await;
            }
        }
        self.state.send_replace(HandlerState::Ready);
        host_log::info("Worker process started and initialized.");

        tokio::select! {
            status = child.wait() => finish(Ended::Exited(status), output).await,
            Some(invocation) = self.restarts.recv() => {
                host_log::warn(format!(
                    "A function timeout has occurred. Restarting worker process executing invocationId '{invocation}'."
                ));
                self.state.send_replace(HandlerState::Starting);
                kill(&mut child).await;
                finish(Ended::TimeoutRestart, output).await
            }
            () = stop_requested(shutdown) => {
                self.state.send_replace(HandlerState::Starting);
                self.stop(&mut child).await;
                finish(Ended::ShutdownRequested, output).await
            }
        }
    }

    fn spawn(&self, worker_id: &str) -> std::io::Result<Child> {
        let mut command = self.launch.command(self.port, worker_id);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a terminal's Ctrl-C reaches the
            // emulator alone, which then stops the handler as configured.
            .process_group(0);
        die_with_parent(&mut command);
        command.spawn()
    }

    /// Stops the handler at shutdown, as [`StopMode`] says.
    async fn stop(&self, child: &mut Child) {
        match self.stop_mode {
            StopMode::Kill => {
                host_log::info("Stopping the handler (SIGKILL, as the Functions host does).");
                kill(child).await;
            }
            StopMode::Graceful => stop_gracefully(child).await,
        }
    }
}

/// Linux: the handler gets SIGKILL if the emulator dies without stopping it
/// (killed with SIGKILL, say), instead of living on with its port. (The
/// Functions host does not do this; it keeps tests from leaving handlers.)
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // the prctl system call, which is async-signal-safe; it touches no locks
    // and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut tokio::process::Command) {}

/// Sends SIGTERM to the handler's group and waits up to [`STOP_GRACE`]; then kills.
async fn stop_gracefully(child: &mut Child) {
    host_log::info("Stopping the handler (SIGTERM, --graceful-stop).");
    if !signal_group(child, Signal::TERM) {
        kill(child).await;
        return;
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(Ok(status)) => host_log::info(format!("The handler stopped: {status}.")),
        Ok(Err(error)) => host_log::error(format!("Waiting for the handler failed: {error}")),
        Err(_) => {
            host_log::error(format!(
                "The handler did not stop within {STOP_GRACE:?} of SIGTERM; killing it."
            ));
            kill(child).await;
        }
    }
}

/// `Process.Kill()`: SIGKILL to the handler alone (a wrapper script's
/// children live on, as under the Functions host), then up to a second for
/// it to exit.
async fn kill(child: &mut Child) {
    let _ = child.start_kill();
    if tokio::time::timeout(KILL_WAIT, child.wait()).await.is_err() {
        host_log::warn(format!(
            "Worker process {} has not exited despite waiting for 1000 ms",
            child.id().unwrap_or_default()
        ));
    }
}

/// Signals the handler's process group (it leads its own, see
/// [`Supervisor::spawn`]), so that what a wrapper script started drains
/// with it. `false` when the handler was already reaped.
fn signal_group(child: &Child, signal: Signal) -> bool {
    child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| rustix::process::kill_process_group(pid, signal).is_ok())
}

/// Lets the handler's last console lines through before reporting how it ended.
async fn finish(ended: Ended, output: [JoinHandle<()>; 2]) -> Ended {
    for task in output {
        // A grandchild may keep the pipe open; do not wait for it long.
        let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
    }
    ended
}

/// Relays the handler's stdout (Information) and stderr (Error, or Warning
/// when the line mentions "warn") to the console, line by line.
fn relay_console(child: &mut Child) -> [JoinHandle<()>; 2] {
    let stdout = child.stdout.take().map(|s| relay_lines(s, false));
    let stderr = child.stderr.take().map(|s| relay_lines(s, true));
    [
        stdout.unwrap_or_else(|| tokio::spawn(async {})),
        stderr.unwrap_or_else(|| tokio::spawn(async {})),
    ]
}

fn relay_lines(stream: impl AsyncRead + Unpin + Send + 'static, is_stderr: bool) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    if text.is_empty() {
                        continue; // The host skips empty lines.
                    }
                    let text = text.strip_prefix(SYSTEM_LOG_PREFIX).unwrap_or(text);
                    let level = if is_stderr {
                        Level::of_handler_stderr(text)
                    } else {
                        Level::Information
                    };
                    host_log::log(level, text);
                }
            }
        }
    })
}
