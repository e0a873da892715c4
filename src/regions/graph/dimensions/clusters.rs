//! `similarity_clusters.json`: groups of nodes whose coordinates are near, recomputed by
//! maintenance.
//!
//! **Method.** k-means (Lloyd's iterations, at most [`MAX_ITERATIONS`] or until no node
//! changes cluster) from a k-means++ start drawn with SplitMix64 from a fixed seed. Nodes
//! are taken in key order, so the same coordinates always give the same clusters. With
//! the cosine metric every vector is first scaled to unit length and each centroid is
//! scaled back to unit length after every update (spherical k-means: the squared
//! euclidean distance between unit vectors is `2 × the cosine distance`); with the
//! euclidean metric the vectors are used as they are.
//!
//! **k.** Fixed by configuration when given (at most the number of nodes). Otherwise: no
//! cluster for no node, one for fewer than 4, and else the k in `2..=min(10, n/2)` whose
//! clustering of a sample has the best mean silhouette (ties: the smaller k). The sample
//! is every `⌈n/1000⌉`-th node in key order (at most 1,000), so choosing costs the same
//! for any graph; the clustering reported is then computed over every node.
//!
//! **Quality.** The mean silhouette of the final clustering over the sample, with the
//! metric's distance: for a node, `(b − a) / max(a, b)` where `a` is its mean distance to
//! the others of its cluster and `b` the least mean distance to another cluster's (0
//! alone in its cluster); from −1 (wrong clusters) through 0 (no structure) to 1 (tight,
//! far apart clusters).

use serde_json::{Value, json};

use super::metric::{Metric, inv_norm, squared_l2};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

pub const MAX_ITERATIONS: usize = 100;
const SAMPLE: usize = 1_000;
const MAX_K: usize = 10;
const SEED: u64 = 0x5eed_c1a5_7e25_0001;

#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// The cluster's mean (of unit vectors, scaled to unit length, for the cosine).
    pub centroid: Vec<f32>,
    /// Its nodes' keys, ascending.
    pub members: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Clustering {
    pub metric: Metric,
    /// Whether k was fixed by configuration (else chosen by silhouette).
    pub fixed_k: bool,
    /// Non-empty clusters, ordered by their least key.
    pub clusters: Vec<Cluster>,
    /// Mean silhouette over the sample; `None` with fewer than two clusters.
    pub silhouette: Option<f32>,
}

/// Clusters `points` (`(key, coordinates)`, all of one length) by `metric`, with `k`
/// clusters if given, else as many as the rule above chooses. The points are taken, not
/// copied: at 100,000 nodes of 64 coordinates a copy is 27 MiB more at every pass.
pub fn cluster(
    mut sorted: Vec<(u64, Vec<f32>)>,
    metric: Metric,
    k: Option<usize>,
) -> Result<Clustering> {
    if metric == Metric::Cosine {
        for (_, v) in &mut sorted {
            let inv = inv_norm(v);
            v.iter_mut().for_each(|x| *x *= inv);
        }
    }
    sorted.sort_by_key(|p| p.0);
    let dim = sorted.first().map_or(0, |p| p.1.len());
    if sorted.iter().any(|p| p.1.len() != dim) {
        return Err(Error::InvalidArgument(
            "clusters: coordinates of different lengths",
        ));
    }
    let vecs: Vec<&[f32]> = sorted.iter().map(|p| p.1.as_slice()).collect();
    let n = vecs.len();
    let fixed_k = k.is_some();
    let step = n.div_ceil(SAMPLE).max(1);
    let sample: Vec<usize> = (0..n).step_by(step).collect();
    let between = Between::of(&vecs, &sample, metric);
    let k = match k {
        Some(k) => k.clamp(1, n.max(1)),
        None if n < 4 => 1,
        None => choose_k(&vecs, &sample, &between, metric),
    };
    let (centroids, assign) = if n == 0 {
        (Vec::new(), Vec::new())
    } else {
        kmeans(&vecs, k, metric)
    };
    let labels: Vec<usize> = sample.iter().map(|&i| assign[i]).collect();
    let silhouette = between.silhouette(&labels);
    let mut clusters: Vec<Cluster> = centroids
        .into_iter()
        .map(|centroid| Cluster {
            centroid,
            members: Vec::new(),
        })
        .collect();
    for (i, &c) in assign.iter().enumerate() {
        clusters[c].members.push(sorted[i].0);
    }
    clusters.retain(|c| !c.members.is_empty());
    clusters.sort_by_key(|c| c.members[0]);
    Ok(Clustering {
        metric,
        fixed_k,
        clusters,
        silhouette,
    })
}

