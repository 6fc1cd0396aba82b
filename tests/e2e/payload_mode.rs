//! Payload mode, spoken to the real handler as the Functions host speaks it
//! (azure-functions-host `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`):
//! a function that is not forwarded is invoked with `POST /{FunctionName}`
//! and an invocation envelope; the response and the guest's log lines come
//! back in an invocation result, always a 200 `application/json` answer (the
//! host turns anything else into an empty 500). Malformed envelopes get a 400
//! problem inside the result and never reach the guest.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use test_harness::functions_host::Forward;
use test_harness::http::Response;
use test_harness::upstream::Upstream;
use test_harness::{HandlerProcess, guests, sha256_hex};

use crate::HANDLER;

/// A function app whose functions all go through payload mode, as each has a
/// second output (a queue): `catalog` answers through the output `response`,
/// `item` through `$return`, `misbehave` through `res`. Forwarding is on, as in
/// `functionapp/`: the mode is decided per function.
fn payload_app(test: &str) -> PathBuf {
    let root =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{:08x}", fastrand::u32(..)));
    let write = |relative: &str, contents: &str| {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("creating a folder");
        std::fs::write(path, contents).expect("writing a file");
    };
    write(
        "host.json",
        r#"{"version": "2.0",
            "customHandler": {"description": {"defaultExecutablePath": "wasm-handler"},
                              "enableForwardingHttpRequest": true}}"#,
    );
    let function = |trigger: &str, route: &str, output: &str| {
        let queue =
            r#", {"type": "queue", "direction": "out", "name": "audit", "queueName": "audit"}"#;
        format!(
            r#"{{"bindings": [
                {{"type": "httpTrigger", "direction": "in", "name": "{trigger}",
                  "authLevel": "function", "route": "{route}"}},
                {{"type": "http", "direction": "out", "name": "{output}"}}{queue}]}}"#
        )
    };
    write(
        "catalog/function.json",
        &function("req", "catalog/{item_id}", "response"),
    );
    write(
        "item/function.json",
        &function("request", "item/{item_id}", "$return"),
    );
    write(
        "misbehave/function.json",
        &function("req", "misbehave/{*rest}", "res"),
    );
    std::fs::copy(guests::CATALOG, root.join("catalog.wasm")).expect("copying the catalog");
    std::fs::copy(guests::MISBEHAVE, root.join("misbehave.wasm")).expect("copying misbehave");
    root
}

async fn start(test: &str, extra_args: &[&str]) -> HandlerProcess {
    let root = payload_app(test);
    HANDLER
        .builder_in(&root)
        .args([
            "--route",
            "/api/catalog=catalog.wasm",
            "--route",
            "/api/misbehave=misbehave.wasm",
        ])
        .args(extra_args.iter().copied())
        .start()
        .await
}

/// The request part of an envelope, as the Functions host writes it.
fn request(method: &str, path_and_query: &str, headers: Value, body: Option<&str>) -> Value {
    let mut request = json!({
        "Url": format!("https://catalog-func.azurewebsites.net{path_and_query}"),
        "Method": method,
        "Query": {},
        "Headers": headers,
        "Params": {},
        "Identities": [{"AuthenticationType": "WebJobsAuthLevel", "IsAuthenticated": true}],
    });
    if let Some(body) = body {
        request["Body"] = json!(body);
    }
    request
}

/// An invocation of `misbehave`'s `echo-body` with `body` as `content_type`.
fn echo_body(content_type: &str, body: &str) -> Value {
    envelope(
        "req",
        request(
            "POST",
            "/api/misbehave/echo-body",
            json!({ "Content-Type": [content_type] }),
            Some(body),
        ),
    )
}

fn envelope(trigger: &str, request: Value) -> Value {
    json!({
        "Data": {trigger: request},
        "Metadata": {"sys": {"MethodName": "catalog", "UtcNow": "2026-11-24T10:00:00Z"}},
    })
}

/// `POST /{function}` with `envelope`, as the Functions host invokes it.
async fn invoke(
    handler: &HandlerProcess,
    function: &str,
    envelope: impl Into<bytes::Bytes>,
) -> Response {
    Forward::new(::http::Method::POST, &format!("/{function}"))
        .header("content-type", "application/json; charset=utf-8")
        .body(envelope)
        .send(handler.port())
        .await
}

