//! The functions the host indexes from the app, in its order (by name,
//! without case): for each HTTP-triggered function its route, methods, auth
//! level, HTTP output and invocation mode; the others are listed but not run
//! (the emulator has no non-HTTP triggers).
//!
//! A function the host would put in error is in error here too, with the
//! host's message, and gets no route: a name the host refuses
//! (`src/WebJobs.Script/Utility.cs`, `FunctionNameValidationRegex`), a route
//! in the host's own space or the same as an earlier function's for an
//! overlapping method (`src/WebJobs.Script/Host/ScriptHost.cs`,
//! `ValidateHttpFunction`, `HttpRoutesConflict`), a template ASP.NET Core
//! cannot parse. A template that parses alone but not after the route
//! prefix is joined on (`api` + `/` + `/items`) stops the whole host, as the
//! route mapping has no error handling
//! (`WebJobsRouteBuilder.BuildRouteTemplate`; `ScriptHost.OnHostInitialized`).

use std::cmp::Ordering;

use crate::auth::AuthLevel;
use crate::routes::{RouteTable, RouteTemplate};
use functions_contract::{AppConfig, BrokenFunction, FunctionConfig};
pub(crate) use functions_contract::{ForwardPath, HttpOutput, Mode};

/// An HTTP-triggered function.
#[derive(Debug, Clone)]
pub(crate) struct HttpFunction {
    pub(crate) name: String,
    /// The trigger binding's name: the key of the request in `Data`.
    pub(crate) trigger_name: String,
    pub(crate) auth_level: AuthLevel,
    /// `methods` as written; `None`: every method; empty: none.
    pub(crate) methods: Option<Vec<String>>,
    /// The route as written, or the function name.
    pub(crate) route: String,
    pub(crate) mode: Mode,
    pub(crate) output: HttpOutput,
}

/// A function the emulator lists without running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OtherFunction {
    pub(crate) name: String,
    /// Its trigger's type, or "no trigger".
    pub(crate) trigger: String,
}

/// A start-up warning about one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Warning {
    pub(crate) function: String,
    pub(crate) text: String,
}

/// Everything indexed from the app.
#[derive(Debug, Default)]
pub(crate) struct FunctionIndex {
    /// The HTTP functions, in the host's order.
    pub(crate) http: Vec<HttpFunction>,
    /// Routes to `http` by index, in the same order.
    pub(crate) routes: RouteTable,
    /// Functions with other triggers.
    pub(crate) other: Vec<OtherFunction>,
    /// Functions in error.
    pub(crate) errors: Vec<BrokenFunction>,
    /// Start-up warnings.
    pub(crate) warnings: Vec<Warning>,
    /// Why the host could not start at all, if it could not.
    pub(crate) fatal: Option<String>,
}

/// `StringComparer.OrdinalIgnoreCase`: characters compared after upper-casing.
pub(crate) fn by_name(a: &str, b: &str) -> Ordering {
    a.chars()
        .map(|c| c.to_ascii_uppercase())
        .cmp(b.chars().map(|c| c.to_ascii_uppercase()))
}

impl FunctionIndex {
    /// Indexes the functions of `app`, in the host's order.
    pub(crate) fn build(app: &AppConfig) -> Self {
        let mut index = FunctionIndex {
            errors: app.broken.clone(),
            ..FunctionIndex::default()
        };
        let mut functions: Vec<&FunctionConfig> = app.functions.iter().collect();
        functions.sort_by(|a, b| by_name(&a.name, &b.name));
        for function in functions {
            let in_error = |error: String| BrokenFunction {
                name: function.name.clone(),
                error,
            };
            if !valid_name(&function.name) {
                index.errors.push(in_error(format!(
                    "'{}' is not a valid function name.",
                    function.name
                )));
                continue;
            }
            if function.http_trigger().is_none() {
                let trigger = function
                    .trigger()
                    .map_or_else(|| "no trigger".to_owned(), |b| b.kind.clone());
                index.other.push(OtherFunction {
                    name: function.name.clone(),
                    trigger,
                });
                continue;
            }
            let indexed = http_function(app, function)
                .and_then(|indexed| conflicts(&indexed.http, &index.http).map_or(Ok(indexed), Err));
            match indexed {
                Ok(Indexed {
                    http,
                    template,
                    warnings,
                }) => {
                    index
                        .warnings
                        .extend(warnings.into_iter().map(|text| Warning {
                            function: function.name.clone(),
                            text,
                        }));
                    match template {
                        Ok(template) => {
                            index
                                .routes
                                .add(index.http.len(), template, http.methods.clone());
                            index.http.push(http);
                        }
                        Err(fatal) => {
                            index.fatal.get_or_insert(fatal);
                        }
                    }
                }
                Err(error) => index.errors.push(in_error(error)),
            }
        }
        for hidden in index.routes.hidden_routes() {
            let (function, by) = (&index.http[hidden.hidden], &index.http[hidden.by]);
            let methods = hidden.methods.map_or_else(
                || "every method".to_owned(),
                |m| m.join(", ").to_uppercase(),
            );
            index.warnings.push(Warning {
                function: function.name.clone(),
                text: format!(
                    "its route '{}' is unreachable for {methods}: function '{}' (route '{}') \
                     comes before it by name and matches the same path, and the Functions host \
                     routes to the first match. Rename one of them or constrain '{}' so that \
                     the literal route comes first.",
                    function.route, by.name, by.route, by.route
                ),
            });
        }
        index
    }
}

