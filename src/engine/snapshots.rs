//! Snapshots: the universe at one moment, kept under a name. Taking one is a checkpoint
//! whose entries are also written to `snapshots/ckpt-<id>.ckpt`; the content they name
//! (shard files, and log segments for what was committed while the checkpoint ran) is
//! the live universe's own, not copied, and every later checkpoint keeps it until the
//! snapshot is removed. Formats: FORMAT.md, "Snapshots".

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::codec::Tier;
use super::disk::{self, Disk, Open};
use super::extents::{self, Part};
use super::meta_ops::attr_of;
use super::store::FileKind;
use super::tree::{Kind, Node, ROOT, Tree, Ts};
use super::types::{Attr, Data};
use super::{Engine, checkpoint, decode, encode, frame, lock};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"ISLSNAP1";
const VERSION: u16 = 1;
/// Snapshot trees kept loaded for browsing: the ones in use now, not every one.
const LOADED: usize = 2;

/// What files and bytes a snapshot holds in one tier.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
}

/// A snapshot as its `info` file states it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapInfo {
    pub id: u64,
    pub name: String,
    pub taken: Ts,
    /// The log position every change in the snapshot is at or before.
    pub log_position: u64,
    /// Regular files and bytes by tier (hot, warm, cold), then directories and other
    /// entries (symlinks, special files).
    pub tiers: [Totals; 3],
    pub dirs: u64,
    pub others: u64,
    /// The snapshot newest when this one was taken: an incremental backup goes from it
    /// to this one.
    pub parent: Option<u64>,
    /// Directories taken empty (what is below them is not part of the snapshot): a
    /// region's own bookkeeping, such as the snapshots' directories themselves.
    pub hidden: Vec<u64>,
    /// The shard files and log segments its entries name: kept while it is.
    refs: Vec<(Tier, FileKind, u64)>,
    segments: Vec<u64>,
}

impl SnapInfo {
    /// `nodes`: the whole tree, parents before children.
    fn of(id: u64, name: &str, nodes: &[&Node], log_position: u64, hidden: &[u64]) -> SnapInfo {
        let mut info = SnapInfo {
            id,
            parent: None,
            hidden: hidden.to_vec(),
            name: name.to_string(),
            taken: Ts::now(),
            log_position,
            tiers: Default::default(),
            dirs: 0,
            others: 0,
            refs: Vec::new(),
            segments: Vec::new(),
        };
        let (mut refs, mut segments) = (HashSet::new(), HashSet::new());
        let mut below_hidden: HashSet<u64> = hidden.iter().copied().collect();
        for n in nodes {
            if below_hidden.contains(&n.meta.parent) && !hidden.contains(&n.meta.ino) {
                below_hidden.insert(n.meta.ino);
                continue;
            }
            match n.meta.kind {
                Kind::File => {
                    let t = &mut info.tiers[n.meta.tier as usize];
                    t.files += 1;
                    t.bytes += n.meta.size;
                }
                Kind::Dir => info.dirs += 1,
                _ => info.others += 1,
            }
            for p in extents::each(&n.loc, n.meta.size) {
                match p.part {
                    Part::Wal { seg, .. } => {
                        segments.insert(seg);
                    }
                    Part::Pack { tier, id, .. } => {
                        refs.insert((tier, FileKind::Pack, id));
                    }
                    Part::Blob { tier, id } => {
                        refs.insert((tier, FileKind::Blob, id));
                    }
                }
            }
        }
        info.refs = refs.into_iter().collect();
        info.refs.sort_unstable();
        info.segments = segments.into_iter().collect();
        info.segments.sort_unstable();
        info
    }

    pub fn files(&self) -> u64 {
        self.tiers.iter().map(|t| t.files).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.tiers.iter().map(|t| t.bytes).sum()
    }
}

/// The snapshots of a data directory, and the trees of those being browsed.
#[derive(Default)]
pub(super) struct Catalog {
    infos: BTreeMap<u64, Arc<SnapInfo>>,
    next_id: u64,
    /// Most recently used last.
    loaded: Vec<Arc<Frozen>>,
}

fn info_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("snap-{id:08}.info"))
}

