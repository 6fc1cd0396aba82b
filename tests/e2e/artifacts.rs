//! Precompiled components and the compile cache: `wasm-handler compile`
//! output loads without compiling, a stale or foreign artifact is never used,
//! and compiled output is cached by digest and engine.

use std::path::{Path, PathBuf};
use std::process::Command;

use test_harness::functions_host::Forward;
use test_harness::{HandlerProcess, guests};

use crate::HANDLER;

fn folder(test: &str) -> PathBuf {
    let folder =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{:08x}", fastrand::u32(..)));
    std::fs::create_dir_all(&folder).expect("creating a folder");
    folder
}

fn compile(input: &Path, output: Option<&Path>) {
    compile_with(input, output, &[]);
}

fn compile_with(input: &Path, output: Option<&Path>, args: &[&str]) {
    let mut command = Command::new(HANDLER.binary());
    command.arg("compile").arg(input).args(args);
    if let Some(output) = output {
        command.arg("-o").arg(output);
    }
    let result = command.output().expect("running wasm-handler compile");
    assert!(
        result.status.success(),
        "compile failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// A host serving `wasm` without a compile cache, checked to have loaded the
/// `app.cwasm` beside it instead of compiling.
async fn serve_beside_its_artifact(wasm: &Path) -> HandlerProcess {
    let handler = HANDLER.builder(wasm).args(["--no-cache"]).start().await;
    let line = handler.serving_line().await;
    assert!(
        line.contains("origin=\"precompiled") && line.contains("app.cwasm"),
        "{line}"
    );
    handler
}

#[tokio::test]
async fn a_precompiled_component_serves_directly_or_beside_its_wasm() {
    let folder = folder("precompiled");
    let wasm = folder.join("app.wasm");
    std::fs::copy(guests::VERSION_ONE, &wasm).expect("copying");
    compile(&wasm, None);
    let (cwasm, sidecar) = (folder.join("app.cwasm"), folder.join("app.cwasm.json"));
    assert!(cwasm.is_file() && sidecar.is_file());

    let direct = HANDLER.builder(&cwasm).args(["--no-cache"]).start().await;
    assert!(
        direct.serving_line().await.contains("origin=\"precompiled"),
        "{:?}",
        direct.stdout()
    );
    let response = Forward::get("/x").send(direct.port()).await;
    assert_eq!(
        (response.status, response.body.as_ref()),
        (200, b"one".as_ref())
    );

    let beside = serve_beside_its_artifact(&wasm).await;
    // The digest is the .wasm's, whichever form was loaded.
    assert_eq!(
        Forward::get("/x")
            .send(beside.port())
            .await
            .header("x-component-digest"),
        response.header("x-component-digest")
    );

    // A new .wasm beside the old artifact: the stale artifact is not used.
    let staging = folder.join("staging");
    std::fs::copy(guests::VERSION_TWO, &staging).expect("copying");
    std::fs::rename(&staging, &wasm).expect("renaming");
    let swapped = beside
        .wait_for_stdout(|line| line.contains("Serving a new component version"))
        .await;
    assert!(swapped.contains("origin=compiled"), "{swapped}");
    assert_eq!(
        Forward::get("/x").send(beside.port()).await.body.as_ref(),
        b"two"
    );
}

/// The deploy package's artifact: compiled for the architecture's baseline CPU
/// on the build machine, loaded beside its `.wasm` by a host that compiles for
/// its own CPU, instead of compiling.
#[tokio::test]
async fn a_baseline_cpu_artifact_serves_beside_its_wasm() {
    let folder = folder("baseline");
    let wasm = folder.join("app.wasm");
    std::fs::copy(guests::VERSION_ONE, &wasm).expect("copying");
    compile_with(&wasm, None, &["--cpu", "baseline"]);
    let native = folder.join("native.cwasm");
    compile(&wasm, Some(&native));
    let sidecar = |path: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).expect("a sidecar")).expect("JSON")
    };
    let baseline_engine = sidecar(&folder.join("app.cwasm.json"))["engine"].clone();
    assert_ne!(
        baseline_engine,
        sidecar(&folder.join("native.cwasm.json"))["engine"],
        "a baseline artifact is a different build than a native one"
    );

    let handler = serve_beside_its_artifact(&wasm).await;
    let response = Forward::get("/x").send(handler.port()).await;
    assert_eq!(
        (response.status, response.body.as_ref()),
        (200, b"one".as_ref())
    );
}

