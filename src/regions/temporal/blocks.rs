//! Compressed event files in independently compressed blocks, and the index over them.
//!
//! A day's `compressed.gz` is a multi-member gzip file and a month's `compressed.lz4` a
//! series of LZ4 frames, one member or frame per block, so `zcat` and `lz4cat` read either
//! whole as it is, while a time-range read decompresses only the blocks its range touches:
//! the index (`indices.btree`, see [`Index`]) says where each block is and which instants
//! it holds. FORMAT.md ("Temporal streams") describes the bytes.

// Nothing uses these building blocks until the temporal region lands; `expect` (not
// `allow`) so that this goes once everything here is used.

use std::io::{self, Read, Write};

use flate2::{Compression, GzBuilder};
use lz4_flex::frame::{FrameDecoder, FrameEncoder, FrameInfo};

use super::time::Micros;
use crate::engine::frame;
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Lz4,
}

/// Where one block is and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    /// The earliest and latest timestamp of its events.
    pub first: Micros,
    pub last: Micros,
    /// Its stored (compressed) bytes' place in the file.
    pub offset: u64,
    pub length: u64,
    /// Its length decompressed.
    pub raw_len: u64,
    /// Its lines (events).
    pub lines: u32,
    /// crc32 of the stored (compressed) bytes.
    pub crc: u32,
}

/// Events in time order, each (timestamp, line without its newline; a line holds no
/// `'\n'`, as JSON lines never do). Blocks hold whole lines (`'\n'`-terminated), each block
/// up to `block_bytes` raw bytes (at least one line); the first block starts at file offset
/// `at`. Returns the stored bytes of all blocks and their metadata.
pub fn encode_blocks(
    codec: Codec,
    events: &[(Micros, &[u8])],
    block_bytes: usize,
    at: u64,
) -> (Vec<u8>, Vec<BlockMeta>) {
    let mut stored = Vec::new();
    let mut metas = Vec::new();
    let mut rest = events;
    while !rest.is_empty() {
        let (block, tail) = rest.split_at(lines_in_block(rest, block_bytes));
        rest = tail;
        let mut raw = Vec::new();
        for (_, line) in block {
            debug_assert!(!line.contains(&b'\n'), "an event line holds a newline");
            raw.extend_from_slice(line);
            raw.push(b'\n');
        }
        // Writing into memory fails only if allocation does, which aborts anyway.
        let bytes = compress(codec, &raw).expect("compressing into memory cannot fail");
        let times = block.iter().map(|&(t, _)| t);
        metas.push(BlockMeta {
            first: times.clone().min().unwrap_or_default(),
            last: times.max().unwrap_or_default(),
            offset: at + stored.len() as u64,
            length: bytes.len() as u64,
            raw_len: raw.len() as u64,
            // `lines_in_block` keeps the count within u32.
            lines: block.len() as u32,
            crc: crc32fast::hash(&bytes),
        });
        stored.extend_from_slice(&bytes);
    }
    (stored, metas)
}

/// How many of `events` (at least one) the next block takes: as many as fit in
/// `block_bytes` raw bytes, and no more than a u32 counts.
fn lines_in_block(events: &[(Micros, &[u8])], block_bytes: usize) -> usize {
    let mut raw = 0usize;
    let mut n = 0;
    for (_, line) in events {
        raw = raw.saturating_add(line.len() + 1);
        if n > 0 && (raw > block_bytes || n == u32::MAX as usize) {
            break;
        }
        n += 1;
    }
    n
}

/// One block as its codec stores it: a gzip member (mtime 0, no name) or an LZ4 frame
/// with its content size and content checksum.
fn compress(codec: Codec, raw: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        Codec::Gzip => {
            let mut enc = GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), Compression::default());
            enc.write_all(raw)?;
            enc.finish()
        }
        Codec::Lz4 => {
            let info = FrameInfo::new()
                .content_size(Some(raw.len() as u64))
                .content_checksum(true);
            let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(raw)?;
            Ok(enc.finish()?)
        }
    }
}

