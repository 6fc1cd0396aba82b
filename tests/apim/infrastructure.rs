//! The Bicep and the policies agree with each other, with the guest's OpenAPI
//! document and with the function app: the API is imported from the guest's
//! own document, every policy file is attached (the cached one to the GET
//! operation), the backend id and named values resolve, and the operations'
//! paths reach the functions' routes.

use std::collections::BTreeSet;

use crate::bicep::{self, Resource};
use crate::files;
use crate::policy::{self, PolicyFile, attribute, element, section};

const API: &str = "Microsoft.ApiManagement/service/apis";
const BACKEND: &str = "Microsoft.ApiManagement/service/backends";
const NAMED_VALUE: &str = "Microsoft.ApiManagement/service/namedValues";
const SITE: &str = "Microsoft.Web/sites";

/// The name APIM's OpenAPI import gives an operation: its operationId lower-cased,
/// each run of other characters than letters and digits one dash, no dash at
/// either end.
fn imported_operation_name(operation_id: &str) -> String {
    let mut name = String::new();
    for c in operation_id.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    name.trim_matches('-').to_owned()
}

#[test]
fn operation_names_follow_the_import_rules() {
    assert_eq!(imported_operation_name("getCatalogItem"), "getcatalogitem");
    assert_eq!(
        imported_operation_name("GET-/foo/{bar}?buzz={quix}"),
        "get-foo-bar-buzz-quix"
    );
}

#[test]
fn the_api_is_imported_from_the_rendition_of_the_guests_openapi_document() {
    let resources = bicep::resources();
    let api = bicep::one_of_type(&resources, API);
    assert_eq!(api.literal("format", 2), "openapi+json");
    let loaded = api.loaded_files();
    assert_eq!(loaded.len(), 1, "{loaded:?}");
    assert_eq!(
        files::canonical(&loaded[0]),
        files::canonical(&crate::openapi::rendition_path()),
        "the import reads the 3.0.3 rendition generated from guest/openapi.json"
    );
    // And no other API description is kept beside the infrastructure.
    for path in files::files_under(&files::apim_dir(), "json") {
        let document = files::read_json(&path);
        assert!(
            files::canonical(&path) == files::canonical(&crate::openapi::rendition_path())
                || (document.get("openapi").is_none() && document.get("swagger").is_none()),
            "{} is an API description; import the generated rendition instead",
            path.display()
        );
    }
}

#[test]
fn every_policy_file_is_attached_as_xml_and_caching_only_to_a_get() {
    let resources = bicep::resources();
    for type_name in [
        "Microsoft.ApiManagement/service/policies",
        "Microsoft.ApiManagement/service/apis/policies",
        "Microsoft.ApiManagement/service/apis/operations/policies",
    ] {
        for resource in bicep::of_type(&resources, type_name) {
            // "xml" is the escaped, well-formed form the files are written in.
            assert_eq!(resource.literal("format", 2), "xml", "{}", resource.symbol);
        }
    }
    let attachments = bicep::attachments(&resources);
    let mut attached: BTreeSet<_> = attachments
        .operations
        .iter()
        .map(|(_, path)| path.clone())
        .collect();
    attached.insert(attachments.api.clone());
    attached.insert(attachments.service.clone());
    let on_disk: BTreeSet<_> = files::files_under(&files::apim_dir().join("policies"), "xml")
        .iter()
        .map(|path| files::canonical(path))
        .collect();
    assert_eq!(
        attached, on_disk,
        "every policy file is deployed, and only those"
    );

    let operations = files::openapi_operations();
    for (name, path) in &attachments.operations {
        let operation = operations
            .iter()
            .find(|operation| imported_operation_name(&operation.operation_id) == *name)
            .unwrap_or_else(|| {
                panic!("{name} is not an operationId of guest/openapi.json: {operations:?}")
            });
        let policy = PolicyFile::load(path);
        let document = policy.document();
        if !policy::elements(document.root_element(), "cache-lookup").is_empty() {
            assert_eq!(
                operation.method,
                "get",
                "{} caches {}",
                policy.path.display(),
                operation.operation_id
            );
        }
    }
    assert!(
        attachments
            .operations
            .iter()
            .any(|(name, _)| name == &imported_operation_name("getCatalogItem")),
        "getCatalogItem has its policy"
    );
}

