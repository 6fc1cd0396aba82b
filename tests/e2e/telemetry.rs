//! OpenTelemetry: a SERVER span per request that continues the caller's W3C
//! `traceparent` (Trace Context, https://www.w3.org/TR/trace-context/), with
//! children for admission, instantiation and the guest's call, a CLIENT span
//! and an injected `traceparent` for each outgoing call, trace ids in the log
//! lines, and request metrics; exported over OTLP/HTTP
//! (https://opentelemetry.io/docs/specs/otlp/#otlphttp) to a collector on
//! loopback that decodes the protobuf.

use std::time::{Duration, Instant};

use test_harness::app_insights::{Ingestion, test_ca};
use test_harness::functions_host::Forward;
use test_harness::http::Response;
use test_harness::otlp::{Collector, Span};
use test_harness::upstream::Upstream;
use test_harness::{HandlerBuilder, guests};
use tokio::net::TcpListener;

use crate::HANDLER;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const SIGTERM: i32 = 15;

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

/// `GET /api/catalog/42` in the trace of [`traceparent`], answered 200.
async fn get_item_traced(port: u16) -> Response {
    let response = Forward::get("/api/catalog/42")
        .header("traceparent", &traceparent())
        .send(port)
        .await;
    assert_eq!(response.status, 200);
    response
}

/// A handler exporting to `collector`, in batches every 50 ms.
fn exporting(component: &str, collector: &Collector) -> HandlerBuilder {
    HANDLER
        .builder(component)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint())
        .env("OTEL_SERVICE_NAME", "catalog-api")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
}

fn one<'s>(spans: &'s [Span], what: impl Fn(&Span) -> bool, description: &str) -> &'s Span {
    let found: Vec<&Span> = spans.iter().filter(|span| what(span)).collect();
    assert_eq!(found.len(), 1, "one {description} in {spans:#?}");
    found[0]
}

fn server_span(spans: &[Span]) -> &Span {
    one(spans, |span| span.kind == "SERVER", "SERVER span")
}

fn has_server_and(names: &'static [&'static str]) -> impl Fn(&[Span]) -> bool {
    move |spans| {
        spans.iter().any(|span| span.kind == "SERVER")
            && names
                .iter()
                .all(|name| spans.iter().any(|span| span.name == *name))
    }
}

#[tokio::test]
async fn a_traceparent_is_continued_by_the_server_span_and_its_children() {
    let collector = Collector::start().await;
    let handler = exporting(guests::CATALOG, &collector)
        .args(["--log-format", "json"])
        .start()
        .await;
    let response = Forward::get("/api/catalog/42?page=2")
        .header("traceparent", &traceparent())
        .header("tracestate", "apim=00f067aa0ba902b7")
        .send(handler.port())
        .await;
    assert_eq!(response.status, 200);
    let digest = response.header("x-component-digest").expect("a digest");

    let spans = collector
        .wait_for_spans(has_server_and(&["admission", "instantiate", "handle"]))
        .await;
    let server = server_span(&spans);
    assert_eq!(server.trace_id, TRACE_ID);
    assert_eq!(
        server.parent_span_id, PARENT_ID,
        "the caller's span is the parent"
    );
    assert_eq!(server.trace_state, "apim=00f067aa0ba902b7");
    assert_eq!(server.service_name, "catalog-api");
    assert_eq!(server.name, "GET /");
    assert_eq!(server.status, "UNSET");
    for (name, value) in [
        ("http.request.method", "GET"),
        ("url.path", "/api/catalog/42"),
        ("url.scheme", "http"),
        ("http.route", "/"),
        ("http.response.status_code", "200"),
        ("server.address", "localhost"),
        ("server.port", "7071"),
        ("wasm_handler.correlation_id", TRACE_ID),
        ("wasm_handler.component.digest", digest),
    ] {
        assert_eq!(server.attribute(name), Some(value), "{name} in {server:#?}");
    }
    assert!(
        server
            .attribute("faas.invocation_id")
            .is_some_and(|id| id.len() == 36)
    );
    for name in ["admission", "instantiate", "handle"] {
        let child = one(&spans, |span| span.name == name, name);
        assert_eq!(child.trace_id, TRACE_ID, "{name}");
        assert_eq!(
            child.parent_span_id, server.span_id,
            "{name} is a child of the SERVER span"
        );
        assert_eq!(child.kind, "INTERNAL", "{name}");
    }

    let line = handler
        .wait_for_stdout(|line| line.contains("Handled APIM backend request"))
        .await;
    let record: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(record["trace_id"], TRACE_ID, "the guest's line: {line}");
    assert_eq!(record["span_id"], server.span_id.as_str(), "{line}");
}

