//! `functions-emulator`: a local stand-in for the Azure Functions host
//! (`func start`) running a custom handler, modelled on the
//! Functions host's source (see `README.md` for what it models and where each
//! behaviour comes from).
//!
//! - [`cli`]: the command line; [`lifecycle`]: start-up and shutdown order;
//! - the app folder itself (host.json, function.json, local.settings.json) is read by the shared `functions-contract` crate;
//! - [`functions`]: the indexed functions and their invocation modes;
//! - [`launcher`]: the handler process (command, readiness, restarts);
//! - [`server`] and [`pipeline`]: the listener, then 503 / [`routes`] 404 /
//!   [`auth`] 401 / body for each request;
//! - [`invocation`]: one invocation in [`forward`] or [`payload`] mode, over
//!   the host's [`client`]; [`url`]: paths and queries as ASP.NET Core parses them;
//! - [`host_log`]: every line the emulator prints, as the Functions host's log.

#![deny(missing_docs, unreachable_pub)]

mod auth;
mod cli;
mod client;
mod forward;
mod functions;
mod host_log;
mod invocation;
mod launcher;
mod lifecycle;
mod payload;
mod pipeline;
mod routes;
mod server;
mod url;

use std::process::ExitCode;

use clap::Parser as _;

/// Runs `functions-emulator` with this process's command line.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            host_log::error(format!("Starting the async runtime failed: {error}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lifecycle::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            host_log::error(format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}
