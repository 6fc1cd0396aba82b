//! Evaluation of a bound expression against one request's [`Context`].
//! Binding already resolved every name and checked every type, so what can
//! fail here is only what depends on the data, as it would in .NET (a null
//! member, a cast of the wrong value, a missing variable). Values borrow
//! from the context and from the expression's literals where they can, so
//! that reading a header or a variable does not copy it.

use std::borrow::Cow;

use serde_json::Value as Json;

use super::bind::{
    Arith, CastTo, Code, Compare, Constant, Field, HeadersOf, Nullable, Op, Program, Step,
    StrMethod, UrlOf,
};
use super::json;
use super::{Context, EvalError, Headers, Response, Url, Value};

/// A value during evaluation.
#[derive(Debug, Clone)]
enum Rv<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    Json(Cow<'a, Json>),
}

impl<'a> Rv<'a> {
    fn borrowed(value: &'a Value) -> Self {
        match value {
            Value::Null => Rv::Null,
            Value::Bool(b) => Rv::Bool(*b),
            Value::Int(n) => Rv::Int(*n),
            Value::String(s) => Rv::Str(Cow::Borrowed(s)),
            Value::Json(j) => Rv::Json(Cow::Borrowed(j)),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Rv::Null => Value::Null,
            Rv::Bool(b) => Value::Bool(b),
            Rv::Int(n) => Value::Int(n),
            Rv::Str(s) => Value::String(s.into_owned()),
            Rv::Json(j) => Value::Json(j.into_owned()),
        }
    }

    /// The .NET type's full name, for `InvalidCastException`.
    fn net_type(&self) -> &'static str {
        match self {
            Rv::Null => "null",
            Rv::Bool(_) => "System.Boolean",
            Rv::Int(_) => "System.Int32",
            Rv::Str(_) => "System.String",
            Rv::Json(j) => match j.as_ref() {
                Json::Object(_) => "Newtonsoft.Json.Linq.JObject",
                Json::Array(_) => "Newtonsoft.Json.Linq.JArray",
                _ => "Newtonsoft.Json.Linq.JValue",
            },
        }
    }

    /// `ToString()`; `null` is the empty string, as in string concatenation.
    fn text(&self) -> Cow<'_, str> {
        match self {
            Rv::Null => Cow::Borrowed(""),
            Rv::Bool(b) => Cow::Borrowed(bool_text(*b)),
            Rv::Int(n) => Cow::Owned(n.to_string()),
            Rv::Str(s) => Cow::Borrowed(s),
            Rv::Json(j) => json::text(j),
        }
    }

    /// `ToString()`, keeping a borrowed string borrowed.
    fn into_text(self) -> Cow<'a, str> {
        match self {
            Rv::Str(s) => s,
            other => Cow::Owned(other.text().into_owned()),
        }
    }

    /// A `JProperty`'s value as a token.
    fn into_json(self) -> Json {
        match self {
            Rv::Null => Json::Null,
            Rv::Bool(b) => Json::Bool(b),
            Rv::Int(n) => Json::from(n),
            Rv::Str(s) => Json::String(s.into_owned()),
            Rv::Json(j) => j.into_owned(),
        }
    }
}

/// `Boolean.ToString()`.
fn bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// What a statement did.
enum Flow<'a> {
    Normal,
    Break,
    Return(Rv<'a>),
}

/// Evaluates `program` against `context`.
pub(super) fn run(program: &Program, context: &Context) -> Result<Value, EvalError> {
    let mut machine = Machine {
        context,
        locals: vec![Rv::Null; program.locals],
    };
    match &program.code {
        Code::Expr(op) => Ok(machine.eval(op)?.into_value()),
        Code::Block(steps) => match machine.steps(steps)? {
            Flow::Return(value) => Ok(value.into_value()),
            // Binding proved every path returns; kept as .NET would fail.
            Flow::Normal | Flow::Break => Err(EvalError::NoReturn),
        },
    }
}

