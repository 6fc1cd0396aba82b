//! The syntax tree the parser builds: C# as written, names not yet
//! resolved. Every node keeps the byte offset where it starts in the
//! policy value, so that the binder can point at what it refuses.

/// An expression and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Expr {
    pub kind: ExprKind,
    pub offset: usize,
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Char(char),
}

/// A type as written: `int`, `JObject`, `System.DateTime`, `List<string>`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TypeName {
    /// The text, without whitespace.
    pub text: String,
    pub offset: usize,
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnaryOp {
    /// `!`.
    Not,
    /// `-`.
    Negate,
    /// `+`.
    Plus,
}

/// A binary operator, `??` included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Coalesce,
}

impl BinaryOp {
    /// As written.
    pub(super) fn text(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Gt => ">",
            BinaryOp::Le => "<=",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Coalesce => "??",
        }
    }
}

/// The expression forms of ECMA-334 §12 the parser accepts.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ExprKind {
    Literal(Literal),
    /// A simple name, with type arguments if generic (`Foo<int>`).
    Name {
        name: String,
        type_args: Vec<TypeName>,
    },
    /// A predefined type used as a value: `string` in `string.IsNullOrEmpty`.
    PredefinedType(&'static str),
    /// `target.name<type_args>`.
    Member {
        target: Box<Expr>,
        name: String,
        name_offset: usize,
        type_args: Vec<TypeName>,
    },
    /// `target(args)`.
    Invoke {
        target: Box<Expr>,
        args: Vec<Expr>,
    },
    /// `target[args]`.
    Index {
        target: Box<Expr>,
        args: Vec<Expr>,
    },
    /// `new T(args)`.
    New {
        ty: TypeName,
        args: Vec<Expr>,
    },
    /// `(T)operand`.
    Cast {
        ty: TypeName,
        operand: Box<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        op_offset: usize,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `condition ? when_true : when_false`.
    Conditional {
        condition: Box<Expr>,
        when_true: Box<Expr>,
        when_false: Box<Expr>,
    },
}

/// A statement of a `@{ ... }` body (ECMA-334 §13), and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Stmt {
    pub kind: StmtKind,
    pub offset: usize,
}

/// The statement forms the parser accepts.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum StmtKind {
    /// `var name = init;` (`ty` is `None`) or `T name = init;`.
    Local {
        ty: Option<TypeName>,
        name: String,
        name_offset: usize,
        init: Expr,
    },
    If {
        condition: Expr,
        then: Box<Stmt>,
        otherwise: Option<Box<Stmt>>,
    },
    Block(Vec<Stmt>),
    Return(Option<Expr>),
    Break,
    Switch {
        subject: Expr,
        sections: Vec<SwitchSection>,
    },
    /// `;`.
    Empty,
}

/// One section of a switch block: its labels, then its statements.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SwitchSection {
    pub labels: Vec<Label>,
    pub body: Vec<Stmt>,
    /// Where its first label starts.
    pub offset: usize,
}

/// `case constant:` or `default:`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Label {
    Case(Expr),
    Default(usize),
}

/// A whole policy expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Body {
    /// `@( expression )`.
    Expr(Expr),
    /// `@{ statements }`, and the offset of its closing `}`.
    Block(Vec<Stmt>, usize),
}
