//! End-to-end tests of the real `functions-emulator` binary: real function
//! apps in temporary folders, the real `wasm-handler` and components built from
//! source (forward mode), a Python recorder as the handler (payload mode), and
//! shell scripts as failing handlers (restart policy). Loopback only; every
//! wait is bounded.
//!
//! Build `wasm-handler` first: `cargo build --release -p wasm-handler`.

mod auth;
mod forward_mode;
mod handler_process;
mod modes;
mod payload_mode;
mod support;
