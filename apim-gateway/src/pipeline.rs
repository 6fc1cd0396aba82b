//! Running one request through its operation's [`Pipeline`]: inbound, then
//! backend, then outbound, and on-error when any of them raises an error
//! (learn.microsoft.com/azure/api-management/api-management-howto-policies,
//! api-management-error-handling-policies). `return-response` ends the
//! request at once; a cache hit skips the rest of inbound and the backend
//! but runs outbound.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use crate::backends::Unavailable;
use crate::client::SendError;
use crate::expression::{Context, Headers, LastError, Response, Value};
use crate::gateway::Services;
use crate::identity::TokenRequest;
use crate::policy::{
    BackendTarget, CacheLookup, Pipeline, Policy, RateLimitByKey, SetParameter, Statement, Text,
};
use crate::rate_limit::Admission;
use crate::response_cache::Stored;

/// One request on its way through the gateway.
pub struct Exchange {
    /// What expressions read.
    pub context: Context,
    /// The request body (forwarded as is).
    pub request_body: Bytes,
    /// The current response body.
    pub response_body: Bytes,
    /// The operation's template parameters (`item_id`), for `rewrite-uri`.
    pub template_parameters: Vec<(String, String)>,
    /// Names the operation in the cache key.
    pub operation_key: String,
    backend: Option<Backend>,
    cache_key: Option<String>,
    from_cache: bool,
    returned: Option<(Response, Bytes)>,
    /// The backend member that answered, for the log line.
    pub served_by: Option<String>,
}

enum Backend {
    Id(String),
    Url(String),
}

impl Exchange {
    /// A request not yet run.
    pub fn new(context: Context, request_body: Bytes, operation_key: String) -> Self {
        Exchange {
            context,
            request_body,
            response_body: Bytes::new(),
            template_parameters: Vec::new(),
            operation_key,
            backend: None,
            cache_key: None,
            from_cache: false,
            returned: None,
            served_by: None,
        }
    }

    /// Sets the answer APIM gives a policy error of its own, before
    /// on-error runs: `status` and `{"statusCode": ..., "message": ...}`.
    pub fn answer_error(&mut self, status: u16, reason_phrase: &str, message: &str) {
        let mut response = status_only(status, reason_phrase);
        response
            .headers
            .set("Content-Type", vec!["application/json".to_owned()]);
        self.context.response = Some(response);
        self.response_body =
            Bytes::from(serde_json::json!({"statusCode": status, "message": message}).to_string());
    }

    /// The response as it stands (500 without one, as APIM answers when
    /// no policy made one).
    pub fn into_response(self) -> (Response, Bytes) {
        match self.context.response {
            Some(response) => (response, self.response_body),
            None => (status_only(500, "Internal Server Error"), Bytes::new()),
        }
    }
}

/// What a section's run ended with.
enum Outcome {
    /// Every statement ran.
    Done,
    /// `return-response`: answer now.
    Returned,
    /// `cache-lookup` answered: skip to outbound.
    Cached,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Inbound,
    Backend,
    Outbound,
    OnError,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Inbound => "inbound",
            Section::Backend => "backend",
            Section::Outbound => "outbound",
            Section::OnError => "on-error",
        }
    }
}

type Raised = Box<LastError>;

/// Raises an error from a policy, with APIM's default response for it.
fn raise(
    exchange: &mut Exchange,
    statement: &Statement,
    section: Section,
    source: &str,
    reason: &str,
    message: String,
    status: Option<(u16, &str)>,
) -> Raised {
    if let Some((status, reason_phrase)) = status {
        exchange.answer_error(status, reason_phrase, &message);
    }
    Box::new(LastError {
        source: source.to_owned(),
        reason: reason.to_owned(),
        message,
        scope: String::new(),
        section: section.name().to_owned(),
        path: String::new(),
        policy_id: statement.at.to_string(),
    })
}

