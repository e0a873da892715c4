//! The request handlers, whichever way a request arrives. A transport decodes each kernel
//! request into an [`Op`]; [`Fuse::handle`] runs it against `Vfs` and answers with an
//! [`Answer`] or an errno, which the transport encodes. Two transports feed it: `kernel`
//! (fuser, reading `/dev/fuse`) and `ring` (FUSE over io_uring, a queue per CPU). Nothing
//! here decides anything about the universe.

pub mod kernel;
mod programs;
pub mod ring;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use crate::engine::{self, Attr, Data, DirEntry};
use crate::error::{Error, Result};
use crate::vfs::{Caller, Changes, Statfs, Vfs, acting};

/// How long the kernel may trust names and attributes of stored inodes. Every change goes
/// through this daemon, so the kernel's own updates keep its cache right in between.
const TTL: Duration = Duration::from_secs(30);

/// How many directory entries one listing request gathers; the transport sends as many as
/// the caller's buffer holds.
const LISTING: usize = 512;

/// `fuse_open_out.open_flags`, as the kernel defines them.
const FOPEN_DIRECT_IO: u32 = 1 << 0;
const FOPEN_NOFLUSH: u32 = 1 << 5;

/// The preferred I/O size `stat` shows for stored files, whichever transport answers.
const BLKSIZE: u32 = 128 * 1024;

pub struct Fuse {
    vfs: Arc<Vfs>,
    /// What of the kernel's cache went stale behind its back (see `invalidator`).
    stale: Sender<Stale>,
    programs: programs::Programs,
}

/// What the kernel must drop: an inode's attributes and pages, or a name in a directory.
pub enum Stale {
    Inode(u64),
    Entry(u64, Vec<u8>),
}

/// A kernel request, decoded. Names and data borrow the transport's buffer.
pub enum Op<'a> {
    Lookup {
        parent: u64,
        name: &'a [u8],
    },
    Getattr {
        ino: u64,
    },
    Setattr {
        ino: u64,
        fh: Option<u64>,
        changes: Changes,
    },
    Readlink {
        ino: u64,
    },
    Mknod {
        parent: u64,
        name: &'a [u8],
        mode: u32,
        umask: u32,
        rdev: u32,
    },
    Mkdir {
        parent: u64,
        name: &'a [u8],
        mode: u32,
        umask: u32,
    },
    Unlink {
        parent: u64,
        name: &'a [u8],
    },
    Rmdir {
        parent: u64,
        name: &'a [u8],
    },
    Symlink {
        parent: u64,
        name: &'a [u8],
        target: &'a [u8],
    },
    Rename {
        parent: u64,
        name: &'a [u8],
        newparent: u64,
        newname: &'a [u8],
        flags: u32,
    },
    Link {
        ino: u64,
        newparent: u64,
        newname: &'a [u8],
    },
    Open {
        ino: u64,
        flags: i32,
    },
    Read {
        fh: u64,
        offset: u64,
        size: u32,
    },
    Write {
        fh: u64,
        offset: u64,
        data: &'a [u8],
        lock_owner: Option<u64>,
    },
    Fallocate {
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    },
    CopyFileRange {
        fh_in: u64,
        offset_in: u64,
        fh_out: u64,
        offset_out: u64,
        len: u64,
    },
    Flush {
        fh: u64,
        lock_owner: u64,
    },
    Release {
        ino: u64,
        fh: u64,
    },
    Fsync {
        fh: u64,
    },
    Opendir {
        ino: u64,
    },
    Readdir {
        ino: u64,
        offset: u64,
    },
    Fsyncdir,
    Statfs,
    Setxattr {
        ino: u64,
        name: &'a [u8],
        value: &'a [u8],
        flags: i32,
    },
    Getxattr {
        ino: u64,
        name: &'a [u8],
        size: u32,
    },
    Listxattr {
        ino: u64,
        size: u32,
    },
    Removexattr {
        ino: u64,
        name: &'a [u8],
    },
    Ioctl,
    Access,
    Create {
        parent: u64,
        name: &'a [u8],
        mode: u32,
        umask: u32,
        flags: i32,
    },
}

