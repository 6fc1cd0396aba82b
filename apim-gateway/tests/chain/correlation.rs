//! The correlation id of catalog-api.xml (`set-variable` with
//! `Regex.IsMatch` and `context.RequestId`,
//! learn.microsoft.com/azure/api-management/set-variable-policy,
//! api-management-policy-expressions): a valid incoming `x-correlation-id`
//! is kept; a missing or invalid one becomes this gateway request's id.
//! Either way it reaches the guest (`set-header`,
//! learn.microsoft.com/azure/api-management/set-header-policy), is in the
//! guest's log line, and comes back to the client.

use crate::support::Chain;

#[tokio::test]
async fn an_incoming_id_is_kept_and_a_new_one_is_made_from_the_request_id() {
    let chain = Chain::start().await;

    let kept = chain
        .get(
            "/catalog/api/catalog/health",
            &[("x-correlation-id", "6d9f")],
        )
        .await;
    assert_eq!(kept.status, 200);
    assert_eq!(kept.header("x-correlation-id"), Some("6d9f"));

    let item = chain
        .get(
            "/catalog/api/catalog/43",
            &[("x-correlation-id", "order-77")],
        )
        .await;
    assert_eq!(item.json()["correlation_id"], "order-77");
    chain
        .guest_logged(&[
            "item_id=43",
            "correlation_id=order-77",
            "routed_by=apim-catalog",
        ])
        .await;

    let mut made = Vec::new();
    for incoming in [None, Some("has a space"), Some(&*"x".repeat(129))] {
        let headers: Vec<(&str, &str)> = incoming
            .iter()
            .map(|id| ("x-correlation-id", *id))
            .collect();
        let response = chain.get("/catalog/api/catalog/44", &headers).await;
        let id = response
            .header("x-correlation-id")
            .unwrap_or_else(|| panic!("an id for {incoming:?}"))
            .to_owned();
        // context.RequestId.ToString(): a GUID, 8-4-4-4-12 hex digits.
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id:?} for {incoming:?}");
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_ne!(Some(id.as_str()), incoming);
        made.push(id);
    }
    // The guest saw the gateway's id: the first 44 was a miss that reached it.
    let first = chain.guest_logged(&["item_id=44"]).await;
    assert!(first.contains("correlation_id="), "{first}");
    let logged = first
        .rsplit("correlation_id=")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    assert_eq!(
        logged, made[0],
        "the id the client got is the one the guest logged: {first}"
    );
}
