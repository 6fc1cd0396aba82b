//! The policy documents: well-formed, and enforcing what the gateway owns
//! (token, rate limit, cache, credentials, correlation) in the order that
//! makes it hold, with the guest's max-age, header names and error envelope.

use std::collections::BTreeSet;

use catalog::api::{
    CACHE_STATUS_HEADER, CORRELATION_ID_HEADER, DEFAULT_GATEWAY, GATEWAY_HEADER, MAX_AGE_SECONDS,
};

use crate::bicep::{self, Attachments};
use crate::files;
use crate::policy::{
    PolicyFile, SECTIONS, attribute, element, elements, header, is_expression, position, section,
    settings, statements,
};

fn attachments() -> Attachments {
    bicep::attachments(&bicep::resources())
}

fn api_policy() -> PolicyFile {
    PolicyFile::load(&attachments().api)
}

/// The service-scope policy, in charge of the error envelope.
fn global_policy() -> PolicyFile {
    PolicyFile::load(&attachments().service)
}

/// The cached operation's policy: the one operation policy there is.
fn cached_operation_policy() -> PolicyFile {
    let attachments = attachments();
    assert_eq!(
        attachments.operations.len(),
        1,
        "one operation policy: {:?}",
        attachments.operations
    );
    PolicyFile::load(&attachments.operations[0].1)
}

#[test]
fn policy_files_are_well_formed_and_keep_the_outer_scopes() {
    let paths = files::files_under(&files::apim_dir().join("policies"), "xml");
    assert!(paths.len() >= 3, "policy files: {paths:?}");
    let global = attachments().service;
    for path in paths {
        // The global scope has none above it, so no <base /> to run.
        let expected_bases = usize::from(files::canonical(&path) != global);
        let policy = PolicyFile::load(&path);
        let document = policy.document();
        let root = document.root_element();
        assert!(root.has_tag_name("policies"), "{}", path.display());
        let sections: Vec<&str> = statements(root)
            .iter()
            .map(|node| node.tag_name().name())
            .collect();
        assert_eq!(sections, SECTIONS, "{}", path.display());
        for name in SECTIONS {
            // <base /> runs the enclosing scope's policy; without it a
            // product's or the global policy would silently stop applying.
            let bases = statements(section(&document, name))
                .iter()
                .filter(|node| node.has_tag_name("base"))
                .count();
            assert_eq!(
                bases,
                expected_bases,
                "{}: <{name}> has {bases} <base />",
                path.display()
            );
        }
    }
}

#[test]
fn only_the_get_operation_caches_for_the_guests_max_age() {
    let api = api_policy();
    let api_document = api.document();
    for tag in ["cache-lookup", "cache-store"] {
        assert!(
            elements(api_document.root_element(), tag).is_empty(),
            "the API policy applies to every operation, so it must not {tag}"
        );
    }

    let operation = cached_operation_policy();
    let document = operation.document();
    let inbound = statements(section(&document, "inbound"));
    let lookup = inbound[position(&inbound, "cache-lookup")];
    assert!(
        position(&inbound, "base") < position(&inbound, "cache-lookup"),
        "the API's token check and rate limit run before the lookup"
    );
    // Every request carries a bearer token; APIM caches none of them otherwise.
    assert_eq!(attribute(lookup, "allow-private-response-caching"), "true");
    assert_eq!(attribute(lookup, "vary-by-developer"), "false");
    assert_eq!(attribute(lookup, "vary-by-developer-groups"), "false");

    let store = element(section(&document, "outbound"), "cache-store");
    let duration: u32 = attribute(store, "duration")
        .parse()
        .expect("a literal duration in seconds");
    assert_eq!(
        duration, MAX_AGE_SECONDS,
        "cache-store keeps a response as long as the guest's Cache-Control max-age"
    );
    assert!(
        store.attribute("cache-response").is_none(),
        "only 200 responses are stored (never a 304 or an error)"
    );
}

