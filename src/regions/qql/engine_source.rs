//! [`Source`] over the engine: collections are directories found by walking the tree,
//! records are read where they live, indexes are the region's (`indexes`), events come
//! from the temporal region's range read, and the graph answers through its reader.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Bound;

use serde_json::Value;

use super::indexes::Indexes;
use super::lang::path::JsonPath;
use super::lang::value::OrdValue;
use super::paths_index::{Name, Position};
use super::records::{each_record, read_record};
use super::source::{Collection, Direction, EdgeRow, Members, Record, Records, Source, Target};
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
    /// What this evaluation resolved already: its plan and its run ask the same patterns
    /// and the same collections' indexes.
    matched: RefCell<HashMap<Vec<String>, Vec<Collection>>>,
    indexed: RefCell<HashMap<String, Vec<JsonPath>>>,
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
            matched: RefCell::default(),
            indexed: RefCell::default(),
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

/// An index's names a page at a time: the lock is held for one page only, and a reader
/// that stops early (ORDER BY … LIMIT) copies no more than it read. Pages grow, from one
/// name (an equality on an identifier) to many (a range read whole).
struct IndexWalk {
    bounds: (Bound<OrdValue>, Bound<OrdValue>),
    after: Option<Position<OrdValue>>,
    page: std::vec::IntoIter<Name>,
    page_len: usize,
    done: bool,
}

const FIRST_PAGE: usize = 4;
const LARGEST_PAGE: usize = 4096;

/// The bounds of a walk, as a page read takes them.
type Bounds<'a> = (Bound<&'a OrdValue>, Bound<&'a OrdValue>);
/// A page: its names and where it ended (`None`: the range is done).
type Page = (Vec<Name>, Option<Position<OrdValue>>);

impl IndexWalk {
    /// The next name, reading a page with `page_of(bounds, after, n)` when the last one
    /// is used up.
    fn next(
        &mut self,
        mut page_of: impl FnMut(Bounds<'_>, Option<&Position<OrdValue>>, usize) -> Result<Page>,
    ) -> Option<Result<Name>> {
        loop {
            if let Some(n) = self.page.next() {
                return Some(Ok(n));
            }
            if self.done {
                return None;
            }
            let bounds = (self.bounds.0.as_ref(), self.bounds.1.as_ref());
            let (names, end) = match page_of(bounds, self.after.as_ref(), self.page_len) {
                Ok(p) => p,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            self.page_len = (self.page_len * 4).min(LARGEST_PAGE);
            self.done = end.is_none();
            self.after = end;
            self.page = names.into_iter();
        }
    }
}

impl Source for EngineSource<'_> {
    fn collections(&self, pattern: &[String]) -> Result<Vec<Collection>> {
        if let Some(c) = self.matched.borrow().get(pattern) {
            return Ok(c.clone());
        }
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
        self.matched
            .borrow_mut()
            .insert(pattern.to_vec(), out.clone());
        Ok(out)
    }

    fn scan(
        &self,
        c: &Collection,
        members: Members<'_>,
        keep: &dyn Fn(&Value) -> bool,
        each: &mut dyn FnMut(Record),
    ) -> Result<()> {
        let dir = self.dir(&c.path)?;
        self.read.borrow_mut().push(dir);
        each_record(self.cx.store, dir, members, &mut |name, v| {
            if keep(&v) {
                each(self.record(c, name, v));
            }
        })
    }

    fn indexes(&self, c: &Collection) -> Vec<JsonPath> {
        self.indexed
            .borrow_mut()
            .entry(c.path.clone())
            .or_insert_with(|| (self.declared)(&c.path))
            .clone()
    }

    fn index_range<'s>(
        &'s self,
        c: &Collection,
        path: &JsonPath,
        (lo, hi): (Bound<&Value>, Bound<&Value>),
        descending: bool,
        members: Members<'s>,
    ) -> Result<Records<'s>> {
        let dir = self.dir(&c.path)?;
        self.read.borrow_mut().push(dir);
        let owned = |b: Bound<&Value>| b.map(|v| OrdValue(v.clone()));
        let mut walk = IndexWalk {
            bounds: (owned(lo), owned(hi)),
            after: None,
            page: Vec::new().into_iter(),
            page_len: FIRST_PAGE,
            done: false,
        };
        let c = c.clone();
        let path = path.clone();
        let names = std::iter::from_fn(move || {
            walk.next(|bounds, after, n| {
                self.indexes.with(self.cx, dir, &path, |ix| {
                    ix.page(bounds, descending, after, n)
                })
            })
        });
        Ok(Box::new(names.filter_map(move |name| {
            let name = match name {
                Ok(n) => n,
                Err(e) => return Some(Err(e)),
            };
            match read_record(self.cx, dir, &name, members) {
                Ok(Some((_, v))) => Some(Ok(self.record(&c, &name, v))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })))
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
            Some(Generated::Document(b) | Generated::Fresh(b) | Generated::Fixed(b)) => b,
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
        Ok(read_record(self.cx, dir, name.as_bytes(), None)?
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
