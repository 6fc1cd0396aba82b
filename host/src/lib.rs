//! `wasm-handler`: an Azure Functions custom handler that runs each HTTP
//! request in a fresh, sandboxed instance of a wasi:http component.
//!
//! The modules follow a request's path:
//!
//! 1. [`server`]: the listener, connections and graceful shutdown; [`wire`]:
//!    what HTTP/1.1 requires of a request, and problem+json for heads hyper
//!    cannot parse;
//! 2. [`handler`]: the request path, step by step;
//! 3. [`ingress`]: readiness poll, forwarded request, or payload-mode
//!    invocation ([`payload`]: the envelopes in and out, around the same path);
//! 4. [`context`]: correlation id, secrets, the request as the guest sees it;
//! 5. [`limits`]: head limits and admission; [`body`]: the body limit on
//!    the way in and the visible cut-off on the way out;
//! 6. [`registry`]: which component serves which route prefix, swapped atomically;
//!    [`component`]: a loaded, pre-instantiated component version;
//! 7. [`dispatch`]: a fresh store and instance per request, deadline, the call
//!    ([`reuse`]: idle instances kept where a route allows it; [`shared`]: a
//!    0.3 instance serving several requests at once);
//! 8. [`sandbox`]: what an instance is granted (almost nothing) and its memory cap;
//! 9. [`guest_output`]: the guest's stdout and stderr as log events or envelope lines;
//! 10. [`egress`]: the response, or a problem+json for a [`failure`].
//!
//! Around them: [`engine`] (wasmtime configuration), [`artifact`] (compiled
//! and precompiled components on disk), [`reload`] (file watching, SIGHUP),
//! [`logging`] and [`console`] (lines written in batches), [`telemetry`]
//! (OpenTelemetry spans and metrics over OTLP), [`problem`]
//! (RFC 9457 bodies) and [`commands`] (the CLI, [`Cli`]).

#![deny(missing_docs, unreachable_pub)]

mod artifact;
mod body;
mod commands;
mod component;
mod console;
mod context;
mod dispatch;
mod egress;
mod engine;
mod failure;
mod guest_output;
mod handler;
mod ingress;
mod limits;
mod logging;
mod payload;
mod problem;
mod registry;
mod reload;
mod reuse;
mod sandbox;
mod server;
mod shared;
mod telemetry;
mod wire;

pub use commands::Cli;
