//! `quantum_graph/neighbourhoods/<id>.json`: a node's edges, out and in, with their
//! effective strengths now, read without a query language.

use serde_json::{Value, json};

use super::cascade::edge_name;
use super::index::{EdgeKey, Graph};
use super::{EDGES, NODES};
use crate::regions::pretty;
use crate::regions::temporal::time;

/// One view per node.
pub fn names(graph: &Graph) -> Vec<String> {
    let mut out: Vec<String> = graph.nodes().map(|(id, _)| format!("{id}.json")).collect();
    out.sort_unstable();
    out
}

/// What one edge says now; `other` is the end that is not the node.
fn edge(graph: &Graph, k: &EdgeKey, other: &str, now: i64) -> Value {
    let path = format!("{EDGES}/{}/{}", k.relation, edge_name(k));
    let Some((e, committed)) = graph.edge(k).and_then(|s| s.body) else {
        return json!({ "relation": k.relation, "node": other, "edge": path, "readable": false });
    };
    let round = |x: f64| (x * 1e6).round() / 1e6;
    json!({
        "relation": k.relation,
        "node": other,
        "type": graph.node(other).map(|n| n.kind.clone()),
        "strength": e.strength,
        "effective_strength": round(e.effective(now, committed)),
        "since": time::format_rfc3339(e.since.unwrap_or(committed)),
        "decay_half_life_secs": e.decay.map(|d| d as f64 / 1e6),
        "edge": path,
    })
}

/// Nearest nodes a neighbourhood lists.
pub const NEAREST: usize = 5;

/// Node `id`'s edges and its `near`est nodes (by inode, with their cosine distance).
pub fn neighbourhood(graph: &Graph, id: &str, near: &[(u64, f32)]) -> Option<Vec<u8>> {
    let node = graph.node(id)?;
    let now = time::now();
    let (mut out, mut inn) = (Vec::new(), Vec::new());
    for k in graph.edges_of(id) {
        if k.a == id {
            out.push(edge(graph, &k, &k.b, now));
        }
        if k.b == id {
            inn.push(edge(graph, &k, &k.a, now));
        }
    }
    Some(pretty(&json!({
        "node": id,
        "type": node.kind,
        "record": format!("{NODES}/{}/{id}.json", node.kind),
        "out_degree": out.len(),
        "in_degree": inn.len(),
        "out": out,
        "in": inn,
        "nearest": near
            .iter()
            .filter_map(|&(ino, d)| {
                let other = graph.id_of(ino)?;
                let kind = graph.node(other).map(|n| n.kind.clone());
                Some(json!({ "node": other, "type": kind, "cosine_distance": d }))
            })
            .collect::<Vec<_>>(),
    })))
}
