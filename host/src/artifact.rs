//! Compiled components on disk.
//!
//! A `.wasm` is compiled with the first of the host's engines that can
//! compile it (see [`crate::engine`]), or loaded precompiled from: the
//! `.cwasm` beside it, when its sidecar (`.cwasm.json`) names this very
//! `.wasm` (by digest) and one of the engines; else the cache directory,
//! where compiled output is kept under the component's digest and the
//! engine's compatibility hash. A `.cwasm` can also be served directly.
//!
//! Precompiled code is native code, so it is only loaded when wasmtime
//! recognises it and accepts its version and configuration; anything else is
//! refused (or recompiled from the `.wasm` beside it). Files are written to a
//! temporary name and renamed into place, so a file that wasmtime has mapped
//! is never overwritten; artifacts that are not ours (a `.cwasm` an operator
//! dropped in) are read into memory rather than mapped, so replacing them in
//! place cannot pull code out from under a running instance.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use wasmtime::error::Context as _;
use wasmtime::{Engine, Precompiled, component::Component};

use crate::engine::{Concurrency, CpuFeatures, Engines, pool_limit_hint};

/// Where a loaded component's code came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Compiled at load time.
    Compiled,
    /// The cache directory.
    Cache,
    /// A precompiled `.cwasm` (beside the `.wasm`, or given directly).
    Precompiled(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Compiled => f.write_str("compiled"),
            Origin::Cache => f.write_str("cache"),
            Origin::Precompiled(path) => write!(f, "precompiled {}", path.display()),
        }
    }
}

/// A component ready to link, and its identity.
pub(crate) struct Loaded {
    /// The compiled component.
    pub(crate) component: Component,
    /// `sha256:<hex>` of the `.wasm` it was compiled from (of the `.cwasm`
    /// itself when no sidecar names the source).
    pub(crate) digest: String,
    /// Where its code came from.
    pub(crate) origin: Origin,
}

/// The sidecar `compile` writes beside a `.cwasm`.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    /// Digest of the `.wasm` the artifact was compiled from.
    source: String,
    /// The engine it was compiled for (see [`engine_id`]).
    engine: String,
}

/// Loads and writes compiled components for the host's engines.
pub(crate) struct Artifacts {
    /// In [`Concurrency::IN_ORDER`].
    targets: [Target; 2],
    cache_dir: Option<PathBuf>,
}

/// One engine and the ids of the code it loads.
struct Target {
    concurrency: Concurrency,
    engine: Engine,
    id: String,
    /// The id of the same engine compiling for the baseline CPU, worked out
    /// only when a sidecar names another engine than this one.
    baseline_id: OnceLock<Option<String>>,
}

impl Target {
    /// Whether code compiled by the engine `id` is for this one: compiled by
    /// it, or by it for the baseline CPU (which wasmtime checks against this CPU).
    fn can_load_code_for(&self, id: &str) -> bool {
        id == self.id
            || self
                .baseline_id
                .get_or_init(|| {
                    crate::engine::for_compiling_with(CpuFeatures::Baseline, self.concurrency)
                        .ok()
                        .map(|engine| engine_id(&engine))
                })
                .as_deref()
                == Some(id)
    }

    fn deserialize(&self, path: &Path, bytes: &[u8]) -> wasmtime::Result<Component> {
        // SAFETY: wasmtime recognised these bytes as its own precompiled
        // component and checks that its version and configuration match this
        // engine before using them. Operators ship `.cwasm` files made by
        // `wasm-handler compile`, as trusted as the host binary itself. The
        // bytes are copied in, not mapped, so the file may change afterwards.
        unsafe { Component::deserialize(&self.engine, bytes) }
            .with_context(|| format!("loading {}", path.display()))
    }

    fn cache_entry(&self, dir: &Path, digest: &str) -> PathBuf {
        dir.join(format!("{}-{}.cwasm", digest_hex(digest), self.id))
    }
}

impl Artifacts {
    /// Artifacts for `engines`, caching compiled output in `cache_dir` if given.
    pub(crate) fn new(engines: &Engines, cache_dir: Option<PathBuf>) -> Self {
        if let Some(dir) = &cache_dir {
            remove_stale_temporaries(dir);
        }
        Self {
            targets: engines.in_order().map(|(concurrency, engine)| Target {
                concurrency,
                engine: engine.clone(),
                id: engine_id(engine),
                baseline_id: OnceLock::new(),
            }),
            cache_dir,
        }
    }

