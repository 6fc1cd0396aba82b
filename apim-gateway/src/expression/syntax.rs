//! The parsed form: every member and method already resolved against the
//! static type of what it is called on, so evaluation never looks a name up.

use super::Value;

/// Static types: the `context` object model, and the .NET types values have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Context,
    Request,
    Url,
    Headers,
    Variables,
    LastError,
    Response,
    Subscription,
    Deployment,
    Api,
    Operation,
    Guid,
    Str,
    Int,
    Bool,
    Null,
    /// `object`: what `context.Variables[...]` holds; cast it to use it.
    Object,
    JObject,
    JProperty,
    /// `Newtonsoft.Json.Formatting.None`.
    Formatting,
}

impl Ty {
    pub(super) fn name(self) -> &'static str {
        match self {
            Ty::Context => "IProxyRequestContext",
            Ty::Request => "IRequest",
            Ty::Url => "IUrl",
            Ty::Headers => "IReadOnlyDictionary<string, string[]>",
            Ty::Variables => "IReadOnlyDictionary<string, object>",
            Ty::LastError => "ILastError",
            Ty::Response => "IResponse",
            Ty::Subscription => "ISubscription",
            Ty::Deployment => "IDeployment",
            Ty::Api => "IApi",
            Ty::Operation => "IOperation",
            Ty::Guid => "Guid",
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Bool => "bool",
            Ty::Null => "null",
            Ty::Object => "object",
            Ty::JObject => "JObject",
            Ty::JProperty => "JProperty",
            Ty::Formatting => "Formatting",
        }
    }
}

/// A property of the context model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prop {
    Request,
    Response,
    Variables,
    LastError,
    RequestId,
    Subscription,
    Deployment,
    Api,
    Operation,
    Headers,
    IpAddress,
    Method,
    Url,
    OriginalUrl,
    Path,
    Host,
    Scheme,
    Port,
    QueryString,
    StatusCode,
    StatusReason,
    Source,
    Reason,
    Message,
    Scope,
    Section,
    PolicyId,
    Id,
    Name,
    Key,
    Region,
    ServiceName,
    UrlTemplate,
    Length,
}

/// The properties each type has, and their types.
pub(super) fn property(of: Ty, name: &str) -> Option<(Prop, Ty)> {
    use Prop as P;
    Some(match (of, name) {
        (Ty::Context, "Request") => (P::Request, Ty::Request),
        (Ty::Context, "Response") => (P::Response, Ty::Response),
        (Ty::Context, "Variables") => (P::Variables, Ty::Variables),
        (Ty::Context, "LastError") => (P::LastError, Ty::LastError),
        (Ty::Context, "RequestId") => (P::RequestId, Ty::Guid),
        (Ty::Context, "Subscription") => (P::Subscription, Ty::Subscription),
        (Ty::Context, "Deployment") => (P::Deployment, Ty::Deployment),
        (Ty::Context, "Api") => (P::Api, Ty::Api),
        (Ty::Context, "Operation") => (P::Operation, Ty::Operation),
        (Ty::Request, "Headers") | (Ty::Response, "Headers") => (P::Headers, Ty::Headers),
        (Ty::Request, "IpAddress") => (P::IpAddress, Ty::Str),
        (Ty::Request, "Method") | (Ty::Operation, "Method") => (P::Method, Ty::Str),
        (Ty::Request, "Url") => (P::Url, Ty::Url),
        (Ty::Request, "OriginalUrl") => (P::OriginalUrl, Ty::Url),
        (Ty::Url, "Path") | (Ty::Api, "Path") | (Ty::LastError, "Path") => (P::Path, Ty::Str),
        (Ty::Url, "Host") => (P::Host, Ty::Str),
        (Ty::Url, "Scheme") => (P::Scheme, Ty::Str),
        (Ty::Url, "Port") => (P::Port, Ty::Int),
        (Ty::Url, "QueryString") => (P::QueryString, Ty::Str),
        (Ty::Response, "StatusCode") => (P::StatusCode, Ty::Int),
        (Ty::Response, "StatusReason") => (P::StatusReason, Ty::Str),
        (Ty::LastError, "Source") => (P::Source, Ty::Str),
        (Ty::LastError, "Reason") => (P::Reason, Ty::Str),
        (Ty::LastError, "Message") => (P::Message, Ty::Str),
        (Ty::LastError, "Scope") => (P::Scope, Ty::Str),
        (Ty::LastError, "Section") => (P::Section, Ty::Str),
        (Ty::LastError, "PolicyId") => (P::PolicyId, Ty::Str),
        (Ty::Subscription | Ty::Api | Ty::Operation, "Id") => (P::Id, Ty::Str),
        (Ty::Subscription | Ty::Api | Ty::Operation, "Name") => (P::Name, Ty::Str),
        (Ty::Subscription, "Key") => (P::Key, Ty::Str),
        (Ty::Deployment, "Region") => (P::Region, Ty::Str),
        (Ty::Deployment, "ServiceName") => (P::ServiceName, Ty::Str),
        (Ty::Operation, "UrlTemplate") => (P::UrlTemplate, Ty::Str),
        (Ty::Str, "Length") => (P::Length, Ty::Int),
        _ => return None,
    })
}

