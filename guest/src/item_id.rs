//! The item id pattern. Shared with `build.rs`, which checks the data file
//! against the same rule the request path is checked against.

/// The documented pattern of `item_id`: a positive decimal integer without
/// leading zeros, at most nine digits.
pub const ITEM_ID_PATTERN: &str = "^[1-9][0-9]{0,8}$";

/// Parses an item id that matches [`ITEM_ID_PATTERN`]; `None` when it does not.
pub fn parse_item_id(raw: &str) -> Option<u32> {
    let bytes = raw.as_bytes();
    let matches =
        (1..=9).contains(&bytes.len()) && bytes[0] != b'0' && bytes.iter().all(u8::is_ascii_digit);
    if matches { raw.parse().ok() } else { None }
}
