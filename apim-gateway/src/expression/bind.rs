//! Binding: the syntax tree resolved against C#'s static types, the way the
//! compiler does before APIM runs an expression. Every name, member,
//! method, overload, operator and conversion is checked here, so that what
//! the gateway does not support (or what C# would not compile) is refused
//! at start-up with its offset; what is left for run time is only what
//! depends on the request's data. The result is a tree that evaluation
//! walks without looking anything up: `context` members are resolved to
//! fields, locals to slots, regular expressions compiled.

use regex::Regex;

use super::Unsupported;
use super::pattern;
use super::syntax::{
    BinaryOp, Body, Expr, ExprKind, Label, Literal, Stmt, StmtKind, SwitchSection, TypeName,
    UnaryOp,
};

// The bound tree.

/// A bound policy expression.
#[derive(Debug, Clone)]
pub(super) struct Program {
    pub code: Code,
    /// How many locals the body declares.
    pub locals: usize,
}

/// `@( expression )` or `@{ statements }`.
#[derive(Debug, Clone)]
pub(super) enum Code {
    Expr(Op),
    Block(Vec<Step>),
}

/// A bound statement.
#[derive(Debug, Clone)]
pub(super) enum Step {
    Let(usize, Op),
    If(Op, Box<Step>, Option<Box<Step>>),
    Block(Vec<Step>),
    Return(Op),
    Break,
    Switch {
        subject: Op,
        /// Each label's constant and the index of its section.
        cases: Vec<(Constant, usize)>,
        default: Option<usize>,
        sections: Vec<Vec<Step>>,
    },
}

/// A `case` constant.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Constant {
    Null,
    Int(i64),
    Str(String),
}

/// Which URL of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UrlOf {
    Url,
    OriginalUrl,
}

/// Whose headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadersOf {
    Request,
    Response,
}

/// A context member holding a string or an int, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    RequestId,
    RequestMethod,
    RequestIpAddress,
    UrlScheme(UrlOf),
    UrlHost(UrlOf),
    UrlPort(UrlOf),
    UrlPath(UrlOf),
    ResponseStatusCode,
    ResponseStatusReason,
    LastErrorSource,
    LastErrorReason,
    LastErrorMessage,
    LastErrorScope,
    LastErrorSection,
    LastErrorPath,
    LastErrorPolicyId,
    SubscriptionId,
    SubscriptionName,
    SubscriptionKey,
    DeploymentRegion,
    DeploymentServiceName,
    ApiId,
    ApiName,
    ApiPath,
    OperationId,
    OperationName,
    OperationMethod,
    OperationUrlTemplate,
}

/// A context object that can be null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nullable {
    Response,
    LastError,
    Subscription,
    Api,
    Operation,
}

/// A string method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StrMethod {
    StartsWith,
    EndsWith,
    Contains,
    ToLower,
    ToUpper,
    Trim,
}

impl StrMethod {
    pub(super) fn name(self) -> &'static str {
        match self {
            StrMethod::StartsWith => "StartsWith",
            StrMethod::EndsWith => "EndsWith",
            StrMethod::Contains => "Contains",
            StrMethod::ToLower => "ToLower",
            StrMethod::ToUpper => "ToUpper",
            StrMethod::Trim => "Trim",
        }
    }
}

/// An unboxing or reference cast from `object`, checked at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CastTo {
    Int,
    Str,
    Bool,
}

/// Integer arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Integer comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compare {
    Lt,
    Gt,
    Le,
    Ge,
}

/// A bound expression.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Local(usize),
    Field(Field),
    /// `context.Response == null` and the like.
    IsNull(Nullable),
    /// `Headers.GetValueOrDefault(name, default)`.
    HeaderValue {
        of: HeadersOf,
        name: Box<Op>,
        default: Box<Op>,
    },
    /// `Headers.ContainsKey(name)`.
    HeaderContains {
        of: HeadersOf,
        name: Box<Op>,
    },
    /// `Variables.ContainsKey(name)`.
    VariableContains(Box<Op>),
    /// `Variables[name]`.
    Variable(Box<Op>),
    /// `Variables.GetValueOrDefault<T>(name[, default])`: `cast` is `T`
    /// (`None` for `object`); without a default, `default(T)`.
    VariableOrDefault {
        name: Box<Op>,
        default: Option<Box<Op>>,
        cast: Option<CastTo>,
    },
    StrMethod(StrMethod, Box<Op>, Option<Box<Op>>),
    /// `string.Length`.
    Length(Box<Op>),
    /// `ToString()` of anything but a `JObject`.
    ToString(Box<Op>),
    /// `JObject.ToString([formatting])`.
    JsonToString {
        target: Box<Op>,
        indented: bool,
    },
    /// `a.Equals(b)`.
    Equals(Box<Op>, Box<Op>),
    /// `a == b` (`negate` for `!=`) on values of compatible types.
    Equal {
        left: Box<Op>,
        right: Box<Op>,
        negate: bool,
    },
    /// String `+`.
    Concat(Box<Op>, Box<Op>),
    Arith(Arith, Box<Op>, Box<Op>),
    Negate(Box<Op>),
    Compare(Compare, Box<Op>, Box<Op>),
    And(Box<Op>, Box<Op>),
    Or(Box<Op>, Box<Op>),
    Not(Box<Op>),
    Conditional(Box<Op>, Box<Op>, Box<Op>),
    Coalesce(Box<Op>, Box<Op>),
    Cast(CastTo, Box<Op>),
    /// `Regex.IsMatch(input, pattern)`, the pattern compiled once.
    IsMatch(Box<Op>, Regex),
    /// `new JObject(new JProperty(name, value), ...)`.
    NewJObject(Vec<(Op, Op)>),
}

// Static types.

/// The static type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// The type of the `null` literal.
    Null,
    Bool,
    Int,
    Str,
    /// `context.RequestId`.
    Guid,
    /// What `context.Variables[...]` holds.
    Object,
    JObject,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Null => "null",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Str => "string",
            Ty::Guid => "Guid",
            Ty::Object => "object",
            Ty::JObject => "JObject",
        }
    }

    fn is_reference(self) -> bool {
        matches!(self, Ty::Null | Ty::Str | Ty::Object | Ty::JObject)
    }

    /// C#'s implicit conversions among these types: identity, `null` to a
    /// reference type, anything to `object` (boxing).
    fn converts_to(self, to: Ty) -> bool {
        self == to || to == Ty::Object || (self == Ty::Null && to.is_reference())
    }
}

