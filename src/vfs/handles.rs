//! Open files: readers pinned to the version they opened, writers with their draft, and
//! generated files rendered once per open. Writes and truncations are here; what happens
//! at close and fsync is the commit path (`commit.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::engine::tree::Kind;
use crate::engine::{Attr, CommitAt, Data, Snapshot};
use crate::error::{Error, Result};
use crate::metrics::Op;
use crate::regions::access::Verb;
use crate::regions::{Event, Open, OpenKind, Rule, Sink};
use crate::vfs::guard::Target;
use crate::vfs::views::Content;
use crate::vfs::{Changes, VIRT, Vfs, frozen, lock};

pub(super) enum Handle {
    /// A reader holds the version it opened; a writer reads its draft.
    File {
        ino: u64,
        writer: bool,
        snap: Option<Snapshot>,
        /// Who wrote through it: the kernel's ids of the writers' descriptor tables (its
        /// "lock owners"; one per process), when the kernel said (see `flush`).
        owners: Owners,
        /// Who opened it: a commit at the last release (which carries no caller) is theirs.
        by: Option<crate::vfs::Caller>,
    },
    /// A generated file of the directory `dir`.
    View { dir: u64, content: Content },
    /// Writes its region takes itself (`regions::Sink`); reads are of the file as it is.
    Sink {
        ino: u64,
        sink: Arc<Mutex<Box<dyn Sink>>>,
        owners: Owners,
    },
}

/// What a close has to finish, taken out of the handle table before it runs.
enum Closing {
    Sink(Arc<Mutex<Box<dyn Sink>>>),
    Writer(u64),
}

/// A content check running ahead of the commit: while a file is written forward from
/// offset 0, each write is fed to its region's rule, so that a write making the file
/// invalid whatever follows fails at once (a shell sees EINVAL from `echo '{bad' > f`;
/// it never sees an error from `close`). Any other write or truncation ends it; the
/// commit's own check still runs.
pub(super) struct Ahead {
    /// Where the next write must land to continue the stream.
    pub next: u64,
    pub rule: Rule,
}

/// The processes (the kernel's lock owners) that wrote through a handle.
#[derive(Default)]
pub(super) struct Owners(Vec<u64>);

impl Owners {
    fn note(&mut self, owner: Option<u64>) {
        if let Some(o) = owner
            && !self.0.contains(&o)
        {
            self.0.push(o);
        }
    }

    /// Whether `closer` wrote nothing through the handle while others did (a child's
    /// close-on-exec copy).
    fn stranger(&self, closer: Option<u64>) -> bool {
        closer.is_some_and(|c| !self.0.is_empty() && !self.0.contains(&c))
    }
}

/// Whether an open changes the file: it writes, or it truncates (Linux truncates at
/// `O_RDONLY|O_TRUNC` too, and asks write permission for it).
fn is_write(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0
}

impl crate::regions::OpenFiles for Vfs {
    fn open_files(&self) -> Vec<Open> {
        let handles = lock(&self.handles);
        handles
            .values()
            .map(|h| match *h {
                Handle::File { ino, writer, .. } => Open {
                    ino,
                    kind: if writer {
                        OpenKind::Writer
                    } else {
                        OpenKind::Reader
                    },
                },
                Handle::Sink { ino, .. } => Open {
                    ino,
                    kind: OpenKind::Stream,
                },
                Handle::View { dir, .. } => Open {
                    ino: dir,
                    kind: OpenKind::View,
                },
            })
            .collect()
    }
}

