//! `universe.tar.gz`: a snapshot's stored files as a tar (GNU headers, from the `tar`
//! crate) compressed with gzip, generated as it is read and never held whole.
//!
//! The tar is cut into segments of `SEGMENT` bytes, each compressed as a gzip member of
//! its own (a gzip file may hold several, one after the other; `gzip -d` and `tar -xzf`
//! read them all). The first use compresses every segment once to learn where each
//! member starts, so that `stat` gives the true size and a read at any offset compresses
//! only the member it falls in again (the last one compressed is kept: a reader moving
//! forward compresses each once more).

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::engine::Attr;
use crate::engine::api::Storage;
use crate::engine::snapshots::Frozen;
use crate::engine::tree::{Kind, ROOT};
use crate::error::{Error, Result};
use crate::regions::RangeSource;

/// Bytes of tar in one gzip member.
const SEGMENT: u64 = 4 << 20;
const BLOCK: u64 = 512;
/// The tar's end: two zero blocks.
const END: u64 = 2 * BLOCK;
/// The top directory every path in the archive is under.
pub const TOP: &str = "universe";
/// An incremental's entry listing the paths removed since its parent, each
/// `universe/<path>` and a NUL (`xargs -0 rm -rf < DELETIONS`), before everything else.
pub const DELETIONS: &str = "deletions";

/// One entry's place in the tar: an inode of the snapshot, or `DELETIONS`.
struct Item {
    tar_off: u64,
    ino: Option<u64>,
    head_len: u64,
    /// Data bytes after the header (a regular file's size; 0 for anything else).
    size: u64,
}

/// A gzip member's place in the archive.
struct Member {
    off: u64,
    len: u64,
}

pub struct Archive {
    frozen: Arc<Frozen>,
    /// An incremental's list of removed paths, first in the tar as `DELETIONS`.
    deletions: Option<Vec<u8>>,
    items: Vec<Item>,
    tar_len: u64,
    members: Vec<Member>,
    /// The member compressed last: (index, bytes).
    last: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
}

/// `TOP/<path>` of an entry.
pub fn archived_path(path: &[Vec<u8>]) -> Vec<u8> {
    let mut out = TOP.as_bytes().to_vec();
    for part in path {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    out
}

/// The header of the deletions list: a regular file of `len` bytes, of the snapshot's time.
fn deletions_header(len: u64, frozen: &Frozen) -> Result<Vec<u8>> {
    let root = frozen.getattr(ROOT)?;
    let attr = Attr {
        kind: Kind::File,
        perm: 0o644,
        uid: 0,
        gid: 0,
        size: len,
        mtime: frozen.info.taken,
        ..root
    };
    header(DELETIONS.as_bytes(), &attr, None)
}

fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK
}

fn io_error(e: std::io::Error) -> Error {
    Error::Io(e)
}

