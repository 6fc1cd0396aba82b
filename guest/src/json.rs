//! Writing JSON string values into pre-rendered documents.

/// Appends `value` to `out` as a JSON string literal, quotes included.
pub(crate) fn push_string(out: &mut Vec<u8>, value: &str) {
    serde_json::to_writer(out, value).expect("writing a string into a Vec cannot fail");
}
