//! Uncommitted content of a file open for writing. Small drafts live in memory. A draft
//! that outgrows memory while being written in order from its start goes straight into a
//! new blob of its tier, coded as it arrives (the commit then only finishes it); any other
//! draft that outgrows memory moves to a staging file in the data directory. Either way a
//! file larger than RAM streams through. A draft becomes the committed content on
//! close/fsync, or is thrown away.
//!
//! A draft starts from the committed version without copying it: its first `base_len`
//! bytes are that version's (read from where they are committed) and it holds only the
//! bytes past them, so that `echo line >> f` costs the line, not the file (`extents`). A
//! write inside those bytes first copies them in (`materialize`).

use std::collections::VecDeque;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use super::cache::{Cache, Key};
use super::codec::{Codec, Tier};
use super::coder::{self, Coder};
use super::disk::{Disk, DiskFile, Open, Reader};
use super::extents::Part;
use super::lock;
use super::store::{self, BlobReader, BlobWriter, FileKind, Pin, Pins, Store};
use super::tree::Ts;
use crate::error::{Error, Result};

/// What a draft needs to write itself straight into a blob of its tier.
pub struct StreamTo {
    pub store: Arc<Store>,
    pub coder: Arc<Coder>,
    pub pins: Arc<Pins>,
    /// Where the blob's chunks are cached as they are written (see `cache`).
    pub cache: Arc<Mutex<Cache>>,
    pub tier: Tier,
}

enum Buf {
    Mem(Vec<u8>),
    Spilled {
        file: Box<dyn DiskFile>,
        len: u64,
        path: PathBuf,
    },
    // Boxed: a stream is large, and most drafts are small.
    Streaming(Box<Stream>),
    Sealed(Sealed),
}

/// Whole chunks the coder thread may have at once; past that, the writer's own thread
/// codes the next chunk (the coder is behind: two CPUs are better than one).
const IN_FLIGHT: usize = 2;

/// A whole chunk on its way into the blob, in order.
enum Queued {
    /// Coded on the writer's thread: (raw length, coded bytes).
    Coded(usize, Vec<u8>),
    /// Handed to the coder thread (raw bytes kept in case it cannot code them).
    Coding(Arc<Vec<u8>>, Option<Receiver<Vec<u8>>>),
}

/// A blob being written in order: whole chunks are coded (on the coder thread when it
/// runs) and appended; the last, partial one waits in `tail`.
struct Stream {
    store: Arc<Store>,
    codec: Codec,
    tier: Tier,
    id: u64,
    /// `None` once finished (or broken by a failed finish).
    w: Option<BlobWriter>,
    pin: Option<Pin>,
    queue: VecDeque<Queued>,
    tail: Vec<u8>,
    len: u64,
    cache: Arc<Mutex<Cache>>,
}

/// A finished blob holding the draft's bytes.
struct Sealed {
    store: Arc<Store>,
    tier: Tier,
    id: u64,
    len: u64,
    /// Keeps a checkpoint from retiring the blob while the draft refers to it.
    _pin: Pin,
    /// Ours to delete, until a commit makes it the file's content.
    owned: bool,
}

fn below_base() -> Error {
    Error::InvalidArgument("an offset inside a draft's committed base")
}

/// Feeds `base`'s bytes from `from` to `to` to `each`, a chunk at a time.
fn read_base(
    base: &dyn Fn(u64, usize) -> Result<Vec<u8>>,
    mut from: u64,
    to: u64,
    each: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    while from < to {
        let part = base(from, (to - from).min(store::CHUNK as u64) as usize)?;
        if part.is_empty() {
            return Err(Error::Io(std::io::Error::other(
                "the committed content ended before the draft's base",
            )));
        }
        each(&part)?;
        from += part.len() as u64;
    }
    Ok(())
}

fn broken() -> Error {
    Error::Io(std::io::Error::other(
        "this draft was lost to an earlier write error",
    ))
}

