//! The custom handler contract: the port from the Functions host's
//! environment, the readiness poll, forwarded requests, graceful exit.

use std::time::Duration;

use bytes::Bytes;
use test_harness::functions_host::{Forward, HOST_VERSION};
use test_harness::{guests, http};

use crate::HANDLER;

#[tokio::test]
async fn readiness_poll_is_answered_by_the_host() {
    let handler = HANDLER.start(guests::MISBEHAVE).await;
    // The guest would answer `/` with 404; `GET /` is the host's.
    let probe = ::http::Request::get("/")
        .header("host", "127.0.0.1")
        .body(Bytes::new())
        .expect("a request");
    let response = http::send(handler.port(), probe).await.expect("an answer");
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["status"], "ready");
}

#[tokio::test]
async fn the_guest_sees_the_forwarded_request_without_function_keys() {
    let handler = HANDLER.start(guests::ECHO_REQUEST).await;
    let response = Forward::get("/api/echo/a%20b?name=Atlas&code=function-key-123&x=1%2C2")
        .header("x-functions-key", "function-key-456")
        .header("host", "catalog-func.azurewebsites.net")
        .header("x-forwarded-proto", "https")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send(handler.port())
        .await;
    assert_eq!(response.status, 200);
    let seen = response.json();
    assert_eq!(
        seen["path_with_query"],
        "/api/echo/a%20b?name=Atlas&x=1%2C2"
    );
    let headers: Vec<(String, String)> =
        serde_json::from_value(seen["headers"].clone()).expect("header pairs");
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("x-functions-key"), None);
    assert_eq!(
        get("x-correlation-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(get("x-azure-functions-hostversion"), Some(HOST_VERSION));
    assert!(get("x-azure-functions-invocationid").is_some());
    // wasi:http gives the Host header to the guest as the authority.
    assert_eq!(seen["authority"], "catalog-func.azurewebsites.net");
    assert_eq!(seen["scheme"], "https", "from X-Forwarded-Proto");
    assert!(get("user-agent").is_some_and(|agent| agent.contains("Azure-Functions-Host/")));
}

#[tokio::test]
async fn every_way_of_passing_the_port_works() {
    for builder in [
        HANDLER.builder(guests::CATALOG).legacy_port_variable(),
        HANDLER.builder(guests::CATALOG).listen_flag(),
    ] {
        let handler = builder.start().await;
        assert_eq!(
            Forward::get("/api/catalog/42")
                .send(handler.port())
                .await
                .status,
            200
        );
    }
}

#[tokio::test]
async fn sigterm_and_sigint_exit_zero() {
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    for signal in [SIGTERM, SIGINT] {
        let mut handler = HANDLER.start(guests::CATALOG).await;
        assert_eq!(
            Forward::get("/api/catalog/42")
                .send(handler.port())
                .await
                .status,
            200
        );
        handler.signal(signal);
        let status = handler.wait_for_exit(Duration::from_secs(15)).await;
        // The Functions host restarts a handler that exits non-zero.
        assert!(status.success(), "signal {signal}: {status}");
    }
}

#[tokio::test]
async fn sigterm_during_load_completes_every_accepted_request() {
    const SIGTERM: i32 = 15;
    const IN_FLIGHT: usize = 8;
    let mut handler = HANDLER
        .builder(guests::MISBEHAVE)
        .args(["--shutdown-grace", "10s"])
        .start()
        .await;
    let port = handler.port();
    let requests: Vec<_> = (0..IN_FLIGHT)
        .map(|n| {
            tokio::spawn(async move {
                Forward::get(&format!("/api/faults/slow?ms=800&n={n}"))
                    .send(port)
                    .await
            })
        })
        .collect();
    handler
        .wait_for_stderr_lines(IN_FLIGHT, |line| line.contains("started slow"))
        .await;
    handler.signal(SIGTERM);
    handler
        .wait_for_stdout(|line| line.contains("SIGTERM received"))
        .await;

    // New connections are no longer accepted...
    let late = http::send(port, Forward::get("/api/faults/ok").into_request()).await;
    assert!(late.is_err(), "a connection after the signal: {late:?}");
    // ...and every request accepted before the signal completes.
    for request in requests {
        let response = request.await.expect("joined");
        assert_eq!(
            (response.status, response.body.as_ref()),
            (200, b"slow".as_ref())
        );
    }
    let status = handler.wait_for_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}");
}

/// `wasm-handler serve` in an app folder whose host.json says `timeout`,
/// on the plan `plan_env` describes; its exit status and stderr.
fn serve_with_function_timeout(
    test: &str,
    timeout: Option<&str>,
    plan_env: &[(&str, &str)],
    request_timeout: &str,
) -> (Option<i32>, String) {
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{test}-{:08x}", fastrand::u32(..)));
    std::fs::create_dir_all(&root).expect("creating the app folder");
    let setting = timeout.map_or(String::new(), |t| format!(r#", "functionTimeout": "{t}""#));
    std::fs::write(
        root.join("host.json"),
        format!(
            r#"{{"version": "2.0"{setting},
                "customHandler": {{"description": {{"defaultExecutablePath": "wasm-handler"}}}}}}"#
        ),
    )
    .expect("writing host.json");
    let mut command = std::process::Command::new(HANDLER.binary());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--component"])
        .arg(guests::CATALOG)
        .args(["--request-timeout", request_timeout, "--function-app"])
        .arg(&root);
    for variable in functions_contract::PLAN_VARIABLES {
        command.env_remove(variable);
    }
    command.envs(plan_env.iter().copied());
    // The check comes before anything is compiled, so a refusal is quick; a
    // handler that starts would serve until killed: stop it after a moment.
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning wasm-handler");
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        if child.try_wait().expect("waiting").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("collecting wasm-handler");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// The Functions host enforces functionTimeout by killing the handler, every
// request in flight with it (azure-functions-host
// `src/WebJobs.Script/Config/ScriptJobHostOptionsSetup.cs` for the defaults,
// `src/WebJobs.Script.WebHost/WebScriptHostExceptionHandler.cs` for the kill):
// the handler refuses a deadline that would come after it.
#[test]
fn the_request_deadline_must_come_before_the_function_timeout() {
    let (code, stderr) = serve_with_function_timeout("timeout-short", Some("00:00:20"), &[], "30s");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--request-timeout (30s) is not below the functionTimeout"),
        "{stderr}"
    );
    assert!(stderr.contains("00:00:20"), "{stderr}");
    // Consumption's default is 5 minutes, everywhere else 30.
    let (code, stderr) = serve_with_function_timeout(
        "timeout-consumption",
        None,
        &[("WEBSITE_SKU", "Dynamic")],
        "6m",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("00:05:00"), "{stderr}");
    let (code, stderr) = serve_with_function_timeout(
        "timeout-flex",
        None,
        &[("WEBSITE_SKU", "FlexConsumption")],
        "6m",
    );
    assert_eq!(code, None, "still serving, killed by the test: {stderr}");
}
