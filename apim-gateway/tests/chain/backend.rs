//! The backend by id: `set-backend-service backend-id="catalog-functions"`
//! (learn.microsoft.com/azure/api-management/set-backend-service-policy)
//! names the pool whose member carries the function key from a named value
//! in its credentials (learn.microsoft.com/azure/api-management/backends);
//! the credentials policies of catalog-api.xml remove what the client
//! sent. The key reaches the Functions host, never the guest, never a log.
//! The circuit breaker and the pool's priorities
//! (backends#circuit-breaker, backends#load-balanced-pool).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use test_harness::TempApp;
use test_harness::upstream::Upstream;

use crate::support::{Chain, Options, assert_gateway_problem, local_file_variant, named_value};

#[tokio::test]
async fn the_backend_gets_the_named_values_key_and_none_of_the_clients_credentials() {
    // A recording backend: what the function app would receive.
    let backend = Upstream::start().await;
    let chain = Chain::start_with(Options {
        backend_url: Some(format!("http://127.0.0.1:{}", backend.port())),
        ..Options::default()
    })
    .await;
    let response = chain
        .send(
            "GET",
            &format!(
                "/catalog/api/catalog/health?subscription-key={}&code=client-code&keep=1",
                chain.subscription_key
            ),
            &[
                (
                    "Authorization".to_owned(),
                    format!("Bearer {}", chain.token()),
                ),
                ("x-functions-key".to_owned(), "client-chosen-key".to_owned()),
            ],
        )
        .await;
    assert_eq!(response.status, 204, "{:?}", response.body);
    let headers = &backend.headers()[0];
    let keys: Vec<&str> = headers
        .get_all("x-functions-key")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(
        keys,
        [chain.function_key.as_str()],
        "only the named value's key"
    );
    for removed in ["authorization", "ocp-apim-subscription-key"] {
        assert!(headers.get(removed).is_none(), "the backend got {removed}");
    }
    assert_eq!(
        headers.get("x-apim-gateway").map(|v| v.as_bytes()),
        Some(&b"apim-catalog"[..])
    );
    assert_eq!(backend.uris(), ["/api/catalog/health?keep=1"]);
}