/// `^[a-z][a-z0-9_\-]{0,127}$` without case, and not `host`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.eq_ignore_ascii_case("host")
}

/// An indexed HTTP function: its route template, or why the host cannot
/// start with it, and the warnings it gave.
struct Indexed {
    http: HttpFunction,
    template: Result<RouteTemplate, String>,
    warnings: Vec<String>,
}

fn http_function(app: &AppConfig, function: &FunctionConfig) -> Result<Indexed, String> {
    let trigger = function.http_trigger().ok_or("no HTTP trigger")?;
    let auth_level = AuthLevel::parse(trigger.auth_level.as_deref())?;
    let route = trigger
        .route
        .clone()
        .filter(|route| !route.trim().is_empty())
        .unwrap_or_else(|| function.name.clone());
    // ScriptHost.ValidateHttpFunction: the host's own routes.
    let reserved = route.trim_matches('/').to_lowercase();
    if reserved.starts_with("admin") || reserved.starts_with("runtime") {
        return Err("The specified route conflicts with one or more built in routes.".to_owned());
    }
    // The binding provider parses the route alone (failed indexing)...
    let (_, warnings) = RouteTemplate::parse(&route).map_err(|e| e.to_string())?;
    // ...and the router the route behind its prefix, joined with '/'.
    let full_route = if app.host.route_prefix.is_empty() {
        route.clone()
    } else {
        format!("{}/{route}", app.host.route_prefix)
    };
    let template = RouteTemplate::parse(&full_route)
        .map(|(template, _)| template)
        .map_err(|error| {
            format!(
                "The Functions host cannot start: the route template '{full_route}' of function \
                 '{}' is invalid ({error}); the host joins routePrefix and route with '/'.",
                function.name
            )
        });
    let http = HttpFunction {
        name: function.name.clone(),
        trigger_name: trigger.name.clone(),
        auth_level,
        methods: trigger.methods.clone(),
        route,
        mode: Mode::of(&app.host, function),
        output: HttpOutput::of(function),
    };
    Ok(Indexed {
        http,
        template,
        warnings,
    })
}

/// ScriptHost.HttpRoutesConflict against the functions already indexed:
/// the same route text (slashes trimmed, without case) and methods that
/// overlap (compared as written; none given means all).
fn conflicts(function: &HttpFunction, earlier: &[HttpFunction]) -> Option<String> {
    let route = function.route.trim_matches('/');
    earlier
        .iter()
        .find(|other| {
            other.route.trim_matches('/').eq_ignore_ascii_case(route)
                && match (&function.methods, &other.methods) {
                    (Some(ours), Some(theirs)) if !ours.is_empty() && !theirs.is_empty() => {
                        ours.iter().any(|method| theirs.contains(method))
                    }
                    _ => true,
                }
        })
        .map(|other| {
            format!(
                "The route specified conflicts with the route defined by function '{}'.",
                other.name
            )
        })
}

