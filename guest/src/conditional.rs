//! Conditional GET: `If-None-Match` against an entity tag (RFC 9110 §13.1.2).

/// Whether an `If-None-Match` header value matches `etag`, meaning the client's
/// copy is current and the answer is `304 Not Modified`.
///
/// `*` matches any current representation. Otherwise the value is a list of
/// entity tags compared weakly (a `W/` prefix is ignored), as RFC 9110 requires
/// for `If-None-Match`. A malformed list matches nothing, so the client gets
/// the full response rather than a wrong `304`.
pub fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let wanted = opaque_tag(etag);
    if header.trim() == "*" {
        return true;
    }
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let tag_start = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(quoted) = tag_start.strip_prefix('"') else {
            return false;
        };
        let Some(end) = quoted.find('"') else {
            return false;
        };
        if Some(&quoted[..end]) == wanted {
            return true;
        }
        rest = &quoted[end + 1..];
    }
}

/// The opaque part of a strong or weak entity tag: `"abc"` and `W/"abc"` give `abc`.
fn opaque_tag(etag: &str) -> Option<&str> {
    etag.strip_prefix("W/")
        .unwrap_or(etag)
        .strip_prefix('"')?
        .strip_suffix('"')
}

#[cfg(test)]
mod tests {
    use super::if_none_match_matches as matches;

    const ETAG: &str = "\"0123456789abcdef\"";

    #[test]
    fn exact_weak_listed_and_star_match() {
        assert!(matches(ETAG, ETAG));
        assert!(matches("W/\"0123456789abcdef\"", ETAG));
        assert!(matches("\"other\", \"0123456789abcdef\"", ETAG));
        assert!(
            matches("\"a,b\",W/\"0123456789abcdef\"", ETAG),
            "commas may appear inside a tag"
        );
        assert!(matches(" * ", ETAG));
    }

    #[test]
    fn others_and_malformed_values_do_not_match() {
        assert!(!matches("\"other\"", ETAG));
        assert!(!matches("0123456789abcdef", ETAG), "unquoted");
        assert!(!matches("\"0123456789abcdef", ETAG), "unterminated");
        assert!(!matches("", ETAG));
        assert!(!matches("W/", ETAG));
        assert!(!matches("\"0123456789abcde\"", ETAG));
    }
}
