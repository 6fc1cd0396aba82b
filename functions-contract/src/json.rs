//! JSON as the .NET host reads and writes it: configuration files with
//! comments, property names matched case-insensitively (the last of two
//! spellings wins, as with configuration binding and Newtonsoft), scalars
//! converted the way binding converts its strings (`"true"` binds to a bool,
//! `5` to a string), and values turned into text as Newtonsoft's
//! `JToken.ToString()` does (objects indented by two spaces).

use serde_json::Value;

/// Parses `text`, ignoring a UTF-8 byte order mark and `//` and `/* */`
/// comments outside strings (the .NET JSON configuration reader skips them).
pub fn parse(text: &str) -> serde_json::Result<Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(&strip_comments(text))
}

/// `text` with comments replaced by spaces (so error positions still match).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut previous = ' ';
                for c in chars.by_ref() {
                    if previous == '*' && c == '/' {
                        break;
                    }
                    out.push(if c == '\n' { '\n' } else { ' ' });
                    previous = c;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The member `name` of `object`, matched case-insensitively; `null` counts
/// as absent, as it does for configuration binding.
pub fn get<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
        .next_back()
        .filter(|value| !value.is_null())
}

/// The value at `path` (member names, case-insensitive).
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, name| get(value, name))
}

/// A scalar as the string configuration binding sees: strings as they are,
/// numbers as written, booleans as .NET prints them (`True`/`False`).
pub fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(true) => Some("True".to_owned()),
        Value::Bool(false) => Some("False".to_owned()),
        _ => None,
    }
}

/// A bool: JSON `true`/`false`, or a string spelling them in any case.
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// An array of scalars, each as [`scalar`] reads it.
pub fn string_list(value: &Value) -> Option<Vec<String>> {
    value.as_array()?.iter().map(scalar).collect()
}

/// `long.TryParse(text, NumberStyles.Integer, InvariantCulture)`: optional
/// surrounding white space and sign, then decimal digits.
pub fn integer(text: &str) -> Option<i64> {
    let text = text.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.strip_prefix('+').unwrap_or(text).parse().ok()
}

/// A value as text, the way the host writes an object it got from
/// Newtonsoft: strings as they are, objects and arrays as indented JSON
/// (`JToken.ToString()`), booleans as `True`/`False`, null as nothing.
pub fn dotnet_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Object(_) | Value::Array(_) => indented(value),
        scalar_value => scalar(scalar_value).unwrap_or_default(),
    }
}

/// Newtonsoft's `Formatting.Indented`: two spaces, `"name": value`, which is
/// also what serde_json's pretty printer writes.
pub fn indented(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn comments_are_skipped_outside_strings() {
        let value =
            parse("\u{feff}{ // the handler\n \"a\": \"http://x/*y*/\", /* block\n */ \"b\": 1 }")
                .expect("valid");
        assert_eq!(value, json!({"a": "http://x/*y*/", "b": 1}));
        let escaped = parse(r#"{"a": "quote \" // not a comment"}"#).expect("valid");
        assert_eq!(escaped["a"], "quote \" // not a comment");
    }

    #[test]
    fn names_match_in_any_case_and_the_last_spelling_wins() {
        let value =
            json!({"CustomHandler": {"Description": 1}, "customhandler": {"description": 2}});
        assert_eq!(
            at(&value, &["customHandler", "DESCRIPTION"]),
            Some(&json!(2))
        );
        assert_eq!(get(&json!({"a": null}), "a"), None);
    }

    #[test]
    fn scalars_convert_as_configuration_binding_does() {
        assert_eq!(boolean(&json!("True")), Some(true));
        assert_eq!(boolean(&json!(false)), Some(false));
        assert_eq!(boolean(&json!("yes")), None);
        assert_eq!(scalar(&json!(7071)), Some("7071".to_owned()));
        assert_eq!(scalar(&json!(true)), Some("True".to_owned()));
        assert_eq!(
            string_list(&json!(["serve", 1])),
            Some(vec!["serve".to_owned(), "1".to_owned()])
        );
        assert_eq!(string_list(&json!("serve")), None);
    }

    #[test]
    fn integers_parse_as_dotnet_parses_them() {
        assert_eq!(integer(" +42 "), Some(42));
        assert_eq!(integer("-7"), Some(-7));
        assert_eq!(integer("4x"), None);
        assert_eq!(integer("+"), None);
        assert_eq!(integer("1.0"), None);
    }

    #[test]
    fn values_become_text_as_newtonsoft_prints_them() {
        assert_eq!(dotnet_text(&json!("verbatim {")), "verbatim {");
        assert_eq!(
            dotnet_text(&json!({"ok": true, "list": [1, {"a": null}], "empty": {}})),
            "{\n  \"ok\": true,\n  \"list\": [\n    1,\n    {\n      \"a\": null\n    }\n  ],\n  \"empty\": {}\n}"
        );
        assert_eq!(dotnet_text(&json!(false)), "False");
        assert_eq!(dotnet_text(&json!(1.5)), "1.5");
        assert_eq!(dotnet_text(&json!(null)), "");
    }
}
