//! The planner: resolves a query's references to the items of its rows, checks what
//! only a whole query can (aliases, grouping, column names), and chooses how each
//! collection is read. `Plan::explain` says what it chose and why.

use serde_json::{Value, json};

use super::super::lang::ast::{AggFn, Expr, From, GroupKey, Operand, Query, Ref, Term};
use super::super::lang::error::{Error as LangError, Pos};
use super::super::lang::path::{JsonPath, Step};
use super::super::source::{Collection, Source};
use super::Result;
use super::access::{self, Access, Needs};
use super::pred::{Pred, Val};
use super::row::Slot;

/// A grouped query's column: one of the GROUP BY keys, or an aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupCol {
    Key(usize),
    Agg(AggFn, Option<Slot>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum GroupBy {
    Slot(Slot),
    /// Bucket width in µs of the event's `@time`.
    Bucket(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// No SELECT: whole records (with JOINs, an object of the records by alias).
    Records,
    Columns(Vec<(String, Slot)>),
    Grouped {
        keys: Vec<GroupBy>,
        columns: Vec<(String, GroupCol)>,
    },
}

/// What a query's result depends on: recompute it when one of these changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependency {
    /// The collections matching a pattern (their records, and which exist).
    Collections(Vec<String>),
    Stream(String),
    /// Nodes, edges and the similarity index.
    Graph,
}

impl Dependency {
    pub fn to_json(&self) -> Value {
        match self {
            Dependency::Collections(p) => json!({"collections": p.join("/")}),
            Dependency::Stream(s) => json!({"stream": s}),
            Dependency::Graph => json!("graph"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub query: Query,
    pub(super) aliases: Vec<String>,
    pub(super) filter: Option<Pred>,
    pub(super) shape: Shape,
    /// ORDER BY keys: over the input rows, or over the output rows when grouped.
    pub(super) order: Vec<(Slot, bool)>,
    /// For ORDER BY … LIMIT over a plain path: the path, descending, offset + limit.
    pub(super) order_path: Option<(JsonPath, bool, usize)>,
    /// How each collection matched at planning is read.
    pub(super) choices: Vec<(Collection, Access)>,
    /// The top-level members of the FROM's records the query reads (`None`: all).
    pub(super) members: Option<Vec<String>>,
}

/// Plans `query` against `source` (which collections exist, what they index).
pub fn plan(query: &Query, source: &dyn Source) -> Result<Plan> {
    let aliases = aliases(query)?;
    // Every reference resolves through here: what it reads of the FROM's records is
    // noted on the way.
    let read = std::cell::RefCell::new(Some(Vec::new()));
    let slot = |r: &Ref| {
        let s = resolve(r, &aliases)?;
        note_member(&mut read.borrow_mut(), &s);
        Ok(s)
    };
    let filter = query.filter.as_ref().map(|e| pred(e, &slot)).transpose()?;
    let grouped = !query.group.is_empty()
        || query
            .select
            .iter()
            .flatten()
            .any(|i| matches!(i.term, Term::Agg(..)));
    let (shape, order) = if grouped {
        grouped_shape(query, &slot)?
    } else {
        plain_shape(query, &slot)?
    };
    let order_path = match (&query.from, &order.first(), query.limit) {
        (From::Collections { .. }, Some((s, desc)), Some(limit))
            if !grouped && query.joins.is_empty() =>
        {
            s.record_path().map(|p| {
                let n = limit.saturating_add(query.offset.unwrap_or(0));
                (p.clone(), *desc, usize::try_from(n).unwrap_or(usize::MAX))
            })
        }
        _ => None,
    };
    // Whole records are returned without a SELECT, and JOINs read records by alias.
    let whole = matches!(shape, Shape::Records) || !query.joins.is_empty();
    let members = read.into_inner().filter(|_| !whole);
    let mut plan = Plan {
        query: query.clone(),
        aliases,
        filter,
        shape,
        order,
        order_path,
        choices: Vec::new(),
        members,
    };
    for c in plan.collections(source)? {
        let access = plan.access(source, &c);
        plan.choices.push((c, access));
    }
    Ok(plan)
}

fn aliases(q: &Query) -> Result<Vec<String>> {
    let (first, pos) = match &q.from {
        From::Collections { patterns, alias } => (
            alias
                .clone()
                .or_else(|| patterns.first().and_then(|p| p.strings().pop())),
            patterns.first().map(|p| p.pos).unwrap_or_default(),
        ),
        From::Stream {
            name, alias, pos, ..
        } => (alias.clone().or(Some(name.clone())), *pos),
        From::Neighbours { alias, pos, .. } | From::Nearest { alias, pos, .. } => {
            (alias.clone().or(Some("node".into())), *pos)
        }
        From::Paths { pos, .. } => (Some("path".into()), *pos),
    };
    let mut out = vec![
        first
            .filter(|a| a != "*")
            .unwrap_or_else(|| "record".into()),
    ];
    if !q.joins.is_empty() && matches!(q.from, From::Paths { .. } | From::Stream { .. }) {
        return Err(LangError::new(
            pos,
            "JOIN follows edges from records or nodes, not from paths or events",
        )
        .into());
    }
    for (i, j) in q.joins.iter().enumerate() {
        let a = j
            .alias
            .clone()
            .or_else(|| j.relation.clone())
            .unwrap_or_else(|| format!("joined{}", i + 1));
        if out.contains(&a) {
            return Err(LangError::new(
                j.pos,
                format!("the name {a} is used twice: name the JOIN with AS"),
            )
            .into());
        }
        out.push(a);
    }
    Ok(out)
}

/// Adds the top-level member `s` reads of the FROM's records to `read`; a reference to
/// the whole record (or into it by index) needs all of it (`None`).
fn note_member(read: &mut Option<Vec<String>>, s: &Slot) {
    let Some(members) = read else {
        return;
    };
    if s.meta.is_some() || s.item.unwrap_or(0) != 0 {
        return;
    }
    match s.path.0.first() {
        Some(Step::Member(m)) if !members.contains(m) => members.push(m.clone()),
        Some(Step::Member(_)) => {}
        _ => *read = None,
    }
}

fn resolve(r: &Ref, aliases: &[String]) -> Result<Slot> {
    let item = match &r.alias {
        Some(a) => Some(aliases.iter().position(|x| x == a).ok_or_else(|| {
            LangError::new(
                r.pos,
                format!(
                    "unknown name {a} (the rows' records are {})",
                    aliases.join(", ")
                ),
            )
        })?),
        None if r.meta.is_some() => None,
        None => Some(0),
    };
    Ok(Slot {
        item,
        meta: r.meta.clone(),
        path: r.path.clone(),
    })
}

fn pred(e: &Expr, slot: &dyn Fn(&Ref) -> Result<Slot>) -> Result<Pred> {
    let val = |o: &Operand| -> Result<Val> {
        Ok(match o {
            Operand::Ref(r) => Val::Slot(slot(r)?),
            Operand::Lit(l) => Val::Const(l.to_value()),
        })
    };
    let all = |xs: &[Expr]| xs.iter().map(|x| pred(x, slot)).collect::<Result<Vec<_>>>();
    Ok(match e {
        Expr::Or(xs) => Pred::Or(all(xs)?),
        Expr::And(xs) => Pred::And(all(xs)?),
        Expr::Not(x) => Pred::Not(Box::new(pred(x, slot)?)),
        // A literal on the left is written back as `path op literal`.
        Expr::Cmp(a @ Operand::Lit(_), op, b @ Operand::Ref(_)) => {
            Pred::Cmp(val(b)?, op.flip(), val(a)?)
        }
        Expr::Cmp(a, op, b) => Pred::Cmp(val(a)?, *op, val(b)?),
        Expr::In(a, lits) => Pred::In(val(a)?, lits.iter().map(|l| l.to_value()).collect()),
        Expr::Exists(r) => Pred::Exists(slot(r)?),
        Expr::StartsWith(a, s) => Pred::Prefix(val(a)?, s.clone()),
    })
}

/// A column's default name: the reference without its leading dot (`address.city`,
/// `@key`, `p.name`), or `count`, `sum(total)`.
fn column_name(t: &Term) -> String {
    match t {
        Term::Ref(r) => r.to_string().trim_start_matches('.').to_string(),
        Term::Agg(AggFn::Count, None, _) => "count".to_string(),
        Term::Agg(f, Some(r), _) => {
            format!("{}({})", f.name(), r.to_string().trim_start_matches('.'))
        }
        Term::Agg(f, None, _) => f.name().to_string(),
    }
}

fn check_unique<T>(cols: &[(String, T)], pos: impl Fn(usize) -> Pos) -> Result<()> {
    for (i, (name, _)) in cols.iter().enumerate() {
        if cols[..i].iter().any(|(n, _)| n == name) {
            return Err(LangError::new(
                pos(i),
                format!("two columns are named {name}: name one with AS"),
            )
            .into());
        }
    }
    Ok(())
}

type Shaped = (Shape, Vec<(Slot, bool)>);

fn plain_shape(q: &Query, slot: &dyn Fn(&Ref) -> Result<Slot>) -> Result<Shaped> {
    let mut order = Vec::new();
    for o in &q.order {
        match &o.term {
            Term::Ref(r) => order.push((slot(r)?, o.desc)),
            Term::Agg(f, _, pos) => {
                return Err(LangError::new(
                    *pos,
                    format!(
                        "{}() in ORDER BY needs GROUP BY or aggregates in SELECT",
                        f.name()
                    ),
                )
                .into());
            }
        }
    }
    let Some(items) = &q.select else {
        return Ok((Shape::Records, order));
    };
    let mut cols = Vec::new();
    for i in items {
        if let Term::Ref(r) = &i.term {
            cols.push((
                i.name.clone().unwrap_or_else(|| column_name(&i.term)),
                slot(r)?,
            ));
        }
    }
    check_unique(&cols, |i| items[i].term.pos())?;
    Ok((Shape::Columns(cols), order))
}

fn grouped_shape(q: &Query, slot: &dyn Fn(&Ref) -> Result<Slot>) -> Result<Shaped> {
    let mut keys = Vec::new();
    for k in &q.group {
        keys.push(match k {
            GroupKey::Ref(r) => GroupBy::Slot(slot(r)?),
            GroupKey::Bucket(_, pos) if !matches!(q.from, From::Stream { .. }) => {
                return Err(LangError::new(
                    *pos,
                    "BUCKET groups events by time: use it with FROM STREAM",
                )
                .into());
            }
            GroupKey::Bucket(us, _) => GroupBy::Bucket(*us),
        });
    }
    // Which GROUP BY key a reference names (`@bucket` names the BUCKET key).
    let key_of = |r: &Ref| -> Result<Option<usize>> {
        if r.alias.is_none() && r.meta.as_deref() == Some("bucket") && r.path.is_empty() {
            return Ok(keys.iter().position(|k| matches!(k, GroupBy::Bucket(_))));
        }
        let s = slot(r)?;
        Ok(keys.iter().position(|k| *k == GroupBy::Slot(s.clone())))
    };
    let mut cols: Vec<(String, GroupCol)> = Vec::new();
    match &q.select {
        None => {
            for (i, k) in q.group.iter().enumerate() {
                let name = match k {
                    GroupKey::Ref(r) => column_name(&Term::Ref(r.clone())),
                    GroupKey::Bucket(..) => "@bucket".to_string(),
                };
                cols.push((name, GroupCol::Key(i)));
            }
            cols.push(("count".into(), GroupCol::Agg(AggFn::Count, None)));
        }
        Some(items) => {
            for i in items {
                let col = match &i.term {
                    Term::Agg(f, r, _) => GroupCol::Agg(*f, r.as_ref().map(slot).transpose()?),
                    Term::Ref(r) => GroupCol::Key(key_of(r)?.ok_or_else(|| {
                        LangError::new(
                            r.pos,
                            format!("{r} is neither a GROUP BY key nor an aggregate"),
                        )
                    })?),
                };
                cols.push((i.name.clone().unwrap_or_else(|| column_name(&i.term)), col));
            }
            check_unique(&cols, |i| items[i].term.pos())?;
        }
    }
    // ORDER BY in a grouped query reads the output rows: a key or an aggregate names
    // its column; another path reads the output row itself (`.n` for `count() AS n`).
    let column = |name: &str| Slot {
        item: Some(0),
        meta: None,
        path: JsonPath(vec![Step::Member(name.to_string())]),
    };
    let mut order = Vec::new();
    for o in &q.order {
        let found = match &o.term {
            Term::Agg(f, r, pos) => {
                let want = GroupCol::Agg(*f, r.as_ref().map(slot).transpose()?);
                Some(cols.iter().find(|(_, c)| *c == want).ok_or_else(|| {
                    LangError::new(
                        *pos,
                        format!("ORDER BY {}: the aggregate must be in SELECT", o.term),
                    )
                })?)
            }
            Term::Ref(r) => match key_of(r) {
                Ok(Some(k)) => cols.iter().find(|(_, c)| *c == GroupCol::Key(k)),
                _ => None,
            },
        };
        let s = match (found, &o.term) {
            (Some((name, _)), _) => column(name),
            (None, Term::Ref(r)) if r.alias.is_none() && r.meta.is_none() => Slot {
                item: Some(0),
                meta: None,
                path: r.path.clone(),
            },
            (None, t) => {
                return Err(LangError::new(
                    t.pos(),
                    format!("ORDER BY {t}: in a grouped query, order by a column of SELECT"),
                )
                .into());
            }
        };
        order.push((s, o.desc));
    }
    Ok((
        Shape::Grouped {
            keys,
            columns: cols,
        },
        order,
    ))
}

impl Plan {
    /// The collections a FROM's patterns match now, each once, in the patterns' order.
    pub(super) fn collections(&self, source: &dyn Source) -> Result<Vec<Collection>> {
        let From::Collections { patterns, .. } = &self.query.from else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Collection> = Vec::new();
        for p in patterns {
            for c in source.collections(&p.strings())? {
                if !out.iter().any(|o| o.path == c.path) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    pub(super) fn members(&self) -> Option<&[String]> {
        self.members.as_deref()
    }

    /// How to read `c` (the same choice at planning and at run time).
    pub(super) fn access(&self, source: &dyn Source, c: &Collection) -> Access {
        let needs = Needs {
            filter: self.filter.as_ref(),
            order: self.order_path.as_ref().map(|(p, d, n)| (p, *d, *n)),
        };
        access::choose(&needs, &source.indexes(c))
    }

    /// The output's column names (empty for whole records).
    pub fn columns(&self) -> Vec<String> {
        match &self.shape {
            Shape::Records => Vec::new(),
            Shape::Columns(c) => c.iter().map(|(n, _)| n.clone()).collect(),
            Shape::Grouped { columns, .. } => columns.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    pub fn depends_on(&self) -> Vec<Dependency> {
        let mut out = match &self.query.from {
            From::Collections { patterns, .. } => patterns
                .iter()
                .map(|p| Dependency::Collections(p.strings()))
                .collect(),
            From::Stream { name, .. } => vec![Dependency::Stream(name.clone())],
            From::Neighbours { .. } | From::Paths { .. } | From::Nearest { .. } => {
                vec![Dependency::Graph]
            }
        };
        if !self.query.joins.is_empty() && !out.contains(&Dependency::Graph) {
            out.push(Dependency::Graph);
        }
        out
    }

    /// The plan as JSON, for `optimization_log.json`: where the rows come from, how each
    /// collection is read and why, and the steps after.
    pub fn explain(&self) -> Value {
        let q = &self.query;
        let source = match &q.from {
            From::Collections { patterns, .. } => {
                json!({"collections": patterns.iter().map(ToString::to_string).collect::<Vec<_>>()})
            }
            From::Stream {
                name, since, until, ..
            } => json!({"stream": name, "since_us": since, "until_us": until}),
            From::Neighbours { of, via, dir, .. } => {
                json!({"neighbours_of": of, "via": via, "direction": dir.to_string()})
            }
            From::Paths {
                from,
                to,
                via,
                dir,
                max_depth,
                ..
            } => {
                json!({"paths_from": from, "to": to, "via": via, "direction": dir.to_string(), "max_depth": max_depth})
            }
            From::Nearest { k, to, .. } => json!({"nearest": k, "to": format!("{to:?}")}),
        };
        let collections: Vec<Value> = self
            .choices
            .iter()
            .map(|(c, a)| {
                let mut v = a.explain();
                if let Some(o) = v.as_object_mut() {
                    o.insert("collection".into(), json!(c.path));
                }
                v
            })
            .collect();
        let joins: Vec<Value> = q
            .joins
            .iter()
            .zip(self.aliases.iter().skip(1))
            .map(|(j, a)| json!({"relation": j.relation.as_deref().unwrap_or("*"), "direction": j.dir.to_string(), "as": a}))
            .collect();
        let order: Vec<String> = q
            .order
            .iter()
            .map(|o| format!("{}{}", o.term, if o.desc { " DESC" } else { "" }))
            .collect();
        json!({
            "source": source,
            "collections": collections,
            "joins": joins,
            "filter": q.filter.as_ref().map(ToString::to_string),
            "group_by": q.group.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "columns": self.columns(),
            "order_by": order,
            "limit": q.limit,
            "offset": q.offset,
            "depends_on": self.depends_on().iter().map(Dependency::to_json).collect::<Vec<_>>(),
        })
    }
}
