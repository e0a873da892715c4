//! The graph as the region holds it in memory: nodes by id, edges by their ends. Built
//! from the stored files at start, and kept in step with them by every change of a
//! name in the graph's directories (under the region's hold, so that what a check saw
//! is what the next change meets).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::body::Edge;
use crate::regions::temporal::time::Micros;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The type directory it is in.
    pub kind: String,
    pub ino: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EdgeKey {
    pub relation: String,
    pub a: String,
    pub b: String,
}

impl EdgeKey {
    pub fn new(relation: &str, a: &str, b: &str) -> EdgeKey {
        EdgeKey {
            relation: relation.to_string(),
            a: a.to_string(),
            b: b.to_string(),
        }
    }
}

/// A stored edge: its inode, and what it says (with its last commit's time) once read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stored {
    pub ino: u64,
    pub body: Option<(Edge, Micros)>,
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    /// Each node's id by its inode.
    ids: HashMap<u64, String>,
    edges: BTreeMap<EdgeKey, Stored>,
    /// Each node's edges, either way.
    touching: HashMap<String, BTreeSet<EdgeKey>>,
}

impl Graph {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub fn nodes(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The id of the node stored at `ino`.
    pub fn id_of(&self, ino: u64) -> Option<&str> {
        self.ids.get(&ino).map(String::as_str)
    }

    pub fn set_node(&mut self, id: &str, kind: &str, ino: u64) {
        let node = Node {
            kind: kind.to_string(),
            ino,
        };
        if let Some(old) = self.nodes.insert(id.to_string(), node) {
            self.ids.remove(&old.ino);
        }
        self.ids.insert(ino, id.to_string());
    }

    /// Forgets node `id` if it is the one of type `kind`; returns its inode.
    pub fn remove_node(&mut self, id: &str, kind: &str) -> Option<u64> {
        if self.nodes.get(id).is_none_or(|n| n.kind != kind) {
            return None;
        }
        let n = self.nodes.remove(id)?;
        self.ids.remove(&n.ino);
        Some(n.ino)
    }

    /// Forgets every node of type `kind` (its directory went or was renamed).
    pub fn remove_type(&mut self, kind: &str) {
        let ids = &mut self.ids;
        self.nodes.retain(|_, n| {
            let keep = n.kind != kind;
            if !keep {
                ids.remove(&n.ino);
            }
            keep
        });
    }

    pub fn set_edge(&mut self, key: EdgeKey, stored: Stored) {
        for end in [&key.a, &key.b] {
            self.touching
                .entry(end.clone())
                .or_default()
                .insert(key.clone());
        }
        self.edges.insert(key, stored);
    }

    pub fn remove_edge(&mut self, key: &EdgeKey) {
        if self.edges.remove(key).is_none() {
            return;
        }
        for end in [&key.a, &key.b] {
            if let Some(set) = self.touching.get_mut(end) {
                set.remove(key);
                if set.is_empty() {
                    self.touching.remove(end);
                }
            }
        }
    }

    /// Forgets every edge of `relation` (its directory went or was renamed).
    pub fn remove_relation(&mut self, relation: &str) {
        let gone: Vec<EdgeKey> = self
            .edges
            .keys()
            .filter(|k| k.relation == relation)
            .cloned()
            .collect();
        for k in &gone {
            self.remove_edge(k);
        }
    }

    pub fn edge(&self, key: &EdgeKey) -> Option<Stored> {
        self.edges.get(key).copied()
    }

    /// The effective strength of the edge `key` at `now` (0 while it is unreadable).
    pub fn strength(&self, key: &EdgeKey, now: Micros) -> f64 {
        self.edges
            .get(key)
            .and_then(|s| s.body)
            .map_or(0.0, |(e, committed)| e.effective(now, committed))
    }

    /// The edges from or to `id`, in order.
    pub fn edges_of(&self, id: &str) -> Vec<EdgeKey> {
        self.touching
            .get(id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every edge whose end is not a node: empty whenever the region's rules held.
    pub fn dangling(&self) -> Vec<&EdgeKey> {
        self.edges
            .keys()
            .filter(|k| !self.nodes.contains_key(&k.a) || !self.nodes.contains_key(&k.b))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(r: &str, a: &str, b: &str) -> EdgeKey {
        EdgeKey::new(r, a, b)
    }

    #[test]
    fn edges_are_found_from_both_ends_and_go_with_their_relation() {
        let mut g = Graph::default();
        g.set_node("alice", "persons", 1);
        g.set_node("acme", "organizations", 2);
        g.set_node("bob", "persons", 3);
        let stored = |ino| Stored { ino, body: None };
        g.set_edge(key("works_for", "alice", "acme"), stored(10));
        g.set_edge(key("knows", "alice", "bob"), stored(11));
        assert_eq!(g.edges_of("alice").len(), 2);
        assert_eq!(g.edges_of("acme"), [key("works_for", "alice", "acme")]);
        assert!(g.dangling().is_empty());
        g.remove_relation("knows");
        assert_eq!(g.edges_of("bob"), []);
        assert_eq!(g.edge_count(), 1);
        assert_eq!(g.remove_node("acme", "persons"), None);
        assert!(g.node("acme").is_some(), "only the node of that type goes");
        assert_eq!(g.id_of(2), Some("acme"));
        g.remove_type("organizations");
        assert_eq!(g.id_of(2), None);
        assert_eq!(g.dangling(), [&key("works_for", "alice", "acme")]);
        g.remove_edge(&key("works_for", "alice", "acme"));
        assert_eq!(g.edges_of("alice"), []);
        assert!(g.dangling().is_empty());
    }
}
