//! A component version: a wasi:http component loaded from a file (compiled,
//! cached or precompiled, see [`crate::artifact`]), type-checked against one
//! of the host's two worlds and pre-instantiated, so a request only has to
//! make a fresh instance from it.
//!
//! The worlds: `wasi:http/incoming-handler@0.2` (WASI 0.2) and
//! `wasi:http/handler@0.3.0` (WASI 0.3, what wasmtime 48 and Spin 4 make by
//! default). A component exporting both is served as 0.3, as `wasmtime serve`
//! 48 does (`ServicePre` first, `src/commands/serve.rs`).

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime::error::Context as _;
use wasmtime_wasi_http::handler::ProxyPre;
use wasmtime_wasi_http::{p2, p3};

use crate::artifact::{Artifacts, Origin};
use crate::engine::{Concurrency, Engines};
use crate::reuse::{IdleInstances, Reuse};
use crate::sandbox::Sandbox;
use crate::shared::SharedInstances;

/// One loaded version of a component, pre-instantiated, with its idle
/// instances when its route reuses them.
pub(crate) struct ComponentVersion {
    pre: ProxyPre<Sandbox>,
    engine: Engine,
    digest: String,
    origin: Origin,
    idle: IdleInstances,
    shared: SharedInstances,
}

impl ComponentVersion {
    /// The pre-instantiated component.
    pub(crate) fn pre(&self) -> &ProxyPre<Sandbox> {
        &self.pre
    }

    /// The engine it was compiled for.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The wasi:http world it serves, as the log names it.
    pub(crate) fn world(&self) -> &'static str {
        match self.pre {
            ProxyPre::P2(_) => "wasi:http/incoming-handler@0.2",
            ProxyPre::P3(_) => "wasi:http/handler@0.3.0",
        }
    }

    /// `sha256:<hex>` of the component, the version that serves a request.
    pub(crate) fn digest(&self) -> &str {
        &self.digest
    }

    /// Where its code came from.
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Its instances between requests.
    pub(crate) fn idle(&self) -> &IdleInstances {
        &self.idle
    }

    /// Its 0.3 instances that serve requests concurrently.
    pub(crate) fn shared(&self) -> &SharedInstances {
        &self.shared
    }

    /// How its instances are reused: as its route allows, but one request
    /// at a time for a 0.2 component, which cannot take more.
    pub(crate) fn reuse(&self) -> Reuse {
        match self.pre {
            ProxyPre::P2(_) => Reuse {
                max_concurrent: 1,
                ..self.idle.reuse()
            },
            ProxyPre::P3(_) if self.shared.enabled() => self.shared.reuse(),
            ProxyPre::P3(_) => self.idle.reuse(),
        }
    }

    /// This version, its instances reused as `reuse` allows: one at a time
    /// ([`IdleInstances`]), or, for a 0.3 component allowed more, several at
    /// once ([`SharedInstances`]).
    pub(crate) fn with_reuse(self, reuse: Reuse) -> Self {
        let shared = matches!(self.pre, ProxyPre::P3(_)) && reuse.concurrent();
        Self {
            idle: IdleInstances::new(if shared { Reuse::FRESH } else { reuse }),
            shared: SharedInstances::new(reuse, shared),
            ..self
        }
    }

    /// No instance of this version serves a new request: idle ones are
    /// dropped now, busy ones when their requests are done.
    pub(crate) fn retire(&self) {
        self.idle.retire();
        self.shared.retire();
    }
}

/// Loads component versions for the host's engines: the artifacts and the
/// linker of each engine, which every version on it shares.
pub(crate) struct Loader {
    linkers: [Linker<Sandbox>; 2],
    artifacts: Artifacts,
}

impl Loader {
    /// A loader for `engines`, caching compiled output in `cache_dir` if given.
    pub(crate) fn new(engines: &Engines, cache_dir: Option<PathBuf>) -> wasmtime::Result<Self> {
        let [(off, without), (on, with)] = engines.in_order();
        Ok(Self {
            linkers: [linker(without, off)?, linker(with, on)?],
            artifacts: Artifacts::new(engines, cache_dir),
        })
    }

    /// The linker of the engine `component` was compiled for.
    fn linker_for(&self, engine: &Engine) -> &Linker<Sandbox> {
        self.linkers
            .iter()
            .find(|linker| Engine::same(linker.engine(), engine))
            .expect("components are compiled for the loader's engines")
    }

    /// Loads, links and pre-instantiates the component at `path`. Fails with
    /// the reason when the file is missing, is not a component, or does not
    /// export `wasi:http/incoming-handler` with imports the host offers.
    pub(crate) fn load(&self, path: &Path) -> wasmtime::Result<ComponentVersion> {
        let loaded = self
            .artifacts
            .load(path)
            .map_err(|error| with_pool_limit_named(error, path))?;
        let instance_pre = self
            .linker_for(loaded.component.engine())
            .instantiate_pre(&loaded.component)
            .with_context(|| {
                format!(
                    "{} imports something this host does not provide",
                    path.display()
                )
            })?;
        let pre = match p3::bindings::ServicePre::new(instance_pre.clone()) {
            Ok(pre) => ProxyPre::P3(pre),
            Err(_) => ProxyPre::P2(p2::bindings::ProxyPre::new(instance_pre).with_context(|| {
                format!(
                    "{} exports neither wasi:http/incoming-handler@0.2 nor wasi:http/handler@0.3.0",
                    path.display()
                )
            })?),
        };
        Ok(ComponentVersion {
            pre,
            engine: loaded.component.engine().clone(),
            digest: loaded.digest,
            origin: loaded.origin,
            idle: IdleInstances::new(Reuse::FRESH),
            shared: SharedInstances::new(Reuse::FRESH, false),
        })
    }
}

/// `error` from loading `path`, with the option that raises the pool limit
/// it reports, when it reports one.
fn with_pool_limit_named(error: wasmtime::Error, path: &Path) -> wasmtime::Error {
    match crate::engine::pool_limit_hint(&error) {
        Some(option) => error.context(format!(
            "{} does not fit a slot of the instance pool: raise the limit with {option}",
            path.display()
        )),
        None => error,
    }
}

/// The interfaces a guest may import: the CLI interfaces, with no files,
/// sockets or environment granted at run time (see [`Sandbox`]), and
/// wasi:http. WASI 0.2's on both engines (a 0.3 component built by Rust std
/// also imports them), WASI 0.3's on the engine that can run them: its
/// interfaces pass streams and futures.
fn linker(engine: &Engine, concurrency: Concurrency) -> wasmtime::Result<Linker<Sandbox>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("linking WASI 0.2")?;
    p2::add_only_http_to_linker_async(&mut linker).context("linking wasi:http 0.2")?;
    if concurrency == Concurrency::On {
        wasmtime_wasi::p3::add_to_linker(&mut linker).context("linking WASI 0.3")?;
        p3::add_to_linker(&mut linker).context("linking wasi:http 0.3")?;
    }
    Ok(linker)
}
