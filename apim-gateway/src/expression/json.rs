//! JSON text as Newtonsoft.Json's `JToken.ToString` writes it: compact for
//! `Formatting.None`, two-space indented for `Formatting.Indented` (the
//! default). Written here rather than with serde_json's writers because
//! Newtonsoft also escapes U+0085, U+2028 and U+2029, and a body must be
//! byte for byte what APIM sends.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value as Json;

/// `token.ToString()`: a string value is its text (no quotes), `null` the
/// empty string, a boolean `True`/`False`, containers indented JSON.
pub(super) fn text(token: &Json) -> Cow<'_, str> {
    match token {
        Json::Null => Cow::Borrowed(""),
        Json::Bool(true) => Cow::Borrowed("True"),
        Json::Bool(false) => Cow::Borrowed("False"),
        Json::Number(n) => Cow::Owned(n.to_string()),
        Json::String(s) => Cow::Borrowed(s),
        Json::Array(_) | Json::Object(_) => Cow::Owned(render(token, true)),
    }
}

/// `token.ToString(formatting)`.
pub(super) fn render(token: &Json, indented: bool) -> String {
    let mut out = String::new();
    write_value(&mut out, token, indented, 0);
    out
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_value(out: &mut String, token: &Json, indented: bool, depth: usize) {
    match token {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Json::String(s) => write_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if indented {
                    newline(out, depth + 1);
                }
                write_value(out, item, indented, depth + 1);
            }
            if indented && !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (name, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if indented {
                    newline(out, depth + 1);
                }
                write_string(out, name);
                out.push(':');
                if indented {
                    out.push(' ');
                }
                write_value(out, value, indented, depth + 1);
            }
            if indented && !members.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
    }
}

/// A string in double quotes, escaped as Newtonsoft's
/// `StringEscapeHandling.Default` does: `"`, `\`, control characters and
/// the three Unicode line breaks JavaScript does not allow in strings.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') => {
                // Newtonsoft writes the hex digits in lower case.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
