//! The `wasm-handler` binary. See the library for how it is built.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    match wasm_handler::commands::Cli::parse().execute() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
