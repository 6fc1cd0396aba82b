//! Binaries of other packages, and the check that they are current.
//!
//! A test target gets its own package's binaries from cargo
//! (`CARGO_BIN_EXE_<name>`), built from the source under test before it runs.
//! A test that launches another package's binary (the local Functions host's
//! tests launch `wasm-handler`) finds it beside itself in the target
//! directory, where `cargo test --workspace` has just built it, but
//! `cargo test -p <one package>` leaves whatever an earlier build put there.
//! So [`current_binary`] asks `cargo metadata` which workspace packages the
//! binary is built from (its package and their path dependencies, followed
//! to the end) and refuses a binary older than any of their source files,
//! build scripts or manifests.
//!
//! `Cargo.lock` is left out on purpose: cargo does not relink a binary whose
//! dependencies a lock change did not touch, so its age says nothing, and a
//! check on it refused current binaries after every unrelated `cargo add`.
//! A lock-only version bump of a registry crate goes unnoticed here; `cargo
//! test --workspace`, which CI runs, rebuilds everything first anyway.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::Value;

/// The binary `name` in this test's target directory, after checking that it
/// was built from the source as it is now; panics, saying how to build it,
/// when it is missing or stale.
pub fn current_binary(name: &'static str) -> &'static str {
    let current = std::env::current_exe().expect("this binary has a path");
    // target/<profile>/deps/<test> or target/<profile>/<tool>.
    let candidates = current.ancestors().skip(1).take(2);
    let binary = candidates
        .map(|dir| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
        .find(|binary| binary.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} was not built beside {}: build it first (`cargo test --release --workspace` \
                 builds every binary before running any test)",
                current.display()
            )
        });
    let inputs = inputs_of(name).unwrap_or_else(|why| panic!("{why}"));
    if let Err(stale) = check_current(&binary, &inputs) {
        panic!(
            "{stale}: build it from this source first (`cargo test --release --workspace` \
             builds every binary before running any test)"
        );
    }
    let path = binary
        .into_os_string()
        .into_string()
        .expect("the target directory path is UTF-8");
    Box::leak(path.into_boxed_str())
}

/// Why a binary cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum Stale {
    /// The binary's file has no modification time.
    Unreadable(PathBuf),
    /// A file it is built from changed after it was built.
    OlderThan {
        /// The binary.
        binary: PathBuf,
        /// A file it depends on, newer than it.
        source: PathBuf,
    },
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Unreadable(path) => write!(f, "{} cannot be read", path.display()),
            Stale::OlderThan { binary, source } => write!(
                f,
                "{} is older than {}, which changed after it was built",
                binary.display(),
                source.display()
            ),
        }
    }
}

/// Checks that `binary` is newer than every file under `inputs` (files, or
/// folders walked to the bottom).
pub fn check_current(binary: &Path, inputs: &[PathBuf]) -> Result<(), Stale> {
    let built = modified(binary).ok_or_else(|| Stale::Unreadable(binary.to_owned()))?;
    let mut files = Vec::new();
    for input in inputs {
        walk(input, &mut files);
    }
    files.sort();
    match files
        .into_iter()
        .find(|file| modified(file).is_some_and(|changed| changed > built))
    {
        Some(source) => Err(Stale::OlderThan {
            binary: binary.to_owned(),
            source,
        }),
        None => Ok(()),
    }
}

/// What the binary `name` is built from: for its package and each workspace
/// package it depends on (not as a dev-dependency), `src/`, `build.rs` and
/// `Cargo.toml`.
fn inputs_of(name: &str) -> Result<Vec<PathBuf>, String> {
    static METADATA: OnceLock<Result<Value, String>> = OnceLock::new();
    let metadata = METADATA.get_or_init(workspace_metadata).as_ref()?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let owner = packages
        .iter()
        .find(|package| {
            package["targets"].as_array().is_some_and(|targets| {
                targets.iter().any(|target| {
                    target["name"] == name
                        && target["kind"]
                            .as_array()
                            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
                })
            })
        })
        .ok_or_else(|| format!("no workspace package has a binary named {name}"))?;
    let mut pending = vec![owner.clone()];
    let mut seen: Vec<String> = Vec::new();
    let mut inputs = Vec::new();
    while let Some(package) = pending.pop() {
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let dir = manifest.parent().map(Path::to_owned).unwrap_or_default();
        inputs.extend([dir.join("src"), dir.join("build.rs"), manifest]);
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            if dependency["kind"] == "dev" || dependency["path"].is_null() {
                continue;
            }
            if let Some(local) = packages
                .iter()
                .find(|candidate| candidate["name"] == dependency["name"])
            {
                pending.push(local.clone());
            }
        }
    }
    Ok(inputs)
}

fn workspace_metadata() -> Result<Value, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))
}

/// Every file at or under `path`.
fn walk(path: &Path, files: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries.flatten() {
                walk(&entry.path(), files);
            }
        }
        Err(_) if path.is_file() => files.push(path.to_owned()),
        Err(_) => {}
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A workspace in a scratch folder, every file a minute old.
    fn scratch(name: &str) -> PathBuf {
        const FILES: [&str; 3] = [
            "crate/Cargo.toml",
            "crate/src/main.rs",
            "crate/src/nested/mod.rs",
        ];
        let dir = std::env::temp_dir().join(format!("binaries-{name}-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(dir.join("crate/src/nested")).expect("a scratch folder");
        let past = SystemTime::now() - Duration::from_secs(60);
        for file in FILES {
            std::fs::write(dir.join(file), "").expect("a file");
            set_modified(&dir.join(file), past);
        }
        std::fs::write(dir.join("app"), "binary").expect("a binary");
        dir
    }

    fn inputs(dir: &Path) -> Vec<PathBuf> {
        vec![
            dir.join("crate/src"),
            dir.join("crate/build.rs"),
            dir.join("crate/Cargo.toml"),
        ]
    }

    fn set_modified(path: &Path, time: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|file| file.set_modified(time))
            .expect("setting a modification time");
    }

    #[test]
    fn a_binary_built_after_its_sources_is_current() {
        let dir = scratch("current");
        assert_eq!(check_current(&dir.join("app"), &inputs(&dir)), Ok(()));
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_changed_source_or_manifest_makes_it_stale() {
        for changed in ["crate/src/nested/mod.rs", "crate/Cargo.toml"] {
            let dir = scratch("stale");
            set_modified(
                &dir.join(changed),
                SystemTime::now() + Duration::from_secs(5),
            );
            assert_eq!(
                check_current(&dir.join("app"), &inputs(&dir)),
                Err(Stale::OlderThan {
                    binary: dir.join("app"),
                    source: dir.join(changed),
                }),
                "{changed}"
            );
            std::fs::remove_dir_all(dir).expect("cleanup");
        }
    }

    #[test]
    fn wasm_handler_is_built_from_the_host_and_the_functions_contract() {
        let inputs = inputs_of("wasm-handler").expect("cargo metadata");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("the workspace");
        for expected in ["host/src", "host/Cargo.toml", "functions-contract/src"] {
            assert!(
                inputs.contains(&workspace.join(expected)),
                "{expected} in {inputs:?}"
            );
        }
        assert!(
            !inputs.contains(&workspace.join("guest/src")),
            "dev-dependencies do not go into the binary"
        );
    }
}
