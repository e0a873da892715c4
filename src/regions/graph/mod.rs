//! `quantum_graph/`: nodes and edges as records, kept consistent. A node is
//! `nodes/<type>/<id>.json` (a JSON object), an edge `edges/<relation>/<a>_to_<b>.json`
//! (see `body`); ids are unique across types (`names`). The region holds the graph in
//! memory (`index`, kept in step by `track`) and admits only changes that keep every
//! edge's ends existing: an edge whose end is missing is refused (`EINVAL`), a node with
//! edges cannot be removed or renamed to another id (`EBUSY`) — writing its name to
//! `quantum_graph/remove_with_edges` removes it with its edges in one atomic step
//! (`cascade`). Each change is checked and made under the region's hold, and the log
//! keeps changes in order, so no prefix of them — what a crash leaves — holds a dangling
//! edge. `neighbourhoods/<id>.json` shows each node's edges (`views`).

mod body;
mod cascade;
pub mod dimensions;
mod entangle;
mod index;
mod names;
mod reader;
mod space;
mod track;
mod upkeep;
mod views;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::Attr;
use crate::error::{Error, Result};
use crate::regions::{Cx, Dir, Generated, Naming, Region, Rule, Sink, Tag};

use self::entangle::Entangled;
use self::index::Graph;
use self::space::Space;
use crate::regions::config::Watched;
use crate::regions::entanglement::settings::{self as rules, Settings as Rules};
use crate::regions::temporal::time;

pub const TAG: Tag = 10;
pub const TOP: &str = "quantum_graph";
pub const NODES: &str = "quantum_graph/nodes";
pub const EDGES: &str = "quantum_graph/edges";
pub const NEIGHBOURHOODS: &str = "quantum_graph/neighbourhoods";
pub const DIMENSIONS: &str = "quantum_graph/dimensions";
pub const ENTANGLEMENTS: &str = "quantum_graph/entanglements";
/// The control file: each line written names a node to remove with its edges.
pub const REMOVE_WITH_EDGES: &str = "remove_with_edges";

/// `strong_correlations.erl` as JSON (`islabdb correlations FILE`): its pairs by inode.
pub fn correlations_json(bytes: &[u8]) -> Result<serde_json::Value> {
    let pairs = entangle::decode(bytes)?;
    Ok(serde_json::json!(
        pairs
            .iter()
            .map(|p| serde_json::json!({
                "a": p.a,
                "b": p.b,
                "strength": p.strength,
                "shared_neighbours": p.reasons & entangle::SHARED_NEIGHBOURS != 0,
                "similar": p.reasons & entangle::SIMILAR != 0,
            }))
            .collect::<Vec<_>>()
    ))
}

/// What the region's requests share.
#[derive(Default)]
pub struct Shared {
    /// Held from a check of names until the change is made (`Region::hold`).
    hold: Mutex<()>,
    graph: Mutex<Graph>,
    space: Mutex<Space>,
    entangled: Mutex<Entangled>,
    /// The graph changed since the entangled pairs were computed.
    changed: AtomicBool,
    /// Entangled partners prefetched when a node is opened, as the rules said at the last
    /// tick (an open does not read the rules' file).
    prefetch: AtomicUsize,
    /// A pass of `upkeep` is running.
    upkeep: AtomicBool,
}

impl Shared {
    fn graph(&self) -> MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn space(&self) -> MutexGuard<'_, Space> {
        self.space.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entangled(&self) -> MutexGuard<'_, Entangled> {
        self.entangled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A node went: out of the index too.
    fn node_gone(&self, cx: &Cx<'_>, ino: u64) {
        if let Some(dims) = cx.seed_dir(DIMENSIONS) {
            self.space().removed(cx, dims.ino, ino);
        }
    }

    fn hold(&self) -> MutexGuard<'_, ()> {
        self.hold.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct QuantumGraph {
    shared: Arc<Shared>,
    rules: Watched<Rules>,
}

pub use self::reader::{Reader, Way};

impl QuantumGraph {
    /// A handle on the graph for another region's queries.
    pub fn reader(&self) -> Reader {
        Reader(self.shared.clone())
    }
}

impl Default for QuantumGraph {
    fn default() -> Self {
        QuantumGraph {
            shared: Arc::default(),
            rules: Watched::new(rules::FILE, Rules::parse),
        }
    }
}

/// Where a directory is in the graph.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    Top,
    /// `nodes/`, holding one directory per type.
    Types,
    /// `edges/`, holding one directory per relation.
    Relations,
    Type(String),
    Relation(String),
    Neighbourhoods,
    Other,
}

