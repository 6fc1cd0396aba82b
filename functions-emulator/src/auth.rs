//! Authorization levels and keys, as the Functions host checks them
//! (azure-functions-host at 89dc438:
//! `src/WebJobs.Script.WebHost/Security/Authentication/Keys/AuthenticationLevelHandler.cs`,
//! `src/WebJobs.Script.WebHost/Security/KeyManagement/SecretManager.cs`
//! `GetAuthorizationLevelAsync`, `src/WebJobs.Script.WebHost/Security/Authorization/AuthUtility.cs`
//! `PrincipalHasAuthLevelClaim`).
//!
//! `func start` authorizes everything (every caller is Admin) unless it runs
//! with `--enableAuth`; the emulator does the same unless `--enable-auth`.
//! With it, the key is the first value of the `x-functions-key` header when
//! the header is there (even empty), else the first `code` parameter. The
//! master key is Admin; a system key System; a host function key or one of
//! the function's own keys Function. A level is satisfied by that exact
//! level or by Admin: a system key cannot call a `function` function, and
//! `user` and `admin` functions take only the master key.

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

/// A function's `authLevel` (azure-webjobs-sdk-extensions `AuthorizationLevel.cs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthLevel {
    Anonymous,
    User,
    Function,
    System,
    Admin,
}

impl AuthLevel {
    /// Parses `authLevel` as `Enum.TryParse` with `ignoreCase` does: a name
    /// in any case or the value's number; absent means `function`.
    pub(crate) fn parse(text: Option<&str>) -> Result<Self, String> {
        let Some(text) = text else {
            return Ok(AuthLevel::Function);
        };
        match text.trim().to_lowercase().as_str() {
            "anonymous" | "0" => Ok(AuthLevel::Anonymous),
            "user" | "1" => Ok(AuthLevel::User),
            "function" | "2" => Ok(AuthLevel::Function),
            "system" | "3" => Ok(AuthLevel::System),
            "admin" | "4" => Ok(AuthLevel::Admin),
            _ => Err(format!(
                "Error parsing function.json: Invalid value specified for binding property \
                 'authLevel' of enum type AuthorizationLevel: {text:?}"
            )),
        }
    }

    /// The name the host's claims use.
    pub(crate) fn claim_value(self) -> &'static str {
        match self {
            AuthLevel::Anonymous => "Anonymous",
            AuthLevel::User => "User",
            AuthLevel::Function => "Function",
            AuthLevel::System => "System",
            AuthLevel::Admin => "Admin",
        }
    }

    /// Whether a caller at this level may call a function requiring `required`.
    fn satisfies(self, required: AuthLevel) -> bool {
        required == AuthLevel::Anonymous || self == AuthLevel::Admin || self == required
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

/// A key of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionKey {
    /// The function; names compare without case.
    pub(crate) function: String,
    pub(crate) key: Key,
}

/// The keys, and whether they are checked at all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keys {
    enabled: bool,
    master: Option<String>,
    /// Host keys (`functionKeys` of the host): Function level for every function.
    host: Vec<Key>,
    /// System keys (`systemKeys` of the host): System level.
    system: Vec<Key>,
    function: Vec<FunctionKey>,
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
        system: Vec<Key>,
        function: Vec<FunctionKey>,
    ) -> Self {
        Keys {
            enabled: true,
            master,
            host,
            system,
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
            .filter(|key| !key.is_empty())
            .and_then(|key| self.identify(function, key))
            .unwrap_or(Caller::Anonymous);
        let level = match &caller {
            Caller::Anonymous => AuthLevel::Anonymous,
            Caller::Key { level, .. } => *level,
        };
        if level.satisfies(required) {
            Ok(caller)
        } else {
            Err(Unauthorized)
        }
    }

    /// SecretManager.GetAuthorizationLevelAsync: the master key, then system
    /// keys, then host keys, then the function's own keys.
    fn identify(&self, function: &str, presented: &str) -> Option<Caller> {
        let key = |level, name: &str| Caller::Key {
            level,
            key_name: Some(name.to_owned()),
        };
        let find = |keys: &mut dyn Iterator<Item = &Key>| {
            keys.filter(|candidate| constant_time_eq(&candidate.value, presented))
                .map(|found| found.name.clone())
                .next()
        };
        if self
            .master
            .as_deref()
            .is_some_and(|master| constant_time_eq(master, presented))
        {
            return Some(key(AuthLevel::Admin, MASTER_KEY_NAME));
        }
        if let Some(name) = find(&mut self.system.iter()) {
            return Some(key(AuthLevel::System, &name));
        }
        if let Some(name) = find(&mut self.host.iter()) {
            return Some(key(AuthLevel::Function, &name));
        }
        let mut own = self
            .function
            .iter()
            .filter(|owned| owned.function.eq_ignore_ascii_case(function))
            .map(|owned| &owned.key);
        find(&mut own).map(|name| key(AuthLevel::Function, &name))
    }
}