impl Stream {
    fn start(to: &StreamTo) -> Result<Stream> {
        let codec = to.tier.codec();
        let (w, pin) = to.pins.new_blob(&to.store, to.tier, codec)?;
        Ok(Stream {
            store: to.store.clone(),
            codec,
            tier: to.tier,
            id: w.id,
            w: Some(w),
            pin: Some(pin),
            queue: VecDeque::new(),
            tail: Vec::with_capacity(store::CHUNK),
            len: 0,
            cache: to.cache.clone(),
        })
    }

    /// Caches the blob's chunk `index` (`raw`), as a reader of it would.
    fn keep(&self, index: u64, raw: Arc<Vec<u8>>) {
        let key = Key::part(
            Part::Blob {
                tier: self.tier,
                id: self.id,
            },
            u32::try_from(index).unwrap_or(u32::MAX),
        );
        lock(&self.cache).put(key, raw);
    }

    fn push(&mut self, mut data: &[u8], coder: &Coder) -> Result<()> {
        while !data.is_empty() {
            let take = (store::CHUNK - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.len += take as u64;
            if self.tail.len() == store::CHUNK {
                let next = Vec::with_capacity(store::CHUNK);
                let raw = std::mem::replace(&mut self.tail, next);
                let coding = self
                    .queue
                    .iter()
                    .filter(|q| matches!(q, Queued::Coding(..)))
                    .count();
                let raw = Arc::new(raw);
                let q = if coding < IN_FLIGHT {
                    Queued::Coding(raw.clone(), coder.submit(self.codec, raw.clone()))
                } else {
                    Queued::Coded(raw.len(), self.codec.encode(&raw))
                };
                self.queue.push_back(q);
                self.keep(self.len / store::CHUNK as u64 - 1, raw);
                while self.queue.len() > IN_FLIGHT {
                    self.write_oldest()?;
                }
            }
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> Result<()> {
        let w = self.w.as_mut().ok_or_else(broken)?;
        match self.queue.pop_front() {
            Some(Queued::Coded(len, coded)) => w.write_coded(len, &coded)?,
            Some(Queued::Coding(raw, coded)) => {
                w.write_coded(raw.len(), &coder::collect(coded, self.codec, &raw))?
            }
            None => {}
        }
        Ok(())
    }

    /// Writes what is queued and the tail, and finishes the blob (fsynced).
    fn finish(&mut self) -> Result<()> {
        while !self.queue.is_empty() {
            self.write_oldest()?;
        }
        let mut w = self.w.take().ok_or_else(broken)?;
        let mut tail = std::mem::take(&mut self.tail);
        w.write(&tail)?;
        w.finish()?;
        if !tail.is_empty() {
            tail.shrink_to_fit();
            self.keep(self.len / store::CHUNK as u64, Arc::new(tail));
        }
        Ok(())
    }
}

/// Codes `src` into a new blob of `to.tier` the way a streamed draft is coded (whole
/// chunks on the coder thread, and on this one when it is behind); returns the finished,
/// fsynced blob's id and its pin, to keep until a record names the blob.
pub fn code_blob(to: &StreamTo, src: &mut dyn Read) -> Result<(u64, Pin)> {
    let mut s = Stream::start(to)?;
    let mut buf = vec![0u8; store::CHUNK];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s.push(&buf[..n], &to.coder)?;
    }
    s.finish()?;
    let pin = s.pin.take().ok_or_else(broken)?;
    Ok((s.id, pin))
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Unfinished or broken: nobody else will ever read this blob.
        if self.pin.is_some() {
            let _ = self.store.remove(self.tier, FileKind::Blob, self.id);
        }
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        if self.owned {
            let _ = self.store.remove(self.tier, FileKind::Blob, self.id);
        }
    }
}

pub struct Draft {
    /// The bytes past `base_len`.
    buf: Buf,
    /// Leading bytes that are committed version `base_version`'s, unchanged.
    pub base_len: u64,
    pub base_version: u64,
    /// Changed (written or truncated) since the last commit.
    pub dirty: bool,
    /// Written (not only truncated) since the last commit. A close commits only such a
    /// draft: `sh -c 'cmd > f'` closes a dup of the fd right after the O_TRUNC open, and
    /// that close must not commit the empty intermediate state.
    pub written: bool,
    /// Why the last commit of these exact bytes was refused (so it is not checked again).
    pub refused: Option<String>,
    pub mtime: Ts,
    /// When the draft last changed: the file's ctime until the commit sets its own.
    pub ctime: Ts,
    spill_at: usize,
    disk: Arc<dyn Disk>,
    spill_path: PathBuf,
    stream: Option<StreamTo>,
}

/// A draft's bytes, for validation and for committing: the committed bytes it starts
/// from, then its own.
pub struct Bytes<'a> {
    pub base_len: u64,
    /// Reads `n` bytes of the base from an offset (only asked for bytes below `base_len`).
    pub base: &'a dyn Fn(u64, usize) -> Result<Vec<u8>>,
    pub tail: Tail<'a>,
}

