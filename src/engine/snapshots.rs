//! Snapshots: the universe at one moment, kept under a name. Taking one pins a place of
//! the engine: the newest checkpoint and the log up to its end. Nothing is copied or
//! walked, so it takes the same time at any size; its tree is rebuilt from them when it is
//! first browsed, as recovery would rebuild the live one. The content it names (shard
//! files, log segments) is the live universe's own, and every later checkpoint keeps it,
//! and the pinned checkpoint and log, until the snapshot is removed. Formats: FORMAT.md,
//! "Snapshots".

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::codec::Tier;
use super::disk::{self, Disk, Open};
use super::extents;
use super::meta_ops::attr_of;
use super::record::apply_record;
use super::store::FileKind;
use super::tree::{Kind, ROOT, Tree, Ts};
use super::types::{Attr, Data};
use super::wal::{self, Position};
use super::{Engine, checkpoint, decode, encode, frame, lock};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"ISLSNAP1";
/// 2: a snapshot pins a checkpoint and a log position (`Base::Log`) and learns its shard
/// files after it was taken. Version 1 info files (a tree of its own) are still read.
const VERSION: u16 = 2;
/// Snapshot trees kept loaded for browsing: the ones in use now, not every one.
const LOADED: usize = 2;

/// What files and bytes a snapshot holds in one tier.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
}

/// A shard file: tier, kind, id.
type ShardFile = (Tier, FileKind, u64);

/// Where a snapshot's tree is rebuilt from.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Base {
    /// A tree file of its own, `ckpt-<id>.ckpt` (version 1), and the log segments its
    /// entries name.
    Tree { segments: Vec<u64> },
    /// Checkpoint `checkpoint` of the live universe (`None`: there was none yet), then
    /// the log's segments from `from` up to `until`.
    Log {
        checkpoint: Option<u64>,
        from: u64,
        until: Position,
    },
}

/// A snapshot as its `info` file states it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapInfo {
    pub id: u64,
    pub name: String,
    pub taken: Ts,
    /// Log bytes written since the daemon started, up to the snapshot.
    pub log_position: u64,
    /// The snapshot newest when this one was taken: an incremental backup goes from it
    /// to this one.
    pub parent: Option<u64>,
    /// Directories taken empty (what is below them is not part of the snapshot): a
    /// region's own bookkeeping, such as the snapshots' directories themselves.
    pub hidden: Vec<u64>,
    base: Base,
    /// The shard files its tree names, kept while it is: `None` until the first
    /// checkpoint after it was taken reads them (that one retires no shard file).
    files: Option<Vec<ShardFile>>,
}

/// A snapshot's info as version 1 wrote it.
#[derive(Deserialize)]
struct SnapInfoV1 {
    id: u64,
    name: String,
    taken: Ts,
    log_position: u64,
    _tiers: [Totals; 3],
    _dirs: u64,
    _others: u64,
    parent: Option<u64>,
    hidden: Vec<u64>,
    refs: Vec<ShardFile>,
    segments: Vec<u64>,
}

impl SnapInfo {
    fn read(bytes: &[u8], what: &str) -> Result<SnapInfo> {
        if let Ok(body) = frame::unseal(bytes, MAGIC, VERSION, what) {
            return decode(body);
        }
        let v1: SnapInfoV1 = decode(frame::unseal(bytes, MAGIC, 1, what)?)?;
        Ok(SnapInfo {
            id: v1.id,
            name: v1.name,
            taken: v1.taken,
            log_position: v1.log_position,
            parent: v1.parent,
            hidden: v1.hidden,
            base: Base::Tree {
                segments: v1.segments,
            },
            files: Some(v1.refs),
        })
    }
}

/// What a snapshot holds: regular files and bytes by tier (hot, warm, cold), then
/// directories and other entries (symlinks, special files).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    pub tiers: [Totals; 3],
    pub dirs: u64,
    pub others: u64,
}

