//! The kernel adapter: each `fuser` callback unpacks its request, calls `Vfs`, and replies.
//! Nothing here decides anything about the universe.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, Notifier, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::engine::tree::{Kind, Ts};
use crate::engine::{self, Attr};
use crate::error::{Error, Result};
use crate::placement;
use crate::vfs::{Caller, Changes, Vfs, acting};

/// How long the kernel may trust names and attributes of stored inodes. Every change goes
/// through this daemon, so the kernel's own updates keep its cache right in between.
const TTL: Duration = Duration::from_secs(30);

pub struct Fuse {
    vfs: Arc<Vfs>,
    /// What of the kernel's cache went stale behind its back (see `invalidator`).
    stale: Sender<Stale>,
}

/// What the kernel must drop: an inode's attributes and pages, or a name in a directory.
pub enum Stale {
    Inode(u64),
    Entry(u64, Vec<u8>),
}

impl Fuse {
    pub fn new(vfs: Arc<Vfs>, stale: Sender<Stale>) -> Fuse {
        let (changed, gone) = (stale.clone(), stale.clone());
        vfs.notify_with(crate::vfs::Listener {
            changed: Box::new(move |ino| {
                let _ = changed.send(Stale::Inode(ino));
            }),
            gone: Box::new(move |parent, name| {
                let _ = gone.send(Stale::Entry(parent, name.to_vec()));
            }),
        });
        Fuse { vfs, stale }
    }

    /// Runs a request's `work` and gives its result to `reply`: at once, or, when the work
    /// acknowledges a change that must be durable first (a hot-tier commit, an fsync),
    /// from the log's flusher after the fsync covering it. This thread goes on to other
    /// requests meanwhile, so the writers waiting for one fsync share it (`engine::acks`).
    fn answer<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T>,
        reply: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        self.answer_or_undo(work, |_| {}, reply);
    }

    /// `answer`, where what the work made (a handle) must be let go of when the fsync its
    /// reply waited for fails: the kernel, told of the failure, never releases it.
    fn answer_or_undo<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T>,
        undo: impl FnOnce(T) + Send + 'static,
        reply: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        match engine::deferring(work) {
            (res, None) => reply(res),
            (res, Some(lsn)) => self.vfs.engine().when_durable(
                lsn,
                Box::new(move |synced| {
                    reply(match (synced, res) {
                        (Err(e), Ok(made)) => {
                            undo(made);
                            Err(e)
                        }
                        (synced, res) => synced.and(res),
                    })
                }),
            ),
        }
    }

    /// `answer` for requests answered with an entry.
    fn answer_entry(
        &self,
        op: &'static str,
        work: impl FnOnce() -> Result<Attr>,
        reply: ReplyEntry,
    ) {
        let vfs = self.vfs.clone();
        self.answer(work, move |res| entry(&vfs, reply, op, res));
    }

    /// `answer` for requests answered with nothing but success or an errno.
    fn answer_empty(&self, op: &'static str, work: impl FnOnce() -> Result<()>, reply: ReplyEmpty) {
        self.answer(work, move |res| empty(reply, op, res));
    }
}

/// Tells the kernel to drop what `stale` says went stale. Runs on its own thread: a
/// notification must not be sent from inside the request that caused it.
pub fn invalidator(notifier: Notifier, stale: Receiver<Stale>) {
    for s in stale {
        let res = match &s {
            Stale::Inode(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
            Stale::Entry(parent, name) => {
                notifier.inval_entry(INodeNo(*parent), OsStr::from_bytes(name))
            }
        };
        if let Err(e) = res {
            log::debug!(
                "invalidating {}: {e}",
                match s {
                    Stale::Inode(ino) => format!("inode {ino}"),
                    Stale::Entry(parent, _) => format!("a name in {parent}"),
                }
            );
        }
    }
}

fn errno(e: &Error) -> Errno {
    Errno::from_i32(e.errno())
}

/// Logs what went wrong at the level it deserves, and gives the errno.
fn fail(op: &str, e: &Error) -> Errno {
    match e {
        Error::Io(_) | Error::Corrupt(_) => log::error!("{op}: {e}"),
        // The disk's failure was logged once, when it happened.
        Error::Poisoned => log::debug!("{op}: {e}"),
        Error::InvalidRecord(_) | Error::Protected | Error::ReadOnlyView => log::info!("{op}: {e}"),
        _ => log::debug!("{op}: {e}"),
    }
    errno(e)
}

/// How long the kernel keeps a name and its attributes: generated files change with what
/// they show, so are asked again each time, unless fixed.
fn ttl(vfs: &Vfs, attr: &Attr) -> Duration {
    if vfs.attrs_keep(attr.ino) {
        TTL
    } else {
        Duration::ZERO
    }
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDev => FileType::CharDevice,
        Kind::BlockDev => FileType::BlockDevice,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.atime.to_system(),
        mtime: a.mtime.to_system(),
        ctime: a.ctime.to_system(),
        crtime: a.ctime.to_system(),
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: 128 * 1024,
        flags: 0,
    }
}

