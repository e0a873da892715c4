//! Commits: a draft becomes the file's committed version, in one log record.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::cache::{Cache, Key, WHOLE};
use super::codec::Tier;
use super::draft::{self, Bytes, Tail};
use super::extents;
use super::read::changed_underneath;
use super::record::{Content, Op};
use super::store::Pin;
use super::tree::{Meta, Ts};
use super::{CommitAt, Engine, lock};
use crate::error::{Error, Result};

/// The new bytes of a record: in the record itself, or in a blob.
#[derive(Default)]
pub(super) struct Staged {
    pub(super) inline: Vec<u8>,
    pub(super) blob: Option<(Tier, u64)>,
    /// Keeps a checkpoint from retiring a new blob until the record naming it is logged
    /// (dropped then, or when the change failed).
    pub(super) pin: Option<Pin>,
}

impl Engine {
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
        let draft = lock(&self.drafts).map.get(&ino).cloned();
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
        // The release of one handle must not commit what another writer has only begun
        // (a new `O_TRUNC` open racing the previous handle's asynchronous release): that
        // writer's own close or release commits it. Counted with the draft held, as a
        // writer's open counts itself before it changes the draft: counted before, the
        // open's truncation could land between the count and this lock, and the release
        // would publish the emptied file.
        if when == CommitAt::Release && lock(&self.drafts).writers.get(&ino).is_some_and(|w| *w > 1)
        {
            return Ok(());
        }
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
        let (base_len, base_version) = (d.base_len, d.base_version);
        let base = |off: u64, n: usize| self.read_base(ino, base_version, off, n);
        let bytes = Bytes {
            base_len,
            base: &base,
            tail: d.tail()?,
        };
        if let Err(e) = check(&meta, &bytes) {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            if let Error::InvalidRecord(why) = &e {
                d.refused = Some(why.clone());
            }
            return Err(e);
        }
        let len = bytes.len();
        // The record holds the bytes from `from` on; before it, the committed ones stay.
        let from = self.append_from(ino, &bytes, base_version)?;
        let logged = len - from;
        let inline_max = self.settings().inline_max as u64;
        // Streamed while it was written: the blob is coded and fsynced already.
        let sealed = match bytes.tail {
            Tail::Blob { tier, id, .. }
                if from == base_len && tier == meta.tier && logged > inline_max =>
            {
                Some((tier, id))
            }
            _ => None,
        };
        let Staged { inline, blob, pin } = match sealed {
            Some(sealed) => Staged {
                blob: Some(sealed),
                ..Staged::default()
            },
            None => self.stage(
                meta.tier,
                &mut *bytes.reader_from(from),
                logged,
                logged <= inline_max,
            )?,
        };
        let content = Content::new(from, len, blob);
        let mtime = d.mtime;
        let mut tree = lock(&self.tree);
        let mut meta = tree.get(ino)?.meta.clone();
        meta.size = len;
        meta.mtime = mtime;
        meta.ctime = Ts::now();
        let tier = meta.tier;
        let parent = meta.parent;
        let mut lsn = self.log(
            &mut tree,
            vec![Op::Upsert { meta, content }],
            &[&inline],
            tier,
        )?;
        let version = tree.get(ino)?.version;
        drop(tree);
        drop(pin);
        if sealed.is_some() {
            d.committed_blob();
        }
        // What was the draft's is committed now: the draft goes on from the new version.
        d.rebase(len, version)?;
        drop(d);
        {
            let mut cache = lock(&self.cache);
            cache_written(&mut cache, (ino, version, len), content, inline);
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        lock(&self.dir_counters).entry(parent).or_default().1 += 1;
        if sync && lsn.is_none() {
            lsn = Some(self.wal.written());
        }
        self.wait(lsn)
    }

    /// Where a commit of `bytes` over the committed content starts logging: past the
    /// base it keeps (an append), less any small pieces folded into the new one (`extents`),
    /// or 0 to rewrite the content whole.
    fn append_from(&self, ino: u64, bytes: &Bytes<'_>, base_version: u64) -> Result<u64> {
        if bytes.base_len == 0 {
            return Ok(0);
        }
        let tree = lock(&self.tree);
        let n = tree.get(ino)?;
        if n.version != base_version {
            return Err(changed_underneath());
        }
        let pieces = extents::prefix(&extents::pieces(&n.loc, n.meta.size), bytes.base_len);
        Ok(extents::fold_from(&pieces, bytes.tail.len()))
    }

