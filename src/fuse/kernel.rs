//! The `/dev/fuse` transport: each `fuser` callback becomes an [`Op`], and the answer
//! becomes the callback's reply. fuser also mounts, answers INIT, and carries the
//! notifications, interrupts and forgets that never travel over the ring.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, Notifier, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::{Answer, Answered, BLKSIZE, Fuse, Op, Stale, ring};
use crate::engine::Attr;
use crate::engine::tree::{Kind, Ts};
use crate::placement;
use crate::vfs::{Caller, Changes};

pub struct Kernel {
    fuse: Arc<Fuse>,
    /// Whether to ask the kernel for FUSE over io_uring at INIT.
    ring_wanted: bool,
    /// Whether the kernel granted it: `ring` then registers its queues.
    ring_granted: Arc<AtomicBool>,
}

impl Kernel {
    pub fn new(fuse: Arc<Fuse>, ring_wanted: bool, ring_granted: Arc<AtomicBool>) -> Kernel {
        Kernel {
            fuse,
            ring_wanted,
            ring_granted,
        }
    }

    /// Serves `op` for the request's caller, its answer given to `reply`.
    fn serve(&self, req: &Request, op: Op<'_>, reply: impl FnOnce(Answered) + Send + 'static) {
        if op.follows_caller() {
            placement::follow(req.pid());
        }
        let by = Caller {
            uid: req.uid(),
            gid: req.gid(),
            pid: req.pid(),
        };
        // One queue for every CPU, read by several threads: which requests wait behind
        // this one on this thread is unknown.
        self.fuse.handle(op, by, false, reply);
    }
}

/// Sends a stale inode or name to the kernel.
pub fn notify(notifier: &Notifier, stale: &Stale) -> std::io::Result<()> {
    match stale {
        Stale::Inode(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
        Stale::Entry(parent, name) => {
            notifier.inval_entry(INodeNo(*parent), OsStr::from_bytes(name))
        }
    }
}

/// The errno of an answer that is not the one the request's reply takes: only a bug in
/// `Fuse::handle` makes one, answered EIO.
fn unfit(res: Answered, op: &str) -> Errno {
    match res {
        Err(n) => Errno::from_i32(n),
        Ok(_) => {
            log::error!("{op}: the answer does not fit the request");
            Errno::EIO
        }
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
        blksize: BLKSIZE,
        flags: 0,
    }
}

fn ts(t: TimeOrNow) -> Ts {
    match t {
        TimeOrNow::SpecificTime(t) => Ts::from(t),
        TimeOrNow::Now => Ts::from(SystemTime::now()),
    }
}

fn entry(reply: ReplyEntry) -> impl FnOnce(Answered) + Send + 'static {
    move |res| match res {
        Ok(Answer::Entry(a, ttl)) => reply.entry(&ttl, &file_attr(&a), Generation(0)),
        res => reply.error(unfit(res, "entry")),
    }
}

fn attr(reply: ReplyAttr) -> impl FnOnce(Answered) + Send + 'static {
    move |res| match res {
        Ok(Answer::Attr(a, ttl)) => reply.attr(&ttl, &file_attr(&a)),
        res => reply.error(unfit(res, "attr")),
    }
}

fn empty(reply: ReplyEmpty) -> impl FnOnce(Answered) + Send + 'static {
    move |res| match res {
        Ok(Answer::Empty) => reply.ok(),
        res => reply.error(unfit(res, "empty")),
    }
}

fn data(reply: ReplyData) -> impl FnOnce(Answered) + Send + 'static {
    move |res| match res {
        Ok(Answer::Data(d)) => reply.data(&d),
        res => reply.error(unfit(res, "data")),
    }
}

fn written(reply: ReplyWrite) -> impl FnOnce(Answered) + Send + 'static {
    move |res| match res {
        Ok(Answer::Written(n)) => reply.written(n),
        res => reply.error(unfit(res, "write")),
    }
}

fn opened(reply: ReplyOpen) -> impl FnOnce(Answered) + Send + 'static {
    move |res| match res {
        Ok(Answer::Opened(fh, flags)) => {
            reply.opened(FileHandle(fh), FopenFlags::from_bits_retain(flags))
        }
        res => reply.error(unfit(res, "open")),
    }
}

fn xattr(reply: ReplyXattr) -> impl FnOnce(Answered) + Send + 'static {
    move |res| match res {
        Ok(Answer::Size(n)) => reply.size(n),
        Ok(Answer::Data(d)) => reply.data(&d),
        res => reply.error(unfit(res, "xattr")),
    }
}

