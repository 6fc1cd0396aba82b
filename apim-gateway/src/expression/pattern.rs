//! .NET regular expressions (System.Text.RegularExpressions, default
//! options) translated to the `regex` crate's syntax, for `Regex.IsMatch`.
//! The two agree on most of the syntax; where they differ the translation
//! keeps .NET's meaning, and what the crate cannot express (lookaround,
//! backreferences, ...) is refused so that the gateway never matches
//! differently from APIM.

/// The `regex` crate's pattern with the meaning of the .NET `pattern`, or
/// why there is none.
pub(super) fn translate(pattern: &str) -> Result<String, String> {
    let mut translator = Translator {
        chars: pattern.chars().collect(),
        pos: 0,
        out: String::with_capacity(pattern.len() + 8),
    };
    translator.run()?;
    Ok(translator.out)
}

struct Translator {
    chars: Vec<char>,
    pos: usize,
    out: String,
}

/// A literal character, escaped so that the crate reads it as itself
/// inside or outside a class.
fn literal(c: char) -> String {
    let mut buffer = [0; 4];
    regex::escape(c.encode_utf8(&mut buffer))
}

/// An item of a character class.
enum ClassAtom {
    Char(char),
    /// `\d`, `\p{L}`, ...: passed on as written.
    Class(String),
}

impl Translator {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn run(&mut self) -> Result<(), String> {
        while let Some(c) = self.next() {
            match c {
                '\\' => self.escape()?,
                '[' => self.class()?,
                '(' => self.group()?,
                // Without RegexOptions.Multiline, .NET's `$` (and `\Z`)
                // also matches before a final newline; the crate's only at
                // the very end.
                '$' => self.end_anchor("$")?,
                '{' => self.brace(),
                '}' => self.out.push_str("\\}"),
                '^' | '.' | '|' | ')' | '*' | '+' | '?' => self.out.push(c),
                c => self.out.push_str(&literal(c)),
            }
        }
        Ok(())
    }

    /// `$`, translated as "an optional newline, then the end": the same
    /// for a match's existence as long as nothing that could consume the
    /// newline follows it.
    fn end_anchor(&mut self, written: &str) -> Result<(), String> {
        match self.peek() {
            None | Some('|' | ')') => {
                self.out.push_str("(?:\\n?\\z)");
                Ok(())
            }
            Some(_) => Err(format!(
                "`{written}` followed by more of the pattern is not supported (use `\\z`)"
            )),
        }
    }

    /// `{`: a quantifier `{n}`, `{n,}`, `{n,m}` is passed on; anything
    /// else is a literal brace in .NET, and must be escaped for the crate.
    fn brace(&mut self) {
        let rest: String = self.chars[self.pos..].iter().collect();
        if let Some(end) = rest.find('}') {
            let inside = &rest[..end];
            let mut parts = inside.splitn(2, ',');
            let min = parts.next().unwrap_or("");
            let max = parts.next();
            let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
            if digits(min) && max.is_none_or(|m| m.is_empty() || digits(m)) {
                self.out.push('{');
                self.out.push_str(inside);
                self.out.push('}');
                self.pos += inside.chars().count() + 1;
                return;
            }
        }
        self.out.push_str("\\{");
    }

