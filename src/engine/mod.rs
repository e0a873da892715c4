//! The engine: the only layer that touches the data directory. It keeps the inode table
//! (`tree`), logs every change to the write-ahead log before applying it (`wal`), keeps
//! uncommitted content in drafts (`draft`), serves committed content through the LRU
//! (`cache`) from the log or the tier shards (`store`), and checkpoints (`checkpoint`).
//!
//! Lock order: a draft's mutex, then `tree`, then `cache`. The log is appended only while
//! `tree` is held, so the log's order is the order in which changes were applied.

pub mod cache;
pub mod checkpoint;
pub mod codec;
pub mod coder;
pub mod draft;
pub mod frame;
pub mod readahead;
pub mod store;
pub mod tree;
pub mod wal;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use self::cache::{Cache, Key, WHOLE};
use self::codec::Tier;
use self::coder::Coder;
use self::draft::{Bytes, Draft, StreamTo};
use self::readahead::Readahead;
use self::store::{FileKind, Pins, Store};
use self::tree::{Extra, Kind, Location, Meta, ROOT, Tree, Ts};
use self::wal::{Durability, Wal};
use crate::error::{Error, Result};

pub const NAME_MAX: usize = 255;
const XATTR_VALUE_MAX: usize = 64 << 10;
const XATTR_TOTAL_MAX: usize = 256 << 10;

pub fn encode<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Serializing plain structs into a Vec has no failure mode.
    bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(b, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| Error::Corrupt(format!("undecodable record: {e}")))
}

/// Tunables; the daemon fills them from `configuration/` and the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    pub cache_budget: usize,
    /// How long a commit in each tier (hot, warm, cold) may stay volatile; zero = at once.
    pub windows: [Duration; 3],
    pub segment_max: u64,
    /// Checkpoint when this many log bytes accumulated, or after `checkpoint_interval`.
    pub checkpoint_bytes: u64,
    pub checkpoint_interval: Duration,
    /// Drafts larger than this move to a staging file.
    pub spill_at: usize,
    /// Contents up to this size are committed into the log itself; larger ones to blobs.
    pub inline_max: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cache_budget: 256 << 20,
            windows: [
                Duration::ZERO,
                Duration::from_millis(100),
                Duration::from_secs(1),
            ],
            segment_max: 64 << 20,
            checkpoint_bytes: 128 << 20,
            checkpoint_interval: Duration::from_secs(60),
            spill_at: 8 << 20,
            inline_max: 256 << 10,
        }
    }
}

/// One logged change. Record payload:
/// `{ u8 version | u32 ops_len (LE) | bincode Vec<Op> | inline content bytes }`.
#[derive(Debug, Serialize, Deserialize)]
enum Op {
    Upsert { meta: Meta, content: Content },
    Delete { ino: u64 },
}

impl Op {
    /// New metadata, same content.
    fn keep(meta: Meta) -> Op {
        Op::Upsert {
            meta,
            content: Content::Keep,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Content {
    Keep,
    Empty,
    /// The bytes after the ops in this same record.
    Inline,
    Blob {
        tier: Tier,
        id: u64,
    },
}

const RECORD_VERSION: u8 = 1;

/// Which event asks for a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitAt {
    /// close(2) of one descriptor: commits written content.
    Close,
    /// A handle's last descriptor is gone, or a truncate by path: commits any change,
    /// unless other writers still hold the file open.
    Release,
    /// fsync(2): commits any change and returns once it is durable.
    Fsync,
}

/// What the filesystem layer sees of an inode.
#[derive(Clone, Debug)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Ts,
    pub mtime: Ts,
    pub ctime: Ts,
    pub nlink: u32,
    pub tier: Tier,
    pub tag: u8,
}

/// Bytes read from a file: a range of a buffer the cache (or a pinned reader) shares, so
/// that a read inside one cached chunk is answered without copying it, or owned bytes.
pub enum Data {
    Shared(Arc<Vec<u8>>, std::ops::Range<usize>),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Shared(buf, range) => &buf[range.clone()],
            Data::Owned(v) => v,
        }
    }
}

impl Data {
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Data::Shared(..) => self.to_vec(),
            Data::Owned(v) => v,
        }
    }
}

/// One committed version of a file, pinned for a reader (see `Engine::snapshot`).
#[derive(Clone)]
pub struct Snapshot {
    ino: u64,
    version: u64,
    loc: Location,
    size: u64,
    whole: Option<Arc<Vec<u8>>>,
}

impl Snapshot {
    /// The committed version `n` holds now (its small content not loaded yet).
    fn of(n: &tree::Node) -> Snapshot {
        Snapshot {
            ino: n.meta.ino,
            version: n.version,
            loc: n.loc,
            size: n.meta.size,
            whole: None,
        }
    }
}

/// One directory listing entry; `offset` resumes the listing after it.
pub struct DirEntry {
    pub offset: u64,
    pub ino: u64,
    pub kind: Kind,
    pub name: Vec<u8>,
}

/// A new inode's description.
pub struct NewNode<'a> {
    pub kind: Kind,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub target: &'a [u8],
    /// Overrides of the inherited tier and region tag (bootstrap of the seed hierarchy).
    pub tier: Option<Tier>,
    pub tag: Option<u8>,
}

#[derive(Default, Clone, Copy)]
pub struct SetAttr {
    pub perm: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<Ts>,
    pub mtime: Option<Ts>,
}

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
    pub cache_evictions: u64,
    pub cache_bytes: u64,
    pub cache_budget: u64,
    pub cache_entries: u64,
    pub log_bytes_since_checkpoint: u64,
}

#[derive(Default)]
struct Drafts {
    map: HashMap<u64, Arc<Mutex<Draft>>>,
    writers: HashMap<u64, u32>,
}

#[derive(Default)]
struct AtomicCounters {
    commits: AtomicU64,
    refused: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    checkpoints: AtomicU64,
}

pub struct Engine {
    root: PathBuf,
    tree: Mutex<Tree>,
    drafts: Mutex<Drafts>,
    wal: Wal,
    store: Arc<Store>,
    cache: Mutex<Cache>,
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
    _lock: File,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // State behind these mutexes stays consistent across a panicking request (each
    // mutation is completed before anything can fail), so keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn attr_of(tree: &Tree, node: &tree::Node) -> Attr {
    let m = &node.meta;
    let nlink = match &node.dir {
        Some(d) => 2 + d.subdirs,
        None => u32::from(tree.is_linked(m.ino)),
    };
    Attr {
        ino: m.ino,
        kind: m.kind,
        perm: m.perm,
        uid: m.uid,
        gid: m.gid,
        size: m.size,
        atime: m.atime,
        mtime: m.mtime,
        ctime: m.ctime,
        nlink,
        tier: m.tier,
        tag: m.tag,
    }
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Error::InvalidArgument("bad file name"));
    }
    Ok(())
}

