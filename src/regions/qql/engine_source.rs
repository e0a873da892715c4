//! [`Source`] over the engine: collections are directories found by walking the tree,
//! records are read where they live, indexes are the region's (`indexes`), events come
//! from the temporal region's range read, and the graph answers through its reader.

use std::cell::RefCell;
use std::ops::Bound;

use serde_json::Value;

use super::indexes::{Indexes, read_record, records_in};
use super::lang::path::JsonPath;
use super::lang::value::OrdValue;
use super::source::{Collection, Direction, EdgeRow, Record, Records, Source, Target};
use crate::engine::tree::{Kind, ROOT};
use crate::error::{Error, Result};
use crate::regions::graph::{self, Reader, Way};
use crate::regions::temporal::time;
use crate::regions::{Cx, Generated};

/// The one stream of the universe, as queries name it.
pub const STREAM: &str = "events";

pub struct EngineSource<'a> {
    pub cx: &'a Cx<'a>,
    pub graph: &'a Reader,
    pub indexes: &'a Indexes,
    /// The JSON paths declared indexed for a collection's path.
    pub declared: &'a dyn Fn(&str) -> Vec<JsonPath>,
    /// The directories looked into to find collections (a new collection there changes
    /// what a pattern matches), and the collections' own: what an answer depends on.
    pub walked: RefCell<Vec<u64>>,
    pub read: RefCell<Vec<u64>>,
}

impl<'a> EngineSource<'a> {
    pub fn new(
        cx: &'a Cx<'a>,
        graph: &'a Reader,
        indexes: &'a Indexes,
        declared: &'a dyn Fn(&str) -> Vec<JsonPath>,
    ) -> EngineSource<'a> {
        EngineSource {
            cx,
            graph,
            indexes,
            declared,
            walked: RefCell::new(Vec::new()),
            read: RefCell::new(Vec::new()),
        }
    }

    /// The directory at `path` from the root.
    fn dir(&self, path: &str) -> Result<u64> {
        super::dir_at(self.cx, path).ok_or(Error::NotFound)
    }

    fn record(&self, c: &Collection, name: &[u8], value: Value) -> Record {
        let name = String::from_utf8_lossy(name);
        Record {
            path: format!("{}/{name}", c.path),
            key: name.strip_suffix(".json").unwrap_or(&name).to_string(),
            collection: c.name.clone(),
            tier: c.tier.clone(),
            value,
        }
    }
}

fn collection(path: String) -> Collection {
    let name = path.rsplit('/').next().unwrap_or_default().to_string();
    let tier = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["spacetime", tier, ..] => Some((*tier).to_string()),
        _ => None,
    };
    Collection { path, name, tier }
}