    /// Loads the component at `path`, a `.wasm` or a precompiled `.cwasm`.
    pub(crate) fn load(&self, path: &Path) -> wasmtime::Result<Loaded> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the component {}", path.display()))?;
        match Engine::detect_precompiled(&bytes) {
            Some(Precompiled::Component) => self.load_precompiled_file(path, bytes),
            Some(Precompiled::Module) => {
                wasmtime::bail!(
                    "{} is a precompiled core module, not a component",
                    path.display()
                )
            }
            None => self.load_wasm(path, &bytes),
        }
    }

    /// Compiles `wasm` into `output` (and its sidecar), for the first engine
    /// that can compile it. Returns its digest and that engine's id.
    pub(crate) fn compile_to_file(
        &self,
        wasm: &Path,
        output: &Path,
    ) -> wasmtime::Result<(String, String)> {
        let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
        wasmtime::ensure!(
            Engine::detect_precompiled(&bytes).is_none(),
            "{} is already precompiled; give the .wasm",
            wasm.display()
        );
        let digest = digest(&bytes);
        let (target, serialized) = self.precompile(wasm, &bytes)?;
        write_atomically(output, &serialized)?;
        let sidecar = Sidecar {
            source: digest.clone(),
            engine: target.id.clone(),
        };
        write_atomically(
            &sidecar_path(output),
            serde_json::to_string_pretty(&sidecar)?.as_bytes(),
        )?;
        Ok((digest, sidecar.engine))
    }

    fn load_wasm(&self, path: &Path, bytes: &[u8]) -> wasmtime::Result<Loaded> {
        let digest = digest(bytes);
        if let Some(loaded) = self.load_beside(path, &digest)? {
            return Ok(loaded);
        }
        let cached = self.cache_dir.as_ref().and_then(|dir| {
            self.targets
                .iter()
                .map(|target| (target, target.cache_entry(dir, &digest)))
                .find(|(_, entry)| entry.is_file())
        });
        if let Some((target, cached)) = cached {
            // SAFETY: the cache holds only files this host wrote with
            // `Engine::precompile_component` and renamed into place; they are
            // never modified, and wasmtime checks version and configuration.
            match unsafe { Component::deserialize_file(&target.engine, &cached) } {
                Ok(component) => {
                    return Ok(Loaded {
                        component,
                        digest,
                        origin: Origin::Cache,
                    });
                }
                Err(error) if refused_by_pool(&error) => return Err(error),
                Err(error) => {
                    tracing::warn!(path = %cached.display(), error = %format!("{error:#}"), "Ignoring an unusable cache entry");
                }
            }
        }

        let (target, serialized) = self.precompile(path, bytes)?;
        if let Some(cached) = self
            .cache_dir
            .as_ref()
            .map(|dir| target.cache_entry(dir, &digest))
        {
            match write_atomically(&cached, &serialized) {
                // SAFETY: as above: written by this host just now, renamed into place.
                Ok(()) => match unsafe { Component::deserialize_file(&target.engine, &cached) } {
                    Ok(component) => {
                        return Ok(Loaded {
                            component,
                            digest,
                            origin: Origin::Compiled,
                        });
                    }
                    Err(error) if refused_by_pool(&error) => return Err(error),
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "Loading a fresh cache entry failed")
                    }
                },
                Err(error) => {
                    tracing::warn!(path = %cached.display(), error = %format!("{error:#}"), "Cannot write the compile cache");
                }
            }
        }
        // SAFETY: bytes this engine produced a moment ago.
        let component = unsafe { Component::deserialize(&target.engine, &serialized) }?;
        Ok(Loaded {
            component,
            digest,
            origin: Origin::Compiled,
        })
    }

    /// The `.cwasm` beside `wasm`, if its sidecar says it was compiled from
    /// this digest for one of the engines, and wasmtime accepts it.
    fn load_beside(&self, wasm: &Path, digest: &str) -> wasmtime::Result<Option<Loaded>> {
        let cwasm = wasm.with_extension("cwasm");
        let Some(sidecar) = read_sidecar(&cwasm) else {
            return Ok(None);
        };
        let target = (sidecar.source == digest)
            .then(|| self.target_for(&sidecar.engine))
            .flatten();
        let Some(target) = target else {
            tracing::info!(path = %cwasm.display(), "The precompiled artifact beside the component is for another build; compiling");
            return Ok(None);
        };
        let Ok(bytes) = std::fs::read(&cwasm) else {
            return Ok(None);
        };
        match target.deserialize(&cwasm, &bytes) {
            Ok(component) => Ok(Some(Loaded {
                component,
                digest: digest.to_owned(),
                origin: Origin::Precompiled(cwasm),
            })),
            Err(error) if refused_by_pool(&error) => Err(error),
            Err(error) => {
                tracing::warn!(path = %cwasm.display(), error = %format!("{error:#}"), "Ignoring the precompiled artifact beside the component");
                Ok(None)
            }
        }
    }

    /// A `.cwasm` given directly, loaded by the engine its sidecar names, or
    /// by the first that accepts it. If none can load it, the `.wasm` beside
    /// it is compiled instead; without one, it is refused.
    fn load_precompiled_file(&self, path: &Path, bytes: Vec<u8>) -> wasmtime::Result<Loaded> {
        let sidecar = read_sidecar(path);
        let named = sidecar
            .as_ref()
            .and_then(|sidecar| self.target_for(&sidecar.engine));
        let candidates = named.map_or(&self.targets[..], std::slice::from_ref);
        let mut loaded = candidates[0].deserialize(path, &bytes);
        for target in &candidates[1..] {
            // A pool's refusal is final: the other engine's pool is the same size.
            if loaded.as_ref().is_err_and(|error| !refused_by_pool(error)) {
                loaded = target.deserialize(path, &bytes);
            }
        }
        match loaded {
            Ok(component) => {
                let digest = sidecar.map_or_else(|| self::digest(&bytes), |sidecar| sidecar.source);
                Ok(Loaded {
                    component,
                    digest,
                    origin: Origin::Precompiled(path.to_owned()),
                })
            }
            Err(error) if refused_by_pool(&error) => Err(error),
            Err(error) => {
                let wasm = path.with_extension("wasm");
                if wasm.is_file() {
                    tracing::warn!(
                        path = %path.display(), error = %format!("{error:#}"),
                        "This precompiled artifact does not fit this host; compiling the .wasm beside it"
                    );
                    return self.load_wasm(&wasm, &std::fs::read(&wasm)?);
                }
                Err(error.context(format!(
                    "{} was precompiled by another wasmtime version or configuration; \
                     recompile it with `wasm-handler compile` or serve the .wasm",
                    path.display()
                )))
            }
        }
    }

    /// The engine that loads code compiled by the engine `id`, if one does.
    fn target_for(&self, id: &str) -> Option<&Target> {
        self.targets
            .iter()
            .find(|target| target.can_load_code_for(id))
    }

    /// Compiles `bytes` with the first engine that can: the one without
    /// concurrency support refuses a component that uses the async ABI when
    /// it validates it, before any code is generated. When both refuse, the
    /// reason is the last one's, the engine that accepts the most.
    fn precompile(&self, path: &Path, bytes: &[u8]) -> wasmtime::Result<(&Target, Vec<u8>)> {
        let mut refused = None;
        for target in &self.targets {
            match target.engine.precompile_component(bytes) {
                Ok(serialized) => return Ok((target, serialized)),
                Err(error) => refused = Some(error),
            }
        }
        Err(refused.expect("there are engines").context(format!(
            "{} is not a valid WebAssembly component",
            path.display()
        )))
    }
}

