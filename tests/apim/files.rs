//! The files the checks read: `apim/`, the guest's OpenAPI document and the
//! function app's routes.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The workspace root (the parent of `tests/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// `apim/`.
pub fn apim_dir() -> PathBuf {
    workspace().join("apim")
}

/// A file's text; panics with its path.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A file's JSON; panics with its path.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every file below `dir` whose name ends with `.extension`, sorted.
pub fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(files_under(&path, extension));
        } else if path.extension().is_some_and(|ext| ext == extension) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// `path` with `.` and `..` resolved and links followed.
pub fn canonical(path: &Path) -> PathBuf {
    path.canonicalize()
        .unwrap_or_else(|e| panic!("{} does not exist: {e}", path.display()))
}

/// The OpenAPI document the guest serves.
pub fn openapi_path() -> PathBuf {
    workspace().join("guest/openapi.json")
}

/// An operation of the guest's OpenAPI document: its path template and method.
#[derive(Debug, PartialEq, Eq)]
pub struct Operation {
    pub operation_id: String,
    pub path: String,
    pub method: String,
}

/// Every operation of the guest's OpenAPI document.
pub fn openapi_operations() -> Vec<Operation> {
    let document = read_json(&openapi_path());
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            if let Some(operation_id) = operation["operationId"].as_str() {
                operations.push(Operation {
                    operation_id: operation_id.to_owned(),
                    path: path.clone(),
                    method: method.clone(),
                });
            }
        }
    }
    operations
}

/// The URL paths the function app serves (`/<routePrefix>/<route>` of each
/// `functionapp/*/function.json`), as templates like `/api/catalog/{item_id}`.
pub fn function_routes() -> Vec<String> {
    let app = workspace().join("functionapp");
    let host = read_json(&app.join("host.json"));
    let prefix = host["extensions"]["http"]["routePrefix"]
        .as_str()
        .unwrap_or("api");
    let mut routes = Vec::new();
    for path in files_under(&app, "json") {
        if path.file_name().is_some_and(|name| name == "function.json") {
            let function = read_json(&path);
            let bindings = function["bindings"].as_array().expect("bindings");
            for binding in bindings {
                if binding["type"] == "httpTrigger" {
                    let route = binding["route"].as_str().expect("a route");
                    routes.push(format!("/{prefix}/{route}"));
                }
            }
        }
    }
    routes
}