/// The k of `2..=min(10, n/2)` whose clustering of the sample has the best silhouette.
fn choose_k(vecs: &[&[f32]], sample: &[usize], between: &Between, metric: Metric) -> usize {
    let picked: Vec<&[f32]> = sample.iter().map(|&i| vecs[i]).collect();
    let mut best = (f32::NEG_INFINITY, 2);
    for k in 2..=MAX_K.min(vecs.len() / 2) {
        let (_, assign) = kmeans(&picked, k, metric);
        let s = between.silhouette(&assign).unwrap_or(-1.0);
        if s > best.0 {
            best = (s, k);
        }
    }
    best.1
}

/// Lloyd's k-means from a k-means++ start: the centroids and each vector's cluster.
fn kmeans(vecs: &[&[f32]], k: usize, metric: Metric) -> (Vec<Vec<f32>>, Vec<usize>) {
    let mut rng = SplitMix64::new(SEED);
    let mut centroids: Vec<Vec<f32>> = vec![vecs[rng.below(vecs.len())].to_vec()];
    let mut d2: Vec<f32> = vecs.iter().map(|v| squared_l2(v, &centroids[0])).collect();
    while centroids.len() < k {
        let total: f64 = d2.iter().map(|&d| f64::from(d)).sum();
        // All remaining vectors sit on a centroid: any further one would stay empty.
        if total <= 0.0 {
            break;
        }
        let mut r = rng.next_f64() * total;
        let mut pick = vecs.len() - 1;
        for (i, &d) in d2.iter().enumerate() {
            r -= f64::from(d);
            if r < 0.0 {
                pick = i;
                break;
            }
        }
        let c = vecs[pick].to_vec();
        for (d, v) in d2.iter_mut().zip(vecs) {
            *d = d.min(squared_l2(v, &c));
        }
        centroids.push(c);
    }
    let mut assign = vec![usize::MAX; vecs.len()];
    for _ in 0..MAX_ITERATIONS {
        let mut moved = false;
        for (a, v) in assign.iter_mut().zip(vecs) {
            let near = nearest_centroid(v, &centroids);
            moved |= *a != near;
            *a = near;
        }
        if !moved {
            break;
        }
        let dim = centroids[0].len();
        let mut sums = vec![vec![0f64; dim]; centroids.len()];
        let mut counts = vec![0usize; centroids.len()];
        for (&a, v) in assign.iter().zip(vecs) {
            counts[a] += 1;
            for (s, x) in sums[a].iter_mut().zip(v.iter()) {
                *s += f64::from(*x);
            }
        }
        for ((c, s), &count) in centroids.iter_mut().zip(&sums).zip(&counts) {
            // An empty cluster keeps its centroid (it cannot happen after a k-means++
            // start unless vectors coincide).
            if count > 0 {
                *c = s.iter().map(|x| (x / count as f64) as f32).collect();
                if metric == Metric::Cosine {
                    let inv = inv_norm(c);
                    c.iter_mut().for_each(|x| *x *= inv);
                }
            }
        }
    }
    (centroids, assign)
}

fn nearest_centroid(v: &[f32], centroids: &[Vec<f32>]) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (i, c) in centroids.iter().enumerate() {
        let d = squared_l2(v, c);
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}

/// The distances between the sample's vectors, computed once for every k tried and the
/// final figure (they do not depend on the clusters): n²/2 distances instead of n² per
/// silhouette, ten silhouettes a pass. At most `SAMPLE`² values (4 MB), only during a pass.
struct Between {
    n: usize,
    /// Row `i` holds the distances from the sample's `i`th vector to each of them.
    d: Vec<f32>,
}

impl Between {
    fn of(vecs: &[&[f32]], sample: &[usize], metric: Metric) -> Between {
        let n = sample.len();
        let inv: Vec<f32> = sample.iter().map(|&i| inv_norm(vecs[i])).collect();
        let mut d = vec![0f32; n * n];
        for (a, &i) in sample.iter().enumerate() {
            for (b, &j) in sample.iter().enumerate().skip(a + 1) {
                // `Metric::distance`, with the norms computed once; symmetric to the bit.
                let x = metric.finish(metric.raw(vecs[i], inv[a], vecs[j], inv[b]));
                d[a * n + b] = x;
                d[b * n + a] = x;
            }
        }
        Between { n, d }
    }

