//! Reads of committed content: pinned versions, through the cache, with read-ahead.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::cache::{Key, WHOLE};
use super::codec::Tier;
use super::extents::{Part, Piece};
use super::store::Pins;
use super::tree::{Kind, Location};
use super::{Data, Engine, PassingFile, Snapshot, lock, readahead, store};
use crate::error::{Error, Result};

/// Runs a read of what a lookup found once more if its file was gone: a checkpoint may
/// have moved the content between the lookup and the read.
fn again_if_moved<T>(read: impl Fn() -> Result<T>) -> Result<T> {
    match read() {
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => read(),
        other => other,
    }
}

/// Content held whole (in a log segment or a pack), not chunked nor in pieces.
fn is_small(loc: &Location) -> bool {
    !matches!(loc, Location::Blob { .. } | Location::Extents(_))
}

impl Engine {
    /// Reads committed content, or the draft when `through_draft` (a writer's own view).
    pub fn read(&self, ino: u64, off: u64, size: usize, through_draft: bool) -> Result<Data> {
        if through_draft {
            let draft = lock(&self.drafts).map.get(&ino).cloned();
            if let Some(d) = draft {
                let mut d = lock(&d);
                if off >= d.base_len {
                    return d.read(off, size).map(Data::Owned);
                }
                // Below the draft's own bytes: the committed ones it is based on.
                let in_base = (d.base_len - off).min(size as u64) as usize;
                let mut out = self.read_base(ino, d.base_version, off, in_base)?;
                if out.len() == in_base && in_base < size {
                    let own = d.base_len;
                    out.extend(d.read(own, size - in_base)?);
                }
                return Ok(Data::Owned(out));
            }
        }
        again_if_moved(|| self.read_committed(ino, off, size))
    }

    /// Reads committed version `version` of `ino`, which a draft is based on (the commits
    /// that could replace it go through that draft, which then moves on to the new one).
    pub(super) fn read_base(
        &self,
        ino: u64,
        version: u64,
        off: u64,
        size: usize,
    ) -> Result<Vec<u8>> {
        again_if_moved(|| {
            let snap = {
                let tree = lock(&self.tree);
                let n = tree.get(ino)?;
                if n.version != version {
                    return Err(changed_underneath());
                }
                Snapshot::of(n)
            };
            self.read_version(&snap, off, size)
        })
        .map(|d| d.to_vec())
    }

    /// Directory `dir`'s entries as (listing position, inode), at one moment and without
    /// looking any inode up: what a reader passing over a large directory then reads in
    /// slices (`read_files_passing`).
    pub fn listing(&self, dir: u64) -> Result<Vec<(u64, u64)>> {
        let tree = lock(&self.tree);
        Ok(tree.dir(dir)?.order.iter().map(|(&c, &i)| (c, i)).collect())
    }