/// The backend entities: the pool the API policy names, and the one
/// declaration of its members (modules/function-backend.bicep, deployed once
/// per function app).
fn pool_and_member(resources: &[Resource]) -> (&Resource, &Resource) {
    let backends = bicep::of_type(resources, BACKEND);
    assert_eq!(backends.len(), 2, "a pool and its member's declaration");
    let of_kind = |kind: &str| {
        *backends
            .iter()
            .find(|backend| backend.literal("type", 2) == kind)
            .unwrap_or_else(|| panic!("a {kind} backend"))
    };
    (of_kind("Pool"), of_kind("Single"))
}

/// The API reaches the function apps only through the pool's backend id;
/// the pool lists each deployed member, and each member carries its own
/// app's credentials.
#[test]
fn the_backend_id_names_a_pool_whose_members_carry_their_apps_keys() {
    let resources = bicep::resources();
    let (pool, member) = pool_and_member(&resources);
    let api_policy = PolicyFile::load(&bicep::attachments(&resources).api);
    let document = api_policy.document();
    let routing = element(section(&document, "inbound"), "set-backend-service");
    assert_eq!(attribute(routing, "backend-id"), pool.name());

    // Every module that deploys a member is in the pool's services.
    let pool_file = compact(&files::read(&pool.file));
    let deployments = bicep::deployments_of(&resources, &member.file);
    assert_eq!(deployments.len(), 2, "a primary and a pooled secondary app");
    for module in &deployments {
        assert!(
            pool_file.contains(&format!("id: {}.outputs.id", module.symbol))
                || pool_file.contains(&format!("? {}.outputs.id :", module.symbol)),
            "the pool lists {}",
            module.symbol
        );
    }
    assert!(
        pool.text()
            .contains("services: pooled ? [primaryMember, secondaryMember] : [primaryMember]")
    );
    let member_file = compact(&files::read(&member.file));
    assert!(member_file.contains(&format!("output id string = {}.id", member.symbol)));

    // Each app its own entity and its own key.
    let names = member.names(&resources);
    let keys = bicep::parameter_values(&resources, &member.file, "functionKeyName");
    for distinct in [&names, &keys] {
        assert_eq!(
            distinct.iter().collect::<BTreeSet<_>>().len(),
            2,
            "{distinct:?}"
        );
    }
    assert!(
        member_file.contains("'x-functions-key': [ '{{${functionKeyName}}}' ]"),
        "the member sends x-functions-key from its named value"
    );
    assert!(
        compact(&member.text())
            .contains("credentials: useFunctionKey ? functionKeyCredentials : {}")
    );
    let resource_id = member.property("resourceId", 2).expect("a resourceId");
    assert!(
        resource_id.contains(".id"),
        "the site's resource id: {resource_id}"
    );
}

#[test]
fn the_gateways_operations_reach_the_function_routes() {
    let resources = bicep::resources();
    let (_, member) = pool_and_member(&resources);
    // https://<host> and nothing after: APIM appends the operation's path.
    let url = member.property("url", 2).expect("a url");
    let host_only = url
        .strip_prefix("'https://${")
        .and_then(|rest| rest.strip_suffix("}'"))
        .is_some_and(|host| !host.contains('/'));
    assert!(host_only, "the backend URL is the site root, not {url}");

    let routes = files::function_routes();
    for operation in files::openapi_operations() {
        assert!(
            routes.contains(&operation.path),
            "{} {} reaches no function route: {routes:?}",
            operation.operation_id,
            operation.path
        );
    }
}

