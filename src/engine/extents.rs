//! Content made of pieces, so that an append costs what it appends: a file opened for
//! writing keeps its committed bytes where they are, its draft holds only what is written
//! past them, and the commit logs only those new bytes. The new version is the old
//! version's pieces (immutable, so a reader of the old version keeps its bytes) followed by
//! a piece for the new bytes.
//!
//! Pieces stay few: a commit whose new bytes are at least as long as the last piece folds
//! that piece into its own (and so on backwards, like a binary counter), so a file has
//! about log2(appended bytes) pieces and each appended byte is logged again only that
//! many times; past `MAX_PIECES` everything after the first piece is folded.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::codec::Tier;
use super::store::FileKind;
use super::tree::Location;

/// Pieces a content may have after a commit.
pub const MAX_PIECES: usize = 32;

/// Contents up to this size are rewritten whole rather than appended to: they cost no more
/// to log than a record's metadata, and stay one piece.
pub const SMALL: u64 = 512;

/// Where one piece's bytes live: the simple locations (a piece never holds pieces, so no
/// record or checkpoint, damaged or not, can nest them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Part {
    Wal {
        seg: u64,
        off: u64,
    },
    Pack {
        tier: Tier,
        id: u64,
        off: u64,
        len: u32,
    },
    Blob {
        tier: Tier,
        id: u64,
    },
}

/// The first `len` bytes of a part that holds `size` bytes. `len` is below `size` only
/// when a file was cut inside a piece (truncated, or a record replayed over a checkpoint
/// that already holds its later versions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub part: Part,
    pub size: u64,
    pub len: u64,
}

impl Part {
    /// The part as a whole content's location (its length is the piece's `size`).
    pub fn location(self) -> Location {
        match self {
            Part::Wal { seg, off } => Location::Wal { seg, off },
            Part::Pack { tier, id, off, len } => Location::Pack { tier, id, off, len },
            Part::Blob { tier, id } => Location::Blob { tier, id },
        }
    }

    /// The shard file the part lives in, if any (else a log segment).
    pub fn shard_file(self) -> Option<(Tier, FileKind, u64)> {
        match self {
            Part::Pack { tier, id, .. } => Some((tier, FileKind::Pack, id)),
            Part::Blob { tier, id } => Some((tier, FileKind::Blob, id)),
            Part::Wal { .. } => None,
        }
    }
}

/// A content's pieces, in order: `size` is its length when `loc` is a simple location.
pub fn each(loc: &Location, size: u64) -> impl Iterator<Item = Piece> + '_ {
    let part = match *loc {
        Location::Wal { seg, off } => Some(Part::Wal { seg, off }),
        Location::Pack { tier, id, off, len } => Some(Part::Pack { tier, id, off, len }),
        Location::Blob { tier, id } => Some(Part::Blob { tier, id }),
        Location::Empty | Location::Extents(_) => None,
    };
    let many: &[Piece] = match loc {
        Location::Extents(p) => p,
        _ => &[],
    };
    let whole = part.map(|part| Piece {
        part,
        size,
        len: size,
    });
    whole.into_iter().chain(many.iter().copied())
}

pub fn pieces(loc: &Location, size: u64) -> Vec<Piece> {
    each(loc, size).collect()
}

/// The pieces holding the first `len` bytes of `pieces` (all of them, if they hold less).
pub fn prefix(pieces: &[Piece], len: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut at = 0;
    for p in pieces {
        if at >= len {
            break;
        }
        let take = p.len.min(len - at);
        out.push(Piece { len: take, ..*p });
        at += take;
    }
    out
}

/// The location of content made of `pieces`: a simple one when a single whole part holds
/// it all.
pub fn location(pieces: Vec<Piece>) -> Location {
    let pieces: Vec<Piece> = pieces.into_iter().filter(|p| p.len > 0).collect();
    match pieces.as_slice() {
        [] => Location::Empty,
        [p] if p.len == p.size => p.part.location(),
        _ => Location::Extents(Arc::from(pieces)),
    }
}

/// `prefix(pieces, base_len)` followed by a piece of `tail_len` bytes in `tail`.
pub fn append(pieces: &[Piece], base_len: u64, tail: Part, tail_len: u64) -> Location {
    let mut out = prefix(pieces, base_len);
    out.push(Piece {
        part: tail,
        size: tail_len,
        len: tail_len,
    });
    location(out)
}