    /// The whole committed contents of the files `listed` in `dir` (by `listing`) and
    /// named as `wanted` accepts, in listing order, for a reader passing over many files once
    /// (a query's scan). From the cache when there, but a small content read from disk
    /// is not kept in it, so that a scan of more than the cache holds does not evict what
    /// is in use for what is read once. The tree and the cache are locked once for the
    /// slice, and each file's node is looked up once: a scan on two threads would
    /// otherwise meet at those locks, and wait on memory, for every file.
    pub fn read_files_passing(
        &self,
        dir: u64,
        listed: &[(u64, u64)],
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<PassingFile>> {
        let (names, snaps): (Vec<Arc<[u8]>>, Vec<Snapshot>) = {
            let tree = lock(&self.tree);
            listed
                .iter()
                .filter_map(|&(cookie, ino)| {
                    let n = tree.get(ino).ok()?;
                    // A file renamed since the listing is read where it is now, as listed:
                    // the listing is the moment the reader sees.
                    let name = tree.entry_name(n, dir, cookie).unwrap_or(&n.meta.name);
                    (n.meta.kind == Kind::File && wanted(name))
                        .then(|| (name.clone(), Snapshot::of(n)))
                })
                .unzip()
        };
        let cached: Vec<Option<Arc<Vec<u8>>>> = {
            let mut cache = lock(&self.cache);
            snaps
                .iter()
                .map(|s| {
                    let key = Key {
                        ino: s.ino,
                        version: s.version,
                        chunk: WHOLE,
                    };
                    is_small(&s.loc).then(|| cache.get(&key, s.tier)).flatten()
                })
                .collect()
        };
        self.counters
            .reads
            .fetch_add(snaps.len() as u64, Ordering::Relaxed);
        let mut spans = self.read_pack_spans(&snaps, &cached);
        let contents = snaps
            .into_iter()
            .zip(cached)
            .enumerate()
            .map(|(i, (snap, cached))| {
                if let Some(c) = cached {
                    let len = c.len();
                    return Ok(Data::Shared(c, 0..len));
                }
                if let Some(Ok(d)) = spans[i].take() {
                    return Ok(Data::Owned(d));
                }
                if !is_small(&snap.loc) {
                    return self.read_version(&snap, 0, snap.size as usize);
                }
                match self.load(&snap.loc, snap.size) {
                    Ok(d) => Ok(Data::Owned(d)),
                    // Moved by a checkpoint since the snapshot: read it where it is now.
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        self.read_committed(snap.ino, 0, snap.size as usize)
                    }
                    Err(e) => Err(e),
                }
            });
        Ok(names.into_iter().zip(contents).collect())
    }

    /// The contents of `snaps` in packs and not `cached`, read a span of neighbouring
    /// entries at a time (`Store::read_pack_entries`): what a checkpoint packed in listing
    /// order lies together. `None` where not read so (nor where a span failed: such an
    /// entry is read on its own, which tells its error or finds where it moved).
    fn read_pack_spans(
        &self,
        snaps: &[Snapshot],
        cached: &[Option<Arc<Vec<u8>>>],
    ) -> Vec<Option<Result<Vec<u8>>>> {
        /// Entries further apart than this are not read in one span: the bytes between
        /// would be read for nothing.
        const GAP: u64 = 512;
        let mut out: Vec<Option<Result<Vec<u8>>>> = snaps.iter().map(|_| None).collect();
        let mut packed: Vec<(Tier, u64, u64, u32, u64, usize)> = snaps
            .iter()
            .zip(cached)
            .enumerate()
            .filter_map(|(i, (s, c))| match s.loc {
                Location::Pack { tier, id, off, len } if c.is_none() => {
                    Some((tier, id, off, len, s.size, i))
                }
                _ => None,
            })
            .collect();
        packed.sort_unstable();
        let mut rest = &packed[..];
        while let Some(&(tier, id, start, ..)) = rest.first() {
            let mut end = start;
            let n = rest
                .iter()
                .take_while(|&&(t, i, off, len, ..)| {
                    let close = t == tier
                        && i == id
                        && off >= end
                        && off - end <= GAP
                        && off + len as u64 - start <= store::MAX_SPAN as u64;
                    if close {
                        end = off + len as u64;
                    }
                    close
                })
                .count()
                .max(1);
            let (span, after) = rest.split_at(n);
            rest = after;
            let entries: Vec<(u64, u32, u64)> = span
                .iter()
                .map(|&(.., off, len, size, _)| (off, len, size))
                .collect();
            if let Ok(read) = self.store.read_pack_entries(tier, id, &entries) {
                for (&(.., i), r) in span.iter().zip(read) {
                    out[i] = Some(r);
                }
            }
        }
        out
    }

    fn read_committed(&self, ino: u64, off: u64, size: usize) -> Result<Data> {
        let snap = {
            let tree = lock(&self.tree);
            let n = tree.get(ino)?;
            if n.meta.kind == Kind::Dir {
                return Err(Error::IsDir);
            }
            Snapshot::of(n)
        };
        self.read_version(&snap, off, size)
    }

