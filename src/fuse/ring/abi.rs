//! The FUSE wire format as the ring carries it (`include/uapi/linux/fuse.h`): a request is
//! its `fuse_in_header`, its opcode's fixed struct (`op_in`) and the rest (names, data) in
//! the payload buffer; a reply is a `fuse_out_header` and its whole body in the payload.
//! Only this file knows byte offsets.

use std::time::Duration;

use super::super::{Answer, Answered, BLKSIZE, Created, Op};
use crate::engine::Attr;
use crate::engine::tree::{Kind, Ts};
use crate::vfs::Changes;

const LOOKUP: u32 = 1;
const GETATTR: u32 = 3;
const SETATTR: u32 = 4;
const READLINK: u32 = 5;
const SYMLINK: u32 = 6;
const MKNOD: u32 = 8;
const MKDIR: u32 = 9;
const UNLINK: u32 = 10;
const RMDIR: u32 = 11;
const RENAME: u32 = 12;
const LINK: u32 = 13;
const OPEN: u32 = 14;
const READ: u32 = 15;
const WRITE: u32 = 16;
const STATFS: u32 = 17;
const RELEASE: u32 = 18;
const FSYNC: u32 = 20;
const SETXATTR: u32 = 21;
const GETXATTR: u32 = 22;
const LISTXATTR: u32 = 23;
const REMOVEXATTR: u32 = 24;
const FLUSH: u32 = 25;
const OPENDIR: u32 = 27;
const READDIR: u32 = 28;
const RELEASEDIR: u32 = 29;
const FSYNCDIR: u32 = 30;
const ACCESS: u32 = 34;
const CREATE: u32 = 35;
const DESTROY: u32 = 38;
const IOCTL: u32 = 39;
const FALLOCATE: u32 = 43;
const RENAME2: u32 = 45;
const COPY_FILE_RANGE: u32 = 47;

// fuse_setattr_in.valid
const FATTR_MODE: u32 = 1 << 0;
const FATTR_UID: u32 = 1 << 1;
const FATTR_GID: u32 = 1 << 2;
const FATTR_SIZE: u32 = 1 << 3;
const FATTR_ATIME: u32 = 1 << 4;
const FATTR_MTIME: u32 = 1 << 5;
const FATTR_FH: u32 = 1 << 6;
const FATTR_ATIME_NOW: u32 = 1 << 7;
const FATTR_MTIME_NOW: u32 = 1 << 8;

/// fuse_write_in.write_flags: lock_owner is set.
const FUSE_WRITE_LOCKOWNER: u32 = 1 << 1;

const ENTRY_OUT: usize = 40 + ATTR;
const ATTR: usize = 88;

/// `fuse_in_header`: who asks what of which inode.
pub struct Header {
    pub opcode: u32,
    pub unique: u64,
    pub nodeid: u64,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

pub fn header(in_out: &[u8]) -> Header {
    Header {
        opcode: u32_at(in_out, 4),
        unique: u64_at(in_out, 8),
        nodeid: u64_at(in_out, 16),
        uid: u32_at(in_out, 24),
        gid: u32_at(in_out, 28),
        pid: u32_at(in_out, 32),
    }
}

/// The `fuse_out_header` of a reply whose body is `len` bytes, or of an error.
pub fn out_header(unique: u64, error: i32, len: usize) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&((16 + len) as u32).to_ne_bytes());
    h[4..8].copy_from_slice(&(-error).to_ne_bytes());
    h[8..16].copy_from_slice(&unique.to_ne_bytes());
    h
}

/// NUL-terminated names in a payload, one after another.
struct Names<'a>(&'a [u8]);

impl<'a> Names<'a> {
    fn next(&mut self) -> Result<&'a [u8], i32> {
        let end = self.0.iter().position(|&b| b == 0).ok_or(libc::EINVAL)?;
        let (name, rest) = self.0.split_at(end);
        self.0 = &rest[1..];
        Ok(name)
    }
}

/// What the ring thread does with a request.
pub enum Decoded<'a> {
    /// Serve it; a listing's answer is cut to the caller's buffer (`limit` bytes).
    Serve(Op<'a>, usize),
    /// Answer at once: what fuser answers by itself when served through `/dev/fuse`.
    Answer(Answered),
}

fn time(secs: u64, nanos: u32) -> Ts {
    Ts {
        secs: secs as i64,
        nanos,
    }
}

