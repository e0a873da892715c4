//! An in-memory [`Source`] for the tests: collections with declared indexes (a BTreeMap
//! per indexed path), a stream, graph nodes and edges, and vectors for NEAREST.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::Value;

use super::lang::path::JsonPath;
use super::lang::value::OrdValue;
use super::source::{Collection, Direction, EdgeRow, Members, Record, Records, Source, Target};
use crate::error::{Error, Result};
use crate::regions::temporal::time::parse_rfc3339;

type Index = BTreeMap<OrdValue, BTreeMap<String, Record>>;

#[derive(Default)]
pub struct Mem {
    /// Collections by path, their records by key.
    pub colls: BTreeMap<String, (Collection, BTreeMap<String, Record>)>,
    pub indexes: BTreeMap<(String, JsonPath), Index>,
    pub events: Vec<Value>,
    pub edges: Vec<EdgeRow>,
    pub vectors: BTreeMap<String, Vec<f32>>,
}

fn index_add(idx: &mut Index, path: &JsonPath, r: &Record) {
    if let Some(v) = path.get(&r.value) {
        idx.entry(OrdValue(v.clone()))
            .or_default()
            .insert(r.path.clone(), r.clone());
    }
}

impl Mem {
    /// Adds a record to the collection at `coll` (`spacetime/hot_data/particles/users`).
    pub fn add(&mut self, coll: &str, key: &str, value: Value) {
        let segs: Vec<&str> = coll.split('/').collect();
        let name = segs.last().copied().unwrap_or_default().to_string();
        let tier = (segs.first() == Some(&"spacetime"))
            .then(|| segs.get(1).copied().unwrap_or_default().to_string());
        let rec = Record {
            path: format!("{coll}/{key}.json"),
            key: key.to_string(),
            collection: name.clone(),
            tier: tier.clone(),
            value,
        };
        for ((c, path), idx) in &mut self.indexes {
            if c == coll {
                index_add(idx, path, &rec);
            }
        }
        self.colls
            .entry(coll.to_string())
            .or_insert_with(|| {
                let c = Collection {
                    path: coll.to_string(),
                    name,
                    tier,
                };
                (c, BTreeMap::new())
            })
            .1
            .insert(key.to_string(), rec);
    }

    /// Declares an index on `path` over the collection at `coll`.
    pub fn index(&mut self, coll: &str, path: JsonPath) {
        let mut idx = Index::new();
        if let Some((_, recs)) = self.colls.get(coll) {
            for r in recs.values() {
                index_add(&mut idx, &path, r);
            }
        }
        self.indexes.insert((coll.to_string(), path), idx);
    }

    pub fn node(&mut self, ty: &str, id: &str, value: Value) {
        self.add(&format!("quantum_graph/nodes/{ty}"), id, value);
    }

    pub fn edge(&mut self, relation: &str, from: &str, to: &str, strength: f64) {
        self.edges.push(EdgeRow {
            relation: relation.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            strength,
            effective_strength: strength / 2.0,
            path: format!("quantum_graph/edges/{relation}/{from}_to_{to}.json"),
        });
        self.edges.sort_by(|a, b| a.path.cmp(&b.path));
    }
}

fn matches(pattern: &[String], path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').collect();
    segs.len() == pattern.len() && segs.iter().zip(pattern).all(|(s, p)| p == "*" || p == s)
}

/// A record with only `members` (as the engine's source parses it): so that the
/// property test finds a member the planner failed to ask for.
fn only(r: &Record, members: Members<'_>) -> Record {
    let Some(members) = members else {
        return r.clone();
    };
    let value = match &r.value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| members.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Null,
    };
    Record { value, ..r.clone() }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    1.0 - dot / (na * nb).max(f32::MIN_POSITIVE)
}

impl Source for Mem {
    fn collections(&self, pattern: &[String]) -> Result<Vec<Collection>> {
        Ok(self
            .colls
            .values()
            .filter(|(c, _)| matches(pattern, &c.path))
            .map(|(c, _)| c.clone())
            .collect())
    }

    fn scan(
        &self,
        c: &Collection,
        members: Members<'_>,
        keep: &dyn Fn(&Value) -> bool,
        each: &mut dyn FnMut(Record),
    ) -> Result<()> {
        let recs = self.colls.get(&c.path).ok_or(Error::NotFound)?;
        // Reverse key order: the executor must not rely on a scan's order.
        for r in recs.1.values().rev() {
            let r = only(r, members);
            if keep(&r.value) {
                each(r);
            }
        }
        Ok(())
    }

    fn indexes(&self, c: &Collection) -> Vec<JsonPath> {
        self.indexes
            .keys()
            .filter(|(coll, _)| *coll == c.path)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn index_range<'s>(
        &'s self,
        c: &Collection,
        path: &JsonPath,
        (lo, hi): (Bound<&Value>, Bound<&Value>),
        descending: bool,
        members: Members<'s>,
    ) -> Result<Records<'s>> {
        let idx = self
            .indexes
            .get(&(c.path.clone(), path.clone()))
            .ok_or(Error::NotFound)?;
        let own = |b: Bound<&Value>| b.map(|v| OrdValue(v.clone()));
        let range = idx.range((own(lo), own(hi)));
        // Equal values in reverse path order: the executor must break ties itself.
        let recs: Vec<Record> = if descending {
            range
                .rev()
                .flat_map(|(_, rs)| rs.values().cloned())
                .collect()
        } else {
            range
                .flat_map(|(_, rs)| rs.values().rev().cloned())
                .collect()
        };
        Ok(Box::new(
            recs.into_iter().map(move |r| Ok(only(&r, members))),
        ))
    }

    fn events(&self, stream: &str, from: Option<i64>, to: Option<i64>) -> Result<Vec<Value>> {
        if stream != "events" {
            return Err(Error::NotFound);
        }
        Ok(self
            .events
            .iter()
            .filter(|e| {
                let t = e
                    .get("timestamp")
                    .and_then(Value::as_str)
                    .and_then(|s| parse_rfc3339(s).ok());
                t.is_some_and(|t| from.is_none_or(|f| t >= f) && to.is_none_or(|u| t < u))
            })
            .cloned()
            .collect())
    }

    fn node(&self, id: &str) -> Result<Option<Record>> {
        Ok(self
            .colls
            .iter()
            .filter(|(p, _)| p.starts_with("quantum_graph/nodes/"))
            .find_map(|(_, (_, recs))| recs.get(id).cloned()))
    }

    fn edges(&self, id: &str, relation: Option<&str>, dir: Direction) -> Result<Vec<EdgeRow>> {
        Ok(self
            .edges
            .iter()
            .filter(|e| relation.is_none_or(|r| e.relation == r))
            .filter(|e| match dir {
                Direction::Out => e.from == id,
                Direction::In => e.to == id,
                Direction::Both => e.from == id || e.to == id,
            })
            .cloned()
            .collect())
    }

    fn nearest(&self, target: &Target, k: usize) -> Result<Vec<(String, f32)>> {
        let (v, skip) = match target {
            Target::Node(id) => (
                self.vectors.get(id).cloned().unwrap_or_default(),
                Some(id.as_str()),
            ),
            Target::Vector(v) => (v.clone(), None),
        };
        let mut all: Vec<(String, f32)> = self
            .vectors
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != skip)
            .map(|(id, w)| (id.clone(), cosine(&v, w)))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(k);
        Ok(all)
    }
}
