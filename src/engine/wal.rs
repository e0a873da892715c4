//! The write-ahead log: segment files of framed records, appended under one lock and made
//! durable by group commit (one `fdatasync` covers every writer waiting at that moment).
//!
//! Segment file: `{ file header "ISLWAL01" v1 | frame* }`, named `wal-<seq>.wal` with `seq`
//! increasing. A segment is fsynced before the next one is started, so only the newest
//! segment can end in a torn record.
//!
//! The space after the last record is kept zero-filled ahead of the appends (version 2):
//! an append then overwrites allocated blocks, so its `fdatasync` writes the record alone,
//! not also the file's size and block map (about 20% less per synchronous commit here).
//! Records are never empty, so a zero frame header marks the end of the log.
//!
//! Durability: a record appended with `Durability::Sync` is returned only after an fsync
//! covering it; with `Within(d)` a background flusher fsyncs it no later than `d` after the
//! append. A failed fsync poisons the log: the page cache may have dropped the dirty pages,
//! so nothing written since can be called durable, and every later commit fails. A reply
//! owed at a position (`when_durable`) is sent by the flusher after the fsync covering it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::disk::{self, Disk, DiskFile, Open};
use super::frame::{self, Decoded};
use super::open_files::OpenFiles;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"ISLWAL01";
const VERSION: u16 = 2;
/// How far ahead of the last record the segment is kept zero-filled.
const PREZERO: u64 = 1 << 20;
/// The largest record the log accepts; larger contents go to blob files.
pub const MAX_RECORD: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    Sync,
    Within(Duration),
}

/// A place in the log between two records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub seg: u64,
    /// The byte of segment `seg` the next record starts at.
    pub off: u64,
}

/// Where an appended record landed.
#[derive(Clone, Copy, Debug)]
pub struct Appended {
    /// Log position after the record: pass to `sync_to`.
    pub lsn: u64,
    pub seg: u64,
    /// Offset of the record's payload within the segment.
    pub payload_off: u64,
}

struct Inner {
    file: Arc<dyn DiskFile>,
    seq: u64,
    seg_len: u64,
    /// The segment file's length: bytes from `seg_len` to here are zeros.
    zeroed: u64,
    /// Bytes appended since open / made durable since open (a position, not a size).
    written: u64,
    durable: u64,
    /// Records appended since open, and how many of them fsyncs covered (group commit:
    /// their ratio to `fsyncs` is the batch size).
    records: u64,
    durable_records: u64,
    fsyncs: u64,
    syncing: bool,
    deadline: Option<Instant>,
    /// Replies waiting for the log to be durable up to their position.
    owed: Vec<(u64, Ack)>,
    poisoned: bool,
    shutdown: bool,
}

/// What is done once a position is durable: given the fsync's failure if it failed.
pub type Ack = Box<dyn FnOnce(Result<()>) + Send>;

pub struct Wal {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    /// A segment is sealed once it would grow past this (a setting, changed live).
    segment_max: AtomicU64,
    inner: Mutex<Inner>,
    synced: Condvar,
    wake_flusher: Condvar,
    /// Sealed segments opened for reads of content not yet checkpointed.
    sealed: OpenFiles<u64, Arc<dyn DiskFile>>,
}

/// Sealed segments kept open for reads.
const SEALED_KEPT: usize = 4;

pub fn segment_name(seq: u64) -> String {
    format!("wal-{seq:08}.wal")
}

pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".wal")?
        .parse()
        .ok()
}

