//! The OpenAPI document describes what is really served: real responses are
//! checked against it (status, headers, media type, body schema).

use serde_json::{Value, json};
use test_harness::functions_host::Forward;
use test_harness::guests;
use test_harness::http::Response;

use crate::HANDLER;

/// The document as served, with a checker for responses.
struct Document(Value);

impl Document {
    /// Follows a local `$ref` such as `#/components/responses/NotFound`.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("local references only");
                self.resolve(
                    self.0
                        .pointer(pointer)
                        .unwrap_or_else(|| panic!("dangling {reference}")),
                )
            }
            None => value,
        }
    }

    fn validate(&self, schema: &Value, instance: &Value, what: &str) {
        // Local `$ref`s resolve against the root, so the root carries the components.
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.0["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::draft202012::new(&root)
            .unwrap_or_else(|e| panic!("{what}: bad schema: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: {instance} does not match the document: {errors:?}"
        );
    }

    /// Checks `response` against operation `GET path_template`, or against the
    /// shared error response when `path_template` is `None` (no operation).
    fn check(&self, path_template: Option<&str>, response: &Response) {
        let what = format!("{path_template:?} {}", response.status);
        let spec = match path_template {
            Some(template) => {
                let responses = &self.0["paths"][template]["get"]["responses"];
                assert!(responses.is_object(), "{template} is not documented");
                let spec = responses
                    .get(response.status.to_string())
                    .or_else(|| responses.get("default"));
                self.resolve(spec.unwrap_or_else(|| panic!("{what}: status not documented")))
            }
            None => self.resolve(&self.0["components"]["responses"]["Error"]),
        };
        for (name, header) in spec["headers"].as_object().into_iter().flatten() {
            let header = self.resolve(header);
            match response.header(name) {
                Some(value) => self.validate(
                    &header["schema"],
                    &json!(value),
                    &format!("{what} header {name}"),
                ),
                None => assert!(
                    header["required"] != true,
                    "{what}: required header {name} is missing"
                ),
            }
        }
        match spec["content"].as_object() {
            Some(content) => {
                let media_type = response.header("content-type").expect("a content type");
                let media_type = media_type.split(';').next().unwrap_or_default().trim();
                let entry = content
                    .get(media_type)
                    .unwrap_or_else(|| panic!("{what}: {media_type} not documented"));
                self.validate(&entry["schema"], &response.json(), &format!("{what} body"));
            }
            None => assert!(response.body.is_empty(), "{what}: undocumented body"),
        }
    }
}

#[tokio::test]
async fn real_responses_match_the_document() {
    let handler = HANDLER.start(guests::CATALOG).await;
    let port = handler.port();
    let served = Forward::get("/api/openapi.json").send(port).await;
    let document = Document(served.json());
    let file: Value =
        serde_json::from_str(include_str!("../../guest/openapi.json")).expect("guest/openapi.json");
    assert_eq!(
        document.0, file,
        "the served document is guest/openapi.json"
    );

    let item = "/api/catalog/{item_id}";
    let ok = Forward::get("/api/catalog/42")
        .header("x-apim-cache", "miss")
        .send(port)
        .await;
    assert_eq!(ok.status, 200);
    document.check(Some(item), &ok);
    let etag = ok.header("etag").expect("an ETag");
    let not_modified = Forward::get("/api/catalog/42")
        .header("if-none-match", etag)
        .send(port)
        .await;
    assert_eq!(not_modified.status, 304);
    document.check(Some(item), &not_modified);
    for (path, status) in [("/api/catalog/4x2", 400), ("/api/catalog/13", 404)] {
        let response = Forward::get(path).send(port).await;
        assert_eq!(response.status, status);
        document.check(Some(item), &response);
    }
    for id in [1, 19, 60] {
        document.check(
            Some(item),
            &Forward::get(&format!("/api/catalog/{id}")).send(port).await,
        );
    }

    let health = Forward::get("/api/catalog/health").send(port).await;
    assert_eq!(health.status, 200);
    document.check(Some("/api/catalog/health"), &health);
    document.check(Some("/api/openapi.json"), &served);

    let not_allowed = Forward::new(::http::Method::POST, "/api/catalog/42")
        .send(port)
        .await;
    assert_eq!(not_allowed.status, 405);
    document.check(None, &not_allowed);
    let no_route = Forward::get("/api/orders").send(port).await;
    assert_eq!(no_route.status, 404);
    document.check(None, &no_route);

    let trapped = HANDLER.start(guests::MISBEHAVE).await;
    let failure = Forward::get("/api/catalog/trap").send(trapped.port()).await;
    assert_eq!(failure.status, 500);
    document.check(Some(item), &failure);
}
