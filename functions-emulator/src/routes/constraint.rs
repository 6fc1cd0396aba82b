//! Inline route constraints (`{id:int}`), checked as ASP.NET Core checks them
//! (dotnet/aspnetcore `src/Http/Routing/src/Constraints/`): invariant culture,
//! surrounding white space allowed where .NET's `TryParse` allows it.

use functions_contract::json;

/// A constraint the emulator understands.
#[derive(Debug, Clone)]
pub(crate) enum Constraint {
    Int,
    Long,
    Bool,
    Guid,
    Alpha,
    Decimal,
    Double,
    Float,
    Min(i64),
    Max(i64),
    Range(i64, i64),
    Length(usize),
    LengthBetween(usize, usize),
    MinLength(usize),
    MaxLength(usize),
    Required,
    /// `regex(...)`: `RegexRouteConstraint` matches without case and without
    /// anchoring (a pattern must say `^...$` to match the whole value).
    Regex(regex::Regex),
}

impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Constraint::Regex(a), Constraint::Regex(b)) => a.as_str() == b.as_str(),
            _ => format!("{self:?}") == format!("{other:?}"),
        }
    }
}

/// What a constraint's text turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    Known(Constraint),
    /// Not understood (`datetime`, custom constraints, a regex the Rust
    /// `regex` crate cannot compile, such as one with look-around): the
    /// emulator warns and does not check it.
    Unknown(String),
}

impl Constraint {
    /// Parses `int`, `min(1)`, `range(1,9)` and the like.
    pub(crate) fn parse(text: &str) -> Parsed {
        if let Some(pattern) = text
            .strip_prefix("regex(")
            .or_else(|| text.strip_prefix("REGEX("))
            .and_then(|rest| rest.strip_suffix(')'))
        {
            // RegexRouteConstraint: IgnoreCase | CultureInvariant, IsMatch.
            return regex::RegexBuilder::new(pattern)
                .case_insensitive(true)
                .build()
                .map_or_else(
                    |_| Parsed::Unknown(text.to_owned()),
                    |regex| Parsed::Known(Constraint::Regex(regex)),
                );
        }
        let (name, args) = match text.split_once('(') {
            Some((name, rest)) => match rest.strip_suffix(')') {
                Some(args) => (name, Some(args)),
                None => return Parsed::Unknown(text.to_owned()),
            },
            None => (text, None),
        };
        let numbers: Option<Vec<i64>> = args.map(|args| {
            args.split(',')
                .map(|arg| arg.trim().parse().ok())
                .collect::<Option<Vec<i64>>>()
                .unwrap_or_default()
        });
        let size = |n: i64| usize::try_from(n).ok();
        let constraint = match (name.to_lowercase().as_str(), numbers.as_deref()) {
            ("int", None) => Some(Constraint::Int),
            ("long", None) => Some(Constraint::Long),
            ("bool", None) => Some(Constraint::Bool),
            ("guid", None) => Some(Constraint::Guid),
            ("alpha", None) => Some(Constraint::Alpha),
            ("decimal", None) => Some(Constraint::Decimal),
            ("double", None) => Some(Constraint::Double),
            ("float", None) => Some(Constraint::Float),
            ("required", None) => Some(Constraint::Required),
            ("min", Some(&[min])) => Some(Constraint::Min(min)),
            ("max", Some(&[max])) => Some(Constraint::Max(max)),
            ("range", Some(&[min, max])) => Some(Constraint::Range(min, max)),
            ("length", Some(&[n])) => size(n).map(Constraint::Length),
            ("length", Some(&[min, max])) => size(min)
                .zip(size(max))
                .map(|(min, max)| Constraint::LengthBetween(min, max)),
            ("minlength", Some(&[n])) => size(n).map(Constraint::MinLength),
            ("maxlength", Some(&[n])) => size(n).map(Constraint::MaxLength),
            _ => None,
        };
        constraint.map_or_else(|| Parsed::Unknown(text.to_owned()), Parsed::Known)
    }