    /// Pins the committed version of a file for a reader: small contents are held in
    /// memory, blobs are kept from deletion, so that every read of one open sees one
    /// version (close-to-open consistency) even if a commit or checkpoint comes between.
    /// Of a file in pieces, the blobs are pinned and the small pieces held.
    pub fn snapshot(&self, ino: u64) -> Result<Snapshot> {
        for _ in 0..3 {
            let mut snap = {
                let tree = lock(&self.tree);
                Snapshot::of(tree.get(ino)?)
            };
            let blobs = blobs_of(&snap.loc);
            for b in &blobs {
                self.pins.pin(*b);
            }
            // Pinned after the lookup: make sure a checkpoint did not retire one between.
            if !blobs.iter().all(|&(t, id)| self.store.blob(t, id).is_ok()) {
                self.release_snapshot(&snap);
                continue;
            }
            let held = match &snap.loc {
                Location::Blob { .. } => return Ok(snap),
                Location::Extents(pieces) => pieces
                    .iter()
                    .map(|p| match p.part {
                        Part::Blob { .. } => Ok(None),
                        _ => self.part_whole(p, snap.tier).map(Some),
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(|h| snap.held = Some(h.into())),
                loc => self
                    .whole(ino, snap.tier, snap.version, loc, snap.size)
                    .map(|w| snap.whole = Some(w)),
            };
            match held {
                Ok(()) => return Ok(snap),
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.release_snapshot(&snap);
                    continue;
                }
                Err(e) => {
                    self.release_snapshot(&snap);
                    return Err(e);
                }
            }
        }
        Err(Error::Io(std::io::Error::other(
            "content kept moving; try again",
        )))
    }

    pub fn release_snapshot(&self, snap: &Snapshot) {
        release_pins(&self.pins, snap);
    }

    /// Reads a range of one version of a file.
    pub fn read_version(&self, snap: &Snapshot, off: u64, size: usize) -> Result<Data> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let Snapshot {
            ino,
            version,
            ref loc,
            size: len,
            ..
        } = *snap;
        if off >= len || size == 0 {
            return Ok(Data::Owned(Vec::new()));
        }
        let end = len.min(off + size as u64);
        match *loc {
            Location::Blob { tier, id, .. } => {
                let key = |chunk| Key {
                    ino,
                    version,
                    chunk,
                };
                self.read_blob(key, (tier, id), len, off..end)
            }
            Location::Extents(ref pieces) => {
                let mut out = Vec::with_capacity((end - off) as usize);
                let mut at = 0;
                for (i, p) in pieces.iter().enumerate() {
                    let (start, stop) = (at, at + p.len);
                    at = stop;
                    if stop <= off {
                        continue;
                    }
                    if start >= end {
                        break;
                    }
                    let range = off.max(start) - start..end.min(stop) - start;
                    let held = snap.held.as_ref().and_then(|h| h.get(i).cloned());
                    out.extend_from_slice(&self.read_piece(p, snap.tier, held.flatten(), range)?);
                }
                Ok(Data::Owned(out))
            }
            _ => {
                let whole = match &snap.whole {
                    Some(w) => w.clone(),
                    None => self.whole(ino, snap.tier, version, loc, len)?,
                };
                Ok(Data::Shared(whole, off as usize..end as usize))
            }
        }
    }

    /// `range` of piece `p` of a file in `tier`: a blob's chunks through the cache, a small
    /// piece from `held` or whole through the cache, keyed by where the piece lies.
    pub(super) fn read_piece(
        &self,
        p: &Piece,
        tier: Tier,
        held: Option<Arc<Vec<u8>>>,
        range: std::ops::Range<u64>,
    ) -> Result<Data> {
        if let Part::Blob { tier, id } = p.part {
            return self.read_blob(|chunk| Key::part(p.part, chunk), (tier, id), p.len, range);
        }
        let whole = match held {
            Some(w) => w,
            None => self.part_whole(p, tier)?,
        };
        if whole.len() < range.end as usize {
            return Err(short_piece(p));
        }
        Ok(Data::Shared(
            whole,
            range.start as usize..range.end as usize,
        ))
    }

