//! graph_knn: k-nearest queries over a set of nodes with coordinates. On the mount the
//! graph region answers them from its index (an exact scan below 10,000 nodes, an HNSW
//! graph above) in each node's `neighbourhoods/<id>.json`, scored by recall against the
//! exact answer. Natively the client holds the vectors in its memory and scans them all,
//! as it would without the region.
//!
//! The set is written once per run, before the first round, and removed after the last:
//! writing it is not what the queries measure, and at 100,000 nodes writing it every
//! round would take most of the run.

use std::fmt::Write as _;
use std::fs;
use std::time::Instant;

use crate::error::{Context, Error, Result};
use crate::graph::{self, Place};
use crate::report::fmt_num;
use crate::rng::SplitMix64;
use crate::sys::check_interrupt;
use crate::workloads::{self, Sample};

/// Coordinates per node.
pub const DIM: usize = 64;
/// Nearest nodes per query: as many as a neighbourhood lists.
pub const K: usize = 5;
/// The name of the mount's score, in the report.
pub const RECALL: &str = "recall@5";
/// The set's node type, apart from graph_build's `bench`.
const TYPE: &str = "bench_vec";
/// Coordinates are whole multiples of 1/QUANTUM in [-1, 1]: decimals short enough that
/// the mount and the native client parse them to the very same f32.
const QUANTUM: i16 = 10_000;
/// "knn" in ASCII.
const SEED: u64 = 0x006b_6e6e;

fn node_name(i: usize) -> String {
    format!("v{i}")
}

fn coordinate(q: i16) -> f64 {
    f64::from(q) / f64::from(QUANTUM)
}

/// The set's coordinates, `DIM` a node, in units of 1/QUANTUM, uniform in [-1, 1].
fn generate(n: usize) -> Vec<i16> {
    let mut rng = SplitMix64::new(SEED);
    let levels = 2 * QUANTUM as usize + 1;
    (0..n * DIM)
        .map(|_| rng.below(levels) as i16 - QUANTUM)
        .collect()
}

/// Node `i`'s file: its name, a batch and its coordinates.
fn body(i: usize, coords: &[i16]) -> String {
    let mut s = format!(
        "{{\"name\": \"{}\", \"batch\": {}, \"coordinates\": [",
        node_name(i),
        i % 100
    );
    for (j, &q) in coords.iter().enumerate() {
        if j > 0 {
            s.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = write!(s, "{}", coordinate(q));
    }
    s.push_str("]}\n");
    s
}

fn write_set(place: &Place, coords: &[i16]) -> Result<()> {
    let dir = place.nodes_of(TYPE);
    fs::create_dir_all(&dir).ctx(|| format!("mkdir {}", dir.display()))?;
    for (i, c) in coords.chunks_exact(DIM).enumerate() {
        check_interrupt()?;
        let p = dir.join(format!("{}.json", node_name(i)));
        workloads::write_file(&p, body(i, c).as_bytes(), false)?;
    }
    Ok(())
}

/// The set as the client loads it from its files, each vector checked against what was
/// written and scaled to unit length (so that a cosine distance is 1 − a dot product).
fn load(place: &Place, coords: &[i16]) -> Result<Vec<f32>> {
    let dir = place.nodes_of(TYPE);
    let mut unit = Vec::with_capacity(coords.len());
    for (i, written) in coords.chunks_exact(DIM).enumerate() {
        check_interrupt()?;
        let p = dir.join(format!("{}.json", node_name(i)));
        let bytes = fs::read(&p).ctx(|| format!("read {}", p.display()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).ctx(|| format!("parse {}", p.display()))?;
        let read: Vec<f32> = v["coordinates"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(serde_json::Value::as_f64)
                    .map(|x| x as f32)
                    .collect()
            })
            .unwrap_or_default();
        let expected = written.iter().map(|&q| coordinate(q) as f32);
        if read.len() != DIM || !read.iter().copied().eq(expected) {
            return Err(Error::msg(format!(
                "{}: the coordinates read back are not those written",
                p.display()
            )));
        }
        let start = unit.len();
        unit.extend_from_slice(&read);
        normalize(&mut unit[start..]);
    }
    Ok(unit)
}

/// Eight independent sums, so that the compiler can keep them in one vector register.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum()
}

fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// The exact answer: the `K` nodes nearest node `q` by cosine distance (itself left
/// out), nearest first, equal distances in node order.
fn scan(unit: &[f32], q: usize) -> [usize; K] {
    let query = &unit[q * DIM..(q + 1) * DIM];
    let mut best = [(f32::INFINITY, usize::MAX); K];
    for (i, v) in unit.chunks_exact(DIM).enumerate() {
        let d = 1.0 - dot(query, v);
        if i == q || d >= best[K - 1].0 {
            continue;
        }
        let mut j = K - 1;
        while j > 0 && d < best[j - 1].0 {
            best[j] = best[j - 1];
            j -= 1;
        }
        best[j] = (d, i);
    }
    best.map(|(_, i)| i)
}