/// An invocation result: 200, JSON, `{Outputs, Logs, ReturnValue}`.
fn result(response: &Response) -> Value {
    assert_eq!(response.status, 200, "{:?}", response.body);
    // The only types the Functions host reads an answer as (JsonMediaTypeFormatter).
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let result = response.json();
    assert!(
        result["Outputs"].is_object() && result["Logs"].is_array(),
        "{result}"
    );
    result
}

fn catalog_headers(correlation_id: &str) -> Value {
    json!({
        "Host": ["catalog-func.azurewebsites.net"],
        "x-correlation-id": [correlation_id],
        "x-apim-gateway": ["apim-westeurope"],
        "x-apim-cache": ["miss"],
        "x-functions-key": ["a-function-key"],
    })
}

#[tokio::test]
async fn the_response_goes_to_the_output_binding_and_the_guests_line_to_logs() {
    let handler = start("payload-output", &[]).await;
    let invocation = envelope(
        "req",
        request(
            "GET",
            "/api/catalog/42?code=a-function-key",
            catalog_headers("pay-1"),
            None,
        ),
    );
    let result = result(&invoke(&handler, "catalog", invocation.to_string()).await);

    // The binding named in function.json, not a hard-coded `res`.
    let response = &result["Outputs"]["response"];
    assert_eq!(result["Outputs"].as_object().map(|o| o.len()), Some(1));
    assert_eq!(result["ReturnValue"], Value::Null);
    assert_eq!(response["statusCode"], 200);
    let headers = &response["headers"];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-correlation-id"], "pay-1");
    assert_eq!(
        headers["x-component-digest"],
        format!(
            "sha256:{}",
            sha256_hex(&std::fs::read(guests::CATALOG).expect("the catalog"))
        )
    );
    assert!(
        headers["etag"]
            .as_str()
            .is_some_and(|etag| etag.starts_with('"'))
    );
    let body: Value =
        serde_json::from_str(response["body"].as_str().expect("a text body")).expect("JSON");
    assert_eq!(body["sku"], "LIG-0042");
    assert_eq!(body["correlation_id"], "pay-1");
    assert_eq!(body["routed_by"], "apim-westeurope");

    // Exactly the guest's line for this invocation, without the function key.
    let logs: Vec<&str> = result["Logs"]
        .as_array()
        .expect("Logs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        logs,
        [
            "[Information] Handled APIM backend request item_id=42 routed_by=apim-westeurope correlation_id=pay-1 cache_status=miss"
        ]
    );

    // The same request forwarded gets the same body.
    let forwarded = Forward::get("/api/catalog/42")
        .header("host", "catalog-func.azurewebsites.net")
        .header("x-correlation-id", "pay-1")
        .header("x-apim-gateway", "apim-westeurope")
        .header("x-apim-cache", "miss")
        .send(handler.port())
        .await;
    assert_eq!(forwarded.status, 200);
    assert_eq!(
        Some(&forwarded.body[..]),
        response["body"].as_str().map(str::as_bytes)
    );
    assert_eq!(forwarded.header("etag"), headers["etag"].as_str());
}

#[tokio::test]
async fn a_return_binding_gets_the_response_as_return_value() {
    let handler = start("payload-return", &[]).await;
    let invocation = envelope(
        "request",
        request("GET", "/api/catalog/13", json!({}), None),
    );
    let result = result(&invoke(&handler, "ITEM", invocation.to_string()).await);
    assert_eq!(result["Outputs"], json!({}));
    let response = &result["ReturnValue"];
    assert_eq!(response["statusCode"], 404);
    assert_eq!(
        response["headers"]["content-type"],
        "application/problem+json"
    );
    let problem: Value =
        serde_json::from_str(response["body"].as_str().expect("a text body")).expect("JSON");
    assert_eq!(problem["status"], 404);
}

