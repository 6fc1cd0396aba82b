//! An API's operations, from the OpenAPI document it imports: each path
//! and method with its `operationId`, which names the operation (lower-cased,
//! as the import names it) and so picks its policy.

use std::path::Path;

use anyhow::{Context as _, bail};

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The import's name: the operationId lower-cased.
    pub name: String,
    /// The operationId as written.
    pub operation_id: String,
    /// `GET`, ...
    pub method: http::Method,
    /// `/api/catalog/{item_id}`.
    pub url_template: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Parameter(String),
}

/// The operations of one API, most specific template first.
#[derive(Debug, Clone)]
pub struct Operations(Vec<Operation>);

/// A request matched to an operation.
#[derive(Debug)]
pub struct Matched<'a> {
    /// The operation.
    pub operation: &'a Operation,
    /// Template parameters, by name, percent-decoding left as sent.
    pub parameters: Vec<(String, String)>,
}

impl Operations {
    /// Reads the operations of the OpenAPI 3.0 document at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let document: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let Some(paths) = document.get("paths").and_then(|p| p.as_object()) else {
            bail!("{}: no paths", path.display());
        };
        let mut operations = Vec::new();
        for (template, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                let Ok(method) = method.to_ascii_uppercase().parse::<http::Method>() else {
                    continue;
                };
                let Some(id) = operation.get("operationId").and_then(|id| id.as_str()) else {
                    // APIM names such operations after method and path; the
                    // catalog gives every operation an id, so require one.
                    bail!("{}: {method} {template} has no operationId", path.display());
                };
                operations.push(Operation {
                    name: id.to_lowercase(),
                    operation_id: id.to_owned(),
                    method,
                    url_template: template.clone(),
                    segments: segments(template),
                });
            }
        }
        // A literal segment is more specific than a parameter: health
        // before {item_id}.
        operations.sort_by_key(|op| {
            op.segments
                .iter()
                .map(|s| matches!(s, Segment::Parameter(_)))
                .collect::<Vec<_>>()
        });
        Ok(Operations(operations))
    }

    /// Every operation.
    pub fn iter(&self) -> impl Iterator<Item = &Operation> {
        self.0.iter()
    }

    /// The operation for `method` and `path` (relative to the API's path).
    pub fn find(&self, method: &http::Method, path: &str) -> Option<Matched<'_>> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.0
            .iter()
            .filter(|op| op.method == method)
            .find_map(|op| {
                if op.segments.len() != parts.len() {
                    return None;
                }
                let mut parameters = Vec::new();
                for (segment, part) in op.segments.iter().zip(&parts) {
                    match segment {
                        Segment::Literal(text) if text == part => {}
                        Segment::Parameter(name) if !part.is_empty() => {
                            parameters.push((name.clone(), (*part).to_owned()));
                        }
                        _ => return None,
                    }
                }
                Some(Matched {
                    operation: op,
                    parameters,
                })
            })
    }
}

fn segments(template: &str) -> Vec<Segment> {
    template
        .trim_start_matches('/')
        .split('/')
        .map(
            |part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => Segment::Parameter(name.to_owned()),
                None => Segment::Literal(part.to_owned()),
            },
        )
        .collect()
}