fn place(cx: &Cx<'_>, dir: &Dir) -> Place {
    if let Some(seed) = dir.seed {
        match seed.path {
            TOP => return Place::Top,
            NODES => return Place::Types,
            EDGES => return Place::Relations,
            NEIGHBOURHOODS => return Place::Neighbourhoods,
            _ => {}
        }
    }
    let path = cx.store.path_of(dir.ino);
    match path.as_slice() {
        [top, mid, name] if top == TOP.as_bytes() => {
            let name = String::from_utf8_lossy(name).into_owned();
            match mid.as_slice() {
                b"nodes" => Place::Type(name),
                b"edges" => Place::Relation(name),
                _ => Place::Other,
            }
        }
        _ => Place::Other,
    }
}

impl Region for QuantumGraph {
    fn name(&self) -> &'static str {
        "graph"
    }

    fn tag(&self) -> Tag {
        TAG
    }

    fn data_format(&self) -> &'static str {
        "Graph nodes and edges: JSON objects, edges only between existing nodes"
    }

    fn purpose_of_user_dir(&self, name: &str, _attr: &Attr) -> String {
        format!("Graph collection '{name}'")
    }

    /// By the name alone: an id cannot hold `_to_`, so `<a>_to_<b>.json` is an edge and
    /// any other `.json` a node (`admit` refuses each in the other's directories).
    fn rule(&self, _dir: &Dir, name: &[u8]) -> Option<Rule> {
        if !name.ends_with(b".json") {
            return None;
        }
        Some(match names::edge_ends(name) {
            Some(_) => body::rule("graph-edge", "edge", |v| body::parse_edge(v).map(|_| ())),
            None => body::rule("graph-node", "node", body::check_node),
        })
    }

    fn hold(&self) -> Option<MutexGuard<'_, ()>> {
        Some(self.shared.hold())
    }

    fn admit(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8], change: Naming<'_>) -> Result<()> {
        let res = track::admit(&self.shared, &place(cx, dir), name, change, |d| {
            place(cx, d)
        });
        if let Err(e) = &res {
            log::warn!(
                "{}/{}: refused: {e}",
                crate::namespace::join(&cx.store.path_of(dir.ino)),
                String::from_utf8_lossy(name)
            );
        }
        res
    }

    fn entry_changed(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8]) {
        self.shared.changed.store(true, Ordering::Relaxed);
        if let Some(gone) = track::entry_changed(&self.shared, cx, dir, &place(cx, dir), name) {
            self.shared.node_gone(cx, gone);
        }
    }

    /// A node's content changed: so may have its coordinates; an edge's: its strength.
    fn committed(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8]) {
        let Ok(file) = cx.store.lookup(dir.ino, name) else {
            return;
        };
        self.shared.changed.store(true, Ordering::Relaxed);
        match place(cx, dir) {
            Place::Type(_) if names::node_id(name).is_some() => {
                if let Some(dims) = cx.seed_dir(DIMENSIONS) {
                    self.shared.space().committed(cx, dims.ino, file.ino);
                }
            }
            Place::Relation(relation) => {
                track::edge_committed(&self.shared, cx, &relation, name, file.ino);
            }
            _ => {}
        }
    }

    fn views(&self, _cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        if dir.is_seed(TOP) {
            return vec![REMOVE_WITH_EDGES.to_string()];
        }
        if dir.is_seed(NEIGHBOURHOODS) {
            return views::names(&self.shared.graph());
        }
        if dir.is_seed(DIMENSIONS) {
            return vec![space::CLUSTERS.to_string()];
        }
        if dir.is_seed(ENTANGLEMENTS) {
            return vec![
                entangle::MAP.to_string(),
                entangle::CORRELATIONS.to_string(),
            ];
        }
        Vec::new()
    }

    /// A node's neighbourhood, found without listing every node's.
    fn resolves(&self, _cx: &Cx<'_>, dir: &Dir, name: &str) -> bool {
        dir.is_seed(NEIGHBOURHOODS)
            && name
                .strip_suffix(".json")
                .is_some_and(|id| self.shared.graph().node(id).is_some())
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        if dir.is_seed(TOP) && name == REMOVE_WITH_EDGES {
            return Some(Generated::Document(Vec::new()));
        }
        if dir.is_seed(DIMENSIONS) && name == space::CLUSTERS {
            // Recomputed by maintenance, without the engine's state moving.
            let graph = self.shared.graph();
            let v = self
                .shared
                .space()
                .clusters_json(|ino| graph.id_of(ino).map(str::to_string));
            return Some(Generated::Fresh(crate::regions::pretty(&v)));
        }
        if dir.is_seed(ENTANGLEMENTS) {
            // Recomputed by maintenance, without the engine's state moving.
            let content = match name {
                entangle::MAP => {
                    let graph = self.shared.graph();
                    let rules = self.rules.get(cx).graph;
                    let tier = |ino| cx.store.getattr(ino).ok().map(|a| a.tier);
                    crate::regions::pretty(&entangle::map_json(
                        &self.shared.entangled(),
                        (&graph, &tier),
                        &rules,
                    ))
                }
                entangle::CORRELATIONS => entangle::encode(&self.shared.entangled().pairs),
                _ => return None,
            };
            return Some(Generated::Fresh(content));
        }
        if !dir.is_seed(NEIGHBOURHOODS) {
            return None;
        }
        let id = name.strip_suffix(".json")?;
        // Effective strengths decay with time, without the engine's state moving.
        let graph = self.shared.graph();
        let near = graph
            .node(id)
            .map(|n| self.shared.space().nearest(n.ino, views::NEAREST))
            .unwrap_or_default();
        views::neighbourhood(&graph, id, &near).map(Generated::Fresh)
    }

    /// Nodes and edges are stored where users choose: per type, per relation, per record.
    fn tier_is_chosen(&self, cx: &Cx<'_>, dir: &Dir) -> bool {
        matches!(
            place(cx, dir),
            Place::Types | Place::Relations | Place::Type(_) | Place::Relation(_)
        )
    }

    fn takes_writes(&self, _cx: &Cx<'_>, dir: &Dir, name: &[u8]) -> bool {
        dir.is_seed(TOP) && name == REMOVE_WITH_EDGES.as_bytes()
    }

    fn sink(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8], _truncate: bool) -> Result<Box<dyn Sink>> {
        if !self.takes_writes(cx, dir, name) {
            return Err(Error::ReadOnlyView);
        }
        Ok(Box::new(cascade::Cascade::new(self.shared.clone())))
    }

    /// Reads the graph from its files, and the nodes' coordinates.
    fn start(&self, cx: &Cx<'_>) -> Result<()> {
        track::load(&self.shared, cx)?;
        let nodes: Vec<u64> = self.shared.graph().nodes().map(|(_, n)| n.ino).collect();
        if let Some(dims) = cx.seed_dir(DIMENSIONS) {
            *self.shared.space() = Space::load(cx, dims.ino, &nodes);
        }
        Ok(())
    }

    /// Maintenance: the index, the clusters (`upkeep`) and the entangled pairs, once the
    /// graph changed.
    fn tick(&self, cx: &Cx<'_>) {
        upkeep::start(&self.shared);
        let rules = self.rules.get(cx).graph;
        self.shared
            .prefetch
            .store(rules.prefetch_partners as usize, Ordering::Relaxed);
        let due = self
            .shared
            .entangled()
            .computed_at
            .is_none_or(|at| time::now() - at >= rules.interval_secs as i64 * 1_000_000);
        if due && self.shared.changed.swap(false, Ordering::Relaxed) {
            let graph = self.shared.graph();
            let e = entangle::compute(&graph, &self.shared.space(), &rules, time::now());
            drop(graph);
            *self.shared.entangled() = e;
        }
    }

    /// Opening a node brings its entangled partners into the cache.
    fn observe(&self, cx: &Cx<'_>, event: &crate::regions::Event<'_>) {
        let crate::regions::Event::Read { ino, tag } = *event else {
            return;
        };
        if tag != TAG {
            return;
        }
        let n = self.shared.prefetch.load(Ordering::Relaxed);
        let partners: Vec<u64> = self.shared.entangled().partners(ino).to_vec();
        for p in partners.into_iter().take(n) {
            cx.store.prefetch(p);
        }
    }
}