#[tokio::test]
async fn an_outgoing_call_carries_the_trace_to_the_next_hop() {
    let collector = Collector::start().await;
    let upstream = Upstream::start().await;
    let handler = exporting(guests::MISBEHAVE, &collector)
        .args([
            "--allow-outgoing-http",
            &format!("127.0.0.1:{}", upstream.port()),
        ])
        .start()
        .await;
    let call = format!(
        "/api/faults/outgoing?authority=127.0.0.1:{}&path=/ping?key=secret",
        upstream.port()
    );
    let response = Forward::get(&call)
        .header("traceparent", &traceparent())
        .header("tracestate", "apim=1")
        .send(handler.port())
        .await;
    assert_eq!(response.json(), serde_json::json!({ "status": 204 }));

    let spans = collector
        .wait_for_spans(|spans| {
            spans.iter().any(|span| span.kind == "SERVER")
                && spans.iter().any(|span| span.kind == "CLIENT")
        })
        .await;
    let server = server_span(&spans);
    let client = one(&spans, |span| span.kind == "CLIENT", "CLIENT span");
    assert_eq!(client.trace_id, TRACE_ID);
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(client.name, "GET");
    assert_eq!(client.attribute("http.request.method"), Some("GET"));
    assert_eq!(client.attribute("server.address"), Some("127.0.0.1"));
    assert_eq!(client.attribute("http.response.status_code"), Some("204"));
    let port = upstream.port().to_string();
    assert_eq!(client.attribute("server.port"), Some(port.as_str()));
    assert_eq!(
        client.attribute("url.full"),
        Some(format!("http://127.0.0.1:{port}/ping").as_str()),
        "no query: it may carry a secret"
    );

    let headers = upstream.headers();
    assert_eq!(headers.len(), 1);
    assert_eq!(
        headers[0]["traceparent"],
        format!("00-{TRACE_ID}-{}-01", client.span_id),
        "the next hop's parent is the CLIENT span"
    );
    assert_eq!(headers[0]["tracestate"], "apim=1");
}

/// `OTEL_TRACES_EXPORTER=azure_monitor`: spans and metrics go to the
/// connection string's ingestion endpoint as Application Insights telemetry,
/// whose `operation_Id` (tag `ai.operation.id`) is the trace id and whose
/// `operation_ParentId` is the caller's span (Application Insights telemetry
/// data model: https://learn.microsoft.com/azure/azure-monitor/app/data-model-complete).
#[tokio::test]
async fn application_insights_gets_the_trace_id_as_operation_id() {
    const KEY: &str = "00000000-0000-4000-8000-0000000000aa";
    let ingestion = Ingestion::start().await;
    let handler = HANDLER
        .builder(guests::CATALOG)
        .env("OTEL_TRACES_EXPORTER", "azure_monitor")
        .env("OTEL_METRICS_EXPORTER", "azure_monitor")
        .env(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            &ingestion.connection_string(KEY),
        )
        .env(
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            &test_ca().display().to_string(),
        )
        .env("OTEL_SERVICE_NAME", "catalog-api")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "200")
        .start()
        .await;
    get_item_traced(handler.port()).await;

    let base_type = |envelope: &serde_json::Value| envelope["data"]["baseType"].clone();
    let envelopes = ingestion
        .wait_for(|envelopes| {
            envelopes.iter().any(|e| base_type(e) == "RequestData")
                && envelopes.iter().any(|e| base_type(e) == "MetricData")
        })
        .await;
    let requests: Vec<_> = envelopes
        .iter()
        .filter(|e| base_type(e) == "RequestData")
        .collect();
    assert_eq!(requests.len(), 1, "one request: {requests:#?}");
    let request = requests[0];
    assert_eq!(request["iKey"], KEY);
    assert_eq!(request["tags"]["ai.operation.id"], TRACE_ID, "{request:#}");
    assert_eq!(
        request["tags"]["ai.operation.parentId"], PARENT_ID,
        "{request:#}"
    );
    assert_eq!(
        request["tags"]["ai.cloud.role"], "catalog-api",
        "{request:#}"
    );
    assert_eq!(request["data"]["baseData"]["responseCode"], "200");
    let request_id = request["data"]["baseData"]["id"].clone();
    // The handler's children are dependencies of that request.
    for name in ["instantiate", "handle"] {
        assert!(
            envelopes
                .iter()
                .any(|e| base_type(e) == "RemoteDependencyData"
                    && e["data"]["baseData"]["name"] == name
                    && e["tags"]["ai.operation.id"] == TRACE_ID
                    && e["tags"]["ai.operation.parentId"] == request_id),
            "{name} under the request: {envelopes:#?}"
        );
    }
    assert!(
        envelopes.iter().any(|e| base_type(e) == "MetricData"
            && e["data"]["baseData"]["metrics"][0]["name"] == "http.server.request.duration"),
        "the request's duration: {envelopes:#?}"
    );
    let console = [handler.stdout(), handler.stderr()].concat().join("\n");
    assert!(!console.contains(KEY), "the key is never logged: {console}");
}

