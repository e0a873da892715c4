//! Open handles and drafts: a writer's bytes stay in its draft until a commit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::codec::Tier;
use super::draft::{Draft, StreamTo};
use super::tree::Kind;
use super::{Engine, MAX_FILE_SIZE, lock};
use crate::error::{Error, Result};

/// Uncommitted content by inode, and how many write handles hold each file open.
#[derive(Default)]
pub(super) struct Drafts {
    pub(super) map: HashMap<u64, Arc<Mutex<Draft>>>,
    pub(super) writers: HashMap<u64, u32>,
}

impl Engine {
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

    /// Where large content of `tier` is coded into a blob.
    pub(super) fn stream_to(&self, tier: Tier) -> StreamTo {
        StreamTo {
            store: self.store.clone(),
            coder: self.coder.clone(),
            pins: self.pins.clone(),
            cache: self.cache.clone(),
            tier,
        }
    }

    /// The draft of `ino`, based on the committed content (its first `keep` bytes) if
    /// there is none yet. Nothing is copied: the base stays where it is committed.
    fn draft(&self, ino: u64, keep: u64) -> Result<Arc<Mutex<Draft>>> {
        if let Some(d) = lock(&self.drafts).map.get(&ino) {
            return Ok(d.clone());
        }
        let (mtime, len, tier, version) = {
            let tree = lock(&self.tree);
            let n = tree.get(ino)?;
            if n.meta.kind != Kind::File {
                return Err(Error::IsDir);
            }
            (n.meta.mtime, n.meta.size, n.meta.tier, n.version)
        };
        let spill_at = self.settings().spill_at;
        let spill_path = self.root.join("staging").join(format!("{ino}.draft"));
        let d = Draft::new(
            spill_at,
            self.disk.clone(),
            spill_path,
            mtime,
            Some(self.stream_to(tier)),
        )
        .based_on(len.min(keep), version);
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
        if off
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > MAX_FILE_SIZE)
        {
            return Err(Error::FileTooBig);
        }
        // Writing nothing changes nothing, wherever (POSIX): not even the size.
        if data.is_empty() {
            return Ok(());
        }
        let d = self.draft(ino, u64::MAX)?;
        let mut d = lock(&d);
        self.check_growth(d.len(), off + data.len() as u64)?;
        if off < d.base_len {
            // A change inside the committed bytes: the draft takes a copy of them first.
            let version = d.base_version;
            d.materialize(&|at, n| self.read_base(ino, version, at, n))?;
        }
        d.write(off, data)?;
        d.touch();
        Ok(())
    }

    /// A file growing from `from` to `to` bytes: refused at once (`ENOSPC`) when the data
    /// disk has not that much free. A hole is stored as the zeros it reads as, so a large
    /// `truncate -s` would otherwise fill the disk slowly and fail at the commit.
    fn check_growth(&self, from: u64, to: u64) -> Result<()> {
        // Small growth is left to the disk to refuse: no statvfs per write.
        if to <= from.saturating_add(64 << 20) {
            return Ok(());
        }
        let st = self.statfs()?;
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if to - from > free {
            log::warn!(
                "refusing to grow a file by {} bytes: the data disk has {free} free",
                to - from
            );
            return Err(Error::NoSpace(
                "the data disk cannot hold the file's new size",
            ));
        }
        Ok(())
    }

    /// Truncates the draft (made if needed) to `size`.
    pub fn truncate(&self, ino: u64, size: u64) -> Result<()> {
        if size > MAX_FILE_SIZE {
            return Err(Error::FileTooBig);
        }
        let d = self.draft(ino, size)?;
        let mut d = lock(&d);
        self.check_growth(d.len(), size)?;
        d.truncate(size)?;
        d.touch();
        Ok(())
    }

    /// The draft of `ino` counts as written (an `ftruncate(2)` by a writer: the program
    /// changed the content, as a write does), so the writer's close commits it.
    pub fn mark_written(&self, ino: u64) {
        let draft = lock(&self.drafts).map.get(&ino).cloned();
        if let Some(d) = draft {
            lock(&d).written = true;
        }
    }

    /// Whether any handle still writes `ino`.
    pub fn has_writers(&self, ino: u64) -> bool {
        lock(&self.drafts).writers.contains_key(&ino)
    }

    /// Marks `ino`'s draft refused by a check that ran ahead of its commit: until it is
    /// written again, committing it fails and the committed version stays (a shell's
    /// `echo '{bad' > f` truncated it at open; its refused write must not leave it empty).
    pub fn refuse_draft(&self, ino: u64, why: String) {
        let draft = lock(&self.drafts).map.get(&ino).cloned();
        if let Some(d) = draft {
            lock(&d).refused = Some(why);
        }
    }

    /// Drops a draft nobody holds open any more (after a truncate by path).
    pub fn drop_unheld_draft(&self, ino: u64) {
        let mut d = lock(&self.drafts);
        if !d.writers.contains_key(&ino) {
            d.map.remove(&ino);
        }
    }
}
