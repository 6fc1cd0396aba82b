//! Evaluation: the parsed form against one request's [`Context`]. Only
//! what depends on the data can fail here (a null member, a cast of the
//! wrong value, a missing variable), as it would in .NET.

use std::collections::BTreeMap;

use super::syntax::{BinOp, CastTo, Expr, Method, Prop, Stmt};
use super::{
    Api, Context, Deployment, EvalError, Headers, LastError, Operation, Request, Response,
    Subscription, Url, Value,
};

/// A value during evaluation: a plain value, or a part of the context.
#[derive(Debug, Clone)]
enum R<'c> {
    V(Value),
    Context,
    Request(&'c Request),
    Url(&'c Url),
    Headers(&'c Headers),
    Variables(&'c BTreeMap<String, Value>),
    LastError(&'c LastError),
    Response(&'c Response),
    Subscription(&'c Subscription),
    Deployment(&'c Deployment),
    Api(&'c Api),
    Operation(&'c Operation),
    Guid(&'c str),
    Property(String, Value),
    Formatting,
}

impl R<'_> {
    fn is_null(&self) -> bool {
        matches!(self, R::V(Value::Null))
    }

    /// Its .NET type's name: what `ToString()` of a context object gives,
    /// and all an error message says of one (never its contents, which may
    /// hold a token).
    fn type_name(&self) -> &'static str {
        match self {
            R::V(value) => value.type_name(),
            R::Context => "IProxyRequestContext",
            R::Request(_) => "IRequest",
            R::Url(_) => "IUrl",
            R::Headers(_) => "IReadOnlyDictionary<string, string[]>",
            R::Variables(_) => "IReadOnlyDictionary<string, object>",
            R::LastError(_) => "ILastError",
            R::Response(_) => "IResponse",
            R::Subscription(_) => "ISubscription",
            R::Deployment(_) => "IDeployment",
            R::Api(_) => "IApi",
            R::Operation(_) => "IOperation",
            R::Guid(_) => "Guid",
            R::Property(..) => "JProperty",
            R::Formatting => "Formatting",
        }
    }

    fn into_value(self) -> Value {
        match self {
            R::V(value) => value,
            R::Guid(guid) => Value::String(guid.to_owned()),
            other => Value::String(other.type_name().to_owned()),
        }
    }
}

pub(super) struct Frame<'c> {
    context: &'c Context,
    locals: Vec<Option<R<'c>>>,
}

enum Flow<'c> {
    Next,
    Break,
    Return(R<'c>),
}

pub(super) fn expression(expr: &Expr, context: &Context) -> Result<Value, EvalError> {
    let mut frame = Frame {
        context,
        locals: Vec::new(),
    };
    Ok(frame.eval(expr)?.into_value())
}

pub(super) fn statements(
    list: &[Stmt],
    locals: usize,
    context: &Context,
) -> Result<Value, EvalError> {
    let mut frame = Frame {
        context,
        locals: vec![None; locals],
    };
    match frame.run(list)? {
        Flow::Return(value) => Ok(value.into_value()),
        _ => Err(EvalError::NoReturn),
    }
}

fn text(r: &R<'_>) -> String {
    match r {
        R::V(value) => value.to_string(),
        R::Guid(guid) => (*guid).to_owned(),
        other => other.type_name().to_owned(),
    }
}

impl<'c> Frame<'c> {
    fn run(&mut self, list: &[Stmt]) -> Result<Flow<'c>, EvalError> {
        for stmt in list {
            match self.exec(stmt)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    fn exec(&mut self, stmt: &Stmt) -> Result<Flow<'c>, EvalError> {
        match stmt {
            Stmt::Var(slot, value) => {
                let value = self.eval(value)?;
                if let Some(local) = self.locals.get_mut(*slot) {
                    *local = Some(value);
                }
                Ok(Flow::Next)
            }
            Stmt::If(condition, then, otherwise) => {
                if self.truth(condition)? {
                    self.exec(then)
                } else if let Some(otherwise) = otherwise {
                    self.exec(otherwise)
                } else {
                    Ok(Flow::Next)
                }
            }
            Stmt::Block(list) => self.run(list),
            Stmt::Return(value) => Ok(Flow::Return(self.eval(value)?)),
            Stmt::Break => Ok(Flow::Break),
            Stmt::Switch(subject, sections) => {
                let subject = self.eval(subject)?.into_value();
                let chosen = sections
                    .iter()
                    .find(|(labels, _, _)| labels.contains(&subject))
                    .or_else(|| sections.iter().find(|(_, is_default, _)| *is_default));
                match chosen {
                    Some((_, _, body)) => match self.run(body)? {
                        Flow::Break | Flow::Next => Ok(Flow::Next),
                        returned => Ok(returned),
                    },
                    None => Ok(Flow::Next),
                }
            }
        }
    }

    fn truth(&mut self, expr: &Expr) -> Result<bool, EvalError> {
        match self.eval(expr)? {
            R::V(Value::Bool(b)) => Ok(b),
            other => Err(EvalError::InvalidCast {
                from: other.into_value().type_name(),
                to: "bool",
            }),
        }
    }

    fn eval(&mut self, expr: &Expr) -> Result<R<'c>, EvalError> {
        let context = self.context;
        Ok(match expr {
            Expr::Literal(value) => R::V(value.clone()),
            Expr::Context => R::Context,
            Expr::Formatting => R::Formatting,
            Expr::Local(slot) => self
                .locals
                .get(*slot)
                .cloned()
                .flatten()
                .ok_or(EvalError::NoReturn)?,
            Expr::Get(of, prop) => {
                let of = self.eval(of)?;
                get(context, of, *prop)?
            }
            Expr::Call(of, method, arguments) => {
                let of = self.eval(of)?;
                let arguments = arguments
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<Vec<_>, _>>()?;
                call(of, *method, arguments)?
            }
            Expr::Index(of, index) => {
                let R::Variables(variables) = self.eval(of)? else {
                    return Err(EvalError::NullReference("Variables".to_owned()));
                };
                let name = text(&self.eval(index)?);
                R::V(
                    variables
                        .get(&name)
                        .cloned()
                        .ok_or(EvalError::KeyNotFound(name))?,
                )
            }
            Expr::IsMatch(input, regex) => {
                let input = self.eval(input)?;
                if input.is_null() {
                    return Err(EvalError::NullReference("Regex.IsMatch input".to_owned()));
                }
                R::V(Value::Bool(regex.is_match(&text(&input))))
            }
            Expr::NewJObject(properties) => {
                let mut object = serde_json::Map::new();
                for property in properties {
                    if let R::Property(name, value) = self.eval(property)? {
                        object.insert(name, json(value));
                    }
                }
                R::V(Value::Json(serde_json::Value::Object(object)))
            }
            Expr::NewJProperty(name, value) => {
                let name = text(&self.eval(name)?);
                R::Property(name, self.eval(value)?.into_value())
            }
            Expr::Cast(target, operand) => {
                let value = self.eval(operand)?.into_value();
                R::V(match (target, value) {
                    (CastTo::Int, Value::Int(n)) => Value::Int(n),
                    (CastTo::Str, Value::String(s)) => Value::String(s),
                    (CastTo::Str, Value::Null) => Value::Null,
                    (CastTo::Bool, Value::Bool(b)) => Value::Bool(b),
                    (CastTo::Int | CastTo::Bool, Value::Null) => {
                        return Err(EvalError::NullReference(
                            "a cast of null to a value type".to_owned(),
                        ));
                    }
                    (target, other) => {
                        return Err(EvalError::InvalidCast {
                            from: other.type_name(),
                            to: match target {
                                CastTo::Int => "int",
                                CastTo::Str => "string",
                                CastTo::Bool => "bool",
                            },
                        });
                    }
                })
            }
            Expr::Not(operand) => R::V(Value::Bool(!self.truth(operand)?)),
            Expr::Conditional(condition, then, otherwise) => {
                if self.truth(condition)? {
                    self.eval(then)?
                } else {
                    self.eval(otherwise)?
                }
            }
            Expr::Binary(op, left, right) => match op {
                BinOp::And => R::V(Value::Bool(self.truth(left)? && self.truth(right)?)),
                BinOp::Or => R::V(Value::Bool(self.truth(left)? || self.truth(right)?)),
                BinOp::Coalesce => {
                    let left = self.eval(left)?;
                    if left.is_null() {
                        self.eval(right)?
                    } else {
                        left
                    }
                }
                _ => {
                    let left = self.eval(left)?;
                    let right = self.eval(right)?;
                    binary(*op, left, right)?
                }
            },
        })
    }
}

fn json(value: Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(b),
        Value::Int(n) => serde_json::Value::from(n),
        Value::String(s) => serde_json::Value::String(s),
        Value::Json(j) => j,
    }
}

fn binary<'c>(op: BinOp, left: R<'c>, right: R<'c>) -> Result<R<'c>, EvalError> {
    let (left_null, right_null) = (left.is_null(), right.is_null());
    Ok(R::V(match op {
        BinOp::Eq | BinOp::Ne => {
            let equal = match (&left, &right) {
                _ if left_null || right_null => left_null == right_null,
                (R::V(a), R::V(b)) => a == b,
                (R::Guid(a), R::Guid(b)) => a == b,
                (R::Guid(a), R::V(Value::String(b))) | (R::V(Value::String(b)), R::Guid(a)) => {
                    a == b
                }
                // Two parts of the context: the same object.
                _ => std::mem::discriminant(&left) == std::mem::discriminant(&right),
            };
            Value::Bool(equal == (op == BinOp::Eq))
        }
        BinOp::Add => match (left, right) {
            (R::V(Value::Int(a)), R::V(Value::Int(b))) => {
                Value::Int(a.checked_add(b).ok_or(EvalError::Overflow)?)
            }
            (a, b) => Value::String(text(&a) + &text(&b)),
        },
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let (R::V(Value::Int(a)), R::V(Value::Int(b))) = (&left, &right) else {
                return Err(EvalError::InvalidCast {
                    from: left.into_value().type_name(),
                    to: "int",
                });
            };
            Value::Bool(match op {
                BinOp::Lt => a < b,
                BinOp::Gt => a > b,
                BinOp::Le => a <= b,
                _ => a >= b,
            })
        }
        BinOp::And | BinOp::Or | BinOp::Coalesce => unreachable_binary()?,
    }))
}

fn unreachable_binary() -> Result<Value, EvalError> {
    Err(EvalError::NullReference(
        "a short-circuit operator".to_owned(),
    ))
}

fn get<'c>(context: &'c Context, of: R<'c>, prop: Prop) -> Result<R<'c>, EvalError> {
    let s = |text: &'c str| R::V(Value::String(text.to_owned()));
    Ok(match (of, prop) {
        (R::Context, Prop::Request) => R::Request(&context.request),
        (R::Context, Prop::Response) => context
            .response
            .as_ref()
            .map_or(R::V(Value::Null), R::Response),
        (R::Context, Prop::Variables) => R::Variables(&context.variables),
        (R::Context, Prop::LastError) => context
            .last_error
            .as_ref()
            .map_or(R::V(Value::Null), R::LastError),
        (R::Context, Prop::RequestId) => R::Guid(&context.request_id),
        (R::Context, Prop::Subscription) => context
            .subscription
            .as_ref()
            .map_or(R::V(Value::Null), R::Subscription),
        (R::Context, Prop::Deployment) => R::Deployment(&context.deployment),
        (R::Context, Prop::Api) => context.api.as_ref().map_or(R::V(Value::Null), R::Api),
        (R::Context, Prop::Operation) => context
            .operation
            .as_ref()
            .map_or(R::V(Value::Null), R::Operation),
        (R::Request(r), Prop::Headers) => R::Headers(&r.headers),
        (R::Request(r), Prop::IpAddress) => s(&r.ip_address),
        (R::Request(r), Prop::Method) => s(&r.method),
        (R::Request(r), Prop::Url) => R::Url(&r.url),
        (R::Request(r), Prop::OriginalUrl) => R::Url(&r.original_url),
        (R::Url(u), Prop::Path) => s(&u.path),
        (R::Url(u), Prop::Host) => s(&u.host),
        (R::Url(u), Prop::Scheme) => s(&u.scheme),
        (R::Url(u), Prop::Port) => R::V(Value::Int(i64::from(u.port))),
        (R::Url(u), Prop::QueryString) => {
            let pairs: Vec<String> = u.query.iter().map(|(n, v)| format!("{n}={v}")).collect();
            R::V(Value::String(if pairs.is_empty() {
                String::new()
            } else {
                format!("?{}", pairs.join("&"))
            }))
        }
        (R::Response(r), Prop::StatusCode) => R::V(Value::Int(i64::from(r.status_code))),
        (R::Response(r), Prop::StatusReason) => s(&r.status_reason),
        (R::Response(r), Prop::Headers) => R::Headers(&r.headers),
        (R::LastError(e), Prop::Source) => s(&e.source),
        (R::LastError(e), Prop::Reason) => s(&e.reason),
        (R::LastError(e), Prop::Message) => s(&e.message),
        (R::LastError(e), Prop::Scope) => s(&e.scope),
        (R::LastError(e), Prop::Section) => s(&e.section),
        (R::LastError(e), Prop::Path) => s(&e.path),
        (R::LastError(e), Prop::PolicyId) => s(&e.policy_id),
        (R::Subscription(x), Prop::Id) => s(&x.id),
        (R::Subscription(x), Prop::Name) => s(&x.name),
        (R::Subscription(x), Prop::Key) => s(&x.key),
        (R::Deployment(d), Prop::Region) => s(&d.region),
        (R::Deployment(d), Prop::ServiceName) => s(&d.service_name),
        (R::Api(a), Prop::Id) => s(&a.id),
        (R::Api(a), Prop::Name) => s(&a.name),
        (R::Api(a), Prop::Path) => s(&a.path),
        (R::Operation(o), Prop::Id) => s(&o.id),
        (R::Operation(o), Prop::Name) => s(&o.name),
        (R::Operation(o), Prop::Method) => s(&o.method),
        (R::Operation(o), Prop::UrlTemplate) => s(&o.url_template),
        (R::V(Value::String(text)), Prop::Length) => R::V(Value::Int(text.chars().count() as i64)),
        (R::V(Value::Null), prop) => return Err(EvalError::NullReference(format!("{prop:?}"))),
        (other, prop) => {
            return Err(EvalError::NullReference(format!(
                "{prop:?} of {}",
                other.type_name()
            )));
        }
    })
}

fn call<'c>(of: R<'c>, method: Method, arguments: Vec<R<'c>>) -> Result<R<'c>, EvalError> {
    if of.is_null() {
        return Err(EvalError::NullReference(format!("{method:?}")));
    }
    let argument = |i: usize| arguments.get(i).map(text).unwrap_or_default();
    let string = |value: String| R::V(Value::String(value));
    let boolean = |value: bool| R::V(Value::Bool(value));
    Ok(match (&of, method) {
        (R::Headers(headers), Method::GetValueOrDefault) => {
            string(headers.get_value_or_default(&argument(0), &argument(1)))
        }
        (R::Headers(headers), Method::ContainsKey) => boolean(headers.contains(&argument(0))),
        (R::Variables(variables), Method::ContainsKey) => {
            boolean(variables.contains_key(&argument(0)))
        }
        (R::Variables(variables), Method::GetValueOrDefault) => match variables.get(&argument(0)) {
            Some(value) => R::V(value.clone()),
            None => arguments.get(1).cloned().unwrap_or(R::V(Value::Null)),
        },
        (R::V(Value::Json(json)), Method::ToString) => match arguments.first() {
            Some(R::Formatting) => string(json.to_string()),
            // Newtonsoft's default, Formatting.Indented, two spaces.
            _ => string(serde_json::to_string_pretty(json).unwrap_or_default()),
        },
        (R::V(Value::String(s)), Method::StartsWith) => boolean(s.starts_with(&argument(0))),
        (R::V(Value::String(s)), Method::EndsWith) => boolean(s.ends_with(&argument(0))),
        (R::V(Value::String(s)), Method::Contains) => boolean(s.contains(&argument(0))),
        (R::V(Value::String(s)), Method::Equals) => boolean(*s == argument(0)),
        (R::V(Value::String(s)), Method::ToLower) => string(s.to_lowercase()),
        (R::V(Value::String(s)), Method::ToUpper) => string(s.to_uppercase()),
        (R::V(Value::String(s)), Method::Trim) => string(s.trim().to_owned()),
        (_, Method::ToString) => string(text(&of)),
        (other, method) => {
            return Err(EvalError::NullReference(format!(
                "{method:?} of {}",
                other.type_name()
            )));
        }
    })
}
