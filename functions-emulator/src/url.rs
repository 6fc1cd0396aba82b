//! The request URL as ASP.NET Core hands it to the Functions host: path
//! segments decoded for routing, and the query parsed into a collection whose
//! keys are case-insensitive and whose repeated values are kept together.

/// The path's segments, percent-decoded as Kestrel decodes a path (except
/// `%2F`, which stays encoded so it cannot split a segment). A trailing slash
/// is ignored, as routing ignores it; `/` has no segments.
pub(crate) fn path_segments(path: &str) -> Vec<String> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Vec::new();
    }
    path.split('/')
        .map(|segment| percent_decode(segment, Decode::Path))
        .collect()
}

/// What [`percent_decode`] decodes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// A path segment: `%XX` except `%2F`.
    Path,
    /// A query component: `%XX`, and `+` as a space.
    Query,
}

/// Decodes `%XX` escapes; bytes that are not UTF-8 become U+FFFD.
fn percent_decode(text: &str, mode: Decode) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let decoded = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match decoded {
                    Some(b'/') if mode == Decode::Path => out.push(b'%'),
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if mode == Decode::Query => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but ASCII letters, digits and `-._~`, as .NET's
/// default `UrlEncoder` does when `QueryHelpers.AddQueryString` rebuilds a query.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A parsed query string: ASP.NET Core's `IQueryCollection`. Keys compare
/// case-insensitively and keep their first spelling; values keep their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    entries: Vec<(String, Vec<String>)>,
}

impl Query {
    /// Parses the raw query (without `?`); `a&b=` gives `a` and `b` empty values.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let mut query = Query::default();
        for pair in raw.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            query.push(
                percent_decode(key, Decode::Query),
                percent_decode(value, Decode::Query),
            );
        }
        query
    }

    fn push(&mut self, key: String, value: String) {
        match self
            .entries
            .iter_mut()
            .find(|(existing, _)| eq_ignore_case(existing, &key))
        {
            Some((_, values)) => values.push(value),
            None => self.entries.push((key, vec![value])),
        }
    }

    /// The values of `key`, in any case.
    pub(crate) fn get(&self, key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(existing, _)| eq_ignore_case(existing, key))
            .map(|(_, values)| values.as_slice())
    }

    /// Each key with its values joined by `,` (`StringValues.ToString()`).
    pub(crate) fn joined(&self) -> impl Iterator<Item = (&str, String)> {
        self.entries
            .iter()
            .map(|(key, values)| (key.as_str(), values.join(",")))
    }

    /// Each key with its last value (the host's `GetQueryParameterDictionary`).
    pub(crate) fn last_values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .filter_map(|(key, values)| values.last().map(|value| (key.as_str(), value.as_str())))
    }

    /// The query as the host rebuilds it for a forwarded request: `?` and each
    /// key once, its values joined by `,`, re-encoded; empty without parameters
    /// (azure-functions-host `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`,
    /// `QueryHelpers.AddQueryString`).
    pub(crate) fn rebuild(&self) -> String {
        let pairs: Vec<String> = self
            .joined()
            .map(|(key, value)| format!("{}={}", encode_component(key), encode_component(&value)))
            .collect();
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }
}

/// .NET's `OrdinalIgnoreCase`, close enough: compare the upper-cased texts.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || a.to_uppercase() == b.to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_decoded_except_slashes() {
        assert_eq!(path_segments("/api/catalog/42"), ["api", "catalog", "42"]);
        assert_eq!(path_segments("/api/catalog/42/"), ["api", "catalog", "42"]);
        assert_eq!(path_segments("/api/a%20b/%C3%A9"), ["api", "a b", "é"]);
        assert_eq!(path_segments("/api/a%2Fb"), ["api", "a%2Fb"]);
        assert_eq!(path_segments("/api/100%/%zz"), ["api", "100%", "%zz"]);
        assert_eq!(path_segments("/api//x"), ["api", "", "x"]);
        assert!(path_segments("/").is_empty());
    }

    #[test]
    fn repeated_keys_are_joined_in_any_case() {
        let query = Query::parse(Some("b=1&A=x&b=2&a=y+z&flag&&c=%26%3D"));
        let joined: Vec<_> = query.joined().collect();
        assert_eq!(
            joined,
            [
                ("b", "1,2".to_owned()),
                ("A", "x,y z".to_owned()),
                ("flag", String::new()),
                ("c", "&=".to_owned())
            ]
        );
        assert_eq!(query.get("B"), Some(&["1".to_owned(), "2".to_owned()][..]));
        let last: Vec<_> = query.last_values().collect();
        assert_eq!(last, [("b", "2"), ("A", "y z"), ("flag", ""), ("c", "&=")]);
    }

    #[test]
    fn the_forwarded_query_is_rebuilt_and_re_encoded() {
        let query = Query::parse(Some(
            "name=Atlas&code=k%2Fy&x=1&x=2&sp=a+b&u=%C3%A9&t=~-._!*",
        ));
        assert_eq!(
            query.rebuild(),
            "?name=Atlas&code=k%2Fy&x=1%2C2&sp=a%20b&u=%C3%A9&t=~-._%21%2A"
        );
        assert_eq!(Query::parse(None).rebuild(), "");
        assert_eq!(Query::parse(Some("")).rebuild(), "");
        assert_eq!(Query::parse(Some("flag")).rebuild(), "?flag=");
    }
}
