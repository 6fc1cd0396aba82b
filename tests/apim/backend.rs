//! What the policies send reaches the guest: the headers the inbound sections
//! set for `getCatalogItem` (read from the policy files, static values as
//! written, the correlation id as APIM's `context.RequestId` would give it),
//! forwarded by the Functions host to the real handler serving the catalog
//! component, come back in the item and in the handler's log line.

use catalog::api::{CACHE_STATUS_HEADER, CORRELATION_ID_HEADER, GATEWAY_HEADER};
use test_harness::functions_host::{self, Forward};
use test_harness::guests;

use crate::bicep;
use crate::files;
use crate::policy::{PolicyFile, backend_request_headers, is_expression};

use crate::HANDLER;

#[tokio::test]
async fn the_guest_sees_and_logs_what_the_policies_send() {
    let attachments = bicep::attachments(&bicep::resources());
    let api = PolicyFile::load(&attachments.api);
    let (operation_name, operation_path) = attachments
        .operations
        .iter()
        .find(|(name, _)| name == "getcatalogitem")
        .expect("getCatalogItem has a policy");
    let operation = PolicyFile::load(operation_path);
    let headers = backend_request_headers(&api.document(), &operation.document());

    // A GUID, as context.RequestId.ToString() gives.
    let correlation_id = functions_host::invocation_id();
    let mut sent = Vec::new();
    for (name, value) in &headers {
        let value = if name == CORRELATION_ID_HEADER {
            assert!(
                is_expression(value),
                "the correlation id is computed: {value}"
            );
            correlation_id.clone()
        } else {
            assert!(!is_expression(value), "{name} is static: {value}");
            value.clone()
        };
        sent.push((name.clone(), value));
    }
    let value_of = |name: &str| -> String {
        sent.iter()
            .find(|(sent_name, _)| sent_name == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("the policies do not set {name}: {sent:?}"))
    };
    let gateway = value_of(GATEWAY_HEADER);
    let cache_status = value_of(CACHE_STATUS_HEADER);

    let template = files::openapi_operations()
        .into_iter()
        .find(|operation| operation.operation_id == "getCatalogItem")
        .expect("getCatalogItem is in the document")
        .path;
    assert_eq!(operation_name, "getcatalogitem");
    let path = template.replace("{item_id}", "42");

    let handler = HANDLER.start(guests::CATALOG).await;
    let mut request = Forward::get(&path)
        // What the backend entity and W3C correlation add; x-correlation-id
        // must win over traceparent.
        .header("x-functions-key", "function-key-from-key-vault")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
    for (name, value) in &sent {
        request = request.header(name, value);
    }
    let response = request.send(handler.port()).await;

    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(
        response.header(CORRELATION_ID_HEADER),
        Some(correlation_id.as_str())
    );
    let item = response.json();
    assert_eq!(item["item_id"], "42");
    assert_eq!(item["routed_by"], gateway.as_str());
    assert_eq!(item["cache_status"], cache_status.as_str());
    assert_eq!(item["correlation_id"], correlation_id.as_str());

    let expected = format!(
        "[Information] Handled APIM backend request item_id=42 routed_by={gateway} \
         correlation_id={correlation_id} cache_status={cache_status}"
    );
    handler.wait_for_stdout(|line| line == expected).await;
    assert!(
        handler.stderr().is_empty(),
        "nothing on stderr: {:?}",
        handler.stderr()
    );
}
