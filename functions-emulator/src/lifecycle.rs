//! Start-up and shutdown, in order: read the app, bind the port, print the
//! function list, start the handler, serve; on SIGTERM or SIGINT stop
//! accepting, stop the handler, drain, exit 0; when the handler fails too
//! often, exit 1.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::cli::{self, Cli};
use crate::client::HOST_VERSION;
use crate::functions::FunctionIndex;
use crate::host_log;
use crate::launcher::{self, HostEnvironment, Launch, Outcome, Supervisor};
use crate::pipeline::Pipeline;
use crate::server;
use functions_contract::{AppConfig, protocol};

/// `func start`'s default port.
pub(crate) const DEFAULT_PORT: u16 = 7071;

/// Runs the emulator until it is told to stop or the handler fails too often.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let app = AppConfig::load(&cli.app_root)?;
    let index = FunctionIndex::build(&app);
    let (keys, generated_keys) = cli::keys(&cli);
    let launch = Launch::new(&app, &HostEnvironment::new(&app.settings));
    let handler_port = protocol::unused_tcp_port().context("finding a free port")?;
    let port = cli
        .port
        .or(app.settings.local_http_port)
        .unwrap_or(DEFAULT_PORT);
    let listener = server::bind(port)?;
    let port = listener.local_addr()?.port();

    print_start_up(&app, &index, port);
    if keys.is_enabled() {
        host_log::info(
            "Authorization is on (--enable-auth): function and admin functions need a key.",
        );
        for (name, value) in &generated_keys {
            host_log::info(format!("Generated key {name:?}: {value}"));
        }
    } else {
        host_log::info("Authorization is off, as with func start: every caller is authorized.");
    }
    host_log::info(format!("Listening on http://127.0.0.1:{port}"));

    let (stop, stopping) = watch::channel(false);
    let (supervisor, handler_state) =
        Supervisor::new(launch, handler_port, app.host.initialization_timeout);
    let mut supervisor = tokio::spawn(supervisor.run(stopping.clone()));
    let pipeline = Arc::new(Pipeline::new(
        index,
        keys,
        handler_state,
        app.host.invocation_timeout(),
    ));
    let server = tokio::spawn(server::serve(listener, pipeline, stopping));

    let outcome = tokio::select! {
        () = shutdown_signal() => None,
        outcome = &mut supervisor => Some(outcome.context("the handler supervisor failed")?),
    };
    host_log::info("Shutting down.");
    stop.send_replace(true);
    if outcome.is_none() {
        // Bounded by the supervisor's own SIGTERM grace.
        let _ = tokio::time::timeout(
            launcher::STOP_GRACE + Duration::from_secs(5),
            &mut supervisor,
        )
        .await;
    }
    let _ = tokio::time::timeout(server::DRAIN_GRACE + Duration::from_secs(1), server).await;
    Ok(match outcome {
        Some(Outcome::RetriesExceeded) => ExitCode::FAILURE,
        Some(Outcome::ShutDown) | None => ExitCode::SUCCESS,
    })
}

/// The banner and the function list, as `func start` prints them.
fn print_start_up(app: &AppConfig, index: &FunctionIndex, port: u16) {
    let mut lines = vec![
        format!(
            "Azure Functions host emulator {} (Functions host {HOST_VERSION}, custom handler)",
            env!("CARGO_PKG_VERSION")
        ),
        format!("App root: {}", app.root.display()),
        String::new(),
        "Functions:".to_owned(),
        String::new(),
    ];
    for function in &index.http {
        lines.push(format!(
            "  {}",
            function.listing(&app.host.route_prefix, port)
        ));
    }
    for (name, trigger) in &index.other {
        lines.push(format!(
            "  {name}: {trigger} (not run: the emulator has HTTP triggers only)"
        ));
    }
    lines.push(String::new());
    host_log::plain(&lines);
    for functions_contract::BrokenFunction {
        name,
        error: message,
    } in &index.errors
    {
        host_log::error(format!("The function '{name}' is in error: {message}"));
    }
    for (name, message) in &index.warnings {
        host_log::warn(format!("Function '{name}': {message}"));
    }
}

/// Resolves once `stop` turns true: how the server and the supervisor learn
/// that shutdown began.
pub(crate) async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                host_log::warn(format!(
                    "SIGTERM cannot be handled ({error}); only SIGINT stops the emulator."
                ));
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => host_log::info("SIGINT received."),
        () = terminate => host_log::info("SIGTERM received."),
    }
}
