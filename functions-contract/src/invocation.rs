//! How the Functions host hands a function's invocations to a custom
//! handler (reference §1.4), and where the HTTP response comes back.

use crate::{FunctionConfig, HostConfig, Section};

/// How the host hands an invocation to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The request itself, to the handler (reference §3.3).
    Forward(ForwardPath),
    /// `POST /{FunctionName}` with the JSON envelope (reference §3.1).
    Payload,
}

/// The path a forwarded request is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardPath {
    /// The original path (`customHandler` with `enableForwardingHttpRequest`).
    Original,
    /// `/{FunctionName}`: the legacy `httpWorker` section forwards HTTP
    /// functions but keeps the function name as the path
    /// (DefaultHttpWorkerService.GetPathValue; UNCONFIRMED by a host test).
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
