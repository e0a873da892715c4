//! Where the nodes sit (`dimensions/`): each node's coordinates (its own, or derived from
//! its content) in the k-nearest index, kept in step with every commit and removal of a
//! node and logged, one entry per change, to `dimensions/coordinate_index.btree` (read
//! back at start, rewritten whole once dead entries outnumber live ones).
//!
//! **Each node's nearest are kept** (`similar`), so that reading a neighbourhood costs no
//! search: a commit lists the node's nearest from the keys its insert met, and offers
//! itself to each of those keys' lists, where it takes the place of the farthest if it is
//! nearer. Without a graph the insert meets every key, so the lists are exact, as a scan
//! would give them; with one they are as good as the insert's search (its
//! `ef_construction` candidates), measured by the bench's recall. A node that goes (or
//! moves) leaves the lists it was in short: those are searched again when read, and by
//! `upkeep`. With a graph a commit's insert waits to be linked (`Index::upsert_met`), and
//! so do its list and its offers: `upkeep` links it and makes them (`link_deferred`).
//! Meanwhile a neighbourhood read adds the nodes waiting to the list (exactly, by a scan
//! of them), so a node is in its neighbours' neighbourhoods as soon as it is committed.
//! The same lists make the similar pairs (`entangle`). The slow work — the
//! index's proximity graph, the clusters, the lists of nodes not listed since the start
//! or left short — is done by `upkeep` on copies, away from the lock every commit and
//! read takes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::dimensions::clusters::{self, Clustering};
use super::dimensions::coords;
use super::dimensions::index::{Build, Index, Linked, Params};
use super::dimensions::index_file::{self, Entry};
use super::dimensions::metric::Metric;
use crate::engine::Change;
use crate::error::Result;
use crate::regions::Cx;
use crate::regions::temporal::time::{self, Micros};

pub const CLUSTERS: &str = "similarity_clusters.json";
/// Clusters are recomputed at most this often while nodes change.
const RECLUSTER_EVERY: Duration = Duration::from_secs(30);
/// Nearest nodes kept per node (a neighbourhood lists as many).
pub const SIMILAR_KEPT: usize = 5;
/// Keys a node whose insert was linked without its list (by a graph built or dropped
/// meanwhile) is offered to: those a search finds nearest.
const OFFERED_AFTER_SEARCH: usize = 64;

pub struct Space {
    index: Index,
    /// Entries in the file, live and dead.
    entries: usize,
    /// Nodes changed since the clusters were computed.
    changed: bool,
    clustered: Option<(Instant, Micros, Clustering)>,
    /// Each listed node's nearest nodes (`SIMILAR_KEPT`), with their distances, nearest
    /// first.
    similar: HashMap<u64, Vec<(u64, f32)>>,
    /// The nodes whose lists hold a node.
    listed_by: HashMap<u64, Vec<u64>>,
    /// Nodes whose lists lost a node that went or moved: to be searched again.
    short: HashSet<u64>,
    /// Nodes committed whose insert waits to be linked: their list, and their offers to
    /// the others', come then.
    deferred: HashSet<u64>,
    /// At least the farthest distance in any whole list (infinite while one holds fewer
    /// than `SIMILAR_KEPT`): a newcomer farther than this joins no list, which spares a
    /// look at each list of a scan's thousands of keys. Raised as lists are set, lowered
    /// by `upkeep` (`tighten`) after a raise (`loose`): a raise to infinity by the first
    /// short lists must not last.
    far_bound: f32,
    loose: bool,
}

impl Default for Space {
    fn default() -> Self {
        Space {
            index: Index::new(Metric::Cosine),
            entries: 0,
            changed: true,
            clustered: None,
            similar: HashMap::new(),
            listed_by: HashMap::new(),
            short: HashSet::new(),
            deferred: HashSet::new(),
            far_bound: f32::INFINITY,
            loose: true,
        }
    }
}

/// A node's coordinates from its stored content (`None`: not written yet).
fn coordinates_of(cx: &Cx<'_>, ino: u64) -> Result<Option<Vec<f32>>> {
    let attr = cx.store.getattr(ino)?;
    let bytes = cx.store.read(ino, 0, attr.size as usize)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| crate::error::Error::InvalidRecord(e.to_string()))?;
    coords::of_node(&v).map(Some)
}

