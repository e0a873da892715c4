//! What the engine reports about itself: per-tier figures, counters, the log segments and
//! the disk, for the generated views and statfs.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::extents::{self, Part};
use super::tree::Kind;
use super::{Engine, lock, wal};
use crate::error::{Error, Result};

/// Per-tier figures for `shard.metadata`.
#[derive(Default, Clone, Debug, Serialize)]
pub struct TierStats {
    pub records: u64,
    pub bytes_stored: u64,
    pub bytes_on_disk: u64,
    pub bytes_in_log: u64,
    pub shard_files: u64,
}

#[derive(Default, Clone, Debug, Serialize)]
pub struct Counters {
    pub commits: u64,
    pub refused_commits: u64,
    pub reads: u64,
    pub writes: u64,
    pub checkpoints: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// (hits, misses) of the reads of each tier's files.
    pub cache_by_tier: [(u64, u64); 3],
    pub cache_evictions: u64,
    pub cache_bytes: u64,
    pub cache_budget: u64,
    /// What the cache may hold now: the budget less the rest of the daemon's memory.
    pub cache_limit: u64,
    pub cache_entries: u64,
    /// Files read into the cache before anyone asked (`Engine::prefetch`).
    pub prefetched: u64,
    pub log_bytes_since_checkpoint: u64,
    /// Since the mount: bytes and records appended to the log, its fsyncs, and how many
    /// records those covered.
    pub log_bytes: u64,
    pub log_records: u64,
    pub fsyncs: u64,
    pub fsynced_records: u64,
    pub last_checkpoint_us: u64,
    /// Recovery at open: log records replayed and how long it took.
    pub recovered_records: u64,
    pub recovery_us: u64,
    /// The data disk failed (a failed fsync or EIO): changes are refused until a remount.
    pub disk_failed: bool,
}

/// The running figures behind `Counters`, bumped without a lock.
#[derive(Default)]
pub(super) struct AtomicCounters {
    pub(super) commits: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) reads: AtomicU64,
    pub(super) writes: AtomicU64,
    pub(super) checkpoints: AtomicU64,
    pub(super) last_checkpoint_us: AtomicU64,
    pub(super) prefetched: AtomicU64,
}

impl Engine {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    pub fn note_read(&self, dir: u64) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        lock(&self.dir_counters).entry(dir).or_default().0 += 1;
    }

    pub fn dir_counters(&self, dir: u64) -> (u64, u64) {
        lock(&self.dir_counters)
            .get(&dir)
            .copied()
            .unwrap_or_default()
    }

    pub fn tier_stats(&self) -> [TierStats; 3] {
        let mut out: [TierStats; 3] = Default::default();
        {
            let tree = lock(&self.tree);
            for n in tree.nodes() {
                if n.meta.kind != Kind::File {
                    continue;
                }
                let s = &mut out[n.meta.tier as usize];
                s.records += 1;
                s.bytes_stored += n.meta.size;
                s.bytes_in_log += extents::each(&n.loc, n.meta.size)
                    .filter(|p| matches!(p.part, Part::Wal { .. }))
                    .map(|p| p.len)
                    .sum::<u64>();
            }
        }
        for (tier, _, _, size) in self.store.files() {
            let s = &mut out[tier as usize];
            s.bytes_on_disk += size;
            s.shard_files += 1;
        }
        for s in &mut out {
            s.bytes_on_disk += s.bytes_in_log;
        }
        out
    }

    pub fn counters(&self) -> Counters {
        let (log_bytes, log_records, fsyncs, fsynced_records) = self.wal.figures();
        let c = lock(&self.cache);
        Counters {
            log_bytes,
            log_records,
            fsyncs,
            fsynced_records,
            last_checkpoint_us: self.counters.last_checkpoint_us.load(Ordering::Relaxed),
            recovered_records: self.recovery.0,
            recovery_us: self.recovery.1.as_micros() as u64,
            disk_failed: self.disk.failed(),
            commits: self.counters.commits.load(Ordering::Relaxed),
            refused_commits: self.counters.refused.load(Ordering::Relaxed),
            reads: self.counters.reads.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            checkpoints: self.counters.checkpoints.load(Ordering::Relaxed),
            cache_hits: c.hits,
            cache_misses: c.misses,
            cache_by_tier: c.by_tier,
            cache_evictions: c.evictions,
            cache_bytes: c.bytes() as u64,
            cache_budget: c.budget() as u64,
            cache_limit: c.limit() as u64,
            cache_entries: c.len() as u64,
            prefetched: self.counters.prefetched.load(Ordering::Relaxed),
            log_bytes_since_checkpoint: self.wal.written()
                - self.checkpointed_at.load(Ordering::Relaxed),
        }
    }

    /// The files with cached content, most recently used first, with their bytes cached.
    pub fn cached_files(&self) -> Vec<(u64, u64)> {
        lock(&self.cache).files()
    }

    pub fn inode_count(&self) -> usize {
        lock(&self.tree).len()
    }

    /// The log segments as (file name, size), oldest first.
    pub fn log_segments(&self) -> Vec<(String, u64)> {
        self.wal
            .segments()
            .into_iter()
            .map(|(s, len)| (wal::segment_name(s), len))
            .collect()
    }

    pub fn read_log_segment(&self, name: &str, off: u64, size: usize) -> Result<Vec<u8>> {
        let seq = wal::parse_segment_name(name).ok_or(Error::NotFound)?;
        self.wal.read_segment(seq, off, size)
    }

    /// A log segment's size as its view shows it.
    pub fn log_segment_len(&self, name: &str) -> Option<u64> {
        self.wal.segment_len(wal::parse_segment_name(name)?)
    }

    /// statvfs of the disk holding the data directory.
    pub fn statfs(&self) -> Result<libc::statvfs> {
        let path = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::InvalidArgument("data directory path"))?;
        // SAFETY: statvfs only writes into the zeroed struct we pass.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: path is a valid NUL-terminated string; st is a valid out-pointer.
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(st)
    }
}
