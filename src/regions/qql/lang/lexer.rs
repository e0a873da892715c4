//! Tokens of QQL text, each with its position. Keywords are words compared without
//! regard to case; the parser decides which words are keywords where.

use super::error::{Error, Pos, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `[A-Za-z_][A-Za-z0-9_-]*`: keywords, names, node ids, pattern segments.
    Word(String),
    /// A double-quoted string with JSON escapes, unescaped.
    Str(String),
    Int(i64),
    Float(f64),
    /// `30s`, `5m`, `1h`, `1d`: in microseconds.
    Duration(i64),
    Dot,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Star,
    Slash,
    At,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// Words that are never names (aliases, node ids, relations): quote such a name.
pub const RESERVED: &[&str] = &[
    "AND",
    "AS",
    "ASC",
    "BOTH",
    "BUCKET",
    "BY",
    "DEPTH",
    "DESC",
    "EXISTS",
    "FALSE",
    "FROM",
    "GROUP",
    "IN",
    "JOIN",
    "LIMIT",
    "NEAREST",
    "NEIGHBORS",
    "NEIGHBOURS",
    "NOT",
    "NULL",
    "OF",
    "OFFSET",
    "OR",
    "ORDER",
    "OUT",
    "PATHS",
    "SELECT",
    "SINCE",
    "STARTS",
    "STREAM",
    "TO",
    "TRUE",
    "UNTIL",
    "VIA",
    "WHERE",
    "WITH",
];

pub fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word))
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("\"{w}\""),
            Tok::Str(s) => format!("the string {}", quote(s)),
            Tok::Int(i) => format!("the number {i}"),
            Tok::Float(f) => format!("the number {f}"),
            Tok::Duration(_) => "a duration".to_string(),
            Tok::Eof => "the end of the query".to_string(),
            other => format!("\"{}\"", other.canonical()),
        }
    }

    /// The token's normalized text (reserved words upper-cased, strings re-quoted):
    /// what the query hash is computed over.
    pub fn canonical(&self) -> String {
        match self {
            Tok::Word(w) if is_reserved(w) => w.to_ascii_uppercase(),
            Tok::Word(w) => w.clone(),
            Tok::Str(s) => quote(s),
            Tok::Int(i) => i.to_string(),
            Tok::Float(f) => format!("{f:?}"),
            Tok::Duration(us) => format!("{us}us"),
            Tok::Dot => ".".into(),
            Tok::Comma => ",".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::LBracket => "[".into(),
            Tok::RBracket => "]".into(),
            Tok::Star => "*".into(),
            Tok::Slash => "/".into(),
            Tok::At => "@".into(),
            Tok::Eq => "=".into(),
            Tok::Ne => "!=".into(),
            Tok::Lt => "<".into(),
            Tok::Le => "<=".into(),
            Tok::Gt => ">".into(),
            Tok::Ge => ">=".into(),
            Tok::Eof => String::new(),
        }
    }
}