impl Source for EngineSource<'_> {
    fn collections(&self, pattern: &[String]) -> Result<Vec<Collection>> {
        let mut found: Vec<(String, u64)> = vec![(String::new(), ROOT)];
        for seg in pattern {
            let mut next = Vec::new();
            self.walked
                .borrow_mut()
                .extend(found.iter().map(|(_, ino)| *ino));
            for (path, ino) in found {
                let join = |n: &str| {
                    if path.is_empty() {
                        n.to_string()
                    } else {
                        format!("{path}/{n}")
                    }
                };
                if seg == "*" {
                    for (name, attr) in self.cx.store.readdir_names(ino)? {
                        if attr.kind == Kind::Dir {
                            next.push((join(&String::from_utf8_lossy(&name)), attr.ino));
                        }
                    }
                } else if let Ok(attr) = self.cx.store.lookup(ino, seg.as_bytes())
                    && attr.kind == Kind::Dir
                {
                    next.push((join(seg), attr.ino));
                }
            }
            found = next;
        }
        let mut out: Vec<Collection> = found.into_iter().map(|(p, _)| collection(p)).collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn scan(&self, c: &Collection) -> Result<Records<'_>> {
        let dir = self.dir(&c.path)?;
        self.read.borrow_mut().push(dir);
        let c = c.clone();
        Ok(Box::new(records_in(self.cx, dir)?.map(move |rec| {
            rec.map(|(name, value)| self.record(&c, &name, value))
        })))
    }

    fn indexes(&self, c: &Collection) -> Vec<JsonPath> {
        (self.declared)(&c.path)
    }

    fn index_range(
        &self,
        c: &Collection,
        path: &JsonPath,
        lo: Bound<&Value>,
        hi: Bound<&Value>,
        descending: bool,
    ) -> Result<Records<'_>> {
        let dir = self.dir(&c.path)?;
        self.read.borrow_mut().push(dir);
        let (lo, hi) = (
            lo.map(|v| OrdValue(v.clone())),
            hi.map(|v| OrdValue(v.clone())),
        );
        let names: Vec<Vec<u8>> = self.indexes.with(self.cx, dir, path, |ix| {
            ix.range(lo.as_ref(), hi.as_ref(), descending)
                .map(<[u8]>::to_vec)
                .collect()
        })?;
        let c = c.clone();
        Ok(Box::new(names.into_iter().filter_map(
            move |name| match read_record(self.cx, dir, &name) {
                Ok(Some((_, v))) => Some(Ok(self.record(&c, &name, v))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            },
        )))
    }

    fn events(&self, stream: &str, from: Option<i64>, to: Option<i64>) -> Result<Vec<Value>> {
        if stream != STREAM {
            return Err(Error::InvalidRecord(format!(
                "no stream named {stream:?}: the universe's stream is {STREAM:?} \
                 (temporal/live/events.jsonl)"
            )));
        }
        // No event is older than the epoch: the retention keeps months, not decades.
        let (from, to) = (from.unwrap_or(0), to.unwrap_or(time::MAX));
        if from >= to {
            return Ok(Vec::new());
        }
        let name = format!(
            "{}..{}.jsonl",
            time::format_rfc3339(from),
            time::format_rfc3339(to)
        );
        let temporal = self.cx.regions.by_name("temporal").ok_or(Error::NotFound)?;
        let dir = self.cx.seed_dir("temporal/range").ok_or(Error::NotFound)?;
        let bytes = match temporal.generate(self.cx, &dir, &name) {
            Some(Generated::Ranged { len, source }) => {
                let mut all = Vec::with_capacity(len as usize);
                while (all.len() as u64) < len {
                    let chunk = source.read(self.cx.store, all.len() as u64, 1 << 20)?;
                    if chunk.is_empty() {
                        break;
                    }
                    all.extend_from_slice(&chunk);
                }
                all
            }
            Some(Generated::Document(b) | Generated::Fresh(b)) => b,
            Some(Generated::Failed(e)) => return Err(e),
            None => return Err(Error::NotFound),
        };
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).map_err(|e| Error::Corrupt(e.to_string())))
            .collect()
    }

    fn node(&self, id: &str) -> Result<Option<Record>> {
        let Some((kind, _)) = self.graph.node(id) else {
            return Ok(None);
        };
        let c = collection(format!("{}/{kind}", graph::NODES));
        let dir = self.dir(&c.path)?;
        let name = format!("{id}.json");
        Ok(read_record(self.cx, dir, name.as_bytes())?
            .map(|(_, v)| self.record(&c, name.as_bytes(), v)))
    }

    fn edges(&self, id: &str, relation: Option<&str>, dir: Direction) -> Result<Vec<EdgeRow>> {
        let way = match dir {
            Direction::Out => Way::Out,
            Direction::In => Way::In,
            Direction::Both => Way::Both,
        };
        Ok(self
            .graph
            .edges(id, relation, way)
            .into_iter()
            .map(|e| EdgeRow {
                relation: e.relation,
                from: e.from,
                to: e.to,
                strength: e.strength,
                effective_strength: e.effective,
                path: e.path,
            })
            .collect())
    }

    fn nearest(&self, target: &Target, k: usize) -> Result<Vec<(String, f32)>> {
        match target {
            Target::Node(id) => Ok(self.graph.nearest_to_node(id, k)),
            Target::Vector(v) => self.graph.nearest_to_vector(v, k),
        }
    }
}
