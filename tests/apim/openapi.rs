//! The OpenAPI 3.0.3 rendition API Management imports, generated from the
//! 3.1 document the guest serves at `/api/openapi.json`.
//!
//! APIM imports OpenAPI 3.1 only with restrictions
//! (learn.microsoft.com/azure/api-management/api-management-api-import-restrictions):
//! a valid 3.1 document with `info.summary` fails to import
//! (MicrosoftDocs/azure-docs#105288), 3.1 keywords such as `const` are read
//! as 3.0 (MicrosoftDocs/azure-docs#119506), and `components.parameters`,
//! `components.responses` and `components.headers` are not supported. So the
//! rendition is 3.0.3 with:
//! - `info.summary` folded into `info.description`, `license.identifier` dropped;
//! - `const: v` written `enum: [v]`;
//! - every `$ref` to a parameter, response or header inlined, and those
//!   component sections removed (`components.schemas` stay, by `$ref`).
//!
//! The rendition is `apim/openapi-3.0.json`, never edited by hand:
//! `APIM_WRITE_OPENAPI_3_0=1 cargo test -p wasm-handler --test apim openapi`
//! writes it, and the test fails while it differs from what this module makes.

use serde_json::{Map, Value, json};

use crate::files;

/// Where the rendition lives, beside the Bicep that imports it.
pub fn rendition_path() -> std::path::PathBuf {
    files::apim_dir().join("openapi-3.0.json")
}

/// The 3.0.3 rendition of a 3.1 document.
pub fn rendition(document: &Value) -> Value {
    let mut rendition = document.clone();
    rendition["openapi"] = json!("3.0.3");
    if let Some(info) = rendition["info"].as_object_mut() {
        if let Some(Value::String(summary)) = info.remove("summary") {
            let description = info
                .get("description")
                .and_then(Value::as_str)
                .map_or(summary.clone(), |description| {
                    format!("{summary}\n\n{description}")
                });
            info.insert("description".into(), description.into());
        }
        if let Some(license) = info.get_mut("license").and_then(Value::as_object_mut) {
            license.remove("identifier");
        }
    }
    let components = document["components"].clone();
    inline(&mut rendition["paths"], &components);
    if let Some(components) = rendition["components"].as_object_mut() {
        for section in ["parameters", "responses", "headers"] {
            components.remove(section);
        }
    }
    constants_as_enums(&mut rendition);
    rendition
}

/// Replaces every `$ref` to a parameter, response or header with (a copy of)
/// what it names.
fn inline(value: &mut Value, components: &Value) {
    if let Some(target) = value
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/components/"))
        .and_then(|name| name.split_once('/'))
        .filter(|(section, _)| matches!(*section, "parameters" | "responses" | "headers"))
        .map(|(section, name)| components[section][name].clone())
    {
        assert!(!target.is_null(), "a $ref names nothing: {value}");
        *value = target;
    }
    match value {
        Value::Object(members) => members
            .values_mut()
            .for_each(|member| inline(member, components)),
        Value::Array(items) => items.iter_mut().for_each(|item| inline(item, components)),
        _ => {}
    }
}

fn constants_as_enums(value: &mut Value) {
    match value {
        Value::Object(members) => {
            if let Some(constant) = members.remove("const") {
                members.insert("enum".into(), json!([constant]));
            }
            members.values_mut().for_each(constants_as_enums);
        }
        Value::Array(items) => items.iter_mut().for_each(constants_as_enums),
        _ => {}
    }
}

/// `document` with every `$ref` resolved, `const` written as `enum`, so two
/// documents compare by what they describe, not how.
fn resolved(document: &Value) -> Value {
    fn resolve(value: &Value, root: &Value) -> Value {
        if let Some(pointer) = value
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| reference.strip_prefix('#'))
        {
            let target = root
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{pointer} names nothing"));
            return resolve(target, root);
        }
        match value {
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(name, member)| (name.clone(), resolve(member, root)))
                    .collect::<Map<_, _>>(),
            ),
            Value::Array(items) => items.iter().map(|item| resolve(item, root)).collect(),
            other => other.clone(),
        }
    }
    let mut resolved = resolve(document, document);
    constants_as_enums(&mut resolved);
    resolved
}

