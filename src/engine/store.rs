//! The tier shards on disk: pack files (many small contents, one frame each) and blob files
//! (one large content in independently coded chunks, so a range reads without the rest).
//!
//! `spacetime/<tier>/shard/<id>.pack`:
//!   `{ header "ISLPACK1" v1, reserved = codec | frame(coded content)* }`
//! `spacetime/<tier>/shard/<id>.blob`:
//!   `{ header "ISLBLOB1" v1, reserved = codec | frame(coded chunk)* | u64 chunk offsets[n] |
//!      trailer }`, trailer = `{ u64 index_off | u64 n | u64 total_len | u32 chunk_size |
//!      u32 crc32(index ++ first 28 trailer bytes) | "ISLBEND1" }` (40 bytes).
//! Ids come from one counter shared by all tiers; files are immutable once written and
//! fsynced before anything refers to them.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::codec::{Codec, MAX_DECODED, Tier};
use super::disk::{Appender, Disk, DiskFile, Open};
use super::frame::{self, Decoded};
use super::open_files::OpenFiles;
use crate::error::{Error, Result};

const PACK_MAGIC: &[u8; 8] = b"ISLPACK1";
const BLOB_MAGIC: &[u8; 8] = b"ISLBLOB1";
const BLOB_END: &[u8; 8] = b"ISLBEND1";
const VERSION: u16 = 1;
const TRAILER: usize = 40;
pub const CHUNK: usize = 1 << 20;
/// The largest frame a pack entry or blob chunk can be: a coded piece (at most
/// `MAX_DECODED`, plus what a codec may add to incompressible bytes) and its header.
const MAX_FRAME: usize = MAX_DECODED + (MAX_DECODED >> 6) + 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FileKind {
    Pack,
    Blob,
}

impl FileKind {
    fn ext(self) -> &'static str {
        match self {
            FileKind::Pack => "pack",
            FileKind::Blob => "blob",
        }
    }
}

pub struct Store {
    disk: Arc<dyn Disk>,
    root: PathBuf,
    next_id: AtomicU64,
    /// Packs opened for reads, with their codec.
    open_packs: OpenFiles<(Tier, u64), (Arc<dyn DiskFile>, Codec)>,
}

/// Packs kept open for reads.
const PACKS_KEPT: usize = 8;

fn header_with_codec(magic: &[u8; 8], codec: Codec) -> [u8; frame::FILE_HEADER] {
    let mut h = frame::file_header(magic, VERSION);
    h[10] = codec as u8;
    h
}

impl Store {
    pub fn open(disk: Arc<dyn Disk>, root: &Path) -> Result<Store> {
        let mut max = 0;
        for tier in Tier::ALL {
            let dir = root.join("spacetime").join(tier.dir_name()).join("shard");
            disk.create_dir_all(&dir)?;
            for (_, id, _) in list_dir(&*disk, &dir)? {
                max = max.max(id);
            }
        }
        Ok(Store {
            disk,
            root: root.to_path_buf(),
            next_id: AtomicU64::new(max + 1),
            open_packs: OpenFiles::new(PACKS_KEPT),
        })
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.load(Ordering::SeqCst)
    }

    /// Never hands out an id at or below one a checkpoint already knows.
    pub fn reserve_ids_from(&self, id: u64) {
        self.next_id.fetch_max(id, Ordering::SeqCst);
    }