/// The objects of the `context` model: never values, only the receivers of
/// members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Obj {
    Context,
    Request,
    Url(UrlOf),
    Headers(HeadersOf),
    Variables,
    Response,
    LastError,
    Subscription,
    Deployment,
    Api,
    Operation,
}

impl Obj {
    /// How a policy writes it, for messages.
    fn path(self) -> &'static str {
        match self {
            Obj::Context => "context",
            Obj::Request => "context.Request",
            Obj::Url(UrlOf::Url) => "context.Request.Url",
            Obj::Url(UrlOf::OriginalUrl) => "context.Request.OriginalUrl",
            Obj::Headers(HeadersOf::Request) => "context.Request.Headers",
            Obj::Headers(HeadersOf::Response) => "context.Response.Headers",
            Obj::Variables => "context.Variables",
            Obj::Response => "context.Response",
            Obj::LastError => "context.LastError",
            Obj::Subscription => "context.Subscription",
            Obj::Deployment => "context.Deployment",
            Obj::Api => "context.Api",
            Obj::Operation => "context.Operation",
        }
    }

    fn nullable(self) -> Option<Nullable> {
        match self {
            Obj::Response => Some(Nullable::Response),
            Obj::LastError => Some(Nullable::LastError),
            Obj::Subscription => Some(Nullable::Subscription),
            Obj::Api => Some(Nullable::Api),
            Obj::Operation => Some(Nullable::Operation),
            _ => None,
        }
    }

    /// Its properties.
    fn property(self, name: &str) -> Option<Bound> {
        use Field as F;
        let string = |field| Bound::Value(Op::Field(field), Ty::Str);
        let int = |field| Bound::Value(Op::Field(field), Ty::Int);
        Some(match (self, name) {
            (Obj::Context, "Request") => Bound::Object(Obj::Request),
            (Obj::Context, "Response") => Bound::Object(Obj::Response),
            (Obj::Context, "Variables") => Bound::Object(Obj::Variables),
            (Obj::Context, "LastError") => Bound::Object(Obj::LastError),
            (Obj::Context, "Subscription") => Bound::Object(Obj::Subscription),
            (Obj::Context, "Deployment") => Bound::Object(Obj::Deployment),
            (Obj::Context, "Api") => Bound::Object(Obj::Api),
            (Obj::Context, "Operation") => Bound::Object(Obj::Operation),
            (Obj::Context, "RequestId") => Bound::Value(Op::Field(F::RequestId), Ty::Guid),
            (Obj::Request, "Method") => string(F::RequestMethod),
            (Obj::Request, "IpAddress") => string(F::RequestIpAddress),
            (Obj::Request, "Url") => Bound::Object(Obj::Url(UrlOf::Url)),
            (Obj::Request, "OriginalUrl") => Bound::Object(Obj::Url(UrlOf::OriginalUrl)),
            (Obj::Request, "Headers") => Bound::Object(Obj::Headers(HeadersOf::Request)),
            (Obj::Url(of), "Scheme") => string(F::UrlScheme(of)),
            (Obj::Url(of), "Host") => string(F::UrlHost(of)),
            (Obj::Url(of), "Port") => int(F::UrlPort(of)),
            (Obj::Url(of), "Path") => string(F::UrlPath(of)),
            (Obj::Response, "StatusCode") => int(F::ResponseStatusCode),
            (Obj::Response, "StatusReason") => string(F::ResponseStatusReason),
            (Obj::Response, "Headers") => Bound::Object(Obj::Headers(HeadersOf::Response)),
            (Obj::LastError, "Source") => string(F::LastErrorSource),
            (Obj::LastError, "Reason") => string(F::LastErrorReason),
            (Obj::LastError, "Message") => string(F::LastErrorMessage),
            (Obj::LastError, "Scope") => string(F::LastErrorScope),
            (Obj::LastError, "Section") => string(F::LastErrorSection),
            (Obj::LastError, "Path") => string(F::LastErrorPath),
            (Obj::LastError, "PolicyId") => string(F::LastErrorPolicyId),
            (Obj::Subscription, "Id") => string(F::SubscriptionId),
            (Obj::Subscription, "Name") => string(F::SubscriptionName),
            (Obj::Subscription, "Key") => string(F::SubscriptionKey),
            (Obj::Deployment, "Region") => string(F::DeploymentRegion),
            (Obj::Deployment, "ServiceName") => string(F::DeploymentServiceName),
            (Obj::Api, "Id") => string(F::ApiId),
            (Obj::Api, "Name") => string(F::ApiName),
            (Obj::Api, "Path") => string(F::ApiPath),
            (Obj::Operation, "Id") => string(F::OperationId),
            (Obj::Operation, "Name") => string(F::OperationName),
            (Obj::Operation, "Method") => string(F::OperationMethod),
            (Obj::Operation, "UrlTemplate") => string(F::OperationUrlTemplate),
            _ => return None,
        })
    }

    /// Whether `name` is one of its supported methods.
    fn has_method(self, name: &str) -> bool {
        matches!(
            (self, name),
            (
                Obj::Headers(_) | Obj::Variables,
                "GetValueOrDefault" | "ContainsKey"
            )
        )
    }
}

/// What an expression binds to: a value, or something only a member access
/// or an invocation can use.
enum Bound {
    Value(Op, Ty),
    Object(Obj),
    /// The `Regex` class.
    Regex,
    /// `Newtonsoft.Json.Formatting.None` (false) or `.Indented` (true).
    Formatting(bool),
    /// `new JProperty(name, value)`: only an argument of `new JObject`.
    JProperty(Op, Op),
}

/// Paths to types and values spelled out with their namespace.
const QUALIFIED: &[&str] = &[
    "Newtonsoft.Json.Formatting.None",
    "Newtonsoft.Json.Formatting.Indented",
    "System.Text.RegularExpressions.Regex",
];

type Binding<T> = Result<T, Unsupported>;

fn refuse(offset: usize, construct: impl Into<String>) -> Unsupported {
    Unsupported {
        offset,
        construct: construct.into(),
    }
}