/// A method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// `Headers.GetValueOrDefault(name, default)`, `Variables.GetValueOrDefault(name[, default])`.
    GetValueOrDefault,
    /// `Headers.ContainsKey`, `Variables.ContainsKey`.
    ContainsKey,
    StartsWith,
    EndsWith,
    Contains,
    Equals,
    ToLower,
    ToUpper,
    Trim,
    /// `ToString()`, and `JObject.ToString(Formatting)`.
    ToString,
}

/// The methods each type has: (method, argument types, result).
pub(super) fn method(of: Ty, name: &str, arguments: &[Ty]) -> Option<(Method, Ty)> {
    use Method as M;
    let strings = |n: usize| {
        arguments.len() == n && arguments.iter().all(|t| matches!(t, Ty::Str | Ty::Object))
    };
    Some(match (of, name) {
        (Ty::Headers, "GetValueOrDefault") if strings(2) => (M::GetValueOrDefault, Ty::Str),
        (Ty::Variables, "GetValueOrDefault") if strings(1) => (M::GetValueOrDefault, Ty::Object),
        (Ty::Variables, "GetValueOrDefault")
            if arguments.len() == 2 && matches!(arguments[0], Ty::Str) =>
        {
            (M::GetValueOrDefault, Ty::Object)
        }
        (Ty::Headers | Ty::Variables, "ContainsKey") if strings(1) => (M::ContainsKey, Ty::Bool),
        (Ty::Str, "StartsWith") if strings(1) => (M::StartsWith, Ty::Bool),
        (Ty::Str, "EndsWith") if strings(1) => (M::EndsWith, Ty::Bool),
        (Ty::Str, "Contains") if strings(1) => (M::Contains, Ty::Bool),
        (Ty::Str, "Equals") if strings(1) => (M::Equals, Ty::Bool),
        (Ty::Str, "ToLower") if arguments.is_empty() => (M::ToLower, Ty::Str),
        (Ty::Str, "ToUpper") if arguments.is_empty() => (M::ToUpper, Ty::Str),
        (Ty::Str, "Trim") if arguments.is_empty() => (M::Trim, Ty::Str),
        (Ty::JObject, "ToString") if arguments.is_empty() || arguments == [Ty::Formatting] => {
            (M::ToString, Ty::Str)
        }
        (Ty::Str | Ty::Int | Ty::Bool | Ty::Guid | Ty::Object, "ToString")
            if arguments.is_empty() =>
        {
            (M::ToString, Ty::Str)
        }
        _ => return None,
    })
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
    Add,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    And,
    Or,
    Coalesce,
}

/// A cast's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CastTo {
    Int,
    Str,
    Bool,
}

/// An expression.
#[derive(Debug)]
pub(super) enum Expr {
    Literal(Value),
    Context,
    Local(usize),
    Formatting,
    Get(Box<Expr>, Prop),
    Call(Box<Expr>, Method, Vec<Expr>),
    /// `context.Variables[name]`.
    Index(Box<Expr>, Box<Expr>),
    /// `Regex.IsMatch(input, pattern)`, the pattern compiled once.
    IsMatch(Box<Expr>, regex::Regex),
    NewJObject(Vec<Expr>),
    NewJProperty(Box<Expr>, Box<Expr>),
    Cast(CastTo, Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// A statement of a `@{ ... }` body.
#[derive(Debug)]
pub(super) enum Stmt {
    Var(usize, Expr),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    Block(Vec<Stmt>),
    Return(Expr),
    /// Sections: their labels (none for `default`) and statements.
    Switch(Expr, Vec<(Vec<Value>, bool, Vec<Stmt>)>),
    Break,
}
