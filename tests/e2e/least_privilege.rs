//! Least privilege: by default a guest gets no environment, no files, no
//! sockets and no outgoing HTTP; the operator grants environment variables and
//! HTTP authorities by name, and nothing else opens.

use test_harness::functions_host::Forward;
use test_harness::guests;
use test_harness::upstream::Upstream;

use crate::HANDLER;

#[tokio::test]
async fn no_environment_unless_granted_by_name() {
    let closed = HANDLER
        .builder(guests::MISBEHAVE)
        .env("CATALOG_REGION", "westeurope")
        .start()
        .await;
    let seen = Forward::get("/api/faults/env")
        .send(closed.port())
        .await
        .json();
    assert_eq!(
        seen,
        serde_json::json!({}),
        "no variable by default, not even the Functions port"
    );

    let granted = HANDLER
        .builder(guests::MISBEHAVE)
        .env("CATALOG_REGION", "westeurope")
        .env("DATABASE_PASSWORD", "hunter2-not-granted")
        .args([
            "--allow-env",
            "CATALOG_REGION",
            "--allow-env",
            "CATALOG_UNSET",
        ])
        .start()
        .await;
    let seen = Forward::get("/api/faults/env")
        .send(granted.port())
        .await
        .json();
    assert_eq!(seen, serde_json::json!({ "CATALOG_REGION": "westeurope" }));
    granted
        .wait_for_stderr(|line| {
            line.contains("An allowed environment variable is not set")
                && line.contains("CATALOG_UNSET")
        })
        .await;
}

#[tokio::test]
async fn no_files_and_no_sockets() {
    let upstream = Upstream::start().await;
    let handler = HANDLER.start(guests::MISBEHAVE).await;
    let files = Forward::get("/api/faults/files")
        .send(handler.port())
        .await
        .json();
    for attempt in ["read", "list", "create"] {
        assert_ne!(files[attempt], "ok", "{attempt}: {files}");
    }
    let socket = Forward::get(&format!("/api/faults/socket?port={}", upstream.port()))
        .send(handler.port())
        .await
        .json();
    assert_ne!(socket["connect"], "ok", "{socket}");
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn outgoing_http_only_to_granted_authorities() {
    let upstream = Upstream::start().await;
    let other = Upstream::start().await;
    let call = |port: u16| format!("/api/faults/outgoing?authority=127.0.0.1:{port}&path=/ping");

    let closed = HANDLER.start(guests::MISBEHAVE).await;
    let refused = Forward::get(&call(upstream.port()))
        .header("x-correlation-id", "egress-1")
        .send(closed.port())
        .await;
    assert_eq!(refused.json()["error"], "ErrorCode::HttpRequestDenied");
    let logged = closed
        .wait_for_stderr(|line| line.contains("Refused an outgoing HTTP request"))
        .await;
    assert!(
        logged.contains(&format!("authority=127.0.0.1:{}", upstream.port())),
        "{logged}"
    );
    assert!(logged.contains("correlation_id=egress-1"), "{logged}");
    assert!(!logged.contains("/ping"), "no path in the log: {logged}");

    let granted = HANDLER
        .builder(guests::MISBEHAVE)
        .args([
            "--allow-outgoing-http",
            &format!("127.0.0.1:{}", upstream.port()),
        ])
        .start()
        .await;
    let allowed = Forward::get(&call(upstream.port()))
        .send(granted.port())
        .await;
    assert_eq!(allowed.json(), serde_json::json!({ "status": 204 }));
    let not_granted = Forward::get(&call(other.port())).send(granted.port()).await;
    assert_eq!(not_granted.json()["error"], "ErrorCode::HttpRequestDenied");
    assert_eq!((upstream.hits(), other.hits()), (1, 0));
}
