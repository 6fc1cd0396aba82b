//! Interop: the catalog is a plain wasi:http component, whatever builds or
//! runs it. It builds with `cargo component build` as well as with cargo, and
//! runs unmodified under `wasmtime serve -Scli`, the reference host, in both
//! its builds: WASI 0.2 and 0.3.
//!
//! Components from other languages' toolchains serve too: a Python handler
//! built with componentize-py and a JavaScript one built with ComponentizeJS.
//! So does a WASI 0.3 component this repository did not write: the
//! `http-proxy` example of the `wasip3` crate, as published on crates.io.
//!
//! Needs cargo-component (`scripts/setup --tools` installs it,
//! `CARGO_COMPONENT` names it), componentize-py (`scripts/setup
//! --python-tools`, `COMPONENTIZE_PY`) and ComponentizeJS (`scripts/setup
//! --js-tools`, `COMPONENTIZE_JS`), which scripts/test sets, and `wasmtime
//! serve`, the `wasmtime-serve` package of this workspace.

/// The binary under test, built by cargo from this source before the tests run.
const HANDLER: Handler = Handler::new(env!("CARGO_BIN_EXE_wasm-handler"));

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use test_harness::functions_host::Forward;
use test_harness::{Handler, HandlerProcess, current_binary, free_port, guests};

fn tool(variable: &str) -> PathBuf {
    let path = std::env::var_os(variable).unwrap_or_else(|| {
        panic!("{variable} is not set: run scripts/test, or scripts/setup --tools and set it")
    });
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{variable}={} does not exist: run scripts/setup --tools",
        path.display()
    );
    path
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
}

/// `wasmtime serve -Scli` serving `component` on a free port.
async fn wasmtime_serve(component: &str) -> HandlerProcess {
    let port = free_port();
    let mut command = Command::new(current_binary("wasmtime"));
    command.args([
        "serve",
        "-Scli",
        "--addr",
        &format!("127.0.0.1:{port}"),
        component,
    ]);
    HandlerProcess::launch(command, port).await
}

/// The catalog's contract, whichever host serves it: item, conditional GET,
/// errors as problems, health.
async fn assert_catalog_contract(port: u16) {
    let item = Forward::get("/api/catalog/42")
        .header("x-correlation-id", "6d9f")
        .header("x-apim-cache", "hit")
        .send(port)
        .await;
    assert_eq!(item.status, 200);
    let body = item.json();
    assert_eq!(
        (body["item_id"].as_str(), body["correlation_id"].as_str()),
        (Some("42"), Some("6d9f"))
    );
    assert_eq!(body["cache_status"], "hit");
    assert_eq!(item.header("x-correlation-id"), Some("6d9f"));
    let etag = item.header("etag").expect("an ETag");
    let not_modified = Forward::get("/api/catalog/42")
        .header("if-none-match", etag)
        .send(port)
        .await;
    assert_eq!(not_modified.status, 304);

    Forward::get("/api/catalog/abc")
        .header("x-correlation-id", "e1")
        .send(port)
        .await
        .assert_problem(400, Some("e1"));
    Forward::get("/api/catalog/13")
        .send(port)
        .await
        .assert_problem(404, None);
    let post = Forward::new(::http::Method::POST, "/api/catalog/42")
        .send(port)
        .await;
    post.assert_problem(405, None);
    assert_eq!(post.header("allow"), Some("GET"));
    let health = Forward::get("/api/catalog/health").send(port).await;
    assert_eq!(
        (health.status, health.json()["status"].as_str()),
        (200, Some("ok"))
    );
}

#[tokio::test]
async fn cargo_component_build_gives_a_component_the_host_serves() {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-component");
    let status = Command::new(tool("CARGO_COMPONENT"))
        .args([
            "component",
            "build",
            "--release",
            "--package",
            "catalog",
            "--target-dir",
        ])
        .arg(&target_dir)
        .current_dir(workspace())
        .status()
        .expect("running cargo-component");
    assert!(status.success(), "cargo component build failed");
    let component = target_dir.join("wasm32-wasip1/release/catalog.wasm");
    assert!(component.is_file(), "{} was not built", component.display());

    let handler = HANDLER.start(&component).await;
    assert_catalog_contract(handler.port()).await;
}

/// Both builds: the 0.2 catalog and the 0.3 one (`guest/p3`).
#[tokio::test]
async fn the_catalog_runs_unmodified_under_wasmtime_serve() {
    for catalog in [guests::CATALOG, guests::CATALOG_P3] {
        let server = wasmtime_serve(catalog).await;
        assert_catalog_contract(server.port()).await;
    }
}

/// `component` compiled ahead by `wasm-handler compile`, beside it: compiling
/// an interpreter takes longer than the Functions host's readiness wait
/// would allow on a slow machine.
fn precompiled(component: &Path) -> PathBuf {
    let artifact = component.with_extension("cwasm");
    let status = Command::new(env!("CARGO_BIN_EXE_wasm-handler"))
        .arg("compile")
        .arg(component)
        .arg("-o")
        .arg(&artifact)
        .status()
        .expect("running wasm-handler compile");
    assert!(status.success(), "wasm-handler compile failed");
    artifact
}

