//! QQL against a naive evaluation: random records (few fields, mixed kinds, some
//! missing) in two collections, random queries within the grammar (filters with
//! AND/OR/NOT, comparisons, IN, EXISTS, STARTS WITH; projection; ORDER BY; LIMIT/OFFSET;
//! GROUP BY with aggregates). Each query runs without indexes, with some and with every
//! field indexed, and must give exactly what the evaluator below computes from the
//! records alone (it shares no code with the planner or executor).

use std::cmp::Ordering;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::exec::plan::plan;
use super::exec::run::run;
use super::lang::parser::parse;
use super::lang::path::JsonPath;
use super::memsource::Mem;

const COLLS: [&str; 2] = [
    "spacetime/hot_data/particles/users",
    "spacetime/warm_data/particles/users",
];
/// Fields as paths: three members and one nested.
const FIELDS: [&[&str]; 4] = [&["a"], &["b"], &["c"], &["d", "x"]];

fn field_text(f: usize) -> String {
    format!(".{}", FIELDS[f].join("."))
}

fn get(v: &Value, f: usize) -> Option<&Value> {
    FIELDS[f].iter().try_fold(v, |v, m| v.as_object()?.get(*m))
}

// ---- the naive evaluator ----

fn kind(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// The documented order, for the kinds generated here (no objects in fields).
fn ncmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = ncmp(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => kind(a).cmp(&kind(b)),
    }
}

