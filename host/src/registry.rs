//! The guest registry: which component serves which route prefix, and which
//! version of it serves now.
//!
//! Each route's current version sits behind an `ArcSwap`. A request takes
//! the version it starts with and keeps it to its end; a reload swaps a new
//! version in for the requests after it; an old version (its code and its
//! memory images) is freed when its last request is done. Nothing on the
//! request path waits for a reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use wasmtime::error::Context as _;

use crate::component::{ComponentVersion, Loader};
use crate::dispatch::Dispatcher;
use crate::reuse::Reuse;

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reloaded {
    /// The file holds the version already serving.
    Unchanged,
    /// A new version serves from now on.
    Swapped {
        /// Digest of the version it replaced.
        from: String,
    },
}

/// A route as configured: `--route PREFIX=PATH`, or `--component PATH` at `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteSpec {
    /// The path prefix it serves.
    pub(crate) prefix: String,
    /// The component file.
    pub(crate) path: PathBuf,
    /// How its instances are reused.
    pub(crate) reuse: Reuse,
}

/// A route prefix and the component behind it.
pub(crate) struct Route {
    prefix: String,
    path: PathBuf,
    reuse: Reuse,
    current: ArcSwap<ComponentVersion>,
    reloading: tokio::sync::Mutex<()>,
}

impl Route {
    /// The prefix, lower case without a trailing slash (`""` serves every path).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The component file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// How its instances are reused.
    pub(crate) fn reuse(&self) -> Reuse {
        self.reuse
    }

    /// The version serving now.
    pub(crate) fn current(&self) -> Arc<ComponentVersion> {
        self.current.load_full()
    }

    /// Loads the file again off the request path (compile or load
    /// precompiled, type-check, one smoke-test instance) and, if it holds a
    /// new version that passes, swaps it in. On any failure the current
    /// version keeps serving and the error says why.
    pub(crate) async fn reload(
        &self,
        loader: &Arc<Loader>,
        dispatcher: &Dispatcher,
    ) -> wasmtime::Result<Reloaded> {
        let _one_at_a_time = self.reloading.lock().await;
        let version = load_off_the_request_path(loader, &self.path, self.reuse).await?;
        let current = self.current();
        if version.digest() == current.digest() {
            return Ok(Reloaded::Unchanged);
        }
        dispatcher.smoke_test(&version).await?;
        self.current.store(Arc::new(version));
        // Its idle instances go now, busy ones when their request is done.
        current.retire();
        Ok(Reloaded::Swapped {
            from: current.digest().to_owned(),
        })
    }

    fn matches(&self, path: &str) -> bool {
        let Some(head) = path.get(..self.prefix.len()) else {
            return false;
        };
        head.eq_ignore_ascii_case(&self.prefix)
            && matches!(path.as_bytes().get(self.prefix.len()), None | Some(b'/'))
    }
}

/// Every route of this host, longest prefix first.
pub(crate) struct Registry {
    routes: Vec<Route>,
}

impl Registry {
    /// Loads each `(prefix, component)` and smoke-tests it; any failure fails
    /// start-up, so a host that answers is a host that serves.
    pub(crate) async fn load(
        specs: &[RouteSpec],
        loader: &Arc<Loader>,
        dispatcher: &Dispatcher,
    ) -> wasmtime::Result<Self> {
        let mut routes = Vec::with_capacity(specs.len());
        for RouteSpec {
            prefix,
            path,
            reuse,
        } in specs
        {
            let prefix = normalize_prefix(prefix)?;
            wasmtime::ensure!(
                routes.iter().all(|route: &Route| route.prefix != prefix),
                "two components are routed at the prefix {prefix:?}"
            );
            let version = load_off_the_request_path(loader, path, *reuse).await?;
            dispatcher.smoke_test(&version).await?;
            routes.push(Route {
                prefix,
                path: path.clone(),
                reuse: *reuse,
                current: ArcSwap::from_pointee(version),
                reloading: tokio::sync::Mutex::new(()),
            });
        }
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        Ok(Self { routes })
    }

    /// The route serving `path`: the longest prefix that matches whole segments.
    pub(crate) fn route(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|route| route.matches(path))
    }

    /// Every route.
    pub(crate) fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Drops one idle instance of any route, to free its slot and admission
    /// permit for a request that needs a new instance; false when none is idle.
    pub(crate) fn evict_one_idle(&self) -> bool {
        self.routes.iter().any(|route| {
            let version = route.current();
            version.idle().evict_one() || version.shared().evict_one()
        })
    }
}

/// Compiling is CPU work measured in tens or hundreds of milliseconds: it
/// runs on the blocking pool, not on the threads serving requests.
async fn load_off_the_request_path(
    loader: &Arc<Loader>,
    path: &Path,
    reuse: Reuse,
) -> wasmtime::Result<ComponentVersion> {
    let (loader, path) = (loader.clone(), path.to_owned());
    let version = tokio::task::spawn_blocking(move || loader.load(&path))
        .await
        .context("the loading task failed")??;
    Ok(version.with_reuse(reuse))
}

/// `/api/Catalog/` -> `/api/catalog`; `/` -> `""`.
fn normalize_prefix(prefix: &str) -> wasmtime::Result<String> {
    let trimmed = prefix.trim().trim_end_matches('/');
    wasmtime::ensure!(
        trimmed.is_empty() || trimmed.starts_with('/'),
        "route prefix {prefix:?} must start with /"
    );
    Ok(trimmed.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::normalize_prefix;

    #[test]
    fn prefixes_are_normalized() {
        assert_eq!(
            normalize_prefix("/api/Catalog/").ok().as_deref(),
            Some("/api/catalog")
        );
        assert_eq!(normalize_prefix("/").ok().as_deref(), Some(""));
        assert!(normalize_prefix("api").is_err());
    }
}
