//! How one collection is read: a scan, or an index over a JSON path, and why. The
//! planner shows this choice; the executor makes it again for every collection it reads
//! (a collection may appear after planning), with the same function.

use std::cmp::Ordering;
use std::ops::Bound;

use serde_json::{Value, json};

use super::super::lang::ast::CmpOp;
use super::super::lang::path::JsonPath;
use super::super::lang::value::{cmp, prefix_successor, rank};
use super::pred::{Pred, Val};

pub type Range = (Bound<Value>, Bound<Value>);

#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    Scan {
        why: String,
    },
    /// Read the records whose `path` lies in one of `ranges` (several for IN).
    Index {
        path: JsonPath,
        ranges: Vec<Range>,
        why: String,
    },
    /// Read the index over the first ORDER BY key in order (within `range`, when the
    /// filter bounds that path) and stop once `n` rows (offset + limit) and their ties
    /// passed the filter.
    IndexOrder {
        path: JsonPath,
        descending: bool,
        n: usize,
        range: Option<Range>,
        why: String,
    },
}

impl Access {
    pub fn describe(&self) -> String {
        match self {
            Access::Scan { .. } => "scan".to_string(),
            Access::Index { path, .. } => format!("index {path}"),
            Access::IndexOrder { path, .. } => format!("index {path} (in order)"),
        }
    }

    pub fn explain(&self) -> Value {
        match self {
            Access::Scan { why } => json!({"access": "scan", "why": why}),
            Access::Index { path, ranges, why } => {
                let ranges: Vec<Value> = ranges.iter().map(range_json).collect();
                json!({"access": "index", "index": path.to_string(), "ranges": ranges, "why": why})
            }
            Access::IndexOrder {
                path,
                descending,
                n,
                range,
                why,
            } => json!({"access": "index_order", "index": path.to_string(),
                        "descending": descending, "stop_after": n,
                        "range": range.as_ref().map(range_json), "why": why}),
        }
    }
}

fn bound_json(b: &Bound<Value>) -> Value {
    match b {
        Bound::Included(v) => json!({"included": v}),
        Bound::Excluded(v) => json!({"excluded": v}),
        Bound::Unbounded => Value::Null,
    }
}

fn range_json((lo, hi): &Range) -> Value {
    json!({"from": bound_json(lo), "to": bound_json(hi)})
}

/// The values of `v`'s kind: ranges compare within one kind only.
fn kind_range(v: &Value) -> Range {
    use Bound::{Excluded, Included, Unbounded};
    match rank(v) {
        0 => (Included(Value::Null), Included(Value::Null)),
        1 => (Included(json!(false)), Included(json!(true))),
        2 => (Excluded(json!(true)), Excluded(json!(""))),
        3 => (Included(json!("")), Excluded(json!([]))),
        4 => (Included(json!([])), Excluded(json!({}))),
        _ => (Included(json!({})), Unbounded),
    }
}

/// The tighter of two lower (`upper` false) or upper bounds.
fn tighter(a: Bound<Value>, b: Bound<Value>, upper: bool) -> Bound<Value> {
    let (va, vb) = match (&a, &b) {
        (Bound::Unbounded, _) => return b,
        (_, Bound::Unbounded) => return a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            (x, y)
        }
    };
    let o = if upper { cmp(vb, va) } else { cmp(va, vb) };
    match o {
        Ordering::Less => b,
        Ordering::Greater => a,
        Ordering::Equal if matches!(a, Bound::Excluded(_)) => a,
        Ordering::Equal => b,
    }
}

/// Whether no value lies in the range.
fn is_empty((lo, hi): &Range) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => cmp(a, b).is_gt(),
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            cmp(a, b).is_ge()
        }
        _ => false,
    }
}

fn intersect((lo1, hi1): Range, (lo2, hi2): Range) -> Range {
    (tighter(lo1, lo2, false), tighter(hi1, hi2, true))
}

/// The range of one comparison `path op v`.
fn cmp_range(op: CmpOp, v: &Value) -> Option<Range> {
    let kind = kind_range(v);
    let one = match op {
        CmpOp::Eq => return Some((Bound::Included(v.clone()), Bound::Included(v.clone()))),
        CmpOp::Ne => return None,
        CmpOp::Lt => (Bound::Unbounded, Bound::Excluded(v.clone())),
        CmpOp::Le => (Bound::Unbounded, Bound::Included(v.clone())),
        CmpOp::Gt => (Bound::Excluded(v.clone()), Bound::Unbounded),
        CmpOp::Ge => (Bound::Included(v.clone()), Bound::Unbounded),
    };
    Some(intersect(kind, one))
}

/// A conjunct an index over `path` could serve, best kinds first.
struct Candidate<'a> {
    path: &'a JsonPath,
    /// 0 equality, 1 IN, 2 range, 3 prefix.
    rank: u8,
    ranges: Vec<Range>,
    text: String,
}

