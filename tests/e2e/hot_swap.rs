//! Swapping components without restarting the host: replace the file (or
//! send SIGHUP) and the next requests get the new version, while requests
//! already running finish on the old one. Broken versions, and versions the
//! instance pool cannot hold, are refused. Every response names the version
//! that served it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use test_harness::functions_host::Forward;
use test_harness::guests;
use test_harness::http::Response;

use crate::HANDLER;

const SIGHUP: i32 = 1;
const SWAP_TIMEOUT: Duration = Duration::from_secs(20);

/// A fresh folder holding `files`, `(name, source component)`.
fn app_folder(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let folder =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{:08x}", fastrand::u32(..)));
    std::fs::create_dir_all(&folder).expect("creating the app folder");
    for (name, source) in files {
        std::fs::copy(source, folder.join(name)).expect("copying a component");
    }
    folder
}

/// Replaces `target` the usual way: write beside it, rename over it.
fn replace(target: &Path, source: impl AsRef<Path>) {
    let staging = target.with_extension("staging");
    std::fs::copy(source, &staging).expect("writing the new version");
    std::fs::rename(&staging, target).expect("renaming it into place");
}

fn body(response: &Response) -> &str {
    std::str::from_utf8(&response.body).expect("a text body")
}

fn digest(response: &Response) -> String {
    response
        .header("x-component-digest")
        .expect("every response names its version")
        .to_owned()
}

