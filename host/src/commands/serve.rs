//! `wasm-handler serve`: load a component and serve it until SIGTERM or SIGINT.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use functions_contract::{AppConfig, HostingPlan, protocol, timespan};
use wasmtime::error::Context as _;

use crate::component::Loader;
use crate::dispatch::Dispatcher;
use crate::engine::{self, EngineLimits};
use crate::handler::Handler;
use crate::limits::Limits;
use crate::logging::{self, LogFormat};
use crate::payload::PayloadFunctions;
use crate::registry::{Registry, RouteSpec};
use crate::reuse::{self, Reuse};
use crate::sandbox::Grants;
use crate::telemetry::Telemetry;
use crate::{reload, server};

/// The least time given to flushing telemetry at shutdown, even when
/// draining took the whole grace period.
const MIN_FLUSH: Duration = Duration::from_millis(200);

/// Options of `wasm-handler serve`. Each has an environment variable, so the
/// Functions app settings can set it without touching host.json.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeCommand {
    /// The wasi:http component (0.2 or 0.3) to serve at every path (`.wasm`, or a
    /// `.cwasm` from `wasm-handler compile`); the same as `--route /=PATH`.
    #[arg(
        long,
        env = "WASM_HANDLER_COMPONENT",
        required_unless_present = "routes"
    )]
    component: Option<PathBuf>,

    /// A component for the paths under a prefix, `PREFIX=PATH`, e.g.
    /// `/api/orders=orders.wasm` (repeatable; the longest matching prefix
    /// wins). The reuse options may follow for this route alone:
    /// `/api/orders=orders.wasm;max-instance-reuse-count=64;idle-instance-timeout=5s`.
    #[arg(long = "route", value_name = "PREFIX=PATH[;OPTION=VALUE]", env = "WASM_HANDLER_ROUTES", value_delimiter = ',', value_parser = parse_route)]
    routes: Vec<RouteArg>,

    /// The function app folder (`host.json`, `*/function.json`): its functions
    /// that are not forwarded are served in payload mode, under the binding
    /// names they declare [default: the working directory].
    #[arg(long, env = protocol::APP_ROOT_ENV)]
    function_app: Option<PathBuf>,

    /// Reload a component when its file is replaced (SIGHUP always reloads every component).
    #[arg(long, env = "WASM_HANDLER_WATCH", default_value_t = true, action = clap::ArgAction::Set)]
    watch: bool,

    /// Where compiled components are kept, by digest and engine [default: <temp dir>/wasm-handler-cache].
    #[arg(long, env = "WASM_HANDLER_CACHE_DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,

    /// Compile every component at start-up instead of caching the result.
    #[arg(long, env = "WASM_HANDLER_NO_CACHE")]
    no_cache: bool,

    /// Address to listen on when FUNCTIONS_CUSTOMHANDLER_PORT is not set. When
    /// it is (as under `func start` and in Azure), the handler listens on
    /// 127.0.0.1 at that port.
    #[arg(long, env = "WASM_HANDLER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Log line format.
    #[arg(long, env = "WASM_HANDLER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// How long in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "WASM_HANDLER_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,

    /// Memory a pool slot keeps resident between instances (e.g. 256KiB): a
    /// guest that touches more faults pages in again on its next request;
    /// each slot may hold this much RSS (at most 64KiB before Linux 6.7).
    #[arg(long, env = "WASM_HANDLER_KEEP_RESIDENT", default_value = engine::DEFAULT_KEEP_RESIDENT, value_parser = parse_size)]
    keep_resident: u64,

    #[command(flatten)]
    per_component: ComponentLimitOptions,

    #[command(flatten)]
    reuse: ReuseOptions,

    #[command(flatten)]
    limits: LimitOptions,

    #[command(flatten)]
    grants: GrantOptions,
}

/// What one request may cost.
#[derive(Debug, clap::Args)]
struct LimitOptions {
    /// Longest a guest may run for one request, body included; past it, 504.
    #[arg(long, env = "WASM_HANDLER_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,