    /// After `\` outside a class.
    fn escape(&mut self) -> Result<(), String> {
        let c = self
            .next()
            .ok_or_else(|| "a pattern ending in `\\`".to_owned())?;
        match c {
            'A' | 'z' | 'b' | 'B' | 'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                self.out.push('\\');
                self.out.push(c);
            }
            'Z' => self.end_anchor("\\Z")?,
            'p' | 'P' => {
                let name = self.property_name(c)?;
                self.out.push_str(&name);
            }
            'G' => return Err("`\\G` is not supported".to_owned()),
            'k' => return Err("named backreferences (`\\k`) are not supported".to_owned()),
            '1'..='9' => {
                return Err(format!("backreferences (`\\{c}`) are not supported"));
            }
            _ => {
                let ch = self.char_escape(c)?;
                self.out.push_str(&literal(ch));
            }
        }
        Ok(())
    }

    /// `\p{Name}`: passed on (a category the crate was built without is
    /// refused when the pattern is compiled).
    fn property_name(&mut self, p: char) -> Result<String, String> {
        if self.next() != Some('{') {
            return Err(format!("`\\{p}` must be followed by `{{name}}`"));
        }
        let mut name = String::new();
        loop {
            match self.next() {
                Some('}') => break,
                Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-' => name.push(c),
                _ => return Err(format!("an invalid `\\{p}{{...}}`")),
            }
        }
        if name.starts_with("Is") {
            return Err(format!(
                "the Unicode block `\\{p}{{{name}}}` is not supported"
            ));
        }
        Ok(format!("\\{p}{{{name}}}"))
    }

    /// The character of an escape that stands for one character.
    fn char_escape(&mut self, c: char) -> Result<char, String> {
        let hex = |t: &mut Translator, n: usize| -> Result<char, String> {
            let digits: String = (0..n).filter_map(|_| t.next()).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .filter(|_| digits.len() == n)
                .and_then(char::from_u32)
                .ok_or_else(|| format!("an invalid escape `\\{c}{digits}`"))
        };
        Ok(match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'f' => '\u{c}',
            'v' => '\u{b}',
            'a' => '\u{7}',
            'e' => '\u{1b}',
            'x' => hex(self, 2)?,
            'u' => hex(self, 4)?,
            'c' => match self.next() {
                Some(letter) if letter.is_ascii_alphabetic() => {
                    char::from(letter.to_ascii_uppercase() as u8 - b'@')
                }
                _ => return Err("an invalid control escape `\\c`".to_owned()),
            },
            // .NET's octal escape: `\0` and up to two more octal digits.
            '0' => {
                let mut value = 0u32;
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                char::from_u32(value).unwrap_or('\0')
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                return Err(format!("the escape `\\{c}` is not recognised by .NET"));
            }
            // Any other escaped character is itself.
            c => c,
        })
    }

    /// After `(`.
    fn group(&mut self) -> Result<(), String> {
        if self.peek() != Some('?') {
            self.out.push('(');
            return Ok(());
        }
        self.pos += 1;
        match self.next() {
            Some(':') => self.out.push_str("(?:"),
            Some('=' | '!') => return Err("lookahead (`(?=`, `(?!`) is not supported".to_owned()),
            Some('>') => return Err("atomic groups (`(?>`) are not supported".to_owned()),
            Some('#') => {
                // A comment: dropped.
                while self.next().is_some_and(|c| c != ')') {}
            }
            Some('(') => return Err("conditional groups (`(?(`) are not supported".to_owned()),
            Some('<') if matches!(self.peek(), Some('=' | '!')) => {
                return Err("lookbehind (`(?<=`, `(?<!`) is not supported".to_owned());
            }
            Some(open @ ('<' | '\'')) => {
                let close = if open == '<' { '>' } else { '\'' };
                let mut name = String::new();
                loop {
                    match self.next() {
                        Some(c) if c == close => break,
                        Some(c) if c.is_alphanumeric() || c == '_' => name.push(c),
                        Some('-') => {
                            return Err("balancing groups are not supported".to_owned());
                        }
                        _ => return Err("an invalid group name".to_owned()),
                    }
                }
                if name.chars().all(|c| c.is_ascii_digit()) {
                    // A numbered group: the number only matters to
                    // backreferences, which are refused.
                    self.out.push('(');
                } else {
                    self.out.push_str(&format!("(?<{name}>"));
                }
            }
            Some(c) if "imnsx-".contains(c) => self.options(c)?,
            _ => return Err("an unknown group construct `(?`".to_owned()),
        }
        Ok(())
    }

    /// `(?is-s)` or `(?i:...)`: only `i` and `s`, which mean the same in
    /// the crate; `n` (explicit capture) changes no match and is dropped.
    fn options(&mut self, first: char) -> Result<(), String> {
        let mut flags = String::new();
        let mut c = first;
        loop {
            match c {
                'i' | 's' | '-' => flags.push(c),
                'n' => {}
                'm' => {
                    return Err("the inline option `m` (multiline) is not supported".to_owned());
                }
                'x' => {
                    return Err(
                        "the inline option `x` (ignore whitespace) is not supported".to_owned()
                    );
                }
                ':' | ')' => {
                    let flags = flags.trim_end_matches('-');
                    match (c, flags.is_empty()) {
                        (':', true) => self.out.push_str("(?:"),
                        (':', false) => self.out.push_str(&format!("(?{flags}:")),
                        (_, true) => {}
                        (_, false) => self.out.push_str(&format!("(?{flags})")),
                    }
                    return Ok(());
                }
                _ => return Err(format!("the inline option `{c}` is not supported")),
            }
            c = self
                .next()
                .ok_or_else(|| "an unterminated group `(?`".to_owned())?;
        }
    }

    /// After `[`: a .NET class, re-written item by item so that the
    /// crate's class syntax (nested `[`, `&&`, `--`, `~~`) never applies.
    fn class(&mut self) -> Result<(), String> {
        self.out.push('[');
        if self.peek() == Some('^') {
            self.pos += 1;
            self.out.push('^');
        }
        let mut first = true;
        loop {
            let c = self
                .peek()
                .ok_or_else(|| "an unterminated character class `[`".to_owned())?;
            // `]` first in a class is a literal in .NET.
            if c == ']' && !first {
                self.pos += 1;
                self.out.push(']');
                return Ok(());
            }
            first = false;
            if c == '-' && self.peek_at(1) == Some('[') {
                return Err("character class subtraction (`-[...]`) is not supported".to_owned());
            }
            let start = self.class_atom()?;
            let is_range = self.peek() == Some('-')
                && !matches!(self.peek_at(1), Some(']') | None)
                && self.peek_at(1) != Some('[');
            match (start, is_range) {
                (ClassAtom::Char(low), true) => {
                    self.pos += 1;
                    match self.class_atom()? {
                        ClassAtom::Char(high) => {
                            if high < low {
                                return Err(format!(
                                    "the range `{low}-{high}` is in reverse order"
                                ));
                            }
                            self.out.push_str(&literal(low));
                            self.out.push('-');
                            self.out.push_str(&literal(high));
                        }
                        ClassAtom::Class(_) => {
                            return Err("a range ending in a class escape".to_owned());
                        }
                    }
                }
                (ClassAtom::Class(_), true) => {
                    return Err("a range starting with a class escape".to_owned());
                }
                (ClassAtom::Char(c), false) => self.out.push_str(&literal(c)),
                (ClassAtom::Class(class), false) => self.out.push_str(&class),
            }
        }
    }

    fn class_atom(&mut self) -> Result<ClassAtom, String> {
        let c = self
            .next()
            .ok_or_else(|| "an unterminated character class `[`".to_owned())?;
        if c != '\\' {
            return Ok(ClassAtom::Char(c));
        }
        let e = self
            .next()
            .ok_or_else(|| "a pattern ending in `\\`".to_owned())?;
        Ok(match e {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => ClassAtom::Class(format!("\\{e}")),
            'p' | 'P' => ClassAtom::Class(self.property_name(e)?),
            // In a class, `\b` is a backspace.
            'b' => ClassAtom::Char('\u{8}'),
            '1'..='9' => {
                return Err(format!("the escape `\\{e}` in a class is not supported"));
            }
            _ => ClassAtom::Char(self.char_escape(e)?),
        })
    }
}
