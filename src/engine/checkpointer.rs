//! Checkpoints: committed content moves out of the log into the tiers' shards, every inode
//! is written to a checkpoint (its format is `checkpoint`), and old segments and shard files
//! are retired.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::codec::Tier;
use super::store::{self, FileKind};
use super::tree::{Location, Ts};
use super::{Engine, checkpoint, lock};
use crate::error::{Error, Result};

impl Engine {
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
            let mut w =
                checkpoint::Writer::create(self.disk.clone(), &ckpt_dir, *seq + 1, &header)?;
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
        checkpoint::remove_older(&*self.disk, &ckpt_dir, *seq)?;
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

    /// Checkpoints once enough log accumulated or the interval passed, until shutdown.
    pub(super) fn run_checkpointer(&self) {
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
            // A failed disk takes no checkpoint (it would only fail again).
            let due = (pending >= s.checkpoint_bytes
                || (pending > 0 && last.elapsed() >= s.checkpoint_interval))
                && !self.disk.failed();
            if due {
                if let Err(e) = self.checkpoint() {
                    log::error!("checkpoint failed: {e}");
                }
                last = Instant::now();
            }
        }
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
}

/// The shard file a location lives in, if any.
fn shard_file(loc: Location) -> Option<(Tier, FileKind, u64)> {
    match loc {
        Location::Pack { tier, id, .. } => Some((tier, FileKind::Pack, id)),
        Location::Blob { tier, id, .. } => Some((tier, FileKind::Blob, id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::engine::Engine;
    use crate::engine::codec::Tier;
    use crate::engine::store;
    use crate::engine::testutil::{file, get, new_universe, put, settings};

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
                        .to_vec(),
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
}
