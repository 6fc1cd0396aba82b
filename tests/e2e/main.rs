//! End-to-end tests: the real `wasm-handler` binary, launched as the Functions
//! host launches a custom handler, serving components built from source, over
//! real HTTP on loopback. One test binary, one module per concern.

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
