//! `wasm-handler`: an Azure Functions custom handler that runs each HTTP
//! request in a fresh, sandboxed instance of a wasi:http component.
//!
//! The modules follow a request's path:
//!
//! 1. [`server`]: the listener, connections and graceful shutdown;
//! 2. [`handler`]: the request path, step by step;
//! 3. [`ingress`]: readiness poll, forwarded request, or payload-mode
//!    invocation ([`payload`]: the envelopes in and out);
//! 4. [`context`]: correlation id, secrets, the request as the guest sees it;
//! 5. [`limits`]: head, body and admission limits; refusals;
//! 6. [`registry`]: which component serves which route prefix, swapped atomically;
//!    [`guest`]: a loaded, pre-instantiated component version;
//! 7. [`dispatch`]: a fresh store and instance per request, deadline, the call;
//! 8. [`sandbox`]: what an instance is granted (almost nothing) and its memory cap;
//! 9. [`guest_output`]: the guest's stdout and stderr as log events;
//! 10. [`egress`]: the response, or a problem+json for a refusal or failure.
//!
//! Around them: [`engine`] (wasmtime configuration), [`artifact`] (compiled
//! and precompiled components on disk), [`reload`] (file watching, SIGHUP),
//! [`logging`] and [`console`] (lines written in batches), [`problem`] (RFC 9457 bodies), [`body`] and [`commands`] (the CLI).

pub mod artifact;
pub mod body;
pub mod commands;
pub mod console;
pub mod context;
pub mod dispatch;
pub mod egress;
pub mod engine;
pub mod guest;
pub mod guest_output;
pub mod handler;
pub mod ingress;
pub mod limits;
pub mod logging;
pub mod payload;
pub mod problem;
pub mod registry;
pub mod reload;
pub mod sandbox;
pub mod server;
