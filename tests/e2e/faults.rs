//! A guest that misbehaves costs its own request a problem+json answer with
//! the documented status and the correlation id, never an empty or HTML body,
//! and the next request on the same host process succeeds.

use std::time::{Duration, Instant};

use test_harness::functions_host::Forward;
use test_harness::{HandlerProcess, guests, http};

use crate::HANDLER;

/// Sends `route` of the misbehaving guest, checks the problem it gets, then
/// checks that the same process still serves a good request.
async fn assert_fault(handler: &mut HandlerProcess, route: &str, status: u16) -> serde_json::Value {
    let id = format!("fault-{}", route.replace(['/', '?', '='], "-"));
    let response = Forward::get(&format!("/api/faults/{route}"))
        .header("x-correlation-id", &id)
        .send(handler.port())
        .await;
    let problem = response.assert_problem(status, Some(&id));
    assert!(handler.is_running(), "the host survived {route}");
    assert_healthy(handler).await;
    problem
}

async fn assert_healthy(handler: &HandlerProcess) {
    let ok = Forward::get("/api/faults/ok").send(handler.port()).await;
    assert_eq!(
        (ok.status, ok.body.as_ref()),
        (200, b"ok".as_ref()),
        "a good request after a fault"
    );
}

fn misbehave() -> test_harness::HandlerBuilder {
    HANDLER.builder(guests::MISBEHAVE)
}

#[tokio::test]
async fn traps_panics_and_missing_responses_are_500() {
    let mut handler = misbehave().start().await;
    let trap = assert_fault(&mut handler, "trap", 500).await;
    assert_eq!(
        trap["detail"],
        "The component failed before it sent a response."
    );
    let logged = handler
        .wait_for_stderr(|line| line.starts_with("[Error]") && line.contains("fault-trap"))
        .await;
    assert!(logged.contains("trapped"), "{logged}");
    // The guest's panic message reaches the log too, in the request's context.
    handler
        .wait_for_stderr(|line| {
            line.contains("the business logic hit a bug") && line.contains("fault-trap")
        })
        .await;

    let silent = assert_fault(&mut handler, "no-response", 500).await;
    assert_eq!(
        silent["detail"],
        "The component finished without sending a response."
    );
}

/// A pool slot is reset between instances by rewriting what stays resident
/// (up to `--keep-resident`) and unmapping the rest: whichever way, the next
/// instance in the slot must find its memory as a fresh one would.
#[tokio::test]
async fn every_instance_starts_with_fresh_memory_whatever_stays_resident() {
    for keep_resident in ["0", "64KiB", "256KiB", "2MiB"] {
        // One request slot (and the reserved ones): requests reuse the slots earlier ones dirtied.
        let handler = misbehave()
            .args(["--max-instances", "1", "--keep-resident", keep_resident])
            .start()
            .await;
        for _ in 0..4 {
            let response = Forward::get("/api/faults/scribble")
                .send(handler.port())
                .await;
            assert_eq!(
                (response.status, response.body.as_ref()),
                (200, b"clean".as_ref()),
                "--keep-resident {keep_resident}"
            );
        }
    }
}

#[tokio::test]
async fn stack_overflow_is_500() {
    let mut handler = misbehave().start().await;
    let problem = assert_fault(&mut handler, "stack-overflow", 500).await;
    assert_eq!(problem["detail"], "The component overflowed its stack.");
}

#[tokio::test]
async fn memory_exhaustion_is_500_naming_the_limit() {
    let mut handler = misbehave().args(["--max-memory", "32MiB"]).start().await;
    let problem = assert_fault(&mut handler, "oom", 500).await;
    assert_eq!(
        problem["detail"],
        "The component hit its memory limit of 32 MiB."
    );
    handler
        .wait_for_stderr(|line| {
            line.contains("exceeded its memory limit") && line.contains("fault-oom")
        })
        .await;
}

