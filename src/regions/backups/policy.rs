//! `configuration/backup_policy.json`: how many snapshots are kept, and for how long, and
//! how many lines `cosmic_events.jsonl` and `audit_trail.log` keep. Checked by the configuration region (an
//! invalid edit is EINVAL); applied by the backups region at its next tick.

use serde::{Deserialize, Serialize};

use crate::error::Result;

pub const FILE: &str = "backup_policy.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The newest this many snapshots are kept, older ones removed; 0 keeps every one.
    pub keep_last: u64,
    /// Snapshots older than this many days are removed; 0 keeps them whatever their age.
    pub keep_days: u64,
    /// Lines `backups/cosmic_logs/cosmic_events.jsonl` keeps (the oldest go first).
    pub events_kept: u64,
    /// Lines `backups/cosmic_logs/audit_trail.log` keeps (the oldest go first). A file
    /// written before the audit trail existed lacks it, and gets the default.
    #[serde(default = "audit_kept_default")]
    pub audit_kept: u64,
}

fn audit_kept_default() -> u64 {
    100_000
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            keep_last: 0,
            keep_days: 0,
            events_kept: 10_000,
            audit_kept: audit_kept_default(),
        }
    }
}

/// Each bounded setting with its accepted range (the README lists the same).
const RANGES: [(&str, u64, u64); 4] = [
    ("keep_last", 0, 100_000),
    ("keep_days", 0, 36_500),
    ("events_kept", 10, 10_000_000),
    ("audit_kept", 10, 10_000_000),
];

impl Policy {
    pub fn check(&self) -> Result<()> {
        let values = [
            self.keep_last,
            self.keep_days,
            self.events_kept,
            self.audit_kept,
        ];
        crate::regions::config::check_ranges(FILE, &RANGES, &values)
    }

    pub fn parse(bytes: &[u8]) -> Result<Policy> {
        let p: Policy = crate::regions::config::parse(FILE, bytes)?;
        p.check()?;
        Ok(p)
    }

    /// Which of `taken` (each snapshot's id and age in seconds, oldest first) go.
    pub fn expired(&self, taken: &[(u64, u64)]) -> Vec<u64> {
        let surplus = match self.keep_last {
            0 => 0,
            n => taken.len().saturating_sub(n as usize),
        };
        taken
            .iter()
            .enumerate()
            .filter(|&(i, &(_, age))| {
                i < surplus || (self.keep_days > 0 && age > self.keep_days * 86_400)
            })
            .map(|(_, &(id, _))| id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_n_and_the_recent_are_kept() {
        let day = 86_400;
        let taken = [(1, 5 * day), (2, 3 * day), (3, day), (4, 10)];
        let p = |keep_last, keep_days| Policy {
            keep_last,
            keep_days,
            ..Policy::default()
        };
        assert!(
            p(0, 0).expired(&taken).is_empty(),
            "keeps everything by default"
        );
        assert_eq!(p(2, 0).expired(&taken), [1, 2]);
        assert_eq!(p(0, 2).expired(&taken), [1, 2]);
        assert_eq!(p(3, 4).expired(&taken), [1]);
        assert_eq!(p(10, 0).expired(&taken), Vec::<u64>::new());
        let v = serde_json::to_value(Policy::default()).unwrap_or_default();
        assert!(Policy::parse(v.to_string().as_bytes()).is_ok());
        let mut bad = v.clone();
        bad["events_kept"] = 1.into();
        assert!(Policy::parse(bad.to_string().as_bytes()).is_err());
        let mut bad = v;
        bad["keep"] = 1.into();
        assert!(Policy::parse(bad.to_string().as_bytes()).is_err());
    }

    /// A policy file written before the audit trail existed (no `audit_kept`) still
    /// parses, and keeps the default number of audit lines.
    #[test]
    fn a_policy_from_before_the_audit_trail_gets_its_default() {
        let old = br#"{"keep_last": 3, "keep_days": 0, "events_kept": 500}"#;
        let p = Policy::parse(old).expect("parses");
        assert_eq!(p.audit_kept, 100_000);
        assert_eq!((p.keep_last, p.events_kept), (3, 500));
    }
}
