//! `functions-emulator`: a local stand-in for the Azure Functions host
//! (`func start`) running a custom handler, faithful to
//! `shared/reference/functions-host-and-apim.md` §1-5.
//!
//! - [`cli`]: the command line; [`lifecycle`]: start-up and shutdown order;
//! - the app folder itself (host.json, function.json, local.settings.json) is read by the shared `function-app` crate;
//! - [`functions`]: the indexed functions and their invocation modes;
//! - [`launcher`]: the handler process (command, readiness, restarts);
//! - [`server`] and [`pipeline`]: the listener, then 503 / [`routes`] 404 /
//!   [`auth`] 401 / body for each request;
//! - [`invocation`]: one invocation in [`forward`] or [`payload`] mode, over
//!   the host's [`client`]; [`url`]: paths and queries as ASP.NET Core parses them;
//! - [`console`]: every line the emulator prints.

pub mod auth;
pub mod cli;
pub mod client;
pub mod console;
pub mod forward;
pub mod functions;
pub mod invocation;
pub mod launcher;
pub mod lifecycle;
pub mod payload;
pub mod pipeline;
pub mod routes;
pub mod server;
pub mod url;