    /// Reads `range` of a blob holding (at least) `len` bytes, chunk by chunk through the
    /// cache under `key(chunk)`, reading ahead of a reader moving forward.
    fn read_blob(
        &self,
        key: impl Fn(u32) -> Key,
        (tier, id): (Tier, u64),
        len: u64,
        range: std::ops::Range<u64>,
    ) -> Result<Data> {
        let (off, end) = (range.start, range.end);
        let chunks = u32::try_from(len.div_ceil(store::CHUNK as u64)).unwrap_or(u32::MAX);
        let mut out = Vec::new();
        let mut reader = None;
        let mut pos = off;
        while pos < end {
            let idx = (pos / store::CHUNK as u64) as u32;
            let key = key(idx);
            let mut cached = lock(&self.cache).get(&key, tier);
            if cached.is_none() && self.readahead.wait(&key) {
                cached = lock(&self.cache).get(&key, tier);
            }
            let chunk = match cached {
                Some(c) => c,
                None => {
                    if reader.is_none() {
                        reader = Some(self.store.blob(tier, id)?);
                    }
                    let r = reader.as_ref().ok_or(Error::BadHandle)?;
                    let c = Arc::new(r.chunk(idx as usize)?);
                    lock(&self.cache).put(key, c.clone());
                    c
                }
            };
            self.readahead
                .after_read(key, chunks, (tier, id), |k| lock(&self.cache).contains(k));
            let start = (pos - idx as u64 * store::CHUNK as u64) as usize;
            let take = ((end - pos) as usize).min(chunk.len().saturating_sub(start));
            if take == 0 {
                break;
            }
            if pos == off && pos + take as u64 == end {
                // The whole read lies in one chunk: hand out the cached chunk.
                return Ok(Data::Shared(chunk, start..start + take));
            }
            out.reserve((end - off) as usize);
            out.extend_from_slice(&chunk[start..start + take]);
            pos += take as u64;
        }
        Ok(Data::Owned(out))
    }

    /// Whole small content (log or pack), through the cache.
    fn whole(
        &self,
        ino: u64,
        tier: Tier,
        version: u64,
        loc: &Location,
        len: u64,
    ) -> Result<Arc<Vec<u8>>> {
        let key = Key {
            ino,
            version,
            chunk: WHOLE,
        };
        if let Some(c) = lock(&self.cache).get(&key, tier) {
            return Ok(c);
        }
        let data = Arc::new(self.load(loc, len)?);
        lock(&self.cache).put(key, data.clone());
        Ok(data)
    }

    /// A small piece's whole part (log or pack), through the cache: pieces never change,
    /// so every version sharing one shares its entry.
    fn part_whole(&self, p: &Piece, tier: Tier) -> Result<Arc<Vec<u8>>> {
        let key = Key::part(p.part, WHOLE);
        if let Some(c) = lock(&self.cache).get(&key, tier) {
            return Ok(c);
        }
        let data = Arc::new(self.load(&p.part.location(), p.size)?);
        lock(&self.cache).put(key, data.clone());
        Ok(data)
    }

    pub(super) fn load(&self, loc: &Location, len: u64) -> Result<Vec<u8>> {
        match *loc {
            Location::Empty => Ok(Vec::new()),
            Location::Wal { seg, off } => self.wal.read_at(seg, off, len as usize),
            Location::Pack {
                tier,
                id,
                off,
                len: flen,
            } => self.store.read_pack(tier, id, off, flen, len),
            Location::Blob { tier, id, .. } => {
                let r = self.store.blob(tier, id)?;
                let mut out = Vec::with_capacity(len as usize);
                for i in 0..r.chunks() {
                    out.extend(r.chunk(i)?);
                }
                out.truncate(len as usize);
                Ok(out)
            }
            Location::Extents(ref pieces) => {
                let mut out = Vec::with_capacity(len as usize);
                for p in pieces.iter() {
                    let part = self.load(&p.part.location(), p.size)?;
                    out.extend_from_slice(
                        part.get(..p.len as usize).ok_or_else(|| short_piece(p))?,
                    );
                }
                Ok(out)
            }
        }
    }

