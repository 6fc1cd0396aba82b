//! The handler process as the Functions host runs it (azure-functions-host
//! `src/WebJobs.Script/Workers/ProcessManagement/WorkerProcess.cs`,
//! `src/WebJobs.Script/Workers/Http/HttpFunctionInvocationDispatcher.cs`,
//! `src/WebJobs.Script/Description/Workers/WorkerFunctionInvoker.cs`): the
//! restart policy, exit code 0 before and after start-up, the readiness
//! timeout, requests that wait for a starting handler, SIGKILL at shutdown
//! (and `--graceful-stop`), and `--port 0`, with shell and Python scripts as
//! handlers.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{EXIT_TIMEOUT, Emulator, TempApp, message};

/// A function app whose handler is `script` (a shell script body), with one
/// anonymous HTTP function `ping`.
fn script_app(name: &str, script: &str, host_extra: &str) -> TempApp {
    let app = TempApp::empty(name);
    app.write(
        "host.json",
        &format!(
            r#"{{"version": "2.0",
                "customHandler": {{"description": {{"defaultExecutablePath": "handler.sh"}}{host_extra}}}}}"#
        ),
    );
    app.write(
        "ping/function.json",
        r#"{"bindings": [
            {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous"},
            {"type": "http", "direction": "out", "name": "res"}]}"#,
    );
    app.write_script("handler.sh", script);
    app
}

#[tokio::test]
async fn a_failing_handler_is_restarted_until_the_third_failure() {
    // The pause keeps each run long enough to be seen starting.
    let app = script_app(
        "fails",
        "echo launched >> launches.txt\necho 'failing on purpose' >&2\nsleep 0.3\nexit 1",
        "",
    );
    let started = Instant::now();
    let mut emulator = Emulator::start(&app, &[]).await;
    let status = emulator.wait_for_exit().await;
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(started.elapsed() < EXIT_TIMEOUT);
    assert_eq!(app.read("launches.txt").lines().count(), 3);
    // Console lines are read as they come: the last one first, then the rest.
    emulator
        .wait_for_line(|line| line.ends_with("] Shutting down."))
        .await;
    let console = emulator.console();
    let lines = |text: &str| console.iter().filter(|line| line.contains(text)).count();
    assert_eq!(lines("] Starting the handler: "), 3);
    assert_eq!(lines(" exited with exit status: 1."), 3);
    assert_eq!(lines("] [Error] failing on purpose"), 3);
    assert_eq!(lines("Restarting the handler"), 2);
    assert!(
        console.iter().any(|line| line.ends_with(
            "] [Error] Exceeded http worker restart retry count. Shutting down Functions Host"
        )),
        "{console:#?}"
    );
}

/// A handler's console line stays one line on the host's console: line
/// separators, NEL and terminal controls in it are escaped.
#[tokio::test]
async fn a_handler_cannot_forge_a_console_line() {
    let app = script_app(
        "forger",
        r"printf 'ok\342\200\250[Error] forged\302\205[Error] nel\302\233[31m\n'
printf 'err\342\200\251[Error] forged\n' >&2
sleep 0.3
exit 1",
        "",
    );
    let mut emulator = Emulator::start(&app, &[]).await;
    emulator.wait_for_exit().await;
    emulator
        .wait_for_line(|line| line.ends_with("] Shutting down."))
        .await;
    let console = emulator.console();
    assert!(
        console
            .iter()
            .any(|line| line.ends_with("] ok\\u{2028}[Error] forged\\u{85}[Error] nel\\u{9b}[31m")),
        "{console:#?}"
    );
    for line in &console {
        for piece in line.split(['\u{2028}', '\u{2029}', '\u{85}', '\r', '\u{b}', '\u{c}']) {
            assert!(!piece.starts_with("[Error]"), "forged: {line:?}");
        }
        assert!(!line.contains('\u{9b}'), "a raw CSI: {line:?}");
    }
}

