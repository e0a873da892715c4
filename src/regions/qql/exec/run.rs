//! The executor: reads the rows (collections through the access the planner's rule
//! chooses, the stream, the graph), follows the JOINs, filters, groups, orders, cuts
//! and projects.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::super::lang::ast::From;
use super::super::lang::value::cmp_sort_key;
use super::super::source::{Collection, Members, Records, Source};
use super::access::Access;
use super::plan::{Plan, Shape};
use super::row::{Item, Row};
use super::{Output, Result, Stats, graph, group};

/// Runs a plan over `source`.
pub fn run(plan: &Plan, source: &dyn Source) -> Result<Output> {
    let mut stats = Stats::default();
    let q = &plan.query;
    // Without JOINs, a collection's rows are filtered, and grouped or cut to what ORDER
    // BY … LIMIT keeps, as they are read: a scan holds no more rows than its answer.
    let streamed = matches!(q.from, From::Collections { .. }) && q.joins.is_empty();
    let mut grouped = false;
    let mut rows = match &q.from {
        From::Collections { .. } if streamed => match &plan.shape {
            Shape::Grouped { keys, columns } => {
                let mut groups = group::Groups::new(keys, columns, q.group.is_empty());
                read_collections(plan, source, &mut stats, &mut |r| groups.add(&r))?;
                grouped = true;
                groups.finish()
            }
            _ => {
                let keep = kept(q);
                let mut rows = Vec::new();
                read_collections(plan, source, &mut stats, &mut |r| {
                    rows.push(r);
                    if rows.len() >= keep.saturating_mul(2).max(1024) {
                        sort_rows(plan, &mut rows);
                        rows.truncate(keep);
                    }
                })?;
                rows
            }
        },
        From::Collections { .. } => {
            let mut rows = Vec::new();
            read_collections(plan, source, &mut stats, &mut |r| rows.push(r))?;
            rows
        }
        From::Stream {
            name, since, until, ..
        } => read_events(source, name, *since, *until, &mut stats)?,
        From::Neighbours { of, via, dir, .. } => {
            graph::neighbours(source, of, via.as_deref(), *dir, &mut stats)?
        }
        From::Paths {
            from,
            to,
            via,
            dir,
            max_depth,
            ..
        } => graph::paths(
            source,
            (from, to),
            via.as_deref(),
            *dir,
            *max_depth,
            &mut stats,
        )?,
        From::Nearest { k, to, .. } => graph::nearest(source, to, *k, &mut stats)?,
    };
    let mut joiner = graph::Joiner::default();
    for j in &q.joins {
        rows = joiner.join(source, rows, j, &mut stats)?;
    }
    if let (Some(f), false) = (&plan.filter, streamed) {
        rows.retain(|r| f.eval(r));
    }
    if let (Shape::Grouped { keys, columns }, false) = (&plan.shape, grouped) {
        let mut groups = group::Groups::new(keys, columns, q.group.is_empty());
        for r in &rows {
            groups.add(r);
        }
        rows = groups.finish();
    }
    sort_rows(plan, &mut rows);
    let offset = usize::try_from(q.offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let limit = q
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let rows: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| project(plan, r))
        .collect();
    stats.rows_returned = rows.len() as u64;
    Ok(Output {
        columns: plan.columns(),
        rows,
        stats,
    })
}

/// Rows in the answer's order: ORDER BY, then the tie.
fn sort_rows(plan: &Plan, rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        plan.order
            .iter()
            .map(|(s, desc)| cmp_sort_key(s.get(a), s.get(b), *desc))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.cmp_tie(b))
    });
}

