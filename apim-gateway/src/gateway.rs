//! The gateway as configured: the local file read, named values resolved,
//! every policy document parsed and composed per operation, the backends
//! and subscriptions built. Then, per request: the API and operation
//! matched, the subscription key checked, and the operation's pipeline run.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;

use crate::backends::Backends;
use crate::client::HttpClient;
use crate::config::LocalFile;
use crate::expression::{self, Context, Deployment, Headers, LastError, Request, Url};
use crate::identity::LocalIdentity;
use crate::jwt::Keys;
use crate::operations::Operations;
use crate::pipeline::{self, Exchange};
use crate::policy::{self, NamedValues, Pipeline, Policy, Statement, Text};
use crate::rate_limit::RateLimits;
use crate::response_cache::ResponseCache;

/// What the pipeline's policies use at run time.
pub struct Services {
    /// Signing keys of OpenID configurations.
    pub keys: Keys,
    /// Rate limit counters.
    pub rate_limits: RateLimits,
    /// The response cache.
    pub cache: ResponseCache,
    /// Backend entities.
    pub backends: Backends,
    /// The local identity (tokens for authentication-managed-identity).
    pub identity: Arc<LocalIdentity>,
    /// The HTTP client.
    pub client: HttpClient,
}

struct Api {
    name: String,
    path: String,
    display_name: String,
    subscription_required: bool,
    key_header: String,
    key_query: String,
    operations: Operations,
    /// By operation name.
    pipelines: HashMap<String, Arc<Pipeline>>,
    /// Service and API scopes, for errors before an operation matched.
    api_only: Arc<Pipeline>,
}

struct SubscriptionKey {
    id: String,
    display_name: String,
    key: String,
    apis: BTreeSet<String>,
}

/// The configured gateway.
pub struct Gateway {
    /// Its own base URL (`http://127.0.0.1:<port>`).
    pub url: String,
    service_name: String,
    region: String,
    apis: Vec<Api>,
    service_only: Arc<Pipeline>,
    subscriptions: Vec<SubscriptionKey>,
    /// Run-time services.
    pub services: Services,
}

/// What one request came to, for the log line.
pub struct Handled {
    /// The answer.
    pub response: http::Response<Bytes>,
    /// `context.RequestId`.
    pub request_id: String,
    /// The operation, if one matched.
    pub operation: Option<String>,
    /// The backend member that answered, if any.
    pub backend: Option<String>,
}

