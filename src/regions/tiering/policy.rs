//! `configuration/tiering_policy.json`: whether records move between tiers by themselves,
//! and when. Checked by the configuration region (an invalid edit is EINVAL); read by the
//! tiering as it stands. Off by default: a record stays where its writer put it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const FILE: &str = "tiering_policy.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Whether the policy moves records (the routing tables show what it would move
    /// either way).
    pub enabled: bool,
    /// A hot record neither read nor written for this long moves to warm.
    pub demote_after_secs: u64,
    /// A warm record neither read nor written for this long moves to cold.
    pub demote_cold_after_secs: u64,
    /// A warm or cold record read this many times within `promote_window_secs` moves to
    /// hot.
    pub promote_after_reads: u32,
    pub promote_window_secs: u64,
    /// Moves one pass makes at most (the oldest, and the most read, first).
    pub max_moves_per_pass: u32,
    /// A pass every this many seconds.
    pub interval_secs: u64,
    /// Lines `entropy/rebalancing_log.jsonl` keeps (the oldest go first).
    pub log_rows: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: false,
            demote_after_secs: 86_400,
            demote_cold_after_secs: 7 * 86_400,
            promote_after_reads: 10,
            promote_window_secs: 600,
            max_moves_per_pass: 100,
            interval_secs: 60,
            log_rows: 10_000,
        }
    }
}

fn invalid(why: &str) -> Error {
    Error::InvalidRecord(format!("{FILE}: {why}"))
}

/// Each bounded setting with its accepted range (the README lists the same).
const RANGES: [(&str, u64, u64); 6] = [
    ("demote_after_secs", 1, 10 * 365 * 86_400),
    ("demote_cold_after_secs", 1, 10 * 365 * 86_400),
    ("promote_window_secs", 1, 86_400),
    ("max_moves_per_pass", 1, 100_000),
    ("interval_secs", 1, 86_400),
    ("log_rows", 10, 1_000_000),
];

impl Policy {
    fn values(&self) -> [u64; 6] {
        [
            self.demote_after_secs,
            self.demote_cold_after_secs,
            self.promote_window_secs,
            u64::from(self.max_moves_per_pass),
            self.interval_secs,
            self.log_rows,
        ]
    }

    pub fn check(&self) -> Result<()> {
        crate::regions::config::check_ranges(FILE, &RANGES, &self.values())?;
        if self.promote_after_reads == 0 {
            return Err(invalid("promote_after_reads must be at least 1"));
        }
        Ok(())
    }

    pub fn parse(bytes: &[u8]) -> Result<Policy> {
        let p: Policy = crate::regions::config::parse(FILE, bytes)?;
        p.check()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_and_bad_edits_are_refused() {
        let d = Policy::default();
        assert!(!d.enabled, "off by default");
        assert_eq!(
            Policy::parse(&crate::regions::pretty(&d)).ok(),
            Some(d.clone())
        );
        let mut v = serde_json::to_value(&d).unwrap_or_default();
        v["demote_after_secs"] = 0.into();
        assert!(Policy::parse(v.to_string().as_bytes()).is_err());
        v["demote_after_secs"] = 2.into();
        v["promote_after_reads"] = 0.into();
        assert!(Policy::parse(v.to_string().as_bytes()).is_err());
        v["promote_after_reads"] = 3.into();
        v["enabled"] = true.into();
        assert!(Policy::parse(v.to_string().as_bytes()).is_ok());
        v["enabled"] = "yes".into();
        assert!(Policy::parse(v.to_string().as_bytes()).is_err());
        v["enabled"] = true.into();
        v["extra"] = 1.into();
        assert!(Policy::parse(v.to_string().as_bytes()).is_err());
    }
}