/// Puts `(n, d)` in `list` (nearest first, `SIMILAR_KEPT` long once full) if it is among
/// the nearest, after entries at the same distance, as a scan in slot order would put it;
/// whether it went in (the list may then be one too long).
fn join(list: &mut Vec<(u64, f32)>, n: u64, d: f32) -> bool {
    if list.len() >= SIMILAR_KEPT && list.last().is_some_and(|&(_, far)| d >= far) {
        return false;
    }
    list.insert(list.partition_point(|&(_, e)| e <= d), (n, d));
    true
}

/// The farthest distance a newcomer must beat to join `list`: infinite until it is full.
fn farthest(list: &[(u64, f32)]) -> f32 {
    match list.len() {
        SIMILAR_KEPT => list.last().map_or(f32::INFINITY, |&(_, d)| d),
        _ => f32::INFINITY,
    }
}

impl Space {
    /// The index from its file when that holds exactly `nodes`, else built from the nodes
    /// themselves (and the file rewritten).
    pub fn load(cx: &Cx<'_>, dir: u64, nodes: &[u64]) -> Space {
        let mut space = Space::default();
        let from_file = super::super::read_own(cx, dir, index_file::FILE).and_then(|b| {
            b.map(|b| index_file::load(&b, Metric::Cosine, Params::default()))
                .transpose()
        });
        let mut keys: Vec<u64> = nodes.to_vec();
        keys.sort_unstable();
        match from_file {
            Ok(Some((index, loaded))) => {
                let mut held: Vec<u64> = index.iter().map(|(k, _)| k).collect();
                held.sort_unstable();
                if held == keys && !loaded.torn {
                    space.index = index;
                    space.entries = loaded.entries;
                    return space;
                }
                log::info!(
                    "{}: {} nodes indexed, {} stored: rebuilt from the nodes",
                    index_file::FILE,
                    held.len(),
                    keys.len()
                );
            }
            Ok(None) => {}
            Err(e) => log::warn!("{}: {e}; rebuilt from the nodes", index_file::FILE),
        }
        for ino in keys {
            match coordinates_of(cx, ino) {
                Ok(Some(v)) => {
                    if let Err(e) = space.index.upsert(ino, &v) {
                        log::warn!("node {ino} left out of the index: {e}");
                    }
                }
                Ok(None) => {}
                Err(e) => log::warn!("node {ino} left out of the index: {e}"),
            }
        }
        space.rewrite(cx, dir);
        space
    }

    /// Writes the file whole from the index (an empty index keeps no file).
    fn rewrite(&mut self, cx: &Cx<'_>, dir: u64) {
        let res = match self.index.is_empty() {
            true => super::super::keep_file(cx, dir, index_file::FILE, None),
            false => index_file::compact(self.index.iter())
                .and_then(|bytes| cx.store.put(dir, index_file::FILE.as_bytes(), &bytes)),
        };
        match res {
            Ok(()) => self.entries = self.index.len(),
            Err(e) => log::warn!("{}: {e}", index_file::FILE),
        }
    }

    /// Logs one change to the file (made whole first if it is missing).
    fn log(&mut self, cx: &Cx<'_>, dir: u64, entry: Entry) {
        let file = match cx.store.lookup(dir, index_file::FILE.as_bytes()) {
            Ok(a) => a.ino,
            Err(_) => return self.rewrite(cx, dir),
        };
        let mut bytes = Vec::new();
        let res = index_file::encode_entry(&entry, &mut bytes).and_then(|()| {
            cx.store
                .apply(vec![Change::Append { ino: file, bytes }], false)
        });
        if let Err(e) = res {
            log::warn!("{}: {e}", index_file::FILE);
            return;
        }
        self.entries += 1;
        if index_file::needs_compaction(self.entries, self.index.len()) {
            self.rewrite(cx, dir);
        }
    }

    /// A node's content was committed.
    pub fn committed(&mut self, cx: &Cx<'_>, dir: u64, ino: u64) {
        match coordinates_of(cx, ino) {
            Ok(Some(v)) => match self.upsert(ino, &v) {
                Ok(true) => self.log(
                    cx,
                    dir,
                    Entry::Upsert {
                        key: ino,
                        vector: v,
                    },
                ),
                Ok(false) => {}
                Err(e) => log::warn!("node {ino} left out of the index: {e}"),
            },
            Ok(None) => self.removed(cx, dir, ino),
            Err(e) => log::warn!("node {ino} left out of the index: {e}"),
        }
    }

