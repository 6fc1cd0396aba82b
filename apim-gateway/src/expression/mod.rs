//! Policy expressions: the C# of `@(...)` and `@{...}`, for the subset the
//! repository's policies use, parsed from the C# specification's grammar
//! (ECMA-334) and evaluated against [`Context`]. Written here rather than
//! taken from a crate: no Rust crate evaluates C#, and the policies need
//! only a small, typed subset, checked whole at start-up.

mod context;
mod eval;
mod lexer;
mod parser;
mod syntax;
#[cfg(test)]
mod tests;
mod value;

pub use context::{
    Api, Context, Deployment, Headers, LastError, Operation, Request, Response, Subscription, Url,
};
pub use value::Value;

/// A parsed policy expression, evaluated once per request.
#[derive(Debug)]
pub struct Expression(parser::Body);

/// A construct the gateway cannot evaluate, found when parsing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{construct}")]
pub struct Unsupported {
    /// Byte offset in the policy value where it starts.
    pub offset: usize,
    /// What it is.
    pub construct: String,
}

/// A failure that depends on the request's data, as .NET would throw it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// `NullReferenceException`.
    #[error("Object reference not set to an instance of an object ({0}).")]
    NullReference(String),
    /// `InvalidCastException`.
    #[error("Unable to cast object of type '{from}' to type '{to}'.")]
    InvalidCast {
        /// The value's type.
        from: &'static str,
        /// The target.
        to: &'static str,
    },
    /// `KeyNotFoundException` of `context.Variables[...]`.
    #[error("The given key '{0}' was not present in the dictionary.")]
    KeyNotFound(String),
    /// `OverflowException`.
    #[error("Arithmetic operation resulted in an overflow.")]
    Overflow,
    /// A block that ended without `return`.
    #[error("The expression returned no value.")]
    NoReturn,
}

impl Expression {
    /// Parses a policy value that is an expression: `@( expr )` or
    /// `@{ statements }`.
    pub fn parse(text: &str) -> Result<Expression, Unsupported> {
        parser::parse(text).map(Expression)
    }

    /// Its value for `context`.
    pub fn eval(&self, context: &Context) -> Result<Value, EvalError> {
        match &self.0 {
            parser::Body::Expression(expr) => eval::expression(expr, context),
            parser::Body::Statements(list, locals) => eval::statements(list, *locals, context),
        }
    }
}

/// Whether a policy value is an expression.
pub fn is_expression(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with("@(") || text.starts_with("@{")
}
