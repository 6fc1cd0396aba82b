//! Recursive descent over the C# grammar (ECMA-334 §12 expressions, §13
//! statements), for the subset policy expressions use. Each expression is
//! typed as it is parsed, so an unknown member, method or type is refused
//! here, with its offset, and never at run time.

use super::lexer::{Kind, Token, tokens};
use super::syntax::{BinOp, CastTo, Expr, Stmt, Ty, method, property};
use super::{Unsupported, Value};

/// A parsed body: one expression, or statements.
#[derive(Debug)]
pub(super) enum Body {
    Expression(Expr),
    Statements(Vec<Stmt>, usize),
}

/// Parses the policy value `text` (`@(...)` or `@{...}`).
pub(super) fn parse(text: &str) -> Result<Body, Unsupported> {
    let start = text.len() - text.trim_start().len();
    let trimmed = text.trim();
    let (inner, statements) =
        if let Some(inner) = trimmed.strip_prefix("@(").and_then(|t| t.strip_suffix(')')) {
            (inner, false)
        } else if let Some(inner) = trimmed.strip_prefix("@{").and_then(|t| t.strip_suffix('}')) {
            (inner, true)
        } else {
            return Err(Unsupported {
                offset: start,
                construct: "an expression must be @( ... ) or @{ ... }".to_owned(),
            });
        };
    let base = start + 2;
    let shifted = |mut e: Unsupported| {
        e.offset += base;
        e
    };
    let mut parser = Parser {
        tokens: tokens(inner).map_err(shifted)?,
        next: 0,
        locals: Vec::new(),
    };
    let body = if statements {
        let mut list = Vec::new();
        while !parser.at_end() {
            list.push(parser.statement().map_err(shifted)?);
        }
        Body::Statements(list, parser.locals.len())
    } else {
        let (expr, _) = parser.expression().map_err(shifted)?;
        if !parser.at_end() {
            return Err(shifted(parser.unexpected()));
        }
        Body::Expression(expr)
    };
    Ok(body)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    locals: Vec<(String, Ty)>,
}

type Typed = (Expr, Ty);