/// Without vary-by-query-parameter, every query parameter is part of APIM's
/// cache key (learn.microsoft.com/azure/api-management/cache-lookup-policy):
/// `?x=1` and `?x=2` would be two entries. The query is dropped before the
/// lookup, so two requests differing only in their query use one entry.
#[test]
fn the_cache_key_does_not_depend_on_the_query() {
    let operation = cached_operation_policy();
    let document = operation.document();
    let inbound = statements(section(&document, "inbound"));
    let rewrite = inbound[position(&inbound, "rewrite-uri")];
    assert!(
        position(&inbound, "rewrite-uri") < position(&inbound, "cache-lookup"),
        "the query is gone before the lookup"
    );
    // learn.microsoft.com/azure/api-management/rewrite-uri-policy: "false"
    // drops every query parameter the template does not name.
    assert_eq!(attribute(rewrite, "copy-unmatched-params"), "false");
    let template = attribute(rewrite, "template");
    assert!(
        !template.contains('?'),
        "the template adds no query: {template}"
    );
    let cached = files::openapi_operations()
        .into_iter()
        .find(|operation| operation.operation_id == "getCatalogItem")
        .expect("getCatalogItem");
    assert_eq!(
        template, cached.path,
        "the backend path is the operation's own"
    );
    let lookup = inbound[position(&inbound, "cache-lookup")];
    assert!(lookup.attribute("vary-by-query-parameter").is_none());
    assert!(elements(lookup, "vary-by-query-parameter").is_empty());
}

/// What a client (and any cache between it and APIM) may do with an item
/// is set here, not left to how APIM rewrites the backend's `public`.
#[test]
fn the_client_gets_an_explicit_private_cache_control() {
    let operation = cached_operation_policy();
    let document = operation.document();
    let lookup = element(section(&document, "inbound"), "cache-lookup");
    assert_eq!(attribute(lookup, "downstream-caching-type"), "none");
    let outbound = section(&document, "outbound");
    let when = element(element(outbound, "choose"), "when");
    let condition = attribute(when, "condition");
    assert!(condition.contains("StatusCode == 200") && condition.contains("StatusCode == 304"));
    let cache_control = header(when, "Cache-Control");
    assert_eq!(cache_control.exists_action, "override");
    assert_eq!(
        cache_control.value.as_deref(),
        Some(format!("private, max-age={MAX_AGE_SECONDS}").as_str())
    );
}

/// A token for the audience is not enough: the caller's app needs the API's
/// app role (validate-jwt's required-claims, from a named value).
#[test]
fn tokens_must_carry_the_apis_app_role() {
    let api = api_policy();
    let document = api.document();
    let jwt = element(section(&document, "inbound"), "validate-jwt");
    let claim = element(element(jwt, "required-claims"), "claim");
    assert_eq!(attribute(claim, "name"), "roles");
    assert_eq!(attribute(claim, "match"), "any");
    assert_eq!(
        element(claim, "value").text(),
        Some("{{catalog-required-role}}")
    );
}

#[test]
fn callers_are_authenticated_then_rate_limited_by_subscription_or_ip() {
    let api = api_policy();
    let document = api.document();
    let inbound = statements(section(&document, "inbound"));

    let jwt = inbound[position(&inbound, "validate-jwt")];
    assert_eq!(attribute(jwt, "header-name"), "Authorization");
    assert_eq!(attribute(jwt, "require-scheme"), "Bearer");
    assert_eq!(attribute(jwt, "failed-validation-httpcode"), "401");
    let named_value = |node: roxmltree::Node<'_, '_>, what: &str| {
        let text = node.text().map(str::trim).unwrap_or_default();
        assert!(
            text.starts_with("{{") && text.ends_with("}}"),
            "{what} comes from a named value, not {text:?}"
        );
    };
    let openid = element(jwt, "openid-config");
    assert!(attribute(openid, "url").starts_with("{{"));
    for (list, item) in [("audiences", "audience"), ("issuers", "issuer")] {
        let items = elements(element(jwt, list), item);
        assert!(!items.is_empty(), "validate-jwt has {list}");
        items.into_iter().for_each(|node| named_value(node, item));
    }

    let limit = inbound[position(&inbound, "rate-limit-by-key")];
    let counter_key = attribute(limit, "counter-key");
    assert!(is_expression(counter_key), "{counter_key}");
    for part in ["context.Subscription", "context.Request.IpAddress"] {
        assert!(
            counter_key.contains(part),
            "the key uses {part}: {counter_key}"
        );
    }
    for count in ["calls", "renewal-period"] {
        let value: u32 = attribute(limit, count).parse().expect("a number");
        assert!(value > 0, "{count}");
    }
    assert!(
        position(&inbound, "validate-jwt") < position(&inbound, "rate-limit-by-key"),
        "calls without a valid token must not spend a caller's budget"
    );
}