/// Decodes a request from its header, its opcode's struct and its payload.
pub fn decode<'a>(h: &Header, op_in: &[u8], payload: &'a [u8]) -> Result<Decoded<'a>, i32> {
    let ino = h.nodeid;
    let mut names = Names(payload);
    let op = match h.opcode {
        LOOKUP => Op::Lookup {
            parent: ino,
            name: names.next()?,
        },
        GETATTR => Op::Getattr { ino },
        SETATTR => {
            let valid = u32_at(op_in, 0);
            let has = |bit| valid & bit != 0;
            let now = Ts::now;
            let changes = Changes {
                mode: has(FATTR_MODE).then(|| u32_at(op_in, 68)),
                uid: has(FATTR_UID).then(|| u32_at(op_in, 76)),
                gid: has(FATTR_GID).then(|| u32_at(op_in, 80)),
                size: has(FATTR_SIZE).then(|| u64_at(op_in, 16)),
                atime: has(FATTR_ATIME).then(|| match has(FATTR_ATIME_NOW) {
                    true => now(),
                    false => time(u64_at(op_in, 32), u32_at(op_in, 56)),
                }),
                mtime: has(FATTR_MTIME).then(|| match has(FATTR_MTIME_NOW) {
                    true => now(),
                    false => time(u64_at(op_in, 40), u32_at(op_in, 60)),
                }),
            };
            Op::Setattr {
                ino,
                fh: has(FATTR_FH).then(|| u64_at(op_in, 8)),
                changes,
            }
        }
        READLINK => Op::Readlink { ino },
        SYMLINK => Op::Symlink {
            parent: ino,
            name: names.next()?,
            target: names.next()?,
        },
        MKNOD => Op::Mknod {
            parent: ino,
            name: names.next()?,
            mode: u32_at(op_in, 0),
            rdev: u32_at(op_in, 4),
            umask: u32_at(op_in, 8),
        },
        MKDIR => Op::Mkdir {
            parent: ino,
            name: names.next()?,
            mode: u32_at(op_in, 0),
            umask: u32_at(op_in, 4),
        },
        UNLINK => Op::Unlink {
            parent: ino,
            name: names.next()?,
        },
        RMDIR => Op::Rmdir {
            parent: ino,
            name: names.next()?,
        },
        RENAME | RENAME2 => Op::Rename {
            parent: ino,
            newparent: u64_at(op_in, 0),
            flags: if h.opcode == RENAME2 {
                u32_at(op_in, 8)
            } else {
                0
            },
            name: names.next()?,
            newname: names.next()?,
        },
        LINK => Op::Link {
            ino: u64_at(op_in, 0),
            newparent: ino,
            newname: names.next()?,
        },
        OPEN => Op::Open {
            ino,
            flags: u32_at(op_in, 0) as i32,
        },
        READ => Op::Read {
            fh: u64_at(op_in, 0),
            offset: u64_at(op_in, 8),
            size: u32_at(op_in, 16),
        },
        WRITE => {
            let size = u32_at(op_in, 16) as usize;
            Op::Write {
                fh: u64_at(op_in, 0),
                offset: u64_at(op_in, 8),
                data: payload.get(..size).ok_or(libc::EINVAL)?,
                lock_owner: (u32_at(op_in, 20) & FUSE_WRITE_LOCKOWNER != 0)
                    .then(|| u64_at(op_in, 24)),
            }
        }
        STATFS => Op::Statfs,
        RELEASE => Op::Release {
            ino,
            fh: u64_at(op_in, 0),
        },
        FSYNC => Op::Fsync {
            fh: u64_at(op_in, 0),
        },
        SETXATTR => {
            let name = names.next()?;
            let size = u32_at(op_in, 0) as usize;
            Op::Setxattr {
                ino,
                name,
                value: names.0.get(..size).ok_or(libc::EINVAL)?,
                flags: u32_at(op_in, 4) as i32,
            }
        }
        GETXATTR => Op::Getxattr {
            ino,
            name: names.next()?,
            size: u32_at(op_in, 0),
        },
        LISTXATTR => Op::Listxattr {
            ino,
            size: u32_at(op_in, 0),
        },
        REMOVEXATTR => Op::Removexattr {
            ino,
            name: names.next()?,
        },
        FLUSH => Op::Flush {
            fh: u64_at(op_in, 0),
            lock_owner: u64_at(op_in, 16),
        },
        OPENDIR => Op::Opendir { ino },
        READDIR => {
            let op = Op::Readdir {
                ino,
                offset: u64_at(op_in, 8),
            };
            return Ok(Decoded::Serve(op, u32_at(op_in, 16) as usize));
        }
        FSYNCDIR => Op::Fsyncdir,
        ACCESS => Op::Access,
        CREATE => Op::Create {
            parent: ino,
            name: names.next()?,
            flags: u32_at(op_in, 0) as i32,
            mode: u32_at(op_in, 4),
            umask: u32_at(op_in, 8),
        },
        IOCTL => Op::Ioctl,
        FALLOCATE => Op::Fallocate {
            fh: u64_at(op_in, 0),
            offset: u64_at(op_in, 8),
            length: u64_at(op_in, 16),
            mode: u32_at(op_in, 24) as i32,
        },
        COPY_FILE_RANGE => Op::CopyFileRange {
            fh_in: u64_at(op_in, 0),
            offset_in: u64_at(op_in, 8),
            fh_out: u64_at(op_in, 24),
            offset_out: u64_at(op_in, 32),
            len: u64_at(op_in, 40),
        },
        // Directory handles hold nothing; at unmount there is nothing to do before the
        // session ends (the daemon closes the universe then).
        RELEASEDIR | DESTROY => return Ok(Decoded::Answer(Ok(Answer::Empty))),
        // Locks are the kernel's own (no lock requests were asked for); anything else the
        // kernel may try is declined, and it stops asking.
        _ => return Ok(Decoded::Answer(Err(libc::ENOSYS))),
    };
    Ok(Decoded::Serve(op, 0))
}

