//! The values policy expressions compute with: the few .NET types the
//! repository's policies use.

use std::fmt;

/// A .NET value as an expression sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `System.Boolean`.
    Bool(bool),
    /// `System.Int32`/`Int64`: APIM's integers (status codes, counters).
    Int(i64),
    /// `System.String`.
    String(String),
    /// A `Newtonsoft.Json.Linq` value (`JObject`, `JProperty`'s value, ...).
    Json(serde_json::Value),
}

impl Value {
    /// The name of its .NET type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::String(_) => "string",
            Value::Json(_) => "JToken",
        }
    }
}

/// `ToString()`: how a value becomes policy text (a header value, a body).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            // .NET's Boolean.ToString().
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(n) => write!(f, "{n}"),
            Value::String(s) => f.write_str(s),
            // Newtonsoft's `JToken.ToString()`: indented, or a string's text.
            Value::Json(json) => f.write_str(&super::json::text(json)),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
