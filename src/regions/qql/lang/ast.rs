//! The syntax tree of a query (QQL.md, "Grammar"). Every node that a later error can
//! be about keeps its position. `Display` writes a node back as QQL text (column
//! names and the plan's explanation use it).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::Pos;
use super::lexer::quote;
use super::path::JsonPath;
use super::value::Lit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub from: From,
    pub joins: Vec<Join>,
    pub filter: Option<Expr>,
    pub group: Vec<GroupKey>,
    /// `None`: `SELECT *` or no SELECT, the whole records.
    pub select: Option<Vec<SelectItem>>,
    pub order: Vec<OrderItem>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    Out,
    In,
    Both,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Out => "OUT",
            Direction::In => "IN",
            Direction::Both => "BOTH",
        })
    }
}

/// A path pattern's segment: a name, or `*` for any one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Segment {
    Name(String),
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pattern {
    pub segments: Vec<Segment>,
    pub pos: Pos,
}

impl Pattern {
    /// The segments as the source takes them (`*` for any).
    pub fn strings(&self) -> Vec<String> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Name(n) => n.clone(),
                Segment::Any => "*".to_string(),
            })
            .collect()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.strings().join("/"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Target {
    Node(String),
    Vector(Vec<f32>),
}

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum From {
    /// `FROM <pattern> [, <pattern>…] [AS a]`
    Collections {
        patterns: Vec<Pattern>,
        alias: Option<String>,
    },
    /// `FROM STREAM <name> [SINCE "<time>"] [UNTIL "<time>"] [AS a]`; µs since the epoch,
    /// `until` excluded.
    Stream {
        name: String,
        since: Option<i64>,
        until: Option<i64>,
        alias: Option<String>,
        pos: Pos,
    },
    /// `NEIGHBOURS OF <id> [VIA <relation>] [OUT|IN|BOTH] [AS a]`
    Neighbours {
        of: String,
        via: Option<String>,
        dir: Direction,
        alias: Option<String>,
        pos: Pos,
    },
    /// `PATHS FROM <id> TO <id> [VIA <relation>] [OUT|IN|BOTH] MAX DEPTH <n>`
    Paths {
        from: String,
        to: String,
        via: Option<String>,
        dir: Direction,
        max_depth: u32,
        pos: Pos,
    },
    /// `NEAREST <k> TO <id> | [<number>, …] [AS a]`
    Nearest {
        k: u32,
        to: Target,
        alias: Option<String>,
        pos: Pos,
    },
}

/// `JOIN <relation>|* [OUT|IN|BOTH] [AS a]`: each row meets the nodes its last record
/// is linked to by an edge of the relation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Join {
    /// `None`: any relation (`JOIN *`).
    pub relation: Option<String>,
    pub dir: Direction,
    pub alias: Option<String>,
    pub pos: Pos,
}

/// A reference to a value of a row: `[alias] .path` or `[alias] @meta [.path]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ref {
    pub alias: Option<String>,
    /// A record's meta field (`key`, `path`, `tier`, `collection`, `time`, `bucket`,
    /// `edge`, `distance`, `rank`, `direction`), when the reference starts with `@`.
    pub meta: Option<String>,
    pub path: JsonPath,
    pub pos: Pos,
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(a) = &self.alias {
            f.write_str(a)?;
        }
        if let Some(m) = &self.meta {
            write!(f, "@{m}")?;
        }
        write!(f, "{}", self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Operand {
    Ref(Ref),
    Lit(Lit),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Ref(r) => write!(f, "{r}"),
            Operand::Lit(l) => write!(f, "{l}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator with its sides swapped (`1 < .a` is `.a > 1`).
    pub fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            same => same,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, CmpOp, Operand),
    In(Operand, Vec<Lit>),
    Exists(Ref),
    StartsWith(Operand, String),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, xs: &[Expr], op: &str| {
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "({x})")?;
            }
            Ok(())
        };
        match self {
            Expr::Or(xs) => join(f, xs, "OR"),
            Expr::And(xs) => join(f, xs, "AND"),
            Expr::Not(x) => write!(f, "NOT ({x})"),
            Expr::Cmp(a, op, b) => write!(f, "{a} {op} {b}"),
            Expr::In(a, lits) => {
                let items: Vec<String> = lits.iter().map(Lit::to_string).collect();
                write!(f, "{a} IN ({})", items.join(", "))
            }
            Expr::Exists(r) => write!(f, "EXISTS {r}"),
            Expr::StartsWith(a, s) => write!(f, "{a} STARTS WITH {}", quote(s)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFn {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

impl AggFn {
    pub fn name(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::Sum => "sum",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::Avg => "avg",
        }
    }
}

/// What a SELECT item or an ORDER BY key computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Term {
    Ref(Ref),
    /// `count()` has no argument; the others take one.
    Agg(AggFn, Option<Ref>, Pos),
}

impl Term {
    pub fn pos(&self) -> Pos {
        match self {
            Term::Ref(r) => r.pos,
            Term::Agg(_, _, p) => *p,
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Ref(r) => write!(f, "{r}"),
            Term::Agg(a, None, _) => write!(f, "{}()", a.name()),
            Term::Agg(a, Some(r), _) => write!(f, "{}({r})", a.name()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectItem {
    pub term: Term,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub term: Term,
    pub desc: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GroupKey {
    Ref(Ref),
    /// `BUCKET <duration>`: the start of the event's time bucket (µs).
    Bucket(i64, Pos),
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupKey::Ref(r) => write!(f, "{r}"),
            GroupKey::Bucket(us, _) => write!(f, "BUCKET {}s", us / 1_000_000),
        }
    }
}
