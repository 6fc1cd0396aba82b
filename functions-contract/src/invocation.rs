//! How the Functions host hands a function's invocations to a custom
//! handler, and where the HTTP response comes back
//! (`src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`, `InvokeAsync`).

use crate::{FunctionConfig, HostConfig, Section};

/// How the host hands an invocation to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The request itself, to the handler (`ProcessHttpInAndOutInvocationRequest`).
    Forward(ForwardPath),
    /// `POST /{FunctionName}` with the JSON envelope (`ProcessDefaultInvocationRequest`).
    Payload,
}

/// The path a forwarded request is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardPath {
    /// The original path (`customHandler` with `enableForwardingHttpRequest`).
    Original,
    /// `/{FunctionName}`: the legacy `httpWorker` section forwards HTTP
    /// functions but keeps the function name as the path
    /// (`DefaultHttpWorkerService.GetPathValue`).
    FunctionName,
}

/// Where the function's HTTP response comes from in payload mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutput {
    /// No `http` output binding: the host answers 200 with no body.
    None,
    /// `Outputs.<name>`.
    Binding(String),
    /// An output named `$return`: `ReturnValue`.
    Return,
}

/// Whether the host's client to the handler follows redirects: it does
/// unless forwarding is on, for every call of the app, readiness polls and
/// payload-mode invocations included
/// (`handler.AllowAutoRedirect = !EnableForwardingHttpRequest` in the
/// `DefaultHttpWorkerService` constructor).
pub fn follows_redirects(host: &HostConfig) -> bool {
    !host.enable_forwarding
}

impl Mode {
    /// The mode of `function`'s invocations: forward mode only for an
    /// HTTP-in/HTTP-out function when forwarding is on; payload mode for
    /// every other function.
    pub fn of(host: &HostConfig, function: &FunctionConfig) -> Self {
        let forwarding = host.section == Section::HttpWorker || host.enable_forwarding;
        if forwarding && function.is_http_in_and_out() {
            Mode::Forward(match host.section {
                Section::CustomHandler => ForwardPath::Original,
                Section::HttpWorker => ForwardPath::FunctionName,
            })
        } else {
            Mode::Payload
        }
    }
}

impl HttpOutput {
    /// Where `function`'s HTTP response is taken from.
    pub fn of(function: &FunctionConfig) -> Self {
        match function.http_output() {
            None => HttpOutput::None,
            Some(binding) if binding.name == "$return" => HttpOutput::Return,
            Some(binding) => HttpOutput::Binding(binding.name.clone()),
        }
    }
}
