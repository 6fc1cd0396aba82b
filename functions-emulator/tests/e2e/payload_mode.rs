//! Payload mode against a recording protocol peer (`recorder.py`), with
//! `enableForwardingHttpRequest: false`, as the Functions host speaks it
//! (azure-functions-host `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`):
//! envelopes posted chunked, answers read only when 2xx and JSON-typed,
//! redirects followed, and `functionTimeout` enforced by killing the handler.

use serde_json::{Value, json};

use crate::support::{Emulator, TempApp, message};

fn recorder_app() -> TempApp {
    let app = TempApp::empty("payload");
    app.write(
        "host.json",
        r#"{
          // Comments are allowed, as in .NET configuration files.
          "version": "2.0",
          "functionTimeout": "00:00:04",
          "extensions": {"http": {"routePrefix": "api"}},
          "customHandler": {
            "description": {
              "defaultExecutablePath": "python3",
              "arguments": ["-u"],
              "defaultWorkerPath": "recorder.py"
            },
            "enableForwardingHttpRequest": false
          }
        }"#,
    );
    app.write("recorder.py", include_str!("recorder.py"));
    app.write(
        "local.settings.json",
        r#"{"IsEncrypted": false, "Values": {"RECORDER_GREETING": "from local.settings.json"}}"#,
    );
    let function = |route: &str| {
        format!(
            r#"{{"bindings": [
                {{"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous",
                  "methods": ["get", "post"], "route": "{route}"}},
                {{"type": "http", "direction": "out", "name": "res"}}]}}"#
        )
    };
    app.write("items/function.json", &function("items/{id:int}/{tag?}"));
    for name in ["fails", "garbage", "text", "empty", "null", "moved", "slow"] {
        app.write(&format!("{name}/function.json"), &function(name));
    }
    app
}

fn record(line: &str) -> Value {
    serde_json::from_str(line).expect("a recorded request")
}

