//! Where the nodes sit (`dimensions/`): each node's coordinates (its own, or derived from
//! its content) in the k-nearest index, kept in step with every commit and removal of a
//! node and logged, one entry per change, to `dimensions/coordinate_index.btree` (read
//! back at start, rewritten whole once dead entries outnumber live ones). Each commit also
//! notes the node's nearest nodes as the index found them then (`similar`: what similar
//! pairs are made of, without a search of every node's nearest each time they are
//! recomputed). The slow work — the index's proximity graph, the clusters, the nearest
//! of nodes no commit noted since the start — is done by `upkeep` on copies, away from
//! the lock every commit and read takes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::dimensions::clusters::{self, Clustering};
use super::dimensions::coords;
use super::dimensions::index::{Build, Index, Params};
use super::dimensions::index_file::{self, Entry};
use super::dimensions::metric::Metric;
use crate::engine::Change;
use crate::error::Result;
use crate::regions::Cx;
use crate::regions::temporal::time::{self, Micros};

pub const CLUSTERS: &str = "similarity_clusters.json";
/// Clusters are recomputed at most this often while nodes change.
const RECLUSTER_EVERY: Duration = Duration::from_secs(30);
/// Nearest nodes noted per node.
pub const SIMILAR_KEPT: usize = 5;

pub struct Space {
    index: Index,
    /// Entries in the file, live and dead.
    entries: usize,
    /// Nodes changed since the clusters were computed.
    changed: bool,
    clustered: Option<(Instant, Micros, Clustering)>,
    /// Each indexed node's nearest nodes, with their distances, as found when it was last
    /// committed (or by `upkeep` after a start).
    similar: HashMap<u64, Vec<(u64, f32)>>,
}

impl Default for Space {
    fn default() -> Self {
        Space {
            index: Index::new(Metric::Cosine),
            entries: 0,
            changed: true,
            clustered: None,
            similar: HashMap::new(),
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
            Ok(Some(v)) => match self.index.upsert_near(ino, &v, SIMILAR_KEPT) {
                Ok(near) => {
                    self.similar.insert(ino, near);
                    self.changed = true;
                    self.log(
                        cx,
                        dir,
                        Entry::Upsert {
                            key: ino,
                            vector: v,
                        },
                    );
                }
                Err(e) => log::warn!("node {ino} left out of the index: {e}"),
            },
            Ok(None) => self.removed(cx, dir, ino),
            Err(e) => log::warn!("node {ino} left out of the index: {e}"),
        }
    }

    /// A node went.
    pub fn removed(&mut self, cx: &Cx<'_>, dir: u64, ino: u64) {
        self.similar.remove(&ino);
        if self.index.remove(ino) {
            self.changed = true;
            self.log(cx, dir, Entry::Remove { key: ino });
        }
    }

    /// The `k` nodes nearest `ino` (itself left out), with their distance.
    pub fn nearest(&self, ino: u64, k: usize) -> Vec<(u64, f32)> {
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

    /// Each indexed node's nearest, as last noted.
    pub fn similar(&self) -> &HashMap<u64, Vec<(u64, f32)>> {
        &self.similar
    }

    /// Up to `max` indexed nodes whose nearest are not noted (since the start).
    pub fn unnoted(&self, max: usize) -> Vec<u64> {
        self.index
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !self.similar.contains_key(k))
            .take(max)
            .collect()
    }

    /// Notes the nearest of `inos` (those still indexed).
    pub fn note_nearest(&mut self, inos: &[u64]) {
        for &ino in inos {
            if self.index.get(ino).is_some() {
                let near = self.nearest(ino, SIMILAR_KEPT);
                self.similar.insert(ino, near);
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
    pub fn cluster(points: &[(u64, Vec<f32>)]) -> Option<Clustering> {
        let points: Vec<(u64, &[f32])> = points.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        clusters::cluster(&points, Metric::Cosine, None)
            .map_err(|e| log::warn!("{CLUSTERS}: {e}"))
            .ok()
    }

    pub fn set_clusters(&mut self, c: Clustering) {
        self.clustered = Some((Instant::now(), time::now(), c));
    }

    /// Whether `upkeep` has anything to do.
    pub fn upkeep_due(&self) -> bool {
        self.recluster_due() || self.index.wants_graph() || self.similar.len() < self.index.len()
    }

    fn recluster_due(&self) -> bool {
        self.changed
            && self
                .clustered
                .as_ref()
                .is_none_or(|(at, ..)| at.elapsed() >= RECLUSTER_EVERY)
    }

    /// The last clusters, with `name` naming a node's inode.
    pub fn clusters_json(&self, name: impl Fn(u64) -> Option<String>) -> Value {
        let Some((_, at, c)) = &self.clustered else {
            return serde_json::json!({ "computed_at": null, "clusters": [] });
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
        v["index"] = serde_json::json!({
            "nodes": self.index.len(),
            "search": if self.index.is_approximate() { "approximate (HNSW)" } else { "exact" },
            "distance": "cosine",
        });
        v
    }
}