    fn alloc(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    fn dir(&self, tier: Tier) -> PathBuf {
        self.root
            .join("spacetime")
            .join(tier.dir_name())
            .join("shard")
    }

    fn path(&self, tier: Tier, kind: FileKind, id: u64) -> PathBuf {
        self.dir(tier).join(format!("{id:016}.{}", kind.ext()))
    }

    /// Every shard file: (tier, kind, id, bytes on disk).
    pub fn files(&self) -> Vec<(Tier, FileKind, u64, u64)> {
        let mut out = Vec::new();
        for tier in Tier::ALL {
            for (kind, id, len) in list_dir(&*self.disk, &self.dir(tier)).unwrap_or_default() {
                out.push((tier, kind, id, len));
            }
        }
        out
    }

    pub fn remove(&self, tier: Tier, kind: FileKind, id: u64) -> Result<()> {
        if kind == FileKind::Pack {
            self.open_packs.forget(|key| *key == (tier, id));
        }
        self.disk.remove(&self.path(tier, kind, id))?;
        Ok(())
    }

    /// A new shard file with its header written: (id, buffered writer).
    fn create(&self, tier: Tier, kind: FileKind, codec: Codec) -> Result<(u64, Shard)> {
        let id = self.alloc();
        let file = self.disk.open(&self.path(tier, kind, id), Open::Create)?;
        let mut out = Shard {
            out: BufWriter::with_capacity(1 << 20, Appender::new(file)),
            disk: self.disk.clone(),
            dir: self.dir(tier),
        };
        let magic = match kind {
            FileKind::Pack => PACK_MAGIC,
            FileKind::Blob => BLOB_MAGIC,
        };
        out.write_all(&header_with_codec(magic, codec))?;
        Ok((id, out))
    }

    pub fn pack_writer(&self, tier: Tier) -> Result<PackWriter> {
        let codec = tier.codec();
        let (id, out) = self.create(tier, FileKind::Pack, codec)?;
        Ok(PackWriter {
            id,
            codec,
            out,
            off: frame::FILE_HEADER as u64,
        })
    }

    /// Pack `id` open for reading (its header checked once), with its codec.
    fn pack(&self, tier: Tier, id: u64) -> Result<(Arc<dyn DiskFile>, Codec)> {
        self.open_packs.get((tier, id), || {
            let file: Arc<dyn DiskFile> = Arc::from(
                self.disk
                    .open(&self.path(tier, FileKind::Pack, id), Open::Read)?,
            );
            let mut head = [0u8; frame::FILE_HEADER];
            file.read_exact_at(&mut head, 0)?;
            frame::check_file_header(&head, PACK_MAGIC, VERSION, "pack")?;
            Ok((file, Codec::from_u8(head[10])?))
        })
    }

    /// Reads one pack entry back; `size` is the decoded length recorded in the inode.
    pub fn read_pack(&self, tier: Tier, id: u64, off: u64, len: u32, size: u64) -> Result<Vec<u8>> {
        let (file, codec) = self.pack(tier, id)?;
        check_entry_len(id, off, len)?;
        let mut buf = vec![0; len as usize];
        file.read_exact_at(&mut buf, off)?;
        decode_entry(id, off, codec, &buf, size)
    }

    /// Reads entries of one pack that lie close together, in offset order, with one read
    /// of the span from the first to the end of the last: (offset, frame length, decoded
    /// size) each, decoded each on its own. A scan reads a pack's neighbours together.
    pub fn read_pack_entries(
        &self,
        tier: Tier,
        id: u64,
        entries: &[(u64, u32, u64)],
    ) -> Result<Vec<Result<Vec<u8>>>> {
        let (Some(&(start, ..)), Some(&(last, last_len, _))) = (entries.first(), entries.last())
        else {
            return Ok(Vec::new());
        };
        let end = last + last_len as u64;
        if end < start || end - start > MAX_SPAN as u64 {
            return Err(Error::Corrupt(format!(
                "pack {id}: entries from {start} to {end} read as one span"
            )));
        }
        let (file, codec) = self.pack(tier, id)?;
        let mut buf = vec![0; (end - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        Ok(entries
            .iter()
            .map(|&(off, len, size)| {
                check_entry_len(id, off, len)?;
                let at = off.checked_sub(start).map(|a| a as usize);
                match at.and_then(|a| buf.get(a..a + len as usize)) {
                    Some(frame) => decode_entry(id, off, codec, frame, size),
                    None => Err(Error::Corrupt(format!(
                        "pack {id} entry at {off}: outside the span read"
                    ))),
                }
            })
            .collect())
    }

    pub fn blob_writer(&self, tier: Tier, codec: Codec) -> Result<BlobWriter> {
        let (id, out) = self.create(tier, FileKind::Blob, codec)?;
        Ok(BlobWriter {
            id,
            codec,
            out,
            off: frame::FILE_HEADER as u64,
            index: Vec::new(),
            total: 0,
            pending: Vec::with_capacity(CHUNK),
        })
    }

    pub fn blob(&self, tier: Tier, id: u64) -> Result<BlobReader> {
        BlobReader::open(&*self.disk, &self.path(tier, FileKind::Blob, id))
    }
}

/// The most bytes `Store::read_pack_entries` reads at once.
pub const MAX_SPAN: usize = 1 << 20;

fn check_entry_len(id: u64, off: u64, len: u32) -> Result<()> {
    if len as usize > MAX_FRAME {
        return Err(Error::Corrupt(format!(
            "pack {id} entry at {off}: {len} bytes recorded"
        )));
    }
    Ok(())
}

/// A pack entry's frame, checked and decoded.
fn decode_entry(id: u64, off: u64, codec: Codec, frame: &[u8], size: u64) -> Result<Vec<u8>> {
    match frame::decode(frame, 0, frame.len()) {
        Decoded::Frame { payload, .. } => codec.decode(payload, size as usize),
        _ => Err(Error::Corrupt(format!(
            "pack {id} entry at {off} fails its checksum"
        ))),
    }
}

fn list_dir(disk: &dyn Disk, dir: &Path) -> Result<Vec<(FileKind, u64, u64)>> {
    let mut out = Vec::new();
    for (name, len) in disk.list(dir)? {
        let Some(name) = name.to_str() else { continue };
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let kind = match ext {
            "pack" => FileKind::Pack,
            "blob" => FileKind::Blob,
            _ => continue,
        };
        if let Ok(id) = stem.parse() {
            out.push((kind, id, len));
        }
    }
    Ok(out)
}

/// A shard file being written in order.
struct Shard {
    out: BufWriter<Appender>,
    disk: Arc<dyn Disk>,
    dir: PathBuf,
}

impl Shard {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        Ok(self.out.write_all(buf)?)
    }

    /// Makes the file and its name durable: a record or a checkpoint names it next.
    fn finish(self) -> Result<()> {
        let out = self.out.into_inner().map_err(|e| e.into_error())?;
        out.file.sync_all()?;
        self.disk.sync_dir(&self.dir)?;
        Ok(())
    }
}

pub struct PackWriter {
    pub id: u64,
    codec: Codec,
    out: Shard,
    off: u64,
}

impl PackWriter {
    /// Appends one content; returns (offset, framed length) for its `Location::Pack`.
    pub fn append(&mut self, data: &[u8]) -> Result<(u64, u32)> {
        let mut buf = Vec::new();
        frame::encode(&self.codec.encode(data), &mut buf);
        self.out.write_all(&buf)?;
        let at = self.off;
        self.off += buf.len() as u64;
        let len =
            u32::try_from(buf.len()).map_err(|_| Error::InvalidArgument("pack entry too large"))?;
        Ok((at, len))
    }

    pub fn finish(self) -> Result<()> {
        self.out.finish()
    }
}

pub struct BlobWriter {
    pub id: u64,
    codec: Codec,
    out: Shard,
    off: u64,
    index: Vec<u64>,
    total: u64,
    pending: Vec<u8>,
}

impl BlobWriter {
    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                self.flush_chunk()?;
            }
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<()> {
        let coded = self.codec.encode(&self.pending);
        let raw = std::mem::take(&mut self.pending);
        self.write_coded(raw.len(), &coded)?;
        self.pending = raw;
        self.pending.clear();
        Ok(())
    }

    /// Appends a chunk coded elsewhere: `coded` is this blob's codec applied to `raw_len`
    /// bytes. Every chunk but the last is a whole one, and none may follow `write`'s bytes.
    pub fn write_coded(&mut self, raw_len: usize, coded: &[u8]) -> Result<()> {
        if !self.pending.is_empty() || !self.total.is_multiple_of(CHUNK as u64) || raw_len > CHUNK {
            return Err(Error::InvalidArgument("blob chunk out of order"));
        }
        self.out.write_all(&frame::header(coded))?;
        self.out.write_all(coded)?;
        self.index.push(self.off);
        self.off += (frame::FRAME_HEADER + coded.len()) as u64;
        self.total += raw_len as u64;
        Ok(())
    }

    /// Writes the index and trailer and fsyncs; returns the content length.
    pub fn finish(mut self) -> Result<u64> {
        if !self.pending.is_empty() {
            self.flush_chunk()?;
        }
        let mut tail = Vec::with_capacity(self.index.len() * 8 + TRAILER);
        for off in &self.index {
            tail.extend_from_slice(&off.to_le_bytes());
        }
        tail.extend_from_slice(&self.off.to_le_bytes());
        tail.extend_from_slice(&(self.index.len() as u64).to_le_bytes());
        tail.extend_from_slice(&self.total.to_le_bytes());
        tail.extend_from_slice(&(CHUNK as u32).to_le_bytes());
        let crc = crc32fast::hash(&tail);
        tail.extend_from_slice(&crc.to_le_bytes());
        tail.extend_from_slice(BLOB_END);
        self.out.write_all(&tail)?;
        self.out.finish()?;
        Ok(self.total)
    }
}

/// Blobs that must outlive the namespace's references to them: ones open readers hold,
/// and new ones no record names yet. A checkpoint keeps every pinned blob.
#[derive(Default)]
pub struct Pins(Mutex<HashMap<(Tier, u64), u32>>);

/// One pin on a blob, released when dropped.
pub struct Pin {
    pins: Arc<Pins>,
    key: (Tier, u64),
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.pins.unpin(self.key);
    }
}