impl Contents {
    fn of(tree: &Tree) -> Contents {
        let mut c = Contents::default();
        for n in tree.nodes().filter(|n| n.meta.ino != ROOT) {
            match n.meta.kind {
                Kind::File => {
                    let t = &mut c.tiers[n.meta.tier as usize];
                    t.files += 1;
                    t.bytes += n.meta.size;
                }
                Kind::Dir => c.dirs += 1,
                _ => c.others += 1,
            }
        }
        c
    }

    pub fn files(&self) -> u64 {
        self.tiers.iter().map(|t| t.files).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.tiers.iter().map(|t| t.bytes).sum()
    }
}

/// What the snapshots keep from a checkpoint's retiring.
#[derive(Default)]
pub(super) struct Kept {
    pub files: HashSet<ShardFile>,
    pub segments: HashSet<u64>,
    pub checkpoints: HashSet<u64>,
    /// A snapshot whose shard files are not known yet: no shard file may go.
    pub unread: bool,
}

/// The snapshots of a data directory, and the trees of those being browsed.
#[derive(Default)]
pub(super) struct Catalog {
    infos: BTreeMap<u64, Arc<SnapInfo>>,
    next_id: u64,
    /// Most recently used last.
    loaded: Vec<Arc<Frozen>>,
    /// The newest checkpoint (0: none yet) and the first log segment it does not hold:
    /// what a snapshot taken now pins.
    latest: (u64, u64),
}

fn info_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("snap-{id:08}.info"))
}

fn tree_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("ckpt-{id:08}.ckpt"))
}

impl Catalog {
    /// Reads the snapshots of `dir`; `latest` as in `Catalog::latest`. A tree file
    /// whose info file was never written (a crash while a version 1 build took it) or was
    /// removed (a crash while removing it) goes now.
    pub(super) fn open(disk: &dyn Disk, dir: &Path, latest: (u64, u64)) -> Result<Catalog> {
        disk.create_dir_all(dir)?;
        let mut cat = Catalog {
            latest,
            ..Catalog::default()
        };
        let mut trees = Vec::new();
        for (name, _) in disk.list(dir)? {
            let name = name.to_string_lossy().into_owned();
            let id = |prefix: &str, ext: &str| {
                name.strip_prefix(prefix)?
                    .strip_suffix(ext)?
                    .parse::<u64>()
                    .ok()
            };
            if let Some(id) = id("snap-", ".info") {
                let path = info_path(dir, id);
                let bytes = disk::read(disk, &path)?;
                let info = SnapInfo::read(&bytes, &path.display().to_string())?;
                cat.next_id = cat.next_id.max(info.id + 1);
                cat.infos.insert(info.id, Arc::new(info));
            } else if let Some(id) = id("ckpt-", ".ckpt") {
                trees.push(id);
            } else if name.ends_with(".tmp") {
                disk.remove(&dir.join(&name))?;
            }
        }
        for id in trees {
            cat.next_id = cat.next_id.max(id + 1);
            if !cat.infos.contains_key(&id) {
                log::warn!(
                    "snapshot tree {id} has no info (taking or removing it was cut); removed"
                );
                disk.remove(&tree_path(dir, id))?;
            }
        }
        Ok(cat)
    }

    /// What every snapshot keeps: shard files, log segments, checkpoints.
    pub(super) fn kept(&self) -> Kept {
        let mut kept = Kept::default();
        for info in self.infos.values() {
            match &info.files {
                Some(files) => kept.files.extend(files.iter().copied()),
                None => kept.unread = true,
            }
            match &info.base {
                Base::Tree { segments } => kept.segments.extend(segments.iter().copied()),
                Base::Log {
                    checkpoint,
                    from,
                    until,
                } => {
                    kept.segments.extend(*from..=until.seg);
                    kept.checkpoints.extend(*checkpoint);
                }
            }
        }
        kept
    }

    /// Records that checkpoint `seq`, holding the log before segment `wal_from`, is now
    /// the newest.
    pub(super) fn set_latest(&mut self, seq: u64, wal_from: u64) {
        self.latest = (seq, wal_from);
    }
}

