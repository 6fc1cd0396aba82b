//! An Azure Functions app folder as the Functions host reads it, shared by
//! `wasm-handler` (which must know which invocations arrive in payload mode,
//! and under which binding names) and `functions-emulator` (which plays the
//! Functions host):
//!
//! - [`json`]: JSON as .NET reads configuration (comments, case-insensitive names);
//! - [`AppConfig`]: the folder: `host.json` ([`HostConfig`]), every
//!   `*/function.json` ([`FunctionConfig`]), `local.settings.json` ([`LocalSettings`]);
//! - [`invocation`]: how the host hands each function's invocations to the
//!   custom handler, forward or payload mode, and where the HTTP response goes.
//!
//! Facts from `shared/reference/functions-host-and-apim.md`, sections 1 to 5.

mod app;
mod function_json;
mod host_json;
pub mod invocation;
pub mod json;
mod local_settings;

pub use app::{AppConfig, ConfigError};
pub use function_json::{Binding, Direction, FunctionConfig};
pub use host_json::{HandlerDescription, HostConfig, Section};
pub use invocation::{ForwardPath, HttpOutput, Mode};
pub use local_settings::LocalSettings;