#[tokio::test]
async fn without_a_traceparent_the_trace_id_is_the_correlation_id() {
    let collector = Collector::start().await;
    let handler = exporting(guests::CATALOG, &collector).start().await;
    // The Functions host's invocation id (a GUID) is the correlation id.
    let response = Forward::get("/api/catalog/42").send(handler.port()).await;
    let invocation_id = response
        .header("x-correlation-id")
        .expect("a correlation id");
    assert_eq!(invocation_id.len(), 36, "{invocation_id}");
    let spans = collector.wait_for_spans(has_server_and(&["handle"])).await;
    let server = server_span(&spans);
    assert_eq!(server.trace_id, invocation_id.replace('-', ""));
    assert_eq!(server.parent_span_id, "", "a new trace: no parent");

    // A text line carries the ids too.
    let line = handler
        .wait_for_stdout(|line| line.contains("Handled APIM backend request"))
        .await;
    assert!(
        line.contains(&format!(
            "trace_id={} span_id={}",
            server.trace_id, server.span_id
        )),
        "{line}"
    );
}

#[tokio::test]
async fn guest_faults_and_refusals_are_errors_with_an_exception_event() {
    let collector = Collector::start().await;
    let handler = exporting(guests::MISBEHAVE_P3, &collector)
        .args(["--max-instances", "1"])
        .start()
        .await;
    let trapped = Forward::get("/api/p3/trap")
        .header("traceparent", &traceparent())
        .send(handler.port())
        .await;
    assert_eq!(trapped.status, 500);
    let spans = collector.wait_for_spans(has_server_and(&["handle"])).await;
    let server = server_span(&spans);
    assert_eq!(server.status, "ERROR");
    assert_eq!(server.attribute("http.response.status_code"), Some("500"));
    let (name, event) = &server.events[0];
    assert_eq!(name, "exception");
    assert_eq!(event["exception.type"], "trap");
    assert!(event["exception.message"].contains("trapped"), "{event:?}");
    let handle = one(&spans, |span| span.name == "handle", "handle span");
    assert_eq!(handle.status, "ERROR");
    assert_eq!(handle.parent_span_id, server.span_id);

    // A request refused for want of an instance: its admission span says why.
    let busy = Forward::get("/api/p3/loop").send(handler.port());
    let busy = tokio::spawn(busy);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = Forward::get("/api/p3/ok").send(handler.port()).await;
    assert_eq!(refused.status, 503);
    let spans = collector
        .wait_for_spans(|spans| {
            spans
                .iter()
                .any(|span| span.attribute("http.response.status_code") == Some("503"))
        })
        .await;
    let refused = one(
        &spans,
        |span| span.attribute("http.response.status_code") == Some("503"),
        "refused SERVER span",
    );
    assert_eq!(refused.events[0].1["exception.type"], "overloaded");
    let admission = one(
        &spans,
        |span| span.name == "admission" && span.parent_span_id == refused.span_id,
        "admission span of the refused request",
    );
    assert_eq!(admission.status, "ERROR");
    busy.abort();
}

