//! Builds the guest components the tests run, from source, for
//! `wasm32-wasip2`: the catalog (`guest/`, and `guest/p3/` for WASI 0.3) and
//! the misbehaving test guests (`tests/test-guests/`, and
//! `tests/test-guests-p3/` for WASI 0.3). Their paths become constants in
//! `guests.rs`.
//!
//! The nested cargo uses target directories of its own, under
//! `<target>/guests`: the outer cargo holds the lock on the native one. They
//! are the same for every outer build (lint, test, another target triple), so
//! the guests are compiled once and the later builds find them fresh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const TARGET: &str = "wasm32-wasip2";

/// The nested builds: a target directory (under `<target>/guests`) and its
/// packages. The 0.3 catalog builds apart: with the others, cargo would
/// unify `catalog`'s features and give it the 0.2 glue too, and its
/// dependency's `catalog.wasm` would replace the 0.2 one.
const BUILDS: [(&str, &[&str]); 2] = [
    ("", &["catalog", "test-guests", "test-guests-p3"]),
    ("p3", &["catalog-p3"]),
];

/// Each component: its constant, the build it comes from, its file.
const COMPONENTS: [(&str, &str, &str); 10] = [
    ("CATALOG", "", "catalog.wasm"),
    ("MISBEHAVE", "", "misbehave.wasm"),
    ("ECHO_REQUEST", "", "echo_request.wasm"),
    ("VERSION_ONE", "", "version_one.wasm"),
    ("VERSION_TWO", "", "version_two.wasm"),
    ("NOT_A_HANDLER", "", "not_a_handler.wasm"),
    ("MISBEHAVE_P3", "", "misbehave_p3.wasm"),
    ("VERSION_ONE_P3", "", "version_one_p3.wasm"),
    ("VERSION_TWO_P3", "", "version_two_p3.wasm"),
    ("CATALOG_P3", "p3", "catalog_p3.wasm"),
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("tests/test-harness is two levels inside the workspace");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let guests_dir = guests_target_dir(&out_dir);
    for watched in [
        "guest",
        "tests/test-guests",
        "tests/test-guests-p3",
        "wit",
        "wit-p3",
        "Cargo.lock",
    ] {
        println!(
            "cargo::rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    for (build, packages) in BUILDS {
        cargo_build(workspace, &guests_dir.join(build), packages);
    }
    let mut constants = String::new();
    for (constant, build, file) in COMPONENTS {
        let path = guests_dir
            .join(build)
            .join(TARGET)
            .join("release")
            .join(file);
        assert!(path.is_file(), "{} was not built", path.display());
        constants.push_str(&format!(
            "/// `{file}`, built from source.\npub const {constant}: &str = {:?};\n",
            path_str(&path)
        ));
    }
    fs::write(out_dir.join("guests.rs"), constants).expect("writing guests.rs");
}

/// `cargo build --release` of `packages` for [`TARGET`] into `target_dir`.
fn cargo_build(workspace: &Path, target_dir: &Path, packages: &[&str]) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--locked", "--target", TARGET]);
    for package in packages {
        command.args(["--package", package]);
    }
    let status = command
        .env("CARGO_TARGET_DIR", target_dir)
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
