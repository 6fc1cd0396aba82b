//! End-to-end tests: the real `wasm-handler` binary, launched as the Functions
//! host launches a custom handler, serving components built from source, over
//! real HTTP on loopback. One test binary, one module per concern.

/// The binary under test, built by cargo from this source before the tests run.
const HANDLER: test_harness::Handler =
    test_harness::Handler::new(env!("CARGO_BIN_EXE_wasm-handler"));

mod artifacts;
mod bad_input;
mod catalog_api;
mod correlation;
mod faults;
mod functions_host;
mod hot_swap;
mod least_privilege;
mod logging;
mod openapi;
mod payload_mode;
mod reuse;
mod telemetry;
mod wasi_p3;