#[tokio::test]
async fn request_bodies_arrive_as_text_or_from_base64() {
    let handler = start("payload-bodies", &[]).await;
    let text = echo_body("text/plain", "hello");
    let result_text = result(&invoke(&handler, "misbehave", text.to_string()).await);
    assert_eq!(result_text["Outputs"]["res"]["body"], r#"{"bytes":5}"#);

    let bytes: Vec<u8> = (0..=255).cycle().take(1000).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let binary = echo_body("application/octet-stream", &encoded);
    let result_binary = result(&invoke(&handler, "misbehave", binary.to_string()).await);
    assert_eq!(result_binary["Outputs"]["res"]["body"], r#"{"bytes":1000}"#);
}

#[tokio::test]
async fn a_response_that_is_not_text_becomes_a_500_problem_in_the_result() {
    let handler = start("payload-binary", &[]).await;
    let invocation = envelope(
        "req",
        request(
            "GET",
            "/api/misbehave/binary",
            json!({"x-correlation-id": ["bin-1"]}),
            None,
        ),
    );
    let result = result(&invoke(&handler, "misbehave", invocation.to_string()).await);
    let response = &result["Outputs"]["res"];
    assert_eq!(response["statusCode"], 500);
    assert_eq!(
        response["headers"]["content-type"],
        "application/problem+json"
    );
    let problem: Value =
        serde_json::from_str(response["body"].as_str().expect("a text body")).expect("JSON");
    assert_eq!(problem["correlation_id"], "bin-1");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("UTF-8")),
        "{problem}"
    );
    assert!(
        result["Logs"]
            .as_array()
            .expect("Logs")
            .iter()
            .any(|line| line.as_str().is_some_and(|line| line.contains("UTF-8"))),
        "{result}"
    );
}

/// Envelopes that are wrong by construction, each with what is wrong.
fn malformed_envelopes(valid_path: &str) -> Vec<(&'static str, Vec<u8>)> {
    let valid = envelope("req", request("POST", valid_path, json!({}), Some("x")));
    let with = |pointer: &str, value: Value| replace(&valid, pointer, value);
    vec![
        ("not JSON", b"Data=req".to_vec()),
        ("truncated", valid.to_string().as_bytes()[..40].to_vec()),
        ("not UTF-8", b"{\"Data\": \"\xff\"}".to_vec()),
        ("an array", b"[]".to_vec()),
        ("no Data", b"{\"Metadata\": {}}".to_vec()),
        ("Data null", with("/Data", Value::Null)),
        ("no trigger object", with("/Data", json!({"request": {}}))),
        ("trigger not an object", with("/Data/req", json!("GET /"))),
        ("Url missing", with("/Data/req", json!({"Method": "GET"}))),
        ("Url a number", with("/Data/req/Url", json!(42))),
        ("Url not a URL", with("/Data/req/Url", json!("http://[::1"))),
        ("Method a list", with("/Data/req/Method", json!(["GET"]))),
        (
            "Method not a token",
            with("/Data/req/Method", json!("GE T")),
        ),
        (
            "Headers a list",
            with("/Data/req/Headers", json!([["a", "b"]])),
        ),
        (
            "header name",
            with("/Data/req/Headers", json!({"bad name": ["v"]})),
        ),
        (
            "header value type",
            with("/Data/req/Headers", json!({"x-a": [1]})),
        ),
        (
            "header value text",
            with("/Data/req/Headers", json!({"x-a": ["line\nbreak"]})),
        ),
        ("Body a number", with("/Data/req/Body", json!(12))),
        (
            "Body not base64",
            with(
                "/Data/req",
                request(
                    "POST",
                    "/api/misbehave/echo-body",
                    json!({"Content-Type": ["application/octet-stream"]}),
                    Some("not base64!"),
                ),
            ),
        ),
    ]
}

/// The refusal inside a payload-mode answer: the answer itself is a 200
/// envelope (the Functions host turns any other answer into an empty 500),
/// and its response is a problem+json with `status`. Returns the problem.
fn refusal(response: &Response) -> Result<Value, String> {
    if response.status != 200
        || response.header("content-type") != Some("application/json; charset=utf-8")
    {
        return Err(format!(
            "the answer is {} {:?}, not a 200 envelope",
            response.status,
            response.header("content-type")
        ));
    }
    let envelope: Value = serde_json::from_slice(&response.body).map_err(|e| e.to_string())?;
    let inner = &envelope["Outputs"]["res"];
    if inner["headers"]["content-type"] != "application/problem+json" {
        return Err(format!("not a problem: {inner}"));
    }
    let problem: Value = serde_json::from_str(inner["body"].as_str().unwrap_or_default())
        .map_err(|e| format!("the problem is not JSON ({e}): {inner}"))?;
    if problem["status"] != inner["statusCode"] {
        return Err(format!(
            "status {} in a {} problem",
            inner["statusCode"], problem["status"]
        ));
    }
    Ok(problem)
}

