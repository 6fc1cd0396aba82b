//! Just enough Bicep to follow the wiring in `apim/*.bicep`: resource and
//! module declarations (symbol, type, `existing`), their properties by nesting
//! depth, the files they load with `loadTextContent`, and the values modules
//! pass to a file's parameters. It understands the subset
//! these files use: single-quoted strings without quotes inside
//! interpolations, and `//` comments.

use std::path::{Path, PathBuf};

use crate::files;

/// What a module deploys as: Bicep compiles each `module` to a nested deployment.
pub const MODULE: &str = "Microsoft.Resources/deployments";

/// A `resource` or `module` declaration.
#[derive(Debug)]
pub struct Resource {
    /// The `.bicep` file it is in.
    pub file: PathBuf,
    pub symbol: String,
    /// The type without its API version, e.g. `Microsoft.ApiManagement/service/backends`,
    /// or [`MODULE`].
    pub type_name: String,
    pub existing: bool,
    /// A module's file, resolved against this one's folder.
    pub template: Option<PathBuf>,
    /// The body's lines, each with the brace depth at its start (1 directly
    /// inside the resource, 2 inside `properties: {`, ...).
    lines: Vec<(usize, String)>,
}

impl Resource {
    /// The value text of the first `key:` at `depth`.
    pub fn property(&self, key: &str, depth: usize) -> Option<&str> {
        let prefix = format!("{key}:");
        self.lines.iter().find_map(|(line_depth, line)| {
            let line = line.trim();
            (*line_depth == depth && line.starts_with(&prefix)).then(|| line[prefix.len()..].trim())
        })
    }

    /// The string literal of the first `key:` at `depth`; panics when it is
    /// missing or not a plain literal.
    pub fn literal(&self, key: &str, depth: usize) -> String {
        let value = self
            .property(key, depth)
            .unwrap_or_else(|| panic!("{}: no {key}", self.symbol));
        string_literal(value).unwrap_or_else(|| {
            panic!(
                "{}: {key} is {value}, not a plain string literal",
                self.symbol
            )
        })
    }

    /// The resource's `name`, a plain literal.
    pub fn name(&self) -> String {
        self.literal("name", 1)
    }

    /// The names it is deployed with: its literal `name`, or, when that is
    /// one of its file's parameters, each value a module passes for it.
    pub fn names(&self, resources: &[Resource]) -> Vec<String> {
        let name = self
            .property("name", 1)
            .unwrap_or_else(|| panic!("{}: no name", self.symbol));
        match string_literal(name) {
            Some(literal) => vec![literal],
            None => parameter_values(resources, &self.file, name),
        }
    }

    /// The symbol of its `parent`.
    pub fn parent(&self) -> &str {
        self.property("parent", 1)
            .unwrap_or_else(|| panic!("{} has no parent", self.symbol))
    }

    /// The files it loads with `loadTextContent`, resolved against its file's folder.
    pub fn loaded_files(&self) -> Vec<PathBuf> {
        let folder = self.file.parent().expect("a file is in a folder");
        let mut loaded = Vec::new();
        for (_, line) in &self.lines {
            let mut rest = line.as_str();
            while let Some(start) = rest.find("loadTextContent('") {
                let after = &rest[start + "loadTextContent('".len()..];
                let end = after.find('\'').expect("a closed string");
                loaded.push(folder.join(&after[..end]));
                rest = &after[end..];
            }
        }
        loaded
    }

    /// The body's text.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(_, line)| line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `'text'` as `text`, when it is one literal without interpolation.
pub fn string_literal(value: &str) -> Option<String> {
    let inner = value.strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.contains('\'') && !inner.contains("${")).then(|| inner.to_owned())
}

/// Every `.bicep` file below `apim/`.
pub fn files() -> Vec<PathBuf> {
    files::files_under(&files::apim_dir(), "bicep")
}

/// Every resource declared in `apim/`.
pub fn resources() -> Vec<Resource> {
    files()
        .iter()
        .flat_map(|file| parse(file, &files::read(file)))
        .collect()
}

