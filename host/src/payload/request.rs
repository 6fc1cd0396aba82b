//! The invocation envelope the Functions host POSTs to `/{FunctionName}`:
//! `{"Data": {"<trigger>": {Url, Method, Query, Headers, Params,
//! Identities, Body}}, "Metadata": {...}}`, as
//! `ScriptInvocationContextExtensions.ToHttpScriptInvocationContext` and
//! `HttpRequestExtensions.GetRequestAsJObject` build it (azure-functions-host
//! `src/WebJobs.Script/Workers/MessageExtensions/`, `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`).
//!
//! [`parse_invocation`] turns `Data.<trigger>` into the same `http::Request`
//! a forwarded call would be, so the guest cannot tell the modes apart. It
//! reads strict JSON, as the host writes it, and builds only what it uses:
//! `Url`, `Method`, `Headers` and `Body`. Every other member (`Metadata`,
//! `Query`, `Params`, `Identities`, any other binding) is checked for syntax
//! and skipped without being built, so a large member costs its bytes, not
//! a tree of JSON values many times their size.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, request};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::context::INVOCATION_ID;

/// Why an envelope cannot be an invocation: answered with `400`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum EnvelopeError {
    /// Not JSON, or not the envelope's shape.
    #[error("the invocation is not an invocation envelope: {0}")]
    NotAnEnvelope(String),
    /// JSON, but not `{"Data": {...}}`.
    #[error("the invocation has no Data object")]
    NoData,
    /// `Data` has no object for the trigger binding.
    #[error("Data has no {0:?} object (the function's HTTP trigger binding)")]
    NoRequest(String),
    /// A member of the request is missing or of the wrong type.
    #[error("Data.{binding}.{member}: {problem}")]
    Member {
        /// The trigger binding.
        binding: String,
        /// The member (`Url`, `Method`, `Headers`, `Body`).
        member: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// The request inside an invocation envelope, as a forwarded request would
/// arrive: method, path and query from `Url`, headers from `Headers`, the
/// invocation id from the POST the Functions host sent (never from the
/// envelope's headers, which are the client's), and the body from `Body`
/// (base64 for the media types the host sends as bytes).
pub(crate) fn parse_invocation(
    envelope: &Bytes,
    trigger: &str,
    outer: &request::Parts,
) -> Result<(request::Parts, Bytes), EnvelopeError> {
    // JSON is UTF-8 throughout, skipped members included (serde_json checks
    // only the strings it reads).
    let text = std::str::from_utf8(envelope)
        .map_err(|error| EnvelopeError::NotAnEnvelope(format!("not UTF-8: {error}")))?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let found = EnvelopeSeed { trigger }
        .deserialize(&mut deserializer)
        .and_then(|found| deserializer.end().map(|()| found))
        .map_err(|error| EnvelopeError::NotAnEnvelope(error.to_string()))?;
    let data = found.ok_or(EnvelopeError::NoData)?;
    let fields = data.ok_or_else(|| EnvelopeError::NoRequest(trigger.to_owned()))?;
    fields.into_request(envelope, trigger, outer)
}

/// One member of `Headers`: a name and its values.
type HeaderField<'a> = (Cow<'a, str>, Vec<Cow<'a, str>>);

/// What `Data.<trigger>` holds that the host uses, borrowed from the
/// envelope where JSON allows (a string with escapes is copied).
#[derive(Default)]
struct RequestFields<'a> {
    url: Option<Cow<'a, str>>,
    method: Option<Cow<'a, str>>,
    headers: Option<Vec<HeaderField<'a>>>,
    body: Option<Cow<'a, str>>,
    /// The first member that had the wrong type, and what was wrong.
    wrong: Option<(&'static str, String)>,
}

impl<'a> RequestFields<'a> {
    fn into_request(
        self,
        envelope: &Bytes,
        trigger: &str,
        outer: &request::Parts,
    ) -> Result<(request::Parts, Bytes), EnvelopeError> {
        let problem = |member: &'static str, problem: String| EnvelopeError::Member {
            binding: trigger.to_owned(),
            member,
            problem,
        };
        if let Some((member, what)) = self.wrong {
            return Err(problem(member, what));
        }
        let url = self
            .url
            .ok_or_else(|| problem("Url", "a string is required".into()))?;
        let uri: http::Uri = url
            .parse()
            // Not echoed: a URL may carry a function key in `code`.
            .map_err(|_| problem("Url", "not a URL".into()))?;
        let path_and_query = uri.path_and_query().map_or("/", |target| target.as_str());
        let method = self
            .method
            .ok_or_else(|| problem("Method", "a string is required".into()))?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| problem("Method", format!("{method:?} is not a method")))?;

        let mut headers = HeaderMap::new();
        for (name, values) in self.headers.unwrap_or_default() {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| problem("Headers", format!("{name:?} is not a header name")))?;
            for value in values {
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    // Not echoed: header values may be secrets.
                    problem(
                        "Headers",
                        format!("{name}: a value is not a valid header value"),
                    )
                })?;
                headers.append(name.clone(), value);
            }
        }
        // Framing is the host's to decide from the body below.
        headers.remove(CONTENT_LENGTH);
        headers.remove(TRANSFER_ENCODING);
        if !headers.contains_key(HOST)
            && let Some(authority) = uri
                .authority()
                .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
        {
            headers.insert(HOST, authority);
        }
        // The envelope's headers are the client's: a client that sends its
        // own invocation id must not choose the one the handler logs.
        headers.remove(INVOCATION_ID);
        if let Some(value) = outer.headers.get(INVOCATION_ID) {
            headers.insert(INVOCATION_ID, value.clone());
        }

        let body = match self.body {
            None => Bytes::new(),
            Some(text) if is_sent_as_bytes(&headers) => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map(Bytes::from)
                .map_err(|e| {
                    problem(
                        "Body",
                        format!("base64 is required for this content type: {e}"),
                    )
                })?,
            // Borrowed from the envelope: the guest's body is a slice of it, not a copy.
            Some(Cow::Borrowed(text)) => envelope.slice_ref(text.as_bytes()),
            Some(Cow::Owned(text)) => Bytes::from(text),
        };
        if !body.is_empty() || method_has_body(&method) {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }

        let mut builder = http::Request::builder().method(method).uri(path_and_query);
        if let Some(target) = builder.headers_mut() {
            *target = headers;
        }
        let (head, ()) = builder
            .body(())
            .map_err(|e| problem("Url", e.to_string()))?
            .into_parts();
        Ok((head, body))
    }
}