/// A refusal with `status` and a detail.
fn assert_refused(response: &Response, status: u16, case: &str) -> Value {
    let problem = refusal(response).unwrap_or_else(|why| {
        panic!(
            "{case}: {why}: {:?}",
            String::from_utf8_lossy(&response.body)
        )
    });
    assert_eq!(problem["status"], status, "{case}: {problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty()),
        "{case}"
    );
    problem
}

#[tokio::test]
async fn malformed_envelopes_get_400_and_never_reach_the_guest() {
    // Had the guest run, it would have called the upstream.
    let upstream = Upstream::start().await;
    let authority = format!("127.0.0.1:{}", upstream.port());
    let handler = start("payload-malformed", &["--allow-outgoing-http", &authority]).await;
    let call_upstream = format!("/api/misbehave/outgoing?authority={authority}&path=/hit");
    for (case, bytes) in malformed_envelopes(&call_upstream) {
        let response = invoke(&handler, "misbehave", bytes).await;
        let problem = assert_refused(&response, 400, case);
        assert!(
            problem["detail"].as_str().is_some_and(
                |detail| detail.starts_with("The invocation of misbehave is malformed")
            ),
            "{case}"
        );
    }
    assert_eq!(upstream.hits(), 0);

    let valid = envelope("req", request("POST", &call_upstream, json!({}), Some("x")));
    let result = result(&invoke(&handler, "misbehave", valid.to_string()).await);
    assert_eq!(result["Outputs"]["res"]["statusCode"], 200, "{result}");
    assert_eq!(upstream.hits(), 1);
}

/// Envelopes past 256 KiB are read into a mapping of their own; the guest's
/// body, a slice of it, is whole, in text and in base64.
#[tokio::test]
async fn a_large_envelope_reaches_the_guest_whole() {
    use base64::Engine as _;

    let handler = start("payload-large", &[]).await;
    let text = "t".repeat(3 << 20);
    let answered = result(
        &invoke(
            &handler,
            "misbehave",
            echo_body("text/plain", &text).to_string(),
        )
        .await,
    );
    let answer: Value =
        serde_json::from_str(answered["Outputs"]["res"]["body"].as_str().expect("a body"))
            .expect("the guest's JSON");
    assert_eq!(answer["bytes"], 3 << 20, "{answer}");

    let bytes = vec![0xA5u8; 2 << 20];
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let invocation = echo_body("application/octet-stream", &encoded);
    let answered = result(&invoke(&handler, "misbehave", invocation.to_string()).await);
    let answer: Value =
        serde_json::from_str(answered["Outputs"]["res"]["body"].as_str().expect("a body"))
            .expect("the guest's JSON");
    assert_eq!(answer["bytes"], 2 << 20, "{answer}");
}

#[tokio::test]
async fn an_oversized_envelope_gets_413() {
    let handler = start("payload-oversized", &["--max-request-body", "64KiB"]).await;
    let big = "x".repeat(1 << 20);
    let invocation = echo_body("text/plain", &big);
    assert_refused(
        &invoke(&handler, "misbehave", invocation.to_string()).await,
        413,
        "1 MiB",
    );

    // Inside the envelope limit but over the body limit: the guest's request is refused.
    let over = "x".repeat(65 << 10);
    let invocation = echo_body("text/plain", &over);
    let result = result(&invoke(&handler, "misbehave", invocation.to_string()).await);
    assert_eq!(result["Outputs"]["res"]["statusCode"], 413, "{result}");
}

