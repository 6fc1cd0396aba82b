//! Function apps in temporary folders and the real `functions-emulator`
//! binary running them, its console captured (through the test harness's
//! `HandlerProcess`, which launches any server and waits for its first answer).

use std::process::{Command, ExitStatus};
use std::time::Duration;

use bytes::Bytes;
use test_harness::HandlerProcess;
pub use test_harness::TempApp;
use test_harness::http::{self, Response};

/// Bound on how long the emulator may take to exit when asked to.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `functions-emulator`, killed when dropped.
pub struct Emulator {
    process: HandlerProcess,
}

impl Emulator {
    /// Starts the emulator on `app` with `args`, on a free port, and waits
    /// until it answers HTTP (not until the handler is ready).
    pub async fn start(app: &TempApp, args: &[&str]) -> Self {
        Emulator::start_with_env(app, args, &[]).await
    }

    /// [`Emulator::start`] with extra environment variables.
    pub async fn start_with_env(app: &TempApp, args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = test_harness::free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_functions-emulator"));
        command
            .arg(&app.root)
            .arg("--port")
            .arg(port.to_string())
            .args(args)
            .env_remove("FUNCTIONS_EMULATOR_PORT");
        // The plan is the test's choice, not the machine's.
        for variable in functions_contract::PLAN_VARIABLES {
            command.env_remove(variable);
        }
        command.envs(env.iter().copied());
        Emulator {
            process: HandlerProcess::launch(command, port).await,
        }
    }

    /// Starts the emulator and waits until its handler is ready.
    pub async fn start_ready(app: &TempApp, args: &[&str]) -> Self {
        Emulator::start_ready_with_env(app, args, &[]).await
    }

    /// [`Emulator::start_ready`] with extra environment variables.
    pub async fn start_ready_with_env(app: &TempApp, args: &[&str], env: &[(&str, &str)]) -> Self {
        let emulator = Emulator::start_with_env(app, args, env).await;
        emulator
            .wait_for_line(|line| line.ends_with("] Worker process started and initialized."))
            .await;
        emulator
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// Its console so far.
    pub fn console(&self) -> Vec<String> {
        self.process.stdout()
    }

    /// How many invocations the console shows so far (`Executing` lines).
    pub fn invocations(&self) -> usize {
        self.console()
            .iter()
            .filter(|line| line.contains("Executing 'Functions."))
            .count()
    }

    /// Waits for a console line matching `predicate` and returns it.
    pub async fn wait_for_line(&self, predicate: impl Fn(&str) -> bool) -> String {
        self.process.wait_for_stdout(predicate).await
    }

    /// The invocation id in the `Executing 'Functions.<function>'` line whose
    /// id is not in `seen`, once it is printed.
    pub async fn invocation_id(&self, function: &str, seen: &[String]) -> String {
        let prefix = format!("Executing 'Functions.{function}' (Reason=");
        let line = self
            .wait_for_line(|line| {
                line.contains(&prefix) && !seen.iter().any(|id| line.contains(id.as_str()))
            })
            .await;
        line.rsplit("Id=")
            .next()
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no Id in {line:?}"))
            .to_owned()
    }

    /// Sends `method path` with `headers` and `body`, and a Host header as a
    /// browser would send it.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        Emulator::send_to(self.port(), method, path, headers, body).await
    }

    /// `GET path` of the emulator on `port`, for a task of its own.
    pub async fn get_on(port: u16, path: &str) -> Response {
        Emulator::send_to(port, "GET", path, &[], "").await
    }

    async fn send_to(
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let mut request = ::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("localhost:{port}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !body.is_empty() {
            request = request.header("content-length", body.len().to_string());
        }
        let request = request
            .body(Bytes::from(body.to_owned()))
            .expect("a valid request");
        http::send(port, request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Response {
        self.send("GET", path, &[], "").await
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Waits for it to exit by itself.
    pub async fn wait_for_exit(&mut self) -> ExitStatus {
        self.process.wait_for_exit(EXIT_TIMEOUT).await
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn stop(&mut self) -> ExitStatus {
        self.process.signal(15);
        self.wait_for_exit().await
    }
}

/// Whether `line` starts with the console's timestamp, `[2026-11-24T00:00:00.000Z] `.
pub fn is_timestamped(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.len() > 27
        && bytes[0] == b'['
        && bytes[11] == b'T'
        && bytes[24] == b'Z'
        && bytes[25] == b']'
        && bytes[26] == b' '
        && line[1..24]
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | 'T' | ':' | '.'))
}

/// `line` without its timestamp.
pub fn message(line: &str) -> &str {
    assert!(is_timestamped(line), "not a timestamped line: {line:?}");
    &line[27..]
}