impl Bytes<'_> {
    pub fn len(&self) -> u64 {
        self.base_len + self.tail.len()
    }

    /// A reader over all the bytes (the base streamed a chunk at a time).
    pub fn reader(&self) -> Box<dyn Read + '_> {
        self.reader_from(0)
    }

    /// A reader over the bytes from `from` (at most `base_len`) on.
    pub fn reader_from(&self, from: u64) -> Box<dyn Read + '_> {
        let base = BaseRead {
            read: self.base,
            pos: from,
            end: self.base_len,
        };
        Box::new(base.chain(self.tail.reader()))
    }
}

/// The committed bytes below a draft, read in order.
struct BaseRead<'a> {
    read: &'a dyn Fn(u64, usize) -> Result<Vec<u8>>,
    pos: u64,
    end: u64,
}

impl Read for BaseRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (self.end.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let got = (self.read)(self.pos, want).map_err(|e| std::io::Error::other(e.to_string()))?;
        if got.is_empty() || got.len() > want {
            return Err(std::io::Error::other(
                "the committed content changed length",
            ));
        }
        buf[..got.len()].copy_from_slice(&got);
        self.pos += got.len() as u64;
        Ok(got.len())
    }
}

/// A draft's own bytes (those past its base).
pub enum Tail<'a> {
    Mem(&'a [u8]),
    File(&'a dyn DiskFile, u64),
    /// A finished blob of the draft's tier.
    Blob {
        store: &'a Store,
        tier: Tier,
        id: u64,
        len: u64,
    },
}

impl Tail<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Tail::Mem(b) => b.len() as u64,
            Tail::File(_, len) | Tail::Blob { len, .. } => *len,
        }
    }

    /// A reader over the bytes (streams spilled drafts from disk, decodes blobs).
    pub fn reader(&self) -> Box<dyn Read + '_> {
        match self {
            Tail::Mem(b) => Box::new(*b),
            Tail::File(f, len) => Box::new(BufReader::with_capacity(
                1 << 20,
                Read::take(Reader { file: *f, pos: 0 }, *len),
            )),
            Tail::Blob {
                store, tier, id, ..
            } => Box::new(BlobRead {
                open: Some((store, *tier, *id)),
                blob: None,
                next: 0,
                chunk: Vec::new(),
                pos: 0,
            }),
        }
    }
}

