//! The local file (`apim/local-gateway.json`) that stands for what Azure
//! holds: the service, its APIs and their policy files, named values,
//! backends, products and subscriptions. Property names follow the ARM
//! resources the Bicep declares (`Microsoft.ApiManagement/service/...`), so
//! one can be read against the other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalFile {
    #[serde(rename = "$comment", default)]
    _comment: Option<String>,
    /// The service itself.
    pub service: Service,
    /// The service-scope (global) policy file, relative to the local file.
    pub policy: PathBuf,
    /// APIs by name.
    pub apis: BTreeMap<String, Api>,
    /// Named values by name (= display name).
    pub named_values: BTreeMap<String, NamedValue>,
    /// Backends by id.
    pub backends: BTreeMap<String, Backend>,
    /// Products by name.
    #[serde(default)]
    pub products: BTreeMap<String, Product>,
    /// Subscriptions by name (= `context.Subscription.Id`).
    #[serde(default)]
    pub subscriptions: BTreeMap<String, Subscription>,
    /// The development identity provider the gateway serves.
    pub local_identity: LocalIdentity,
}

/// `Microsoft.ApiManagement/service`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// `context.Deployment.ServiceName`.
    pub name: String,
    /// `context.Deployment.Region`.
    pub region: String,
}

/// `Microsoft.ApiManagement/service/apis`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Api {
    /// Display name.
    pub display_name: String,
    /// URL suffix on the gateway.
    pub path: String,
    /// The OpenAPI document the API imports (its operations).
    pub openapi: PathBuf,
    /// The API-scope policy file.
    pub policy: PathBuf,
    /// Whether a subscription key is required.
    pub subscription_required: bool,
    /// Where the key is read from.
    pub subscription_key_parameter_names: SubscriptionKeyParameterNames,
    /// Operation policies by operation name (the operationId lower-cased,
    /// as the import names operations).
    #[serde(default)]
    pub operation_policies: BTreeMap<String, PathBuf>,
}

/// `subscriptionKeyParameterNames`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeyParameterNames {
    /// Header name.
    pub header: String,
    /// Query parameter name.
    pub query: String,
}

/// `Microsoft.ApiManagement/service/namedValues`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedValue {
    /// The value (for Key Vault-backed ones, read from the environment).
    pub value: Setting,
    /// Secret (or Key Vault): never printed.
    #[serde(default)]
    pub secret: bool,
}

/// `Microsoft.ApiManagement/service/backends`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Backend {
    /// One service.
    Single {
        /// Its base URL.
        url: Setting,
        /// Credentials added to every request.
        #[serde(default)]
        credentials: Credentials,
        /// The circuit breaker.
        #[serde(rename = "circuitBreaker")]
        circuit_breaker: Option<CircuitBreaker>,
    },
    /// A load-balanced pool of single backends.
    Pool {
        /// Its members.
        pool: Pool,
    },
}

/// `credentials`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Headers, each with its values (named values allowed).
    #[serde(default)]
    pub header: BTreeMap<String, Vec<String>>,
    /// Query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, Vec<String>>,
}

/// `circuitBreaker`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    /// One rule is all APIM takes.
    pub rules: Vec<CircuitBreakerRule>,
}

/// A circuit breaker rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreakerRule {
    /// Its name.
    pub name: String,
    /// When it trips.
    pub failure_condition: FailureCondition,
    /// How long it stays open, ISO 8601 (`PT1M`).
    pub trip_duration: String,
    /// Whether a backend's Retry-After lengthens the trip.
    #[serde(default)]
    pub accept_retry_after: bool,
}

/// `failureCondition`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureCondition {
    /// Failures within `interval` that trip it.
    pub count: u32,
    /// ISO 8601 (`PT1M`).
    pub interval: String,
    /// Statuses that count as failures.
    #[serde(default)]
    pub status_code_ranges: Vec<StatusCodeRange>,
    /// Error reasons that count as failures.
    #[serde(default)]
    pub error_reasons: Vec<String>,
}

/// `statusCodeRanges` entry.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusCodeRange {
    /// Lowest status, inclusive.
    pub min: u16,
    /// Highest status, inclusive.
    pub max: u16,
}

/// `pool`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Members.
    pub services: Vec<PoolMember>,
}

/// A pool member.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolMember {
    /// A Single backend's id.
    pub id: String,
    /// 1 is the best.
    #[serde(default = "one")]
    pub priority: u32,
    /// Share among members of one priority.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// `Microsoft.ApiManagement/service/products`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Product {
    /// Display name.
    pub display_name: String,
    /// Whether its APIs need a key.
    pub subscription_required: bool,
    /// The APIs it holds.
    pub apis: Vec<String>,
}

/// `Microsoft.ApiManagement/service/subscriptions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    /// Display name (`context.Subscription.Name`).
    pub display_name: String,
    /// The product it is scoped to.
    pub scope: String,
    /// Its primary key.
    pub primary_key: Setting,
    /// Its secondary key.
    #[serde(default)]
    pub secondary_key: Option<Setting>,
}

/// The development identity provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalIdentity {
    /// The `iss` of the tokens it issues.
    pub issuer: String,
}

/// A string, literal or read from the environment when the gateway starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Setting {
    /// As written.
    Literal(String),
    /// `{"env": NAME, "default": ...}`.
    Env {
        /// The variable.
        env: String,
        /// Used when it is unset; without one, unset is an error.
        default: Option<String>,
    },
}

impl Setting {
    /// The value now, with `${gatewayUrl}` replaced.
    pub fn resolve(&self, gateway_url: &str) -> anyhow::Result<String> {
        let raw = match self {
            Setting::Literal(text) => text.clone(),
            Setting::Env { env, default } => match (std::env::var(env), default) {
                (Ok(value), _) => value,
                (Err(_), Some(default)) => default.clone(),
                (Err(_), None) => bail!("the environment variable {env} is not set"),
            },
        };
        Ok(raw.replace("${gatewayUrl}", gateway_url))
    }
}

impl LocalFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}
