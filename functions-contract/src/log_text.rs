//! Log text that stays one line. The handler's log lines and the Functions
//! host stand-in's console carry text from requests and guests, and a reader
//! may split lines the Unicode way or show them on a terminal. So every
//! character that can end a line (CR, LF, VT, FF, NEL, U+2028, U+2029) or
//! steer a terminal or the text's direction (the other C0 and C1 controls,
//! such as the 8-bit CSI U+009B, and the bidi marks, embeddings, overrides
//! and isolates) is written as an escape.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a log line as it is.
pub fn is_unsafe(c: char) -> bool {
    // `is_control` is Unicode's Cc: C0, DEL and C1 (NEL, CSI, ...).
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{061C}' | '\u{200E}' | '\u{200F}' // bidi marks
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
        )
}

/// `text` with each unsafe character escaped as Rust writes it (`\n`,
/// `\u{2028}`), for text lines.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// Serialized JSON with each unsafe character escaped as JSON does
/// (`\u2028`). Outside strings JSON has none of these characters, so the
/// result is the same JSON value.
pub fn escape_json(json: String) -> String {
    if !json.chars().any(is_unsafe) {
        return json;
    }
    let mut escaped = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_unsafe(c) {
            // Every unsafe character is in the Basic Multilingual Plane.
            let _ = write!(escaped, "\\u{:04x}", u32::from(c));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORGERS: [char; 10] = [
        '\n', '\r', '\u{0b}', '\u{0c}', '\u{85}', '\u{9b}', '\u{2028}', '\u{2029}', '\u{202e}',
        '\u{2066}',
    ];

    #[test]
    fn every_line_breaker_and_steering_character_is_escaped() {
        for c in FORGERS {
            let text = format!("ok{c}[Error] forged");
            let escaped = escape(&text);
            assert!(!escaped.contains(c), "{c:?}: {escaped}");
            assert!(escaped.starts_with("ok\\"), "{escaped}");
        }
        assert!(matches!(escape("plain text, é and 😀"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_the_same_value() {
        for c in FORGERS {
            let value = serde_json::json!({ "message": format!("ok{c}[Error] forged") });
            let line = escape_json(value.to_string());
            assert!(!line.contains(c), "{c:?}: {line}");
            let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            assert_eq!(parsed, value);
        }
    }
}