/// A snapshot's tree, loaded: read-only, browsed by inode like the live one.
pub struct Frozen {
    /// Its info when it was loaded (its shard files may have been read since).
    pub info: Arc<SnapInfo>,
    pub contents: Contents,
    tree: Tree,
}

impl Frozen {
    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        Ok(attr_of(&self.tree, self.tree.get(ino)?))
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        self.getattr(self.tree.child(parent, name)?)
    }

    /// At most `max` entries of `dir` listed after position `after` (from the start for
    /// `None`), each with its position: a listing read in pages costs each page alone.
    pub fn entries(
        &self,
        dir: u64,
        after: Option<u64>,
        max: usize,
    ) -> Result<Vec<(u64, Vec<u8>, Attr)>> {
        let listing = self.tree.dir(dir)?;
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(listing
            .order
            .range((from, std::ops::Bound::Unbounded))
            .filter_map(|(&cookie, &ino)| {
                let node = self.tree.get(ino).ok()?;
                let name = self.tree.entry_name(node, dir, cookie)?;
                Some((cookie, name.to_vec(), attr_of(&self.tree, node)))
            })
            .take(max)
            .collect())
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let node = self.tree.get(ino)?;
        match node.meta.kind {
            Kind::Symlink => Ok(node.meta.target().to_vec()),
            _ => Err(Error::InvalidArgument("not a symlink")),
        }
    }

    pub fn xattrs(&self, ino: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self.tree.get(ino)?.meta.xattrs().to_vec())
    }

    /// The names from the root down to `ino`.
    pub fn path(&self, ino: u64) -> Vec<Vec<u8>> {
        self.tree.path(ino)
    }

    pub(super) fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Every entry below the root, parents before children, as (path from the root,
    /// attributes): each inode once, under its first name.
    pub fn walk(&self) -> Vec<(Vec<Vec<u8>>, Attr)> {
        self.tree
            .walk()
            .into_iter()
            .filter(|n| n.meta.ino != ROOT)
            .map(|n| (self.tree.path(n.meta.ino), attr_of(&self.tree, n)))
            .collect()
    }

    /// The shard files its entries name.
    fn shard_files(&self) -> Vec<ShardFile> {
        let mut files: Vec<ShardFile> = self
            .tree
            .nodes()
            .flat_map(|n| extents::each(&n.loc, n.meta.size).filter_map(|p| p.part.shard_file()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        files.sort_unstable();
        files
    }
}

impl Engine {
    fn snapshot_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub(super) fn checkpoint_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Takes snapshot `name` (names are the caller's to keep unique), the directories
    /// `hidden` taken empty: it pins the newest checkpoint and the log up to its end, made
    /// durable, so its time is that of an fsync and a small file, whatever the size.
    pub fn take_snapshot(&self, name: &str, hidden: &[u64]) -> Result<Arc<SnapInfo>> {
        let started = std::time::Instant::now();
        // Held throughout: no checkpoint retires what this pins before it is published.
        let mut cat = lock(&self.snapshots);
        let (until, written) = self.wal.position();
        // A snapshot holds nothing that is not durable.
        self.wal.sync_to(written)?;
        let (checkpoint, from) = cat.latest;
        let info = SnapInfo {
            id: cat.next_id,
            name: name.to_string(),
            taken: Ts::now(),
            log_position: written,
            parent: cat.infos.keys().next_back().copied(),
            hidden: hidden.to_vec(),
            base: Base::Log {
                checkpoint: (checkpoint > 0).then_some(checkpoint),
                from,
                until,
            },
            files: None,
        };
        self.write_info(&info)?;
        cat.next_id += 1;
        let info = Arc::new(info);
        cat.infos.insert(info.id, info.clone());
        drop(cat);
        log::info!(
            "snapshot {} taken in {:?}: checkpoint {checkpoint}, then the log to segment {} \
             byte {}",
            info.id,
            started.elapsed(),
            until.seg,
            until.off
        );
        crate::events::record(
            "snapshot",
            serde_json::json!({
                "name": info.name,
                "id": info.id,
                "engine_position": info.log_position,
                "checkpoint": checkpoint,
            }),
        );
        Ok(info)
    }

    /// Writes a snapshot's info file, durably, in place of any before it.
    fn write_info(&self, info: &SnapInfo) -> Result<()> {
        let dir = self.snapshot_dir();
        let mut out = frame::file_header(MAGIC, VERSION).to_vec();
        out.extend_from_slice(&encode(info));
        frame::seal(&mut out);
        let path = info_path(&dir, info.id);
        let tmp = path.with_extension("info.tmp");
        let file = self.disk.open(&tmp, Open::Create)?;
        file.write_all_at(&out, 0)?;
        file.sync_all()?;
        drop(file);
        self.disk.rename(&tmp, &path)?;
        self.disk.sync_dir(&dir)?;
        Ok(())
    }

    /// Learns the shard files of the snapshots taken since the last checkpoint (by
    /// rebuilding their trees) and writes them down: a checkpoint retires no shard file
    /// before. A snapshot removed meanwhile is skipped; one that cannot be rebuilt is
    /// logged, and keeps every shard file until it is removed.
    pub(super) fn read_snapshot_files(&self) {
        let unread: Vec<Arc<SnapInfo>> = lock(&self.snapshots)
            .infos
            .values()
            .filter(|i| i.files.is_none())
            .cloned()
            .collect();
        for info in unread {
            // Not kept loaded: a snapshot nobody browses costs no memory.
            let read = self.load_frozen(info.id, false).and_then(|frozen| {
                let read = SnapInfo {
                    files: Some(frozen.shard_files()),
                    ..(*info).clone()
                };
                let mut cat = lock(&self.snapshots);
                if cat.infos.contains_key(&info.id) {
                    self.write_info(&read)?;
                    cat.infos.insert(read.id, Arc::new(read));
                }
                Ok(())
            });
            if let Err(e) = read {
                log::error!(
                    "snapshot {:?} cannot be rebuilt ({e}): no shard file is retired while it \
                     is kept",
                    info.name
                );
            }
        }
    }

    pub fn snapshots(&self) -> Vec<Arc<SnapInfo>> {
        lock(&self.snapshots).infos.values().cloned().collect()
    }

    /// Removes snapshot `id`; what only it kept goes with the next checkpoint.
    pub fn remove_snapshot(&self, id: u64) -> Result<()> {
        let dir = self.snapshot_dir();
        let mut cat = lock(&self.snapshots);
        let Some(info) = cat.infos.get(&id).cloned() else {
            return Err(Error::NotFound);
        };
        // The info goes first: without it, what is left is swept at the next open.
        self.disk.remove(&info_path(&dir, id))?;
        self.disk.sync_dir(&dir)?;
        cat.infos.remove(&id);
        cat.loaded.retain(|f| f.info.id != id);
        drop(cat);
        if let Base::Tree { .. } = info.base {
            self.disk.remove(&tree_path(&dir, id))?;
        }
        crate::events::record("snapshot_removed", serde_json::json!({"id": id}));
        Ok(())
    }

    /// Snapshot `id`'s tree, rebuilt on first use and kept while it is among the last
    /// few used.
    pub fn frozen(&self, id: u64) -> Result<Arc<Frozen>> {
        self.load_frozen(id, true)
    }

    /// Snapshot `id`'s tree: a loaded one, or rebuilt now and, if `keep`, loaded.
    fn load_frozen(&self, id: u64, keep: bool) -> Result<Arc<Frozen>> {
        let info = {
            let mut cat = lock(&self.snapshots);
            if let Some(i) = cat.loaded.iter().position(|f| f.info.id == id) {
                let f = cat.loaded.remove(i);
                cat.loaded.push(f.clone());
                return Ok(f);
            }
            cat.infos.get(&id).cloned().ok_or(Error::NotFound)?
        };
        // Rebuilt outside the lock: a large tree takes a while, and others browse.
        let mut tree = self.rebuild(&info)?;
        for &dir in &info.hidden {
            // Deepest first: each goes from a directory still there.
            for ino in tree.descendants(dir).into_iter().rev() {
                if !info.hidden.contains(&ino) {
                    tree.delete(ino);
                }
            }
        }
        let f = Arc::new(Frozen {
            contents: Contents::of(&tree),
            info,
            tree,
        });
        let mut cat = lock(&self.snapshots);
        if keep && cat.infos.contains_key(&id) {
            cat.loaded.retain(|l| l.info.id != id);
            cat.loaded.push(f.clone());
            if cat.loaded.len() > LOADED {
                cat.loaded.remove(0);
            }
        }
        Ok(f)
    }

    /// A snapshot's whole tree, as recovery would have rebuilt it at that moment.
    fn rebuild(&self, info: &SnapInfo) -> Result<Tree> {
        match &info.base {
            Base::Tree { .. } => Ok(checkpoint::load_tree(
                &*self.disk,
                &tree_path(&self.snapshot_dir(), info.id),
            )?
            .0),
            Base::Log {
                checkpoint,
                from,
                until,
            } => {
                let mut tree = match checkpoint {
                    Some(seq) => {
                        let path = checkpoint::path(&self.checkpoint_dir(), *seq);
                        checkpoint::load_tree(&*self.disk, &path)?.0
                    }
                    None => Tree::default(),
                };
                let (disk, dir) = (&*self.disk, self.wal.dir());
                wal::replay(disk, dir, *from, Some(*until), |seg, off, payload| {
                    apply_record(&mut tree, seg, off, payload)
                })?;
                tree.check_connected()?;
                Ok(tree)
            }
        }
    }

    /// Bytes of file `ino` in snapshot `f`. Its content is read where it lives; what is
    /// cached is keyed by that place, which no other content ever takes.
    pub fn read_frozen(&self, f: &Frozen, ino: u64, off: u64, size: usize) -> Result<Data> {
        let node = f.tree.get(ino)?;
        if node.meta.kind != Kind::File {
            return Err(Error::IsDir);
        }
        let len = node.meta.size;
        if off >= len || size == 0 {
            return Ok(Data::Owned(Vec::new()));
        }
        let end = len.min(off + size as u64);
        let mut out = Vec::with_capacity((end - off) as usize);
        let mut at = 0;
        for p in extents::each(&node.loc, len) {
            let (start, stop) = (at, at + p.len);
            at = stop;
            if stop <= off || start >= end {
                continue;
            }
            let range = off.max(start) - start..end.min(stop) - start;
            out.extend_from_slice(&self.read_piece(&p, node.meta.tier, None, range)?);
        }
        Ok(Data::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::store;
    use crate::engine::testutil::{Checkpointing, file, get, new_universe, put, settings};

    fn frozen_get(e: &Engine, f: &Frozen, name: &str) -> Vec<u8> {
        let ino = f
            .lookup(ROOT, name.as_bytes())
            .expect("in the snapshot")
            .ino;
        e.read_frozen(f, ino, 0, 1 << 30).expect("read").to_vec()
    }

    /// Each way content is kept: inline in the log, a pack after a checkpoint, a blob, a
    /// file in pieces (appended to), in every tier.
    #[test]
    fn a_snapshot_keeps_its_moment_through_changes_checkpoints_and_reopen() {
        for tier in Tier::ALL {
            let tmp = tempfile::tempdir().expect("tmp");
            let big: Vec<u8> = (0..2 * store::CHUNK + 5).map(|i| (i % 251) as u8).collect();
            let id;
            {
                let e = new_universe(tmp.path(), tier);
                let (small, large, gone) = (file(&e, "small"), file(&e, "large"), file(&e, "gone"));
                put(&e, small, b"before");
                put(&e, large, &big);
                put(&e, gone, b"removed after");
                e.checkpoint().expect("checkpoint");
                put(&e, small, b"before, and more");
                let info = e.take_snapshot("one", &[]).expect("snapshot");
                id = info.id;
                assert_eq!(info.name, "one");
                // Everything changes after it, and checkpoints retire what the live
                // universe no longer names.
                put(&e, small, b"after");
                put(&e, large, b"small now");
                e.remove(ROOT, b"gone", false).expect("remove");
                for _ in 0..2 {
                    e.checkpoint().expect("checkpoint");
                }
                let f = e.frozen(id).expect("frozen");
                assert_eq!(f.contents.files(), 3);
                assert_eq!(f.contents.bytes(), 16 + big.len() as u64 + 13);
                assert_eq!(frozen_get(&e, &f, "small"), b"before, and more", "{tier:?}");
                assert_eq!(frozen_get(&e, &f, "large"), big, "{tier:?}");
                assert_eq!(frozen_get(&e, &f, "gone"), b"removed after");
                assert_eq!(get(&e, small), b"after");
                let ino = f.lookup(ROOT, b"large").expect("large").ino;
                let mid = e
                    .read_frozen(&f, ino, store::CHUNK as u64 - 1, 3)
                    .expect("read");
                assert_eq!(
                    mid.to_vec(),
                    big[store::CHUNK - 1..store::CHUNK + 2].to_vec()
                );
            }
            // Reopened without a clean shutdown.
            let e = Engine::open(tmp.path(), settings()).expect("reopen");
            let infos = e.snapshots();
            assert_eq!(infos.iter().map(|i| i.id).collect::<Vec<_>>(), [id]);
            let f = e.frozen(id).expect("frozen");
            assert_eq!(frozen_get(&e, &f, "small"), b"before, and more");
            assert_eq!(frozen_get(&e, &f, "large"), big);
            let names: Vec<Vec<u8>> = f
                .entries(ROOT, None, usize::MAX)
                .expect("list")
                .into_iter()
                .map(|(_, n, _)| n)
                .collect();
            assert_eq!(
                names,
                [b"small".to_vec(), b"large".to_vec(), b"gone".to_vec()]
            );
            // Removed, and what only it kept goes with the next checkpoint.
            let shard_bytes = |e: &Engine| -> u64 { e.store.files().iter().map(|f| f.3).sum() };
            let before = shard_bytes(&e);
            e.remove_snapshot(id).expect("remove");
            assert!(e.frozen(id).is_err());
            e.checkpoint().expect("checkpoint");
            assert!(
                shard_bytes(&e) < before,
                "{tier:?}: {before} -> {}",
                shard_bytes(&e)
            );
            drop(e);
            let e = Engine::open(tmp.path(), settings()).expect("reopen");
            assert!(e.snapshots().is_empty());
        }
    }

    /// What a crash leaves while a snapshot is taken (an info file being written) or
    /// removed (a version 1 tree file whose info went first) is swept at open.
    #[test]
    fn a_tree_without_its_info_is_swept_at_open() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("snapshots");
        {
            let e = new_universe(tmp.path(), Tier::Hot);
            let a = file(&e, "a");
            put(&e, a, b"x");
            e.take_snapshot("kept", &[]).expect("snapshot");
            std::fs::write(tree_path(&dir, 5), b"a tree cut short").expect("tree");
            std::fs::write(info_path(&dir, 6).with_extension("info.tmp"), b"cut").expect("tmp");
        }
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert_eq!(e.snapshots().len(), 1);
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .expect("ls")
            .map(|f| f.expect("entry").file_name())
            .collect();
        left.sort();
        assert_eq!(left, [std::ffi::OsString::from("snap-00000000.info")]);
    }

    /// Snapshots taken while checkpoints run back to back (each one moving content,
    /// rewriting packs and retiring what the live universe no longer names): every
    /// snapshot shows its moment after more checkpoints and a reopen, whichever
    /// checkpoint was under way when it was taken.
    #[test]
    fn snapshots_taken_while_checkpoints_run_keep_their_moment() {
        let tmp = tempfile::tempdir().expect("tmp");
        let content = |round: usize, f: usize| -> Vec<u8> {
            // Small ones go to packs, large ones to blobs.
            let len = if f.is_multiple_of(2) {
                40
            } else {
                2 * store::CHUNK + 3
            };
            (0..len).map(|i| (i * 7 + round * 31 + f) as u8).collect()
        };
        let mut taken: Vec<(u64, usize)> = Vec::new();
        {
            let e = Arc::new(new_universe(tmp.path(), Tier::Warm));
            let files: Vec<u64> = (0..4).map(|f| file(&e, &format!("f{f}"))).collect();
            let checkpointer = Checkpointing::start(&e);
            for round in 0..40 {
                for (f, &ino) in files.iter().enumerate() {
                    put(&e, ino, &content(round, f));
                }
                if round.is_multiple_of(3) {
                    let info = e
                        .take_snapshot(&format!("r{round}"), &[])
                        .expect("snapshot");
                    taken.push((info.id, round));
                }
            }
            checkpointer.stop();
            for _ in 0..2 {
                e.checkpoint().expect("checkpoint");
            }
        }
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        e.checkpoint().expect("checkpoint");
        assert_eq!(e.snapshots().len(), taken.len());
        for (id, round) in taken {
            let f = e.frozen(id).expect("rebuilt");
            for k in 0..4 {
                let got = frozen_get(&e, &f, &format!("f{k}"));
                assert!(got == content(round, k), "snapshot of round {round}: f{k}");
            }
        }
    }

    /// A data directory whose snapshot a version 1 build took (a tree file of its own)
    /// still browses it, and keeps what it names.
    #[test]
    fn a_version_1_snapshot_is_still_read_and_kept() {
        #[derive(Serialize)]
        struct V1<'a> {
            id: u64,
            name: &'a str,
            taken: Ts,
            log_position: u64,
            tiers: [Totals; 3],
            dirs: u64,
            others: u64,
            parent: Option<u64>,
            hidden: Vec<u64>,
            refs: Vec<ShardFile>,
            segments: Vec<u64>,
        }
        let tmp = tempfile::tempdir().expect("tmp");
        {
            let e = new_universe(tmp.path(), Tier::Warm);
            let a = file(&e, "a");
            put(&e, a, b"as version 1 kept it");
            e.checkpoint().expect("checkpoint");
            // What a version 1 build wrote: the whole tree, and an info naming its files.
            let tree = lock(&e.tree);
            let order = tree.walk();
            let header = checkpoint::Header::of(&tree, &order, 0, e.store.next_id());
            let mut w = checkpoint::Writer::create(
                e.disk.clone(),
                tree_path(&e.snapshot_dir(), 7),
                &header,
            )
            .expect("tree");
            w.entries(&checkpoint::Entries::of(&tree, &order))
                .expect("entries");
            w.finish().expect("finish");
            let refs: Vec<ShardFile> = order
                .iter()
                .flat_map(|n| {
                    extents::each(&n.loc, n.meta.size).filter_map(|p| p.part.shard_file())
                })
                .collect();
            assert!(!refs.is_empty());
            drop(tree);
            let v1 = V1 {
                id: 7,
                name: "old",
                taken: Ts::now(),
                log_position: 0,
                tiers: Default::default(),
                dirs: 0,
                others: 0,
                parent: None,
                hidden: Vec::new(),
                refs,
                segments: Vec::new(),
            };
            let mut out = frame::file_header(MAGIC, 1).to_vec();
            out.extend_from_slice(&encode(&v1));
            frame::seal(&mut out);
            std::fs::write(info_path(&e.snapshot_dir(), 7), out).expect("info");
            put(&e, a, b"changed since");
        }
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        for _ in 0..2 {
            e.checkpoint().expect("checkpoint");
        }
        let f = e.frozen(7).expect("rebuilt");
        assert_eq!(f.info.name, "old");
        assert_eq!(frozen_get(&e, &f, "a"), b"as version 1 kept it");
        // A new snapshot after it has it as its parent.
        let next = e.take_snapshot("new", &[]).expect("snapshot");
        assert_eq!(next.parent, Some(7));
        assert!(next.id > 7);
        e.remove_snapshot(7).expect("remove");
        assert!(!tree_path(&e.snapshot_dir(), 7).exists());
    }
}