struct Machine<'a> {
    context: &'a Context,
    locals: Vec<Rv<'a>>,
}

fn null(what: &str) -> EvalError {
    EvalError::NullReference(format!("{what} is null"))
}

impl<'a> Machine<'a> {
    fn steps(&mut self, steps: &'a [Step]) -> Result<Flow<'a>, EvalError> {
        for step in steps {
            match self.step(step)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn step(&mut self, step: &'a Step) -> Result<Flow<'a>, EvalError> {
        match step {
            Step::Let(slot, op) => {
                let value = self.eval(op)?;
                if let Some(local) = self.locals.get_mut(*slot) {
                    *local = value;
                }
                Ok(Flow::Normal)
            }
            Step::If(condition, then, otherwise) => {
                if self.truth(condition)? {
                    self.step(then)
                } else if let Some(otherwise) = otherwise {
                    self.step(otherwise)
                } else {
                    Ok(Flow::Normal)
                }
            }
            Step::Block(steps) => self.steps(steps),
            Step::Return(op) => Ok(Flow::Return(self.eval(op)?)),
            Step::Break => Ok(Flow::Break),
            Step::Switch {
                subject,
                cases,
                default,
                sections,
            } => {
                let subject = self.eval(subject)?;
                let matched = cases
                    .iter()
                    .find(|(constant, _)| match (constant, &subject) {
                        (Constant::Int(c), Rv::Int(n)) => c == n,
                        (Constant::Str(c), Rv::Str(s)) => c == s,
                        (Constant::Null, Rv::Null) => true,
                        _ => false,
                    });
                let section = matched.map(|(_, index)| *index).or(*default);
                match section.and_then(|index| sections.get(index)) {
                    Some(steps) => match self.steps(steps)? {
                        // `break` ends the switch, not the block around it.
                        Flow::Break | Flow::Normal => Ok(Flow::Normal),
                        returned => Ok(returned),
                    },
                    None => Ok(Flow::Normal),
                }
            }
        }
    }

    fn truth(&mut self, op: &'a Op) -> Result<bool, EvalError> {
        match self.eval(op)? {
            Rv::Bool(b) => Ok(b),
            other => Err(EvalError::InvalidCast {
                from: other.net_type(),
                to: "System.Boolean",
            }),
        }
    }

    fn int(&mut self, op: &'a Op) -> Result<i64, EvalError> {
        match self.eval(op)? {
            Rv::Int(n) => Ok(n),
            Rv::Null => Err(null("an int operand")),
            other => Err(EvalError::InvalidCast {
                from: other.net_type(),
                to: "System.Int32",
            }),
        }
    }

    /// A string argument: `null` is `ArgumentNullException`.
    fn string_argument(
        &mut self,
        op: &'a Op,
        parameter: &'static str,
    ) -> Result<Cow<'a, str>, EvalError> {
        match self.eval(op)? {
            Rv::Null => Err(EvalError::ArgumentNull(parameter)),
            other => Ok(other.into_text()),
        }
    }

    fn response(&self) -> Result<&'a Response, EvalError> {
        self.context
            .response
            .as_ref()
            .ok_or_else(|| null("context.Response"))
    }

    fn headers(&self, of: HeadersOf) -> Result<&'a Headers, EvalError> {
        match of {
            HeadersOf::Request => Ok(&self.context.request.headers),
            HeadersOf::Response => Ok(&self.response()?.headers),
        }
    }

    fn url(&self, of: UrlOf) -> &'a Url {
        match of {
            UrlOf::Url => &self.context.request.url,
            UrlOf::OriginalUrl => &self.context.request.original_url,
        }
    }

