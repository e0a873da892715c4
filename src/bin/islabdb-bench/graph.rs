//! Graph workloads (the graph region): building a graph of nodes and edges as files, and
//! reading each node's neighbourhood. The native side holds the same files in plain
//! directories and answers a neighbourhood the way a user would without the region:
//! list the edges, keep those naming the node, read them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Context, Error, Result};
use crate::sys::check_interrupt;
use crate::workloads::Sample;

/// Edges per node.
pub const FANOUT: usize = 5;
const RELATION: &str = "bench_links";
const TYPE: &str = "bench";

/// Where one side's graph lives.
pub enum Place {
    /// A native directory holding `nodes/` and `edges/`.
    Native(PathBuf),
    /// The mount's `quantum_graph/`.
    Mount(PathBuf),
}

impl Place {
    /// Where nodes of type `kind` go (natively one directory holds every type).
    pub fn nodes_of(&self, kind: &str) -> PathBuf {
        match self {
            Place::Native(d) => d.join("nodes"),
            Place::Mount(g) => g.join("nodes").join(kind),
        }
    }

    fn nodes(&self) -> PathBuf {
        self.nodes_of(TYPE)
    }

    fn edges(&self) -> PathBuf {
        match self {
            Place::Native(d) => d.join("edges"),
            Place::Mount(g) => g.join("edges").join(RELATION),
        }
    }

    pub fn prepare(&self) -> Result<()> {
        for d in [self.nodes(), self.edges()] {
            fs::create_dir_all(&d).ctx(|| format!("mkdir {}", d.display()))?;
        }
        Ok(())
    }

    /// Empties the graph: edges first (a node with edges cannot go on the mount).
    pub fn clean(&self) -> Result<()> {
        crate::workloads::clean_dir(&self.edges())?;
        crate::workloads::clean_dir(&self.nodes())
    }
}

/// The `k`th edge of node `i` of `n` goes to this node (never `i`, no two alike).
fn target(i: usize, k: usize, n: usize) -> usize {
    (i + 1 + k * (n / FANOUT).max(1)) % n
}

fn node_name(i: usize) -> String {
    format!("p{i}")
}

/// `n` nodes, then `FANOUT` edges from each: every file written and closed as `echo
/// … > f` would.
pub fn build(place: &Place, n: usize) -> Result<Sample> {
    let (nodes, edges) = (place.nodes(), place.edges());
    let t0 = Instant::now();
    for i in 0..n {
        if i % 256 == 0 {
            check_interrupt()?;
        }
        let body = format!(
            "{{\"name\": \"{}\", \"group\": \"g{}\", \"city\": \"c{}\"}}\n",
            node_name(i),
            i % 50,
            i % 20
        );
        let p = nodes.join(format!("{}.json", node_name(i)));
        fs::write(&p, body).ctx(|| format!("write {}", p.display()))?;
    }
    for i in 0..n {
        if i % 256 == 0 {
            check_interrupt()?;
        }
        for k in 0..FANOUT {
            let j = target(i, k, n);
            let p = edges.join(format!("{}_to_{}.json", node_name(i), node_name(j)));
            let body = format!("{{\"strength\": 0.{}}}\n", 1 + (i + k) % 9);
            fs::write(&p, body).ctx(|| format!("write {}", p.display()))?;
        }
    }
    Ok(Sample {
        units: (n * (1 + FANOUT)) as f64,
        secs: t0.elapsed().as_secs_f64(),
    })
}

/// How many edges touch node `i` of `n` (out and in), by construction.
fn degree(i: usize, n: usize) -> usize {
    let inbound = (0..n)
        .flat_map(|a| (0..FANOUT).map(move |k| target(a, k, n)))
        .filter(|&b| b == i)
        .count();
    FANOUT + inbound
}

/// `queries` neighbourhoods of nodes spread over the graph, each checked against what
/// was built.
pub fn neighbours(place: &Place, n: usize, queries: usize) -> Result<Sample> {
    let picks: Vec<usize> = (0..queries).map(|q| (q * 7919 + 13) % n).collect();
    let expected: Vec<usize> = picks.iter().map(|&i| degree(i, n)).collect();
    let t0 = Instant::now();
    for (q, &i) in picks.iter().enumerate() {
        check_interrupt()?;
        let got = match place {
            Place::Mount(g) => mount_degree(g, &node_name(i))?,
            Place::Native(_) => native_degree(&place.edges(), &node_name(i))?,
        };
        if got != expected[q] {
            return Err(Error::msg(format!(
                "neighbourhood of {}: {got} edges, built {}",
                node_name(i),
                expected[q]
            )));
        }
    }
    Ok(Sample {
        units: queries as f64,
        secs: t0.elapsed().as_secs_f64(),
    })
}

/// The region's view of node `id` in the mount's `quantum_graph/` `g`:
/// `neighbourhoods/<id>.json`, parsed.
pub fn neighbourhood(g: &Path, id: &str) -> Result<serde_json::Value> {
    let p = g.join("neighbourhoods").join(format!("{id}.json"));
    let bytes = fs::read(&p).ctx(|| format!("read {}", p.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::msg(format!("{}: {e}", p.display())))
}

/// The region's answer: the node's view.
fn mount_degree(g: &Path, id: &str) -> Result<usize> {
    let v = neighbourhood(g, id)?;
    let count = |k: &str| v[k].as_array().map_or(0, Vec::len);
    Ok(count("out") + count("in"))
}

/// A user's answer without the region: list the edges, read those naming the node.
fn native_degree(edges: &Path, id: &str) -> Result<usize> {
    let (out, inn) = (format!("{id}_to_"), format!("_to_{id}.json"));
    let mut found = 0;
    for e in fs::read_dir(edges).ctx(|| format!("readdir {}", edges.display()))? {
        let e = e.ctx(|| format!("readdir {}", edges.display()))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        let mine = name.starts_with(&out) as usize + name.ends_with(&inn) as usize;
        if mine > 0 {
            fs::read(e.path()).ctx(|| format!("read {}", e.path().display()))?;
            found += mine;
        }
    }
    Ok(found)
}
