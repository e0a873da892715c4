//! What the region keeps between requests: when each directory last changed (a sequence
//! number per change it is told of), the compiled queries with their plans, the cached
//! results, and the record of executions (`optimization_log.json`, `performance.csv`).
//!
//! **Consistency.** A query is evaluated after noting the sequence number; it reads the
//! directories it depends on, and if any of them changed after that number while it ran,
//! it runs again, after a pause that doubles each time; after `ATTEMPTS` runs that all
//! raced with changes it answers an error rather than a mix of two points in time. An
//! answer reflects every change told before it began and none told after it ended. A
//! change is told right after its commit, so a commit that lands while a query runs
//! makes it run again (one told after the query's last check is the window left: the
//! engine's snapshots will close it).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::exec::Stats;
use super::exec::plan::Plan;
use super::format::{Format, csv_field};
use super::indexes::Indexes;
use super::schema::Schemas;
use crate::regions::temporal::time;

/// Plans whose directories changed are made again; so are results. This many runs of a
/// query racing with commits before it gives up.
pub const ATTEMPTS: usize = 8;
/// Executions kept for `optimization_log.json`.
const OPTIMIZATIONS_KEPT: usize = 100;
/// Compiled queries kept (the least recently run go first).
const COMPILED_KEPT: usize = 1024;

/// A compiled query and its plan (its explanation and compiled file are made when read:
/// a query asked once should not pay for them).
pub struct Entry {
    /// The query as written.
    pub text: String,
    pub plan: Arc<Plan>,
    /// When it was compiled, µs since the epoch.
    pub compiled_at: i64,
    /// The directories the planner walked to find its collections, with the sequence
    /// number when it did: while none changes (and the indexes stay), the plan holds.
    pub walked: Vec<u64>,
    pub planned_at: u64,
    pub index_version: u64,
    pub runs: u64,
    pub last_micros: u64,
    pub last_run: Option<i64>,
    /// What the last run read and how.
    pub last_stats: Option<Stats>,
}

/// A rendered result and what it depends on.
pub struct Cached {
    pub dirs: Vec<u64>,
    pub at: u64,
    pub bytes: Arc<Vec<u8>>,
}

/// One run of a query, for `performance.csv`.
pub struct Execution {
    pub time: i64,
    pub hash: String,
    pub stats: Stats,
    pub micros: u64,
}

impl Execution {
    /// Its line: time, query hash, rows scanned and returned, the indexes used, µs.
    pub fn csv_line(&self) -> String {
        let index: Vec<String> = self
            .stats
            .accesses
            .iter()
            .filter(|(_, how)| how != "scan")
            .map(|(c, how)| format!("{c} {how}"))
            .collect();
        format!(
            "{},{},{},{},{},{}\n",
            time::format_rfc3339(self.time),
            self.hash,
            self.stats.rows_scanned,
            self.stats.rows_returned,
            csv_field(&index.join("; ")),
            self.micros,
        )
    }
}

/// A plan made, for `optimization_log.json`.
pub struct Planned {
    pub time: i64,
    pub hash: String,
    pub text: String,
    pub plan: Arc<Plan>,
    pub planning_micros: u64,
}

#[derive(Default)]
pub struct State {
    seq: AtomicU64,
    last: Mutex<HashMap<u64, u64>>,
    pub indexes: Indexes,
    /// Moves when the declared indexes change: every plan is made again.
    pub index_version: AtomicU64,
    pub schemas: RwLock<Arc<Schemas>>,
    pub compiled: Mutex<HashMap<String, Entry>>,
    pub results: Mutex<HashMap<(String, Format), Cached>>,
    pub optimizations: Mutex<VecDeque<Planned>>,
    /// Plans logged so far: `optimization_log.json` is rendered again when it moves.
    pub logged: AtomicU64,
    /// Executions not yet appended to `performance.csv`.
    pub performance: Mutex<Vec<Execution>>,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// The sequence number now.
    pub fn now(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// `dir` changed.
    pub fn touch(&self, dir: u64) {
        let n = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        lock(&self.last).insert(dir, n);
    }

    /// Whether none of `dirs` changed after `at`.
    pub fn unchanged_since(&self, dirs: &[u64], at: u64) -> bool {
        let last = lock(&self.last);
        dirs.iter().all(|d| last.get(d).is_none_or(|&n| n <= at))
    }

    pub fn schemas(&self) -> Arc<Schemas> {
        self.schemas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn note_optimization(&self, v: Planned) {
        let mut log = lock(&self.optimizations);
        if log.len() >= OPTIMIZATIONS_KEPT {
            log.pop_front();
        }
        log.push_back(v);
        self.logged.fetch_add(1, Ordering::Release);
    }

    /// Keeps the compiled queries within bounds: past `COMPILED_KEPT`, the least recently
    /// run quarter goes at once (one pass over the map per 256 new queries, not one per
    /// query, when every query asked is new).
    pub fn trim_compiled(map: &mut HashMap<String, Entry>) {
        if map.len() <= COMPILED_KEPT {
            return;
        }
        // A query compiled but not yet run counts as used when compiled.
        let used = |e: &Entry| e.last_run.unwrap_or(e.compiled_at);
        let mut runs: Vec<i64> = map.values().map(used).collect();
        let cut = map.len() - COMPILED_KEPT * 3 / 4;
        let (_, &mut newest_gone, _) = runs.select_nth_unstable(cut - 1);
        let mut left = cut;
        map.retain(|_, e| {
            let gone = left > 0 && used(e) <= newest_gone;
            left -= usize::from(gone);
            !gone
        });
    }
}
