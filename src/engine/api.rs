//! What regions may ask of an engine: the whole of it. Regions hold a `&dyn Storage`, so
//! a second engine (a distributed one) serves every region by implementing this trait.

use std::sync::Arc;

use crate::engine::codec::Tier;
use crate::engine::snapshots::{Frozen, SnapInfo};
use crate::engine::tree::Kind;
use crate::engine::{Attr, Change, CommitAt, Counters, Data, Engine, NewNode, PassingFile, Pinned};
use crate::engine::{Settings, TierStats};
use crate::error::{Error, Result};

pub trait Storage: Send + Sync {
    fn getattr(&self, ino: u64) -> Result<Attr>;
    fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr>;
    /// The names from the root down to `ino`.
    fn path_of(&self, ino: u64) -> Vec<Vec<u8>>;
    fn entry_count(&self, dir: u64) -> Result<usize>;
    /// (reads, commits) of the files in `dir` since start.
    fn dir_counters(&self, dir: u64) -> (u64, u64);
    /// Committed content of a file.
    fn read(&self, ino: u64, off: u64, size: usize) -> Result<Data>;
    /// `dir`'s entries as (listing position, inode), at one moment (`Engine::listing`).
    fn listing(&self, dir: u64) -> Result<Vec<(u64, u64)>>;
    /// The files `listed` in `dir` and named as `wanted` accepts, with their whole
    /// committed contents read in passing: not kept in the cache
    /// (`Engine::read_files_passing`).
    fn read_files_passing(
        &self,
        dir: u64,
        listed: &[(u64, u64)],
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<PassingFile>>;
    /// Creates or replaces a file owned by root with `bytes`, durably, unchecked: for a
    /// region's own files.
    fn put(&self, parent: u64, name: &[u8], bytes: &[u8]) -> Result<()>;
    fn remove(&self, parent: u64, name: &[u8]) -> Result<()>;
    /// Removes the empty directory `parent/name`.
    fn remove_dir(&self, parent: u64, name: &[u8]) -> Result<()>;
    /// Applies every change in one atomic step (`Engine::apply`): durable on return with
    /// `sync`, else within a short window (or at the next `sync()`).
    fn apply(&self, changes: Vec<Change>, sync: bool) -> Result<()>;
    /// Makes everything changed so far durable.
    fn sync(&self) -> Result<()>;
    /// Moves `parent/name` to `newparent/newname` (a free name): into another tier when
    /// `newparent` is in one. Unchecked: for a region's own moves of content it knows.
    fn rename(&self, parent: u64, name: &[u8], newparent: u64, newname: &[u8]) -> Result<()>;
    /// Brings a small file's content into the cache in the background, before anyone
    /// reads it.
    fn prefetch(&self, ino: u64);
    /// The directory `parent/name`, made (owned by root, mode 0755, in `tier` or its
    /// parent's) and durable if there is none yet.
    fn mkdir(&self, parent: u64, name: &[u8], tier: Option<Tier>) -> Result<Attr>;
    /// A file's committed version, held for reads until dropped.
    fn pin(&self, ino: u64) -> Result<Pinned>;
    fn read_pinned(&self, p: &Pinned, off: u64, size: usize) -> Result<Data>;
    /// Every entry of a directory, with its attributes.
    fn readdir_names(&self, dir: u64) -> Result<Vec<(Vec<u8>, Attr)>>;
    /// Moves with every change (and counted read): what was computed from the universe
    /// at one value is still right while it stays.
    fn generation(&self) -> u64;
    /// The files with cached content, most recently used first, with their bytes cached.
    fn cached_files(&self) -> Vec<(u64, u64)>;
    /// (bytes free, bytes in all) of the disk holding the data.
    fn disk_space(&self) -> Result<(u64, u64)>;
    fn settings(&self) -> Settings;
    fn set_settings(&self, s: Settings);
    fn tier_stats(&self) -> [TierStats; 3];
    fn counters(&self) -> Counters;
    fn inode_count(&self) -> usize;
    /// Where the data lives, for people.
    fn location(&self) -> String;
    /// The log segments as (file name, size), oldest first.
    fn log_segments(&self) -> Vec<(String, u64)>;
    fn read_log_segment(&self, name: &str, off: u64, size: usize) -> Result<Vec<u8>>;
    fn log_segment_len(&self, name: &str) -> Option<u64>;
    /// Takes a snapshot of the whole universe now, the directories `hidden` taken empty
    /// (`Engine::take_snapshot`).
    fn take_snapshot(&self, name: &str, hidden: &[u64]) -> Result<Arc<SnapInfo>>;
    fn snapshots(&self) -> Vec<Arc<SnapInfo>>;
    fn remove_snapshot(&self, id: u64) -> Result<()>;
    /// A snapshot's tree, to browse (`Engine::frozen`).
    fn frozen(&self, id: u64) -> Result<Arc<Frozen>>;
    fn read_frozen(&self, f: &Frozen, ino: u64, off: u64, size: usize) -> Result<Data>;
}

impl Storage for Engine {
    fn getattr(&self, ino: u64) -> Result<Attr> {
        Engine::getattr(self, ino)
    }

    fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        Engine::lookup(self, parent, name)
    }

    fn path_of(&self, ino: u64) -> Vec<Vec<u8>> {
        Engine::path_of(self, ino)
    }

