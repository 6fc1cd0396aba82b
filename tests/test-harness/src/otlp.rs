//! A loopback OpenTelemetry collector: it takes OTLP/HTTP exports
//! (`/v1/traces`, `/v1/metrics`), decodes their protobuf with
//! `opentelemetry-proto`'s types, and keeps what it decoded.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric;
use prost::Message as _;
use tokio::net::TcpListener;

/// A span as the collector received it, ids in hex.
#[derive(Debug, Clone)]
pub struct Span {
    /// `service.name` of the exporting resource.
    pub service_name: String,
    /// The trace id.
    pub trace_id: String,
    /// The span id.
    pub span_id: String,
    /// The parent's span id; empty for a root.
    pub parent_span_id: String,
    /// W3C `tracestate`.
    pub trace_state: String,
    /// The span's name.
    pub name: String,
    /// `SERVER`, `CLIENT`, `INTERNAL`, ...
    pub kind: &'static str,
    /// Attributes, values written as text.
    pub attributes: BTreeMap<String, String>,
    /// `UNSET`, `OK` or `ERROR`.
    pub status: &'static str,
    /// Events: name and attributes.
    pub events: Vec<(String, BTreeMap<String, String>)>,
}

impl Span {
    /// The attribute `name`, as text.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// A metric data point: the metric's name and the point's attributes.
#[derive(Debug, Clone)]
pub struct Point {
    /// The metric's name.
    pub metric: String,
    /// The metric's unit.
    pub unit: String,
    /// The point's attributes, values written as text.
    pub attributes: BTreeMap<String, String>,
    /// A histogram's count, or a sum's value.
    pub count: u64,
}

#[derive(Default)]
struct Received {
    exports: usize,
    spans: Vec<Span>,
    points: Vec<Point>,
}

/// A running collector; it stops with the test's runtime.
pub struct Collector {
    port: u16,
    received: Arc<Mutex<Received>>,
}

impl Collector {
    /// A collector that answers every export with success.
    pub async fn start() -> Self {
        Self::serve(
            TcpListener::bind(("127.0.0.1", 0))
                .await
                .expect("binding the collector"),
            true,
        )
    }

    /// A collector on `listener` that answers, or (`answer` false) takes
    /// connections and requests and never answers them.
    pub fn serve(listener: TcpListener, answer: bool) -> Self {
        let port = listener.local_addr().expect("an address").port();
        let received = Arc::new(Mutex::new(Received::default()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let store = store.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let body = request.into_body().collect().await.map(|b| b.to_bytes());
                        store.lock().expect("not poisoned").exports += 1;
                        if !answer {
                            std::future::pending::<()>().await;
                        }
                        let reply = match body {
                            Ok(body) => decode(&path, &body, &store),
                            Err(_) => Bytes::new(),
                        };
                        let mut response = hyper::Response::new(Full::new(reply));
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/x-protobuf"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self { port, received }
    }

    /// The base endpoint, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Export requests received, decoded or not.
    pub fn exports(&self) -> usize {
        self.received.lock().expect("not poisoned").exports
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.received.lock().expect("not poisoned").spans.clone()
    }

    /// The metric points received so far.
    pub fn points(&self) -> Vec<Point> {
        self.received.lock().expect("not poisoned").points.clone()
    }

    /// Waits up to 10 s until the spans received satisfy `done`, and returns them.
    pub async fn wait_for_spans(&self, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        for _ in 0..200 {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the collector did not get the spans expected: {:#?}",
            self.spans()
        );
    }
}

fn decode(path: &str, body: &[u8], store: &Mutex<Received>) -> Bytes {
    let mut received = store.lock().expect("not poisoned");
    match path {
        "/v1/traces" => {
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
            for resource_spans in request.resource_spans {
                let service_name = resource_spans
                    .resource
                    .as_ref()
                    .and_then(|resource| attributes(&resource.attributes).remove("service.name"))
                    .unwrap_or_default();
                for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                    received.spans.push(Span {
                        service_name: service_name.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        trace_state: span.trace_state,
                        name: span.name,
                        kind: match span.kind {
                            1 => "INTERNAL",
                            2 => "SERVER",
                            3 => "CLIENT",
                            4 => "PRODUCER",
                            5 => "CONSUMER",
                            _ => "UNSPECIFIED",
                        },
                        attributes: attributes(&span.attributes),
                        status: match span.status.map(|status| status.code) {
                            Some(1) => "OK",
                            Some(2) => "ERROR",
                            _ => "UNSET",
                        },
                        events: span
                            .events
                            .into_iter()
                            .map(|event| (event.name, attributes(&event.attributes)))
                            .collect(),
                    });
                }
            }
            ExportTraceServiceResponse::default().encode_to_vec().into()
        }
        "/v1/metrics" => {
            let request =
                ExportMetricsServiceRequest::decode(body).expect("an OTLP metrics export");
            let metrics = request
                .resource_metrics
                .into_iter()
                .flat_map(|r| r.scope_metrics)
                .flat_map(|s| s.metrics);
            for metric in metrics {
                let points: Vec<(Vec<KeyValue>, u64)> = match metric.data {
                    Some(metric::Data::Histogram(histogram)) => histogram
                        .data_points
                        .into_iter()
                        .map(|p| (p.attributes, p.count))
                        .collect(),
                    Some(metric::Data::Sum(sum)) => sum
                        .data_points
                        .into_iter()
                        .map(|p| {
                            let value = match p.value {
                                Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(v)) => v as u64,
                                Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(v)) => v as u64,
                                None => 0,
                            };
                            (p.attributes, value)
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                for (point_attributes, count) in points {
                    received.points.push(Point {
                        metric: metric.name.clone(),
                        unit: metric.unit.clone(),
                        attributes: attributes(&point_attributes),
                        count,
                    });
                }
            }
            ExportMetricsServiceResponse::default()
                .encode_to_vec()
                .into()
        }
        _ => Bytes::new(),
    }
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
