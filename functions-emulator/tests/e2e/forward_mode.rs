//! Forward mode with the real function app, `wasm-handler` and components,
//! routed as the Functions host routes (functions in name order, the first
//! match wins) and forwarded as it forwards (azure-functions-host
//! `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`,
//! `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`).

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
            format!("  catalog-health: [GET] http://localhost:{port}/api/catalog/health"),
            format!("  catalog-item: [GET] http://localhost:{port}/api/catalog/{{item_id}}"),
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
    let id = emulator.invocation_id("catalog-item", &[]).await;
    assert_eq!(item.header("x-correlation-id"), Some(id.as_str()));
    assert_eq!(body["correlation_id"], id.as_str());
    let executed = format!("Executed 'Functions.catalog-item' (Succeeded, Id={id}, Duration=");
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

    // catalog-health comes before catalog-item by name, so its literal route
    // is tried first; literals match in any case.
    let health = emulator.get("/api/Catalog/HEALTH").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let health_id = emulator.invocation_id("catalog-health", &[]).await;
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

    // A malformed id reaches the catalog, whose 400 problem comes back.
    let malformed = emulator.get("/api/catalog/abc").await;
    assert_eq!(malformed.status, 400);
    assert_eq!(
        malformed.header("content-type"),
        Some("application/problem+json")
    );

    // SIGTERM: the emulator kills the handler, as the Functions host does, and exits 0.
    let handler_port = handler_port(&emulator.console());
    let status = emulator.stop().await;
    assert!(status.success(), "{status}");
    emulator
        .wait_for_line(|line| line.contains("Stopping the handler (SIGKILL"))
        .await;
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
    assert_eq!(
        header("x-azure-functions-invocationid"),
        std::slice::from_ref(&id)
    );
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

    // A client's own invocation id stays, and the host's goes after it on
    // the same line (HttpHeaders.Add).
    let response = emulator
        .send(
            "GET",
            "/api/echo/x",
            &[("x-azure-functions-invocationid", "chosen-by-the-client")],
            "",
        )
        .await;
    let second = emulator
        .invocation_id("echo", std::slice::from_ref(&id))
        .await;
    let echoed = response.json();
    let ids: Vec<&str> = echoed["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|pair| pair[0] == "x-azure-functions-invocationid")
        .filter_map(|pair| pair[1].as_str())
        .collect();
    assert_eq!(ids, [format!("chosen-by-the-client, {second}")]);

    // A body sent chunked fails before the handler is asked: 500, empty.
    let invocations = emulator.invocations();
    let chunked = test_harness::http::send_chunked(
        emulator.port(),
        "/api/echo/chunked",
        vec![bytes::Bytes::from_static(b"part")].into(),
    )
    .await
    .expect("an answer");
    assert_eq!(chunked.status, 500);
    assert!(chunked.body.is_empty());
    emulator
        .wait_for_line(|line| {
            line.contains("'Transfer-Encoding: chunked' header can not be used when content object is not specified.")
        })
        .await;
    assert_eq!(emulator.invocations(), invocations + 1);

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

/// Kestrel's limits, which the Functions host keeps: a head that never ends
/// is closed after `RequestHeadersTimeout` (here shortened with
/// `--header-read-timeout`), one over 40 KiB gets 431, and requests are
/// served meanwhile.
#[tokio::test]
async fn half_sent_and_oversized_heads_are_cut_off_while_requests_are_served() {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    let app = TempApp::function_app("half-heads", guests::CATALOG);
    let emulator = Emulator::start_ready(&app, &["--header-read-timeout", "1s"]).await;
    let started = Instant::now();
    let mut half_sent = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(("127.0.0.1", emulator.port()))
            .await
            .expect("connected");
        stream
            .write_all(b"GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a head sent");
        half_sent.push(stream);
    }
    assert_eq!(emulator.get("/api/catalog/42").await.status, 200);
    for mut stream in half_sent {
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "a half-sent head is still open after {:?}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(6));

    let oversized = format!(
        "GET /api/catalog/42 HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(100 << 10)
    );
    let reply = test_harness::http::send_raw(
        emulator.port(),
        oversized.as_bytes(),
        Duration::from_millis(500),
    )
    .await
    .expect("a connection");
    assert_eq!(reply.status, Some(431), "{}", reply.text());
    assert_eq!(emulator.get("/api/catalog/42").await.status, 200);
}