    fn field(&self, field: Field) -> Result<Rv<'a>, EvalError> {
        let context = self.context;
        let text = |s: &'a String| Rv::Str(Cow::Borrowed(s.as_str()));
        let last_error = || {
            context
                .last_error
                .as_ref()
                .ok_or_else(|| null("context.LastError"))
        };
        let subscription = || {
            context
                .subscription
                .as_ref()
                .ok_or_else(|| null("context.Subscription"))
        };
        let api = || context.api.as_ref().ok_or_else(|| null("context.Api"));
        let operation = || {
            context
                .operation
                .as_ref()
                .ok_or_else(|| null("context.Operation"))
        };
        Ok(match field {
            Field::RequestId => text(&context.request_id),
            Field::RequestMethod => text(&context.request.method),
            Field::RequestIpAddress => text(&context.request.ip_address),
            Field::UrlScheme(of) => text(&self.url(of).scheme),
            Field::UrlHost(of) => text(&self.url(of).host),
            Field::UrlPort(of) => Rv::Int(i64::from(self.url(of).port)),
            Field::UrlPath(of) => text(&self.url(of).path),
            Field::ResponseStatusCode => Rv::Int(i64::from(self.response()?.status_code)),
            Field::ResponseStatusReason => text(&self.response()?.status_reason),
            Field::LastErrorSource => text(&last_error()?.source),
            Field::LastErrorReason => text(&last_error()?.reason),
            Field::LastErrorMessage => text(&last_error()?.message),
            Field::LastErrorScope => text(&last_error()?.scope),
            Field::LastErrorSection => text(&last_error()?.section),
            Field::LastErrorPath => text(&last_error()?.path),
            Field::LastErrorPolicyId => text(&last_error()?.policy_id),
            Field::SubscriptionId => text(&subscription()?.id),
            Field::SubscriptionName => text(&subscription()?.name),
            Field::SubscriptionKey => text(&subscription()?.key),
            Field::DeploymentRegion => text(&context.deployment.region),
            Field::DeploymentServiceName => text(&context.deployment.service_name),
            Field::ApiId => text(&api()?.id),
            Field::ApiName => text(&api()?.name),
            Field::ApiPath => text(&api()?.path),
            Field::OperationId => text(&operation()?.id),
            Field::OperationName => text(&operation()?.name),
            Field::OperationMethod => text(&operation()?.method),
            Field::OperationUrlTemplate => text(&operation()?.url_template),
        })
    }

    fn is_null(&self, nullable: Nullable) -> bool {
        let context = self.context;
        match nullable {
            Nullable::Response => context.response.is_none(),
            Nullable::LastError => context.last_error.is_none(),
            Nullable::Subscription => context.subscription.is_none(),
            Nullable::Api => context.api.is_none(),
            Nullable::Operation => context.operation.is_none(),
        }
    }

    fn variable(&mut self, name: &'a Op) -> Result<Option<&'a Value>, EvalError> {
        let name = self.string_argument(name, "key")?;
        Ok(self.context.variables.get(name.as_ref()))
    }

    fn eval(&mut self, op: &'a Op) -> Result<Rv<'a>, EvalError> {
        Ok(match op {
            Op::Null => Rv::Null,
            Op::Bool(b) => Rv::Bool(*b),
            Op::Int(n) => Rv::Int(*n),
            Op::Str(s) => Rv::Str(Cow::Borrowed(s)),
            Op::Local(slot) => self.locals.get(*slot).cloned().unwrap_or(Rv::Null),
            Op::Field(field) => self.field(*field)?,
            Op::IsNull(nullable) => Rv::Bool(self.is_null(*nullable)),
            Op::HeaderValue { of, name, default } => {
                let headers = self.headers(*of)?;
                let name = self.string_argument(name, "headerName")?;
                // Not `Headers::values`: its items borrow the name too.
                let mut values = headers
                    .0
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| v.as_str());
                match (values.next(), values.next()) {
                    (None, _) => self.eval(default)?,
                    (Some(only), None) => Rv::Str(Cow::Borrowed(only)),
                    (Some(first), Some(second)) => {
                        let mut joined = format!("{first},{second}");
                        for value in values {
                            joined.push(',');
                            joined.push_str(value);
                        }
                        Rv::Str(Cow::Owned(joined))
                    }
                }
            }
            Op::HeaderContains { of, name } => {
                let headers = self.headers(*of)?;
                let name = self.string_argument(name, "key")?;
                Rv::Bool(headers.contains(&name))
            }
            Op::VariableContains(name) => Rv::Bool(self.variable(name)?.is_some()),
            Op::Variable(name) => {
                let key = self.string_argument(name, "key")?;
                match self.context.variables.get(key.as_ref()) {
                    Some(value) => Rv::borrowed(value),
                    None => return Err(EvalError::KeyNotFound(key.into_owned())),
                }
            }
            Op::VariableOrDefault {
                name,
                default,
                cast,
            } => match self.variable(name)? {
                Some(value) => match cast {
                    Some(to) => unbox(Rv::borrowed(value), *to)?,
                    None => Rv::borrowed(value),
                },
                None => match (default, cast) {
                    (Some(default), _) => self.eval(default)?,
                    // default(T).
                    (None, Some(CastTo::Int)) => Rv::Int(0),
                    (None, Some(CastTo::Bool)) => Rv::Bool(false),
                    (None, _) => Rv::Null,
                },
            },
            Op::StrMethod(method, target, argument) => {
                let target = match self.eval(target)? {
                    Rv::Str(s) => s,
                    Rv::Null => {
                        return Err(null(&format!(
                            "the string whose `{}` is called",
                            method.name()
                        )));
                    }
                    other => Cow::Owned(other.text().into_owned()),
                };
                let argument = match argument {
                    Some(argument) => Some(self.string_argument(argument, "value")?),
                    None => None,
                };
                let argument = argument.as_deref().unwrap_or("");
                match method {
                    // Ordinal: the policies compare ASCII reason codes and
                    // paths, where the culture-sensitive default agrees.
                    StrMethod::StartsWith => Rv::Bool(target.starts_with(argument)),
                    StrMethod::EndsWith => Rv::Bool(target.ends_with(argument)),
                    StrMethod::Contains => Rv::Bool(target.contains(argument)),
                    StrMethod::ToLower => Rv::Str(Cow::Owned(target.to_lowercase())),
                    StrMethod::ToUpper => Rv::Str(Cow::Owned(target.to_uppercase())),
                    StrMethod::Trim => Rv::Str(match target {
                        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
                    }),
                }
            }
            Op::Length(target) => match self.eval(target)? {
                // .NET counts UTF-16 code units.
                Rv::Str(s) => Rv::Int(s.encode_utf16().count() as i64),
                Rv::Null => return Err(null("the string whose `Length` is read")),
                other => Rv::Int(other.text().encode_utf16().count() as i64),
            },
            Op::ToString(target) => match self.eval(target)? {
                Rv::Null => return Err(null("the value whose `ToString` is called")),
                other => Rv::Str(other.into_text()),
            },
            Op::JsonToString { target, indented } => match self.eval(target)? {
                Rv::Json(token) => Rv::Str(Cow::Owned(json::render(&token, *indented))),
                Rv::Null => return Err(null("the JObject whose `ToString` is called")),
                other => Rv::Str(other.into_text()),
            },
            Op::Equals(target, other) => {
                let target = self.eval(target)?;
                if let Rv::Null = target {
                    return Err(null("the value whose `Equals` is called"));
                }
                let other = self.eval(other)?;
                Rv::Bool(equal(&target, &other))
            }
            Op::Equal {
                left,
                right,
                negate,
            } => {
                let left = self.eval(left)?;
                let right = self.eval(right)?;
                Rv::Bool(equal(&left, &right) != *negate)
            }
            Op::Concat(left, right) => {
                let left = self.eval(left)?;
                let right = self.eval(right)?;
                let (left, right) = (left.text(), right.text());
                let mut joined = String::with_capacity(left.len() + right.len());
                joined.push_str(&left);
                joined.push_str(&right);
                Rv::Str(Cow::Owned(joined))
            }
            Op::Arith(arith, left, right) => {
                let (a, b) = (self.int(left)?, self.int(right)?);
                let result = match arith {
                    Arith::Add => a.checked_add(b),
                    Arith::Sub => a.checked_sub(b),
                    Arith::Mul => a.checked_mul(b),
                    Arith::Div | Arith::Rem if b == 0 => return Err(EvalError::DivideByZero),
                    Arith::Div => a.checked_div(b),
                    Arith::Rem => a.checked_rem(b),
                };
                Rv::Int(result.ok_or(EvalError::Overflow)?)
            }
            Op::Negate(operand) => Rv::Int(
                self.int(operand)?
                    .checked_neg()
                    .ok_or(EvalError::Overflow)?,
            ),
            Op::Compare(compare, left, right) => {
                let (a, b) = (self.int(left)?, self.int(right)?);
                Rv::Bool(match compare {
                    Compare::Lt => a < b,
                    Compare::Gt => a > b,
                    Compare::Le => a <= b,
                    Compare::Ge => a >= b,
                })
            }
            Op::And(left, right) => Rv::Bool(self.truth(left)? && self.truth(right)?),
            Op::Or(left, right) => Rv::Bool(self.truth(left)? || self.truth(right)?),
            Op::Not(operand) => Rv::Bool(!self.truth(operand)?),
            Op::Conditional(condition, when_true, when_false) => {
                if self.truth(condition)? {
                    self.eval(when_true)?
                } else {
                    self.eval(when_false)?
                }
            }
            Op::Coalesce(left, right) => match self.eval(left)? {
                Rv::Null => self.eval(right)?,
                value => value,
            },
            Op::Cast(to, operand) => {
                let value = self.eval(operand)?;
                unbox(value, *to)?
            }
            Op::IsMatch(input, regex) => {
                let input = self.string_argument(input, "input")?;
                Rv::Bool(regex.is_match(&input))
            }
            Op::NewJObject(properties) => {
                let mut object = serde_json::Map::with_capacity(properties.len());
                for (name, value) in properties {
                    let name = self.string_argument(name, "name")?.into_owned();
                    let value = self.eval(value)?.into_json();
                    if object.contains_key(&name) {
                        return Err(EvalError::Argument(format!(
                            "Can not add property {name} to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object."
                        )));
                    }
                    object.insert(name, value);
                }
                Rv::Json(Cow::Owned(Json::Object(object)))
            }
        })
    }
}