/// Segment sequence numbers present in `dir`, ascending.
pub fn list_segments(disk: &dyn Disk, dir: &Path) -> Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for (name, _) in disk.list(dir)? {
        if let Some(seq) = name.to_str().and_then(parse_segment_name) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Replays every record of segments `>= from` in order, calling `apply(seg, payload_off,
/// payload)`.
///
/// To the log's end (`until` is `None`): a torn or damaged tail of the newest segment is
/// cut at the last whole record (fsynced, with a warning); damage anywhere else is an
/// error, because records after it were acknowledged and guessing would lose or invent
/// them.
///
/// To a position (`until`): the log as it stood there, segments `from..=until.seg` and of
/// `until.seg` the records before byte `until.off`, which were durable then. Nothing is
/// repaired: a missing segment or any damage is an error.
pub fn replay(
    disk: &dyn Disk,
    dir: &Path,
    from: u64,
    until: Option<Position>,
    mut apply: impl FnMut(u64, u64, &[u8]) -> Result<()>,
) -> Result<u64> {
    let seqs: Vec<u64> = match until {
        Some(u) => (from..=u.seg).collect(),
        None => list_segments(disk, dir)?
            .into_iter()
            .filter(|s| *s >= from)
            .collect(),
    };
    let mut records = 0;
    for (i, &seq) in seqs.iter().enumerate() {
        // Only the end of the log can hold what a crash cut.
        let cut_here = until.is_none() && i + 1 == seqs.len();
        let path = dir.join(segment_name(seq));
        let what = path.display().to_string();
        let buf = disk::read(disk, &path).map_err(|e| match until {
            Some(_) => Error::Corrupt(format!("{what}, which a snapshot needs: {e}")),
            None => e.into(),
        })?;
        if buf.len() < frame::FILE_HEADER && cut_here {
            // Crashed while creating the segment: nothing in it was ever acknowledged.
            log::warn!("{what}: incomplete header, discarding the empty segment");
            rewrite_header(disk, &path)?;
            continue;
        }
        frame::check_file_header(&buf, MAGIC, VERSION, &what)?;
        let end = match until {
            Some(u) if u.seg == seq => (u.off as usize).min(buf.len()),
            _ => buf.len(),
        };
        let (n, damage) = scan(&buf, end, |off, payload| apply(seq, off, payload))?;
        records += n;
        let Some((at, bad)) = damage else {
            continue;
        };
        if !cut_here || has_valid_frame_after(&buf, at + 1) {
            let why = match until {
                Some(_) => "which a snapshot needs",
                None => {
                    "with acknowledged records after it; refusing to guess. Restore this \
                     segment from a backup, or remove it to accept the loss"
                }
            };
            return Err(Error::Corrupt(format!(
                "{what}: damaged record at byte {at} ({bad}) {why}"
            )));
        }
        log::warn!(
            "{what}: torn tail at byte {at} ({} bytes dropped); truncating to the last \
             whole record",
            buf.len() - at
        );
        let f = disk.open(&path, Open::Write)?;
        f.set_len(at as u64)?;
        f.sync_all()?;
    }
    Ok(records)
}

/// Calls `apply(payload_off, payload)` for each record of a segment's `buf` that starts
/// before `end`, up to the zero-filled space after the last one. Returns the records
/// applied, and where and how the first damaged frame was, if one was met.
fn scan(
    buf: &[u8],
    end: usize,
    mut apply: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<(u64, Option<(usize, String)>)> {
    let mut at = frame::FILE_HEADER;
    let mut records = 0;
    while at < end {
        match frame::decode(buf, at, MAX_RECORD) {
            // The zero-filled space after the last record.
            Decoded::Frame { payload, .. }
                if payload.is_empty() && buf[at..].iter().all(|&b| b == 0) =>
            {
                break;
            }
            Decoded::Frame { payload, next } if !payload.is_empty() => {
                apply((at + frame::FRAME_HEADER) as u64, payload)?;
                records += 1;
                at = next;
            }
            bad => return Ok((records, Some((at, format!("{bad:?}"))))),
        }
    }
    Ok((records, None))
}

fn rewrite_header(disk: &dyn Disk, path: &Path) -> Result<()> {
    let f = disk.open(path, Open::Create)?;
    f.write_all_at(&frame::file_header(MAGIC, VERSION), 0)?;
    f.sync_all()?;
    Ok(())
}

/// A torn write leaves garbage only at the very end; a whole valid frame after a bad one
/// means the damage is in the middle. Each offset whose length field fits is checksummed,
/// so random garbage costs about the cube of its length: past `SCAN_BUDGET` checksummed
/// bytes the search gives up and answers that records may follow (recovery then refuses
/// to guess rather than hang or drop them).
fn has_valid_frame_after(buf: &[u8], from: usize) -> bool {
    let mut budget = SCAN_BUDGET;
    let mut at = from;
    while at < buf.len() {
        // A zero length is no record: jump over the zero-filled space to the first offset
        // whose 4-byte length field holds a byte that is not zero.
        let Some(skip) = buf[at..].iter().position(|&b| b != 0) else {
            return false;
        };
        at = (at + skip).saturating_sub(3).max(at);
        let len = buf
            .get(at..at + 4)
            .map_or(0, |l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize);
        if len <= MAX_RECORD && at + frame::FRAME_HEADER + len <= buf.len() {
            if len > budget {
                log::warn!(
                    "could not rule out whole records after the damage at byte {from} within \
                     {SCAN_BUDGET} checksummed bytes"
                );
                return true;
            }
            budget -= len;
        }
        if matches!(frame::decode(buf, at, MAX_RECORD), Decoded::Frame { payload, .. } if !payload.is_empty())
        {
            return true;
        }
        at += 1;
    }
    false
}

/// Bytes `has_valid_frame_after` may checksum (a fraction of a second).
const SCAN_BUDGET: usize = 1 << 30;

impl Wal {
    /// The directory of the log's segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn set_segment_max(&self, max: u64) {
        self.segment_max.store(max, Ordering::Relaxed);
    }

    /// Opens the log for appending in a new segment after the newest existing one.
    pub fn open(disk: Arc<dyn Disk>, dir: &Path, segment_max: u64) -> Result<Wal> {
        disk.create_dir_all(dir)?;
        let seq = list_segments(&*disk, dir)?.last().map_or(1, |s| s + 1);
        let file = create_segment(&*disk, dir, seq)?;
        Ok(Wal {
            disk,
            dir: dir.to_path_buf(),
            segment_max: AtomicU64::new(segment_max),
            inner: Mutex::new(Inner {
                file: Arc::from(file),
                seq,
                seg_len: frame::FILE_HEADER as u64,
                zeroed: frame::FILE_HEADER as u64,
                written: 0,
                durable: 0,
                records: 0,
                durable_records: 0,
                fsyncs: 0,
                syncing: false,
                deadline: None,
                owed: Vec::new(),
                poisoned: false,
                shutdown: false,
            }),
            synced: Condvar::new(),
            wake_flusher: Condvar::new(),
            sealed: OpenFiles::new(SEALED_KEPT),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in a way that
        // matters more than stopping: keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one record whose payload is the concatenation of `parts`.
    pub fn append(&self, parts: &[&[u8]], durability: Durability) -> Result<Appended> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_RECORD {
            return Err(Error::InvalidArgument("log record too large"));
        }
        let mut buf = Vec::with_capacity(frame::FRAME_HEADER + len);
        buf.extend_from_slice(&[0; frame::FRAME_HEADER]);
        for p in parts {
            buf.extend_from_slice(p);
        }
        let header = frame::header(&buf[frame::FRAME_HEADER..]);
        buf[..frame::FRAME_HEADER].copy_from_slice(&header);

        let mut g = self.lock();
        if g.poisoned {
            return Err(Error::Poisoned);
        }
        let max = self.segment_max.load(Ordering::Relaxed);
        if g.seg_len + buf.len() as u64 > max && g.seg_len > frame::FILE_HEADER as u64 {
            self.roll(&mut g)?;
        }
        let off = g.seg_len;
        if let Err(e) = g.file.write_all_at(&buf, off) {
            // A partial append leaves garbage after the last record; cut it so the next
            // append does not land behind it. If even that fails, the log's end is unknown.
            if let Err(cut) = g.file.set_len(off) {
                log::error!("cannot cut a failed append off the log ({cut}); refusing writes");
                g.poisoned = true;
            }
            return Err(e.into());
        }
        g.seg_len += buf.len() as u64;
        g.written += buf.len() as u64;
        g.records += 1;
        g.zeroed = g.zeroed.max(g.seg_len);
        if g.zeroed - g.seg_len < PREZERO / 2 {
            let to = g.seg_len + PREZERO;
            let zeros = vec![0u8; (to - g.zeroed) as usize];
            // Only an optimisation: on failure (a full disk) appends just grow the file.
            match g.file.write_all_at(&zeros, g.zeroed) {
                Ok(()) => g.zeroed = to,
                Err(e) => log::debug!("cannot zero-fill the log ahead: {e}"),
            }
        }
        if let Durability::Within(window) = durability {
            let due = Instant::now() + window;
            if g.deadline.is_none_or(|d| due < d) {
                g.deadline = Some(due);
                self.wake_flusher.notify_one();
            }
        }
        Ok(Appended {
            lsn: g.written,
            seg: g.seq,
            payload_off: off + frame::FRAME_HEADER as u64,
        })
    }

    /// Returns once everything up to `lsn` is on disk. Whoever finds no sync running
    /// becomes the leader and syncs for everyone who arrived before it started.
    pub fn sync_to(&self, lsn: u64) -> Result<()> {
        self.sync(lsn, true).map(|_| ())
    }

    /// `sync_to`, unless another thread's fsync is under way: then false at once, and
    /// the caller owes its reply (`when_durable`), to go out after a later fsync that
    /// covers it and the others owed meanwhile.
    pub fn sync_unless_busy(&self, lsn: u64) -> Result<bool> {
        self.sync(lsn, false)
    }

    fn sync(&self, lsn: u64, wait_for_others: bool) -> Result<bool> {
        let mut g = self.lock();
        loop {
            if g.poisoned {
                return Err(Error::Poisoned);
            }
            if g.durable >= lsn {
                return Ok(true);
            }
            if g.syncing {
                if !wait_for_others {
                    return Ok(false);
                }
                g = self.synced.wait(g).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            g.syncing = true;
            let (target, target_records) = (g.written, g.records);
            let file = g.file.clone();
            drop(g);
            let res = file.sync_data();
            g = self.lock();
            g.syncing = false;
            // A failure is logged by the disk's fence (engine::disk), which from now on
            // refuses every change.
            match res {
                Ok(()) => {
                    g.durable = g.durable.max(target);
                    g.durable_records = g.durable_records.max(target_records);
                    g.fsyncs += 1;
                }
                Err(_) => g.poisoned = true,
            }
            self.synced.notify_all();
            // Replies owed while this fsync ran mostly need the next one: the flusher's.
            if !g.owed.is_empty() {
                let paid = Self::take_paid(&mut g);
                self.wake_flusher.notify_one();
                drop(g);
                paid();
                g = self.lock();
            }
        }
    }

    /// Makes the log look as if another thread's fsync were under way (or not).
    #[cfg(test)]
    pub(super) fn hold_sync(&self, on: bool) {
        self.lock().syncing = on;
    }

    pub fn written(&self) -> u64 {
        self.lock().written
    }

    /// Where the log ends now, and the bytes appended since open up to there (what
    /// `sync_to` takes).
    pub fn position(&self) -> (Position, u64) {
        let g = self.lock();
        let at = Position {
            seg: g.seq,
            off: g.seg_len,
        };
        (at, g.written)
    }

    /// (bytes appended, records appended, fsyncs, records those fsyncs covered) since open.
    pub fn figures(&self) -> (u64, u64, u64, u64) {
        let g = self.lock();
        (g.written, g.records, g.fsyncs, g.durable_records)
    }

    /// Seals the current segment (fsynced) and starts the next; returns the new seq.
    pub fn rotate(&self) -> Result<u64> {
        let mut g = self.lock();
        self.roll(&mut g)?;
        Ok(g.seq)
    }

    fn roll(&self, g: &mut MutexGuard<'_, Inner>) -> Result<()> {
        if let Err(e) = Self::seal(g) {
            g.poisoned = true;
            return Err(e);
        }
        g.durable = g.written;
        let seq = g.seq + 1;
        g.file = Arc::from(create_segment(&*self.disk, &self.dir, seq)?);
        g.seq = seq;
        g.seg_len = frame::FILE_HEADER as u64;
        g.zeroed = g.seg_len;
        self.synced.notify_all();
        Ok(())
    }

    /// Cuts the zero-filled space off the segment and makes it durable: a sealed segment
    /// ends at its last record.
    fn seal(g: &mut MutexGuard<'_, Inner>) -> Result<()> {
        g.file.set_len(g.seg_len)?;
        g.zeroed = g.seg_len;
        g.file.sync_data()?;
        Ok(())
    }

    /// Deletes segments older than `seq` (their records are in a checkpoint).
    pub fn retire_before(&self, seq: u64, kept: &HashSet<u64>) -> Result<()> {
        self.sealed.forget(|s| *s < seq && !kept.contains(s));
        for old in list_segments(&*self.disk, &self.dir)? {
            if old < seq && !kept.contains(&old) {
                self.disk.remove(&self.dir.join(segment_name(old)))?;
            }
        }
        Ok(())
    }

    /// Reads bytes of a record's payload back (content not yet checkpointed).
    pub fn read_at(&self, seg: u64, off: u64, len: usize) -> Result<Vec<u8>> {
        let file = {
            let g = self.lock();
            if g.seq == seg {
                Some(g.file.clone())
            } else {
                None
            }
        };
        let file = match file {
            Some(f) => f,
            None => self.sealed(seg)?,
        };
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, off)?;
        Ok(buf)
    }

    /// Sealed segment `seg`, open for reading.
    fn sealed(&self, seg: u64) -> Result<Arc<dyn DiskFile>> {
        self.sealed.get(seg, || {
            let f = self
                .disk
                .open(&self.dir.join(segment_name(seg)), Open::Read)?;
            Ok(Arc::from(f))
        })
    }

    /// Segment names and sizes (up to the last record), oldest first.
    pub fn segments(&self) -> Vec<(u64, u64)> {
        list_segments(&*self.disk, &self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| Some((s, self.segment_len(s)?)))
            .collect()
    }

    /// A segment's length up to its last record (the active one runs on with zeros).
    pub fn segment_len(&self, seq: u64) -> Option<u64> {
        {
            let g = self.lock();
            if g.seq == seq {
                return Some(g.seg_len);
            }
        }
        self.disk
            .open(&self.dir.join(segment_name(seq)), Open::Read)
            .and_then(|f| f.len())
            .ok()
    }

    /// Bytes of a segment read as a file, up to its last record.
    pub fn read_segment(&self, seq: u64, off: u64, size: usize) -> Result<Vec<u8>> {
        let len = self.segment_len(seq).ok_or(Error::NotFound)?;
        let size = size.min(len.saturating_sub(off) as usize);
        if size == 0 {
            return Ok(Vec::new());
        }
        self.read_at(seq, off, size)
    }

    /// Calls `ack` once everything up to `lsn` is durable: at once if it is, else after
    /// the flusher's next fsync, which covers every reply owed by then.
    pub fn when_durable(&self, lsn: u64, ack: Ack) {
        let mut g = self.lock();
        if g.poisoned {
            drop(g);
            return ack(Err(Error::Poisoned));
        }
        if g.durable >= lsn {
            drop(g);
            return ack(Ok(()));
        }
        g.owed.push((lsn, ack));
        self.wake_flusher.notify_one();
    }

    /// Background loop that makes windowed records durable on time and sends the replies
    /// owed. Returns on shutdown.
    pub fn run_flusher(&self) {
        let mut g = self.lock();
        loop {
            if g.shutdown {
                return;
            }
            let now = Instant::now();
            let due = g.deadline.filter(|&d| d > now && g.owed.is_empty());
            match (g.deadline, due) {
                (None, _) if g.owed.is_empty() => {
                    g = self.wake_flusher.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                (_, Some(due)) => {
                    g = self
                        .wake_flusher
                        .wait_timeout(g, due - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                _ => {
                    g.deadline = None;
                    let target = g.written;
                    drop(g);
                    if let Err(e) = self.sync_to(target) {
                        log::error!("background log flush failed: {e}");
                    }
                    g = self.lock();
                    let paid = Self::take_paid(&mut g);
                    drop(g);
                    paid();
                    g = self.lock();
                }
            }
        }
    }

    /// Takes the replies the log's state settles (durable, or never to be: poisoned);
    /// the returned call sends them, after the lock is released.
    fn take_paid(g: &mut MutexGuard<'_, Inner>) -> impl FnOnce() + use<> {
        let (durable, poisoned) = (g.durable, g.poisoned);
        let (paid, owed) = std::mem::take(&mut g.owed)
            .into_iter()
            .partition(|(lsn, _)| poisoned || *lsn <= durable);
        g.owed = owed;
        move || {
            for (_, ack) in paid {
                ack(if poisoned {
                    Err(Error::Poisoned)
                } else {
                    Ok(())
                });
            }
        }
    }

    /// Makes everything durable, seals the segment, sends the replies owed and stops the
    /// flusher.
    pub fn shutdown(&self) -> Result<()> {
        let target = self.written();
        let mut res = self.sync_to(target);
        let mut g = self.lock();
        if res.is_ok() && !g.poisoned {
            res = Self::seal(&mut g);
        }
        g.shutdown = true;
        self.wake_flusher.notify_all();
        let paid = Self::take_paid(&mut g);
        drop(g);
        paid();
        res
    }
}

fn create_segment(disk: &dyn Disk, dir: &Path, seq: u64) -> Result<Box<dyn DiskFile>> {
    let path = dir.join(segment_name(seq));
    let file = disk.open(&path, Open::Create)?;
    file.write_all_at(&frame::file_header(MAGIC, VERSION), 0)?;
    file.sync_all()?;
    // The new name must survive a crash too.
    disk.sync_dir(dir)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn collect(dir: &Path) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        replay(&disk::Real, dir, 0, None, |_, _, p| {
            out.push(p.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    fn records(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("record number {i} ").repeat(i % 5 + 1).into_bytes())
            .collect()
    }

    fn write_log(dir: &Path, recs: &[Vec<u8>]) -> u64 {
        let wal = Wal::open(disk::real(), dir, 1 << 30).expect("open");
        for r in recs {
            let a = wal.append(&[r], Durability::Sync).expect("append");
            wal.sync_to(a.lsn).expect("sync");
        }
        wal.shutdown().expect("shutdown");
        list_segments(&disk::Real, dir).expect("list")[0]
    }

    #[test]
    fn records_come_back_in_order_across_segments() {
        let tmp = tempfile::tempdir().expect("tmp");
        let wal = Wal::open(disk::real(), tmp.path(), 200).expect("open");
        let recs = records(40);
        for r in &recs {
            wal.append(&[r], Durability::Within(Duration::from_millis(5)))
                .expect("append");
        }
        wal.shutdown().expect("shutdown");
        assert!(list_segments(&disk::Real, tmp.path()).expect("list").len() > 3);
        assert_eq!(collect(tmp.path()).expect("replay"), recs);
    }

    #[test]
    fn cut_at_every_byte_recovers_a_prefix() {
        let tmp = tempfile::tempdir().expect("tmp");
        let recs = records(6);
        let seq = write_log(tmp.path(), &recs);
        let path = tmp.path().join(segment_name(seq));
        let full = fs::read(&path).expect("read");
        // Cut inside each of the last records, at every byte offset.
        let tail_start = full.len() - recs[3..].iter().map(|r| r.len() + 8).sum::<usize>() - 1;
        for cut in (0..frame::FILE_HEADER).chain(tail_start..=full.len()) {
            fs::write(&path, &full[..cut]).expect("write");
            for _ in 0..2 {
                // Recovery twice gives the same answer: the cut is made durable.
                let got = collect(tmp.path()).expect("a torn tail is not an error");
                assert!(recs.starts_with(&got), "cut {cut}: not a prefix");
                let whole = recs
                    .iter()
                    .scan(frame::FILE_HEADER, |end, r| {
                        *end += r.len() + 8;
                        Some(*end)
                    })
                    .filter(|end| *end <= cut)
                    .count();
                assert_eq!(got.len(), whole, "cut {cut}");
            }
        }
    }

    #[test]
    fn damage_in_the_middle_stops_recovery() {
        let tmp = tempfile::tempdir().expect("tmp");
        let recs = records(5);
        let seq = write_log(tmp.path(), &recs);
        let path = tmp.path().join(segment_name(seq));
        let full = fs::read(&path).expect("read");
        let first_payload = frame::FILE_HEADER + frame::FRAME_HEADER;
        for at in first_payload..first_payload + recs[0].len() {
            let mut bad = full.clone();
            bad[at] ^= 0x40;
            fs::write(&path, &bad).expect("write");
            match collect(tmp.path()) {
                Err(Error::Corrupt(msg)) => assert!(msg.contains("refusing")),
                other => panic!("flip at {at}: expected corruption, got {other:?}"),
            }
        }
    }

    #[test]
    fn damage_in_the_last_record_is_a_torn_tail() {
        let tmp = tempfile::tempdir().expect("tmp");
        let recs = records(5);
        let seq = write_log(tmp.path(), &recs);
        let path = tmp.path().join(segment_name(seq));
        let mut bad = fs::read(&path).expect("read");
        let last = bad.len() - 2;
        bad[last] ^= 1;
        fs::write(&path, &bad).expect("write");
        assert_eq!(collect(tmp.path()).expect("tail"), recs[..4].to_vec());
        // Garbage appended after whole records is a torn tail too.
        let mut f = fs::read(&path).expect("read");
        f.extend_from_slice(&[0xAB; 13]);
        fs::write(&path, &f).expect("write");
        assert_eq!(collect(tmp.path()).expect("garbage"), recs[..4].to_vec());
    }

    /// Megabytes of random bytes after the last record (a damaged disk, a wrong file
    /// copied over the end) end in bounded work: recovery keeps the whole records or
    /// refuses to guess, in well under a second (without a bound on the search: minutes).
    #[test]
    fn megabytes_of_garbage_after_the_last_record_end_in_bounded_work() {
        let tmp = tempfile::tempdir().expect("tmp");
        let recs = records(5);
        let seq = write_log(tmp.path(), &recs);
        let path = tmp.path().join(segment_name(seq));
        let mut f = fs::read(&path).expect("read");
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        f.extend((0..48 << 20).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
        fs::write(&path, &f).expect("write");
        match collect(tmp.path()) {
            Ok(got) => assert_eq!(got, recs),
            Err(e) => assert!(matches!(e, Error::Corrupt(_)), "{e}"),
        }
    }

    proptest::proptest! {
        /// Any damage to a log (bytes overwritten anywhere, the file cut, garbage after
        /// it): recovery gives a prefix of the records written, or refuses with a
        /// corruption error; never a panic, never a record that was not written.
        #[test]
        fn any_damage_recovers_a_prefix_or_is_refused(
            damage in crate::engine::testutil::damage(4000),
        ) {
            let tmp = tempfile::tempdir().expect("tmp");
            let recs = records(12);
            let seq = write_log(tmp.path(), &recs);
            let path = tmp.path().join(segment_name(seq));
            let mut f = fs::read(&path).expect("read");
            damage.apply(&mut f);
            fs::write(&path, &f).expect("write");
            match collect(tmp.path()) {
                Ok(got) => proptest::prop_assert!(recs.starts_with(&got), "not a prefix"),
                Err(e) => proptest::prop_assert!(matches!(e, Error::Corrupt(_)), "{}", e),
            }
        }
    }

    #[test]
    fn a_crash_leaves_zeros_after_the_last_record_and_loses_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let recs = records(30);
        let wal = Wal::open(disk::real(), tmp.path(), 1 << 30).expect("open");
        for r in &recs {
            let a = wal.append(&[r], Durability::Sync).expect("append");
            wal.sync_to(a.lsn).expect("sync");
        }
        let seq = wal.lock().seq;
        let used = wal.lock().seg_len as usize;
        drop(wal); // no shutdown: as after kill -9
        let path = tmp.path().join(segment_name(seq));
        let full = fs::read(&path).expect("read");
        assert!(
            full.len() >= used + PREZERO as usize / 2,
            "space ahead is zero-filled"
        );
        assert!(full[used..].iter().all(|&b| b == 0));
        assert_eq!(collect(tmp.path()).expect("replay"), recs);
        assert_eq!(fs::read(&path).expect("read"), full, "zeros are not damage");

        // A record torn inside the zero-filled space: the whole ones before it come back.
        let last = recs.last().map_or(0, |r| r.len() + frame::FRAME_HEADER);
        for cut in (used - last..used).step_by(3) {
            let mut torn = full.clone();
            torn[cut..used].fill(0);
            fs::write(&path, &torn).expect("write");
            assert_eq!(
                collect(tmp.path()).expect("torn"),
                recs[..recs.len() - 1].to_vec(),
                "cut {cut}"
            );
        }
        // A whole record after zeros is damage, not an end.
        let mut hole = full.clone();
        hole[frame::FILE_HEADER..frame::FILE_HEADER + recs[0].len() + 8].fill(0);
        fs::write(&path, &hole).expect("write");
        assert!(matches!(collect(tmp.path()), Err(Error::Corrupt(_))));
    }

    #[test]
    fn group_commit_shares_fsyncs_between_threads() {
        let tmp = tempfile::tempdir().expect("tmp");
        let wal = Arc::new(Wal::open(disk::real(), tmp.path(), 1 << 30).expect("open"));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let rec = format!("{t}-{i}");
                        let a = wal
                            .append(&[rec.as_bytes()], Durability::Sync)
                            .expect("append");
                        wal.sync_to(a.lsn).expect("sync");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("join");
        }
        wal.shutdown().expect("shutdown");
        assert_eq!(collect(tmp.path()).expect("replay").len(), 400);
    }

    #[test]
    fn replies_owed_meanwhile_share_one_fsync_and_come_after_it() {
        let tmp = tempfile::tempdir().expect("tmp");
        let wal = Arc::new(Wal::open(disk::real(), tmp.path(), 1 << 30).expect("open"));
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..8 {
            let rec = format!("record {i}");
            let a = wal
                .append(
                    &[rec.as_bytes()],
                    Durability::Within(Duration::from_secs(60)),
                )
                .expect("append");
            let (tx, w) = (tx.clone(), wal.clone());
            wal.when_durable(
                a.lsn,
                Box::new(move |res| {
                    let _ = tx.send((res, w.lock().durable >= a.lsn));
                }),
            );
        }
        // Owed before the flusher runs: its first fsync pays them all.
        let flusher = {
            let wal = wal.clone();
            std::thread::spawn(move || wal.run_flusher())
        };
        for _ in 0..8 {
            let (res, durable) = rx.recv_timeout(Duration::from_secs(10)).expect("a reply");
            res.expect("synced");
            assert!(durable, "a reply went out before its record was durable");
        }
        assert_eq!(wal.figures().2, 1, "one fsync for the eight replies");
        // Owed once durable: sent at once, by the caller.
        let (tx2, rx2) = std::sync::mpsc::channel();
        wal.when_durable(
            wal.written(),
            Box::new(move |res| {
                let _ = tx2.send(res);
            }),
        );
        rx2.try_recv().expect("sent at once").expect("durable");
        wal.shutdown().expect("shutdown");
        flusher.join().expect("flusher");
    }

    #[test]
    fn a_reply_owed_when_the_fsync_fails_reports_the_failure() {
        let sim = disk::sim::Sim::default();
        let wal =
            Arc::new(Wal::open(Arc::new(sim.clone()), Path::new("/log"), 1 << 30).expect("open"));
        let a = wal
            .append(
                &[b"never durable"],
                Durability::Within(Duration::from_secs(60)),
            )
            .expect("append");
        let (tx, rx) = std::sync::mpsc::channel();
        wal.when_durable(
            a.lsn,
            Box::new(move |res| {
                let _ = tx.send(res);
            }),
        );
        sim.cut_at(sim.points() + 1);
        let flusher = {
            let wal = wal.clone();
            std::thread::spawn(move || wal.run_flusher())
        };
        let res = rx.recv_timeout(Duration::from_secs(10)).expect("a reply");
        assert!(matches!(res, Err(Error::Poisoned)), "{res:?}");
        let (tx2, rx2) = std::sync::mpsc::channel();
        wal.when_durable(
            a.lsn,
            Box::new(move |res| {
                let _ = tx2.send(res);
            }),
        );
        let later = rx2.try_recv().expect("refused at once");
        assert!(matches!(later, Err(Error::Poisoned)), "{later:?}");
        let _ = wal.shutdown();
        flusher.join().expect("flusher");
    }

    #[test]
    fn windowed_records_become_durable_without_a_sync_call() {
        let tmp = tempfile::tempdir().expect("tmp");
        let wal = Arc::new(Wal::open(disk::real(), tmp.path(), 1 << 30).expect("open"));
        let flusher = {
            let wal = wal.clone();
            std::thread::spawn(move || wal.run_flusher())
        };
        let a = wal
            .append(&[b"soon"], Durability::Within(Duration::from_millis(20)))
            .expect("append");
        let start = Instant::now();
        while wal.lock().durable < a.lsn {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "flusher never synced"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        wal.shutdown().expect("shutdown");
        flusher.join().expect("join");
    }
}
