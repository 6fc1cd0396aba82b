//! `validate-jwt` in catalog-api.xml
//! (learn.microsoft.com/azure/api-management/validate-jwt-policy): a real
//! RS256 signature against the keys of the OpenID configuration the named
//! value points at, the issuer, the audience, the lifetime with the
//! policy's 60 s of clock skew, and the app role; every refusal is
//! global.xml's 401 problem with `WWW-Authenticate`, and none reaches the
//! function.

use std::process::Command;
use std::time::Duration;

use crate::support::{Chain, GATEWAY, assert_gateway_problem, local_file, named_value};

const ITEM: &str = "/catalog/api/catalog/42";

#[tokio::test]
async fn a_token_missing_bad_expired_or_for_another_audience_is_a_401_problem() {
    let chain = Chain::start().await;
    let bearer = |token: String| Some(format!("Bearer {token}"));
    // Each case with the LastError.Reason the error-handling reference
    // lists for it (learn.microsoft.com/azure/api-management/api-management-error-handling-policies).
    let cases: Vec<(&str, &str, Option<String>)> = vec![
        ("missing", "TokenNotPresent", None),
        (
            "not a JWT",
            "JwtInvalid",
            Some("Bearer not-a-token".to_owned()),
        ),
        (
            "another scheme",
            "TokenNotPresent",
            Some(format!("Basic {}", chain.token())),
        ),
        (
            "expired",
            "TokenExpired",
            // Expired 100 s ago: past the 60 s of clock skew.
            bearer(chain.token_with(|t| {
                t.issued_ago = Duration::from_secs(700);
                t.lifetime = Duration::from_secs(600);
            })),
        ),
        (
            "wrong audience",
            "TokenAudienceNotAllowed",
            bearer(chain.token_with(|t| t.audience = "api://someone-else".to_owned())),
        ),
        (
            "wrong issuer",
            "TokenIssuerNotAllowed",
            bearer(
                chain
                    .token_with(|t| t.issuer = Some("https://login.example/other/v2.0".to_owned())),
            ),
        ),
        (
            "without the app role",
            "TokenClaimValueNotAllowed",
            bearer(chain.token_with(|t| t.roles = vec!["Catalog.Write".to_owned()])),
        ),
        (
            "without roles",
            "TokenClaimNotFound",
            bearer(chain.token_with(|t| t.roles.clear())),
        ),
        (
            "not yet valid",
            "JwtInvalid",
            // nbf two minutes ahead: past the clock skew.
            bearer(chain.token_with(|t| t.not_before_in = Duration::from_secs(120))),
        ),
        (
            "bad signature",
            "TokenSignatureInvalid",
            bearer(tamper(&chain.token())),
        ),
    ];
    let before = chain.settled_invocations().await;
    // The readiness poll's GET / was an OperationNotFound.
    let earlier = chain.reasons(1).await.len();
    for (index, (case, reason, authorization)) in cases.iter().enumerate() {
        let correlation_id = format!("jwt-{}", case.replace(' ', "-"));
        let response = chain
            .get_with(
                ITEM,
                authorization.as_deref(),
                &[("x-correlation-id", &correlation_id)],
            )
            .await;
        let problem = assert_gateway_problem(&response, 401, &correlation_id);
        assert_eq!(
            problem["detail"], "A valid bearer token is required.",
            "{case}"
        );
        assert_eq!(problem["instance"], ITEM, "{case}");
        assert_eq!(
            response.header("www-authenticate"),
            Some(r#"Bearer realm="catalog""#),
            "{case}"
        );
        assert_eq!(response.header("retry-after"), None, "{case}");
        let reasons = chain.reasons(earlier + index + 1).await;
        assert_eq!(
            reasons.get(earlier + index).map(String::as_str),
            Some(*reason),
            "{case}: {reasons:?}"
        );
    }
    assert_eq!(
        chain.settled_invocations().await,
        before + 1,
        "no refused request reached the function"
    );

    // Expired 30 s ago: within the clock skew, so it passes.
    let within_skew = chain.token_with(|t| {
        t.issued_ago = Duration::from_secs(630);
        t.lifetime = Duration::from_secs(600);
    });
    let response = chain
        .get_with(ITEM, Some(&format!("Bearer {within_skew}")), &[])
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
}

#[tokio::test]
async fn the_token_subcommand_issues_a_token_the_policy_accepts() {
    let chain = Chain::start().await;
    let output = Command::new(GATEWAY)
        .args(["token", "--config"])
        .arg(local_file())
        .arg("--state-dir")
        .arg(chain.state_dir())
        .args(["--aud", &named_value("catalog-jwt-audience")])
        .args(["--role", &named_value("catalog-required-role")])
        .output()
        .expect("running apim-gateway token");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).expect("UTF-8");
    let response = chain
        .get_with(ITEM, Some(&format!("Bearer {}", token.trim())), &[])
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
}

/// The token with one character of its signature changed.
fn tamper(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let middle = token.rfind('.').expect("three parts") + 10;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

#[tokio::test]
async fn the_policys_clock_skew_is_the_one_applied() {
    // The same policy with clock-skew="0": a token expired 30 s ago, which
    // the repository's 60 s let through above, is refused.
    let folder = test_harness::TempApp::empty("apim-skew");
    let apim = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../apim/policies");
    let policy = std::fs::read_to_string(apim.join("catalog-api.xml")).expect("reading");
    assert!(policy.contains(r#"clock-skew="60""#));
    let changed = folder.root.join("catalog-api.xml");
    std::fs::write(
        &changed,
        policy.replace(r#"clock-skew="60""#, r#"clock-skew="0""#),
    )
    .expect("writing");
    let local = crate::support::local_file_variant(&folder, |json| {
        json["apis"]["catalog"]["policy"] = changed.display().to_string().into();
    });
    let chain = Chain::start_with(crate::support::Options {
        local_file: Some(local),
        ..crate::support::Options::default()
    })
    .await;
    let expired = chain.token_with(|t| {
        t.issued_ago = Duration::from_secs(630);
        t.lifetime = Duration::from_secs(600);
    });
    let response = chain
        .get_with(
            ITEM,
            Some(&format!("Bearer {expired}")),
            &[("x-correlation-id", "skew-0")],
        )
        .await;
    assert_gateway_problem(&response, 401, "skew-0");
    let reasons = chain.reasons(2).await;
    assert_eq!(
        reasons.last().map(String::as_str),
        Some("TokenExpired"),
        "{reasons:?}"
    );
}