    /// A node went.
    pub fn removed(&mut self, cx: &Cx<'_>, dir: u64, ino: u64) {
        if self.remove(ino) {
            self.log(cx, dir, Entry::Remove { key: ino });
        }
    }

    /// Puts `ino` at `v` in the index and the lists; whether anything changed.
    fn upsert(&mut self, ino: u64, v: &[f32]) -> Result<bool> {
        let Some(linked) = self.index.upsert_met(ino, v)? else {
            return Ok(false);
        };
        self.unlist(ino);
        self.changed = true;
        // It waits until it is linked: without a graph, at once, just below.
        self.deferred.insert(ino);
        for l in linked {
            self.list_linked(l);
        }
        Ok(true)
    }

    /// A node linked into the index: its list from the keys it met, and itself offered to
    /// theirs.
    fn list_linked(&mut self, Linked { key, met }: Linked) {
        self.deferred.remove(&key);
        let mut near: Vec<(u64, f32)> = Vec::with_capacity(SIMILAR_KEPT + 1);
        for &(other, d) in &met {
            if join(&mut near, other, d) {
                near.truncate(SIMILAR_KEPT);
            }
            if d < self.far_bound {
                self.offer(other, key, d);
            }
        }
        self.set_list(key, near);
    }

    /// Links up to `n` of the inserts waiting and lists their nodes (`upkeep`'s work);
    /// whether any wait still.
    pub fn link_deferred(&mut self, n: usize) -> bool {
        for l in self.index.link_pending(n) {
            self.list_linked(l);
        }
        let stray: Vec<u64> = (self.deferred.iter().copied())
            .filter(|&k| !self.index.is_unlinked(k))
            .take(n)
            .collect();
        for key in stray {
            let met = (self.index.get(key))
                .and_then(|v| (self.index.nearest_others(key, v, OFFERED_AFTER_SEARCH)).ok());
            match met {
                Some(met) => self.list_linked(Linked { key, met }),
                None => _ = self.deferred.remove(&key),
            }
        }
        !self.deferred.is_empty()
    }

    /// Takes `ino` out of the index and the lists; whether it was indexed.
    fn remove(&mut self, ino: u64) -> bool {
        self.unlist(ino);
        self.deferred.remove(&ino);
        let was = self.index.remove(ino);
        self.changed |= was;
        was
    }

    /// `ino`'s list goes, and `ino` leaves every list it was in (those are left short).
    fn unlist(&mut self, ino: u64) {
        for other in self.listed_by.remove(&ino).unwrap_or_default() {
            if let Some(list) = self.similar.get_mut(&other) {
                list.retain(|&(n, _)| n != ino);
                self.short.insert(other);
            }
        }
        self.drop_list(ino);
    }

    /// `ino`'s own list goes (short or not); the nodes in it are no longer listed by it.
    fn drop_list(&mut self, ino: u64) {
        self.short.remove(&ino);
        for (n, _) in self.similar.remove(&ino).unwrap_or_default() {
            self.not_listed_by(n, ino);
        }
    }

    fn not_listed_by(&mut self, n: u64, by: u64) {
        if let Some(by_list) = self.listed_by.get_mut(&n) {
            by_list.retain(|&b| b != by);
            if by_list.is_empty() {
                self.listed_by.remove(&n);
            }
        }
    }

    /// `ino`'s list is `near` (nearest first); it is no longer short.
    fn set_list(&mut self, ino: u64, near: Vec<(u64, f32)>) {
        self.drop_list(ino);
        for &(n, _) in &near {
            self.listed_by.entry(n).or_default().push(ino);
        }
        let far = farthest(&near);
        if far > self.far_bound {
            self.far_bound = far;
            self.loose = true;
        }
        self.similar.insert(ino, near);
    }

    /// Makes `far_bound` the farthest distance of the whole lists again.
    pub fn tighten(&mut self) {
        self.far_bound = self
            .similar
            .iter()
            .filter(|(ino, _)| !self.short.contains(ino))
            .map(|(_, list)| farthest(list))
            .fold(f32::NEG_INFINITY, f32::max);
        self.loose = false;
    }