impl Op<'_> {
    /// How a failure is logged.
    fn name(&self) -> &'static str {
        match self {
            Op::Lookup { .. } => "lookup",
            Op::Getattr { .. } => "getattr",
            Op::Setattr { .. } => "setattr",
            Op::Readlink { .. } => "readlink",
            Op::Mknod { .. } => "mknod",
            Op::Mkdir { .. } => "mkdir",
            Op::Unlink { .. } => "unlink",
            Op::Rmdir { .. } => "rmdir",
            Op::Symlink { .. } => "symlink",
            Op::Rename { .. } => "rename",
            Op::Link { .. } => "link",
            Op::Open { .. } => "open",
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Fallocate { .. } => "fallocate",
            Op::CopyFileRange { .. } => "copy_file_range",
            Op::Flush { .. } => "close",
            Op::Release { .. } => "release",
            Op::Fsync { .. } => "fsync",
            Op::Opendir { .. } => "opendir",
            Op::Readdir { .. } => "readdir",
            Op::Fsyncdir => "fsyncdir",
            Op::Statfs => "statfs",
            Op::Setxattr { .. } => "setxattr",
            Op::Getxattr { .. } => "getxattr",
            Op::Listxattr { .. } => "listxattr",
            Op::Removexattr { .. } => "removexattr",
            Op::Ioctl => "ioctl",
            Op::Access => "access",
            Op::Create { .. } => "create",
        }
    }

    /// Whether the caller is who the change is made by (audit, access control): every
    /// request that changes something, and opens.
    fn acts(&self) -> bool {
        !matches!(
            self,
            Op::Lookup { .. }
                | Op::Getattr { .. }
                | Op::Readlink { .. }
                | Op::Read { .. }
                | Op::Fallocate { .. }
                | Op::CopyFileRange { .. }
                | Op::Release { .. }
                | Op::Readdir { .. }
                | Op::Fsyncdir
                | Op::Statfs
                | Op::Getxattr { .. }
                | Op::Listxattr { .. }
                | Op::Ioctl
                | Op::Access
        )
    }

    /// Whether serving it may move the worker to the caller's CPU (`placement`). Not a
    /// close: a process closes its descriptors while it execs, and reading its /proc entry
    /// then waits for the exec, which waits for this reply.
    fn follows_caller(&self) -> bool {
        !matches!(
            self,
            Op::Readlink { .. }
                | Op::Flush { .. }
                | Op::Release { .. }
                | Op::Opendir { .. }
                | Op::Fsyncdir
                | Op::Statfs
                | Op::Setxattr { .. }
                | Op::Getxattr { .. }
                | Op::Listxattr { .. }
                | Op::Removexattr { .. }
                | Op::Ioctl
                | Op::Access
        )
    }
}

/// What a request is answered with, besides an errno.
pub enum Answer {
    /// A name's inode, and how long the kernel may keep both.
    Entry(Attr, Duration),
    Attr(Attr, Duration),
    Data(Data),
    /// An xattr request asked only for the size of what it would get.
    Size(u32),
    Written(u32),
    /// An open handle and the `FOPEN_*` flags the kernel keeps it with.
    Opened(u64, u32),
    Created(Created),
    /// Directory entries from the asked offset on, as many as the caller's buffer holds.
    Dir(Vec<DirEntry>),
    Statfs(Statfs),
    Empty,
}

/// A request's answer, or the errno it fails with.
pub type Answered = std::result::Result<Answer, i32>;

/// What a create answers: the new file and its open handle.
pub struct Created {
    pub attr: Attr,
    pub fh: u64,
    pub ttl: Duration,
    pub open_flags: u32,
}

impl Fuse {
    /// Handlers for the universe of `vfs` mounted on `mountpoint`.
    pub fn new(vfs: Arc<Vfs>, stale: Sender<Stale>, mountpoint: &Path) -> Fuse {
        let (changed, gone) = (stale.clone(), stale.clone());
        vfs.notify_with(crate::vfs::Listener {
            changed: Box::new(move |ino| {
                let _ = changed.send(Stale::Inode(ino));
            }),
            gone: Box::new(move |parent, name| {
                let _ = gone.send(Stale::Entry(parent, name.to_vec()));
            }),
        });
        Fuse {
            vfs,
            stale,
            programs: programs::Programs::new(mountpoint),
        }
    }

    /// Serves one request for `by` and gives its answer to `reply`: at once, or, when the
    /// request acknowledges a change that must be durable first (a hot-tier commit, an
    /// fsync), from the log's flusher after the fsync covering it (see `answer_or_undo`).
    /// A transport that knows other requests already wait behind this one on its thread
    /// says so (`others_waiting`): the flusher then syncs for this one whatever the log is
    /// doing, and the requests behind are served meanwhile (`engine::serving`).
    pub fn handle(
        &self,
        op: Op<'_>,
        by: Caller,
        others_waiting: bool,
        reply: impl FnOnce(Answered) + Send + 'static,
    ) {
        engine::serving(others_waiting, || self.serve(op, by, reply))
    }