/// Writes `answer`'s reply body into `out`, answering `limit` bytes at most for a
/// listing; gives its length, or EIO if it does not fit (never, with the sizes the kernel
/// asks: `out` holds the largest read).
pub fn encode(answer: &Answer, limit: usize, out: &mut [u8]) -> Result<usize, i32> {
    let mut w = Writer { out, at: 0 };
    match answer {
        Answer::Entry(a, ttl) => w.entry(a, *ttl)?,
        Answer::Attr(a, ttl) => {
            w.u64(ttl.as_secs())?;
            w.u32(ttl.subsec_nanos())?;
            w.u32(0)?;
            w.attr(a)?;
        }
        Answer::Data(d) => w.bytes(d)?,
        Answer::Size(n) | Answer::Written(n) => {
            w.u32(*n)?;
            w.u32(0)?;
        }
        Answer::Opened(fh, flags) => w.open(*fh, *flags)?,
        Answer::Created(Created {
            attr,
            fh,
            ttl,
            open_flags,
        }) => {
            w.entry(attr, *ttl)?;
            w.open(*fh, *open_flags)?;
        }
        Answer::Dir(entries) => {
            let limit = limit.min(w.out.len());
            for e in entries {
                let len = (24 + e.name.len()).next_multiple_of(8);
                if w.at + len > limit {
                    break;
                }
                w.u64(e.ino)?;
                w.u64(e.offset)?;
                w.u32(e.name.len() as u32)?;
                w.u32(mode_bits(e.kind) >> 12)?;
                w.bytes(&e.name)?;
                w.bytes(&[0; 8][..len - 24 - e.name.len()])?;
            }
        }
        Answer::Statfs(s) => {
            for n in [s.blocks, s.bfree, s.bavail, s.files, s.ffree] {
                w.u64(n)?;
            }
            for n in [s.bsize, s.namelen, s.bsize, 0] {
                w.u32(n)?;
            }
            w.bytes(&[0; 24])?;
        }
        Answer::Empty => {}
    }
    Ok(w.at)
}

fn mode_bits(kind: Kind) -> u32 {
    match kind {
        Kind::File => libc::S_IFREG,
        Kind::Dir => libc::S_IFDIR,
        Kind::Symlink => libc::S_IFLNK,
        Kind::Fifo => libc::S_IFIFO,
        Kind::Socket => libc::S_IFSOCK,
        Kind::CharDev => libc::S_IFCHR,
        Kind::BlockDev => libc::S_IFBLK,
    }
}