/// `==` between values binding found comparable, and `Equals`.
fn equal(a: &Rv<'_>, b: &Rv<'_>) -> bool {
    match (a, b) {
        (Rv::Null, Rv::Null) => true,
        (Rv::Bool(x), Rv::Bool(y)) => x == y,
        (Rv::Int(x), Rv::Int(y)) => x == y,
        (Rv::Str(x), Rv::Str(y)) => x == y,
        (Rv::Json(x), Rv::Json(y)) => x == y,
        _ => false,
    }
}

/// A cast from `object`: unboxing to `int`/`bool`, a reference cast to
/// `string` (§10.3.7, §10.3.5).
fn unbox(value: Rv<'_>, to: CastTo) -> Result<Rv<'_>, EvalError> {
    match (to, value) {
        (CastTo::Int, value @ Rv::Int(_))
        | (CastTo::Bool, value @ Rv::Bool(_))
        | (CastTo::Str, value @ (Rv::Str(_) | Rv::Null)) => Ok(value),
        (CastTo::Int | CastTo::Bool, Rv::Null) => Err(null("the value unboxed")),
        (to, value) => Err(EvalError::InvalidCast {
            from: value.net_type(),
            to: match to {
                CastTo::Int => "System.Int32",
                CastTo::Str => "System.String",
                CastTo::Bool => "System.Boolean",
            },
        }),
    }
}
