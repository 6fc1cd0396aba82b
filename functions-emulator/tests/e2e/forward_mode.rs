//! Forward mode with the real function app, `wasm-handler` and components.

use test_harness::guests;

use crate::support::{Emulator, TempApp, message};

#[tokio::test]
async fn the_catalog_is_served_as_func_start_serves_it() {
    let app = TempApp::function_app("catalog", guests::CATALOG);
    let mut emulator = Emulator::start_ready(&app, &[]).await;
    let port = emulator.port();

    // The function list, as func start prints it.
    let console = emulator.console();
    let list_start = console
        .iter()
        .position(|line| line == "Functions:")
        .expect("a function list");
    let listed: Vec<&str> = console[list_start..]
        .iter()
        .filter(|line| line.starts_with("  "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        listed,
        [
            format!("  catalog: [GET] http://localhost:{port}/api/catalog/{{item_id}}"),
            format!("  health: [GET] http://localhost:{port}/api/catalog/health"),
            format!("  openapi: [GET] http://localhost:{port}/api/openapi.json"),
        ]
    );

    // An item, with the forwarded invocation id as correlation id.
    let item = emulator.get("/api/catalog/42").await;
    assert_eq!(item.status, 200, "{:?}", item.body);
    let body = item.json();
    assert_eq!(body["item_id"], "42");
    assert_eq!(body["sku"], "LIG-0042");
    let etag = item.header("etag").expect("an ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let id = emulator.invocation_id("catalog", &[]).await;
    assert_eq!(item.header("x-correlation-id"), Some(id.as_str()));
    assert_eq!(body["correlation_id"], id.as_str());
    let executed = format!("Executed 'Functions.catalog' (Succeeded, Id={id}, Duration=");
    emulator
        .wait_for_line(|line| line.contains(&executed))
        .await;

    // The handler's stdout line, timestamped, at Information (no level tag of
    // the emulator's own; the [Information] is wasm-handler's).
    let handled = emulator
        .wait_for_line(|line| line.contains("Handled APIM backend request item_id=42"))
        .await;
    assert!(
        message(&handled).starts_with(&format!(
            "[Information] Handled APIM backend request item_id=42 routed_by=azure-api-management correlation_id={id}"
        )),
        "{handled}"
    );

    // The literal route wins over catalog/{item_id}; literals match in any case.
    let health = emulator.get("/api/Catalog/HEALTH").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let health_id = emulator.invocation_id("health", &[]).await;
    assert_eq!(health.header("x-correlation-id"), Some(health_id.as_str()));

    // No function: 404 with an empty body, and no invocation.
    for (method, path) in [
        ("GET", "/api/nothing/here"),
        ("GET", "/catalog/42"),
        ("POST", "/api/catalog/42"),
        ("DELETE", "/api/catalog/health"),
    ] {
        let response = emulator.send(method, path, &[], "").await;
        assert_eq!(response.status, 404, "{method} {path}");
        assert!(
            response.body.is_empty(),
            "{method} {path}: {:?}",
            response.body
        );
    }
    assert_eq!(emulator.invocations(), 2);

    // SIGTERM: the handler is stopped with SIGTERM and the emulator exits 0.
    let handler_port = handler_port(&emulator.console());
    let status = emulator.stop().await;
    assert!(status.success(), "{status}");
    // Console lines are read as they come: the last one first, then the rest.
    emulator
        .wait_for_line(|line| line.ends_with("] The handler stopped: exit status: 0."))
        .await;
    let console = emulator.console();
    assert!(
        console
            .iter()
            .any(|line| line.ends_with("] Stopping the handler (SIGTERM)."))
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", handler_port)).is_err(),
        "the handler still listens on {handler_port}"
    );
}

#[tokio::test]
async fn forwarded_requests_carry_path_query_and_host_headers() {
    let app = TempApp::function_app("echo", guests::ECHO_REQUEST);
    app.write(
        "echo/function.json",
        r#"{"bindings": [
            {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "route": "echo/{*rest}"},
            {"type": "http", "direction": "out", "name": "res"}]}"#,
    );
    let mut emulator = Emulator::start_ready(&app, &[]).await;
    let response = emulator
        .send(
            "PUT",
            "/api/echo/a/b?x=1&X=2&name=J%C3%BCrgen+Z&flag",
            &[
                ("user-agent", "curl/8.5.0"),
                ("x-correlation-id", "6d9f"),
                ("content-type", "text/plain"),
                ("content-language", "en"),
            ],
            "hello",
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let echoed = response.json();
    // The original path; the query rebuilt from the parsed collection.
    assert_eq!(
        echoed["path_with_query"],
        "/api/echo/a/b?x=1%2C2&name=J%C3%BCrgen%20Z&flag="
    );
    let id = emulator.invocation_id("echo", &[]).await;
    let headers = echoed["headers"].as_array().expect("headers").clone();
    let header = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|pair| {
                pair[0]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .map(|pair| pair[1].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(header("x-azure-functions-invocationid"), [id]);
    assert_eq!(header("x-azure-functions-hostversion"), ["4.1037.0.0"]);
    assert_eq!(
        header("user-agent"),
        ["curl/8.5.0 Azure-Functions-Host/4.1037.0.0"]
    );
    assert_eq!(header("x-correlation-id"), ["6d9f"]);
    assert_eq!(header("content-type"), ["text/plain"]);
    assert!(
        header("content-language").is_empty(),
        "content headers are dropped"
    );

    // wasm-handler logs the guest's stderr as warnings on its stderr; the
    // host logs stderr lines that mention "warn" at Warning.
    let stderr_line = emulator
        .wait_for_line(|line| line.contains("x-correlation-id: 6d9f") && line.contains("stderr"))
        .await;
    assert!(
        message(&stderr_line).starts_with("[Warning] [Warning] "),
        "{stderr_line}"
    );
    assert!(emulator.stop().await.success());
}

/// The handler's port, from the `Starting the handler: ... (port N, ...)` line.
fn handler_port(console: &[String]) -> u16 {
    console
        .iter()
        .find_map(|line| line.split("(port ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|port| port.parse().ok())
        .expect("a Starting the handler line with the port")
}
