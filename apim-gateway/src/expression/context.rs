//! The `context` object policy expressions read, modelled on the policy
//! expressions reference (learn.microsoft.com/azure/api-management/
//! api-management-policy-expressions#ContextVariables): the members the
//! gateway fills, as plain data.

use std::collections::BTreeMap;

use super::Value;

/// `context`.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `context.RequestId`: a GUID per gateway request.
    pub request_id: String,
    /// `context.Request`.
    pub request: Request,
    /// `context.Response`: `null` until a backend (or cache, or
    /// `return-response`) answered.
    pub response: Option<Response>,
    /// `context.Variables`.
    pub variables: BTreeMap<String, Value>,
    /// `context.LastError`: `null` outside `on-error`.
    pub last_error: Option<LastError>,
    /// `context.Subscription`: `null` when the request has no subscription.
    pub subscription: Option<Subscription>,
    /// `context.Deployment`.
    pub deployment: Deployment,
    /// `context.Api`.
    pub api: Option<Api>,
    /// `context.Operation`.
    pub operation: Option<Operation>,
}

/// `context.Request`.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `Method`.
    pub method: String,
    /// `Url`: the backend URL as policies have rewritten it so far.
    pub url: Url,
    /// `OriginalUrl`: the URL the client sent.
    pub original_url: Url,
    /// `Headers`.
    pub headers: Headers,
    /// `IpAddress`.
    pub ip_address: String,
}

/// `IUrl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Url {
    /// `Scheme`: `http` or `https`.
    pub scheme: String,
    /// `Host`.
    pub host: String,
    /// `Port`.
    pub port: u16,
    /// `Path`, starting with `/`.
    pub path: String,
    /// `Query`, in order, decoded.
    pub query: Vec<(String, String)>,
}

/// Headers, names compared case-insensitively, values in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// `GetValueOrDefault(name, default)`: every value of `name` joined by
    /// commas, or `default` when it is absent.
    pub fn get_value_or_default(&self, name: &str, default: &str) -> String {
        let values: Vec<&str> = self.values(name).collect();
        if values.is_empty() {
            default.to_owned()
        } else {
            values.join(",")
        }
    }

    /// Every value of `name`.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `ContainsKey(name)`.
    pub fn contains(&self, name: &str) -> bool {
        self.values(name).next().is_some()
    }

    /// Replaces every value of `name` with `values`.
    pub fn set(&mut self, name: &str, values: Vec<String>) {
        self.remove(name);
        self.0
            .extend(values.into_iter().map(|v| (name.to_owned(), v)));
    }

    /// Adds `values` after the existing ones.
    pub fn append(&mut self, name: &str, values: Vec<String>) {
        self.0
            .extend(values.into_iter().map(|v| (name.to_owned(), v)));
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// `context.Response`.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// `StatusCode`.
    pub status_code: u16,
    /// `StatusReason`.
    pub status_reason: String,
    /// `Headers`.
    pub headers: Headers,
}

/// `context.LastError` (learn.microsoft.com/azure/api-management/
/// api-management-error-handling-policies#lasterror).
#[derive(Debug, Clone, Default)]
pub struct LastError {
    /// `Source`: the policy's element name, or `configuration`.
    pub source: String,
    /// `Reason`: a machine-friendly reason (`RateLimitExceeded`, ...).
    pub reason: String,
    /// `Message`: human-readable.
    pub message: String,
    /// `Scope`.
    pub scope: String,
    /// `Section`.
    pub section: String,
    /// `Path`.
    pub path: String,
    /// `PolicyId`.
    pub policy_id: String,
}

/// `context.Subscription`.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    /// `Id`: the subscription's name (`catalog-first-client`).
    pub id: String,
    /// `Name`: its display name.
    pub name: String,
    /// `Key`: the key the caller presented.
    pub key: String,
}

/// `context.Deployment`.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// `Region`.
    pub region: String,
    /// `ServiceName`.
    pub service_name: String,
}

/// `context.Api`.
#[derive(Debug, Clone, Default)]
pub struct Api {
    /// `Id`.
    pub id: String,
    /// `Name`.
    pub name: String,
    /// `Path`.
    pub path: String,
}

/// `context.Operation`.
#[derive(Debug, Clone, Default)]
pub struct Operation {
    /// `Id`.
    pub id: String,
    /// `Name`.
    pub name: String,
    /// `Method`.
    pub method: String,
    /// `UrlTemplate`.
    pub url_template: String,
}
