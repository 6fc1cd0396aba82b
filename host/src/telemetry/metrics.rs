//! Request metrics, by OpenTelemetry's HTTP semantic conventions:
//! `http.server.request.duration` (seconds), and counters of refusals,
//! guest faults and component reloads, each per route and component digest.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;

/// The semantic conventions' advised buckets for `http.server.request.duration`.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

struct Instruments {
    duration: Histogram<f64>,
    refusals: Counter<u64>,
    guest_faults: Counter<u64>,
    reloads: Counter<u64>,
}

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// Makes the instruments, from `provider`'s meter.
pub(super) fn install(provider: &SdkMeterProvider) {
    let meter = provider.meter(super::SERVICE_NAME);
    let _ = INSTRUMENTS.set(Instruments {
        duration: meter
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .with_description("Duration of HTTP server requests.")
            .with_boundaries(DURATION_BUCKETS.to_vec())
            .build(),
        refusals: meter
            .u64_counter("wasm_handler.refusals")
            .with_description("Requests the host refused before or instead of running a guest.")
            .build(),
        guest_faults: meter
            .u64_counter("wasm_handler.guest_faults")
            .with_description("Requests whose guest failed.")
            .build(),
        reloads: meter
            .u64_counter("wasm_handler.reloads")
            .with_description("Component versions loaded, or refused, after start-up.")
            .build(),
    });
}

/// Whether metrics are exported.
pub(super) fn enabled() -> bool {
    INSTRUMENTS.get().is_some()
}

/// One request done, in `elapsed`, with its attributes.
pub(super) fn request_finished(elapsed: Duration, attributes: &[KeyValue]) {
    if let Some(instruments) = INSTRUMENTS.get() {
        instruments
            .duration
            .record(elapsed.as_secs_f64(), attributes);
    }
}

/// One refusal (`guest_fault` false) or guest fault, with its attributes.
pub(super) fn problem(guest_fault: bool, attributes: &[KeyValue]) {
    if let Some(instruments) = INSTRUMENTS.get() {
        match guest_fault {
            true => instruments.guest_faults.add(1, attributes),
            false => instruments.refusals.add(1, attributes),
        }
    }
}

/// A reload of the component at route `prefix`: `outcome` is `swapped` or `refused`.
pub(crate) fn reloaded(prefix: &str, digest: &str, outcome: &'static str) {
    if let Some(instruments) = INSTRUMENTS.get() {
        instruments.reloads.add(
            1,
            &[
                KeyValue::new("http.route", prefix.to_owned()),
                KeyValue::new("wasm_handler.component.digest", digest.to_owned()),
                KeyValue::new("wasm_handler.reload.outcome", outcome),
            ],
        );
    }
}
