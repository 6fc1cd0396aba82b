//! OpenTelemetry: a SERVER span per request with children for admission,
//! instantiation, the guest's call and each outgoing HTTP request
//! ([`RequestTrace`]), and request metrics ([`metrics`]), exported over
//! OTLP/HTTP (or to Application Insights) by the OpenTelemetry SDK in
//! batches, off the request path.
//!
//! Configured by the standard `OTEL_*` variables (read by the SDK and its
//! exporters); with no exporter asked for nothing is set up, and a request
//! pays one `OnceLock` read for it.

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

/// Where a signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exporter {
    /// OTLP/HTTP with protobuf, to `OTEL_EXPORTER_OTLP_*ENDPOINT`.
    Otlp,
    /// Application Insights, at `APPLICATIONINSIGHTS_CONNECTION_STRING`'s
    /// ingestion endpoint.
    AzureMonitor,
}

impl Exporter {
    fn name(self) -> &'static str {
        match self {
            Self::Otlp => "otlp",
            Self::AzureMonitor => "azure_monitor",
        }
    }
}

/// The variable that holds the Application Insights connection string, as
/// the Functions host and Microsoft's OpenTelemetry distros name it.
const CONNECTION_STRING: &str = "APPLICATIONINSIGHTS_CONNECTION_STRING";

/// What the environment asks for.
#[derive(Debug, PartialEq, Eq)]
struct Settings {
    traces: Option<Exporter>,
    metrics: Option<Exporter>,
}

