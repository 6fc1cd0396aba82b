//! A running `wasm-handler`, launched the way the Functions host launches a
//! custom handler: the app root as working directory,
//! `FUNCTIONS_CUSTOMHANDLER_PORT` (a free port), `FUNCTIONS_CUSTOMHANDLER_WORKER_ID`
//! and `FUNCTIONS_APP_ROOT_PATH` in the environment, then `GET /` every 25 ms
//! until any HTTP answer, for at most 30 seconds of pauses
//! (azure-functions-host `src/WebJobs.Script/Workers/ProcessManagement/DefaultWorkerProcessFactory.cs`,
//! `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs` `IsWorkerReady`).

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use functions_contract::protocol;

use crate::http;

/// The Functions host's readiness poll interval and timeout.
const READINESS_POLL: Duration = Duration::from_millis(25);
const INITIALIZATION_TIMEOUT: Duration = Duration::from_secs(30);

/// A `wasm-handler` binary to launch: in the host's own test targets,
/// `Handler::new(env!("CARGO_BIN_EXE_wasm-handler"))`, which cargo builds
/// from the source under test before the tests run; elsewhere
/// `Handler::new(current_binary("wasm-handler"))` (see [`crate::current_binary`]).
#[derive(Debug, Clone, Copy)]
pub struct Handler {
    binary: &'static str,
}

impl Handler {
    /// The binary at `binary`.
    pub const fn new(binary: &'static str) -> Self {
        Self { binary }
    }

    /// Its path.
    pub fn binary(self) -> &'static Path {
        Path::new(self.binary)
    }

    /// Options for a handler serving `component`, from the folder it is in.
    pub fn builder(self, component: impl AsRef<Path>) -> HandlerBuilder {
        let component = component.as_ref();
        let app_root = component
            .parent()
            .expect("the component is in a folder")
            .to_owned();
        HandlerBuilder {
            component: Some(component.to_owned()),
            ..self.builder_in(app_root)
        }
    }

    /// Options for a handler run from `app_root` with no `--component`
    /// (give `--route` arguments).
    pub fn builder_in(self, app_root: impl AsRef<Path>) -> HandlerBuilder {
        HandlerBuilder {
            binary: self.binary(),
            component: None,
            app_root: app_root.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            port_passing: PortPassing::CustomHandlerVariable,
            console_lines_kept: None,
        }
    }

    /// A handler serving `component` with default options.
    pub async fn start(self, component: impl AsRef<Path>) -> HandlerProcess {
        self.builder(component).start().await
    }
}

/// Options for starting a handler.
pub struct HandlerBuilder {
    binary: &'static Path,
    component: Option<PathBuf>,
    app_root: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    port_passing: PortPassing,
    console_lines_kept: Option<usize>,
}

/// How the handler learns its port.
#[derive(Clone, Copy)]
enum PortPassing {
    /// `FUNCTIONS_CUSTOMHANDLER_PORT`, as current Functions hosts set it.
    CustomHandlerVariable,
    /// `FUNCTIONS_HTTPWORKER_PORT`, as older Functions hosts set it.
    LegacyVariable,
    /// `--listen 127.0.0.1:<port>`, as a person runs it without the Functions host.
    ListenFlag,
}

impl HandlerBuilder {
    /// Extra command-line arguments after `serve --component <path>`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable for the handler.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Pass the port as older Functions hosts do (`FUNCTIONS_HTTPWORKER_PORT`).
    pub fn legacy_port_variable(mut self) -> Self {
        self.port_passing = PortPassing::LegacyVariable;
        self
    }

    /// Pass the port with `--listen`, without the Functions host's variables.
    pub fn listen_flag(mut self) -> Self {
        self.port_passing = PortPassing::ListenFlag;
        self
    }

    /// Keep only about the last `lines` lines of each console stream, for
    /// long runs whose logs would otherwise fill memory.
    pub fn keep_console_lines(mut self, lines: usize) -> Self {
        self.console_lines_kept = Some(lines);
        self
    }

    /// Launches the handler and waits until it answers the readiness poll.
    pub async fn start(self) -> HandlerProcess {
        let port = free_port();
        let app_root = self.app_root;
        let mut command = Command::new(self.binary);
        command.arg("serve");
        if let Some(component) = &self.component {
            command.arg("--component").arg(component);
        }
        command
            .args(&self.args)
            .current_dir(&app_root)
            .env_remove(protocol::PORT_ENV)
            .env_remove(protocol::LEGACY_PORT_ENV)
            .env_remove("WASM_HANDLER_LOG");
        for variable in functions_contract::PLAN_VARIABLES {
            command.env_remove(variable);
        }
        match self.port_passing {
            PortPassing::CustomHandlerVariable => command.env(protocol::PORT_ENV, port.to_string()),
            PortPassing::LegacyVariable => command.env(protocol::LEGACY_PORT_ENV, port.to_string()),
            PortPassing::ListenFlag => command.arg("--listen").arg(format!("127.0.0.1:{port}")),
        };
        if !matches!(self.port_passing, PortPassing::ListenFlag) {
            command
                .env(protocol::WORKER_ID_ENV, protocol::new_guid())
                .env(protocol::APP_ROOT_ENV, &app_root);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        HandlerProcess::launch_keeping(command, port, self.console_lines_kept).await
    }
}

/// A running `wasm-handler`, killed when dropped.
pub struct HandlerProcess {
    child: Child,
    port: u16,
    stdout: Console,
    stderr: Console,
}

impl HandlerProcess {
    /// Launches any HTTP server `command` that will listen on `port` (its
    /// console captured) and waits until it answers the readiness poll.
    pub async fn launch(command: Command, port: u16) -> Self {
        Self::launch_keeping(command, port, None).await
    }

