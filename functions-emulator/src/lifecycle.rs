//! Start-up and shutdown, in order: read the app, bind the port, print the
//! function list, refuse to start where the host would (an invalid
//! `functionTimeout` for the plan, a route the router cannot map), start
//! the handler, serve; on SIGTERM or SIGINT stop accepting, stop the
//! handler, drain, exit 0; when the handler fails too often or requests
//! waited too long for it to start, exit 1.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};

use crate::cli::{self, Cli};
use crate::client::{HOST_VERSION, HostClient};
use crate::functions::FunctionIndex;
use crate::host_log;
use crate::launcher::{self, HostEnvironment, Launch, Outcome, StopMode, Supervisor};
use crate::pipeline::{Handler, Pipeline};
use crate::server;
use functions_contract::{AppConfig, HostingPlan, protocol, timespan};

/// `func start`'s default port.
pub(crate) const DEFAULT_PORT: u16 = 7071;

/// Runs the emulator until it is told to stop, the handler fails too often,
/// or requests waited too long for it to start.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let app = AppConfig::load(&cli.app_root)?;
    let index = FunctionIndex::build(&app);
    let (keys, generated_keys) = cli::keys(&cli);
    let environment = HostEnvironment::new(&app.settings);
    let launch = Launch::new(&app, &environment);
    let handler_port = protocol::unused_tcp_port().context("finding a free port")?;
    let port = cli
        .port
        .or(app.settings.local_http_port)
        .unwrap_or(DEFAULT_PORT);
    let listener = server::bind(port)?;
    let port = listener.local_addr()?.port();

    print_start_up(&app, &index, port);
    // func start copies local.settings.json's Values into its own
    // environment, so they decide the plan as app settings do in Azure.
    let plan = HostingPlan::from_environment(|name| environment.get(name));
    let function_timeout = match plan.function_timeout(app.host.function_timeout) {
        Ok(timeout) => timeout,
        Err(message) => {
            host_log::error(format!("The Functions host cannot start: {message}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(fatal) = &index.fatal {
        host_log::error(fatal);
        return Ok(ExitCode::FAILURE);
    }
    host_log::info(format!(
        "functionTimeout: {} ({plan:?} plan)",
        function_timeout.map_or_else(|| "none".to_owned(), timespan)
    ));
    if keys.is_enabled() {
        host_log::info(
            "Authorization is on (--enable-auth): function and admin functions need a key.",
        );
        for key in &generated_keys {
            host_log::info(format!("Generated key {:?}: {}", key.name, key.value));
        }
    } else {
        host_log::info("Authorization is off, as with func start: every caller is authorized.");
    }
    host_log::info(format!("Listening on http://127.0.0.1:{port}"));

    // The host's client times out a minute after functionTimeout, or after
    // int.MaxValue milliseconds when there is none.
    let client = HostClient {
        follow_redirects: functions_contract::follows_redirects(&app.host),
        timeout: Some(
            function_timeout.map_or(Duration::from_millis(i32::MAX as u64), |timeout| {
                timeout + Duration::from_secs(60)
            }),
        ),
    };
    let stop_mode = if cli.graceful_stop {
        StopMode::Graceful
    } else {
        StopMode::Kill
    };
    let (stop, stopping) = watch::channel(false);
    let (supervisor, restart, handler_state) = Supervisor::new(
        launch,
        handler_port,
        app.host.initialization_timeout,
        client,
        stop_mode,
    );
    let mut supervisor = tokio::spawn(supervisor.run(stopping.clone()));
    let host_stop = Arc::new(Notify::new());
    let pipeline = Arc::new(Pipeline::new(
        index,
        keys,
        Handler {
            port: handler_port,
            state: handler_state,
            initialization_timeout: app.host.initialization_timeout,
            client,
            function_timeout,
            restart,
            host_stop: host_stop.clone(),
        },
    ));
    let server = tokio::spawn(server::serve(
        listener,
        pipeline,
        cli.header_read_timeout,
        stopping,
    ));

    // `supervised` is the supervisor's outcome when it ended first: its
    // handle is then spent and must not be awaited again.
    let (outcome, supervised) = tokio::select! {
        () = shutdown_signal() => (None, false),
        outcome = &mut supervisor => {
            (Some(outcome.context("the handler supervisor failed")?), true)
        }
        () = host_stop.notified() => (Some(Outcome::RetriesExceeded), false),
    };
    host_log::info("Shutting down.");
    stop.send_replace(true);
    if !supervised {
        // Bounded by the supervisor's own stop.
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
    for other in &index.other {
        lines.push(format!(
            "  {}: {} (not run: the emulator has HTTP triggers only)",
            other.name, other.trigger
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
    for warning in &index.warnings {
        host_log::warn(format!("Function '{}': {}", warning.function, warning.text));
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
