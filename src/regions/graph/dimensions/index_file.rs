//! `quantum_graph/dimensions/coordinate_index.btree` (`ISLDIMX1`, version 1): the
//! coordinates of every node, kept as an append-only log of the index's changes so that
//! a node commit extends the file by one entry instead of rewriting it. Loading replays
//! the log into an `Index` (the graph is rebuilt in memory; only vectors are stored).
//! Layout, byte by byte, in FORMAT.md; in short:
//!
//! ```text
//! header (12: "ISLDIMX1" | u16 version = 1 | u16 0)
//! entry* , each a frame { u32 len | u32 crc32(payload) | payload }:
//!   upsert: u8 1 | u64 key | u16 dim (1..=1024) | dim × f32      len = 11 + 4·dim
//!   remove: u8 2 | u64 key                                       len = 9
//! ```
//!
//! Recovery: a last entry cut short, or whose CRC fails while its length agrees with its
//! own op and dim, is a write that did not finish: it is dropped and [`Decoded::torn`]
//! says so (the writer rewrites the file to [`Decoded::valid_len`] before appending
//! again). Any other damage (a bad entry followed by more bytes, a length that disagrees
//! with its entry, a bad header) is corruption: the caller rebuilds the file from the
//! nodes rather than trust it. [`needs_compaction`] says when the dead entries (replaced
//! or removed keys) outnumber the live ones; [`compact`] writes the live ones afresh.
//! Everything here is pure over bytes: the region does the file I/O.

use std::collections::BTreeMap;

use super::coords::MAX_DIM;
use super::index::{Index, Params};
use super::metric::Metric;
use crate::engine::frame::{self, FILE_HEADER, FRAME_HEADER};
use crate::error::{Error, Result};

pub const FILE: &str = "coordinate_index.btree";
const MAGIC: &[u8; 8] = b"ISLDIMX1";
const VERSION: u16 = 1;
const UPSERT: u8 = 1;
const REMOVE: u8 = 2;
/// The longest payload: an upsert of `MAX_DIM` numbers.
const MAX_PAYLOAD: usize = 11 + 4 * MAX_DIM;

#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Upsert { key: u64, vector: Vec<f32> },
    Remove { key: u64 },
}

/// What a file holds.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    pub entries: Vec<Entry>,
    /// The length of the file up to the end of its last whole entry.
    pub valid_len: usize,
    /// Whether bytes after `valid_len` (an unfinished last entry) were dropped.
    pub torn: bool,
}

pub fn encode_header() -> [u8; FILE_HEADER] {
    frame::file_header(MAGIC, VERSION)
}

/// Appends `entry` as one frame to `out`.
pub fn encode_entry(entry: &Entry, out: &mut Vec<u8>) -> Result<()> {
    let mut payload = Vec::with_capacity(MAX_PAYLOAD.min(64));
    match entry {
        Entry::Upsert { key, vector } => {
            if vector.is_empty() || vector.len() > MAX_DIM || vector.iter().any(|x| !x.is_finite())
            {
                return Err(Error::InvalidArgument(
                    "index entry: 1 to 1024 finite coordinates",
                ));
            }
            payload.push(UPSERT);
            payload.extend_from_slice(&key.to_le_bytes());
            payload.extend_from_slice(&(vector.len() as u16).to_le_bytes());
            for x in vector {
                payload.extend_from_slice(&x.to_le_bytes());
            }
        }
        Entry::Remove { key } => {
            payload.push(REMOVE);
            payload.extend_from_slice(&key.to_le_bytes());
        }
    }
    frame::encode(&payload, out);
    Ok(())
}

/// Whether a payload of `len` bytes can hold what its first bytes (`head`, possibly
/// fewer than a whole payload) say: op 2 is 9 bytes, op 1 is 11 + 4·dim.
fn len_agrees(len: usize, head: &[u8]) -> bool {
    let some_upsert = (15..=MAX_PAYLOAD).contains(&len) && (len - 11).is_multiple_of(4);
    match head.first() {
        None => len == 9 || some_upsert,
        Some(&REMOVE) => len == 9,
        Some(&UPSERT) => match head.get(9..11) {
            Some(d) => {
                let dim = u16::from_le_bytes([d[0], d[1]]) as usize;
                (1..=MAX_DIM).contains(&dim) && len == 11 + 4 * dim
            }
            None => some_upsert,
        },
        Some(_) => false,
    }
}

