//! The catalog API through the host: statuses, bodies, headers, conditional
//! GET. Every check runs against both builds of the catalog, the same
//! business logic behind the WASI 0.2 glue (`guest/`) and the 0.3 one
//! (`guest/p3/`).

use test_harness::functions_host::Forward;

use crate::HANDLER;

/// One test per check and per build: `p2::<check>` and `p3::<check>`.
macro_rules! in_both_worlds {
    ($($check:ident),* $(,)?) => {
        mod p2 {
            $(#[tokio::test]
            async fn $check() {
                super::$check(test_harness::guests::CATALOG).await;
            })*
        }
        mod p3 {
            $(#[tokio::test]
            async fn $check() {
                super::$check(test_harness::guests::CATALOG_P3).await;
            })*
        }
    };
}

in_both_worlds!(
    item_42_carries_the_apim_context,
    the_whole_catalog_is_served_from_real_data,
    etag_round_trip_gives_304,
    errors_are_problems_with_the_correlation_id,
    health_and_openapi_are_served,
);

async fn item_42_carries_the_apim_context(component: &str) {
    let handler = HANDLER.start(component).await;
    let response = Forward::get("/api/catalog/42")
        .header("x-correlation-id", "6d9f")
        .header("x-apim-cache", "hit")
        .send(handler.port())
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.header("cache-control"),
        Some("public, max-age=300")
    );
    assert_eq!(response.header("x-correlation-id"), Some("6d9f"));
    let etag = response.header("etag").expect("an ETag");
    assert!(
        etag.len() == 18 && etag.starts_with('"') && !etag.starts_with("W/"),
        "strong ETag: {etag}"
    );
    let item = response.json();
    assert_eq!(item["item_id"], "42");
    assert_eq!(item["correlation_id"], "6d9f");
    assert_eq!(item["cache_status"], "hit");
    assert_eq!(item["routed_by"], "azure-api-management");
    assert!(item["name"].as_str().is_some_and(|name| !name.is_empty()));

    let routed = Forward::get("/api/catalog/42")
        .header("x-apim-gateway", "apim-westeurope")
        .send(handler.port())
        .await;
    assert_eq!(routed.json()["routed_by"], "apim-westeurope");
    assert_eq!(routed.json()["cache_status"], "bypass");
}

async fn the_whole_catalog_is_served_from_real_data(component: &str) {
    let handler = HANDLER.start(component).await;
    let mut found = 0;
    for id in 1..=60 {
        let response = Forward::get(&format!("/api/catalog/{id}"))
            .send(handler.port())
            .await;
        match response.status {
            200 => {
                assert_eq!(response.json()["item_id"], id.to_string());
                found += 1;
            }
            404 => {
                response.assert_problem(404, None);
            }
            other => panic!("item {id}: unexpected status {other}"),
        }
    }
    assert!(found >= 50, "{found} items found");
}

async fn etag_round_trip_gives_304(component: &str) {
    let handler = HANDLER.start(component).await;
    let first = Forward::get("/api/catalog/7").send(handler.port()).await;
    let etag = first.header("etag").expect("an ETag").to_owned();

    for if_none_match in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let response = Forward::get("/api/catalog/7")
            .header("if-none-match", &if_none_match)
            .send(handler.port())
            .await;
        assert_eq!(response.status, 304, "If-None-Match: {if_none_match}");
        assert!(response.body.is_empty());
        assert_eq!(response.header("etag"), Some(etag.as_str()));
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=300")
        );
        assert!(response.header("x-correlation-id").is_some());
    }

    let stale = Forward::get("/api/catalog/7")
        .header("if-none-match", "\"0000000000000000\"")
        .send(handler.port())
        .await;
    assert_eq!(stale.status, 200);
    let other_item = Forward::get("/api/catalog/8")
        .header("if-none-match", &etag)
        .send(handler.port())
        .await;
    assert_eq!(other_item.status, 200, "another item's ETag does not match");
}

async fn errors_are_problems_with_the_correlation_id(component: &str) {
    let handler = HANDLER.start(component).await;
    for (path, status) in [
        ("/api/catalog/not-a-number", 400),
        ("/api/catalog/0042", 400),
        ("/api/catalog/13", 404),
        ("/api/catalog/42/reviews", 404),
        ("/api/orders/1", 404),
    ] {
        let response = Forward::get(path)
            .header("x-correlation-id", "err-1")
            .send(handler.port())
            .await;
        let problem = response.assert_problem(status, Some("err-1"));
        assert_eq!(problem["instance"], path);
    }
    for method in [http::Method::POST, http::Method::DELETE, http::Method::PUT] {
        let response = Forward::new(method.clone(), "/api/catalog/42")
            .body("{}")
            .send(handler.port())
            .await;
        response.assert_problem(405, None);
        assert_eq!(response.header("allow"), Some("GET"), "{method}");
    }
}

async fn health_and_openapi_are_served(component: &str) {
    let handler = HANDLER.start(component).await;
    let health = Forward::get("/api/catalog/health")
        .send(handler.port())
        .await;
    assert_eq!(health.status, 200);
    let body = health.json();
    assert_eq!(
        (body["status"].as_str(), body["backend"].as_str()),
        (Some("ok"), Some("functions"))
    );
    assert!(body["version"].is_string());
    assert_eq!(health.header("cache-control"), Some("no-store"));

    let document = Forward::get("/api/openapi.json").send(handler.port()).await;
    assert_eq!(document.status, 200);
    assert_eq!(document.json()["openapi"], "3.1.0");
}