/// Reads a blob's decoded bytes in order; opened on the first read.
struct BlobRead<'a> {
    open: Option<(&'a Store, Tier, u64)>,
    blob: Option<BlobReader>,
    next: usize,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for BlobRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let io = |e: Error| std::io::Error::other(e.to_string());
        if let Some((store, tier, id)) = self.open.take() {
            self.blob = Some(store.blob(tier, id).map_err(io)?);
        }
        while self.pos == self.chunk.len() {
            let Some(blob) = &self.blob else {
                return Ok(0);
            };
            if self.next == blob.chunks() {
                return Ok(0);
            }
            self.chunk = blob.chunk(self.next).map_err(io)?;
            self.next += 1;
            self.pos = 0;
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Draft {
    /// `spill_path`: its staging file on `disk`; `stream`: where the draft may go once it
    /// outgrows memory in order (see the module).
    pub fn new(
        spill_at: usize,
        disk: Arc<dyn Disk>,
        spill_path: PathBuf,
        mtime: Ts,
        stream: Option<StreamTo>,
    ) -> Draft {
        Draft {
            buf: Buf::Mem(Vec::new()),
            base_len: 0,
            base_version: 0,
            dirty: false,
            written: false,
            refused: None,
            mtime,
            ctime: mtime,
            spill_at,
            disk,
            spill_path,
            stream,
        }
    }

    /// Marks a change now (POSIX: writes and truncations update mtime and ctime).
    pub fn touch(&mut self) {
        let now = Ts::now();
        self.mtime = now;
        self.ctime = now;
    }

    /// Starts the draft from the first `len` bytes of committed version `version`.
    pub fn based_on(mut self, len: u64, version: u64) -> Draft {
        self.base_len = len;
        self.base_version = version;
        self
    }

    pub fn len(&self) -> u64 {
        self.base_len + self.tail_len()
    }

    fn tail_len(&self) -> u64 {
        match &self.buf {
            Buf::Mem(v) => v.len() as u64,
            Buf::Spilled { len, .. } => *len,
            Buf::Streaming(s) => s.len,
            Buf::Sealed(s) => s.len,
        }
    }

    /// The draft's own bytes, a blob being streamed finished first.
    pub fn tail(&mut self) -> Result<Tail<'_>> {
        self.seal()?;
        Ok(match &self.buf {
            Buf::Mem(v) => Tail::Mem(v),
            Buf::Spilled { file, len, .. } => Tail::File(&**file, *len),
            Buf::Sealed(s) => Tail::Blob {
                store: &s.store,
                tier: s.tier,
                id: s.id,
                len: s.len,
            },
            Buf::Streaming(_) => return Err(broken()),
        })
    }

    /// A commit made the sealed blob the file's content: it is no longer the draft's to
    /// delete (it stays pinned while the draft refers to it).
    pub fn committed_blob(&mut self) {
        if let Buf::Sealed(s) = &mut self.buf {
            s.owned = false;
        }
    }

    /// A commit made the draft's bytes version `version` (`len` bytes): the draft goes on
    /// from there, holding nothing of its own.
    pub fn rebase(&mut self, len: u64, version: u64) -> Result<()> {
        self.truncate_tail(0)?;
        self.base_len = len;
        self.base_version = version;
        self.dirty = false;
        self.written = false;
        Ok(())
    }

    /// Turns a stream into a finished blob.
    fn seal(&mut self) -> Result<()> {
        let Buf::Streaming(s) = &mut self.buf else {
            return Ok(());
        };
        s.finish()?;
        let sealed = Sealed {
            store: s.store.clone(),
            tier: s.tier,
            id: s.id,
            len: s.len,
            _pin: s.pin.take().ok_or_else(broken)?,
            owned: true,
        };
        self.buf = Buf::Sealed(sealed);
        Ok(())
    }

    /// Moves a streamed or sealed draft into a staging file, for changes out of order.
    fn unstream(&mut self) -> Result<()> {
        self.seal()?;
        let Buf::Sealed(s) = &self.buf else {
            return Ok(());
        };
        let blob = s.store.blob(s.tier, s.id)?;
        let file = self.staging_file()?;
        let mut pos = 0u64;
        for i in 0..blob.chunks() {
            let chunk = blob.chunk(i)?;
            file.write_all_at(&chunk, pos)?;
            pos += chunk.len() as u64;
        }
        self.buf = Buf::Spilled {
            file,
            len: pos,
            path: self.spill_path.clone(),
        };
        Ok(())
    }

    fn staging_file(&self) -> Result<Box<dyn DiskFile>> {
        Ok(self.disk.open(&self.spill_path, Open::Create)?)
    }

    /// Reads the draft's own bytes; `off` is at least `base_len` (the engine reads the
    /// base from where it is committed).
    pub fn read(&mut self, off: u64, size: usize) -> Result<Vec<u8>> {
        let off = off.checked_sub(self.base_len).ok_or_else(below_base)?;
        self.read_tail(off, size)
    }

    /// Writes at `off`, at least `base_len` (`materialize` first to write below it).
    pub fn write(&mut self, off: u64, data: &[u8]) -> Result<()> {
        let off = off.checked_sub(self.base_len).ok_or_else(below_base)?;
        self.write_tail(off, data)
    }

    /// Truncates; cutting into the base keeps the rest of it where it is committed.
    pub fn truncate(&mut self, size: u64) -> Result<()> {
        match size.checked_sub(self.base_len) {
            Some(rest) => self.truncate_tail(rest),
            None => {
                self.base_len = size;
                self.truncate_tail(0)
            }
        }
    }

    /// Copies the committed base in (`base` reads `n` bytes of it from an offset), so that
    /// the draft holds all of its bytes and can be written anywhere.
    pub fn materialize(&mut self, base: &dyn Fn(u64, usize) -> Result<Vec<u8>>) -> Result<()> {
        let shift = self.base_len;
        if shift == 0 {
            return Ok(());
        }
        let tail = self.tail_len();
        match &mut self.buf {
            Buf::Mem(v) if shift + tail <= self.spill_at as u64 => {
                let mut all = Vec::with_capacity((shift + tail) as usize);
                read_base(base, 0, shift, &mut |b| {
                    all.extend_from_slice(b);
                    Ok(())
                })?;
                all.append(v);
                *v = all;
            }
            _ => {
                if let Buf::Mem(v) = &self.buf {
                    let file = self.staging_file()?;
                    file.write_all_at(v, 0)?;
                    self.buf = Buf::Spilled {
                        file,
                        len: v.len() as u64,
                        path: self.spill_path.clone(),
                    };
                }
                self.unstream()?;
                let Buf::Spilled { file, len, .. } = &mut self.buf else {
                    return Err(broken());
                };
                // Move the own bytes up by `shift`, last piece first, then fill the base in.
                let mut buf = vec![0u8; store::CHUNK];
                let mut end = *len;
                while end > 0 {
                    let n = end.min(store::CHUNK as u64);
                    let part = &mut buf[..n as usize];
                    file.read_exact_at(part, end - n)?;
                    file.write_all_at(part, end - n + shift)?;
                    end -= n;
                }
                let mut at = 0;
                read_base(base, 0, shift, &mut |b| {
                    file.write_all_at(b, at)?;
                    at += b.len() as u64;
                    Ok(())
                })?;
                *len += shift;
            }
        }
        self.base_len = 0;
        Ok(())
    }

    fn read_tail(&mut self, off: u64, size: usize) -> Result<Vec<u8>> {
        let len = self.tail_len();
        if off >= len {
            return Ok(Vec::new());
        }
        self.unstream()?;
        let n = (len - off).min(size as u64) as usize;
        match &self.buf {
            Buf::Mem(v) => Ok(v[off as usize..off as usize + n].to_vec()),
            Buf::Spilled { file, .. } => {
                let mut out = vec![0; n];
                file.read_exact_at(&mut out, off)?;
                Ok(out)
            }
            Buf::Streaming(_) | Buf::Sealed(_) => Err(broken()),
        }
    }

    fn write_tail(&mut self, off: u64, data: &[u8]) -> Result<()> {
        let end = off + data.len() as u64;
        if let Buf::Mem(v) = &self.buf
            && end > self.spill_at as u64
        {
            self.buf = match &self.stream {
                // Still in order from the start: stream.
                Some(to) if off == v.len() as u64 => {
                    let mut s = Stream::start(to)?;
                    s.push(v, &to.coder)?;
                    Buf::Streaming(Box::new(s))
                }
                _ => {
                    let file = self.staging_file()?;
                    file.write_all_at(v, 0)?;
                    Buf::Spilled {
                        file,
                        len: v.len() as u64,
                        path: self.spill_path.clone(),
                    }
                }
            };
        }
        let in_order = matches!(&self.buf, Buf::Streaming(s) if s.len == off);
        if !in_order {
            self.unstream()?;
        }
        match &mut self.buf {
            Buf::Mem(v) => {
                let end = end as usize;
                if v.len() < end {
                    v.resize(end, 0);
                }
                v[off as usize..end].copy_from_slice(data);
            }
            Buf::Spilled { file, len, .. } => {
                file.write_all_at(data, off)?;
                *len = (*len).max(end);
            }
            Buf::Streaming(s) => {
                let coder = &self.stream.as_ref().ok_or_else(broken)?.coder;
                s.push(data, coder)?;
            }
            Buf::Sealed(_) => return Err(broken()),
        }
        self.dirty = true;
        self.written = true;
        self.refused = None;
        Ok(())
    }

    fn truncate_tail(&mut self, size: u64) -> Result<()> {
        if matches!(self.buf, Buf::Streaming(_) | Buf::Sealed(_)) && size != self.tail_len() {
            if size == 0 {
                // O_TRUNC: whatever was streamed goes (the blob with it, if it was ours).
                self.buf = Buf::Mem(Vec::new());
            } else {
                self.unstream()?;
            }
        }
        match &mut self.buf {
            Buf::Mem(v) if size <= self.spill_at as u64 => v.resize(size as usize, 0),
            Buf::Mem(_) => {
                // Growing past the threshold: spill by writing the new last byte's region.
                let cur = self.tail_len();
                if size > cur {
                    self.write_tail(size - 1, &[0])?;
                }
            }
            Buf::Spilled { file, len, .. } => {
                file.set_len(size)?;
                *len = size;
            }
            // Only when `size` is the length already.
            Buf::Streaming(_) | Buf::Sealed(_) => {}
        }
        self.dirty = true;
        self.refused = None;
        Ok(())
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if let Buf::Spilled { path, .. } = &self.buf
            && let Err(e) = self.disk.remove(path)
        {
            log::warn!("could not remove staging file {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::disk;

    #[test]
    fn spills_past_the_threshold_and_reads_back() {
        let tmp = tempfile::tempdir().expect("tmp");
        let spill = tmp.path().join("d");
        let mut d = Draft::new(100, disk::real(), spill.clone(), Ts::default(), None);
        d.write(0, &[1; 60]).expect("w");
        assert!(!spill.exists());
        d.write(90, &[2; 60]).expect("w");
        assert!(spill.exists());
        assert_eq!(d.len(), 150);
        let all = d.read(0, 1000).expect("r");
        assert_eq!(&all[..60], &[1; 60][..]);
        assert_eq!(&all[60..90], &[0; 30][..]);
        assert_eq!(&all[90..], &[2; 60][..]);
        let mut via_reader = Vec::new();
        d.tail()
            .expect("bytes")
            .reader()
            .read_to_end(&mut via_reader)
            .expect("reader");
        assert_eq!(via_reader, all);
        d.truncate(10).expect("t");
        assert_eq!(d.read(0, 100).expect("r"), vec![1; 10]);
        d.truncate(0).expect("t");
        assert_eq!(d.len(), 0);
        drop(d);
        assert!(
            !spill.exists(),
            "a truncated spilled draft still removes its file"
        );
    }

    #[test]
    fn truncate_grows_with_zeros() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut d = Draft::new(100, disk::real(), tmp.path().join("d"), Ts::default(), None);
        d.write(0, b"abc").expect("w");
        d.truncate(6).expect("t");
        assert_eq!(d.read(0, 10).expect("r"), b"abc\0\0\0");
        d.truncate(200).expect("t");
        assert_eq!(d.len(), 200);
        assert_eq!(d.read(150, 10).expect("r"), vec![0; 10]);
    }

    fn streaming(dir: &std::path::Path, coder: Arc<Coder>) -> (Draft, Arc<Store>, Arc<Pins>) {
        let store = Arc::new(Store::open(disk::real(), dir).expect("store"));
        let pins = Arc::new(Pins::default());
        let to = StreamTo {
            store: store.clone(),
            coder,
            pins: pins.clone(),
            cache: Arc::new(Mutex::new(Cache::new(64 << 20))),
            tier: Tier::Warm,
        };
        let d = Draft::new(
            100,
            disk::real(),
            dir.join("d.draft"),
            Ts::default(),
            Some(to),
        );
        (d, store, pins)
    }

    fn content(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 239) as u8).collect()
    }

    fn read_all(d: &mut Draft) -> Vec<u8> {
        let mut out = Vec::new();
        d.tail()
            .expect("bytes")
            .reader()
            .read_to_end(&mut out)
            .expect("read");
        out
    }

    #[test]
    fn in_order_writes_stream_into_a_blob_the_commit_can_keep() {
        let tmp = tempfile::tempdir().expect("tmp");
        let coder = Arc::new(Coder::default());
        let jobs = coder.start();
        let worker = std::thread::spawn(move || coder::run(jobs));
        let (mut d, store, pins) = streaming(tmp.path(), coder.clone());
        let data = content(3 * store::CHUNK + 12_345);
        for part in data.chunks(70_001) {
            let at = d.len();
            d.write(at, part).expect("write");
        }
        assert!(
            matches!(d.buf, Buf::Streaming(_)),
            "written in order: streamed"
        );
        assert!(!tmp.path().join("d.draft").exists(), "no staging file");
        assert!(read_all(&mut d) == data);
        let Tail::Blob { tier, id, len, .. } = d.tail().expect("bytes") else {
            panic!("a sealed stream is a blob");
        };
        assert_eq!((tier, len), (Tier::Warm, data.len() as u64));
        assert_eq!(
            pins.keys(),
            vec![(Tier::Warm, id)],
            "pinned while the draft has it"
        );
        d.committed_blob();
        drop(d);
        assert!(pins.keys().is_empty());
        let blob = store.blob(Tier::Warm, id).expect("a committed blob stays");
        assert_eq!(blob.total, data.len() as u64);
        drop(coder);
        worker.join().expect("coder");
    }

    #[test]
    fn writes_out_of_order_move_a_stream_to_staging_and_drop_its_blob() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (mut d, store, pins) = streaming(tmp.path(), Arc::new(Coder::default()));
        let mut model = content(2 * store::CHUNK + 500);
        d.write(0, &model).expect("write");
        assert!(matches!(d.buf, Buf::Streaming(_)));
        // Reading a streaming draft back is served too.
        assert_eq!(d.read(store::CHUNK as u64 - 3, 6).expect("read").len(), 6);
        d.write(10, b"patched").expect("write");
        model[10..17].copy_from_slice(b"patched");
        assert!(
            matches!(d.buf, Buf::Spilled { .. }),
            "out of order: staging"
        );
        assert!(store.files().is_empty(), "the stream's blob is gone");
        assert!(pins.keys().is_empty());
        assert!(read_all(&mut d) == model);

        // O_TRUNC of a stream throws it away at once.
        let (mut d, store, pins) = streaming(tmp.path(), Arc::new(Coder::default()));
        d.write(0, &content(store::CHUNK + 1)).expect("write");
        d.truncate(0).expect("truncate");
        assert_eq!(d.len(), 0);
        assert!(store.files().is_empty() && pins.keys().is_empty());

        // A stream dropped unfinished (the writer went away) leaves nothing behind.
        let (mut d, store, pins) = streaming(tmp.path(), Arc::new(Coder::default()));
        d.write(0, &content(store::CHUNK + 1)).expect("write");
        drop(d);
        assert!(store.files().is_empty() && pins.keys().is_empty());
    }
}