/// Thousands of envelopes broken at random, each wrong by construction: a
/// required member replaced by any other JSON value, a header made invalid,
/// the text cut short or made invalid UTF-8. Every one gets a 4xx problem,
/// and the host serves on.
#[tokio::test(flavor = "multi_thread")]
async fn fuzzed_envelopes_always_get_a_4xx_problem() {
    let mut handler = start("payload-fuzz", &[]).await;
    let valid = envelope(
        "req",
        request(
            "POST",
            "/api/misbehave/echo-body",
            json!({"Content-Type": ["text/plain"], "x-a": ["b"]}),
            Some("body"),
        ),
    );

    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    let any_json = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[A-Za-z]{1,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    // Replacements that are wrong for each required member whatever they hold.
    let not_object = any_json
        .clone()
        .prop_filter("not an object", |v| !v.is_object() && !v.is_null());
    let not_string = any_json
        .clone()
        .prop_filter("not a string", |v| !v.is_string() && !v.is_null());
    let bad_header_name = "[a-z]{0,4}[ :()@\\[\\]\"{}\u{e9}][a-z]{0,4}";
    let bad_header_value = ".{0,4}[\n\r\u{0}].{0,4}";

    let at = |pointer: &'static str| {
        let valid = valid.clone();
        move |value: Value| replace(&valid, pointer, value)
    };
    let text = valid.to_string().into_bytes();
    let length = text.len();
    let cut = {
        let text = text.clone();
        move |at: usize| text[..at].to_vec()
    };
    // A byte from 0xf8 up is never UTF-8, wherever it lands.
    let not_utf8 = move |(at, byte): (usize, u8)| {
        let mut bytes = text.clone();
        bytes.insert(at, byte);
        bytes
    };
    let broken = prop_oneof![
        not_object.clone().prop_map(at("/Data")),
        not_object.prop_map(at("/Data/req")),
        not_string.clone().prop_map(at("/Data/req/Url")),
        not_string.clone().prop_map(at("/Data/req/Method")),
        not_string.prop_map(at("/Data/req/Body")),
        bad_header_name
            .prop_map(|name| json!({ name: ["v"] }))
            .prop_map(at("/Data/req/Headers")),
        bad_header_value
            .prop_map(|value| json!({ "x-a": [value] }))
            .prop_map(at("/Data/req/Headers")),
        (0..length).prop_map(cut),
        (0..length, 0xf8u8..=0xff).prop_map(not_utf8),
    ];

    let runtime = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let handler_ref = &handler;
    let outcome = tokio::task::block_in_place(|| {
        runner.run(&broken, |bytes| {
            let response = runtime.block_on(invoke(handler_ref, "misbehave", bytes.clone()));
            let status = refusal(&response).map(|problem| problem["status"].as_u64());
            prop_assert!(
                matches!(status, Ok(Some(400..=499))),
                "{:?} -> {status:?} {:?}",
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&response.body)
            );
            Ok(())
        })
    });
    outcome.expect("every broken envelope got a 4xx problem");
    assert!(handler.is_running());
    let result = result(&invoke(&handler, "misbehave", valid.to_string()).await);
    assert_eq!(result["Outputs"]["res"]["body"], r#"{"bytes":4}"#);
}

fn replace(valid: &Value, pointer: &str, value: Value) -> Vec<u8> {
    let mut envelope = valid.clone();
    *envelope.pointer_mut(pointer).expect("a member") = value;
    envelope.to_string().into_bytes()
}

/// The same spans as a forwarded request, from the envelope's `traceparent`;
/// the guest's line in `Logs` carries the trace id.
#[tokio::test]
async fn an_invocation_is_traced_like_a_forwarded_request() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let collector = test_harness::otlp::Collector::start().await;
    let handler = HANDLER
        .builder_in(payload_app("payload-traced"))
        .args(["--route", "/api/catalog=catalog.wasm"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .start()
        .await;
    let mut headers = catalog_headers("payload-trace-1");
    headers["traceparent"] = json!([format!("00-{TRACE_ID}-00f067aa0ba902b7-01")]);
    let invocation = envelope("req", request("GET", "/api/catalog/42", headers, None));
    let result = result(&invoke(&handler, "catalog", invocation.to_string()).await);
    let spans = collector
        .wait_for_spans(|spans| {
            spans.iter().any(|span| span.kind == "SERVER")
                && spans.iter().any(|span| span.name == "handle")
        })
        .await;
    let server = spans
        .iter()
        .find(|span| span.kind == "SERVER")
        .expect("a SERVER span");
    assert_eq!(server.trace_id, TRACE_ID);
    assert_eq!(server.parent_span_id, "00f067aa0ba902b7");
    assert_eq!(server.attribute("http.route"), Some("/api/catalog"));
    let handle = spans
        .iter()
        .find(|span| span.name == "handle")
        .expect("a handle span");
    assert_eq!(handle.parent_span_id, server.span_id);
    let logs = result["Logs"].to_string();
    assert!(
        logs.contains(&format!("trace_id={TRACE_ID} span_id={}", server.span_id)),
        "{logs}"
    );
}