/// Binds a parsed body.
pub(super) fn bind(body: &Body) -> Binding<Program> {
    let mut binder = Binder::default();
    let code = match body {
        Body::Expr(expr) => Code::Expr(binder.value(expr)?.0),
        Body::Block(statements, close) => {
            let (steps, end_reachable) = binder.block(statements, true)?;
            if end_reachable {
                return Err(refuse(
                    *close,
                    "not all code paths return a value: the block can reach its end without `return`",
                ));
            }
            Code::Block(steps)
        }
    };
    Ok(Program {
        code,
        locals: binder.slots,
    })
}

#[derive(Default)]
struct Binder {
    /// The locals in scope, innermost block last: name, slot, type.
    scopes: Vec<Vec<(String, usize, Ty)>>,
    /// Slots allocated so far (one per declaration, never reused).
    slots: usize,
    /// Per enclosing switch: whether a reachable `break` leaves it.
    switches: Vec<bool>,
}

impl Binder {
    fn local(&self, name: &str) -> Option<(usize, Ty)> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|scope| scope.iter().rev())
            .find(|(n, _, _)| n == name)
            .map(|(_, slot, ty)| (*slot, *ty))
    }

    // Statements, with C#'s reachability (§13.2): a statement's end is
    // reachable if it can complete normally.

    fn block(&mut self, statements: &[Stmt], reachable: bool) -> Binding<(Vec<Step>, bool)> {
        self.scopes.push(Vec::new());
        let result = self.statements(statements, reachable);
        self.scopes.pop();
        result
    }

    fn statements(
        &mut self,
        statements: &[Stmt],
        mut reachable: bool,
    ) -> Binding<(Vec<Step>, bool)> {
        let mut steps = Vec::with_capacity(statements.len());
        for statement in statements {
            let (step, end) = self.statement(statement, reachable)?;
            steps.extend(step);
            reachable = end;
        }
        Ok((steps, reachable))
    }

    fn statement(&mut self, statement: &Stmt, reachable: bool) -> Binding<(Option<Step>, bool)> {
        Ok(match &statement.kind {
            StmtKind::Empty => (None, reachable),
            StmtKind::Local {
                ty,
                name,
                name_offset,
                init,
            } => (
                Some(self.declaration(ty.as_ref(), name, *name_offset, init)?),
                reachable,
            ),
            StmtKind::Block(statements) => {
                let (steps, end) = self.block(statements, reachable)?;
                (Some(Step::Block(steps)), end)
            }
            StmtKind::If {
                condition,
                then,
                otherwise,
            } => {
                let condition = self.condition(condition, "if")?;
                let constant = match condition {
                    Op::Bool(b) => Some(b),
                    _ => None,
                };
                let (then, then_end) = self.embedded(then, reachable && constant != Some(false))?;
                let else_reachable = reachable && constant != Some(true);
                let (otherwise, else_end) = match otherwise {
                    Some(otherwise) => {
                        let (step, end) = self.embedded(otherwise, else_reachable)?;
                        (Some(Box::new(step)), end)
                    }
                    None => (None, else_reachable),
                };
                (
                    Some(Step::If(condition, Box::new(then), otherwise)),
                    then_end || else_end,
                )
            }
            StmtKind::Return(None) => {
                return Err(refuse(
                    statement.offset,
                    "`return` without a value: a policy expression returns one",
                ));
            }
            StmtKind::Return(Some(value)) => (Some(Step::Return(self.value(value)?.0)), false),
            StmtKind::Break => {
                let Some(broke) = self.switches.last_mut() else {
                    return Err(refuse(statement.offset, "`break` outside a switch"));
                };
                *broke |= reachable;
                (Some(Step::Break), false)
            }
            StmtKind::Switch { subject, sections } => {
                let (step, end) = self.switch(subject, sections, reachable)?;
                (Some(step), end)
            }
        })
    }

    /// The body of `if` or `else`: a block or one statement.
    fn embedded(&mut self, statement: &Stmt, reachable: bool) -> Binding<(Step, bool)> {
        let (step, end) = self.statement(statement, reachable)?;
        Ok((step.unwrap_or(Step::Block(Vec::new())), end))
    }

    fn declaration(
        &mut self,
        ty: Option<&TypeName>,
        name: &str,
        name_offset: usize,
        init: &Expr,
    ) -> Binding<Step> {
        let (op, init_ty) = self.value(init)?;
        let ty = match ty {
            None if init_ty == Ty::Null => {
                return Err(refuse(
                    init.offset,
                    format!("the type of `var {name}` cannot be inferred from `null`"),
                ));
            }
            None => init_ty,
            Some(declared) => {
                let declared_ty = match declared.text.as_str() {
                    "int" | "long" => Ty::Int,
                    "string" => Ty::Str,
                    "bool" => Ty::Bool,
                    "object" => Ty::Object,
                    "JObject" | "Newtonsoft.Json.Linq.JObject" => Ty::JObject,
                    other => {
                        return Err(refuse(
                            declared.offset,
                            format!("the type `{other}` is not supported"),
                        ));
                    }
                };
                if !init_ty.converts_to(declared_ty) {
                    return Err(refuse(
                        init.offset,
                        format!(
                            "a value of type {} cannot initialise the {} `{name}` without a cast",
                            init_ty.name(),
                            declared_ty.name()
                        ),
                    ));
                }
                declared_ty
            }
        };
        // C# refuses a local that hides another, or the lambda's `context`.
        if name == "context" || self.local(name).is_some() {
            return Err(refuse(
                name_offset,
                format!("a local named `{name}` is already defined here"),
            ));
        }
        let slot = self.slots;
        self.slots += 1;
        if let Some(scope) = self.scopes.last_mut() {
            scope.push((name.to_owned(), slot, ty));
        }
        Ok(Step::Let(slot, op))
    }

    fn switch(
        &mut self,
        subject: &Expr,
        sections: &[SwitchSection],
        reachable: bool,
    ) -> Binding<(Step, bool)> {
        let (subject_op, subject_ty) = self.value(subject)?;
        if !matches!(subject_ty, Ty::Int | Ty::Str) {
            return Err(refuse(
                subject.offset,
                format!(
                    "a switch on {} is not supported (int and string are)",
                    subject_ty.name()
                ),
            ));
        }
        let mut cases: Vec<(Constant, usize)> = Vec::new();
        let mut default = None;
        let mut bodies = Vec::with_capacity(sections.len());
        // The switch block is one scope for all its sections.
        self.scopes.push(Vec::new());
        self.switches.push(false);
        let result = (|| {
            for (index, section) in sections.iter().enumerate() {
                for label in &section.labels {
                    match label {
                        Label::Default(at) => {
                            if default.replace(index).is_some() {
                                return Err(refuse(*at, "a second `default` label"));
                            }
                        }
                        Label::Case(expr) => {
                            let constant = case_constant(expr, subject_ty)?;
                            if cases.iter().any(|(c, _)| *c == constant) {
                                return Err(refuse(
                                    expr.offset,
                                    "the same case label appears twice",
                                ));
                            }
                            cases.push((constant, index));
                        }
                    }
                }
                let (steps, end) = self.statements(&section.body, reachable)?;
                if end {
                    return Err(refuse(
                        section.offset,
                        "control cannot fall through from one switch section to the next: end it with `break` or `return`",
                    ));
                }
                bodies.push(steps);
            }
            Ok(())
        })();
        let broke = self.switches.pop().unwrap_or(false);
        self.scopes.pop();
        result?;
        let end = reachable && (broke || default.is_none());
        Ok((
            Step::Switch {
                subject: subject_op,
                cases,
                default,
                sections: bodies,
            },
            end,
        ))
    }

    // Expressions.

    /// A value: what can be stored, compared, returned.
    fn value(&mut self, expr: &Expr) -> Binding<(Op, Ty)> {
        match self.expr(expr)? {
            Bound::Value(op, ty) => Ok((op, ty)),
            Bound::Object(obj) => Err(refuse(
                expr.offset,
                format!(
                    "`{}` is not supported as a value (only its members are)",
                    obj.path()
                ),
            )),
            Bound::Regex => Err(refuse(
                expr.offset,
                "the type `Regex` is not a value: call `Regex.IsMatch(input, pattern)`",
            )),
            Bound::Formatting(_) => Err(refuse(
                expr.offset,
                "`Newtonsoft.Json.Formatting` is only supported as the argument of `JObject.ToString`",
            )),
            Bound::JProperty(..) => Err(refuse(
                expr.offset,
                "`new JProperty(...)` is only supported as an argument of `new JObject(...)`",
            )),
        }
    }

    fn condition(&mut self, expr: &Expr, of: &str) -> Binding<Op> {
        let (op, ty) = self.value(expr)?;
        if ty != Ty::Bool {
            return Err(refuse(
                expr.offset,
                format!("the condition of `{of}` must be a bool, not {}", ty.name()),
            ));
        }
        Ok(op)
    }

    /// A value of type `string` (or `null`): a method's argument.
    fn string_argument(&mut self, expr: &Expr, of: &str) -> Binding<Op> {
        let (op, ty) = self.value(expr)?;
        if !matches!(ty, Ty::Str | Ty::Null) {
            return Err(refuse(
                expr.offset,
                format!("the argument of `{of}` must be a string, not {}", ty.name()),
            ));
        }
        Ok(op)
    }

    fn expr(&mut self, expr: &Expr) -> Binding<Bound> {
        let offset = expr.offset;
        match &expr.kind {
            ExprKind::Literal(literal) => Ok(match literal {
                Literal::Null => Bound::Value(Op::Null, Ty::Null),
                Literal::Bool(b) => Bound::Value(Op::Bool(*b), Ty::Bool),
                Literal::Int(n) => Bound::Value(Op::Int(*n), Ty::Int),
                Literal::Str(s) => Bound::Value(Op::Str(s.clone()), Ty::Str),
                Literal::Char(_) => {
                    return Err(refuse(
                        offset,
                        "character literals (`char`) are not supported",
                    ));
                }
            }),
            ExprKind::Name { name, type_args } => {
                if !type_args.is_empty() {
                    return Err(refuse(
                        offset,
                        format!("the generic name `{name}<...>` is not supported"),
                    ));
                }
                self.name(name, offset)
            }
            ExprKind::PredefinedType(k) => {
                Err(refuse(offset, format!("the type `{k}` is not a value")))
            }
            ExprKind::Member {
                target,
                name,
                name_offset,
                type_args,
            } => {
                if !type_args.is_empty() {
                    return Err(refuse(
                        *name_offset,
                        format!("the generic member `{name}<...>` is not supported"),
                    ));
                }
                self.member(expr, target, name, *name_offset)
            }
            ExprKind::Invoke { target, args } => self.invoke(target, args),
            ExprKind::Index { target, args } => self.index(target, args, offset),
            ExprKind::New { ty, args } => self.new_object(ty, args),
            ExprKind::Cast { ty, operand } => self.cast(ty, operand),
            ExprKind::Unary { op, operand } => self.unary(*op, operand, offset),
            ExprKind::Binary {
                op,
                op_offset,
                left,
                right,
            } => self.binary(*op, *op_offset, left, right),
            ExprKind::Conditional {
                condition,
                when_true,
                when_false,
            } => {
                let condition = self.condition(condition, "?:")?;
                let (a, a_ty) = self.value(when_true)?;
                let (b, b_ty) = self.value(when_false)?;
                let ty = if b_ty.converts_to(a_ty) {
                    a_ty
                } else if a_ty.converts_to(b_ty) {
                    b_ty
                } else {
                    return Err(refuse(
                        when_true.offset,
                        format!(
                            "the branches of `?:` are {} and {}, which C# cannot unify",
                            a_ty.name(),
                            b_ty.name()
                        ),
                    ));
                };
                Ok(Bound::Value(
                    Op::Conditional(Box::new(condition), Box::new(a), Box::new(b)),
                    ty,
                ))
            }
        }
    }

    fn name(&mut self, name: &str, offset: usize) -> Binding<Bound> {
        if let Some((slot, ty)) = self.local(name) {
            return Ok(Bound::Value(Op::Local(slot), ty));
        }
        match name {
            "context" => Ok(Bound::Object(Obj::Context)),
            "Regex" => Ok(Bound::Regex),
            "JObject" | "JProperty" => Err(refuse(
                offset,
                format!("the type `{name}` is only supported in `new {name}(...)`"),
            )),
            _ if name.starts_with(|c: char| c.is_uppercase()) => Err(refuse(
                offset,
                format!("the type `{name}` is not supported"),
            )),
            _ => Err(refuse(
                offset,
                format!(
                    "the name `{name}` is not supported (only `context`, `Regex`, `JObject`, `JProperty`, `Newtonsoft.Json.Formatting` and locals are)"
                ),
            )),
        }
    }

    /// `target.name`, not invoked.
    fn member(
        &mut self,
        whole: &Expr,
        target: &Expr,
        name: &str,
        name_offset: usize,
    ) -> Binding<Bound> {
        if let Some(bound) = self.qualified(whole, name)? {
            return Ok(bound);
        }
        if let ExprKind::PredefinedType(k) = &target.kind {
            return Err(refuse(
                target.offset,
                format!("the static member `{k}.{name}` is not supported"),
            ));
        }
        match self.expr(target)? {
            Bound::Object(obj) => obj.property(name).ok_or_else(|| {
                let construct = if obj.has_method(name) {
                    format!("the method `{name}` of `{}` must be called", obj.path())
                } else {
                    format!("the member `{name}` of `{}` is not supported", obj.path())
                };
                refuse(name_offset, construct)
            }),
            Bound::Value(op, Ty::Str) if name == "Length" => {
                Ok(Bound::Value(Op::Length(Box::new(op)), Ty::Int))
            }
            Bound::Value(_, Ty::Null) => Err(refuse(
                target.offset,
                format!("`null` has no member `{name}`"),
            )),
            Bound::Value(_, ty) => Err(refuse(
                name_offset,
                format!("the member `{name}` of {} is not supported", ty.name()),
            )),
            Bound::Regex => Err(refuse(
                name_offset,
                format!("the member `Regex.{name}` is not supported"),
            )),
            Bound::Formatting(_) | Bound::JProperty(..) => Err(refuse(
                name_offset,
                format!("the member `{name}` is not supported here"),
            )),
        }
    }

    /// A namespace-qualified name (`Newtonsoft.Json.Formatting.None`), if
    /// `whole` is one: a dotted path whose first name is no local.
    fn qualified(&self, whole: &Expr, name: &str) -> Binding<Option<Bound>> {
        let Some((root, path)) = dotted(whole) else {
            return Ok(None);
        };
        if self.local(root).is_some() || matches!(root, "context" | "Regex") {
            return Ok(None);
        }
        match path.as_str() {
            "Newtonsoft.Json.Formatting.None" => return Ok(Some(Bound::Formatting(false))),
            "Newtonsoft.Json.Formatting.Indented" => return Ok(Some(Bound::Formatting(true))),
            "System.Text.RegularExpressions.Regex" => return Ok(Some(Bound::Regex)),
            _ => {}
        }
        let is_prefix = |p: &str| QUALIFIED.iter().any(|q| q.starts_with(&format!("{p}.")));
        if is_prefix(&path) {
            return Err(refuse(
                whole.offset,
                format!("the namespace or type `{path}` is not a value"),
            ));
        }
        let parent = &path[..path.len() - name.len() - 1];
        if is_prefix(parent) {
            return Err(refuse(whole.offset, format!("`{path}` is not supported")));
        }
        Ok(None)
    }

    /// `target(args)`: only methods are invoked.
    fn invoke(&mut self, target: &Expr, args: &[Expr]) -> Binding<Bound> {
        let ExprKind::Member {
            target: receiver,
            name,
            name_offset,
            type_args,
        } = &target.kind
        else {
            // Binding it names what it is (an unknown name, a local).
            self.expr(target)?;
            return Err(refuse(target.offset, "only methods can be invoked"));
        };
        let name_offset = *name_offset;
        if let ExprKind::PredefinedType(k) = &receiver.kind {
            return Err(refuse(
                receiver.offset,
                format!("the static method `{k}.{name}` is not supported"),
            ));
        }
        let receiver_bound = self.expr(receiver)?;
        let generic = |what: &str| {
            refuse(
                name_offset,
                format!("the method `{name}` of {what} takes no type arguments"),
            )
        };
        let arity = |n: &str| {
            refuse(
                name_offset,
                format!("the method `{name}` is supported with {n} here"),
            )
        };
        match receiver_bound {
            Bound::Object(obj @ Obj::Headers(of)) => {
                if !type_args.is_empty() {
                    return Err(generic(obj.path()));
                }
                let what = format!("{}.{name}", obj.path());
                match (name.as_str(), args) {
                    ("GetValueOrDefault", [header, default]) => {
                        let name = self.string_argument(header, &what)?;
                        let default = self.string_argument(default, &what)?;
                        Ok(Bound::Value(
                            Op::HeaderValue {
                                of,
                                name: Box::new(name),
                                default: Box::new(default),
                            },
                            Ty::Str,
                        ))
                    }
                    ("GetValueOrDefault", _) => Err(arity("a name and a default")),
                    ("ContainsKey", [header]) => {
                        let name = self.string_argument(header, &what)?;
                        Ok(Bound::Value(
                            Op::HeaderContains {
                                of,
                                name: Box::new(name),
                            },
                            Ty::Bool,
                        ))
                    }
                    ("ContainsKey", _) => Err(arity("one argument")),
                    _ => Err(refuse(
                        name_offset,
                        format!("the method `{name}` of `{}` is not supported", obj.path()),
                    )),
                }
            }
            Bound::Object(Obj::Variables) => {
                self.variables_method(name, name_offset, type_args, args)
            }
            Bound::Object(obj) => Err(refuse(
                name_offset,
                format!("the method `{name}` of `{}` is not supported", obj.path()),
            )),
            Bound::Regex => {
                if !type_args.is_empty() {
                    return Err(generic("Regex"));
                }
                self.is_match(name, name_offset, args)
            }
            Bound::Value(op, ty) => {
                if !type_args.is_empty() {
                    return Err(generic(ty.name()));
                }
                self.value_method(op, ty, receiver.offset, name, name_offset, args)
            }
            Bound::Formatting(_) | Bound::JProperty(..) => Err(refuse(
                name_offset,
                format!("the method `{name}` is not supported here"),
            )),
        }
    }

    fn variables_method(
        &mut self,
        name: &str,
        name_offset: usize,
        type_args: &[TypeName],
        args: &[Expr],
    ) -> Binding<Bound> {
        let what = format!("context.Variables.{name}");
        match name {
            "ContainsKey" => {
                if !type_args.is_empty() {
                    return Err(refuse(name_offset, "`ContainsKey` takes no type arguments"));
                }
                let [key] = args else {
                    return Err(refuse(name_offset, "`ContainsKey` takes one argument"));
                };
                let key = self.string_argument(key, &what)?;
                Ok(Bound::Value(Op::VariableContains(Box::new(key)), Ty::Bool))
            }
            "GetValueOrDefault" => {
                // `GetValueOrDefault<T>(name[, default])`; without `<T>`, C#
                // infers T from the default.
                let explicit = match type_args {
                    [] => None,
                    [ty] => Some(match ty.text.as_str() {
                        "int" | "long" => (Ty::Int, Some(CastTo::Int)),
                        "string" => (Ty::Str, Some(CastTo::Str)),
                        "bool" => (Ty::Bool, Some(CastTo::Bool)),
                        "object" => (Ty::Object, None),
                        other => {
                            return Err(refuse(
                                ty.offset,
                                format!("the type `{other}` is not supported"),
                            ));
                        }
                    }),
                    _ => {
                        return Err(refuse(
                            name_offset,
                            "`GetValueOrDefault` takes one type argument",
                        ));
                    }
                };
                let (key, default) = match args {
                    [key] => (key, None),
                    [key, default] => (key, Some(default)),
                    _ => {
                        return Err(refuse(
                            name_offset,
                            "`GetValueOrDefault` takes a name and an optional default",
                        ));
                    }
                };
                let key = self.string_argument(key, &what)?;
                let default = match default {
                    Some(default) => Some((self.value(default)?, default.offset)),
                    None => None,
                };
                let (ty, cast) = match (explicit, &default) {
                    (Some(explicit), _) => explicit,
                    (None, None) => {
                        return Err(refuse(
                            name_offset,
                            "`GetValueOrDefault` without a default needs its type: `GetValueOrDefault<string>(name)`",
                        ));
                    }
                    (None, Some(((_, ty), at))) => match ty {
                        Ty::Int => (Ty::Int, Some(CastTo::Int)),
                        Ty::Str => (Ty::Str, Some(CastTo::Str)),
                        Ty::Bool => (Ty::Bool, Some(CastTo::Bool)),
                        Ty::Object => (Ty::Object, None),
                        other => {
                            return Err(refuse(
                                *at,
                                format!(
                                    "the default of `GetValueOrDefault` cannot be {}",
                                    other.name()
                                ),
                            ));
                        }
                    },
                };
                let default = match default {
                    Some(((op, default_ty), at)) => {
                        if !default_ty.converts_to(ty) {
                            return Err(refuse(
                                at,
                                format!("the default is {}, not {}", default_ty.name(), ty.name()),
                            ));
                        }
                        Some(Box::new(op))
                    }
                    None => None,
                };
                Ok(Bound::Value(
                    Op::VariableOrDefault {
                        name: Box::new(key),
                        default,
                        cast,
                    },
                    ty,
                ))
            }
            _ => Err(refuse(
                name_offset,
                format!("the method `{name}` of `context.Variables` is not supported"),
            )),
        }
    }

    /// `Regex.IsMatch(input, "pattern")`.
    fn is_match(&mut self, name: &str, name_offset: usize, args: &[Expr]) -> Binding<Bound> {
        if name != "IsMatch" {
            return Err(refuse(
                name_offset,
                format!("the method `Regex.{name}` is not supported"),
            ));
        }
        let (input, pattern) = match args {
            [input, pattern] => (input, pattern),
            [_, _, options, ..] => {
                return Err(refuse(
                    options.offset,
                    "`Regex.IsMatch` with RegexOptions or a timeout is not supported",
                ));
            }
            _ => {
                return Err(refuse(
                    name_offset,
                    "`Regex.IsMatch` takes an input and a pattern",
                ));
            }
        };
        let input = self.string_argument(input, "Regex.IsMatch")?;
        let ExprKind::Literal(Literal::Str(text)) = &pattern.kind else {
            return Err(refuse(
                pattern.offset,
                "the pattern of `Regex.IsMatch` must be a string literal (it is compiled once, at start-up)",
            ));
        };
        let unsupported = |why: String| {
            refuse(
                pattern.offset,
                format!("the regular expression {text:?} is not supported: {why}"),
            )
        };
        let translated = pattern::translate(text).map_err(unsupported)?;
        let regex = Regex::new(&translated).map_err(|e| {
            // The crate's message ends with its one-line reason.
            let message = e.to_string();
            let reason = message.lines().last().unwrap_or_default();
            unsupported(reason.trim_start_matches("error: ").to_owned())
        })?;
        Ok(Bound::Value(Op::IsMatch(Box::new(input), regex), Ty::Bool))
    }

    /// A method of a value: `string`'s, and `ToString`/`Equals`.
    fn value_method(
        &mut self,
        op: Op,
        ty: Ty,
        receiver_offset: usize,
        name: &str,
        name_offset: usize,
        args: &[Expr],
    ) -> Binding<Bound> {
        if ty == Ty::Null {
            return Err(refuse(
                receiver_offset,
                format!("`null` has no method `{name}`"),
            ));
        }
        let target = Box::new(op);
        let no_arguments = |bound: Bound| {
            if args.is_empty() {
                Ok(bound)
            } else {
                Err(refuse(
                    name_offset,
                    format!(
                        "the method `{name}` of {} takes no arguments here",
                        ty.name()
                    ),
                ))
            }
        };
        match (ty, name) {
            (Ty::JObject, "ToString") => match args {
                [] => Ok(Bound::Value(
                    Op::JsonToString {
                        target,
                        indented: true,
                    },
                    Ty::Str,
                )),
                [formatting] => match self.expr(formatting)? {
                    Bound::Formatting(indented) => {
                        Ok(Bound::Value(Op::JsonToString { target, indented }, Ty::Str))
                    }
                    _ => Err(refuse(
                        formatting.offset,
                        "the argument of `JObject.ToString` must be `Newtonsoft.Json.Formatting.None` or `.Indented`",
                    )),
                },
                _ => Err(refuse(
                    name_offset,
                    "`JObject.ToString` takes at most a Formatting here",
                )),
            },
            (_, "ToString") => no_arguments(Bound::Value(Op::ToString(target), Ty::Str)),
            (Ty::Str, "Length") => Err(refuse(
                name_offset,
                "`Length` is a property of string: write it without `()`",
            )),
            (Ty::Str | Ty::Int | Ty::Bool | Ty::Object, "Equals") => {
                let [other] = args else {
                    return Err(refuse(name_offset, "`Equals` takes one argument here"));
                };
                let (other, _) = self.value(other)?;
                Ok(Bound::Value(Op::Equals(target, Box::new(other)), Ty::Bool))
            }
            (Ty::Str, "StartsWith" | "EndsWith" | "Contains") => {
                let method = match name {
                    "StartsWith" => StrMethod::StartsWith,
                    "EndsWith" => StrMethod::EndsWith,
                    _ => StrMethod::Contains,
                };
                let [value] = args else {
                    return Err(refuse(
                        name_offset,
                        format!("`{name}` is supported with one string argument"),
                    ));
                };
                let value = self.string_argument(value, name)?;
                Ok(Bound::Value(
                    Op::StrMethod(method, target, Some(Box::new(value))),
                    Ty::Bool,
                ))
            }
            (Ty::Str, "ToLower" | "ToLowerInvariant") => no_arguments(Bound::Value(
                Op::StrMethod(StrMethod::ToLower, target, None),
                Ty::Str,
            )),
            (Ty::Str, "ToUpper" | "ToUpperInvariant") => no_arguments(Bound::Value(
                Op::StrMethod(StrMethod::ToUpper, target, None),
                Ty::Str,
            )),
            (Ty::Str, "Trim") => no_arguments(Bound::Value(
                Op::StrMethod(StrMethod::Trim, target, None),
                Ty::Str,
            )),
            (ty, _) => Err(refuse(
                name_offset,
                format!("the method `{name}` of {} is not supported", ty.name()),
            )),
        }
    }

    /// `target[args]`: only `context.Variables[name]`.
    fn index(&mut self, target: &Expr, args: &[Expr], offset: usize) -> Binding<Bound> {
        match self.expr(target)? {
            Bound::Object(Obj::Variables) => {
                let [key] = args else {
                    return Err(refuse(offset, "`context.Variables[...]` takes one name"));
                };
                let key = self.string_argument(key, "context.Variables[...]")?;
                Ok(Bound::Value(Op::Variable(Box::new(key)), Ty::Object))
            }
            Bound::Object(obj) => Err(refuse(
                offset,
                format!("indexing `{}` is not supported", obj.path()),
            )),
            Bound::Value(_, ty) => Err(refuse(
                offset,
                format!("indexing {} is not supported", ty.name()),
            )),
            _ => Err(refuse(offset, "indexing this is not supported")),
        }
    }

    /// `new JObject(new JProperty(name, value), ...)`.
    fn new_object(&mut self, ty: &TypeName, args: &[Expr]) -> Binding<Bound> {
        match ty.text.as_str() {
            "JObject" | "Newtonsoft.Json.Linq.JObject" => {
                let mut properties = Vec::with_capacity(args.len());
                for arg in args {
                    match self.expr(arg)? {
                        Bound::JProperty(name, value) => properties.push((name, value)),
                        _ => {
                            return Err(refuse(
                                arg.offset,
                                "an argument of `new JObject(...)` must be `new JProperty(name, value)`",
                            ));
                        }
                    }
                }
                Ok(Bound::Value(Op::NewJObject(properties), Ty::JObject))
            }
            "JProperty" | "Newtonsoft.Json.Linq.JProperty" => {
                let [name, value] = args else {
                    return Err(refuse(
                        ty.offset,
                        "`new JProperty(...)` is supported with a name and a value",
                    ));
                };
                let name = self.string_argument(name, "new JProperty")?;
                let (value, _) = self.value(value)?;
                Ok(Bound::JProperty(name, value))
            }
            other => Err(refuse(
                ty.offset,
                format!("the type `{other}` is not supported"),
            )),
        }
    }

    /// `(T)operand` for T in int, long, string, bool.
    fn cast(&mut self, ty: &TypeName, operand: &Expr) -> Binding<Bound> {
        let (to, to_ty) = match ty.text.as_str() {
            "int" | "long" => (CastTo::Int, Ty::Int),
            "string" => (CastTo::Str, Ty::Str),
            "bool" => (CastTo::Bool, Ty::Bool),
            other => {
                return Err(refuse(
                    ty.offset,
                    format!(
                        "the type `{other}` is not supported (casts to int, long, string and bool are)"
                    ),
                ));
            }
        };
        let (op, from) = self.value(operand)?;
        let op = match from {
            _ if from == to_ty => op,
            Ty::Object => Op::Cast(to, Box::new(op)),
            Ty::Null if to_ty == Ty::Str => Op::Null,
            _ => {
                return Err(refuse(
                    operand.offset,
                    format!(
                        "a cast from {} to {} is not supported (C# has no such conversion)",
                        from.name(),
                        to_ty.name()
                    ),
                ));
            }
        };
        Ok(Bound::Value(op, to_ty))
    }

    fn unary(&mut self, op: UnaryOp, operand: &Expr, offset: usize) -> Binding<Bound> {
        let (value, ty) = self.value(operand)?;
        let (wanted, text) = match op {
            UnaryOp::Not => (Ty::Bool, "!"),
            UnaryOp::Negate => (Ty::Int, "-"),
            UnaryOp::Plus => (Ty::Int, "+"),
        };
        if ty != wanted {
            return Err(refuse(
                offset,
                format!("the operator `{text}` cannot be applied to {}", ty.name()),
            ));
        }
        Ok(Bound::Value(
            match op {
                UnaryOp::Not => Op::Not(Box::new(value)),
                UnaryOp::Negate => Op::Negate(Box::new(value)),
                UnaryOp::Plus => value,
            },
            ty,
        ))
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        op_offset: usize,
        left: &Expr,
        right: &Expr,
    ) -> Binding<Bound> {
        if matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
            return self.equality(op == BinaryOp::Ne, op_offset, left, right);
        }
        let (a, a_ty) = self.value(left)?;
        let (b, b_ty) = self.value(right)?;
        let mismatch = || {
            refuse(
                op_offset,
                format!(
                    "the operator `{}` cannot be applied to {} and {}",
                    op.text(),
                    a_ty.name(),
                    b_ty.name()
                ),
            )
        };
        let (a, b) = (Box::new(a), Box::new(b));
        let ints = a_ty == Ty::Int && b_ty == Ty::Int;
        let bools = a_ty == Ty::Bool && b_ty == Ty::Bool;
        let (op, ty) = match op {
            BinaryOp::Or if bools => (Op::Or(a, b), Ty::Bool),
            BinaryOp::And if bools => (Op::And(a, b), Ty::Bool),
            BinaryOp::Add if ints => (Op::Arith(Arith::Add, a, b), Ty::Int),
            // String concatenation: either operand a string (§12.12.5).
            BinaryOp::Add
                if (a_ty == Ty::Str || b_ty == Ty::Str)
                    && !(a_ty == Ty::Null && b_ty == Ty::Null) =>
            {
                (Op::Concat(a, b), Ty::Str)
            }
            BinaryOp::Sub if ints => (Op::Arith(Arith::Sub, a, b), Ty::Int),
            BinaryOp::Mul if ints => (Op::Arith(Arith::Mul, a, b), Ty::Int),
            BinaryOp::Div if ints => (Op::Arith(Arith::Div, a, b), Ty::Int),
            BinaryOp::Rem if ints => (Op::Arith(Arith::Rem, a, b), Ty::Int),
            BinaryOp::Lt if ints => (Op::Compare(Compare::Lt, a, b), Ty::Bool),
            BinaryOp::Gt if ints => (Op::Compare(Compare::Gt, a, b), Ty::Bool),
            BinaryOp::Le if ints => (Op::Compare(Compare::Le, a, b), Ty::Bool),
            BinaryOp::Ge if ints => (Op::Compare(Compare::Ge, a, b), Ty::Bool),
            BinaryOp::Coalesce if a_ty.is_reference() => {
                // §12.15: the type of `a ?? b` is A if b converts to A,
                // else B if A converts to B.
                let ty = if b_ty.converts_to(a_ty) {
                    a_ty
                } else if a_ty.converts_to(b_ty) {
                    b_ty
                } else {
                    return Err(mismatch());
                };
                (Op::Coalesce(a, b), ty)
            }
            _ => return Err(mismatch()),
        };
        Ok(Bound::Value(op, ty))
    }

    /// `==` and `!=` (§12.12.6-12.12.10): on values of one type, and
    /// context objects against `null`.
    fn equality(
        &mut self,
        negate: bool,
        op_offset: usize,
        left: &Expr,
        right: &Expr,
    ) -> Binding<Bound> {
        let text = if negate { "!=" } else { "==" };
        let a = self.expr(left)?;
        let b = self.expr(right)?;
        let is_null = |obj: Obj| {
            let test = match obj.nullable() {
                Some(nullable) => Op::IsNull(nullable),
                // `context.Request` is never null.
                None => Op::Bool(false),
            };
            if negate {
                Op::Not(Box::new(test))
            } else {
                test
            }
        };
        match (a, b) {
            (Bound::Object(obj), Bound::Value(Op::Null, Ty::Null))
            | (Bound::Value(Op::Null, Ty::Null), Bound::Object(obj)) => {
                Ok(Bound::Value(is_null(obj), Ty::Bool))
            }
            (Bound::Value(a, a_ty), Bound::Value(b, b_ty)) => {
                let comparable = match (a_ty, b_ty) {
                    (Ty::Object, Ty::Object | Ty::Str) | (Ty::Str, Ty::Object) => {
                        return Err(refuse(
                            op_offset,
                            format!(
                                "`{text}` between {} and {} compares references in C#: cast the object first, e.g. `(string)context.Variables[\"name\"]`",
                                a_ty.name(),
                                b_ty.name()
                            ),
                        ));
                    }
                    (x, y) if x == y => x != Ty::JObject,
                    (Ty::Null, y) => y.is_reference(),
                    (x, Ty::Null) => x.is_reference(),
                    _ => false,
                };
                if !comparable {
                    return Err(refuse(
                        op_offset,
                        format!(
                            "the operator `{text}` cannot compare {} and {}",
                            a_ty.name(),
                            b_ty.name()
                        ),
                    ));
                }
                Ok(Bound::Value(
                    Op::Equal {
                        left: Box::new(a),
                        right: Box::new(b),
                        negate,
                    },
                    Ty::Bool,
                ))
            }
            _ => Err(refuse(
                op_offset,
                format!(
                    "the operator `{text}` is only supported on values, and on context objects against `null`"
                ),
            )),
        }
    }
}

