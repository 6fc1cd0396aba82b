//! WASI 0.3: a component exporting `wasi:http/handler@0.3.0`, built here with
//! wit-bindgen 0.61's async exports, is served by the same host with the same
//! promises as a 0.2 one: the log names its world; its faults cost their
//! request a problem+json with the same status and detail; a body that fails
//! after the head is visibly cut off; its log lines carry the correlation id;
//! and reuse retires it after a fault.

use std::time::Duration;

use test_harness::functions_host::Forward;
use test_harness::{HandlerProcess, guests, http};

use crate::HANDLER;

async fn get(handler: &HandlerProcess, route: &str) -> test_harness::http::Response {
    Forward::get(&format!("/api/p3/{route}"))
        .header("x-correlation-id", &format!("p3-{route}"))
        .send(handler.port())
        .await
}

/// The host's start-up line names the 0.3 world.
async fn assert_served_as_p3(handler: &HandlerProcess) {
    let serving = handler.serving_line().await;
    assert!(
        serving.contains("world=wasi:http/handler@0.3.0"),
        "{serving}"
    );
}

#[tokio::test]
async fn a_p3_component_serves_and_the_log_names_its_world() {
    let handler = HANDLER.builder(guests::MISBEHAVE_P3).start().await;
    assert_served_as_p3(&handler).await;

    let ok = get(&handler, "ok").await;
    assert_eq!((ok.status, ok.body.as_ref()), (200, b"ok".as_ref()));
    assert_eq!(ok.header("x-correlation-id"), Some("p3-ok"));
    assert!(
        ok.header("x-component-digest")
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    // The guest's stderr, through WASI 0.3's streams, is logged in the request's context.
    let logged = handler
        .wait_for_stderr(|line| line.contains("started ok"))
        .await;
    assert!(logged.contains("correlation_id=p3-ok"), "{logged}");

    // As a 0.2 guest would see it: scheme and authority, path and query.
    let line = get(&handler, "request-line?x=1").await;
    let line = String::from_utf8_lossy(&line.body).into_owned();
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 3, "{line}");
    assert_eq!(parts[0], "http", "{line}");
    assert_ne!(parts[1], "-", "an authority: {line}");
    assert_eq!(parts[2], "/api/p3/request-line?x=1", "{line}");

    // A body written after `handle` has returned arrives whole.
    let streamed = get(&handler, "stream?kib=512").await;
    assert_eq!(streamed.status, 200);
    assert_eq!(streamed.body.len(), 512 << 10);
    assert!(streamed.body.iter().all(|byte| *byte == b'x'));
}

/// `wasm-handler compile` and the compile cache work for a 0.3 component as
/// for a 0.2 one, each compiled for its own engine: a 0.2 component for the
/// one without concurrency support (`host/src/engine.rs`).
#[tokio::test]
async fn a_precompiled_p3_component_serves() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("p3-precompiled");
    std::fs::create_dir_all(&out).expect("an output folder");
    let compile = |component: &str, output: &std::path::Path| -> serde_json::Value {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-handler"))
            .arg("compile")
            .arg(component)
            .arg("-o")
            .arg(output)
            .status()
            .expect("running wasm-handler compile");
        assert!(status.success(), "wasm-handler compile failed");
        let sidecar = std::fs::read(output.with_extension("cwasm.json")).expect("a sidecar");
        serde_json::from_slice(&sidecar).expect("JSON")
    };
    let precompiled = out.join("misbehave_p3.cwasm");
    let p3_engine = compile(guests::MISBEHAVE_P3, &precompiled)["engine"].clone();
    let p2_engine = compile(guests::VERSION_ONE, &out.join("version_one.cwasm"))["engine"].clone();
    assert_ne!(
        p3_engine, p2_engine,
        "0.2 and 0.3 compile for different engines"
    );
    let handler = HANDLER.start(&precompiled).await;
    assert_served_as_p3(&handler).await;
    let ok = get(&handler, "ok").await;
    assert_eq!((ok.status, ok.body.as_ref()), (200, b"ok".as_ref()));
}

