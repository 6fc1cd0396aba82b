//! `host.json`: the custom handler's description and the host settings that
//! matter to it (azure-functions-host
//! `src/WebJobs.Script/Workers/Http/Configuration/HttpWorkerOptionsSetup.cs`,
//! `HttpWorkerDescription.cs`; Microsoft docs: functions-host-json).

use std::time::Duration;

use serde_json::Value;

use crate::ConfigError;
use crate::json;
use crate::plan::FunctionTimeoutSetting;

/// The Functions host's default `initializationTimeout`
/// (src/WebJobs.Script/Workers/Http/Configuration/HttpWorkerOptions.cs).
pub(crate) const DEFAULT_INITIALIZATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What `host.json` says.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// How to launch the handler.
    pub handler: HandlerDescription,
    /// Which section described it.
    pub section: Section,
    /// `enableForwardingHttpRequest`.
    pub enable_forwarding: bool,
    /// `extensions.http.routePrefix`, without surrounding slashes; may be empty.
    pub route_prefix: String,
    /// `functionTimeout` as written; [`crate::HostingPlan::function_timeout`]
    /// says what the host enforces.
    pub function_timeout: FunctionTimeoutSetting,
    /// `customHandler.initializationTimeout`: how long the readiness poll may take.
    pub initialization_timeout: Duration,
}

/// The section that described the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `customHandler`.
    CustomHandler,
    /// The older `httpWorker`: HTTP functions are always forwarded, to `/{FunctionName}`.
    HttpWorker,
}

/// `customHandler.description`, before any expansion or path resolution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandlerDescription {
    /// `defaultExecutablePath`: the program to launch.
    pub default_executable_path: String,
    /// `arguments`.
    pub arguments: Vec<String>,
    /// `defaultWorkerPath`: a script or file passed after the arguments.
    pub default_worker_path: Option<String>,
    /// `workerArguments`: passed after the worker path.
    pub worker_arguments: Vec<String>,
    /// `workingDirectory`: the handler's working directory (default: the app root).
    pub working_directory: Option<String>,
    /// `workerDirectory`: where a relative executable is looked for (default: the app root).
    pub worker_directory: Option<String>,
}

