//! Checkpoints: committed content moves out of the log into the tiers' shards, every inode
//! is written to a checkpoint (its format is `checkpoint`), and old segments and shard files
//! are retired.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::codec::Tier;
use super::extents::{self, Part, Piece};
use super::store::{self, FileKind};
use super::tree::Location;
use super::{Engine, Settings, checkpoint, lock};
use crate::error::{Error, Result};

impl Engine {
    /// Moves committed content out of the log into the tiers' shards (coded for the tier),
    /// writes a checkpoint of every inode, then retires old log segments and shard files.
    pub fn checkpoint(&self) -> Result<()> {
        let mut seq = lock(&self.checkpoint_seq);
        let started = Instant::now();
        self.read_snapshot_files();
        let new_seg = self.wal.rotate()?;

        // What must move: content still in the log, blobs in the wrong tier or uncoded,
        // and the live entries of packs that are mostly garbage; of a file in pieces, the
        // pieces that are such.
        let mut held = Duration::ZERO;
        // A pack a snapshot keeps is never freed: rewriting it would only copy what it
        // holds (and make unchanged files look changed between snapshots).
        let kept_packs = lock(&self.snapshots).kept().files;
        let (mut work, sparse): (Vec<Work>, HashSet<(Tier, u64)>) = {
            let tree = lock(&self.tree);
            let since = Instant::now();
            let mut live: HashMap<(Tier, u64), u64> = HashMap::new();
            for n in tree.nodes() {
                for p in extents::each(&n.loc, n.meta.size) {
                    if let Part::Pack { tier, id, len, .. } = p.part {
                        *live.entry((tier, id)).or_default() += len as u64;
                    }
                }
            }
            let sparse: HashSet<(Tier, u64)> = self
                .store
                .files()
                .into_iter()
                .filter(|(t, k, id, size)| {
                    *k == FileKind::Pack
                        && live.get(&(*t, *id)).is_some_and(|l| l * 2 < *size)
                        && !kept_packs.contains(&(*t, *k, *id))
                })
                .map(|(t, _, id, _)| (t, id))
                .collect();
            let work = tree
                .nodes()
                .filter(|n| {
                    extents::each(&n.loc, n.meta.size)
                        .any(|p| must_move(p.part, n.meta.tier, new_seg, &sparse))
                })
                .map(|n| (n.meta.ino, n.loc.clone(), n.meta.size, n.meta.tier))
                .collect();
            held += since.elapsed();
            (work, sparse)
        };

        // In order of inode number, which is the order files were made in and so, mostly,
        // their directories' listing order: a scan reads neighbouring pack entries
        // together (`Engine::read_pack_spans`), in one read.
        work.sort_unstable_by_key(|w| w.0);

        // Write the new shard files outside the lock.
        let mut packs: HashMap<Tier, store::PackWriter> = HashMap::new();
        let mut moved = Vec::with_capacity(work.len());
        'work: for (ino, loc, size, tier) in work {
            let mut pieces = extents::pieces(&loc, size);
            let mut parts = Vec::new();
            for p in &mut pieces {
                if !must_move(p.part, tier, new_seg, &sparse) {
                    continue;
                }
                let old = p.part;
                *p = match self.move_piece(*p, tier, &mut packs) {
                    Ok(p) => p,
                    // Deleted or replaced meanwhile: nothing to move.
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        continue 'work;
                    }
                    Err(e) => return Err(e),
                };
                parts.push((old, *p));
            }
            moved.push((ino, loc, parts, extents::location(pieces)));
        }
        for (_, w) in packs {
            w.finish()?;
        }

        // Swap locations and snapshot every inode at one log position.
        let ckpt_dir = self.checkpoint_dir();
        let (header, entries, mut keep, log_end, next_file_id) = {
            let mut tree = lock(&self.tree);
            let since = Instant::now();
            for (ino, old, parts, new) in moved {
                let Ok(n) = tree.get_mut(ino) else {
                    continue;
                };
                if n.loc == old {
                    n.loc = new;
                    continue;
                }
                // Changed meanwhile. An append keeps the moved pieces under its new one:
                // they must not stay in the segments about to be retired.
                let now = extents::each(&n.loc, n.meta.size).map(|p| {
                    match parts.iter().find(|(old, _)| *old == p.part) {
                        Some((_, new)) => Piece { len: p.len, ..*new },
                        None => p,
                    }
                });
                n.loc = extents::location(now.collect());
            }
            let next_file_id = self.store.next_id();
            let order = tree.walk();
            let header = checkpoint::Header::of(&tree, &order, new_seg, next_file_id);
            let entries = checkpoint::Entries::of(&tree, &order);
            let mut keep = HashSet::new();
            for n in &order {
                keep.extend(extents::each(&n.loc, n.meta.size).filter_map(|p| p.part.shard_file()));
            }
            for loc in tree.orphan_locations() {
                keep.extend(extents::each(&loc, 0).filter_map(|p| p.part.shard_file()));
            }
            keep.extend(
                self.pins
                    .keys()
                    .into_iter()
                    .map(|(t, id)| (t, FileKind::Blob, id)),
            );
            held += since.elapsed();
            (header, entries, keep, self.wal.written(), next_file_id)
        };
        let mut writer =
            checkpoint::Writer::numbered(self.disk.clone(), &ckpt_dir, *seq + 1, &header)?;
        writer.entries(&entries)?;
        drop(entries);
        // Every change the snapshot contains must be durable before the snapshot is.
        self.wal.sync_to(log_end)?;
        writer.finish()?;
        *seq += 1;
        self.checkpointed_at.store(log_end, Ordering::Relaxed);

        // What the snapshots pin stays. Decided and done under their lock: one taken
        // meanwhile pins this checkpoint, or one before it that is then kept.
        let mut removed = 0;
        {
            let mut snapshots = lock(&self.snapshots);
            snapshots.set_latest(*seq, new_seg);
            let kept = snapshots.kept();
            self.wal.retire_before(new_seg, &kept.segments)?;
            checkpoint::remove_older(&*self.disk, &ckpt_dir, *seq, &kept.checkpoints)?;
            if kept.unread {
                log::info!("a snapshot's shard files are not read yet: none is retired");
            } else {
                keep.extend(kept.files);
                for (tier, kind, id, _) in self.store.files() {
                    if id < next_file_id && !keep.contains(&(tier, kind, id)) {
                        self.store.remove(tier, kind, id)?;
                        removed += 1;
                    }
                }
            }
        }
        self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.counters
            .last_checkpoint_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        log::info!(
            "checkpoint {} written in {:?} (the tree held for {held:?}); {removed} shard \
             files retired",
            *seq,
            started.elapsed()
        );
        crate::events::record(
            "checkpoint",
            serde_json::json!({
                "checkpoint": *seq,
                "micros": started.elapsed().as_micros() as u64,
                "tree_held_micros": held.as_micros() as u64,
                "shard_files_retired": removed,
            }),
        );
        Ok(())
    }

    /// Writes a piece's bytes where they belong in `tier`: a pack entry, or a blob for a
    /// large piece or one that is a blob already (re-tiered or uncoded).
    fn move_piece(
        &self,
        p: Piece,
        tier: Tier,
        packs: &mut HashMap<Tier, store::PackWriter>,
    ) -> Result<Piece> {
        if p.len > self.settings().inline_max as u64 || matches!(p.part, Part::Blob { .. }) {
            let id = self.recode_blob(&p.part.location(), p.size, tier)?;
            return Ok(Piece {
                part: Part::Blob { tier, id },
                ..p
            });
        }
        let mut data = self.load(&p.part.location(), p.size)?;
        data.truncate(p.len as usize);
        let w = match packs.entry(tier) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(self.store.pack_writer(tier)?),
        };
        let (off, len) = w.append(&data)?;
        Ok(Piece {
            part: Part::Pack {
                tier,
                id: w.id,
                off,
                len,
            },
            size: p.len,
            len: p.len,
        })
    }

    /// Writes content as a blob coded for `tier` (large contents, re-tiered blobs).
    fn recode_blob(&self, loc: &Location, size: u64, tier: Tier) -> Result<u64> {
        let mut w = self.store.blob_writer(tier, tier.codec())?;
        let id = w.id;
        match *loc {
            Location::Blob {
                tier: t, id: old, ..
            } => {
                let r = self.store.blob(t, old)?;
                for i in 0..r.chunks() {
                    w.write(&r.chunk(i)?)?;
                }
            }
            _ => w.write(&self.load(loc, size)?)?,
        }
        w.finish()?;
        Ok(id)
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
            let due = (pending >= s.checkpoint_bytes || due_by_time(pending, last.elapsed(), &s))
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

/// A content a checkpoint moves: (inode, location, size, tier).
type Work = (u64, Location, u64, Tier);

/// Whether the interval calls for a checkpoint of a log that grew by `pending` bytes:
/// once it passed if the log holds a 64th of `checkpoint_bytes` (replaying less at a
/// restart takes no time worth a checkpoint, which writes every inode: about a second of
/// CPU, and of readers waiting, at a million of them), and after ten in any case, so
/// that the log's old segments are retired.
fn due_by_time(pending: u64, since_last: Duration, s: &Settings) -> bool {
    pending > 0
        && ((since_last >= s.checkpoint_interval && pending >= s.checkpoint_bytes / 64)
            || since_last >= s.checkpoint_interval * 10)
}

/// Whether a checkpoint moves a piece of a file of `tier`: out of a log segment older
/// than `new_seg`, out of a sparse pack, into its tier.
fn must_move(part: Part, tier: Tier, new_seg: u64, sparse: &HashSet<(Tier, u64)>) -> bool {
    match part {
        Part::Wal { seg, .. } => seg < new_seg,
        Part::Pack { tier: t, id, .. } => t != tier || sparse.contains(&(t, id)),
        Part::Blob { tier: t, .. } => t != tier,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::engine::Engine;
    use crate::engine::codec::Tier;
    use crate::engine::store;
    use crate::engine::testutil::{Checkpointing, file, get, new_universe, put, settings};

    #[test]
    fn the_interval_checkpoints_a_log_worth_it_and_any_log_after_ten() {
        let s = crate::engine::Settings::default();
        let (i, worth) = (s.checkpoint_interval, s.checkpoint_bytes / 64);
        assert!(!super::due_by_time(0, i * 20, &s), "nothing logged");
        assert!(!super::due_by_time(worth, i / 2, &s), "too soon");
        assert!(super::due_by_time(worth, i, &s));
        assert!(
            !super::due_by_time(worth - 1, i * 9, &s),
            "too little, not too long"
        );
        assert!(super::due_by_time(1, i * 10, &s));
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
        let checkpointer = Checkpointing::start(&e);
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
        checkpointer.stop();
    }
}
