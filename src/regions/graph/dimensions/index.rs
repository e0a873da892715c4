//! The k-nearest index over node coordinates, keyed by inode.
//!
//! **Exact below 10,000 vectors, approximate above.** Up to [`Params::approx_from`]
//! (10,000) vectors a query scans them all: at 64 dimensions that is 640,000
//! multiply-adds, a fraction of a millisecond, and every answer is exact, while a graph
//! would cost hundreds of distance computations on every insert and tens of links per
//! vector in memory. Once the index holds 10,000, maintenance builds an HNSW graph
//! (`hnsw`) over a copy of them, away from the index's lock (a commit never waits for a
//! build: queries scan until it is in place), catches it up with the changes made
//! meanwhile and puts it in place; from then on every insert links itself into the graph
//! and queries are answered from it. When removals bring the index below
//! [`Params::exact_below`] (8,000) it drops the graph and scans again. Measured on
//! uniform random 64-dimensional vectors (the hardest case for a graph) on a shared
//! 2-core machine: at 20,000 the scan still answers ~3,700 queries/s against the graph's
//! ~2,800 (recall@10 0.99); at 100,000 the scan falls to ~500/s and the graph gives
//! ~1,500/s (recall@10 0.91). The crossover on such data is nearer 30,000; 10,000 is
//! kept so that a graph's query cost stays bounded as it grows, and is a parameter. The gap
//! between the two is the hysteresis: a size wavering around one threshold does not
//! build and drop the graph on every other commit.
//!
//! **Inserts wait to be linked.** With a graph, a commit's vector goes into the store at
//! once but is linked into the graph later, by maintenance (`link_pending`), in the order
//! the vectors came: an insert costs hundreds of distances (~0.3-0.6 ms), which a commit
//! would otherwise wait for, on the client's time when everything shares one CPU. Until
//! then queries scan the unlinked vectors and merge them with the graph's answer, so a
//! vector is found as soon as it is committed, and exactly. At most
//! [`Params::unlinked_max`] (4,096: a scan of 64-dimensional vectors of ~0.1 ms) wait;
//! beyond it each insert links the oldest waiting one itself, so a writer faster than
//! maintenance pays for its inserts again instead of slowing every query.
//!
//! **Dimension.** The first vector fixes the index's dimension; a vector of another
//! length is refused (`EINVAL`, naming both lengths) rather than padded, since
//! coordinates of different lengths come from different spaces (a node's own
//! `coordinates` and derived ones) and no distance between them means anything. An
//! index emptied of every vector takes any dimension again.
//!
//! **Graph settings** (HNSW): M = 24 links a slot (48 on level 0), ef_construction 200,
//! ef_search 192 (recall@10 at 100,000 random 64-d vectors: 0.65 at 64, 0.83 at 128,
//! 0.91 at 192, 0.95 at 256). An insert costs ~0.3-0.6 ms at 20,000-100,000 vectors.
//!
//! **Updates and removals** mark the vector's slot dead (an update then inserts the new
//! vector in a new slot; an unchanged vector changes nothing). Dead slots are dropped
//! once they exceed half the live ones (and 64): at once without a graph, and by a
//! rebuild of the graph by maintenance, as above, with one (it costs as much as building
//! the graph anew, amortised over at least n/2 changes).
//!
//! Distances are the metric's (`metric`). Answers are nearest first; equal distances
//! are ordered by slot, so a given sequence of changes always gives the same answers.

use std::collections::BinaryHeap;

use super::hnsw::{Graph, GraphParams, Near};
use super::metric::{Metric, inv_norm};
use super::store::Store;
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// The size at which the graph is built.
    pub approx_from: usize,
    /// The size below which the graph is dropped (less than `approx_from`).
    pub exact_below: usize,
    pub graph: GraphParams,
    /// Candidates a graph query keeps (at least `k`): recall against speed.
    pub ef_search: usize,
    /// Vectors left waiting to be linked into the graph, at most.
    pub unlinked_max: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            approx_from: 10_000,
            exact_below: 8_000,
            graph: GraphParams {
                m: 24,
                ef_construction: 200,
            },
            ef_search: 192,
            unlinked_max: 4_096,
        }
    }
}

