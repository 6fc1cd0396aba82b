//! Routing as the Functions host routes HTTP triggers: each function's
//! template under `/{routePrefix}/`, tried in the order of the function
//! names, and the first template whose path and constraints match and whose
//! `methods` include the request's method wins. A method or constraint that
//! does not match lets the next function try; when none is left, 404.
//!
//! azure-functions-host at 89dc438: `src/WebJobs.Script/Host/FunctionMetadataManager.cs`
//! orders the functions by name (`StringComparer.OrdinalIgnoreCase`);
//! `src/WebJobs.Script.WebHost/WebScriptHostHttpRoutesManager.cs` maps each
//! route, its methods as an `HttpMethodRouteConstraint`, in that order;
//! azure-webjobs-sdk-extensions `src/WebJobs.Extensions.Http/Routing/WebJobsRouteBuilder.cs`
//! puts them in a plain ASP.NET Core `RouteCollection`, which stops at the
//! first route that sets a handler. There is no ordering by specificity: a
//! template with a parameter can take the path of a literal route that
//! comes after it by name.

pub(crate) mod constraint;
pub(crate) mod template;

use http::Method;

pub(crate) use template::{RouteTemplate, RouteValues};

use crate::url;

/// The routes of every HTTP function, in the order they are tried.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
}

#[derive(Debug)]
struct Route {
    function: usize,
    template: RouteTemplate,
    /// `None`: every method; an empty list: none.
    methods: Option<Vec<String>>,
}

/// The function a request is for, and its route values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteMatch {
    /// Index of the function, as given to [`RouteTable::add`].
    pub(crate) function: usize,
    pub(crate) values: RouteValues,
}

/// A literal route that a route before it takes every request of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HiddenRoute {
    /// The function whose route is hidden.
    pub(crate) hidden: usize,
    /// The function that gets its requests.
    pub(crate) by: usize,
    /// The methods the hidden route loses (`None`: all of them).
    pub(crate) methods: Option<Vec<String>>,
}

impl Route {
    /// `HttpMethodRouteConstraint`: the method, compared without case.
    fn allows(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
    }
}

impl RouteTable {
    /// Adds the route of function `function` after the ones already added.
    pub(crate) fn add(
        &mut self,
        function: usize,
        template: RouteTemplate,
        methods: Option<Vec<String>>,
    ) {
        self.routes.push(Route {
            function,
            template,
            methods,
        });
    }

    /// The first route whose template matches `path` and whose methods
    /// include `method`.
    pub(crate) fn find(&self, method: &Method, path: &str) -> Option<RouteMatch> {
        let segments = url::path_segments(path);
        self.routes.iter().find_map(|route| {
            if !route.allows(method.as_str()) {
                return None;
            }
            route.template.matches(&segments).map(|values| RouteMatch {
                function: route.function,
                values,
            })
        })
    }

    /// Each literal route that an earlier route matches for some or all of
    /// its methods: requests to it never reach its function.
    pub(crate) fn hidden_routes(&self) -> Vec<HiddenRoute> {
        let mut hidden = Vec::new();
        for (index, route) in self.routes.iter().enumerate() {
            let Some(path) = route.template.literal_path() else {
                continue;
            };
            let segments = url::path_segments(&path);
            for earlier in &self.routes[..index] {
                if earlier.template.matches(&segments).is_none() {
                    continue;
                }
                let methods = match (&route.methods, &earlier.methods) {
                    (_, None) => route.methods.clone(),
                    (None, Some(theirs)) => Some(theirs.clone()),
                    (Some(ours), Some(_)) => {
                        let lost: Vec<String> =
                            ours.iter().filter(|m| earlier.allows(m)).cloned().collect();
                        if lost.is_empty() {
                            continue;
                        }
                        Some(lost)
                    }
                };
                hidden.push(HiddenRoute {
                    hidden: route.function,
                    by: earlier.function,
                    methods,
                });
                break;
            }
        }
        hidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&str, Option<&[&str]>)]) -> RouteTable {
        let mut table = RouteTable::default();
        for (index, (text, methods)) in routes.iter().enumerate() {
            let template = RouteTemplate::parse(text).expect("valid").0;
            let methods = methods.map(|methods| methods.iter().map(|m| (*m).to_owned()).collect());
            table.add(index, template, methods);
        }
        table
    }

    #[test]
    fn the_first_route_that_matches_wins_even_a_parameter_over_a_literal() {
        let get = Some(&["get"][..]);
        // In name order: catalog (catalog/{item_id}) before health (catalog/health).
        let routes = table(&[("api/catalog/{item_id}", get), ("api/catalog/health", get)]);
        assert_eq!(
            routes
                .find(&Method::GET, "/api/catalog/health")
                .map(|m| m.function),
            Some(0),
            "the literal route is hidden"
        );
        assert_eq!(
            routes.hidden_routes(),
            [HiddenRoute {
                hidden: 1,
                by: 0,
                methods: Some(vec!["get".to_owned()])
            }]
        );
        // The other order: each path reaches its own function.
        let routes = table(&[("api/catalog/health", get), ("api/catalog/{item_id}", get)]);
        assert_eq!(
            routes
                .find(&Method::GET, "/api/catalog/health")
                .map(|m| m.function),
            Some(0)
        );
        assert_eq!(
            routes.find(&Method::GET, "/api/catalog/42"),
            Some(RouteMatch {
                function: 1,
                values: vec![("item_id".to_owned(), Some("42".to_owned()))]
            })
        );
        assert!(routes.hidden_routes().is_empty());
    }

    #[test]
    fn a_constraint_or_a_method_that_does_not_match_lets_the_next_route_try() {
        let routes = table(&[
            ("api/things/{id:int}", Some(&["POST"][..])),
            ("api/things/{name}", Some(&["get"][..])),
            ("api/any", None),
            ("api/never", Some(&[][..])),
        ]);
        assert_eq!(
            routes
                .find(&Method::POST, "/api/things/1")
                .map(|m| m.function),
            Some(0)
        );
        assert_eq!(
            routes
                .find(&Method::GET, "/api/things/1")
                .map(|m| m.function),
            Some(1),
            "methods compare without case"
        );
        assert_eq!(routes.find(&Method::POST, "/api/things/x"), None);
        assert_eq!(routes.find(&Method::DELETE, "/api/things/1"), None);
        assert_eq!(
            routes.find(&Method::HEAD, "/api/things/1"),
            None,
            "GET does not imply HEAD"
        );
        assert_eq!(
            routes.find(&Method::PATCH, "/api/any").map(|m| m.function),
            Some(2)
        );
        assert_eq!(
            routes.find(&Method::GET, "/api/never"),
            None,
            "no methods: unreachable"
        );
        assert_eq!(routes.find(&Method::GET, "/api/nothing"), None);
    }
}
