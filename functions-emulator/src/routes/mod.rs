//! Routing as the Functions host routes HTTP triggers: each function's
//! template under `/{routePrefix}/`, its `methods`, and ASP.NET Core's
//! precedence when several templates match (reference §2).

pub(crate) mod constraint;
pub(crate) mod template;

use http::Method;

pub(crate) use template::{RouteTemplate, RouteValues};

use crate::url;

/// The routes of every HTTP function, most specific first.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
}

#[derive(Debug)]
struct Route {
    function: usize,
    template: RouteTemplate,
    /// `None`: every method.
    methods: Option<Vec<Method>>,
}

/// The function a request is for, and its route values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteMatch {
    /// Index of the function, as given to [`RouteTable::add`].
    pub(crate) function: usize,
    pub(crate) values: RouteValues,
}

impl RouteTable {
    /// Adds the route of function `function`.
    pub(crate) fn add(
        &mut self,
        function: usize,
        template: RouteTemplate,
        methods: Option<Vec<Method>>,
    ) {
        self.routes.push(Route {
            function,
            template,
            methods,
        });
        // Stable: equally specific routes keep the order they were added in.
        self.routes.sort_by_key(|route| route.template.precedence());
    }

    /// The first route, by precedence, whose template matches `path` and whose
    /// methods include `method`. A template that matches with the wrong method
    /// does not stop the search: the host's method check is a route
    /// constraint, so the next route is tried, and none left means 404.
    pub(crate) fn find(&self, method: &Method, path: &str) -> Option<RouteMatch> {
        let segments = url::path_segments(path);
        self.routes.iter().find_map(|route| {
            let allowed = route
                .methods
                .as_ref()
                .is_none_or(|methods| methods.contains(method));
            if !allowed {
                return None;
            }
            route.template.matches(&segments).map(|values| RouteMatch {
                function: route.function,
                values,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&str, Option<&[Method]>)]) -> RouteTable {
        let mut table = RouteTable::default();
        for (index, (text, methods)) in routes.iter().enumerate() {
            let template = RouteTemplate::parse(text).expect("valid").0;
            table.add(index, template, methods.map(<[Method]>::to_vec));
        }
        table
    }

    #[test]
    fn literal_routes_win_over_parameters_whatever_the_order() {
        let get = Some(&[Method::GET][..]);
        let routes = table(&[("api/catalog/{item_id}", get), ("api/catalog/health", get)]);
        assert_eq!(
            routes
                .find(&Method::GET, "/api/catalog/health")
                .map(|m| m.function),
            Some(1)
        );
        assert_eq!(
            routes.find(&Method::GET, "/api/catalog/42"),
            Some(RouteMatch {
                function: 0,
                values: vec![("item_id".to_owned(), Some("42".to_owned()))]
            })
        );
    }

    #[test]
    fn methods_filter_routes_and_absent_methods_allow_all() {
        let routes = table(&[
            ("api/things/{id}", Some(&[Method::POST][..])),
            ("api/things/{name}", Some(&[Method::GET][..])),
            ("api/any", None),
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
            Some(1)
        );
        assert_eq!(routes.find(&Method::DELETE, "/api/things/1"), None);
        assert_eq!(
            routes.find(&Method::PATCH, "/api/any").map(|m| m.function),
            Some(2)
        );
        assert_eq!(routes.find(&Method::GET, "/api/nothing"), None);
    }
}