/// How many of the sorted rows the answer can use: offset + limit.
fn kept(q: &super::super::lang::ast::Query) -> usize {
    let n = q.limit.map(|l| l.saturating_add(q.offset.unwrap_or(0)));
    n.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

fn project(plan: &Plan, mut row: Row) -> Value {
    match &plan.shape {
        Shape::Records if row.items.len() == 1 => row.items.swap_remove(0).value,
        Shape::Records => {
            let m: Map<String, Value> = plan
                .aliases
                .iter()
                .cloned()
                .zip(row.items.into_iter().map(|i| i.value))
                .collect();
            Value::Object(m)
        }
        Shape::Columns(cols) => {
            let m: Map<String, Value> = cols
                .iter()
                .filter_map(|(name, s)| Some((name.clone(), s.get(&row)?.clone())))
                .collect();
            Value::Object(m)
        }
        Shape::Grouped { .. } => row
            .items
            .into_iter()
            .next()
            .map_or(Value::Null, |i| i.value),
    }
}

/// Reads the FROM's collections, giving each row to `out`: filtered already when there
/// are no JOINs (the filter then reads only the FROM's record).
fn read_collections(
    plan: &Plan,
    source: &dyn Source,
    stats: &mut Stats,
    out: &mut dyn FnMut(Row),
) -> Result<()> {
    let filter = plan.filter.as_ref().filter(|_| plan.query.joins.is_empty());
    let keep = |r: &Row| filter.is_none_or(|f| f.eval(r));
    // A filter on the content alone is applied before rows are made.
    let on_content = filter.filter(|f| f.reads_only_content());
    for c in plan.collections(source)? {
        let access = plan.access(source, &c);
        stats.accesses.push((c.path.clone(), access.describe()));
        match &access {
            Access::Scan { .. } => {
                // Every record the source reads meets the content test first.
                let scanned = std::cell::Cell::new(0);
                let content = |v: &Value| {
                    scanned.set(scanned.get() + 1);
                    on_content.is_none_or(|f| f.eval_content(v))
                };
                source.scan(&c, plan.members(), &content, &mut |rec| {
                    let row = Row::of_record(rec);
                    if on_content.is_some() || keep(&row) {
                        out(row);
                    }
                })?;
                stats.rows_scanned += scanned.get();
            }
            Access::Index { path, ranges, .. } => {
                // IN may name one value twice: each record once.
                let mut seen = HashSet::new();
                for (lo, hi) in ranges {
                    let range = (lo.as_ref(), hi.as_ref());
                    for rec in source.index_range(&c, path, range, false, plan.members())? {
                        stats.rows_scanned += 1;
                        let rec = rec?;
                        let fresh = seen.insert(rec.path.clone());
                        let row = Row::of_record(rec);
                        if fresh && keep(&row) {
                            out(row);
                        }
                    }
                }
            }
            Access::IndexOrder {
                path,
                descending,
                n,
                range,
                ..
            } => read_in_order(
                source,
                (&c, plan.members()),
                (path, *descending, *n, range.as_ref()),
                &keep,
                stats,
            )?
            .into_iter()
            .for_each(&mut *out),
        }
    }
    Ok(())
}

/// The first `n` rows in the order of `path` that pass the filter, and every row tied
/// with the last of them (the tie-break decides among those later). Records without the
/// path sort after all others, so they are read (by a scan) only when the index holds
/// fewer than `n` passing rows — and never when the filter bounds the path (`range`):
/// such a record cannot pass it.
fn read_in_order<'s>(
    source: &'s dyn Source,
    (c, members): (&Collection, Members<'s>),
    (path, descending, n, range): (
        &super::super::lang::path::JsonPath,
        bool,
        usize,
        Option<&super::access::Range>,
    ),
    keep: &dyn Fn(&Row) -> bool,
    stats: &mut Stats,
) -> Result<Vec<Row>> {
    use std::ops::Bound::Unbounded;
    let mut rows: Vec<Row> = Vec::new();
    if n == 0 {
        return Ok(rows);
    }
    let value_at = |r: &Row| r.items.first().and_then(|i| path.get(&i.value)).cloned();
    let (lo, hi) = range.map_or((Unbounded, Unbounded), |(lo, hi)| {
        (lo.as_ref(), hi.as_ref())
    });
    let index: Records<'_> = source.index_range(c, path, (lo, hi), descending, members)?;
    for rec in index {
        stats.rows_scanned += 1;
        let row = Row::of_record(rec?);
        if rows.len() >= n {
            let last = rows.last().and_then(value_at);
            let tied = match (&last, value_at(&row)) {
                (Some(a), Some(b)) => super::super::lang::value::cmp(a, &b).is_eq(),
                _ => false,
            };
            if !tied {
                return Ok(rows);
            }
        }
        if keep(&row) {
            rows.push(row);
        }
    }
    if rows.len() < n && range.is_none() {
        source.scan(c, members, &|_| true, &mut |rec| {
            stats.rows_scanned += 1;
            let row = Row::of_record(rec);
            if value_at(&row).is_none() && keep(&row) {
                rows.push(row);
            }
        })?;
    }
    Ok(rows)
}

fn read_events(
    source: &dyn Source,
    name: &str,
    since: Option<i64>,
    until: Option<i64>,
    stats: &mut Stats,
) -> Result<Vec<Row>> {
    let events = source.events(name, since, until)?;
    stats.rows_scanned += events.len() as u64;
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(i, ev)| {
            let mut meta = Map::new();
            if let Some(t) = ev.get("timestamp") {
                meta.insert("time".into(), t.clone());
            }
            Row {
                items: vec![Item { value: ev, meta }],
                tie: vec![Some(Value::from(i))],
            }
        })
        .collect())
}
