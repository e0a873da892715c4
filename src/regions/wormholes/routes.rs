//! `wormholes/routing_tables/<from>_to_<to>.routes`: what the tiering policy would move
//! next along one route (hot to warm, warm to cold), whether it is enabled or not, in
//! the order it would take them. Compact binary for programs (layout in FORMAT.md);
//! `islabdb routes FILE` prints one as JSON.

use serde_json::json;

use crate::engine::codec::Tier;
use crate::engine::frame;
use crate::error::{Error, Result};
use crate::regions::temporal::time::{self, Micros};

const MAGIC: &[u8; 8] = b"ISLROUT1";
const VERSION: u16 = 1;
const WHAT: &str = "routes file";
/// Entries a file lists at most (the first the policy would take).
pub const MAX_ENTRIES: usize = 65_536;
const ENTRY: usize = 28;
/// from, to, enabled, reserved, generated at, threshold, count.
const FIXED: usize = 4 + 8 + 8 + 4;

/// One record the policy would move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub ino: u64,
    /// Its last write or read (µs since the epoch).
    pub last_touch: Micros,
    pub size: u64,
    /// Reads within the policy's promotion window.
    pub reads: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routes {
    pub from: Tier,
    pub to: Tier,
    /// Whether the policy moves them (else it only shows what it would move).
    pub enabled: bool,
    pub at: Micros,
    /// How long a record must be untouched to take this route.
    pub after_secs: u64,
    pub entries: Vec<Route>,
}

fn tier_byte(b: u8) -> Result<Tier> {
    Tier::ALL
        .get(usize::from(b))
        .copied()
        .ok_or_else(|| Error::Corrupt(format!("{WHAT}: unknown tier {b}")))
}

impl Routes {
    pub fn encode(&self) -> Vec<u8> {
        let entries = &self.entries[..self.entries.len().min(MAX_ENTRIES)];
        let mut out = frame::file_header(MAGIC, VERSION).to_vec();
        out.extend_from_slice(&[self.from as u8, self.to as u8, u8::from(self.enabled), 0]);
        out.extend_from_slice(&self.at.to_le_bytes());
        out.extend_from_slice(&self.after_secs.to_le_bytes());
        // At most MAX_ENTRIES: fits a u32.
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            out.extend_from_slice(&e.ino.to_le_bytes());
            out.extend_from_slice(&e.last_touch.to_le_bytes());
            out.extend_from_slice(&e.size.to_le_bytes());
            out.extend_from_slice(&e.reads.to_le_bytes());
        }
        frame::seal(&mut out);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Routes> {
        let body = frame::unseal(bytes, MAGIC, VERSION, WHAT)?;
        let bad = |why: &str| Error::Corrupt(format!("{WHAT}: {why}"));
        if body.len() < FIXED {
            return Err(bad("shorter than its fixed fields"));
        }
        let (from, to) = (tier_byte(body[0])?, tier_byte(body[1])?);
        if body[2] > 1 || body[3] != 0 {
            return Err(bad("bad flags"));
        }
        let mut r = frame::Fields(&body[4..]);
        let at = r.i64();
        let after_secs = r.u64();
        let count = r.u32() as usize;
        if count > MAX_ENTRIES || r.0.len() != count * ENTRY {
            return Err(bad("entries do not match their count"));
        }
        let entries = (0..count)
            .map(|_| Route {
                ino: r.u64(),
                last_touch: r.i64(),
                size: r.u64(),
                reads: r.u32(),
            })
            .collect();
        Ok(Routes {
            from,
            to,
            enabled: body[2] == 1,
            at,
            after_secs,
            entries,
        })
    }

    /// As `islabdb routes` prints it.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "from": self.from.dir_name(),
            "to": self.to.dir_name(),
            "policy_enabled": self.enabled,
            "generated_at": time::format_rfc3339(self.at),
            "untouched_after_secs": self.after_secs,
            "count": self.entries.len(),
            "candidates": self.entries.iter().map(|e| json!({
                "inode": e.ino,
                "last_touch": time::format_rfc3339(e.last_touch),
                "size": e.size,
                "reads_in_window": e.reads,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_every_flipped_byte_is_caught() {
        let r = Routes {
            from: Tier::Hot,
            to: Tier::Warm,
            enabled: true,
            at: 1_780_000_000_000_000,
            after_secs: 86_400,
            entries: vec![
                Route {
                    ino: 42,
                    last_touch: 1_779_000_000_000_000,
                    size: 120,
                    reads: 0,
                },
                Route {
                    ino: 7,
                    last_touch: 1_779_500_000_000_000,
                    size: 3,
                    reads: 2,
                },
            ],
        };
        let b = r.encode();
        assert_eq!(b.len(), 12 + FIXED + 2 * ENTRY + 4);
        assert_eq!(Routes::decode(&b).ok(), Some(r.clone()));
        frame::assert_damage_is_caught(&b, |d| Routes::decode(d).is_ok());
        let empty = Routes {
            entries: Vec::new(),
            enabled: false,
            ..r
        };
        assert_eq!(Routes::decode(&empty.encode()).ok(), Some(empty));
    }
}