/// Runs `pipeline` for `exchange`.
pub async fn execute(services: &Services, pipeline: &Pipeline, mut exchange: Exchange) -> Exchange {
    let result = async {
        match run(services, &pipeline.inbound, &mut exchange, Section::Inbound).await? {
            Outcome::Returned => return Ok(()),
            Outcome::Cached => {}
            Outcome::Done => {
                if let Outcome::Returned =
                    run(services, &pipeline.backend, &mut exchange, Section::Backend).await?
                {
                    return Ok(());
                }
            }
        }
        run(
            services,
            &pipeline.outbound,
            &mut exchange,
            Section::Outbound,
        )
        .await?;
        Ok::<(), Raised>(())
    }
    .await;
    if let Err(error) = result {
        on_error(services, pipeline, &mut exchange, *error).await;
    }
    exchange
}

/// Runs on-error with `error` as `context.LastError`. An error inside it
/// ends the request with APIM's plain 500.
pub async fn on_error(
    services: &Services,
    pipeline: &Pipeline,
    exchange: &mut Exchange,
    error: LastError,
) {
    tracing::info!(
        source = %error.source,
        reason = %error.reason,
        section = %error.section,
        policy = %error.policy_id,
        "a policy raised an error"
    );
    exchange.context.last_error = Some(error);
    if let Err(inner) = run(services, &pipeline.on_error, exchange, Section::OnError).await {
        tracing::error!(reason = %inner.reason, message = %inner.message, policy = %inner.policy_id, "on-error failed");
        exchange.context.response = Some(status_only(500, "Internal Server Error"));
        exchange.response_body = Bytes::new();
    }
}

fn run<'a>(
    services: &'a Services,
    statements: &'a [Statement],
    exchange: &'a mut Exchange,
    section: Section,
) -> Pin<Box<dyn Future<Output = Result<Outcome, Raised>> + Send + 'a>> {
    Box::pin(async move {
        for statement in statements {
            match step(services, statement, exchange, section).await? {
                Outcome::Done => {}
                other => return Ok(other),
            }
        }
        Ok(Outcome::Done)
    })
}

fn eval(
    exchange: &mut Exchange,
    statement: &Statement,
    section: Section,
    text: &Text,
) -> Result<Value, Raised> {
    match text {
        Text::Literal(literal) => Ok(Value::String(literal.clone())),
        Text::Expression(expression) => expression.eval(&exchange.context).map_err(|e| {
            raise(
                exchange,
                statement,
                section,
                "expression",
                "ExpressionValueEvaluationFailure",
                format!("Expression evaluation failed. {e}"),
                None,
            )
        }),
    }
}

fn eval_string(
    exchange: &mut Exchange,
    statement: &Statement,
    section: Section,
    text: &Text,
) -> Result<String, Raised> {
    Ok(eval(exchange, statement, section, text)?.to_string())
}

