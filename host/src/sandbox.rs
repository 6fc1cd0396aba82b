//! What one guest instance is given, and nothing more.
//!
//! By default: the WASI interfaces Rust std uses, with no environment
//! variables, arguments, files, sockets or name lookups; wasi:http with every
//! outgoing request refused; a linear memory capped at the configured size;
//! and its stdout and stderr, which become log events. [`Grants`] open
//! exactly two things, each by name: environment variables and outgoing HTTP
//! authorities.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::console::Stdio;
use crate::guest_output::{GuestOutput, Outlet};
use crate::telemetry::ClientSpan;

/// Most table elements one instance may have (the pooling allocator's default).
const MAX_TABLE_ELEMENTS: usize = 20_000;

/// What the operator opened up for every guest, read once at start-up.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    /// Environment variables the guest sees, name and value.
    env: Vec<(String, String)>,
    /// The authorities the guest may call over HTTP.
    outgoing_http: Vec<GrantedAuthority>,
}

/// An authority a guest may call: a host (lower case) and a port, or the
/// scheme's default port when none is given.
#[derive(Debug)]
struct GrantedAuthority {
    host: String,
    port: Option<u16>,
}

impl Grants {
    /// Grants from allowlists. Each allowed variable is read from this
    /// process's environment now (an unset one is skipped with a warning);
    /// each authority is `host` or `host:port`.
    pub(crate) fn from_allowlists(
        env_names: &[String],
        authorities: &[String],
    ) -> wasmtime::Result<Self> {
        let env = env_names
            .iter()
            .filter_map(|name| match std::env::var(name) {
                Ok(value) => Some((name.clone(), value)),
                Err(_) => {
                    tracing::warn!(
                        name = name.as_str(),
                        "An allowed environment variable is not set"
                    );
                    None
                }
            })
            .collect();
        let outgoing_http = authorities
            .iter()
            .map(|entry| {
                let authority: http::uri::Authority = entry
                    .trim()
                    .parse()
                    .map_err(|_| wasmtime::format_err!("{entry:?} is not a host or host:port"))?;
                Ok(GrantedAuthority {
                    host: authority.host().to_ascii_lowercase(),
                    port: authority.port_u16(),
                })
            })
            .collect::<wasmtime::Result<_>>()?;
        Ok(Self { env, outgoing_http })
    }

    /// Whether a request to `authority` over `scheme` is granted.
    fn allows(&self, scheme: Option<&http::uri::Scheme>, authority: &http::uri::Authority) -> bool {
        let default_port = if scheme == Some(&http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        };
        let port = authority.port_u16().unwrap_or(default_port);
        self.outgoing_http.iter().any(|granted| {
            granted.host.eq_ignore_ascii_case(authority.host())
                && granted.port.unwrap_or(default_port) == port
        })
    }
}

/// The data of one request's `Store`.
pub(crate) struct Sandbox {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outgoing_http: OutgoingHttp,
    limiter: MemoryLimiter,
    outlet: Outlet,
}

impl Sandbox {
    /// A fresh sandbox: `grants` opened, memory capped at `max_memory_bytes`,
    /// output to `output`.
    pub(crate) fn new(output: &GuestOutput, grants: &Arc<Grants>, max_memory_bytes: usize) -> Self {
        let outlet = Outlet::to(output);
        let wasi = WasiCtx::builder()
            .stdout(outlet.stream(Stdio::Stdout))
            .stderr(outlet.stream(Stdio::Stderr))
            .envs(&grants.env)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outgoing_http: OutgoingHttp {
                grants: grants.clone(),
                outlet: outlet.clone(),
            },
            limiter: MemoryLimiter {
                max_bytes: max_memory_bytes,
                denied: false,
            },
            outlet,
        }
    }

    /// Where the guest's output goes: a reused instance's is connected to
    /// each request's output in turn.
    pub(crate) fn outlet(&self) -> &Outlet {
        &self.outlet
    }

    /// The limiter to install with `Store::limiter`.
    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    /// Whether the guest asked for more memory than its cap allows.
    pub(crate) fn memory_limit_hit(&self) -> bool {
        self.limiter.denied
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Sandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing_http,
        }
    }
}

/// Caps linear memory and remembers a refusal, so that the trap which
/// usually follows (Rust aborts when an allocation fails) is reported as
/// "memory limit", not as a bug.
struct MemoryLimiter {
    max_bytes: usize,
    denied: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes;
        self.denied |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Outgoing HTTP: refused with `HTTP-request-denied` unless the authority
/// is granted; a granted request is traced as a child of the request the
/// instance serves now (the outlet knows which), and carries its context.
struct OutgoingHttp {
    grants: Arc<Grants>,
    outlet: Outlet,
}

type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutgoingHttp {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> ResponseFuture {
        let allowed = request
            .uri()
            .authority()
            .is_some_and(|authority| self.grants.allows(request.uri().scheme(), authority));
        let authority = request
            .uri()
            .authority()
            .map(ToString::to_string)
            .unwrap_or_default();
        if !allowed {
            // The authority only: a path or query may carry secrets.
            tracing::warn!(
                authority = authority.as_str(),
                "Refused an outgoing HTTP request to an authority not granted"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        tracing::debug!(authority = authority.as_str(), "Outgoing HTTP request");
        let mut span = match self.outlet.trace() {
            Some(trace) => trace.outgoing(&mut request),
            None => ClientSpan::none(),
        };
        Box::new(async move {
            use http_body_util::BodyExt;
            let sent = wasmtime_wasi_http::default_send_request(request, options).await;
            match &sent {
                Ok((response, _)) => span.responded(response.status()),
                Err(error) => span.failed(error),
            }
            let (response, io) = sent?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(authorities: &[&str]) -> Grants {
        let authorities: Vec<String> = authorities.iter().map(|a| a.to_string()).collect();
        Grants::from_allowlists(&[], &authorities).expect("valid authorities")
    }

    fn allows(grants: &Grants, uri: &str) -> bool {
        let uri: http::Uri = uri.parse().expect("a URI");
        grants.allows(uri.scheme(), uri.authority().expect("an authority"))
    }

    #[test]
    fn authorities_match_host_and_port() {
        let grants = grants(&["api.example.com", "127.0.0.1:8081", "[::1]:9000"]);
        assert!(allows(&grants, "https://API.example.com/x"));
        assert!(allows(&grants, "http://api.example.com/x"));
        assert!(allows(&grants, "https://api.example.com:443/x"));
        assert!(
            !allows(&grants, "https://api.example.com:8443/x"),
            "no port: default port only"
        );
        assert!(allows(&grants, "http://127.0.0.1:8081/"));
        assert!(!allows(&grants, "http://127.0.0.1:8082/"));
        assert!(!allows(&grants, "http://127.0.0.1/"));
        assert!(allows(&grants, "http://[::1]:9000/"));
        assert!(!allows(&grants, "http://evil.example.com/"));
        assert!(
            !allows(&super::Grants::default(), "https://api.example.com/"),
            "nothing by default"
        );
        assert!(Grants::from_allowlists(&[], &["not a host".to_owned()]).is_err());
    }

    #[test]
    fn memory_limiter_refuses_and_remembers() {
        let mut limiter = MemoryLimiter {
            max_bytes: 1 << 20,
            denied: false,
        };
        assert!(limiter.memory_growing(0, 1 << 20, None).expect("no error"));
        assert!(!limiter.denied);
        assert!(
            !limiter
                .memory_growing(1 << 20, 2 << 20, None)
                .expect("no error")
        );
        assert!(limiter.denied);
    }
}