#[test]
fn the_imported_rendition_is_generated_from_the_served_document() {
    let served = files::read_json(&files::openapi_path());
    let mut expected = serde_json::to_string_pretty(&rendition(&served)).expect("JSON");
    expected.push('\n');
    let path = rendition_path();
    if std::env::var_os("APIM_WRITE_OPENAPI_3_0").is_some() {
        std::fs::write(&path, &expected).expect("writing the rendition");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{} is not the rendition of guest/openapi.json; regenerate it with \
         APIM_WRITE_OPENAPI_3_0=1 cargo test -p wasm-handler --test apim openapi",
        path.display()
    );
}

#[test]
fn the_rendition_has_none_of_what_apim_cannot_import() {
    let rendition = files::read_json(&rendition_path());
    assert_eq!(rendition["openapi"], "3.0.3");
    assert!(rendition["info"].get("summary").is_none());
    assert!(rendition["info"]["license"].get("identifier").is_none());
    for section in ["parameters", "responses", "headers"] {
        assert!(
            rendition["components"].get(section).is_none(),
            "components.{section}"
        );
    }
    let text = rendition.to_string();
    assert!(!text.contains("\"const\""), "const is 3.1");
    for reference in text.split("\"$ref\":\"").skip(1) {
        assert!(
            reference.starts_with("#/components/schemas/"),
            "only schemas are referenced: {reference:.60}"
        );
    }
}

/// Operation by operation, the two documents describe the same parameters
/// and responses (headers, media types and schemas), whatever the form.
#[test]
fn the_rendition_describes_what_the_served_document_describes() {
    let served = resolved(&files::read_json(&files::openapi_path()));
    let imported = resolved(&files::read_json(&rendition_path()));
    let operations = |document: &Value| -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                found.push((
                    format!("{method} {path}"),
                    operation["operationId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    json!({
                        "parameters": operation["parameters"],
                        "responses": operation["responses"],
                    }),
                ));
            }
        }
        found
    };
    let (served, imported) = (operations(&served), operations(&imported));
    assert_eq!(served.len(), imported.len());
    assert!(!served.is_empty());
    for ((route, id, described), (imported_route, imported_id, imported_described)) in
        served.iter().zip(&imported)
    {
        assert_eq!((route, id), (imported_route, imported_id));
        assert_eq!(described, imported_described, "{id}");
    }
}

#[test]
fn the_rendition_turns_3_1_forms_into_3_0_forms() {
    let document = json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1", "summary": "s", "description": "d",
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "paths": {"/x": {"get": {
            "parameters": [{"$ref": "#/components/parameters/P"}],
            "responses": {"200": {"$ref": "#/components/responses/R"}}
        }}},
        "components": {
            "parameters": {"P": {"name": "p", "in": "query", "schema": {"const": "v"}}},
            "responses": {"R": {"description": "r", "headers": {"H": {"$ref": "#/components/headers/H"}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/S"}}}}},
            "headers": {"H": {"schema": {"type": "string"}}},
            "schemas": {"S": {"type": "object"}}
        }
    });
    let rendition = rendition(&document);
    assert_eq!(rendition["info"]["description"], "s\n\nd");
    let operation = &rendition["paths"]["/x"]["get"];
    assert_eq!(operation["parameters"][0]["schema"], json!({"enum": ["v"]}));
    assert_eq!(
        operation["responses"]["200"]["headers"]["H"]["schema"]["type"],
        "string"
    );
    assert_eq!(
        operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/S"
    );
    assert_eq!(
        rendition["components"],
        json!({"schemas": {"S": {"type": "object"}}})
    );
}
