//! `wasmtime serve`: wasmtime-cli 48.0.8's own `serve` subcommand
//! (`wasmtime_cli::commands::ServeCommand`), options and behaviour unchanged.
//! Only the other subcommands of the `wasmtime` binary are left out.

use clap::Parser as _;

/// The wasmtime-cli release this is (the `=` version in Cargo.toml; a test
/// checks it against Cargo.lock).
const WASMTIME_CLI_VERSION: &str = "48.0.8";

/// Wasmtime WebAssembly Runtime (the `serve` subcommand only).
#[derive(clap::Parser)]
#[command(name = "wasmtime", version = WASMTIME_CLI_VERSION)]
enum Wasmtime {
    /// Serves requests from a wasi-http proxy component.
    Serve(Box<wasmtime_cli::commands::ServeCommand>),
}

fn main() -> wasmtime::Result<()> {
    match Wasmtime::parse() {
        Wasmtime::Serve(serve) => serve.execute(),
    }
}