#[test]
fn the_backend_is_chosen_by_backend_id() {
    let api = api_policy();
    let document = api.document();
    let routing = element(section(&document, "inbound"), "set-backend-service");
    assert!(!attribute(routing, "backend-id").is_empty());
    assert!(
        routing.attribute("base-url").is_none(),
        "the URL and the function key live in the backend entity"
    );
}

#[test]
fn credentials_stop_at_the_gateway() {
    let api = api_policy();
    let document = api.document();
    let inbound = section(&document, "inbound");
    let deleted = |tag: &str| -> BTreeSet<String> {
        settings(inbound, tag)
            .into_iter()
            .filter(|setting| setting.exists_action == "delete")
            .map(|setting| setting.name.to_ascii_lowercase())
            .collect()
    };
    let headers = deleted("set-header");
    for name in [
        "ocp-apim-subscription-key",
        "authorization",
        "x-functions-key",
    ] {
        assert!(headers.contains(name), "{name} is removed: {headers:?}");
    }
    let query = deleted("set-query-parameter");
    for name in ["subscription-key", "code"] {
        assert!(query.contains(name), "?{name} is removed: {query:?}");
    }
}

#[test]
fn the_backend_gets_the_apim_headers_and_the_client_the_correlation_id() {
    let api = api_policy();
    let document = api.document();
    let inbound = section(&document, "inbound");

    let correlation = header(inbound, CORRELATION_ID_HEADER);
    let value = correlation.value.expect("a value");
    assert!(
        value.contains("context.Variables[\"correlationId\"]"),
        "{value}"
    );
    let variable = elements(inbound, "set-variable")
        .into_iter()
        .find(|node| node.attribute("name") == Some("correlationId"))
        .expect("a correlationId variable");
    let rule = attribute(variable, "value");
    for part in ["\"x-correlation-id\"", "context.RequestId"] {
        assert!(rule.contains(part), "the id comes from {part}: {rule}");
    }

    let gateway = header(inbound, GATEWAY_HEADER).value.expect("a value");
    assert!(!is_expression(&gateway) && !gateway.is_empty(), "{gateway}");
    assert_ne!(
        gateway, DEFAULT_GATEWAY,
        "the guest could not tell the header from its absence"
    );
    assert_eq!(
        header(inbound, CACHE_STATUS_HEADER).value.as_deref(),
        Some("bypass"),
        "without an operation cache, no cache was consulted"
    );
    let operation = cached_operation_policy();
    let operation_document = operation.document();
    assert_eq!(
        header(section(&operation_document, "inbound"), CACHE_STATUS_HEADER)
            .value
            .as_deref(),
        Some("miss"),
        "a request of the cached operation reaches the backend only on a miss"
    );

    let outbound = section(&document, "outbound");
    let echoed = header(outbound, CORRELATION_ID_HEADER);
    assert_eq!(echoed.exists_action, "override");
    assert_eq!(
        echoed.value,
        Some(value),
        "the client gets the backend's id back"
    );
}