fn parse(payload: &[u8]) -> Option<Entry> {
    if !len_agrees(payload.len(), payload) {
        return None;
    }
    let key = u64::from_le_bytes(payload.get(1..9)?.try_into().ok()?);
    if payload[0] == REMOVE {
        return Some(Entry::Remove { key });
    }
    let vector: Vec<f32> = payload[11..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    vector
        .iter()
        .all(|x| x.is_finite())
        .then_some(Entry::Upsert { key, vector })
}

/// The entries of a file (see the module's documentation for what is torn and what is
/// corrupt). An empty file holds none; one cut inside its header is torn.
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let header = encode_header();
    if bytes.len() < FILE_HEADER {
        if header.starts_with(bytes) {
            return Ok(Decoded {
                entries: Vec::new(),
                valid_len: 0,
                torn: !bytes.is_empty(),
            });
        }
        return Err(Error::Corrupt(format!("{FILE}: bad header")));
    }
    frame::check_file_header(bytes, MAGIC, VERSION, FILE)?;
    if bytes[10..12] != [0, 0] {
        return Err(Error::Corrupt(format!("{FILE}: reserved header bytes set")));
    }
    let corrupt = |at: usize, what: &str| Error::Corrupt(format!("{FILE}: {what} at byte {at}"));
    let mut entries = Vec::new();
    let mut at = FILE_HEADER;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some(len) = rest.get(..4) else {
            break; // torn inside the length
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let head = rest.get(FRAME_HEADER..).unwrap_or(&[]);
        if !len_agrees(len, &head[..head.len().min(len)]) {
            return Err(corrupt(at, "entry whose length disagrees with it"));
        }
        match frame::decode(bytes, at, MAX_PAYLOAD) {
            frame::Decoded::Frame { payload, next } => {
                entries.push(parse(payload).ok_or_else(|| corrupt(at, "malformed entry"))?);
                at = next;
            }
            frame::Decoded::Torn => break,
            // A failed checksum is an unfinished write only in the file's last bytes.
            frame::Decoded::Bad if at + FRAME_HEADER + len == bytes.len() => break,
            frame::Decoded::Bad => return Err(corrupt(at, "checksum mismatch")),
        }
    }
    Ok(Decoded {
        entries,
        valid_len: at,
        torn: at < bytes.len(),
    })
}

/// Whether the file should be rewritten by [`compact`]: its dead entries (those a later
/// entry replaced or removed) outnumber its live ones.
pub fn needs_compaction(entries: usize, live: usize) -> bool {
    entries.saturating_sub(live) > live
}

/// A whole file holding `live` as upserts, in key order.
pub fn compact<'a>(live: impl IntoIterator<Item = (u64, &'a [f32])>) -> Result<Vec<u8>> {
    let sorted: BTreeMap<u64, &[f32]> = live.into_iter().collect();
    let mut out = encode_header().to_vec();
    for (key, v) in sorted {
        encode_entry(
            &Entry::Upsert {
                key,
                vector: v.to_vec(),
            },
            &mut out,
        )?;
    }
    Ok(out)
}

/// What loading found, besides the index.
#[derive(Debug, PartialEq)]
pub struct Loaded {
    /// Entries in the file (live and dead): what [`needs_compaction`] counts from, the
    /// region adding one per entry it appends.
    pub entries: usize,
    pub valid_len: usize,
    pub torn: bool,
}