/// Takes the data directory's lock, so a second daemon cannot open the same universe.
fn lock_data_dir(root: &Path) -> Result<File> {
    let path = root.join("islabdb.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let holder = fs::read_to_string(&path).unwrap_or_default();
        return Err(Error::Locked(format!(
            "{} is already in use by another islabdb (pid {})",
            root.display(),
            holder.trim()
        )));
    }
    file.set_len(0)?;
    std::os::unix::fs::FileExt::write_all_at(&file, std::process::id().to_string().as_bytes(), 0)?;
    Ok(file)
}

impl Engine {
    /// Opens (recovering) or creates the universe in `root`.
    pub fn open(root: &Path, settings: Settings) -> Result<Engine> {
        fs::create_dir_all(root)?;
        let lock_file = lock_data_dir(root)?;
        let staging = root.join("staging");
        if staging.exists() {
            // Drafts of the previous run were never committed: nobody was told they were.
            fs::remove_dir_all(&staging)?;
        }
        fs::create_dir_all(&staging)?;
        let store = Arc::new(Store::open(root)?);
        let wal_dir = root.join("backups").join("cosmic_logs");
        fs::create_dir_all(&wal_dir)?;

        let started = Instant::now();
        let mut tree = Tree::default();
        let ckpt_dir = root.join("checkpoints");
        let mut wal_from = 0;
        let mut ckpt_seq = 0;
        if let Some((seq, path)) = checkpoint::latest(&ckpt_dir)? {
            let header = checkpoint::load(&path, |e| tree.upsert(e.meta, Some(e.loc)))?;
            tree.next_ino = tree.next_ino.max(header.next_ino);
            store.reserve_ids_from(header.next_file_id);
            wal_from = header.wal_from;
            ckpt_seq = seq;
        }
        let records = wal::replay(&wal_dir, wal_from, |seg, off, payload| {
            apply_record(&mut tree, seg, off, payload)
        })?;
        log::info!(
            "recovered {} inodes (checkpoint {ckpt_seq}, {records} log records replayed) in {:?}",
            tree.len(),
            started.elapsed()
        );
        let wal = Wal::open(&wal_dir, settings.segment_max)?;
        Ok(Engine {
            root: root.to_path_buf(),
            tree: Mutex::new(tree),
            drafts: Mutex::new(Drafts::default()),
            wal,
            store,
            cache: Mutex::new(Cache::new(settings.cache_budget)),
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
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = s;
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

    /// Fetches chunks queued by `Readahead::after_read` into the cache, until shutdown.
    fn run_readahead(&self, jobs: Receiver<readahead::Job>) {
        loop {
            let job = match jobs.recv_timeout(Duration::from_millis(500)) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) if !self.stopped.load(Ordering::SeqCst) => {
                    continue;
                }
                Err(_) => {
                    self.readahead.stop();
                    return;
                }
            };
            // A failure here (the blob retired after its last reader left, a bad chunk) is
            // left for a reader to meet and report, if one still wants the chunk.
            if let Ok(chunk) = self
                .store
                .blob(job.tier, job.id)
                .and_then(|b| b.chunk(job.key.chunk as usize))
            {
                lock(&self.cache).put(job.key, Arc::new(chunk));
            }
            self.readahead.done(&job.key);
        }
    }

    fn run_checkpointer(&self) {
        let mut last = Instant::now();
        loop {
            let (m, cv) = &self.stop;
            let stopped = {
                let g = lock(m);
                let (g, _) = cv
                    .wait_timeout(g, Duration::from_millis(500))
                    .unwrap_or_else(|e| e.into_inner());
                *g
            };
            if stopped {
                return;
            }
            let s = self.settings();
            let pending = self.wal.written() - self.checkpointed_at.load(Ordering::Relaxed);
            let due = pending >= s.checkpoint_bytes
                || (pending > 0 && last.elapsed() >= s.checkpoint_interval);
            if due {
                if let Err(e) = self.checkpoint() {
                    log::error!("checkpoint failed: {e}");
                }
                last = Instant::now();
            }
        }
    }

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

    /// Logs `ops` (with `inline` content for a `Content::Inline` op) and applies them.
    /// Returns the log position to wait for when the change must be durable now.
    fn log(&self, tree: &mut Tree, ops: Vec<Op>, inline: &[u8], tier: Tier) -> Result<Option<u64>> {
        let body = encode(&ops);
        let mut head = Vec::with_capacity(5);
        head.push(RECORD_VERSION);
        head.extend_from_slice(&(body.len() as u32).to_le_bytes());
        let durability = self.durability(tier);
        self.generation.fetch_add(1, Ordering::Relaxed);
        let at = self.wal.append(&[&head, &body, inline], durability)?;
        let inline_off = at.payload_off + (head.len() + body.len()) as u64;
        for op in ops {
            apply_op(tree, op, at.seg, inline_off);
        }
        Ok((durability == Durability::Sync).then_some(at.lsn))
    }

    /// `log` of one inode's new state without inline content.
    fn log_upsert(
        &self,
        tree: &mut Tree,
        meta: Meta,
        content: Content,
        tier: Tier,
    ) -> Result<Option<u64>> {
        self.log(tree, vec![Op::Upsert { meta, content }], &[], tier)
    }

    fn wait(&self, lsn: Option<u64>) -> Result<()> {
        match lsn {
            Some(lsn) => self.wal.sync_to(lsn),
            None => Ok(()),
        }
    }

    // ---- namespace operations -------------------------------------------------------

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        let mut attr = {
            let tree = lock(&self.tree);
            let node = tree.get(ino)?;
            attr_of(&tree, node)
        };
        // A writer sees its own writes: size and mtime follow the draft. A refused draft
        // is not the file: until it is written again or released, the file is the
        // committed version (a `stat` right after the failed close, before the kernel's
        // asynchronous release reaches us, must not show the refused size).
        let draft = lock(&self.drafts).map.get(&ino).cloned();
        if let Some(d) = draft {
            let d = lock(&d);
            if d.refused.is_none() {
                attr.size = d.len();
                attr.mtime = d.mtime;
            }
        }
        Ok(attr)
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        let ino = lock(&self.tree).child(parent, name)?;
        self.getattr(ino)
    }

    pub fn create(&self, parent: u64, name: &[u8], new: NewNode<'_>) -> Result<Attr> {
        check_name(name)?;
        let mut tree = lock(&self.tree);
        let p = tree.get(parent)?;
        if p.dir.is_none() {
            return Err(Error::NotDir);
        }
        if !tree.is_linked(parent) {
            return Err(Error::NotFound);
        }
        if tree.child(parent, name).is_ok() {
            return Err(Error::Exists);
        }
        let (tier, tag) = (
            new.tier.unwrap_or(p.meta.tier),
            new.tag.unwrap_or(p.meta.tag),
        );
        let mut pmeta = p.meta.clone();
        let ino = tree.alloc_ino();
        let meta = new_meta(ino, (parent, name), &new, (tier, tag));
        let now = meta.ctime;
        pmeta.mtime = now;
        pmeta.ctime = now;
        let ops = vec![
            Op::Upsert {
                meta,
                content: Content::Empty,
            },
            Op::keep(pmeta),
        ];
        let lsn = self.log(&mut tree, ops, &[], tier)?;
        let attr = attr_of(&tree, tree.get(ino)?);
        drop(tree);
        // A new file is made durable by the close of the handle that created it (see
        // `settle`), which a strict tier's commit does anyway: one fsync per file, not two.
        if new.kind != Kind::File {
            self.wait(lsn)?;
        }
        Ok(attr)
    }