#[tokio::test]
async fn p3_faults_get_the_same_problems_as_p2() {
    let mut handler = HANDLER
        .builder(guests::MISBEHAVE_P3)
        .args(["--request-timeout", "500ms", "--max-memory", "32MiB"])
        .start()
        .await;
    for (route, status, detail) in [
        (
            "trap",
            500,
            "The component failed before it sent a response.",
        ),
        (
            "loop",
            504,
            "The component did not answer within its 500ms deadline.",
        ),
        (
            "no-response",
            504,
            "The component did not answer within its 500ms deadline.",
        ),
        (
            "error-code",
            500,
            "The component answered with an error instead of a response.",
        ),
        ("oom", 500, "The component hit its memory limit of 32 MiB."),
    ] {
        let response = get(&handler, route).await;
        let problem = response.assert_problem(status, Some(&format!("p3-{route}")));
        assert_eq!(problem["detail"], detail, "{route}");
        assert!(handler.is_running(), "the host survived {route}");
        let ok = get(&handler, "ok").await;
        assert_eq!(ok.status, 200, "a good request after {route}");
    }
}

#[tokio::test]
async fn a_p3_body_that_fails_after_its_head_is_cut_off_visibly() {
    let handler = HANDLER.builder(guests::MISBEHAVE_P3).start().await;
    let request = b"GET /api/p3/trap-after-head HTTP/1.1\r\nHost: localhost\r\nx-correlation-id: p3-midway\r\n\r\n";
    let reply = http::send_raw(handler.port(), request, Duration::from_secs(5))
        .await
        .expect("a connection");
    assert_eq!(reply.status, Some(200), "{}", reply.text());
    let text = reply.text();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    assert!(head.contains("content-length: 1048576"), "{head}");
    assert!(body.len() < 1 << 20, "{} body bytes: cut off", body.len());
    let logged = handler
        .wait_for_stderr(|line| line.contains("after it sent the response head"))
        .await;
    assert!(logged.contains("correlation_id=p3-midway"), "{logged}");
}

#[tokio::test]
async fn a_reused_p3_instance_keeps_its_count_and_is_retired_by_a_trap() {
    let handler = HANDLER
        .builder(guests::MISBEHAVE_P3)
        .args([
            "--max-instance-reuse-count",
            "3",
            "--idle-instance-timeout",
            "30s",
        ])
        .start()
        .await;
    let mut counts = Vec::new();
    for route in ["count", "count", "count", "count", "count", "trap", "count"] {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let response = get(&handler, route).await;
        if route == "count" {
            counts.push(String::from_utf8_lossy(&response.body).into_owned());
        } else {
            assert_eq!(response.status, 500);
        }
    }
    assert_eq!(counts, ["1", "2", "3", "1", "2", "1"]);
}

/// The host with one instance in all, which may serve four requests at once.
async fn sharing_one_instance(extra: &[&str]) -> HandlerProcess {
    let handler = HANDLER
        .builder(guests::MISBEHAVE_P3)
        .args([
            "--max-instances",
            "1",
            "--max-instance-reuse-count",
            "100",
            "--max-instance-concurrent-reuse-count",
            "4",
            "--idle-instance-timeout",
            "30s",
        ])
        .args(extra.iter().copied())
        .start()
        .await;
    let serving = handler.serving_line().await;
    assert!(
        serving.contains("up to 100 requests per instance, 4 at once (0.3), 30s idle"),
        "{serving}"
    );
    handler
}

/// Sends each of `routes` at once and returns the responses in order.
async fn at_once(handler: &HandlerProcess, routes: &[&str]) -> Vec<test_harness::http::Response> {
    let requests: Vec<_> = routes
        .iter()
        .map(|route| {
            let (port, route) = (handler.port(), (*route).to_owned());
            tokio::spawn(async move {
                Forward::get(&format!("/api/p3/{route}"))
                    .header("x-correlation-id", &format!("p3-{route}"))
                    .send(port)
                    .await
            })
        })
        .collect();
    let mut responses = Vec::new();
    for request in requests {
        responses.push(request.await.expect("a request finished"));
    }
    responses
}

/// With one instance in all, four requests that each wait 400 ms are served
/// together, by that one instance: one count across them, and no `503`.
#[tokio::test(flavor = "multi_thread")]
async fn one_p3_instance_serves_requests_concurrently_and_keeps_one_count() {
    let handler = sharing_one_instance(&[]).await;
    let responses = at_once(&handler, &["hold?ms=400"; 4]).await;
    let mut counts: Vec<String> = responses
        .iter()
        .map(|response| {
            assert_eq!(response.status, 200, "{response:?}");
            String::from_utf8_lossy(&response.body).into_owned()
        })
        .collect();
    counts.sort();
    assert_eq!(counts, ["1", "2", "3", "4"]);
    let next = get(&handler, "count").await;
    assert_eq!(next.body.as_ref(), b"5", "the same instance serves on");
    // Its output is one stream: logged under the instance, not a request.
    let started = handler
        .wait_for_stderr(|line| line.contains("started hold"))
        .await;
    assert!(
        started.contains("shared_instance=") && !started.contains("correlation_id="),
        "{started}"
    );
}