    /// Whether a matched route value satisfies the constraint.
    pub(crate) fn accepts(&self, value: &str) -> bool {
        let length = value.chars().count();
        match self {
            Constraint::Int => json::integer(value).is_some_and(|n| i32::try_from(n).is_ok()),
            Constraint::Long => json::integer(value).is_some(),
            Constraint::Bool => {
                let value = value.trim();
                value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
            }
            Constraint::Guid => is_guid(value.trim()),
            Constraint::Alpha => value.bytes().all(|b| b.is_ascii_alphabetic()),
            Constraint::Decimal | Constraint::Double | Constraint::Float => {
                let value = value.trim();
                !value.is_empty()
                    && value.bytes().all(|b| {
                        b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E')
                    })
                    && value.parse::<f64>().is_ok()
            }
            Constraint::Min(min) => json::integer(value).is_some_and(|n| n >= *min),
            Constraint::Max(max) => json::integer(value).is_some_and(|n| n <= *max),
            Constraint::Range(min, max) => {
                json::integer(value).is_some_and(|n| (*min..=*max).contains(&n))
            }
            Constraint::Length(n) => length == *n,
            Constraint::LengthBetween(min, max) => (*min..=*max).contains(&length),
            Constraint::MinLength(min) => length >= *min,
            Constraint::MaxLength(max) => length <= *max,
            Constraint::Required => !value.is_empty(),
            Constraint::Regex(regex) => regex.is_match(value),
        }
    }
}

/// `Guid.TryParse`: the `N`, `D`, `B` and `P` formats.
fn is_guid(value: &str) -> bool {
    let hex =
        |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    let dashed = |text: &str| {
        let groups: Vec<&str> = text.split('-').collect();
        groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, len)| hex(g, len))
    };
    hex(value, 32)
        || dashed(value)
        || value
            .strip_prefix('{')
            .and_then(|v| v.strip_suffix('}'))
            .is_some_and(dashed)
        || value
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .is_some_and(dashed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(text: &str) -> Constraint {
        match Constraint::parse(text) {
            Parsed::Known(constraint) => constraint,
            Parsed::Unknown(text) => panic!("{text} should be known"),
        }
    }

    #[test]
    fn numeric_constraints_follow_dotnet_parsing() {
        let int = known("int");
        assert!(int.accepts("42") && int.accepts("-7") && int.accepts("+3") && int.accepts("007"));
        assert!(!int.accepts("4x") && !int.accepts("") && !int.accepts("2147483648"));
        assert!(known("long").accepts("2147483648"));
        assert!(known("min(1)").accepts("1") && !known("min(1)").accepts("0"));
        assert!(known("range(1, 9)").accepts("9") && !known("range(1,9)").accepts("10"));
        assert!(known("double").accepts("1.5e3") && !known("double").accepts("NaN"));
    }

    #[test]
    fn text_constraints() {
        assert!(known("alpha").accepts("abcXYZ") && !known("alpha").accepts("ab1"));
        assert!(known("BOOL").accepts("True") && !known("bool").accepts("1"));
        let guid = known("guid");
        assert!(guid.accepts("6d9f0c4e-1b2a-4c3d-8e9f-0a1b2c3d4e5f"));
        assert!(guid.accepts("{6d9f0c4e-1b2a-4c3d-8e9f-0a1b2c3d4e5f}"));
        assert!(guid.accepts("6d9f0c4e1b2a4c3d8e9f0a1b2c3d4e5f"));
        assert!(!guid.accepts("6d9f0c4e-1b2a-4c3d-8e9f"));
        assert!(known("length(2)").accepts("ab") && !known("length(2)").accepts("abc"));
        assert!(known("maxlength(2)").accepts("é1") && !known("minlength(3)").accepts("ab"));
    }

    #[test]
    fn regexes_match_without_case_and_without_anchors() {
        let id = known("regex(^[1-9][0-9]{0,8}$)");
        assert!(id.accepts("42") && !id.accepts("042") && !id.accepts("health"));
        let letters = known("regex(ab)");
        assert!(letters.accepts("xABy"), "not anchored, any case");
    }

    #[test]
    fn unknown_constraints_are_reported_not_checked() {
        assert_eq!(
            Constraint::parse("regex(^(?!health$))"),
            Parsed::Unknown("regex(^(?!health$))".to_owned()),
            "look-around is .NET's, not the regex crate's"
        );
        assert_eq!(
            Constraint::parse("datetime"),
            Parsed::Unknown("datetime".to_owned())
        );
        assert_eq!(
            Constraint::parse("min(x)"),
            Parsed::Unknown("min(x)".to_owned())
        );
    }
}
