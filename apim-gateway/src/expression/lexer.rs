//! C# tokens (ECMA-334 §6.4) for the subset policy expressions use. Every
//! token keeps its byte offsets in the policy value, so that a refusal can
//! point at the construct. Tokens C# has and this subset does not support
//! (`=>`, `++`, `&`, ...) are still lexed, so that the parser can name them.

use super::Unsupported;

/// A token's kind and payload.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// An identifier (`context`, `Regex`, `@class`).
    Ident(String),
    /// A C# keyword (`if`, `var`, `string`, `while`, ...).
    Keyword(&'static str),
    /// An integer literal.
    Int(i64),
    /// A string literal, escapes decoded.
    Str(String),
    /// A character literal.
    Char(char),
    /// An operator or punctuator.
    Punct(&'static str),
    /// The end of the text.
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    /// Byte offset of its first character in the policy value.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
}

/// C#'s reserved keywords (§6.4.4) and `var`: recognised so that the parser
/// can refuse `while` or `typeof` by name instead of as unknown identifiers.
const KEYWORDS: &[&str] = &[
    "abstract",
    "as",
    "base",
    "bool",
    "break",
    "byte",
    "case",
    "catch",
    "char",
    "checked",
    "class",
    "const",
    "continue",
    "decimal",
    "default",
    "delegate",
    "do",
    "double",
    "else",
    "enum",
    "event",
    "explicit",
    "extern",
    "false",
    "finally",
    "fixed",
    "float",
    "for",
    "foreach",
    "goto",
    "if",
    "implicit",
    "in",
    "int",
    "interface",
    "internal",
    "is",
    "lock",
    "long",
    "namespace",
    "new",
    "null",
    "object",
    "operator",
    "out",
    "override",
    "params",
    "private",
    "protected",
    "public",
    "readonly",
    "ref",
    "return",
    "sbyte",
    "sealed",
    "short",
    "sizeof",
    "stackalloc",
    "static",
    "string",
    "struct",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "uint",
    "ulong",
    "unchecked",
    "unsafe",
    "ushort",
    "using",
    "var",
    "virtual",
    "void",
    "volatile",
    "while",
];

/// Operators and punctuators, longest first so that `==` wins over `=`.
/// `>>` is not one: C# lexes it as two `>` (generic `List<List<int>>`).
const PUNCTUATORS: &[&str] = &[
    "<<=", "??=", "=>", "==", "!=", "<=", ">=", "&&", "||", "??", "++", "--", "+=", "-=", "*=",
    "/=", "%=", "&=", "|=", "^=", "<<", "->", "::", "?.", "(", ")", "{", "}", "[", "]", ".", ",",
    ";", ":", "?", "<", ">", "!", "+", "-", "*", "/", "%", "=", "&", "|", "^", "~",
];

/// Lexes `text[from..]`; offsets are `text`'s. The last token is [`Tok::Eof`].
pub(super) fn tokenize(text: &str, from: usize) -> Result<Vec<Token>, Unsupported> {
    let mut lexer = Lexer { text, pos: from };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_trivia()?;
        let start = lexer.pos;
        let Some(c) = lexer.peek() else {
            tokens.push(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
            return Ok(tokens);
        };
        let tok = lexer.token(c)?;
        tokens.push(Token {
            tok,
            start,
            end: lexer.pos,
        });
    }
}

struct Lexer<'t> {
    text: &'t str,
    pos: usize,
}