/// Whatever request a shared instance's guest prints, the secrets of every
/// request the instance has served are redacted from its lines.
#[tokio::test(flavor = "multi_thread")]
async fn a_shared_instance_redacts_every_request_s_secrets() {
    let handler = sharing_one_instance(&[]).await;
    for secret in ["shared-secret-one", "shared-secret-two"] {
        let response = Forward::get("/api/p3/log-headers")
            .header("cookie", &format!("session={secret}"))
            .send(handler.port())
            .await;
        assert_eq!(response.status, 200);
    }
    handler
        .wait_for_stderr_lines(2, |line| line.contains("header cookie"))
        .await;
    let lines = handler.stderr();
    let cookies: Vec<_> = lines
        .iter()
        .filter(|line| line.contains("header cookie"))
        .collect();
    assert!(
        cookies
            .iter()
            .all(|line| line.contains("[REDACTED]") && !line.contains("shared-secret")),
        "{cookies:#?}"
    );
}

/// A trap takes a shared instance down at once, and with it the requests it
/// was serving: each gets a problem that says so. The next request gets a
/// fresh instance.
#[tokio::test(flavor = "multi_thread")]
async fn a_trap_on_a_shared_instance_fails_its_other_requests_and_retires_it() {
    let handler = sharing_one_instance(&[]).await;
    let holding = tokio::spawn({
        let port = handler.port();
        async move {
            Forward::get("/api/p3/hold?ms=3000")
                .header("x-correlation-id", "p3-held")
                .send(port)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let trapped = get(&handler, "trap").await;
    let lost = holding.await.expect("the held request finished");
    // wasmtime's event loop reports that a guest task trapped, not whose.
    let detail = "The instance serving this request was lost: it trapped while it served this request and 1 other(s).";
    for (response, id) in [(&trapped, "p3-trap"), (&lost, "p3-held")] {
        let problem = response.assert_problem(500, Some(id));
        assert_eq!(problem["detail"], detail, "{id}");
    }
    assert_eq!(get(&handler, "count").await.body.as_ref(), b"1");
}

/// A request past its deadline takes its shared instance down, and the
/// others with it: a guest that never yields (here, the other request)
/// stops the instance's event loop, so nothing in it can be waited for.
#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_on_a_shared_instance_retires_it() {
    let mut handler = sharing_one_instance(&["--request-timeout", "1s"]).await;
    let holding = tokio::spawn({
        let port = handler.port();
        async move {
            Forward::get("/api/p3/hold?ms=5000")
                .header("x-correlation-id", "p3-held")
                .send(port)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let looping = get(&handler, "loop").await;
    let held = holding.await.expect("the held request finished");
    let problem = held.assert_problem(504, Some("p3-held"));
    assert_eq!(
        problem["detail"],
        "The component did not answer within its 1s deadline."
    );
    let problem = looping.assert_problem(500, Some("p3-loop"));
    assert_eq!(
        problem["detail"],
        "The instance serving this request was lost: another request on it ran past its deadline."
    );
    assert!(handler.is_running());
    assert_eq!(
        get(&handler, "count").await.body.as_ref(),
        b"1",
        "a fresh instance"
    );
}

/// A body that fails after its head stops the instance taking requests; the
/// client sees the cut-off, and the next request gets a fresh instance.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_body_retires_a_shared_instance() {
    let handler = sharing_one_instance(&[]).await;
    assert_eq!(get(&handler, "count").await.body.as_ref(), b"1");
    let request = b"GET /api/p3/trap-after-head HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let cut = http::send_raw(handler.port(), request, Duration::from_secs(5))
        .await
        .expect("a connection");
    assert_eq!(cut.status, Some(200), "{}", cut.text());
    assert!(cut.bytes.len() < 1 << 20, "the body was cut off");
    assert_eq!(get(&handler, "count").await.body.as_ref(), b"1");
}