    /// `newcomer`, at distance `d` from `ino`, joins `ino`'s list if it is among the
    /// nearest; after nodes at the same distance, as a scan in slot order would put it.
    fn offer(&mut self, ino: u64, newcomer: u64, d: f32) {
        if self.short.contains(&ino) {
            return;
        }
        let Some(list) = self.similar.get_mut(&ino) else {
            return;
        };
        if !join(list, newcomer, d) {
            return;
        }
        let dropped = (list.len() > SIMILAR_KEPT).then(|| list.pop()).flatten();
        if let Some((n, _)) = dropped {
            self.not_listed_by(n, ino);
        }
        self.listed_by.entry(newcomer).or_default().push(ino);
    }

    /// The `k` nodes nearest `ino` (itself left out), with their distance: its list when
    /// that is whole (with the nodes waiting to be linked), else a search.
    pub fn nearest(&self, ino: u64, k: usize) -> Vec<(u64, f32)> {
        if k <= SIMILAR_KEPT
            && !self.short.contains(&ino)
            && let Some(list) = self.similar.get(&ino)
        {
            let mut near: Vec<(u64, f32)> = list.iter().copied().take(k).collect();
            for (n, d) in self.index.unlinked_nearest(ino, k) {
                join(&mut near, n, d);
                near.truncate(k);
            }
            return near;
        }
        self.search(ino, k)
    }

    fn search(&self, ino: u64, k: usize) -> Vec<(u64, f32)> {
        self.index
            .get(ino)
            .and_then(|v| self.index.nearest_others(ino, v, k).ok())
            .unwrap_or_default()
    }

    /// A space holding `vectors`, none of their nearest noted (as after a start).
    #[cfg(test)]
    pub fn of(vectors: &[(u64, Vec<f32>)]) -> Space {
        let mut space = Space::default();
        for (ino, v) in vectors {
            space
                .index
                .upsert(*ino, v)
                .expect("test vectors of one length");
        }
        space
    }

    /// The `k` nodes nearest the vector `v`, with their distance.
    pub fn nearest_to(&self, v: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        self.index.nearest(v, k)
    }

    /// Each listed node's nearest, as kept (a short list has lost a node).
    pub fn similar(&self) -> &HashMap<u64, Vec<(u64, f32)>> {
        &self.similar
    }

    /// Up to `max` indexed nodes whose list is short, or missing (since the start).
    pub fn unnoted(&self, max: usize) -> Vec<u64> {
        let mut out: Vec<u64> = self.short.iter().copied().take(max).collect();
        out.extend(
            self.index
                .iter()
                .map(|(k, _)| k)
                .filter(|k| !self.similar.contains_key(k) && !self.deferred.contains(k))
                .take(max - out.len()),
        );
        out
    }

    /// Lists the nearest of `inos` (those still indexed), by a search.
    pub fn note_nearest(&mut self, inos: &[u64]) {
        for &ino in inos {
            if self.index.get(ino).is_some() {
                let near = self.search(ino, SIMILAR_KEPT);
                self.set_list(ino, near);
            } else {
                self.drop_list(ino);
            }
        }
    }

    /// The index's proximity graph to build, if one is wanted (see `Index::start_build`).
    pub fn index_build(&self) -> Option<Build> {
        self.index.start_build()
    }

    /// What changed in the index since `b`'s copy (`Index::changes_since`).
    pub fn index_changes(&self, b: &Build) -> Option<Vec<(u64, Option<Vec<f32>>)>> {
        self.index.changes_since(b)
    }

    pub fn install_index(&mut self, b: Build) {
        self.index.install(b);
    }

    /// The coordinates to cluster, if nodes changed and the last clusters are old enough.
    pub fn cluster_input(&mut self) -> Option<Vec<(u64, Vec<f32>)>> {
        if !self.recluster_due() {
            return None;
        }
        self.changed = false;
        Some(self.index.iter().map(|(k, v)| (k, v.to_vec())).collect())
    }

    /// Clusters `points` (from `cluster_input`): slow, so called without the lock.
    pub fn cluster(points: Vec<(u64, Vec<f32>)>) -> Option<Clustering> {
        clusters::cluster(points, Metric::Cosine, None)
            .map_err(|e| log::warn!("{CLUSTERS}: {e}"))
            .ok()
    }

    pub fn set_clusters(&mut self, c: Clustering) {
        self.clustered = Some((Instant::now(), time::now(), c));
    }

