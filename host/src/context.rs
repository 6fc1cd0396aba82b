//! The request context: the request's correlation id, the secrets it carries
//! (which must never reach a log), and the request as the guest gets it.

use std::borrow::Cow;

use base64::Engine as _;

use functions_contract::protocol;
use http::header::{AUTHORIZATION, COOKIE, HOST, PROXY_AUTHORIZATION};
use http::uri::{PathAndQuery, Uri};
use http::{HeaderMap, HeaderName, HeaderValue, request};

/// The header that carries the correlation id to the guest and back to the caller.
pub(crate) const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
/// The invocation id the Functions host puts on every request.
pub(crate) const INVOCATION_ID: HeaderName =
    HeaderName::from_static(protocol::INVOCATION_ID_HEADER);
/// The Functions host's function key header; the guest never sees it.
const FUNCTION_KEY: HeaderName = HeaderName::from_static(protocol::FUNCTION_KEY_HEADER);
/// The function key query parameter; the guest never sees it.
const FUNCTION_KEY_PARAMETER: &str = protocol::FUNCTION_KEY_PARAMETER;
const SUBSCRIPTION_KEY: HeaderName = HeaderName::from_static("ocp-apim-subscription-key");
/// Query parameters whose values are secrets: the function key, and API
/// Management's subscription key (its default query parameter name).
const SECRET_PARAMETERS: [&str; 2] = [FUNCTION_KEY_PARAMETER, "subscription-key"];
/// Headers that carry a credential the platform checked before the guest
/// runs: removed from the guest's request, and redacted from every log.
const CREDENTIAL_HEADERS: [HeaderName; 4] = [
    FUNCTION_KEY,
    SUBSCRIPTION_KEY,
    AUTHORIZATION,
    PROXY_AUTHORIZATION,
];
const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Longest correlation id taken from a request; longer ones are ignored.
const MAX_CORRELATION_ID: usize = 128;
/// Secrets shorter than this are not searched for in log lines: replacing
/// every `a` in a line would destroy it and protect nothing.
const MIN_REDACTED_SECRET: usize = 4;
const REDACTED: &str = "[REDACTED]";

/// Where a request's correlation id came from, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CorrelationSource {
    /// `x-correlation-id`, as APIM sets it.
    Header,
    /// The trace id of a W3C `traceparent`.
    TraceParent,
    /// The root id of a legacy `Request-Id` (`|root.span.`).
    RequestId,
    /// `X-Azure-Functions-InvocationId`, set by the Functions host.
    InvocationId,
    /// None of the above was present and valid: the host made one.
    Generated,
}

/// What the host knows about one request before the guest runs.
#[derive(Debug)]
pub(crate) struct RequestContext {
    /// The request's correlation id.
    pub(crate) correlation_id: String,
    /// Where [`Self::correlation_id`] came from.
    pub(crate) correlation_source: CorrelationSource,
    /// The Functions invocation id, when the Functions host sent one.
    pub(crate) invocation_id: Option<String>,
    /// Values that must be redacted from anything logged for this request.
    pub(crate) secrets: Secrets,
}

impl RequestContext {
    /// Reads the context from a request head.
    pub(crate) fn new(head: &request::Parts) -> Self {
        let headers = &head.headers;
        let invocation_id = functions_host_invocation_id(headers)
            .filter(|id| valid_id(id))
            .map(str::to_owned);
        let (correlation_id, correlation_source) = correlation_id(headers);
        Self {
            correlation_id,
            correlation_source,
            invocation_id,
            secrets: Secrets::from_request(head),
        }
    }

    /// Rewrites a request head into what the guest sees: the correlation id
    /// set, credentials removed, and an authority the guest can read.
    ///
    /// The guest gets no function key, `Authorization`, `Proxy-Authorization`
    /// or subscription key: they were checked before it runs (by the Functions
    /// host, App Service Authentication or API Management), and a guest that
    /// never holds one cannot leak it.
    pub(crate) fn prepare_for_guest(&self, head: &mut request::Parts) {
        let headers = &mut head.headers;
        for credential in &CREDENTIAL_HEADERS {
            headers.remove(credential);
        }
        let correlation_id =
            HeaderValue::from_str(&self.correlation_id).expect("correlation ids are visible ASCII");
        headers.insert(CORRELATION_ID, correlation_id);
        // wasi:http needs an authority; HTTP/1.0 clients may send no Host.
        if header_str(headers, &HOST).is_none_or(str::is_empty) {
            headers.insert(HOST, HeaderValue::from_static("localhost"));
        }
        if let Some(query) = head.uri.query()
            && let Some(kept) = without_secret_parameters(query)
        {
            let path_and_query = match kept.is_empty() {
                true => head.uri.path().to_owned(),
                false => format!("{}?{kept}", head.uri.path()),
            };
            let mut parts = head.uri.clone().into_parts();
            parts.path_and_query = PathAndQuery::try_from(path_and_query).ok();
            if let Ok(uri) = Uri::from_parts(parts) {
                head.uri = uri;
            }
        }
    }