impl HostConfig {
    /// Reads the parsed `host.json`.
    pub fn from_json(root: &Value) -> Result<Self, ConfigError> {
        // Both sections present: `customHandler` wins and the host warns
        // (src/WebJobs.Script/Workers/Http/Configuration/HttpWorkerOptionsSetup.cs).
        let (section, handler) = match (
            json::get(root, "customHandler"),
            json::get(root, "httpWorker"),
        ) {
            (Some(handler), _) => (Section::CustomHandler, handler),
            (None, Some(handler)) => (Section::HttpWorker, handler),
            (None, None) => return Err(ConfigError::NoCustomHandler),
        };
        let description = json::get(handler, "description").ok_or_else(|| {
            ConfigError::host_json("customHandler.description is required".to_owned())
        })?;
        let text = |name: &str| json::get(description, name).and_then(json::scalar);
        let list = |name: &str| -> Result<Vec<String>, ConfigError> {
            json::get(description, name)
                .map(|value| {
                    json::string_list(value).ok_or_else(|| {
                        ConfigError::host_json(format!(
                            "customHandler.description.{name} must be an array of strings"
                        ))
                    })
                })
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let default_executable_path = text("defaultExecutablePath")
            .filter(|path| !path.trim().is_empty())
            .ok_or_else(|| {
                ConfigError::host_json(
                    "customHandler.description.defaultExecutablePath is required".to_owned(),
                )
            })?;
        let handler_description = HandlerDescription {
            default_executable_path,
            arguments: list("arguments")?,
            default_worker_path: text("defaultWorkerPath").filter(|path| !path.is_empty()),
            worker_arguments: list("workerArguments")?,
            working_directory: text("workingDirectory").filter(|path| !path.is_empty()),
            worker_directory: text("workerDirectory").filter(|path| !path.is_empty()),
        };

        let enable_forwarding = match json::get(handler, "enableForwardingHttpRequest") {
            None => false,
            Some(value) => json::boolean(value).ok_or_else(|| {
                ConfigError::host_json("enableForwardingHttpRequest must be true or false".into())
            })?,
        };
        let route_prefix = match json::at(root, &["extensions", "http", "routePrefix"]) {
            None => "api".to_owned(),
            Some(value) => json::scalar(value)
                .ok_or_else(|| {
                    ConfigError::host_json("extensions.http.routePrefix must be a string".into())
                })?
                .trim_matches('/')
                .to_owned(),
        };
        let function_timeout = match json::get(root, "functionTimeout")
            .map(|value| timespan_setting(value, "functionTimeout"))
            .transpose()?
        {
            None => FunctionTimeoutSetting::Unset,
            Some(None) => FunctionTimeoutSetting::Unlimited,
            Some(Some(limit)) => FunctionTimeoutSetting::Limit(limit),
        };
        let initialization_timeout = json::get(handler, "initializationTimeout")
            .map(|value| timespan_setting(value, "initializationTimeout"))
            .transpose()?
            .flatten()
            .unwrap_or(DEFAULT_INITIALIZATION_TIMEOUT);
        Ok(HostConfig {
            handler: handler_description,
            section,
            enable_forwarding,
            route_prefix,
            function_timeout,
            initialization_timeout,
        })
    }
}

fn timespan_setting(value: &Value, name: &str) -> Result<Option<Duration>, ConfigError> {
    let text = json::scalar(value)
        .ok_or_else(|| ConfigError::host_json(format!("{name} must be a TimeSpan string")))?;
    parse_timespan(&text).ok_or_else(|| {
        ConfigError::host_json(format!(
            "{name} {text:?} is not a TimeSpan such as \"00:05:00\" or \"-1\""
        ))
    })
}

/// A .NET `TimeSpan` in the forms host.json uses: `[d.]hh:mm[:ss[.fffffff]]`
/// or a whole number of days; `-1` (or `-1.00:00:00`) means no limit
/// (`Some(None)`).
pub(crate) fn parse_timespan(text: &str) -> Option<Option<Duration>> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('-') {
        // Negative spans other than -1 are not valid timeouts; -1 is "infinite".
        return match rest {
            "1" | "1.00:00:00" => Some(None),
            _ => None,
        };
    }
    let number = |part: &str| -> Option<u64> {
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let mut parts = text.split(':');
    let first = parts.next()?;
    let Some(minutes) = parts.next() else {
        return Some(Some(Duration::from_secs(number(first)? * 86_400)));
    };
    let seconds = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let (days, hours) = match first.split_once('.') {
        Some((days, hours)) => (number(days)?, number(hours)?),
        None => (0, number(first)?),
    };
    let minutes = number(minutes)?;
    let (seconds, fraction) = match seconds {
        None => (0, Duration::ZERO),
        Some(seconds) => match seconds.split_once('.') {
            None => (number(seconds)?, Duration::ZERO),
            Some((seconds, fraction)) => {
                if fraction.len() > 7 || number(fraction).is_none() {
                    return None;
                }
                let ticks: u64 = format!("{fraction:0<7}").parse().ok()?;
                (number(seconds)?, Duration::from_nanos(ticks * 100))
            }
        },
    };
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    let whole = ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
    Some(Some(Duration::from_secs(whole) + fraction))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_function_apps_host_json() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../functionapp/host.json"
        ))
        .expect("functionapp/host.json");
        let config = HostConfig::from_json(&json::parse(&text).expect("JSON")).expect("valid");
        assert_eq!(config.section, Section::CustomHandler);
        assert!(config.enable_forwarding);
        assert_eq!(config.route_prefix, "api");
        assert_eq!(config.handler.default_executable_path, "wasm-handler");
        assert_eq!(
            config.handler.arguments,
            ["serve", "--component", "catalog.wasm"]
        );
        assert_eq!(config.handler.working_directory, None);
        assert_eq!(config.function_timeout, FunctionTimeoutSetting::Unset);
        assert_eq!(
            config.initialization_timeout,
            DEFAULT_INITIALIZATION_TIMEOUT
        );
    }

    #[test]
    fn property_names_are_case_insensitive() {
        let config = HostConfig::from_json(&json!({
            "CUSTOMHANDLER": {
                "Description": {"DefaultExecutablePath": "h", "ARGUMENTS": ["a"]},
                "EnableForwardingHttpRequest": "True"
            },
            "Extensions": {"HTTP": {"RoutePrefix": "/v1/"}},
            "FunctionTimeout": "00:05:00"
        }))
        .expect("valid");
        assert_eq!(config.handler.default_executable_path, "h");
        assert_eq!(config.handler.arguments, ["a"]);
        assert!(config.enable_forwarding);
        assert_eq!(config.route_prefix, "v1");
        assert_eq!(
            config.function_timeout,
            FunctionTimeoutSetting::Limit(Duration::from_secs(300))
        );
    }

    #[test]
    fn legacy_http_worker_is_read_and_custom_handler_wins_over_it() {
        let legacy = json!({"httpWorker": {"description": {"defaultExecutablePath": "old"}}});
        let config = HostConfig::from_json(&legacy).expect("valid");
        assert_eq!(config.section, Section::HttpWorker);
        assert_eq!(config.handler.default_executable_path, "old");

        let both = json!({
            "httpWorker": {"description": {"defaultExecutablePath": "old"}},
            "customHandler": {"description": {"defaultExecutablePath": "new"}}
        });
        let config = HostConfig::from_json(&both).expect("valid");
        assert_eq!(config.section, Section::CustomHandler);
        assert_eq!(config.handler.default_executable_path, "new");
        assert!(!config.enable_forwarding);
    }

    #[test]
    fn an_empty_route_prefix_is_allowed() {
        let config = HostConfig::from_json(&json!({
            "customHandler": {"description": {"defaultExecutablePath": "h"}},
            "extensions": {"http": {"routePrefix": ""}}
        }))
        .expect("valid");
        assert_eq!(config.route_prefix, "");
    }

    #[test]
    fn missing_or_empty_executables_are_errors() {
        assert!(matches!(
            HostConfig::from_json(&json!({"version": "2.0"})),
            Err(ConfigError::NoCustomHandler)
        ));
        let empty = json!({"customHandler": {"description": {"defaultExecutablePath": " "}}});
        assert!(matches!(
            HostConfig::from_json(&empty),
            Err(ConfigError::HostJson(message)) if message.contains("defaultExecutablePath")
        ));
        let not_a_list = json!({"customHandler": {"description": {
            "defaultExecutablePath": "h", "arguments": "serve"}}});
        assert!(HostConfig::from_json(&not_a_list).is_err());
    }

    #[test]
    fn timespans_parse_as_dotnet_reads_them() {
        let secs = |s| Some(Some(Duration::from_secs(s)));
        assert_eq!(parse_timespan("00:05:00"), secs(300));
        assert_eq!(parse_timespan("01:00"), secs(3600));
        assert_eq!(parse_timespan("1.02:03:04"), secs(93_784));
        assert_eq!(parse_timespan("2"), secs(172_800));
        assert_eq!(
            parse_timespan("00:00:01.5"),
            Some(Some(Duration::from_millis(1500)))
        );
        assert_eq!(parse_timespan("-1"), Some(None));
        assert_eq!(parse_timespan("00:61:00"), None);
        assert_eq!(parse_timespan("five minutes"), None);
        assert_eq!(parse_timespan("-2"), None);
    }
}