    /// Mean silhouette of the sample whose `i`th vector is in cluster `labels[i]`, `None`
    /// when they fall in fewer than two clusters.
    fn silhouette(&self, labels: &[usize]) -> Option<f32> {
        let k = labels.iter().map(|&c| c + 1).max()?;
        let mut sizes = vec![0usize; k];
        labels.iter().for_each(|&c| sizes[c] += 1);
        if sizes.iter().filter(|&&s| s > 0).count() < 2 {
            return None;
        }
        let mut total = 0.0f64;
        for (i, &own) in labels.iter().enumerate() {
            let mut sums = vec![0f64; k];
            let row = &self.d[i * self.n..(i + 1) * self.n];
            for (j, (&c, &x)) in labels.iter().zip(row).enumerate() {
                if i != j {
                    sums[c] += f64::from(x);
                }
            }
            if sizes[own] < 2 {
                continue; // alone in its cluster: 0
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            let m = a.max(b);
            if m > 0.0 {
                total += (b - a) / m;
            }
        }
        Some((total / labels.len() as f64) as f32)
    }
}

/// The JSON of `similarity_clusters.json`: the method, the quality figure and each
/// cluster's members (as keys) and centroid.
pub fn to_json(c: &Clustering) -> Value {
    let clusters: Vec<Value> = c
        .clusters
        .iter()
        .enumerate()
        .map(|(id, cl)| {
            json!({
                "id": id,
                "size": cl.members.len(),
                "centroid": cl.centroid,
                "members": cl.members,
            })
        })
        .collect();
    json!({
        "method": "k-means, k-means++ start from a fixed seed",
        "metric": c.metric.name(),
        "k": c.clusters.len(),
        "k_rule": if c.fixed_k { "fixed by configuration" }
                  else { "best mean silhouette over 2..=min(10, n/2), on a sample of at most 1000" },
        "silhouette": c.silhouette,
        "nodes": c.clusters.iter().map(|cl| cl.members.len()).sum::<usize>(),
        "clusters": clusters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::graph::dimensions::tests::random_vec;

    /// `groups` tight blobs of `per` points around far-apart centres in 8 dimensions;
    /// keys interleaved so that no group is a run of keys. Returns the points and each
    /// group's keys.
    type Points = Vec<(u64, Vec<f32>)>;

    fn blobs(groups: usize, per: usize) -> (Points, Vec<Vec<u64>>) {
        let mut rng = SplitMix64::new(99);
        let mut points = Vec::new();
        let mut truth = vec![Vec::new(); groups];
        for i in 0..groups * per {
            let g = i % groups;
            let key = (i as u64 * 7919) % 100_003;
            let mut v: Vec<f32> = (0..8).map(|_| rng.next_f64() as f32 * 0.4 - 0.2).collect();
            v[g] += 10.0;
            v[(g + 1) % 8] += 5.0;
            points.push((key, v));
            truth[g].push(key);
        }
        truth.iter_mut().for_each(|t| t.sort_unstable());
        truth.sort();
        (points, truth)
    }

    fn owned(points: &[(u64, &[f32])]) -> Points {
        points.iter().map(|(k, v)| (*k, v.to_vec())).collect()
    }

    #[test]
    fn known_clusters_are_recovered_exactly() {
        for metric in [Metric::Cosine, Metric::Euclidean] {
            for groups in [2, 4, 7] {
                let (points, truth) = blobs(groups, 30);
                let c = cluster(points.clone(), metric, None).unwrap();
                let mut got: Vec<Vec<u64>> = c.clusters.iter().map(|c| c.members.clone()).collect();
                got.sort();
                assert_eq!(got, truth, "{metric:?}, {groups} groups");
                let s = c.silhouette.unwrap();
                assert!(s > 0.8, "{metric:?} {groups}: silhouette {s}");
                assert!(!c.fixed_k);
                // Each centroid sits at its blob's centre.
                for cl in &c.clusters {
                    let lead = cl.centroid.iter().cloned().fold(f32::MIN, f32::max);
                    assert!(lead > 0.8, "{metric:?}: centroid {:?}", cl.centroid);
                }
            }
        }
    }

    #[test]
    fn clustering_is_deterministic_and_order_free() {
        let (mut points, _) = blobs(3, 40);
        let a = cluster(points.clone(), Metric::Cosine, None).unwrap();
        points.reverse();
        let b = cluster(points.clone(), Metric::Cosine, None).unwrap();
        assert_eq!(a, b);
        assert_eq!(to_json(&a), to_json(&b));
        let j = to_json(&a);
        assert_eq!(j["k"], 3);
        assert_eq!(j["nodes"], 120);
        assert_eq!(j["clusters"][0]["members"][0], a.clusters[0].members[0]);
    }

    #[test]
    fn small_and_fixed_inputs() {
        let none = cluster(Vec::new(), Metric::Cosine, None).unwrap();
        assert!(none.clusters.is_empty() && none.silhouette.is_none());
        let one = cluster(owned(&[(5, &[3.0, 4.0][..])]), Metric::Euclidean, None).unwrap();
        assert_eq!(one.clusters.len(), 1);
        assert_eq!(one.clusters[0].members, vec![5]);
        assert_eq!(one.clusters[0].centroid, vec![3.0, 4.0]);
        assert_eq!(to_json(&one)["silhouette"], Value::Null);
        let three: Vec<(u64, &[f32])> = vec![(1, &[0.0, 0.0]), (2, &[0.1, 0.0]), (3, &[9.0, 9.0])];
        assert_eq!(
            cluster(owned(&three), Metric::Euclidean, None)
                .unwrap()
                .clusters
                .len(),
            1
        );
        let fixed = cluster(owned(&three), Metric::Euclidean, Some(2)).unwrap();
        assert!(fixed.fixed_k);
        let members: Vec<_> = fixed.clusters.iter().map(|c| c.members.clone()).collect();
        assert_eq!(members, vec![vec![1, 2], vec![3]]);
        // More clusters asked for than distinct points: the empty ones are not listed.
        let same: Vec<(u64, &[f32])> = vec![(1, &[1.0]), (2, &[1.0]), (3, &[1.0])];
        assert_eq!(
            cluster(owned(&same), Metric::Euclidean, Some(3))
                .unwrap()
                .clusters
                .len(),
            1
        );
        let mixed: Vec<(u64, &[f32])> = vec![(1, &[1.0]), (2, &[1.0, 2.0])];
        assert!(cluster(owned(&mixed), Metric::Cosine, None).is_err());
    }

    /// The mean silhouette by its definition, from the vectors themselves: a node's mean
    /// distance `a` to the others of its cluster, `b` the least mean distance to another
    /// cluster's, `(b − a) / max(a, b)` (0 alone in its cluster).
    fn silhouette_by_definition(vecs: &[&[f32]], labels: &[usize], metric: Metric) -> f32 {
        let k = labels.iter().max().map_or(0, |&c| c + 1);
        let mut total = 0.0f64;
        for (i, &own) in labels.iter().enumerate() {
            let (mut sums, mut sizes) = (vec![0f64; k], vec![0usize; k]);
            for (j, &c) in labels.iter().enumerate() {
                sizes[c] += 1;
                if i != j {
                    sums[c] += f64::from(metric.distance(vecs[i], vecs[j]));
                }
            }
            if sizes[own] < 2 {
                continue;
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if a.max(b) > 0.0 {
                total += (b - a) / a.max(b);
            }
        }
        (total / labels.len() as f64) as f32
    }

    #[test]
    fn the_silhouette_from_distances_computed_once_is_its_definition() {
        let mut rng = SplitMix64::new(7);
        let vecs: Vec<Vec<f32>> = (0..90).map(|_| random_vec(&mut rng, 16)).collect();
        let vecs: Vec<&[f32]> = vecs.iter().map(Vec::as_slice).collect();
        // Every other vector, as a large graph's sample skips nodes; cluster 3 has one.
        let sample: Vec<usize> = (0..vecs.len()).step_by(2).collect();
        let mut labels: Vec<usize> = sample.iter().map(|_| rng.below(3)).collect();
        labels[7] = 3;
        let picked: Vec<&[f32]> = sample.iter().map(|&i| vecs[i]).collect();
        for metric in [Metric::Cosine, Metric::Euclidean] {
            let between = Between::of(&vecs, &sample, metric);
            assert_eq!(
                between.silhouette(&labels),
                Some(silhouette_by_definition(&picked, &labels, metric)),
                "{metric:?}"
            );
            assert_eq!(between.silhouette(&vec![1; sample.len()]), None);
        }
    }
}
