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
use super::tree::Location;

/// Pieces a content may have after a commit.
pub const MAX_PIECES: usize = 32;

/// Contents up to this size are rewritten whole rather than appended to: they cost no more
/// to log than a record's metadata, and stay one piece.
pub const SMALL: u64 = 4096;

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
}
