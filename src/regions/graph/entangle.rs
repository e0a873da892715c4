//! `entanglements/`: pairs of graph nodes that are strongly correlated, recomputed by
//! maintenance once the graph changed: nodes sharing enough neighbours (the weighted
//! Jaccard similarity of their neighbourhoods, each neighbour weighted by the strongest
//! effective — decayed — strength of an edge to it), or nodes whose coordinates are
//! nearly alike (the cosine similarity of a node and one of its 5 nearest, as the index
//! found them at the node's last commit, or after a start by maintenance; a recompute
//! then asks the index nothing). The rules are the `graph` section of
//! `configuration/entanglement_rules.json`. `entanglement_map.json` shows the pairs,
//! `strong_correlations.erl` holds them in binary (FORMAT.md); opening a node prefetches
//! its entangled partners. Nodes are co-located in the tier their type's directory is in
//! (warm unless a user chose another): a pair split across two tiers by a user's choice
//! is flagged in the map, and still prefetched together.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::index::Graph;
use super::space::Space;
use crate::engine::codec::Tier;
use crate::engine::frame;
use crate::error::{Error, Result};
use crate::regions::entanglement::settings::GraphRules;
use crate::regions::temporal::time::{self, Micros};

pub const MAP: &str = "entanglement_map.json";
pub const CORRELATIONS: &str = "strong_correlations.erl";
const MAGIC: &[u8; 8] = b"ISLGENT1";
const VERSION: u16 = 1;
const ENTRY: usize = 24;
/// Reasons, as bits of a pair's `reasons` byte.
pub const SHARED_NEIGHBOURS: u8 = 1;
pub const SIMILAR: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    pub a: u64,
    pub b: u64,
    pub strength: f32,
    pub reasons: u8,
}

#[derive(Default)]
pub struct Entangled {
    pub pairs: Vec<Pair>,
    pub computed_at: Option<Micros>,
    /// Each node's partners, strongest first.
    partners: HashMap<u64, Vec<u64>>,
    /// Nodes whose nearest were known (kept since their commit, or listed since the start).
    pub nearest_known: usize,
}

impl Entangled {
    pub fn partners(&self, ino: u64) -> &[u64] {
        self.partners.get(&ino).map_or(&[], Vec::as_slice)
    }
}

/// The pairs of `graph` (and `space`) entangled by `rules` at `now`.
pub fn compute(graph: &Graph, space: &Space, rules: &GraphRules, now: Micros) -> Entangled {
    // Each node's neighbours with their weight: the strongest edge either way.
    let mut weights: HashMap<u64, HashMap<u64, f64>> = HashMap::new();
    for (id, node) in graph.nodes() {
        for k in graph.edges_of(id) {
            let other = if k.a == *id { &k.b } else { &k.a };
            let Some(o) = graph.node(other).filter(|_| other != id) else {
                continue;
            };
            let w = graph.strength(&k, now);
            let slot = weights
                .entry(node.ino)
                .or_default()
                .entry(o.ino)
                .or_insert(0.0);
            *slot = slot.max(w);
        }
    }
    let mut found: BTreeMap<(u64, u64), (f32, u8)> = BTreeMap::new();
    for (&a, na) in &weights {
        // Candidates: the neighbours of a's neighbours.
        let mut seen = std::collections::HashSet::new();
        for n in na.keys() {
            for &b in weights.get(n).map(|m| m.keys()).into_iter().flatten() {
                if b <= a || !seen.insert(b) {
                    continue;
                }
                let nb = &weights[&b];
                let shared = na.keys().filter(|x| nb.contains_key(x)).count() as u64;
                if shared < rules.min_shared_neighbours {
                    continue;
                }
                let (mut lo, mut hi) = (0.0, 0.0);
                for x in na.keys().chain(nb.keys().filter(|x| !na.contains_key(x))) {
                    let (wa, wb) = (
                        na.get(x).copied().unwrap_or(0.0),
                        nb.get(x).copied().unwrap_or(0.0),
                    );
                    lo += wa.min(wb);
                    hi += wa.max(wb);
                }
                let j = if hi > 0.0 { lo / hi } else { 0.0 };
                if j >= rules.min_jaccard {
                    found.insert((a, b), (j as f32, SHARED_NEIGHBOURS));
                }
            }
        }
    }
    // Similar pairs: each node's nearest as the space keeps them (`Space::similar`).
    let live = |ino: u64| graph.id_of(ino).is_some();
    for (&a, near) in space.similar().iter().filter(|(a, _)| live(**a)) {
        for &(b, d) in near.iter().filter(|(b, _)| live(*b)) {
            let similarity = 1.0 - d;
            if f64::from(similarity) < rules.min_similarity {
                continue;
            }
            let e = found.entry((a.min(b), a.max(b))).or_insert((0.0, 0));
            e.0 = e.0.max(similarity);
            e.1 |= SIMILAR;
        }
    }
    let mut pairs: Vec<Pair> = found
        .into_iter()
        .map(|((a, b), (strength, reasons))| Pair {
            a,
            b,
            strength,
            reasons,
        })
        .collect();
    pairs.sort_by(|x, y| {
        y.strength
            .total_cmp(&x.strength)
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });
    pairs.truncate(rules.max_pairs as usize);
    let mut partners: HashMap<u64, Vec<u64>> = HashMap::new();
    for p in &pairs {
        partners.entry(p.a).or_default().push(p.b);
        partners.entry(p.b).or_default().push(p.a);
    }
    Entangled {
        pairs,
        computed_at: Some(now),
        partners,
        nearest_known: space.similar().len(),
    }
}

