//! What the daemon measures of itself as it serves: per kind of operation, a count and a
//! latency histogram (log-linear buckets: about 9% wide, from a nanosecond to hours), and
//! the last commits refused with why. Bumped without locks on every request; read by the
//! observatory's generated files.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The kinds of operation counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lookup,
    Getattr,
    Read,
    Write,
    /// A writer's close: the commit point.
    Commit,
    Fsync,
    Readdir,
    /// A write a region takes itself (a stream's lines).
    Append,
    Open,
    Create,
    Remove,
    Rename,
}

impl Op {
    pub const ALL: [Op; 12] = [
        Op::Lookup,
        Op::Getattr,
        Op::Read,
        Op::Write,
        Op::Commit,
        Op::Fsync,
        Op::Readdir,
        Op::Append,
        Op::Open,
        Op::Create,
        Op::Remove,
        Op::Rename,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Lookup => "lookup",
            Op::Getattr => "getattr",
            Op::Read => "read",
            Op::Write => "write",
            Op::Commit => "commit",
            Op::Fsync => "fsync",
            Op::Readdir => "readdir",
            Op::Append => "append",
            Op::Open => "open",
            Op::Create => "create",
            Op::Remove => "remove",
            Op::Rename => "rename",
        }
    }
}

/// Sub-buckets per power of two: each bucket is 1/8 of its octave wide.
const SUB: u32 = 8;
/// Octaves counted: up to 2^40 ns (about 18 minutes); longer lands in the last bucket.
const OCTAVES: u32 = 40;
pub const BUCKETS: usize = (OCTAVES * SUB) as usize;

/// The bucket of a latency of `ns` nanoseconds.
pub fn bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let octave = 63 - ns.leading_zeros();
    let sub = (ns >> (octave - 3)) & (SUB as u64 - 1);
    ((octave - 2) * SUB + sub as u32).min(BUCKETS as u32 - 1) as usize
}

/// The smallest latency that lands in bucket `b` (ns).
pub fn bucket_floor(b: usize) -> u64 {
    let b = b as u64;
    if b < 2 * SUB as u64 {
        return if b < SUB as u64 {
            b
        } else {
            SUB as u64 + (b - SUB as u64)
        };
    }
    let octave = b / SUB as u64 + 2;
    let sub = b % SUB as u64;
    (1u64 << octave) + (sub << (octave - 3))
}

pub struct Histogram {
    counts: Vec<AtomicU64>,
    max: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn record(&self, ns: u64) {
        self.counts[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(ns, Ordering::Relaxed);
    }

    /// The counts now, bucket by bucket.
    pub fn counts(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

/// The latency below which `q` (0..1) of the counted operations fell: the upper edge of
/// the bucket holding that rank (ns); 0 when nothing was counted.
pub fn quantile(counts: &[u64], q: f64) -> u64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (b, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_floor(b + 1).saturating_sub(1).max(bucket_floor(b));
        }
    }
    bucket_floor(counts.len())
}

/// A commit refused, for `real_time.json`.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub at: std::time::SystemTime,
    pub why: String,
}

/// Refusals kept.
const REFUSALS: usize = 20;

pub struct Metrics {
    /// Off: nothing is timed or counted (`islabdb mount --no-statistics`, to measure
    /// what keeping statistics costs).
    on: bool,
    started: Instant,
    ops: Vec<(AtomicU64, Histogram)>,
    refusals: Mutex<VecDeque<Refusal>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Times one operation; counted when dropped.
pub struct Timer<'a> {
    metrics: &'a Metrics,
    op: Op,
    start: Option<Instant>,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            self.metrics
                .record(self.op, start.elapsed().as_nanos() as u64);
        }
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            on: true,
            started: Instant::now(),
            ops: Op::ALL
                .iter()
                .map(|_| (AtomicU64::new(0), Histogram::new()))
                .collect(),
            refusals: Mutex::new(VecDeque::new()),
        }
    }

    /// Statistics that keep nothing.
    pub fn off() -> Metrics {
        Metrics {
            on: false,
            ..Metrics::new()
        }
    }

    pub fn on(&self) -> bool {
        self.on
    }

    pub fn time(&self, op: Op) -> Timer<'_> {
        Timer {
            metrics: self,
            op,
            start: self.on.then(Instant::now),
        }
    }

    pub fn record(&self, op: Op, ns: u64) {
        let (count, hist) = &self.ops[op as usize];
        count.fetch_add(1, Ordering::Relaxed);
        hist.record(ns);
    }

    pub fn count(&self, op: Op) -> u64 {
        self.ops[op as usize].0.load(Ordering::Relaxed)
    }

    pub fn histogram(&self, op: Op) -> &Histogram {
        &self.ops[op as usize].1
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn refused(&self, why: String) {
        let mut r = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        r.push_back(Refusal {
            at: std::time::SystemTime::now(),
            why,
        });
        while r.len() > REFUSALS {
            r.pop_front();
        }
    }

    pub fn refusals(&self) -> Vec<Refusal> {
        let r = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        r.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_narrow_and_cover_their_values() {
        let mut last = 0;
        for ns in (0..4096)
            .chain((12..40).map(|p| 1u64 << p))
            .chain([u64::MAX])
        {
            let b = bucket(ns);
            assert!(b >= last, "{ns}");
            last = b;
            if b + 1 < BUCKETS {
                assert!(
                    bucket_floor(b) <= ns && ns < bucket_floor(b + 1),
                    "{ns} in {b}"
                );
                let width = bucket_floor(b + 1) - bucket_floor(b);
                assert!(width * 8 <= bucket_floor(b).max(8), "{ns}: {width} wide");
            }
        }
    }

    #[test]
    fn quantiles_come_from_the_counts() {
        let m = Metrics::new();
        for _ in 0..99 {
            m.record(Op::Read, 1_000);
        }
        m.record(Op::Read, 1_000_000);
        let c = m.histogram(Op::Read).counts();
        let p50 = quantile(&c, 0.5);
        assert!((1_000..1_100).contains(&p50), "{p50}");
        assert!(quantile(&c, 0.99) < 1_100);
        assert!(quantile(&c, 1.0) >= 1_000_000);
        assert_eq!(m.histogram(Op::Read).max(), 1_000_000);
        assert_eq!(m.count(Op::Read), 100);
        assert_eq!(quantile(&m.histogram(Op::Write).counts(), 0.99), 0);
    }
}
