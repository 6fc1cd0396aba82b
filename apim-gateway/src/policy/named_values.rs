//! Named values: `{{name}}` in a policy document (or a backend's
//! credentials) is replaced by the value before the XML is parsed, as APIM
//! does (learn.microsoft.com/azure/api-management/api-management-howto-properties).

use std::collections::BTreeMap;

/// The named values, resolved at start-up.
///
/// Secret ones are substituted like the others; nothing the gateway logs
/// holds a named value, a header value or a query string.
#[derive(Debug, Clone, Default)]
pub struct NamedValues {
    values: BTreeMap<String, String>,
}

/// A `{{name}}` that no named value defines, at `offset` in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undefined {
    /// The name.
    pub name: String,
    /// Byte offset of the `{{`.
    pub offset: usize,
}

impl NamedValues {
    /// Adds one.
    pub fn insert(&mut self, name: &str, value: String) {
        self.values.insert(name.to_owned(), value);
    }

    /// Whether `name` is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// `text` with every `{{name}}` replaced.
    pub fn substitute(&self, text: &str) -> Result<String, Undefined> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut consumed = 0;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else { break };
            let name = &after[..end];
            // Only a plausible name is a reference: C# code such as a
            // regex quantifier `{1,128}` never doubles its braces, but a
            // block body might hold `{{` with spaces.
            let is_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            out.push_str(&rest[..start]);
            if is_name {
                let value = self.values.get(name).ok_or_else(|| Undefined {
                    name: name.to_owned(),
                    offset: consumed + start,
                })?;
                out.push_str(value);
                let used = start + 2 + end + 2;
                consumed += used;
                rest = &rest[used..];
            } else {
                out.push_str("{{");
                consumed += start + 2;
                rest = &rest[start + 2..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_replaced_and_unknown_ones_refused() {
        let mut values = NamedValues::default();
        values.insert("a-b", "x".to_owned());
        assert_eq!(
            values.substitute("<v>{{a-b}}</v>").as_deref(),
            Ok("<v>x</v>")
        );
        assert_eq!(
            values.substitute("@{ {{ x }} }").as_deref(),
            Ok("@{ {{ x }} }")
        );
        assert_eq!(
            values.substitute("ok {{a-b}} {{nope}}"),
            Err(Undefined {
                name: "nope".to_owned(),
                offset: 11
            })
        );
    }
}