    fn entry_count(&self, dir: u64) -> Result<usize> {
        Engine::entry_count(self, dir)
    }

    fn dir_counters(&self, dir: u64) -> (u64, u64) {
        Engine::dir_counters(self, dir)
    }

    fn read(&self, ino: u64, off: u64, size: usize) -> Result<Data> {
        Engine::read(self, ino, off, size, false)
    }

    fn listing(&self, dir: u64) -> Result<Vec<(u64, u64)>> {
        Engine::listing(self, dir)
    }

    fn read_files_passing(
        &self,
        dir: u64,
        listed: &[(u64, u64)],
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<PassingFile>> {
        Engine::read_files_passing(self, dir, listed, wanted)
    }

    fn put(&self, parent: u64, name: &[u8], bytes: &[u8]) -> Result<()> {
        let ino = match Engine::lookup(self, parent, name) {
            Ok(a) => a.ino,
            Err(_) => self.create(parent, name, NewNode::root_file())?.ino,
        };
        self.truncate(ino, 0)?;
        let res = Engine::write(self, ino, 0, bytes)
            .and_then(|()| self.commit(ino, CommitAt::Fsync, &|_, _| Ok(())));
        self.drop_unheld_draft(ino);
        res
    }

    fn remove(&self, parent: u64, name: &[u8]) -> Result<()> {
        Engine::remove(self, parent, name, false)
    }

    fn remove_dir(&self, parent: u64, name: &[u8]) -> Result<()> {
        Engine::remove(self, parent, name, true)
    }

    fn apply(&self, changes: Vec<Change>, sync: bool) -> Result<()> {
        Engine::apply(self, changes, sync)
    }

    fn sync(&self) -> Result<()> {
        self.sync_all()
    }

    fn rename(&self, parent: u64, name: &[u8], newparent: u64, newname: &[u8]) -> Result<()> {
        Engine::rename(self, parent, name, newparent, newname, true)
    }

    fn prefetch(&self, ino: u64) {
        Engine::prefetch(self, ino)
    }

    fn mkdir(&self, parent: u64, name: &[u8], tier: Option<Tier>) -> Result<Attr> {
        // Made unless it exists: no window between a lookup and the create.
        match self.create(parent, name, NewNode::root_dir(tier)) {
            Err(Error::Exists) => {
                let attr = Engine::lookup(self, parent, name)?;
                if attr.kind == Kind::Dir {
                    Ok(attr)
                } else {
                    Err(Error::Exists)
                }
            }
            made => made,
        }
    }

    fn pin(&self, ino: u64) -> Result<Pinned> {
        Engine::pin(self, ino)
    }

    fn read_pinned(&self, p: &Pinned, off: u64, size: usize) -> Result<Data> {
        Engine::read_pinned(self, p, off, size)
    }

    fn readdir_names(&self, dir: u64) -> Result<Vec<(Vec<u8>, Attr)>> {
        let mut out = Vec::new();
        let mut cookie = 0;
        loop {
            let entries = self.readdir(dir, cookie, 1024)?;
            let Some(last) = entries.last() else {
                return Ok(out);
            };
            cookie = last.offset;
            for d in entries {
                match Engine::getattr(self, d.ino) {
                    Ok(attr) => out.push((d.name, attr)),
                    // Removed since it was listed.
                    Err(Error::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    fn generation(&self) -> u64 {
        Engine::generation(self)
    }

    fn cached_files(&self) -> Vec<(u64, u64)> {
        Engine::cached_files(self)
    }

    fn disk_space(&self) -> Result<(u64, u64)> {
        let st = self.statfs()?;
        let unit = st.f_frsize.max(1);
        Ok((
            st.f_bavail.saturating_mul(unit),
            st.f_blocks.saturating_mul(unit),
        ))
    }

    fn settings(&self) -> Settings {
        Engine::settings(self)
    }

    fn set_settings(&self, s: Settings) {
        Engine::set_settings(self, s)
    }

    fn tier_stats(&self) -> [TierStats; 3] {
        Engine::tier_stats(self)
    }

    fn counters(&self) -> Counters {
        Engine::counters(self)
    }

    fn inode_count(&self) -> usize {
        Engine::inode_count(self)
    }

    fn location(&self) -> String {
        self.root().display().to_string()
    }

    fn log_segments(&self) -> Vec<(String, u64)> {
        Engine::log_segments(self)
    }

    fn read_log_segment(&self, name: &str, off: u64, size: usize) -> Result<Vec<u8>> {
        Engine::read_log_segment(self, name, off, size)
    }

    fn log_segment_len(&self, name: &str) -> Option<u64> {
        Engine::log_segment_len(self, name)
    }

    fn take_snapshot(&self, name: &str, hidden: &[u64]) -> Result<Arc<SnapInfo>> {
        Engine::take_snapshot(self, name, hidden)
    }

    fn snapshots(&self) -> Vec<Arc<SnapInfo>> {
        Engine::snapshots(self)
    }

    fn remove_snapshot(&self, id: u64) -> Result<()> {
        Engine::remove_snapshot(self, id)
    }

    fn frozen(&self, id: u64) -> Result<Arc<Frozen>> {
        Engine::frozen(self, id)
    }

    fn read_frozen(&self, f: &Frozen, ino: u64, off: u64, size: usize) -> Result<Data> {
        Engine::read_frozen(self, f, ino, off, size)
    }
}