#[test]
fn on_error_answers_with_the_envelope_of_the_guest_and_the_host() {
    let global = global_policy();
    let document = global.document();
    let response = element(section(&document, "on-error"), "return-response");
    let value = |name: &str| header(response, name).value.expect("a value");
    assert_eq!(value("Content-Type"), catalog::problem::CONTENT_TYPE);
    assert_eq!(value("Cache-Control"), "no-store");
    assert!(value(CORRELATION_ID_HEADER).contains("correlationId"));
    assert!(value("Retry-After").contains("retryAfterSeconds"));

    // The members the body template builds are the guest's envelope's.
    let body = element(response, "set-body")
        .text()
        .expect("a body template");
    let mut members = BTreeSet::new();
    let mut rest = body;
    while let Some(start) = rest.find("new JProperty(\"") {
        let after = &rest[start + "new JProperty(\"".len()..];
        let end = after.find('"').expect("a closed member name");
        members.insert(after[..end].to_owned());
        rest = &after[end..];
    }
    let guest_problem: serde_json::Value = serde_json::from_slice(&catalog::problem::render(
        404,
        "detail",
        "/api/catalog/13",
        "c-1",
    ))
    .expect("the guest renders JSON");
    let expected: BTreeSet<String> = guest_problem
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(members, expected);
    assert!(body.contains("new JProperty(\"type\", \"about:blank\")"));
    assert!(
        body.contains("new JProperty(\"status\", (int)"),
        "status is a number"
    );
}

/// Errors outside the API (a request no API matches, a subscription key
/// refused before any API policy runs) get the envelope too: it is the
/// service scope's, and the API's and operation's on-error only run it.
#[test]
fn the_error_envelope_is_the_service_scopes_and_every_scope_reaches_it() {
    let global = global_policy();
    let document = global.document();
    let on_error = statements(section(&document, "on-error"));
    assert!(
        on_error
            .last()
            .is_some_and(|last| last.has_tag_name("return-response")),
        "the global on-error answers"
    );
    for path in [api_policy().path, cached_operation_policy().path] {
        let policy = PolicyFile::load(&path);
        let document = policy.document();
        let tags: Vec<&str> = statements(section(&document, "on-error"))
            .iter()
            .map(|node| node.tag_name().name())
            .collect();
        assert_eq!(
            tags,
            ["base"],
            "{}: on-error only runs the global one",
            path.display()
        );
    }
}

#[test]
fn error_reasons_map_to_statuses() {
    let global = global_policy();
    let document = global.document();
    let mapping = elements(section(&document, "on-error"), "set-variable")
        .into_iter()
        .find(|node| node.attribute("name") == Some("problemStatus"))
        .map(|node| attribute(node, "value"))
        .expect("a problemStatus variable");
    // One `if (<test of reason>) { return <status>; }` per statement.
    let status_for = |test: &str| -> u16 {
        let statement = mapping
            .split("if (")
            .find(|statement| statement.starts_with(test))
            .unwrap_or_else(|| panic!("no case for {test}: {mapping}"));
        let after = statement
            .split_once("return ")
            .unwrap_or_else(|| panic!("{statement}"))
            .1;
        after[..after.find(';').expect("a statement")]
            .parse()
            .expect("a literal status")
    };
    for (test, status) in [
        ("reason == \"RateLimitExceeded\"", 429),
        ("reason.StartsWith(\"Token\")", 401),
        ("reason == \"JwtInvalid\"", 401),
        ("reason.StartsWith(\"SubscriptionKey\")", 401),
        ("reason == \"OperationNotFound\"", 404),
        ("reason == \"BackendConnectionFailure\"", 502),
        ("reason == \"Timeout\"", 504),
    ] {
        assert_eq!(status_for(test), status, "{test}");
    }
    assert!(
        mapping.contains("current >= 400 ? current : 500"),
        "any other error keeps its error status or becomes 500"
    );
    let retry_after = header(
        element(section(&document, "on-error"), "return-response"),
        "Retry-After",
    );
    let action = &retry_after.exists_action;
    assert!(
        action.contains("== 429 ? \"override\" : \"delete\""),
        "Retry-After only on 429: {action}"
    );
    // RFC 9110 section 11.6.1: every 401 names a scheme.
    let challenge = header(
        element(section(&document, "on-error"), "return-response"),
        "WWW-Authenticate",
    );
    assert!(
        challenge
            .exists_action
            .contains("== 401 ? \"override\" : \"delete\""),
        "WWW-Authenticate on 401: {}",
        challenge.exists_action
    );
    assert!(
        challenge
            .value
            .as_deref()
            .is_some_and(|value| value.starts_with("Bearer"))
    );
}
