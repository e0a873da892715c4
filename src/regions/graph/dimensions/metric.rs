//! How far apart two coordinate vectors are.
//!
//! - **Cosine** (the default): `1 − a·b / (|a| |b|)`, from 0 (same direction) to 2
//!   (opposite). A zero vector has no direction: its cosine with anything is taken as 0,
//!   so it is at distance 1 from every vector.
//! - **Euclidean**: `sqrt(Σ (aᵢ − bᵢ)²)`.
//!
//! Only vectors of the same length are compared: the index refuses a vector whose length
//! differs from the ones it holds (see `index`). Inside the index the cosine uses each
//! vector's stored `1/|v|` and the euclidean its square (both order the same as the
//! distance); [`Metric::finish`] turns that into the distance reported.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    #[default]
    Cosine,
    Euclidean,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
        }
    }

    /// The distance between `a` and `b` (same length), by definition: what the tests'
    /// brute-force references use (the daemon computes norms once, `raw` and `finish`).
    #[cfg(test)]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        self.finish(self.raw(a, inv_norm(a), b, inv_norm(b)))
    }

    /// A value that orders like the distance, cheaper to compute: `ia`, `ib` are the
    /// vectors' [`inv_norm`]s (only the cosine reads them).
    #[inline]
    pub fn raw(self, a: &[f32], ia: f32, b: &[f32], ib: f32) -> f32 {
        #[cfg(test)]
        RAW_CALLS.with(|c| c.set(c.get() + 1));
        match self {
            // The smaller factor first: the same value whichever vector is the query.
            Metric::Cosine => 1.0 - dot(a, b) * ia.min(ib) * ia.max(ib),
            Metric::Euclidean => squared_l2(a, b),
        }
    }

    /// The distance of a [`Metric::raw`] value.
    #[inline]
    pub fn finish(self, raw: f32) -> f32 {
        match self {
            // Rounding can take 1 − cos a hair below 0.
            Metric::Cosine => raw.max(0.0),
            Metric::Euclidean => raw.max(0.0).sqrt(),
        }
    }
}

#[cfg(test)]
thread_local! {
    static RAW_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Distances computed on this thread so far (tests count what an operation costs).
#[cfg(test)]
pub fn raw_calls() -> u64 {
    RAW_CALLS.with(std::cell::Cell::get)
}

/// `1/|v|`, or 0 for a zero vector (whose cosine with anything is then 0).
pub fn inv_norm(v: &[f32]) -> f32 {
    let n = dot(v, v).sqrt();
    if n > 0.0 && n.is_finite() {
        1.0 / n
    } else {
        0.0
    }
}

// Eight independent sums let the compiler keep them in vector registers (the loop
// over `chunks_exact` has no bounds checks); the order of additions is fixed, so
// results repeat exactly.
#[inline(always)]
fn sum_of(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| term(x, y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += term(x[i], y[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum_of(a, b, |x, y| x * y)
}

#[inline]
pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    sum_of(a, b, |x, y| (x - y) * (x - y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_their_definitions() {
        let a = [1.0, 0.0, 0.0];
        let b = [0.0, 2.0, 0.0];
        let c = [-3.0, 0.0, 0.0];
        assert!((Metric::Cosine.distance(&a, &b) - 1.0).abs() < 1e-6);
        assert!((Metric::Cosine.distance(&a, &c) - 2.0).abs() < 1e-6);
        assert!(Metric::Cosine.distance(&a, &[5.0, 0.0, 0.0]).abs() < 1e-6);
        assert!((Metric::Cosine.distance(&a, &[0.0; 3]) - 1.0).abs() < 1e-6);
        assert!((Metric::Euclidean.distance(&a, &b) - 5f32.sqrt()).abs() < 1e-6);
        // Long vectors take the chunked path and its tail.
        let x: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let naive: f32 = x.iter().map(|v| v * v).sum();
        assert!((dot(&x, &x) - naive).abs() < 1e-3);
        assert!(squared_l2(&x, &x).abs() < 1e-9);
    }
}
