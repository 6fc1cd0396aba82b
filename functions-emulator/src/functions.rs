//! The functions the host indexes from the app: for each HTTP-triggered
//! function its route, methods, auth level, HTTP output and invocation mode;
//! the others are listed but not run (the emulator has no non-HTTP triggers).

use http::Method;

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
    /// `None`: every method.
    pub(crate) methods: Option<Vec<Method>>,
    /// The route as written, or the function name.
    pub(crate) route: String,
    pub(crate) mode: Mode,
    pub(crate) output: HttpOutput,
}

/// Everything indexed from the app.
#[derive(Debug, Default)]
pub(crate) struct FunctionIndex {
    pub(crate) http: Vec<HttpFunction>,
    /// Routes to `http` by index.
    pub(crate) routes: RouteTable,
    /// Functions with other triggers: (name, trigger type).
    pub(crate) other: Vec<(String, String)>,
    /// Functions in error: (name, why).
    pub(crate) errors: Vec<BrokenFunction>,
    /// Start-up warnings: (function name, what).
    pub(crate) warnings: Vec<(String, String)>,
}

impl FunctionIndex {
    /// Indexes the functions of `app`.
    pub(crate) fn build(app: &AppConfig) -> Self {
        let mut index = FunctionIndex {
            errors: app.broken.clone(),
            ..FunctionIndex::default()
        };
        for function in &app.functions {
            if function.http_trigger().is_none() {
                let trigger = function
                    .trigger()
                    .map_or_else(|| "no trigger".to_owned(), |b| b.kind.clone());
                index.other.push((function.name.clone(), trigger));
                continue;
            }
            match http_function(app, function) {
                Ok((http, template, warnings)) => {
                    index
                        .warnings
                        .extend(warnings.into_iter().map(|w| (function.name.clone(), w)));
                    index
                        .routes
                        .add(index.http.len(), template, http.methods.clone());
                    index.http.push(http);
                }
                Err(error) => index.errors.push(BrokenFunction {
                    name: function.name.clone(),
                    error,
                }),
            }
        }
        index
    }
}

type Indexed = (HttpFunction, RouteTemplate, Vec<String>);

fn http_function(app: &AppConfig, function: &FunctionConfig) -> Result<Indexed, String> {
    let trigger = function.http_trigger().ok_or("no HTTP trigger")?;
    let auth_level = AuthLevel::parse(trigger.auth_level.as_deref())?;
    let methods = trigger
        .methods
        .as_ref()
        .filter(|methods| !methods.is_empty())
        .map(|methods| {
            methods
                .iter()
                .map(|method| {
                    Method::from_bytes(method.to_uppercase().as_bytes())
                        .map_err(|_| format!("{method:?} is not an HTTP method"))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let route = trigger
        .route
        .clone()
        .unwrap_or_else(|| function.name.clone());
    let full_route = if app.host.route_prefix.is_empty() {
        route.clone()
    } else {
        format!(
            "{}/{}",
            app.host.route_prefix,
            route.trim_start_matches('/')
        )
    };
    let (template, warnings) = RouteTemplate::parse(&full_route).map_err(|e| e.to_string())?;
    let mode = Mode::of(&app.host, function);
    let output = HttpOutput::of(function);
    let http = HttpFunction {
        name: function.name.clone(),
        trigger_name: trigger.name.clone(),
        auth_level,
        methods,
        route,
        mode,
        output,
    };
    Ok((http, template, warnings))
}

impl HttpFunction {
    /// The function's line in the start-up list, as `func start` prints it:
    /// `catalog: [GET] http://localhost:7071/api/catalog/{item_id}`.
    pub(crate) fn listing(&self, route_prefix: &str, port: u16) -> String {
        let methods = match &self.methods {
            Some(methods) => methods
                .iter()
                .map(Method::as_str)
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

    fn http(route: &str) -> serde_json::Value {
        json!([
            {"type": "httpTrigger", "direction": "in", "name": "req", "route": route, "methods": ["get", "Post"]},
            {"type": "http", "direction": "out", "name": "res"}
        ])
    }

    #[test]
    fn the_function_app_forwards_every_function() {
        let app = AppConfig::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../functionapp"
        )))
        .expect("loads");
        let index = FunctionIndex::build(&app);
        assert!(index.errors.is_empty() && index.warnings.is_empty());
        let listing: Vec<_> = index.http.iter().map(|f| f.listing("api", 7071)).collect();
        assert_eq!(
            listing,
            [
                "catalog: [GET] http://localhost:7071/api/catalog/{item_id}",
                "health: [GET] http://localhost:7071/api/catalog/health",
                "openapi: [GET] http://localhost:7071/api/openapi.json",
            ]
        );
        assert!(
            index
                .http
                .iter()
                .all(|f| f.mode == Mode::Forward(ForwardPath::Original))
        );
        assert_eq!(index.http[1].auth_level, AuthLevel::Anonymous);
    }

    #[test]
    fn modes_follow_the_host_settings_and_the_bindings() {
        let handler = json!({"description": {"defaultExecutablePath": "h"}});
        let forwarding = json!({"customHandler": {"description": {"defaultExecutablePath": "h"},
                                                  "enableForwardingHttpRequest": true}});
        let extra_output = json!([
            {"type": "httpTrigger", "direction": "in", "name": "req"},
            {"type": "http", "direction": "out", "name": "$return"},
            {"type": "queue", "direction": "out", "name": "q"}
        ]);
        let functions = [("a", http("a")), ("b", extra_output)];

        let index = FunctionIndex::build(&app(forwarding, &functions));
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
    fn other_triggers_are_listed_and_bad_functions_are_in_error() {
        let timer = json!([{"type": "timerTrigger", "direction": "in", "name": "t"}]);
        let bad_level = json!([{"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "system"}]);
        let host = json!({"customHandler": {"description": {"defaultExecutablePath": "h"}},
                          "extensions": {"http": {"routePrefix": ""}}});
        let index = FunctionIndex::build(&app(
            host,
            &[
                ("t", timer),
                ("bad", bad_level),
                ("route", http("{x:regex(a)}/{a}.{b}")),
                ("ok", http("{*all}")),
            ],
        ));
        assert_eq!(index.other, [("t".to_owned(), "timerTrigger".to_owned())]);
        let in_error: Vec<_> = index.errors.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(in_error, ["bad", "route"]);
        assert_eq!(index.http.len(), 1);
        assert_eq!(
            index.http[0].listing("", 8080),
            "ok: [GET,POST] http://localhost:8080/{*all}"
        );
        assert_eq!(
            index.routes.find(&Method::POST, "/x/y").map(|m| m.function),
            Some(0)
        );
    }
}
