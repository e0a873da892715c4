//! The engine: the only layer that touches the data directory. It keeps the inode table
//! (`tree`), logs every change to the write-ahead log before applying it (`wal`), keeps
//! uncommitted content in drafts (`draft`), serves committed content through the LRU
//! (`cache`) from the log or the tier shards (`store`), and checkpoints (`checkpoint`).
//!
//! Lock order: a draft's mutex, then `tree`, then `cache`. The log is appended only while
//! `tree` is held, so the log's order is the order in which changes were applied.
//!
//! A request's path through the files: `meta_ops` (namespace and attributes) and `xattr`
//! change metadata; `handles` opens files and keeps writes in drafts; `commit` turns a
//! draft into a log `record`; `batch` changes several files in one record and pins
//! versions for readers; `read` serves committed content; `checkpointer` moves it
//! from the log into the shards; `stats` reports on all of it. A draft is based on the
//! committed version without copying it, so an append commits only its new bytes and the
//! content becomes pieces (`extents`).

mod acks;
pub mod api;
mod batch;
pub mod cache;
pub mod checkpoint;
mod checkpointer;
pub mod codec;
pub mod coder;
mod commit;
#[cfg(test)]
mod crash;
pub mod disk;
pub mod draft;
mod extents;
pub mod frame;
mod handles;
mod links;
mod meta_ops;
mod open_files;
mod read;
pub mod readahead;
mod record;
pub mod snapshot_diff;
pub mod snapshots;
mod stats;
pub mod store;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tree;
mod types;
mod verify;
pub mod wal;
mod xattr;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use self::cache::Cache;
use self::codec::Tier;
use self::coder::Coder;
use self::disk::{Disk, Fence};
use self::handles::Drafts;
use self::readahead::Readahead;
use self::record::apply_record;
use self::stats::AtomicCounters;
use self::store::{Pins, Store};
use self::tree::Tree;
use self::wal::{Durability, Wal};
use crate::error::{Error, Result};

pub use self::acks::{deferring, serving};
pub use self::batch::{Change, Pinned};
pub use self::meta_ops::{MAX_FILE_SIZE, NAME_MAX};
pub use self::record::{decode, encode};
pub use self::stats::{Counters, TierStats};
pub use self::types::{
    Attr, CommitAt, Data, DirEntry, NewNode, PassingFile, SetAttr, Settings, Snapshot,
};

pub struct Engine {
    /// The data directory, through the fence that refuses changes once the disk failed.
    disk: Arc<Fence>,
    root: PathBuf,
    tree: Mutex<Tree>,
    /// Lock order: a draft's lock may be held while this map's is taken (a commit counts
    /// the writers with its draft held), never the reverse: clone a draft out of the map
    /// and let the map go before locking the draft.
    drafts: Mutex<Drafts>,
    wal: Wal,
    store: Arc<Store>,
    cache: Arc<Mutex<Cache>>,
    readahead: Readahead,
    coder: Arc<Coder>,
    settings: RwLock<Settings>,
    /// Serializes checkpoints; holds the newest checkpoint's sequence number.
    checkpoint_seq: Mutex<u64>,
    /// Log position of the last checkpoint, to decide when the next is due.
    checkpointed_at: AtomicU64,
    counters: AtomicCounters,
    /// (reads, writes) per directory, for the manifests' access counters.
    dir_counters: Mutex<HashMap<u64, (u64, u64)>>,
    /// Blobs open readers or unfinished commits still need: a checkpoint keeps them.
    pins: Arc<Pins>,
    /// Bumped by every logged change and every counted read: generated views are
    /// regenerated only when it moved.
    generation: AtomicU64,
    stop: (Mutex<bool>, Condvar),
    stopped: AtomicBool,
    /// What recovery at open did: log records replayed, and how long it took.
    recovery: (u64, std::time::Duration),
    /// Held by `apply` (see `batch`).
    batches: Mutex<()>,
    snapshots: Mutex<snapshots::Catalog>,
    _lock: Box<dyn Send + Sync>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // State behind these mutexes stays consistent across a panicking request (each
    // mutation is completed before anything can fail), so keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the data directory's lock, so a second daemon cannot open the same universe.
fn lock_data_dir(disk: &dyn Disk, root: &Path) -> Result<Box<dyn Send + Sync>> {
    disk.lock(&root.join("islabdb.lock")).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(format!(
                "{} is already in use by another islabdb ({e})",
                root.display()
            ))
        } else {
            e.into()
        }
    })
}

impl Engine {
    /// Opens (recovering) or creates the universe in `root`.
    pub fn open(root: &Path, settings: Settings) -> Result<Engine> {
        Engine::open_on(disk::real(), root, settings)
    }

