//! OpenTelemetry: a SERVER span per request with children for admission,
//! instantiation, the guest's call and each outgoing HTTP request
//! ([`RequestTrace`]), and request metrics ([`metrics`]), exported over
//! OTLP/HTTP by the OpenTelemetry SDK in batches, off the request path.
//!
//! Configured by the standard `OTEL_*` variables (read by the SDK and its
//! OTLP exporter); with no OTLP endpoint set nothing is set up, and a
//! request pays one `OnceLock` read for it.

mod export_client;
mod ids;
mod metrics;
mod request_trace;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithHttpConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use wasmtime::error::Context as _;

use export_client::ExportClient;

pub(crate) use metrics::reloaded;
pub(crate) use request_trace::{ClientSpan, RequestTrace};

/// The names of a request's child spans.
pub(crate) mod span_names {
    /// Waiting for an instance permit, or an idle instance.
    pub(crate) const ADMISSION: &str = "admission";
    /// Making a fresh instance.
    pub(crate) const INSTANTIATE: &str = "instantiate";
    /// The guest's `handle`, until it is done with the request.
    pub(crate) const HANDLE: &str = "handle";
}

/// The tracer requests are traced with, when export is configured.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The service name when neither `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` names one.
const SERVICE_NAME: &str = "wasm-handler";

/// The exporters, kept to flush them at shutdown.
#[derive(Default)]
pub(crate) struct Telemetry {
    traces: Option<SdkTracerProvider>,
    metrics: Option<SdkMeterProvider>,
}

/// What the environment asks for.
#[derive(Debug, PartialEq, Eq)]
struct Settings {
    traces: bool,
    metrics: bool,
}

impl Settings {
    fn from_env(var: impl Fn(&str) -> Option<String>) -> wasmtime::Result<Self> {
        let set = |name: &str| var(name).is_some_and(|value| !value.trim().is_empty());
        let disabled =
            var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let exporter_on =
            |name: &str| var(name).is_none_or(|value| !value.trim().eq_ignore_ascii_case("none"));
        let endpoint = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        let settings = Self {
            traces: !disabled
                && exporter_on("OTEL_TRACES_EXPORTER")
                && (endpoint || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
            metrics: !disabled
                && exporter_on("OTEL_METRICS_EXPORTER")
                && (endpoint || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")),
        };
        // The SDK would fall back to protobuf with a warning; an operator who
        // asked for gRPC should hear at start-up that it is not built in.
        for name in [
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        ] {
            if let Some(protocol) = var(name).filter(|p| !p.trim().is_empty())
                && protocol.trim() != "http/protobuf"
                && (settings.traces || settings.metrics)
            {
                wasmtime::bail!(
                    "{name}={protocol:?} is not supported: wasm-handler exports OTLP as \
                     http/protobuf (the collector's port 4318)"
                );
            }
        }
        Ok(settings)
    }
}

impl Telemetry {
    /// Sets up export as the `OTEL_*` variables say, on `runtime` (the
    /// exporter's HTTP requests run there). Nothing, if no endpoint is set.
    pub(crate) fn from_env(runtime: &tokio::runtime::Handle) -> wasmtime::Result<Self> {
        let settings = Settings::from_env(|name| std::env::var(name).ok())?;
        if !settings.traces && !settings.metrics {
            return Ok(Self::default());
        }
        let client = ExportClient::new(runtime.clone());
        let resource = resource();
        let mut telemetry = Self::default();
        if settings.metrics {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_http_client(client.clone())
                .build()
                .context("setting up the OTLP metric exporter")?;
            let provider = SdkMeterProvider::builder()
                .with_periodic_exporter(exporter)
                .with_resource(resource.clone())
                .build();
            metrics::install(&provider);
            telemetry.metrics = Some(provider);
        }
        let mut tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_id_generator(ids::CorrelatedIds::default());
        if settings.traces {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .build()
                .context("setting up the OTLP span exporter")?;
            // Sampler and queue from OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*.
            tracer_provider = tracer_provider.with_batch_exporter(exporter);
        } else {
            // Metrics only: spans still give log lines their ids, but none is recorded.
            tracer_provider = tracer_provider.with_sampler(Sampler::AlwaysOff);
        }
        let tracer_provider = tracer_provider.build();
        let _ = TRACER.set(tracer_provider.tracer(SERVICE_NAME));
        if settings.traces {
            telemetry.traces = Some(tracer_provider);
        }
        tracing::info!(
            traces = settings.traces,
            metrics = settings.metrics,
            "Exporting OpenTelemetry over OTLP/HTTP"
        );
        Ok(telemetry)
    }

    /// Exports what is still queued, within `timeout`. Blocks: call it off
    /// the runtime's worker threads (the exporter's requests run on them).
    pub(crate) fn shutdown(self, timeout: Duration) {
        if let Some(provider) = self.traces
            && let Err(error) = provider.shutdown_with_timeout(timeout)
        {
            tracing::warn!(%error, "Spans could not all be exported at shutdown");
        }
        if let Some(provider) = self.metrics
            && let Err(error) = provider.shutdown_with_timeout(timeout)
        {
            tracing::warn!(%error, "Metrics could not all be exported at shutdown");
        }
    }
}

/// The SDK's resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), with
/// this host's name and version where the environment names no service.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| !name.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attributes| attributes.contains("service.name="));
    let builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    match named {
        true => builder.build(),
        false => builder.with_service_name(SERVICE_NAME).build(),
    }
}

fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> wasmtime::Result<Settings> {
        Settings::from_env(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        let none = Settings {
            traces: false,
            metrics: false,
        };
        assert_eq!(settings(&[]).expect("valid"), none);
        assert_eq!(
            settings(&[
                ("OTEL_SERVICE_NAME", "catalog"),
                ("OTEL_TRACES_SAMPLER", "always_on")
            ])
            .expect("valid"),
            none
        );
        assert_eq!(
            settings(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SDK_DISABLED", "true")
            ])
            .expect("valid"),
            none
        );
    }

    #[test]
    fn signals_follow_their_endpoints_and_exporters() {
        let all = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]).expect("valid");
        assert_eq!(
            all,
            Settings {
                traces: true,
                metrics: true
            }
        );
        let traces = settings(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces",
        )])
        .expect("valid");
        assert_eq!(
            traces,
            Settings {
                traces: true,
                metrics: false
            }
        );
        let no_metrics = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ])
        .expect("valid");
        assert_eq!(
            no_metrics,
            Settings {
                traces: true,
                metrics: false
            }
        );
    }

    #[test]
    fn grpc_is_refused_by_name() {
        let error = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .expect_err("grpc is not built in");
        assert!(
            error.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
            "{error}"
        );
        settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .expect("protobuf is");
    }
}