pub fn encode(pairs: &[Pair]) -> Vec<u8> {
    frame::records_file(MAGIC, VERSION, pairs.len(), |out| {
        for p in pairs {
            out.extend_from_slice(&p.a.to_le_bytes());
            out.extend_from_slice(&p.b.to_le_bytes());
            out.extend_from_slice(&p.strength.to_le_bytes());
            out.extend_from_slice(&[p.reasons, 0, 0, 0]);
        }
    })
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Pair>> {
    frame::records(bytes, (MAGIC, VERSION), ENTRY, CORRELATIONS)?
        .map(|c| {
            let mut f = frame::Fields(c);
            let (a, b, strength, reasons) = (f.u64(), f.u64(), f.f32(), f.u8());
            if reasons == 0 || reasons & !(SHARED_NEIGHBOURS | SIMILAR) != 0 || c[21..] != [0; 3] {
                return Err(Error::Corrupt(format!(
                    "{CORRELATIONS}: a pair without a known reason"
                )));
            }
            Ok(Pair {
                a,
                b,
                strength,
                reasons,
            })
        })
        .collect()
}

/// `entanglement_map.json`: the pairs by node id, with why and the tiers they are in.
pub fn map_json(
    e: &Entangled,
    (graph, tier): (&Graph, &dyn Fn(u64) -> Option<Tier>),
    rules: &GraphRules,
) -> Value {
    let name = |ino: u64| {
        graph.id_of(ino).map(|id| {
            let kind = graph.node(id).map(|n| n.kind.clone()).unwrap_or_default();
            format!("{kind}/{id}")
        })
    };
    let mut split = 0;
    let pairs: Vec<Value> = e
        .pairs
        .iter()
        .filter_map(|p| {
            let mut why = Vec::new();
            if p.reasons & SHARED_NEIGHBOURS != 0 {
                why.push("shared neighbours");
            }
            if p.reasons & SIMILAR != 0 {
                why.push("similar coordinates");
            }
            let tiers = [tier(p.a)?, tier(p.b)?];
            split += usize::from(tiers[0] != tiers[1]);
            Some(json!({
                "a": name(p.a)?,
                "b": name(p.b)?,
                "strength": (f64::from(p.strength) * 1e4).round() / 1e4,
                "why": why,
                "tiers": tiers.map(Tier::name),
            }))
        })
        .collect();
    json!({
        "computed_at": e.computed_at.map(time::format_rfc3339),
        "rules": rules,
        "nodes_with_known_nearest": e.nearest_known,
        "pairs_in_two_tiers": split,
        "pairs": pairs.len(),
        "entangled": pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::graph::body::Edge;
    use crate::regions::graph::index::{EdgeKey, Stored};

    fn edge(g: &mut Graph, a: &str, b: &str, strength: f64) {
        let key = EdgeKey::new("r", a, b);
        let body = Edge {
            strength,
            since: None,
            decay: None,
        };
        g.set_edge(
            key,
            Stored {
                ino: 0,
                body: Some((body, 0)),
            },
        );
    }

    #[test]
    fn nodes_sharing_neighbours_are_entangled_by_weight() {
        let mut g = Graph::default();
        for (i, id) in ["a", "b", "c", "x", "y", "z"].iter().enumerate() {
            g.set_node(id, "t", i as u64 + 1);
        }
        // a and b both know x and y strongly; c knows x weakly and z.
        for n in ["a", "b"] {
            edge(&mut g, n, "x", 1.0);
            edge(&mut g, n, "y", 1.0);
        }
        edge(&mut g, "c", "x", 0.1);
        edge(&mut g, "c", "z", 1.0);
        let rules = GraphRules::default();
        let e = compute(&g, &Space::default(), &rules, 0);
        let pairs: Vec<(u64, u64)> = e.pairs.iter().map(|p| (p.a, p.b)).collect();
        // a–b share everything (1.0); x–y share a and b (1.0); c shares only x with a.
        assert_eq!(pairs, [(1, 2), (4, 5)], "{:?}", e.pairs);
        assert_eq!(e.pairs[0].strength, 1.0);
        assert_eq!(e.partners(1), [2]);
        let loose = GraphRules {
            min_shared_neighbours: 1,
            min_jaccard: 0.0,
            ..rules
        };
        let e = compute(&g, &Space::default(), &loose, 0);
        let ac = e.pairs.iter().find(|p| (p.a, p.b) == (1, 3)).expect("a-c");
        // Weighted: min 0.1 over max (1 + 1 + 1) for a's {x, y} and c's {x, z}.
        assert!((ac.strength - 0.1 / 3.0).abs() < 1e-6, "{ac:?}");
    }

    #[test]
    fn nodes_with_alike_coordinates_are_entangled_once_their_nearest_are_noted() {
        let mut g = Graph::default();
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            g.set_node(id, "t", i as u64 + 1);
        }
        // a and b point almost the same way, c and d elsewhere and apart; 9 is no node.
        let mut space = Space::of(&[
            (1, vec![1.0, 0.0, 0.0]),
            (2, vec![0.99, 0.05, 0.0]),
            (3, vec![0.0, 1.0, 0.0]),
            (4, vec![0.0, 0.0, 1.0]),
            (9, vec![1.0, 0.01, 0.0]),
        ]);
        let rules = GraphRules::default();
        let e = compute(&g, &space, &rules, 0);
        assert!(e.pairs.is_empty(), "nothing noted yet: {:?}", e.pairs);
        assert_eq!(e.nearest_known, 0);
        let all: Vec<u64> = space.unnoted(100);
        assert_eq!(all.len(), 5);
        space.note_nearest(&all);
        assert!(space.unnoted(100).is_empty());
        let e = compute(&g, &space, &rules, 0);
        let pairs: Vec<(u64, u64, u8)> = e.pairs.iter().map(|p| (p.a, p.b, p.reasons)).collect();
        assert_eq!(pairs, [(1, 2, SIMILAR)], "{:?}", e.pairs);
        assert!(e.pairs[0].strength > 0.99);
        assert_eq!(e.nearest_known, 5);
    }

    #[test]
    fn correlations_round_trip_and_damage_is_reported() {
        let pairs = vec![
            Pair {
                a: 1,
                b: 2,
                strength: 0.75,
                reasons: SHARED_NEIGHBOURS,
            },
            Pair {
                a: 3,
                b: 9,
                strength: 0.99,
                reasons: SHARED_NEIGHBOURS | SIMILAR,
            },
        ];
        let b = encode(&pairs);
        assert_eq!(b.len(), 12 + 4 + 2 * ENTRY + 4);
        assert_eq!(decode(&b).ok(), Some(pairs));
        frame::assert_damage_is_caught(&b, |d| decode(d).is_ok());
    }
}
