//! The cache across restarts: at a clean unmount the files the content cache holds are
//! written, per tier, to `spacetime/<tier>/event_horizon/cache_state.erl` (most recently
//! used first); at the next mount they are read back in the background, least recent
//! first and no more than the cache's budget, so the working set of before is in the
//! cache again and the first reads after a restart hit it.

use std::collections::VecDeque;

use crate::engine::frame;
use crate::error::Result;
use crate::regions::Cx;

pub const FILE: &str = "cache_state.erl";
const MAGIC: &[u8; 8] = b"ISLCSTA1";
const VERSION: u16 = 1;

/// One cached file: its inode, the bytes cached of it, its rank (0 = most recent) over
/// every tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub ino: u64,
    pub bytes: u64,
    pub rank: u32,
}

pub fn encode(entries: &[Entry]) -> Vec<u8> {
    frame::records_file(MAGIC, VERSION, entries.len(), |out| {
        for e in entries {
            out.extend_from_slice(&e.ino.to_le_bytes());
            out.extend_from_slice(&e.bytes.to_le_bytes());
            out.extend_from_slice(&e.rank.to_le_bytes());
        }
    })
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Entry>> {
    let records = frame::records(bytes, (MAGIC, VERSION), 20, FILE)?;
    Ok(records
        .map(|c| {
            let mut f = frame::Fields(c);
            Entry {
                ino: f.u64(),
                bytes: f.u64(),
                rank: f.u32(),
            }
        })
        .collect())
}

/// The warming under way.
#[derive(Default)]
pub struct Warming {
    /// Files still to read, least recent first.
    pub queue: VecDeque<u64>,
    pub saved: usize,
    pub files: u64,
    pub bytes: u64,
}

/// What to read back: the most recent files that fit `budget`, least recent first.
pub fn plan(mut entries: Vec<Entry>, budget: u64) -> VecDeque<u64> {
    entries.sort_by_key(|e| e.rank);
    let mut total = 0;
    let fit: Vec<u64> = entries
        .into_iter()
        .take_while(|e| {
            total += e.bytes;
            total <= budget
        })
        .map(|e| e.ino)
        .collect();
    fit.into_iter().rev().collect()
}

/// Reads files of `w.queue` back into the cache, about `step` bytes of them.
pub fn warm(cx: &Cx<'_>, w: &mut Warming, step: u64) {
    let mut done = 0;
    while done < step {
        let Some(ino) = w.queue.pop_front() else {
            return;
        };
        let Ok(attr) = cx.store.getattr(ino) else {
            continue;
        };
        if attr.kind != crate::engine::tree::Kind::File {
            continue;
        }
        let mut off = 0;
        while off < attr.size {
            match cx
                .store
                .read(ino, off, (attr.size - off).min(1 << 20) as usize)
            {
                Ok(d) if !d.is_empty() => off += d.len() as u64,
                _ => break,
            }
        }
        w.files += 1;
        w.bytes += off;
        done += off.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_reported() {
        let e = vec![
            Entry {
                ino: 7,
                bytes: 100,
                rank: 0,
            },
            Entry {
                ino: 9,
                bytes: 5,
                rank: 3,
            },
        ];
        let b = encode(&e);
        assert_eq!(decode(&b).ok(), Some(e.clone()));
        frame::assert_damage_is_caught(&b, |d| decode(d).is_ok());
    }

    #[test]
    fn the_most_recent_files_that_fit_are_read_least_recent_first() {
        let e = |ino, bytes, rank| Entry { ino, bytes, rank };
        let q = plan(vec![e(1, 50, 2), e(2, 50, 0), e(3, 50, 1)], 100);
        assert_eq!(q, [3, 2]);
    }
}
