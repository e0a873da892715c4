//! GROUP BY and aggregates: rows fall into groups by their key values (absent is a key
//! of its own), each group becomes one output row of its keys and aggregates.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use super::super::lang::ast::AggFn;
use super::super::lang::value::{OrdValue, cmp};
use super::plan::{GroupBy, GroupCol};
use super::row::{Item, Row, Slot};
use crate::regions::temporal::time::{format_rfc3339, parse_rfc3339};

/// The running state of one aggregate.
#[derive(Debug, Clone)]
enum Acc {
    Count(u64),
    /// Integers add exactly while they fit; a fraction (or an overflow) turns the sum
    /// into a float.
    Sum {
        int: Option<i64>,
        float: f64,
    },
    Avg {
        sum: f64,
        n: u64,
    },
    Min(Option<Value>),
    Max(Option<Value>),
}

impl Acc {
    fn new(f: AggFn) -> Acc {
        match f {
            AggFn::Count => Acc::Count(0),
            AggFn::Sum => Acc::Sum {
                int: Some(0),
                float: 0.0,
            },
            AggFn::Avg => Acc::Avg { sum: 0.0, n: 0 },
            AggFn::Min => Acc::Min(None),
            AggFn::Max => Acc::Max(None),
        }
    }

    /// Adds one row's value (`None`: absent). `count()` without a path passes the row's
    /// presence as `Some(null)`.
    fn add(&mut self, v: Option<&Value>) {
        let Some(v) = v else { return };
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Sum { int, float } => {
                let Value::Number(x) = v else { return };
                *float += x.as_f64().unwrap_or(0.0);
                *int = match (*int, x.as_i64()) {
                    (Some(a), Some(b)) => a.checked_add(b),
                    _ => None,
                };
            }
            Acc::Avg { sum, n } => {
                if let Value::Number(x) = v {
                    *sum += x.as_f64().unwrap_or(0.0);
                    *n += 1;
                }
            }
            // The first of equal values stays (1 before 1.0 keeps 1).
            Acc::Min(m) => {
                if m.as_ref().is_none_or(|m| cmp(v, m).is_lt()) {
                    *m = Some(v.clone());
                }
            }
            Acc::Max(m) => {
                if m.as_ref().is_none_or(|m| cmp(v, m).is_gt()) {
                    *m = Some(v.clone());
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
            Acc::Sum { int: None, float } => float_value(float),
            Acc::Avg { n: 0, .. } => Value::Null,
            Acc::Avg { sum, n } => float_value(sum / n as f64),
            Acc::Min(m) | Acc::Max(m) => m.unwrap_or(Value::Null),
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

/// Groups `rows` (`whole`: without GROUP BY, all rows are one group, even none).
pub fn group(
    mut rows: Vec<Row>,
    keys: &[GroupBy],
    cols: &[(String, GroupCol)],
    whole: bool,
) -> Vec<Row> {
    // Rows meet their aggregates in one order whatever the access (float sums).
    rows.sort_by(Row::cmp_tie);
    let fresh = || -> Vec<Acc> {
        cols.iter()
            .filter_map(|(_, c)| match c {
                GroupCol::Agg(f, _) => Some(Acc::new(*f)),
                GroupCol::Key(_) => None,
            })
            .collect()
    };
    let mut groups: BTreeMap<Vec<Option<OrdValue>>, Vec<Acc>> = BTreeMap::new();
    if whole {
        groups.insert(Vec::new(), fresh());
    }
    for row in &rows {
        let key: Vec<Option<OrdValue>> = keys
            .iter()
            .map(|k| key_value(k, row).map(OrdValue))
            .collect();
        let accs = groups.entry(key).or_insert_with(fresh);
        let aggs = cols.iter().filter_map(|(_, c)| match c {
            GroupCol::Agg(_, s) => Some(s),
            GroupCol::Key(_) => None,
        });
        for (acc, s) in accs.iter_mut().zip(aggs) {
            match s {
                Some(s) => acc.add(s.get(row)),
                None => acc.add(Some(&Value::Null)),
            }
        }
    }
    groups
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