    /// `open` with the data directory reached through `disk` (faults injected, or a disk
    /// simulated in a test).
    pub fn open_on(disk: Arc<dyn Disk>, root: &Path, settings: Settings) -> Result<Engine> {
        let fence = Arc::new(Fence::new(disk));
        let disk: Arc<dyn Disk> = fence.clone();
        disk.create_dir_all(root)?;
        let lock_file = lock_data_dir(&*disk, root)?;
        let staging = root.join("staging");
        // Drafts of the previous run were never committed: nobody was told they were.
        match disk.remove_dir_all(&staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        disk.create_dir_all(&staging)?;
        let store = Arc::new(Store::open(disk.clone(), root)?);
        let wal_dir = root.join("backups").join("cosmic_logs");
        disk.create_dir_all(&wal_dir)?;

        let started = Instant::now();
        let mut tree = Tree::default();
        let ckpt_dir = root.join("checkpoints");
        disk.create_dir_all(&ckpt_dir)?;
        let mut wal_from = 0;
        let mut ckpt_seq = 0;
        if let Some((seq, path)) = checkpoint::latest(&*disk, &ckpt_dir)? {
            let header;
            (tree, header) = checkpoint::load_tree(&*disk, &path)?;
            store.reserve_ids_from(header.next_file_id);
            wal_from = header.wal_from;
            ckpt_seq = seq;
        }
        let records = wal::replay(&*disk, &wal_dir, wal_from, None, |seg, off, payload| {
            apply_record(&mut tree, seg, off, payload)
        })?;
        tree.check_connected()?;
        log::info!(
            "recovered {} inodes (checkpoint {ckpt_seq}, {records} log records replayed) in {:?}",
            tree.len(),
            started.elapsed()
        );
        let recovery = (records as u64, started.elapsed());
        // Without a checkpoint the log starts at its first segment, 1.
        let latest = (ckpt_seq, wal_from.max(1));
        let snapshots = snapshots::Catalog::open(&*disk, &root.join("snapshots"), latest)?;
        let wal = Wal::open(disk, &wal_dir, settings.segment_max)?;
        Ok(Engine {
            disk: fence,
            root: root.to_path_buf(),
            tree: Mutex::new(tree),
            drafts: Mutex::new(Drafts::default()),
            wal,
            store,
            cache: Arc::new(Mutex::new(Cache::new(settings.cache_budget))),
            readahead: Readahead::default(),
            coder: Arc::default(),
            settings: RwLock::new(settings),
            checkpoint_seq: Mutex::new(ckpt_seq),
            checkpointed_at: AtomicU64::new(0),
            counters: AtomicCounters::default(),
            dir_counters: Mutex::new(HashMap::new()),
            pins: Arc::default(),
            generation: AtomicU64::new(0),
            stop: (Mutex::new(false), Condvar::new()),
            stopped: AtomicBool::new(false),
            recovery,
            batches: Mutex::new(()),
            snapshots: Mutex::new(snapshots),
            _lock: lock_file,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_settings(&self, s: Settings) {
        lock(&self.cache).set_budget(s.cache_budget);
        self.wal.set_segment_max(s.segment_max);
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// Fits the cache to a daemon whose resident memory is `resident` bytes (see `cache`).
    pub fn fit_cache(&self, resident: usize) {
        lock(&self.cache).fit(resident);
    }

    /// Starts the log flusher and the checkpointer; they stop in `shutdown`.
    pub fn start(self: &Arc<Self>) -> Result<()> {
        let e = self.clone();
        std::thread::Builder::new()
            .name("wal-flusher".into())
            .spawn(move || e.wal.run_flusher())?;
        let e = self.clone();
        std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || e.run_checkpointer())?;
        let jobs = self.coder.start();
        std::thread::Builder::new()
            .name("coder".into())
            .spawn(move || coder::run(jobs))?;
        let jobs = self.readahead.start();
        let e = self.clone();
        if let Err(err) = std::thread::Builder::new()
            .name("readahead".into())
            .spawn(move || e.run_readahead(jobs))
        {
            self.readahead.stop();
            return Err(err.into());
        }
        Ok(())
    }

    /// When a change in `tier` must be durable: at once (sync) or within its window.
    fn durability(&self, tier: Tier) -> Durability {
        let w = self
            .settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .windows[tier as usize];
        if w.is_zero() {
            Durability::Sync
        } else {
            Durability::Within(w)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Engine;
    use super::codec::Tier;
    use super::testutil::{new_universe, settings};
    use crate::error::Error;

    #[test]
    fn a_second_open_of_the_same_data_directory_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let _e = new_universe(tmp.path(), Tier::Hot);
        match Engine::open(tmp.path(), settings()) {
            Err(Error::Locked(msg)) => assert!(msg.contains("already in use"), "{msg}"),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("second open succeeded"),
        }
    }
}
