//! Every expression of `apim/policies/` parses and evaluates as APIM's C#
//! would, branch by branch; what is not supported is refused at parse time
//! with a useful construct and its offset.

use super::*;

// The repository's expressions, as the XML parser decodes them, named
// values substituted (`{{catalog-backend-auth}}` is `functionKey`).

const CATALOG_CORRELATION_ID: &str = r#"@{
        var incoming = context.Request.Headers.GetValueOrDefault("x-correlation-id", "");
        return Regex.IsMatch(incoming, @"\A[!-~]{1,128}\z") ? incoming : context.RequestId.ToString();
    }"#;
const COUNTER_KEY: &str = r#"@(context.Subscription != null ? "subscription:" + context.Subscription.Id : "ip:" + context.Request.IpAddress)"#;
const CORRELATION_ID_VALUE: &str = r#"@((string)context.Variables["correlationId"])"#;
const BACKEND_AUTH: &str = r#"@("functionKey" == "managedIdentity")"#;
const CACHE_STATUS_VALUE: &str = r#"@((string)context.Variables["cacheStatus"])"#;
const CACHEABLE_STATUS: &str =
    r#"@(context.Response.StatusCode == 200 || context.Response.StatusCode == 304)"#;
const GLOBAL_CORRELATION_ID: &str = r#"@{
        if (context.Variables.ContainsKey("correlationId")) { return (string)context.Variables["correlationId"]; }
        var incoming = context.Request.Headers.GetValueOrDefault("x-correlation-id", "");
        return Regex.IsMatch(incoming, @"\A[!-~]{1,128}\z") ? incoming : context.RequestId.ToString();
    }"#;
const PROBLEM_STATUS: &str = r#"@{
        var reason = context.LastError.Reason ?? "";
        if (reason == "RateLimitExceeded") { return 429; }
        if (reason == "QuotaExceeded") { return 403; }
        if (reason.StartsWith("SubscriptionKey")) { return 401; }
        if (reason.StartsWith("Token")) { return 401; }
        if (reason == "JwtInvalid") { return 401; }
        if (reason == "OperationNotFound") { return 404; }
        if (reason == "BackendConnectionFailure") { return 502; }
        if (reason == "Timeout") { return 504; }
        var current = context.Response != null ? context.Response.StatusCode : 0;
        return current >= 400 ? current : 500;
    }"#;
const RETRY_AFTER_SECONDS: &str = r#"@(context.Variables.ContainsKey("rateLimitRetryAfter") ? context.Variables["rateLimitRetryAfter"].ToString() : "60")"#;
const PROBLEM_TITLE: &str = r#"@{
        switch ((int)context.Variables["problemStatus"])
        {
            case 400: return "Bad Request";
            case 401: return "Unauthorized";
            case 403: return "Forbidden";
            case 404: return "Not Found";
            case 429: return "Too Many Requests";
            case 500: return "Internal Server Error";
            case 502: return "Bad Gateway";
            case 503: return "Service Unavailable";
            case 504: return "Gateway Timeout";
            default: return "Error";
        }
    }"#;
const PROBLEM_DETAIL: &str = r#"@{
        var reason = context.LastError.Reason ?? "";
        switch ((int)context.Variables["problemStatus"])
        {
            case 401: return reason.StartsWith("SubscriptionKey") ? "A valid subscription key is required." : "A valid bearer token is required.";
            case 403: return "The gateway refused the request.";
            case 404: return "No API or operation of this gateway matches the request.";
            case 429: return "Too many requests: retry after " + (string)context.Variables["retryAfterSeconds"] + " seconds.";
            case 502: return "The backend could not be reached.";
            case 504: return "The backend did not answer in time.";
            default: return "The gateway could not process the request.";
        }
    }"#;
const STATUS_CODE: &str = r#"@((int)context.Variables["problemStatus"])"#;
const STATUS_REASON: &str = r#"@((string)context.Variables["problemTitle"])"#;
const WWW_AUTHENTICATE_ACTION: &str =
    r#"@((int)context.Variables["problemStatus"] == 401 ? "override" : "delete")"#;
const RETRY_AFTER_ACTION: &str =
    r#"@((int)context.Variables["problemStatus"] == 429 ? "override" : "delete")"#;
const RETRY_AFTER_VALUE: &str = r#"@((string)context.Variables["retryAfterSeconds"])"#;
const PROBLEM_BODY: &str = r#"@(new JObject(
            new JProperty("type", "about:blank"),
            new JProperty("title", (string)context.Variables["problemTitle"]),
            new JProperty("status", (int)context.Variables["problemStatus"]),
            new JProperty("detail", (string)context.Variables["problemDetail"]),
            new JProperty("instance", context.Request.OriginalUrl.Path),
            new JProperty("correlation_id", (string)context.Variables["correlationId"])
        ).ToString(Newtonsoft.Json.Formatting.None))"#;

/// Every expression above: the policies must hold no other.
const POLICY_EXPRESSIONS: &[&str] = &[
    CATALOG_CORRELATION_ID,
    COUNTER_KEY,
    CORRELATION_ID_VALUE,
    BACKEND_AUTH,
    CACHE_STATUS_VALUE,
    CACHEABLE_STATUS,
    GLOBAL_CORRELATION_ID,
    PROBLEM_STATUS,
    RETRY_AFTER_SECONDS,
    PROBLEM_TITLE,
    PROBLEM_DETAIL,
    STATUS_CODE,
    STATUS_REASON,
    WWW_AUTHENTICATE_ACTION,
    RETRY_AFTER_ACTION,
    RETRY_AFTER_VALUE,
    PROBLEM_BODY,
];

const REQUEST_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse(text: &str) -> Expression {
    Expression::parse(text).unwrap_or_else(|e| panic!("{text}: {e} at {}", e.offset))
}

fn eval(text: &str, context: &Context) -> Result<Value, EvalError> {
    parse(text).eval(context)
}

fn string(s: &str) -> Result<Value, EvalError> {
    Ok(Value::String(s.to_owned()))
}

fn refused(text: &str) -> Unsupported {
    match Expression::parse(text) {
        Ok(_) => panic!("{text} was accepted"),
        Err(e) => e,
    }
}