impl Pins {
    fn lock(&self) -> MutexGuard<'_, HashMap<(Tier, u64), u32>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn pin(&self, key: (Tier, u64)) {
        *self.lock().entry(key).or_default() += 1;
    }

    pub fn unpin(&self, key: (Tier, u64)) {
        let mut pins = self.lock();
        if let Some(n) = pins.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&key);
            }
        }
    }

    pub fn keys(&self) -> Vec<(Tier, u64)> {
        self.lock().keys().copied().collect()
    }

    /// A new blob of `store`, pinned until the returned `Pin` goes. It is allocated and
    /// pinned under the pin lock: a checkpoint reads the store's next id before the pins,
    /// so it either sees the pin or does not count the id.
    pub fn new_blob(
        self: &Arc<Self>,
        store: &Store,
        tier: Tier,
        codec: Codec,
    ) -> Result<(BlobWriter, Pin)> {
        let mut pins = self.lock();
        let w = store.blob_writer(tier, codec)?;
        *pins.entry((tier, w.id)).or_default() += 1;
        let pin = Pin {
            pins: self.clone(),
            key: (tier, w.id),
        };
        Ok((w, pin))
    }
}

pub struct BlobReader {
    file: Box<dyn DiskFile>,
    codec: Codec,
    index: Vec<u64>,
    index_off: u64,
    pub total: u64,
    chunk: usize,
}