#[test]
fn named_values_used_are_declared_and_the_function_keys_are_in_key_vault() {
    let resources = bicep::resources();
    let declared: Vec<&Resource> = bicep::of_type(&resources, NAMED_VALUE);
    for value in &declared {
        // Policies refer to the display name; keeping it equal to the name
        // makes the name what they use.
        assert_eq!(value.property("displayName", 2), value.property("name", 1));
    }
    let names: BTreeSet<String> = declared
        .iter()
        .flat_map(|value| value.names(&resources))
        .collect();

    let mut used = BTreeSet::new();
    for path in files::files_under(&files::apim_dir().join("policies"), "xml") {
        used.extend(PolicyFile::load(&path).named_values());
    }
    for path in bicep::files() {
        for reference in policy::named_value_references(&files::read(&path)) {
            used.extend(bicep::with_parameter_values(&resources, &path, &reference));
        }
    }
    assert_eq!(used, names, "named values used and declared");

    let (_, member) = pool_and_member(&resources);
    let key_names = policy::named_value_references(&files::read(&member.file));
    assert_eq!(key_names.len(), 1, "{key_names:?}");
    let key_name = key_names.first().expect("one");
    let key = declared
        .iter()
        .find(|value| {
            value.file == member.file
                && value
                    .property("name", 1)
                    .is_some_and(|name| format!("${{{name}}}") == *key_name)
        })
        .expect("declared beside the member");
    assert_eq!(key.property("secret", 2), Some("true"));
    assert!(key.property("keyVault", 2).is_some(), "Key Vault-backed");
    assert!(
        key.property("value", 2).is_none(),
        "no value in the template"
    );
    let secret = key.property("secretIdentifier", 3).expect("a secret id");
    assert!(
        secret.ends_with(".properties.secretUri"),
        "an unversioned secret reference: {secret}"
    );
}

