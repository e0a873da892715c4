//! Filters as the executor evaluates them: the WHERE expression with its references
//! resolved and its literals turned into JSON values.

use serde_json::Value;

use super::super::lang::ast::CmpOp;
use super::super::lang::value::{cmp, rank};
use super::row::{Row, Slot};

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Slot(Slot),
    Const(Value),
}

impl Val {
    fn get<'a>(&'a self, slot: &dyn Fn(&'a Slot) -> Option<&'a Value>) -> Option<&'a Value> {
        match self {
            Val::Slot(s) => slot(s),
            Val::Const(v) => Some(v),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    Or(Vec<Pred>),
    And(Vec<Pred>),
    Not(Box<Pred>),
    Cmp(Val, CmpOp, Val),
    In(Val, Vec<Value>),
    Exists(Slot),
    Prefix(Val, String),
}

/// `a op b` for present values: `=` and `!=` by the total order; the others only
/// between values of one kind (`.age > 3` is false for a string age).
pub fn compare(a: &Value, op: CmpOp, b: &Value) -> bool {
    let o = cmp(a, b);
    match op {
        CmpOp::Eq => o.is_eq(),
        CmpOp::Ne => o.is_ne(),
        _ if rank(a) != rank(b) => false,
        CmpOp::Lt => o.is_lt(),
        CmpOp::Le => o.is_le(),
        CmpOp::Gt => o.is_gt(),
        CmpOp::Ge => o.is_ge(),
    }
}

impl Pred {
    /// Whether the row passes. A comparison, IN or STARTS WITH with an absent operand is
    /// false (so `.x != 1` is false where `.x` is absent, and `NOT .x = 1` true).
    pub fn eval(&self, row: &Row) -> bool {
        self.test(&|s| s.get(row))
    }

    /// Whether a record's content alone passes: for a filter that reads no meta field
    /// and no JOINed record (`reads_only_content`), before a row is made of it.
    pub fn eval_content(&self, content: &Value) -> bool {
        self.test(&|s| s.path.get(content))
    }

    /// Whether every reference reads the FROM's record's content.
    pub fn reads_only_content(&self) -> bool {
        let on_content = |s: &Slot| s.meta.is_none() && s.item.unwrap_or(0) == 0;
        let val = |v: &Val| match v {
            Val::Slot(s) => on_content(s),
            Val::Const(_) => true,
        };
        match self {
            Pred::Or(xs) | Pred::And(xs) => xs.iter().all(Pred::reads_only_content),
            Pred::Not(x) => x.reads_only_content(),
            Pred::Cmp(a, _, b) => val(a) && val(b),
            Pred::In(a, _) | Pred::Prefix(a, _) => val(a),
            Pred::Exists(s) => on_content(s),
        }
    }

    /// The predicate over what `slot` reads.
    fn test<'a>(&'a self, slot: &dyn Fn(&'a Slot) -> Option<&'a Value>) -> bool {
        match self {
            Pred::Or(xs) => xs.iter().any(|x| x.test(slot)),
            Pred::And(xs) => xs.iter().all(|x| x.test(slot)),
            Pred::Not(x) => !x.test(slot),
            Pred::Cmp(a, op, b) => match (a.get(slot), b.get(slot)) {
                (Some(x), Some(y)) => compare(x, *op, y),
                _ => false,
            },
            Pred::In(a, vs) => a
                .get(slot)
                .is_some_and(|x| vs.iter().any(|v| cmp(x, v).is_eq())),
            Pred::Exists(s) => slot(s).is_some(),
            Pred::Prefix(a, p) => a
                .get(slot)
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(p.as_str())),
        }
    }

    /// The conjuncts an index may serve: the members of a top-level AND (flattened),
    /// or the predicate itself.
    pub fn conjuncts(&self) -> Vec<&Pred> {
        match self {
            Pred::And(xs) => xs.iter().flat_map(Pred::conjuncts).collect(),
            other => vec![other],
        }
    }
}