#[tokio::test]
async fn invocations_are_posted_as_envelopes_and_answers_mapped_back() {
    let app = recorder_app();
    // The emulator's own settings are not the handler's business.
    let own_setting = [("FUNCTIONS_EMULATOR_HOST_KEY", "not-for-the-handler")];
    let mut emulator = Emulator::start_ready_with_env(&app, &[], &own_setting).await;
    let port = emulator.port();

    let response = emulator
        .send(
            "POST",
            "/api/items/42?x=1&x=2&code=secret",
            &[
                ("x-test", "a"),
                ("x-test", "b"),
                ("content-type", "text/plain"),
            ],
            "hello",
        )
        .await;
    assert_eq!(response.status, 201);
    // The body object is written as text, so the charset is set (TextOutputFormatter).
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(&response.body[..], b"{\n  \"ok\": true\n}");
    let id = emulator.invocation_id("items", &[]).await;

    // The handler's Logs, attributed to the invocation, then Executed.
    let logged = emulator.wait_for_line(|line| line.contains("line 1")).await;
    assert_eq!(
        message(&logged),
        format!("line 1 (Functions.items, Id={id})")
    );
    let executed = format!("Executed 'Functions.items' (Succeeded, Id={id}, Duration=");
    emulator
        .wait_for_line(|line| line.contains(&executed))
        .await;

    // What the handler received.
    let recorded = app.wait_for_lines("recorded.jsonl", 1).await;
    let first = record(&recorded[0]);
    assert_eq!(first["path"], "/items");
    let headers = &first["headers"];
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    // ObjectContent has no length beforehand: chunked, no Content-Length.
    assert_eq!(headers["transfer-encoding"], "chunked");
    assert!(headers.get("content-length").is_none(), "{headers}");
    assert_eq!(headers["x-azure-functions-invocationid"], id.as_str());
    assert_eq!(headers["x-azure-functions-hostversion"], "4.1037.0.0");
    assert_eq!(headers["user-agent"], "Azure-Functions-Host/4.1037.0.0");
    let req = &first["body"]["Data"]["req"];
    assert_eq!(
        req["Url"],
        format!("http://localhost:{port}/api/items/42?x=1&x=2&code=secret")
    );
    assert_eq!(req["Method"], "POST");
    assert_eq!(req["Query"], json!({"x": "1,2", "code": "secret"}));
    assert_eq!(req["Headers"]["x-test"], json!(["a", "b"]));
    assert_eq!(req["Headers"]["Content-Type"], json!(["text/plain"]));
    assert_eq!(req["Headers"]["Host"], json!([format!("localhost:{port}")]));
    assert_eq!(req["Params"], json!({"id": "42", "tag": null}));
    assert_eq!(req["Body"], "hello");
    assert_eq!(req["Identities"][0]["IsAuthenticated"], true);
    let metadata = &first["body"]["Metadata"];
    assert_eq!(metadata["x"], "\"2\"");
    assert_eq!(metadata["id"], "\"42\"");
    assert!(metadata.get("code").is_none() && metadata.get("tag").is_none());
    assert_eq!(metadata["Query"], json!({"x": "2", "code": "secret"}));
    assert_eq!(metadata["Headers"]["x-test"], "a,b");
    assert_eq!(metadata["sys"]["MethodName"], "items");
    assert!(
        metadata["sys"]["UtcNow"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // Without a body there is no Body; a present optional parameter has its value.
    let response = emulator.get("/api/items/7/blue").await;
    assert_eq!(response.status, 201);
    let second = record(&app.wait_for_lines("recorded.jsonl", 2).await[1]);
    let req = &second["body"]["Data"]["req"];
    assert!(req.get("Body").is_none(), "{req}");
    assert_eq!(req["Params"], json!({"id": "7", "tag": "blue"}));
    assert_eq!(req["Query"], json!({}));

    // The int constraint: no route, no invocation.
    assert_eq!(emulator.get("/api/items/seven").await.status, 404);

    // The handler's console: stdout at Information, a "warn" stderr line at Warning.
    let console = emulator.console();
    let listening = console
        .iter()
        .find(|line| line.contains("recorder listening on"))
        .expect("the recorder's stdout line");
    assert!(
        message(listening).starts_with("recorder listening on "),
        "{listening}"
    );
    let warning = console
        .iter()
        .find(|line| line.contains("warn: this recorder only records"))
        .expect("the recorder's stderr line");
    assert_eq!(
        message(warning),
        "[Warning] warn: this recorder only records"
    );

    // How it was launched: python3 -u recorder.py in the app root (the
    // worker path as written, DefaultWorkerProcessFactory.cs), with the
    // host's variables and local.settings.json values.
    let launch: Value = serde_json::from_str(&app.read("launch.json")).expect("launch.json");
    let root = app.root.display().to_string();
    assert_eq!(launch["argv"], json!(["recorder.py"]));
    assert_eq!(launch["cwd"], root.as_str());
    let env = &launch["env"];
    assert_eq!(env["FUNCTIONS_APP_ROOT_PATH"], root.as_str());
    assert_eq!(
        env["FUNCTIONS_CUSTOMHANDLER_PORT"],
        env["FUNCTIONS_HTTPWORKER_PORT"]
    );
    assert_eq!(
        env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"],
        env["FUNCTIONS_HTTPWORKER_ID"]
    );
    assert_eq!(
        env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"]
            .as_str()
            .map(str::len),
        Some(36)
    );
    assert_eq!(env["RECORDER_GREETING"], "from local.settings.json");
    assert_eq!(env["FUNCTIONS_EMULATOR_HOST_KEY"], Value::Null);
    assert!(emulator.stop().await.success());
}

#[tokio::test]
async fn failed_or_invalid_answers_give_500_with_an_empty_body() {
    let app = recorder_app();
    let mut emulator = Emulator::start_ready(&app, &[]).await;
    for function in ["fails", "garbage", "text"] {
        let response = emulator
            .send(
                "POST",
                &format!("/api/{function}"),
                &[("content-type", "application/json")],
                "{\"a\": 1}",
            )
            .await;
        assert_eq!(response.status, 500, "{function}");
        assert!(response.body.is_empty(), "{function}: {:?}", response.body);
        let id = emulator.invocation_id(function, &[]).await;
        let failed =
            format!("] [Error] Executed 'Functions.{function}' (Failed, Id={id}, Duration=");
        emulator.wait_for_line(|line| line.contains(&failed)).await;
    }
    // The handler was asked each time, with the JSON body's properties in Metadata.
    let recorded = app.wait_for_lines("recorded.jsonl", 3).await;
    let paths: Vec<Value> = recorded
        .iter()
        .map(|line| record(line)["path"].clone())
        .collect();
    assert_eq!(paths, [json!("/fails"), json!("/garbage"), json!("/text")]);
    assert_eq!(record(&recorded[0])["body"]["Metadata"]["a"], "\"1\"");
    // A non-2xx answer's Logs are dropped: the status is checked first.
    assert!(
        !emulator
            .console()
            .iter()
            .any(|line| line.contains("] line 1 (Functions.")),
        "{:#?}",
        emulator.console()
    );
    assert!(emulator.stop().await.success());
}

#[tokio::test]
async fn a_redirect_is_followed_when_forwarding_is_off() {
    let app = recorder_app();
    let mut emulator = Emulator::start_ready(&app, &[]).await;
    let response = emulator.get("/api/moved").await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    let recorded = app.wait_for_lines("recorded.jsonl", 2).await;
    assert_eq!(
        record(&recorded[1]),
        json!({"path": "/moved-here", "method": "GET"})
    );
    assert!(emulator.stop().await.success());
}

#[tokio::test]
async fn no_result_waits_for_function_timeout_and_then_the_handler_is_restarted() {
    let app = recorder_app();
    let mut emulator = Emulator::start_ready(&app, &[]).await;
    let port = emulator.port();
    let sent = std::time::Instant::now();
    // An empty answer and `null` are no result: the invocation never completes.
    let empty = tokio::spawn(async move { Emulator::get_on(port, "/api/empty").await });
    // A request in flight on the handler when it is killed, after the
    // timeout and 2 s of grace (at about 6 s), fails with it, before the
    // 3 s the recorder takes.
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let slow_sent = std::time::Instant::now();
    let slow = emulator.get("/api/slow").await;
    let slow_took = slow_sent.elapsed();
    let empty = empty.await.expect("the request task");
    assert_eq!(empty.status, 500);
    assert!(empty.body.is_empty());
    let took = sent.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(4),
        "the 500 came at functionTimeout, after {took:?}"
    );
    assert_eq!(slow.status, 500, "killed with the handler");
    assert!(
        slow_took < std::time::Duration::from_millis(2500),
        "{slow_took:?}"
    );
    emulator
        .wait_for_line(|line| {
            line.contains("Timeout value of 00:00:04 was exceeded by function: Functions.empty")
        })
        .await;
    emulator
        .wait_for_line(|line| {
            line.contains("A function timeout has occurred. Restarting worker process")
        })
        .await;
    // The restarted handler serves, and `null` ends the same way.
    let id_lines = |emulator: &Emulator| {
        emulator
            .console()
            .iter()
            .filter(|line| line.ends_with("] Worker process started and initialized."))
            .count()
    };
    while id_lines(&emulator) < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(emulator.get("/api/items/1").await.status, 201);
    let null = emulator.get("/api/null").await;
    assert_eq!(null.status, 500);
    assert!(
        !emulator
            .console()
            .iter()
            .any(|line| line.contains("Restarting the handler")),
        "timeout restarts are not counted as errors"
    );
    assert!(emulator.stop().await.success());
}