    /// Makes everything logged so far durable if `ino` lives in a tier whose changes must be
    /// durable at once (hot): closing a file there, even unwritten, acknowledges it.
    pub fn settle(&self, ino: u64) -> Result<()> {
        let tier = match lock(&self.tree).get(ino) {
            Ok(n) => n.meta.tier,
            // Gone already: nothing of it is left to make durable.
            Err(_) => return Ok(()),
        };
        match self.durability(tier) {
            Durability::Sync => self.sync_all(),
            Durability::Within(_) => Ok(()),
        }
    }

    /// The root directory, made once when the universe is new.
    pub fn create_root(&self, perm: u16, tier: Tier, tag: u8) -> Result<()> {
        let mut tree = lock(&self.tree);
        if tree.get(ROOT).is_ok() {
            return Ok(());
        }
        let root = NewNode {
            kind: Kind::Dir,
            perm,
            uid: 0,
            gid: 0,
            target: &[],
            tier: Some(tier),
            tag: Some(tag),
        };
        let meta = new_meta(ROOT, (ROOT, b""), &root, (tier, tag));
        let lsn = self.log_upsert(&mut tree, meta, Content::Empty, Tier::Hot)?;
        drop(tree);
        self.wait(lsn)
    }

    /// Unlinks a file or symlink (`dir == false`) or removes an empty directory.
    pub fn remove(&self, parent: u64, name: &[u8], dir: bool) -> Result<()> {
        let mut tree = lock(&self.tree);
        let ino = tree.child(parent, name)?;
        let node = tree.get(ino)?;
        check_removable(node, dir)?;
        let tier = node.meta.tier;
        let mut pmeta = tree.get(parent)?.meta.clone();
        pmeta.mtime = Ts::now();
        pmeta.ctime = pmeta.mtime;
        let ops = vec![Op::Delete { ino }, Op::keep(pmeta)];
        let lsn = self.log(&mut tree, ops, &[], tier)?;
        drop(tree);
        self.wait(lsn)
    }

