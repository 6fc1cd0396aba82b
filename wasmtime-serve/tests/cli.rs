//! The binary is wasmtime-cli's: `wasmtime serve --help` lists the options
//! `wasmtime serve` has, and `--version` names the release Cargo.lock holds.

use std::process::Command;

#[test]
fn it_is_wasmtime_serve_of_the_pinned_release() {
    let version = Command::new(env!("CARGO_BIN_EXE_wasmtime"))
        .arg("--version")
        .output()
        .expect("running wasmtime --version");
    assert!(version.status.success());
    let version = String::from_utf8_lossy(&version.stdout);
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("reading Cargo.lock");
    let locked = lock
        .split("[[package]]")
        .find(|entry| entry.contains("name = \"wasmtime-cli\"\n"))
        .and_then(|entry| {
            entry
                .lines()
                .find_map(|line| line.strip_prefix("version = "))
        })
        .map(|version| version.trim_matches('"'))
        .expect("wasmtime-cli in Cargo.lock");
    assert_eq!(version.trim(), format!("wasmtime {locked}"));

    let help = Command::new(env!("CARGO_BIN_EXE_wasmtime"))
        .args(["serve", "--help"])
        .output()
        .expect("running wasmtime serve --help");
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for option in ["--addr", "-S", "--max-instance-reuse-count"] {
        assert!(
            help.contains(option),
            "serve --help lacks {option}:\n{help}"
        );
    }
}