    /// Whether the original client used HTTPS, as the front end reports it.
    pub(crate) fn forwarded_https(head: &request::Parts) -> bool {
        header_str(&head.headers, &FORWARDED_PROTO)
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
    }
}

fn correlation_id(headers: &HeaderMap) -> (String, CorrelationSource) {
    let candidates = [
        (
            header_str(headers, &CORRELATION_ID),
            CorrelationSource::Header,
        ),
        (
            header_str(headers, &TRACEPARENT).and_then(traceparent_trace_id),
            CorrelationSource::TraceParent,
        ),
        (
            header_str(headers, &REQUEST_ID).and_then(request_id_root),
            CorrelationSource::RequestId,
        ),
        (
            functions_host_invocation_id(headers),
            CorrelationSource::InvocationId,
        ),
    ];
    candidates
        .into_iter()
        .find_map(|(value, source)| {
            value
                .map(str::trim)
                .filter(|id| valid_id(id))
                .map(|id| (id.to_owned(), source))
        })
        .unwrap_or_else(|| (new_correlation_id(), CorrelationSource::Generated))
}

/// A correlation id for a request that brought none: 128 random bits in hex.
pub(crate) fn new_correlation_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// A correlation id is echoed in headers and logs: 1 to 128 visible ASCII characters.
fn valid_id(id: &str) -> bool {
    (1..=MAX_CORRELATION_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The trace id of a W3C `traceparent` (`version-traceid-parentid-flags`).
fn traceparent_trace_id(value: &str) -> Option<&str> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let lower_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = lower_hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && lower_hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && lower_hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && lower_hex(flags, 2);
    valid.then_some(trace_id)
}

/// The root (operation) id of a hierarchical `Request-Id` such as
/// `|4bf92f35.b7ad6b71.`, or the whole value of a flat one.
fn request_id_root(value: &str) -> Option<&str> {
    let value = value.trim();
    match value.strip_prefix('|') {
        Some(hierarchical) => hierarchical
            .split('.')
            .next()
            .filter(|root| !root.is_empty()),
        None => Some(value),
    }
}

/// The query without `code` and `subscription-key` parameters, or `None`
/// when it has none.
fn without_secret_parameters(query: &str) -> Option<String> {
    let is_key = |pair: &&str| is_secret_parameter(pair.split('=').next().unwrap_or_default());
    if !query.split('&').any(|pair| is_key(&pair)) {
        return None;
    }
    Some(
        query
            .split('&')
            .filter(|pair| !is_key(pair))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

/// Whether a query parameter's name (percent-encoded or not) is one of
/// [`SECRET_PARAMETERS`].
fn is_secret_parameter(name: &str) -> bool {
    let name = percent_decode(name);
    SECRET_PARAMETERS
        .iter()
        .any(|secret| name.eq_ignore_ascii_case(secret))
}

/// The invocation id the Functions host set. In forward mode the host adds
/// its id after any the client sent, on the same line (`client's, host's`;
/// azure-functions-host `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`
/// `AddHeaders`): only the last value is the host's. (In payload mode the
/// envelope's request carries the outer POST's id alone, see `payload`.)
fn functions_host_invocation_id(headers: &HeaderMap) -> Option<&str> {
    let last_line = headers.get_all(&INVOCATION_ID).iter().next_back()?;
    let line = last_line.to_str().ok()?;
    line.rsplit(',').next().map(str::trim)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Decodes `%XX` escapes and `+`; invalid escapes stay as they are.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
        match bytes[index] {
            b'%' if hex(index + 1).is_some() && hex(index + 2).is_some() => {
                let high = hex(index + 1).unwrap_or_default();
                let low = hex(index + 2).unwrap_or_default();
                decoded.push((high * 16 + low) as u8);
                index += 3;
            }
            b'+' => {
                decoded.push(b' ');
                index += 1;
            }
            byte => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

/// `Scheme credentials` (RFC 9110 section 11.4; any whitespace after the
/// scheme): the credentials can be logged alone too, and Basic credentials
/// decoded, as `user:password` or the password alone.
fn credentials_parts(value: &str, values: &mut Vec<String>) {
    let Some((scheme, credentials)) = value.trim().split_once([' ', '\t']) else {
        return;
    };
    let credentials = credentials.trim();
    values.push(credentials.to_owned());
    if scheme.eq_ignore_ascii_case("basic")
        && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials)
    {
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        if let Some((_, password)) = decoded.split_once(':') {
            values.push(password.to_owned());
        }
        values.push(decoded);
    }
}

/// Each cookie's value: cookies are separated by `;` (RFC 6265), or by `,`
/// when a proxy joined two `Cookie` lines; a value may be quoted.
fn cookie_values(value: &str, values: &mut Vec<String>) {
    for (_, cookie) in value.split([';', ',']).filter_map(|c| c.split_once('=')) {
        let cookie = cookie.trim();
        values.push(cookie.to_owned());
        if let Some(unquoted) = cookie.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
            values.push(unquoted.to_owned());
        }
    }
}

/// The secret values of one request: function keys, credentials, cookies and
/// subscription keys. Every line logged for the request passes through
/// [`Secrets::redact`], so a guest that prints its headers leaks nothing.
#[derive(Debug, Default, Clone)]
pub(crate) struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    fn from_request(head: &request::Parts) -> Self {
        let mut values = Vec::new();
        let headers = &head.headers;
        for name in CREDENTIAL_HEADERS.iter().chain([&COOKIE]) {
            for value in headers.get_all(name) {
                let value = String::from_utf8_lossy(value.as_bytes());
                if name == AUTHORIZATION || name == PROXY_AUTHORIZATION {
                    credentials_parts(&value, &mut values);
                }
                if name == COOKIE {
                    cookie_values(&value, &mut values);
                }
                values.push(value.trim().to_owned());
            }
        }
        if let Some(query) = head.uri.query() {
            for (name, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
                if is_secret_parameter(name) {
                    values.push(value.to_owned());
                    values.push(percent_decode(value).into_owned());
                }
            }
        }
        values.retain(|value| value.len() >= MIN_REDACTED_SECRET);
        // Longest first, so a value that contains another is replaced whole.
        values.sort_unstable_by_key(|value| std::cmp::Reverse(value.len()));
        values.dedup();
        Self { values }
    }

    /// Adds `other`'s values, for output that more than one request's
    /// guest may write ([`crate::shared`]).
    pub(crate) fn extend(&mut self, other: &Secrets) {
        if other.values.iter().all(|value| self.values.contains(value)) {
            return;
        }
        self.values.extend(other.values.iter().cloned());
        self.values
            .sort_unstable_by_key(|value| std::cmp::Reverse(value.len()));
        self.values.dedup();
    }

    /// `text` without the longest start of a secret it ends with: what is
    /// left of a secret when a line is cut in the middle of it.
    pub(crate) fn without_secret_start_at_end<'t>(&self, text: &'t str) -> &'t str {
        let longest = self
            .values
            .iter()
            .filter_map(|secret| {
                (1..secret.len())
                    .rev()
                    .filter(|&len| secret.is_char_boundary(len))
                    .find(|&len| text.ends_with(&secret[..len]))
            })
            .max()
            .unwrap_or(0);
        &text[..text.len() - longest]
    }

    /// `text` with every secret value replaced by `[REDACTED]`.
    pub(crate) fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.values {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), REDACTED));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("a valid request").into_parts().0
    }

    fn context(headers: &[(&str, &str)]) -> RequestContext {
        RequestContext::new(&head("/api/catalog/42", headers))
    }

    const TRACEPARENT_VALUE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn correlation_id_precedence() {
        let all = [
            ("x-correlation-id", "6d9f"),
            ("traceparent", TRACEPARENT_VALUE),
            ("request-id", "|abc123.1."),
            (
                "x-azure-functions-invocationid",
                "5f0b7c2e-94c3-4d51-9f4b-6b1d1fbd1e8a",
            ),
        ];
        let expected = [
            ("6d9f", CorrelationSource::Header),
            (
                "4bf92f3577b34da6a3ce929d0e0e4736",
                CorrelationSource::TraceParent,
            ),
            ("abc123", CorrelationSource::RequestId),
            (
                "5f0b7c2e-94c3-4d51-9f4b-6b1d1fbd1e8a",
                CorrelationSource::InvocationId,
            ),
        ];
        for (skip, (id, source)) in expected.into_iter().enumerate() {
            let ctx = context(&all[skip..]);
            assert_eq!(
                (ctx.correlation_id.as_str(), ctx.correlation_source),
                (id, source)
            );
        }
        let generated = context(&[]);
        assert_eq!(generated.correlation_source, CorrelationSource::Generated);
        assert_eq!(generated.correlation_id.len(), 32);
        assert_ne!(generated.correlation_id, context(&[]).correlation_id);
    }

    #[test]
    fn the_invocation_id_is_the_last_one_the_functions_host_appended() {
        let ctx = context(&[(
            "x-azure-functions-invocationid",
            "chosen-by-a-client, 5f0b7c2e-94c3-4d51-9f4b-6b1d1fbd1e8a",
        )]);
        assert_eq!(
            ctx.invocation_id.as_deref(),
            Some("5f0b7c2e-94c3-4d51-9f4b-6b1d1fbd1e8a")
        );
        let ctx = context(&[
            ("x-azure-functions-invocationid", "chosen-by-a-client"),
            ("x-azure-functions-invocationid", "by-the-host"),
        ]);
        assert_eq!(ctx.invocation_id.as_deref(), Some("by-the-host"));
        assert_eq!(ctx.correlation_id, "by-the-host");
    }

    #[test]
    fn invalid_sources_fall_through() {
        let too_long = "x".repeat(129);
        let ctx = context(&[
            ("x-correlation-id", &too_long),
            (
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            ),
            ("request-id", "has space"),
            ("x-azure-functions-invocationid", "inv-1"),
        ]);
        assert_eq!(
            (ctx.correlation_id.as_str(), ctx.correlation_source),
            ("inv-1", CorrelationSource::InvocationId)
        );
        assert_eq!(
            context(&[("x-correlation-id", "")]).correlation_source,
            CorrelationSource::Generated
        );
    }

    #[test]
    fn traceparent_rules() {
        assert_eq!(
            traceparent_trace_id(TRACEPARENT_VALUE),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            traceparent_trace_id("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            "later versions may append fields"
        );
        for invalid in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f35-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(traceparent_trace_id(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn guest_request_loses_credentials_and_gains_the_correlation_id() {
        let mut head = head(
            "/api/catalog/42?a=1&code=secret-key-1&b=2&%63ode=x&Subscription-Key=s",
            &[
                ("x-functions-key", "secret-key-2"),
                ("authorization", "Bearer token"),
                ("proxy-authorization", "Basic dTpw"),
                ("ocp-apim-subscription-key", "sub"),
                ("cookie", "a=1"),
                ("x-correlation-id", "c1"),
            ],
        );
        let ctx = RequestContext::new(&head);
        ctx.prepare_for_guest(&mut head);
        assert_eq!(head.uri.to_string(), "/api/catalog/42?a=1&b=2");
        for credential in [
            "x-functions-key",
            "authorization",
            "proxy-authorization",
            "ocp-apim-subscription-key",
        ] {
            assert!(head.headers.get(credential).is_none(), "{credential}");
        }
        // A cookie is the guest's own state, not a credential the platform checked.
        assert_eq!(head.headers["cookie"], "a=1");
        assert_eq!(head.headers["x-correlation-id"], "c1");
        assert_eq!(head.headers["host"], "localhost");

        let mut only_key = super::tests::head("/api/catalog/42?code=k", &[("host", "example.net")]);
        RequestContext::new(&only_key).prepare_for_guest(&mut only_key);
        assert_eq!(only_key.uri.to_string(), "/api/catalog/42");
        assert_eq!(only_key.headers["host"], "example.net");
    }

    #[test]
    fn secrets_are_redacted_whole_and_in_parts() {
        let head = head(
            "/api/x?code=query%2Fkey%3D%3D",
            &[
                ("x-functions-key", "function-key-value"),
                ("authorization", "Bearer eyJhbGciOi.payload.sig"),
                ("cookie", "session=cookie-secret; theme=dark"),
                ("ocp-apim-subscription-key", "subscription-key"),
            ],
        );
        let secrets = RequestContext::new(&head).secrets;
        let line = "k=function-key-value auth=Bearer eyJhbGciOi.payload.sig token=eyJhbGciOi.payload.sig \
                    c=cookie-secret q=query/key== raw=query%2Fkey%3D%3D s=subscription-key theme=dark";
        let redacted = secrets.redact(line);
        for secret in [
            "function-key-value",
            "eyJhbGciOi",
            "cookie-secret",
            "query/key==",
            "query%2Fkey",
            "subscription-key",
        ] {
            assert!(!redacted.contains(secret), "{secret} leaked: {redacted}");
        }
        assert!(
            redacted.contains("theme=[REDACTED]"),
            "every cookie value is a secret"
        );
        assert!(matches!(secrets.redact("nothing secret"), Cow::Borrowed(_)));
    }

    #[test]
    fn credentials_and_cookies_are_redacted_in_every_spelling() {
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:basic-password");
        let head = head(
            "/api/x?subscription-key=apim-sub-key-1&x=1",
            &[
                ("authorization", "Bearer\ttab-separated-token"),
                ("proxy-authorization", &format!("Basic {basic}")),
                (
                    "cookie",
                    "a=\"quoted-cookie\"; b=first-cookie, c=second-cookie",
                ),
            ],
        );
        let secrets = RequestContext::new(&head).secrets;
        for secret in [
            "tab-separated-token",
            basic.as_str(),
            "alice:basic-password",
            "basic-password",
            "quoted-cookie",
            "first-cookie",
            "second-cookie",
            "apim-sub-key-1",
        ] {
            let line = format!("logged: {secret}.");
            assert_eq!(secrets.redact(&line), "logged: [REDACTED].", "{secret}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;
        use super::head;

        proptest! {
            #[test]
            fn any_headers_give_a_usable_correlation_id(
                correlation in proptest::option::of(any::<String>()),
                traceparent in proptest::option::of("[0-9a-f-]{0,80}"),
                request_id in proptest::option::of(any::<String>()),
            ) {
                let mut headers = Vec::new();
                for (name, value) in [("x-correlation-id", correlation), ("traceparent", traceparent), ("request-id", request_id)] {
                    if let Some(value) = value.filter(|v| HeaderValue::from_str(v).is_ok()) {
                        headers.push((name, value));
                    }
                }
                let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let mut head = head("/api/x", &headers);
                let ctx = RequestContext::new(&head);
                prop_assert!(valid_id(&ctx.correlation_id));
                ctx.prepare_for_guest(&mut head);
                prop_assert_eq!(head.headers[&CORRELATION_ID].to_str().ok(), Some(ctx.correlation_id.as_str()));
            }

            #[test]
            fn the_function_key_never_survives_in_the_query(
                pairs in proptest::collection::vec(("(code|CODE|%63ode|[a-z]{1,6})", "[a-zA-Z0-9%=+]{0,12}"), 0..8),
            ) {
                let query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
                let kept = without_secret_parameters(&query).unwrap_or(query);
                for pair in kept.split('&').filter(|pair| !pair.is_empty()) {
                    let name = pair.split('=').next().unwrap_or_default();
                    prop_assert!(!percent_decode(name).eq_ignore_ascii_case("code"), "{}", kept);
                }
            }

            #[test]
            fn redaction_removes_every_secret(
                secret in "[a-z0-9]{8,40}",
                before in "[ -~]{0,40}",
                after in "[ -~]{0,40}",
            ) {
                let head = head("/x", &[("x-functions-key", &secret)]);
                let secrets = RequestContext::new(&head).secrets;
                let line = format!("{before}{secret}{after}{secret}");
                prop_assert!(!secrets.redact(&line).contains(&secret));
            }

            #[test]
            fn parsers_take_any_input(text in any::<String>()) {
                let _ = traceparent_trace_id(&text);
                let _ = request_id_root(&text);
                let _ = percent_decode(&text);
                let _ = without_secret_parameters(&text);
            }
        }
    }
}