/// A key linked into the graph (or, without one, scanned against every other), with the
/// keys it met, nearest first with a graph and in slot order without.
#[derive(Debug, PartialEq)]
pub struct Linked {
    pub key: u64,
    pub met: Vec<(u64, f32)>,
}

/// Dead slots tolerated however small the index (so small indexes do not compact on
/// every removal).
const DEAD_SLACK: usize = 64;

pub struct Index {
    metric: Metric,
    params: Params,
    store: Store,
    graph: Option<Graph>,
}

/// A proximity graph built over a copy of an index's live vectors, away from the index.
pub struct Build {
    store: Store,
    graph: Option<Graph>,
    params: GraphParams,
    metric: Metric,
}

impl Build {
    /// Builds the graph over the copy: the slow part (~0.3-0.6 ms a vector).
    pub fn run(&mut self) {
        self.graph = Some(Graph::build(self.params, &self.store, self.metric));
    }

    /// Applies changes taken from the index (`Index::changes_since`) to the copy and its graph.
    pub fn apply(&mut self, changes: Vec<(u64, Option<Vec<f32>>)>) {
        for (key, v) in changes {
            self.store.kill(key);
            if let Some(v) = v {
                let slot = self.store.push(key, &v);
                if let Some(g) = &mut self.graph {
                    g.insert(&self.store, self.metric, slot);
                }
            }
        }
    }
}

impl Index {
    pub fn new(metric: Metric) -> Index {
        Index::with_params(metric, Params::default())
    }

    pub fn with_params(metric: Metric, params: Params) -> Index {
        Index {
            metric,
            params,
            store: Store::default(),
            graph: None,
        }
    }