/// Appends native-endian fields to a reply body.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) -> Result<(), i32> {
        let end = self.at + b.len();
        self.out
            .get_mut(self.at..end)
            .ok_or(libc::EIO)?
            .copy_from_slice(b);
        self.at = end;
        Ok(())
    }

    fn u32(&mut self, n: u32) -> Result<(), i32> {
        self.bytes(&n.to_ne_bytes())
    }

    fn u64(&mut self, n: u64) -> Result<(), i32> {
        self.bytes(&n.to_ne_bytes())
    }

    fn u64s(&mut self, words: &[u64]) -> Result<(), i32> {
        words.iter().try_for_each(|&n| self.u64(n))
    }

    /// `fuse_entry_out`.
    fn entry(&mut self, a: &Attr, ttl: Duration) -> Result<(), i32> {
        let start = self.at;
        self.u64s(&[a.ino, 0, ttl.as_secs(), ttl.as_secs()])?;
        self.u32(ttl.subsec_nanos())?;
        self.u32(ttl.subsec_nanos())?;
        self.attr(a)?;
        debug_assert_eq!(self.at - start, ENTRY_OUT);
        Ok(())
    }

    /// `fuse_attr`.
    fn attr(&mut self, a: &Attr) -> Result<(), i32> {
        let start = self.at;
        let secs = |t: Ts| t.secs as u64;
        self.u64s(&[
            a.ino,
            a.size,
            a.size.div_ceil(512),
            secs(a.atime),
            secs(a.mtime),
            secs(a.ctime),
        ])?;
        for n in [
            a.atime.nanos,
            a.mtime.nanos,
            a.ctime.nanos,
            mode_bits(a.kind) | u32::from(a.perm),
            a.nlink,
            a.uid,
            a.gid,
            a.rdev,
            BLKSIZE,
            0,
        ] {
            self.u32(n)?;
        }
        debug_assert_eq!(self.at - start, ATTR);
        Ok(())
    }

    /// `fuse_open_out`.
    fn open(&mut self, fh: u64, flags: u32) -> Result<(), i32> {
        self.u64(fh)?;
        self.u32(flags)?;
        self.u32(0)
    }
}

/// The queue a ring command is for, and which of our entries' requests it answers.
pub fn command(qid: u16, commit_id: u64) -> [u8; 24] {
    let mut c = [0u8; 24];
    c[8..16].copy_from_slice(&commit_id.to_ne_bytes());
    c[16..18].copy_from_slice(&qid.to_ne_bytes());
    c
}

/// `fuse_uring_ent_in_out`, at the end of an entry's header: the commit id of the request
/// it holds and its payload's length.
pub fn ent_in_out(header: &[u8]) -> (u64, u32) {
    (u64_at(header, 264), u32_at(header, 272))
}

/// Sets the reply's payload length in `fuse_uring_ent_in_out`.
pub fn set_payload_len(header: &mut [u8], len: usize) {
    header[272..276].copy_from_slice(&(len as u32).to_ne_bytes());
}

/// `fuse_uring_req_header`: in/out header (128), op struct (128), ent_in_out (32).
pub const REQ_HEADER: usize = 288;
pub const OP_IN: std::ops::Range<usize> = 128..256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DirEntry;

    #[test]
    fn a_listing_stops_before_the_entry_that_would_pass_the_callers_buffer() {
        let entries: Vec<DirEntry> = (0..10)
            .map(|i| DirEntry {
                offset: i + 1,
                ino: 100 + i,
                kind: Kind::File,
                name: format!("record-{i}.json").into_bytes(),
            })
            .collect();
        let mut out = vec![0u8; 4096];
        // Each entry is 24 bytes and a 13-byte name, padded to 40.
        let n = encode(&Answer::Dir(entries), 100, &mut out).expect("fits");
        assert_eq!(n, 80);
        assert_eq!(u64_at(&out, 0), 100);
        assert_eq!(u64_at(&out, 8), 1);
        assert_eq!(u32_at(&out, 16), 13);
        assert_eq!(u32_at(&out, 20), libc::DT_REG as u32);
        assert_eq!(&out[24..37], b"record-0.json");
        assert_eq!(u64_at(&out, 40), 101);
    }

    #[test]
    fn a_name_without_its_nul_is_refused() {
        let h = Header {
            opcode: LOOKUP,
            unique: 7,
            nodeid: 1,
            uid: 0,
            gid: 0,
            pid: 1,
        };
        assert!(matches!(
            decode(&h, &[0; 128], b"alice.json"),
            Err(libc::EINVAL)
        ));
        match decode(&h, &[0; 128], b"alice.json\0") {
            Ok(Decoded::Serve(Op::Lookup { parent: 1, name }, _)) => {
                assert_eq!(name, b"alice.json")
            }
            _ => panic!("a lookup of alice.json"),
        }
    }

    #[test]
    fn a_write_longer_than_its_payload_is_refused() {
        let h = Header {
            opcode: WRITE,
            unique: 7,
            nodeid: 5,
            uid: 0,
            gid: 0,
            pid: 1,
        };
        let mut op_in = [0u8; 128];
        op_in[16..20].copy_from_slice(&100u32.to_ne_bytes());
        assert!(matches!(decode(&h, &op_in, &[1; 99]), Err(libc::EINVAL)));
        assert!(matches!(
            decode(&h, &op_in, &[1; 100]),
            Ok(Decoded::Serve(Op::Write { data, .. }, _)) if data.len() == 100
        ));
    }
}
