//! apim-gateway's local file (`apim/local-gateway.json`) against the Bicep
//! that deploys the same things to Azure: the same API and path, operation
//! policies, policy files, named values, backends (with the breaker rule and
//! the key header), product and subscription. The local gateway cannot
//! drift from the deployment it stands for.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::bicep::{self, Resource};
use crate::files;

fn local_file() -> Value {
    files::read_json(&files::apim_dir().join("local-gateway.json"))
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn names_of_type(resources: &[Resource], type_name: &str) -> BTreeSet<String> {
    bicep::of_type(resources, type_name)
        .iter()
        .filter(|r| !r.existing)
        .flat_map(|r| r.names(resources))
        .collect()
}

fn same_file(local: &Value, deployed: &Path) {
    let local = files::canonical(&files::apim_dir().join(local.as_str().expect("a path")));
    assert_eq!(local, files::canonical(deployed));
}

#[test]
fn the_local_file_names_what_the_bicep_deploys() {
    let resources = bicep::resources();
    let local = local_file();

    assert_eq!(
        keys(&local["namedValues"]),
        names_of_type(&resources, "Microsoft.ApiManagement/service/namedValues"),
        "named values"
    );
    assert_eq!(
        keys(&local["backends"]),
        names_of_type(&resources, "Microsoft.ApiManagement/service/backends"),
        "backends"
    );
    assert_eq!(
        keys(&local["apis"]),
        names_of_type(&resources, "Microsoft.ApiManagement/service/apis"),
        "APIs"
    );
    assert_eq!(
        keys(&local["products"]),
        names_of_type(&resources, "Microsoft.ApiManagement/service/products"),
        "products"
    );
    assert_eq!(
        keys(&local["subscriptions"]),
        names_of_type(&resources, "Microsoft.ApiManagement/service/subscriptions"),
        "subscriptions"
    );

    // The same policy files at the same scopes, and the same operations.
    let attachments = bicep::attachments(&resources);
    same_file(&local["policy"], &attachments.service);
    let api = &local["apis"]["catalog"];
    same_file(&api["policy"], &attachments.api);
    let operations: BTreeSet<String> = attachments
        .operations
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(
        keys(&api["operationPolicies"]),
        operations,
        "operation policies"
    );
    for (name, file) in &attachments.operations {
        same_file(&api["operationPolicies"][name], file);
    }
    let deployed_api = bicep::one_of_type(&resources, "Microsoft.ApiManagement/service/apis");
    assert_eq!(
        api["subscriptionRequired"],
        Value::Bool(deployed_api.property("subscriptionRequired", 2) == Some("true"))
    );
    assert_eq!(
        api["subscriptionKeyParameterNames"]["header"],
        deployed_api.literal("header", 3).as_str()
    );
    assert_eq!(
        api["subscriptionKeyParameterNames"]["query"],
        deployed_api.literal("query", 3).as_str()
    );
    same_file(&api["openapi"], &deployed_api.loaded_files()[0]);
    // main.bicep's default apiPath.
    let main = files::read(&files::apim_dir().join("main.bicep"));
    assert!(
        main.contains(&format!(
            "param apiPath string = '{}'",
            api["path"].as_str().expect("a path")
        )),
        "the API path is main.bicep's apiPath"
    );
}

#[test]
fn each_backend_has_the_deployed_breaker_rule_and_key_header() {
    let resources = bicep::resources();
    let member = bicep::of_type(&resources, "Microsoft.ApiManagement/service/backends")
        .into_iter()
        .find(|r| r.property("type", 2) == Some("'Single'"))
        .expect("a single backend");
    let text = member.text();
    let local = local_file();
    for (id, backend) in local["backends"].as_object().expect("backends") {
        if backend["type"] == "Pool" {
            continue;
        }
        let rule = &backend["circuitBreaker"]["rules"][0];
        let condition = &rule["failureCondition"];
        for expected in [
            format!("count: {}", condition["count"]),
            format!(
                "interval: '{}'",
                condition["interval"].as_str().expect("interval")
            ),
            format!(
                "tripDuration: '{}'",
                rule["tripDuration"].as_str().expect("trip")
            ),
            format!("acceptRetryAfter: {}", rule["acceptRetryAfter"]),
            format!("min: {}", condition["statusCodeRanges"][0]["min"]),
            format!("max: {}", condition["statusCodeRanges"][0]["max"]),
        ] {
            assert!(
                text.contains(&expected),
                "{id}: the Bicep has no {expected:?}"
            );
        }
        for reason in condition["errorReasons"].as_array().expect("reasons") {
            assert!(
                text.contains(&format!("'{}'", reason.as_str().expect("a reason"))),
                "{id}: {reason}"
            );
        }
        let headers = keys(&backend["credentials"]["header"]);
        assert_eq!(
            headers,
            BTreeSet::from(["x-functions-key".to_owned()]),
            "{id}"
        );
        // The credentials are a variable of the member's file.
        assert!(files::read(&member.file).contains("'x-functions-key': ["));
    }
    // The pool lists the primary, as the Bicep does with one function app.
    let pool = &local["backends"]["catalog-functions"]["pool"]["services"];
    assert_eq!(pool[0]["id"], "catalog-functions-primary");
    assert_eq!(pool[0]["priority"], 1);
}