/// Where a commit of `tail_len` new bytes after `pieces` should start its new piece: the
/// offset of the first piece folded into it (the pieces' length when none is). Zero means
/// the content is best rewritten whole.
pub fn fold_from(pieces: &[Piece], tail_len: u64) -> u64 {
    let total: u64 = pieces.iter().map(|p| p.len).sum();
    if total + tail_len <= SMALL {
        return 0;
    }
    let mut keep = pieces.len();
    let mut folded = tail_len;
    while keep > 0 && (pieces[keep - 1].len <= folded || keep >= MAX_PIECES) {
        keep -= 1;
        folded += pieces[keep].len;
    }
    pieces[..keep].iter().map(|p| p.len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::codec::Tier;
    use crate::engine::testutil::{file, get, new_universe, put, settings};
    use crate::engine::{CommitAt, Engine, lock, store};

    fn wal(off: u64, len: u64) -> Piece {
        Piece {
            part: Part::Wal { seg: 1, off },
            size: len,
            len,
        }
    }

    #[test]
    fn prefixes_cut_inside_a_piece_and_single_whole_pieces_are_simple() {
        let p = [wal(0, 10), wal(100, 5)];
        assert_eq!(
            prefix(&p, 12),
            vec![
                wal(0, 10),
                Piece {
                    len: 2,
                    ..wal(100, 5)
                }
            ]
        );
        assert_eq!(prefix(&p, 99), p.to_vec());
        assert_eq!(location(prefix(&p, 10)), Location::Wal { seg: 1, off: 0 });
        assert_eq!(location(prefix(&p, 0)), Location::Empty);
        assert!(matches!(location(prefix(&p, 4)), Location::Extents(_)));
    }

    #[test]
    fn folding_keeps_pieces_logarithmic_and_bounded() {
        let base = wal(0, 100 << 20);
        let mut pieces = vec![base];
        let mut logged = 0u64;
        for i in 0..10_000u64 {
            let total: u64 = pieces.iter().map(|p| p.len).sum();
            let from = fold_from(&pieces, 50);
            assert!(from >= base.len, "the large base is never folded");
            logged += total - from + 50;
            let mut next = prefix(&pieces, from);
            next.push(wal(1000 + i, total - from + 50));
            pieces = next;
            assert!(pieces.len() <= 16, "{} pieces", pieces.len());
        }
        // Each appended byte is logged about log2(appends) times, not the file's size.
        assert!(logged < 50 * 10_000 * 16, "{logged}");
        let mut many: Vec<Piece> = (0..40).map(|i| wal(i, 1000 - i)).collect();
        many.insert(0, base);
        assert_eq!(
            fold_from(&many, 1),
            base.len,
            "past MAX_PIECES the small ones fold"
        );
        assert_eq!(
            fold_from(&[wal(0, 10)], 10),
            0,
            "small contents are rewritten"
        );
    }

    /// `echo bytes >> f`: open for writing, write at the end, close.
    fn append(e: &Engine, f: u64, bytes: &[u8]) {
        e.open_handle(f, true).expect("open");
        let at = e.getattr(f).expect("attr").size;
        e.write(f, at, bytes).expect("write");
        e.commit(f, CommitAt::Close, &|_, _| Ok(()))
            .expect("commit");
        e.close_handle(f, true);
    }

    /// Bytes one append writes to the log and the shards (no checkpoint runs meanwhile).
    fn logged_by_append(e: &Engine, f: u64, bytes: &[u8]) -> u64 {
        let shards = || e.store.files().iter().map(|f| f.3).sum::<u64>();
        let (log, stored) = (e.wal.written(), shards());
        append(e, f, bytes);
        e.wal.written() - log + shards() - stored
    }

    fn content(n: usize, salt: u8) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ salt).collect()
    }

    fn piece_count(e: &Engine, f: u64) -> usize {
        let tree = lock(&e.tree);
        let n = tree.get(f).expect("node");
        pieces(&n.loc, n.meta.size).len()
    }

    #[test]
    fn an_append_logs_the_appended_bytes_whatever_the_files_size() {
        for tier in Tier::ALL {
            let tmp = tempfile::tempdir().expect("tmp");
            let e = new_universe(tmp.path(), tier);
            let (small, large) = (file(&e, "small"), file(&e, "large"));
            let mut big = content(5 * store::CHUNK + 3, 1);
            put(&e, small, b"x");
            put(&e, large, &big);
            let line = b"one more line of a log\n";
            let to_small = logged_by_append(&e, small, line);
            let to_large = logged_by_append(&e, large, line);
            big.extend_from_slice(line);
            assert!(to_large < 400, "{tier:?}: {to_large} log bytes for a line");
            assert!(to_large <= to_small + 16, "{to_small} vs {to_large}");
            assert!(get(&e, large) == big, "{tier:?}");
            // A blob's worth appended goes to a blob of its own.
            let more = content(2 * store::CHUNK, 2);
            assert!(logged_by_append(&e, large, &more) < 2 * store::CHUNK as u64 + 4096);
            big.extend_from_slice(&more);
            assert!(get(&e, large) == big);
            e.checkpoint().expect("checkpoint");
            assert!(get(&e, large) == big);
            drop(e);
            let e = Engine::open(tmp.path(), settings()).expect("reopen");
            assert!(get(&e, large) == big, "{tier:?} after reopen");
        }
    }

    #[test]
    fn a_reader_opened_before_an_append_keeps_its_version() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Warm);
        let f = file(&e, "f");
        let v1 = content(2 * store::CHUNK + 10, 3);
        put(&e, f, &v1);
        append(&e, f, b"tail one");
        let mut v2 = v1.clone();
        v2.extend_from_slice(b"tail one");
        let old = e.snapshot(f).expect("snapshot");
        append(&e, f, b"tail two");
        // The checkpoint moves the pieces out of the log and retires it.
        e.checkpoint().expect("checkpoint");
        append(&e, f, b"three");
        e.checkpoint().expect("checkpoint");
        let read = |s| e.read_version(s, 0, 1 << 30).expect("read").to_vec();
        assert!(
            read(&old) == v2,
            "the old reader sees the version it opened"
        );
        e.release_snapshot(&old);
        let now = e.snapshot(f).expect("snapshot");
        v2.extend_from_slice(b"tail twothree");
        assert!(read(&now) == v2);
        e.release_snapshot(&now);
    }

    #[test]
    fn writes_and_truncations_inside_the_committed_bytes_keep_every_byte() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "f");
        let mut model = content(3 * store::CHUNK, 4);
        put(&e, f, &model);
        append(&e, f, b"appended");
        model.extend_from_slice(b"appended");
        // A writer appends, reads back across base and its own bytes, then writes inside
        // the base: the draft takes a copy of it.
        e.open_handle(f, true).expect("open");
        let end = model.len() as u64;
        e.write(f, end, b"more").expect("write");
        model.extend_from_slice(b"more");
        let across = e.read(f, end - 3, 7, true).expect("read").to_vec();
        assert_eq!(across, model[end as usize - 3..end as usize + 4]);
        e.write(f, 100, b"patched").expect("write");
        model[100..107].copy_from_slice(b"patched");
        assert!(e.read(f, 0, 1 << 30, true).expect("read").to_vec() == model);
        e.commit(f, CommitAt::Close, &|_, _| Ok(()))
            .expect("commit");
        e.close_handle(f, true);
        assert!(get(&e, f) == model);
        // truncate(2) into the committed bytes logs no content.
        append(&e, f, b"and a tail");
        let before = e.wal.written();
        e.truncate(f, 10_000).expect("truncate");
        e.commit(f, CommitAt::Release, &|_, _| Ok(()))
            .expect("commit");
        e.drop_unheld_draft(f);
        assert!(e.wal.written() - before < 400);
        model.truncate(10_000);
        assert!(get(&e, f) == model);
        append(&e, f, b"after the cut");
        model.extend_from_slice(b"after the cut");
        assert!(get(&e, f) == model);
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert!(get(&e, f) == model);
    }

    #[test]
    fn many_appends_keep_few_pieces_and_every_byte() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Cold);
        let f = file(&e, "f");
        let mut model = content(store::CHUNK + 1, 5);
        put(&e, f, &model);
        let mut logged = 0;
        for i in 0..3000u32 {
            let line = format!("line {i}\n");
            logged += logged_by_append(&e, f, line.as_bytes());
            model.extend_from_slice(line.as_bytes());
            assert!(piece_count(&e, f) <= 16, "{} pieces", piece_count(&e, f));
            if i % 1000 == 999 {
                e.checkpoint().expect("checkpoint");
            }
        }
        assert!(get(&e, f) == model);
        assert!(logged < 3000 * 500, "{logged} log bytes for 3000 lines");
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert!(get(&e, f) == model);
    }

    /// Checkpoints running while appends commit: records the checkpoint holds are replayed
    /// over it after a crash, and give the same bytes.
    #[test]
    fn appends_racing_checkpoints_recover_exactly() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = std::sync::Arc::new(new_universe(tmp.path(), Tier::Hot));
        let f = file(&e, "f");
        let mut model = content(20_000, 6);
        put(&e, f, &model);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpointer = {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    e.checkpoint().expect("checkpoint");
                }
            })
        };
        for i in 0..400usize {
            let bytes = content(1 + i * 37 % 3000, i as u8);
            append(&e, f, &bytes);
            model.extend_from_slice(&bytes);
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        checkpointer.join().expect("checkpointer");
        assert!(get(&e, f) == model);
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert!(get(&e, f) == model);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Append(Vec<u8>),
        Write(u16, Vec<u8>),
        Truncate(u16),
        Checkpoint,
        Reopen,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        let bytes =
            |max: usize| (1..max, any::<u8>()).prop_map(|(n, salt): (usize, u8)| content(n, salt));
        prop_oneof![
            4 => bytes(3000).prop_map(Step::Append),
            1 => bytes(6000).prop_map(Step::Append),
            2 => (any::<u16>(), bytes(200)).prop_map(|(at, b)| Step::Write(at, b)),
            1 => any::<u16>().prop_map(Step::Truncate),
            1 => Just(Step::Checkpoint),
            1 => Just(Step::Reopen),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Appends, overwrites, truncations, checkpoints and crashes give the bytes a plain
        /// vector does; a reader opened at any point keeps its version to the end.
        #[test]
        fn any_mix_of_steps_matches_a_vector(
            steps in proptest::collection::vec(step(), 1..40),
        ) {
            let tmp = tempfile::tempdir().expect("tmp");
            let mut e = new_universe(tmp.path(), Tier::Warm);
            let f = file(&e, "f");
            let mut model: Vec<u8> = Vec::new();
            let mut readers = Vec::new();
            for s in steps {
                match s {
                    Step::Append(b) => {
                        append(&e, f, &b);
                        model.extend_from_slice(&b);
                    }
                    Step::Write(at, b) => {
                        let at = at as usize % (model.len() + 1);
                        e.open_handle(f, true).expect("open");
                        e.write(f, at as u64, &b).expect("write");
                        e.commit(f, CommitAt::Close, &|_, _| Ok(())).expect("commit");
                        e.close_handle(f, true);
                        if model.len() < at + b.len() {
                            model.resize(at + b.len(), 0);
                        }
                        model[at..at + b.len()].copy_from_slice(&b);
                    }
                    Step::Truncate(to) => {
                        let to = to as usize % (model.len() + 100);
                        e.truncate(f, to as u64).expect("truncate");
                        e.commit(f, CommitAt::Release, &|_, _| Ok(())).expect("commit");
                        e.drop_unheld_draft(f);
                        model.resize(to, 0);
                    }
                    Step::Checkpoint => e.checkpoint().expect("checkpoint"),
                    Step::Reopen => {
                        for (snap, _) in readers.drain(..) {
                            e.release_snapshot(&snap);
                        }
                        drop(e);
                        e = Engine::open(tmp.path(), settings()).expect("reopen");
                    }
                }
                proptest::prop_assert!(get(&e, f) == model);
                readers.push((e.snapshot(f).expect("snapshot"), model.clone()));
                for (snap, want) in &readers {
                    let got = e.read_version(snap, 0, 1 << 30).expect("read").to_vec();
                    proptest::prop_assert!(&got == want, "a reader's version changed");
                }
            }
        }
    }
}