/// One block's raw lines from its stored bytes. A damaged block (CRC mismatch,
/// undecodable, trailing garbage, raw length or line count not as the index says) is
/// `Err(Error::Corrupt(...))` naming the block's offset — never silently skipped or
/// partially returned.
pub fn decode_block(codec: Codec, stored: &[u8], meta: &BlockMeta) -> Result<Vec<u8>> {
    let bad = |why: String| {
        Error::Corrupt(format!(
            "temporal {codec:?} block at offset {}: {why}",
            meta.offset
        ))
    };
    if stored.len() as u64 != meta.length {
        return Err(bad(format!(
            "{} bytes stored, the index says {}",
            stored.len(),
            meta.length
        )));
    }
    if crc32fast::hash(stored) != meta.crc {
        return Err(bad("checksum mismatch".into()));
    }
    // One byte past the expected length is read so that a longer content shows, and no
    // more, so that a damaged block cannot make us inflate without bound.
    let limit = meta.raw_len.saturating_add(1);
    // Each decoder stops at the end of its one member or frame; what it leaves of the
    // slice is garbage.
    let (raw, rest) = match codec {
        Codec::Gzip => {
            let mut dec = flate2::bufread::GzDecoder::new(stored);
            (read_up_to(&mut dec, limit), dec.into_inner())
        }
        Codec::Lz4 => {
            let mut dec = FrameDecoder::new(Watched {
                rest: stored,
                starved: false,
            });
            let raw = read_up_to(&mut dec, limit);
            let src = dec.into_inner();
            let raw = if src.starved {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the frame ends early",
                ))
            } else {
                raw
            };
            (raw, src.rest)
        }
    };
    let raw = raw.map_err(|e| bad(format!("does not decode: {e}")))?;
    if raw.len() as u64 > meta.raw_len {
        return Err(bad(format!(
            "decodes to more than the {} bytes the index says",
            meta.raw_len
        )));
    }
    if raw.len() as u64 != meta.raw_len {
        return Err(bad(format!(
            "decodes to {} bytes, the index says {}",
            raw.len(),
            meta.raw_len
        )));
    }
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes of garbage after it", rest.len())));
    }
    match raw.last() {
        None => return Err(bad("holds no line".into())),
        Some(&b) if b != b'\n' => return Err(bad("ends inside a line".into())),
        Some(_) => {}
    }
    let lines = raw.iter().filter(|&&b| b == b'\n').count();
    if lines != meta.lines as usize {
        return Err(bad(format!(
            "holds {lines} lines, the index says {}",
            meta.lines
        )));
    }
    Ok(raw)
}

/// A block's bytes as an LZ4 decoder reads them, noting whether it wanted more than there
/// are: lz4_flex takes a frame cut off between two of its blocks for one that ended.
struct Watched<'a> {
    rest: &'a [u8],
    starved: bool,
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.starved |= buf.len() > self.rest.len();
        self.rest.read(buf)
    }
}

fn read_up_to(r: &mut impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

const INDEX_MAGIC: &[u8; 8] = b"ISLTIDX1";
const INDEX_VERSION: u16 = 1;
/// i64 first, i64 last, u64 offset, u64 length, u64 raw_len, u32 lines, u32 crc.
const ENTRY: usize = 48;

/// The index file `indices.btree`: a header ([`frame::file_header`], magic `ISLTIDX1`,
/// version 1), the block count (u64), fixed-width entries, and a trailing CRC32 over
/// everything before it.
///
/// It is a B-tree of one level: a single sorted node whose fixed-width entries are keyed
/// by time, so a reader finds the blocks of a range by binary search, in memory or at
/// computed file offsets, without parsing entries it skips. At 48 bytes a block the index
/// is small next to the data it covers and is read whole, so one node suffices; more
/// levels would only add seeks.
///
/// Entries are in time order: `first` and `last` both non-decreasing (each block's events
/// come no earlier than the previous block's), which is what [`encode_blocks`] gives for
/// events in time order. That makes the blocks overlapping a range one contiguous run,
/// found by two binary searches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    pub blocks: Vec<BlockMeta>,
}