/// Each literal value the modules deploying `file` pass for its parameter
/// `parameter`; panics when none does, or one passes something else.
pub fn parameter_values(resources: &[Resource], file: &Path, parameter: &str) -> Vec<String> {
    let values: Vec<String> = deployments_of(resources, file)
        .into_iter()
        .map(|module| {
            let value = module
                .property(parameter, 2)
                .unwrap_or_else(|| panic!("module {} passes no {parameter}", module.symbol));
            string_literal(value).unwrap_or_else(|| {
                panic!(
                    "module {}: {parameter} is {value}, not a plain string literal",
                    module.symbol
                )
            })
        })
        .collect();
    assert!(
        !values.is_empty(),
        "no module deploys {} with {parameter}",
        file.display()
    );
    values
}

/// The modules that deploy `file`.
pub fn deployments_of<'r>(resources: &'r [Resource], file: &Path) -> Vec<&'r Resource> {
    let file = files::canonical(file);
    of_type(resources, MODULE)
        .into_iter()
        .filter(|module| module.template.as_deref().map(files::canonical) == Some(file.clone()))
        .collect()
}

/// `text` with `${parameter}` replaced by each value modules pass for it
/// (text from `file`; one interpolation at most).
pub fn with_parameter_values(resources: &[Resource], file: &Path, text: &str) -> Vec<String> {
    let Some((before, rest)) = text.split_once("${") else {
        return vec![text.to_owned()];
    };
    let (parameter, after) = rest.split_once('}').expect("a closed interpolation");
    parameter_values(resources, file, parameter)
        .into_iter()
        .map(|value| format!("{before}{value}{after}"))
        .collect()
}

/// The resources of type `type_name`.
pub fn of_type<'r>(resources: &'r [Resource], type_name: &str) -> Vec<&'r Resource> {
    resources
        .iter()
        .filter(|resource| resource.type_name == type_name)
        .collect()
}

/// The one resource of type `type_name`.
pub fn one_of_type<'r>(resources: &'r [Resource], type_name: &str) -> &'r Resource {
    let found = of_type(resources, type_name);
    assert_eq!(
        found.len(),
        1,
        "expected one {type_name}, found {}",
        found.len()
    );
    found[0]
}

/// The resource declared as `symbol` in the same file as `near`.
pub fn by_symbol<'r>(resources: &'r [Resource], near: &Resource, symbol: &str) -> &'r Resource {
    resources
        .iter()
        .find(|resource| resource.file == near.file && resource.symbol == symbol)
        .unwrap_or_else(|| panic!("no resource {symbol} in {}", near.file.display()))
}

/// The policy files attached by `service/policies` (the global one),
/// `apis/policies` (the API's) and `apis/operations/policies` (with their
/// operation resource's name).
pub struct Attachments {
    pub service: PathBuf,
    pub api: PathBuf,
    pub operations: Vec<(String, PathBuf)>,
}

pub fn attachments(resources: &[Resource]) -> Attachments {
    let service = one_loaded_file(one_of_type(
        resources,
        "Microsoft.ApiManagement/service/policies",
    ));
    let api = one_loaded_file(one_of_type(
        resources,
        "Microsoft.ApiManagement/service/apis/policies",
    ));
    let operations = of_type(
        resources,
        "Microsoft.ApiManagement/service/apis/operations/policies",
    )
    .into_iter()
    .map(|policy| {
        let operation = by_symbol(resources, policy, policy.parent());
        assert_eq!(
            operation.type_name, "Microsoft.ApiManagement/service/apis/operations",
            "{} is attached to {}",
            policy.symbol, operation.symbol
        );
        (operation.name(), one_loaded_file(policy))
    })
    .collect();
    Attachments {
        service,
        api,
        operations,
    }
}

fn one_loaded_file(resource: &Resource) -> PathBuf {
    let loaded = resource.loaded_files();
    assert_eq!(loaded.len(), 1, "{} loads {loaded:?}", resource.symbol);
    files::canonical(&loaded[0])
}

