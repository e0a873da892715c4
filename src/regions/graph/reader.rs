//! What another region (the query language) may ask of the graph without reading its
//! files: a node's type and inode by id, the edges at a node with their effective
//! strengths now, and the nearest nodes to a node or to a vector.

use std::sync::Arc;

use super::cascade::edge_name;
use super::{EDGES, Shared};
use crate::error::Result;
use crate::regions::temporal::time;

/// A handle on the graph region's state, shared with it.
#[derive(Clone)]
pub struct Reader(pub(super) Arc<Shared>);

/// Which edges of a node: leaving it, reaching it, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    Out,
    In,
    Both,
}

/// An edge as a query sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeAt {
    pub relation: String,
    pub from: String,
    pub to: String,
    pub strength: f64,
    /// After its decay, now.
    pub effective: f64,
    /// The edge file, from the root.
    pub path: String,
}

impl Reader {
    /// The type and inode of node `id`.
    pub fn node(&self, id: &str) -> Option<(String, u64)> {
        self.0.graph().node(id).map(|n| (n.kind.clone(), n.ino))
    }

    /// The edges at `id` of `relation` (or any), `way`, in (relation, from, to) order.
    pub fn edges(&self, id: &str, relation: Option<&str>, way: Way) -> Vec<EdgeAt> {
        let graph = self.0.graph();
        let now = time::now();
        graph
            .edges_of(id)
            .into_iter()
            .filter(|k| relation.is_none_or(|r| k.relation == r))
            .filter(|k| match way {
                Way::Out => k.a == id,
                Way::In => k.b == id,
                Way::Both => true,
            })
            .map(|k| {
                let strength = graph
                    .edge(&k)
                    .and_then(|s| s.body)
                    .map_or(0.0, |(e, _)| e.strength);
                EdgeAt {
                    effective: graph.strength(&k, now),
                    strength,
                    path: format!("{EDGES}/{}/{}", k.relation, edge_name(&k)),
                    relation: k.relation,
                    from: k.a,
                    to: k.b,
                }
            })
            .collect()
    }

    /// The `k` nodes nearest node `id` (itself left out), with their cosine distance.
    pub fn nearest_to_node(&self, id: &str, k: usize) -> Vec<(String, f32)> {
        let Some((_, ino)) = self.node(id) else {
            return Vec::new();
        };
        let near = self.0.space().nearest(ino, k);
        self.named(near)
    }

    /// The `k` nodes nearest the vector `v`, with their cosine distance.
    pub fn nearest_to_vector(&self, v: &[f32], k: usize) -> Result<Vec<(String, f32)>> {
        let near = self.0.space().nearest_to(v, k)?;
        Ok(self.named(near))
    }

    fn named(&self, near: Vec<(u64, f32)>) -> Vec<(String, f32)> {
        let graph = self.0.graph();
        near.into_iter()
            .filter_map(|(ino, d)| Some((graph.id_of(ino)?.to_string(), d)))
            .collect()
    }
}
