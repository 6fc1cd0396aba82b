//! The gateway runs every policy and expression of `apim/policies/` or
//! refuses to start: `apim-gateway check` (what `serve` runs first) passes
//! on the repository's files, and names the file, line and construct of
//! anything it does not support (the policy reference lists what each
//! element takes: learn.microsoft.com/azure/api-management/api-management-policies).

use std::path::Path;
use std::process::Command;

use test_harness::TempApp;

use crate::support::{GATEWAY, local_file, local_file_variant};

/// `apim-gateway <subcommand>` on `config`, with the environment its
/// named values and subscription read.
fn gateway(subcommand: &[&str], config: &Path, state: &TempApp) -> Command {
    let mut command = Command::new(GATEWAY);
    command
        .args(subcommand)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(&state.root)
        .env("CATALOG_FUNCTION_KEY", "k")
        .env("CATALOG_SUBSCRIPTION_KEY", "s");
    command
}

fn check(config: &Path, state: &TempApp) -> (bool, String) {
    let output = gateway(&["check"], config, state)
        .output()
        .expect("running apim-gateway check");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_repository_policies_are_all_supported() {
    let state = TempApp::empty("apim-check");
    let (ok, stderr) = check(&local_file(), &state);
    assert!(ok, "{stderr}");
}

#[test]
fn an_unsupported_construct_stops_the_gateway_naming_file_line_and_construct() {
    let apim = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apim/policies");
    let original = std::fs::read_to_string(apim.join("get-catalog-item.xml")).expect("reading");
    let anchor = "    <set-variable name=\"cacheStatus\" value=\"miss\" />";
    assert!(original.contains(anchor));
    let line = original[..original.find(anchor).expect("anchor")]
        .lines()
        .count()
        + 1;
    let cases = [
        (
            "<send-request mode=\"new\" response-variable-name=\"r\" />",
            "the policy <send-request> is not supported",
        ),
        (
            "<set-variable name=\"body\" value=\"@(context.Request.Body.As&lt;string&gt;())\" />",
            "Body",
        ),
        (
            "<set-header name=\"x\" exists-action=\"override\" unknown=\"1\"><value>v</value></set-header>",
            "the attribute `unknown` of <set-header> is not supported",
        ),
        (
            "<set-variable name=\"v\" value=\"{{no-such-value}}\" />",
            "the named value `no-such-value` is not defined",
        ),
    ];
    for (statement, construct) in cases {
        let folder = TempApp::empty("apim-unsupported");
        let changed = original.replacen(anchor, &format!("    {statement}\n{anchor}"), 1);
        let policy = folder.root.join("get-catalog-item.xml");
        std::fs::write(&policy, changed).expect("writing");
        let config = local_file_variant(&folder, |json| {
            json["apis"]["catalog"]["operationPolicies"]["getcatalogitem"] =
                policy.display().to_string().into();
        });
        let (ok, checked) = check(&config, &folder);
        assert!(!ok, "{statement} was accepted");
        assert!(checked.contains(construct), "{statement}: {checked}");
        // serve loads the same way, and exits before it listens.
        let mut serve = gateway(&["serve", "--port", "0"], &config, &folder)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running apim-gateway serve");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = serve.try_wait().expect("waiting") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = serve.kill();
                panic!("serve started with {statement}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(!status.success(), "serve started with {statement}");
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut serve.stderr.take().expect("piped"), &mut stderr)
            .expect("stderr");
        assert!(stderr.contains(construct), "{statement}: {stderr}");
        let at = format!("{}:{line}", policy.display());
        assert!(stderr.contains(&at), "{statement}: no {at} in {stderr}");
        assert!(
            stderr.contains(construct),
            "{statement}: no {construct:?} in {stderr}"
        );
    }
}