/// Identifies what a precompiled artifact must have been compiled for: this
/// wasmtime version and this engine configuration (hex of a SHA-256 of
/// wasmtime's compatibility hash).
pub(crate) fn engine_id(engine: &Engine) -> String {
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    format!("{:x}", hasher.0.finalize())[..16].to_owned()
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Temporary files older than this in the cache were left by a process
/// that was killed mid-write (the Functions host stops handlers with
/// SIGKILL); younger ones may be another process's write in progress.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes what killed writers left in `dir`: `*.tmp` files past
/// [`STALE_TEMPORARY`]. Best effort: a cache that cannot be listed is
/// reported when it is written.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMPORARY);
        if path.extension().is_some_and(|extension| extension == "tmp") && stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Whether loading compiled code failed because the pool's limits refuse
/// the component, not because the code is unusable: the load stops there,
/// since compiling it again would only be refused the same way.
fn refused_by_pool(error: &wasmtime::Error) -> bool {
    pool_limit_hint(error).is_some()
}

/// The sidecar of the artifact `cwasm`, if it has a readable one.
fn read_sidecar(cwasm: &Path) -> Option<Sidecar> {
    let text = std::fs::read(sidecar_path(cwasm)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// `x.cwasm` -> `x.cwasm.json`.
fn sidecar_path(cwasm: &Path) -> PathBuf {
    let mut name = cwasm.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: readers see the old file or the new one, never a mix, and a mapped
/// old file keeps its contents.
fn write_atomically(path: &Path, bytes: &[u8]) -> wasmtime::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{:016x}.tmp", fastrand::u64(..)));
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("renaming {} into place", path.display()))
}
