//! The traffic of each tier and region, sampled once a tick from the engine's per-directory
//! counters (reads and commits of the files in a directory since the mount), so rates over
//! a period come from differences. A tier's traffic is that of its record directories (its
//! `particles/` type directories); a region's, that of its seed directories and the
//! directories made right below those that are not data directories (a user's type
//! directory, a stream's partition).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use crate::engine::codec::Tier;
use crate::engine::tree::Kind;
use crate::regions::Cx;

/// Reads and commits.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Ops {
    pub reads: u64,
    pub commits: u64,
}

impl Ops {
    fn add(&mut self, (reads, commits): (u64, u64)) {
        self.reads += reads;
        self.commits += commits;
    }

    pub fn total(&self) -> u64 {
        self.reads + self.commits
    }

    fn minus(&self, old: &Ops) -> Ops {
        Ops {
            reads: self.reads.saturating_sub(old.reads),
            commits: self.commits.saturating_sub(old.commits),
        }
    }
}

/// A moment's counters.
#[derive(Clone)]
pub struct Point {
    pub when: Instant,
    /// Per tier (records only).
    pub tiers: [Ops; 3],
    /// Per region and tier of the directory counted.
    pub regions: BTreeMap<(&'static str, Tier), Ops>,
}

impl Point {
    pub fn now(cx: &Cx<'_>) -> Point {
        let mut tiers = [Ops::default(); 3];
        for tier in Tier::ALL {
            if let Some(p) = cx.seed_dir(&format!("spacetime/{}/particles", tier.dir_name())) {
                for (_, a) in cx.store.readdir_names(p.ino).unwrap_or_default() {
                    if a.kind == Kind::Dir {
                        tiers[tier as usize].add(cx.store.dir_counters(a.ino));
                    }
                }
            }
        }
        let mut regions: BTreeMap<(&'static str, Tier), Ops> = BTreeMap::new();
        for (&ino, seed) in cx.seeds.iter() {
            let Ok(dir) = cx.store.getattr(ino) else {
                continue;
            };
            let name = cx.regions.by_tag(dir.tag).name();
            regions
                .entry((name, dir.tier))
                .or_default()
                .add(cx.store.dir_counters(ino));
            // A data directory may hold a great many records: not listed every tick.
            if seed.data {
                continue;
            }
            for (_, a) in cx.store.readdir_names(ino).unwrap_or_default() {
                if a.kind == Kind::Dir && !cx.seeds.contains_key(&a.ino) {
                    let name = cx.regions.by_tag(a.tag).name();
                    regions
                        .entry((name, a.tier))
                        .or_default()
                        .add(cx.store.dir_counters(a.ino));
                }
            }
        }
        Point {
            when: Instant::now(),
            tiers,
            regions,
        }
    }
}

/// Points kept (a minute of ticks).
const POINTS: usize = 64;

#[derive(Default)]
pub struct Points(VecDeque<Point>);

/// What changed over a period: the counts, and the period's length.
pub struct Rates {
    pub secs: f64,
    pub tiers: [Ops; 3],
    pub regions: BTreeMap<(&'static str, Tier), Ops>,
}

impl Rates {
    pub fn per_sec(&self, ops: &Ops) -> f64 {
        if self.secs <= 0.0 {
            0.0
        } else {
            ops.total() as f64 / self.secs
        }
    }
}

impl Points {
    pub fn push(&mut self, p: Point) {
        self.0.push_back(p);
        while self.0.len() > POINTS {
            self.0.pop_front();
        }
    }

    pub fn latest(&self) -> Option<&Point> {
        self.0.back()
    }

    /// The counts since the newest point at least `secs` older than the latest (else the
    /// oldest kept).
    pub fn over(&self, secs: f64) -> Option<Rates> {
        let now = self.0.back()?;
        let old = self
            .0
            .iter()
            .rev()
            .find(|p| now.when.duration_since(p.when).as_secs_f64() >= secs)
            .or_else(|| self.0.front())?;
        Some(Rates {
            secs: now.when.duration_since(old.when).as_secs_f64(),
            tiers: [0, 1, 2].map(|i| now.tiers[i].minus(&old.tiers[i])),
            regions: now
                .regions
                .iter()
                .map(|(k, v)| (*k, v.minus(old.regions.get(k).unwrap_or(&Ops::default()))))
                .collect(),
        })
    }
}
