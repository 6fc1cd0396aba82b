//! ASP.NET Core route templates, as function.json `route` values use them
//! (dotnet/aspnetcore `src/Http/Routing/src/Patterns/RoutePatternParser.cs`):
//! literal segments (matched case-insensitively), `{name}`, inline
//! constraints `{name:int}`, optional `{name?}`, defaults `{name=value}` and
//! catch-all `{*name}` / `{**name}` as the last segment. A brace that is
//! part of the text is doubled: `{{` and `}}`, so a regex constraint writes
//! `{id:regex(^[0-9]{{1,9}}$)}`. Segments that mix literals and parameters
//! (`{a}.{b}`) are not supported.

use super::constraint::{Constraint, Parsed};
use crate::url;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteTemplate {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Parameter(Parameter),
}

#[derive(Debug, Clone, PartialEq)]
struct Parameter {
    name: String,
    constraints: Vec<Constraint>,
    optional: bool,
    default: Option<String>,
    catch_all: bool,
}

/// Route values of a match, in template order: a value, or `None` for an
/// optional parameter that was absent.
pub(crate) type RouteValues = Vec<(String, Option<String>)>;

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    #[error("the route template has an empty segment")]
    EmptySegment,
    #[error("segment {0:?} mixes literal text and parameters, which the emulator does not support")]
    ComplexSegment(String),
    #[error("parameter {0:?} has no name")]
    EmptyName(String),
    #[error("parameter {0:?} appears twice")]
    DuplicateName(String),
    #[error("catch-all parameter {0:?} must be the last segment")]
    CatchAllNotLast(String),
    #[error("optional parameter {0:?} cannot have a default value")]
    OptionalWithDefault(String),
    #[error("optional parameter {0:?} must not be followed by required segments")]
    OptionalNotLast(String),
    #[error("segment {0:?} has a brace that is neither doubled nor part of a parameter")]
    UnescapedBrace(String),
}

impl RouteTemplate {
    /// Parses `text` (a leading `/` or `~/` is ignored). The warnings name
    /// constraints the emulator does not check.
    pub(crate) fn parse(text: &str) -> Result<(Self, Vec<String>), TemplateError> {
        // RoutePatternParser.TrimPrefix: one leading "~/" or "/".
        let text = text
            .strip_prefix("~/")
            .or_else(|| text.strip_prefix('/'))
            .unwrap_or(text);
        let mut segments = Vec::new();
        let mut warnings = Vec::new();
        if !text.is_empty() {
            for raw in split_segments(text) {
                segments.push(parse_segment(raw, &mut warnings)?);
            }
        }
        let template = RouteTemplate { segments };
        template.validate()?;
        Ok((template, warnings))
    }

    fn parameters(&self) -> impl Iterator<Item = &Parameter> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Parameter(parameter) => Some(parameter),
            Segment::Literal(_) => None,
        })
    }

    fn validate(&self) -> Result<(), TemplateError> {
        let mut seen: Vec<String> = Vec::new();
        for parameter in self.parameters() {
            let lower = parameter.name.to_lowercase();
            if seen.contains(&lower) {
                return Err(TemplateError::DuplicateName(parameter.name.clone()));
            }
            seen.push(lower);
        }
        let last = self.segments.len().saturating_sub(1);
        let mut optional_seen: Option<&str> = None;
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Parameter(parameter) if parameter.catch_all && index != last => {
                    return Err(TemplateError::CatchAllNotLast(parameter.name.clone()));
                }
                Segment::Parameter(parameter) if parameter.optional => {
                    optional_seen.get_or_insert(parameter.name.as_str());
                }
                Segment::Parameter(parameter) if parameter.default.is_some() => {}
                _ => {
                    if let Some(name) = optional_seen {
                        return Err(TemplateError::OptionalNotLast(name.to_owned()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Matches decoded path segments (see `url::path_segments`).
    pub(crate) fn matches(&self, path: &[String]) -> Option<RouteValues> {
        let mut values = RouteValues::new();
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) => {
                    let value = path.get(index)?;
                    // Literal segments compare like `OrdinalIgnoreCase`.
                    if !url::eq_ignore_case(literal, value) {
                        return None;
                    }
                }
                Segment::Parameter(parameter) if parameter.catch_all => {
                    let rest = path.get(index..).unwrap_or_default().join("/");
                    let value = (!rest.is_empty()).then_some(rest);
                    values.push(parameter.bind(value)?);
                    return Some(values);
                }
                Segment::Parameter(parameter) => {
                    let value = path.get(index).cloned();
                    if value.as_deref() == Some("") {
                        return None;
                    }
                    values.push(parameter.bind(value)?);
                }
            }
        }
        (path.len() <= self.segments.len()).then_some(values)
    }

    /// The path this template matches and nothing else, when every segment
    /// is literal (`api/catalog/health` -> `/api/catalog/health`).
    pub(crate) fn literal_path(&self) -> Option<String> {
        let mut path = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => {
                    path.push('/');
                    path.push_str(literal);
                }
                Segment::Parameter(_) => return None,
            }
        }
        Some(if path.is_empty() {
            "/".to_owned()
        } else {
            path
        })
    }
}