/// A string as a JSON string literal.
pub fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    col: u32,
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn second(&self) -> Option<char> {
        let mut it = self.chars.clone();
        it.next();
        it.next()
    }

    /// Skips blanks and `--` comments (to the end of the line).
    fn skip_blank(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('-') if self.second() == Some('-') => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                _ => return,
            }
        }
    }

    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        {
            w.push(c);
            self.bump();
        }
        w
    }

    fn string(&mut self, start: Pos) -> Result<Tok> {
        self.bump();
        let mut s = String::new();
        loop {
            let at = self.pos();
            match self.bump() {
                None => return Err(Error::new(start, "string not closed (a \" is missing)")),
                Some('"') => return Ok(Tok::Str(s)),
                Some('\\') => s.push(self.escape(at)?),
                Some(c) => s.push(c),
            }
        }
    }

    fn escape(&mut self, at: Pos) -> Result<char> {
        Ok(match self.bump() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('u') => {
                let mut hex = String::new();
                for _ in 0..4 {
                    hex.extend(self.bump());
                }
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| Error::new(at, format!("bad escape \\u{hex} in a string")))?
            }
            other => {
                let what = other.map_or("the end".to_string(), |c| c.to_string());
                return Err(Error::new(at, format!("bad escape \\{what} in a string")));
            }
        })
    }

    fn number(&mut self, start: Pos) -> Result<Tok> {
        let mut text = String::new();
        if self.peek() == Some('-') {
            text.push('-');
            self.bump();
        }
        let mut float = false;
        self.digits(&mut text);
        if self.peek() == Some('.') && self.second().is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            text.push('.');
            self.bump();
            self.digits(&mut text);
        }
        if matches!(self.peek(), Some('e' | 'E'))
            && self
                .second()
                .is_some_and(|c| c.is_ascii_digit() || c == '+' || c == '-')
        {
            float = true;
            text.push('e');
            self.bump();
            if let Some(sign @ ('+' | '-')) = self.peek() {
                text.push(sign);
                self.bump();
            }
            self.digits(&mut text);
        }
        let unit = self.peek().filter(|c| c.is_ascii_alphabetic());
        if let Some(u) = unit {
            let us: i64 = match u {
                's' => 1_000_000,
                'm' => 60_000_000,
                'h' => 3_600_000_000,
                'd' => 86_400_000_000,
                _ => {
                    return Err(Error::new(
                        start,
                        format!("unknown duration unit \"{u}\" (s, m, h or d)"),
                    ));
                }
            };
            self.bump();
            if self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(Error::new(start, "unknown duration unit (s, m, h or d)"));
            }
            let n: i64 = text
                .parse()
                .ok()
                .filter(|n| !float && *n > 0)
                .ok_or_else(|| {
                    Error::new(
                        start,
                        "a duration is a positive whole number and a unit, like 5m",
                    )
                })?;
            return n
                .checked_mul(us)
                .map(Tok::Duration)
                .ok_or_else(|| Error::new(start, "duration too long"));
        }
        if !float && let Ok(i) = text.parse::<i64>() {
            return Ok(Tok::Int(i));
        }
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Tok::Float)
            .ok_or_else(|| Error::new(start, format!("bad number {text}")))
    }

    fn digits(&mut self, text: &mut String) {
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            text.push(c);
            self.bump();
        }
    }

    fn punct(&mut self, c: char, start: Pos) -> Result<Tok> {
        self.bump();
        let next_eq = self.peek() == Some('=');
        let tok = match c {
            '.' => Tok::Dot,
            ',' => Tok::Comma,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '@' => Tok::At,
            '=' => Tok::Eq,
            '!' if next_eq => Tok::Ne,
            '<' if self.peek() == Some('>') => Tok::Ne,
            '<' if next_eq => Tok::Le,
            '<' => Tok::Lt,
            '>' if next_eq => Tok::Ge,
            '>' => Tok::Gt,
            other => {
                return Err(Error::new(
                    start,
                    format!("unexpected character \"{other}\""),
                ));
            }
        };
        if matches!(tok, Tok::Ne | Tok::Le | Tok::Ge) {
            self.bump();
        }
        Ok(tok)
    }
}

/// The tokens of `text`, ending with [`Tok::Eof`].
pub fn lex(text: &str) -> Result<Vec<Token>> {
    let mut lx = Lexer {
        chars: text.chars().peekable(),
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    loop {
        lx.skip_blank();
        let pos = lx.pos();
        let Some(c) = lx.peek() else {
            out.push(Token { tok: Tok::Eof, pos });
            return Ok(out);
        };
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            Tok::Word(lx.word())
        } else if c == '"' {
            lx.string(pos)?
        } else if c.is_ascii_digit()
            || (c == '-' && lx.second().is_some_and(|d| d.is_ascii_digit()))
        {
            lx.number(pos)?
        } else {
            lx.punct(c, pos)?
        };
        out.push(Token { tok, pos });
    }
}

/// The normalized text of a query: its tokens' canonical forms separated by one space
/// (so blanks, comments and the case of reserved words do not change it).
pub fn normalize(text: &str) -> Result<String> {
    let toks = lex(text)?;
    let parts: Vec<String> = toks
        .iter()
        .filter(|t| t.tok != Tok::Eof)
        .map(|t| t.tok.canonical())
        .collect();
    Ok(parts.join(" "))
}
