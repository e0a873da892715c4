//! GROUP BY and aggregates: rows fall into groups by their key values (absent is a key
//! of its own), each group becomes one output row of its keys and aggregates.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use super::super::lang::ast::AggFn;
use super::super::lang::value::{OrdValue, cmp};
use super::plan::{GroupBy, GroupCol};
use super::row::{Item, Row, Slot, cmp_ties};
use crate::regions::temporal::time::{format_rfc3339, parse_rfc3339};

/// The running state of one aggregate. Rows arrive in any order (a scan's), and the
/// result does not depend on it: float sums are exact until the end, and of equal
/// minimums (1 and 1.0) the row first in tie order wins.
#[derive(Debug, Clone)]
enum Acc {
    Count(u64),
    /// Integers add exactly while they fit; a fraction (or an overflow) turns the sum
    /// into a float.
    Sum {
        int: Option<i64>,
        float: ExactSum,
    },
    Avg {
        sum: ExactSum,
        n: u64,
    },
    Min(Option<(Value, Vec<Option<Value>>)>),
    Max(Option<(Value, Vec<Option<Value>>)>),
}

/// A sum of floats kept exact as non-overlapping partial sums (Shewchuk's algorithm, as
/// Python's `math.fsum`), rounded once at the end: the same in any order of addition.
#[derive(Debug, Clone, Default)]
struct ExactSum {
    partials: Vec<f64>,
    /// Infinities and NaN, which the partials cannot hold.
    special: f64,
}

impl ExactSum {
    fn add(&mut self, mut x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        let mut kept = 0;
        for i in 0..self.partials.len() {
            let mut y = self.partials[i];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
    }

    fn total(&self) -> f64 {
        if self.special != 0.0 || self.special.is_nan() {
            return self.special;
        }
        // From the largest partial down, stopping where the rest cannot change the
        // rounding, with the half-way correction of `fsum`.
        let p = &self.partials;
        let Some(mut n) = p.len().checked_sub(1) else {
            return 0.0;
        };
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            n -= 1;
            let x = hi;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }
}

impl Acc {
    fn new(f: AggFn) -> Acc {
        match f {
            AggFn::Count => Acc::Count(0),
            AggFn::Sum => Acc::Sum {
                int: Some(0),
                float: ExactSum::default(),
            },
            AggFn::Avg => Acc::Avg {
                sum: ExactSum::default(),
                n: 0,
            },
            AggFn::Min => Acc::Min(None),
            AggFn::Max => Acc::Max(None),
        }
    }

    /// Adds one row's value (`None`: absent); `tie` is the row's place in tie order.
    /// `count()` without a path passes the row's presence as `Some(null)`.
    fn add(&mut self, v: Option<&Value>, tie: &[Option<Value>]) {
        let Some(v) = v else { return };
        // Of equal extremes the first in tie order stays (1 before 1.0 keeps 1).
        let better = |best: &Option<(Value, Vec<Option<Value>>)>, want: Ordering| {
            best.as_ref().is_none_or(|(m, at)| {
                let o = cmp(v, m);
                o == want || (o.is_eq() && cmp_ties(tie, at).is_lt())
            })
        };
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Sum { int, float } => {
                let Value::Number(x) = v else { return };
                float.add(x.as_f64().unwrap_or(0.0));
                *int = match (*int, x.as_i64()) {
                    (Some(a), Some(b)) => a.checked_add(b),
                    _ => None,
                };
            }
            Acc::Avg { sum, n } => {
                if let Value::Number(x) = v {
                    sum.add(x.as_f64().unwrap_or(0.0));
                    *n += 1;
                }
            }
            Acc::Min(m) => {
                if better(m, Ordering::Less) {
                    *m = Some((v.clone(), tie.to_vec()));
                }
            }
            Acc::Max(m) => {
                if better(m, Ordering::Greater) {
                    *m = Some((v.clone(), tie.to_vec()));
                }
            }
        }
    }

    /// The aggregate's value: a sum of nothing is 0, an average, minimum or maximum of
    /// nothing is null.
    fn finish(self) -> Value {
        match self {
            Acc::Count(n) => Value::from(n),
            Acc::Sum { int: Some(i), .. } => Value::from(i),
            Acc::Sum { int: None, float } => float_value(float.total()),
            Acc::Avg { n: 0, .. } => Value::Null,
            Acc::Avg { sum, n } => float_value(sum.total() / n as f64),
            Acc::Min(m) | Acc::Max(m) => m.map_or(Value::Null, |(v, _)| v),
        }
    }
}