    /// Guest instances alive at once; past it, 503 with Retry-After.
    #[arg(long, env = "WASM_HANDLER_MAX_INSTANCES", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_instances: u32,

    /// Largest linear memory of one instance (e.g. 128MiB); past it the guest's allocation fails.
    #[arg(long, env = "WASM_HANDLER_MAX_MEMORY", default_value = "128MiB", value_parser = parse_size)]
    max_memory: u64,

    /// Largest request body; past it, 413.
    #[arg(long, env = "WASM_HANDLER_MAX_REQUEST_BODY", default_value = "10MiB", value_parser = parse_size)]
    max_request_body: u64,

    /// Largest request header section; past it, 431.
    #[arg(long, env = "WASM_HANDLER_MAX_HEADER_SIZE", default_value = "32KiB", value_parser = parse_size)]
    max_header_size: u64,

    /// Longest a client may take to send its request head; then the connection is closed.
    #[arg(long, env = "WASM_HANDLER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    header_read_timeout: Duration,

    /// Longest a payload-mode invocation envelope may take to arrive in full; past it, 408.
    #[arg(long, env = "WASM_HANDLER_BODY_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    body_read_timeout: Duration,
}

/// What one component may hold in its pool slot (see
/// [`engine::ComponentLimits`]); a component past one is refused when it
/// loads, naming the option here that raises it. The names are those of
/// wasmtime's pooling allocator (and `wasmtime serve -O pooling-...`).
#[derive(Debug, clap::Args)]
struct ComponentLimitOptions {
    /// Core module instances one component may hold.
    #[arg(long, env = "WASM_HANDLER_MAX_CORE_INSTANCES_PER_COMPONENT", default_value_t = engine::ComponentLimits::default().core_instances, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_core_instances_per_component: u32,

    /// Tables one component may hold.
    #[arg(long, env = "WASM_HANDLER_MAX_TABLES_PER_COMPONENT", default_value_t = engine::ComponentLimits::default().tables, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_tables_per_component: u32,

    /// Linear memories one component may hold.
    #[arg(long, env = "WASM_HANDLER_MAX_MEMORIES_PER_COMPONENT", default_value_t = engine::ComponentLimits::default().memories, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    max_memories_per_component: u32,
}

/// Instance reuse, for the routes whose owners choose it: an instance then
/// serves request after request, and state in its memory survives from one
/// caller to the next. The names and defaults are those of `wasmtime serve`.
#[derive(Debug, clap::Args)]
struct ReuseOptions {
    /// Requests one instance serves, one after another, before it is dropped
    /// (1: a fresh instance per request).
    #[arg(long, env = "WASM_HANDLER_MAX_INSTANCE_REUSE_COUNT", default_value_t = Reuse::FRESH.max_requests, value_parser = clap::value_parser!(u32).range(1..))]
    max_instance_reuse_count: u32,

    /// Requests one 0.3 instance serves at once, inside one event loop, when
    /// it is reused (1: one at a time). A 0.2 instance always serves one at
    /// a time. Concurrent requests share one memory, and the guest's output
    /// can no longer be told apart per request (it is logged per instance).
    #[arg(long, env = "WASM_HANDLER_MAX_INSTANCE_CONCURRENT_REUSE_COUNT", default_value_t = Reuse::FRESH.max_concurrent, value_parser = clap::value_parser!(u32).range(1..))]
    max_instance_concurrent_reuse_count: u32,

    /// How long a reused instance waits for its next request before it is dropped.
    #[arg(long, env = "WASM_HANDLER_IDLE_INSTANCE_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    idle_instance_timeout: Duration,
}