/// Absent last, in both directions.
fn nsort(a: Option<&Value>, b: Option<&Value>, desc: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => {
            if desc {
                ncmp(y, x)
            } else {
                ncmp(x, y)
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[derive(Debug, Clone)]
enum TPred {
    Cmp(usize, &'static str, Value, bool),
    In(usize, Vec<Value>),
    Exists(usize),
    Prefix(usize, String),
    Not(Box<TPred>),
    And(Box<TPred>, Box<TPred>),
    Or(Box<TPred>, Box<TPred>),
}

impl TPred {
    fn text(&self) -> String {
        match self {
            TPred::Cmp(f, op, v, false) => format!("{} {op} {v}", field_text(*f)),
            TPred::Cmp(f, op, v, true) => {
                let flipped = match *op {
                    "<" => ">",
                    "<=" => ">=",
                    ">" => "<",
                    ">=" => "<=",
                    o => o,
                };
                format!("{v} {flipped} {}", field_text(*f))
            }
            TPred::In(f, vs) => {
                let items: Vec<String> = vs.iter().map(Value::to_string).collect();
                format!("{} IN ({})", field_text(*f), items.join(", "))
            }
            TPred::Exists(f) => format!("EXISTS {}", field_text(*f)),
            TPred::Prefix(f, p) => format!("{} STARTS WITH {}", field_text(*f), json!(p)),
            TPred::Not(x) => format!("NOT ({})", x.text()),
            TPred::And(x, y) => format!("({}) AND ({})", x.text(), y.text()),
            TPred::Or(x, y) => format!("({}) OR ({})", x.text(), y.text()),
        }
    }

    fn eval(&self, r: &Value) -> bool {
        match self {
            TPred::Cmp(f, op, v, _) => get(r, *f).is_some_and(|x| {
                let o = ncmp(x, v);
                let same = kind(x) == kind(v);
                match *op {
                    "=" => o == Ordering::Equal,
                    "!=" => o != Ordering::Equal,
                    "<" => same && o == Ordering::Less,
                    "<=" => same && o != Ordering::Greater,
                    ">" => same && o == Ordering::Greater,
                    _ => same && o != Ordering::Less,
                }
            }),
            TPred::In(f, vs) => {
                get(r, *f).is_some_and(|x| vs.iter().any(|v| ncmp(x, v) == Ordering::Equal))
            }
            TPred::Exists(f) => get(r, *f).is_some(),
            TPred::Prefix(f, p) => get(r, *f)
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(p.as_str())),
            TPred::Not(x) => !x.eval(r),
            TPred::And(x, y) => x.eval(r) && y.eval(r),
            TPred::Or(x, y) => x.eval(r) || y.eval(r),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Agg {
    Count,
    CountOf(usize),
    Sum(usize),
    Avg(usize),
    Min(usize),
    Max(usize),
}

impl Agg {
    fn text(self) -> String {
        match self {
            Agg::Count => "count()".into(),
            Agg::CountOf(f) => format!("count({})", field_text(f)),
            Agg::Sum(f) => format!("sum({})", field_text(f)),
            Agg::Avg(f) => format!("avg({})", field_text(f)),
            Agg::Min(f) => format!("min({})", field_text(f)),
            Agg::Max(f) => format!("max({})", field_text(f)),
        }
    }

    fn eval(self, rows: &[&Value]) -> Value {
        let vals = |f: usize| rows.iter().filter_map(move |r| get(r, f));
        let nums = |f: usize| vals(f).filter_map(Value::as_f64).collect::<Vec<f64>>();
        match self {
            Agg::Count => json!(rows.len()),
            Agg::CountOf(f) => json!(vals(f).count()),
            Agg::Sum(f) => {
                let all_int = vals(f)
                    .filter(|v| v.is_number())
                    .all(|v| v.as_i64().is_some());
                if all_int {
                    json!(vals(f).filter_map(Value::as_i64).sum::<i64>())
                } else {
                    json!(nums(f).iter().sum::<f64>())
                }
            }
            Agg::Avg(f) => {
                let n = nums(f);
                if n.is_empty() {
                    Value::Null
                } else {
                    json!(n.iter().sum::<f64>() / n.len() as f64)
                }
            }
            Agg::Min(f) => vals(f)
                .fold(None::<&Value>, |m, v| match m {
                    Some(m) if ncmp(v, m) != Ordering::Less => Some(m),
                    _ => Some(v),
                })
                .cloned()
                .unwrap_or(Value::Null),
            Agg::Max(f) => vals(f)
                .fold(None::<&Value>, |m, v| match m {
                    Some(m) if ncmp(v, m) != Ordering::Greater => Some(m),
                    _ => Some(v),
                })
                .cloned()
                .unwrap_or(Value::Null),
        }
    }
}

#[derive(Debug, Clone)]
enum Mode {
    Whole,
    Select(Vec<usize>),
    /// Key field (None: no GROUP BY), aggregates, order: 0 none, 1 key DESC, 2 first
    /// aggregate DESC.
    Group(Option<usize>, Vec<Agg>, u8),
}

#[derive(Debug, Clone)]
struct TQuery {
    filter: Option<TPred>,
    mode: Mode,
    /// (field, or None for @key; descending)
    order: Vec<(Option<usize>, bool)>,
    limit: Option<u64>,
    offset: Option<u64>,
}

impl TQuery {
    fn text(&self) -> String {
        let mut s = "FROM spacetime/*/particles/users".to_string();
        if let Some(f) = &self.filter {
            s += &format!(" WHERE {}", f.text());
        }
        let mut order: Vec<String> = self
            .order
            .iter()
            .map(|(f, d)| {
                format!(
                    "{}{}",
                    f.map_or("@key".into(), field_text),
                    if *d { " DESC" } else { "" }
                )
            })
            .collect();
        match &self.mode {
            Mode::Whole => {}
            Mode::Select(fs) => {
                let cols: Vec<String> = fs
                    .iter()
                    .enumerate()
                    .map(|(i, f)| format!("{} AS s{i}", field_text(*f)))
                    .collect();
                s += &format!(" SELECT {}", cols.join(", "));
            }
            Mode::Group(key, aggs, o) => {
                let mut cols = Vec::new();
                if let Some(k) = key {
                    s += &format!(" GROUP BY {}", field_text(*k));
                    cols.push(format!("{} AS k", field_text(*k)));
                }
                cols.extend(
                    aggs.iter()
                        .enumerate()
                        .map(|(i, a)| format!("{} AS g{i}", a.text())),
                );
                s += &format!(" SELECT {}", cols.join(", "));
                order = match o {
                    1 if key.is_some() => vec![".k DESC".into()],
                    2 => vec![format!("{} DESC", aggs[0].text())],
                    _ => vec![],
                };
            }
        }
        if !order.is_empty() {
            s += &format!(" ORDER BY {}", order.join(", "));
        }
        if let Some(l) = self.limit {
            s += &format!(" LIMIT {l}");
        }
        if let Some(o) = self.offset {
            s += &format!(" OFFSET {o}");
        }
        s
    }

    /// `records`: (path, key, value), in path order.
    fn eval(&self, records: &[(String, String, Value)]) -> Vec<Value> {
        let mut rows: Vec<&(String, String, Value)> = records
            .iter()
            .filter(|r| self.filter.as_ref().is_none_or(|f| f.eval(&r.2)))
            .collect();
        let out: Vec<Value> = match &self.mode {
            Mode::Group(key, aggs, o) => {
                let mut groups: Vec<(Option<Value>, Vec<&Value>)> = Vec::new();
                if key.is_none() {
                    groups.push((None, Vec::new()));
                }
                for r in &rows {
                    let k = key.and_then(|k| get(&r.2, k)).cloned();
                    match groups.iter_mut().find(|(g, _)| match (g, &k) {
                        (Some(a), Some(b)) => ncmp(a, b) == Ordering::Equal,
                        (None, None) => true,
                        _ => false,
                    }) {
                        Some((_, members)) => members.push(&r.2),
                        None => groups.push((k, vec![&r.2])),
                    }
                }
                let mut outs: Vec<(Option<Value>, Value)> = groups
                    .into_iter()
                    .map(|(k, members)| {
                        let mut m = Map::new();
                        if let Some(k) = &k {
                            m.insert("k".into(), k.clone());
                        }
                        for (i, a) in aggs.iter().enumerate() {
                            m.insert(format!("g{i}"), a.eval(&members));
                        }
                        (k, Value::Object(m))
                    })
                    .collect();
                outs.sort_by(|(ka, va), (kb, vb)| {
                    let by = match o {
                        1 if key.is_some() => nsort(ka.as_ref(), kb.as_ref(), true),
                        2 => nsort(va.get("g0"), vb.get("g0"), true),
                        _ => Ordering::Equal,
                    };
                    by.then_with(|| nsort(ka.as_ref(), kb.as_ref(), false))
                });
                outs.into_iter().map(|(_, v)| v).collect()
            }
            _ => {
                rows.sort_by(|x, y| {
                    for (f, desc) in &self.order {
                        let (a, b) = match f {
                            Some(f) => (get(&x.2, *f).cloned(), get(&y.2, *f).cloned()),
                            None => (Some(json!(x.1)), Some(json!(y.1))),
                        };
                        let o = nsort(a.as_ref(), b.as_ref(), *desc);
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    x.0.cmp(&y.0)
                });
                rows.iter()
                    .map(|r| match &self.mode {
                        Mode::Select(fs) => Value::Object(
                            fs.iter()
                                .enumerate()
                                .filter_map(|(i, f)| {
                                    Some((format!("s{i}"), get(&r.2, *f)?.clone()))
                                })
                                .collect(),
                        ),
                        _ => r.2.clone(),
                    })
                    .collect()
            }
        };
        let off = self.offset.unwrap_or(0) as usize;
        out.into_iter()
            .skip(off)
            .take(self.limit.map_or(usize::MAX, |l| l as usize))
            .collect()
    }
}

// ---- generators ----

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        // Few distinct values, so that ties (and equal group keys) are common.
        4 => (-1i64..3).prop_map(|i| json!(i)),
        2 => (-1i64..1).prop_map(|i| json!(i as f64 + 0.5)),
        3 => prop::sample::select(vec!["", "a", "ab", "b"]).prop_map(|s| json!(s)),
        1 => prop::collection::vec(0i64..2, 0..3).prop_map(|v| json!(v)),
    ]
}

fn record() -> impl Strategy<Value = (usize, Value)> {
    (
        0..2usize,
        prop::collection::vec(prop::option::weighted(0.75, value()), 4),
    )
        .prop_map(|(coll, vs)| {
            let mut m = Map::new();
            for (name, v) in ["a", "b", "c"].iter().zip(&vs) {
                if let Some(v) = v {
                    m.insert((*name).to_string(), v.clone());
                }
            }
            if let Some(x) = &vs[3] {
                m.insert("d".into(), json!({"x": x}));
            }
            (coll, Value::Object(m))
        })
}

fn pred() -> impl Strategy<Value = TPred> {
    let field = 0..FIELDS.len();
    let leaf = prop_oneof![
        (
            field.clone(),
            prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]),
            value(),
            any::<bool>()
        )
            .prop_map(|(f, op, v, flip)| TPred::Cmp(f, op, v, flip)),
        (field.clone(), prop::collection::vec(value(), 1..4)).prop_map(|(f, vs)| TPred::In(f, vs)),
        field.clone().prop_map(TPred::Exists),
        (field, prop::sample::select(vec!["", "a", "b", "ab"]))
            .prop_map(|(f, p)| TPred::Prefix(f, p.to_string())),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|x| TPred::Not(Box::new(x))),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| TPred::And(Box::new(x), Box::new(y))),
            (inner.clone(), inner).prop_map(|(x, y)| TPred::Or(Box::new(x), Box::new(y))),
        ]
    })
}

