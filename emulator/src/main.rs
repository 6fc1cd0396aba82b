//! The `functions-emulator` binary. See the library for how it is built.

use std::process::ExitCode;

use clap::Parser as _;

use functions_emulator::{cli::Cli, console, lifecycle};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            console::error(format!("Starting the async runtime failed: {error}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lifecycle::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            console::error(format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}
