//! The guest: a wasi:http component loaded from a file, type-checked against
//! the host's world and pre-instantiated, so a request only has to make a
//! fresh instance from it.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime::error::Context as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::sandbox::Sandbox;

/// A loaded, pre-instantiated guest component.
pub struct Guest {
    pre: ProxyPre<Sandbox>,
    digest: String,
    path: PathBuf,
}

impl Guest {
    /// Reads, compiles, links and pre-instantiates the component at `path`.
    /// Fails with the reason when the file is missing, is not a component, or
    /// does not export `wasi:http/incoming-handler` with imports the host offers.
    pub fn load(engine: &Engine, path: &Path) -> wasmtime::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the component {}", path.display()))?;
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        let component = Component::new(engine, &bytes)
            .with_context(|| format!("{} is not a valid WebAssembly component", path.display()))?;
        let linker = linker(engine)?;
        let instance_pre = linker.instantiate_pre(&component).with_context(|| {
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
        Ok(Self {
            pre,
            digest,
            path: path.to_owned(),
        })
    }

    /// The pre-instantiated component.
    pub fn pre(&self) -> &ProxyPre<Sandbox> {
        &self.pre
    }

    /// SHA-256 of the component file, `sha256:<hex>`.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Where the component was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
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
