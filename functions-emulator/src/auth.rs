//! Authorization levels and keys (reference §4).
//!
//! `func start` authorizes everything (every caller is Admin) unless it runs
//! with `--enableAuth`; the emulator does the same unless `--enable-auth`.
//! With it, a key comes from the `x-functions-key` header or, when that is
//! absent, the `code` query parameter: `function` functions accept a key of
//! that function, any host key or the master key; `admin` functions only the
//! master key; `anonymous` functions anyone.

use functions_contract::protocol;
use http::HeaderMap;

use crate::url::Query;

/// The header that carries a function key.
pub(crate) const KEY_HEADER: &str = protocol::FUNCTION_KEY_HEADER;
/// The query parameter that carries a function key.
pub(crate) const KEY_PARAMETER: &str = protocol::FUNCTION_KEY_PARAMETER;
/// The master key's name.
pub(crate) const MASTER_KEY_NAME: &str = "_master";
/// The name of the keys given on the command line.
pub(crate) const DEFAULT_KEY_NAME: &str = "default";

/// A function's `authLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AuthLevel {
    Anonymous,
    Function,
    Admin,
}

impl AuthLevel {
    /// Parses `authLevel` in any case; absent means `function` (reference §2).
    pub(crate) fn parse(text: Option<&str>) -> Result<Self, String> {
        match text.map(str::to_lowercase).as_deref() {
            None | Some("function") => Ok(AuthLevel::Function),
            Some("anonymous") => Ok(AuthLevel::Anonymous),
            Some("admin") => Ok(AuthLevel::Admin),
            Some(other) => Err(format!(
                "authLevel {other:?} is not anonymous, function or admin"
            )),
        }
    }

    /// The name the host's claims use.
    pub(crate) fn claim_value(self) -> &'static str {
        match self {
            AuthLevel::Anonymous => "Anonymous",
            AuthLevel::Function => "Function",
            AuthLevel::Admin => "Admin",
        }
    }
}

/// Who the caller turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No valid key (allowed only for anonymous functions).
    Anonymous,
    /// Authenticated at `level`, with the key named `key_name` (none when
    /// authorization is off and the caller is Admin by default).
    Key {
        level: AuthLevel,
        key_name: Option<String>,
    },
}

/// A failed authorization: the host answers 401 with an empty body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unauthorized;

/// A named key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// The keys, and whether they are checked at all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keys {
    enabled: bool,
    master: Option<String>,
    host: Vec<Key>,
    /// (function name, key); function names compare case-insensitively.
    function: Vec<(String, Key)>,
}

impl Keys {
    /// Authorization off, as `func start` without `--enableAuth`.
    pub(crate) fn disabled() -> Self {
        Keys::default()
    }

    /// Authorization on, with these keys.
    pub(crate) fn enabled(
        master: Option<String>,
        host: Vec<Key>,
        function: Vec<(String, Key)>,
    ) -> Self {
        Keys {
            enabled: true,
            master,
            host,
            function,
        }
    }

    /// Whether keys are checked.
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Authorizes a call of `function` (requiring `required`) with the key
    /// `presented`, if any.
    pub(crate) fn authorize(
        &self,
        function: &str,
        required: AuthLevel,
        presented: Option<&str>,
    ) -> Result<Caller, Unauthorized> {
        if !self.enabled {
            return Ok(Caller::Key {
                level: AuthLevel::Admin,
                key_name: None,
            });
        }
        let caller = presented
            .and_then(|key| self.identify(function, key))
            .unwrap_or(Caller::Anonymous);
        let level = match &caller {
            Caller::Anonymous => AuthLevel::Anonymous,
            Caller::Key { level, .. } => *level,
        };
        if level >= required {
            Ok(caller)
        } else {
            Err(Unauthorized)
        }
    }

    fn identify(&self, function: &str, presented: &str) -> Option<Caller> {
        let key = |level, name: &str| Caller::Key {
            level,
            key_name: Some(name.to_owned()),
        };
        if self
            .master
            .as_deref()
            .is_some_and(|master| constant_time_eq(master, presented))
        {
            return Some(key(AuthLevel::Admin, MASTER_KEY_NAME));
        }
        // Function keys first: they win over host keys of the same name.
        let function_key = self
            .function
            .iter()
            .filter(|(owner, _)| owner.eq_ignore_ascii_case(function))
            .map(|(_, key)| key);
        function_key
            .chain(&self.host)
            .find(|candidate| constant_time_eq(&candidate.value, presented))
            .map(|found| key(AuthLevel::Function, &found.name))
    }
}