/// What guests may reach beyond the proxy world; nothing by default.
#[derive(Debug, clap::Args)]
struct GrantOptions {
    /// An environment variable of this process the guest may read (repeatable).
    #[arg(
        long = "allow-env",
        value_name = "NAME",
        env = "WASM_HANDLER_ALLOW_ENV",
        value_delimiter = ','
    )]
    env: Vec<String>,

    /// An authority (`host` or `host:port`) the guest may call over HTTP (repeatable).
    #[arg(
        long = "allow-outgoing-http",
        value_name = "AUTHORITY",
        env = "WASM_HANDLER_ALLOW_OUTGOING_HTTP",
        value_delimiter = ','
    )]
    outgoing_http: Vec<String>,
}

impl ServeCommand {
    /// Runs the server until a shutdown signal, then drains and returns.
    pub(crate) fn execute(self) -> wasmtime::Result<()> {
        // Dropped last, after the runtime: the shutdown's own lines get out too.
        let _console = logging::init(self.log_format)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting tokio")?;
        runtime.block_on(self.serve())
    }

    async fn serve(self) -> wasmtime::Result<()> {
        let address = listen_address(self.listen)?;
        let limits = self.limits.to_limits()?;
        let telemetry = Telemetry::from_env(&tokio::runtime::Handle::current())?;
        let app = function_app(self.function_app.as_deref());
        if let Some(app) = &app {
            check_deadline_against_function_timeout(limits.request_timeout, app)?;
        }
        let grants = Grants::from_allowlists(&self.grants.env, &self.grants.outgoing_http)?;
        let engines = engine::build(EngineLimits {
            max_instances: limits.max_instances,
            max_memory_bytes: limits.max_memory_bytes,
            keep_resident_bytes: usize::try_from(self.keep_resident)
                .context("--keep-resident is larger than this machine's address space")?,
            per_component: self.per_component.to_limits(),
        })?;
        let cache_dir = match (self.no_cache, self.cache_dir) {
            (true, _) => None,
            (false, Some(dir)) => Some(dir),
            (false, None) => Some(std::env::temp_dir().join("wasm-handler-cache")),
        };
        let loader = Arc::new(Loader::new(&engines, cache_dir)?);
        let dispatcher = Arc::new(Dispatcher::new(
            Arc::new(grants),
            limits.max_memory_bytes,
            limits.request_timeout,
        ));
        let reuse = self.reuse.to_reuse();
        let routes: Vec<RouteSpec> = self
            .component
            .into_iter()
            .map(|path| RouteArg {
                prefix: "/".to_owned(),
                path,
                max_requests: None,
                max_concurrent: None,
                idle_timeout: None,
            })
            .chain(self.routes)
            .map(|route| route.with_default(reuse))
            .collect();
        let registry = Arc::new(Registry::load(&routes, &loader, &dispatcher).await?);
        let _reloader = reload::start(registry.clone(), loader, dispatcher.clone(), self.watch)?;
        reuse::expire_idle_instances(&registry);

        // Bind only once every guest is loaded: the Functions host takes any
        // answer on the port as "ready".
        let listener = server::bind(address)?;
        for route in registry.routes() {
            let guest = route.current();
            tracing::info!(
                prefix = route.prefix(),
                component = %route.path().display(),
                world = guest.world(),
                digest = guest.digest(),
                origin = %guest.origin(),
                instances = %guest.reuse(),
                "Serving component"
            );
        }
        tracing::info!("Listening on http://{}", listener.local_addr()?);
        let payload = payload_functions(app.as_ref());
        let handler = Arc::new(Handler::new(registry, limits.clone(), dispatcher, payload));
        let signalled = Arc::new(OnceLock::new());
        let shutdown = {
            let signalled = signalled.clone();
            async move {
                server::shutdown_signal().await;
                let _ = signalled.set(Instant::now());
            }
        };
        let served = server::run(listener, handler, &limits, shutdown, self.shutdown_grace).await;
        // What is left of the grace period flushes the spans of the last requests.
        let left = signalled
            .get()
            .map_or(self.shutdown_grace, |at: &Instant| {
                self.shutdown_grace.saturating_sub(at.elapsed())
            })
            .max(MIN_FLUSH);
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown(left)).await;
        served
    }
}