#[tokio::test]
async fn a_guest_past_its_deadline_is_stopped_with_504() {
    let mut handler = misbehave()
        .args(["--request-timeout", "500ms"])
        .start()
        .await;
    // `loop` never calls the host (stopped through epoch interruption);
    // `sleep` waits in the host forever.
    for route in ["loop", "sleep"] {
        let started = Instant::now();
        let problem = assert_fault(&mut handler, route, 504).await;
        assert_eq!(
            problem["detail"],
            "The component did not answer within its 500ms deadline."
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{route} was stopped"
        );
    }
    // Slow but within the deadline is fine.
    let slow = Forward::get("/api/faults/slow?ms=100")
        .send(handler.port())
        .await;
    assert_eq!(slow.status, 200);
}

#[tokio::test]
async fn a_trap_after_the_head_cuts_the_body_and_is_logged() {
    let mut handler = misbehave().start().await;
    let request = b"GET /api/faults/trap-after-head HTTP/1.1\r\nHost: localhost\r\nx-correlation-id: midway-1\r\n\r\n";
    let reply = http::send_raw(handler.port(), request, Duration::from_secs(5))
        .await
        .expect("a connection");
    // The client gets the head and what the guest wrote, then the connection
    // closes short of the 1 MiB the head promised: visibly cut off.
    assert_eq!(reply.status, Some(200), "{}", reply.text());
    let text = reply.text();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    assert!(head.contains("x-correlation-id: midway-1"), "{head}");
    assert!(head.contains("content-length: 1048576"), "{head}");
    assert!(
        body.len() >= 4096 && body.len() < 1 << 20,
        "{} body bytes",
        body.len()
    );
    let logged = handler
        .wait_for_stderr(|line| line.contains("after it sent the response head"))
        .await;
    assert!(logged.contains("correlation_id=midway-1"), "{logged}");
    assert!(handler.is_running());
    assert_healthy(&handler).await;
}

#[tokio::test]
async fn past_the_instance_bound_requests_get_503_with_retry_after() {
    let handler = misbehave().args(["--max-instances", "2"]).start().await;
    let port = handler.port();
    let slow = |n: usize| async move {
        Forward::get(&format!("/api/faults/slow?ms=1500&n={n}"))
            .send(port)
            .await
    };
    let (first, second) = (tokio::spawn(slow(1)), tokio::spawn(slow(2)));
    // Both slow requests hold their instance once both guests have started.
    handler
        .wait_for_stderr_lines(2, |line| line.contains("started slow"))
        .await;
    let refused = Forward::get("/api/faults/ok")
        .header("x-correlation-id", "busy-1")
        .send(port)
        .await;
    let problem = refused.assert_problem(503, Some("busy-1"));
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("All 2 instances are busy"))
    );
    assert_eq!(first.await.expect("joined").status, 200);
    assert_eq!(second.await.expect("joined").status, 200);
    assert_healthy(&handler).await;
}

#[tokio::test]
async fn oversized_bodies_and_heads_get_413_431_414() {
    let handler = misbehave()
        .args(["--max-request-body", "64KiB", "--max-header-size", "8KiB"])
        .start()
        .await;
    let port = handler.port();
    let within = Forward::new(::http::Method::POST, "/api/faults/echo-body")
        .body(vec![b'a'; 64 << 10])
        .send(port)
        .await;
    assert_eq!(
        (within.status, within.json()["bytes"].as_u64()),
        (200, Some(64 << 10))
    );

    // Declared too large: refused before the guest runs.
    let declared = Forward::new(::http::Method::POST, "/api/faults/echo-body")
        .body(vec![b'a'; (64 << 10) + 1])
        .send(port)
        .await;
    declared.assert_problem(413, None);
    // Chunked, undeclared, too large: cut off while streaming, still 413.
    let chunks = (0..80)
        .map(|_| bytes::Bytes::from(vec![b'c'; 1024]))
        .collect();
    let chunked = http::send_chunked(port, "/api/faults/echo-body", chunks)
        .await
        .expect("an answer");
    chunked.assert_problem(413, None);

    let big_header = "h".repeat(9 << 10);
    Forward::get("/api/faults/ok")
        .header("x-big", &big_header)
        .send(port)
        .await
        .assert_problem(431, None);
    let long_target = format!("/api/faults/ok?q={}", "q".repeat(9 << 10));
    Forward::get(&long_target)
        .send(port)
        .await
        .assert_problem(414, None);
    assert_healthy(&handler).await;
}