    /// Candidates a graph query keeps from now on: recall against speed.
    #[cfg(test)]
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.max(1);
    }

    #[cfg(test)]
    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Slots held, live and dead.
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.store.slots()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The length of the vectors held, if any are.
    pub fn dim(&self) -> Option<usize> {
        (!self.is_empty()).then_some(self.store.dim)
    }

    /// Whether queries are answered from the graph (else by a scan).
    pub fn is_approximate(&self) -> bool {
        self.graph.is_some()
    }

    pub fn get(&self, key: u64) -> Option<&[f32]> {
        self.store.slot_of(key).map(|s| self.store.vector(s))
    }

    /// Every `(key, vector)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[f32])> {
        self.store.iter()
    }

    fn check(&self, v: &[f32]) -> Result<()> {
        if let Some(dim) = self.dim()
            && v.len() != dim
        {
            return Err(Error::InvalidRecord(format!(
                "coordinates have {} numbers, the graph's have {dim}",
                v.len()
            )));
        }
        if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
            return Err(Error::InvalidRecord(
                "coordinates must be one or more finite numbers".into(),
            ));
        }
        Ok(())
    }

    /// Sets `key`'s vector (inserting or replacing it) and links it at once. Loading a
    /// file puts every vector so: no scan of the others, which would make a start
    /// quadratic in the nodes.
    pub fn upsert(&mut self, key: u64, v: &[f32]) -> Result<()> {
        if self.place(key, v)?.is_some() {
            self.link_until(0);
            self.drop_dead();
        }
        Ok(())
    }

    /// Sets `key`'s vector, and answers the keys linked meanwhile with the keys each met
    /// (itself left out): while there is a graph, those its insert met on the lowest level
    /// (`ef_construction` at most, the nearest among them), nearest first, for the oldest
    /// waiting vectors beyond `unlinked_max` (`key` itself waits when there is room);
    /// without one, `key` and every other key from the scan, in slot order. Either way
    /// equal distances come in slot order. `None`: the vector is unchanged, and nothing
    /// changed.
    pub fn upsert_met(&mut self, key: u64, v: &[f32]) -> Result<Option<Vec<Linked>>> {
        let Some(slot) = self.place(key, v)? else {
            return Ok(None);
        };
        let linked = match self.graph {
            Some(_) => self.link_until(self.params.unlinked_max),
            None => {
                let met = self.scan(0, v, self.store.inv(slot)).collect();
                vec![self.linked(slot, met)]
            }
        };
        self.drop_dead();
        Ok(Some(linked))
    }

    /// Links up to `n` of the vectors waiting, oldest first; those still live, with the
    /// keys each met.
    pub fn link_pending(&mut self, n: usize) -> Vec<Linked> {
        self.link_until(self.unlinked().saturating_sub(n))
    }

    /// Vectors waiting to be linked into the graph.
    pub fn unlinked(&self) -> usize {
        self.store.slots() - self.linked_slots()
    }

    /// Whether `key`'s vector waits to be linked.
    pub fn is_unlinked(&self, key: u64) -> bool {
        self.store
            .slot_of(key)
            .is_some_and(|s| s as usize >= self.linked_slots())
    }

    /// The slots a query finds without a scan: the graph's, or none.
    fn linked_slots(&self) -> usize {
        self.graph.as_ref().map_or(self.store.slots(), Graph::slots)
    }

    /// Links the oldest waiting vectors until `left` wait (see `upsert_met`).
    fn link_until(&mut self, left: usize) -> Vec<Linked> {
        let mut linked = Vec::new();
        while let Some(g) = &mut self.graph
            && g.slots() + left < self.store.slots()
        {
            let slot = g.slots() as u32;
            let met = g.insert(&self.store, self.metric, slot);
            if self.store.is_live(slot) {
                linked.push(self.linked(slot, met));
            }
        }
        linked
    }

    /// `slot`'s key and the live others among `met`.
    fn linked(&self, slot: u32, met: Vec<Near>) -> Linked {
        let others = met
            .into_iter()
            .filter(|n| n.slot != slot && self.store.is_live(n.slot))
            .collect();
        Linked {
            key: self.store.key(slot),
            met: self.answer(others),
        }
    }

    /// Puts `v` in a new slot for `key`, unlinked; the slot. `None`: the vector is
    /// unchanged.
    fn place(&mut self, key: u64, v: &[f32]) -> Result<Option<u32>> {
        self.check(v)?;
        if self.get(key) == Some(v) {
            return Ok(None);
        }
        if self.is_empty() {
            // A fresh start, possibly at another dimension.
            self.store = Store::new(v.len());
            self.graph = None;
        }
        self.store.kill(key);
        Ok(Some(self.store.push(key, v)))
    }

    /// Without a graph, drops the dead slots once they are too many (slot numbers change).
    fn drop_dead(&mut self) {
        if self.graph.is_none() && self.too_dead() {
            self.store = self.store.compacted();
        }
    }

    /// The `k` keys nearest `v` but `key`.
    pub fn nearest_others(&self, key: u64, v: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut near = self.nearest(v, k + 1)?;
        near.retain(|&(n, _)| n != key);
        near.truncate(k);
        Ok(near)
    }

    /// Removes `key`'s vector; whether it had one.
    pub fn remove(&mut self, key: u64) -> bool {
        if self.store.kill(key).is_none() {
            return false;
        }
        if self.graph.is_some() && self.len() < self.params.exact_below {
            // The graph's dead slots go with it; without a graph they wait for `drop_dead`
            // like any others (a copy at every removal made emptying an index quadratic).
            self.graph = None;
            self.store = self.store.compacted();
        } else {
            self.drop_dead();
        }
        true
    }

    /// Dead slots passed half the live ones (and `DEAD_SLACK`): time to drop them.
    fn too_dead(&self) -> bool {
        self.store.dead() > DEAD_SLACK.max(self.len() / 2)
    }

    /// Whether maintenance should build a graph: the index reached `approx_from` without
    /// one, or its graph's dead slots passed half the live ones (and `DEAD_SLACK`).
    pub fn wants_graph(&self) -> bool {
        match self.graph {
            Some(_) => self.too_dead(),
            None => self.len() >= self.params.approx_from,
        }
    }

    /// A copy of the live vectors to build a graph over, off the index's lock, when the
    /// index wants one (`Build::run`, `changes_since`, `install`).
    pub fn start_build(&self) -> Option<Build> {
        self.wants_graph().then(|| Build {
            store: self.store.compacted(),
            graph: None,
            params: self.params.graph,
            metric: self.metric,
        })
    }

    /// What changed since `b`'s copy: keys whose vector is new or other (with it), keys
    /// gone (without). `None` when the copy is of another space (the index was emptied
    /// and refilled at another dimension): the build is of no use.
    pub fn changes_since(&self, b: &Build) -> Option<Vec<(u64, Option<Vec<f32>>)>> {
        if b.store.dim != self.store.dim {
            return None;
        }
        let mut changes: Vec<(u64, Option<Vec<f32>>)> = self
            .store
            .iter()
            .filter(|&(key, v)| b.store.slot_of(key).map(|s| b.store.vector(s)) != Some(v))
            .map(|(key, v)| (key, Some(v.to_vec())))
            .collect();
        changes.extend(
            b.store
                .iter()
                .filter(|&(key, _)| self.store.slot_of(key).is_none())
                .map(|(key, _)| (key, None)),
        );
        Some(changes)
    }

    /// Puts `b`'s graph in place, `b` being up to date (the last `changes_since`, taken
    /// under the same lock, applied); a graph the index no longer wants is dropped.
    pub fn install(&mut self, b: Build) {
        let Some(graph) = b.graph else {
            return;
        };
        if b.store.dim != self.store.dim || b.store.len() != self.len() || !self.wants_graph() {
            return;
        }
        self.store = b.store;
        self.graph = Some(graph);
    }

    /// Builds whatever graph is wanted, now (what maintenance does in steps, off the lock).
    #[cfg(test)]
    pub fn settle(&mut self) {
        if let Some(mut b) = self.start_build() {
            b.run();
            self.install(b);
        }
    }

    /// The `k` keys nearest `q` with their distances, nearest first (the key itself, if
    /// `q` is a key's vector, included: the caller leaves it out). Approximate when the
    /// index is.
    pub fn nearest(&self, q: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        let Some(graph) = &self.graph else {
            return self.exact_nearest(q, k);
        };
        self.check_query(q)?;
        let (ef, iq) = (self.params.ef_search.max(k), inv_norm(q));
        let found = graph.search(&self.store, self.metric, q, iq, k, ef);
        let found = match self.unlinked() {
            0 => found,
            _ => best(found.into_iter().chain(self.scan(graph.slots(), q, iq)), k),
        };
        Ok(self.answer(found))
    }

    /// The `k` keys nearest `key`'s vector among those waiting to be linked (`key` left
    /// out), exactly: what a graph's answer lacks until they are linked.
    pub fn unlinked_nearest(&self, key: u64, k: usize) -> Vec<(u64, f32)> {
        let Some(slot) = self.store.slot_of(key).filter(|_| self.unlinked() > 0) else {
            return Vec::new();
        };
        let (q, iq) = (self.store.vector(slot), self.store.inv(slot));
        let near = self
            .scan(self.linked_slots(), q, iq)
            .filter(|n| n.slot != slot);
        self.answer(best(near, k))
    }

    /// The exact `k` nearest, by a scan of every vector, whatever the index's size: what
    /// the approximate answers are measured against.
    pub fn exact_nearest(&self, q: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        self.check_query(q)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        Ok(self.answer(best(self.scan(0, q, inv_norm(q)), k)))
    }

    /// Every live slot from `from` on at its distance from `q` (whose `inv_norm` is `iq`),
    /// in slot order.
    fn scan<'a>(&'a self, from: usize, q: &'a [f32], iq: f32) -> impl Iterator<Item = Near> + 'a {
        (from as u32..self.store.slots() as u32)
            .filter(|&slot| self.store.is_live(slot))
            .map(move |slot| Near {
                d: self
                    .metric
                    .raw(q, iq, self.store.vector(slot), self.store.inv(slot)),
                slot,
            })
    }

    fn check_query(&self, q: &[f32]) -> Result<()> {
        match self.dim() {
            Some(dim) if q.len() != dim => Err(Error::InvalidArgument(
                "query coordinates differ in length from the graph's",
            )),
            _ => Ok(()),
        }
    }

    fn answer(&self, found: Vec<Near>) -> Vec<(u64, f32)> {
        found
            .into_iter()
            .map(|n| (self.store.key(n.slot), self.metric.finish(n.d)))
            .collect()
    }
}

/// The `k` nearest of `near`, nearest first (ties by slot).
fn best(near: impl Iterator<Item = Near>, k: usize) -> Vec<Near> {
    let mut best: BinaryHeap<Near> = BinaryHeap::with_capacity(k + 1);
    for n in near {
        if best.len() < k {
            best.push(n);
        } else if best.peek().is_some_and(|w| n < *w) {
            best.pop();
            best.push(n);
        }
    }
    best.into_sorted_vec()
}