impl Parameter {
    /// The route value for `value` (`None`: the segment was absent), or
    /// `None` when the parameter does not match.
    fn bind(&self, value: Option<String>) -> Option<(String, Option<String>)> {
        let value = match value {
            Some(value) => Some(value),
            None if self.default.is_some() => self.default.clone(),
            None if self.optional || self.catch_all => None,
            None => return None,
        };
        if let Some(value) = &value
            && !self.constraints.iter().all(|c| c.accepts(value))
        {
            return None;
        }
        Some((self.name.clone(), value))
    }
}

/// The template's segments: split at each `/` outside a parameter.
fn split_segments(text: &str) -> Vec<&str> {
    let mut segments = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'{' | b'}' if bytes.get(index + 1) == Some(&bytes[index]) => index += 1,
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'/' if depth == 0 => {
                segments.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
        index += 1;
    }
    segments.push(&text[start..]);
    segments
}

/// A segment's text with `{{` and `}}` made single, or `None` when it has
/// a single brace.
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' if chars.peek() == Some(&c) => {
                chars.next();
                out.push(c);
            }
            '{' | '}' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn parse_segment(raw: &str, warnings: &mut Vec<String>) -> Result<Segment, TemplateError> {
    if raw.is_empty() {
        return Err(TemplateError::EmptySegment);
    }
    // A parameter is the whole segment: `{` (not `{{`) to its last `}`.
    let opens_parameter = raw.starts_with('{') && !raw.starts_with("{{");
    let complex = || TemplateError::ComplexSegment(raw.to_owned());
    if !opens_parameter {
        return match unescape(raw) {
            Some(literal) => Ok(Segment::Literal(literal)),
            None if raw.replace("{{", "").contains('{') => Err(complex()),
            None => Err(TemplateError::UnescapedBrace(raw.to_owned())),
        };
    }
    if !raw.ends_with('}') {
        return Err(complex());
    }
    let inner = &raw[1..raw.len() - 1];
    let inner = match unescape(inner) {
        Some(inner) => inner,
        // `{a}.{b}`: a parameter closes and another opens in one segment.
        None if inner.replace("}}", "").find('}') < inner.replace("{{", "").rfind('{') => {
            return Err(complex());
        }
        None => return Err(TemplateError::UnescapedBrace(raw.to_owned())),
    };
    let inner = inner.as_str();
    let (catch_all, inner) = match inner.strip_prefix("**").or_else(|| inner.strip_prefix('*')) {
        Some(rest) => (true, rest),
        None => (false, inner),
    };
    let name_end = inner.find([':', '=', '?']).unwrap_or(inner.len());
    let name = inner[..name_end].trim();
    if name.is_empty() {
        return Err(TemplateError::EmptyName(raw.to_owned()));
    }
    let mut rest = &inner[name_end..];
    let mut constraints = Vec::new();
    while let Some(after_colon) = rest.strip_prefix(':') {
        let end = constraint_end(after_colon);
        match Constraint::parse(&after_colon[..end]) {
            Parsed::Known(constraint) => constraints.push(constraint),
            Parsed::Unknown(text) => {
                warnings.push(format!(
                    "route constraint {text:?} of parameter {name:?} is not supported by the emulator and is not checked"
                ));
            }
        }
        rest = &after_colon[end..];
    }
    let (optional, default) = if let Some(default) = rest.strip_prefix('=') {
        if default.ends_with('?') {
            return Err(TemplateError::OptionalWithDefault(name.to_owned()));
        }
        (false, Some(default.to_owned()))
    } else {
        (rest == "?", None)
    };
    Ok(Segment::Parameter(Parameter {
        name: name.to_owned(),
        constraints,
        optional,
        default,
        catch_all,
    }))
}