/// The key a request presents: `x-functions-key` if present, else `code`.
pub(crate) fn presented_key(headers: &HeaderMap, query: &Query) -> Option<String> {
    if let Some(header) = headers.get(KEY_HEADER) {
        return Some(String::from_utf8_lossy(header.as_bytes()).into_owned());
    }
    query.get(KEY_PARAMETER).map(|values| values.join(","))
}

/// Compares keys without stopping at the first difference.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |difference, (x, y)| difference | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::enabled(
            Some("master".to_owned()),
            vec![Key {
                name: "default".to_owned(),
                value: "host".to_owned(),
            }],
            vec![(
                "catalog".to_owned(),
                Key {
                    name: "default".to_owned(),
                    value: "cat".to_owned(),
                },
            )],
        )
    }

    fn function_caller(name: &str) -> Caller {
        Caller::Key {
            level: AuthLevel::Function,
            key_name: Some(name.to_owned()),
        }
    }

    #[test]
    fn without_enable_auth_everyone_is_admin() {
        let caller = Keys::disabled().authorize("catalog", AuthLevel::Admin, None);
        assert_eq!(
            caller,
            Ok(Caller::Key {
                level: AuthLevel::Admin,
                key_name: None
            })
        );
    }

    #[test]
    fn function_level_takes_the_functions_keys_host_keys_and_the_master_key() {
        let keys = keys();
        assert_eq!(
            keys.authorize("catalog", AuthLevel::Function, Some("cat")),
            Ok(function_caller("default"))
        );
        assert_eq!(
            keys.authorize("CATALOG", AuthLevel::Function, Some("host")),
            Ok(function_caller("default"))
        );
        assert!(matches!(
            keys.authorize("catalog", AuthLevel::Function, Some("master")),
            Ok(Caller::Key {
                level: AuthLevel::Admin,
                ..
            })
        ));
        assert_eq!(
            keys.authorize("openapi", AuthLevel::Function, Some("cat")),
            Err(Unauthorized)
        );
        assert_eq!(
            keys.authorize("catalog", AuthLevel::Function, None),
            Err(Unauthorized)
        );
        assert_eq!(
            keys.authorize("catalog", AuthLevel::Function, Some("ca")),
            Err(Unauthorized)
        );
    }

    #[test]
    fn admin_needs_the_master_key_and_anonymous_needs_nothing() {
        let keys = keys();
        assert_eq!(
            keys.authorize("x", AuthLevel::Admin, Some("host")),
            Err(Unauthorized)
        );
        assert!(
            keys.authorize("x", AuthLevel::Admin, Some("master"))
                .is_ok()
        );
        assert_eq!(
            keys.authorize("health", AuthLevel::Anonymous, None),
            Ok(Caller::Anonymous)
        );
        assert_eq!(
            keys.authorize("health", AuthLevel::Anonymous, Some("wrong")),
            Ok(Caller::Anonymous)
        );
        assert_eq!(
            keys.authorize("health", AuthLevel::Anonymous, Some("host")),
            Ok(function_caller("default"))
        );
    }

    #[test]
    fn the_header_takes_precedence_over_the_code_parameter() {
        let query = Query::parse(Some("code=from-query"));
        let mut headers = HeaderMap::new();
        assert_eq!(
            presented_key(&headers, &query).as_deref(),
            Some("from-query")
        );
        headers.insert(KEY_HEADER, "from-header".parse().expect("a value"));
        assert_eq!(
            presented_key(&headers, &query).as_deref(),
            Some("from-header")
        );
        assert_eq!(presented_key(&HeaderMap::new(), &Query::default()), None);
    }

    #[test]
    fn auth_levels_parse_in_any_case() {
        assert_eq!(AuthLevel::parse(None), Ok(AuthLevel::Function));
        assert_eq!(
            AuthLevel::parse(Some("Anonymous")),
            Ok(AuthLevel::Anonymous)
        );
        assert_eq!(AuthLevel::parse(Some("ADMIN")), Ok(AuthLevel::Admin));
        assert!(AuthLevel::parse(Some("system")).is_err());
    }
}