/// Whether the Functions host sends a request with these headers' media type
/// as bytes, which Newtonsoft writes as base64: `application/octet-stream`,
/// or a type containing `multipart/`, compared without case after parsing
/// off the parameters (`Utility.IsMediaTypeOctetOrMultipart`,
/// `HttpRequestExtensions.IsMediaTypeOctetOrMultipart`).
fn is_sent_as_bytes(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let valid = media_type.split_once('/').is_some_and(|(kind, subtype)| {
        !kind.is_empty() && !subtype.is_empty() && !media_type.contains(char::is_whitespace)
    });
    valid && (media_type == "application/octet-stream" || media_type.contains("multipart/"))
}

fn method_has_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// Visitor methods for booleans and numbers, each giving `$value`.
macro_rules! scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// [`scalars`], and arrays skipped, each giving `$value`.
macro_rules! numbers_and_lists {
    ($value:expr) => {
        scalars!($value);
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($value)
        }
    };
}

/// Visitor methods for every value but an object, each giving `$value`.
macro_rules! not_an_object {
    ($value:expr) => {
        numbers_and_lists!($value);
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// The envelope: `Some(Data)` when it has a `Data` object, whose value is
/// `Some` when `Data` has the trigger's object. Member names match without
/// case, as Newtonsoft binds them.
struct EnvelopeSeed<'t> {
    trigger: &'t str,
}

type Found<'a> = Option<Option<RequestFields<'a>>>;

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Found<'de>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with Data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut data = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key.0.eq_ignore_ascii_case("Data") {
                if data.is_some() {
                    return Err(de::Error::custom("Data appears twice"));
                }
                data = Some(map.next_value_seed(DataSeed {
                    trigger: self.trigger,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(data.flatten())
    }
}

/// `Data`: `None` when it is not an object.
struct DataSeed<'t> {
    trigger: &'t str,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Option<Option<RequestFields<'de>>>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Option<Option<RequestFields<'de>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Data object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut request = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key.0.eq_ignore_ascii_case(self.trigger) {
                if request.is_some() {
                    return Err(de::Error::custom(format!(
                        "Data.{} appears twice",
                        self.trigger
                    )));
                }
                request = Some(map.next_value_seed(RequestSeed)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Some(request.flatten()))
    }

    // Not an object: there is no Data to speak of.
    not_an_object!(None);
}

