//! `configuration/temporal_policies.json`: when streams roll over, how they are stored,
//! how long they are kept. The configuration region checks edits against this schema
//! (an invalid edit is EINVAL); the temporal region reads the file as it stands, so an
//! edit applies from the next append or maintenance on.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const FILE: &str = "temporal_policies.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    /// How often maintenance runs by itself.
    pub maintenance_interval_secs: u64,
    /// An hour partition moves to `recent/` once it ended this long ago.
    pub live_window_hours: u64,
    /// A day moves to `historical/` once it ended this long ago.
    pub recent_window_hours: u64,
    /// A month is deleted once it ended this long ago; 0 keeps every month.
    pub historical_retention_months: u64,
    /// Raw bytes of events per compressed block (a range read decompresses whole blocks).
    pub block_kib: u64,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            maintenance_interval_secs: 30,
            live_window_hours: 1,
            recent_window_hours: 24,
            historical_retention_months: 12,
            block_kib: 256,
        }
    }
}

/// Each setting with its accepted range (the README lists the same).
const RANGES: [(&str, u64, u64); 5] = [
    ("maintenance_interval_secs", 1, 86_400),
    ("live_window_hours", 1, 24 * 31),
    ("recent_window_hours", 1, 24 * 366),
    ("historical_retention_months", 0, 12 * 100),
    ("block_kib", 4, 64 << 10),
];

/// What the build before the temporal region wrote into the file (never obeyed).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Retired {
    live_retention_hours: u64,
    recent_retention_days: u64,
    historical_retention_months: u64,
}

impl Policies {
    fn values(&self) -> [u64; 5] {
        [
            self.maintenance_interval_secs,
            self.live_window_hours,
            self.recent_window_hours,
            self.historical_retention_months,
            self.block_kib,
        ]
    }

    pub fn check(&self) -> Result<()> {
        crate::regions::config::check_ranges(FILE, &RANGES, &self.values())?;
        if self.recent_window_hours < self.live_window_hours {
            return Err(invalid(
                "recent_window_hours must be at least live_window_hours (a day leaves \
                 recent/ only after its hours left live/)",
            ));
        }
        Ok(())
    }

    /// Parses and checks the file's content.
    pub fn parse(bytes: &[u8]) -> Result<Policies> {
        let p: Policies = crate::regions::config::parse(FILE, bytes)?;
        p.check()?;
        Ok(p)
    }

    /// The policies an older build's file meant, if `bytes` is one.
    pub fn from_retired(bytes: &[u8]) -> Option<Policies> {
        let old: Retired = serde_json::from_slice(bytes).ok()?;
        let p = Policies {
            live_window_hours: old.live_retention_hours,
            recent_window_hours: old.recent_retention_days.saturating_mul(24),
            historical_retention_months: old.historical_retention_months,
            ..Policies::default()
        };
        p.check().ok().map(|()| p)
    }

    pub fn to_file(&self) -> Vec<u8> {
        crate::regions::pretty(self)
    }

    pub fn block_bytes(&self) -> usize {
        (self.block_kib as usize) << 10
    }
}

fn invalid(why: &str) -> Error {
    Error::InvalidRecord(format!("{FILE}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_and_bad_edits_are_refused() {
        let d = Policies::default();
        assert_eq!(Policies::parse(&d.to_file()).ok(), Some(d.clone()));
        let mut v = serde_json::to_value(&d).unwrap_or_default();
        v["live_window_hours"] = 0.into();
        assert!(Policies::parse(v.to_string().as_bytes()).is_err(), "range");
        v["live_window_hours"] = 48.into();
        assert!(
            Policies::parse(v.to_string().as_bytes()).is_err(),
            "recent < live"
        );
        v["live_window_hours"] = "1h".into();
        assert!(Policies::parse(v.to_string().as_bytes()).is_err(), "type");
        assert!(Policies::parse(b"{}").is_err(), "missing keys");
    }

    #[test]
    fn an_older_builds_file_keeps_its_meaning() {
        let old = br#"{"live_retention_hours": 2, "recent_retention_days": 3, "historical_retention_months": 6}"#;
        let p = Policies::from_retired(old).unwrap_or_default();
        assert_eq!(
            (
                p.live_window_hours,
                p.recent_window_hours,
                p.historical_retention_months
            ),
            (2, 72, 6)
        );
    }
}