/// Polls `path` until it answers `expected`, and returns that response.
async fn wait_for_body(port: u16, path: &str, expected: &str) -> Response {
    let deadline = Instant::now() + SWAP_TIMEOUT;
    loop {
        let response = Forward::get(path).send(port).await;
        if response.status == 200 && body(&response) == expected {
            return response;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never answered {expected:?}; last: {response:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A response under load: status, digest, body and `x-instance-requests`.
type Record = (u16, String, String, u32);

/// Requests `path` in `clients` loops until stopped; every response is kept.
struct SteadyLoad {
    stop: Arc<AtomicBool>,
    responses: Arc<Mutex<Vec<Record>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl SteadyLoad {
    fn start(port: u16, path: &'static str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let responses = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..clients)
            .map(|_| {
                let (stop, responses) = (stop.clone(), responses.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let response = Forward::get(path).send(port).await;
                        let record = (
                            response.status,
                            digest(&response),
                            body(&response).to_owned(),
                            response
                                .header("x-instance-requests")
                                .and_then(|served| served.parse().ok())
                                .unwrap_or(0),
                        );
                        responses.lock().expect("not poisoned").push(record);
                    }
                })
            })
            .collect();
        Self {
            stop,
            responses,
            clients,
        }
    }

    async fn finish(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.expect("a load client finished");
        }
        Arc::try_unwrap(self.responses)
            .expect("clients are done")
            .into_inner()
            .expect("not poisoned")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_swaps_under_steady_load_lose_nothing() {
    let most_reused = ten_swaps_under_steady_load(P2, &[]).await;
    assert_eq!(most_reused, 1, "a fresh instance per request");
}

/// With reuse on, a swap drops the old version's idle instances and lets
/// its busy ones finish their request.
#[tokio::test(flavor = "multi_thread")]
async fn ten_swaps_under_steady_load_with_reuse_lose_nothing() {
    let most_reused =
        ten_swaps_under_steady_load(P2, &["--max-instance-reuse-count", "1000"]).await;
    assert!(
        most_reused > 1,
        "instances were reused: at most {most_reused} requests each"
    );
}

/// The same with 0.3 instances that serve several requests at once: a swap
/// stops the old version's instances taking requests, and each is dropped
/// once the requests it serves are done.
#[tokio::test(flavor = "multi_thread")]
async fn ten_swaps_under_steady_load_with_concurrent_reuse_lose_nothing() {
    let most_reused = ten_swaps_under_steady_load(
        P3,
        &[
            "--max-instance-reuse-count",
            "1000",
            "--max-instance-concurrent-reuse-count",
            "4",
        ],
    )
    .await;
    assert!(
        most_reused > 4,
        "instances were shared: at most {most_reused} requests each"
    );
}

/// The two versions of one component, in one world.
const P2: [&str; 2] = [guests::VERSION_ONE, guests::VERSION_TWO];
const P3: [&str; 2] = [guests::VERSION_ONE_P3, guests::VERSION_TWO_P3];

/// Swaps the version ten times under a steady load, checks that every
/// request got the whole answer of one version, and returns the most
/// requests one instance served.
async fn ten_swaps_under_steady_load([one, two]: [&str; 2], args: &[&str]) -> u32 {
    let folder = app_folder("ten-swaps", &[("app.wasm", one)]);
    let app = folder.join("app.wasm");
    let handler = HANDLER
        .builder(&app)
        .args(["--cache-dir", "cache"])
        .args(args.iter().copied())
        .start()
        .await;
    let port = handler.port();
    let load = SteadyLoad::start(port, "/api/versioned", 4);

    let mut digests = vec![digest(&wait_for_body(port, "/api/versioned", "one").await)];
    for swap in 1..=10 {
        let (source, expected) = if swap % 2 == 1 {
            (two, "two")
        } else {
            (one, "one")
        };
        replace(&app, source);
        digests.push(digest(
            &wait_for_body(port, "/api/versioned", expected).await,
        ));
        handler
            .wait_for_stdout_lines(swap, |line| {
                line.contains("Serving a new component version")
            })
            .await;
    }

    let responses = load.finish().await;
    assert!(
        responses.len() > 100,
        "a steady stream: {} responses",
        responses.len()
    );
    let failures: Vec<_> = responses
        .iter()
        .filter(|(status, ..)| *status != 200)
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed requests: {failures:?}",
        failures.len()
    );
    // Each version has one digest, and every response's digest names the body's version.
    assert_ne!(digests[0], digests[1]);
    for (index, digest) in digests.iter().enumerate() {
        assert_eq!(digest, &digests[index % 2], "swap {index}");
    }
    for (_, digest, body, _) in &responses {
        let expected = if body == "one" {
            &digests[0]
        } else {
            &digests[1]
        };
        assert_eq!(
            digest, expected,
            "the header names the version that answered {body:?}"
        );
    }
    // The load saw the versions change back and forth, not only the probes.
    let switches = responses
        .windows(2)
        .filter(|pair| pair[0].2 != pair[1].2)
        .count();
    assert!(
        switches >= 10,
        "the steady stream switched {switches} times"
    );
    responses
        .iter()
        .map(|(_, _, _, served)| *served)
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_broken_component_is_refused_and_the_old_one_keeps_serving() {
    let folder = app_folder("broken", &[("app.wasm", guests::VERSION_ONE)]);
    let app = folder.join("app.wasm");
    let garbage = folder.join("garbage.bin");
    std::fs::write(&garbage, b"\0asm this is not a component").expect("writing garbage");
    let handler = HANDLER.builder(&app).args(["--no-cache"]).start().await;
    let port = handler.port();
    let serving = digest(&wait_for_body(port, "/x", "one").await);

    for (broken, reason, refusals) in [
        (garbage.as_path(), "is not a valid WebAssembly component", 1),
        (
            Path::new(guests::NOT_A_HANDLER),
            "exports neither wasi:http/incoming-handler@0.2 nor wasi:http/handler@0.3.0",
            2,
        ),
    ] {
        replace(&app, broken);
        handler
            .wait_for_stderr_lines(refusals, |line| {
                line.contains("Refused a new component version")
            })
            .await;
        let refused = handler.wait_for_stderr(|line| line.contains(reason)).await;
        assert!(
            refused.contains(&format!("still_serving={serving}")),
            "{refused}"
        );
        let response = Forward::get("/x").send(port).await;
        assert_eq!(
            (response.status, body(&response), digest(&response)),
            (200, "one", serving.clone())
        );
    }
    replace(&app, guests::VERSION_TWO);
    wait_for_body(port, "/x", "two").await;
}

/// A component the pool's slots cannot hold is refused when it loads, with
/// wasmtime's count and limit and the option that raises it: a start-up
/// error to act on, not a 500 on every request. Its compiled code is sound
/// wherever the host finds it (in the compile cache, as the `.cwasm` beside
/// the `.wasm`, or given directly), so the refusal is not blamed on that
/// code, and the component is not compiled again only to be refused the
/// same way.
#[tokio::test]
async fn a_component_past_a_pool_limit_is_refused_naming_the_option() {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pool-limit-{:08x}", fastrand::u32(..)));
    std::fs::create_dir_all(&folder).expect("a folder");
    let (wasm, cwasm) = (folder.join("app.wasm"), folder.join("app.cwasm"));
    std::fs::copy(guests::CATALOG, &wasm).expect("copying the catalog");
    let cache_dir = folder.join("cache");
    let cache_dir = cache_dir.to_str().expect("a UTF-8 path");
    // The default fits it, and leaves its compiled code in the cache.
    let handler = HANDLER
        .builder(guests::CATALOG)
        .args(["--cache-dir", cache_dir])
        .start()
        .await;
    assert_eq!(
        Forward::get("/api/catalog/health")
            .send(handler.port())
            .await
            .status,
        200
    );
    let compiled = std::process::Command::new(HANDLER.binary())
        .arg("compile")
        .arg(&wasm)
        .status()
        .expect("running wasm-handler compile");
    assert!(compiled.success() && cwasm.is_file());

    for (component, cache) in [
        (Path::new(guests::CATALOG), &["--cache-dir", cache_dir][..]),
        (wasm.as_path(), &["--no-cache"][..]),
        (cwasm.as_path(), &["--no-cache"][..]),
    ] {
        let refused = std::process::Command::new(HANDLER.binary())
            .arg("serve")
            .args(cache)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--max-core-instances-per-component",
                "1",
            ])
            .arg("--component")
            .arg(component)
            .output()
            .expect("running wasm-handler");
        assert_eq!(refused.status.code(), Some(1));
        let message = String::from_utf8_lossy(&refused.stderr);
        for expected in [
            "does not fit a slot of the instance pool: raise the limit with \
             --max-core-instances-per-component (WASM_HANDLER_MAX_CORE_INSTANCES_PER_COMPONENT)",
            "core module instances, which exceeds the configured maximum of 1 in the pooling allocator",
        ] {
            assert!(message.contains(expected), "{expected} in {message}");
        }
        let log = format!("{}{message}", String::from_utf8_lossy(&refused.stdout));
        for blame in [
            "cache entry",
            "Ignoring the precompiled artifact",
            "compiling the .wasm",
        ] {
            assert!(
                !log.contains(blame),
                "{}: the refusal is blamed on compiled code: {log}",
                component.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_prefixes_serve_at_once_and_swap_on_their_own() {
    let folder = app_folder(
        "two-prefixes",
        &[
            ("catalog.wasm", guests::CATALOG),
            ("versioned.wasm", guests::VERSION_ONE),
        ],
    );
    let handler = HANDLER
        .builder_in(&folder)
        .args([
            "--route",
            "/api/catalog=catalog.wasm",
            "--route",
            "/api/versioned=versioned.wasm",
        ])
        .start()
        .await;
    let port = handler.port();
    let catalog = SteadyLoad::start(port, "/api/catalog/42", 2);
    wait_for_body(port, "/api/versioned", "one").await;
    replace(&folder.join("versioned.wasm"), guests::VERSION_TWO);
    wait_for_body(port, "/api/versioned/anything", "two").await;

    let responses = catalog.finish().await;
    assert!(!responses.is_empty());
    assert!(
        responses.iter().all(|(status, ..)| *status == 200),
        "the catalog kept serving"
    );
    let catalog_digest = &responses[0].1;
    assert!(
        responses
            .iter()
            .all(|(_, digest, ..)| digest == catalog_digest),
        "the catalog was not swapped"
    );

    let nowhere = Forward::get("/api/orders/1").send(port).await;
    let problem = nowhere.assert_problem(404, None);
    assert_eq!(problem["detail"], "No component serves this path.");
    // Prefixes match whole segments, case-insensitively.
    assert_eq!(
        Forward::get("/api/catalogue/42").send(port).await.status,
        404
    );
    assert_eq!(Forward::get("/API/Catalog/42").send(port).await.status, 200);
}

#[tokio::test]
async fn sighup_reloads_when_watching_is_off() {
    let folder = app_folder("sighup", &[("app.wasm", guests::VERSION_ONE)]);
    let app = folder.join("app.wasm");
    let handler = HANDLER
        .builder(&app)
        .args(["--watch", "false", "--no-cache"])
        .start()
        .await;
    let port = handler.port();
    replace(&app, guests::VERSION_TWO);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        body(&Forward::get("/x").send(port).await),
        "one",
        "not watching: no reload yet"
    );
    handler.signal(SIGHUP);
    wait_for_body(port, "/x", "two").await;
    handler
        .wait_for_stdout(|line| line.contains("SIGHUP received"))
        .await;
}
