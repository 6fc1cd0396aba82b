//! Test harness: runs the real `wasm-handler` binary the way the Azure
//! Functions host runs a custom handler, and talks HTTP to it over loopback.
//!
//! - [`guests`]: paths of the components `build.rs` compiled from source;
//! - [`HandlerProcess`]: a running `wasm-handler`, launched with the Functions
//!   host's environment and readiness poll, its console captured;
//! - [`functions_host`]: requests as the Functions host forwards them;
//! - [`http`]: a small HTTP/1.1 client;
//! - [`upstream`]: a loopback HTTP server for guests to call out to.

pub mod functions_host;
pub mod http;
mod process;
pub mod upstream;

pub use process::{HandlerBuilder, HandlerProcess, free_port, handler_binary};

/// Hex SHA-256 of `bytes`, as the host names component versions.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Guest components, built from source by this crate's build script.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
