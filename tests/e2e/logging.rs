//! The console: the per-request line as people read it in `func start`, JSON
//! lines for machines, and no secret in either.

use test_harness::functions_host::Forward;
use test_harness::guests;

use crate::HANDLER;

const FUNCTION_KEY: &str = "fk-3kQ9xZ7pL2mN8vB4cR6tY1wU5sA0dE==";
const CODE: &str = "code-Hq2Wm8Zr4Tx6Yv1Nb3Kc5Lp7Jd9Fs==";
const BEARER: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl";
const COOKIE: &str = "sess-9f8e7d6c5b4a39281706";
const SUBSCRIPTION_KEY: &str = "0123456789abcdef0123456789abcdef";

fn with_secrets(forward: Forward) -> Forward {
    forward
        .header("x-functions-key", FUNCTION_KEY)
        .header("authorization", &format!("Bearer {BEARER}"))
        .header("cookie", &format!("ARRAffinity=abc123; session={COOKIE}"))
        .header("ocp-apim-subscription-key", SUBSCRIPTION_KEY)
        .header("x-correlation-id", "secret-test")
}

fn assert_no_secret(lines: &[String]) {
    for line in lines {
        for secret in [FUNCTION_KEY, CODE, BEARER, COOKIE, SUBSCRIPTION_KEY] {
            assert!(!line.contains(secret), "a secret reached the log: {line}");
        }
    }
}

#[tokio::test]
async fn text_line_reads_as_in_the_functions_console() {
    let handler = HANDLER.start(guests::CATALOG).await;
    let response = Forward::get("/api/catalog/42")
        .header("x-correlation-id", "6d9f")
        .header("x-apim-cache", "hit")
        .send(handler.port())
        .await;
    assert_eq!(response.status, 200);
    let expected = "[Information] Handled APIM backend request item_id=42 routed_by=azure-api-management \
                    correlation_id=6d9f cache_status=hit";
    handler.wait_for_stdout(|line| line == expected).await;
    assert!(
        handler.stderr().is_empty(),
        "nothing on stderr: {:?}",
        handler.stderr()
    );
}

#[tokio::test]
async fn json_lines_carry_the_guest_fields_and_the_request_context() {
    let handler = HANDLER
        .builder(guests::CATALOG)
        .args(["--log-format", "json"])
        .start()
        .await;
    Forward::get("/api/catalog/42")
        .header("x-correlation-id", "json-1")
        .header("x-apim-gateway", "apim-northeurope")
        .send(handler.port())
        .await;
    let line = handler
        .wait_for_stdout(|line| line.contains("json-1"))
        .await;
    let record: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(record["level"], "Information");
    assert_eq!(record["message"], "Handled APIM backend request");
    assert_eq!(record["item_id"], "42");
    assert_eq!(record["routed_by"], "apim-northeurope");
    assert_eq!(record["correlation_id"], "json-1");
    assert_eq!(record["cache_status"], "bypass");
    assert_eq!(record["target"], "guest");
    assert!(
        record["invocation_id"].is_string(),
        "the span's invocation id: {line}"
    );
    assert!(record["timestamp"].is_string());
    for line in handler.stdout() {
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[tokio::test]
async fn secrets_never_reach_the_log_even_from_a_careless_guest() {
    for format in ["text", "json"] {
        let handler = HANDLER
            .builder(guests::ECHO_REQUEST)
            .args(["--log-format", format])
            .start()
            .await;
        let response = with_secrets(Forward::get(&format!("/api/echo?code={CODE}&page=2")))
            .send(handler.port())
            .await;
        assert_eq!(response.status, 200);
        // The guest printed every header it got; wait for its last line.
        handler
            .wait_for_stdout(|line| line.contains("path /api/echo"))
            .await;
        handler
            .wait_for_stderr(|line| line.contains("stderr header x-correlation-id"))
            .await;
        let (stdout, stderr) = (handler.stdout(), handler.stderr());
        assert!(
            stdout.iter().any(|line| line.contains("[REDACTED]")),
            "{format}: {stdout:?}"
        );
        assert_no_secret(&stdout);
        assert_no_secret(&stderr);
        assert!(
            stdout
                .iter()
                .any(|line| line.contains("stdout header authorization"))
        );
    }

    let catalog = HANDLER.start(guests::CATALOG).await;
    with_secrets(Forward::get(&format!("/api/catalog/42?code={CODE}")))
        .send(catalog.port())
        .await;
    with_secrets(Forward::get(&format!("/api/catalog/x?code={CODE}")))
        .send(catalog.port())
        .await;
    catalog
        .wait_for_stdout(|line| line.contains("item_id=x"))
        .await;
    assert_no_secret(&catalog.stdout());
    assert_no_secret(&catalog.stderr());
}

#[tokio::test]
async fn plain_guest_lines_keep_their_stream() {
    let handler = HANDLER.start(guests::ECHO_REQUEST).await;
    Forward::get("/api/echo")
        .header("x-correlation-id", "streams-1")
        .send(handler.port())
        .await;
    let out = handler
        .wait_for_stdout(|line| line.contains("stdout header x-correlation-id"))
        .await;
    assert!(out.starts_with("[Information] stdout header"), "{out}");
    assert!(out.ends_with("correlation_id=streams-1"), "{out}");
    let err = handler
        .wait_for_stderr(|line| line.contains("stderr header x-correlation-id"))
        .await;
    assert!(err.starts_with("[Warning] stderr header"), "{err}");
}
