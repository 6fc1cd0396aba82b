//! Bad input: malformed HTTP, oversized heads, bytes that are not UTF-8, slow
//! clients and hostile paths get a 4xx (or a closed connection) and leave the
//! host serving; thousands of randomly broken requests change nothing.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use test_harness::functions_host::Forward;
use test_harness::http::{self, RawReply};
use test_harness::{HandlerProcess, guests};

use crate::HANDLER;

const QUIET: Duration = Duration::from_millis(500);

async fn raw(handler: &HandlerProcess, bytes: &[u8]) -> RawReply {
    http::send_raw(handler.port(), bytes, QUIET)
        .await
        .expect("a connection")
}

async fn assert_still_serving(handler: &mut HandlerProcess) {
    assert!(handler.is_running());
    assert_eq!(
        Forward::get("/api/catalog/42")
            .send(handler.port())
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn malformed_http_gets_400_and_the_host_serves_on() {
    let mut handler = HANDLER.start(guests::CATALOG).await;
    for bytes in [
        b"GARBAGE\r\n\r\n".as_slice(),
        b"GET /api/catalog/42 HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\nBad Header Name: v\r\n\r\n",
        b"GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        b"POST /api/catalog/42 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let reply = raw(&handler, bytes).await;
        if let Some(status) = reply.status {
            assert!((400..500).contains(&status), "{:?} -> {}", String::from_utf8_lossy(bytes), reply.text());
        }
        assert_still_serving(&mut handler).await;
    }
}

/// `reply` is a problem+json answer with `status`, whose body carries the
/// correlation id its `x-correlation-id` header names.
fn assert_raw_problem(reply: &RawReply, status: u16) {
    assert_eq!(reply.status, Some(status), "{}", reply.text());
    let text = reply.text();
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole head");
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (found, value) = line.split_once(':')?;
            found
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/problem+json"),
        "{head}"
    );
    let id = header("x-correlation-id").expect("a correlation id");
    let problem: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(problem["status"], status, "{problem}");
    assert_eq!(problem["correlation_id"], id.as_str(), "{problem}");
}

/// Heads hyper refuses before the host sees them (too many fields, a target
/// over 64 KiB, bad syntax) get the host's problem+json like any refusal.
#[tokio::test]
async fn heads_the_parser_refuses_get_a_problem_with_a_correlation_id() {
    let mut handler = HANDLER.start(guests::CATALOG).await;
    let many_fields: String = (0..150).map(|n| format!("x-field-{n}: v\r\n")).collect();
    let request = format!("GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\n{many_fields}\r\n");
    assert!(request.len() < 8 << 10, "far under the header limit");
    assert_raw_problem(&raw(&handler, request.as_bytes()).await, 431);

    let target = format!("/api/catalog/42?q={}", "q".repeat(100 << 10));
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_raw_problem(&raw(&handler, request.as_bytes()).await, 414);

    let request = b"GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\nBad Header Name: v\r\n\r\n";
    assert_raw_problem(&raw(&handler, request).await, 400);
    assert_still_serving(&mut handler).await;
}

/// RFC 9112 section 3.2: an HTTP/1.1 request with no Host, or two, is a 400.
#[tokio::test]
async fn an_http_1_1_request_needs_exactly_one_host() {
    let mut handler = HANDLER.start(guests::CATALOG).await;
    for request in [
        b"GET /api/catalog/42 HTTP/1.1\r\n\r\n".as_slice(),
        b"GET /api/catalog/42 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        let reply = raw(&handler, request).await;
        assert_raw_problem(&reply, 400);
        assert!(
            reply.text().contains("exactly one Host"),
            "{}",
            reply.text()
        );
    }
    let reply = raw(&handler, b"GET /api/catalog/42 HTTP/1.0\r\n\r\n").await;
    assert!(
        reply.text().starts_with("HTTP/1.0 200 OK\r\n"),
        "HTTP/1.0 may omit Host: {}",
        reply.text()
    );
    assert_still_serving(&mut handler).await;
}

/// RFC 9112 section 3.2: a request target has no fragment. The `http` crate
/// would drop one silently and serve `/a#b` as `/a`; the host refuses it,
/// on a connection's first request and on one that follows a body.
#[tokio::test]
async fn a_fragment_in_the_request_target_is_refused() {
    let mut handler = HANDLER.start(guests::CATALOG).await;
    let reply = raw(
        &handler,
        b"GET /api/catalog/42#top HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_raw_problem(&reply, 400);
    assert!(reply.text().contains("fragment"), "{}", reply.text());

    let pipelined =
        b"GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n#a b#c d#\
        GET /api/catalog/42#top HTTP/1.1\r\nHost: x\r\n\r\n";
    let text = raw(&handler, pipelined).await.text();
    let (first, second) = text
        .split_once("HTTP/1.1 400 ")
        .unwrap_or_else(|| panic!("the second request refused: {text}"));
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(second.contains("fragment"), "{text}");
    assert_still_serving(&mut handler).await;
}

#[tokio::test]
async fn bytes_that_are_not_utf8_in_headers_are_tolerated() {
    let mut handler = HANDLER.start(guests::CATALOG).await;
    let reply = raw(
        &handler,
        b"GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\nx-correlation-id: caf\xe9\r\nx-apim-gateway: g\xff\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, Some(200), "{}", reply.text());
    let text = reply.text();
    // The unusable correlation id is skipped: the host makes one.
    assert!(!text.contains("x-correlation-id: caf"), "{text}");
    assert_still_serving(&mut handler).await;
}

#[tokio::test]
async fn a_head_far_over_the_limit_is_refused() {
    let mut handler = HANDLER
        .builder(guests::CATALOG)
        .args(["--max-header-size", "8KiB"])
        .start()
        .await;
    let huge = format!(
        "GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\nx-huge: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let reply = raw(&handler, huge.as_bytes()).await;
    assert_eq!(reply.status, Some(431), "{}", reply.text());
    assert_still_serving(&mut handler).await;
}

#[tokio::test]
async fn a_slow_client_is_cut_off() {
    let mut handler = HANDLER
        .builder(guests::CATALOG)
        .args(["--header-read-timeout", "1s"])
        .start()
        .await;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", handler.port()))
        .await
        .expect("connected");
    let started = Instant::now();
    // A slowloris client: a few bytes of head now and then, never the end.
    let mut closed = false;
    for chunk in [
        b"GET /api/cat".as_slice(),
        b"alog/42 HTTP/1.1\r\n",
        b"Host: x\r\n",
        b"X-A: 1\r\n",
    ] {
        if slow.write_all(chunk).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed || read.is_ok(), "the server closed the connection");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_still_serving(&mut handler).await;
}

#[tokio::test]
async fn hostile_paths_get_the_answer_their_route_deserves() {
    let mut handler = HANDLER.start(guests::CATALOG).await;
    for (target, expected) in [
        // Not normalized: no operation has this path.
        ("/api/catalog/../../etc/passwd", 404),
        ("//api//catalog//42", 404),
        // Encoded bytes are not an item id.
        ("/api/catalog/%2e%2e%2fetc%2fpasswd", 400),
        ("/api/catalog/%00", 400),
        ("/api/catalog/42%00", 400),
        ("/api/catalog/%F0%9F%92%A9", 400),
        // A broken query is ignored, as the API ignores queries.
        ("/api/catalog/42?code=%ZZ&x=%", 200),
        // Absolute form names another host; the path is still the API's.
        ("http://evil.example/api/catalog/42", 200),
        ("*", 404),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let reply = raw(&handler, request.as_bytes()).await;
        assert_eq!(reply.status, Some(expected), "{target} -> {}", reply.text());
        if expected >= 400 {
            assert!(
                reply.text().contains("application/problem+json"),
                "{target}: {}",
                reply.text()
            );
        }
        assert_still_serving(&mut handler).await;
    }
}

/// A valid request, then random damage: bytes flipped, cut short, garbage
/// spliced in. Whatever arrives, the host answers below 500 or closes, and
/// keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn randomly_damaged_requests_never_hurt_the_host() {
    let mut handler = HANDLER.start(guests::CATALOG).await;
    let port = handler.port();
    let valid = b"GET /api/catalog/42?x=1 HTTP/1.1\r\nHost: localhost\r\nx-correlation-id: c1\r\nIf-None-Match: \"abc\"\r\nContent-Length: 0\r\n\r\n".to_vec();
    let damaged = (
        proptest::collection::vec((0..valid.len(), any::<u8>()), 0..8),
        0..=valid.len(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(move |(flips, cut, garbage)| {
            let mut bytes = valid.clone();
            for (index, byte) in flips {
                bytes[index] = byte;
            }
            bytes.truncate(cut.max(1));
            let splice = cut.min(bytes.len());
            bytes.splice(splice..splice, garbage);
            bytes
        });
    let runtime = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let result = tokio::task::block_in_place(|| {
        runner.run(&damaged, |bytes| {
            let reply = runtime
                .block_on(http::send_raw(port, &bytes, Duration::from_millis(200)))
                .map_err(|e| TestCaseError::fail(format!("connection: {e}")))?;
            if let Some(status) = reply.status {
                prop_assert!(
                    status < 500,
                    "{:?} -> {}",
                    String::from_utf8_lossy(&bytes),
                    reply.text()
                );
            }
            Ok(())
        })
    });
    result.expect("no damaged request reached a 5xx");
    assert_still_serving(&mut handler).await;
}