fn context() -> Context {
    Context {
        request_id: REQUEST_ID.to_owned(),
        request: Request {
            method: "GET".to_owned(),
            url: Url {
                scheme: "http".to_owned(),
                host: "127.0.0.1".to_owned(),
                port: 7071,
                path: "/api/catalog/42".to_owned(),
                query: Vec::new(),
            },
            original_url: Url {
                scheme: "https".to_owned(),
                host: "apim.example".to_owned(),
                port: 443,
                path: "/catalog/api/catalog/42".to_owned(),
                query: Vec::new(),
            },
            ip_address: "203.0.113.7".to_owned(),
            ..Request::default()
        },
        ..Context::default()
    }
}

fn with_variables(mut context: Context, variables: &[(&str, Value)]) -> Context {
    for (name, value) in variables {
        context.variables.insert((*name).to_owned(), value.clone());
    }
    context
}

fn with_error(mut context: Context, reason: &str, status: Option<u16>) -> Context {
    context.last_error = Some(LastError {
        source: "rate-limit-by-key".to_owned(),
        reason: reason.to_owned(),
        message: "internal details".to_owned(),
        ..LastError::default()
    });
    context.response = status.map(|status_code| Response {
        status_code,
        ..Response::default()
    });
    context
}

/// Every attribute value and element text of `apim/policies/*.xml` that is
/// an expression, named values substituted.
fn repository_expressions() -> Vec<(String, String)> {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../apim/policies");
    let named_value = regex::Regex::new(r"\{\{[A-Za-z0-9._-]+\}\}").expect("a pattern");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&directory).expect("apim/policies") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|e| e != "xml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a policy file");
        let text = named_value.replace_all(&text, "functionKey");
        let document = roxmltree::Document::parse(&text).expect("well-formed XML");
        for node in document.descendants() {
            let texts = node
                .attributes()
                .map(|a| a.value().to_owned())
                .chain(node.is_text().then(|| node.text().unwrap_or("").to_owned()));
            for value in texts.filter(|v| is_expression(v)) {
                found.push((path.display().to_string(), value));
            }
        }
    }
    found
}

// The repository's policies.

#[test]
fn every_expression_of_the_policies_is_one_these_tests_evaluate() {
    let known: Vec<String> = POLICY_EXPRESSIONS.iter().map(|e| normalized(e)).collect();
    let found = repository_expressions();
    assert!(found.len() >= POLICY_EXPRESSIONS.len(), "{found:?}");
    for (file, text) in &found {
        if let Err(e) = Expression::parse(text) {
            panic!("{file}: {text}\n{e} at {}", e.offset);
        }
        assert!(
            known.contains(&normalized(text)),
            "{file}: an expression these tests do not evaluate:\n{text}"
        );
    }
    for expression in &known {
        assert!(
            found
                .iter()
                .any(|(_, text)| normalized(text) == *expression),
            "no longer in the policies: {expression}"
        );
    }
}

#[test]
fn the_catalog_correlation_id_is_the_callers_when_valid_else_the_request_id() {
    let expression = parse(CATALOG_CORRELATION_ID);
    let long_valid = "x".repeat(128);
    let too_long = "x".repeat(129);
    for (incoming, expected) in [
        (Some("6d9f"), "6d9f"),
        (Some(long_valid.as_str()), long_valid.as_str()),
        (Some(too_long.as_str()), REQUEST_ID),
        (Some("has space"), REQUEST_ID),
        (Some("tab\there"), REQUEST_ID),
        (Some("caf\u{e9}"), REQUEST_ID),
        // .NET's `\z` is the very end: a trailing newline is refused.
        (Some("6d9f\n"), REQUEST_ID),
        (Some(""), REQUEST_ID),
        (None, REQUEST_ID),
    ] {
        let mut ctx = context();
        if let Some(incoming) = incoming {
            // Header names compare case-insensitively.
            ctx.request.headers =
                Headers(vec![("X-Correlation-ID".to_owned(), incoming.to_owned())]);
        }
        assert_eq!(expression.eval(&ctx), string(expected), "{incoming:?}");
    }
}

#[test]
fn the_counter_key_is_the_subscription_else_the_ip() {
    let expression = parse(COUNTER_KEY);
    let mut ctx = context();
    assert_eq!(expression.eval(&ctx), string("ip:203.0.113.7"));
    ctx.subscription = Some(Subscription {
        id: "catalog-first-client".to_owned(),
        ..Subscription::default()
    });
    assert_eq!(
        expression.eval(&ctx),
        string("subscription:catalog-first-client")
    );
}

#[test]
fn the_variable_values_are_cast_to_string() {
    let ctx = with_variables(
        context(),
        &[
            ("correlationId", Value::from("6d9f")),
            ("cacheStatus", Value::from("miss")),
            ("problemTitle", Value::from("Too Many Requests")),
            ("retryAfterSeconds", Value::from("42")),
            ("problemStatus", Value::Int(429)),
        ],
    );
    assert_eq!(eval(CORRELATION_ID_VALUE, &ctx), string("6d9f"));
    assert_eq!(eval(CACHE_STATUS_VALUE, &ctx), string("miss"));
    assert_eq!(eval(STATUS_REASON, &ctx), string("Too Many Requests"));
    assert_eq!(eval(RETRY_AFTER_VALUE, &ctx), string("42"));
    assert_eq!(eval(STATUS_CODE, &ctx), Ok(Value::Int(429)));
    // A missing variable is KeyNotFoundException; a string is no int, nor an
    // int a string (InvalidCastException).
    assert_eq!(
        eval(CORRELATION_ID_VALUE, &context()),
        Err(EvalError::KeyNotFound("correlationId".to_owned()))
    );
    let wrong = with_variables(
        context(),
        &[
            ("problemStatus", Value::from("429")),
            ("correlationId", Value::Int(7)),
        ],
    );
    assert_eq!(
        eval(STATUS_CODE, &wrong),
        Err(EvalError::InvalidCast {
            from: "System.String",
            to: "System.Int32"
        })
    );
    assert_eq!(
        eval(CORRELATION_ID_VALUE, &wrong),
        Err(EvalError::InvalidCast {
            from: "System.Int32",
            to: "System.String"
        })
    );
    // A null string variable casts to null.
    let null = with_variables(context(), &[("correlationId", Value::Null)]);
    assert_eq!(eval(CORRELATION_ID_VALUE, &null), Ok(Value::Null));
}