impl BlobReader {
    fn open(disk: &dyn Disk, path: &Path) -> Result<BlobReader> {
        let file = disk.open(path, Open::Read)?;
        let what = path.display().to_string();
        let len = file.len()?;
        if len < (frame::FILE_HEADER + TRAILER) as u64 {
            return Err(Error::Corrupt(format!("{what}: too short")));
        }
        let mut head = [0u8; frame::FILE_HEADER];
        file.read_exact_at(&mut head, 0)?;
        frame::check_file_header(&head, BLOB_MAGIC, VERSION, &what)?;
        let codec = Codec::from_u8(head[10])?;
        let mut trailer = [0u8; TRAILER];
        file.read_exact_at(&mut trailer, len - TRAILER as u64)?;
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&trailer[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let (index_off, n, total) = (u64_at(0), u64_at(8), u64_at(16));
        let chunk =
            u32::from_le_bytes([trailer[24], trailer[25], trailer[26], trailer[27]]) as usize;
        let crc = u32::from_le_bytes([trailer[28], trailer[29], trailer[30], trailer[31]]);
        let fits = n
            .checked_mul(8)
            .and_then(|b| b.checked_add(index_off))
            .and_then(|b| b.checked_add(TRAILER as u64))
            == Some(len);
        let sizes = (1..=MAX_DECODED).contains(&chunk)
            && total.div_ceil(chunk as u64) == n
            && index_off >= frame::FILE_HEADER as u64;
        if &trailer[32..] != BLOB_END || !fits || !sizes {
            return Err(Error::Corrupt(format!("{what}: bad trailer")));
        }
        let mut idx = vec![0u8; (n * 8) as usize];
        file.read_exact_at(&mut idx, index_off)?;
        let mut h = crc32fast::Hasher::new();
        h.update(&idx);
        h.update(&trailer[..28]);
        if h.finalize() != crc {
            return Err(Error::Corrupt(format!("{what}: index fails its checksum")));
        }
        let index: Vec<u64> = idx
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect();
        // Chunks lie in order between the header and the index, each a bounded frame.
        let mut at = frame::FILE_HEADER as u64;
        for &start in index.iter().chain(std::iter::once(&index_off)) {
            if start < at || start - at > MAX_FRAME as u64 {
                return Err(Error::Corrupt(format!("{what}: bad chunk index")));
            }
            at = start;
        }
        Ok(BlobReader {
            file,
            codec,
            index,
            index_off,
            total,
            chunk,
        })
    }

    pub fn chunks(&self) -> usize {
        self.index.len()
    }

    /// Decoded bytes of chunk `i`.
    pub fn chunk(&self, i: usize) -> Result<Vec<u8>> {
        let start = *self
            .index
            .get(i)
            .ok_or(Error::Corrupt("chunk index out of range".into()))?;
        let end = self.index.get(i + 1).copied().unwrap_or(self.index_off);
        let mut buf = vec![0u8; end.saturating_sub(start) as usize];
        self.file.read_exact_at(&mut buf, start)?;
        let expected = self
            .total
            .saturating_sub((i * self.chunk) as u64)
            .min(self.chunk as u64) as usize;
        match frame::decode(&buf, 0, buf.len()) {
            Decoded::Frame { payload, .. } => self.codec.decode(payload, expected),
            _ => Err(Error::Corrupt(format!("blob chunk {i} fails its checksum"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::engine::disk;

    #[test]
    fn packs_round_trip_in_every_tier() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(disk::real(), tmp.path()).expect("store");
        for tier in Tier::ALL {
            let mut w = store.pack_writer(tier).expect("writer");
            let items: Vec<Vec<u8>> = (0..20)
                .map(|i| format!("{{\"n\":{i}}}").repeat(i + 1).into_bytes())
                .collect();
            let locs: Vec<_> = items.iter().map(|d| w.append(d).expect("append")).collect();
            let id = w.id;
            w.finish().expect("finish");
            for (d, (off, len)) in items.iter().zip(locs) {
                let back = store
                    .read_pack(tier, id, off, len, d.len() as u64)
                    .expect("read");
                assert_eq!(&back, d);
            }
        }
        assert_eq!(store.files().len(), 3);
        let reopened = Store::open(disk::real(), tmp.path()).expect("reopen");
        assert!(reopened.next_id() > 3);
    }

    #[test]
    fn neighbouring_entries_read_in_one_span_and_a_damaged_one_fails_alone() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(disk::real(), tmp.path()).expect("store");
        let mut w = store.pack_writer(Tier::Warm).expect("writer");
        let items: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i * 7)).into_bytes())
            .collect();
        let locs: Vec<_> = items.iter().map(|d| w.append(d).expect("append")).collect();
        let id = w.id;
        w.finish().expect("finish");
        // Every other entry: spans may skip what they do not need.
        let wanted: Vec<(u64, u32, u64)> = locs
            .iter()
            .zip(&items)
            .step_by(2)
            .map(|(&(off, len), d)| (off, len, d.len() as u64))
            .collect();
        let back = store
            .read_pack_entries(Tier::Warm, id, &wanted)
            .expect("span");
        let want: Vec<&Vec<u8>> = items.iter().step_by(2).collect();
        assert_eq!(back.len(), want.len());
        for (b, w) in back.iter().zip(&want) {
            assert_eq!(b.as_ref().ok(), Some(*w));
        }
        // A flipped byte inside entry 10 fails that entry only.
        let path = store.path(Tier::Warm, FileKind::Pack, id);
        let mut bytes = fs::read(&path).expect("pack bytes");
        let (off, len) = locs[10];
        bytes[(off + len as u64 - 1) as usize] ^= 0xff;
        fs::write(&path, &bytes).expect("damage");
        let fresh = Store::open(disk::real(), tmp.path()).expect("reopen");
        let all: Vec<(u64, u32, u64)> = locs
            .iter()
            .zip(&items)
            .map(|(&(off, len), d)| (off, len, d.len() as u64))
            .collect();
        let back = fresh.read_pack_entries(Tier::Warm, id, &all).expect("span");
        for (i, (b, d)) in back.iter().zip(&items).enumerate() {
            match b {
                Ok(got) => assert!(i != 10 && got == d, "entry {i}"),
                Err(Error::Corrupt(_)) => assert_eq!(i, 10),
                Err(e) => panic!("entry {i}: {e}"),
            }
        }
        // A span past the most read at once is refused whole.
        let far = [(0, 1, 1), (MAX_SPAN as u64 + 10, 1, 1)];
        assert!(fresh.read_pack_entries(Tier::Warm, id, &far).is_err());
    }

    #[test]
    fn chunks_coded_elsewhere_make_the_same_blob() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(disk::real(), tmp.path()).expect("store");
        let data: Vec<u8> = (0..(CHUNK * 2 + 999)).map(|i| (i % 253) as u8).collect();
        for tier in Tier::ALL {
            let codec = tier.codec();
            let mut w = store.blob_writer(tier, codec).expect("writer");
            let id = w.id;
            for c in data[..2 * CHUNK].chunks(CHUNK) {
                w.write_coded(c.len(), &codec.encode(c)).expect("coded");
            }
            w.write(&data[2 * CHUNK..]).expect("tail");
            assert!(
                w.write_coded(1, &codec.encode(b"x")).is_err(),
                "nothing coded may follow a partial chunk"
            );
            assert_eq!(w.finish().expect("finish"), data.len() as u64);
            let r = store.blob(tier, id).expect("open");
            let back: Vec<u8> = (0..r.chunks())
                .flat_map(|i| r.chunk(i).expect("chunk"))
                .collect();
            assert!(back == data, "{tier:?}");
        }
    }

