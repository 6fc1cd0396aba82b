//! The API's OpenAPI 3.1 document, served at `/api/openapi.json` and imported
//! by API Management: one file, `openapi.json` in this crate.

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../openapi.json");

#[cfg(test)]
mod tests {
    use super::DOCUMENT;
    use crate::api::MAX_AGE_SECONDS;

    fn document() -> serde_json::Value {
        serde_json::from_str(DOCUMENT).expect("the document is JSON")
    }

    #[test]
    fn is_openapi_3_1_with_exactly_the_three_operations() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let paths = doc["paths"].as_object().expect("paths");
        let mut operations: Vec<String> = paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .expect("path item")
                    .keys()
                    .map(move |method| format!("{method} {path}"))
            })
            .collect();
        operations.sort();
        assert_eq!(
            operations,
            [
                "get /api/catalog/health",
                "get /api/catalog/{item_id}",
                "get /api/openapi.json"
            ]
        );
    }

    #[test]
    fn states_the_same_rules_the_code_enforces() {
        let doc = document();
        let components = &doc["components"];
        assert_eq!(
            components["parameters"]["ItemId"]["schema"]["pattern"],
            crate::ITEM_ID_PATTERN
        );
        assert_eq!(
            components["schemas"]["CatalogItem"]["properties"]["item_id"]["pattern"],
            crate::ITEM_ID_PATTERN
        );
        assert_eq!(
            components["headers"]["CacheControlPublic"]["schema"]["const"],
            format!("public, max-age={MAX_AGE_SECONDS}")
        );
    }
}