#[test]
fn the_backend_auth_condition_compares_the_named_value() {
    assert_eq!(eval(BACKEND_AUTH, &context()), Ok(Value::Bool(false)));
    assert_eq!(
        eval(r#"@("managedIdentity" == "managedIdentity")"#, &context()),
        Ok(Value::Bool(true))
    );
}

#[test]
fn the_cacheable_status_condition() {
    let expression = parse(CACHEABLE_STATUS);
    for (status, expected) in [(200, true), (304, true), (404, false), (500, false)] {
        let ctx = with_error(context(), "", Some(status));
        assert_eq!(expression.eval(&ctx), Ok(Value::Bool(expected)), "{status}");
    }
    // No response: `context.Response.StatusCode` is a NullReferenceException.
    assert!(matches!(
        expression.eval(&context()),
        Err(EvalError::NullReference(what)) if what.contains("context.Response")
    ));
}

#[test]
fn the_global_correlation_id_keeps_the_apis_else_applies_the_callers_rule() {
    let expression = parse(GLOBAL_CORRELATION_ID);
    // Errors before any API policy ran: the caller's valid id, else the
    // request id.
    assert_eq!(expression.eval(&context()), string(REQUEST_ID));
    let mut ctx = context();
    ctx.request.headers = Headers(vec![("x-correlation-id".to_owned(), "6d9f".to_owned())]);
    assert_eq!(expression.eval(&ctx), string("6d9f"));
    ctx.request.headers = Headers(vec![(
        "x-correlation-id".to_owned(),
        "has space".to_owned(),
    )]);
    assert_eq!(expression.eval(&ctx), string(REQUEST_ID));
    // The API's inbound already chose one: kept, whatever the header says.
    let ctx = with_variables(ctx, &[("correlationId", Value::from("from-api"))]);
    assert_eq!(expression.eval(&ctx), string("from-api"));
}

#[test]
fn the_problem_status_follows_the_last_error_and_the_response() {
    let expression = parse(PROBLEM_STATUS);
    for (reason, response, expected) in [
        ("RateLimitExceeded", Some(429), 429),
        ("RateLimitExceeded", None, 429),
        ("QuotaExceeded", None, 403),
        ("SubscriptionKeyNotFound", None, 401),
        ("SubscriptionKeyInvalid", Some(401), 401),
        ("TokenExpired", Some(401), 401),
        ("TokenSignatureInvalid", None, 401),
        ("JwtInvalid", None, 401),
        ("OperationNotFound", None, 404),
        ("BackendConnectionFailure", None, 502),
        ("Timeout", None, 504),
        // Any other reason: the response's status if it is an error...
        ("BackendServiceUnavailable", Some(503), 503),
        ("Other", Some(502), 502),
        ("Other", Some(400), 400),
        // ...else 500: a success, or no response at all.
        ("Other", Some(200), 500),
        ("Other", Some(399), 500),
        ("Other", None, 500),
        ("", None, 500),
    ] {
        let ctx = with_error(context(), reason, response);
        assert_eq!(
            expression.eval(&ctx),
            Ok(Value::Int(expected)),
            "{reason} {response:?}"
        );
    }
    // Outside on-error LastError is null: `.Reason` throws before `??`.
    assert!(matches!(
        expression.eval(&context()),
        Err(EvalError::NullReference(what)) if what.contains("context.LastError")
    ));
}

#[test]
fn the_retry_after_seconds_is_the_rate_limits_else_60() {
    let expression = parse(RETRY_AFTER_SECONDS);
    assert_eq!(expression.eval(&context()), string("60"));
    let ctx = with_variables(context(), &[("rateLimitRetryAfter", Value::Int(17))]);
    assert_eq!(expression.eval(&ctx), string("17"));
    let ctx = with_variables(context(), &[("rateLimitRetryAfter", Value::from("5"))]);
    assert_eq!(expression.eval(&ctx), string("5"));
    // `ToString()` on a null variable throws.
    let ctx = with_variables(context(), &[("rateLimitRetryAfter", Value::Null)]);
    assert!(matches!(
        expression.eval(&ctx),
        Err(EvalError::NullReference(_))
    ));
}

#[test]
fn the_problem_title_is_the_reason_phrase() {
    let expression = parse(PROBLEM_TITLE);
    for (status, title) in [
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (429, "Too Many Requests"),
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
        (418, "Error"),
        (0, "Error"),
    ] {
        let ctx = with_variables(context(), &[("problemStatus", Value::Int(status))]);
        assert_eq!(expression.eval(&ctx), string(title), "{status}");
    }
}

#[test]
fn the_problem_detail_per_status() {
    let expression = parse(PROBLEM_DETAIL);
    let detail = |reason: &str, status: i64| {
        let ctx = with_variables(
            with_error(context(), reason, None),
            &[
                ("problemStatus", Value::Int(status)),
                ("retryAfterSeconds", Value::from("42")),
            ],
        );
        expression.eval(&ctx)
    };
    assert_eq!(
        detail("SubscriptionKeyNotFound", 401),
        string("A valid subscription key is required.")
    );
    assert_eq!(
        detail("TokenExpired", 401),
        string("A valid bearer token is required.")
    );
    assert_eq!(
        detail("QuotaExceeded", 403),
        string("The gateway refused the request.")
    );
    assert_eq!(
        detail("OperationNotFound", 404),
        string("No API or operation of this gateway matches the request.")
    );
    assert_eq!(
        detail("RateLimitExceeded", 429),
        string("Too many requests: retry after 42 seconds.")
    );
    assert_eq!(
        detail("BackendConnectionFailure", 502),
        string("The backend could not be reached.")
    );
    assert_eq!(
        detail("Timeout", 504),
        string("The backend did not answer in time.")
    );
    assert_eq!(
        detail("Other", 500),
        string("The gateway could not process the request.")
    );
    assert_eq!(
        detail("Other", 503),
        string("The gateway could not process the request.")
    );
}

#[test]
fn the_header_actions_follow_the_status() {
    let www = parse(WWW_AUTHENTICATE_ACTION);
    let retry = parse(RETRY_AFTER_ACTION);
    for (status, www_action, retry_action) in [
        (401, "override", "delete"),
        (429, "delete", "override"),
        (500, "delete", "delete"),
    ] {
        let ctx = with_variables(context(), &[("problemStatus", Value::Int(status))]);
        assert_eq!(www.eval(&ctx), string(www_action), "{status}");
        assert_eq!(retry.eval(&ctx), string(retry_action), "{status}");
    }
}

#[test]
fn the_problem_body_is_compact_json_in_member_order() {
    let expression = parse(PROBLEM_BODY);
    let ctx = with_variables(
        context(),
        &[
            ("problemTitle", Value::from("Too Many Requests")),
            ("problemStatus", Value::Int(429)),
            (
                "problemDetail",
                Value::from("Too many requests: retry after 42 seconds."),
            ),
            ("correlationId", Value::from("6d9f")),
        ],
    );
    assert_eq!(
        expression.eval(&ctx),
        string(
            r#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"Too many requests: retry after 42 seconds.","instance":"/catalog/api/catalog/42","correlation_id":"6d9f"}"#
        )
    );
    // Whatever a value holds, the body stays JSON.
    let mut ctx = with_variables(
        ctx,
        &[("correlationId", Value::from("a\"b\\c</d>\u{1}\u{2028}"))],
    );
    ctx.request.original_url.path = "/caf\u{e9}/\n".to_owned();
    assert_eq!(
        expression.eval(&ctx),
        string(
            "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\",\"status\":429,\"detail\":\"Too many requests: retry after 42 seconds.\",\"instance\":\"/caf\u{e9}/\\n\",\"correlation_id\":\"a\\\"b\\\\c</d>\\u0001\\u2028\"}"
        )
    );
    let Ok(Value::String(body)) = expression.eval(&ctx) else {
        panic!("not a string");
    };
    let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
    assert_eq!(parsed["correlation_id"], "a\"b\\c</d>\u{1}\u{2028}");
}

// The language.

#[test]
fn jobject_to_string_without_formatting_is_indented() {
    let ctx = context();
    assert_eq!(
        eval(
            r#"@(new JObject(new JProperty("a", 1), new JProperty("b", new JObject()), new JProperty("c", null), new JProperty("d", true)).ToString())"#,
            &ctx
        ),
        string("{\n  \"a\": 1,\n  \"b\": {},\n  \"c\": null,\n  \"d\": true\n}")
    );
    assert_eq!(
        eval(
            r#"@(new JObject(new JProperty("n", new JObject(new JProperty("x", "y")))).ToString(Newtonsoft.Json.Formatting.Indented))"#,
            &ctx
        ),
        string("{\n  \"n\": {\n    \"x\": \"y\"\n  }\n}")
    );
    // A JObject as the value of the whole expression.
    assert_eq!(
        eval(r#"@(new JObject(new JProperty("a", "b")))"#, &ctx),
        Ok(Value::Json(serde_json::json!({"a": "b"})))
    );
    // Newtonsoft refuses a second property of the same name.
    assert!(matches!(
        eval(
            r#"@(new JObject(new JProperty("a", 1), new JProperty("a", 2)))"#,
            &ctx
        ),
        Err(EvalError::Argument(message)) if message.contains("same name")
    ));
}

#[test]
fn operators_follow_the_csharp_precedence() {
    let ctx = context();
    for (text, expected) in [
        ("@(1 + 2 * 3)", Value::Int(7)),
        ("@((1 + 2) * 3)", Value::Int(9)),
        ("@(10 - 4 - 3)", Value::Int(3)),
        ("@(17 / 5 + 17 % 5)", Value::Int(5)),
        ("@(-7 / 2)", Value::Int(-3)),
        ("@(- -3)", Value::Int(3)),
        ("@(1 + 2 + \"x\")", Value::from("3x")),
        ("@(\"x\" + 1 + 2)", Value::from("x12")),
        ("@(\"a\" + null + true)", Value::from("aTrue")),
        ("@(1 < 2 == true)", Value::Bool(true)),
        ("@(true || false && false)", Value::Bool(true)),
        ("@(!(1 >= 2) && 2 <= 2)", Value::Bool(true)),
        ("@(false ? 1 : true ? 2 : 3)", Value::Int(2)),
        ("@(null ?? \"b\")", Value::from("b")),
        ("@((string)null ?? (string)null ?? \"c\")", Value::from("c")),
        ("@(\"a\" != null)", Value::Bool(true)),
        ("@(null == null)", Value::Bool(true)),
        ("@(0x1F + 1L)", Value::Int(32)),
        ("@(context.Request.OriginalUrl.Port + 1)", Value::Int(444)),
    ] {
        assert_eq!(eval(text, &ctx), Ok(expected), "{text}");
    }
    assert_eq!(eval("@(1 / (2 - 2))", &ctx), Err(EvalError::DivideByZero));
    assert_eq!(eval("@(1 % 0)", &ctx), Err(EvalError::DivideByZero));
}

#[test]
fn string_methods() {
    let mut ctx = context();
    ctx.request.headers = Headers(vec![
        ("Accept".to_owned(), "a".to_owned()),
        ("accept".to_owned(), "b".to_owned()),
        ("X-Name".to_owned(), "  Caf\u{e9} \u{1F600} ".to_owned()),
    ]);
    let name = r#"context.Request.Headers.GetValueOrDefault("x-name", "")"#;
    for (text, expected) in [
        (
            r#"@(context.Request.Headers.GetValueOrDefault("accept", "none"))"#.to_owned(),
            Value::from("a,b"),
        ),
        (
            r#"@(context.Request.Headers.GetValueOrDefault("missing", "none"))"#.to_owned(),
            Value::from("none"),
        ),
        (
            r#"@(context.Request.Headers.ContainsKey("ACCEPT"))"#.to_owned(),
            Value::Bool(true),
        ),
        (
            format!("@({name}.Trim())"),
            Value::from("Caf\u{e9} \u{1F600}"),
        ),
        (
            format!("@({name}.Trim().ToUpper())"),
            Value::from("CAF\u{c9} \u{1F600}"),
        ),
        (
            format!("@({name}.ToLowerInvariant())"),
            Value::from("  caf\u{e9} \u{1F600} "),
        ),
        // UTF-16 code units: the emoji counts two.
        (format!("@({name}.Length)"), Value::Int(10)),
        (
            format!("@({name}.Trim().StartsWith(\"Caf\"))"),
            Value::Bool(true),
        ),
        (format!("@({name}.EndsWith(\" \"))"), Value::Bool(true)),
        (
            format!("@({name}.Contains(\"f\u{e9}\"))"),
            Value::Bool(true),
        ),
        (
            format!("@({name}.Trim().Equals(\"Caf\u{e9} \u{1F600}\"))"),
            Value::Bool(true),
        ),
        ("@(\"abc\".ToString())".to_owned(), Value::from("abc")),
        (
            "@(42.ToString() + true.ToString())".to_owned(),
            Value::from("42True"),
        ),
        (
            "@(context.Request.Method.Equals(\"GET\"))".to_owned(),
            Value::Bool(true),
        ),
        (
            "@(context.Request.Method == \"GET\")".to_owned(),
            Value::Bool(true),
        ),
        (
            "@(context.Request.Url.Path)".to_owned(),
            Value::from("/api/catalog/42"),
        ),
        (
            "@(context.Request.Url.Host + \":\" + context.Request.Url.Port)".to_owned(),
            Value::from("127.0.0.1:7071"),
        ),
        (
            "@(context.Request.OriginalUrl.Scheme)".to_owned(),
            Value::from("https"),
        ),
        ("@(context.RequestId)".to_owned(), Value::from(REQUEST_ID)),
        (
            "@(context.RequestId == context.RequestId)".to_owned(),
            Value::Bool(true),
        ),
        (
            "@(\"id:\" + context.RequestId)".to_owned(),
            Value::from(format!("id:{REQUEST_ID}")),
        ),
    ] {
        assert_eq!(eval(&text, &ctx), Ok(expected), "{text}");
    }
    assert!(matches!(
        eval(r#"@(((string)null).Trim())"#, &ctx),
        Err(EvalError::NullReference(_))
    ));
    assert_eq!(
        eval(r#"@("abc".StartsWith((string)null))"#, &ctx),
        Err(EvalError::ArgumentNull("value"))
    );
}

#[test]
fn context_members_and_nulls() {
    let mut ctx = context();
    ctx.deployment = Deployment {
        region: "West Europe".to_owned(),
        service_name: "apim-catalog".to_owned(),
    };
    assert_eq!(
        eval(
            "@(context.Deployment.Region + \"/\" + context.Deployment.ServiceName)",
            &ctx
        ),
        string("West Europe/apim-catalog")
    );
    for (text, expected) in [
        ("@(context.Response == null)", true),
        ("@(null != context.Response)", false),
        (
            "@(context.Subscription == null && context.LastError == null)",
            true,
        ),
        ("@(context.Request != null)", true),
    ] {
        assert_eq!(eval(text, &ctx), Ok(Value::Bool(expected)), "{text}");
    }
    for text in [
        "@(context.Subscription.Name)",
        "@(context.LastError.Message)",
        "@(context.Api.Name)",
        "@(context.Operation.UrlTemplate)",
        "@(context.Response.Headers.GetValueOrDefault(\"a\", \"b\"))",
    ] {
        assert!(
            matches!(eval(text, &ctx), Err(EvalError::NullReference(_))),
            "{text}"
        );
    }
    ctx.subscription = Some(Subscription {
        id: "s1".to_owned(),
        name: "First".to_owned(),
        key: "k".to_owned(),
    });
    ctx.api = Some(Api {
        id: "catalog".to_owned(),
        name: "Catalog".to_owned(),
        path: "catalog".to_owned(),
    });
    ctx.operation = Some(Operation {
        id: "getcatalogitem".to_owned(),
        name: "Get item".to_owned(),
        method: "GET".to_owned(),
        url_template: "/api/catalog/{id}".to_owned(),
    });
    ctx.response = Some(Response {
        status_code: 200,
        status_reason: "OK".to_owned(),
        headers: Headers(vec![("ETag".to_owned(), "\"v1\"".to_owned())]),
    });
    ctx.last_error = Some(LastError {
        source: "forward-request".to_owned(),
        reason: "BackendConnectionFailure".to_owned(),
        message: "m".to_owned(),
        scope: "global".to_owned(),
        section: "backend".to_owned(),
        path: "forward-request[1]".to_owned(),
        policy_id: "p".to_owned(),
    });
    assert_eq!(
        eval(
            r#"@(context.Subscription.Name + context.Api.Id + context.Operation.UrlTemplate + context.Response.StatusReason + context.Response.Headers.GetValueOrDefault("etag", ""))"#,
            &ctx
        ),
        string("Firstcatalog/api/catalog/{id}OK\"v1\"")
    );
    assert_eq!(
        eval(
            "@(context.LastError.Source + context.LastError.Scope + context.LastError.Section + context.LastError.Path + context.LastError.PolicyId)",
            &ctx
        ),
        string("forward-requestglobalbackendforward-request[1]p")
    );
}

#[test]
fn variables_get_value_or_default() {
    let ctx = with_variables(
        context(),
        &[
            ("n", Value::Int(3)),
            ("s", Value::from("x")),
            ("b", Value::Bool(true)),
            ("claims", Value::Json(serde_json::json!({"roles": ["a"]}))),
        ],
    );
    for (text, expected) in [
        (
            r#"@(context.Variables.GetValueOrDefault<int>("n", 0) + 1)"#,
            Value::Int(4),
        ),
        (
            r#"@(context.Variables.GetValueOrDefault<int>("missing"))"#,
            Value::Int(0),
        ),
        (
            r#"@(context.Variables.GetValueOrDefault<string>("missing"))"#,
            Value::Null,
        ),
        (
            r#"@(context.Variables.GetValueOrDefault<string>("s", "d"))"#,
            Value::from("x"),
        ),
        (
            r#"@(context.Variables.GetValueOrDefault("missing", "d"))"#,
            Value::from("d"),
        ),
        (
            r#"@(context.Variables.GetValueOrDefault<bool>("b"))"#,
            Value::Bool(true),
        ),
        (
            r#"@(context.Variables.GetValueOrDefault<object>("s"))"#,
            Value::from("x"),
        ),
        (
            r#"@(context.Variables.ContainsKey("claims"))"#,
            Value::Bool(true),
        ),
        (r#"@((bool)context.Variables["b"])"#, Value::Bool(true)),
        // A JToken's ToString() is indented JSON.
        (
            r#"@(context.Variables["claims"].ToString())"#,
            Value::from("{\n  \"roles\": [\n    \"a\"\n  ]\n}"),
        ),
    ] {
        assert_eq!(eval(text, &ctx), Ok(expected), "{text}");
    }
    assert!(matches!(
        eval(
            r#"@(context.Variables.GetValueOrDefault<int>("s", 0))"#,
            &ctx
        ),
        Err(EvalError::InvalidCast { .. })
    ));
}

#[test]
fn statements_locals_if_else_and_switch() {
    let ctx = with_variables(
        context(),
        &[("kind", Value::from("b")), ("n", Value::Int(-1))],
    );
    let block = r#"@{
        // A comment, and /* another */ one.
        string kind = (string)context.Variables["kind"];
        int n = (int)context.Variables["n"];
        var total = 0;
        if (n < 0) { var sign = "negative"; total = 1; }
        switch (kind) {
            case "a":
            case "b":
                if (n == -1) { return "ab" + n; } else return "no";
            case null:
                break;
            default:
                return "other";
        }
        return "after";
    }"#;
    // `total = 0` is an assignment: not in the subset.
    assert!(refused(block).construct.contains("assignment"));
    let block = block.replace("total = 1;", "");
    assert_eq!(eval(&block, &ctx), string("ab-1"));
    let null_kind = with_variables(context(), &[("kind", Value::Null), ("n", Value::Int(0))]);
    assert_eq!(eval(&block, &null_kind), string("after"));
    let other = with_variables(
        context(),
        &[("kind", Value::from("z")), ("n", Value::Int(0))],
    );
    assert_eq!(eval(&block, &other), string("other"));
    // Sibling blocks may reuse a name.
    assert_eq!(
        eval(
            "@{ if (true) { var a = 1; } { var a = 2; return a; } }",
            &ctx
        ),
        Ok(Value::Int(2))
    );
    assert_eq!(
        eval(
            "@{ switch (-2) { case -2: return 1; default: break; } return 0; }",
            &ctx
        ),
        Ok(Value::Int(1))
    );
    assert_eq!(
        eval(
            "@{ if (false) return 1; else if (1 > 2) return 2; else return 3; }",
            &ctx
        ),
        Ok(Value::Int(3))
    );
    // A constant-true `if` makes the end unreachable, as in C#.
    assert_eq!(
        eval("@{ if (true) { return @\"a\"\"b\"; } }", &ctx),
        string("a\"b")
    );
}

#[test]
fn string_literals_and_escapes() {
    let ctx = context();
    for (text, expected) in [
        (r#"@("a\"b\\c\n\t\r\0\'\u0041\x42")"#, "a\"b\\c\n\t\r\0'AB"),
        (r#"@(@"C:\path ""quoted""")"#, "C:\\path \"quoted\""),
        ("@(\"caf\u{e9}\")", "caf\u{e9}"),
        ("  @( \"trimmed\" )  \n", "trimmed"),
    ] {
        assert_eq!(eval(text, &ctx), string(expected), "{text}");
    }
    // `@if` is the identifier `if` (here an unknown name), not the keyword.
    assert!(refused("@(@if)").construct.contains("the name `if`"));
}

#[test]
fn regex_patterns_keep_their_dotnet_meaning() {
    let ctx = context();
    let is_match = |input: &str, pattern: &str| {
        // Verbatim strings: any character as itself, `""` a quote.
        let verbatim = |s: &str| format!("@\"{}\"", s.replace('"', "\"\""));
        let text = format!(
            "@(Regex.IsMatch({}, {}))",
            verbatim(input),
            verbatim(pattern)
        );
        eval(&text, &ctx)
    };
    for (input, pattern, expected) in [
        // `$` also matches before a final newline in .NET.
        ("abc\n", "^abc$", true),
        ("abc\n", r"^abc\z", false),
        ("abc\nd", "^abc$", false),
        ("x|y", r"^x\|y$", true),
        // `]` first in a class is a literal, `[` inside one too.
        ("]", "^[]a]$", true),
        ("[", "^[[]$", true),
        ("&&", "^[&&]+$", true),
        ("~", "^[!-~]$", true),
        ("-", "^[a-]$", true),
        // A brace that is not a quantifier is a literal.
        ("a{", "^a{$", true),
        ("a{,2}", "^a{,2}$", true),
        ("aa", "^a{2}$", true),
        ("A", r"^\u0041\x41?$", true),
        ("\u{8}", r"^[\b]$", true),
        ("ab", "(?i)^AB$", true),
        ("ab", "^(?i:A)b$", true),
        ("2024", r"^\d{4}$", true),
        ("a.b", r"^a\.b$", true),
        ("a<b", r"^a\<b$", true),
        ("é", r"^\w$", true),
    ] {
        assert_eq!(
            is_match(input, pattern),
            Ok(Value::Bool(expected)),
            "{input:?} {pattern:?}"
        );
    }
    for pattern in [
        "(?=a)",
        "(?<=a)b",
        r"(a)\1",
        "(?>a)",
        "a$b",
        "(?m)^a",
        "[a-z-[aeiou]]",
        r"\p{IsGreek}",
        "(",
    ] {
        let text = format!("@(Regex.IsMatch(\"a\", @\"{pattern}\"))");
        let error = refused(&text);
        assert_eq!(error.offset, 21, "{pattern}: {error}");
        assert!(
            error.construct.contains("regular expression"),
            "{pattern}: {error}"
        );
    }
    assert_eq!(
        eval(r#"@(Regex.IsMatch((string)null, "a"))"#, &ctx),
        Err(EvalError::ArgumentNull("input"))
    );
}

#[test]
fn unsupported_constructs_are_refused_with_their_offset() {
    for (text, offset, construct) in [
        (
            "@(context.Request.Body.As<string>())",
            18,
            "the member `Body` of `context.Request` is not supported",
        ),
        (
            "@(DateTime.UtcNow)",
            2,
            "the type `DateTime` is not supported",
        ),
        (
            "@(x => x)",
            2,
            "lambda expressions (`=>`) are not supported",
        ),
        ("@((a, b) => a)", 2, "lambda"),
        (
            "@(\"abc\".Substring(1))",
            8,
            "the method `Substring` of string is not supported",
        ),
        (
            "@(context.Elapsed)",
            10,
            "the member `Elapsed` of `context`",
        ),
        (
            "@(context.Request.Headers[\"a\"])",
            2,
            "indexing `context.Request.Headers`",
        ),
        (
            "@(context.Request.Headers.GetValueOrDefault(\"a\"))",
            26,
            "a name and a default",
        ),
        (
            "@(context.Variables.TryGetValue(\"a\"))",
            20,
            "`TryGetValue`",
        ),
        (
            "@(context.Variables.TryGetValue(\"a\", out x))",
            37,
            "the keyword `out`",
        ),
        ("@(foo)", 2, "the name `foo` is not supported"),
        ("@(new Uri(\"x\"))", 6, "the type `Uri` is not supported"),
        ("@((DateTime)context.RequestId)", 3, "the type `DateTime`"),
        ("@((double)1)", 3, "the type `double`"),
        ("@((int)\"1\")", 7, "a cast from string to int"),
        ("@(string.IsNullOrEmpty(\"\"))", 2, "`string.IsNullOrEmpty`"),
        (
            "@(System.DateTime.Now)",
            2,
            "`System.DateTime` is not supported",
        ),
        (
            "@(Newtonsoft.Json.Formatting.Foo)",
            2,
            "`Newtonsoft.Json.Formatting.Foo` is not supported",
        ),
        (
            "@(Newtonsoft.Json)",
            2,
            "the namespace or type `Newtonsoft.Json` is not a value",
        ),
        (
            "@(Newtonsoft.Json.Formatting.None)",
            2,
            "only supported as the argument of `JObject.ToString`",
        ),
        (
            "@(context.Variables[\"a\"] == \"b\")",
            25,
            "compares references",
        ),
        ("@(1 == \"1\")", 4, "cannot compare int and string"),
        ("@(1 + true)", 4, "`+` cannot be applied to int and bool"),
        ("@(\"a\" - 1)", 6, "`-`"),
        ("@(!1)", 2, "`!` cannot be applied to int"),
        ("@(true ? 1 : null)", 9, "cannot unify"),
        ("@(1 ?? 2)", 4, "`??`"),
        (
            "@(context.Request)",
            2,
            "`context.Request` is not supported as a value",
        ),
        ("@(context)", 2, "`context` is not supported as a value"),
        (
            "@(new JProperty(\"a\", 1))",
            2,
            "only supported as an argument of `new JObject",
        ),
        ("@(new JObject(1))", 14, "must be `new JProperty"),
        ("@(new JObject() { })", 16, "initializers"),
        ("@(new JObject().ToString(1))", 25, "Formatting"),
        (
            "@(Regex.IsMatch(\"a\", context.Request.Method))",
            21,
            "string literal",
        ),
        (
            "@(Regex.Replace(\"a\", \"b\", \"c\"))",
            8,
            "`Regex.Replace`",
        ),
        (
            "@(Regex.IsMatch(\"a\", \"b\", RegexOptions.IgnoreCase))",
            26,
            "RegexOptions",
        ),
        (
            "@(context.Request.Method.Length())",
            25,
            "`Length` is a property",
        ),
        (
            "@{ var f = 1; return f(); }",
            21,
            "only methods can be invoked",
        ),
        (
            "@(context.Request.Method is string)",
            25,
            "the keyword `is`",
        ),
        ("@(1 & 2)", 4, "the operator `&`"),
        ("@(1 << 2)", 4, "the operator `<<`"),
        ("@(4 >> 1)", 4, "the operator `>>`"),
        ("@(context?.Request)", 9, "the operator `?.`"),
        ("@($\"a{1}\")", 2, "interpolated strings"),
        ("@(1.5)", 2, "real (floating point) literals"),
        ("@('a')", 2, "character literals"),
        ("@(\"a\\q\")", 4, "unrecognized escape sequence `\\q`"),
        ("@(\"abc)", 2, "unterminated string literal"),
        ("@(1) + 1", 5, "unexpected token `+`"),
        ("@(1", 3, "the expression ends"),
        ("  @(DateTime.Now)", 4, "the type `DateTime`"),
        ("1 + 1", 0, "must be `@( ... )` or `@{ ... }`"),
        ("@{ return 1 }", 12, "expected `;`"),
        ("@{ var a = 1; }", 14, "not all code paths return a value"),
        (
            "@{ if (context.Response != null) { return 1; } }",
            47,
            "not all code paths",
        ),
        (
            "@{ while (true) { } return 1; }",
            3,
            "the `while` statement is not supported",
        ),
        ("@{ throw null; }", 3, "the `throw` statement"),
        (
            "@{ context.Variables.ContainsKey(\"a\"); return 1; }",
            3,
            "expression statements",
        ),
        (
            "@{ var a = 1; a = 2; return a; }",
            16,
            "assignments are not supported",
        ),
        ("@{ var a = 1; a++; return a; }", 15, "the operator `++`"),
        (
            "@{ var a = null; return a; }",
            11,
            "cannot be inferred from `null`",
        ),
        (
            "@{ var a = 1; var a = 2; return a; }",
            18,
            "already defined",
        ),
        (
            "@{ if (true) { var a = 1; } return a; }",
            35,
            "the name `a`",
        ),
        (
            "@{ string s = context.Variables[\"a\"]; return s; }",
            14,
            "without a cast",
        ),
        (
            "@{ Guid g = context.RequestId; return 1; }",
            3,
            "the type `Guid`",
        ),
        (
            "@{ if (1) { return 1; } return 2; }",
            7,
            "must be a bool, not int",
        ),
        (
            "@{ if (true) var a = 1; return 2; }",
            13,
            "declaration cannot be the body",
        ),
        ("@{ return; }", 3, "`return` without a value"),
        ("@{ break; }", 3, "`break` outside a switch"),
        (
            "@{ switch (1) { case 1: var a = 1; default: return 2; } }",
            16,
            "cannot fall through",
        ),
        (
            "@{ switch (1) { case \"a\": return 1; } return 2; }",
            21,
            "must be a constant of type int",
        ),
        (
            "@{ switch (1) { case 1: return 1; case 1: return 2; } return 3; }",
            39,
            "appears twice",
        ),
        (
            "@{ switch (true) { default: return 1; } }",
            11,
            "a switch on bool",
        ),
        (
            "@{ switch (1) { case 1 when true: return 1; } return 2; }",
            23,
            "case guards",
        ),
        (
            "@{ switch (1) { case 1: return 1; } }",
            36,
            "not all code paths",
        ),
        (
            "@{ return context.Variables.GetValueOrDefault(\"a\"); }",
            28,
            "needs its type",
        ),
        (
            "@{ return context.Variables.GetValueOrDefault<DateTime>(\"a\"); }",
            46,
            "the type `DateTime`",
        ),
    ] {
        let error = refused(text);
        assert_eq!(
            (error.offset, error.construct.contains(construct)),
            (offset, true),
            "{text}: {:?}",
            error.construct
        );
    }
}

#[test]
fn parsing_once_evaluates_many_times() {
    // The hot path: the parsed form is shared and evaluated per request.
    let expression = std::sync::Arc::new(parse(CATALOG_CORRELATION_ID));
    let mut ctx = context();
    ctx.request.headers = Headers(vec![("x-correlation-id".to_owned(), "6d9f".to_owned())]);
    let started = std::time::Instant::now();
    for _ in 0..10_000 {
        assert_eq!(expression.eval(&ctx), string("6d9f"));
    }
    // Generous: a regex compiled per evaluation would take far longer.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let problem = parse(PROBLEM_STATUS);
    let ctx = with_error(context(), "Other", Some(503));
    for _ in 0..10_000 {
        assert_eq!(problem.eval(&ctx), Ok(Value::Int(503)));
    }
}

#[test]
fn a_json_value_becomes_text_as_jtoken_to_string() {
    assert_eq!(
        Value::Json(serde_json::json!({"a": [1, true]})).to_string(),
        "{\n  \"a\": [\n    1,\n    true\n  ]\n}"
    );
    assert_eq!(Value::Json(serde_json::json!("text")).to_string(), "text");
    assert_eq!(Value::Json(serde_json::json!(true)).to_string(), "True");
    assert_eq!(Value::Json(serde_json::Value::Null).to_string(), "");
    assert_eq!(Value::Bool(false).to_string(), "False");
}

#[test]
fn a_parsed_expression_is_shared_between_requests() {
    fn shareable<T: Send + Sync + Clone + std::fmt::Debug>() {}
    shareable::<Expression>();
}

/// global.xml's on-error, expression by expression as the pipeline runs
/// them: each `set-variable` result feeds the next.
fn on_error(mut ctx: Context) -> (Vec<String>, String) {
    for (name, text) in [
        ("correlationId", GLOBAL_CORRELATION_ID),
        ("problemStatus", PROBLEM_STATUS),
        ("retryAfterSeconds", RETRY_AFTER_SECONDS),
        ("problemTitle", PROBLEM_TITLE),
        ("problemDetail", PROBLEM_DETAIL),
    ] {
        let value = eval(text, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
        ctx.variables.insert(name.to_owned(), value);
    }
    let text = |t: &str| {
        eval(t, &ctx)
            .map(|v| v.to_string())
            .unwrap_or_else(|e| panic!("{t}: {e}"))
    };
    let response = [
        STATUS_CODE,
        STATUS_REASON,
        CORRELATION_ID_VALUE,
        WWW_AUTHENTICATE_ACTION,
        RETRY_AFTER_ACTION,
        RETRY_AFTER_VALUE,
    ]
    .map(text)
    .to_vec();
    (response, text(PROBLEM_BODY))
}

#[test]
fn the_on_error_section_composes_the_problem_envelope() {
    let mut ctx = with_variables(
        with_error(context(), "RateLimitExceeded", Some(429)),
        &[("rateLimitRetryAfter", Value::Int(17))],
    );
    ctx.request.headers = Headers(vec![("x-correlation-id".to_owned(), "6d9f".to_owned())]);
    let (response, body) = on_error(ctx);
    assert_eq!(
        response,
        [
            "429",
            "Too Many Requests",
            "6d9f",
            "delete",
            "override",
            "17"
        ]
    );
    assert_eq!(
        body,
        r#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"Too many requests: retry after 17 seconds.","instance":"/catalog/api/catalog/42","correlation_id":"6d9f"}"#
    );

    // A backend that could not be reached: no response, 502.
    let (response, body) = on_error(with_error(context(), "BackendConnectionFailure", None));
    assert_eq!(
        response,
        ["502", "Bad Gateway", REQUEST_ID, "delete", "delete", "60"]
    );
    assert_eq!(
        body,
        format!(
            r#"{{"type":"about:blank","title":"Bad Gateway","status":502,"detail":"The backend could not be reached.","instance":"/catalog/api/catalog/42","correlation_id":"{REQUEST_ID}"}}"#
        )
    );

    // A refused key keeps the API's correlation id and asks for a key.
    let ctx = with_variables(
        with_error(context(), "SubscriptionKeyInvalid", Some(401)),
        &[("correlationId", Value::from("from-api"))],
    );
    let (response, body) = on_error(ctx);
    assert_eq!(
        response,
        [
            "401",
            "Unauthorized",
            "from-api",
            "override",
            "delete",
            "60"
        ]
    );
    assert!(body.contains(r#""detail":"A valid subscription key is required.""#));

    // An unknown reason with no response: 500.
    let (response, _) = on_error(with_error(context(), "Unknown", None));
    assert_eq!(response[..2], ["500", "Internal Server Error"]);
}
