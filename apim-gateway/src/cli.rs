//! The command line: `apim-gateway serve | token | check`.

use std::path::PathBuf;
use std::time::Duration;

/// A local Azure API Management gateway: runs the repository's policy XML
/// (apim/policies) in front of the function app, with the backends, named
/// values and subscriptions of a local file (apim/local-gateway.json).
#[derive(Debug, clap::Parser)]
#[command(name = "apim-gateway", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the APIs on 127.0.0.1.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Port on 127.0.0.1; 0 picks a free one. The console says
        /// `Listening on http://127.0.0.1:<port>`.
        #[arg(long, env = "APIM_GATEWAY_PORT", default_value_t = 8080)]
        port: u16,
    },
    /// Load and check everything as `serve` would, then exit: an
    /// unsupported policy or expression is reported with its file and line.
    Check {
        #[command(flatten)]
        common: Common,
    },
    /// Print a token signed by the local identity, for
    /// `Authorization: Bearer`.
    Token {
        #[command(flatten)]
        common: Common,
        /// `aud`: the API's audience; `{{name}}` takes a named value's
        /// (`--aud '{{catalog-jwt-audience}}'`).
        #[arg(long = "aud")]
        audience: String,
        /// An app role for the `roles` claim (`{{name}}` for a named
        /// value's); repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A delegated scope for the `scp` claim; repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// `sub`.
        #[arg(long = "sub", default_value = "local-developer")]
        subject: String,
        /// Lifetime (`1h`, `90s`).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        expires_in: Duration,
    },
}

/// Options every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The local file: APIs, policy files, named values, backends,
    /// subscriptions.
    #[arg(
        long,
        env = "APIM_GATEWAY_CONFIG",
        default_value = "apim/local-gateway.json"
    )]
    pub config: PathBuf,
    /// Where the local identity keeps its signing key (made on first use).
    #[arg(
        long,
        env = "APIM_GATEWAY_STATE_DIR",
        default_value = "target/apim-gateway"
    )]
    pub state_dir: PathBuf,
}
