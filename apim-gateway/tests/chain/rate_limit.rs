//! `rate-limit-by-key` in catalog-api.xml
//! (learn.microsoft.com/azure/api-management/rate-limit-by-key-policy):
//! 100 calls per 60 s per subscription; the next call gets global.xml's
//! 429 problem with `Retry-After` (from `retry-after-variable-name`) and
//! never reaches the function. A request refused by validate-jwt, which
//! runs first, spends nothing.

use crate::support::{Chain, assert_gateway_problem};

const HEALTH: &str = "/catalog/api/catalog/health";

#[tokio::test]
async fn a_burst_past_100_calls_a_minute_gets_429_with_retry_after() {
    let chain = Chain::start().await;
    // Refused tokens first: they must not count.
    for _ in 0..5 {
        let response = chain.get_with(HEALTH, None, &[]).await;
        assert_eq!(response.status, 401);
    }
    let before = chain.invocations();
    for call in 1..=100 {
        let id = format!("burst-{call}");
        let response = chain.get(HEALTH, &[("x-correlation-id", &id)]).await;
        assert_eq!(
            response.status, 200,
            "call {call} of 100: {:?}",
            response.body
        );
    }
    let response = chain
        .get(HEALTH, &[("x-correlation-id", "burst-101")])
        .await;
    let problem = assert_gateway_problem(&response, 429, "burst-101");
    let retry_after: u64 = response
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {:?}", response.headers));
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        problem["detail"],
        format!("Too many requests: retry after {retry_after} seconds.")
    );
    assert_eq!(response.header("www-authenticate"), None);
    // The function took the 100 calls and not the 101st (nor the 401s):
    // once the 100th is in its console, nothing else is.
    chain.guest_logged(&["correlation_id=burst-100"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(chain.invocations(), before + 100);
}