impl Filesystem for Kernel {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_readahead(ring::PAYLOAD as u32);
        // The kernel never sends more than max_pages (256 by default, 1 MiB) anyway; a
        // ring's payload buffers must hold the largest write, so it is said outright.
        let _ = config.set_max_write(ring::PAYLOAD as u32);
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
        if self.ring_wanted {
            match config.add_capabilities(InitFlags::FUSE_OVER_IO_URING) {
                Ok(()) => self.ring_granted.store(true, Ordering::Release),
                Err(_) => log::info!(
                    "the kernel offers no FUSE over io_uring (as root: echo 1 > \
                     /sys/module/fuse/parameters/enable_uring); serving /dev/fuse"
                ),
            }
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let op = Op::Lookup {
            parent: parent.0,
            name: name.as_bytes(),
        };
        self.serve(req, op, entry(reply));
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.serve(req, Op::Getattr { ino: ino.0 }, attr(reply));
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
        let changes = Changes {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(ts),
            mtime: mtime.map(ts),
        };
        let op = Op::Setattr {
            ino: ino.0,
            fh: fh.map(|f| f.0),
            changes,
        };
        self.serve(req, op, attr(reply));
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        self.serve(req, Op::Readlink { ino: ino.0 }, data(reply));
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
        let op = Op::Mknod {
            parent: parent.0,
            name: name.as_bytes(),
            mode,
            umask,
            rdev,
        };
        self.serve(req, op, entry(reply));
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
        let op = Op::Mkdir {
            parent: parent.0,
            name: name.as_bytes(),
            mode,
            umask,
        };
        self.serve(req, op, entry(reply));
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let op = Op::Unlink {
            parent: parent.0,
            name: name.as_bytes(),
        };
        self.serve(req, op, empty(reply));
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let op = Op::Rmdir {
            parent: parent.0,
            name: name.as_bytes(),
        };
        self.serve(req, op, empty(reply));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let op = Op::Symlink {
            parent: parent.0,
            name: link_name.as_bytes(),
            target: target.as_os_str().as_bytes(),
        };
        self.serve(req, op, entry(reply));
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
        let op = Op::Rename {
            parent: parent.0,
            name: name.as_bytes(),
            newparent: newparent.0,
            newname: newname.as_bytes(),
            flags: flags.bits(),
        };
        self.serve(req, op, empty(reply));
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let op = Op::Link {
            ino: ino.0,
            newparent: newparent.0,
            newname: newname.as_bytes(),
        };
        self.serve(req, op, entry(reply));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let op = Op::Open {
            ino: ino.0,
            flags: flags.0,
        };
        self.serve(req, op, opened(reply));
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
        let op = Op::Read {
            fh: fh.0,
            offset,
            size,
        };
        self.serve(req, op, data(reply));
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
        let op = Op::Write {
            fh: fh.0,
            offset,
            data,
            lock_owner: lock_owner.map(|o| o.0),
        };
        self.serve(req, op, written(reply));
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
        let op = Op::Fallocate {
            fh: fh.0,
            offset,
            length,
            mode,
        };
        self.serve(req, op, empty(reply));
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
        let op = Op::CopyFileRange {
            fh_in: fh_in.0,
            offset_in,
            fh_out: fh_out.0,
            offset_out,
            len,
        };
        self.serve(req, op, written(reply));
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let op = Op::Flush {
            fh: fh.0,
            lock_owner: lock_owner.0,
        };
        self.serve(req, op, empty(reply));
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let op = Op::Release {
            ino: ino.0,
            fh: fh.0,
        };
        self.serve(req, op, empty(reply));
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.serve(req, Op::Fsync { fh: fh.0 }, empty(reply));
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.serve(req, Op::Opendir { ino: ino.0 }, opened(reply));
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let op = Op::Readdir { ino: ino.0, offset };
        self.serve(req, op, move |res| match res {
            Ok(Answer::Dir(entries)) => {
                for e in entries {
                    let kind = file_type(e.kind);
                    if reply.add(INodeNo(e.ino), e.offset, kind, OsStr::from_bytes(&e.name)) {
                        break;
                    }
                }
                reply.ok();
            }
            res => reply.error(unfit(res, "readdir")),
        });
    }

    fn fsyncdir(
        &self,
        req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.serve(req, Op::Fsyncdir, empty(reply));
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.serve(req, Op::Statfs, move |res| match res {
            Ok(Answer::Statfs(s)) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.bsize,
            ),
            res => reply.error(unfit(res, "statfs")),
        });
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
        let op = Op::Setxattr {
            ino: ino.0,
            name: name.as_bytes(),
            value,
            flags,
        };
        self.serve(req, op, empty(reply));
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let op = Op::Getxattr {
            ino: ino.0,
            name: name.as_bytes(),
            size,
        };
        self.serve(req, op, xattr(reply));
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.serve(req, Op::Listxattr { ino: ino.0, size }, xattr(reply));
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let op = Op::Removexattr {
            ino: ino.0,
            name: name.as_bytes(),
        };
        self.serve(req, op, empty(reply));
    }

    fn ioctl(
        &self,
        req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        self.serve(req, Op::Ioctl, move |res| reply.error(unfit(res, "ioctl")));
    }

    fn access(&self, req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        self.serve(req, Op::Access, empty(reply));
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
        let op = Op::Create {
            parent: parent.0,
            name: name.as_bytes(),
            mode,
            umask,
            flags,
        };
        self.serve(req, op, move |res| match res {
            Ok(Answer::Created(c)) => reply.created(
                &c.ttl,
                &file_attr(&c.attr),
                Generation(0),
                FileHandle(c.fh),
                FopenFlags::from_bits_retain(c.open_flags),
            ),
            res => reply.error(unfit(res, "create")),
        });
    }
}
