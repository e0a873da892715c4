//! `entangled_keys.erl`: the pairs of one tier (a pair lives in the tier of its lower
//! inode), kept across restarts. Layout in FORMAT.md: the file header, a count, fixed
//! 28-byte pairs, the trailing CRC32.

use super::links::Pair;
use crate::engine::frame;
use crate::error::{Error, Result};

pub const FILE: &str = "entangled_keys.erl";
const MAGIC: &[u8; 8] = b"ISLENTK1";
const VERSION: u16 = 1;
const ENTRY: usize = 28;

pub fn encode(pairs: &[Pair]) -> Vec<u8> {
    let mut out = frame::file_header(MAGIC, VERSION).to_vec();
    out.reserve(4 + pairs.len() * ENTRY + 4);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for p in pairs {
        out.extend_from_slice(&p.a.to_le_bytes());
        out.extend_from_slice(&p.b.to_le_bytes());
        out.extend_from_slice(&p.strength.to_le_bytes());
        out.extend_from_slice(&p.at.to_le_bytes());
    }
    frame::seal(&mut out);
    out
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Pair>> {
    let body = frame::unseal(bytes, MAGIC, VERSION, FILE)?;
    let bad = || Error::Corrupt(format!("{FILE}: pairs do not match their count"));
    let (count, rest) = body.split_first_chunk::<4>().ok_or_else(bad)?;
    if rest.len() != u32::from_le_bytes(*count) as usize * ENTRY {
        return Err(bad());
    }
    Ok(rest
        .chunks_exact(ENTRY)
        .map(|c| {
            let u64_at = |i: usize| u64::from_le_bytes(c[i..i + 8].try_into().unwrap_or_default());
            Pair {
                a: u64_at(0),
                b: u64_at(8),
                strength: f32::from_le_bytes(c[16..20].try_into().unwrap_or_default()),
                at: u64_at(20) as i64,
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