impl LimitOptions {
    pub(super) fn to_limits(&self) -> wasmtime::Result<Limits> {
        let max_memory_bytes = usize::try_from(self.max_memory)?;
        wasmtime::ensure!(
            ((1 << 16)..=(4 << 30)).contains(&max_memory_bytes),
            "--max-memory must be between 64KiB and 4GiB"
        );
        Ok(Limits {
            request_timeout: self.request_timeout,
            max_instances: self.max_instances,
            max_memory_bytes,
            max_request_body_bytes: self.max_request_body,
            max_header_bytes: usize::try_from(self.max_header_size)?,
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
        })
    }
}

impl ReuseOptions {
    fn to_reuse(&self) -> Reuse {
        Reuse {
            max_requests: self.max_instance_reuse_count,
            max_concurrent: self.max_instance_concurrent_reuse_count,
            idle_timeout: self.idle_instance_timeout,
        }
    }
}

impl ComponentLimitOptions {
    fn to_limits(&self) -> engine::ComponentLimits {
        engine::ComponentLimits {
            core_instances: self.max_core_instances_per_component,
            tables: self.max_tables_per_component,
            memories: self.max_memories_per_component,
        }
    }
}

/// The function app in `app_root` (default: the working directory), or
/// `None` without a `host.json` or with one the Functions host could not read
/// either: then only forwarded requests are served.
fn function_app(app_root: Option<&std::path::Path>) -> Option<AppConfig> {
    let app_root = app_root.unwrap_or(std::path::Path::new("."));
    if !app_root.join("host.json").is_file() {
        tracing::debug!(app_root = %app_root.display(), "No host.json: serving forwarded requests only");
        return None;
    }
    match AppConfig::load(app_root) {
        Ok(app) => Some(app),
        Err(error) => {
            tracing::warn!(%error, "Cannot read the function app; serving forwarded requests only");
            None
        }
    }
}

/// The app's payload-mode functions.
fn payload_functions(app: Option<&AppConfig>) -> PayloadFunctions {
    let Some(app) = app else {
        return PayloadFunctions::default();
    };
    let functions = PayloadFunctions::of(app);
    for name in functions.names() {
        tracing::info!(
            function = name,
            "Serving payload-mode invocations at /{name}"
        );
    }
    functions
}

/// The Functions host answers 500 at `functionTimeout` and then kills the
/// handler, failing every request in flight on it (azure-functions-host
/// `src/WebJobs.Script.WebHost/WebScriptHostExceptionHandler.cs`): the
/// handler's own deadline must come first, so that a slow guest costs its
/// request a 504 and nothing else. The timeout is the one the host enforces
/// on this plan (`src/WebJobs.Script/Config/ScriptJobHostOptionsSetup.cs`).
fn check_deadline_against_function_timeout(
    request_timeout: Duration,
    app: &AppConfig,
) -> wasmtime::Result<()> {
    let plan = HostingPlan::of_this_process();
    let function_timeout = match plan.function_timeout(app.host.function_timeout) {
        Ok(Some(timeout)) => timeout,
        // No limit, or a setting the host itself refuses to start with.
        Ok(None) | Err(_) => return Ok(()),
    };
    wasmtime::ensure!(
        request_timeout < function_timeout,
        "--request-timeout ({}) is not below the functionTimeout the Functions host enforces \
         ({} on this {plan:?} plan), which it enforces by killing the handler with every request \
         in flight: lower --request-timeout (WASM_HANDLER_REQUEST_TIMEOUT) or raise \
         functionTimeout in host.json",
        humantime::format_duration(request_timeout),
        timespan(function_timeout),
    );
    Ok(())
}

