//! The parser: recursive descent over the tokens, one method per grammar rule
//! (QQL.md, "Grammar"). This file holds the query and its clauses; `expr.rs` the
//! expressions, references and literals.

use super::ast::{
    Direction, From, GroupKey, Join, OrderItem, Pattern, Query, Segment, SelectItem, Target,
};
use super::error::{Error, Pos, Result};
use super::lexer::{Tok, Token, is_reserved, lex};

/// Parses one query.
pub fn parse(text: &str) -> Result<Query> {
    let mut p = Parser {
        toks: lex(text)?,
        at: 0,
    };
    let q = p.query()?;
    if p.peek().tok != Tok::Eof {
        return Err(p.unexpected(
            "the end of the query (clauses go in the order FROM, JOIN, WHERE, GROUP BY, ORDER BY, LIMIT, OFFSET; SELECT first, after GROUP BY or last)",
        ));
    }
    Ok(q)
}

/// Longest path a PATHS query may follow, and most neighbours NEAREST may ask for:
/// both bound the work one query can cause.
pub const MAX_DEPTH: u32 = 8;
pub const MAX_K: u32 = 10_000;

pub(super) struct Parser {
    toks: Vec<Token>,
    at: usize,
}

impl Parser {
    pub(super) fn peek(&self) -> &Token {
        // `lex` always ends with Eof, which is never consumed.
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    pub(super) fn peek2(&self) -> &Tok {
        &self.toks[(self.at + 1).min(self.toks.len() - 1)].tok
    }

    pub(super) fn pos(&self) -> Pos {
        self.peek().pos
    }

    pub(super) fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.at += 1;
        }
        t
    }

    pub(super) fn at_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    pub(super) fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.at_kw(kw);
        if hit {
            self.bump();
        }
        hit
    }

    pub(super) fn eat(&mut self, tok: &Tok) -> bool {
        let hit = &self.peek().tok == tok;
        if hit {
            self.bump();
        }
        hit
    }

    /// "expected <what>, found <the next token>", at the next token.
    pub(super) fn unexpected(&self, what: &str) -> Error {
        let t = self.peek();
        Error::new(
            t.pos,
            format!("expected {what}, found {}", t.tok.describe()),
        )
    }

    pub(super) fn expect_kw(&mut self, kw: &str, what: &str) -> Result<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("{kw} {what}")))
        }
    }

    pub(super) fn expect(&mut self, tok: &Tok, what: &str) -> Result<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// A name (alias, node id, relation, column): a word that is not reserved, or a
    /// string.
    pub(super) fn name(&mut self, what: &str) -> Result<String> {
        match &self.peek().tok {
            Tok::Word(w) if !is_reserved(w) => {
                let w = w.clone();
                self.bump();
                Ok(w)
            }
            Tok::Str(s) => {
                let s = s.clone();
                self.bump();
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn count(&mut self, what: &str) -> Result<u64> {
        match self.peek().tok {
            Tok::Int(n) if n >= 0 => {
                self.bump();
                Ok(n.unsigned_abs())
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn bounded(&mut self, what: &str, max: u32) -> Result<u32> {
        let pos = self.pos();
        let n = self.count(what)?;
        u32::try_from(n)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| Error::new(pos, format!("{what} must be between 1 and {max}")))
    }

    fn alias(&mut self) -> Result<Option<String>> {
        if self.eat_kw("AS") {
            return self.name("a name after AS").map(Some);
        }
        Ok(None)
    }

    /// SELECT may come first (as in SQL), after GROUP BY, or last.
    fn query(&mut self) -> Result<Query> {
        let mut select = None;
        let mut selected = self.select_clause(&mut select, false)?;
        let from = self.source()?;
        let mut joins = Vec::new();
        while self.at_kw("JOIN") {
            joins.push(self.join()?);
        }
        let filter = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut group = Vec::new();
        if self.eat_kw("GROUP") {
            self.expect_kw("BY", "after GROUP")?;
            group.push(self.group_key()?);
            while self.eat(&Tok::Comma) {
                group.push(self.group_key()?);
            }
        }
        selected = self.select_clause(&mut select, selected)?;
        let mut order = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY", "after ORDER")?;
            order.push(self.order_item()?);
            while self.eat(&Tok::Comma) {
                order.push(self.order_item()?);
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.count("a number of rows after LIMIT")?)
        } else {
            None
        };
        let offset = if self.eat_kw("OFFSET") {
            Some(self.count("a number of rows after OFFSET")?)
        } else {
            None
        };
        self.select_clause(&mut select, selected)?;
        Ok(Query {
            from,
            joins,
            filter,
            group,
            select,
            order,
            limit,
            offset,
        })
    }

    fn source(&mut self) -> Result<From> {
        let pos = self.pos();
        if self.eat_kw("FROM") {
            if self.eat_kw("STREAM") {
                return self.stream(pos);
            }
            let mut patterns = vec![self.pattern()?];
            while self.eat(&Tok::Comma) {
                patterns.push(self.pattern()?);
            }
            let alias = self.alias()?;
            return Ok(From::Collections { patterns, alias });
        }
        if self.eat_kw("NEIGHBOURS") || self.eat_kw("NEIGHBORS") {
            self.expect_kw("OF", "after NEIGHBOURS")?;
            let of = self.name("a node id after OF")?;
            let via = self.via()?;
            let dir = self.direction().unwrap_or(Direction::Both);
            let alias = self.alias()?;
            return Ok(From::Neighbours {
                of,
                via,
                dir,
                alias,
                pos,
            });
        }
        if self.eat_kw("PATHS") {
            self.expect_kw("FROM", "after PATHS")?;
            let from = self.name("a node id after PATHS FROM")?;
            self.expect_kw("TO", "after the node PATHS start from")?;
            let to = self.name("a node id after TO")?;
            let via = self.via()?;
            let dir = self.direction().unwrap_or(Direction::Out);
            let max_depth = if self.eat_kw("MAX") {
                self.expect_kw("DEPTH", "after MAX")?;
                self.bounded("the depth after MAX DEPTH", MAX_DEPTH)?
            } else {
                3
            };
            return Ok(From::Paths {
                from,
                to,
                via,
                dir,
                max_depth,
                pos,
            });
        }
        if self.eat_kw("NEAREST") {
            let k = self.bounded("the number of nodes after NEAREST", MAX_K)?;
            self.expect_kw("TO", "after NEAREST <k>")?;
            let to = if self.peek().tok == Tok::LBracket {
                Target::Vector(self.vector()?)
            } else {
                Target::Node(self.name("a node id or a vector after TO")?)
            };
            let alias = self.alias()?;
            return Ok(From::Nearest { k, to, alias, pos });
        }
        Err(self.unexpected("FROM, NEIGHBOURS, PATHS or NEAREST at the start of a query"))
    }

    fn stream(&mut self, pos: Pos) -> Result<From> {
        let name = self.name("a stream name after FROM STREAM")?;
        let since = if self.eat_kw("SINCE") {
            Some(self.time("SINCE")?)
        } else {
            None
        };
        let until = if self.eat_kw("UNTIL") {
            Some(self.time("UNTIL")?)
        } else {
            None
        };
        let alias = self.alias()?;
        Ok(From::Stream {
            name,
            since,
            until,
            alias,
            pos,
        })
    }

    fn time(&mut self, after: &str) -> Result<i64> {
        let pos = self.pos();
        let Tok::Str(s) = &self.peek().tok else {
            return Err(self.unexpected(&format!("a time in quotes after {after}")));
        };
        let t = crate::regions::temporal::time::parse_rfc3339(s)
            .map_err(|why| Error::new(pos, format!("{s:?} after {after}: {why}")))?;
        self.bump();
        Ok(t)
    }

    fn vector(&mut self) -> Result<Vec<f32>> {
        self.expect(&Tok::LBracket, "[")?;
        let mut v = Vec::new();
        loop {
            // Vectors are f32 in the similarity index.
            match self.peek().tok {
                Tok::Int(i) => v.push(i as f32),
                Tok::Float(f) => v.push(f as f32),
                _ => return Err(self.unexpected("a number in the vector")),
            }
            self.bump();
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(&Tok::RBracket, "\",\" or \"]\" in the vector")?;
        Ok(v)
    }

    fn via(&mut self) -> Result<Option<String>> {
        if self.eat_kw("VIA") {
            return self.name("a relation after VIA").map(Some);
        }
        Ok(None)
    }

    fn direction(&mut self) -> Option<Direction> {
        [
            ("OUT", Direction::Out),
            ("IN", Direction::In),
            ("BOTH", Direction::Both),
        ]
        .into_iter()
        .find_map(|(kw, d)| self.eat_kw(kw).then_some(d))
    }

    /// `seg/seg/…` (a `*` segment matches any one), or one string holding the pattern.
    fn pattern(&mut self) -> Result<Pattern> {
        let pos = self.pos();
        if let Tok::Str(s) = &self.peek().tok {
            let segments = s
                .split('/')
                .map(|seg| match seg {
                    "*" => Segment::Any,
                    n => Segment::Name(n.to_string()),
                })
                .collect();
            if s.split('/').any(str::is_empty) {
                return Err(Error::new(pos, "a path pattern has an empty segment"));
            }
            self.bump();
            return Ok(Pattern { segments, pos });
        }
        let mut segments = vec![self.segment(true)?];
        while self.eat(&Tok::Slash) {
            segments.push(self.segment(false)?);
        }
        Ok(Pattern { segments, pos })
    }

    fn segment(&mut self, first: bool) -> Result<Segment> {
        let seg = match &self.peek().tok {
            Tok::Star => Segment::Any,
            Tok::Word(w) if !(first && is_reserved(w)) => Segment::Name(w.clone()),
            Tok::Str(s) if !s.is_empty() && !s.contains('/') => Segment::Name(s.clone()),
            Tok::Int(i) if *i >= 0 => Segment::Name(i.to_string()),
            _ => {
                return Err(self.unexpected("a collection path (like spacetime/*/particles/users)"));
            }
        };
        self.bump();
        Ok(seg)
    }

    fn join(&mut self) -> Result<Join> {
        let pos = self.pos();
        self.expect_kw("JOIN", "")?;
        let relation = if self.eat(&Tok::Star) {
            None
        } else {
            Some(self.name("a relation (or *) after JOIN")?)
        };
        let dir = self.direction().unwrap_or(Direction::Out);
        let alias = self.alias()?;
        Ok(Join {
            relation,
            dir,
            alias,
            pos,
        })
    }

    fn group_key(&mut self) -> Result<GroupKey> {
        let pos = self.pos();
        if self.eat_kw("BUCKET") {
            return match self.peek().tok {
                Tok::Duration(us) => {
                    self.bump();
                    Ok(GroupKey::Bucket(us, pos))
                }
                _ => Err(self.unexpected("a duration (like 30s, 5m, 1h, 1d) after BUCKET")),
            };
        }
        Ok(GroupKey::Ref(
            self.reference("a path or BUCKET after GROUP BY")?,
        ))
    }

    /// A SELECT clause here, if there is one (`done`: one was read already). Returns
    /// whether one has been read.
    fn select_clause(&mut self, select: &mut Option<Vec<SelectItem>>, done: bool) -> Result<bool> {
        if !self.at_kw("SELECT") {
            return Ok(done);
        }
        if done {
            return Err(Error::new(self.pos(), "a query has one SELECT"));
        }
        self.bump();
        *select = self.select()?;
        Ok(true)
    }

    fn select(&mut self) -> Result<Option<Vec<SelectItem>>> {
        if self.eat(&Tok::Star) {
            return Ok(None);
        }
        let mut items = Vec::new();
        loop {
            let term = self.term("a path, a meta field or an aggregate after SELECT")?;
            let name = self.alias()?;
            items.push(SelectItem { term, name });
            if !self.eat(&Tok::Comma) {
                return Ok(Some(items));
            }
        }
    }

    fn order_item(&mut self) -> Result<OrderItem> {
        let term = self.term("a path or an aggregate after ORDER BY")?;
        let desc = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        Ok(OrderItem { term, desc })
    }
}