/// A Python handler: answers every GET with 200 on the port the host gives,
/// after `delay` seconds; `on_ready` is Python run on a thread once the
/// first GET is answered.
fn python_app(name: &str, delay: f64, on_ready: &str, host_extra: &str) -> TempApp {
    let app = script_app(name, "exec python3 -u handler.py", host_extra);
    app.write(
        "handler.py",
        &format!(
            r#"import os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
def on_term(*_):
    open("terminated.txt", "w").write("SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open("launches.txt", "a").write(str(os.getpid()) + "\n")
time.sleep({delay})
ready = threading.Event()
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        ready.set()
    def do_POST(self):
        # A payload-mode invocation, sent chunked: read, answered with the envelope.
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            self.rfile.read(size + 2)
            if size == 0:
                break
        body = b'{{"Outputs": {{"res": {{"statusCode": 200, "body": "ok"}}}}, "Logs": []}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
def after_ready():
    ready.wait()
{on_ready}
threading.Thread(target=after_ready, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", int(os.environ["FUNCTIONS_CUSTOMHANDLER_PORT"])), Handler).serve_forever()
"#,
            on_ready = if on_ready.is_empty() {
                "    pass".to_owned()
            } else {
                on_ready
                    .lines()
                    .map(|line| format!("    {line}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        ),
    );
    app
}

#[tokio::test]
async fn a_handler_that_exits_0_after_start_up_is_not_restarted_and_requests_fail() {
    let app = python_app("exits-0", 0.0, "time.sleep(0.3)\nos._exit(0)", "");
    let mut emulator = Emulator::start_ready(&app, &[]).await;
    let line = emulator
        .wait_for_line(|line| line.contains("exited with code 0"))
        .await;
    assert!(message(&line).contains("does not restart it"), "{line}");
    // Enough time for a restart to have happened, were there one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(emulator.is_running());
    assert_eq!(app.read("launches.txt").lines().count(), 1);
    // Nothing listens: every request fails, 500 with an empty body (not a 503).
    let response = emulator.get("/api/ping").await;
    assert_eq!(response.status, 500);
    assert!(response.body.is_empty());
    assert!(emulator.stop().await.success());
}

#[tokio::test]
async fn a_handler_that_exits_0_during_start_up_times_out_and_counts() {
    let app = script_app(
        "exits-0-early",
        "echo launched >> launches.txt\necho bye\nexit 0",
        r#", "initializationTimeout": "00:00:00.3""#,
    );
    let mut emulator = Emulator::start(&app, &[]).await;
    let status = emulator.wait_for_exit().await;
    assert_eq!(
        status.code(),
        Some(1),
        "three readiness timeouts stop the host"
    );
    assert_eq!(app.read("launches.txt").lines().count(), 3);
    emulator
        .wait_for_line(|line| line.ends_with("] Shutting down."))
        .await;
    let console = emulator.console();
    let bye = console
        .iter()
        .find(|line| line.ends_with("] bye"))
        .expect("the handler's stdout line");
    assert_eq!(
        message(bye),
        "bye",
        "stdout is logged at Information, untagged"
    );
    assert_eq!(
        console
            .iter()
            .filter(|line| line.ends_with("] [Error] Initializing HttpWorker timed out."))
            .count(),
        3,
        "{console:#?}"
    );
}

#[tokio::test]
async fn a_request_waits_for_a_handler_that_starts_slowly() {
    let app = python_app("slow-start", 1.5, "", "");
    let emulator = Emulator::start(&app, &[]).await;
    let sent = Instant::now();
    let response = emulator.get("/api/ping").await;
    assert_eq!(response.status, 200, "not a 503: the invocation waits");
    assert!(
        sent.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn the_handler_is_stopped_with_sigkill_as_the_host_stops_it() {
    let app = python_app("sigkill", 0.0, "", "");
    let mut emulator = Emulator::start_ready(&app, &[]).await;
    let pid: i32 = app.read("launches.txt").trim().parse().expect("a pid");
    assert!(emulator.stop().await.success());
    assert!(!process_alive(pid), "the handler is gone");
    assert!(
        std::fs::read_to_string(app.root.join("terminated.txt")).is_err(),
        "it never saw SIGTERM"
    );
    emulator
        .wait_for_line(|line| line.contains("Stopping the handler (SIGKILL"))
        .await;

    // A person at a terminal can ask for a graceful stop instead.
    let app = python_app("graceful", 0.0, "", "");
    let mut emulator = Emulator::start_ready(&app, &["--graceful-stop"]).await;
    assert!(emulator.stop().await.success());
    assert_eq!(app.read("terminated.txt"), "SIGTERM");
}

fn process_alive(pid: i32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .expect("running kill")
        .success()
}

#[tokio::test]
async fn a_handler_that_never_listens_times_out_and_counts_as_a_failure() {
    // Not `exec`: the sleep is the script's child.
    let app = script_app(
        "silent",
        "sleep 60 &\necho $$ $! >> launches.txt\nwait",
        r#", "initializationTimeout": "00:00:00.5""#,
    );
    let mut emulator = Emulator::start(&app, &[]).await;
    let status = emulator.wait_for_exit().await;
    assert_eq!(status.code(), Some(1));
    emulator
        .wait_for_line(|line| line.ends_with("] Shutting down."))
        .await;
    let console = emulator.console();
    let timeouts = console
        .iter()
        .filter(|line| line.ends_with("] [Error] Initializing HttpWorker timed out."))
        .count();
    assert_eq!(timeouts, 3, "{console:#?}");
    let launches = app.read("launches.txt");
    assert_eq!(launches.lines().count(), 3);
    // Process.Kill() kills the script alone: its child lives on, as under
    // the Functions host (then this test ends it).
    for launch in launches.lines() {
        let (script, child) = launch.split_once(' ').expect("two pids");
        let (script, child): (i32, i32) = (
            script.parse().expect("a pid"),
            child.parse().expect("a pid"),
        );
        assert!(!process_alive(script), "the script {script} was killed");
        assert!(process_alive(child), "its child {child} lives on");
        let _ = Command::new("kill").arg(child.to_string()).status();
    }
}

#[test]
fn port_0_picks_a_free_port_and_says_which() {
    let app = script_app("port-0", "exit 0", "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_functions-emulator"))
        .arg(&app.root)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the emulator");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let port: u16 = loop {
        let line = received
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a Listening on line in time");
        if let Some(port) = line.split("] Listening on http://127.0.0.1:").nth(1) {
            break port.parse().expect("a port number");
        }
    };
    assert_ne!(port, 0);
    let connected = std::net::TcpStream::connect(("127.0.0.1", port));
    let _ = child.kill();
    let _ = child.wait();
    assert!(connected.is_ok(), "nothing listens on {port}");
}
