//! C# tokens (ECMA-334 §6.4) for the subset policy expressions use.

use super::Unsupported;

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Identifier(String),
    Int(i64),
    Str(String),
    Punct(&'static str),
    End,
}

/// Longest first, so that `??` is not read as two `?`.
const PUNCTUATION: [&str; 29] = [
    "??", "==", "!=", "<=", ">=", "&&", "||", "=>", "++", "--", "(", ")", "{", "}", "[", "]", ".",
    ",", ";", ":", "?", "<", ">", "!", "+", "-", "*", "/", "=",
];

/// The tokens of `text`, ending with [`Kind::End`].
pub(super) fn tokens(text: &str) -> Result<Vec<Token>, Unsupported> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            continue;
        }
        let at = i;
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                kind: Kind::Identifier(text[at..i].to_owned()),
                at,
            });
        } else if c.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let value = text[at..i]
                .parse()
                .map_err(|_| unsupported(at, "an integer literal this large"))?;
            out.push(Token {
                kind: Kind::Int(value),
                at,
            });
        } else if text[i..].starts_with("@\"") {
            // Verbatim string: no escapes, `""` is a quote.
            i += 2;
            let mut value = String::new();
            loop {
                let Some(ch) = text[i..].chars().next() else {
                    return Err(unsupported(at, "an unterminated verbatim string"));
                };
                i += ch.len_utf8();
                if ch == '"' {
                    if text[i..].starts_with('"') {
                        value.push('"');
                        i += 1;
                        continue;
                    }
                    break;
                }
                value.push(ch);
            }
            out.push(Token {
                kind: Kind::Str(value),
                at,
            });
        } else if c == b'"' {
            i += 1;
            let mut value = String::new();
            loop {
                let Some(ch) = text[i..].chars().next() else {
                    return Err(unsupported(at, "an unterminated string"));
                };
                i += ch.len_utf8();
                match ch {
                    '"' => break,
                    '\\' => {
                        let Some(escaped) = text[i..].chars().next() else {
                            return Err(unsupported(at, "an unterminated string"));
                        };
                        i += escaped.len_utf8();
                        value.push(match escaped {
                            '"' => '"',
                            '\\' => '\\',
                            '\'' => '\'',
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            'u' => {
                                let hex = text
                                    .get(i..i + 4)
                                    .ok_or_else(|| unsupported(at, "a short \\u escape"))?;
                                i += 4;
                                u32::from_str_radix(hex, 16)
                                    .ok()
                                    .and_then(char::from_u32)
                                    .ok_or_else(|| unsupported(at, "an invalid \\u escape"))?
                            }
                            other => {
                                return Err(unsupported(i - 2, &format!("the escape \\{other}")));
                            }
                        });
                    }
                    '\n' => return Err(unsupported(at, "a line break in a string")),
                    ch => value.push(ch),
                }
            }
            out.push(Token {
                kind: Kind::Str(value),
                at,
            });
        } else if let Some(punct) = PUNCTUATION.iter().find(|p| text[i..].starts_with(**p)) {
            i += punct.len();
            out.push(Token {
                kind: Kind::Punct(punct),
                at,
            });
        } else {
            let ch = text[i..].chars().next().unwrap_or('?');
            return Err(unsupported(at, &format!("the character {ch:?}")));
        }
    }
    out.push(Token {
        kind: Kind::End,
        at: bytes.len(),
    });
    Ok(out)
}

fn unsupported(offset: usize, what: &str) -> Unsupported {
    Unsupported {
        offset,
        construct: format!("{what} is not supported"),
    }
}
