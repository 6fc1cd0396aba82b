//! Reading APIM policy documents with a real XML parser: the sections, the
//! statements in them, the headers they set, the named values they use, and
//! what a request to the backend carries once the API and operation scopes
//! have run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use roxmltree::{Document, Node};

use crate::files;

/// The sections of a policy document, in the order APIM requires.
pub const SECTIONS: [&str; 4] = ["inbound", "backend", "outbound", "on-error"];

/// A policy file as deployed.
pub struct PolicyFile {
    pub path: PathBuf,
    pub text: String,
}

impl PolicyFile {
    pub fn load(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            text: files::read(path),
        }
    }

    /// The parsed document; panics unless the file is well-formed XML.
    pub fn document(&self) -> Document<'_> {
        Document::parse(&self.text)
            .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", self.path.display()))
    }

    /// Names used as `{{name}}` anywhere in the file, comments included:
    /// APIM substitutes named values in the text before it parses it.
    pub fn named_values(&self) -> BTreeSet<String> {
        named_value_references(&self.text)
    }
}

/// Names used as `{{name}}` in `text`.
pub fn named_value_references(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let closing = after.find("}}").expect("every {{ is closed");
        // The last two of a run of braces close it: in Bicep's
        // '{{${name}}}' the first one ends the interpolation.
        let run = after[closing..].bytes().take_while(|&b| b == b'}').count();
        let end = closing + run - 2;
        names.insert(after[..end].to_owned());
        rest = &after[end + 2..];
    }
    names
}

/// A section (`inbound`, ...) of a policy document.
pub fn section<'a, 'input>(document: &'a Document<'input>, name: &str) -> Node<'a, 'input> {
    document
        .root_element()
        .children()
        .find(|node| node.has_tag_name(name))
        .unwrap_or_else(|| panic!("no <{name}> section"))
}

/// The element children of `node`, in order.
pub fn statements<'a, 'input>(node: Node<'a, 'input>) -> Vec<Node<'a, 'input>> {
    node.children().filter(Node::is_element).collect()
}

/// Every element below `node` named `tag`.
pub fn elements<'a, 'input>(node: Node<'a, 'input>, tag: &str) -> Vec<Node<'a, 'input>> {
    node.descendants()
        .filter(|element| element.has_tag_name(tag))
        .collect()
}

/// The one element below `node` named `tag`.
pub fn element<'a, 'input>(node: Node<'a, 'input>, tag: &str) -> Node<'a, 'input> {
    let found = elements(node, tag);
    assert_eq!(
        found.len(),
        1,
        "expected one <{tag}>, found {}",
        found.len()
    );
    found[0]
}

/// An attribute that must be there.
pub fn attribute<'a>(node: Node<'a, '_>, name: &str) -> &'a str {
    node.attribute(name)
        .unwrap_or_else(|| panic!("<{}> has no {name} attribute", node.tag_name().name()))
}

/// Position of the first `tag` statement in `statements`.
pub fn position(statements: &[Node<'_, '_>], tag: &str) -> usize {
    statements
        .iter()
        .position(|node| node.has_tag_name(tag))
        .unwrap_or_else(|| panic!("no <{tag}> statement"))
}

/// Whether `value` is a policy expression rather than a literal.
pub fn is_expression(value: &str) -> bool {
    value.starts_with("@(") || value.starts_with("@{")
}

/// One `set-header` (or `set-query-parameter`) statement.
#[derive(Debug, Clone)]
pub struct SetHeader {
    pub name: String,
    pub exists_action: String,
    /// The text of its `<value>`, trimmed; `None` without one.
    pub value: Option<String>,
}

impl SetHeader {
    pub fn from_node(node: Node<'_, '_>) -> Self {
        Self {
            name: attribute(node, "name").to_owned(),
            exists_action: node
                .attribute("exists-action")
                .unwrap_or("override")
                .to_owned(),
            value: node
                .children()
                .find(|child| child.has_tag_name("value"))
                .and_then(|value| value.text())
                .map(|text| text.trim().to_owned()),
        }
    }
}

/// Every `tag` (`set-header` or `set-query-parameter`) below `node`.
pub fn settings(node: Node<'_, '_>, tag: &str) -> Vec<SetHeader> {
    elements(node, tag)
        .into_iter()
        .map(SetHeader::from_node)
        .collect()
}

/// The one `set-header` below `node` for header `name` (any case).
pub fn header(node: Node<'_, '_>, name: &str) -> SetHeader {
    let found: Vec<SetHeader> = settings(node, "set-header")
        .into_iter()
        .filter(|header| header.name.eq_ignore_ascii_case(name))
        .collect();
    assert_eq!(found.len(), 1, "expected one set-header {name}: {found:?}");
    found[0].clone()
}

/// The headers the inbound sections add to the backend request (lower-case
/// names), the way APIM runs them: the operation's inbound statements in
/// order, with `<base />` standing for the API's, where later statements
/// override earlier ones and `delete` removes. Values are as written, so an
/// expression stays an expression.
pub fn backend_request_headers(
    api: &Document<'_>,
    operation: &Document<'_>,
) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    for node in statements(section(operation, "inbound")) {
        if node.has_tag_name("base") {
            for api_node in statements(section(api, "inbound")) {
                apply_set_header(&mut headers, api_node);
            }
        } else {
            apply_set_header(&mut headers, node);
        }
    }
    headers
}

fn apply_set_header(headers: &mut BTreeMap<String, String>, node: Node<'_, '_>) {
    if !node.has_tag_name("set-header") {
        return;
    }
    let header = SetHeader::from_node(node);
    let name = header.name.to_ascii_lowercase();
    match (header.exists_action.as_str(), header.value) {
        ("delete", _) => {
            headers.remove(&name);
        }
        ("override", Some(value)) => {
            headers.insert(name, value);
        }
        (action, value) => panic!("set-header {name}: unexpected {action} with {value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_value_references_are_found_in_text() {
        let names = named_value_references("<a x=\"{{one}}\">{{two}} and {{one}}</a>");
        assert_eq!(names, BTreeSet::from(["one".to_owned(), "two".to_owned()]));
        let interpolated = named_value_references("'{{${keyName}}}' '{{plain}}'");
        assert_eq!(
            interpolated,
            BTreeSet::from(["${keyName}".to_owned(), "plain".to_owned()])
        );
    }

    #[test]
    fn operation_statements_run_around_the_api_statements() {
        let api = Document::parse(
            "<policies><inbound><base /><set-header name=\"A\"><value>api</value></set-header>\
             <set-header name=\"B\"><value>api</value></set-header></inbound></policies>",
        )
        .expect("XML");
        let operation = Document::parse(
            "<policies><inbound><set-header name=\"c\"><value>early</value></set-header><base />\
             <set-header name=\"b\"><value>operation</value></set-header>\
             <set-header name=\"a\" exists-action=\"delete\" /></inbound></policies>",
        )
        .expect("XML");
        let headers = backend_request_headers(&api, &operation);
        assert_eq!(
            headers.into_iter().collect::<Vec<_>>(),
            [
                ("b".to_owned(), "operation".to_owned()),
                ("c".to_owned(), "early".to_owned())
            ]
        );
    }
}