/// `wasm-handler compile` output stamped with another wasmtime major version,
/// as an artifact from another release would be. Wasmtime's engine section is
/// `0, len, "48", <postcard metadata starting with the target triple>`.
fn foreign_artifact(folder: &Path) -> PathBuf {
    let wasm = folder.join("app.wasm");
    std::fs::copy(guests::VERSION_ONE, &wasm).expect("copying");
    let cwasm = folder.join("app.cwasm");
    compile(&wasm, Some(&cwasm));
    let mut bytes = std::fs::read(&cwasm).expect("reading the artifact");
    let stamp = [&[0u8, 2][..], b"48"].concat();
    let arch = std::env::consts::ARCH.as_bytes();
    let at = (0..bytes.len() - stamp.len() - arch.len() - 1)
        .find(|&at| {
            bytes[at..].starts_with(&stamp) && bytes[at + stamp.len() + 1..].starts_with(arch)
        })
        .expect("the engine section records wasmtime's version");
    bytes[at + 2..at + 4].copy_from_slice(b"47");
    std::fs::write(&cwasm, bytes).expect("writing the foreign artifact");
    cwasm
}

#[tokio::test]
async fn a_foreign_precompiled_artifact_is_refused_or_replaced_by_its_wasm() {
    let folder = folder("foreign");
    let cwasm = foreign_artifact(&folder);

    // With the .wasm beside it, the host compiles that instead and says why.
    let recovered = HANDLER.builder(&cwasm).args(["--no-cache"]).start().await;
    recovered
        .wait_for_stderr(|line| line.contains("does not fit this host"))
        .await;
    assert_eq!(
        Forward::get("/x")
            .send(recovered.port())
            .await
            .body
            .as_ref(),
        b"one"
    );

    // Alone, it is refused with a clear message, never loaded.
    std::fs::remove_file(folder.join("app.wasm")).expect("removing the .wasm");
    let refused = Command::new(HANDLER.binary())
        .args([
            "serve",
            "--no-cache",
            "--listen",
            "127.0.0.1:0",
            "--component",
        ])
        .arg(&cwasm)
        .output()
        .expect("running wasm-handler");
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("was precompiled by another wasmtime version or configuration"),
        "{message}"
    );
    assert!(
        message.contains("incompatible version '47'"),
        "wasmtime's reason is kept: {message}"
    );
}

#[tokio::test]
async fn compiled_output_is_cached_by_digest_and_engine() {
    let folder = folder("cache");
    let wasm = folder.join("app.wasm");
    std::fs::copy(guests::CATALOG, &wasm).expect("copying");
    let first = HANDLER
        .builder(&wasm)
        .args(["--cache-dir", "cache"])
        .start()
        .await;
    assert!(first.serving_line().await.contains("origin=compiled"));
    drop(first);
    let entries: Vec<String> = std::fs::read_dir(folder.join("cache"))
        .expect("the cache exists")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let digest = test_harness::sha256_hex(&std::fs::read(&wasm).expect("reading"));
    assert!(
        entries[0].starts_with(&format!("{digest}-")) && entries[0].ends_with(".cwasm"),
        "{entries:?}"
    );

    let second = HANDLER
        .builder(&wasm)
        .args(["--cache-dir", "cache"])
        .start()
        .await;
    assert!(second.serving_line().await.contains("origin=cache"));
    assert_eq!(
        Forward::get("/api/catalog/42")
            .send(second.port())
            .await
            .status,
        200
    );
}

/// The Functions host stops a handler with SIGKILL, whatever it is doing
/// (azure-functions-host `src/WebJobs.Script/Workers/ProcessManagement/WorkerProcess.cs`
/// `Dispose`). Killed while it compiles into the cache, at moments spread
/// over the compile, it never leaves an entry that is half written: the
/// cache is written to a temporary file and renamed into place, so the next
/// start finds a whole entry or none, and serves.
#[tokio::test]
async fn a_handler_killed_while_it_fills_the_cache_leaves_no_half_written_entry() {
    let folder = folder("killed-compile");
    let wasm = folder.join("app.wasm");
    std::fs::copy(guests::CATALOG, &wasm).expect("copying");
    let cache = folder.join("cache");
    for delay_ms in (0..400).step_by(25) {
        let mut child = Command::new(HANDLER.binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(&cache)
            .arg("--component")
            .arg(&wasm)
            .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting wasm-handler");
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping");
        let entries: Vec<PathBuf> = std::fs::read_dir(&cache)
            .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        // Every entry under its final name loads (or there is none yet).
        for entry in entries
            .iter()
            .filter(|e| e.extension().is_some_and(|x| x == "cwasm"))
        {
            let handler = HANDLER
                .builder(&wasm)
                .args(["--cache-dir", cache.to_str().expect("UTF-8")])
                .start()
                .await;
            let line = handler.serving_line().await;
            assert!(
                line.contains("origin=cache"),
                "after a kill at {delay_ms} ms, {} did not load: {line}",
                entry.display()
            );
            assert!(
                !handler
                    .stderr()
                    .iter()
                    .any(|line| line.contains("unusable cache entry")),
                "{:?}",
                handler.stderr()
            );
            // Start afresh, so the next kill lands in another compile.
            std::fs::remove_dir_all(&cache).expect("emptying the cache");
        }
    }
}
