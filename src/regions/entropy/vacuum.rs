//! `entropy/vacuum_stability.metrics`: the balance in binary, for programs: each tier's
//! files, bytes, temperature and moves now, the entropy now, and the entropy of the last
//! samples (how stable the spread has been). Layout in FORMAT.md.

use crate::engine::frame;
use crate::error::{Error, Result};
use crate::regions::temporal::time::Micros;

pub const FILE: &str = "vacuum_stability.metrics";
const MAGIC: &[u8; 8] = b"ISLVACU1";
const VERSION: u16 = 1;
/// Samples the file holds at most (the newest).
pub const SAMPLES: usize = 60;
const TIER_BYTES: usize = 40;
const SAMPLE_BYTES: usize = 24;
/// at, period, three tiers, two entropies, the sample count.
const FIXED: usize = 8 + 4 + 3 * TIER_BYTES + 16 + 2;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TierFigures {
    pub records: u64,
    pub bytes: u64,
    /// Reads and commits of its records per second over the period.
    pub ops_per_sec: f64,
    pub moved_in: u64,
    pub moved_out: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub at: Micros,
    pub records_entropy: f64,
    pub bytes_entropy: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vacuum {
    pub at: Micros,
    /// The period temperatures are measured over, in milliseconds.
    pub period_ms: u32,
    pub tiers: [TierFigures; 3],
    pub records_entropy: f64,
    pub bytes_entropy: f64,
    /// Oldest first.
    pub samples: Vec<Sample>,
}

impl Vacuum {
    pub fn encode(&self) -> Vec<u8> {
        let samples = &self.samples[self.samples.len().saturating_sub(SAMPLES)..];
        let mut out = frame::file_header(MAGIC, VERSION).to_vec();
        out.extend_from_slice(&self.at.to_le_bytes());
        out.extend_from_slice(&self.period_ms.to_le_bytes());
        for t in &self.tiers {
            out.extend_from_slice(&t.records.to_le_bytes());
            out.extend_from_slice(&t.bytes.to_le_bytes());
            out.extend_from_slice(&t.ops_per_sec.to_le_bytes());
            out.extend_from_slice(&t.moved_in.to_le_bytes());
            out.extend_from_slice(&t.moved_out.to_le_bytes());
        }
        out.extend_from_slice(&self.records_entropy.to_le_bytes());
        out.extend_from_slice(&self.bytes_entropy.to_le_bytes());
        // At most SAMPLES: fits a u16.
        out.extend_from_slice(&(samples.len() as u16).to_le_bytes());
        for s in samples {
            out.extend_from_slice(&s.at.to_le_bytes());
            out.extend_from_slice(&s.records_entropy.to_le_bytes());
            out.extend_from_slice(&s.bytes_entropy.to_le_bytes());
        }
        frame::seal(&mut out);
        out
    }

    /// As `islabdb vacuum` prints it.
    pub fn json(&self) -> serde_json::Value {
        use crate::regions::temporal::time::format_rfc3339;
        let tiers: serde_json::Map<String, serde_json::Value> = crate::engine::codec::Tier::ALL
            .iter()
            .zip(&self.tiers)
            .map(|(tier, t)| {
                let v = serde_json::json!({
                    "records": t.records,
                    "bytes": t.bytes,
                    "ops_per_sec": t.ops_per_sec,
                    "moved_in": t.moved_in,
                    "moved_out": t.moved_out,
                });
                (tier.dir_name().to_string(), v)
            })
            .collect();
        serde_json::json!({
            "at": format_rfc3339(self.at),
            "period_ms": self.period_ms,
            "tiers": tiers,
            "records_entropy_bits": self.records_entropy,
            "bytes_entropy_bits": self.bytes_entropy,
            "samples": self.samples.iter().map(|s| serde_json::json!({
                "at": format_rfc3339(s.at),
                "records_entropy_bits": s.records_entropy,
                "bytes_entropy_bits": s.bytes_entropy,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<Vacuum> {
        let body = frame::unseal(bytes, MAGIC, VERSION, FILE)?;
        let bad = || Error::Corrupt(format!("{FILE}: samples do not match their count"));
        if body.len() < FIXED {
            return Err(bad());
        }
        let mut r = frame::Fields(body);
        let at = r.i64();
        let period_ms = r.u32();
        let mut tiers = [TierFigures::default(); 3];
        for t in &mut tiers {
            *t = TierFigures {
                records: r.u64(),
                bytes: r.u64(),
                ops_per_sec: r.f64(),
                moved_in: r.u64(),
                moved_out: r.u64(),
            };
        }
        let records_entropy = r.f64();
        let bytes_entropy = r.f64();
        let count = r.u16() as usize;
        if r.0.len() != count * SAMPLE_BYTES {
            return Err(bad());
        }
        let samples = (0..count)
            .map(|_| Sample {
                at: r.i64(),
                records_entropy: r.f64(),
                bytes_entropy: r.f64(),
            })
            .collect();
        Ok(Vacuum {
            at,
            period_ms,
            tiers,
            records_entropy,
            bytes_entropy,
            samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_every_flipped_byte_is_caught() {
        let v = Vacuum {
            at: 1_780_000_000_000_000,
            period_ms: 10_000,
            tiers: [
                TierFigures {
                    records: 3,
                    bytes: 300,
                    ops_per_sec: 1.5,
                    moved_in: 1,
                    moved_out: 2,
                },
                TierFigures::default(),
                TierFigures {
                    records: 1,
                    bytes: 9,
                    ops_per_sec: 0.0,
                    moved_in: 2,
                    moved_out: 0,
                },
            ],
            records_entropy: 0.81,
            bytes_entropy: 0.19,
            samples: vec![
                Sample {
                    at: 1,
                    records_entropy: 0.5,
                    bytes_entropy: 0.25,
                },
                Sample {
                    at: 2,
                    records_entropy: 0.81,
                    bytes_entropy: 0.19,
                },
            ],
        };
        let b = v.encode();
        assert_eq!(b.len(), 12 + FIXED + 2 * SAMPLE_BYTES + 4);
        assert_eq!(Vacuum::decode(&b).ok(), Some(v.clone()));
        frame::assert_damage_is_caught(&b, |d| Vacuum::decode(d).is_ok());
        let many = Vacuum {
            samples: vec![Sample::default(); SAMPLES + 5],
            ..v
        };
        let back = Vacuum::decode(&many.encode()).map(|v| v.samples.len()).ok();
        assert_eq!(back, Some(SAMPLES), "only the newest are kept");
    }
}