/// The first name and the dotted text of `a.b.c`, if `expr` is one.
fn dotted(expr: &Expr) -> Option<(&str, String)> {
    match &expr.kind {
        ExprKind::Name { name, type_args } if type_args.is_empty() => {
            Some((name.as_str(), name.clone()))
        }
        ExprKind::Member {
            target,
            name,
            type_args,
            ..
        } if type_args.is_empty() => {
            let (root, path) = dotted(target)?;
            Some((root, format!("{path}.{name}")))
        }
        _ => None,
    }
}

/// A `case` label's constant, of the switch's type.
fn case_constant(expr: &Expr, subject: Ty) -> Binding<Constant> {
    let constant = match &expr.kind {
        ExprKind::Literal(Literal::Int(n)) => Some(Constant::Int(*n)),
        ExprKind::Unary {
            op: UnaryOp::Negate,
            operand,
        } => match &operand.kind {
            ExprKind::Literal(Literal::Int(n)) => Some(Constant::Int(-n)),
            _ => None,
        },
        ExprKind::Literal(Literal::Str(s)) => Some(Constant::Str(s.clone())),
        ExprKind::Literal(Literal::Null) => Some(Constant::Null),
        _ => None,
    };
    match (constant, subject) {
        (Some(c @ Constant::Int(_)), Ty::Int) => Ok(c),
        (Some(c @ (Constant::Str(_) | Constant::Null)), Ty::Str) => Ok(c),
        (Some(_), _) => Err(refuse(
            expr.offset,
            format!(
                "a case label of this switch must be a constant of type {}",
                subject.name()
            ),
        )),
        (None, _) => Err(refuse(
            expr.offset,
            "a case label must be an int or string literal",
        )),
    }
}
