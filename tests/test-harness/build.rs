//! Builds the guest components the tests run, from source, for
//! `wasm32-wasip2`: the catalog (`guest/`) and the misbehaving test guests
//! (`tests/test-guests/`). Their paths become constants in `guests.rs`.
//!
//! The nested cargo uses a target directory of its own, `<target>/guests`:
//! the outer cargo holds the lock on the native one. It is one directory for
//! every outer build (lint, test, another target triple), so the guests are
//! compiled once and the later builds find them fresh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("tests/test-harness is two levels inside the workspace");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = guests_target_dir(&out_dir);
    for watched in ["guest", "tests/test-guests", "wit", "Cargo.lock"] {
        println!(
            "cargo::rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            TARGET,
            "--package",
            "catalog",
            "--package",
            "test-guests",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags and wrappers meant for the outer, native build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("running cargo to build the guest components");
    assert!(
        status.success(),
        "building the guest components failed; is the {TARGET} target installed? (scripts/setup installs it)"
    );

    let release = target_dir.join(TARGET).join("release");
    let mut constants = String::new();
    for (constant, file) in [
        ("CATALOG", "catalog.wasm"),
        ("MISBEHAVE", "misbehave.wasm"),
        ("ECHO_REQUEST", "echo_request.wasm"),
        ("VERSION_ONE", "version_one.wasm"),
        ("VERSION_TWO", "version_two.wasm"),
        ("NOT_A_HANDLER", "not_a_handler.wasm"),
    ] {
        let path = release.join(file);
        assert!(path.is_file(), "{} was not built", path.display());
        constants.push_str(&format!(
            "/// `{file}`, built from source.\npub const {constant}: &str = {:?};\n",
            path_str(&path)
        ));
    }
    fs::write(out_dir.join("guests.rs"), constants).expect("writing guests.rs");
}

/// `<target>/guests`, where `<target>` is the outer target directory: the
/// ancestor of OUT_DIR that cargo marked with `CACHEDIR.TAG`.
fn guests_target_dir(out_dir: &Path) -> PathBuf {
    let target = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or(out_dir);
    target.join("guests")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("the target directory path is UTF-8")
}
