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
/// for a 0.2 one.
#[tokio::test]
async fn a_precompiled_p3_component_serves() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("p3-precompiled");
    std::fs::create_dir_all(&out).expect("an output folder");
    let precompiled = out.join("misbehave_p3.cwasm");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-handler"))
        .arg("compile")
        .arg(guests::MISBEHAVE_P3)
        .arg("-o")
        .arg(&precompiled)
        .status()
        .expect("running wasm-handler compile");
    assert!(status.success(), "wasm-handler compile failed");
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