fn refuse(offset: usize, construct: impl Into<String>) -> Unsupported {
    Unsupported {
        offset,
        construct: construct.into(),
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_part(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Whitespace and both kinds of comment.
    fn skip_trivia(&mut self) -> Result<(), Unsupported> {
        loop {
            let rest = self.rest();
            if let Some(c) = rest.chars().next().filter(|c| c.is_whitespace()) {
                self.pos += c.len_utf8();
            } else if rest.starts_with("//") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(comment) = rest.strip_prefix("/*") {
                match comment.find("*/") {
                    Some(end) => self.pos += end + 4,
                    None => return Err(refuse(self.pos, "unterminated comment `/*`")),
                }
            } else {
                return Ok(());
            }
        }
    }

    fn token(&mut self, c: char) -> Result<Tok, Unsupported> {
        let start = self.pos;
        match c {
            '"' => {
                self.bump();
                self.regular_string(start).map(Tok::Str)
            }
            '\'' => {
                self.bump();
                self.char_literal(start).map(Tok::Char)
            }
            '@' => match self.peek_second() {
                Some('"') => {
                    self.pos += 2;
                    self.verbatim_string(start).map(Tok::Str)
                }
                Some('$') => Err(refuse(
                    start,
                    "interpolated strings (`$\"...\"`) are not supported",
                )),
                // `@if` is the identifier `if`, never the keyword.
                Some(next) if is_ident_start(next) => {
                    self.bump();
                    Ok(Tok::Ident(self.identifier().to_owned()))
                }
                _ => Err(refuse(start, "unexpected character `@`")),
            },
            '$' => Err(refuse(
                start,
                "interpolated strings (`$\"...\"`) are not supported",
            )),
            '0'..='9' => self.number(start),
            c if is_ident_start(c) => {
                let word = self.identifier();
                Ok(match KEYWORDS.iter().find(|k| **k == word) {
                    Some(keyword) => Tok::Keyword(keyword),
                    None => Tok::Ident(word.to_owned()),
                })
            }
            _ => {
                let rest = self.rest();
                match PUNCTUATORS.iter().find(|p| rest.starts_with(**p)) {
                    Some(punct) => {
                        self.pos += punct.len();
                        Ok(Tok::Punct(punct))
                    }
                    None => Err(refuse(start, format!("unexpected character `{c}`"))),
                }
            }
        }
    }

    fn identifier(&mut self) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(is_ident_part) {
            self.bump();
        }
        &self.text[start..self.pos]
    }

    /// Decimal and hexadecimal integers, with `_` separators and an
    /// optional `L` suffix; real literals are refused.
    fn number(&mut self, start: usize) -> Result<Tok, Unsupported> {
        let rest = self.rest();
        let (radix, digits_from) = if rest.starts_with("0x") || rest.starts_with("0X") {
            (16, 2)
        } else {
            (10, 0)
        };
        self.pos += digits_from;
        let digits_start = self.pos;
        while self.peek().is_some_and(|c| c == '_' || c.is_digit(radix)) {
            self.bump();
        }
        let digits: String = self.text[digits_start..self.pos]
            .chars()
            .filter(|c| *c != '_')
            .collect();
        let real = || refuse(start, "real (floating point) literals are not supported");
        match self.peek() {
            Some('.') if radix == 10 && self.peek_second().is_some_and(|c| c.is_ascii_digit()) => {
                return Err(real());
            }
            Some('e' | 'E' | 'f' | 'F' | 'd' | 'D' | 'm' | 'M') if radix == 10 => {
                return Err(real());
            }
            Some('l' | 'L') => {
                self.bump();
            }
            _ => {}
        }
        if self.peek().is_some_and(is_ident_part) {
            return Err(refuse(
                start,
                format!(
                    "the integer literal `{}` is not supported",
                    &self.text[start..self.pos + 1]
                ),
            ));
        }
        match i64::from_str_radix(&digits, radix) {
            Ok(value) => Ok(Tok::Int(value)),
            Err(_) => Err(refuse(
                start,
                format!(
                    "the integer literal `{}` is not supported",
                    &self.text[start..self.pos]
                ),
            )),
        }
    }

    /// After the opening `"`: C#'s simple escape sequences (§6.4.5.5).
    fn regular_string(&mut self, start: usize) -> Result<String, Unsupported> {
        let mut value = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(value),
                Some('\\') => value.push(self.escape()?),
                Some('\n' | '\r') | None => {
                    return Err(refuse(start, "unterminated string literal"));
                }
                Some(c) => value.push(c),
            }
        }
    }

    /// After `@"`: only `""` is special.
    fn verbatim_string(&mut self, start: usize) -> Result<String, Unsupported> {
        let mut value = String::new();
        loop {
            match self.bump() {
                Some('"') if self.peek() == Some('"') => {
                    self.bump();
                    value.push('"');
                }
                Some('"') => return Ok(value),
                Some(c) => value.push(c),
                None => return Err(refuse(start, "unterminated verbatim string literal")),
            }
        }
    }

    /// After the opening `'`.
    fn char_literal(&mut self, start: usize) -> Result<char, Unsupported> {
        let c = match self.bump() {
            Some('\\') => self.escape()?,
            Some(c) if c != '\'' && c != '\n' && c != '\r' => c,
            _ => return Err(refuse(start, "invalid character literal")),
        };
        match self.bump() {
            Some('\'') => Ok(c),
            _ => Err(refuse(start, "invalid character literal")),
        }
    }

    /// After a `\` in a string or character literal.
    fn escape(&mut self) -> Result<char, Unsupported> {
        let at = self.pos - 1;
        let unknown = |text: &str| refuse(at, format!("unrecognized escape sequence `\\{text}`"));
        let c = self.bump().ok_or_else(|| unknown(""))?;
        Ok(match c {
            '\'' => '\'',
            '"' => '"',
            '\\' => '\\',
            '0' => '\0',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            'u' | 'U' | 'x' => {
                // \uXXXX and \UXXXXXXXX are fixed width; \x takes 1 to 4.
                let (min, max) = match c {
                    'u' => (4, 4),
                    'U' => (8, 8),
                    _ => (1, 4),
                };
                let digits_start = self.pos;
                while self.pos - digits_start < max
                    && self.peek().is_some_and(|d| d.is_ascii_hexdigit())
                {
                    self.bump();
                }
                let digits = &self.text[digits_start..self.pos];
                if digits.len() < min {
                    return Err(unknown(&format!("{c}{digits}")));
                }
                u32::from_str_radix(digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                    // A lone UTF-16 surrogate has no Rust `char`.
                    .ok_or_else(|| {
                        refuse(at, format!("the escape `\\{c}{digits}` is not supported"))
                    })?
            }
            other => return Err(unknown(&other.to_string())),
        })
    }
}