fn tree_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("ckpt-{id:08}.ckpt"))
}

impl Catalog {
    /// Reads the snapshots of `dir`. A tree whose info file was never written (a crash
    /// while taking it) or was removed (a crash while removing it) goes now.
    pub(super) fn open(disk: &dyn Disk, dir: &Path) -> Result<Catalog> {
        disk.create_dir_all(dir)?;
        let mut cat = Catalog::default();
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
                let body = frame::unseal(&bytes, MAGIC, VERSION, &path.display().to_string())?;
                let info: SnapInfo = decode(body)?;
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

    /// What every snapshot keeps: shard files, and log segments.
    pub(super) fn kept(&self) -> (HashSet<(Tier, FileKind, u64)>, HashSet<u64>) {
        let mut files = HashSet::new();
        let mut segments = HashSet::new();
        for info in self.infos.values() {
            files.extend(info.refs.iter().copied());
            segments.extend(info.segments.iter().copied());
        }
        (files, segments)
    }
}

/// A snapshot's tree, loaded: read-only, browsed by inode like the live one.
pub struct Frozen {
    pub info: Arc<SnapInfo>,
    tree: Tree,
}

impl Frozen {
    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        Ok(attr_of(&self.tree, self.tree.get(ino)?))
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        self.getattr(self.tree.child(parent, name)?)
    }

    /// `dir`'s entries in listing order, with their attributes.
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
}

impl Engine {
    fn snapshot_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// Takes a snapshot named `name` (names are the caller's to keep unique): a
    /// checkpoint, whose entries are kept.
    /// Takes snapshot `name` (names are the caller's to keep unique), the directories
    /// `hidden` taken empty: every inode's entry, written as a checkpoint of its own, with
    /// its content where it lies now (log segments included); no content moves, so its
    /// time is that of writing the entries, whatever the log holds.
    pub fn take_snapshot(&self, name: &str, hidden: &[u64]) -> Result<Arc<SnapInfo>> {
        // No checkpoint retires what the snapshot names before it is published.
        let _checkpoints = lock(&self.checkpoint_seq);
        let started = std::time::Instant::now();
        let (header, entries, info) = {
            let tree = lock(&self.tree);
            let order = tree.walk();
            let header = checkpoint::Header {
                wal_from: 0,
                next_ino: tree.next_ino,
                next_file_id: self.store.next_id(),
                count: order.len() as u64,
                taken: Ts::now(),
            };
            let entries = checkpoint::Entries::of(&tree, &order);
            let info = self.snapshot_info((name, hidden), &order, self.wal.written());
            (header, entries, info)
        };
        let held = started.elapsed();
        // A snapshot holds nothing that is not durable.
        self.wal.sync_to(info.log_position)?;
        let path = tree_path(&self.snapshot_dir(), info.id);
        let mut w = checkpoint::Writer::create(self.disk.clone(), path, &header)?;
        w.entries(&entries)?;
        w.finish()?;
        let info = self.publish_snapshot(info)?;
        log::info!(
            "snapshot {} of {} entries taken in {:?} (the tree held for {held:?})",
            info.id,
            header.count,
            started.elapsed()
        );
        Ok(info)
    }

    /// A new snapshot of `nodes` (the whole tree, under its lock).
    fn snapshot_info(
        &self,
        (name, hidden): (&str, &[u64]),
        nodes: &[&Node],
        log_position: u64,
    ) -> SnapInfo {
        let (id, parent) = {
            let mut cat = lock(&self.snapshots);
            cat.next_id += 1;
            (cat.next_id - 1, cat.infos.keys().next_back().copied())
        };
        SnapInfo {
            parent,
            ..SnapInfo::of(id, name, nodes, log_position, hidden)
        }
    }

