//! `local.settings.json`: the app settings `func start` puts into its own
//! environment (so the handler inherits them) and the local port
//! (azure-functions-core-tools `src/Azure.Functions.Cli/Actions/HostActions/StartHostAction.cs`;
//! Microsoft docs: functions-develop-local).

use serde_json::Value;

use crate::ConfigError;
use crate::json;

/// What `local.settings.json` says; empty when the file is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalSettings {
    /// `Values`, in file order.
    pub values: Vec<(String, String)>,
    /// `Host.LocalHttpPort`.
    pub local_http_port: Option<u16>,
}

impl LocalSettings {
    /// Reads a parsed `local.settings.json`.
    pub fn from_json(root: &Value) -> Result<Self, ConfigError> {
        let invalid = |message: &str| ConfigError::LocalSettings(message.to_owned());
        if json::get(root, "IsEncrypted").and_then(json::boolean) == Some(true) {
            return Err(invalid(
                "IsEncrypted is true; the emulator reads only unencrypted settings \
                 (`func settings decrypt` decrypts them)",
            ));
        }
        let values = match json::get(root, "Values") {
            None => Vec::new(),
            Some(Value::Object(values)) => values
                .iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(name, value)| {
                    json::scalar(value)
                        .map(|value| (name.clone(), value))
                        .ok_or_else(|| invalid(&format!("Values.{name} must be a string")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("Values must be an object")),
        };
        let local_http_port = json::at(root, &["Host", "LocalHttpPort"])
            .map(|port| {
                json::scalar(port)
                    .and_then(|port| port.parse().ok())
                    .ok_or_else(|| invalid("Host.LocalHttpPort must be a port number"))
            })
            .transpose()?;
        Ok(LocalSettings {
            values,
            local_http_port,
        })
    }

    /// The values `func start` adds to its environment: those whose names are
    /// not already set in the real environment (`is_set`).
    pub fn values_to_add(&self, is_set: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        self.values
            .iter()
            .filter(|(name, _)| !is_set(name))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_values_and_the_local_port() {
        let settings = LocalSettings::from_json(&json!({
            "IsEncrypted": false,
            "Values": {"FUNCTIONS_WORKER_RUNTIME": "Custom", "N": 5, "GONE": null},
            "Host": {"LocalHttpPort": 7072}
        }))
        .expect("valid");
        assert_eq!(
            settings.values,
            [
                ("FUNCTIONS_WORKER_RUNTIME".to_owned(), "Custom".to_owned()),
                ("N".to_owned(), "5".to_owned())
            ]
        );
        assert_eq!(settings.local_http_port, Some(7072));
    }

    #[test]
    fn the_real_environment_wins_over_values() {
        let settings =
            LocalSettings::from_json(&json!({"Values": {"A": "1", "B": "2"}})).expect("valid");
        assert_eq!(
            settings.values_to_add(|name| name == "A"),
            [("B".to_owned(), "2".to_owned())]
        );
    }

    #[test]
    fn encrypted_or_malformed_settings_are_errors() {
        assert!(LocalSettings::from_json(&json!({"IsEncrypted": true})).is_err());
        assert!(LocalSettings::from_json(&json!({"Values": {"A": {"b": 1}}})).is_err());
        assert!(LocalSettings::from_json(&json!({"Host": {"LocalHttpPort": "x"}})).is_err());
    }
}