    /// Whether `upkeep` has anything to do (nodes waiting to be linked have no list yet,
    /// so the last test counts them).
    pub fn upkeep_due(&self) -> bool {
        self.recluster_due()
            || self.index.wants_graph()
            || !self.short.is_empty()
            || self.loose
            || self.similar.len() < self.index.len()
    }

    fn recluster_due(&self) -> bool {
        self.changed
            && self
                .clustered
                .as_ref()
                .is_none_or(|(at, ..)| at.elapsed() >= RECLUSTER_EVERY)
    }

    /// The clusters (members by `name`), and what the index is now: its size, whether its
    /// answers are approximate, and how many nodes wait to be linked.
    pub fn clusters_json(&self, name: impl Fn(u64) -> Option<String>) -> Value {
        let index = serde_json::json!({
            "nodes": self.index.len(),
            "search": if self.index.is_approximate() { "approximate (HNSW)" } else { "exact" },
            "waiting_to_be_linked": self.index.unlinked(),
            "distance": "cosine",
        });
        let Some((_, at, c)) = &self.clustered else {
            return serde_json::json!({ "computed_at": null, "clusters": [], "index": index });
        };
        let mut v = clusters::to_json(c);
        if let Some(list) = v.get_mut("clusters").and_then(Value::as_array_mut) {
            for cl in list {
                if let Some(members) = cl.get_mut("members").and_then(Value::as_array_mut) {
                    for m in members.iter_mut() {
                        if let Some(id) = m.as_u64().and_then(&name) {
                            *m = Value::String(id);
                        }
                    }
                }
            }
        }
        v["computed_at"] = Value::String(time::format_rfc3339(*at));
        v["index"] = index;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::graph::dimensions::tests::random_vec;
    use crate::rng::SplitMix64;

    type Near = Vec<(u64, f32)>;

    /// The whole lists (those no removal left short) and the exact answer for each.
    fn whole_lists(space: &Space) -> Vec<(Near, Near)> {
        let keys: Vec<u64> = space.index.iter().map(|(k, _)| k).collect();
        keys.into_iter()
            .filter(|k| !space.short.contains(k))
            .filter_map(|k| {
                let list = space.similar.get(&k)?.clone();
                let v = space.index.get(k)?;
                let mut exact = space.index.exact_nearest(v, SIMILAR_KEPT + 1).ok()?;
                exact.retain(|&(n, _)| n != k);
                exact.truncate(SIMILAR_KEPT);
                Some((list, exact))
            })
            .collect()
    }

    /// Random inserts, moves, unchanged commits and removals below the graph's size: every
    /// list kept whole equals a scan's answer, order and distances included, and reading a
    /// neighbourhood answers it without a search.
    #[test]
    fn kept_lists_are_exact_without_a_graph() {
        let mut rng = SplitMix64::new(77);
        let mut space = Space::default();
        let mut vectors: HashMap<u64, Vec<f32>> = HashMap::new();
        for step in 0..3_000u64 {
            let key = rng.below(2_000) as u64;
            match rng.below(10) {
                0..=5 => {
                    let v = random_vec(&mut rng, 8);
                    assert!(
                        space.upsert(key, &v).unwrap(),
                        "a new vector changes the index"
                    );
                    vectors.insert(key, v);
                }
                6 => {
                    if let Some(v) = vectors.get(&key) {
                        assert!(
                            !space.upsert(key, v).unwrap(),
                            "the same vector changes nothing"
                        );
                    }
                }
                _ => assert_eq!(space.remove(key), vectors.remove(&key).is_some()),
            }
            if step % 100 == 99 {
                let lists = whole_lists(&space);
                assert!(lists.len() * 2 > vectors.len(), "most lists are whole");
                for (list, exact) in &lists {
                    assert_eq!(list, exact);
                }
                let listed: usize = space.listed_by.values().map(Vec::len).sum();
                let held: usize = space.similar.values().map(Vec::len).sum();
                assert_eq!(listed, held, "each listing is known to the node listed");
                // upkeep's work: the short lists searched again, then all are whole.
                let todo = space.unnoted(usize::MAX);
                space.note_nearest(&todo);
                space.tighten();
                assert!(space.short.is_empty() && space.similar.len() == vectors.len());
                assert!(whole_lists(&space).iter().all(|(l, e)| l == e));
            }
        }
    }

    /// A space of 600 random vectors of 16 with its graph built, inserts waiting at most
    /// `unlinked_max`.
    fn with_graph(rng: &mut SplitMix64, unlinked_max: usize) -> Space {
        let params = Params {
            approx_from: 500,
            exact_below: 400,
            unlinked_max,
            ..Params::default()
        };
        let mut space = Space {
            index: Index::with_params(Metric::Cosine, params),
            ..Space::default()
        };
        for key in 0..600u64 {
            space.upsert(key, &random_vec(rng, 16)).unwrap();
        }
        space.index.settle();
        while space.link_deferred(64) {}
        space.tighten();
        space
    }

    /// A node whose insert waits to be linked is in its neighbours' neighbourhoods, and
    /// they in its, as soon as it is committed; a node moved or removed meanwhile is not.
    #[test]
    fn a_node_waiting_to_be_linked_is_a_neighbour_at_once() {
        let mut space = with_graph(&mut SplitMix64::new(79), 4_096);
        let a = space.index.get(7).unwrap().to_vec();
        let twin: Vec<f32> = a.iter().map(|x| x * 1.001).collect();
        assert!(space.upsert(1_000, &twin).unwrap());
        assert!(space.index.is_unlinked(1_000) && space.deferred.contains(&1_000));
        assert!(
            !space.similar.contains_key(&1_000),
            "its list comes when it is linked"
        );
        assert_eq!(space.nearest(7, 5)[0].0, 1_000);
        assert_eq!(space.nearest(7, 1).len(), 1);
        assert_eq!(space.nearest(1_000, 5)[0].0, 7);
        assert!(
            space.unnoted(usize::MAX).is_empty(),
            "upkeep links it, not a search"
        );
        space.changed = false;
        assert!(space.upkeep_due(), "a node waits: upkeep is due");

        assert!(space.upsert(1_001, &twin).unwrap());
        assert!(space.remove(1_000));
        assert!(space.nearest(7, 5).iter().all(|&(n, _)| n != 1_000));
        assert_eq!(space.nearest(7, 5)[0].0, 1_001);
        assert!(!space.link_deferred(64), "nothing waits");
        assert_eq!(space.similar[&1_001][0].0, 7);
        assert_eq!(
            space.similar[&7][0].0, 1_001,
            "offered to its neighbours' lists"
        );
        assert!(!space.similar.contains_key(&1_000));
    }

    /// The lists of nodes linked later are those of nodes linked at once, and so are
    /// every other list their offers changed.
    #[test]
    fn lists_made_when_linked_are_those_made_at_commit() {
        let mut now = with_graph(&mut SplitMix64::new(79), 0);
        let mut later = with_graph(&mut SplitMix64::new(79), 4_096);
        let mut rng = SplitMix64::new(80);
        for key in 600..1_500u64 {
            let v = random_vec(&mut rng, 16);
            now.upsert(key, &v).unwrap();
            later.upsert(key, &v).unwrap();
        }
        assert_eq!(later.deferred.len(), 900);
        while later.link_deferred(5) {}
        assert_eq!(now.similar, later.similar);
    }

    /// With a graph the lists are as good as the inserts' searches: recall@5 against a
    /// scan, over nodes inserted after the graph was built.
    #[test]
    fn kept_lists_follow_the_graph_closely() {
        let mut rng = SplitMix64::new(78);
        let mut space = with_graph(&mut rng, 4_096);
        assert!(space.index.is_approximate());
        for key in 600..3_000u64 {
            space.upsert(key, &random_vec(&mut rng, 16)).unwrap();
        }
        assert_eq!(
            whole_lists(&space).len(),
            600,
            "the inserts wait to be linked"
        );
        while space.link_deferred(64) {}
        let lists = whole_lists(&space);
        assert_eq!(lists.len(), 3_000, "no removal: every list is whole");
        let hits: usize = lists
            .iter()
            .map(|(l, e)| l.iter().filter(|x| e.iter().any(|y| y.0 == x.0)).count())
            .sum();
        let recall = hits as f64 / (lists.len() * SIMILAR_KEPT) as f64;
        println!("kept lists with a graph: recall@5 {recall:.3}");
        assert!(recall >= 0.95, "recall@5 {recall}");
    }
}
