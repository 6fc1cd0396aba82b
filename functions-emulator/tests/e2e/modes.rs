//! The same catalog API through both ways the Functions host talks to a
//! custom handler: forwarded as-is (`enableForwardingHttpRequest: true`) and
//! in payload mode (`false`: `POST /{function}` with a JSON envelope). The
//! caller gets the same answers, but for one thing the host does in payload
//! mode: it writes a string body with `StringOutputFormatter`, which always
//! sets the media type (`text/plain` when there is none) with
//! `charset=utf-8` (azure-functions-host `src/WebJobs.Script/Binding/Http/RawScriptResult.cs`;
//! aspnetcore `TextOutputFormatter.WriteAsync`).

use test_harness::guests;
use test_harness::http::Response;

use crate::support::{Emulator, TempApp, message};

/// The function app with forwarding on or off.
fn catalog_app(name: &str, forwarding: bool) -> TempApp {
    let app = TempApp::function_app(name, guests::CATALOG);
    let host_json = app.read("host.json");
    let switched = host_json.replace(
        r#""enableForwardingHttpRequest": true"#,
        &format!(r#""enableForwardingHttpRequest": {forwarding}"#),
    );
    assert!(
        forwarding || switched != host_json,
        "functionapp/host.json no longer says enableForwardingHttpRequest: true"
    );
    app.write("host.json", &switched);
    app
}

/// What a caller can observe of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    /// Whether the handler answered, rather than the host's routing.
    from_handler: bool,
    status: u16,
    headers: Vec<(&'static str, Option<String>)>,
    body: String,
}

/// The headers the API documents, and the host's version header.
const OBSERVED_HEADERS: [&str; 6] = [
    "content-type",
    "cache-control",
    "etag",
    "allow",
    "x-correlation-id",
    "x-component-digest",
];

fn observe(response: &Response, from_handler: bool) -> Observed {
    Observed {
        from_handler,
        status: response.status,
        headers: OBSERVED_HEADERS
            .iter()
            .map(|&name| (name, response.header(name).map(str::to_owned)))
            .collect(),
        body: String::from_utf8_lossy(&response.body).into_owned(),
    }
}

/// One request of the tour, with the headers API Management adds.
struct Call {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    expected_status: u16,
    /// Whether a function's route takes the request.
    routed: bool,
}

fn call(method: &'static str, path: &'static str, expected_status: u16) -> Call {
    Call {
        method,
        path,
        headers: vec![
            // The same id in both runs, so the bodies that echo it compare equal.
            ("x-correlation-id", "modes-correlation".to_owned()),
            ("x-apim-gateway", "apim-westeurope".to_owned()),
            ("x-apim-cache", "miss".to_owned()),
        ],
        expected_status,
        routed: true,
    }
}

/// A request no function's route takes: the host answers 404 itself.
fn unrouted(method: &'static str, path: &'static str) -> Call {
    Call {
        routed: false,
        ..call(method, path, 404)
    }
}

/// Every operation of the catalog API and its errors, as a client sees them
/// through the Functions host.
async fn tour(emulator: &Emulator, etag: &str) -> Vec<Observed> {
    let mut calls = vec![
        call("GET", "/api/catalog/42", 200),
        call("GET", "/api/catalog/7?code=a-function-key&x=1", 200),
        call("GET", "/api/catalog/999999", 404),
        call("GET", "/api/catalog/0", 400),
        call("GET", "/api/catalog/abc", 400),
        call("GET", "/api/catalog/health", 200),
        call("GET", "/api/openapi.json", 200),
        // The function accepts only GET: the Functions host answers 404.
        unrouted("POST", "/api/catalog/42"),
        unrouted("GET", "/api/orders/1"),
    ];
    let mut conditional = call("GET", "/api/catalog/42", 304);
    conditional.headers.push(("if-none-match", etag.to_owned()));
    calls.push(conditional);
    let mut any = call("GET", "/api/catalog/42", 304);
    any.headers.push(("if-none-match", "*".to_owned()));
    calls.push(any);
    let mut stale = call("GET", "/api/catalog/42", 200);
    stale
        .headers
        .push(("if-none-match", "\"not-the-etag\"".to_owned()));
    calls.push(stale);

    let mut observed = Vec::new();
    for call in calls {
        let headers: Vec<(&str, &str)> = call
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let response = emulator.send(call.method, call.path, &headers, "").await;
        assert_eq!(
            response.status,
            call.expected_status,
            "{} {}: {:?}",
            call.method,
            call.path,
            String::from_utf8_lossy(&response.body)
        );
        observed.push(observe(&response, call.routed));
    }
    observed
}

/// What payload mode makes of a forwarded answer: the handler's answers are
/// written as text with the charset set to UTF-8, `text/plain` when they
/// had no type (azure-functions-host `src/WebJobs.Script/Binding/Http/RawScriptResult.cs`
/// and ASP.NET Core's `TextOutputFormatter`); the host's own 404s alike.
fn as_payload_mode_writes_it(forwarded: &Observed) -> Observed {
    if !forwarded.from_handler {
        return forwarded.clone();
    }
    let headers = forwarded
        .headers
        .iter()
        .map(|(name, value)| {
            let value = match (*name, value) {
                ("content-type", None) => Some("text/plain; charset=utf-8".to_owned()),
                ("content-type", Some(media_type)) => Some(format!("{media_type}; charset=utf-8")),
                (_, value) => value.clone(),
            };
            (*name, value)
        })
        .collect();
    Observed {
        from_handler: true,
        status: forwarded.status,
        headers,
        body: forwarded.body.clone(),
    }
}

#[tokio::test]
async fn forward_and_payload_mode_answer_the_whole_api_alike() {
    let forward_app = catalog_app("forward", true);
    let payload_app = catalog_app("payload", false);
    let forward = Emulator::start_ready(&forward_app, &[]).await;
    let payload = Emulator::start_ready(&payload_app, &[]).await;

    let etag = forward
        .get("/api/catalog/42")
        .await
        .header("etag")
        .expect("an ETag")
        .to_owned();
    let forwarded = tour(&forward, &etag).await;
    let enveloped = tour(&payload, &etag).await;
    for (forwarded, enveloped) in forwarded.iter().zip(&enveloped) {
        assert_eq!(&as_payload_mode_writes_it(forwarded), enveloped);
    }
    assert_eq!(forwarded.len(), enveloped.len());
    // The tour saw real answers, not two empty ones.
    assert!(forwarded[0].body.contains(r#""sku":"LIG-0042""#));
    let item_headers = &forwarded[0].headers;
    assert!(
        item_headers
            .iter()
            .all(|(name, value)| *name == "allow" || value.is_some()),
        "{item_headers:?}"
    );
}

#[tokio::test]
async fn payload_mode_returns_the_guests_log_line_with_the_invocation() {
    let app = catalog_app("payload-logs", false);
    let emulator = Emulator::start_ready(&app, &[]).await;
    let response = emulator
        .send(
            "GET",
            "/api/catalog/42",
            &[("x-correlation-id", "logs-in-payload")],
            "",
        )
        .await;
    assert_eq!(response.status, 200);
    let id = emulator.invocation_id("catalog-item", &[]).await;

    // The handler returned the line in `Logs`: the emulator prints those
    // attributed to the invocation, as the Functions host does.
    let logged = emulator
        .wait_for_line(|line| line.contains("Handled APIM backend request item_id=42"))
        .await;
    assert_eq!(
        message(&logged),
        format!(
            "[Information] Handled APIM backend request item_id=42 routed_by=azure-api-management \
             correlation_id=logs-in-payload cache_status=bypass (Functions.catalog-item, Id={id})"
        )
    );
}

/// A body over the handler's `--max-request-body` (on a GET: the function
/// takes no other method): the handler answers 413
/// on the declared length without reading the body, and the host relays that
/// answer, whether the handler reads the rest before closing (up to its
/// drain bound) or closes while the host is still sending.
#[tokio::test]
async fn a_body_over_the_handlers_limit_reaches_the_caller_as_its_413() {
    let app = catalog_app("forward-413", true);
    let emulator =
        Emulator::start_ready_with_env(&app, &[], &[("WASM_HANDLER_MAX_REQUEST_BODY", "64KiB")])
            .await;
    for size in [1 << 20, 40 << 20] {
        let body = "x".repeat(size);
        let response = emulator
            .send(
                "GET",
                "/api/catalog/42",
                &[("content-type", "text/plain")],
                &body,
            )
            .await;
        let problem = response.assert_problem(413, None);
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("65536")),
            "{size} bytes: {problem}"
        );
    }
}
