//! The host owns the correlation id: `x-correlation-id`, else the trace id of
//! `traceparent`, else `Request-Id`, else the Functions invocation id, else a
//! new one. The guest gets it as `x-correlation-id`; the caller gets it back.

use bytes::Bytes;
use test_harness::functions_host::Forward;
use test_harness::{HandlerProcess, guests, http};

use crate::HANDLER;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn request(headers: &[(&str, &str)]) -> ::http::Request<Bytes> {
    let mut builder = ::http::Request::get("/api/catalog/42").header("host", "localhost:7071");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Bytes::new()).expect("a request")
}

async fn correlation_id_for(handler: &HandlerProcess, headers: &[(&str, &str)]) -> String {
    let response = http::send(handler.port(), request(headers))
        .await
        .expect("a response");
    assert_eq!(response.status, 200);
    let echoed = response
        .header("x-correlation-id")
        .expect("the correlation id comes back")
        .to_owned();
    assert_eq!(
        response.json()["correlation_id"],
        echoed,
        "the guest saw the same id"
    );
    echoed
}

#[tokio::test]
async fn sources_in_order_of_precedence() {
    let handler = HANDLER.start(guests::CATALOG).await;
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let all = [
        ("x-correlation-id", "6d9f"),
        ("traceparent", traceparent.as_str()),
        ("request-id", "|legacy-root.1."),
        (
            "x-azure-functions-invocationid",
            "0b5e1f36-8a43-4a4e-9d7e-26d6e0f7c2a1",
        ),
    ];
    let expected = [
        "6d9f",
        TRACE_ID,
        "legacy-root",
        "0b5e1f36-8a43-4a4e-9d7e-26d6e0f7c2a1",
    ];
    for (skip, expected) in expected.into_iter().enumerate() {
        assert_eq!(correlation_id_for(&handler, &all[skip..]).await, expected);
    }
}

#[tokio::test]
async fn generated_when_absent_and_unique() {
    let handler = HANDLER.start(guests::CATALOG).await;
    let first = correlation_id_for(&handler, &[]).await;
    let second = correlation_id_for(&handler, &[]).await;
    assert_eq!(first.len(), 32);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(first, second);
}

#[tokio::test]
async fn malformed_sources_are_skipped() {
    let handler = HANDLER.start(guests::CATALOG).await;
    let oversized = "a".repeat(200);
    let id = correlation_id_for(
        &handler,
        &[
            ("x-correlation-id", &oversized),
            ("traceparent", "00-zzzz-00f067aa0ba902b7-01"),
            ("request-id", "req-7"),
        ],
    )
    .await;
    assert_eq!(id, "req-7");
}

#[tokio::test]
async fn forwarded_requests_use_the_invocation_id_when_apim_sent_none() {
    let handler = HANDLER.start(guests::CATALOG).await;
    let response = Forward::get("/api/catalog/42").send(handler.port()).await;
    let id = response
        .header("x-correlation-id")
        .expect("a correlation id");
    assert_eq!(id.len(), 36, "a GUID invocation id: {id}");
    assert_eq!(response.json()["correlation_id"], id);
}