/// Where a constraint ends: at the next `:`, `=` or a final `?`, outside parentheses.
fn constraint_end(text: &str) -> usize {
    let mut depth = 0usize;
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ':' | '=' if depth == 0 => return index,
            '?' if depth == 0 && index + 1 == text.len() => return index,
            _ => {}
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::path_segments;

    fn template(text: &str) -> RouteTemplate {
        RouteTemplate::parse(text).expect("valid template").0
    }

    fn matches(text: &str, path: &str) -> Option<RouteValues> {
        template(text).matches(&path_segments(path))
    }

    fn value(name: &str, value: &str) -> (String, Option<String>) {
        (name.to_owned(), Some(value.to_owned()))
    }

    #[test]
    fn literals_match_in_any_case_and_parameters_take_segments() {
        assert_eq!(
            matches("api/catalog/{item_id}", "/API/Catalog/42"),
            Some(vec![value("item_id", "42")])
        );
        assert_eq!(
            matches("api/catalog/health", "/api/CATALOG/health/"),
            Some(vec![])
        );
        assert_eq!(matches("api/catalog/{item_id}", "/api/catalog"), None);
        assert_eq!(matches("api/catalog/{item_id}", "/api/catalog/42/x"), None);
        assert_eq!(matches("api/catalog/{item_id}", "/api/other/42"), None);
        assert_eq!(
            matches("api/files/{name}", "/api/files/a%20b"),
            Some(vec![value("name", "a b")])
        );
    }

    #[test]
    fn constraints_filter_values() {
        assert!(matches("api/items/{id:int}", "/api/items/42").is_some());
        assert!(matches("api/items/{id:int}", "/api/items/abc").is_none());
        assert!(matches("api/items/{id:int:min(10)}", "/api/items/9").is_none());
        assert!(matches("api/items/{id:alpha}", "/api/items/abc").is_some());
    }

    #[test]
    fn optional_parameters_are_absent_as_none_and_defaults_fill_in() {
        assert_eq!(
            matches("api/items/{id:int?}", "/api/items"),
            Some(vec![("id".to_owned(), None)])
        );
        assert_eq!(
            matches("api/items/{id:int?}", "/api/items/7"),
            Some(vec![value("id", "7")])
        );
        assert!(matches("api/items/{id:int?}", "/api/items/x").is_none());
        assert_eq!(
            matches("api/items/{page=1}", "/api/items"),
            Some(vec![value("page", "1")])
        );
    }

    #[test]
    fn catch_all_takes_the_rest_of_the_path() {
        assert_eq!(
            matches("api/files/{*path}", "/api/files/a/b/c.txt"),
            Some(vec![value("path", "a/b/c.txt")])
        );
        assert_eq!(
            matches("api/files/{**path}", "/api/files"),
            Some(vec![("path".to_owned(), None)])
        );
        assert_eq!(matches("{*all}", "/"), Some(vec![("all".to_owned(), None)]));
    }

    #[test]
    fn regex_constraints_write_their_braces_doubled() {
        let id = "api/catalog/{item_id:regex(^[1-9][0-9]{{0,8}}$)}";
        assert!(matches(id, "/api/catalog/42").is_some());
        assert!(matches(id, "/api/catalog/health").is_none());
        assert!(matches(id, "/api/catalog/1234567890").is_none());
        // A `/` inside a constraint does not split the template.
        assert!(matches("api/{p:regex(^a(/b)?$)}", "/api/a").is_some());
        assert!(matches!(
            RouteTemplate::parse("api/{id:regex(^[0-9]{3}$)}"),
            Err(TemplateError::UnescapedBrace(_))
        ));
        assert_eq!(
            template("api/{{literal}}").literal_path().as_deref(),
            Some("/api/{literal}")
        );
    }

    #[test]
    fn literal_paths_are_those_of_templates_without_parameters() {
        assert_eq!(
            template("api/catalog/health").literal_path().as_deref(),
            Some("/api/catalog/health")
        );
        assert_eq!(template("api/catalog/{item_id}").literal_path(), None);
        assert_eq!(template("").literal_path().as_deref(), Some("/"));
    }

    #[test]
    fn unknown_constraints_warn_and_are_not_checked() {
        let (template, warnings) =
            RouteTemplate::parse("api/{d:datetime}/{x:regex(^(?!a)$)}").expect("valid");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[1].contains("regex(^(?!a)$)"), "{warnings:?}");
        assert!(template.matches(&path_segments("/api/today/zzz")).is_some());
    }

    #[test]
    fn invalid_templates_are_rejected() {
        let error = |text| RouteTemplate::parse(text).expect_err(text);
        assert!(matches!(error("a//b"), TemplateError::EmptySegment));
        assert!(matches!(
            error("files/{name}.{ext}"),
            TemplateError::ComplexSegment(_)
        ));
        assert!(matches!(
            error("{*rest}/x"),
            TemplateError::CatchAllNotLast(_)
        ));
        assert!(matches!(error("{a?}/x"), TemplateError::OptionalNotLast(_)));
        assert!(matches!(error("{a}/{A}"), TemplateError::DuplicateName(_)));
        assert!(matches!(error("{}"), TemplateError::EmptyName(_)));
    }
}