fn candidate(p: &Pred) -> Option<Candidate<'_>> {
    let lit = |v: &Val| match v {
        Val::Const(c) => Some(c.clone()),
        Val::Slot(_) => None,
    };
    match p {
        Pred::Cmp(Val::Slot(s), op, v) => {
            let path = s.record_path()?;
            let c = lit(v)?;
            Some(Candidate {
                path,
                rank: if *op == CmpOp::Eq { 0 } else { 2 },
                ranges: vec![cmp_range(*op, &c)?],
                text: format!("{path} {op} {c}"),
            })
        }
        Pred::In(Val::Slot(s), vs) => {
            let path = s.record_path()?;
            let ranges = vs
                .iter()
                .map(|v| (Bound::Included(v.clone()), Bound::Included(v.clone())))
                .collect();
            Some(Candidate {
                path,
                rank: 1,
                ranges,
                text: format!("{path} IN ({})", vs.len()),
            })
        }
        Pred::Prefix(Val::Slot(s), pre) => {
            let path = s.record_path()?;
            let hi = prefix_successor(pre).map_or(Bound::Excluded(json!([])), |s| {
                Bound::Excluded(Value::String(s))
            });
            Some(Candidate {
                path,
                rank: 3,
                ranges: vec![(Bound::Included(Value::String(pre.clone())), hi)],
                text: format!("{path} STARTS WITH {}", Value::String(pre.clone())),
            })
        }
        _ => None,
    }
}

/// What the plan knows that the choice depends on.
pub struct Needs<'a> {
    pub filter: Option<&'a Pred>,
    /// The first ORDER BY key when it is a plain path of the record, with its direction
    /// and the rows wanted (offset + limit), if ORDER BY … LIMIT may stop early.
    pub order: Option<(&'a JsonPath, bool, usize)>,
}

/// Chooses how to read a collection indexed on `indexed`.
pub fn choose(needs: &Needs<'_>, indexed: &[JsonPath]) -> Access {
    let conjuncts = needs.filter.map(Pred::conjuncts).unwrap_or_default();
    let mut best: Option<Candidate<'_>> = None;
    for mut c in conjuncts.iter().filter_map(|p| candidate(p)) {
        if !indexed.contains(c.path) {
            continue;
        }
        match &mut best {
            // Range conjuncts on the best path narrow one range (`.a >= 1 AND .a < 5`).
            Some(b) if b.rank == 2 && c.rank == 2 && b.path == c.path => {
                let r = intersect(b.ranges.remove(0), c.ranges.remove(0));
                b.ranges.push(r);
                b.text = format!("{} AND {}", b.text, c.text);
            }
            Some(b) if b.rank <= c.rank => {}
            _ => best = Some(c),
        }
    }
    if let Some(mut b) = best {
        // A source is never asked for a range that holds nothing (`.a > 5 AND .a < 3`).
        b.ranges.retain(|r| !is_empty(r));
        // A range on the ORDER BY path with LIMIT: read it in order and stop early.
        if let Some((path, descending, n)) = needs.order
            && b.rank >= 2
            && b.path == path
            && b.ranges.len() == 1
        {
            return Access::IndexOrder {
                path: path.clone(),
                descending,
                n,
                range: b.ranges.pop(),
                why: format!(
                    "{} on indexed path {path}, which ORDER BY{} with LIMIT reads in order: stops after {n} rows",
                    if b.rank == 2 { "range" } else { "prefix" },
                    if descending { " DESC" } else { "" }
                ),
            };
        }
        let kind = ["equality", "IN list", "range", "prefix"][usize::from(b.rank)];
        return Access::Index {
            path: b.path.clone(),
            why: format!("{kind} on indexed path {} ({})", b.path, b.text),
            ranges: b.ranges,
        };
    }
    if let Some((path, descending, n)) = needs.order
        && indexed.contains(path)
    {
        return Access::IndexOrder {
            path: path.clone(),
            descending,
            n,
            range: None,
            why: format!(
                "ORDER BY {path}{} with LIMIT on an indexed path: reads the index in order and stops after {n} rows",
                if descending { " DESC" } else { "" }
            ),
        };
    }
    Access::Scan {
        why: scan_reason(needs, &conjuncts, indexed),
    }
}

fn scan_reason(needs: &Needs<'_>, conjuncts: &[&Pred], indexed: &[JsonPath]) -> String {
    if indexed.is_empty() {
        return "the collection has no index".to_string();
    }
    let names: Vec<String> = indexed.iter().map(ToString::to_string).collect();
    let names = names.join(", ");
    match needs.filter {
        Some(Pred::Or(_)) => {
            format!(
                "the filter is an OR, and an index serves only the conjuncts of an AND (indexed: {names})"
            )
        }
        Some(_) => {
            let mut used: Vec<String> = conjuncts
                .iter()
                .filter_map(|p| candidate(p))
                .map(|c| c.path.to_string())
                .collect();
            used.dedup();
            if used.is_empty() {
                format!(
                    "no conjunct of the filter is an equality, IN, range or prefix on a path of the record (indexed: {names})"
                )
            } else {
                format!(
                    "no indexed path among the filter's paths {} (indexed: {names})",
                    used.join(", ")
                )
            }
        }
        None => {
            format!("no filter, and no ORDER BY with LIMIT on an indexed path (indexed: {names})")
        }
    }
}