/// An index holding what `bytes` say, replayed in order.
pub fn load(bytes: &[u8], metric: Metric, params: Params) -> Result<(Index, Loaded)> {
    let d = decode(bytes)?;
    let mut last: BTreeMap<u64, Option<&[f32]>> = BTreeMap::new();
    for e in &d.entries {
        match e {
            Entry::Upsert { key, vector } => last.insert(*key, Some(vector)),
            Entry::Remove { key } => last.insert(*key, None),
        };
    }
    let mut index = Index::with_params(metric, params);
    for (key, v) in last {
        if let Some(v) = v {
            // Only the final vectors count: a dimension may change once all are gone.
            index
                .upsert(key, v)
                .map_err(|e| Error::Corrupt(format!("{FILE}: key {key}: {e}")))?;
        }
    }
    let loaded = Loaded {
        entries: d.entries.len(),
        valid_len: d.valid_len,
        torn: d.torn,
    };
    Ok((index, loaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<Entry>, Vec<u8>, Vec<usize>) {
        let up = |key, v: &[f32]| Entry::Upsert {
            key,
            vector: v.to_vec(),
        };
        let entries = vec![
            up(1, &[1.0, 2.0, 3.0]),
            up(2, &[0.5, -1.0, 2.0]),
            Entry::Remove { key: 1 },
            up(3, &[9.0, 9.0, 9.0]),
            up(2, &[1.0, 1.0, 1.0]),
        ];
        let mut bytes = encode_header().to_vec();
        let mut ends = vec![bytes.len()];
        for e in &entries {
            encode_entry(e, &mut bytes).unwrap();
            ends.push(bytes.len());
        }
        (entries, bytes, ends)
    }

    #[test]
    fn entries_round_trip_and_replay_to_the_last_word() {
        let (entries, bytes, _) = sample();
        // 12 header + 4 upserts of 3 numbers (8 + 23) + 1 remove (8 + 9).
        assert_eq!(bytes.len(), 12 + 4 * 31 + 17);
        let d = decode(&bytes).unwrap();
        assert_eq!(d.entries, entries);
        assert_eq!((d.valid_len, d.torn), (bytes.len(), false));
        let (index, loaded) = load(&bytes, Metric::Cosine, Params::default()).unwrap();
        assert_eq!((index.len(), index.metric()), (2, Metric::Cosine));
        assert_eq!(index.get(1), None);
        assert_eq!(index.get(2), Some(&[1.0, 1.0, 1.0][..]));
        assert_eq!(loaded.entries, 5);
        assert!(
            needs_compaction(loaded.entries, index.len()),
            "3 dead, 2 live"
        );
        assert!(!needs_compaction(4, 2));
        let compacted = compact(index.iter()).unwrap();
        let d = decode(&compacted).unwrap();
        assert_eq!(d.entries.len(), 2);
        assert!(
            matches!(d.entries[0], Entry::Upsert { key: 2, .. }),
            "key order"
        );
        let (again, _) = load(&compacted, Metric::Cosine, Params::default()).unwrap();
        assert_eq!(again.get(3), index.get(3));
        assert_eq!(decode(&[]).unwrap().entries, vec![]);
        assert_eq!(compact([]).unwrap(), encode_header());
    }

    #[test]
    fn a_cut_anywhere_loses_only_the_entry_it_cuts() {
        let (entries, bytes, ends) = sample();
        for cut in 0..=bytes.len() {
            let d = decode(&bytes[..cut]).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            let whole = ends
                .iter()
                .filter(|&&end| end <= cut)
                .count()
                .saturating_sub(1);
            assert_eq!(d.entries, entries[..whole], "cut {cut}");
            let valid = if cut < FILE_HEADER { 0 } else { ends[whole] };
            assert_eq!(d.valid_len, valid, "cut {cut}");
            assert_eq!(d.torn, cut > valid, "cut {cut}");
        }
    }

    #[test]
    fn damage_before_the_last_entry_is_corruption() {
        let (entries, bytes, ends) = sample();
        let last = ends[ends.len() - 2];
        for i in 0..bytes.len() {
            for bit in [0x01, 0x10, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                match decode(&bad) {
                    Err(Error::Corrupt(_)) => {}
                    Err(e) => panic!("flip {i}/{bit:#x}: {e}"),
                    // Only the last entry may be taken for an unfinished write, and then
                    // it is dropped, never misread.
                    Ok(d) => {
                        assert!(i >= last, "flip {i}/{bit:#x} before the last entry passed");
                        assert_eq!(d.entries, entries[..entries.len() - 1]);
                        assert!(d.torn && d.valid_len == last, "flip {i}/{bit:#x}");
                    }
                }
            }
        }
        // Bytes after a whole file that are no entry, and a foreign file.
        let mut tail = bytes.clone();
        tail.extend_from_slice(&[0xff; 12]);
        assert!(matches!(decode(&tail), Err(Error::Corrupt(_))));
        assert!(matches!(
            decode(b"ISLOTHER\x01\0\0\0"),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(decode(b"XY"), Err(Error::Corrupt(_))));
    }

    #[test]
    fn only_valid_vectors_are_written() {
        let mut out = Vec::new();
        for v in [vec![], vec![f32::INFINITY], vec![0.0; MAX_DIM + 1]] {
            let e = Entry::Upsert { key: 1, vector: v };
            assert!(encode_entry(&e, &mut out).is_err());
        }
        assert!(out.is_empty());
        let e = Entry::Upsert {
            key: u64::MAX,
            vector: vec![0.25; MAX_DIM],
        };
        encode_entry(&e, &mut out).unwrap();
        assert_eq!(out.len(), FRAME_HEADER + MAX_PAYLOAD);
        let mut file = encode_header().to_vec();
        file.extend_from_slice(&out);
        assert_eq!(decode(&file).unwrap().entries, vec![e]);
    }
}
