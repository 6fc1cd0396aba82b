//! The console: the per-request line as people read it in `func start`, JSON
//! lines for machines, and no secret in either.

use test_harness::functions_host::Forward;
use test_harness::{HandlerProcess, guests};

use crate::HANDLER;

const FUNCTION_KEY: &str = "fk-3kQ9xZ7pL2mN8vB4cR6tY1wU5sA0dE==";
const CODE: &str = "code-Hq2Wm8Zr4Tx6Yv1Nb3Kc5Lp7Jd9Fs==";
const BEARER: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl";
const COOKIE: &str = "sess-9f8e7d6c5b4a39281706";
const SUBSCRIPTION_KEY: &str = "0123456789abcdef0123456789abcdef";

const QUOTED_COOKIE: &str = "quoted-9a8b7c6d5e4f";
const JOINED_COOKIE: &str = "joined-1f2e3d4c5b6a";
/// `user:password` in `Proxy-Authorization: Basic`; the password alone is a secret too.
const BASIC_PASSWORD: &str = "basic-pw-7Yq2Lm9Xc4";
/// `YWxpY2U6YmFzaWMtcHctN1lxMkxtOVhjNA==` is `alice:basic-pw-7Yq2Lm9Xc4` in base64.
const BASIC: &str = "YWxpY2U6YmFzaWMtcHctN1lxMkxtOVhjNA==";

fn with_secrets(forward: Forward) -> Forward {
    forward
        .header("x-functions-key", FUNCTION_KEY)
        .header("authorization", &format!("Bearer\t{BEARER}"))
        .header("proxy-authorization", &format!("Basic {BASIC}"))
        .header(
            "cookie",
            &format!(
                "ARRAffinity=abc123; session={COOKIE}; q=\"{QUOTED_COOKIE}\", j={JOINED_COOKIE}"
            ),
        )
        .header("ocp-apim-subscription-key", SUBSCRIPTION_KEY)
        .header("x-correlation-id", "secret-test")
}

/// The echo guest, which prints every header and its path, logging in `format`.
async fn echo_guest(format: &str) -> HandlerProcess {
    HANDLER
        .builder(guests::ECHO_REQUEST)
        .args(["--log-format", format])
        .start()
        .await
}

fn assert_no_secret(lines: &[String]) {
    for line in lines {
        for secret in [
            FUNCTION_KEY,
            CODE,
            BEARER,
            COOKIE,
            SUBSCRIPTION_KEY,
            QUOTED_COOKIE,
            JOINED_COOKIE,
            BASIC,
            BASIC_PASSWORD,
        ] {
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
        let handler = echo_guest(format).await;
        let response = with_secrets(Forward::get(&format!(
            "/api/echo?code={CODE}&page=2&subscription-key={SUBSCRIPTION_KEY}"
        )))
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
        // The guest got the cookie, redacted when it printed it, and no
        // credential at all: the host removed them before the guest ran.
        assert!(
            stdout
                .iter()
                .any(|line| line.contains("stdout header cookie")),
            "{format}: {stdout:?}"
        );
        for credential in [
            "x-functions-key",
            "authorization",
            "proxy-authorization",
            "ocp-apim-subscription-key",
        ] {
            let seen = format!("stdout header {credential}");
            assert!(
                !stdout.iter().any(|line| line.contains(&seen)),
                "{format}: the guest got {credential}: {stdout:?}"
            );
        }
        let path = stdout
            .iter()
            .find(|line| line.contains("path /api/echo"))
            .expect("the path line");
        assert!(
            path.contains("page=2")
                && !path.contains("code=")
                && !path.contains("subscription-key="),
            "{format}: {path}"
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

/// Line ends and terminal controls a request can carry: in a header value
/// and as raw bytes in the path, which the echo guest prints.
#[tokio::test]
async fn no_request_can_forge_a_log_line_in_either_format() {
    // U+2028, U+2029, NEL, the 8-bit CSI and a bidi override, as UTF-8.
    let forgers = ["\u{2028}", "\u{2029}", "\u{85}", "\u{9b}", "\u{202e}"];
    let header: String = forgers
        .iter()
        .map(|c| format!("{c}[Error] forged"))
        .collect();
    let path = "/api/echo/\u{2028}[Error]forged\u{85}";
    for format in ["text", "json"] {
        let handler = echo_guest(format).await;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nx-forge: {header}\r\nConnection: close\r\n\r\n"
        );
        let reply = test_harness::http::send_raw(
            handler.port(),
            request.as_bytes(),
            std::time::Duration::from_millis(500),
        )
        .await
        .expect("a connection");
        assert_eq!(reply.status, Some(200), "{}", reply.text());
        handler
            .wait_for_stdout(|line| line.contains("path /api/echo"))
            .await;
        handler
            .wait_for_stderr(|line| line.contains("stderr header x-forge"))
            .await;
        let lines: Vec<String> = handler
            .stdout()
            .into_iter()
            .chain(handler.stderr())
            .collect();
        assert!(
            lines.iter().any(|line| line.contains("forged")),
            "{lines:?}"
        );
        for line in &lines {
            // Split the Unicode way: no piece may start a forged line.
            for piece in line.split(|c: char| {
                matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{0b}' | '\u{0c}' | '\r'
                )
            }) {
                assert!(!piece.starts_with("[Error] forged"), "{format}: {line:?}");
            }
            assert!(!line.contains(['\u{9b}', '\u{202e}']), "{format}: {line:?}");
            if format == "json" {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            }
        }
    }
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
