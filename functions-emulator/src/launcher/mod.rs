//! The handler process: launched as the Functions host launches it, polled
//! until ready, its console relayed, restarted per the host's policy and
//! stopped with SIGTERM at shutdown (reference §1.2, §1.3).

pub(crate) mod command;
pub(crate) mod readiness;
pub(crate) mod restart;

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::Signal;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) use command::{HostEnvironment, Launch};
use restart::{Decision, RestartPolicy};

use crate::host_log::{self, Level};
use crate::lifecycle::stop_requested;
use functions_contract::protocol::new_guid;

/// How long a stopping handler may take after SIGTERM before it is killed.
/// (`wasm-handler` drains in-flight requests for 10 s by default.)
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(15);
/// Lines starting with this go to the host's own log, not the function console.
const SYSTEM_LOG_PREFIX: &str = "LanguageWorkerConsoleLog";

/// Whether requests can be invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandlerState {
    /// Starting, or restarting: requests get 503.
    Starting,
    /// Answered the readiness poll; listening on this port.
    Ready(u16),
    /// Exited with code 0 and is not restarted: requests get 503.
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

/// Keeps the handler running.
pub(crate) struct Supervisor {
    launch: Launch,
    port: u16,
    initialization_timeout: Duration,
    state: watch::Sender<HandlerState>,
    policy: RestartPolicy,
}

/// How one run of the handler ended.
enum Ended {
    Exited(std::io::Result<ExitStatus>),
    /// Failed to start or to become ready: an error event.
    Failed,
    ShutdownRequested,
}

impl Supervisor {
    /// A supervisor for `launch` on `port` (chosen once, kept across restarts).
    pub(crate) fn new(
        launch: Launch,
        port: u16,
        initialization_timeout: Duration,
    ) -> (Self, watch::Receiver<HandlerState>) {
        let (state, receiver) = watch::channel(HandlerState::Starting);
        let supervisor = Supervisor {
            launch,
            port,
            initialization_timeout,
            state,
            policy: RestartPolicy::default(),
        };
        (supervisor, receiver)
    }

    /// Runs the handler until shutdown is requested or it fails too often.
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Outcome {
        loop {
            self.state.send_replace(HandlerState::Starting);
            let decision = match self.run_once(&mut shutdown).await {
                Ended::ShutdownRequested => return Outcome::ShutDown,
                Ended::Failed => self.policy.error(std::time::Instant::now()),
                Ended::Exited(status) => {
                    self.state.send_replace(HandlerState::Starting);
                    let code = status.as_ref().ok().and_then(ExitStatus::code);
                    match &status {
                        Ok(status) if status.success() => host_log::info(
                            "The handler exited with code 0; the Functions host does not restart it (requests get 503).",
                        ),
                        Ok(status) if code == Some(200) => host_log::info(format!(
                            "The handler exited with code 200 ({status}): restarting it, as it asked."
                        )),
                        Ok(status) => host_log::error(format!("The handler exited: {status}.")),
                        Err(error) => {
                            host_log::error(format!("Waiting for the handler failed: {error}"))
                        }
                    }
                    self.policy.exited(code, std::time::Instant::now())
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
                    "Restarting the handler ({errors} of {} errors allowed within 30 minutes).",
                    restart::MAX_ERRORS - 1
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
        host_log::info(format!(
            "Starting the handler: {} (port {}, working directory {})",
            self.launch.display(),
            self.port,
            self.launch.working_directory.display()
        ));
        let mut child = match self.spawn() {
            Ok(child) => child,
            Err(error) => {
                host_log::error(format!("Failed to start http worker process: {error}"));
                return Ended::Failed;
            }
        };
        let output = relay_console(&mut child);

        let ready = tokio::select! {
            ready = readiness::wait_until_ready(self.port, self.initialization_timeout) => ready,
            status = child.wait() => return finish(Ended::Exited(status), output).await,
            () = stop_requested(shutdown) => {
                stop(&mut child).await;
                return finish(Ended::ShutdownRequested, output).await;
            }
        };
        if !ready {
            host_log::error("Initializing HttpWorker timed out.");
            host_log::error("Failed to start http worker process");
            kill(&mut child).await;
            return finish(Ended::Failed, output).await;
        }
        self.state.send_replace(HandlerState::Ready(self.port));
        host_log::info("Worker process started and initialized.");

        tokio::select! {
            status = child.wait() => finish(Ended::Exited(status), output).await,
            () = stop_requested(shutdown) => {
                self.state.send_replace(HandlerState::Starting);
                stop(&mut child).await;
                finish(Ended::ShutdownRequested, output).await
            }
        }
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let mut command = self.launch.command(self.port, &new_guid());
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a terminal's Ctrl-C reaches the
            // emulator alone, which then stops the handler in order.
            .process_group(0);
        die_with_parent(&mut command);
        command.spawn()
    }
}

/// Linux: the handler gets SIGTERM if the emulator dies without stopping it
/// (killed with SIGKILL, say), instead of living on with its port.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // the prctl system call, which is async-signal-safe; it touches no locks
    // and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut tokio::process::Command) {}

/// Sends SIGTERM and waits up to [`STOP_GRACE`]; then kills.
async fn stop(child: &mut Child) {
    host_log::info("Stopping the handler (SIGTERM).");
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

/// Kills the handler's process group and reaps the handler.
async fn kill(child: &mut Child) {
    if !signal_group(child, Signal::KILL) {
        let _ = child.start_kill();
    }
    let _ = child.wait().await;
}

/// Signals the handler's process group (it leads its own, see
/// [`Supervisor::spawn`]), so that what a wrapper script started stops with
/// it. `false` when the handler was already reaped.
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