    fn serve(&self, op: Op<'_>, by: Caller, reply: impl FnOnce(Answered) + Send + 'static) {
        let _by = op.acts().then(|| acting(by));
        let name = op.name();
        let done = move |res: Result<Answer>| reply(res.map_err(|e| fail(name, &e)));
        let vfs = &self.vfs;
        match op {
            Op::Lookup { parent, name } => done(vfs.lookup(parent, name).map(|a| self.entry(a))),
            Op::Getattr { ino } => done(vfs.getattr(ino).map(|a| self.attr(a))),
            Op::Setattr { ino, fh, changes } => {
                self.answer(|| vfs.setattr(ino, fh, changes).map(|a| self.attr(a)), done)
            }
            Op::Readlink { ino } => done(vfs.readlink(ino).map(|t| Answer::Data(Data::Owned(t)))),
            Op::Mknod {
                parent,
                name,
                mode,
                umask,
                rdev,
            } => self.answer(
                || {
                    vfs.mknod(parent, name, (mode, umask), rdev, by)
                        .map(|a| self.entry(a))
                },
                done,
            ),
            Op::Mkdir {
                parent,
                name,
                mode,
                umask,
            } => self.answer(
                || {
                    vfs.mkdir(parent, name, mode, umask, by)
                        .map(|a| self.entry(a))
                },
                done,
            ),
            Op::Unlink { parent, name } => self.answer(
                || vfs.unlink(parent, name, false).map(|()| Answer::Empty),
                done,
            ),
            Op::Rmdir { parent, name } => self.answer(
                || vfs.unlink(parent, name, true).map(|()| Answer::Empty),
                done,
            ),
            Op::Symlink {
                parent,
                name,
                target,
            } => self.answer(
                || vfs.symlink(parent, name, target, by).map(|a| self.entry(a)),
                done,
            ),
            Op::Rename {
                parent,
                name,
                newparent,
                newname,
                flags,
            } => self.answer(
                || {
                    vfs.rename(parent, name, newparent, newname, flags)
                        .map(|()| Answer::Empty)
                },
                done,
            ),
            Op::Link {
                ino,
                newparent,
                newname,
            } => self.answer(
                || vfs.link(ino, newparent, newname).map(|a| self.entry(a)),
                done,
            ),
            Op::Open { ino, flags } => done(self.open(ino, flags)),
            Op::Read { fh, offset, size } => {
                done(vfs.read(fh, offset, size as usize).map(Answer::Data))
            }
            Op::Write {
                fh,
                offset,
                data,
                lock_owner,
            } => self.answer(
                || {
                    vfs.write_by(fh, offset, data, lock_owner)
                        .map(|n| Answer::Written(n as u32))
                },
                done,
            ),
            Op::Fallocate {
                fh,
                offset,
                length,
                mode,
            } => done(
                vfs.fallocate(fh, (offset, length), mode)
                    .map(|()| Answer::Empty),
            ),
            Op::CopyFileRange {
                fh_in,
                offset_in,
                fh_out,
                offset_out,
                len,
            } => {
                // A reply counts at most u32::MAX bytes; the kernel asks again for the rest.
                let len = len.min(u64::from(u32::MAX) & !0xfff);
                done(
                    vfs.copy_range((fh_in, offset_in), (fh_out, offset_out), len)
                        .map(|n| Answer::Written(n as u32)),
                )
            }
            Op::Flush { fh, lock_owner } => self.answer(
                || vfs.flush(fh, Some(lock_owner)).map(|()| Answer::Empty),
                done,
            ),
            Op::Release { ino, fh } => self.answer(
                || {
                    if vfs.release(fh)? {
                        let _ = self.stale.send(Stale::Inode(ino));
                    }
                    Ok(Answer::Empty)
                },
                done,
            ),
            Op::Fsync { fh } => self.answer(|| vfs.fsync(fh).map(|()| Answer::Empty), done),
            Op::Opendir { ino } => done(vfs.opendir(ino).map(|()| Answer::Opened(0, 0))),
            Op::Readdir { ino, offset } => done(vfs.readdir(ino, offset, LISTING).map(Answer::Dir)),
            Op::Fsyncdir => self.answer(|| vfs.engine().sync_all().map(|()| Answer::Empty), done),
            Op::Statfs => done(vfs.statfs().map(Answer::Statfs)),
            Op::Setxattr {
                ino,
                name,
                value,
                flags,
            } => self.answer(
                || {
                    vfs.setxattr(ino, name, value, flags)
                        .map(|()| Answer::Empty)
                },
                done,
            ),
            Op::Getxattr { ino, name, size } => {
                done(vfs.getxattr(ino, name).and_then(|v| xattr_answer(v, size)))
            }
            Op::Listxattr { ino, size } => done(vfs.listxattr(ino).and_then(|names| {
                let mut list = Vec::new();
                for n in names {
                    list.extend_from_slice(&n);
                    list.push(0);
                }
                xattr_answer(list, size)
            })),
            Op::Removexattr { ino, name } => {
                self.answer(|| vfs.removexattr(ino, name).map(|()| Answer::Empty), done)
            }
            Op::Ioctl => done(Err(Error::NoIoctl)),
            // Mounted with default_permissions: the kernel checks modes itself.
            Op::Access => done(Ok(Answer::Empty)),
            Op::Create {
                parent,
                name,
                mode,
                umask,
                flags,
            } => {
                let new = NewFile {
                    parent,
                    name,
                    mode,
                    umask,
                    flags,
                };
                self.create_answered(new, by, move |res| done(res.map(Answer::Created)))
            }
        }
    }

