//! apim-gateway: a local Azure API Management gateway that runs the
//! repository's policy XML in front of the function app. Modules follow a
//! request's path:
//!
//! - [`config`]: the local file that stands for what Azure holds;
//! - `policy`: policy documents parsed, checked and composed by scope;
//! - [`expression`]: the C# of policy expressions, and `context`;
//! - `gateway`: start-up, then per request the API, operation and
//!   subscription;
//! - `pipeline`: inbound, backend, outbound, on-error;
//! - `jwt`, `rate_limit`, `response_cache`, `backends`: the policies'
//!   run-time state;
//! - [`identity`]: the local identity provider;
//! - `server`, `cli`: HTTP and the command line.

mod backends;
pub mod cli;
mod client;
pub mod config;
pub mod expression;
mod gateway;
pub mod identity;
mod jwt;
mod operations;
mod pipeline;
mod policy;
mod rate_limit;
mod response_cache;
mod server;

use std::sync::Arc;

use anyhow::Context as _;

use cli::{Cli, Command};

pub use gateway::Gateway;

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { common, port } => {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
            let url = format!("http://{}", listener.local_addr()?);
            let gateway = Gateway::load(&common.config, &url, &common.state_dir)?;
            tracing::info!("Listening on {url}");
            server::serve(listener, Arc::new(gateway)).await
        }
        Command::Check { common } => {
            Gateway::load(&common.config, "http://127.0.0.1:0", &common.state_dir)?;
            tracing::info!(
                "{}: every policy and expression is supported",
                common.config.display()
            );
            Ok(())
        }
        Command::Token {
            common,
            audience,
            roles,
            scopes,
            subject,
            expires_in,
        } => {
            let local = config::LocalFile::load(&common.config)?;
            // `{{name}}` is the named value, as in a policy.
            let resolve = |text: String| -> anyhow::Result<String> {
                match text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
                    Some(name) => local
                        .named_values
                        .get(name)
                        .with_context(|| format!("no named value {name}"))?
                        .value
                        .resolve(""),
                    None => Ok(text),
                }
            };
            let audience = resolve(audience)?;
            let roles = roles
                .into_iter()
                .map(resolve)
                .collect::<anyhow::Result<_>>()?;
            let identity =
                identity::LocalIdentity::open(&common.state_dir, &local.local_identity.issuer)?;
            let token = identity.issue(&identity::TokenRequest {
                audience,
                subject,
                roles,
                scopes,
                lifetime: expires_in,
                issuer: None,
                issued_ago: std::time::Duration::ZERO,
                not_before_in: std::time::Duration::ZERO,
            })?;
            use std::io::Write as _;
            writeln!(std::io::stdout(), "{token}")?;
            Ok(())
        }
    }
}