    /// Makes a kept tree a snapshot: its info, durable.
    fn publish_snapshot(&self, info: SnapInfo) -> Result<Arc<SnapInfo>> {
        let dir = self.snapshot_dir();
        let mut out = frame::file_header(MAGIC, VERSION).to_vec();
        out.extend_from_slice(&encode(&info));
        frame::seal(&mut out);
        let path = info_path(&dir, info.id);
        let tmp = path.with_extension("info.tmp");
        let file = self.disk.open(&tmp, Open::Create)?;
        file.write_all_at(&out, 0)?;
        file.sync_all()?;
        drop(file);
        self.disk.rename(&tmp, &path)?;
        self.disk.sync_dir(&dir)?;
        let info = Arc::new(info);
        lock(&self.snapshots).infos.insert(info.id, info.clone());
        crate::events::record(
            "snapshot",
            serde_json::json!({
                "name": info.name,
                "id": info.id,
                "files": info.files(),
                "bytes": info.bytes(),
                "engine_position": info.log_position,
            }),
        );
        Ok(info)
    }

    pub fn snapshots(&self) -> Vec<Arc<SnapInfo>> {
        lock(&self.snapshots).infos.values().cloned().collect()
    }

    /// Removes snapshot `id`; what only it kept goes with the next checkpoint.
    pub fn remove_snapshot(&self, id: u64) -> Result<()> {
        let dir = self.snapshot_dir();
        let mut cat = lock(&self.snapshots);
        if !cat.infos.contains_key(&id) {
            return Err(Error::NotFound);
        }
        // The info goes first: without it, what is left is swept at the next open.
        self.disk.remove(&info_path(&dir, id))?;
        self.disk.sync_dir(&dir)?;
        cat.infos.remove(&id);
        cat.loaded.retain(|f| f.info.id != id);
        drop(cat);
        self.disk.remove(&tree_path(&dir, id))?;
        crate::events::record("snapshot_removed", serde_json::json!({"id": id}));
        Ok(())
    }

    /// Snapshot `id`'s tree, loaded on first use and kept while it is among the last
    /// few used.
    pub fn frozen(&self, id: u64) -> Result<Arc<Frozen>> {
        let info = {
            let mut cat = lock(&self.snapshots);
            if let Some(i) = cat.loaded.iter().position(|f| f.info.id == id) {
                let f = cat.loaded.remove(i);
                cat.loaded.push(f.clone());
                return Ok(f);
            }
            cat.infos.get(&id).cloned().ok_or(Error::NotFound)?
        };
        // Loaded outside the lock: a large tree takes a while, and others browse.
        let (mut tree, _) =
            checkpoint::load_tree(&*self.disk, &tree_path(&self.snapshot_dir(), id))?;
        for &dir in &info.hidden {
            // Deepest first: each goes from a directory still there.
            for ino in tree.descendants(dir).into_iter().rev() {
                if !info.hidden.contains(&ino) {
                    tree.delete(ino);
                }
            }
        }
        let f = Arc::new(Frozen { info, tree });
        let mut cat = lock(&self.snapshots);
        if cat.infos.contains_key(&id) {
            cat.loaded.retain(|l| l.info.id != id);
            cat.loaded.push(f.clone());
            if cat.loaded.len() > LOADED {
                cat.loaded.remove(0);
            }
        }
        Ok(f)
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
    use crate::engine::testutil::{file, get, new_universe, put, settings};

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
                assert_eq!(info.files(), 3);
                assert_eq!(info.bytes(), 16 + big.len() as u64 + 13);
                // Everything changes after it, and checkpoints retire what the live
                // universe no longer names.
                put(&e, small, b"after");
                put(&e, large, b"small now");
                e.remove(ROOT, b"gone", false).expect("remove");
                for _ in 0..2 {
                    e.checkpoint().expect("checkpoint");
                }
                let f = e.frozen(id).expect("frozen");
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

    #[test]
    fn a_tree_without_its_info_is_swept_at_open() {
        let tmp = tempfile::tempdir().expect("tmp");
        {
            let e = new_universe(tmp.path(), Tier::Hot);
            let a = file(&e, "a");
            put(&e, a, b"x");
            let info = e.take_snapshot("cut", &[]).expect("snapshot");
            // As a crash between writing the tree and its info would leave it.
            std::fs::remove_file(info_path(&e.snapshot_dir(), info.id)).expect("rm");
        }
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert!(e.snapshots().is_empty());
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("snapshots"))
            .expect("ls")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
