//! The command line of the real binary: help, and clear errors (exit code 1,
//! one readable line) for every way start-up can fail.

use std::process::{Command, Output};

fn wasm_handler(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasm-handler"));
    command
        .args(args)
        .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .env_remove("FUNCTIONS_HTTPWORKER_PORT");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("running wasm-handler")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn scratch_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, contents).expect("writing a scratch file");
    path
}

#[test]
fn help_names_the_options_and_their_environment_variables() {
    let output = wasm_handler(&["serve", "--help"], &[]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--component",
        "--listen",
        "--log-format",
        "FUNCTIONS_CUSTOMHANDLER_PORT",
        "WASM_HANDLER_COMPONENT",
    ] {
        assert!(help.contains(expected), "help lacks {expected}:\n{help}");
    }
}

#[test]
fn a_missing_component_is_a_clear_error() {
    let output = wasm_handler(&["serve", "--component", "/nonexistent/catalog.wasm"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("reading the component /nonexistent/catalog.wasm"),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_a_component_is_a_clear_error() {
    let text = scratch_file("not-a-component.wasm", b"hello");
    let core_module = scratch_file("core-module.wasm", b"\0asm\x01\0\0\0");
    for path in [text, core_module] {
        let output = wasm_handler(
            &["serve", "--component", path.to_str().expect("UTF-8 path")],
            &[],
        );
        assert_eq!(output.status.code(), Some(1));
        let message = stderr(&output);
        assert!(
            message.contains("is not a valid WebAssembly component"),
            "{message}"
        );
    }
}

#[test]
fn a_bad_port_from_the_functions_host_is_a_clear_error() {
    let component = scratch_file("unused.wasm", b"");
    let args = [
        "serve",
        "--component",
        component.to_str().expect("UTF-8 path"),
    ];
    let output = wasm_handler(&args, &[("FUNCTIONS_CUSTOMHANDLER_PORT", "seventy")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("FUNCTIONS_CUSTOMHANDLER_PORT=\"seventy\" is not a port number")
    );
}

#[test]
fn an_unknown_log_format_is_refused_by_the_parser() {
    let output = wasm_handler(
        &["serve", "--component", "x.wasm", "--log-format", "xml"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("invalid value 'xml'"));
}
