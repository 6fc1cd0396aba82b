//! Reloading guests without restarting the host: a watcher on each
//! component's directory and SIGHUP both ask a route to reload.
//!
//! The usual way to replace a component is to write the new file elsewhere
//! and rename it over the old one: one event. A copy in place writes in many
//! pieces, so events are coalesced until the file has been quiet for
//! [`QUIET`]; a reload of a half-written file would be refused anyway (it does
//! not compile) and the next event retries.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::component::Loader;
use crate::dispatch::Dispatcher;
use crate::registry::{Registry, Reloaded};
use crate::telemetry;

/// How long a component file must be quiet before it is reloaded.
pub(crate) const QUIET: Duration = Duration::from_millis(50);

/// Keeps file watching alive; dropping it stops the watcher.
pub(crate) struct Reloader {
    _watcher: Option<notify::RecommendedWatcher>,
}

/// Starts one reload task per route, fed by SIGHUP and, when `watch` is set,
/// by a watcher on the routes' directories.
pub(crate) fn start(
    registry: Arc<Registry>,
    loader: Arc<Loader>,
    dispatcher: Arc<Dispatcher>,
    watch: bool,
) -> wasmtime::Result<Reloader> {
    let mut senders = Vec::new();
    for index in 0..registry.routes().len() {
        let (sender, receiver) = mpsc::unbounded_channel();
        senders.push(sender);
        tokio::spawn(reload_on_request(
            registry.clone(),
            index,
            loader.clone(),
            dispatcher.clone(),
            receiver,
        ));
    }
    spawn_sighup_listener(senders.clone());
    let watcher = if watch {
        watch_files(&registry, senders)
    } else {
        None
    };
    Ok(Reloader { _watcher: watcher })
}

async fn reload_on_request(
    registry: Arc<Registry>,
    index: usize,
    loader: Arc<Loader>,
    dispatcher: Arc<Dispatcher>,
    mut requests: mpsc::UnboundedReceiver<()>,
) {
    let route = &registry.routes()[index];
    while requests.recv().await.is_some() {
        // Coalesce a burst of events into one reload.
        while let Ok(Some(())) = tokio::time::timeout(QUIET, requests.recv()).await {}
        let started = Instant::now();
        match route.reload(&loader, &dispatcher).await {
            Ok(Reloaded::Unchanged) => {
                tracing::debug!(prefix = route.prefix(), "Component unchanged")
            }
            Ok(Reloaded::Swapped { from }) => {
                let current = route.current();
                telemetry::reloaded(route.prefix(), current.digest(), "swapped");
                tracing::info!(
                    prefix = route.prefix(),
                    component = %route.path().display(),
                    from = from.as_str(),
                    to = current.digest(),
                    world = current.world(),
                    origin = %current.origin(),
                    instances = %current.reuse(),
                    load_ms = started.elapsed().as_secs_f64() * 1e3,
                    "Serving a new component version"
                );
            }
            Err(error) => {
                telemetry::reloaded(route.prefix(), route.current().digest(), "refused");
                tracing::error!(
                    prefix = route.prefix(),
                    component = %route.path().display(),
                    still_serving = route.current().digest(),
                    reason = %format!("{error:#}"),
                    "Refused a new component version; the previous one keeps serving"
                )
            }
        }
    }
}

fn spawn_sighup_listener(senders: Vec<mpsc::UnboundedSender<()>>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("SIGHUP cannot be handled; reload by replacing the component file");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading every component");
            for sender in &senders {
                let _ = sender.send(());
            }
        }
    });
}

/// Watches each component's directory. Returns `None` (with a warning) if the
/// platform refuses, in which case SIGHUP still reloads.
fn watch_files(
    registry: &Registry,
    senders: Vec<mpsc::UnboundedSender<()>>,
) -> Option<notify::RecommendedWatcher> {
    // (directory, file name) -> the routes that file affects.
    let mut interested: HashMap<(PathBuf, OsString), Vec<usize>> = HashMap::new();
    for (index, route) in registry.routes().iter().enumerate() {
        let Some((directory, names)) = watched_files(route.path()) else {
            continue;
        };
        for name in names {
            interested
                .entry((directory.clone(), name))
                .or_default()
                .push(index);
        }
    }
    let directories: Vec<PathBuf> = {
        let mut directories: Vec<PathBuf> = interested
            .keys()
            .map(|(directory, _)| directory.clone())
            .collect();
        directories.sort();
        directories.dedup();
        directories
    };
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_))
            && !matches!(
                event.kind,
                EventKind::Access(notify::event::AccessKind::Close(_))
            )
        {
            return;
        }
        for path in &event.paths {
            let (Some(directory), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            for &index in interested
                .get(&(directory.to_owned(), name.to_owned()))
                .into_iter()
                .flatten()
            {
                let _ = senders[index].send(());
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "Cannot watch component files; reload with SIGHUP");
            return None;
        }
    };
    for directory in &directories {
        if let Err(error) = watcher.watch(directory, RecursiveMode::NonRecursive) {
            tracing::warn!(directory = %directory.display(), %error, "Cannot watch a component directory; reload with SIGHUP");
        }
    }
    Some(watcher)
}

/// The directory of a component and the names in it that change what it
/// loads: the component, and the precompiled artifact and sidecar beside it.
fn watched_files(path: &Path) -> Option<(PathBuf, Vec<OsString>)> {
    let absolute = std::path::absolute(path).ok()?;
    let directory = absolute.parent()?.canonicalize().ok()?;
    let stem = absolute.file_stem()?.to_owned();
    let mut names = vec![absolute.file_name()?.to_owned()];
    for extension in ["wasm", "cwasm", "cwasm.json"] {
        let mut name = stem.clone();
        name.push(".");
        name.push(extension);
        names.push(name);
    }
    names.sort();
    names.dedup();
    Some((directory, names))
}
