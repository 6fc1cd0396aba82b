//! The function app folder as the Functions host reads it: `host.json`, every
//! `*/function.json` (the folder name is the function name) and, for local
//! runs, `local.settings.json`.

use std::path::{Path, PathBuf};

use crate::json;
use crate::{FunctionConfig, HostConfig, LocalSettings};

/// Why the app cannot be started at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not JSON.
    #[error("{} is not valid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: serde_json::Error,
    },
    /// `host.json` describes no custom handler.
    #[error(
        "host.json has no customHandler (or httpWorker) section: this is not a custom handler app"
    )]
    NoCustomHandler,
    /// `host.json` has a setting the host refuses.
    #[error("host.json: {0}")]
    HostJson(String),
    /// `local.settings.json` is not what `func start` reads.
    #[error("local.settings.json: {0}")]
    LocalSettings(String),
}

impl ConfigError {
    pub(crate) fn host_json(message: String) -> Self {
        ConfigError::HostJson(message)
    }
}

/// A function app, read from its folder.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The app root, absolute.
    pub root: PathBuf,
    /// `host.json`.
    pub host: HostConfig,
    /// The functions whose `function.json` could be read, by name.
    pub functions: Vec<FunctionConfig>,
    /// Functions whose `function.json` could not be read: the host reports
    /// them in error and runs the others.
    pub broken: Vec<BrokenFunction>,
    /// `local.settings.json`, or nothing when the file is absent.
    pub settings: LocalSettings,
}

/// A function whose `function.json` could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenFunction {
    /// The function's name (its folder).
    pub name: String,
    /// Why it is in error.
    pub error: String,
}

impl AppConfig {
    /// Reads the app in `root`.
    pub fn load(root: &Path) -> Result<Self, ConfigError> {
        let root = std::path::absolute(root).map_err(|source| ConfigError::Read {
            path: root.to_owned(),
            source,
        })?;
        let host = HostConfig::from_json(&read_json(&root.join("host.json"))?)?;
        let settings_path = root.join("local.settings.json");
        let settings = if settings_path.is_file() {
            LocalSettings::from_json(&read_json(&settings_path)?)?
        } else {
            LocalSettings::default()
        };

        let mut folders = Vec::new();
        let entries = std::fs::read_dir(&root).map_err(|source| ConfigError::Read {
            path: root.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path().join("function.json");
            if path.is_file() {
                folders.push((entry.file_name().to_string_lossy().into_owned(), path));
            }
        }
        folders.sort();
        let mut functions = Vec::new();
        let mut broken = Vec::new();
        for (name, path) in folders {
            match read_json(&path)
                .map_err(|e| e.to_string())
                .and_then(|json| FunctionConfig::from_json(&name, &json))
            {
                Ok(function) => functions.push(function),
                Err(error) => broken.push(BrokenFunction { name, error }),
            }
        }
        Ok(AppConfig {
            root,
            host,
            functions,
            broken,
            settings,
        })
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    json::parse(&text).map_err(|source| ConfigError::Json {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_function_app() {
        let app = AppConfig::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../functionapp"
        )))
        .expect("the function app loads");
        assert!(app.root.is_absolute());
        let names: Vec<_> = app.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["catalog-health", "catalog-item", "openapi"]);
        assert!(app.broken.is_empty());
    }

    #[test]
    fn a_missing_host_json_names_the_file() {
        let error = AppConfig::load(Path::new("/nonexistent-app")).expect_err("no app");
        assert!(
            error.to_string().contains("/nonexistent-app/host.json"),
            "{error}"
        );
    }
}
