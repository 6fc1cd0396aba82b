//! Compiles `data/catalog.json` into the guest: checks every item, renders
//! each item's JSON members and strong ETag once, and writes them sorted by id
//! so a request costs a binary search and a copy, never a parse.

use std::{env, fs, path::PathBuf};

#[path = "src/item_id.rs"]
mod item_id;

const DATA_FILE: &str = "data/catalog.json";
const MIN_ITEMS: usize = 50;

fn main() {
    println!("cargo::rerun-if-changed={DATA_FILE}");
    println!("cargo::rerun-if-changed=src/item_id.rs");
    let text = fs::read_to_string(DATA_FILE).unwrap_or_else(|e| panic!("reading {DATA_FILE}: {e}"));
    let data: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DATA_FILE} is not JSON: {e}"));
    let version = data["version"]
        .as_str()
        .unwrap_or_else(|| panic!("{DATA_FILE}: `version` must be a string"));
    let items = data["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{DATA_FILE}: `items` must be an array"));
    assert!(
        items.len() >= MIN_ITEMS,
        "{DATA_FILE}: at least {MIN_ITEMS} items are expected"
    );

    let mut rendered: Vec<(u32, String, String)> = items.iter().map(render_item).collect();
    rendered.sort_by_key(|(id, ..)| *id);
    if let Some(pair) = rendered.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        panic!("{DATA_FILE}: item_id {} appears twice", pair[0].0);
    }

    let mut out = format!(
        "/// The `version` of `{DATA_FILE}` this guest was built with.\n\
         pub const DATA_VERSION: &str = {version:?};\n\
         static ITEMS: [Item; {}] = [\n",
        rendered.len()
    );
    for (id, members, etag) in &rendered {
        out.push_str(&format!(
            "    Item {{ id: {id}, json_members: {members:?}, etag: {etag:?} }},\n"
        ));
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("catalog_data.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}

/// Returns the item's id, its JSON members (`"item_id":"42",...` without the
/// braces, so the response can append its own), and its strong ETag.
fn render_item(item: &serde_json::Value) -> (u32, String, String) {
    let object = item
        .as_object()
        .unwrap_or_else(|| panic!("{DATA_FILE}: every item must be an object"));
    let raw_id = object
        .get("item_id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("{DATA_FILE}: every item needs a string `item_id`: {item}"));
    let id = item_id::parse_item_id(raw_id).unwrap_or_else(|| {
        panic!(
            "{DATA_FILE}: item_id {raw_id:?} does not match {}",
            item_id::ITEM_ID_PATTERN
        )
    });
    for field in ["sku", "name", "category"] {
        assert!(
            object.get(field).is_some_and(serde_json::Value::is_string),
            "item {id}: `{field}` must be a string"
        );
    }
    let json = serde_json::to_string(object).expect("a JSON value serializes");
    let members = json[1..json.len() - 1].to_owned();
    (
        id,
        members,
        format!("\"{:016x}\"", fnv1a64(json.as_bytes())),
    )
}

/// FNV-1a: a stable content hash for ETags (identity, not security).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
