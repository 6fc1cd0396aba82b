//! Every expression of `apim/policies/` parses and evaluates as .NET would;
//! what is not supported is refused with its offset.

use std::collections::BTreeMap;

use super::*;

fn policies_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../apim/policies")
}

/// Every attribute value and element text of the repository's policies
/// that is an expression, named values replaced by a literal.
fn repository_expressions() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let named_value = regex::Regex::new(r"\{\{[a-z-]+\}\}").expect("regex");
    for entry in std::fs::read_dir(policies_dir()).expect("apim/policies") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("a policy");
        let text = named_value.replace_all(&text, "functionKey");
        let document = roxmltree::Document::parse(&text).expect("well-formed");
        for node in document.descendants() {
            let values = node
                .attributes()
                .map(|a| a.value().to_owned())
                .chain(node.is_text().then(|| node.text().unwrap_or("").to_owned()));
            for value in values {
                if is_expression(&value) {
                    found.push((path.display().to_string(), value));
                }
            }
        }
    }
    found
}

fn find(fragment: &str) -> Expression {
    let (_, text) = repository_expressions()
        .into_iter()
        .find(|(_, text)| text.contains(fragment))
        .unwrap_or_else(|| panic!("no expression with {fragment:?}"));
    Expression::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn context() -> Context {
    Context {
        request_id: "0f8fad5b-d9cb-469f-a165-70867728950e".to_owned(),
        request: Request {
            method: "GET".to_owned(),
            original_url: Url {
                path: "/catalog/api/catalog/42".to_owned(),
                ..Url::default()
            },
            ip_address: "127.0.0.1".to_owned(),
            ..Request::default()
        },
        ..Context::default()
    }
}

#[test]
fn every_expression_of_the_policies_parses() {
    let all = repository_expressions();
    assert!(all.len() >= 15, "{} expressions found", all.len());
    for (file, text) in all {
        if let Err(e) = Expression::parse(&text) {
            panic!("{file}: {text}\n{e} at {}", e.offset);
        }
    }
}

#[test]
fn the_correlation_id_is_the_callers_when_valid_else_the_request_id() {
    let expression = find("Regex.IsMatch");
    let mut ctx = context();
    for (incoming, expected) in [
        ("6d9f", "6d9f"),
        ("has space", "0f8fad5b-d9cb-469f-a165-70867728950e"),
        (&*"x".repeat(129), "0f8fad5b-d9cb-469f-a165-70867728950e"),
        (&*"x".repeat(128), &*"x".repeat(128)),
        ("", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    ] {
        ctx.request.headers = Headers(vec![("X-Correlation-Id".to_owned(), incoming.to_owned())]);
        assert_eq!(
            expression.eval(&ctx),
            Ok(Value::String(expected.to_owned())),
            "{incoming:?}"
        );
    }
}

#[test]
fn the_problem_status_follows_the_last_error_and_the_response() {
    let expression = find("RateLimitExceeded");
    let mut ctx = context();
    let with = |reason: &str, status: Option<u16>, ctx: &mut Context| {
        ctx.last_error = Some(LastError {
            reason: reason.to_owned(),
            ..LastError::default()
        });
        ctx.response = status.map(|status_code| Response {
            status_code,
            ..Response::default()
        });
        expression.eval(ctx)
    };
    assert_eq!(
        with("RateLimitExceeded", Some(429), &mut ctx),
        Ok(Value::Int(429))
    );
    assert_eq!(
        with("TokenExpired", Some(401), &mut ctx),
        Ok(Value::Int(401))
    );
    assert_eq!(
        with("SubscriptionKeyNotFound", None, &mut ctx),
        Ok(Value::Int(401))
    );
    assert_eq!(
        with("OperationNotFound", None, &mut ctx),
        Ok(Value::Int(404))
    );
    assert_eq!(
        with("BackendConnectionFailure", None, &mut ctx),
        Ok(Value::Int(502))
    );
    assert_eq!(with("Timeout", None, &mut ctx), Ok(Value::Int(504)));
    assert_eq!(with("Other", Some(503), &mut ctx), Ok(Value::Int(503)));
    assert_eq!(with("Other", None, &mut ctx), Ok(Value::Int(500)));
    // `?? ""` is for a null Reason; a null LastError is .NET's NullReference.
    ctx.last_error = None;
    assert!(matches!(
        expression.eval(&ctx),
        Err(EvalError::NullReference(_))
    ));
}

#[test]
fn the_problem_body_is_compact_escaped_json() {
    let expression = find("new JObject");
    let mut ctx = context();
    let variables: BTreeMap<String, Value> = [
        ("problemTitle", Value::from("Too Many Requests")),
        ("problemStatus", Value::Int(429)),
        (
            "problemDetail",
            Value::from("Too many requests: retry after 42 seconds."),
        ),
        ("correlationId", Value::from("6d9f\"<x>")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    ctx.variables = variables;
    assert_eq!(
        expression.eval(&ctx),
        Ok(Value::String(
            r#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"Too many requests: retry after 42 seconds.","instance":"/catalog/api/catalog/42","correlation_id":"6d9f\"<x>"}"#
                .to_owned()
        ))
    );
    // A missing variable is .NET's KeyNotFoundException, and a cast of the
    // wrong type its InvalidCastException.
    ctx.variables.remove("problemTitle");
    assert!(matches!(
        expression.eval(&ctx),
        Err(EvalError::KeyNotFound(_))
    ));
    ctx.variables
        .insert("problemTitle".to_owned(), Value::Int(1));
    assert!(matches!(
        expression.eval(&ctx),
        Err(EvalError::InvalidCast { .. })
    ));
}

#[test]
fn the_rate_limit_key_and_the_retry_after_text() {
    let key = find("subscription:");
    let mut ctx = context();
    assert_eq!(key.eval(&ctx), Ok(Value::from("ip:127.0.0.1")));
    ctx.subscription = Some(Subscription {
        id: "catalog-first-client".to_owned(),
        ..Subscription::default()
    });
    assert_eq!(
        key.eval(&ctx),
        Ok(Value::from("subscription:catalog-first-client"))
    );
    let retry = find("rateLimitRetryAfter");
    assert_eq!(retry.eval(&ctx), Ok(Value::from("60")));
    ctx.variables
        .insert("rateLimitRetryAfter".to_owned(), Value::Int(42));
    assert_eq!(retry.eval(&ctx), Ok(Value::from("42")));
}

#[test]
fn the_switches_and_conditions() {
    let mut ctx = context();
    ctx.variables
        .insert("problemStatus".to_owned(), Value::Int(429));
    assert_eq!(
        find("Bad Request").eval(&ctx),
        Ok(Value::from("Too Many Requests"))
    );
    ctx.variables
        .insert("problemStatus".to_owned(), Value::Int(418));
    assert_eq!(find("Bad Request").eval(&ctx), Ok(Value::from("Error")));
    ctx.response = Some(Response {
        status_code: 304,
        ..Response::default()
    });
    assert_eq!(find("StatusCode == 304").eval(&ctx), Ok(Value::Bool(true)));
    assert_eq!(
        find("\"managedIdentity\"").eval(&ctx),
        Ok(Value::Bool(false))
    );
}

#[test]
fn unsupported_constructs_are_refused_with_their_offset() {
    for (text, at, construct) in [
        (
            "@(context.Request.Body.As<string>())",
            18,
            "the member `Body` of IRequest",
        ),
        ("@(DateTime.UtcNow)", 2, "the name `DateTime`"),
        ("@(x => x)", 2, "the name `x`"),
        (
            "@(context.Request.Headers.GetValueOrDefault(\"a\"))",
            26,
            "GetValueOrDefault(string)",
        ),
        (
            "@{ context.Variables[\"a\"] = 1; return 1; }",
            3,
            "the statement starting with `context`",
        ),
        ("@(new Uri(\"x\"))", 6, "the type `Uri`"),
        ("@(Regex.IsMatch(\"a\", \"(?=a)\"))", 21, "the pattern"),
        ("@(1 - 2)", 4, "arithmetic"),
        ("@((DateTime)context.RequestId)", 2, "a cast to `DateTime`"),
        (
            "@(context.Variables.GetValueOrDefault<string>(\"a\"))",
            20,
            "generic method",
        ),
    ] {
        let error = Expression::parse(text).expect_err(text);
        assert_eq!(error.offset, at, "{text}: {error}");
        assert!(error.construct.contains(construct), "{text}: {error}");
    }
}
