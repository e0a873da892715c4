//! Rows from the graph: a node's neighbours, the paths between two nodes, the nodes
//! nearest to a node or a vector, and JOINs along edges.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::super::lang::ast::{Direction, Join, Target};
use super::super::source::{EdgeRow, Record, Source};
use super::row::{Item, Row};
use super::{Error, Result, Stats};

/// Most edges one PATHS query may follow before it is refused.
pub const MAX_PATH_STEPS: u64 = 100_000;

fn need_node(source: &dyn Source, id: &str) -> Result<Record> {
    source
        .node(id)?
        .ok_or_else(|| Error::Run(format!("no graph node {id:?}")))
}

/// `other`'s record, met from `id` along `e`: the edge and its direction (`out`: `e`
/// leaves `id`) become meta fields.
fn along(rec: Record, e: &EdgeRow, id: &str) -> Item {
    let mut item = Item::of_record(rec);
    item.meta.insert("edge".into(), e.to_json());
    let dir = if e.from == id { "out" } else { "in" };
    item.meta.insert("direction".into(), json!(dir));
    item
}

pub fn neighbours(
    source: &dyn Source,
    of: &str,
    via: Option<&str>,
    dir: Direction,
    stats: &mut Stats,
) -> Result<Vec<Row>> {
    need_node(source, of)?;
    let mut rows = Vec::new();
    for e in source.edges(of, via, dir)? {
        stats.rows_scanned += 1;
        if let Some(rec) = source.node(e.other(of))? {
            stats.rows_scanned += 1;
            rows.push(Row {
                tie: vec![Some(json!(e.path)), Some(json!(e.from))],
                items: vec![along(rec, &e, of)],
            });
        }
    }
    Ok(rows)
}

pub fn nearest(source: &dyn Source, to: &Target, k: u32, stats: &mut Stats) -> Result<Vec<Row>> {
    if let Target::Node(id) = to {
        need_node(source, id)?;
    }
    let mut rows = Vec::new();
    let found = source.nearest(to, usize::try_from(k).unwrap_or(usize::MAX))?;
    for (rank, (id, distance)) in found.into_iter().enumerate() {
        stats.rows_scanned += 1;
        if let Some(rec) = source.node(&id)? {
            let mut item = Item::of_record(rec);
            item.meta
                .insert("distance".into(), json!(f64::from(distance)));
            item.meta.insert("rank".into(), json!(rank + 1));
            rows.push(Row {
                items: vec![item],
                tie: vec![Some(json!(rank))],
            });
        }
    }
    Ok(rows)
}

/// Every path from `from` to `to` of at most `max_depth` edges that visits no node
/// twice, as rows `{nodes, edges, strength, length}` (strength: the product of the
/// edges' effective strengths).
pub fn paths(
    source: &dyn Source,
    (from, to): (&str, &str),
    via: Option<&str>,
    dir: Direction,
    max_depth: u32,
    stats: &mut Stats,
) -> Result<Vec<Row>> {
    need_node(source, from)?;
    need_node(source, to)?;
    let mut walk = Walk {
        source,
        via,
        dir,
        to,
        max_depth: usize::try_from(max_depth).unwrap_or(usize::MAX),
        edges: HashMap::new(),
        nodes: vec![from.to_string()],
        trail: Vec::new(),
        found: Vec::new(),
        steps: 0,
    };
    walk.from(from)?;
    stats.rows_scanned += walk.steps;
    Ok(walk.found)
}

struct Walk<'a> {
    source: &'a dyn Source,
    via: Option<&'a str>,
    dir: Direction,
    to: &'a str,
    max_depth: usize,
    /// Each node's edges, read once.
    edges: HashMap<String, Vec<EdgeRow>>,
    nodes: Vec<String>,
    trail: Vec<EdgeRow>,
    found: Vec<Row>,
    steps: u64,
}

impl Walk<'_> {
    fn from(&mut self, at: &str) -> Result<()> {
        if self.trail.len() == self.max_depth {
            return Ok(());
        }
        if !self.edges.contains_key(at) {
            let es = self.source.edges(at, self.via, self.dir)?;
            self.edges.insert(at.to_string(), es);
        }
        let es = self.edges.get(at).cloned().unwrap_or_default();
        for e in es {
            self.steps += 1;
            if self.steps > MAX_PATH_STEPS {
                return Err(Error::Run(format!(
                    "PATHS followed more than {MAX_PATH_STEPS} edges: lower MAX DEPTH or name a relation with VIA"
                )));
            }
            let next = e.other(at).to_string();
            if self.nodes.contains(&next) {
                continue;
            }
            self.nodes.push(next.clone());
            self.trail.push(e);
            if next == self.to {
                self.found.push(self.row());
            } else {
                self.from(&next)?;
            }
            self.trail.pop();
            self.nodes.pop();
        }
        Ok(())
    }

    fn row(&self) -> Row {
        let strength: f64 = self.trail.iter().map(|e| e.effective_strength).product();
        let edges: Vec<Value> = self.trail.iter().map(EdgeRow::to_json).collect();
        let edge_paths: Vec<Value> = self.trail.iter().map(|e| json!(e.path)).collect();
        let value = json!({
            "nodes": self.nodes,
            "edges": edges,
            "strength": strength,
            "length": self.trail.len(),
        });
        Row {
            items: vec![Item {
                value,
                meta: Map::new(),
            }],
            tie: vec![
                Some(json!(self.trail.len())),
                Some(json!(self.nodes)),
                Some(Value::Array(edge_paths)),
            ],
        }
    }
}

/// Follows JOINs, remembering the nodes it read.
#[derive(Default)]
pub struct Joiner {
    nodes: HashMap<String, Option<Record>>,
}

impl Joiner {
    /// Each row with each node its last record is linked to by an edge of the JOIN's
    /// relation and direction; a row with no such edge is dropped.
    pub fn join(
        &mut self,
        source: &dyn Source,
        rows: Vec<Row>,
        j: &Join,
        stats: &mut Stats,
    ) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        for row in rows {
            let Some(id) = row.items.last().and_then(Item::key).map(str::to_string) else {
                continue;
            };
            for e in source.edges(&id, j.relation.as_deref(), j.dir)? {
                stats.rows_scanned += 1;
                let other = e.other(&id).to_string();
                if !self.nodes.contains_key(&other) {
                    stats.rows_scanned += 1;
                    let rec = source.node(&other)?;
                    self.nodes.insert(other.clone(), rec);
                }
                let Some(Some(rec)) = self.nodes.get(&other) else {
                    continue;
                };
                let mut next = row.clone();
                next.items.push(along(rec.clone(), &e, &id));
                next.tie.push(Some(json!(e.path)));
                next.tie.push(Some(json!(e.from)));
                out.push(next);
            }
        }
        Ok(out)
    }
}
