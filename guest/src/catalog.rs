//! The catalog, compiled in from `data/catalog.json` by `build.rs`.

/// One catalog item, rendered at build time.
#[derive(Debug)]
pub struct Item {
    /// The item's id (see [`crate::ITEM_ID_PATTERN`]).
    pub id: u32,
    /// The item's JSON object members without the braces, `item_id` first.
    pub json_members: &'static str,
    /// Strong ETag of the item's data, quotes included.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/catalog_data.rs"));

/// Every item, sorted by id.
pub fn items() -> &'static [Item] {
    &ITEMS
}

/// The item with this id, if the catalog has one.
pub fn find(id: u32) -> Option<&'static Item> {
    ITEMS
        .binary_search_by_key(&id, |item| item.id)
        .ok()
        .map(|index| &ITEMS[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_real_data_including_item_42() {
        assert!(items().len() >= 50);
        let item = find(42).expect("item 42 is in the catalog");
        assert!(item.json_members.starts_with(r#""item_id":"42","#));
        let parsed: serde_json::Value = serde_json::from_str(&format!("{{{}}}", item.json_members))
            .expect("members form an object");
        assert_eq!(parsed["item_id"], "42");
        assert!(parsed["name"].is_string());
    }

    #[test]
    fn lookups_hit_every_item_and_miss_gaps() {
        for item in items() {
            assert_eq!(find(item.id).map(|found| found.id), Some(item.id));
        }
        assert!(items().windows(2).all(|pair| pair[0].id < pair[1].id));
        assert!(find(13).is_none(), "13 is a retired id, a gap in the data");
        assert!(find(999_999_999).is_none());
    }

    #[test]
    fn etags_are_strong_and_distinct() {
        let mut etags: Vec<&str> = items().iter().map(|item| item.etag).collect();
        assert!(
            etags
                .iter()
                .all(|etag| etag.starts_with('"') && etag.ends_with('"') && etag.len() == 18)
        );
        etags.sort_unstable();
        etags.dedup();
        assert_eq!(etags.len(), items().len());
    }
}
