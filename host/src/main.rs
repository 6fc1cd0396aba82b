//! The `wasm-handler` binary. See the library for how it is built.

use std::process::ExitCode;

use clap::Parser as _;

// See host/Cargo.toml: allocation is on every request's path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match wasm_handler::commands::Cli::parse().execute() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