fn agg() -> impl Strategy<Value = Agg> {
    let f = 0..FIELDS.len();
    prop_oneof![
        Just(Agg::Count),
        f.clone().prop_map(Agg::CountOf),
        f.clone().prop_map(Agg::Sum),
        f.clone().prop_map(Agg::Avg),
        f.clone().prop_map(Agg::Min),
        f.prop_map(Agg::Max),
    ]
}

fn query() -> impl Strategy<Value = TQuery> {
    let mode = prop_oneof![
        Just(Mode::Whole),
        prop::collection::vec(0..FIELDS.len(), 1..3).prop_map(Mode::Select),
        (
            prop::option::of(0..FIELDS.len()),
            prop::collection::vec(agg(), 1..4),
            0u8..3
        )
            .prop_map(|(k, a, o)| Mode::Group(k, a, o)),
    ];
    (
        prop::option::weighted(0.7, pred()),
        mode,
        prop::collection::vec(
            (prop::option::weighted(0.9, 0..FIELDS.len()), any::<bool>()),
            0..3,
        ),
        prop::option::of(0u64..6),
        prop::option::of(0u64..4),
    )
        .prop_map(|(filter, mode, order, limit, offset)| TQuery {
            filter,
            mode,
            order,
            limit,
            offset,
        })
}

fn source(records: &[(usize, Value)], indexed: &[usize]) -> Mem {
    let mut m = Mem::default();
    for c in COLLS {
        for f in indexed {
            m.index(c, JsonPath::members(FIELDS[*f]));
        }
    }
    for (i, (c, v)) in records.iter().enumerate() {
        m.add(COLLS[*c], &format!("k{i:02}"), v.clone());
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn qql_matches_a_naive_evaluation(records in prop::collection::vec(record(), 0..20), q in query()) {
        let text = q.text();
        let naive_records: Vec<(String, String, Value)> = {
            let mut rs: Vec<(String, String, Value)> = records
                .iter()
                .enumerate()
                .map(|(i, (c, v))| (format!("{}/k{i:02}.json", COLLS[*c]), format!("k{i:02}"), v.clone()))
                .collect();
            rs.sort_by(|a, b| a.0.cmp(&b.0));
            rs
        };
        let want = q.eval(&naive_records);
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        for indexed in [&[][..], &[0, 1][..], &[0, 1, 2, 3][..]] {
            let m = source(&records, indexed);
            let p = plan(&parsed, &m).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            let got = run(&p, &m).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(&got.rows, &want, "{} (indexed {:?})", text, indexed);
        }
    }
}