/// `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` when the Functions host set it, else `fallback`.
fn listen_address(fallback: SocketAddr) -> wasmtime::Result<SocketAddr> {
    for name in [protocol::PORT_ENV, protocol::LEGACY_PORT_ENV] {
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

/// A `--route` as given: its reuse options override the global ones.
#[derive(Debug, Clone)]
struct RouteArg {
    prefix: String,
    path: PathBuf,
    max_requests: Option<u32>,
    max_concurrent: Option<u32>,
    idle_timeout: Option<Duration>,
}

impl RouteArg {
    fn with_default(self, reuse: Reuse) -> RouteSpec {
        RouteSpec {
            prefix: self.prefix,
            path: self.path,
            reuse: Reuse {
                max_requests: self.max_requests.unwrap_or(reuse.max_requests),
                max_concurrent: self.max_concurrent.unwrap_or(reuse.max_concurrent),
                idle_timeout: self.idle_timeout.unwrap_or(reuse.idle_timeout),
            },
        }
    }
}

/// `PREFIX=PATH`, then any of `;max-instance-reuse-count=N`,
/// `;max-instance-concurrent-reuse-count=M` and `;idle-instance-timeout=DURATION`.
fn parse_route(text: &str) -> Result<RouteArg, String> {
    let mut parts = text.split(';');
    let route = parts.next().unwrap_or_default();
    let (prefix, path) = route
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not PREFIX=PATH"))?;
    if !prefix.starts_with('/') || path.is_empty() {
        return Err(format!(
            "{text:?} is not PREFIX=PATH with a prefix starting with /"
        ));
    }
    let mut route = RouteArg {
        prefix: prefix.to_owned(),
        path: PathBuf::from(path),
        max_requests: None,
        max_concurrent: None,
        idle_timeout: None,
    };
    let count = |option: &str, value: &str| {
        value
            .trim()
            .parse()
            .ok()
            .filter(|count| *count >= 1)
            .ok_or_else(|| format!("{option:?}: a count of 1 or more"))
    };
    for option in parts {
        let (name, value) = option
            .split_once('=')
            .ok_or_else(|| format!("{option:?} in {text:?} is not OPTION=VALUE"))?;
        match name.trim() {
            "max-instance-reuse-count" => route.max_requests = Some(count(option, value)?),
            "max-instance-concurrent-reuse-count" => {
                route.max_concurrent = Some(count(option, value)?)
            }
            "idle-instance-timeout" => {
                route.idle_timeout = Some(
                    humantime::parse_duration(value.trim())
                        .map_err(|error| format!("{option:?}: {error}"))?,
                )
            }
            other => {
                return Err(format!(
                    "unknown route option {other:?} in {text:?}: use max-instance-reuse-count, max-instance-concurrent-reuse-count or idle-instance-timeout"
                ));
            }
        }
    }
    Ok(route)
}

/// A size in bytes: a number with an optional unit, `B`, `KiB`, `MiB` or `GiB`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 512KiB or 10MiB"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        other => return Err(format!("unknown unit {other:?}: use B, KiB, MiB or GiB")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_take_their_own_reuse_options() {
        let global = Reuse {
            max_requests: 4,
            max_concurrent: 1,
            idle_timeout: Duration::from_secs(1),
        };
        let plain = parse_route("/api=app.wasm")
            .expect("a route")
            .with_default(global);
        assert_eq!(
            (plain.prefix.as_str(), plain.path.to_str(), plain.reuse),
            ("/api", Some("app.wasm"), global)
        );
        let own = parse_route(
            "/api=app.wasm;max-instance-reuse-count=64; idle-instance-timeout=250ms;max-instance-concurrent-reuse-count=16",
        )
        .expect("a route with options")
        .with_default(global);
        assert_eq!(
            own.reuse,
            Reuse {
                max_requests: 64,
                max_concurrent: 16,
                idle_timeout: Duration::from_millis(250),
            }
        );
        for bad in [
            "api=app.wasm",
            "/api=",
            "/api=app.wasm;max-instance-reuse-count=0",
            "/api=app.wasm;idle-instance-timeout=soon",
            "/api=app.wasm;reuse",
            "/api=app.wasm;max-instance-concurrent-reuse-count=0",
            "/api=app.wasm;max-instance-concurrent-requests=4",
        ] {
            assert!(parse_route(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("10 MiB"), Ok(10 << 20));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert!(parse_size("10MB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
