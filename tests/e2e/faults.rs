//! A guest that fails costs its request a problem+json 500 with the
//! correlation id, never an empty or HTML body, and the host goes on serving.

use wasm_handler_tests::functions_host::Forward;
use wasm_handler_tests::{HandlerProcess, guests};

#[tokio::test]
async fn a_trapping_guest_costs_one_request_a_500_problem() {
    let mut handler = HandlerProcess::start(guests::TRAP).await;
    for round in 0..3 {
        let id = format!("trap-{round}");
        let response = Forward::get("/api/catalog/42")
            .header("x-correlation-id", &id)
            .send(handler.port())
            .await;
        let problem = response.assert_problem(500, Some(&id));
        assert_eq!(problem["instance"], "/api/catalog/42");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("failed")),
            "{problem}"
        );
        let logged = handler
            .wait_for_stderr(|line| line.starts_with("[Error]") && line.contains(&id))
            .await;
        assert!(logged.contains("trapped"), "{logged}");
        assert!(handler.is_running());
    }
    // The guest's panic message reaches the log too, as a warning in the request's context.
    handler
        .wait_for_stderr(|line| {
            line.contains("the business logic hit a bug") && line.contains("trap-0")
        })
        .await;
}

#[tokio::test]
async fn a_guest_that_never_responds_costs_one_request_a_500_problem() {
    let mut handler = HandlerProcess::start(guests::NO_RESPONSE).await;
    for _ in 0..2 {
        let response = Forward::get("/api/catalog/42")
            .header("x-correlation-id", "silent-1")
            .send(handler.port())
            .await;
        response.assert_problem(500, Some("silent-1"));
    }
    handler
        .wait_for_stderr(|line| line.contains("without sending a response"))
        .await;
    assert!(handler.is_running());
}
