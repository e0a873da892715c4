//! Expressions (WHERE), references to values of a row, aggregates and literals.

use super::ast::{AggFn, CmpOp, Expr, Operand, Ref, Term};
use super::error::{Error, Result};
use super::lexer::{Tok, is_reserved};
use super::parser::Parser;
use super::path::{JsonPath, Step};
use super::value::Lit;

/// The meta fields a reference may name after `@`.
pub const META: &[&str] = &[
    "key",
    "path",
    "tier",
    "collection",
    "time",
    "bucket",
    "edge",
    "distance",
    "rank",
    "direction",
];

const AGGREGATES: &[(&str, AggFn)] = &[
    ("count", AggFn::Count),
    ("sum", AggFn::Sum),
    ("min", AggFn::Min),
    ("max", AggFn::Max),
    ("avg", AggFn::Avg),
];

impl Parser {
    /// `or := and {OR and}`
    pub(super) fn expr(&mut self) -> Result<Expr> {
        let mut xs = vec![self.and()?];
        while self.eat_kw("OR") {
            xs.push(self.and()?);
        }
        Ok(if xs.len() == 1 {
            xs.remove(0)
        } else {
            Expr::Or(xs)
        })
    }

    /// `and := unary {AND unary}`
    fn and(&mut self) -> Result<Expr> {
        let mut xs = vec![self.unary()?];
        while self.eat_kw("AND") {
            xs.push(self.unary()?);
        }
        Ok(if xs.len() == 1 {
            xs.remove(0)
        } else {
            Expr::And(xs)
        })
    }

    /// `unary := NOT unary | "(" or ")" | predicate`
    fn unary(&mut self) -> Result<Expr> {
        if self.eat_kw("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat(&Tok::LParen) {
            let e = self.expr()?;
            self.expect(&Tok::RParen, "\")\" to close the parenthesis")?;
            return Ok(e);
        }
        self.predicate()
    }

    /// `predicate := EXISTS ref | operand cmp operand | operand [NOT] IN (lit, …)
    ///             | operand STARTS WITH string`
    fn predicate(&mut self) -> Result<Expr> {
        if self.eat_kw("EXISTS") {
            return Ok(Expr::Exists(self.reference("a path after EXISTS")?));
        }
        let left = self.operand("a condition (a path, a meta field or a literal)")?;
        let op = match self.peek().tok {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let right = self.operand(&format!("a value after {op}"))?;
            return Ok(Expr::Cmp(left, op, right));
        }
        let negated = self.at_kw("NOT")
            && matches!(self.peek2(), Tok::Word(w) if w.eq_ignore_ascii_case("IN"));
        if negated {
            self.bump();
        }
        if self.eat_kw("IN") {
            self.expect(&Tok::LParen, "\"(\" after IN")?;
            let mut lits = vec![self.literal("a value in the IN list")?];
            while self.eat(&Tok::Comma) {
                lits.push(self.literal("a value in the IN list")?);
            }
            self.expect(&Tok::RParen, "\",\" or \")\" in the IN list")?;
            let e = Expr::In(left, lits);
            return Ok(if negated { Expr::Not(Box::new(e)) } else { e });
        }
        if self.eat_kw("STARTS") {
            self.expect_kw("WITH", "after STARTS")?;
            let Tok::Str(s) = &self.peek().tok else {
                return Err(self.unexpected("a string after STARTS WITH"));
            };
            let s = s.clone();
            self.bump();
            return Ok(Expr::StartsWith(left, s));
        }
        Err(self.unexpected(&format!(
            "a comparison (=, !=, <, <=, >, >=), IN, NOT IN or STARTS WITH after {left}"
        )))
    }

    fn operand(&mut self, what: &str) -> Result<Operand> {
        if self.starts_ref() {
            return Ok(Operand::Ref(self.reference(what)?));
        }
        Ok(Operand::Lit(self.literal(what)?))
    }

    fn starts_ref(&self) -> bool {
        match &self.peek().tok {
            Tok::Dot | Tok::At => true,
            Tok::Word(w) => !is_reserved(w) && matches!(self.peek2(), Tok::Dot | Tok::At),
            _ => false,
        }
    }