fn ts(t: TimeOrNow) -> Ts {
    match t {
        TimeOrNow::SpecificTime(t) => Ts::from(t),
        TimeOrNow::Now => Ts::from(SystemTime::now()),
    }
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

fn entry(vfs: &Vfs, reply: ReplyEntry, op: &str, res: Result<Attr>) {
    match res {
        Ok(a) => reply.entry(&ttl(vfs, &a), &file_attr(&a), Generation(0)),
        Err(e) => reply.error(fail(op, &e)),
    }
}

fn empty(reply: ReplyEmpty, op: &str, res: Result<()>) {
    match res {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(fail(op, &e)),
    }
}

/// Every open bypasses the page cache. It is shared by every opener of an inode, so a
/// writer's uncommitted pages would otherwise reach readers that must see only committed
/// versions (and views change on every read); and a writer's data would be copied into it
/// only to be sent on and dropped (the daemon holds the draft). mmap still works
/// (FUSE_DIRECT_IO_ALLOW_MMAP). When a close commits nothing (a reader's, a control
/// file's), the kernel is told not to send it: one round trip less per `cat`.
fn open_flags(flush_needed: bool) -> FopenFlags {
    if flush_needed {
        FopenFlags::FOPEN_DIRECT_IO
    } else {
        FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NOFLUSH
    }
}

impl Filesystem for Fuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_readahead(1 << 20);
        // O_TRUNC must arrive with the open: otherwise the kernel truncates with a separate
        // setattr that carries no file handle, indistinguishable from truncate(2), which
        // commits at once; a refused record would then lose its previous version.
        if let Err(missing) = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC) {
            log::warn!("kernel lacks {missing:?}: O_TRUNC commits an empty file at open");
        }
        // Files are opened with direct I/O (see `open_flags`); this keeps mmap working.
        if let Err(missing) = config.add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP) {
            log::warn!("kernel lacks {missing:?}: mmap of stored files fails");
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        placement::follow(req.pid());
        entry(
            &self.vfs,
            reply,
            "lookup",
            self.vfs.lookup(parent.0, name.as_bytes()),
        );
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        placement::follow(req.pid());
        match self.vfs.getattr(ino.0) {
            Ok(a) => reply.attr(&ttl(&self.vfs, &a), &file_attr(&a)),
            Err(e) => reply.error(fail("getattr", &e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        let changes = Changes {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(ts),
            mtime: mtime.map(ts),
        };
        let vfs = self.vfs.clone();
        self.answer(
            || self.vfs.setattr(ino.0, fh.map(|f| f.0), changes),
            move |res| match res {
                Ok(a) => reply.attr(&ttl(&vfs, &a), &file_attr(&a)),
                Err(e) => reply.error(fail("setattr", &e)),
            },
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.vfs.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(fail("readlink", &e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        self.answer_entry(
            "mknod",
            || {
                self.vfs
                    .mknod(parent.0, name.as_bytes(), (mode, umask), rdev, caller(req))
            },
            reply,
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        self.answer_entry(
            "mkdir",
            || {
                self.vfs
                    .mkdir(parent.0, name.as_bytes(), mode, umask, caller(req))
            },
            reply,
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        self.answer_empty(
            "unlink",
            || self.vfs.unlink(parent.0, name.as_bytes(), false),
            reply,
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        self.answer_empty(
            "rmdir",
            || self.vfs.unlink(parent.0, name.as_bytes(), true),
            reply,
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        self.answer_entry(
            "symlink",
            || {
                self.vfs.symlink(
                    parent.0,
                    link_name.as_bytes(),
                    target.as_os_str().as_bytes(),
                    caller(req),
                )
            },
            reply,
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        let work = || {
            self.vfs.rename(
                parent.0,
                name.as_bytes(),
                newparent.0,
                newname.as_bytes(),
                flags.bits(),
            )
        };
        self.answer_empty("rename", work, reply);
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        let work = || self.vfs.link(ino.0, newparent.0, newname.as_bytes());
        self.answer_entry("link", work, reply);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        match self.vfs.open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), open_flags(self.vfs.flush_needed(fh))),
            Err(e) => reply.error(fail("open", &e)),
        }
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        placement::follow(req.pid());
        match self.vfs.read(fh.0, offset, size as usize) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(fail("read", &e)),
        }
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        self.answer(
            || {
                self.vfs
                    .write_by(fh.0, offset, data, lock_owner.map(|o| o.0))
            },
            move |res| match res {
                Ok(n) => reply.written(n as u32),
                Err(e) => reply.error(fail("write", &e)),
            },
        );
    }

    fn fallocate(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        placement::follow(req.pid());
        let res = self.vfs.fallocate(fh.0, (offset, length), mode);
        empty(reply, "fallocate", res);
    }

    fn copy_file_range(
        &self,
        req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        placement::follow(req.pid());
        // A reply counts at most u32::MAX bytes; the kernel asks again for the rest.
        let len = len.min(u64::from(u32::MAX) & !0xfff);
        match self
            .vfs
            .copy_range((fh_in.0, offset_in), (fh_out.0, offset_out), len)
        {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(fail("copy_file_range", &e)),
        }
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Not `placement::follow`: a process closes its descriptors while it execs, and
        // reading its /proc entry then waits for the exec, which waits for this reply.
        let _by = acting(caller(req));
        self.answer_empty("close", || self.vfs.flush(fh.0, Some(lock_owner.0)), reply);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let work = || {
            let stale = self.vfs.release(fh.0)?;
            if stale {
                let _ = self.stale.send(Stale::Inode(ino.0));
            }
            Ok(())
        };
        self.answer_empty("release", work, reply);
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        placement::follow(req.pid());
        let _by = acting(caller(req));
        self.answer_empty("fsync", || self.vfs.fsync(fh.0), reply);
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _by = acting(caller(req));
        match self.vfs.opendir(ino.0) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(fail("opendir", &e)),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        placement::follow(req.pid());
        match self.vfs.readdir(ino.0, offset, 512) {
            Ok(entries) => {
                for e in entries {
                    let kind = file_type(e.kind);
                    if reply.add(INodeNo(e.ino), e.offset, kind, OsStr::from_bytes(&e.name)) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(fail("readdir", &e)),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.answer_empty("fsyncdir", || self.vfs.engine().sync_all(), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.vfs.statfs() {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.bsize,
            ),
            Err(e) => reply.error(fail("statfs", &e)),
        }
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _by = acting(caller(req));
        self.answer_empty(
            "setxattr",
            || self.vfs.setxattr(ino.0, name.as_bytes(), value, flags),
            reply,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.vfs.getxattr(ino.0, name.as_bytes()) {
            Ok(v) => xattr_reply(reply, &v, size),
            Err(e) => reply.error(fail("getxattr", &e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.vfs.listxattr(ino.0) {
            Ok(names) => {
                let mut buf = Vec::new();
                for n in names {
                    buf.extend_from_slice(&n);
                    buf.push(0);
                }
                xattr_reply(reply, &buf, size);
            }
            Err(e) => reply.error(fail("listxattr", &e)),
        }
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _by = acting(caller(req));
        self.answer_empty(
            "removexattr",
            || self.vfs.removexattr(ino.0, name.as_bytes()),
            reply,
        );
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        // No ioctls: tools probe with TCGETS (isatty) and expect ENOTTY.
        reply.error(Errno::ENOTTY);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // Mounted with default_permissions: the kernel checks modes itself.
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        placement::follow(req.pid());
        let by = caller(req);
        let _by = acting(by);
        let new = NewFile {
            parent: parent.0,
            name: name.as_bytes(),
            mode,
            umask,
            flags,
        };
        self.create_answered(new, by, move |res| match res {
            Ok(c) => reply.created(
                &c.ttl,
                &file_attr(&c.attr),
                Generation(0),
                FileHandle(c.fh),
                open_flags(c.flush_needed),
            ),
            Err(e) => reply.error(fail("create", &e)),
        });
    }
}

/// What a create asks for.
struct NewFile<'a> {
    parent: u64,
    name: &'a [u8],
    mode: u32,
    umask: u32,
    flags: i32,
}

/// What a create answers: the new file and its open handle.
struct Created {
    attr: Attr,
    fh: u64,
    ttl: Duration,
    flush_needed: bool,
}

impl Fuse {
    /// Creates and opens a file, answering `reply` as `answer_or_undo` does. A new file
    /// is made durable by its close, but a create that takes back a kept file (a removed
    /// configuration file, see `Vfs::create`) changes it in the hot tier and is answered
    /// once durable. If that fsync fails, the kernel is told the create failed and never
    /// releases the handle, so it is released here.
    fn create_answered(
        &self,
        new: NewFile<'_>,
        by: Caller,
        reply: impl FnOnce(Result<Created>) + Send + 'static,
    ) {
        let work = || {
            let (attr, fh) = self
                .vfs
                .create(new.parent, new.name, new.mode, new.umask, new.flags, by)?;
            Ok(Created {
                ttl: ttl(&self.vfs, &attr),
                flush_needed: self.vfs.flush_needed(fh),
                attr,
                fh,
            })
        };
        let vfs = self.vfs.clone();
        // Runs on the log's flusher after a failed fsync: the log is poisoned, so the
        // release's commit fails at once instead of waiting for another fsync.
        let undo = move |c: Created| {
            if let Err(e) = vfs.release(c.fh) {
                log::debug!("releasing the handle of a failed create: {e}");
            }
        };
        self.answer_or_undo(work, undo, reply);
    }
}

/// getxattr/listxattr protocol: size 0 asks for the length; a short buffer is ERANGE.
fn xattr_reply(reply: ReplyXattr, data: &[u8], size: u32) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::engine::disk::sim::Sim;
    use crate::engine::{Engine, Settings};
    use crate::namespace::SEED;
    use crate::regions::{OpenFiles, OpenKind, Regions};

    /// Writers' handles open now.
    fn writers_open(vfs: &Vfs) -> usize {
        vfs.open_files()
            .iter()
            .filter(|o| o.kind == OpenKind::Writer)
            .count()
    }

    /// The one way a create owes an fsync: `rm configuration/x.json`, then creating it
    /// again (an editor's or a script's rewrite). The removed file is kept until replaced,
    /// and the create takes it back with the creator's mode and owner, a metadata change
    /// of the hot tier, durable before the reply.
    #[test]
    fn a_create_whose_deferred_fsync_fails_releases_its_handle() {
        let disk = Sim::default();
        let e = Arc::new(
            Engine::open_on(
                Arc::new(disk.clone()),
                Path::new("/data"),
                Settings::default(),
            )
            .expect("engine"),
        );
        let regions = Regions::builtin(Some(8)).expect("regions");
        let vfs = Arc::new(Vfs::new(e.clone(), regions, SEED).expect("vfs"));
        let fuse = Fuse::new(vfs.clone(), mpsc::channel().0);
        let conf = vfs.resolve("configuration").expect("configuration");
        let name = crate::regions::config::SHARD_TOPOLOGY.as_bytes();
        vfs.unlink(conf, name, false).expect("rm");
        let new = NewFile {
            parent: conf,
            name,
            mode: libc::S_IFREG | 0o644,
            umask: 0o022,
            flags: libc::O_WRONLY | libc::O_TRUNC,
        };

        // Another thread's fsync under way: the create's reply waits for the flusher.
        e.hold_sync(true);
        let (tx, rx) = mpsc::channel();
        fuse.create_answered(new, Caller::ROOT, move |res| {
            let _ = tx.send(res.map(|c| c.fh));
        });
        e.hold_sync(false);
        assert!(rx.try_recv().is_err(), "answered before its fsync");
        assert_eq!(writers_open(&vfs), 1, "the create's handle");

        // The flusher's fsync fails: the create is refused and its handle let go of.
        disk.cut_at(disk.points() + 1);
        e.start().expect("start");
        let res = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the create was answered");
        assert!(
            matches!(res, Err(Error::Io(_) | Error::Poisoned)),
            "answered {res:?} after a failed fsync"
        );
        assert_eq!(writers_open(&vfs), 0, "the refused create's handle is open");
        let _ = e.shutdown();
    }
}
