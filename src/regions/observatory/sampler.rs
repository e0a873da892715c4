//! The observatory's samples. Every tick (about a second) a point of the running
//! counters is kept for the last minute, so rates and a period's percentiles come from
//! differences; every sampling period a row goes to `historical.csv` (a file of the
//! universe, so it survives restarts, trimmed to its bound) and to the last hour the
//! dashboard draws.

use std::collections::VecDeque;
use std::time::Instant;

use crate::engine::Counters;
use crate::metrics::{self, Metrics, Op};
use crate::regions::appended::Columns;

/// A moment's running figures.
#[derive(Clone)]
pub struct Point {
    pub when: Instant,
    pub counts: Vec<u64>,
    /// Every kind's latency buckets added up, and the commits' alone.
    pub all: Vec<u64>,
    pub commits: Vec<u64>,
    pub counters: Counters,
    pub cpu_secs: f64,
}

impl Point {
    pub fn now(m: &Metrics, counters: Counters) -> Point {
        let mut all = vec![0u64; metrics::BUCKETS];
        for op in Op::ALL {
            for (a, n) in all.iter_mut().zip(m.histogram(op).counts()) {
                *a += n;
            }
        }
        Point {
            when: Instant::now(),
            counts: Op::ALL.iter().map(|&op| m.count(op)).collect(),
            all,
            commits: m.histogram(Op::Commit).counts(),
            counters,
            cpu_secs: process().cpu_secs,
        }
    }
}

/// What changed between two points.
pub struct Period {
    pub secs: f64,
    pub per_sec: Vec<f64>,
    pub ops_per_sec: f64,
    pub p99_us: f64,
    pub commit_p99_us: f64,
    pub hit_ratio: Option<f64>,
    pub cpu_percent: f64,
    pub fsyncs_per_sec: f64,
}

fn diff(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.saturating_sub(*y)).collect()
}

impl Period {
    pub fn between(old: &Point, new: &Point) -> Period {
        let secs = new.when.duration_since(old.when).as_secs_f64().max(1e-3);
        let per_sec: Vec<f64> = diff(&new.counts, &old.counts)
            .iter()
            .map(|n| *n as f64 / secs)
            .collect();
        let hits = new
            .counters
            .cache_hits
            .saturating_sub(old.counters.cache_hits);
        let misses = new
            .counters
            .cache_misses
            .saturating_sub(old.counters.cache_misses);
        Period {
            secs,
            ops_per_sec: per_sec.iter().sum(),
            per_sec,
            p99_us: metrics::quantile(&diff(&new.all, &old.all), 0.99) as f64 / 1000.0,
            commit_p99_us: metrics::quantile(&diff(&new.commits, &old.commits), 0.99) as f64
                / 1000.0,
            hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            cpu_percent: (new.cpu_secs - old.cpu_secs).max(0.0) / secs * 100.0,
            fsyncs_per_sec: new.counters.fsyncs.saturating_sub(old.counters.fsyncs) as f64 / secs,
        }
    }
}

/// Points kept for rates (a minute of ticks).
const POINTS: usize = 64;

#[derive(Default)]
pub struct Points(VecDeque<Point>);

impl Points {
    pub fn push(&mut self, p: Point) {
        self.0.push_back(p);
        while self.0.len() > POINTS {
            self.0.pop_front();
        }
    }

    /// The newest point at least `secs` older than `now` (else the oldest kept).
    pub fn back(&self, now: &Point, secs: f64) -> Option<&Point> {
        self.0
            .iter()
            .rev()
            .find(|p| now.when.duration_since(p.when).as_secs_f64() >= secs)
            .or_else(|| self.0.front())
    }
}

/// The daemon process as the kernel sees it.
pub struct Process {
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub cpu_secs: f64,
    pub threads: u64,
}

/// Reads /proc/self: a field that cannot be read is 0.
pub fn process() -> Process {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Process {
        rss_bytes: kib("VmRSS:"),
        peak_rss_bytes: kib("VmHWM:"),
        // utime and stime are the 12th and 13th fields after the name.
        cpu_secs: (field(11) + field(12)) as f64 / ticks,
        threads: field(17),
    }
}

/// One row of `historical.csv`.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub at: i64,
    pub ops_per_sec: f64,
    pub p99_us: f64,
    pub commit_p99_us: f64,
    pub hit_ratio: Option<f64>,
    pub cache_bytes: u64,
    pub rss_bytes: u64,
    pub cpu_percent: f64,
    pub tier_bytes: [u64; 3],
    pub log_bytes: u64,
    pub fsyncs_per_sec: f64,
}

pub const HEADER: &str = "timestamp,ops_per_sec,p99_us,commit_p99_us,cache_hit_ratio,cache_bytes,rss_bytes,cpu_percent,hot_bytes,warm_bytes,cold_bytes,log_bytes,fsyncs_per_sec\n";

impl Row {
    pub fn csv(&self) -> String {
        format!(
            "{},{:.1},{:.1},{:.1},{},{},{},{:.1},{},{},{},{},{:.1}\n",
            crate::regions::temporal::time::format_rfc3339(self.at),
            self.ops_per_sec,
            self.p99_us,
            self.commit_p99_us,
            self.hit_ratio.map_or(String::new(), |r| format!("{r:.4}")),
            self.cache_bytes,
            self.rss_bytes,
            self.cpu_percent,
            self.tier_bytes[0],
            self.tier_bytes[1],
            self.tier_bytes[2],
            self.log_bytes,
            self.fsyncs_per_sec,
        )
    }

    /// A row as `csv` wrote it (None for the header or a line of another shape).
    pub fn parse(line: &str) -> Option<Row> {
        let c = Columns::of(line, 13)?;
        let (num, int) = (|i| c.num(i), |i| c.int(i));
        Some(Row {
            at: c.time(0)?,
            ops_per_sec: num(1)?,
            p99_us: num(2)?,
            commit_p99_us: num(3)?,
            hit_ratio: num(4),
            cache_bytes: int(5)?,
            rss_bytes: int(6)?,
            cpu_percent: num(7)?,
            tier_bytes: [int(8)?, int(9)?, int(10)?],
            log_bytes: int(11)?,
            fsyncs_per_sec: num(12)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_csv() {
        let r = Row {
            at: 1_780_000_000_000_000,
            ops_per_sec: 12.5,
            p99_us: 80.0,
            commit_p99_us: 900.5,
            hit_ratio: Some(0.75),
            cache_bytes: 1,
            rss_bytes: 2,
            cpu_percent: 3.5,
            tier_bytes: [4, 5, 6],
            log_bytes: 7,
            fsyncs_per_sec: 8.0,
        };
        let back = Row::parse(&r.csv()).unwrap_or_default();
        assert_eq!(back.csv(), r.csv());
        assert_eq!(HEADER.split(',').count(), 13);
        assert!(Row::parse(HEADER).is_none());
        let none = Row {
            hit_ratio: None,
            ..r
        };
        assert_eq!(Row::parse(&none.csv()).map(|r| r.hit_ratio), Some(None));
        let p = process();
        assert!(p.rss_bytes > 0 && p.threads > 0);
    }
}