/// backendAuth managedIdentity: APIM's token replaces the key in the policy,
/// App Service Authentication on each app accepts that token from APIM's
/// identity only, and no key is made or sent.
#[test]
fn the_managed_identity_option_is_complete_in_the_policy_and_the_bicep() {
    let resources = bicep::resources();
    let api = PolicyFile::load(&bicep::attachments(&resources).api);
    let document = api.document();
    let inbound = section(&document, "inbound");
    let token = policy::elements(inbound, "authentication-managed-identity");
    assert_eq!(token.len(), 1);
    assert_eq!(
        attribute(token[0], "resource"),
        "{{catalog-backend-app-id}}"
    );
    let when = token[0].parent_element().expect("in a when");
    assert!(when.has_tag_name("when"));
    assert_eq!(
        attribute(when, "condition"),
        "@(\"{{catalog-backend-auth}}\" == \"managedIdentity\")"
    );
    // After the caller's Authorization is deleted, or APIM's token would go too.
    let order: Vec<_> = policy::statements(inbound)
        .iter()
        .map(|node| node.tag_name().name().to_owned())
        .collect();
    let position = |tag: &str| order.iter().position(|name| name == tag).expect(tag);
    assert!(position("choose") < position("set-backend-service"));
    let deleted_authorization = policy::statements(inbound)
        .iter()
        .position(|node| {
            node.has_tag_name("set-header") && node.attribute("name") == Some("Authorization")
        })
        .expect("the caller's Authorization is deleted");
    assert!(deleted_authorization < position("choose"));

    // One parameter chooses, with the same two values everywhere it is declared.
    for file in bicep::files() {
        let text = compact(&files::read(&file));
        if text.contains("param backendAuth string") {
            assert!(
                text.contains(
                    "@allowed([ 'functionKey' 'managedIdentity' ]) param backendAuth string"
                ),
                "{}",
                file.display()
            );
        }
    }
    let choice = bicep::of_type(&resources, NAMED_VALUE)
        .into_iter()
        .find(|value| value.property("name", 1) == Some("'catalog-backend-auth'"))
        .expect("the catalog-backend-auth named value");
    assert_eq!(choice.property("value", 2), Some("backendAuth"));

    // App Service Authentication on each member's app, when chosen.
    let (_, member) = pool_and_member(&resources);
    let auth = bicep::of_type(&resources, "Microsoft.Web/sites/config")
        .into_iter()
        .find(|config| config.file == member.file)
        .expect("authsettingsV2 beside the member");
    assert_eq!(auth.name(), "authsettingsV2");
    let declaration = compact(&files::read(&auth.file));
    assert!(declaration.contains(&format!(
        "resource {} 'Microsoft.Web/sites/config@2024-04-01' = if (!useFunctionKey)",
        auth.symbol
    )));
    let settings = compact(&auth.text());
    for expected in [
        "requireAuthentication: true",
        "unauthenticatedClientAction: 'Return401'",
        "clientId: backendAppId",
        "allowedAudiences: [ backendAppId 'api://${backendAppId}' ]",
        "identities: [ apim.identity.principalId ]",
    ] {
        assert!(settings.contains(expected), "{expected} in {settings}");
    }
    // Probes still reach the health route, and nothing else is open.
    let routes = files::function_routes();
    let excluded = settings
        .split("excludedPaths: [ ")
        .nth(1)
        .and_then(|rest| rest.split(" ]").next())
        .expect("excludedPaths");
    assert_eq!(excluded, "'/api/catalog/health'");
    assert!(
        routes.iter().any(|route| route == "/api/catalog/health"),
        "{routes:?}"
    );
    // And no key: none made for APIM, none sent.
    let app = compact(&files::read(
        &files::apim_dir().join("modules/function-app.bicep"),
    ));
    assert!(app.contains(
        "resource apimHostKey 'Microsoft.Web/sites/host/functionKeys@2023-12-01' = if (backendAuth == 'functionKey')"
    ));
    for conditional in [
        "functionKeySecret",
        "apimReadsFunctionKey",
        "functionKeyValue",
    ] {
        assert!(
            member_file_declares_if(&declaration, conditional, "useFunctionKey"),
            "{conditional} only with function keys"
        );
    }
}

/// Whether `file` (compacted) declares `symbol` under `if (condition)`.
fn member_file_declares_if(file: &str, symbol: &str, condition: &str) -> bool {
    file.split(&format!("resource {symbol} '"))
        .nth(1)
        .and_then(|rest| rest.split('{').next())
        .is_some_and(|head| head.contains(&format!("= if ({condition})")))
}