impl Gateway {
    /// Reads `local_file` and everything it names, for a gateway reachable
    /// at `url`, its identity's key in `state_dir`.
    pub fn load(local_file: &Path, url: &str, state_dir: &Path) -> anyhow::Result<Self> {
        let config = LocalFile::load(local_file)?;
        let base = local_file.parent().unwrap_or(Path::new("."));
        let mut named = NamedValues::default();
        for (name, value) in &config.named_values {
            let resolved = value
                .value
                .resolve(url)
                .with_context(|| format!("{}: the named value {name}", local_file.display()))?;
            named.insert(name, resolved);
        }
        let parse = |file: &PathBuf| -> anyhow::Result<policy::Sections> {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(policy::parse(&path, &text, &named)?)
        };
        let service = parse(&config.policy)?;
        let backends = Backends::new(&config.backends, &named, url)?;
        let mut apis = Vec::new();
        for (name, api) in &config.apis {
            let operations = Operations::load(&base.join(&api.openapi))?;
            let api_sections = parse(&api.policy)?;
            let mut pipelines = HashMap::new();
            for (operation, file) in &api.operation_policies {
                if !operations.iter().any(|op| &op.name == operation) {
                    bail!(
                        "{}: the API {name} has no operation {operation} (its operations: {})",
                        local_file.display(),
                        operations
                            .iter()
                            .map(|op| op.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                let sections = parse(file)?;
                pipelines.insert(
                    operation.clone(),
                    Arc::new(policy::compose(&[
                        Some(&service),
                        Some(&api_sections),
                        Some(&sections),
                    ])),
                );
            }
            let api_only = Arc::new(policy::compose(&[Some(&service), Some(&api_sections)]));
            for operation in operations.iter() {
                pipelines
                    .entry(operation.name.clone())
                    .or_insert_with(|| api_only.clone());
            }
            for pipeline in pipelines.values() {
                check_backend_ids(pipeline, &backends)?;
            }
            apis.push(Api {
                name: name.clone(),
                path: api.path.trim_matches('/').to_owned(),
                display_name: api.display_name.clone(),
                subscription_required: api.subscription_required,
                key_header: api.subscription_key_parameter_names.header.clone(),
                key_query: api.subscription_key_parameter_names.query.clone(),
                operations,
                pipelines,
                api_only,
            });
        }
        // Longest path first, so that `a/b` wins over `a`.
        apis.sort_by_key(|api| std::cmp::Reverse(api.path.len()));
        let mut subscriptions = Vec::new();
        for (id, subscription) in &config.subscriptions {
            let Some(product) = config.products.get(&subscription.scope) else {
                bail!("subscription {id}: no product {:?}", subscription.scope);
            };
            let apis: BTreeSet<String> = product.apis.iter().cloned().collect();
            let keys = std::iter::once(&subscription.primary_key)
                .chain(subscription.secondary_key.as_ref());
            for key in keys {
                let key = key
                    .resolve(url)
                    .with_context(|| format!("subscription {id}: its key"))?;
                if key.is_empty() {
                    continue;
                }
                subscriptions.push(SubscriptionKey {
                    id: id.clone(),
                    display_name: subscription.display_name.clone(),
                    key,
                    apis: apis.clone(),
                });
            }
        }
        let client = HttpClient::new();
        let identity = Arc::new(LocalIdentity::open(
            state_dir,
            &config.local_identity.issuer,
        )?);
        Ok(Gateway {
            url: url.to_owned(),
            service_name: config.service.name.clone(),
            region: config.service.region.clone(),
            apis,
            service_only: Arc::new(policy::compose(&[Some(&service)])),
            subscriptions,
            services: Services {
                keys: Keys::new(client.clone()),
                rate_limits: RateLimits::default(),
                cache: ResponseCache::default(),
                backends,
                identity,
                client,
            },
        })
    }

    /// The local identity.
    pub fn identity(&self) -> &LocalIdentity {
        &self.services.identity
    }

    /// Runs one request from `peer`.
    pub async fn handle(&self, request: http::Request<Bytes>, peer: std::net::IpAddr) -> Handled {
        let (parts, body) = request.into_parts();
        let headers = Headers(
            parts
                .headers
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
        );
        let host = headers.get_value_or_default("host", "localhost");
        let (hostname, port) = match host.rsplit_once(':') {
            Some((name, port)) => (name.to_owned(), port.parse().unwrap_or(80)),
            None => (host.clone(), 80),
        };
        let path = parts.uri.path().to_owned();
        let original_url = Url {
            scheme: "http".to_owned(),
            host: hostname,
            port,
            path: path.clone(),
            query: parse_query(parts.uri.query().unwrap_or("")),
        };
        let context = Context {
            request_id: functions_contract::protocol::new_guid(),
            request: Request {
                method: parts.method.as_str().to_owned(),
                url: original_url.clone(),
                original_url,
                headers,
                ip_address: peer.to_string(),
            },
            deployment: Deployment {
                region: self.region.clone(),
                service_name: self.service_name.clone(),
            },
            ..Context::default()
        };
        let request_id = context.request_id.clone();
        let trimmed = path.trim_start_matches('/');
        let api = self.apis.iter().find(|api| {
            trimmed == api.path
                || trimmed.starts_with(&format!("{}/", api.path))
                || api.path.is_empty()
        });
        let Some(api) = api else {
            let exchange = Exchange::new(context, body, String::new());
            return self
                .fail(
                    &self.service_only,
                    exchange,
                    "OperationNotFound",
                    "Unable to match incoming request to an operation.",
                )
                .await;
        };
        let relative = format!("/{}", trimmed[api.path.len()..].trim_start_matches('/'));
        let mut exchange = Exchange::new(context, body, String::new());
        exchange.context.request.url.path = relative.clone();
        exchange.context.api = Some(expression::Api {
            id: api.name.clone(),
            name: api.display_name.clone(),
            path: api.path.clone(),
        });
        let Some(matched) = api.operations.find(&parts.method, &relative) else {
            return self
                .fail(
                    &api.api_only,
                    exchange,
                    "OperationNotFound",
                    "Unable to match incoming request to an operation.",
                )
                .await;
        };
        let operation = matched.operation;
        exchange.template_parameters = matched.parameters;
        exchange.operation_key = format!("{}/{}", api.name, operation.name);
        exchange.context.operation = Some(expression::Operation {
            id: operation.name.clone(),
            name: operation.operation_id.clone(),
            method: operation.method.to_string(),
            url_template: operation.url_template.clone(),
        });
        let Some(pipeline) = api.pipelines.get(&operation.name) else {
            return self
                .fail(&api.api_only, exchange, "OperationNotFound", "No pipeline.")
                .await;
        };
        if api.subscription_required {
            let presented = exchange
                .context
                .request
                .headers
                .values(&api.key_header)
                .next()
                .map(str::to_owned)
                .or_else(|| {
                    exchange
                        .context
                        .request
                        .url
                        .query
                        .iter()
                        .find(|(n, _)| n == &api.key_query)
                        .map(|(_, v)| v.clone())
                });
            // The messages are APIM's own (learn.microsoft.com/troubleshoot/
            // azure/api-mgmt/availability/unauthorized-errors-invoke-apis).
            let Some(presented) = presented else {
                return self
                    .fail(
                        pipeline,
                        exchange,
                        "SubscriptionKeyNotFound",
                        "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.",
                    )
                    .await;
            };
            let found = self
                .subscriptions
                .iter()
                .find(|s| constant_time_eq(&s.key, &presented) && s.apis.contains(&api.name));
            let Some(subscription) = found else {
                return self
                    .fail(
                        pipeline,
                        exchange,
                        "SubscriptionKeyInvalid",
                        "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.",
                    )
                    .await;
            };
            exchange.context.subscription = Some(expression::Subscription {
                id: subscription.id.clone(),
                name: subscription.display_name.clone(),
                key: presented,
            });
        }
        let operation_name = operation.name.clone();
        let exchange = pipeline::execute(&self.services, pipeline, exchange).await;
        finish(exchange, request_id, Some(operation_name))
    }

    /// An error raised before any policy ran: on-error of `pipeline`.
    async fn fail(
        &self,
        pipeline: &Pipeline,
        mut exchange: Exchange,
        reason: &str,
        message: &str,
    ) -> Handled {
        let status = match reason {
            "OperationNotFound" => (404, "Not Found"),
            _ => (401, "Unauthorized"),
        };
        exchange.answer_error(status.0, status.1, message);
        // The error-handling reference's sources: a subscription key is
        // `authorization`'s, an unmatched request `configuration`'s.
        let source = if reason.starts_with("SubscriptionKey") {
            "authorization"
        } else {
            "configuration"
        };
        let error = LastError {
            source: source.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            ..LastError::default()
        };
        pipeline::on_error(&self.services, pipeline, &mut exchange, error).await;
        let request_id = exchange.context.request_id.clone();
        finish(exchange, request_id, None)
    }
}

fn finish(exchange: Exchange, request_id: String, operation: Option<String>) -> Handled {
    let backend = exchange.served_by.clone();
    let (response, body) = exchange.into_response();
    let mut builder = http::Response::builder().status(response.status_code);
    for (name, value) in &response.headers.0 {
        builder = builder.header(name, value);
    }
    let response = builder.body(body).unwrap_or_else(|_| {
        let mut fallback = http::Response::new(Bytes::new());
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    });
    Handled {
        response,
        request_id,
        operation,
        backend,
    }
}

/// Compares keys in time independent of where they differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A query string's pairs, percent-decoded.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// A form-encoded query name or value decoded (`+` is a space).
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Refuses a `set-backend-service backend-id` that names no backend, as
/// APIM refuses to save such a policy.
fn check_backend_ids(pipeline: &Pipeline, backends: &Backends) -> anyhow::Result<()> {
    fn walk(statements: &[Statement], backends: &Backends) -> anyhow::Result<()> {
        for statement in statements {
            match &statement.policy {
                Policy::SetBackendService(policy::BackendTarget::Id(Text::Literal(id)))
                    if !backends.contains(id) =>
                {
                    bail!(
                        "{}: set-backend-service names the backend {id:?}, which the local file does not define",
                        statement.at
                    );
                }
                Policy::Choose { whens, otherwise } => {
                    for (_, inner) in whens {
                        walk(inner, backends)?;
                    }
                    if let Some(inner) = otherwise {
                        walk(inner, backends)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
    for section in [
        &pipeline.inbound,
        &pipeline.backend,
        &pipeline.outbound,
        &pipeline.on_error,
    ] {
        walk(section, backends)?;
    }
    Ok(())
}