/// `Data.<trigger>`: `None` when it is not an object.
struct RequestSeed;

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = Option<RequestFields<'de>>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = Option<RequestFields<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the HTTP request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = RequestFields::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let member = ["Url", "Method", "Headers", "Body"]
                .into_iter()
                .find(|member| key.0.eq_ignore_ascii_case(member));
            let Some(member) = member else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let twice = match member {
                "Url" => fields.url.is_some(),
                "Method" => fields.method.is_some(),
                "Headers" => fields.headers.is_some(),
                _ => fields.body.is_some(),
            };
            if twice {
                return Err(de::Error::custom(format!("{member} appears twice")));
            }
            let value: Member<'de> = map.next_value()?;
            let wrong = match (member, value) {
                ("Headers", Member::Headers(headers)) => {
                    fields.headers = Some(headers);
                    None
                }
                ("Headers", Member::Null) => {
                    fields.headers = Some(Vec::new());
                    None
                }
                ("Headers", Member::BadHeaders(what)) => Some(what),
                ("Headers", _) => Some("an object is required".to_owned()),
                ("Body", Member::Null) => None,
                ("Body", Member::Text(text)) => {
                    fields.body = Some(text);
                    None
                }
                (_, Member::Text(text)) => {
                    match member {
                        "Url" => fields.url = Some(text),
                        _ => fields.method = Some(text),
                    }
                    None
                }
                _ => Some("a string is required".to_owned()),
            };
            if let Some(what) = wrong {
                fields.wrong.get_or_insert((member, what));
            }
        }
        Ok(Some(fields))
    }

    not_an_object!(None);
}

/// A string, borrowed from the envelope when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A member of the request as far as its type goes: a string, null, the
/// `Headers` object (each value a string or an array of strings), or
/// something else, skipped.
enum Member<'a> {
    Text(Cow<'a, str>),
    Null,
    Headers(Vec<HeaderField<'a>>),
    /// An object that is not a valid `Headers`: why.
    BadHeaders(String),
    Other,
}

impl<'de> de::Deserialize<'de> for Member<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member of the HTTP request")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Owned(text)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Member::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Member::Null)
    }

    numbers_and_lists!(Member::Other);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut headers = Vec::new();
        let mut bad = None;
        while let Some(Text(name)) = map.next_key()? {
            match map.next_value::<HeaderValues<'de>>()? {
                HeaderValues::Values(values) => headers.push((name, values)),
                HeaderValues::Bad(why) => {
                    bad.get_or_insert_with(|| format!("{name}: {why}"));
                }
            }
        }
        Ok(match bad {
            Some(why) => Member::BadHeaders(why),
            None => Member::Headers(headers),
        })
    }
}