fn refuse(offset: usize, construct: impl Into<String>) -> Unsupported {
    Unsupported {
        offset,
        construct: construct.into(),
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn at_end(&self) -> bool {
        self.peek().kind == Kind::End
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if self.next < self.tokens.len() - 1 {
            self.next += 1;
        }
        token
    }

    fn is(&self, punct: &str) -> bool {
        matches!(&self.peek().kind, Kind::Punct(p) if *p == punct)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.peek().kind, Kind::Identifier(w) if w == word)
    }

    fn eat(&mut self, punct: &str) -> bool {
        let found = self.is(punct);
        if found {
            self.bump();
        }
        found
    }

    fn expect(&mut self, punct: &str) -> Result<(), Unsupported> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(self.unexpected_wanting(punct))
        }
    }

    fn unexpected(&self) -> Unsupported {
        let token = self.peek();
        let what = match &token.kind {
            Kind::Identifier(w) => format!("`{w}`"),
            Kind::Int(n) => format!("`{n}`"),
            Kind::Str(s) => format!("{s:?}"),
            Kind::Punct(p) => format!("`{p}`"),
            Kind::End => "the end".to_owned(),
        };
        refuse(token.at, format!("unexpected {what}"))
    }

    fn unexpected_wanting(&self, wanted: &str) -> Unsupported {
        let mut error = self.unexpected();
        error.construct = format!("{} where `{wanted}` was expected", error.construct);
        error
    }

    fn identifier(&mut self) -> Result<(String, usize), Unsupported> {
        match self.bump() {
            Token {
                kind: Kind::Identifier(name),
                at,
            } => Ok((name, at)),
            other => {
                self.next -= 1;
                let _ = other;
                Err(self.unexpected_wanting("a name"))
            }
        }
    }

    // Statements (§13).

    fn statement(&mut self) -> Result<Stmt, Unsupported> {
        let at = self.peek().at;
        if self.eat("{") {
            let mut list = Vec::new();
            while !self.eat("}") {
                if self.at_end() {
                    return Err(self.unexpected_wanting("}"));
                }
                list.push(self.statement()?);
            }
            return Ok(Stmt::Block(list));
        }
        let Kind::Identifier(word) = self.peek().kind.clone() else {
            return Err(refuse(
                at,
                "an expression statement is not supported (only var, if, switch, return)",
            ));
        };
        match word.as_str() {
            "var" | "string" | "int" | "bool" => {
                self.bump();
                let (name, name_at) = self.identifier()?;
                if self.locals.iter().any(|(n, _)| n == &name) {
                    return Err(refuse(name_at, format!("a second local named `{name}`")));
                }
                self.expect("=")?;
                let (value, ty) = self.expression()?;
                self.expect(";")?;
                self.locals.push((name, ty));
                Ok(Stmt::Var(self.locals.len() - 1, value))
            }
            "if" => {
                self.bump();
                self.expect("(")?;
                let condition = self.condition()?;
                self.expect(")")?;
                let then = Box::new(self.statement()?);
                let otherwise = if self.is_word("else") {
                    self.bump();
                    Some(Box::new(self.statement()?))
                } else {
                    None
                };
                Ok(Stmt::If(condition, then, otherwise))
            }
            "return" => {
                self.bump();
                let (value, _) = self.expression()?;
                self.expect(";")?;
                Ok(Stmt::Return(value))
            }
            "break" => {
                self.bump();
                self.expect(";")?;
                Ok(Stmt::Break)
            }
            "switch" => self.switch(),
            _ => Err(refuse(
                at,
                format!("the statement starting with `{word}` is not supported"),
            )),
        }
    }

    fn switch(&mut self) -> Result<Stmt, Unsupported> {
        self.bump();
        self.expect("(")?;
        let (subject, _) = self.expression()?;
        self.expect(")")?;
        self.expect("{")?;
        let mut sections = Vec::new();
        while !self.eat("}") {
            let mut labels = Vec::new();
            let mut is_default = false;
            loop {
                if self.is_word("case") {
                    self.bump();
                    let at = self.peek().at;
                    let label = match self.bump().kind {
                        Kind::Int(n) => Value::Int(n),
                        Kind::Str(s) => Value::String(s),
                        _ => {
                            return Err(refuse(
                                at,
                                "a case label other than an int or string constant",
                            ));
                        }
                    };
                    self.expect(":")?;
                    labels.push(label);
                } else if self.is_word("default") {
                    self.bump();
                    self.expect(":")?;
                    is_default = true;
                } else {
                    break;
                }
            }
            if labels.is_empty() && !is_default {
                return Err(self.unexpected_wanting("case"));
            }
            let mut body = Vec::new();
            while !self.is_word("case") && !self.is_word("default") && !self.is("}") {
                if self.at_end() {
                    return Err(self.unexpected_wanting("}"));
                }
                body.push(self.statement()?);
            }
            sections.push((labels, is_default, body));
        }
        Ok(Stmt::Switch(subject, sections))
    }

    // Expressions (§12), lowest precedence first.

    fn condition(&mut self) -> Result<Expr, Unsupported> {
        let at = self.peek().at;
        let (expr, ty) = self.expression()?;
        if !matches!(ty, Ty::Bool | Ty::Object) {
            return Err(refuse(at, format!("a condition of type {}", ty.name())));
        }
        Ok(expr)
    }

    fn expression(&mut self) -> Result<Typed, Unsupported> {
        let at = self.peek().at;
        let (condition, ty) = self.coalesce()?;
        if !self.eat("?") {
            return Ok((condition, ty));
        }
        if !matches!(ty, Ty::Bool | Ty::Object) {
            return Err(refuse(at, format!("a condition of type {}", ty.name())));
        }
        let (then, then_ty) = self.expression()?;
        self.expect(":")?;
        let (otherwise, else_ty) = self.expression()?;
        let ty = if then_ty == else_ty {
            then_ty
        } else {
            Ty::Object
        };
        Ok((
            Expr::Conditional(Box::new(condition), Box::new(then), Box::new(otherwise)),
            ty,
        ))
    }

    fn coalesce(&mut self) -> Result<Typed, Unsupported> {
        let (left, ty) = self.logical_or()?;
        if !self.eat("??") {
            return Ok((left, ty));
        }
        let (right, right_ty) = self.coalesce()?;
        let ty = if ty == right_ty || right_ty == Ty::Null {
            ty
        } else {
            Ty::Object
        };
        Ok((
            Expr::Binary(BinOp::Coalesce, Box::new(left), Box::new(right)),
            ty,
        ))
    }

    fn logical_or(&mut self) -> Result<Typed, Unsupported> {
        self.logical(Self::logical_and, "||", BinOp::Or)
    }

    fn logical_and(&mut self) -> Result<Typed, Unsupported> {
        self.logical(Self::equality, "&&", BinOp::And)
    }

    fn logical(
        &mut self,
        operand: fn(&mut Self) -> Result<Typed, Unsupported>,
        punct: &str,
        op: BinOp,
    ) -> Result<Typed, Unsupported> {
        let at = self.peek().at;
        let (mut left, mut ty) = operand(self)?;
        while self.eat(punct) {
            let (right, right_ty) = operand(self)?;
            for t in [ty, right_ty] {
                if !matches!(t, Ty::Bool | Ty::Object) {
                    return Err(refuse(at, format!("`{punct}` on {}", t.name())));
                }
            }
            left = Expr::Binary(op, Box::new(left), Box::new(right));
            ty = Ty::Bool;
        }
        Ok((left, ty))
    }

    fn equality(&mut self) -> Result<Typed, Unsupported> {
        let (mut left, mut ty) = self.relational()?;
        loop {
            let op = if self.eat("==") {
                BinOp::Eq
            } else if self.eat("!=") {
                BinOp::Ne
            } else {
                return Ok((left, ty));
            };
            let (right, _) = self.relational()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
            ty = Ty::Bool;
        }
    }

    fn relational(&mut self) -> Result<Typed, Unsupported> {
        let at = self.peek().at;
        let (mut left, mut ty) = self.additive()?;
        loop {
            let op = if self.eat("<=") {
                BinOp::Le
            } else if self.eat(">=") {
                BinOp::Ge
            } else if self.eat("<") {
                BinOp::Lt
            } else if self.eat(">") {
                BinOp::Gt
            } else {
                return Ok((left, ty));
            };
            let (right, right_ty) = self.additive()?;
            for t in [ty, right_ty] {
                if !matches!(t, Ty::Int | Ty::Object) {
                    return Err(refuse(at, format!("a comparison of {}", t.name())));
                }
            }
            left = Expr::Binary(op, Box::new(left), Box::new(right));
            ty = Ty::Bool;
        }
    }

    fn additive(&mut self) -> Result<Typed, Unsupported> {
        let at = self.peek().at;
        let (mut left, mut ty) = self.unary()?;
        loop {
            if self.is("-") || self.is("*") || self.is("/") || self.is("%") {
                return Err(refuse(
                    self.peek().at,
                    "arithmetic other than `+` is not supported",
                ));
            }
            if !self.eat("+") {
                return Ok((left, ty));
            }
            let (right, right_ty) = self.unary()?;
            ty = match (ty, right_ty) {
                (Ty::Int, Ty::Int) => Ty::Int,
                (Ty::Str, _) | (_, Ty::Str) => Ty::Str,
                (a, b) => return Err(refuse(at, format!("`+` of {} and {}", a.name(), b.name()))),
            };
            left = Expr::Binary(BinOp::Add, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Typed, Unsupported> {
        let at = self.peek().at;
        if self.eat("!") {
            let (operand, ty) = self.unary()?;
            if !matches!(ty, Ty::Bool | Ty::Object) {
                return Err(refuse(at, format!("`!` on {}", ty.name())));
            }
            return Ok((Expr::Not(Box::new(operand)), Ty::Bool));
        }
        if self.is("-") {
            return Err(refuse(at, "unary `-` is not supported"));
        }
        // A cast: `(` a type name `)` followed by an operand.
        if self.is("(")
            && let Some(Token {
                kind: Kind::Identifier(name),
                ..
            }) = self.tokens.get(self.next + 1)
            && matches!(
                self.tokens.get(self.next + 2),
                Some(Token {
                    kind: Kind::Punct(")"),
                    ..
                })
            )
            && matches!(
                name.as_str(),
                "int" | "string" | "bool" | "long" | "double" | "float" | "DateTime" | "JObject"
            )
        {
            let target = match name.as_str() {
                "int" => CastTo::Int,
                "string" => CastTo::Str,
                "bool" => CastTo::Bool,
                other => return Err(refuse(at, format!("a cast to `{other}` is not supported"))),
            };
            self.next += 3;
            let (operand, ty) = self.unary()?;
            let result = match target {
                CastTo::Int => Ty::Int,
                CastTo::Str => Ty::Str,
                CastTo::Bool => Ty::Bool,
            };
            let fits = ty == Ty::Object || ty == Ty::Null || ty == result;
            if !fits {
                return Err(refuse(
                    at,
                    format!("a cast of {} to {}", ty.name(), result.name()),
                ));
            }
            return Ok((Expr::Cast(target, Box::new(operand)), result));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Typed, Unsupported> {
        let (mut expr, mut ty) = self.primary()?;
        loop {
            if self.eat(".") {
                let (name, at) = self.identifier()?;
                if self.is("(") {
                    let arguments = self.arguments()?;
                    let types: Vec<Ty> = arguments.iter().map(|(_, t)| *t).collect();
                    let Some((m, result)) = method(ty, &name, &types) else {
                        return Err(refuse(
                            at,
                            format!(
                                "the method `{name}({})` of {} is not supported",
                                types
                                    .iter()
                                    .map(|t| t.name())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                ty.name()
                            ),
                        ));
                    };
                    expr = Expr::Call(
                        Box::new(expr),
                        m,
                        arguments.into_iter().map(|(e, _)| e).collect(),
                    );
                    ty = result;
                } else if self.is("<") {
                    return Err(refuse(
                        at,
                        format!("the generic method `{name}<...>` is not supported"),
                    ));
                } else {
                    let Some((prop, result)) = property(ty, &name) else {
                        return Err(refuse(
                            at,
                            format!("the member `{name}` of {} is not supported", ty.name()),
                        ));
                    };
                    expr = Expr::Get(Box::new(expr), prop);
                    ty = result;
                }
            } else if self.is("[") {
                let at = self.bump().at;
                let (index, index_ty) = self.expression()?;
                self.expect("]")?;
                if ty != Ty::Variables || !matches!(index_ty, Ty::Str | Ty::Object) {
                    return Err(refuse(
                        at,
                        format!("indexing {} is not supported", ty.name()),
                    ));
                }
                expr = Expr::Index(Box::new(expr), Box::new(index));
                ty = Ty::Object;
            } else if self.is("(") {
                return Err(refuse(self.peek().at, "calling this is not supported"));
            } else {
                return Ok((expr, ty));
            }
        }
    }

    fn arguments(&mut self) -> Result<Vec<Typed>, Unsupported> {
        self.expect("(")?;
        let mut arguments = Vec::new();
        if self.eat(")") {
            return Ok(arguments);
        }
        loop {
            arguments.push(self.expression()?);
            if self.eat(")") {
                return Ok(arguments);
            }
            self.expect(",")?;
        }
    }

    fn primary(&mut self) -> Result<Typed, Unsupported> {
        let token = self.bump();
        let at = token.at;
        match token.kind {
            Kind::Int(n) => Ok((Expr::Literal(Value::Int(n)), Ty::Int)),
            Kind::Str(s) => Ok((Expr::Literal(Value::String(s)), Ty::Str)),
            Kind::Punct("(") => {
                let inner = self.expression()?;
                self.expect(")")?;
                Ok(inner)
            }
            Kind::Identifier(word) => match word.as_str() {
                "true" => Ok((Expr::Literal(Value::Bool(true)), Ty::Bool)),
                "false" => Ok((Expr::Literal(Value::Bool(false)), Ty::Bool)),
                "null" => Ok((Expr::Literal(Value::Null), Ty::Null)),
                "context" => Ok((Expr::Context, Ty::Context)),
                "new" => self.new_object(at),
                "Regex" => self.regex(at),
                "Newtonsoft" => {
                    for part in ["Json", "Formatting", "None"] {
                        self.expect(".")?;
                        let (name, name_at) = self.identifier()?;
                        if name != part {
                            return Err(refuse(
                                name_at,
                                format!("`{name}` of Newtonsoft is not supported"),
                            ));
                        }
                    }
                    Ok((Expr::Formatting, Ty::Formatting))
                }
                name => match self.locals.iter().position(|(n, _)| n == name) {
                    Some(slot) => Ok((Expr::Local(slot), self.locals[slot].1)),
                    None => Err(refuse(at, format!("the name `{name}` is not supported"))),
                },
            },
            _ => {
                self.next -= 1;
                Err(self.unexpected())
            }
        }
    }

    fn new_object(&mut self, at: usize) -> Result<Typed, Unsupported> {
        let (type_name, type_at) = self.identifier()?;
        let arguments = self.arguments()?;
        match type_name.as_str() {
            "JObject" => {
                if let Some((_, ty)) = arguments.iter().find(|(_, t)| *t != Ty::JProperty) {
                    return Err(refuse(
                        at,
                        format!("new JObject of {}: only JProperty arguments", ty.name()),
                    ));
                }
                Ok((
                    Expr::NewJObject(arguments.into_iter().map(|(e, _)| e).collect()),
                    Ty::JObject,
                ))
            }
            "JProperty" => {
                let mut arguments = arguments.into_iter();
                match (arguments.next(), arguments.next(), arguments.next()) {
                    (Some((name, Ty::Str)), Some((value, _)), None) => Ok((
                        Expr::NewJProperty(Box::new(name), Box::new(value)),
                        Ty::JProperty,
                    )),
                    _ => Err(refuse(at, "new JProperty takes a name and a value")),
                }
            }
            other => Err(refuse(
                type_at,
                format!("the type `{other}` is not supported"),
            )),
        }
    }

    fn regex(&mut self, at: usize) -> Result<Typed, Unsupported> {
        self.expect(".")?;
        let (name, name_at) = self.identifier()?;
        if name != "IsMatch" {
            return Err(refuse(
                name_at,
                format!("the method `Regex.{name}` is not supported"),
            ));
        }
        self.expect("(")?;
        let (input, input_ty) = self.expression()?;
        self.expect(",")?;
        let pattern_at = self.peek().at;
        let Kind::Str(pattern) = self.bump().kind else {
            return Err(refuse(
                pattern_at,
                "a Regex.IsMatch pattern must be a string literal",
            ));
        };
        if self.is(",") {
            return Err(refuse(self.peek().at, "RegexOptions are not supported"));
        }
        self.expect(")")?;
        if !matches!(input_ty, Ty::Str | Ty::Object) {
            return Err(refuse(at, format!("Regex.IsMatch of {}", input_ty.name())));
        }
        let compiled = regex::Regex::new(&pattern)
            .map_err(|e| refuse(pattern_at, format!("the pattern {pattern:?}: {e}")))?;
        Ok((Expr::IsMatch(Box::new(input), compiled), Ty::Bool))
    }
}
