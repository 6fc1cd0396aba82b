//! The Azure Functions custom-handler contract, shared by `wasm-handler`
//! (which must know which invocations arrive in payload mode, and under which
//! binding names) and `functions-emulator` (which plays the Functions host):
//!
//! - [`protocol`]: the environment variables, headers and readiness poll the
//!   host and the handler use with each other;
//! - [`json`]: JSON as .NET reads configuration (comments, case-insensitive names);
//! - [`AppConfig`]: the folder: `host.json` ([`HostConfig`]), every
//!   `*/function.json` ([`FunctionConfig`]), `local.settings.json` ([`LocalSettings`]);
//! - [`invocation`]: how the host hands each function's invocations to the
//!   custom handler, forward or payload mode, and where the HTTP response goes;
//! - [`log_text`]: log text that stays one line, on both sides;
//! - [`HostingPlan`]: the plan, from the host's environment, and the
//!   `functionTimeout` it enforces.
//!
//! Each fact cites the Functions host's source file it was read from
//! (github.com/Azure/azure-functions-host at 89dc438, release 4.1037);
//! `docs/functions-host.md` lists them all.

#![deny(missing_docs, unreachable_pub)]

mod app;
mod function_json;
mod host_json;
pub mod invocation;
pub mod json;
mod local_settings;
pub mod log_text;
mod plan;
pub mod protocol;

pub use app::{AppConfig, BrokenFunction, ConfigError};
pub use function_json::{Binding, Direction, FunctionConfig};
pub use host_json::{HandlerDescription, HostConfig, Section};
pub use invocation::{ForwardPath, HttpOutput, Mode, follows_redirects};
pub use local_settings::LocalSettings;
pub use plan::{FunctionTimeoutSetting, HostingPlan, PLAN_VARIABLES, timespan};