#[tokio::test]
async fn the_functions_host_takes_the_key_and_no_secret_reaches_a_log() {
    let chain = Chain::start().await;
    let token = chain.token();
    // An item is authLevel function: the Functions host checks the key the
    // backend entity sent.
    let item = chain
        .get(
            "/catalog/api/catalog/42",
            &[("x-functions-key", "client-chosen-key")],
        )
        .await;
    assert_eq!(item.status, 200, "{:?}", item.body);
    chain.guest_logged(&["item_id=42"]).await;
    for line in chain.consoles() {
        for secret in [&chain.function_key, &chain.subscription_key, &token] {
            assert!(
                !line.contains(secret.as_str()),
                "a secret in a log line: {line}"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_function_key_in_the_named_value_is_refused_by_the_functions_host() {
    let chain = Chain::start_with(Options {
        env: vec![(
            "CATALOG_FUNCTION_KEY".to_owned(),
            "not-the-host-key".to_owned(),
        )],
        ..Options::default()
    })
    .await;
    let response = chain.get("/catalog/api/catalog/42", &[]).await;
    // The Functions host's 401 (empty body) passes through APIM as the
    // backend's answer: no policy error, so no envelope.
    assert_eq!(response.status, 401);
    assert_eq!(chain.settled_invocations().await, 0);
}

/// A backend that answers 500 to everything, counting requests.
async fn failing_backend() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("binding");
    let port = listener.local_addr().expect("an address").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            let service = hyper::service::service_fn(move |_request| {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"down")));
                    *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (port, hits)
}

#[tokio::test]
async fn five_5xx_answers_trip_the_breaker_and_callers_get_503_at_once() {
    let (port, hits) = failing_backend().await;
    let chain = Chain::start_with(Options {
        backend_url: Some(format!("http://127.0.0.1:{port}")),
        ..Options::default()
    })
    .await;
    // count 5 in interval PT1M (function-backend.bicep, local-gateway.json).
    for call in 1..=5 {
        let response = chain.get("/catalog/api/catalog/health", &[]).await;
        assert_eq!(
            response.status, 500,
            "call {call}: the backend's own answer"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 5);
    let response = chain
        .get(
            "/catalog/api/catalog/health",
            &[("x-correlation-id", "tripped")],
        )
        .await;
    let problem = assert_gateway_problem(&response, 503, "tripped");
    assert_eq!(problem["title"], "Service Unavailable");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        5,
        "an open breaker sends the backend nothing"
    );
}

#[tokio::test]
async fn a_pool_member_down_trips_and_the_next_priority_takes_the_traffic() {
    let folder = TempApp::empty("apim-pool");
    let dead = format!("http://127.0.0.1:{}", test_harness::free_port());
    let local = local_file_variant(&folder, |json| {
        let backends = json["backends"].as_object_mut().expect("backends");
        let mut secondary = backends["catalog-functions-primary"].clone();
        secondary["circuitBreaker"]["rules"][0]["name"] =
            "catalog-functions-secondary-failing".into();
        backends.insert("catalog-functions-secondary".to_owned(), secondary);
        // The primary is down; the secondary is the emulator.
        backends["catalog-functions-primary"]["url"] = dead.clone().into();
        backends["catalog-functions"]["pool"]["services"] = serde_json::json!([
            {"id": "catalog-functions-primary", "priority": 1, "weight": 1},
            {"id": "catalog-functions-secondary", "priority": 2, "weight": 1}
        ]);
    });
    let chain = Chain::start_with(Options {
        local_file: Some(local),
        ..Options::default()
    })
    .await;
    // Failed connections count (errorReasons BackendConnectionFailure):
    // five 502 problems, then the breaker opens and priority 2 answers.
    for call in 1..=5 {
        let id = format!("down-{call}");
        let response = chain
            .get("/catalog/api/catalog/health", &[("x-correlation-id", &id)])
            .await;
        let problem = assert_gateway_problem(&response, 502, &id);
        assert_eq!(problem["detail"], "The backend could not be reached.");
    }
    for _ in 0..3 {
        let response = chain.get("/catalog/api/catalog/health", &[]).await;
        assert_eq!(response.status, 200, "{:?}", response.body);
    }
    assert_eq!(chain.settled_invocations().await, 3);
}

#[tokio::test]
async fn backend_auth_managed_identity_sends_a_token_of_the_gateways_identity() {
    // catalog-api.xml's choose on {{catalog-backend-auth}}: with
    // managedIdentity, authentication-managed-identity
    // (learn.microsoft.com/azure/api-management/authentication-managed-identity-policy)
    // sets Authorization: Bearer, a token for {{catalog-backend-app-id}};
    // here the local identity's. wasm-handler never gives a guest
    // Authorization, so a recording backend stands in for the app.
    let backend = Upstream::start().await;
    let chain = Chain::start_with(Options {
        backend_url: Some(format!("http://127.0.0.1:{}", backend.port())),
        // As the Bicep deploys it: no function key in the backend entity.
        env: vec![
            (
                "CATALOG_BACKEND_AUTH".to_owned(),
                "managedIdentity".to_owned(),
            ),
            ("CATALOG_FUNCTION_KEY".to_owned(), String::new()),
        ],
        ..Options::default()
    })
    .await;
    let caller = chain.token();
    let response = chain.get("/catalog/api/catalog/health", &[]).await;
    assert_eq!(response.status, 204, "{:?}", response.body);
    let headers = backend.headers();
    let authorization: Vec<&str> = headers[0]
        .get_all("authorization")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let [bearer] = authorization.as_slice() else {
        panic!("one Authorization header, not {authorization:?}");
    };
    assert!(
        headers[0].get("x-functions-key").is_none(),
        "no key with a managed identity: {:?}",
        headers[0]
    );
    let token = bearer.strip_prefix("Bearer ").expect("a bearer token");
    assert_ne!(
        token, caller,
        "the caller's token never reaches the backend"
    );
    // Signed by the gateway's identity, for the backend app, checked with
    // the keys the gateway publishes.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(
        &chain
            .send("GET", apim_gateway::identity::JWKS_PATH, &[])
            .await
            .body,
    )
    .expect("a JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).expect("an RSA key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[named_value("catalog-backend-app-id")]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("a valid token for the backend app")
        .claims;
    assert_eq!(claims["sub"], "managed-identity:apim-catalog-local");
}
