//! Policy documents: the XML files read, named values substituted, every
//! element checked against what the gateway can run, and the three scopes
//! (service, API, operation) composed through `<base />`.
//!
//! Anything the gateway does not support stops it here, at start-up, with
//! the file, line and construct named: a policy silently skipped would let
//! a request through that Azure would refuse, or the other way round.

mod document;
mod named_values;
mod scopes;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::expression::Expression;

pub use document::{Sections, parse};
pub use named_values::NamedValues;
pub use scopes::{Pipeline, compose};

/// Where a statement is written.
#[derive(Debug, Clone)]
pub struct Location {
    /// The policy file.
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A construct the gateway refuses, and where it is.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {construct}")]
pub struct Unsupported {
    /// Where.
    pub location: Location,
    /// What, in words (`the policy <send-request> is not supported`).
    pub construct: String,
}

/// A value a policy attribute or element holds: literal text or an
/// expression evaluated per request.
#[derive(Debug, Clone)]
pub enum Text {
    /// As written (named values already substituted).
    Literal(String),
    /// `@(...)` or `@{...}`.
    Expression(Arc<Expression>),
}

/// One section of one document.
pub type Statements = Vec<Statement>;

/// A policy statement.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Where it is written.
    pub at: Location,
    /// What it does.
    pub policy: Policy,
}

/// The policies the gateway runs, with the semantics of Microsoft's policy
/// reference (learn.microsoft.com/azure/api-management/api-management-policies).
#[derive(Debug, Clone)]
pub enum Policy {
    /// `<base />`: the enclosing scope's section.
    Base,
    /// `set-variable`.
    SetVariable { name: String, value: Text },
    /// `set-header`.
    SetHeader(SetParameter),
    /// `set-query-parameter`.
    SetQueryParameter(SetParameter),
    /// `rewrite-uri`.
    RewriteUri {
        template: String,
        copy_unmatched_params: bool,
    },
    /// `validate-jwt`.
    ValidateJwt(Box<ValidateJwt>),
    /// `rate-limit-by-key`.
    RateLimitByKey(RateLimitByKey),
    /// `cache-lookup`.
    CacheLookup(CacheLookup),
    /// `cache-store`.
    CacheStore { duration_seconds: u64 },
    /// `choose`.
    Choose {
        whens: Vec<(Text, Statements)>,
        otherwise: Option<Statements>,
    },
    /// `return-response`: its `set-status`, `set-header`, `set-body`.
    ReturnResponse(Statements),
    /// `set-status`.
    SetStatus { code: Text, reason: Option<Text> },
    /// `set-body`.
    SetBody(Text),
    /// `set-backend-service backend-id` (or `base-url`).
    SetBackendService(BackendTarget),
    /// `authentication-managed-identity`.
    AuthenticationManagedIdentity {
        resource: Text,
        output_token_variable_name: Option<String>,
    },
    /// `forward-request`.
    ForwardRequest { timeout_seconds: u64 },
}

/// What `set-backend-service` names.
#[derive(Debug, Clone)]
pub enum BackendTarget {
    /// A backend entity.
    Id(Text),
    /// A URL.
    BaseUrl(Text),
}

/// `set-header` / `set-query-parameter`.
#[derive(Debug, Clone)]
pub struct SetParameter {
    /// Header or parameter name.
    pub name: String,
    /// `override`, `skip`, `append` or `delete` (an expression allowed).
    pub exists_action: Text,
    /// Its `<value>`s.
    pub values: Vec<Text>,
}

/// `validate-jwt` (learn.microsoft.com/azure/api-management/validate-jwt-policy).
#[derive(Debug, Clone)]
pub struct ValidateJwt {
    /// The header carrying the token.
    pub header_name: String,
    /// `Bearer`, if required.
    pub require_scheme: Option<String>,
    /// Status of a refusal (on-error decides the answer; kept for LastError).
    pub failed_validation_httpcode: u16,
    /// LastError.Message of a refusal.
    pub failed_validation_error_message: Option<String>,
    /// Whether `exp` is required.
    pub require_expiration_time: bool,
    /// Leeway, seconds.
    pub clock_skew_seconds: u64,
    /// Where the keys come from.
    pub openid_config_url: String,
    /// Allowed audiences.
    pub audiences: Vec<String>,
    /// Allowed issuers.
    pub issuers: Vec<String>,
    /// `required-claims`.
    pub required_claims: Vec<RequiredClaim>,
    /// `output-token-variable-name`.
    pub output_token_variable_name: Option<String>,
}

/// A `required-claims/claim`.
#[derive(Debug, Clone)]
pub struct RequiredClaim {
    /// The claim.
    pub name: String,
    /// `all` (default) or `any` of the values.
    pub match_any: bool,
    /// Splits a string claim into several values.
    pub separator: Option<String>,
    /// Accepted values; none means the claim must only be present.
    pub values: Vec<String>,
}

/// `rate-limit-by-key` (learn.microsoft.com/azure/api-management/rate-limit-by-key-policy).
#[derive(Debug, Clone)]
pub struct RateLimitByKey {
    /// Calls allowed per window.
    pub calls: u64,
    /// Window, seconds.
    pub renewal_period_seconds: u64,
    /// The counter's key.
    pub counter_key: Text,
    /// Variable that gets the seconds to wait.
    pub retry_after_variable_name: Option<String>,
    /// Header that gets them (Retry-After when not set).
    pub retry_after_header_name: Option<String>,
    /// Variable that gets the calls left.
    pub remaining_calls_variable_name: Option<String>,
}

/// `cache-lookup` (learn.microsoft.com/azure/api-management/cache-lookup-policy).
#[derive(Debug, Clone)]
pub struct CacheLookup {
    /// `vary-by-developer`.
    pub vary_by_developer: bool,
    /// `vary-by-developer-groups`.
    pub vary_by_developer_groups: bool,
    /// `allow-private-response-caching`.
    pub allow_private_response_caching: bool,
    /// `vary-by-header`s.
    pub vary_by_headers: Vec<String>,
    /// `vary-by-query-parameter`s (`;`-separated lists split).
    pub vary_by_query_parameters: Vec<String>,
}