/// One header's values: a string, or an array of strings.
enum HeaderValues<'a> {
    Values(Vec<Cow<'a, str>>),
    Bad(&'static str),
}

impl<'de> de::Deserialize<'de> for HeaderValues<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValuesVisitor;
        impl<'de> Visitor<'de> for ValuesVisitor {
            type Value = HeaderValues<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header's values")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(HeaderValues::Values(vec![Cow::Borrowed(text)]))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(HeaderValues::Values(vec![Cow::Owned(text.to_owned())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut values = Vec::new();
                let mut bad = false;
                while let Some(member) = seq.next_element::<Member<'de>>()? {
                    match member {
                        Member::Text(text) => values.push(text),
                        _ => bad = true,
                    }
                }
                Ok(if bad {
                    HeaderValues::Bad("values must be strings")
                } else {
                    HeaderValues::Values(values)
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(HeaderValues::Bad("an array of strings is required"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(HeaderValues::Bad("an array of strings is required"))
            }
            scalars!(HeaderValues::Bad("an array of strings is required"));
        }
        deserializer.deserialize_any(ValuesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn outer() -> request::Parts {
        http::Request::post("/catalog")
            .header("x-azure-functions-invocationid", "inv-1")
            .body(())
            .expect("a request")
            .into_parts()
            .0
    }

    fn parse_bytes(envelope: &[u8]) -> Result<(request::Parts, Bytes), EnvelopeError> {
        parse_invocation(&Bytes::copy_from_slice(envelope), "req", &outer())
    }

    fn parse(envelope: Value) -> Result<(request::Parts, Bytes), EnvelopeError> {
        parse_bytes(envelope.to_string().as_bytes())
    }

    #[test]
    fn an_envelope_becomes_the_request_a_forwarded_call_would_be() {
        let (head, body) = parse(json!({
            "Data": { "req": {
                "Url": "http://localhost:7071/api/catalog/42?x=1&code=k",
                "Method": "GET",
                "Query": { "x": "1" },
                "Headers": { "Accept": ["*/*"], "Host": ["localhost:7071"], "x-correlation-id": ["6d9f"], "Content-Length": ["999"] },
                "Params": { "item_id": "42" },
                "Identities": [],
            } },
            "Metadata": { "sys": { "MethodName": "catalog" } },
        }))
        .expect("a valid envelope");
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.uri, "/api/catalog/42?x=1&code=k");
        assert_eq!(head.headers["host"], "localhost:7071");
        assert_eq!(head.headers["x-correlation-id"], "6d9f");
        assert_eq!(
            head.headers["x-azure-functions-invocationid"], "inv-1",
            "from the POST"
        );
        assert!(
            head.headers.get("content-length").is_none(),
            "a GET without a body declares none"
        );
        assert!(body.is_empty());
    }

    #[test]
    fn the_invocation_id_is_the_functions_hosts_not_the_clients() {
        let (head, _) = parse(json!({ "Data": { "req": {
            "Url": "http://h/api/x", "Method": "GET",
            "Headers": { "X-Azure-Functions-InvocationId": ["chosen-by-the-client"] },
        } } }))
        .expect("valid");
        let ids: Vec<_> = head
            .headers
            .get_all("x-azure-functions-invocationid")
            .iter()
            .collect();
        assert_eq!(ids, ["inv-1"]);
    }

    #[test]
    fn bodies_are_text_or_base64_by_the_hosts_media_type_rule() {
        let envelope = |content_type: &str, body: &str| {
            json!({ "data": { "REQ": {
                "url": "http://h/api/x", "method": "POST",
                "headers": { "Content-Type": content_type }, "body": body,
            } } })
        };
        let (head, body) = parse(envelope("application/json", "{\"a\":1}")).expect("text");
        assert_eq!(
            (body.as_ref(), &head.headers["content-length"]),
            (b"{\"a\":1}".as_ref(), &HeaderValue::from(7))
        );
        for binary in [
            "application/octet-stream",
            "Application/Octet-Stream; charset=x",
            "multipart/form-data; boundary=b",
        ] {
            let (_, bytes) = parse(envelope(binary, "AP8Q")).expect("base64");
            assert_eq!(bytes.as_ref(), [0x00, 0xff, 0x10], "{binary}");
        }
        for text in [
            "application/octet-streamfoo",
            "text/plain",
            "octet-stream",
            "",
        ] {
            let (_, bytes) = parse(envelope(text, "AP8Q")).expect("text");
            assert_eq!(bytes.as_ref(), b"AP8Q", "{text:?} is sent as text");
        }
        assert!(matches!(
            parse(envelope("multipart/form-data; boundary=x", "not base64!")),
            Err(EnvelopeError::Member { member: "Body", .. })
        ));
    }

    #[test]
    fn only_strict_json_is_an_envelope() {
        let valid = r#"{"Data":{"req":{"Url":"http://h/","Method":"GET"}}}"#;
        assert!(parse_bytes(valid.as_bytes()).is_ok());
        for lenient in [
            format!("\u{feff}{valid}"),
            format!("/* c */{valid}"),
            format!("{valid} // c"),
            r#"{"Data":{"req":{"Url":"http://h/","Method":"GET",}}}"#.to_owned(),
            format!("{valid}{valid}"),
        ] {
            assert!(
                matches!(
                    parse_bytes(lenient.as_bytes()),
                    Err(EnvelopeError::NotAnEnvelope(_))
                ),
                "{lenient}"
            );
        }
    }

    #[test]
    fn members_the_host_does_not_use_are_skipped_whatever_their_size() {
        let big: Vec<u32> = vec![0; 100_000];
        let (head, _) = parse(json!({
            "Metadata": { "Headers": big, "sys": {} },
            "Data": { "other": big, "req": { "Url": "http://h/x", "Method": "GET", "Query": big, "Params": big } },
        }))
        .expect("valid");
        assert_eq!(head.uri, "/x");
    }

    #[test]
    fn malformed_envelopes_say_what_is_wrong() {
        let cases = [
            (json!([]), "not an invocation envelope"),
            (json!({ "Data": [] }), "no Data"),
            (json!({ "Data": {} }), "no \"req\""),
            (json!({ "Data": { "req": "x" } }), "no \"req\""),
            (json!({ "Data": { "req": { "Method": "GET" } } }), "Url"),
            (
                json!({ "Data": { "req": { "Url": 7, "Method": "GET" } } }),
                "Url",
            ),
            (
                json!({ "Data": { "req": { "Url": "http://h/", "Method": "G ET" } } }),
                "Method",
            ),
            (
                json!({ "Data": { "req": { "Url": "http://h/", "Method": "GET", "Headers": [] } } }),
                "Headers",
            ),
            (
                json!({ "Data": { "req": { "Url": "http://h/", "Method": "GET", "Headers": { "a b": ["1"] } } } }),
                "Headers",
            ),
            (
                json!({ "Data": { "req": { "Url": "http://h/", "Method": "GET", "Headers": { "a": [1] } } } }),
                "Headers",
            ),
            (
                json!({ "Data": { "req": { "Url": "http://h/", "Method": "POST", "Body": { "a": 1 } } } }),
                "Body",
            ),
        ];
        for (envelope, expected) in cases {
            let error = parse(envelope.clone()).expect_err("malformed");
            assert!(error.to_string().contains(expected), "{envelope}: {error}");
        }
        let twice = r#"{"Data":{"req":{"Url":"http://h/","Url":"http://other/","Method":"GET"}}}"#;
        assert!(matches!(
            parse_bytes(twice.as_bytes()),
            Err(EnvelopeError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            parse_bytes(b"{not json"),
            Err(EnvelopeError::NotAnEnvelope(_))
        ));
    }
}
