//! Policy expressions: the C# of `@(...)` and `@{...}`, for the subset the
//! repository's policies use, parsed from the C# specification's grammar
//! (ECMA-334) and evaluated against [`Context`]. Written here rather than
//! taken from a crate: no Rust crate evaluates C#, and the policies need
//! only a small, typed subset, checked whole at start-up.
//!
//! An expression goes through four stages, one module each: `lexer`
//! (tokens), `parser` (the syntax tree of `syntax`), `bind` (names, members
//! and types resolved, as the C# compiler would; everything unsupported is
//! refused here, with its offset) and `eval` (the bound tree against one
//! request). `pattern` translates .NET regular expressions, `json` writes
//! JSON as Newtonsoft does.

mod bind;
mod context;
mod eval;
mod json;
mod lexer;
mod parser;
mod pattern;
mod syntax;
#[cfg(test)]
mod tests;
mod value;

pub use context::{
    Api, Context, Deployment, Headers, LastError, Operation, Request, Response, Subscription, Url,
};
pub use value::Value;

/// A parsed policy expression: parsed and checked once, evaluated per
/// request.
#[derive(Debug, Clone)]
pub struct Expression {
    program: bind::Program,
}

impl Expression {
    /// Parses `text`, a whole policy value that is an expression:
    /// `@( expr )` or `@{ statements }`, whitespace allowed around it.
    /// Anything the gateway cannot evaluate is refused here, never at run
    /// time.
    pub fn parse(text: &str) -> Result<Expression, Unsupported> {
        let syntax = parser::parse(text)?;
        let program = bind::bind(&syntax)?;
        Ok(Expression { program })
    }

    /// Its value for `context`.
    pub fn eval(&self, context: &Context) -> Result<Value, EvalError> {
        eval::run(&self.program, context)
    }
}

/// Whether a policy value is an expression (trimmed, it starts with `@(`
/// or `@{`).
pub fn is_expression(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with("@(") || text.starts_with("@{")
}

/// A construct the gateway cannot evaluate, found when parsing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{construct}")]
pub struct Unsupported {
    /// Byte offset in the policy value where the construct starts.
    pub offset: usize,
    /// What it is, in words (`the type `DateTime` is not supported`).
    pub construct: String,
}

/// A failure that depends on the request's data, as .NET would throw it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// `NullReferenceException`: a member of something null.
    #[error("Object reference not set to an instance of an object ({0}).")]
    NullReference(String),
    /// `InvalidCastException`: a cast of a value of another type.
    #[error("Unable to cast object of type '{from}' to type '{to}'.")]
    InvalidCast {
        /// The value's .NET type.
        from: &'static str,
        /// The cast's.
        to: &'static str,
    },
    /// `KeyNotFoundException` of `context.Variables[...]`.
    #[error("The given key '{0}' was not present in the dictionary.")]
    KeyNotFound(String),
    /// `ArgumentNullException`: a null argument.
    #[error("Value cannot be null. (Parameter '{0}')")]
    ArgumentNull(&'static str),
    /// `ArgumentException` (a JObject's duplicate property).
    #[error("{0}")]
    Argument(String),
    /// `DivideByZeroException`.
    #[error("Attempted to divide by zero.")]
    DivideByZero,
    /// `OverflowException`.
    #[error("Arithmetic operation resulted in an overflow.")]
    Overflow,
    /// A block that ended without `return` (binding refuses those; kept so
    /// that evaluation never has to assume it).
    #[error("The expression returned no value.")]
    NoReturn,
}