    fn open(&self, ino: u64, flags: i32) -> Result<Answer> {
        // The one open the kernel does not check against running programs (`programs`).
        if flags & libc::O_ACCMODE == libc::O_RDONLY
            && flags & libc::O_TRUNC != 0
            && self.programs.running(ino)
        {
            return Err(Error::TextBusy);
        }
        let fh = self.vfs.open(ino, flags)?;
        Ok(Answer::Opened(fh, open_flags(self.vfs.flush_needed(fh))))
    }

    fn entry(&self, a: Attr) -> Answer {
        let ttl = ttl(&self.vfs, &a);
        Answer::Entry(a, ttl)
    }

    fn attr(&self, a: Attr) -> Answer {
        let ttl = ttl(&self.vfs, &a);
        Answer::Attr(a, ttl)
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
                open_flags: open_flags(self.vfs.flush_needed(fh)),
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

/// What a create asks for.
struct NewFile<'a> {
    parent: u64,
    name: &'a [u8],
    mode: u32,
    umask: u32,
    flags: i32,
}

/// Tells the kernel to drop what `stale` says went stale, through `notify` (inode, or
/// parent and name). Runs on its own thread: a notification must not be sent from inside
/// the request that caused it.
pub fn invalidator(notify: impl Fn(&Stale) -> std::io::Result<()>, stale: Receiver<Stale>) {
    for s in stale {
        if let Err(e) = notify(&s) {
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

/// Logs what went wrong at the level it deserves, and gives the errno.
fn fail(op: &str, e: &Error) -> i32 {
    match e {
        Error::Io(_) | Error::Corrupt(_) => log::error!("{op}: {e}"),
        // The disk's failure was logged once, when it happened.
        Error::Poisoned => log::debug!("{op}: {e}"),
        Error::InvalidRecord(_) | Error::Protected | Error::ReadOnlyView => log::info!("{op}: {e}"),
        _ => log::debug!("{op}: {e}"),
    }
    e.errno()
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

/// Every open bypasses the page cache. It is shared by every opener of an inode, so a
/// writer's uncommitted pages would otherwise reach readers that must see only committed
/// versions (and views change on every read); and a writer's data would be copied into it
/// only to be sent on and dropped (the daemon holds the draft). mmap still works
/// (FUSE_DIRECT_IO_ALLOW_MMAP). When a close commits nothing (a reader's, a control
/// file's), the kernel is told not to send it: one round trip less per `cat`.
fn open_flags(flush_needed: bool) -> u32 {
    if flush_needed {
        FOPEN_DIRECT_IO
    } else {
        FOPEN_DIRECT_IO | FOPEN_NOFLUSH
    }
}

/// getxattr/listxattr protocol: size 0 asks for the length; a short buffer is ERANGE.
fn xattr_answer(data: Vec<u8>, size: u32) -> Result<Answer> {
    if size == 0 {
        Ok(Answer::Size(data.len() as u32))
    } else if data.len() > size as usize {
        Err(Error::Range)
    } else {
        Ok(Answer::Data(Data::Owned(data)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use std::path::Path;

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
        let fuse = Fuse::new(vfs.clone(), mpsc::channel().0, Path::new("/mnt"));
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