impl Vfs {
    fn add_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, h);
        fh
    }

    /// The directory and name of a stored or generated file, if its region takes the
    /// writes to it.
    pub(super) fn taken(&self, ino: u64) -> Option<(crate::regions::Dir, Vec<u8>)> {
        let (parent, name) = if ino & VIRT != 0 {
            let (dir, name) = self.views.key(ino)?;
            (dir, name.as_bytes().to_vec())
        } else {
            let (parent, name) = self.engine.entry_of(ino).ok()?;
            (parent, name.to_vec())
        };
        let dir = self.dir(parent).ok()?;
        self.region(&dir)
            .takes_writes(&self.cx(), &dir, &name)
            .then_some((dir, name))
    }

    /// Opens a file or a generated file; returns the handle.
    pub fn open(&self, ino: u64, flags: i32) -> Result<u64> {
        let _t = self.metrics.time(Op::Open);
        let mut wants = Vec::with_capacity(2);
        if flags & libc::O_ACCMODE != libc::O_WRONLY {
            wants.push((Target::Ino(ino), Verb::Read));
        }
        if is_write(flags) {
            wants.push((Target::Ino(ino), Verb::Write));
        }
        self.permit("open", &wants)?;
        let taken = self.taken(ino);
        if is_write(flags)
            && let Some((dir, name)) = &taken
        {
            // What a stream's writer appends is taken as it comes: no commit to audit.
            let appends = [(Target::Ino(ino), Verb::Write)];
            let sink = self.audited("append", &appends, || {
                let truncate = flags & libc::O_TRUNC != 0;
                self.region(dir).sink(&self.cx(), dir, name, truncate)
            })?;
            return Ok(self.add_handle(Handle::Sink {
                ino,
                sink: Arc::new(Mutex::new(sink)),
                owners: Owners::default(),
            }));
        }
        if let Some((id, local)) = frozen::split(ino) {
            if is_write(flags) {
                return Err(Error::ReadOnlySnapshot);
            }
            let f = self.engine.frozen(id)?;
            if f.getattr(local)?.kind == Kind::Dir {
                return Err(Error::IsDir);
            }
            let content = Content::Frozen(f, local);
            return Ok(self.add_handle(Handle::View { dir: ino, content }));
        }
        if ino & VIRT != 0 {
            if is_write(flags) {
                return Err(Error::ReadOnlyView);
            }
            let (content, _) = self.view_content(ino)?;
            let dir = self.views.key(ino).ok_or(Error::NotFound)?.0;
            return Ok(self.add_handle(Handle::View { dir, content }));
        }
        let writer = is_write(flags);
        let attr = self.engine.getattr(ino)?;
        match attr.kind {
            Kind::File => {}
            Kind::Dir => return Err(Error::IsDir),
            // The kernel follows symlinks and serves special files itself; only a confused
            // request opens them here, and they have no content to give.
            _ => return Err(Error::InvalidArgument("not a regular file")),
        }
        self.engine.open_handle(ino, writer)?;
        let snap = if writer {
            let truncate = flags & libc::O_TRUNC != 0;
            if truncate && let Err(e) = self.engine.truncate(ino, 0) {
                self.engine.close_handle(ino, writer);
                return Err(e);
            }
            if truncate || attr.size == 0 {
                self.start_ahead(ino);
            }
            None
        } else if taken.is_some() {
            // Append-only: a reader (`tail -f`) sees appends as they come.
            None
        } else {
            if let Ok(parent) = self.engine.parent_of(ino) {
                self.engine.note_read(parent);
                if self.metrics.on() {
                    let event = Event::Read { ino, tag: attr.tag };
                    self.regions.observe(&self.cx(), &event);
                }
            }
            match self.engine.snapshot(ino) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.engine.close_handle(ino, writer);
                    return Err(e);
                }
            }
        };
        Ok(self.add_handle(Handle::File {
            ino,
            writer,
            snap,
            owners: Owners::default(),
            by: crate::vfs::acting_now(),
        }))
    }

    pub fn create(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
        flags: i32,
        who: super::Caller,
    ) -> Result<(Attr, u64)> {
        let _t = self.metrics.time(Op::Create);
        // Creating a kept file's detached name rewrites the kept file.
        let flags = match self.detached(parent, name) {
            Some(_) => flags | libc::O_TRUNC,
            None => flags,
        };
        let attr = self.new_node((parent, name), Kind::File, (mode, umask), who, &[])?;
        let fh = self.open(attr.ino, flags)?;
        Ok((attr, fh))
    }

    pub fn read(&self, fh: u64, off: u64, size: usize) -> Result<Data> {
        let _t = self.metrics.time(Op::Read);
        enum Src {
            File(u64, bool),
            Version(Snapshot),
            View(Content),
            Sink(u64, Arc<Mutex<Box<dyn Sink>>>),
        }
        let src = match lock(&self.handles).get(&fh) {
            Some(Handle::File { snap: Some(s), .. }) => Src::Version(s.clone()),
            Some(Handle::File { ino, writer, .. }) => Src::File(*ino, *writer),
            Some(Handle::View { content, .. }) => Src::View(content.clone()),
            Some(Handle::Sink { ino, sink, .. }) => Src::Sink(*ino, sink.clone()),
            None => return Err(Error::BadHandle),
        };
        match src {
            Src::File(ino, writer) => self.engine.read(ino, off, size, writer),
            Src::Version(snap) => self.engine.read_version(&snap, off, size),
            Src::View(c) => c.read(self, off, size),
            Src::Sink(ino, sink) => {
                let answer = lock(&sink).answer(&self.cx());
                match answer {
                    Some(a) => {
                        let a = a?;
                        let start = (off as usize).min(a.len());
                        let end = start.saturating_add(size).min(a.len());
                        Ok(Data::Shared(a, start..end))
                    }
                    None if ino & VIRT != 0 => self.view_content(ino)?.0.read(self, off, size),
                    None => self.engine.read(ino, off, size, false),
                }
            }
        }
    }

    pub(super) fn file_handle(&self, fh: u64) -> Result<(u64, bool)> {
        match lock(&self.handles).get(&fh) {
            Some(Handle::File { ino, writer, .. }) => Ok((*ino, *writer)),
            Some(Handle::View { .. }) => Err(Error::ReadOnlyView),
            Some(Handle::Sink { .. }) => Err(Error::NotSupported("this on an append-only stream")),
            None => Err(Error::BadHandle),
        }
    }

    /// The sink of a handle, noting `owner` among its writers. A generated file written
    /// to (a control file) shows what the write did: its rendering goes.
    fn sink_of(&self, fh: u64, owner: Option<u64>) -> Option<Arc<Mutex<Box<dyn Sink>>>> {
        let (ino, sink) = match lock(&self.handles).get_mut(&fh) {
            Some(Handle::Sink { ino, sink, owners }) => {
                owners.note(owner);
                (*ino, sink.clone())
            }
            _ => return None,
        };
        if ino & VIRT != 0 {
            self.views.forget(ino);
        }
        Some(sink)
    }

    /// Starts checking `ino`'s content as it is written from offset 0, if its name has a
    /// rule in its region.
    fn start_ahead(&self, ino: u64) {
        let rule = self.engine.entry_of(ino).ok().and_then(|(parent, name)| {
            let dir = self.dir(parent).ok()?;
            self.region(&dir).rule(&dir, &name)
        });
        let mut ahead = lock(&self.ahead);
        match rule {
            Some(rule) => {
                let a = Ahead { next: 0, rule };
                ahead.insert(ino, Arc::new(Mutex::new(a)));
            }
            None => {
                ahead.remove(&ino);
            }
        }
    }

    /// Ends the check ahead of `ino` (this one, if given: a newer one stays).
    pub(super) fn stop_ahead(&self, ino: u64, this: Option<&Arc<Mutex<Ahead>>>) {
        let mut ahead = lock(&self.ahead);
        if this.is_none_or(|t| ahead.get(&ino).is_some_and(|a| Arc::ptr_eq(a, t))) {
            ahead.remove(&ino);
        }
    }

    pub fn write(&self, fh: u64, off: u64, data: &[u8]) -> Result<usize> {
        self.write_by(fh, off, data, None)
    }

    /// `write` by the process whose descriptor table is `owner` (the kernel's "lock
    /// owner"), which is noted among the handle's writers for `flush`.
    pub fn write_by(&self, fh: u64, off: u64, data: &[u8], owner: Option<u64>) -> Result<usize> {
        if let Some(sink) = self.sink_of(fh, owner) {
            let _t = self.metrics.time(Op::Append);
            return lock(&sink).write(&self.cx(), data);
        }
        let _t = self.metrics.time(Op::Write);
        let ino = match lock(&self.handles).get_mut(&fh) {
            Some(Handle::File {
                ino,
                writer: true,
                owners,
                ..
            }) => {
                owners.note(owner);
                *ino
            }
            Some(Handle::View { .. }) => return Err(Error::ReadOnlyView),
            Some(Handle::File { .. } | Handle::Sink { .. }) | None => {
                return Err(Error::BadHandle);
            }
        };
        let ahead = lock(&self.ahead).get(&ino).cloned();
        let Some(ahead) = ahead else {
            self.engine.write(ino, off, data)?;
            return Ok(data.len());
        };
        let mut a = lock(&ahead);
        if off != a.next {
            drop(a);
            self.stop_ahead(ino, Some(&ahead));
            self.engine.write(ino, off, data)?;
            return Ok(data.len());
        }
        if let Err(e) = a.rule.check.feed(data) {
            drop(a);
            self.stop_ahead(ino, Some(&ahead));
            if let Error::InvalidRecord(why) = &e {
                self.engine.refuse_draft(ino, why.clone());
            }
            self.note_refusal(ino, "write", &e);
            self.audit_ino("write", ino, Err(&e));
            return Err(e);
        }
        match self.engine.write(ino, off, data) {
            Ok(()) => {
                a.next += data.len() as u64;
                Ok(data.len())
            }
            Err(e) => {
                drop(a);
                self.stop_ahead(ino, Some(&ahead));
                Err(e)
            }
        }
    }

    pub fn setattr(&self, ino: u64, fh: Option<u64>, c: Changes) -> Result<Attr> {
        let op = match &c {
            Changes { size: Some(_), .. } => "truncate",
            Changes { mode: Some(_), .. } => "chmod",
            Changes { uid: Some(_), .. } | Changes { gid: Some(_), .. } => "chown",
            _ => "touch",
        };
        self.audited(op, &[(Target::Ino(ino), Verb::Write)], || {
            self.set_attributes(ino, fh, c)
        })
    }

    fn set_attributes(&self, ino: u64, fh: Option<u64>, c: Changes) -> Result<Attr> {
        if frozen::split(ino).is_some() {
            return Err(Error::ReadOnlySnapshot);
        }
        if ino & VIRT != 0 {
            return Err(Error::ReadOnlyView);
        }
        if let Some(size) = c.size {
            if self.taken(ino).is_some() {
                return Err(Error::NotPermitted("truncating an append-only stream"));
            }
            self.engine.truncate(ino, size)?;
            let writer = fh
                .and_then(|fh| self.file_handle(fh).ok())
                .is_some_and(|(_, w)| w);
            if !writer {
                // truncate(2) by path commits at once, like any other write without an open.
                let res = self.commit(ino, CommitAt::Release);
                self.engine.drop_unheld_draft(ino);
                res?;
            } else {
                // ftruncate(2) by a writer: its close commits it, like a write.
                self.engine.mark_written(ino);
                if size == 0 {
                    self.start_ahead(ino);
                } else {
                    self.stop_ahead(ino, None);
                }
            }
        }
        let set = crate::engine::SetAttr {
            perm: c.mode.map(|m| (m & 0o7777) as u16),
            uid: c.uid,
            gid: c.gid,
            atime: c.atime,
            mtime: c.mtime,
        };
        if c.mode.is_some()
            || c.uid.is_some()
            || c.gid.is_some()
            || c.atime.is_some()
            || c.mtime.is_some()
        {
            self.engine.setattr(ino, set)
        } else {
            self.engine.getattr(ino)
        }
    }

    /// fallocate(2). Space is never reserved ahead (storage is allocated as content is
    /// committed), so each mode only changes content and size as it says: the default
    /// mode grows the file with zeros, `KEEP_SIZE` alone changes nothing, `PUNCH_HOLE` and
    /// `ZERO_RANGE` write zeros over the range (a draft, committed like any write).
    pub fn fallocate(&self, fh: u64, (off, len): (u64, u64), mode: i32) -> Result<()> {
        let (ino, writer) = self.file_handle(fh)?;
        if !writer {
            return Err(Error::BadHandle);
        }
        let end = off
            .checked_add(len)
            .ok_or(Error::InvalidArgument("range past the largest offset"))?;
        let size = self.engine.getattr(ino)?.size;
        let keep = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        let grow = |end: u64| {
            if keep || end <= size {
                return Ok(());
            }
            self.stop_ahead(ino, None);
            self.engine.truncate(ino, end)
        };
        match mode & !libc::FALLOC_FL_KEEP_SIZE {
            0 => grow(end),
            libc::FALLOC_FL_PUNCH_HOLE if keep => self.write_zeros(fh, off, end.min(size)),
            libc::FALLOC_FL_ZERO_RANGE => {
                self.write_zeros(fh, off, end.min(size))?;
                grow(end)
            }
            _ => Err(Error::NotSupported("this fallocate mode")),
        }
    }

    fn write_zeros(&self, fh: u64, from: u64, to: u64) -> Result<()> {
        let zeros = vec![0u8; (to.saturating_sub(from)).min(1 << 20) as usize];
        let mut pos = from;
        while pos < to {
            let n = (to - pos).min(zeros.len() as u64) as usize;
            self.write(fh, pos, &zeros[..n])?;
            pos += n as u64;
        }
        Ok(())
    }

    /// copy_file_range(2): read through one handle and written through the other, a
    /// bounded piece at a time, so a copy passes the same checks and commit as any write.
    pub fn copy_range(
        &self,
        (fh_in, off_in): (u64, u64),
        (fh_out, off_out): (u64, u64),
        len: u64,
    ) -> Result<u64> {
        let past = || Error::InvalidArgument("range past the largest offset");
        let mut done = 0;
        while done < len {
            let want = (len - done).min(1 << 20) as usize;
            let data = self.read(fh_in, off_in.checked_add(done).ok_or_else(past)?, want)?;
            if data.is_empty() {
                break;
            }
            self.write(fh_out, off_out.checked_add(done).ok_or_else(past)?, &data)?;
            done += data.len() as u64;
        }
        Ok(done)
    }

    /// close(2) of one descriptor: the commit point. A descriptor is also closed in each
    /// child forked while it was open, when the child's exec drops it (close-on-exec):
    /// such a close, by a process that wrote nothing through it (`closer`, the closing
    /// descriptor table, is not among the writers'), commits nothing, or it would publish
    /// a half-written file; the writer's own close, or the last release, does.
    pub fn flush(&self, fh: u64, closer: Option<u64>) -> Result<()> {
        let _t = self.metrics.time(Op::Commit);
        // What to close is taken out of the table first: the table's lock is every open,
        // write and close's, and a stream's close waits for the log's fsync (with it held,
        // four writers of a stream were served one at a time).
        let closing = match lock(&self.handles).get(&fh) {
            Some(Handle::Sink { sink, owners, .. }) => {
                if owners.stranger(closer) {
                    return Ok(());
                }
                Closing::Sink(sink.clone())
            }
            Some(Handle::File {
                ino,
                writer: true,
                owners,
                ..
            }) => {
                if owners.stranger(closer) {
                    log::debug!("close of inode {ino} by a process that wrote nothing: no commit");
                    return Ok(());
                }
                Closing::Writer(*ino)
            }
            Some(Handle::File { .. } | Handle::View { .. }) => return Ok(()),
            None => return Err(Error::BadHandle),
        };
        match closing {
            Closing::Sink(sink) => lock(&sink).close(&self.cx()),
            Closing::Writer(ino) => self.commit_by_writer(ino, CommitAt::Close),
        }
    }

    /// Whether a close of `fh` does anything [`flush`](Self::flush) would do: a writer's
    /// commit, or a stream's end.
    pub fn flush_needed(&self, fh: u64) -> bool {
        let sink = match lock(&self.handles).get(&fh) {
            Some(Handle::Sink { sink, .. }) => sink.clone(),
            Some(Handle::File { writer, .. }) => return *writer,
            Some(Handle::View { .. }) | None => return false,
        };
        lock(&sink).ends_at_close()
    }

    pub fn fsync(&self, fh: u64) -> Result<()> {
        let _t = self.metrics.time(Op::Fsync);
        if let Some(sink) = self.sink_of(fh, None) {
            return lock(&sink).sync(&self.cx());
        }
        match self.file_handle(fh) {
            Ok((ino, true)) => self.commit_by_writer(ino, CommitAt::Fsync),
            Ok((_, false)) => self.engine.sync_all(),
            Err(Error::ReadOnlyView) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The last close of a handle. Returns true when writes were thrown away (a refused
    /// record): the kernel must forget what it cached of the file.
    pub fn release(&self, fh: u64) -> Result<bool> {
        let h = lock(&self.handles).remove(&fh);
        if let Some(Handle::Sink { ino, sink, .. }) = &h {
            // What a writer left pending without a close of its own (killed, or mmap).
            if let Err(e) = lock(sink).close(&self.cx()) {
                log::warn!("closing the stream of inode {ino}: {e}");
            }
            return Ok(false);
        }
        let Some(Handle::File {
            ino,
            writer,
            snap,
            by,
            ..
        }) = h
        else {
            return Ok(false);
        };
        if let Some(s) = &snap {
            self.engine.release_snapshot(s);
        }
        // Normally flush already committed; this covers writes after the last flush
        // (mmap). Errors cannot reach anyone here, so they are only logged.
        if writer {
            let _by = by.map(crate::vfs::acting);
            match self.commit_by_writer(ino, CommitAt::Release) {
                Ok(()) | Err(Error::InvalidRecord(_)) => {}
                Err(e) => log::warn!("commit at release of inode {ino} failed: {e}"),
            }
        }
        // The check running ahead now, taken before this handle stops counting: a writer
        // that opens after that may start its own, which must stay.
        let ahead = writer
            .then(|| lock(&self.ahead).get(&ino).cloned())
            .flatten();
        let stale = self.engine.close_handle(ino, writer);
        if let Some(ahead) = ahead
            && !self.engine.has_writers(ino)
        {
            self.stop_ahead(ino, Some(&ahead));
        }
        Ok(stale)
    }
}