    /// Renames; an existing target is replaced atomically (one log record). Moving into
    /// another tier re-tiers the node and everything below it.
    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        noreplace: bool,
    ) -> Result<()> {
        check_name(newname)?;
        let mut tree = lock(&self.tree);
        let ino = tree.child(parent, name)?;
        let np = tree.get(newparent)?;
        if np.dir.is_none() {
            return Err(Error::NotDir);
        }
        let (ntier, ntag) = (np.meta.tier, np.meta.tag);
        let src_is_dir = tree.get(ino)?.meta.kind == Kind::Dir;
        if src_is_dir && tree.is_within(newparent, ino) {
            return Err(Error::InvalidArgument(
                "cannot move a directory into itself",
            ));
        }
        let mut ops = Vec::new();
        if let Ok(dst) = tree.child(newparent, newname) {
            if dst == ino {
                return Ok(());
            }
            if noreplace {
                return Err(Error::Exists);
            }
            check_removable(tree.get(dst)?, src_is_dir)?;
            ops.push(Op::Delete { ino: dst });
        }
        let now = Ts::now();
        let mut meta = tree.get(ino)?.meta.clone();
        let old_tier = meta.tier;
        meta.parent = newparent;
        meta.name = newname.into();
        meta.ctime = now;
        let retier = meta.tier != ntier || meta.tag != ntag;
        meta.tier = ntier;
        meta.tag = ntag;
        ops.push(Op::keep(meta));
        if retier {
            for child in tree.descendants(ino) {
                let mut m = tree.get(child)?.meta.clone();
                m.tier = ntier;
                m.tag = ntag;
                ops.push(Op::keep(m));
            }
        }
        for dir in [parent, newparent] {
            let mut m = tree.get(dir)?.meta.clone();
            m.mtime = now;
            m.ctime = now;
            ops.push(Op::keep(m));
            if parent == newparent {
                break;
            }
        }
        // The stricter of the two tiers decides when the move is durable.
        let tier = if self.durability(old_tier) == Durability::Sync {
            old_tier
        } else {
            ntier
        };
        let lsn = self.log(&mut tree, ops, &[], tier)?;
        drop(tree);
        self.wait(lsn)
    }

    pub fn setattr(&self, ino: u64, set: SetAttr) -> Result<Attr> {
        let mut tree = lock(&self.tree);
        let mut meta = tree.get(ino)?.meta.clone();
        if let Some(p) = set.perm {
            meta.perm = p & 0o7777;
        }
        if let Some(u) = set.uid {
            meta.uid = u;
        }
        if let Some(g) = set.gid {
            meta.gid = g;
        }
        if let Some(a) = set.atime {
            meta.atime = a;
        }
        if let Some(m) = set.mtime {
            meta.mtime = m;
        }
        meta.ctime = Ts::now();
        let tier = meta.tier;
        let linked = tree.is_linked(ino);
        let lsn = if linked {
            self.log_upsert(&mut tree, meta, Content::Keep, tier)?
        } else {
            tree.get_mut(ino)?.meta = meta;
            None
        };
        drop(tree);
        // An explicit mtime also applies to an open draft (`touch -d` while open, `cp -a`).
        if let (Some(m), Some(d)) = (set.mtime, lock(&self.drafts).map.get(&ino).cloned()) {
            lock(&d).mtime = m;
        }
        self.wait(lsn)?;
        self.getattr(ino)
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let tree = lock(&self.tree);
        let node = tree.get(ino)?;
        if node.meta.kind != Kind::Symlink {
            return Err(Error::InvalidArgument("not a symlink"));
        }
        Ok(node.meta.target().to_vec())
    }

    /// Directory entries after `cookie` (their `offset` is their cookie), at most `max`.
    pub fn readdir(&self, ino: u64, cookie: u64, max: usize) -> Result<Vec<DirEntry>> {
        let tree = lock(&self.tree);
        let dir = tree.dir(ino)?;
        let mut out = Vec::with_capacity(max.min(dir.order.len()));
        for (&c, &child) in dir.order.range(cookie + 1..).take(max) {
            if let Ok(n) = tree.get(child) {
                out.push(DirEntry {
                    offset: c,
                    ino: child,
                    kind: n.meta.kind,
                    name: n.meta.name.to_vec(),
                });
            }
        }
        Ok(out)
    }

    pub fn parent_of(&self, ino: u64) -> Result<u64> {
        Ok(lock(&self.tree).get(ino)?.meta.parent)
    }

    pub fn path_of(&self, ino: u64) -> Vec<Vec<u8>> {
        lock(&self.tree).path(ino)
    }

    pub fn entry_count(&self, ino: u64) -> Result<usize> {
        Ok(lock(&self.tree).dir(ino)?.order.len())
    }

    // ---- extended attributes ---------------------------------------------------------

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        let tree = lock(&self.tree);
        let node = tree.get(ino)?;
        node.meta
            .xattrs()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(Error::NoXattr)
    }

    pub fn listxattr(&self, ino: u64) -> Result<Vec<Vec<u8>>> {
        let tree = lock(&self.tree);
        Ok(tree
            .get(ino)?
            .meta
            .xattrs()
            .iter()
            .map(|(k, _)| k.clone())
            .collect())
    }

    /// Sets (`Some`) or removes (`None`) an attribute; `create`/`replace` are the
    /// XATTR_CREATE / XATTR_REPLACE conditions.
    pub fn setxattr(
        &self,
        ino: u64,
        name: &[u8],
        value: Option<&[u8]>,
        create: bool,
        replace: bool,
    ) -> Result<()> {
        if name.len() > NAME_MAX {
            return Err(Error::Range);
        }
        let mut tree = lock(&self.tree);
        let mut meta = tree.get(ino)?.meta.clone();
        let mut xattrs = meta.xattrs().to_vec();
        let pos = xattrs.iter().position(|(k, _)| k == name);
        match (value, pos) {
            (Some(_), Some(_)) if create => return Err(Error::Exists),
            (Some(_), None) if replace => return Err(Error::NoXattr),
            (None, None) => return Err(Error::NoXattr),
            (Some(v), _) if v.len() > XATTR_VALUE_MAX => return Err(Error::Range),
            (Some(v), Some(i)) => xattrs[i].1 = v.to_vec(),
            (Some(v), None) => xattrs.push((name.to_vec(), v.to_vec())),
            (None, Some(i)) => {
                xattrs.remove(i);
            }
        }
        let total: usize = xattrs.iter().map(|(k, v)| k.len() + v.len()).sum();
        if total > XATTR_TOTAL_MAX {
            return Err(Error::NoSpace);
        }
        meta.set_xattrs(xattrs);
        meta.ctime = Ts::now();
        let tier = meta.tier;
        let lsn = self.log_upsert(&mut tree, meta, Content::Keep, tier)?;
        drop(tree);
        self.wait(lsn)
    }

    // ---- content ----------------------------------------------------------------------

    /// Counts an open handle (an unlinked file stays readable until its last close).
    pub fn open_handle(&self, ino: u64, writer: bool) -> Result<()> {
        lock(&self.tree).get_mut(ino)?.open += 1;
        if writer {
            *lock(&self.drafts).writers.entry(ino).or_default() += 1;
        }
        Ok(())
    }

    /// Counts a handle's close; the draft goes with the last writer. Returns true when that
    /// draft held uncommitted writes (refused): what the kernel cached of it is now stale.
    pub fn close_handle(&self, ino: u64, writer: bool) -> bool {
        let mut discarded = None;
        if writer {
            let mut d = lock(&self.drafts);
            let left = d.writers.get_mut(&ino).map(|w| {
                *w = w.saturating_sub(1);
                *w
            });
            if left == Some(0) {
                d.writers.remove(&ino);
                discarded = d.map.remove(&ino);
            }
        }
        let stale = discarded.is_some_and(|d| lock(&d).dirty);
        let mut tree = lock(&self.tree);
        if let Ok(n) = tree.get_mut(ino) {
            n.open = n.open.saturating_sub(1);
        }
        tree.release_orphan(ino);
        stale
    }

    /// Reads committed content, or the draft when `through_draft` (a writer's own view).
    pub fn read(&self, ino: u64, off: u64, size: usize, through_draft: bool) -> Result<Data> {
        if through_draft {
            let draft = lock(&self.drafts).map.get(&ino).cloned();
            if let Some(d) = draft {
                return lock(&d).read(off, size).map(Data::Owned);
            }
        }
        match self.read_committed(ino, off, size) {
            // A checkpoint may have moved the content between our lookup and the read.
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                self.read_committed(ino, off, size)
            }
            other => other,
        }
    }

    fn read_committed(&self, ino: u64, off: u64, size: usize) -> Result<Data> {
        let snap = {
            let tree = lock(&self.tree);
            let n = tree.get(ino)?;
            if n.meta.kind == Kind::Dir {
                return Err(Error::IsDir);
            }
            Snapshot::of(n)
        };
        self.read_version(&snap, off, size)
    }

    /// Pins the committed version of a file for a reader: small contents are held in
    /// memory, a blob is kept from deletion, so that every read of one open sees one
    /// version (close-to-open consistency) even if a commit or checkpoint comes between.
    pub fn snapshot(&self, ino: u64) -> Result<Snapshot> {
        for _ in 0..3 {
            let mut snap = {
                let tree = lock(&self.tree);
                Snapshot::of(tree.get(ino)?)
            };
            if let Location::Blob { tier, id } = snap.loc {
                self.pins.pin((tier, id));
                // Pinned after the lookup: make sure a checkpoint did not retire it between.
                if self.store.blob(tier, id).is_ok() {
                    return Ok(snap);
                }
                self.release_snapshot(&snap);
                continue;
            }
            match self.whole(ino, snap.version, snap.loc, snap.size) {
                Ok(w) => {
                    snap.whole = Some(w);
                    return Ok(snap);
                }
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Io(std::io::Error::other(
            "content kept moving; try again",
        )))
    }

    pub fn release_snapshot(&self, snap: &Snapshot) {
        if let Location::Blob { tier, id } = snap.loc {
            self.pins.unpin((tier, id));
        }
    }

    /// Reads a range of one version of a file.
    pub fn read_version(&self, snap: &Snapshot, off: u64, size: usize) -> Result<Data> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let Snapshot {
            ino,
            version,
            loc,
            size: len,
            ..
        } = *snap;
        if off >= len || size == 0 {
            return Ok(Data::Owned(Vec::new()));
        }
        let end = len.min(off + size as u64);
        match loc {
            Location::Blob { tier, id, .. } => {
                let chunks = u32::try_from(len.div_ceil(store::CHUNK as u64)).unwrap_or(u32::MAX);
                let mut out = Vec::new();
                let mut reader = None;
                let mut pos = off;
                while pos < end {
                    let idx = (pos / store::CHUNK as u64) as u32;
                    let key = Key {
                        ino,
                        version,
                        chunk: idx,
                    };
                    let mut cached = lock(&self.cache).get(&key);
                    if cached.is_none() && self.readahead.wait(&key) {
                        cached = lock(&self.cache).get(&key);
                    }
                    let chunk = match cached {
                        Some(c) => c,
                        None => {
                            if reader.is_none() {
                                reader = Some(self.store.blob(tier, id)?);
                            }
                            let r = reader.as_ref().ok_or(Error::BadHandle)?;
                            let c = Arc::new(r.chunk(idx as usize)?);
                            lock(&self.cache).put(key, c.clone());
                            c
                        }
                    };
                    self.readahead
                        .after_read(key, chunks, (tier, id), |k| lock(&self.cache).contains(k));
                    let start = (pos - idx as u64 * store::CHUNK as u64) as usize;
                    let take = ((end - pos) as usize).min(chunk.len().saturating_sub(start));
                    if take == 0 {
                        break;
                    }
                    if pos == off && pos + take as u64 == end {
                        // The whole read lies in one chunk: hand out the cached chunk.
                        return Ok(Data::Shared(chunk, start..start + take));
                    }
                    out.reserve((end - off) as usize);
                    out.extend_from_slice(&chunk[start..start + take]);
                    pos += take as u64;
                }
                Ok(Data::Owned(out))
            }
            _ => {
                let whole = match &snap.whole {
                    Some(w) => w.clone(),
                    None => self.whole(ino, version, loc, len)?,
                };
                Ok(Data::Shared(whole, off as usize..end as usize))
            }
        }
    }

    /// Whole small content (log or pack), through the cache.
    fn whole(&self, ino: u64, version: u64, loc: Location, len: u64) -> Result<Arc<Vec<u8>>> {
        let key = Key {
            ino,
            version,
            chunk: WHOLE,
        };
        if let Some(c) = lock(&self.cache).get(&key) {
            return Ok(c);
        }
        let data = Arc::new(self.load(loc, len)?);
        lock(&self.cache).put(key, data.clone());
        Ok(data)
    }

    fn load(&self, loc: Location, len: u64) -> Result<Vec<u8>> {
        match loc {
            Location::Empty => Ok(Vec::new()),
            Location::Wal { seg, off } => self.wal.read_at(seg, off, len as usize),
            Location::Pack {
                tier,
                id,
                off,
                len: flen,
            } => self.store.read_pack(tier, id, off, flen, len),
            Location::Blob { tier, id, .. } => {
                let r = self.store.blob(tier, id)?;
                let mut out = Vec::with_capacity(len as usize);
                for i in 0..r.chunks() {
                    out.extend(r.chunk(i)?);
                }
                Ok(out)
            }
        }
    }

    /// The draft of `ino`, made from the committed content (its first `keep` bytes) if
    /// there is none yet.
    /// Where large content of `tier` is coded into a blob.
    fn stream_to(&self, tier: Tier) -> StreamTo {
        StreamTo {
            store: self.store.clone(),
            coder: self.coder.clone(),
            pins: self.pins.clone(),
            tier,
        }
    }

    fn draft(&self, ino: u64, keep: u64) -> Result<Arc<Mutex<Draft>>> {
        if let Some(d) = lock(&self.drafts).map.get(&ino) {
            return Ok(d.clone());
        }
        let (mtime, len, tier) = {
            let tree = lock(&self.tree);
            let n = tree.get(ino)?;
            if n.meta.kind != Kind::File {
                return Err(Error::IsDir);
            }
            (n.meta.mtime, n.meta.size, n.meta.tier)
        };
        let spill_at = self.settings().spill_at;
        let spill_path = self.root.join("staging").join(format!("{ino}.draft"));
        let mut d = Draft::new(spill_at, spill_path, mtime, Some(self.stream_to(tier)));
        let copy = len.min(keep);
        let mut pos = 0;
        while pos < copy {
            let part = self.read(ino, pos, store::CHUNK.min((copy - pos) as usize), false)?;
            if part.is_empty() {
                break;
            }
            d.write(pos, &part)?;
            pos += part.len() as u64;
        }
        d.dirty = false;
        let mut drafts = lock(&self.drafts);
        // Another thread may have made one meanwhile; the first one wins.
        Ok(drafts
            .map
            .entry(ino)
            .or_insert_with(|| Arc::new(Mutex::new(d)))
            .clone())
    }

    pub fn write(&self, ino: u64, off: u64, data: &[u8]) -> Result<()> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let d = self.draft(ino, u64::MAX)?;
        let mut d = lock(&d);
        d.write(off, data)?;
        d.mtime = Ts::now();
        Ok(())
    }

    /// Truncates the draft (made if needed) to `size`.
    pub fn truncate(&self, ino: u64, size: u64) -> Result<()> {
        let d = self.draft(ino, size)?;
        let mut d = lock(&d);
        d.truncate(size)?;
        d.mtime = Ts::now();
        Ok(())
    }

    /// Drops a draft nobody holds open any more (after a truncate by path).
    pub fn drop_unheld_draft(&self, ino: u64) {
        let mut d = lock(&self.drafts);
        if !d.writers.contains_key(&ino) {
            d.map.remove(&ino);
        }
    }

    /// Commits the draft of `ino`, if it has unsaved writes: `check` sees the inode's
    /// current metadata and the new bytes and may refuse (the draft then stays, the
    /// committed version is untouched). At `Fsync`, returns only once durable.
    pub fn commit(
        &self,
        ino: u64,
        when: CommitAt,
        check: &dyn Fn(&Meta, &Bytes<'_>) -> Result<()>,
    ) -> Result<()> {
        let sync = when == CommitAt::Fsync;
        let draft = {
            let drafts = lock(&self.drafts);
            // The release of one handle must not commit what another writer has only begun
            // (a new `O_TRUNC` open racing the previous handle's asynchronous release):
            // that writer's own close or release commits it.
            if when == CommitAt::Release && drafts.writers.get(&ino).is_some_and(|w| *w > 1) {
                return Ok(());
            }
            drafts.map.get(&ino).cloned()
        };
        let nothing_to_commit = |sync: bool| {
            if sync {
                self.sync_all()
            } else {
                self.settle(ino)
            }
        };
        let Some(draft) = draft else {
            return nothing_to_commit(sync);
        };
        let mut d = lock(&draft);
        if !d.dirty || (when == CommitAt::Close && !d.written) {
            return nothing_to_commit(sync);
        }
        let meta = {
            let tree = lock(&self.tree);
            if !tree.is_linked(ino) {
                // Unlinked while open: there is nothing left to commit to.
                d.dirty = false;
                return Ok(());
            }
            tree.get(ino)?.meta.clone()
        };
        if let Some(why) = &d.refused {
            return Err(Error::InvalidRecord(why.clone()));
        }
        let bytes = d.bytes()?;
        if let Err(e) = check(&meta, &bytes) {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            if let Error::InvalidRecord(why) = &e {
                d.refused = Some(why.clone());
            }
            return Err(e);
        }
        let len = bytes.len();
        let inline_max = self.settings().inline_max as u64;
        // Streamed while it was written: the blob is coded and fsynced already.
        let sealed = match bytes {
            Bytes::Blob { tier, id, .. } if tier == meta.tier && len > inline_max => {
                Some((tier, id))
            }
            _ => None,
        };
        // Dropped once the record naming the new blob is logged (or the commit failed).
        let mut blob_pin = None;
        // Sized exactly: this buffer is what the cache keeps of the record.
        let mut inline = Vec::with_capacity(if len <= inline_max { len as usize } else { 0 });
        let content = if len == 0 {
            Content::Empty
        } else if len <= inline_max {
            bytes.reader().read_to_end(&mut inline)?;
            Content::Inline
        } else if let Some((tier, id)) = sealed {
            Content::Blob { tier, id }
        } else {
            // Large: a blob coded for the tier, fsynced before the record that names it.
            let (id, pin) = draft::code_blob(&self.stream_to(meta.tier), &mut bytes.reader())?;
            blob_pin = Some(pin);
            Content::Blob {
                tier: meta.tier,
                id,
            }
        };
        let mtime = d.mtime;
        let mut tree = lock(&self.tree);
        let mut meta = tree.get(ino)?.meta.clone();
        meta.size = len;
        meta.mtime = mtime;
        meta.ctime = Ts::now();
        let tier = meta.tier;
        let parent = meta.parent;
        let mut lsn = self.log(&mut tree, vec![Op::Upsert { meta, content }], &inline, tier)?;
        let version = tree.get(ino)?.version;
        drop(tree);
        drop(blob_pin);
        if sealed.is_some() {
            d.committed_blob();
        }
        d.dirty = false;
        d.written = false;
        drop(d);
        {
            let mut cache = lock(&self.cache);
            if matches!(content, Content::Inline) {
                cache.put(
                    Key {
                        ino,
                        version,
                        chunk: WHOLE,
                    },
                    Arc::new(inline),
                );
            }
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        lock(&self.dir_counters).entry(parent).or_default().1 += 1;
        if sync && lsn.is_none() {
            lsn = Some(self.wal.written());
        }
        self.wait(lsn)
    }

    /// Makes everything logged so far durable (fsync of a file without a draft).
    pub fn sync_all(&self) -> Result<()> {
        self.wal.sync_to(self.wal.written())
    }

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

    // ---- checkpoints ------------------------------------------------------------------

    /// Moves committed content out of the log into the tiers' shards (coded for the tier),
    /// writes a checkpoint of every inode, then retires old log segments and shard files.
    pub fn checkpoint(&self) -> Result<()> {
        let mut seq = lock(&self.checkpoint_seq);
        let started = Instant::now();
        let new_seg = self.wal.rotate()?;

        // What must move: content still in the log, blobs in the wrong tier or uncoded,
        // and the live entries of packs that are mostly garbage.
        let work: Vec<(u64, Location, u64, Tier)> = {
            let tree = lock(&self.tree);
            let mut live: HashMap<(Tier, u64), u64> = HashMap::new();
            for n in tree.nodes() {
                if let Location::Pack { tier, id, len, .. } = n.loc {
                    *live.entry((tier, id)).or_default() += len as u64;
                }
            }
            let sparse: HashSet<(Tier, u64)> = self
                .store
                .files()
                .into_iter()
                .filter(|(t, k, id, size)| {
                    *k == FileKind::Pack && live.get(&(*t, *id)).is_some_and(|l| l * 2 < *size)
                })
                .map(|(t, _, id, _)| (t, id))
                .collect();
            tree.nodes()
                .filter(|n| match n.loc {
                    Location::Wal { seg, .. } => seg < new_seg,
                    Location::Pack { tier, id, .. } => {
                        tier != n.meta.tier || sparse.contains(&(tier, id))
                    }
                    Location::Blob { tier, .. } => tier != n.meta.tier,
                    Location::Empty => false,
                })
                .map(|n| (n.meta.ino, n.loc, n.meta.size, n.meta.tier))
                .collect()
        };

        // Write the new shard files outside the lock.
        let mut packs: HashMap<Tier, store::PackWriter> = HashMap::new();
        let mut moved = Vec::with_capacity(work.len());
        for (ino, loc, size, tier) in work {
            let new_loc = if size > self.settings().inline_max as u64
                || matches!(loc, Location::Blob { .. })
            {
                match self.recode_blob(loc, size, tier) {
                    Ok(l) => l,
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            } else {
                let data = match self.load(loc, size) {
                    Ok(d) => d,
                    // Deleted or replaced meanwhile: nothing to move.
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let w = match packs.entry(tier) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(self.store.pack_writer(tier)?)
                    }
                };
                let (off, len) = w.append(&data)?;
                Location::Pack {
                    tier,
                    id: w.id,
                    off,
                    len,
                }
            };
            moved.push((ino, loc, new_loc));
        }
        for (_, w) in packs {
            w.finish()?;
        }

        // Swap locations and snapshot every inode at one log position.
        let ckpt_dir = self.root.join("checkpoints");
        let (writer, keep, log_end, next_file_id) = {
            let mut tree = lock(&self.tree);
            for (ino, old, new) in moved {
                if let Ok(n) = tree.get_mut(ino)
                    && n.loc == old
                {
                    n.loc = new;
                }
            }
            let next_file_id = self.store.next_id();
            let order = tree.walk();
            let header = checkpoint::Header {
                wal_from: new_seg,
                next_ino: tree.next_ino,
                next_file_id,
                count: order.len() as u64,
                taken: Ts::now(),
            };
            let mut w = checkpoint::Writer::create(&ckpt_dir, *seq + 1, &header)?;
            let mut keep = HashSet::new();
            for ino in order {
                let n = tree.get(ino)?;
                w.entry(&n.meta, n.loc)?;
                keep.extend(shard_file(n.loc));
            }
            keep.extend(tree.orphan_locations().filter_map(shard_file));
            keep.extend(
                self.pins
                    .keys()
                    .into_iter()
                    .map(|(t, id)| (t, FileKind::Blob, id)),
            );
            (w, keep, self.wal.written(), next_file_id)
        };
        // Every change the snapshot contains must be durable before the snapshot is.
        self.wal.sync_to(log_end)?;
        writer.finish()?;
        *seq += 1;
        self.checkpointed_at.store(log_end, Ordering::Relaxed);

        self.wal.retire_before(new_seg)?;
        checkpoint::remove_older(&ckpt_dir, *seq)?;
        let mut removed = 0;
        for (tier, kind, id, _) in self.store.files() {
            if id < next_file_id && !keep.contains(&(tier, kind, id)) {
                self.store.remove(tier, kind, id)?;
                removed += 1;
            }
        }
        self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
        log::info!(
            "checkpoint {} written in {:?}; {removed} shard files retired",
            *seq,
            started.elapsed()
        );
        Ok(())
    }

    /// Writes content as a blob coded for `tier` (large contents, re-tiered blobs).
    fn recode_blob(&self, loc: Location, size: u64, tier: Tier) -> Result<Location> {
        let mut w = self.store.blob_writer(tier, tier.codec())?;
        let id = w.id;
        match loc {
            Location::Blob {
                tier: t, id: old, ..
            } => {
                let r = self.store.blob(t, old)?;
                for i in 0..r.chunks() {
                    w.write(&r.chunk(i)?)?;
                }
            }
            other => w.write(&self.load(other, size)?)?,
        }
        w.finish()?;
        Ok(Location::Blob { tier, id })
    }

    /// Final flush at unmount: everything durable, a checkpoint, background threads stopped.
    pub fn shutdown(&self) -> Result<()> {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        {
            let (m, cv) = &self.stop;
            *lock(m) = true;
            cv.notify_all();
        }
        let res = self.checkpoint();
        self.wal.shutdown()?;
        res
    }

    // ---- observation --------------------------------------------------------------------

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
                if let Location::Wal { .. } = n.loc {
                    s.bytes_in_log += n.meta.size;
                }
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
        let c = lock(&self.cache);
        Counters {
            commits: self.counters.commits.load(Ordering::Relaxed),
            refused_commits: self.counters.refused.load(Ordering::Relaxed),
            reads: self.counters.reads.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            checkpoints: self.counters.checkpoints.load(Ordering::Relaxed),
            cache_hits: c.hits,
            cache_misses: c.misses,
            cache_evictions: c.evictions,
            cache_bytes: c.bytes() as u64,
            cache_budget: c.budget() as u64,
            cache_entries: c.len() as u64,
            log_bytes_since_checkpoint: self.wal.written()
                - self.checkpointed_at.load(Ordering::Relaxed),
        }
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

/// A new inode's metadata, all its times now.
fn new_meta(
    ino: u64,
    (parent, name): (u64, &[u8]),
    new: &NewNode<'_>,
    (tier, tag): (Tier, u8),
) -> Meta {
    let now = Ts::now();
    Meta {
        ino,
        parent,
        name: name.into(),
        kind: new.kind,
        perm: new.perm & 0o7777,
        uid: new.uid,
        gid: new.gid,
        size: new.target.len() as u64,
        atime: now,
        mtime: now,
        ctime: now,
        tier,
        tag,
        extra: Extra::boxed(Vec::new(), new.target.into()),
    }
}

/// Whether `node` may go (unlinked, or replaced by a rename): a directory only when `dir`
/// is asked for and it is empty, anything else only when it is not.
fn check_removable(node: &tree::Node, dir: bool) -> Result<()> {
    match (dir, node.meta.kind == Kind::Dir) {
        (true, false) => Err(Error::NotDir),
        (false, true) => Err(Error::IsDir),
        _ if node.dir.as_ref().is_some_and(|d| !d.order.is_empty()) => Err(Error::NotEmpty),
        _ => Ok(()),
    }
}

/// The shard file a location lives in, if any.
fn shard_file(loc: Location) -> Option<(Tier, FileKind, u64)> {
    match loc {
        Location::Pack { tier, id, .. } => Some((tier, FileKind::Pack, id)),
        Location::Blob { tier, id, .. } => Some((tier, FileKind::Blob, id)),
        _ => None,
    }
}

fn apply_op(tree: &mut Tree, op: Op, seg: u64, inline_off: u64) {
    match op {
        Op::Upsert { meta, content } => {
            let loc = match content {
                Content::Keep => None,
                Content::Empty => Some(Location::Empty),
                Content::Inline => Some(Location::Wal {
                    seg,
                    off: inline_off,
                }),
                Content::Blob { tier, id } => Some(Location::Blob { tier, id }),
            };
            tree.upsert(meta, loc);
        }
        Op::Delete { ino } => tree.delete(ino),
    }
}

fn apply_record(tree: &mut Tree, seg: u64, payload_off: u64, payload: &[u8]) -> Result<()> {
    let bad =
        |why: &str| Error::Corrupt(format!("log segment {seg} record at {payload_off}: {why}"));
    let (&version, rest) = payload.split_first().ok_or_else(|| bad("empty"))?;
    if version != RECORD_VERSION {
        return Err(bad(&format!(
            "record version {version}, this build reads {RECORD_VERSION}"
        )));
    }
    let len_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("short"))?;
    let ops_len = u32::from_le_bytes(len_bytes) as usize;
    let body = rest.get(4..4 + ops_len).ok_or_else(|| bad("short ops"))?;
    let ops: Vec<Op> = decode(body)?;
    let inline_off = payload_off + 5 + ops_len as u64;
    for op in ops {
        apply_op(tree, op, seg, inline_off);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tree::Kind;

    fn settings() -> Settings {
        Settings {
            inline_max: 1024,
            spill_at: 4096,
            ..Settings::default()
        }
    }

    fn file(e: &Engine, name: &str) -> u64 {
        e.create(
            ROOT,
            name.as_bytes(),
            NewNode {
                kind: Kind::File,
                perm: 0o644,
                uid: 0,
                gid: 0,
                target: &[],
                tier: None,
                tag: None,
            },
        )
        .expect("create")
        .ino
    }

    fn put(e: &Engine, ino: u64, data: &[u8]) {
        e.open_handle(ino, true).expect("open");
        e.truncate(ino, 0).expect("truncate");
        e.write(ino, 0, data).expect("write");
        e.commit(ino, CommitAt::Close, &|_, _| Ok(()))
            .expect("commit");
        e.close_handle(ino, true);
    }

    fn get(e: &Engine, ino: u64) -> Vec<u8> {
        e.read(ino, 0, 1 << 30, false).expect("read").into_vec()
    }

    fn new_universe(dir: &Path, tier: Tier) -> Engine {
        let e = Engine::open(dir, settings()).expect("open");
        e.create_root(0o755, tier, 0).expect("root");
        e
    }

    #[test]
    fn small_and_large_contents_survive_checkpoint_and_reopen_in_every_tier() {
        for tier in Tier::ALL {
            let tmp = tempfile::tempdir().expect("tmp");
            let big: Vec<u8> = (0..3 * store::CHUNK + 17).map(|i| (i % 97) as u8).collect();
            let (a, b);
            {
                let e = new_universe(tmp.path(), tier);
                a = file(&e, "small");
                b = file(&e, "big");
                put(&e, a, b"hello");
                put(&e, b, &big);
                // Read the blob twice: the second read is served from the cache.
                assert_eq!(get(&e, b), big);
                assert_eq!(
                    e.read(b, store::CHUNK as u64 - 2, 4, false)
                        .expect("r")
                        .into_vec(),
                    big[store::CHUNK - 2..store::CHUNK + 2].to_vec()
                );
                e.checkpoint().expect("checkpoint");
                put(&e, a, b"after the checkpoint");
                // Dropped without shutdown: the last change comes back from the log.
            }
            let e = Engine::open(tmp.path(), settings()).expect("reopen");
            assert_eq!(get(&e, a), b"after the checkpoint", "{tier:?}");
            assert_eq!(get(&e, b), big, "{tier:?}");
            if tier != Tier::Hot {
                let s = &e.tier_stats()[tier as usize];
                assert!(
                    s.bytes_on_disk < s.bytes_stored / 2,
                    "{tier:?} is stored compressed: {s:?}"
                );
            }
        }
    }

    #[test]
    fn read_ahead_serves_sequential_readers_the_right_bytes_through_commits() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = Arc::new(new_universe(tmp.path(), Tier::Warm));
        e.start().expect("start");
        let f = file(&e, "f");
        let versions: Vec<Vec<u8>> = (0..3u8)
            .map(|v| {
                (0..6 * store::CHUNK + 5)
                    .map(|i| (i % 251) as u8 ^ v)
                    .collect()
            })
            .collect();
        put(&e, f, &versions[0]);
        let readers: Vec<_> = (0..3)
            .map(|t| {
                let (e, versions) = (e.clone(), versions.clone());
                std::thread::spawn(move || {
                    for _ in 0..4 {
                        let snap = e.snapshot(f).expect("snapshot");
                        let mut got = Vec::new();
                        // Reader 0 reads in 1 MiB steps, the others in odd-sized ones.
                        let step = if t == 0 { store::CHUNK } else { 300_007 * t };
                        loop {
                            let d = e.read_version(&snap, got.len() as u64, step).expect("read");
                            if d.is_empty() {
                                break;
                            }
                            got.extend_from_slice(&d);
                        }
                        e.release_snapshot(&snap);
                        assert!(versions.contains(&got), "reader {t} saw a mix");
                    }
                })
            })
            .collect();
        for v in versions.iter().cycle().skip(1).take(4) {
            put(&e, f, v);
            e.checkpoint().expect("checkpoint");
        }
        for r in readers {
            r.join().expect("reader");
        }
        e.shutdown().expect("shutdown");
        assert!(!e.readahead.wait(&Key {
            ino: f,
            version: 0,
            chunk: 1
        }));
    }

    #[test]
    fn a_checkpoint_during_a_large_commit_keeps_the_new_blob() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = Arc::new(new_universe(tmp.path(), Tier::Warm));
        let f = file(&e, "f");
        let stop = Arc::new(AtomicBool::new(false));
        let checkpointer = {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    e.checkpoint().expect("checkpoint");
                }
            })
        };
        for round in 0..60u8 {
            let body: Vec<u8> = (0..2 * store::CHUNK + 7)
                .map(|i| (i % 241) as u8 ^ round)
                .collect();
            put(&e, f, &body);
            assert!(
                get(&e, f) == body,
                "round {round}: the committed blob went missing"
            );
        }
        stop.store(true, Ordering::SeqCst);
        checkpointer.join().expect("checkpointer");
    }

    #[test]
    fn a_refused_draft_does_not_show_in_the_files_attributes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "f.json");
        put(&e, f, b"{}");
        e.open_handle(f, true).expect("open");
        e.write(f, 0, b"[not json").expect("write");
        assert_eq!(
            e.getattr(f).expect("attr").size,
            9,
            "the writer sees its draft"
        );
        let refuse = |_: &Meta, _: &Bytes<'_>| Err(Error::InvalidRecord("bad".into()));
        assert!(e.commit(f, CommitAt::Close, &refuse).is_err());
        // The handle is not released yet (the kernel releases asynchronously).
        assert_eq!(
            e.getattr(f).expect("attr").size,
            2,
            "the committed size again"
        );
        e.write(f, 9, b"]").expect("write");
        assert_eq!(
            e.getattr(f).expect("attr").size,
            10,
            "written again: the draft"
        );
        e.close_handle(f, true);
    }

    #[test]
    fn a_reader_keeps_its_version_across_commits_and_checkpoints() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Warm);
        let f = file(&e, "f");
        let v1: Vec<u8> = vec![1; 3 * store::CHUNK];
        put(&e, f, &v1);
        let snap = e.snapshot(f).expect("snapshot");
        put(&e, f, &[2; 10]);
        e.checkpoint().expect("checkpoint");
        assert_eq!(
            e.read_version(&snap, 0, 1 << 30)
                .expect("pinned read")
                .into_vec(),
            v1
        );
        e.release_snapshot(&snap);
        e.checkpoint().expect("checkpoint");
        assert_eq!(get(&e, f), vec![2; 10]);
    }

    /// Cut the log at every byte offset of its last records: recovery always succeeds and
    /// gives a state some prefix of the commits produced, never a mix.
    #[test]
    fn log_cut_at_every_offset_recovers_a_committed_prefix() {
        let tmp = tempfile::tempdir().expect("tmp");
        let versions: Vec<Vec<u8>> = (0..4)
            .map(|i| format!("version {i} ").repeat(i + 1).into_bytes())
            .collect();
        let f;
        {
            let e = new_universe(tmp.path(), Tier::Hot);
            f = file(&e, "f");
            for v in &versions {
                put(&e, f, v);
            }
        }
        let wal_dir = tmp.path().join("backups/cosmic_logs");
        let seg = wal::list_segments(&wal_dir).expect("list")[0];
        let path = wal_dir.join(wal::segment_name(seg));
        let full = fs::read(&path).expect("read");
        let from = full.len() - 600;
        for cut in from..=full.len() {
            let probe = tempfile::tempdir().expect("tmp");
            let probe_wal = probe.path().join("backups/cosmic_logs");
            fs::create_dir_all(&probe_wal).expect("mkdir");
            fs::write(probe_wal.join(wal::segment_name(seg)), &full[..cut]).expect("write");
            let e = Engine::open(probe.path(), settings()).expect("a torn tail recovers");
            match e.getattr(f) {
                Ok(_) => {
                    let got = get(&e, f);
                    assert!(
                        got.is_empty() || versions.contains(&got),
                        "cut {cut}: {got:?}"
                    );
                }
                Err(Error::NotFound) => {}
                Err(other) => panic!("cut {cut}: {other}"),
            }
        }
        // The whole log gives the last version.
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert_eq!(get(&e, f), versions[3]);
    }

    #[test]
    fn a_late_release_does_not_commit_another_writers_truncation() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "f");
        put(&e, f, b"committed");
        e.open_handle(f, true).expect("old writer");
        e.open_handle(f, true).expect("new writer");
        e.truncate(f, 0).expect("new writer's O_TRUNC");
        // The old handle's release arrives now: it must leave the committed version.
        e.commit(f, CommitAt::Release, &|_, _| Ok(()))
            .expect("release");
        e.close_handle(f, true);
        assert_eq!(get(&e, f), b"committed");
        // The new writer's own release commits its (empty) file.
        e.commit(f, CommitAt::Release, &|_, _| Ok(()))
            .expect("release");
        e.close_handle(f, true);
        assert_eq!(get(&e, f), b"");
    }

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