async fn step(
    services: &Services,
    statement: &Statement,
    exchange: &mut Exchange,
    section: Section,
) -> Result<Outcome, Raised> {
    match &statement.policy {
        // Expanded by compose; one left over has nothing above it.
        Policy::Base => {}
        Policy::SetVariable { name, value } => {
            let value = eval(exchange, statement, section, value)?;
            exchange.context.variables.insert(name.clone(), value);
        }
        Policy::SetHeader(parameter) => set_header(exchange, statement, section, parameter)?,
        Policy::SetQueryParameter(parameter) => {
            let (action, values) = evaluate_parameter(exchange, statement, section, parameter)?;
            let query = &mut exchange.context.request.url.query;
            let exists = query.iter().any(|(n, _)| n == &parameter.name);
            match action.as_str() {
                "delete" => query.retain(|(n, _)| n != &parameter.name),
                "skip" if exists => {}
                "append" => query.extend(values.into_iter().map(|v| (parameter.name.clone(), v))),
                _ => {
                    query.retain(|(n, _)| n != &parameter.name);
                    query.extend(values.into_iter().map(|v| (parameter.name.clone(), v)));
                }
            }
        }
        Policy::RewriteUri {
            template,
            copy_unmatched_params,
        } => rewrite_uri(exchange, template, *copy_unmatched_params),
        Policy::ValidateJwt(policy) => {
            match crate::jwt::validate(policy, &exchange.context.request.headers, &services.keys)
                .await
            {
                Ok(claims) => {
                    if let Some(name) = &policy.output_token_variable_name {
                        exchange
                            .context
                            .variables
                            .insert(name.clone(), Value::Json(claims));
                    }
                }
                Err(refusal) => {
                    let message = policy
                        .failed_validation_error_message
                        .clone()
                        .unwrap_or(refusal.message);
                    return Err(raise(
                        exchange,
                        statement,
                        section,
                        "validate-jwt",
                        refusal.reason,
                        message,
                        Some((policy.failed_validation_httpcode, "Unauthorized")),
                    ));
                }
            }
        }
        Policy::RateLimitByKey(policy) => {
            rate_limit(services, exchange, statement, section, policy)?
        }
        Policy::CacheLookup(policy) => {
            if cache_lookup(services, exchange, policy) {
                return Ok(Outcome::Cached);
            }
        }
        Policy::CacheStore { duration_seconds } => {
            let cacheable = exchange
                .context
                .response
                .as_ref()
                .is_some_and(|r| r.status_code == 200);
            if let (Some(key), false, true) =
                (exchange.cache_key.take(), exchange.from_cache, cacheable)
                && let Some(response) = &exchange.context.response
            {
                services.cache.put(
                    key,
                    Stored {
                        status: response.status_code,
                        reason: response.status_reason.clone(),
                        headers: response.headers.0.clone(),
                        body: exchange.response_body.clone(),
                    },
                    Duration::from_secs(*duration_seconds),
                );
            }
        }
        Policy::Choose { whens, otherwise } => {
            for (condition, statements) in whens {
                match eval(exchange, statement, section, condition)? {
                    Value::Bool(true) => return run(services, statements, exchange, section).await,
                    Value::Bool(false) => {}
                    other => {
                        return Err(raise(
                            exchange,
                            statement,
                            section,
                            "choose",
                            "ExpressionValueEvaluationFailure",
                            format!("A condition must be a bool, not {}.", other.type_name()),
                            None,
                        ));
                    }
                }
            }
            if let Some(statements) = otherwise {
                return run(services, statements, exchange, section).await;
            }
        }
        Policy::ReturnResponse(statements) => {
            exchange.returned = Some((status_only(200, "OK"), Bytes::new()));
            run(services, statements, exchange, section).await?;
            if let Some((response, body)) = exchange.returned.take() {
                exchange.context.response = Some(response);
                exchange.response_body = body;
            }
            return Ok(Outcome::Returned);
        }
        Policy::SetStatus { code, reason } => {
            let code = match eval(exchange, statement, section, code)? {
                Value::Int(code) => u16::try_from(code).ok(),
                Value::String(text) => text.trim().parse().ok(),
                _ => None,
            };
            let Some(code) = code.filter(|c| (100..=599).contains(c)) else {
                return Err(raise(
                    exchange,
                    statement,
                    section,
                    "set-status",
                    "ExpressionValueEvaluationFailure",
                    "The status code is not a valid HTTP status.".to_owned(),
                    None,
                ));
            };
            let reason = match reason {
                Some(reason) => eval_string(exchange, statement, section, reason)?,
                None => http::StatusCode::from_u16(code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("")
                    .to_owned(),
            };
            let response = response_target(exchange);
            response.status_code = code;
            response.status_reason = reason;
        }
        Policy::SetBody(text) => {
            let body = Bytes::from(eval_string(exchange, statement, section, text)?);
            if let Some((_, returned)) = &mut exchange.returned {
                *returned = body;
            } else if section == Section::Inbound {
                exchange.request_body = body;
            } else {
                exchange.response_body = body;
            }
        }
        Policy::SetBackendService(target) => {
            exchange.backend = Some(match target {
                BackendTarget::Id(id) => {
                    Backend::Id(eval_string(exchange, statement, section, id)?)
                }
                BackendTarget::BaseUrl(url) => {
                    Backend::Url(eval_string(exchange, statement, section, url)?)
                }
            });
        }
        Policy::AuthenticationManagedIdentity {
            resource,
            output_token_variable_name,
        } => {
            let resource = eval_string(exchange, statement, section, resource)?;
            // A local stand-in for the token Entra ID gives APIM's
            // identity: signed by the local identity, for `resource`.
            let token = services
                .identity
                .issue(&TokenRequest {
                    audience: resource,
                    subject: format!(
                        "managed-identity:{}",
                        exchange.context.deployment.service_name
                    ),
                    roles: Vec::new(),
                    scopes: Vec::new(),
                    lifetime: Duration::from_secs(3600),
                    issuer: None,
                    issued_ago: std::time::Duration::ZERO,
                    not_before_in: std::time::Duration::ZERO,
                })
                .map_err(|e| {
                    raise(
                        exchange,
                        statement,
                        section,
                        "authentication-managed-identity",
                        "ManagedIdentityTokenFailure",
                        e.to_string(),
                        None,
                    )
                })?;
            match output_token_variable_name {
                Some(name) => {
                    exchange
                        .context
                        .variables
                        .insert(name.clone(), Value::String(token));
                }
                None => exchange
                    .context
                    .request
                    .headers
                    .set("Authorization", vec![format!("Bearer {token}")]),
            }
        }
        Policy::ForwardRequest { timeout_seconds } => {
            forward(
                services,
                exchange,
                statement,
                section,
                Duration::from_secs(*timeout_seconds),
            )
            .await?;
        }
    }
    Ok(Outcome::Done)
}

/// Where set-status and response headers go: the response being built by
/// return-response, else the current one (made if there is none).
fn response_target(exchange: &mut Exchange) -> &mut Response {
    if let Some((response, _)) = &mut exchange.returned {
        return response;
    }
    exchange
        .context
        .response
        .get_or_insert_with(|| status_only(200, "OK"))
}

/// A response with a status and no headers.
fn status_only(status: u16, reason_phrase: &str) -> Response {
    Response {
        status_code: status,
        status_reason: reason_phrase.to_owned(),
        headers: Headers::default(),
    }
}

fn evaluate_parameter(
    exchange: &mut Exchange,
    statement: &Statement,
    section: Section,
    parameter: &SetParameter,
) -> Result<(String, Vec<String>), Raised> {
    let action = eval_string(exchange, statement, section, &parameter.exists_action)?;
    if !matches!(action.as_str(), "override" | "skip" | "append" | "delete") {
        return Err(raise(
            exchange,
            statement,
            section,
            "set-header",
            "ExpressionValueEvaluationFailure",
            format!("exists-action {action:?} is not one of override, skip, append, delete."),
            None,
        ));
    }
    let values = parameter
        .values
        .iter()
        .map(|value| eval_string(exchange, statement, section, value))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((action, values))
}

fn set_header(
    exchange: &mut Exchange,
    statement: &Statement,
    section: Section,
    parameter: &SetParameter,
) -> Result<(), Raised> {
    let (action, values) = evaluate_parameter(exchange, statement, section, parameter)?;
    let headers =
        if exchange.returned.is_some() || matches!(section, Section::Outbound | Section::OnError) {
            &mut response_target(exchange).headers
        } else {
            &mut exchange.context.request.headers
        };
    let exists = headers.contains(&parameter.name);
    // Several values are one comma-separated header (the reference).
    let joined = || vec![values.join(",")];
    match action.as_str() {
        "delete" => headers.remove(&parameter.name),
        "skip" if exists => {}
        "append" => headers.append(&parameter.name, joined()),
        _ => headers.set(&parameter.name, joined()),
    }
    Ok(())
}

fn rewrite_uri(exchange: &mut Exchange, template: &str, copy_unmatched_params: bool) {
    let (path_template, query_template) = template.split_once('?').unwrap_or((template, ""));
    let mut path = path_template.to_owned();
    for (name, value) in &exchange.template_parameters {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    let url = &mut exchange.context.request.url;
    let mut query: Vec<(String, String)> = query_template
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    if copy_unmatched_params {
        let named: Vec<String> = query.iter().map(|(n, _)| n.clone()).collect();
        query.extend(
            url.query
                .iter()
                .filter(|(n, _)| !named.contains(n))
                .cloned(),
        );
    }
    url.path = path;
    url.query = query;
}

fn rate_limit(
    services: &Services,
    exchange: &mut Exchange,
    statement: &Statement,
    section: Section,
    policy: &RateLimitByKey,
) -> Result<(), Raised> {
    let key = eval_string(exchange, statement, section, &policy.counter_key)?;
    // "For each key value, a single counter is used for all scopes"
    // (rate-limit-by-key-policy).
    let admission = services.rate_limits.admit(
        &key,
        policy.calls,
        Duration::from_secs(policy.renewal_period_seconds),
    );
    match admission {
        Admission::Allowed { remaining } => {
            if let Some(name) = &policy.remaining_calls_variable_name {
                exchange.context.variables.insert(
                    name.clone(),
                    Value::Int(i64::try_from(remaining).unwrap_or(i64::MAX)),
                );
            }
            Ok(())
        }
        Admission::Refused {
            retry_after_seconds,
        } => {
            if let Some(name) = &policy.retry_after_variable_name {
                exchange.context.variables.insert(
                    name.clone(),
                    Value::Int(i64::try_from(retry_after_seconds).unwrap_or(i64::MAX)),
                );
            }
            let error = raise(
                exchange,
                statement,
                section,
                "rate-limit-by-key",
                "RateLimitExceeded",
                format!("Rate limit is exceeded. Try again in {retry_after_seconds} seconds."),
                Some((429, "Too Many Requests")),
            );
            let header = policy
                .retry_after_header_name
                .as_deref()
                .unwrap_or("Retry-After");
            if let Some(response) = &mut exchange.context.response {
                response
                    .headers
                    .set(header, vec![retry_after_seconds.to_string()]);
            }
            Err(error)
        }
    }
}

/// Looks the request up; true when the cache answered.
fn cache_lookup(services: &Services, exchange: &mut Exchange, policy: &CacheLookup) -> bool {
    let request = &exchange.context.request;
    // GET only, and no request with Authorization unless allowed (the
    // reference): anything else neither hits nor is stored.
    if request.method != "GET"
        || (!policy.allow_private_response_caching && request.headers.contains("Authorization"))
    {
        return false;
    }
    let mut key = format!("{}\n{}", exchange.operation_key, request.url.path);
    let mut query: Vec<&(String, String)> = if policy.vary_by_query_parameters.is_empty() {
        request.url.query.iter().collect()
    } else {
        request
            .url
            .query
            .iter()
            .filter(|(n, _)| policy.vary_by_query_parameters.contains(n))
            .collect()
    };
    query.sort();
    for (name, value) in query {
        key.push_str(&format!("\n?{name}={value}"));
    }
    for header in &policy.vary_by_headers {
        key.push_str(&format!(
            "\n{}:{}",
            header.to_ascii_lowercase(),
            request.headers.get_value_or_default(header, "")
        ));
    }
    if policy.vary_by_developer || policy.vary_by_developer_groups {
        let developer = exchange
            .context
            .subscription
            .as_ref()
            .map(|s| s.id.as_str())
            .unwrap_or("");
        key.push_str(&format!("\ndeveloper:{developer}"));
    }
    match services.cache.get(&key) {
        Some(stored) => {
            exchange.context.response = Some(Response {
                status_code: stored.status,
                status_reason: stored.reason,
                headers: Headers(stored.headers),
            });
            exchange.response_body = stored.body;
            exchange.from_cache = true;
            true
        }
        None => {
            exchange.cache_key = Some(key);
            false
        }
    }
}

/// Headers a proxy never forwards (RFC 9110 section 7.6.1), and the ones
/// the client connection set.
const NOT_FORWARDED: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "content-length",
    "host",
];

async fn forward(
    services: &Services,
    exchange: &mut Exchange,
    statement: &Statement,
    section: Section,
    timeout: Duration,
) -> Result<(), Raised> {
    let (base, member) = match &exchange.backend {
        None => {
            return Err(raise(
                exchange,
                statement,
                section,
                "forward-request",
                "BackendConnectionFailure",
                "No backend was set.".to_owned(),
                None,
            ));
        }
        Some(Backend::Url(url)) => (url.trim_end_matches('/').to_owned(), None),
        Some(Backend::Id(id)) => match services.backends.pick(id) {
            Ok(member) => (member.url.clone(), Some(member)),
            Err(unavailable @ Unavailable::AllOpen(_)) => {
                // "API Management ... returns a 503 Service Unavailable
                // response to the client" (backends#circuit-breaker).
                return Err(raise(
                    exchange,
                    statement,
                    section,
                    "forward-request",
                    "BackendServiceUnavailable",
                    unavailable.to_string(),
                    Some((503, "Service Unavailable")),
                ));
            }
            Err(unknown) => {
                return Err(raise(
                    exchange,
                    statement,
                    section,
                    "forward-request",
                    "BackendConnectionFailure",
                    unknown.to_string(),
                    None,
                ));
            }
        },
    };
    let url = &exchange.context.request.url;
    let mut query = url.query.clone();
    if let Some(member) = &member {
        for (name, values) in &member.query_credentials {
            query.retain(|(n, _)| n != name);
            query.extend(values.iter().map(|v| (name.clone(), v.clone())));
        }
    }
    let mut target = format!("{base}{}", url.path);
    if !query.is_empty() {
        let encoded: Vec<String> = query
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect();
        target.push('?');
        target.push_str(&encoded.join("&"));
    }
    let mut builder = http::Request::builder()
        .method(exchange.context.request.method.as_str())
        .uri(&target);
    for (name, value) in &exchange.context.request.headers.0 {
        if NOT_FORWARDED.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        // A client's header of a credential's name is not dropped here:
        // removing it is the policy's job (catalog-api.xml deletes
        // x-functions-key), and a test must see it done there.
        builder = builder.header(name, value);
    }
    if let Some(member) = &member {
        for (name, values) in &member.header_credentials {
            builder = builder.header(name, values.join(","));
        }
    }
    let request = match builder.body(Full::new(exchange.request_body.clone())) {
        Ok(request) => request,
        Err(e) => {
            return Err(raise(
                exchange,
                statement,
                section,
                "forward-request",
                "BackendConnectionFailure",
                format!("The backend request could not be made: {e}"),
                None,
            ));
        }
    };
    exchange.served_by = Some(
        member
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_else(|| base.clone()),
    );
    match services.client.send(request, timeout).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            if let Some(breaker) = member.as_ref().and_then(|m| m.breaker.as_ref()) {
                let retry_after = parts
                    .headers
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok());
                breaker.record_status(parts.status.as_u16(), retry_after);
            }
            let headers = parts
                .headers
                .iter()
                .filter(|(name, _)| !NOT_FORWARDED.contains(&name.as_str()))
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect();
            exchange.context.response = Some(Response {
                status_code: parts.status.as_u16(),
                status_reason: parts.status.canonical_reason().unwrap_or("").to_owned(),
                headers: Headers(headers),
            });
            exchange.response_body = body;
            Ok(())
        }
        Err(error) => {
            let reason = match error {
                SendError::Connection(_) => "BackendConnectionFailure",
                SendError::Timeout(_) => "Timeout",
            };
            if let Some(breaker) = member.as_ref().and_then(|m| m.breaker.as_ref()) {
                breaker.record_error(reason);
            }
            Err(raise(
                exchange,
                statement,
                section,
                "forward-request",
                reason,
                error.to_string(),
                None,
            ))
        }
    }
}

/// Percent-encodes a query name or value: everything but RFC 3986's
/// unreserved characters.
fn encode(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}
