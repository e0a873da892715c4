//! The one commit path. Every way content reaches a name — close or fsync after writes,
//! truncate, a shared mapping's msync (it arrives as writes and an fsync), rename onto
//! the name — passes here: the owning region's rule checks the content (streamed, so any
//! size is checked in bounded memory), and after the commit the region is told.

use std::cell::RefCell;
use std::io::Read;

use crate::engine::draft::Bytes;
use crate::engine::tree::Meta;
use crate::engine::{Attr, CommitAt, Engine, Snapshot};
use crate::error::Result;
use crate::namespace;
use crate::regions::{Content, Dir, check_stream};
use crate::vfs::{Vfs, lock};

/// Reads one committed version of a file from the start, a piece at a time.
struct VersionReader<'a> {
    engine: &'a Engine,
    snap: &'a Snapshot,
    pos: u64,
}

impl Read for VersionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let data = self
            .engine
            .read_version(self.snap, self.pos, buf.len())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        buf[..data.len()].copy_from_slice(&data);
        self.pos += data.len() as u64;
        Ok(data.len())
    }
}

impl Vfs {
    /// Commits `ino`'s draft if it has unsaved changes, under its region's rule.
    pub(super) fn commit(&self, ino: u64, when: CommitAt) -> Result<()> {
        self.commit_attempt(ino, when).1
    }

    /// A writer's commit (close, fsync, last release): a change by whoever acts, so it is
    /// audited, refused or not, when there was something to commit.
    pub(super) fn commit_by_writer(&self, ino: u64, when: CommitAt) -> Result<()> {
        let (tried, res) = self.commit_attempt(ino, when);
        if tried {
            self.audit_ino("write", ino, res.as_ref().copied());
        }
        res
    }

    /// [`commit`](Self::commit), and whether there was content to check.
    fn commit_attempt(&self, ino: u64, when: CommitAt) -> (bool, Result<()>) {
        let tried = std::cell::Cell::new(false);
        let res = self.commit_checked(ino, when, &tried);
        (tried.get(), res)
    }

    fn commit_checked(
        &self,
        ino: u64,
        when: CommitAt,
        tried: &std::cell::Cell<bool>,
    ) -> Result<()> {
        let committed = RefCell::new(None);
        self.engine.commit(ino, when, &|meta, bytes| {
            tried.set(true);
            let dir = self.dir(meta.parent)?;
            self.check_commit(&dir, meta, bytes)?;
            let telling = self.regions.telling(&[dir.ino]);
            *committed.borrow_mut() = Some((dir, meta.name.to_vec(), telling));
            Ok(())
        })?;
        if let Some((dir, name, _telling)) = committed.into_inner() {
            self.told_committed(&dir, &name);
        }
        Ok(())
    }

    /// Tells the owning region, then every region, that `name` of `dir` has new content.
    pub(super) fn told_committed(&self, dir: &Dir, name: &[u8]) {
        let cx = self.cx();
        self.region(dir).committed(&cx, dir, name);
        let event = crate::regions::Event::Committed { dir: dir.ino, name };
        self.regions.observe(&cx, &event);
    }

    fn check_commit(&self, dir: &Dir, meta: &Meta, bytes: &Bytes<'_>) -> Result<()> {
        self.check_rule(dir, meta, bytes)?;
        let mut read = || {
            let mut all = Vec::with_capacity(bytes.len() as usize);
            bytes.reader().read_to_end(&mut all)?;
            Ok(all)
        };
        self.regions
            .vet(&self.cx(), dir, &meta.name, &mut Content::new(&mut read))
            .inspect_err(|e| self.refused(meta.ino, e))
    }

    /// Logs and counts a refused commit.
    fn refused(&self, ino: u64, e: &crate::error::Error) {
        self.note_refusal(ino, "commit", e);
    }

    /// A refused commit or write (`what`) of `ino`: logged, counted, and an event.
    pub(super) fn note_refusal(&self, ino: u64, what: &str, e: &crate::error::Error) {
        let path = namespace::join(&self.engine.path_of(ino));
        log::warn!("refusing a {what} to {path}: {e}; the previous version stays");
        crate::events::record(
            "refused",
            serde_json::json!({"operation": what, "path": path, "reason": e.to_string()}),
        );
        self.metrics.refused(format!("{path}: {e}"));
    }

    /// The owning region's rule.
    fn check_rule(&self, dir: &Dir, meta: &Meta, bytes: &Bytes<'_>) -> Result<()> {
        let Some(mut rule) = self.region(dir).rule(dir, &meta.name) else {
            return Ok(());
        };
        // A check that ran ahead over every byte only needs to hear the end. It is tried,
        // not waited for: a writer may hold it while it waits for this draft.
        let ahead = lock(&self.ahead).get(&meta.ino).cloned();
        let res = match ahead.as_ref().and_then(|a| a.try_lock().ok()) {
            Some(mut a) if a.next == bytes.len() && a.rule.id == rule.id => a.rule.check.finish(),
            _ => check_stream(&mut rule, &mut bytes.reader(), bytes.len()),
        };
        res.inspect_err(|e| self.refused(meta.ino, e))
    }

    /// A rename brings `src`'s committed content to `to/newname`: it must follow the rule
    /// there, unless it followed the same rule where it was, and pass every region's vet.
    pub(super) fn admit_rename(
        &self,
        src: &Attr,
        (from, name): (&Dir, &[u8]),
        (to, newname): (&Dir, &[u8]),
    ) -> Result<()> {
        self.rename_rule(src, (from, name), (to, newname))?;
        let mut read = || {
            let snap = self.engine.snapshot(src.ino)?;
            let mut reader = VersionReader {
                engine: &self.engine,
                snap: &snap,
                pos: 0,
            };
            let mut all = Vec::with_capacity(src.size as usize);
            let res = reader.read_to_end(&mut all);
            self.engine.release_snapshot(&snap);
            res?;
            Ok(all)
        };
        self.regions
            .vet(&self.cx(), to, newname, &mut Content::new(&mut read))
            .inspect_err(|e| self.refused_rename(src, newname, e))
    }

    fn refused_rename(&self, src: &Attr, newname: &[u8], e: &crate::error::Error) {
        log::warn!(
            "refusing rename of {} onto {}: {e}",
            namespace::join(&self.engine.path_of(src.ino)),
            String::from_utf8_lossy(newname)
        )
    }

    fn rename_rule(
        &self,
        src: &Attr,
        (from, name): (&Dir, &[u8]),
        (to, newname): (&Dir, &[u8]),
    ) -> Result<()> {
        let Some(mut rule) = self.region(to).rule(to, newname) else {
            return Ok(());
        };
        if self
            .region(from)
            .rule(from, name)
            .is_some_and(|r| r.id == rule.id)
        {
            return Ok(());
        }
        let snap = self.engine.snapshot(src.ino)?;
        let mut reader = VersionReader {
            engine: &self.engine,
            snap: &snap,
            pos: 0,
        };
        let res = check_stream(&mut rule, &mut reader, src.size);
        self.engine.release_snapshot(&snap);
        res.inspect_err(|e| self.refused_rename(src, newname, e))
    }
}
