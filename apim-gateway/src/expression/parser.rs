//! Recursive descent over the C# grammar (ECMA-334 §12 expressions, by
//! precedence climbing; §13 statements) for the subset policy expressions
//! use. It only builds the syntax tree; names, members and types are the
//! binder's. C# it recognises but does not support (lambdas, assignments,
//! loops, `is`, `&`, ...) is refused here, by name.

use super::Unsupported;
use super::lexer::{Tok, Token, tokenize};
use super::syntax::{
    BinaryOp, Body, Expr, ExprKind, Label, Literal, Stmt, StmtKind, SwitchSection, TypeName,
    UnaryOp,
};

/// Parses a policy value: `@( expression )` or `@{ statements }`, with
/// whitespace around it.
pub(super) fn parse(text: &str) -> Result<Body, Unsupported> {
    let at = text.len() - text.trim_start().len();
    let rest = &text[at..];
    if !(rest.starts_with("@(") || rest.starts_with("@{")) {
        return Err(refuse(at, "an expression must be `@( ... )` or `@{ ... }`"));
    }
    // The `@` is the policy's marker, not C#: lexing starts after it.
    let mut parser = Parser {
        tokens: tokenize(text, at + 1)?,
        text,
        pos: 0,
    };
    let body = if parser.is("(") {
        parser.bump();
        let expr = parser.expression()?;
        parser.expect(")")?;
        Body::Expr(expr)
    } else {
        parser.expect("{")?;
        let mut statements = Vec::new();
        while !parser.is("}") {
            statements.push(parser.statement()?);
        }
        let close = parser.bump().start;
        Body::Block(statements, close)
    };
    if !parser.at_eof() {
        return Err(parser.unexpected());
    }
    Ok(body)
}

fn refuse(offset: usize, construct: impl Into<String>) -> Unsupported {
    Unsupported {
        offset,
        construct: construct.into(),
    }
}

/// C#'s predefined types (§8.2.1): `(int)x` is always a cast.
const PREDEFINED_TYPES: &[&str] = &[
    "bool", "byte", "char", "decimal", "double", "float", "int", "long", "object", "sbyte",
    "short", "string", "uint", "ulong", "ushort",
];

/// Statements the subset does not have, refused by name.
const UNSUPPORTED_STATEMENTS: &[&str] = &[
    "for",
    "foreach",
    "while",
    "do",
    "try",
    "throw",
    "goto",
    "continue",
    "using",
    "lock",
    "checked",
    "unchecked",
    "fixed",
    "unsafe",
    "const",
];

/// Tokens after which `name<...>` is a generic name (§6.2.5).
const AFTER_TYPE_ARGUMENTS: &[&str] = &[
    "(", ")", "]", "}", ":", ";", ",", ".", "?", "==", "!=", "|", "^", "&&", "||", "&", "[",
];

/// The binary operators by precedence level, lowest first (§12.4.2); `??`
/// and `?:` are above them, right-associative.
const LEVELS: &[&[(&str, BinaryOp)]] = &[
    &[("||", BinaryOp::Or)],
    &[("&&", BinaryOp::And)],
    &[("==", BinaryOp::Eq), ("!=", BinaryOp::Ne)],
    &[
        ("<", BinaryOp::Lt),
        (">", BinaryOp::Gt),
        ("<=", BinaryOp::Le),
        (">=", BinaryOp::Ge),
    ],
    &[("+", BinaryOp::Add), ("-", BinaryOp::Sub)],
    &[
        ("*", BinaryOp::Mul),
        ("/", BinaryOp::Div),
        ("%", BinaryOp::Rem),
    ],
];

struct Parser<'t> {
    tokens: Vec<Token>,
    text: &'t str,
    pos: usize,
}

type Parsed<T> = Result<T, Unsupported>;