/// The key a request presents: the first `x-functions-key` value if the
/// header is there, else the first `code` value.
pub(crate) fn presented_key(headers: &HeaderMap, query: &Query) -> Option<String> {
    if let Some(header) = headers.get(KEY_HEADER) {
        return Some(String::from_utf8_lossy(header.as_bytes()).into_owned());
    }
    query
        .get(KEY_PARAMETER)
        .and_then(|values| values.first().cloned())
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
        let key = |value: &str| Key {
            name: "default".to_owned(),
            value: value.to_owned(),
        };
        Keys::enabled(
            Some("master".to_owned()),
            vec![key("host")],
            vec![key("system")],
            vec![FunctionKey {
                function: "catalog".to_owned(),
                key: key("cat"),
            }],
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
    fn levels_match_exactly_and_only_the_master_key_satisfies_every_level() {
        let keys = keys();
        assert!(matches!(
            keys.authorize("x", AuthLevel::System, Some("system")),
            Ok(Caller::Key {
                level: AuthLevel::System,
                ..
            })
        ));
        assert_eq!(
            keys.authorize("x", AuthLevel::Function, Some("system")),
            Err(Unauthorized),
            "a system key cannot call a function-level function"
        );
        assert_eq!(
            keys.authorize("x", AuthLevel::System, Some("host")),
            Err(Unauthorized)
        );
        assert_eq!(
            keys.authorize("x", AuthLevel::User, Some("host")),
            Err(Unauthorized)
        );
        assert!(keys.authorize("x", AuthLevel::User, Some("master")).is_ok());
        assert!(
            keys.authorize("x", AuthLevel::System, Some("master"))
                .is_ok()
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
    fn repeated_keys_take_the_first_value_and_an_empty_header_blocks_code() {
        let query = Query::parse(Some("code=first&code=second"));
        assert_eq!(
            presented_key(&HeaderMap::new(), &query).as_deref(),
            Some("first")
        );
        let mut headers = HeaderMap::new();
        headers.append(KEY_HEADER, "one".parse().expect("a value"));
        headers.append(KEY_HEADER, "two".parse().expect("a value"));
        assert_eq!(presented_key(&headers, &query).as_deref(), Some("one"));
        let mut empty = HeaderMap::new();
        empty.insert(KEY_HEADER, "".parse().expect("a value"));
        let presented = presented_key(&empty, &Query::parse(Some("code=cat")));
        assert_eq!(presented.as_deref(), Some(""));
        assert_eq!(
            keys().authorize("catalog", AuthLevel::Function, presented.as_deref()),
            Err(Unauthorized),
            "the empty header wins over a valid code"
        );
    }

    #[test]
    fn auth_levels_parse_in_any_case() {
        assert_eq!(AuthLevel::parse(None), Ok(AuthLevel::Function));
        assert_eq!(
            AuthLevel::parse(Some("Anonymous")),
            Ok(AuthLevel::Anonymous)
        );
        assert_eq!(AuthLevel::parse(Some("ADMIN")), Ok(AuthLevel::Admin));
        assert_eq!(AuthLevel::parse(Some("system")), Ok(AuthLevel::System));
        assert_eq!(AuthLevel::parse(Some("3")), Ok(AuthLevel::System));
        assert!(AuthLevel::parse(Some("root")).is_err());
    }
}