/// Splits a Bicep file into its resource declarations.
fn parse(file: &Path, text: &str) -> Vec<Resource> {
    let mut resources = Vec::new();
    let mut current: Option<Resource> = None;
    let mut depth = 0;
    for line in text.lines().map(without_comment) {
        let depth_at_start = depth;
        depth = depth_after(line, depth);
        if let Some(resource) = current.as_mut() {
            resource.lines.push((depth_at_start, line.to_owned()));
            if depth == 0 {
                resources.extend(current.take());
            }
        } else if depth_at_start == 0
            && let Some(mut resource) = declaration(file, line)
        {
            if depth == 0 {
                resources.push(resource);
            } else {
                resource.lines.push((depth_at_start, line.to_owned()));
                current = Some(resource);
            }
        }
    }
    assert!(current.is_none(), "{}: unclosed resource", file.display());
    resources
}

/// `resource <symbol> '<type>@<version>' [existing] = {`, or
/// `module <symbol> '<file>' = [if (...)] {`.
fn declaration(file: &Path, line: &str) -> Option<Resource> {
    let (keyword, rest) = line.split_once(' ')?;
    let (symbol, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('\'')?;
    let (quoted, rest) = rest.split_once('\'')?;
    let (type_name, template) = match keyword {
        "resource" => (quoted.split_once('@')?.0.to_owned(), None),
        "module" => (
            MODULE.to_owned(),
            Some(file.parent().expect("a file is in a folder").join(quoted)),
        ),
        _ => return None,
    };
    Some(Resource {
        file: file.to_owned(),
        symbol: symbol.to_owned(),
        type_name,
        existing: rest.trim_start().starts_with("existing"),
        template,
        lines: Vec::new(),
    })
}

/// `line` without its `//` comment.
fn without_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut chars = line.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '\'' => in_string = !in_string,
            '/' if !in_string && chars.peek().is_some_and(|&(_, next)| next == '/') => {
                return &line[..index];
            }
            _ => {}
        }
    }
    line
}

/// The brace and bracket depth after `line` (comment removed), outside strings.
fn depth_after(line: &str, mut depth: usize) -> usize {
    let mut in_string = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                chars.next();
            }
            (_, '\'') => in_string = !in_string,
            (false, '{' | '[') => depth += 1,
            (false, '}' | ']') => depth = depth.checked_sub(1).expect("balanced braces"),
            _ => {}
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
param x string = '{not a brace'
// resource commented 'A/b@1' = {
resource api 'Microsoft.ApiManagement/service/apis@2024-05-01' = {
  parent: apim
  name: 'catalog'
  properties: {
    path: 'catalog' // a comment {
    value: loadTextContent('../x.json')
    list: [
      'a'
    ]
    name: 'nested'
  }
}
resource op 'Microsoft.ApiManagement/service/apis/operations@2024-05-01' existing = {
  parent: api
  name: 'getcatalogitem'
}
module one 'modules/one.bicep' = if (x != '') {
  name: 'deploy-one'
  params: {
    keyName: 'first-key'
  }
}
";

    #[test]
    fn reads_declarations_properties_by_depth_and_loads() {
        let resources = parse(Path::new("/repo/apim/main.bicep"), SAMPLE);
        assert_eq!(resources.len(), 3);
        let api = &resources[0];
        assert_eq!(api.symbol, "api");
        assert_eq!(api.type_name, "Microsoft.ApiManagement/service/apis");
        assert!(!api.existing);
        assert_eq!(api.name(), "catalog");
        assert_eq!(api.property("name", 2), Some("'nested'"));
        assert_eq!(api.literal("path", 2), "catalog");
        assert_eq!(api.loaded_files(), [PathBuf::from("/repo/apim/../x.json")]);
        let op = &resources[1];
        assert!(op.existing);
        assert_eq!(op.parent(), "api");
        assert_eq!(op.name(), "getcatalogitem");
        let module = &resources[2];
        assert_eq!(module.type_name, MODULE);
        assert_eq!(
            module.template.as_deref(),
            Some(Path::new("/repo/apim/modules/one.bicep"))
        );
        assert_eq!(module.property("keyName", 2), Some("'first-key'"));
    }

    #[test]
    fn interpolated_strings_are_not_literals() {
        assert_eq!(string_literal("'abc'"), Some("abc".to_owned()));
        assert_eq!(string_literal("'https://${site.name}'"), None);
        assert_eq!(string_literal("someVariable"), None);
    }
}