fn float_value(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn key_value(k: &GroupBy, row: &Row) -> Option<Value> {
    match k {
        GroupBy::Slot(s) => s.get(row).cloned(),
        GroupBy::Bucket(width) => {
            let time = Slot {
                item: None,
                meta: Some("time".into()),
                path: Default::default(),
            };
            let t = parse_rfc3339(time.get(row)?.as_str()?).ok()?;
            Some(Value::String(format_rfc3339(t.div_euclid(*width) * width)))
        }
    }
}

/// Rows falling into groups as they come (a scan's rows need not be kept).
pub struct Groups<'p> {
    keys: &'p [GroupBy],
    cols: &'p [(String, GroupCol)],
    groups: BTreeMap<Vec<Option<OrdValue>>, Vec<Acc>>,
}

impl<'p> Groups<'p> {
    /// `whole`: without GROUP BY, all rows are one group, even none.
    pub fn new(keys: &'p [GroupBy], cols: &'p [(String, GroupCol)], whole: bool) -> Groups<'p> {
        let mut g = Groups {
            keys,
            cols,
            groups: BTreeMap::new(),
        };
        if whole {
            g.groups.insert(Vec::new(), g.fresh());
        }
        g
    }

    fn fresh(&self) -> Vec<Acc> {
        self.cols
            .iter()
            .filter_map(|(_, c)| match c {
                GroupCol::Agg(f, _) => Some(Acc::new(*f)),
                GroupCol::Key(_) => None,
            })
            .collect()
    }

    pub fn add(&mut self, row: &Row) {
        let key: Vec<Option<OrdValue>> = self
            .keys
            .iter()
            .map(|k| key_value(k, row).map(OrdValue))
            .collect();
        let accs = match self.groups.get_mut(&key) {
            Some(a) => a,
            None => {
                let fresh = self.fresh();
                self.groups.entry(key).or_insert(fresh)
            }
        };
        let aggs = self.cols.iter().filter_map(|(_, c)| match c {
            GroupCol::Agg(_, s) => Some(s),
            GroupCol::Key(_) => None,
        });
        for (acc, s) in accs.iter_mut().zip(aggs) {
            match s {
                Some(s) => acc.add(s.get(row), &row.tie),
                None => acc.add(Some(&Value::Null), &row.tie),
            }
        }
    }

    /// A row per group, in key order.
    pub fn finish(self) -> Vec<Row> {
        let cols = self.cols;
        self.groups
            .into_iter()
            .map(|(key, accs)| {
                let mut accs = accs.into_iter();
                let mut obj = Map::new();
                for (name, c) in cols {
                    let v = match c {
                        GroupCol::Key(i) => key.get(*i).cloned().flatten().map(|k| k.0),
                        GroupCol::Agg(..) => accs.next().map(Acc::finish),
                    };
                    if let Some(v) = v {
                        obj.insert(name.clone(), v);
                    }
                }
                Row {
                    items: vec![Item {
                        value: Value::Object(obj),
                        meta: Map::new(),
                    }],
                    tie: key.into_iter().map(|k| k.map(|k| k.0)).collect(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sums_do_not_depend_on_order_and_round_once() {
        let xs = [1e16, 1.0, -1e16, 1.0, 0.1, 0.2, -0.3, 3.5];
        let mut fwd = ExactSum::default();
        let mut back = ExactSum::default();
        for &x in &xs {
            fwd.add(x);
        }
        for &x in xs.iter().rev() {
            back.add(x);
        }
        // 1 + 1 + 3.5, and 0.1 + 0.2 - 0.3 of doubles (2.8e-17) vanishes in the rounding;
        // a plain sum loses a 1 against 1e16.
        assert_eq!(fwd.total(), back.total());
        assert_eq!(fwd.total(), 5.5);
        assert_ne!(xs.iter().sum::<f64>(), fwd.total());
        let mut inf = ExactSum::default();
        inf.add(1.0);
        inf.add(f64::INFINITY);
        assert_eq!(inf.total(), f64::INFINITY);
        assert_eq!(ExactSum::default().total(), 0.0);
    }
}
