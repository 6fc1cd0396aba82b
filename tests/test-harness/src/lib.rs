//! What the end-to-end suites share: they run real binaries the way the
//! Azure Functions host runs a custom handler, and talk HTTP to them over
//! loopback.
//!
//! - [`guests`]: paths of the components `build.rs` compiled from source;
//! - [`Handler`] and [`HandlerProcess`]: a running `wasm-handler`, launched
//!   with the Functions host's environment and readiness poll, its console
//!   captured; [`current_binary`]: another package's binary, checked against
//!   the source it was built from;
//! - [`TempApp`]: a function app folder with the real handler and a component;
//! - [`functions_host`]: requests as the Functions host forwards them;
//! - [`http`]: a small HTTP/1.1 client;
//! - [`upstream`]: a loopback HTTP server for guests to call out to;
//! - [`otlp`]: a loopback OpenTelemetry collector that decodes OTLP/HTTP;
//! - [`app_insights`]: a loopback Application Insights ingestion endpoint.

#![deny(missing_docs, unreachable_pub)]

pub mod app_insights;
mod binaries;
mod function_app;
pub mod functions_host;
pub mod http;
pub mod otlp;
mod process;
pub mod upstream;

pub use binaries::{Stale, check_current, current_binary};
pub use function_app::TempApp;
pub use process::{Handler, HandlerBuilder, HandlerProcess, free_port};

/// Hex SHA-256 of `bytes`, as the host names component versions.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Guest components, built from source by this crate's build script.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