#[tokio::test]
async fn nothing_is_exported_when_nothing_is_configured() {
    // A collector on the OTLP/HTTP default port, where an exporter set up by
    // default would send.
    let listener = TcpListener::bind(("127.0.0.1", 4318))
        .await
        .expect("the OTLP/HTTP port 4318 is free on this machine");
    let collector = Collector::serve(listener, true);
    let handler = HANDLER
        .builder(guests::CATALOG)
        .env("OTEL_SERVICE_NAME", "catalog-api")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .args(["--log-format", "json"])
        .start()
        .await;
    get_item_traced(handler.port()).await;
    let line = handler
        .wait_for_stdout(|line| line.contains("Handled APIM backend request"))
        .await;
    let record: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert!(
        record.get("trace_id").is_none(),
        "no trace, no trace id: {line}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(collector.exports(), 0);
}

#[tokio::test]
async fn a_collector_that_never_answers_holds_up_no_request() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("a port");
    let silent = Collector::serve(listener, false);
    let mut handler = exporting(guests::CATALOG, &silent)
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "16")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")
        .env("OTEL_BSP_SCHEDULE_DELAY", "10")
        .args(["--shutdown-grace", "1s"])
        .start()
        .await;
    // Each export waits 10 s for an answer that never comes; the queue fills
    // within a few requests, and the rest of the spans are dropped.
    let mut slowest = Duration::ZERO;
    for _ in 0..200 {
        let started = Instant::now();
        let response = Forward::get("/api/catalog/42").send(handler.port()).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(response.status, 200);
    }
    assert!(silent.exports() >= 1, "the exporter tried");
    assert!(
        slowest < Duration::from_secs(2),
        "a request waited for the collector: {slowest:?}"
    );
    handler.signal(SIGTERM);
    let status = handler.wait_for_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    let lines = [handler.stdout(), handler.stderr()].concat();
    assert!(
        lines
            .iter()
            .any(|line| line.contains("dropped_span_count=")),
        "the dropped spans are counted: {lines:#?}"
    );
}

#[tokio::test]
async fn spans_and_metrics_reach_the_collector_after_sigterm() {
    let collector = Collector::start().await;
    // Nothing is exported on a timer before the signal.
    let mut handler = exporting(guests::CATALOG, &collector)
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "600000")
        .start()
        .await;
    let response = get_item_traced(handler.port()).await;
    let oversized = Forward::get("/api/catalog/42")
        .header("x-padding", &"a".repeat(40 * 1024))
        .send(handler.port())
        .await;
    assert_eq!(oversized.status, 431);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(collector.spans().len(), 0, "nothing before the signal");

    handler.signal(SIGTERM);
    let status = handler.wait_for_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    let spans = collector.spans();
    let server = one(
        &spans,
        |span| span.kind == "SERVER" && span.trace_id == TRACE_ID,
        "SERVER span",
    );
    assert_eq!(server.attribute("http.response.status_code"), Some("200"));

    let points = collector.points();
    let duration = points
        .iter()
        .find(|point| {
            point.metric == "http.server.request.duration"
                && point
                    .attributes
                    .get("http.response.status_code")
                    .map(String::as_str)
                    == Some("200")
        })
        .unwrap_or_else(|| panic!("a request duration point in {points:#?}"));
    assert_eq!(duration.unit, "s");
    assert_eq!(duration.count, 1);
    assert_eq!(duration.attributes["http.route"], "/");
    assert_eq!(duration.attributes["http.request.method"], "GET");
    assert_eq!(
        Some(&duration.attributes["wasm_handler.component.digest"]),
        response
            .header("x-component-digest")
            .map(str::to_owned)
            .as_ref()
    );
    let refusal = points
        .iter()
        .find(|point| point.metric == "wasm_handler.refusals")
        .unwrap_or_else(|| panic!("a refusal count in {points:#?}"));
    assert_eq!(refusal.attributes["error.type"], "headers_too_large");
    assert_eq!(refusal.count, 1);
}

#[tokio::test]
async fn a_reused_instance_is_traced_without_an_instantiation() {
    let collector = Collector::start().await;
    let handler = exporting(guests::CATALOG, &collector)
        .args(["--max-instance-reuse-count", "2"])
        .start()
        .await;
    for _ in 0..2 {
        let response = Forward::get("/api/catalog/42").send(handler.port()).await;
        assert_eq!(response.status, 200);
    }
    let spans = collector
        .wait_for_spans(|spans| spans.iter().filter(|span| span.name == "handle").count() == 2)
        .await;
    let handles: Vec<&Span> = spans.iter().filter(|span| span.name == "handle").collect();
    let reused: Vec<_> = handles
        .iter()
        .map(|span| span.attribute("wasm_handler.instance.reused"))
        .collect();
    assert!(
        reused.contains(&Some("false")) && reused.contains(&Some("true")),
        "{handles:#?}"
    );
    assert_eq!(
        spans
            .iter()
            .filter(|span| span.name == "instantiate")
            .count(),
        1,
        "the second request ran in the first one's instance"
    );
}