    async fn launch_keeping(mut command: Command, port: u16, lines_kept: Option<usize>) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {command:?}: {e}"));
        let stdout = Console::capture(child.stdout.take().expect("piped stdout"), lines_kept);
        let stderr = Console::capture(child.stderr.take().expect("piped stderr"), lines_kept);
        let mut process = HandlerProcess {
            child,
            port,
            stdout,
            stderr,
        };
        process.wait_until_ready().await;
        process
    }

    /// The handler's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The port the handler listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Lines the handler wrote to stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lines()
    }

    /// Lines the handler wrote to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// Waits until a stdout line satisfies `predicate` and returns it.
    pub async fn wait_for_stdout(&self, predicate: impl Fn(&str) -> bool) -> String {
        self.stdout.wait_for(predicate, "stdout").await
    }

    /// Waits for the host's `Serving component` line (its world, digest,
    /// origin and reuse) and returns it.
    pub async fn serving_line(&self) -> String {
        self.wait_for_stdout(|line| line.contains("Serving component"))
            .await
    }

    /// Waits until a stderr line satisfies `predicate` and returns it.
    pub async fn wait_for_stderr(&self, predicate: impl Fn(&str) -> bool) -> String {
        self.stderr.wait_for(predicate, "stderr").await
    }

    /// Waits until `count` stderr lines satisfy `predicate`.
    pub async fn wait_for_stderr_lines(&self, count: usize, predicate: impl Fn(&str) -> bool) {
        self.stderr.wait_for_count(count, predicate, "stderr").await;
    }

    /// Waits until `count` stdout lines satisfy `predicate`.
    pub async fn wait_for_stdout_lines(&self, count: usize, predicate: impl Fn(&str) -> bool) {
        self.stdout.wait_for_count(count, predicate, "stdout").await;
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal (`libc` number) to the process.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting on the handler") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the handler did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_until_ready(&mut self) {
        let started = Instant::now();
        loop {
            let probe = ::http::Request::get(protocol::READINESS_PATH)
                .header("host", "127.0.0.1")
                .body(Bytes::new())
                .expect("a request");
            if http::send(self.port, probe).await.is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("checking the handler") {
                panic!(
                    "the server exited during start-up ({status}); stderr:\n{}",
                    self.stderr().join("\n")
                );
            }
            assert!(
                started.elapsed() < INITIALIZATION_TIMEOUT,
                "Initializing HttpWorker timed out."
            );
            tokio::time::sleep(READINESS_POLL).await;
        }
    }
}

impl Drop for HandlerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One of the handler's console streams, captured line by line.
#[derive(Clone)]
struct Console(Arc<Mutex<Vec<String>>>);

impl Console {
    /// Reads `stream` to its end on a thread, keeping every line, or about
    /// the last `lines_kept` (the oldest half is dropped when full, so
    /// keeping costs no copy per line).
    fn capture(stream: impl Read + Send + 'static, lines_kept: Option<usize>) -> Self {
        let console = Console(Arc::default());
        let lines = console.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut lines = lines.lock().expect("not poisoned");
                if lines_kept.is_some_and(|kept| lines.len() >= kept.max(2)) {
                    let oldest_half = lines.len() / 2;
                    lines.drain(..oldest_half);
                }
                lines.push(line);
            }
        });
        console
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }

    async fn wait_for_count(&self, count: usize, predicate: impl Fn(&str) -> bool, name: &str) {
        let deadline = Instant::now() + http::REQUEST_TIMEOUT;
        while self.lines().iter().filter(|line| predicate(line)).count() < count {
            assert!(
                Instant::now() < deadline,
                "fewer than {count} matching {name} lines:\n{}",
                self.lines().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_for(&self, predicate: impl Fn(&str) -> bool, name: &str) -> String {
        let deadline = Instant::now() + http::REQUEST_TIMEOUT;
        loop {
            if let Some(line) = self.lines().into_iter().find(|line| predicate(line)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no matching {name} line in:\n{}",
                self.lines().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A port nobody listens on now, chosen as the Functions host does.
pub fn free_port() -> u16 {
    protocol::unused_tcp_port().expect("a free port")
}
