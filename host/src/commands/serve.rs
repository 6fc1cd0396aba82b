//! `wasm-handler serve`: load a component and serve it until SIGTERM or SIGINT.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::error::Context as _;

use crate::engine::{self, EngineLimits};
use crate::guest::Guest;
use crate::handler::Handler;
use crate::logging::{self, LogFormat};
use crate::server;

/// The port the Functions host assigns to a custom handler.
const FUNCTIONS_PORT_ENV: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// The same, under the name older Functions hosts use.
const LEGACY_FUNCTIONS_PORT_ENV: &str = "FUNCTIONS_HTTPWORKER_PORT";

/// Options of `wasm-handler serve`. Each has an environment variable, so the
/// Functions app settings can set it without touching host.json.
#[derive(Debug, clap::Args)]
pub struct ServeCommand {
    /// The wasi:http 0.2 component to serve (`.wasm`).
    #[arg(long, env = "WASM_HANDLER_COMPONENT")]
    component: PathBuf,

    /// Address to listen on when FUNCTIONS_CUSTOMHANDLER_PORT is not set. When
    /// it is (as under `func start` and in Azure), the handler listens on
    /// 127.0.0.1 at that port.
    #[arg(long, env = "WASM_HANDLER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Log line format.
    #[arg(long, env = "WASM_HANDLER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Guest instances alive at once.
    #[arg(long, env = "WASM_HANDLER_MAX_INSTANCES", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_instances: u32,

    /// Largest linear memory of one guest instance, in MiB.
    #[arg(long, env = "WASM_HANDLER_MAX_MEMORY_MIB", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_memory_mib: u32,

    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(
        long,
        env = "WASM_HANDLER_SHUTDOWN_GRACE_SECONDS",
        default_value_t = 10.0
    )]
    shutdown_grace_seconds: f64,
}

impl ServeCommand {
    /// Runs the server until a shutdown signal, then drains and returns.
    pub fn execute(self) -> wasmtime::Result<()> {
        logging::init(self.log_format)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting tokio")?;
        runtime.block_on(self.serve())
    }

    async fn serve(self) -> wasmtime::Result<()> {
        let grace = Duration::try_from_secs_f64(self.shutdown_grace_seconds)
            .context("--shutdown-grace-seconds must be a non-negative number")?;
        let address = listen_address(self.listen)?;
        let limits = EngineLimits {
            max_instances: self.max_instances,
            max_memory_bytes: usize::try_from(self.max_memory_mib)? << 20,
        };
        let engine = engine::build(limits)?;
        let guest = Guest::load(&engine, &self.component)?;
        // Bind only once the guest is loaded: the Functions host takes any
        // answer on the port as "ready".
        let listener = server::bind(address)?;
        tracing::info!(
            component = %guest.path().display(),
            digest = guest.digest(),
            "Listening on http://{}",
            listener.local_addr()?
        );
        server::run(
            listener,
            Arc::new(Handler::new(guest)),
            server::shutdown_signal(),
            grace,
        )
        .await
    }
}

/// `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` when the Functions host set it, else `fallback`.
fn listen_address(fallback: SocketAddr) -> wasmtime::Result<SocketAddr> {
    for name in [FUNCTIONS_PORT_ENV, LEGACY_FUNCTIONS_PORT_ENV] {
        if let Ok(value) = std::env::var(name) {
            let port = value
                .trim()
                .parse::<u16>()
                .with_context(|| format!("{name}={value:?} is not a port number"))?;
            return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
    }
    Ok(fallback)
}
