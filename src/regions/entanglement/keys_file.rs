//! `entangled_keys.erl`: the pairs of one tier (a pair lives in the tier of its lower
//! inode), kept across restarts. Layout in FORMAT.md: the file header, a count, fixed
//! 28-byte pairs, the trailing CRC32.

use super::links::Pair;
use crate::engine::frame;
use crate::error::Result;

pub const FILE: &str = "entangled_keys.erl";
const MAGIC: &[u8; 8] = b"ISLENTK1";
const VERSION: u16 = 1;
const ENTRY: usize = 28;

pub fn encode(pairs: &[Pair]) -> Vec<u8> {
    frame::records_file(MAGIC, VERSION, pairs.len(), |out| {
        for p in pairs {
            out.extend_from_slice(&p.a.to_le_bytes());
            out.extend_from_slice(&p.b.to_le_bytes());
            out.extend_from_slice(&p.strength.to_le_bytes());
            out.extend_from_slice(&p.at.to_le_bytes());
        }
    })
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Pair>> {
    let records = frame::records(bytes, (MAGIC, VERSION), ENTRY, FILE)?;
    Ok(records
        .map(|c| {
            let mut f = frame::Fields(c);
            Pair {
                a: f.u64(),
                b: f.u64(),
                strength: f.f32(),
                at: f.i64(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_damage_is_reported() {
        let pairs = vec![
            Pair {
                a: 3,
                b: 9,
                strength: 2.5,
                at: 1_700_000_000_000,
            },
            Pair {
                a: 4,
                b: 5,
                strength: 1.0,
                at: 7,
            },
        ];
        let b = encode(&pairs);
        assert_eq!(b.len(), 12 + 4 + 2 * ENTRY + 4);
        assert_eq!(decode(&b).ok(), Some(pairs));
        frame::assert_damage_is_caught(&b, |d| decode(d).is_ok());
        assert_eq!(decode(&encode(&[])).ok(), Some(Vec::new()));
    }
}
