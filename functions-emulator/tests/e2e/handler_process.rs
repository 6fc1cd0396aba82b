//! The handler process: restart policy, exit code 0, readiness timeout and
//! `--port 0`, with shell scripts as handlers.

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
    assert_eq!(lines("] [Error] The handler exited: exit status: 1."), 3);
    assert_eq!(lines("] [Error] failing on purpose"), 3);
    assert_eq!(lines("Restarting the handler"), 2);
    assert!(
        console.iter().any(|line| line.ends_with(
            "] [Error] Exceeded http worker restart retry count. Shutting down Functions Host"
        )),
        "{console:#?}"
    );
}

#[tokio::test]
async fn a_handler_that_exits_0_is_not_restarted() {
    let app = script_app(
        "exits-0",
        "echo launched >> launches.txt\necho bye\nexit 0",
        "",
    );
    let mut emulator = Emulator::start(&app, &[]).await;
    let line = emulator
        .wait_for_line(|line| line.contains("exited with code 0"))
        .await;
    assert!(message(&line).contains("does not restart it"), "{line}");
    // Enough time for a restart to have happened, were there one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(emulator.is_running());
    assert_eq!(app.read("launches.txt").lines().count(), 1);
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
    // No handler: 503 with an empty body, even for a function that exists.
    let response = emulator.get("/api/ping").await;
    assert_eq!(response.status, 503);
    assert!(response.body.is_empty());
    assert!(emulator.stop().await.success());
}

#[tokio::test]
async fn a_handler_that_never_listens_times_out_and_counts_as_a_failure() {
    // Not `exec`: the sleep is the script's child, and must die with it.
    let app = script_app(
        "silent",
        "echo $$ >> launches.txt\nsleep 60",
        r#", "initializationTimeout": "00:00:00.5""#,
    );
    let mut emulator = Emulator::start(&app, &[]).await;
    assert_eq!(emulator.get("/api/ping").await.status, 503);
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
    // Each handler led its own process group, and the whole group was killed
    // (allowing a moment for the orphaned sleeps to be reaped).
    let group_alive = |group: &str| {
        Command::new("kill")
            .args(["-0", "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status()
            .expect("running kill")
            .success()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    for group in launches.lines() {
        while group_alive(group) {
            assert!(
                Instant::now() < deadline,
                "process group {group} is still alive"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