    #[test]
    fn blobs_read_any_chunk_and_detect_damage() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(disk::real(), tmp.path()).expect("store");
        let data: Vec<u8> = (0..(CHUNK * 2 + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for tier in Tier::ALL {
            let mut w = store.blob_writer(tier, tier.codec()).expect("writer");
            let id = w.id;
            for part in data.chunks(100_000) {
                w.write(part).expect("write");
            }
            assert_eq!(w.finish().expect("finish"), data.len() as u64);
            let r = store.blob(tier, id).expect("open");
            assert_eq!(r.chunks(), 3);
            let mut back = Vec::new();
            for i in 0..r.chunks() {
                back.extend(r.chunk(i).expect("chunk"));
            }
            assert_eq!(back, data);
            // Flip a byte inside the first chunk's payload.
            let path = store.path(tier, FileKind::Blob, id);
            let mut bytes = fs::read(&path).expect("read");
            bytes[frame::FILE_HEADER + frame::FRAME_HEADER + 3] ^= 1;
            fs::write(&path, &bytes).expect("write");
            let r = store.blob(tier, id).expect("index still fine");
            assert!(r.chunk(0).is_err());
            assert!(r.chunk(1).is_ok());
            // A cut file has no trailer.
            fs::write(&path, &bytes[..bytes.len() - 1]).expect("write");
            assert!(store.blob(tier, id).is_err());
        }
    }

    /// Damaged blobs and packs are errors, never a panic or an allocation sized by a
    /// length read off the disk: random bytes changed, files cut anywhere, and trailers
    /// claiming huge chunks or counts.
    #[test]
    fn damaged_shard_files_are_errors_not_panics() {
        use proptest::prelude::*;
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(disk::real(), tmp.path()).expect("store");
        let data: Vec<u8> = (0..CHUNK + CHUNK / 2).map(|i| (i % 251) as u8).collect();
        let mut w = store
            .blob_writer(Tier::Cold, Tier::Cold.codec())
            .expect("writer");
        w.write(&data).expect("write");
        let id = w.id;
        w.finish().expect("finish");
        let path = store.path(Tier::Cold, FileKind::Blob, id);
        let good = fs::read(&path).expect("read");
        let check = |bytes: &[u8]| {
            fs::write(&path, bytes).expect("damage");
            if let Ok(r) = store.blob(Tier::Cold, id) {
                for i in 0..r.chunks() {
                    let _ = r.chunk(i);
                }
            }
        };
        let len = good.len();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
        let flips = proptest::collection::vec((0..len, any::<u8>()), 1..8);
        runner
            .run(&(flips, 0..=len), |(flips, cut)| {
                let mut bad = good.clone();
                for (at, v) in flips {
                    bad[at] = v;
                }
                check(&bad[..cut.max(len / 2)]);
                check(&bad);
                Ok(())
            })
            .expect("no panic");
        // A trailer that claims a huge chunk count, chunk size or index offset.
        let trailer = len - TRAILER;
        for (field, value) in [(0, u64::MAX - 7), (8, 1 << 61), (16, u64::MAX), (0, 0)] {
            let mut bad = good.clone();
            bad[trailer + field..trailer + field + 8].copy_from_slice(&value.to_le_bytes());
            check(&bad);
        }
        let mut w = store.pack_writer(Tier::Warm).expect("pack");
        let (off, flen) = w.append(b"{\"small\": true}").expect("append");
        let pack = w.id;
        w.finish().expect("finish");
        for (len, size) in [(u32::MAX, 16), (flen, u64::MAX), (flen, 1 << 40)] {
            assert!(store.read_pack(Tier::Warm, pack, off, len, size).is_err());
        }
    }
}