/// Whitespace collapsed, so that nested Bicep objects compare as one line.
fn compact(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_function_app_runs_the_custom_handler_on_flex_or_linux_consumption() {
    let resources = bicep::resources();
    let declared: Vec<&Resource> = bicep::of_type(&resources, SITE)
        .into_iter()
        .filter(|site| !site.existing)
        .collect();
    assert_eq!(declared.len(), 1, "one function app is declared");
    let app = declared[0];
    assert_eq!(app.literal("kind", 1), "functionapp,linux");
    let module = compact(&files::read(&app.file));
    // Flex Consumption by default: sku FC1, the runtime in functionAppConfig
    // (learn.microsoft.com/azure/azure-functions/flex-consumption-how-to).
    assert!(
        module.contains("param hostingPlan string = 'FlexConsumption'"),
        "Flex Consumption is the default plan"
    );
    assert!(module.contains("name: 'FC1' tier: 'FlexConsumption'"));
    assert!(module.contains("name: 'Y1' tier: 'Dynamic'"));
    let site = compact(&app.text());
    assert!(site.contains("functionAppConfig: flex ? flexAppConfig : null"));
    let config = module
        .split("var flexAppConfig = {")
        .nth(1)
        .and_then(|rest| rest.split("resource ").next())
        .expect("flexAppConfig");
    assert!(
        config.contains("runtime: { name: 'custom' version: '1.0' }"),
        "Flex runs the custom handler runtime: {config}"
    );
    assert!(config.contains("type: 'SystemAssignedIdentity'"));
    // Flex takes neither FUNCTIONS_WORKER_RUNTIME nor FUNCTIONS_EXTENSION_VERSION
    // (learn.microsoft.com/azure/azure-functions/functions-app-settings,
    // "Flex Consumption plan deprecations"); Linux Consumption needs both.
    assert!(site.contains(
        "appSettings: flex ? commonSettings : concat(commonSettings, consumptionSettings)"
    ));
    let consumption = module
        .split("var consumptionSettings = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("consumptionSettings");
    assert!(consumption.contains("name: 'FUNCTIONS_WORKER_RUNTIME' value: 'custom'"));
    assert!(consumption.contains("name: 'FUNCTIONS_EXTENSION_VERSION' value: '~4'"));
    let common = module
        .split("var commonSettings = [")
        .nth(1)
        .and_then(|rest| rest.split("var ").next())
        .expect("commonSettings");
    assert!(!common.contains("FUNCTIONS_WORKER_RUNTIME"));
}

/// A product with its own subscription: a key opens this API only, and the
/// rate limit, keyed on the subscription, counts per subscriber.
#[test]
fn callers_subscribe_to_a_product_that_holds_the_api() {
    let resources = bicep::resources();
    let product = bicep::one_of_type(&resources, "Microsoft.ApiManagement/service/products");
    assert_eq!(product.property("subscriptionRequired", 2), Some("true"));
    assert_eq!(product.literal("state", 2), "published");
    let link = bicep::one_of_type(&resources, "Microsoft.ApiManagement/service/products/apis");
    assert_eq!(link.parent(), product.symbol);
    let api = bicep::one_of_type(&resources, API);
    assert_eq!(
        link.property("name", 1),
        Some(format!("{}.name", api.symbol).as_str())
    );
    let subscription =
        bicep::one_of_type(&resources, "Microsoft.ApiManagement/service/subscriptions");
    assert_eq!(
        subscription.property("scope", 2),
        Some(format!("{}.id", product.symbol).as_str()),
        "the subscription is the product's, not all-access"
    );
    assert_eq!(api.property("subscriptionRequired", 2), Some("true"));
}

/// The backend entity trips on a failing app (5xx, failed connections,
/// timeouts), honours the backend's Retry-After, and is only reached
/// through its id: the breaker's 503 comes from the entity the policy names.
#[test]
fn the_backend_has_a_circuit_breaker_that_honours_retry_after() {
    let resources = bicep::resources();
    let (pool, member) = pool_and_member(&resources);
    // The breakers are on the members: each app trips on its own and the
    // pool routes around it.
    assert!(!pool.text().contains("circuitBreaker"));
    let text = compact(&member.text());
    let breaker = text
        .split("circuitBreaker: {")
        .nth(1)
        .expect("a circuit breaker on the backend");
    assert!(
        breaker.contains("statusCodeRanges: [ { min: 500 max: 599 } ]"),
        "{breaker}"
    );
    assert!(breaker.contains("count: 5") && breaker.contains("interval: 'PT1M'"));
    assert!(breaker.contains("tripDuration: 'PT1M'"));
    assert!(breaker.contains("acceptRetryAfter: true"));
    let api = PolicyFile::load(&bicep::attachments(&resources).api);
    let document = api.document();
    assert!(
        policy::elements(document.root_element(), "set-backend-service")
            .iter()
            .all(|routing| routing.attribute("base-url").is_none()),
        "no policy goes around the backend entity by URL"
    );
    // The breaker's 503 gets the envelope: any error status is kept.
    let global = PolicyFile::load(&bicep::attachments(&resources).service);
    assert!(global.text.contains("current >= 400 ? current : 500"));
}