/// The header blocks of an entry (a GNU long-name entry first when its path needs one).
fn header(path: &[u8], attr: &Attr, target: Option<&[u8]>) -> Result<Vec<u8>> {
    use tar::{EntryType, Header};
    let mut h = Header::new_gnu();
    let (kind, size) = match attr.kind {
        Kind::File => (EntryType::Regular, attr.size),
        Kind::Dir => (EntryType::Directory, 0),
        Kind::Symlink => (EntryType::Symlink, 0),
        Kind::Fifo => (EntryType::Fifo, 0),
        Kind::CharDev => (EntryType::Char, 0),
        Kind::BlockDev => (EntryType::Block, 0),
        // tar has no socket entry (GNU tar skips them too).
        Kind::Socket => return Ok(Vec::new()),
    };
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(u32::from(attr.perm));
    h.set_uid(u64::from(attr.uid));
    h.set_gid(u64::from(attr.gid));
    h.set_mtime(
        attr.mtime
            .to_system()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    if matches!(attr.kind, Kind::CharDev | Kind::BlockDev) {
        h.set_device_major(libc::major(u64::from(attr.rdev)))
            .map_err(io_error)?;
        h.set_device_minor(libc::minor(u64::from(attr.rdev)))
            .map_err(io_error)?;
    }
    let path = Path::new(OsStr::from_bytes(path));
    let mut b = tar::Builder::new(Vec::new());
    match target {
        Some(t) => b.append_link(&mut h, path, Path::new(OsStr::from_bytes(t))),
        None => b.append_data(&mut h, path, std::io::empty()),
    }
    .map_err(io_error)?;
    // What was written is the header alone: no data was given (its size is in it).
    Ok(std::mem::take(b.get_mut()))
}

impl Archive {
    /// The whole snapshot as a tar: the top directory (the root's mode and owner) and
    /// every entry below it.
    pub fn whole(store: &dyn Storage, frozen: Arc<Frozen>) -> Result<Archive> {
        let mut inos = vec![ROOT];
        inos.extend(frozen.walk().into_iter().map(|(_, attr)| attr.ino));
        Archive::build(store, frozen, &inos, None)
    }

    /// The entries `inos` of a snapshot as a tar, after `deletions` if given. It is
    /// compressed once here, to learn each member's size.
    pub fn build(
        store: &dyn Storage,
        frozen: Arc<Frozen>,
        inos: &[u64],
        deletions: Option<Vec<u8>>,
    ) -> Result<Archive> {
        let mut items = Vec::new();
        let mut off = 0;
        if let Some(list) = &deletions {
            let head = deletions_header(list.len() as u64, &frozen)?;
            items.push(Item {
                tar_off: 0,
                ino: None,
                head_len: head.len() as u64,
                size: list.len() as u64,
            });
            off += head.len() as u64 + padded(list.len() as u64);
        }
        for &ino in inos {
            let attr = frozen.getattr(ino)?;
            let head = Archive::entry_header(&frozen, &frozen.path(ino), &attr)?;
            if head.is_empty() {
                continue;
            }
            let size = if attr.kind == Kind::File {
                attr.size
            } else {
                0
            };
            items.push(Item {
                tar_off: off,
                ino: Some(ino),
                head_len: head.len() as u64,
                size,
            });
            off += head.len() as u64 + padded(size);
        }
        let mut archive = Archive {
            frozen,
            deletions,
            items,
            tar_len: off + END,
            members: Vec::new(),
            last: Mutex::new(None),
        };
        let mut at = 0;
        for i in 0..archive.tar_len.div_ceil(SEGMENT) as usize {
            let len = archive.compress(store, i)?.len() as u64;
            archive.members.push(Member { off: at, len });
            at += len;
        }
        Ok(archive)
    }

    fn entry_header(frozen: &Frozen, path: &[Vec<u8>], attr: &Attr) -> Result<Vec<u8>> {
        let target = match attr.kind {
            Kind::Symlink => Some(frozen.readlink(attr.ino)?),
            _ => None,
        };
        header(&archived_path(path), attr, target.as_deref())
    }

    pub fn len(&self) -> u64 {
        self.members.last().map_or(0, |m| m.off + m.len)
    }

    /// Tar bytes `start..start + len`.
    fn tar_range(&self, store: &dyn Storage, start: u64, len: u64) -> Result<Vec<u8>> {
        let end = (start + len).min(self.tar_len);
        let mut out = Vec::with_capacity((end - start) as usize);
        let first = self
            .items
            .partition_point(|i| i.tar_off <= start)
            .saturating_sub(1);
        let mut pos = start;
        for item in &self.items[first..] {
            if pos >= end {
                break;
            }
            let head_end = item.tar_off + item.head_len;
            let data_end = head_end + item.size;
            let item_end = head_end + padded(item.size);
            if item_end <= pos {
                continue;
            }
            if pos < head_end {
                let head = match (item.ino, &self.deletions) {
                    (Some(ino), _) => {
                        let attr = self.frozen.getattr(ino)?;
                        Archive::entry_header(&self.frozen, &self.frozen.path(ino), &attr)?
                    }
                    (None, list) => {
                        let len = list.as_ref().map_or(0, Vec::len) as u64;
                        deletions_header(len, &self.frozen)?
                    }
                };
                let from = (pos - item.tar_off) as usize;
                let to = (end.min(head_end) - item.tar_off) as usize;
                out.extend_from_slice(head.get(from..to).ok_or(Error::Corrupt(
                    "a snapshot's entry changed its tar header".into(),
                ))?);
                pos = end.min(head_end);
            }
            while pos < end.min(data_end) {
                let want = (end.min(data_end) - pos).min(1 << 20) as usize;
                let from = pos - head_end;
                let data = match (item.ino, &self.deletions) {
                    (Some(ino), _) => store.read_frozen(&self.frozen, ino, from, want)?.to_vec(),
                    (None, list) => {
                        let list = list.as_deref().unwrap_or_default();
                        list[from as usize..from as usize + want].to_vec()
                    }
                };
                if data.is_empty() {
                    return Err(Error::Corrupt(
                        "a snapshot's file is shorter than its size".into(),
                    ));
                }
                out.extend_from_slice(&data);
                pos += data.len() as u64;
            }
            if pos < end.min(item_end) {
                let zeros = end.min(item_end) - pos;
                out.resize(out.len() + zeros as usize, 0);
                pos += zeros;
            }
        }
        // The end blocks.
        out.resize((end - start) as usize, 0);
        Ok(out)
    }

    /// Member `i`: its segment of the tar, gzipped.
    fn compress(&self, store: &dyn Storage, i: usize) -> Result<Arc<Vec<u8>>> {
        if let Some((at, bytes)) = &*self.last.lock().unwrap_or_else(|e| e.into_inner())
            && *at == i
        {
            return Ok(bytes.clone());
        }
        let start = i as u64 * SEGMENT;
        let tar = self.tar_range(store, start, SEGMENT.min(self.tar_len - start))?;
        let mut gz = GzEncoder::new(Vec::with_capacity(tar.len() / 4), Compression::new(1));
        gz.write_all(&tar).map_err(io_error)?;
        let bytes = Arc::new(gz.finish().map_err(io_error)?);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((i, bytes.clone()));
        Ok(bytes)
    }
}

impl RangeSource for Archive {
    fn read(&self, store: &dyn Storage, off: u64, size: usize) -> Result<Vec<u8>> {
        let end = (off + size as u64).min(self.len());
        let mut out = Vec::new();
        let mut pos = off;
        let mut i = self
            .members
            .partition_point(|m| m.off <= off)
            .saturating_sub(1);
        while pos < end && i < self.members.len() {
            let m = &self.members[i];
            let bytes = self.compress(store, i)?;
            if bytes.len() as u64 != m.len {
                return Err(Error::Corrupt(
                    "a snapshot's archive compressed differently".into(),
                ));
            }
            let from = (pos - m.off) as usize;
            let to = (end.min(m.off + m.len) - m.off) as usize;
            out.extend_from_slice(&bytes[from..to]);
            pos = m.off + to as u64;
            i += 1;
        }
        Ok(out)
    }
}