    /// Fetches chunks queued by `Readahead::after_read` into the cache, until shutdown.
    pub(super) fn run_readahead(&self, jobs: Receiver<readahead::Job>) {
        loop {
            let job = match jobs.recv_timeout(Duration::from_millis(500)) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) if !self.stopped.load(Ordering::SeqCst) => {
                    continue;
                }
                Err(_) => {
                    self.readahead.stop();
                    return;
                }
            };
            match job {
                readahead::Job::Chunk { key, tier, id } => {
                    // A failure here (the blob retired after its last reader left, a bad
                    // chunk) is left for a reader to meet and report, if one still wants
                    // the chunk.
                    if let Ok(chunk) = self
                        .store
                        .blob(tier, id)
                        .and_then(|b| b.chunk(key.chunk as usize))
                    {
                        lock(&self.cache).put(key, Arc::new(chunk));
                    }
                    self.readahead.done(&key);
                }
                // Likewise: a file gone or moved meanwhile is simply not fetched.
                readahead::Job::File(ino) => {
                    if let Ok(true) = self.fetch_whole(ino) {
                        self.counters.prefetched.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Puts the committed content of a small file into the cache unless it is there,
    /// without counting a hit or a miss (nobody asked for it yet). True when it read it.
    /// Blobs and files in pieces are read by chunk when asked for, and left alone here.
    fn fetch_whole(&self, ino: u64) -> Result<bool> {
        let snap = {
            let tree = lock(&self.tree);
            let n = tree.get(ino)?;
            if n.meta.kind != Kind::File {
                return Ok(false);
            }
            Snapshot::of(n)
        };
        if matches!(
            snap.loc,
            Location::Blob { .. } | Location::Extents(_) | Location::Empty
        ) {
            return Ok(false);
        }
        let key = Key {
            ino,
            version: snap.version,
            chunk: WHOLE,
        };
        if lock(&self.cache).contains(&key) {
            return Ok(false);
        }
        let data = Arc::new(self.load(&snap.loc, snap.size)?);
        lock(&self.cache).put(key, data);
        Ok(true)
    }

    /// Asks the read-ahead worker to bring `ino`'s content into the cache.
    pub fn prefetch(&self, ino: u64) {
        self.readahead.prefetch(ino);
    }
}

/// Unpins the blobs `snap` pinned (`Engine::snapshot`).
pub(super) fn release_pins(pins: &Pins, snap: &Snapshot) {
    for b in blobs_of(&snap.loc) {
        pins.unpin(b);
    }
}

/// The blobs a content reads from.
fn blobs_of(loc: &Location) -> Vec<(Tier, u64)> {
    match loc {
        Location::Blob { tier, id } => vec![(*tier, *id)],
        Location::Extents(pieces) => pieces
            .iter()
            .filter_map(|p| match p.part {
                Part::Blob { tier, id } => Some((tier, id)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn short_piece(p: &Piece) -> Error {
    Error::Corrupt(format!(
        "a piece of {} bytes holds fewer than {}",
        p.size, p.len
    ))
}

/// A draft's base is no longer the committed version (nothing should allow it).
pub(super) fn changed_underneath() -> Error {
    Error::Io(std::io::Error::other(
        "the committed version a draft was based on changed underneath it",
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::engine::cache::Key;
    use crate::engine::codec::Tier;
    use crate::engine::testutil::{file, get, new_universe, put};
    use crate::engine::{CommitAt, Engine, Settings, store};

    /// The warm tier's cache (hits, misses) during `read`.
    fn hits_and_misses(e: &Engine, read: impl FnOnce()) -> (u64, u64) {
        let (h0, m0) = e.counters().cache_by_tier[Tier::Warm as usize];
        read();
        let (h1, m1) = e.counters().cache_by_tier[Tier::Warm as usize];
        (h1 - h0, m1 - m0)
    }

    #[test]
    fn what_is_written_is_read_back_from_the_cache() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Warm);
        let content =
            |n: usize, salt: u8| -> Vec<u8> { (0..n).map(|i| (i % 241) as u8 ^ salt).collect() };
        let chunks = |n: usize| n.div_ceil(store::CHUNK) as u64;
        // Streamed into its blob as written (past `spill_at`), and coded at the commit
        // (a draft held in memory, past `inline_max`).
        let big = 2 * store::CHUNK + 777;
        for (name, len) in [("streamed", big), ("staged", 3000)] {
            let f = file(&e, name);
            let data = content(len, 1);
            put(&e, f, &data);
            let (hits, misses) = hits_and_misses(&e, || assert!(get(&e, f) == data));
            assert_eq!((hits, misses), (chunks(len), 0), "{name}");
        }
        // Appended to a larger file: a new piece, whose chunks are cached as written.
        let f = file(&e, "appended");
        let base = content(big, 2);
        put(&e, f, &base);
        let more = content(store::CHUNK + 3, 3);
        e.open_handle(f, true).expect("open");
        e.write(f, base.len() as u64, &more).expect("append");
        e.commit(f, CommitAt::Close, &|_, _| Ok(()))
            .expect("commit");
        e.close_handle(f, true);
        let read_more = || {
            let got = e
                .read(f, base.len() as u64, more.len(), false)
                .expect("read");
            assert!(*got == more[..]);
        };
        let (hits, misses) = hits_and_misses(&e, read_more);
        assert_eq!((hits, misses), (chunks(more.len()), 0));
        // Evicted, the chunks are read from their blobs, and are the same.
        e.set_settings(Settings {
            cache_budget: 0,
            ..e.settings()
        });
        let (hits, misses) = hits_and_misses(&e, read_more);
        assert_eq!((hits, misses), (0, chunks(more.len())));
        assert!(get(&e, f) == [base, more].concat());
    }

    #[test]
    fn read_ahead_serves_sequential_readers_the_right_bytes_through_commits() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = Arc::new(new_universe(tmp.path(), Tier::Warm));
        e.start().expect("start");
        let f = file(&e, "f");
        let versions: Vec<Vec<u8>> = (0..3u8)
            .map(|v| {
                (0..6 * store::CHUNK + 5)
                    .map(|i| (i % 251) as u8 ^ v)
                    .collect()
            })
            .collect();
        put(&e, f, &versions[0]);
        let readers: Vec<_> = (0..3)
            .map(|t| {
                let (e, versions) = (e.clone(), versions.clone());
                std::thread::spawn(move || {
                    for _ in 0..4 {
                        let snap = e.snapshot(f).expect("snapshot");
                        let mut got = Vec::new();
                        // Reader 0 reads in 1 MiB steps, the others in odd-sized ones.
                        let step = if t == 0 { store::CHUNK } else { 300_007 * t };
                        loop {
                            let d = e.read_version(&snap, got.len() as u64, step).expect("read");
                            if d.is_empty() {
                                break;
                            }
                            got.extend_from_slice(&d);
                        }
                        e.release_snapshot(&snap);
                        assert!(versions.contains(&got), "reader {t} saw a mix");
                    }
                })
            })
            .collect();
        for v in versions.iter().cycle().skip(1).take(4) {
            put(&e, f, v);
            e.checkpoint().expect("checkpoint");
        }
        for r in readers {
            r.join().expect("reader");
        }
        e.shutdown().expect("shutdown");
        assert!(!e.readahead.wait(&Key {
            ino: f,
            version: 0,
            chunk: 1
        }));
    }

    #[test]
    fn a_reader_keeps_its_version_across_commits_and_checkpoints() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Warm);
        let f = file(&e, "f");
        let v1: Vec<u8> = vec![1; 3 * store::CHUNK];
        put(&e, f, &v1);
        let snap = e.snapshot(f).expect("snapshot");
        put(&e, f, &[2; 10]);
        e.checkpoint().expect("checkpoint");
        assert_eq!(
            e.read_version(&snap, 0, 1 << 30)
                .expect("pinned read")
                .to_vec(),
            v1
        );
        e.release_snapshot(&snap);
        e.checkpoint().expect("checkpoint");
        assert_eq!(get(&e, f), vec![2; 10]);
    }
}