impl Index {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(frame::FILE_HEADER + 12 + self.blocks.len() * ENTRY);
        out.extend_from_slice(&frame::file_header(INDEX_MAGIC, INDEX_VERSION));
        out.extend_from_slice(&(self.blocks.len() as u64).to_le_bytes());
        for b in &self.blocks {
            out.extend_from_slice(&b.first.to_le_bytes());
            out.extend_from_slice(&b.last.to_le_bytes());
            out.extend_from_slice(&b.offset.to_le_bytes());
            out.extend_from_slice(&b.length.to_le_bytes());
            out.extend_from_slice(&b.raw_len.to_le_bytes());
            out.extend_from_slice(&b.lines.to_le_bytes());
            out.extend_from_slice(&b.crc.to_le_bytes());
        }
        frame::seal(&mut out);
        out
    }

    /// Err(Corrupt) on a bad magic, version, length or CRC, or entries that are not in time
    /// order or describe no possible block.
    pub fn decode(bytes: &[u8]) -> Result<Index> {
        const WHAT: &str = "temporal index";
        let body = frame::unseal(bytes, INDEX_MAGIC, INDEX_VERSION, WHAT)?;
        let bad = |why: String| Error::Corrupt(format!("{WHAT}: {why}"));
        let (count, entries) = body
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("no block count".into()))?;
        let count = u64::from_le_bytes(*count);
        if entries.len() % ENTRY != 0 || (entries.len() / ENTRY) as u64 != count {
            return Err(bad(format!(
                "{count} blocks do not fit in {} bytes of entries",
                entries.len()
            )));
        }
        let mut blocks: Vec<BlockMeta> = Vec::with_capacity(entries.len() / ENTRY);
        for (i, e) in entries.chunks_exact(ENTRY).enumerate() {
            let u64_at = |at: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&e[at..at + 8]);
                u64::from_le_bytes(b)
            };
            let u32_at = |at: usize| {
                let mut b = [0u8; 4];
                b.copy_from_slice(&e[at..at + 4]);
                u32::from_le_bytes(b)
            };
            let b = BlockMeta {
                first: u64_at(0) as i64,
                last: u64_at(8) as i64,
                offset: u64_at(16),
                length: u64_at(24),
                raw_len: u64_at(32),
                lines: u32_at(40),
                crc: u32_at(44),
            };
            if b.first > b.last
                || b.lines == 0
                || b.length == 0
                || b.raw_len < u64::from(b.lines)
                || b.offset.checked_add(b.length).is_none()
            {
                return Err(bad(format!("entry {i} describes no possible block: {b:?}")));
            }
            if let Some(prev) = blocks.last()
                && !(prev.first <= b.first && prev.last <= b.last)
            {
                return Err(bad(format!("entry {i} is not in time order")));
            }
            blocks.push(b);
        }
        Ok(Index { blocks })
    }

    /// The blocks that may hold events with from <= t < to: those whose `[first, last]`
    /// meets that range (binary search, not a scan).
    pub fn overlapping(&self, from: Micros, to: Micros) -> &[BlockMeta] {
        if from >= to {
            return &[];
        }
        let start = self.blocks.partition_point(|b| b.last < from);
        let end = self.blocks.partition_point(|b| b.first < to);
        self.blocks.get(start..end).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    const CODECS: [Codec; 2] = [Codec::Gzip, Codec::Lz4];

    fn owned_events(n: usize) -> Vec<(Micros, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let t = 1_796_000_000_000_000 + i as i64 * 1_000_003;
                let line = format!(
                    r#"{{"type":"tick","n":{i},"pad":"{}"}}"#,
                    "x".repeat(i % 37)
                );
                (t, line.into_bytes())
            })
            .collect()
    }

    fn borrowed(events: &[(Micros, Vec<u8>)]) -> Vec<(Micros, &[u8])> {
        events.iter().map(|(t, l)| (*t, l.as_slice())).collect()
    }

    fn joined(events: &[(Micros, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, l) in events {
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        out
    }

    fn block<'a>(stored: &'a [u8], at: u64, m: &BlockMeta) -> &'a [u8] {
        &stored[(m.offset - at) as usize..(m.offset - at + m.length) as usize]
    }

    /// Checks everything `encode_blocks` promises of its output for `events`.
    fn check_encoding(
        codec: Codec,
        events: &[(Micros, &[u8])],
        block_bytes: usize,
        at: u64,
    ) -> std::result::Result<(), TestCaseError> {
        let (stored, metas) = encode_blocks(codec, events, block_bytes, at);
        let mut next = at;
        let mut seen = 0usize;
        let mut all = Vec::new();
        for m in &metas {
            prop_assert_eq!(m.offset, next, "blocks are contiguous");
            next += m.length;
            let raw = decode_block(codec, block(&stored, at, m), m)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mine = &events[seen..seen + m.lines as usize];
            prop_assert_eq!(&raw, &joined(mine));
            prop_assert!(m.lines >= 1);
            prop_assert!(raw.len() <= block_bytes || m.lines == 1, "block too big");
            prop_assert_eq!(m.first, mine[0].0);
            prop_assert_eq!(m.last, mine[mine.len() - 1].0);
            if let Some(&(_, following)) = events.get(seen + mine.len()) {
                prop_assert!(
                    raw.len() + following.len() + 1 > block_bytes,
                    "block cut early"
                );
            }
            seen += mine.len();
            all.extend_from_slice(&raw);
        }
        prop_assert_eq!(next - at, stored.len() as u64);
        prop_assert_eq!(seen, events.len());
        prop_assert_eq!(all, joined(events));
        let index = Index { blocks: metas };
        prop_assert_eq!(Index::decode(&index.encode()).ok(), Some(index));
        Ok(())
    }

    fn sorted_events() -> impl Strategy<Value = Vec<(Micros, Vec<u8>)>> {
        let line = proptest::collection::vec(
            any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
            0..60,
        );
        proptest::collection::vec((-1_000_000i64..1_000_000, line), 0..80).prop_map(|mut v| {
            v.sort_by_key(|(t, _)| *t);
            v
        })
    }

    proptest! {
        #[test]
        fn blocks_round_trip(
            events in sorted_events(),
            block_bytes in 0usize..300,
            at in 0u64..1 << 40,
        ) {
            let events = borrowed(&events);
            for codec in CODECS {
                check_encoding(codec, &events, block_bytes, at)?;
            }
        }
    }

    #[test]
    fn no_events_no_blocks() {
        for codec in CODECS {
            assert_eq!(encode_blocks(codec, &[], 100, 7), (Vec::new(), Vec::new()));
        }
    }

    #[test]
    fn a_line_longer_than_a_block_is_a_block_of_its_own() {
        let long = vec![b'a'; 5000];
        let events: Vec<(Micros, &[u8])> = vec![(1, b"x"), (2, &long), (3, b"y")];
        for codec in CODECS {
            let (_, metas) = encode_blocks(codec, &events, 100, 0);
            let lines: Vec<u32> = metas.iter().map(|m| m.lines).collect();
            assert_eq!(lines, [1, 1, 1], "{codec:?}");
            assert_eq!(metas[1].raw_len, 5001);
        }
    }

    /// `zcat` and `lz4cat` read a whole file of blocks as they would any such file.
    #[test]
    fn the_real_tools_read_the_files_whole() {
        let events = owned_events(500);
        let events = borrowed(&events);
        for (codec, tool, ext) in [(Codec::Gzip, "zcat", "gz"), (Codec::Lz4, "lz4cat", "lz4")] {
            let (stored, metas) = encode_blocks(codec, &events, 1024, 0);
            assert!(metas.len() > 10, "several blocks");
            let file = tempfile::Builder::new()
                .suffix(&format!(".{ext}"))
                .tempfile()
                .expect("tmp");
            std::fs::write(file.path(), &stored).expect("write");
            let out = match Command::new(tool).arg(file.path()).output() {
                Ok(out) => out,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    eprintln!("note: {tool} is not on PATH; not checking {codec:?} files with it");
                    continue;
                }
                Err(e) => panic!("{tool}: {e}"),
            };
            assert!(
                out.status.success(),
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout == joined(&events), "{tool} read something else");
        }
    }

    /// The first bytes of each codec's block, as FORMAT.md spells them.
    #[test]
    fn blocks_start_as_documented() {
        let (gz, _) = one_block(Codec::Gzip);
        // Magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
        assert_eq!(gz[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        let (lz4, meta) = one_block(Codec::Lz4);
        // Magic, FLG (version 1, independent blocks, content size, content checksum),
        // BD (64 KiB blocks), content size.
        assert_eq!(lz4[..6], [0x04, 0x22, 0x4d, 0x18, 0x6c, 0x40]);
        assert_eq!(lz4[6..14], meta.raw_len.to_le_bytes());
        assert_eq!(lz4[lz4.len() - 8..lz4.len() - 4], [0; 4], "end mark");
    }

    fn one_block(codec: Codec) -> (Vec<u8>, BlockMeta) {
        let events = owned_events(40);
        let (stored, metas) = encode_blocks(codec, &borrowed(&events), usize::MAX, 1000);
        assert_eq!(metas.len(), 1);
        (stored, metas[0])
    }

    /// `decode_block` refuses `stored` under `meta` as corrupt, naming the offset.
    fn refused(codec: Codec, stored: &[u8], meta: &BlockMeta, case: &str) {
        match decode_block(codec, stored, meta) {
            Err(Error::Corrupt(why)) => assert!(
                why.contains(&format!("offset {}", meta.offset)),
                "{codec:?} {case}: {why}"
            ),
            other => panic!("{codec:?} {case}: {:?}", other.map(|raw| raw.len())),
        }
    }

    /// `meta` describing `stored` as the index would if it had been written so.
    fn vouched(meta: &BlockMeta, stored: &[u8]) -> BlockMeta {
        BlockMeta {
            length: stored.len() as u64,
            crc: crc32fast::hash(stored),
            ..*meta
        }
    }

    #[test]
    fn every_flipped_bit_of_a_block_is_a_checksum_mismatch() {
        for codec in CODECS {
            let (stored, meta) = one_block(codec);
            for bit in 0..stored.len() * 8 {
                let mut bad = stored.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                refused(codec, &bad, &meta, &format!("bit {bit}"));
            }
        }
    }

    #[test]
    fn damage_the_checksum_misses_is_still_refused() {
        for codec in CODECS {
            let (stored, meta) = one_block(codec);
            let original = decode_block(codec, &stored, &meta).expect("decode");
            // Any byte changed: the codec's own checks (gzip's CRC32, LZ4's content
            // checksum, the framing) refuse it, or the change was one no decoder reads
            // (a gzip header's mtime, a deflate code length no symbol uses) and the content
            // is the same. Never other content.
            let mut unseen = 0;
            for i in 0..stored.len() {
                let mut bad = stored.clone();
                bad[i] ^= 0x5a;
                let vouched = vouched(&meta, &bad);
                match decode_block(codec, &bad, &vouched) {
                    Ok(raw) => {
                        assert!(raw == original, "{codec:?} byte {i}: other content");
                        unseen += 1;
                    }
                    Err(_) => refused(codec, &bad, &vouched, &format!("byte {i}")),
                }
            }
            assert!(
                unseen * 10 < stored.len(),
                "{codec:?}: {unseen} changes unseen"
            );
            // Cut anywhere.
            for cut in 0..stored.len() {
                let bad = &stored[..cut];
                refused(codec, bad, &meta, &format!("cut at {cut} (length)"));
                refused(codec, bad, &vouched(&meta, bad), &format!("cut at {cut}"));
            }
            // Garbage after it: a byte, zeros, and a whole second block.
            let mut twice = stored.clone();
            twice.extend_from_slice(&stored);
            for tail in [&[0u8][..], &[0; 64], &stored] {
                let mut bad = stored.clone();
                bad.extend_from_slice(tail);
                refused(codec, &bad, &meta, "garbage (length)");
                refused(codec, &bad, &vouched(&meta, &bad), "garbage");
            }
            let both = BlockMeta {
                raw_len: meta.raw_len * 2,
                lines: meta.lines * 2,
                ..vouched(&meta, &twice)
            };
            refused(codec, &twice, &both, "two blocks as one");
            // The index disagreeing about the content.
            for (case, m) in [
                (
                    "raw_len - 1",
                    BlockMeta {
                        raw_len: meta.raw_len - 1,
                        ..meta
                    },
                ),
                (
                    "raw_len + 1",
                    BlockMeta {
                        raw_len: meta.raw_len + 1,
                        ..meta
                    },
                ),
                ("raw_len 0", BlockMeta { raw_len: 0, ..meta }),
                (
                    "lines - 1",
                    BlockMeta {
                        lines: meta.lines - 1,
                        ..meta
                    },
                ),
                (
                    "lines + 1",
                    BlockMeta {
                        lines: meta.lines + 1,
                        ..meta
                    },
                ),
                (
                    "crc",
                    BlockMeta {
                        crc: meta.crc ^ 1,
                        ..meta
                    },
                ),
                (
                    "length",
                    BlockMeta {
                        length: meta.length + 1,
                        ..meta
                    },
                ),
            ] {
                refused(codec, &stored, &m, case);
            }
            // A block of the other codec.
            let other = if codec == Codec::Gzip {
                Codec::Lz4
            } else {
                Codec::Gzip
            };
            let (foreign, foreign_meta) = one_block(other);
            refused(codec, &foreign, &foreign_meta, "other codec");
            assert!(decode_block(codec, &stored, &meta).is_ok());
        }
    }

    #[test]
    fn a_partial_last_line_is_refused() {
        for codec in CODECS {
            let raw = b"{\"a\":1}\n{\"a\":2}";
            let stored = compress(codec, raw).expect("compress");
            let meta = BlockMeta {
                first: 0,
                last: 0,
                offset: 4096,
                length: 0,
                raw_len: raw.len() as u64,
                lines: 1,
                crc: 0,
            };
            refused(codec, &stored, &vouched(&meta, &stored), "partial line");
            let empty = compress(codec, b"").expect("compress");
            let none = BlockMeta {
                raw_len: 0,
                lines: 0,
                ..meta
            };
            refused(codec, &empty, &vouched(&none, &empty), "no line");
        }
    }

    fn meta(first: Micros, last: Micros, i: u64) -> BlockMeta {
        BlockMeta {
            first,
            last,
            offset: i * 100,
            length: 100,
            raw_len: 1000 + i,
            lines: 3 + i as u32,
            crc: i as u32 * 2_654_435_761,
        }
    }

    /// Blocks in time order as `encode_blocks` makes them from sorted timestamps: each
    /// block a run of consecutive ones, so neighbours may share an instant.
    fn time_ordered() -> impl Strategy<Value = Index> {
        (
            proptest::collection::vec(-50i64..50, 0..60),
            proptest::collection::vec(1usize..5, 60),
        )
            .prop_map(|(mut times, sizes)| {
                times.sort_unstable();
                let mut blocks = Vec::new();
                let mut rest = &times[..];
                for size in sizes {
                    if rest.is_empty() {
                        break;
                    }
                    let (run, tail) = rest.split_at(size.min(rest.len()));
                    blocks.push(meta(run[0], run[run.len() - 1], blocks.len() as u64));
                    rest = tail;
                }
                Index { blocks }
            })
    }

    proptest! {
        #[test]
        fn index_round_trips(index in time_ordered()) {
            let bytes = index.encode();
            prop_assert_eq!(bytes.len(), 12 + 8 + ENTRY * index.blocks.len() + 4);
            prop_assert_eq!(Index::decode(&bytes).ok(), Some(index));
        }

        #[test]
        fn overlapping_is_exactly_the_blocks_meeting_the_range(
            index in time_ordered(),
            from in -60i64..60,
            len in -5i64..40,
        ) {
            let to = from + len;
            let want: Vec<BlockMeta> = index
                .blocks
                .iter()
                .filter(|b| from < to && b.first < to && b.last >= from)
                .copied()
                .collect();
            prop_assert_eq!(index.overlapping(from, to), &want[..]);
        }
    }

    #[test]
    fn overlapping_at_the_extremes() {
        let index = Index {
            blocks: vec![meta(i64::MIN, 0, 0), meta(0, 10, 1), meta(10, i64::MAX, 2)],
        };
        assert_eq!(index.overlapping(i64::MIN, i64::MAX).len(), 3);
        assert_eq!(index.overlapping(0, 1), &index.blocks[..2]);
        assert_eq!(index.overlapping(10, 11), &index.blocks[1..]);
        assert_eq!(index.overlapping(1, 10), &index.blocks[1..2]);
        assert_eq!(index.overlapping(5, 5), &[]);
        assert_eq!(index.overlapping(9, 2), &[]);
        assert_eq!(Index::default().overlapping(i64::MIN, i64::MAX), &[]);
    }

    fn sample_index() -> Index {
        Index {
            blocks: vec![meta(-5, 3, 0), meta(3, 3, 1), meta(4, 90, 2)],
        }
    }

    fn index_refused(bytes: &[u8], case: &str) {
        match Index::decode(bytes) {
            Err(Error::Corrupt(why)) => assert!(why.contains("temporal index"), "{case}: {why}"),
            other => panic!("{case}: {other:?}"),
        }
    }

    /// `index`'s encoding with the header's bytes as given and the CRC made to match.
    fn forged(index: &Index, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut bytes = index.encode();
        bytes.truncate(bytes.len() - 4);
        edit(&mut bytes);
        frame::seal(&mut bytes);
        bytes
    }

    #[test]
    fn every_kind_of_damage_to_the_index_is_refused() {
        let index = sample_index();
        let good = index.encode();
        assert_eq!(Index::decode(&good).ok(), Some(index.clone()));
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            index_refused(&bad, &format!("bit {bit}"));
        }
        for cut in 0..good.len() {
            index_refused(&good[..cut], &format!("cut at {cut}"));
        }
        let mut longer = good.clone();
        longer.push(0);
        index_refused(&longer, "a byte more");
        index_refused(&forged(&index, |b| b[0] = b'X'), "magic");
        index_refused(&forged(&index, |b| b[8] = 2), "version 2");
        index_refused(&forged(&index, |b| b[8] = 0), "version 0");
        index_refused(&forged(&index, |b| b[12] = 2), "count too small");
        index_refused(&forged(&index, |b| b[12] = 4), "count too large");
        index_refused(&forged(&index, |b| b[19] = 0x80), "huge count");
        index_refused(&forged(&index, |b| b.truncate(b.len() - 1)), "entry cut");
        index_refused(&forged(&index, |b| b.truncate(20)), "entries missing");
        index_refused(&forged(&index, |b| b.truncate(12)), "no count");
        let mut cases = Vec::new();
        let mut edit = |case: &'static str, f: fn(&mut [BlockMeta])| {
            let mut i = sample_index();
            f(&mut i.blocks);
            cases.push((case, i));
        };
        edit("unsorted first", |b| b.swap(0, 2));
        edit("last goes back", |b| b[1].last = 2);
        edit("first after last", |b| b[2].first = 91);
        edit("first goes back", |b| b[2].first = 2);
        edit("no lines", |b| b[0].lines = 0);
        edit("no bytes", |b| b[0].length = 0);
        edit("fewer bytes than lines", |b| b[0].raw_len = 2);
        edit("past u64", |b| b[2].offset = u64::MAX);
        for (case, i) in cases {
            index_refused(&i.encode(), case);
        }
        assert_eq!(
            Index::decode(&Index::default().encode()).ok(),
            Some(Index::default())
        );
    }
}