impl Settings {
    fn from_env(var: impl Fn(&str) -> Option<String>) -> wasmtime::Result<Self> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(Self {
                traces: None,
                metrics: None,
            });
        }
        let endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
        let signal = |exporter_var: &str, endpoint_var: &str| -> wasmtime::Result<_> {
            match var(exporter_var)
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref()
            {
                None | Some("otlp") => {
                    Ok((endpoint || var(endpoint_var).is_some()).then_some(Exporter::Otlp))
                }
                Some("none") => Ok(None),
                // Opt-in, not implied by the connection string: the string is
                // set on nearly every function app, and the handler's request
                // beside the Functions host's own would double what it reports.
                Some("azure_monitor") => match var(CONNECTION_STRING) {
                    Some(_) => Ok(Some(Exporter::AzureMonitor)),
                    None => wasmtime::bail!(
                        "{exporter_var}=azure_monitor needs {CONNECTION_STRING}, the \
                         Application Insights resource's connection string"
                    ),
                },
                Some(other) => wasmtime::bail!(
                    "{exporter_var}={other:?} is not supported: wasm-handler exports with \
                     otlp (OTLP/HTTP), azure_monitor (Application Insights) or none"
                ),
            }
        };
        let settings = Self {
            traces: signal("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?,
            metrics: signal(
                "OTEL_METRICS_EXPORTER",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            )?,
        };
        // The SDK would fall back to protobuf with a warning; an operator who
        // asked for gRPC should hear at start-up that it is not built in.
        let otlp = [settings.traces, settings.metrics].contains(&Some(Exporter::Otlp));
        for name in [
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        ] {
            if let Some(protocol) = var(name)
                && protocol.trim() != "http/protobuf"
                && otlp
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
    /// exporters' HTTP requests run there). Nothing, if no exporter is asked for.
    pub(crate) fn from_env(runtime: &tokio::runtime::Handle) -> wasmtime::Result<Self> {
        let settings = Settings::from_env(|name| std::env::var(name).ok())?;
        if settings.traces.is_none() && settings.metrics.is_none() {
            return Ok(Self::default());
        }
        let client = ExportClient::new(runtime.clone())?;
        let resource = resource();
        let mut telemetry = Self::default();
        if let Some(exporter) = settings.metrics {
            let provider = SdkMeterProvider::builder().with_resource(resource.clone());
            let provider = match exporter {
                Exporter::Otlp => provider.with_periodic_exporter(
                    opentelemetry_otlp::MetricExporter::builder()
                        .with_http()
                        .with_http_client(client.clone())
                        .build()
                        .context("setting up the OTLP metric exporter")?,
                ),
                Exporter::AzureMonitor => {
                    provider.with_periodic_exporter(application_insights(&client)?)
                }
            }
            .build();
            metrics::install(&provider);
            telemetry.metrics = Some(provider);
        }
        let mut tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_id_generator(ids::CorrelatedIds::default());
        // Sampler and queue from OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*.
        tracer_provider = match settings.traces {
            Some(Exporter::Otlp) => tracer_provider.with_batch_exporter(
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .build()
                    .context("setting up the OTLP span exporter")?,
            ),
            Some(Exporter::AzureMonitor) => tracer_provider.with_batch_exporter(
                application_insights(&client)?.with_sample_rate(sampled_ratio()),
            ),
            // Metrics only: spans still give log lines their ids, but none is recorded.
            None => tracer_provider.with_sampler(Sampler::AlwaysOff),
        };
        let tracer_provider = tracer_provider.build();
        let _ = TRACER.set(tracer_provider.tracer(SERVICE_NAME));
        if settings.traces.is_some() {
            telemetry.traces = Some(tracer_provider);
        }
        tracing::info!(
            traces = settings.traces.map_or("none", Exporter::name),
            metrics = settings.metrics.map_or("none", Exporter::name),
            "Exporting OpenTelemetry"
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

/// The Application Insights exporter, over the host's own client. The
/// connection string is never logged: it names the resource's key.
fn application_insights(
    client: &ExportClient,
) -> wasmtime::Result<opentelemetry_application_insights::Exporter<ExportClient>> {
    let connection_string = std::env::var(CONNECTION_STRING).unwrap_or_default();
    opentelemetry_application_insights::Exporter::new_from_connection_string(
        connection_string,
        client.clone(),
    )
    .map_err(|error| wasmtime::format_err!("{CONNECTION_STRING} is not valid: {error}"))
}

/// The share of traces the sampler keeps, which Application Insights scales
/// its counts by: `OTEL_TRACES_SAMPLER_ARG` for the ratio samplers, else all.
fn sampled_ratio() -> f64 {
    let ratio_sampler = std::env::var("OTEL_TRACES_SAMPLER")
        .is_ok_and(|sampler| sampler.trim().ends_with("traceidratio"));
    std::env::var("OTEL_TRACES_SAMPLER_ARG")
        .ok()
        .and_then(|arg| arg.trim().parse::<f64>().ok())
        .filter(|ratio| ratio_sampler && (0.0..=1.0).contains(ratio))
        .unwrap_or(1.0)
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

    fn exporting(traces: Option<Exporter>, metrics: Option<Exporter>) -> Settings {
        Settings { traces, metrics }
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        let none = exporting(None, None);
        assert_eq!(settings(&[]).expect("valid"), none);
        assert_eq!(
            settings(&[
                ("OTEL_SERVICE_NAME", "catalog"),
                ("OTEL_TRACES_SAMPLER", "always_on"),
                // Set on nearly every function app: not an opt-in by itself.
                (CONNECTION_STRING, "InstrumentationKey=k"),
            ])
            .expect("valid"),
            none
        );
        assert_eq!(
            settings(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "azure_monitor"),
                (CONNECTION_STRING, "InstrumentationKey=k"),
                ("OTEL_SDK_DISABLED", "true")
            ])
            .expect("valid"),
            none
        );
    }

    #[test]
    fn signals_follow_their_endpoints_and_exporters() {
        let otlp = Some(Exporter::Otlp);
        let all = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]).expect("valid");
        assert_eq!(all, exporting(otlp, otlp));
        let traces = settings(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces",
        )])
        .expect("valid");
        assert_eq!(traces, exporting(otlp, None));
        let no_metrics = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ])
        .expect("valid");
        assert_eq!(no_metrics, exporting(otlp, None));
    }

    #[test]
    fn azure_monitor_is_chosen_by_name_and_needs_the_connection_string() {
        let both = settings(&[
            ("OTEL_TRACES_EXPORTER", "azure_monitor"),
            ("OTEL_METRICS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (CONNECTION_STRING, "InstrumentationKey=k"),
        ])
        .expect("valid");
        assert_eq!(
            both,
            exporting(Some(Exporter::AzureMonitor), Some(Exporter::Otlp))
        );
        let error = settings(&[("OTEL_TRACES_EXPORTER", "azure_monitor")])
            .expect_err("no connection string");
        assert!(error.to_string().contains(CONNECTION_STRING), "{error}");
        let error = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
        ])
        .expect_err("not built in");
        assert!(error.to_string().contains("\"zipkin\""), "{error}");
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