/// A guest of another language built into `out/<name>.wasm` by `toolchain`
/// (named by the environment variable), run in `tests/test-guests/<name>`
/// with `args` and the output path last; then precompiled and served, and
/// asked for one path.
async fn assert_foreign_guest_serves(name: &str, toolchain: &str, args: &[&str]) {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-guest"));
    std::fs::create_dir_all(&out).expect("an output folder");
    let component = out.join(format!("{name}.wasm"));
    let status = Command::new(tool(toolchain))
        .args(args)
        .arg(&component)
        .current_dir(workspace().join("tests/test-guests").join(name))
        .status()
        .unwrap_or_else(|error| panic!("running {toolchain}: {error}"));
    assert!(status.success(), "{toolchain} failed");

    let handler = HANDLER.start(precompiled(&component)).await;
    let response = Forward::get(&format!("/api/{name}/hello?x=1"))
        .send(handler.port())
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        format!("hello from {name} at /api/{name}/hello?x=1")
    );
}

/// componentize-py links CPython's modules into one component of 14 core
/// instances, more than a Rust component has: the host must load it, from
/// source and precompiled, and serve it.
#[tokio::test]
async fn a_python_component_built_with_componentize_py_serves() {
    assert_foreign_guest_serves(
        "python",
        "COMPONENTIZE_PY",
        &["-d", "wit", "-w", "handler", "componentize", "app", "-o"],
    )
    .await;
}

/// ComponentizeJS embeds SpiderMonkey, pre-initialised with the script by
/// Wizer: a 13 MB component of 4 core instances, 2 tables and 1 memory.
#[tokio::test]
async fn a_javascript_component_built_with_componentize_js_serves() {
    assert_foreign_guest_serves(
        "javascript",
        "COMPONENTIZE_JS",
        &["app.js", "--wit", "wit", "--world-name", "handler", "-o"],
    )
    .await;
}

/// The WASI 0.3 test guest (wit-bindgen 0.61's async exports) is a standard
/// `wasi:http/handler@0.3.0` component: `wasmtime serve` 48 serves it as
/// wasm-handler does, the body it writes after `handle` returns included.
#[tokio::test]
async fn the_p3_guest_runs_unmodified_under_wasmtime_serve() {
    let server = wasmtime_serve(guests::MISBEHAVE_P3).await;
    let handler = HANDLER.start(guests::MISBEHAVE_P3).await;
    for port in [server.port(), handler.port()] {
        let ok = Forward::get("/api/p3/ok").send(port).await;
        assert_eq!((ok.status, ok.body.as_ref()), (200, b"ok".as_ref()));
        let streamed = Forward::get("/api/p3/stream?kib=256").send(port).await;
        assert_eq!((streamed.status, streamed.body.len()), (200, 256 << 10));
    }
}

/// The `wasip3` crate, as crates.io publishes it: the Bytecode Alliance's
/// WASI 0.3 bindings, generated with wit-bindgen 0.61, for
/// `wasi:http@0.3.0`. Its `http-proxy` example is a handler written and
/// built outside this repository, by cargo from the published source and
/// the crate's own lockfile.
const WASIP3: &str = "=0.8.0";

/// The published source of `wasip3`, as cargo unpacks it from crates.io: a
/// manifest that only depends on it, resolved by `cargo metadata`.
fn wasip3_source(scratch: &Path) -> PathBuf {
    let fetcher = scratch.join("fetch");
    std::fs::create_dir_all(fetcher.join("src")).expect("a scratch package");
    // Its own [workspace]: it is not a member of this one.
    std::fs::write(
        fetcher.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fetch-wasip3\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nwasip3 = \"{WASIP3}\"\n\n[workspace]\n"
        ),
    )
    .expect("writing the scratch manifest");
    std::fs::write(fetcher.join("src/lib.rs"), "").expect("writing the scratch library");
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(fetcher.join("Cargo.toml"))
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let manifest = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|package| package["name"] == "wasip3")
        .and_then(|package| package["manifest_path"].as_str())
        .expect("wasip3 among the packages");
    Path::new(manifest)
        .parent()
        .expect("a manifest's folder")
        .to_owned()
}

/// The cargo running these tests (the toolchain of rust-toolchain.toml).
fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

#[tokio::test]
async fn a_p3_component_built_outside_this_repository_serves() {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasip3");
    let source = wasip3_source(&scratch);
    let target_dir = scratch.join("target");
    // In the unpacked source, as `cargo install` builds; --locked: the
    // versions the crate was published with, and nothing written there.
    let status = Command::new(cargo())
        .args([
            "build",
            "--release",
            "--locked",
            "--example",
            "http-proxy",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir)
        .current_dir(&source)
        .status()
        .expect("running cargo build");
    assert!(
        status.success(),
        "building wasip3's http-proxy example failed"
    );
    let component = target_dir.join("wasm32-wasip2/release/examples/http_proxy.wasm");

    let handler = HANDLER.start(&component).await;
    let serving = handler.serving_line().await;
    assert!(
        serving.contains("world=wasi:http/handler@0.3.0"),
        "{serving}"
    );
    for path in ["/api/hello", "/api/hello/again"] {
        let response = Forward::get(path)
            .header("x-correlation-id", "wasip3-example")
            .send(handler.port())
            .await;
        assert_eq!(
            (response.status, response.body.as_ref()),
            (200, b"Hello, WASI!".as_ref())
        );
        assert_eq!(response.header("x-correlation-id"), Some("wasip3-example"));
    }
}