/// The set as the native client holds it, and the queries with their exact answers.
pub struct Set {
    /// Unit vectors, `DIM` a node.
    unit: Vec<f32>,
    /// The nodes queried.
    picks: Vec<usize>,
    exact: Vec<[usize; K]>,
}

/// Writes the set of `n` nodes to every side's place, loads it back on the native side
/// (the client's vectors) and computes the exact answers of `queries` queries spread
/// over the set. Untimed; each step's time is printed.
pub fn prepare(places: &[(&str, Place)], n: usize, queries: usize) -> Result<Set> {
    let coords = generate(n);
    for (side, place) in places {
        let t0 = Instant::now();
        write_set(place, &coords).ctx(|| format!("graph_knn: write the set on {side}"))?;
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "graph_knn: {} nodes of {DIM} coordinates written to {side} in {secs:.1} s ({} files/s, untimed)",
            fmt_num(n as f64),
            fmt_num(n as f64 / secs.max(1e-9))
        );
    }
    let native = places
        .iter()
        .find_map(|(_, p)| matches!(p, Place::Native(_)).then_some(p))
        .ok_or_else(|| Error::msg("graph_knn: no native side to load the set from"))?;
    let t0 = Instant::now();
    let unit = load(native, &coords)?;
    println!(
        "graph_knn: native client loaded the vectors from its files in {:.2} s (untimed)",
        t0.elapsed().as_secs_f64()
    );
    let queries = queries.min(n);
    let picks: Vec<usize> = (0..queries).map(|q| q * n / queries).collect();
    let t0 = Instant::now();
    let mut exact = Vec::with_capacity(queries);
    for &i in &picks {
        check_interrupt()?;
        exact.push(scan(&unit, i));
    }
    println!(
        "graph_knn: exact answers of the {queries} queries computed in {:.2} s (untimed)",
        t0.elapsed().as_secs_f64()
    );
    Ok(Set { unit, picks, exact })
}

/// Removes the set from every side (after the last round, untimed): file by file, so
/// that the watchdog sees progress however slow the disk's unlinks are.
pub fn remove(places: &[(&str, Place)]) -> Result<()> {
    for (side, place) in places {
        let t0 = Instant::now();
        let nodes = place.nodes_of(TYPE);
        workloads::clean_dir(&nodes).ctx(|| format!("graph_knn: remove the set from {side}"))?;
        if let Place::Native(d) = place {
            for dir in [&nodes, d] {
                fs::remove_dir(dir).ctx(|| format!("rmdir {}", dir.display()))?;
            }
        }
        println!(
            "graph_knn: set removed from {side} in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The queries, timed. On the mount: each queried node's neighbourhood read and its
/// `nearest` taken, scored after the clock by recall@K against the exact answers
/// (returned as the second value). Natively: the client's exact scan of its vectors,
/// which must give the exact answers.
pub fn queries(place: &Place, set: &Set) -> Result<(Sample, Option<f64>)> {
    let t0 = Instant::now();
    match place {
        Place::Mount(g) => {
            let mut answers = Vec::with_capacity(set.picks.len());
            for &i in &set.picks {
                check_interrupt()?;
                let id = node_name(i);
                let view = graph::neighbourhood(g, &id)?;
                let near: Vec<String> = view["nearest"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e["node"].as_str().map(str::to_owned))
                            .take(K)
                            .collect()
                    })
                    .unwrap_or_default();
                if near.len() < K {
                    return Err(Error::msg(format!(
                        "neighbourhood of {id}: {} nearest nodes, not {K}",
                        near.len()
                    )));
                }
                answers.push(near);
            }
            let sample = Sample {
                units: answers.len() as f64,
                secs: t0.elapsed().as_secs_f64(),
            };
            let hits: usize = answers
                .iter()
                .zip(&set.exact)
                .map(|(got, exact)| {
                    exact
                        .iter()
                        .filter(|&&j| got.contains(&node_name(j)))
                        .count()
                })
                .sum();
            Ok((sample, Some(hits as f64 / (K * answers.len()) as f64)))
        }
        Place::Native(_) => {
            let mut answers = Vec::with_capacity(set.picks.len());
            for &i in &set.picks {
                check_interrupt()?;
                answers.push(scan(&set.unit, i));
            }
            let sample = Sample {
                units: answers.len() as f64,
                secs: t0.elapsed().as_secs_f64(),
            };
            let wrong = answers.iter().zip(&set.exact).position(|(a, e)| a != e);
            if let Some(q) = wrong {
                return Err(Error::msg(format!(
                    "the scan's nearest of {} differ from the exact answer ({:?} against {:?})",
                    node_name(set.picks[q]),
                    answers[q],
                    set.exact[q]
                )));
            }
            Ok((sample, None))
        }
    }
}
