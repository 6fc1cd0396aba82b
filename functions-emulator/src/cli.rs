//! The command line: `functions-emulator [APP_ROOT] [--port N] [--enable-auth]
//! [--host-key V] [--master-key V] [--function-key F=V]... [--system-key N=V]...
//! [--graceful-stop]`, each option also
//! readable from a `FUNCTIONS_EMULATOR_*` variable (which the handler does
//! not inherit).

use std::path::PathBuf;

use crate::auth::{self, FunctionKey, Key, Keys};

/// Runs a function app's custom handler the way `func start` does, for
/// machines without Azure Functions Core Tools.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "functions-emulator", version)]
pub(crate) struct Cli {
    /// The function app folder: host.json, one folder per function, and
    /// optionally local.settings.json.
    #[arg(value_name = "APP_ROOT", default_value = ".")]
    pub(crate) app_root: PathBuf,

    /// Port on 127.0.0.1; 0 picks a free one. The console says
    /// `Listening on http://127.0.0.1:<port>`. [default: local.settings.json
    /// Host.LocalHttpPort, else 7071]
    #[arg(long, env = "FUNCTIONS_EMULATOR_PORT")]
    pub(crate) port: Option<u16>,

    /// Check function keys, as `func start --enableAuth`; without it every
    /// caller is authorized (as admin), as with `func start`.
    #[arg(long, env = "FUNCTIONS_EMULATOR_ENABLE_AUTH")]
    pub(crate) enable_auth: bool,

    /// The host key named "default" (generated and printed when --enable-auth
    /// is given without it).
    #[arg(
        long,
        value_name = "VALUE",
        env = "FUNCTIONS_EMULATOR_HOST_KEY",
        hide_env_values = true
    )]
    pub(crate) host_key: Option<String>,

    /// The master key, "_master", required by authLevel admin (generated and
    /// printed when --enable-auth is given without it).
    #[arg(
        long,
        value_name = "VALUE",
        env = "FUNCTIONS_EMULATOR_MASTER_KEY",
        hide_env_values = true
    )]
    pub(crate) master_key: Option<String>,

    /// A key named "default" of one function; repeatable (the variable takes
    /// a comma-separated list).
    #[arg(
        long = "function-key",
        value_name = "FUNCTION=VALUE",
        value_parser = parse_function_key,
        env = "FUNCTIONS_EMULATOR_FUNCTION_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub(crate) function_keys: Vec<FunctionKey>,

    /// A system key, NAME=VALUE, as extensions register them (authLevel
    /// system takes these and the master key); repeatable.
    #[arg(
        long = "system-key",
        value_name = "NAME=VALUE",
        value_parser = parse_system_key,
        env = "FUNCTIONS_EMULATOR_SYSTEM_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub(crate) system_keys: Vec<Key>,

    /// When the emulator stops, send the handler SIGTERM and give it time to
    /// drain before SIGKILL. Without it the handler gets SIGKILL at once, as
    /// the Functions host stops it (`Process.Kill()`).
    #[arg(long, env = "FUNCTIONS_EMULATOR_GRACEFUL_STOP")]
    pub(crate) graceful_stop: bool,

    /// How long a client may take to send its request head before the
    /// connection is closed (Kestrel's `RequestHeadersTimeout`, which the
    /// Functions host leaves at its default).
    #[arg(
        long,
        env = "FUNCTIONS_EMULATOR_HEADER_READ_TIMEOUT",
        value_parser = humantime::parse_duration,
        default_value = "30s"
    )]
    pub(crate) header_read_timeout: std::time::Duration,
}

/// `LEFT=RIGHT`, both non-empty.
fn pair<'t>(text: &'t str, shape: &str) -> Result<(&'t str, &'t str), String> {
    match text.split_once('=') {
        Some((left, right)) if !left.is_empty() && !right.is_empty() => Ok((left, right)),
        _ => Err(format!("{text:?} is not {shape}")),
    }
}

fn parse_function_key(text: &str) -> Result<FunctionKey, String> {
    let (function, value) = pair(text, "FUNCTION=VALUE")?;
    Ok(FunctionKey {
        function: function.to_owned(),
        key: Key {
            name: auth::DEFAULT_KEY_NAME.to_owned(),
            value: value.to_owned(),
        },
    })
}

fn parse_system_key(text: &str) -> Result<Key, String> {
    let (name, value) = pair(text, "NAME=VALUE")?;
    Ok(Key {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// A key the emulator made up, shown once so that it can be used.
pub(crate) struct GeneratedKey {
    pub(crate) name: &'static str,
    pub(crate) value: String,
}

/// The keys to check, and the keys that had to be generated.
pub(crate) fn keys(cli: &Cli) -> (Keys, Vec<GeneratedKey>) {
    if !cli.enable_auth {
        return (Keys::disabled(), Vec::new());
    }
    let mut generated = Vec::new();
    let mut key_or_generate = |given: &Option<String>, name: &'static str| {
        given.clone().unwrap_or_else(|| {
            let value: String = std::iter::repeat_with(fastrand::alphanumeric)
                .take(40)
                .collect();
            generated.push(GeneratedKey {
                name,
                value: value.clone(),
            });
            value
        })
    };
    let master = key_or_generate(&cli.master_key, auth::MASTER_KEY_NAME);
    let host = key_or_generate(&cli.host_key, auth::DEFAULT_KEY_NAME);
    let default_key = |value: String| Key {
        name: auth::DEFAULT_KEY_NAME.to_owned(),
        value,
    };
    (
        Keys::enabled(
            Some(master),
            vec![default_key(host)],
            cli.system_keys.clone(),
            cli.function_keys.clone(),
        ),
        generated,
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::auth::AuthLevel;

    #[test]
    fn defaults_match_func_start() {
        let cli = Cli::try_parse_from(["functions-emulator"]).expect("valid");
        assert_eq!(cli.app_root, PathBuf::from("."));
        assert!(!cli.enable_auth);
        let (keys, generated) = keys(&cli);
        assert!(!keys.is_enabled() && generated.is_empty());
    }

    #[test]
    fn keys_come_from_the_options() {
        let cli = Cli::try_parse_from([
            "functions-emulator",
            "app",
            "--port",
            "0",
            "--enable-auth",
            "--host-key",
            "hk",
            "--function-key",
            "catalog=fk",
            "--function-key",
            "openapi=ok",
        ])
        .expect("valid");
        assert_eq!(cli.port, Some(0));
        let (keys, generated) = keys(&cli);
        assert_eq!(generated.len(), 1, "only the master key is generated");
        assert_eq!(generated[0].name, "_master");
        assert!(
            keys.authorize("catalog", AuthLevel::Function, Some("fk"))
                .is_ok()
        );
        assert!(
            keys.authorize("openapi", AuthLevel::Function, Some("fk"))
                .is_err()
        );
        assert!(keys.authorize("x", AuthLevel::Function, Some("hk")).is_ok());
        assert!(
            keys.authorize("x", AuthLevel::Admin, Some(&generated[0].value))
                .is_ok()
        );
    }

    #[test]
    fn malformed_function_keys_are_refused() {
        assert!(Cli::try_parse_from(["functions-emulator", "--function-key", "novalue"]).is_err());
        assert!(Cli::try_parse_from(["functions-emulator", "--function-key", "=v"]).is_err());
    }
}
