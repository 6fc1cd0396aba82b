//! `--enable-auth`: keys from `x-functions-key` or `code`, 401 with an empty body.

use test_harness::guests;

use crate::support::{Emulator, TempApp};

#[tokio::test]
async fn keys_are_checked_only_with_enable_auth() {
    let app = TempApp::function_app("auth", guests::CATALOG);
    let mut emulator = Emulator::start_ready(
        &app,
        &[
            "--enable-auth",
            "--host-key",
            "host-secret",
            "--master-key",
            "master-secret",
            "--function-key",
            "catalog-item=catalog-secret",
        ],
    )
    .await;
    let status = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let emulator = &emulator;
        async move {
            let response = emulator.send("GET", path, headers, "").await;
            if response.status == 401 {
                assert!(response.body.is_empty(), "{path}: {:?}", response.body);
            }
            response.status
        }
    };
    assert_eq!(status("/api/catalog/42", &[]).await, 401);
    assert_eq!(status("/api/catalog/42?code=wrong", &[]).await, 401);
    assert_eq!(
        status("/api/catalog/42", &[("x-functions-key", "catalog-secret")]).await,
        200
    );
    assert_eq!(
        status("/api/catalog/42?code=catalog-secret", &[]).await,
        200
    );
    assert_eq!(status("/api/catalog/42?code=host-secret", &[]).await, 200);
    assert_eq!(
        status("/api/catalog/42", &[("x-functions-key", "master-secret")]).await,
        200
    );
    // The header takes precedence over the query parameter.
    assert_eq!(
        status(
            "/api/catalog/42?code=host-secret",
            &[("x-functions-key", "wrong")]
        )
        .await,
        401
    );
    // A function key is for its own function only.
    assert_eq!(
        status("/api/openapi.json?code=catalog-secret", &[]).await,
        401
    );
    assert_eq!(status("/api/openapi.json?code=host-secret", &[]).await, 200);
    // Anonymous functions need no key.
    assert_eq!(status("/api/catalog/health", &[]).await, 200);
    // Refused requests are never invoked (the console is read as it comes:
    // wait for the last invocation's line first).
    emulator
        .wait_for_line(|line| line.contains("Executed 'Functions.catalog-health' (Succeeded"))
        .await;
    assert_eq!(emulator.invocations(), 6);
    // Keys given on the command line are not printed.
    assert!(
        !emulator
            .console()
            .iter()
            .any(|line| line.contains("host-secret"))
    );
    assert!(emulator.stop().await.success());
}

#[tokio::test]
async fn without_enable_auth_every_caller_is_authorized() {
    let app = TempApp::function_app("no-auth", guests::CATALOG);
    let mut emulator = Emulator::start_ready(&app, &[]).await;
    assert_eq!(emulator.get("/api/catalog/42").await.status, 200);
    assert_eq!(
        emulator.get("/api/openapi.json?code=anything").await.status,
        200
    );
    assert!(emulator.stop().await.success());
}
