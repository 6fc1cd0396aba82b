//! The one structured log line per handled request. The guest writes it to
//! stderr as JSON; the host turns it into a `tracing` event, so it reads
//! `[Information] Handled APIM backend request item_id=42 ...` in the console.

use crate::json;

/// The message of the per-request line.
pub const HANDLED_REQUEST: &str = "Handled APIM backend request";

/// Longest `item_id` logged: the raw path segment is client input.
const MAX_LOGGED_ITEM_ID: usize = 64;

/// The JSON line (newline-terminated) for one handled request. `item_id` is
/// the raw path segment of an item request, absent for other routes.
pub fn handled_request(
    item_id: Option<&str>,
    routed_by: &str,
    correlation_id: &str,
    cache_status: &str,
) -> Vec<u8> {
    let mut line = Vec::with_capacity(192);
    line.extend_from_slice(br#"{"level":"info","message":"#);
    json::push_string(&mut line, HANDLED_REQUEST);
    if let Some(item_id) = item_id {
        line.extend_from_slice(br#","item_id":"#);
        json::push_string(&mut line, truncate(item_id, MAX_LOGGED_ITEM_ID));
    }
    for (name, value) in [
        ("routed_by", routed_by),
        ("correlation_id", correlation_id),
        ("cache_status", cache_status),
    ] {
        line.extend_from_slice(format!(r#","{name}":"#).as_bytes());
        json::push_string(&mut line, value);
    }
    line.extend_from_slice(b"}\n");
    line
}

fn truncate(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_json_line_with_the_four_fields_in_order() {
        let line = handled_request(Some("42"), "azure-api-management", "6d9f", "hit");
        assert_eq!(
            String::from_utf8(line).expect("UTF-8"),
            "{\"level\":\"info\",\"message\":\"Handled APIM backend request\",\"item_id\":\"42\",\
             \"routed_by\":\"azure-api-management\",\"correlation_id\":\"6d9f\",\"cache_status\":\"hit\"}\n"
        );
    }

    #[test]
    fn hostile_item_ids_stay_one_bounded_line() {
        let hostile = format!("a\nb\"{}", "é".repeat(200));
        let line = handled_request(Some(&hostile), "g", "c", "bypass");
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let parsed: serde_json::Value = serde_json::from_slice(&line).expect("valid JSON");
        assert_eq!(
            parsed["item_id"].as_str().map(|id| id.chars().count()),
            Some(MAX_LOGGED_ITEM_ID)
        );
    }
}