impl Parser<'_> {
    fn token(&self, ahead: usize) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.pos + ahead).min(last)]
    }

    fn peek(&self) -> &Tok {
        &self.token(0).tok
    }

    fn offset(&self) -> usize {
        self.token(0).start
    }

    fn at_eof(&self) -> bool {
        *self.peek() == Tok::Eof
    }

    fn bump(&mut self) -> Token {
        let token = self.token(0).clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        token
    }

    fn is(&self, punct: &str) -> bool {
        self.is_at(0, punct)
    }

    fn is_at(&self, ahead: usize, punct: &str) -> bool {
        matches!(&self.token(ahead).tok, Tok::Punct(p) if *p == punct)
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Tok::Keyword(k) if *k == keyword)
    }

    fn eat(&mut self, punct: &str) -> bool {
        let found = self.is(punct);
        if found {
            self.bump();
        }
        found
    }

    fn expect(&mut self, punct: &str) -> Parsed<Token> {
        if self.is(punct) {
            Ok(self.bump())
        } else {
            let mut error = self.unexpected();
            if self.at_eof() {
                error.construct = format!("the expression ends where `{punct}` was expected");
            } else if error.construct.starts_with("unexpected") {
                // A plain stray token: say what was wanted. A named
                // construct (`=>`, `is`) keeps its own message.
                error.construct = format!("{} (expected `{punct}`)", error.construct);
            }
            Err(error)
        }
    }

    /// The refusal for the current token, naming what it is.
    fn unexpected(&self) -> Unsupported {
        let token = self.token(0);
        let text = &self.text[token.start..token.end];
        let construct = match &token.tok {
            Tok::Eof => "the expression ends too early".to_owned(),
            Tok::Punct("=>") => "lambda expressions (`=>`) are not supported".to_owned(),
            Tok::Punct("=") => "assignments are not supported".to_owned(),
            Tok::Punct(
                p @ ("+=" | "-=" | "*=" | "/=" | "%=" | "&=" | "|=" | "^=" | "<<=" | "??="),
            ) => format!("the compound assignment `{p}` is not supported"),
            Tok::Punct(p @ ("?." | "&" | "|" | "^" | "~" | "++" | "--" | "<<" | "->" | "::")) => {
                format!("the operator `{p}` is not supported")
            }
            Tok::Keyword(k) => format!("the keyword `{k}` is not supported here"),
            _ => format!("unexpected token `{text}`"),
        };
        refuse(token.start, construct)
    }

    fn identifier(&mut self) -> Parsed<(String, usize)> {
        match self.peek().clone() {
            Tok::Ident(name) => Ok((name, self.bump().start)),
            _ => {
                let mut error = self.unexpected();
                if error.construct.starts_with("unexpected") {
                    error.construct = format!("{} (expected a name)", error.construct);
                }
                Err(error)
            }
        }
    }

    // Statements (§13).

    fn statement(&mut self) -> Parsed<Stmt> {
        let offset = self.offset();
        let kind = match self.peek().clone() {
            Tok::Punct("{") => StmtKind::Block(self.block()?),
            Tok::Punct(";") => {
                self.bump();
                StmtKind::Empty
            }
            Tok::Keyword("var") => {
                self.bump();
                self.local(None)?
            }
            Tok::Keyword("if") => self.if_statement()?,
            Tok::Keyword("return") => {
                self.bump();
                let value = if self.is(";") {
                    None
                } else {
                    Some(self.expression()?)
                };
                self.expect(";")?;
                StmtKind::Return(value)
            }
            Tok::Keyword("break") => {
                self.bump();
                self.expect(";")?;
                StmtKind::Break
            }
            Tok::Keyword("switch") => self.switch()?,
            Tok::Keyword(k) if UNSUPPORTED_STATEMENTS.contains(&k) => {
                return Err(refuse(
                    offset,
                    format!("the `{k}` statement is not supported"),
                ));
            }
            Tok::Keyword("else") => return Err(refuse(offset, "`else` without `if`")),
            Tok::Keyword("case" | "default") => {
                return Err(refuse(offset, "a `case` label outside a switch"));
            }
            Tok::Ident(name) if name == "yield" => {
                return Err(refuse(offset, "the `yield` statement is not supported"));
            }
            _ => match self.declaration_type() {
                Some(ty) => self.local(Some(ty))?,
                None => return Err(self.expression_statement()),
            },
        };
        Ok(Stmt { kind, offset })
    }

    fn block(&mut self) -> Parsed<Vec<Stmt>> {
        self.expect("{")?;
        let mut statements = Vec::new();
        while !self.eat("}") {
            if self.at_eof() {
                return Err(refuse(self.offset(), "a block without its closing `}`"));
            }
            statements.push(self.statement()?);
        }
        Ok(statements)
    }

    /// `T name` starting a local declaration (§13.6.2): a type, then a name.
    fn declaration_type(&mut self) -> Option<TypeName> {
        let start = self.pos;
        if let Some(ty) = self.type_name().ok()
            && matches!(self.peek(), Tok::Ident(_))
        {
            return Some(ty);
        }
        self.pos = start;
        None
    }

    /// After `var` or the type: `name = init;`.
    fn local(&mut self, ty: Option<TypeName>) -> Parsed<StmtKind> {
        let (name, name_offset) = self.identifier()?;
        if !self.is("=") {
            return Err(refuse(
                self.offset(),
                format!("the local `{name}` must be initialised where it is declared"),
            ));
        }
        self.bump();
        let init = self.expression()?;
        if self.is(",") {
            return Err(refuse(
                self.offset(),
                "declaring several locals in one statement is not supported",
            ));
        }
        self.expect(";")?;
        Ok(StmtKind::Local {
            ty,
            name,
            name_offset,
            init,
        })
    }

    /// A statement that is an expression: not in the subset. The message
    /// says which kind it was.
    fn expression_statement(&mut self) -> Unsupported {
        let offset = self.offset();
        match self.expression() {
            Err(error) => error,
            Ok(_) if self.is("=") => refuse(self.offset(), "assignments are not supported"),
            Ok(_) => match self.unexpected() {
                error if error.construct.starts_with("unexpected") => refuse(
                    offset,
                    "expression statements (calls, assignments) are not supported",
                ),
                error => error,
            },
        }
    }

    /// The body of `if`/`else`: C# does not allow a declaration there.
    fn embedded_statement(&mut self) -> Parsed<Stmt> {
        let statement = self.statement()?;
        if let StmtKind::Local { .. } = statement.kind {
            return Err(refuse(
                statement.offset,
                "a declaration cannot be the body of `if` or `else`: put it in a block",
            ));
        }
        Ok(statement)
    }

    fn if_statement(&mut self) -> Parsed<StmtKind> {
        self.bump();
        self.expect("(")?;
        let condition = self.expression()?;
        self.expect(")")?;
        let then = Box::new(self.embedded_statement()?);
        let otherwise = if self.is_keyword("else") {
            self.bump();
            Some(Box::new(self.embedded_statement()?))
        } else {
            None
        };
        Ok(StmtKind::If {
            condition,
            then,
            otherwise,
        })
    }

    fn switch(&mut self) -> Parsed<StmtKind> {
        self.bump();
        self.expect("(")?;
        let subject = self.expression()?;
        self.expect(")")?;
        self.expect("{")?;
        let mut sections = Vec::new();
        while !self.eat("}") {
            let offset = self.offset();
            let mut labels = Vec::new();
            loop {
                if self.is_keyword("case") {
                    self.bump();
                    let constant = self.expression()?;
                    if matches!(self.peek(), Tok::Ident(w) if w == "when") {
                        return Err(refuse(
                            self.offset(),
                            "case guards (`when`) are not supported",
                        ));
                    }
                    self.expect(":")?;
                    labels.push(Label::Case(constant));
                } else if self.is_keyword("default") {
                    let at = self.bump().start;
                    self.expect(":")?;
                    labels.push(Label::Default(at));
                } else {
                    break;
                }
            }
            if labels.is_empty() {
                let mut error = self.unexpected();
                if error.construct.starts_with("unexpected") {
                    error.construct =
                        format!("{} (expected `case`, `default` or `}}`)", error.construct);
                }
                return Err(error);
            }
            let mut body = Vec::new();
            while !(self.is_keyword("case") || self.is_keyword("default") || self.is("}")) {
                if self.at_eof() {
                    return Err(refuse(self.offset(), "a switch without its closing `}`"));
                }
                body.push(self.statement()?);
            }
            sections.push(SwitchSection {
                labels,
                body,
                offset,
            });
        }
        Ok(StmtKind::Switch { subject, sections })
    }

    // Types (§8).

    /// A type: a predefined type or a dotted name, with type arguments,
    /// `?` and `[]`. Only the text is kept; the binder decides.
    fn type_name(&mut self) -> Parsed<TypeName> {
        let offset = self.offset();
        let mut text = match self.peek().clone() {
            Tok::Keyword(k) if PREDEFINED_TYPES.contains(&k) => {
                self.bump();
                k.to_owned()
            }
            Tok::Ident(_) => {
                let (mut text, _) = self.identifier()?;
                while self.is(".") && matches!(self.token(1).tok, Tok::Ident(_)) {
                    self.bump();
                    text.push('.');
                    text.push_str(&self.identifier()?.0);
                }
                text
            }
            _ => return Err(self.unexpected()),
        };
        if self.is("<") {
            let args = self.type_arguments()?;
            let args: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
            text = format!("{text}<{}>", args.join(","));
        }
        loop {
            if self.is("?") && !self.starts_expression(1) {
                self.bump();
                text.push('?');
            } else if self.is("[") && self.is_at(1, "]") {
                self.pos += 2;
                text.push_str("[]");
            } else {
                return Ok(TypeName { text, offset });
            }
        }
    }

    /// `< type, ... >`.
    fn type_arguments(&mut self) -> Parsed<Vec<TypeName>> {
        self.expect("<")?;
        let mut args = vec![self.type_name()?];
        while self.eat(",") {
            args.push(self.type_name()?);
        }
        self.expect(">")?;
        Ok(args)
    }

    /// Type arguments after a name in an expression, if §6.2.5's rule says
    /// `<` opens them (and not a comparison).
    fn generic_arguments(&mut self) -> Vec<TypeName> {
        if !self.is("<") {
            return Vec::new();
        }
        let start = self.pos;
        if let Ok(args) = self.type_arguments()
            && matches!(self.peek(), Tok::Punct(p) if AFTER_TYPE_ARGUMENTS.contains(p))
        {
            return args;
        }
        self.pos = start;
        Vec::new()
    }

    /// Whether the token `ahead` can start an expression (to tell `T?`
    /// from the conditional operator).
    fn starts_expression(&self, ahead: usize) -> bool {
        match &self.token(ahead).tok {
            Tok::Ident(_) | Tok::Int(_) | Tok::Str(_) | Tok::Char(_) => true,
            Tok::Keyword(k) => matches!(*k, "null" | "true" | "false" | "new"),
            Tok::Punct(p) => matches!(*p, "(" | "!" | "-" | "+"),
            Tok::Eof => false,
        }
    }

    // Expressions (§12), lowest precedence first.

    fn expression(&mut self) -> Parsed<Expr> {
        let condition = self.coalesce()?;
        if !self.is("?") {
            return Ok(condition);
        }
        self.bump();
        let when_true = self.expression()?;
        self.expect(":")?;
        let when_false = self.expression()?;
        Ok(Expr {
            offset: condition.offset,
            kind: ExprKind::Conditional {
                condition: Box::new(condition),
                when_true: Box::new(when_true),
                when_false: Box::new(when_false),
            },
        })
    }

    /// `a ?? b`, right-associative (§12.15).
    fn coalesce(&mut self) -> Parsed<Expr> {
        let left = self.binary(0)?;
        if !self.is("??") {
            return Ok(left);
        }
        let op_offset = self.bump().start;
        let right = self.coalesce()?;
        Ok(binary(BinaryOp::Coalesce, op_offset, left, right))
    }

    /// The left-associative levels of [`LEVELS`], from `level` up.
    fn binary(&mut self, level: usize) -> Parsed<Expr> {
        let Some(operators) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.binary(level + 1)?;
        loop {
            let found = operators
                .iter()
                .find(|(text, _)| self.is(text))
                .map(|(_, op)| *op);
            let Some(op) = found else {
                break;
            };
            let token = self.bump();
            // `>>` is two `>` tokens side by side: a shift.
            if op == BinaryOp::Gt && self.is(">") && self.offset() == token.end {
                return Err(refuse(token.start, "the operator `>>` is not supported"));
            }
            let right = self.binary(level + 1)?;
            left = binary(op, token.start, left, right);
        }
        if self.is_keyword("is") || self.is_keyword("as") {
            return Err(self.unexpected());
        }
        Ok(left)
    }

    fn unary(&mut self) -> Parsed<Expr> {
        let offset = self.offset();
        let op = match self.peek() {
            Tok::Punct("!") => Some(UnaryOp::Not),
            Tok::Punct("-") => Some(UnaryOp::Negate),
            Tok::Punct("+") => Some(UnaryOp::Plus),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let operand = Box::new(self.unary()?);
            return Ok(Expr {
                kind: ExprKind::Unary { op, operand },
                offset,
            });
        }
        if self.is("(") {
            if let Some(ty) = self.cast_type() {
                let operand = Box::new(self.unary()?);
                return Ok(Expr {
                    kind: ExprKind::Cast { ty, operand },
                    offset,
                });
            }
            if self.is_lambda() {
                return Err(refuse(
                    offset,
                    "lambda expressions (`=>`) are not supported",
                ));
            }
        }
        self.postfix()
    }

    /// At `(`: the type of a cast expression (§12.9.7), consumed with its
    /// parentheses, or `None` with nothing consumed.
    fn cast_type(&mut self) -> Option<TypeName> {
        let start = self.pos;
        self.bump();
        let predefined = matches!(self.peek(), Tok::Keyword(k) if PREDEFINED_TYPES.contains(k));
        if let Ok(ty) = self.type_name()
            && self.eat(")")
        {
            // `(int)x` is always a cast; `(Name)x` only if what follows
            // cannot continue a parenthesised expression.
            let operand_follows = match self.peek() {
                Tok::Ident(_) | Tok::Int(_) | Tok::Str(_) | Tok::Char(_) => true,
                Tok::Keyword(k) => !matches!(*k, "as" | "is"),
                Tok::Punct(p) => matches!(*p, "(" | "!" | "~"),
                Tok::Eof => false,
            };
            if predefined || operand_follows {
                return Some(ty);
            }
        }
        self.pos = start;
        None
    }

    /// At `(`: whether the matching `)` is followed by `=>`.
    fn is_lambda(&self) -> bool {
        let mut depth = 0usize;
        let mut ahead = 0;
        loop {
            match &self.token(ahead).tok {
                Tok::Punct("(") => depth += 1,
                Tok::Punct(")") => {
                    depth -= 1;
                    if depth == 0 {
                        return self.is_at(ahead + 1, "=>");
                    }
                }
                Tok::Eof => return false,
                _ => {}
            }
            ahead += 1;
        }
    }

    fn postfix(&mut self) -> Parsed<Expr> {
        let mut expr = self.primary()?;
        loop {
            let offset = expr.offset;
            let kind = if self.is(".") {
                self.bump();
                let (name, name_offset) = self.identifier()?;
                let type_args = self.generic_arguments();
                ExprKind::Member {
                    target: Box::new(expr),
                    name,
                    name_offset,
                    type_args,
                }
            } else if self.is("(") {
                let args = self.arguments(")")?;
                ExprKind::Invoke {
                    target: Box::new(expr),
                    args,
                }
            } else if self.is("[") {
                let args = self.arguments("]")?;
                ExprKind::Index {
                    target: Box::new(expr),
                    args,
                }
            } else if self.is("?") && self.is_at(1, "[") {
                return Err(refuse(
                    self.offset(),
                    "the null-conditional operator `?[` is not supported",
                ));
            } else {
                return Ok(expr);
            };
            expr = Expr { kind, offset };
        }
    }

    /// `(args)` or `[args]`: the opening token is current.
    fn arguments(&mut self, close: &str) -> Parsed<Vec<Expr>> {
        self.bump();
        let mut args = Vec::new();
        if self.eat(close) {
            return Ok(args);
        }
        loop {
            if matches!(self.peek(), Tok::Ident(_)) && self.is_at(1, ":") {
                return Err(refuse(self.offset(), "named arguments are not supported"));
            }
            args.push(self.expression()?);
            if self.eat(close) {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }

    fn primary(&mut self) -> Parsed<Expr> {
        let offset = self.offset();
        let kind = match self.peek().clone() {
            Tok::Int(n) => {
                self.bump();
                ExprKind::Literal(Literal::Int(n))
            }
            Tok::Str(s) => {
                self.bump();
                ExprKind::Literal(Literal::Str(s))
            }
            Tok::Char(c) => {
                self.bump();
                ExprKind::Literal(Literal::Char(c))
            }
            Tok::Keyword("null") => {
                self.bump();
                ExprKind::Literal(Literal::Null)
            }
            Tok::Keyword("true") => {
                self.bump();
                ExprKind::Literal(Literal::Bool(true))
            }
            Tok::Keyword("false") => {
                self.bump();
                ExprKind::Literal(Literal::Bool(false))
            }
            Tok::Keyword(k) if PREDEFINED_TYPES.contains(&k) && self.is_at(1, ".") => {
                self.bump();
                ExprKind::PredefinedType(k)
            }
            Tok::Keyword("new") => self.creation()?,
            Tok::Ident(name) => {
                if self.is_at(1, "=>") {
                    return Err(refuse(
                        offset,
                        "lambda expressions (`=>`) are not supported",
                    ));
                }
                self.bump();
                let type_args = self.generic_arguments();
                ExprKind::Name { name, type_args }
            }
            Tok::Punct("(") => {
                self.bump();
                let inner = self.expression()?;
                self.expect(")")?;
                // Parentheses only group: the node is the inner one.
                return Ok(inner);
            }
            _ => return Err(self.unexpected()),
        };
        Ok(Expr { kind, offset })
    }

    /// `new T(args)` (§12.8.17.2), without initializers.
    fn creation(&mut self) -> Parsed<ExprKind> {
        let new = self.bump().start;
        if self.is("[") || self.is("{") {
            return Err(refuse(
                new,
                "anonymous types and implicitly typed arrays are not supported",
            ));
        }
        let ty = self.type_name()?;
        if !self.is("(") {
            return Err(refuse(
                self.offset(),
                "object creation without an argument list is not supported",
            ));
        }
        let args = self.arguments(")")?;
        if self.is("{") {
            return Err(refuse(
                self.offset(),
                "object and collection initializers are not supported",
            ));
        }
        Ok(ExprKind::New { ty, args })
    }
}

fn binary(op: BinaryOp, op_offset: usize, left: Expr, right: Expr) -> Expr {
    Expr {
        offset: left.offset,
        kind: ExprKind::Binary {
            op,
            op_offset,
            left: Box::new(left),
            right: Box::new(right),
        },
    }
}
