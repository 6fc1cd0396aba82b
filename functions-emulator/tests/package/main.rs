//! The deploy package (`scripts/package`): the zip unpacks, with the handler's
//! executable bit, into a folder the local Functions host serves, with a
//! statically linked handler that loads the precompiled artifact instead of
//! compiling.
//!
//! Needs the zips: `scripts/test` runs `scripts/package`, and
//! `scripts/package --auth-level anonymous` for the managed-identity
//! deployment, and then this test
//! (`cargo test --release -p functions-emulator --test package`), with
//! `WASM_HANDLER_PACKAGE` and `WASM_HANDLER_PACKAGE_ANONYMOUS` naming them
//! (default `dist/functionapp.zip` and `dist/functionapp-anonymous.zip`).

// The e2e suite's harness; this test uses only part of it.
#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use support::{Emulator, TempApp};

fn package() -> PathBuf {
    zip_named("WASM_HANDLER_PACKAGE", "functionapp.zip")
}

fn zip_named(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../dist")
                .join(default)
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{} is missing: run scripts/package first (scripts/test does)",
        path.display()
    );
    path
}

/// Unpacks `zip` into `root` as a deployment does, Unix modes included.
/// Returns each entry's name and mode.
fn unpack(zip: &Path, root: &Path) -> Vec<(String, u32)> {
    let file = std::fs::File::open(zip).expect("opening the package");
    let mut archive = zip::ZipArchive::new(file).expect("a zip");
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).expect("an entry");
        let name = entry
            .enclosed_name()
            .expect("entries stay inside the app folder");
        let mode = entry.unix_mode().expect("entries made by Unix, with modes");
        let target = root.join(&name);
        std::fs::create_dir_all(target.parent().expect("a folder")).expect("creating a folder");
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("reading an entry");
        std::fs::write(&target, bytes).expect("writing a file");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o777))
            .expect("setting the mode");
        entries.push((name.to_string_lossy().into_owned(), mode & 0o777));
    }
    entries.sort();
    entries
}

/// Whether an ELF executable asks for a dynamic loader (a `PT_INTERP` program
/// header): a static one runs whatever libc the machine has.
fn needs_a_dynamic_loader(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF executable");
    assert_eq!(elf[4], 2, "64-bit");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 62, "x86-64");
    let program_headers = u64::from_le_bytes(elf[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let entry_size = u16::from_le_bytes([elf[0x36], elf[0x37]]) as usize;
    let count = u16::from_le_bytes([elf[0x38], elf[0x39]]) as usize;
    const PT_INTERP: u32 = 3;
    (0..count).any(|index| {
        let at = program_headers + index * entry_size;
        u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes")) == PT_INTERP
    })
}

#[tokio::test]
async fn the_package_unpacks_into_an_app_the_functions_host_serves() {
    let app = TempApp::empty("package");
    let entries = unpack(&package(), &app.root);
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "catalog-health/function.json",
            "catalog-item/function.json",
            "catalog.cwasm",
            "catalog.cwasm.json",
            "catalog.wasm",
            "host.json",
            "openapi/function.json",
            "wasm-handler",
        ]
    );
    for (name, mode) in &entries {
        let executable = mode & 0o111 != 0;
        assert_eq!(executable, name == "wasm-handler", "{name}: {mode:o}");
    }
    let handler = std::fs::read(app.root.join("wasm-handler")).expect("the handler");
    assert!(
        !needs_a_dynamic_loader(&handler),
        "wasm-handler must be statically linked"
    );

    let emulator = Emulator::start_ready(&app, &[]).await;
    let item = emulator.get("/api/catalog/42").await;
    assert_eq!(item.status, 200, "{:?}", item.body);
    assert_eq!(item.json()["sku"], "LIG-0042");
    assert_eq!(emulator.get("/api/catalog/health").await.status, 200);
    assert_eq!(emulator.get("/api/openapi.json").await.status, 200);
    // The baseline-CPU artifact was loaded, not the .wasm compiled.
    let serving = emulator
        .wait_for_line(|line| line.contains("Serving component"))
        .await;
    assert!(
        serving.contains("origin=\"precompiled") && serving.contains("catalog.cwasm"),
        "{serving}"
    );
}

/// Keys are checked as the function.json files say (`--enable-auth`, as in
/// Azure): the default package asks for one on the catalog, the one built
/// with `--auth-level anonymous` (App Service Authentication in front,
/// apim/README.md) asks for none, and is otherwise the same app.
#[tokio::test]
async fn the_anonymous_package_asks_for_no_key_and_the_default_one_does() {
    let keys = ["--enable-auth", "--host-key", "host-secret"];
    for (zip, keyless_status) in [
        (package(), 401),
        (
            zip_named(
                "WASM_HANDLER_PACKAGE_ANONYMOUS",
                "functionapp-anonymous.zip",
            ),
            200,
        ),
    ] {
        let app = TempApp::empty("package-auth");
        unpack(&zip, &app.root);
        let emulator = Emulator::start_ready(&app, &keys).await;
        for path in ["/api/catalog/42", "/api/openapi.json"] {
            let keyless = emulator.get(path).await;
            assert_eq!(keyless.status, keyless_status, "{}: {path}", zip.display());
            let keyed = emulator
                .send("GET", path, &[("x-functions-key", "host-secret")], "")
                .await;
            assert_eq!(keyed.status, 200, "{}: {path}", zip.display());
        }
        assert_eq!(emulator.get("/api/catalog/health").await.status, 200);
    }
}