impl HttpFunction {
    /// The function's line in the start-up list, as `func start` prints it:
    /// `catalog-item: [GET] http://localhost:7071/api/catalog/{item_id}`.
    pub(crate) fn listing(&self, route_prefix: &str, port: u16) -> String {
        let methods = match &self.methods {
            Some(methods) => methods
                .iter()
                .map(|method| method.to_uppercase())
                .collect::<Vec<_>>()
                .join(","),
            None => "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS,TRACE".to_owned(),
        };
        let route = self.route.trim_start_matches('/');
        let path = if route_prefix.is_empty() {
            route.to_owned()
        } else {
            format!("{route_prefix}/{route}")
        };
        format!("{}: [{methods}] http://localhost:{port}/{path}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use http::Method;
    use serde_json::json;

    use super::*;
    use functions_contract::HostConfig;

    fn app(host: serde_json::Value, functions: &[(&str, serde_json::Value)]) -> AppConfig {
        AppConfig {
            root: Path::new("/app").to_owned(),
            host: HostConfig::from_json(&host).expect("valid host.json"),
            functions: functions
                .iter()
                .map(|(name, bindings)| {
                    FunctionConfig::from_json(name, &json!({ "bindings": bindings }))
                        .expect("valid function.json")
                })
                .collect(),
            broken: Vec::new(),
            settings: Default::default(),
        }
    }

    fn forwarding() -> serde_json::Value {
        json!({"customHandler": {"description": {"defaultExecutablePath": "h"},
                                 "enableForwardingHttpRequest": true}})
    }

    fn http(route: &str, methods: serde_json::Value) -> serde_json::Value {
        json!([
            {"type": "httpTrigger", "direction": "in", "name": "req", "route": route, "methods": methods},
            {"type": "http", "direction": "out", "name": "res"}
        ])
    }

    fn routed(index: &FunctionIndex, method: Method, path: &str) -> Option<String> {
        index
            .routes
            .find(&method, path)
            .map(|found| index.http[found.function].name.clone())
    }

    #[test]
    fn the_function_app_routes_each_path_to_its_function_by_the_hosts_rule() {
        let app = AppConfig::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../functionapp"
        )))
        .expect("loads");
        let index = FunctionIndex::build(&app);
        assert!(index.errors.is_empty(), "{:?}", index.errors);
        assert!(index.warnings.is_empty(), "{:?}", index.warnings);
        assert!(index.fatal.is_none());
        let listing: Vec<_> = index.http.iter().map(|f| f.listing("api", 7071)).collect();
        assert_eq!(
            listing,
            [
                "catalog-health: [GET] http://localhost:7071/api/catalog/health",
                "catalog-item: [GET] http://localhost:7071/api/catalog/{item_id}",
                "openapi: [GET] http://localhost:7071/api/openapi.json",
            ]
        );
        for (path, function, level) in [
            (
                "/api/catalog/health",
                "catalog-health",
                AuthLevel::Anonymous,
            ),
            ("/api/catalog/42", "catalog-item", AuthLevel::Function),
            (
                "/api/catalog/not-an-id",
                "catalog-item",
                AuthLevel::Function,
            ),
            ("/api/openapi.json", "openapi", AuthLevel::Function),
        ] {
            assert_eq!(
                routed(&index, Method::GET, path).as_deref(),
                Some(function),
                "{path}"
            );
            let found = index.http.iter().find(|f| f.name == function);
            assert_eq!(found.map(|f| f.auth_level), Some(level), "{path}");
        }
        assert!(
            index
                .http
                .iter()
                .all(|f| f.mode == Mode::Forward(ForwardPath::Original))
        );
    }

    #[test]
    fn functions_are_routed_in_name_order_and_a_hidden_literal_route_is_named() {
        // The app as it was: `catalog` sorts before `health` and takes its path.
        let get = json!(["get"]);
        let index = FunctionIndex::build(&app(
            forwarding(),
            &[
                ("health", http("catalog/health", get.clone())),
                ("catalog", http("catalog/{item_id}", get.clone())),
            ],
        ));
        assert_eq!(
            routed(&index, Method::GET, "/api/catalog/health").as_deref(),
            Some("catalog")
        );
        let [warning] = index.warnings.as_slice() else {
            panic!("one warning: {:?}", index.warnings)
        };
        assert_eq!(warning.function, "health");
        assert!(
            warning
                .text
                .contains("unreachable for GET: function 'catalog' (route 'catalog/{item_id}')"),
            "{}",
            warning.text
        );
        // Names compare as upper case: `_` (0x5F) sorts after letters.
        assert_eq!(by_name("a_b", "aab"), Ordering::Greater);
        assert_eq!(by_name("Catalog", "catalog-item"), Ordering::Less);
    }

    #[test]
    fn reserved_duplicate_and_invalid_routes_put_the_function_in_error() {
        let index = FunctionIndex::build(&app(
            forwarding(),
            &[
                ("a", http("administration/x", json!(null))),
                ("b", http("items/{id}", json!(["get"]))),
                ("c", http("Items/{id}", json!(["GET", "post"]))),
                ("d", http("items/{id}", json!(["post"]))),
                ("e", http("items/{key}", json!(["get"]))),
                ("f", http("x/{id:regex(^[0-9]{3}$)}", json!(null))),
                (
                    "runtimes",
                    json!([{"type": "httpTrigger", "direction": "in", "name": "req"}]),
                ),
                ("9lives", http("nine", json!(null))),
            ],
        ));
        let errors: Vec<(&str, &str)> = index
            .errors
            .iter()
            .map(|f| (f.name.as_str(), f.error.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                ("9lives", "'9lives' is not a valid function name."),
                (
                    "a",
                    "The specified route conflicts with one or more built in routes."
                ),
                (
                    "d",
                    "The route specified conflicts with the route defined by function 'c'."
                ),
                (
                    "f",
                    "segment \"{id:regex(^[0-9]{3}$)}\" has a brace that is neither doubled nor part of a parameter"
                ),
                (
                    "runtimes",
                    "The specified route conflicts with one or more built in routes."
                ),
            ]
        );
        // `GET` and `get` are not the same to the conflict check, and other
        // parameter names are another route: both map, name order decides.
        let names: Vec<&str> = index.http.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "e"]);
        assert_eq!(
            routed(&index, Method::GET, "/api/items/1").as_deref(),
            Some("b")
        );
    }

    #[test]
    fn a_route_that_breaks_once_prefixed_stops_the_host() {
        let index = FunctionIndex::build(&app(forwarding(), &[("f", http("/items", json!(null)))]));
        assert!(
            index
                .fatal
                .as_deref()
                .is_some_and(|why| why.contains("'api//items'")),
            "{:?}",
            index.fatal
        );
        let unprefixed = json!({"customHandler": {"description": {"defaultExecutablePath": "h"}},
                                "extensions": {"http": {"routePrefix": ""}}});
        let index = FunctionIndex::build(&app(unprefixed, &[("f", http("/items", json!(null)))]));
        assert!(index.fatal.is_none());
        assert_eq!(routed(&index, Method::GET, "/items").as_deref(), Some("f"));
    }

    #[test]
    fn modes_follow_the_host_settings_and_the_bindings() {
        let handler = json!({"description": {"defaultExecutablePath": "h"}});
        let extra_output = json!([
            {"type": "httpTrigger", "direction": "in", "name": "req"},
            {"type": "http", "direction": "out", "name": "$return"},
            {"type": "queue", "direction": "out", "name": "q"}
        ]);
        let functions = [("a", http("a", json!(["get"]))), ("b", extra_output)];

        let index = FunctionIndex::build(&app(forwarding(), &functions));
        assert_eq!(index.http[0].mode, Mode::Forward(ForwardPath::Original));
        assert_eq!(index.http[1].mode, Mode::Payload);
        assert_eq!(index.http[1].output, HttpOutput::Return);
        assert_eq!(index.http[1].route, "b");

        let index =
            FunctionIndex::build(&app(json!({"customHandler": handler.clone()}), &functions));
        assert_eq!(index.http[0].mode, Mode::Payload);
        assert_eq!(index.http[0].output, HttpOutput::Binding("res".to_owned()));

        let index = FunctionIndex::build(&app(json!({"httpWorker": handler}), &functions));
        assert_eq!(index.http[0].mode, Mode::Forward(ForwardPath::FunctionName));
    }

    #[test]
    fn other_triggers_are_listed_and_bad_levels_are_in_error() {
        let timer = json!([{"type": "timerTrigger", "direction": "in", "name": "t"}]);
        let bad_level =
            json!([{"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "root"}]);
        let host = json!({"customHandler": {"description": {"defaultExecutablePath": "h"}},
                          "extensions": {"http": {"routePrefix": ""}}});
        let index = FunctionIndex::build(&app(
            host,
            &[
                ("t", timer),
                ("bad", bad_level),
                ("route", http("{x:int}/{a}.{b}", json!(null))),
                ("ok", http("{*all}", json!(["get", "Post"]))),
            ],
        ));
        assert_eq!(
            index.other,
            [OtherFunction {
                name: "t".to_owned(),
                trigger: "timerTrigger".to_owned()
            }]
        );
        let in_error: Vec<_> = index.errors.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(in_error, ["bad", "route"]);
        assert_eq!(index.http.len(), 1);
        assert_eq!(
            index.http[0].listing("", 8080),
            "ok: [GET,POST] http://localhost:8080/{*all}"
        );
        assert_eq!(routed(&index, Method::POST, "/x/y").as_deref(), Some("ok"));
    }
}
