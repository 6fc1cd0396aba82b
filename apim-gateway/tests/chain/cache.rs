//! `cache-lookup` / `cache-store` in get-catalog-item.xml
//! (learn.microsoft.com/azure/api-management/cache-lookup-policy,
//! cache-store-policy), with `rewrite-uri` dropping the query before the
//! lookup (learn.microsoft.com/azure/api-management/rewrite-uri-policy):
//! the first GET of an item is a miss that the guest logs as
//! `cache_status=miss`; the next is answered by the gateway and never
//! reaches the function, a query-string variant included; another item is
//! a miss; only GET is cached.

use crate::support::Chain;

#[tokio::test]
async fn the_second_get_is_a_cache_hit_that_never_reaches_the_function() {
    let chain = Chain::start().await;
    let before = chain.invocations();

    let miss = chain
        .get("/catalog/api/catalog/42", &[("x-correlation-id", "first")])
        .await;
    assert_eq!(miss.status, 200, "{:?}", miss.body);
    assert_eq!(miss.header("x-apim-cache"), Some("miss"));
    assert_eq!(miss.header("x-correlation-id"), Some("first"));
    assert_eq!(miss.header("cache-control"), Some("private, max-age=300"));
    assert_eq!(miss.json()["cache_status"], "miss");
    assert_eq!(miss.json()["routed_by"], "apim-catalog");
    chain
        .guest_logged(&["item_id=42", "cache_status=miss", "correlation_id=first"])
        .await;
    assert_eq!(chain.invocations(), before + 1);

    let hit = chain
        .get("/catalog/api/catalog/42", &[("x-correlation-id", "second")])
        .await;
    assert_eq!(hit.status, 200);
    assert_eq!(hit.header("x-apim-cache"), Some("hit"));
    // The headers are this request's; the body is the stored one.
    assert_eq!(hit.header("x-correlation-id"), Some("second"));
    assert_eq!(hit.header("cache-control"), Some("private, max-age=300"));
    assert_eq!(hit.body, miss.body);
    assert_eq!(hit.header("etag"), miss.header("etag"));

    // The query string is dropped before the lookup: still the same entry.
    let variant = chain.get("/catalog/api/catalog/42?x=1&y=2", &[]).await;
    assert_eq!(variant.header("x-apim-cache"), Some("hit"));
    assert_eq!(variant.body, miss.body);
    assert_eq!(
        chain.settled_invocations().await,
        before + 1,
        "no hit reached the function"
    );

    // Another item is another entry.
    let other = chain.get("/catalog/api/catalog/7", &[]).await;
    assert_eq!(other.header("x-apim-cache"), Some("miss"));
    assert_eq!(chain.settled_invocations().await, before + 3);

    // Health has no cache policy: bypass, every time.
    for _ in 0..2 {
        let health = chain.get("/catalog/api/catalog/health", &[]).await;
        assert_eq!(health.header("x-apim-cache"), Some("bypass"));
    }
    assert_eq!(chain.settled_invocations().await, before + 6);
}

#[tokio::test]
async fn errors_are_not_stored_and_a_non_get_is_never_cached() {
    let chain = Chain::start().await;
    let before = chain.settled_invocations().await;
    // The guest's 404: only 200s are stored (cache-store without
    // cache-response), so the second one reaches the function too.
    for _ in 0..2 {
        let response = chain.get("/catalog/api/catalog/999999", &[]).await;
        assert_eq!(response.status, 404);
        assert_eq!(response.header("x-apim-cache"), Some("miss"));
    }
    assert_eq!(chain.settled_invocations().await, before + 3);
    // The API imports GET operations only: any other method matches no
    // operation, so the gateway answers 404 itself and nothing is cached
    // or forwarded.
    let headers = vec![
        (
            "Ocp-Apim-Subscription-Key".to_owned(),
            chain.subscription_key.clone(),
        ),
        (
            "Authorization".to_owned(),
            format!("Bearer {}", chain.token()),
        ),
        ("x-correlation-id".to_owned(), "post".to_owned()),
    ];
    for _ in 0..2 {
        let response = chain
            .send("POST", "/catalog/api/catalog/42", &headers)
            .await;
        let problem = response.assert_problem(404, Some("post"));
        assert_eq!(
            problem["detail"],
            "No API or operation of this gateway matches the request."
        );
        assert_eq!(response.header("x-apim-cache"), None);
    }
    assert_eq!(chain.settled_invocations().await, before + 4);
}
