//! One error envelope for the whole chain: the gateway's own errors
//! (global.xml's `on-error` with `return-response`,
//! learn.microsoft.com/azure/api-management/api-management-error-handling-policies,
//! return-response-policy), wasm-handler's and the guest's are all RFC 9457
//! problems carrying the same correlation id, the one the client sent.

use crate::support::{Chain, assert_gateway_problem};

#[tokio::test]
async fn the_gateway_the_handler_and_the_guest_answer_problems_with_one_correlation_id() {
    let chain = Chain::start().await;
    let id = "envelope-1";

    // The gateway: no subscription key (SubscriptionKeyNotFound).
    let response = chain
        .send(
            "GET",
            "/catalog/api/catalog/42",
            &[("x-correlation-id".to_owned(), id.to_owned())],
        )
        .await;
    let problem = assert_gateway_problem(&response, 401, id);
    assert_eq!(problem["detail"], "A valid subscription key is required.");
    // A wrong one (SubscriptionKeyInvalid).
    let response = chain
        .send(
            "GET",
            "/catalog/api/catalog/42",
            &[
                ("x-correlation-id".to_owned(), id.to_owned()),
                (
                    "Ocp-Apim-Subscription-Key".to_owned(),
                    "not-a-key".to_owned(),
                ),
            ],
        )
        .await;
    assert_gateway_problem(&response, 401, id);
    // A path no API has (OperationNotFound, at the service scope).
    let response = chain
        .send(
            "GET",
            "/nothing/here",
            &[("x-correlation-id".to_owned(), id.to_owned())],
        )
        .await;
    let problem = assert_gateway_problem(&response, 404, id);
    assert_eq!(problem["instance"], "/nothing/here");

    // wasm-handler: a request target past its 8 KiB limit (health keeps
    // its query string; only getCatalogItem drops it).
    let long = format!("/catalog/api/catalog/health?pad={}", "p".repeat(9000));
    let response = chain.get(&long, &[("x-correlation-id", id)]).await;
    let problem = response.assert_problem(414, Some(id));
    assert_eq!(
        response.header("x-apim-cache"),
        Some("bypass"),
        "it came through the gateway"
    );
    assert!(problem["detail"].is_string());

    // The guest: an item id that is not a number, and an unknown item.
    let response = chain
        .get("/catalog/api/catalog/abc", &[("x-correlation-id", id)])
        .await;
    response.assert_problem(400, Some(id));
    let response = chain
        .get("/catalog/api/catalog/999999", &[("x-correlation-id", id)])
        .await;
    response.assert_problem(404, Some(id));
}
