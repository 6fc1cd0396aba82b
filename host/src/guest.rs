//! The guest: a wasi:http component loaded from a file (compiled, cached or
//! precompiled, see [`crate::artifact`]), type-checked against the host's
//! world and pre-instantiated, so a request only has to make a fresh
//! instance from it.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime::error::Context as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::artifact::{Artifacts, Origin};
use crate::sandbox::Sandbox;

/// One loaded version of a component, pre-instantiated.
pub struct Guest {
    pre: ProxyPre<Sandbox>,
    digest: String,
    origin: Origin,
    path: PathBuf,
}

impl Guest {
    /// The pre-instantiated component.
    pub fn pre(&self) -> &ProxyPre<Sandbox> {
        &self.pre
    }

    /// `sha256:<hex>` of the component, the version that serves a request.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Where its code came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Loads guests for one engine: the artifacts and the linker every guest shares.
pub struct Loader {
    engine: Engine,
    linker: Linker<Sandbox>,
    artifacts: Artifacts,
}

impl Loader {
    /// A loader for `engine`, caching compiled output in `cache_dir` if given.
    pub fn new(engine: &Engine, cache_dir: Option<PathBuf>) -> wasmtime::Result<Self> {
        Ok(Self {
            engine: engine.clone(),
            linker: linker(engine)?,
            artifacts: Artifacts::new(engine, cache_dir),
        })
    }

    /// The engine guests are loaded into.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads, links and pre-instantiates the component at `path`. Fails with
    /// the reason when the file is missing, is not a component, or does not
    /// export `wasi:http/incoming-handler` with imports the host offers.
    pub fn load(&self, path: &Path) -> wasmtime::Result<Guest> {
        let loaded = self.artifacts.load(path)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&loaded.component)
            .with_context(|| {
                format!(
                    "{} imports something this host does not provide",
                    path.display()
                )
            })?;
        let pre = ProxyPre::new(instance_pre).with_context(|| {
            format!(
                "{} does not export wasi:http/incoming-handler@0.2",
                path.display()
            )
        })?;
        Ok(Guest {
            pre,
            digest: loaded.digest,
            origin: loaded.origin,
            path: path.to_owned(),
        })
    }
}

/// The interfaces a guest may import: WASI 0.2 (the CLI interfaces that Rust
/// std uses, with no files, sockets or environment granted at run time, see
/// [`Sandbox`]) and wasi:http.
fn linker(engine: &Engine) -> wasmtime::Result<Linker<Sandbox>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("linking WASI")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .context("linking wasi:http")?;
    Ok(linker)
}