    /// Stages the `n` bytes of `src` a record logs: read into memory for the record itself
    /// when `inline`, else coded into a new blob of `tier` (fsynced before the record that
    /// names it).
    pub(super) fn stage(
        &self,
        tier: Tier,
        src: &mut dyn Read,
        n: u64,
        inline: bool,
    ) -> Result<Staged> {
        if inline {
            // Sized exactly: this buffer is what the cache keeps of the record.
            let mut buf = Vec::with_capacity(n as usize);
            src.read_to_end(&mut buf)?;
            return Ok(Staged {
                inline: buf,
                ..Staged::default()
            });
        }
        let (id, pin) = draft::code_blob(&self.stream_to(tier), src)?;
        Ok(Staged {
            inline: Vec::new(),
            blob: Some((tier, id)),
            pin: Some(pin),
        })
    }

    /// Makes everything logged so far durable (fsync of a file without a draft).
    pub fn sync_all(&self) -> Result<()> {
        self.wait(Some(self.wal.written()))
    }
}

/// Caches what a commit wrote, version `version` of `ino` (`len` bytes), as a read of it
/// would find it: inline bytes whole, and a new blob's chunks (cached while it was coded)
/// moved under the version.
pub(super) fn cache_written(
    cache: &mut Cache,
    (ino, version, len): (u64, u64, u64),
    content: Content,
    inline: Vec<u8>,
) {
    match content {
        Content::Inline => cache.put(
            Key {
                ino,
                version,
                chunk: WHOLE,
            },
            Arc::new(inline),
        ),
        Content::Blob { tier, id } => cache.adopt_blob((tier, id), len, ino, version),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::CommitAt;
    use crate::engine::codec::Tier;
    use crate::engine::lock;
    use crate::engine::testutil::{file, get, new_universe, put};

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

    /// The interleaving CI met: the old handle's release is under way when the new
    /// writer's open counts itself and truncates the draft.
    #[test]
    fn a_release_under_way_does_not_commit_a_truncation_made_meanwhile() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "f");
        put(&e, f, b"committed");
        e.open_handle(f, true).expect("old writer");
        e.truncate(f, 0).expect("old writer's O_TRUNC");
        e.write(f, 0, b"second").expect("write");
        e.commit(f, CommitAt::Close, &|_, _| Ok(()))
            .expect("old writer's close");
        let draft = lock(&e.drafts).map.get(&f).cloned().expect("a draft");
        std::thread::scope(|s| {
            let mut held = lock(&draft);
            let release = s.spawn(|| e.commit(f, CommitAt::Release, &|_, _| Ok(())));
            // Time for the release to reach the draft's lock (a slower one only makes
            // this test pass without showing anything, never fail).
            std::thread::sleep(std::time::Duration::from_millis(100));
            // The new writer's open, done before the release has the draft: it counts
            // itself, then truncates (what `truncate` does once it has the draft).
            e.open_handle(f, true).expect("new writer");
            held.truncate(0).expect("new writer's O_TRUNC");
            held.touch();
            drop(held);
            release.join().expect("no panic").expect("release");
        });
        assert_eq!(get(&e, f), b"second");
    }

    /// A commit holds a draft while it takes the drafts' map; so nothing may hold the map
    /// while it waits for a draft. `touch -d` on a file being written once did: with a
    /// release's commit beside it, the two waited for each other for good.
    #[test]
    fn nothing_waits_for_a_draft_while_holding_the_drafts_map() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "f");
        e.open_handle(f, true).expect("writer");
        e.write(f, 0, b"draft").expect("write");
        let draft = lock(&e.drafts).map.get(&f).cloned().expect("a draft");
        std::thread::scope(|s| {
            let held = lock(&draft);
            let touch = s.spawn(|| {
                let set = crate::engine::SetAttr {
                    mtime: Some(crate::engine::tree::Ts::now()),
                    ..Default::default()
                };
                e.setattr(f, set)
            });
            // Once the setattr waits for the draft (time to get there; a slower one only
            // makes this pass without showing anything), the map is free: what the commit
            // holding `held` would take next.
            std::thread::sleep(std::time::Duration::from_millis(200));
            let free = (0..10).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(5));
                e.drafts.try_lock().is_ok()
            });
            drop(held);
            touch.join().expect("no panic").expect("setattr");
            assert!(free, "the map was held by a setattr waiting for the draft");
        });
    }
}