    /// `ref := [alias] (path | "@" meta [path])`
    pub(super) fn reference(&mut self, what: &str) -> Result<Ref> {
        let pos = self.pos();
        let alias = match &self.peek().tok {
            Tok::Word(w) if !is_reserved(w) && matches!(self.peek2(), Tok::Dot | Tok::At) => {
                let w = w.clone();
                self.bump();
                Some(w)
            }
            _ => None,
        };
        let meta = if self.eat(&Tok::At) {
            let at = self.pos();
            let Tok::Word(m) = &self.peek().tok else {
                return Err(self.unexpected("a meta field name after @"));
            };
            let m = m.to_ascii_lowercase();
            if !META.contains(&m.as_str()) {
                return Err(Error::new(
                    at,
                    format!("unknown meta field @{m} (known: @{})", META.join(", @")),
                ));
            }
            self.bump();
            Some(m)
        } else if self.peek().tok != Tok::Dot {
            return Err(self.unexpected(what));
        } else {
            None
        };
        let path = self.path(meta.is_some())?;
        Ok(Ref {
            alias,
            meta,
            path,
            pos,
        })
    }

    /// `path := ("." (word | string) | "[" int "]")…`; may be empty only after a meta
    /// field.
    fn path(&mut self, may_be_empty: bool) -> Result<JsonPath> {
        let mut steps = Vec::new();
        loop {
            if self.eat(&Tok::Dot) {
                match &self.peek().tok {
                    Tok::Word(w) | Tok::Str(w) => {
                        steps.push(Step::Member(w.clone()));
                        self.bump();
                    }
                    Tok::LBracket => {}
                    _ => return Err(self.unexpected("a member name after \".\"")),
                }
            } else if self.eat(&Tok::LBracket) {
                match self.peek().tok {
                    Tok::Int(i) if i >= 0 => {
                        steps.push(Step::Index(i.unsigned_abs()));
                        self.bump();
                    }
                    _ => return Err(self.unexpected("an array index (0, 1, …) after \"[\"")),
                }
                self.expect(&Tok::RBracket, "\"]\" after the index")?;
            } else {
                break;
            }
        }
        if steps.is_empty() && !may_be_empty {
            return Err(self.unexpected("a member name after \".\""));
        }
        Ok(JsonPath(steps))
    }

    /// `term := aggregate "(" [ref] ")" | ref`
    pub(super) fn term(&mut self, what: &str) -> Result<Term> {
        let pos = self.pos();
        if let Tok::Word(w) = &self.peek().tok
            && *self.peek2() == Tok::LParen
        {
            let Some(agg) = AGGREGATES
                .iter()
                .find_map(|(n, a)| n.eq_ignore_ascii_case(w).then_some(*a))
            else {
                return Err(Error::new(
                    pos,
                    format!("unknown function {w}() (count, sum, min, max or avg)"),
                ));
            };
            self.bump();
            self.bump();
            if self.eat(&Tok::RParen) {
                if agg != AggFn::Count {
                    return Err(Error::new(pos, format!("{}() needs a path", agg.name())));
                }
                return Ok(Term::Agg(agg, None, pos));
            }
            let r = self.reference(&format!("a path inside {}()", agg.name()))?;
            self.expect(&Tok::RParen, "\")\" after the aggregate's path")?;
            return Ok(Term::Agg(agg, Some(r), pos));
        }
        Ok(Term::Ref(self.reference(what)?))
    }

    /// `lit := string | number | TRUE | FALSE | NULL | "[" [lit {"," lit}] "]"`
    pub(super) fn literal(&mut self, what: &str) -> Result<Lit> {
        let lit = match &self.peek().tok {
            Tok::Str(s) => Lit::Str(s.clone()),
            Tok::Int(i) => Lit::Int(*i),
            Tok::Float(f) => Lit::Float(*f),
            Tok::Word(w) if w.eq_ignore_ascii_case("TRUE") => Lit::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("FALSE") => Lit::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("NULL") => Lit::Null,
            Tok::LBracket => {
                self.bump();
                let mut items = Vec::new();
                if !self.eat(&Tok::RBracket) {
                    loop {
                        items.push(self.literal("a value in the array")?);
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(&Tok::RBracket, "\",\" or \"]\" in the array")?;
                }
                return Ok(Lit::Array(items));
            }
            _ => return Err(self.unexpected(what)),
        };
        self.bump();
        Ok(lit)
    }
}
