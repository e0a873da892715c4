//! `configuration/observatory.json`: how often the observatory samples, how much history
//! it keeps, and the thresholds of its alerts. Checked by the configuration region (an
//! invalid edit is EINVAL); read by the observatory as it stands.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const FILE: &str = "observatory.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// One row of `historical.csv` per this many seconds.
    pub sample_interval_secs: u64,
    /// Rows `historical.csv` keeps (the oldest go first).
    pub history_rows: u64,
    pub alerts: Thresholds,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Alert when the cache's hit ratio over the last period falls below this (0..1).
    pub cache_hit_ratio_below: f64,
    /// Alert when the 99th percentile of commits over the last period exceeds this.
    pub commit_p99_ms_above: f64,
    /// Alert when the data disk has less than this share free (percent).
    pub disk_free_percent_below: f64,
    /// Alert when more log than this waits for a checkpoint.
    pub wal_backlog_mb_above: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sample_interval_secs: 10,
            history_rows: 8640,
            alerts: Thresholds {
                cache_hit_ratio_below: 0.5,
                commit_p99_ms_above: 250.0,
                disk_free_percent_below: 5.0,
                wal_backlog_mb_above: 1024,
            },
        }
    }
}

fn invalid(why: &str) -> Error {
    Error::InvalidRecord(format!("{FILE}: {why}"))
}

impl Settings {
    pub fn check(&self) -> Result<()> {
        if !(1..=3600).contains(&self.sample_interval_secs) {
            return Err(invalid("sample_interval_secs must be between 1 and 3600"));
        }
        if !(10..=1_000_000).contains(&self.history_rows) {
            return Err(invalid("history_rows must be between 10 and 1000000"));
        }
        let a = &self.alerts;
        if !(0.0..=1.0).contains(&a.cache_hit_ratio_below) {
            return Err(invalid(
                "alerts.cache_hit_ratio_below must be between 0 and 1",
            ));
        }
        if !(a.commit_p99_ms_above.is_finite() && a.commit_p99_ms_above > 0.0) {
            return Err(invalid(
                "alerts.commit_p99_ms_above must be a positive number",
            ));
        }
        if !(0.0..=100.0).contains(&a.disk_free_percent_below) {
            return Err(invalid(
                "alerts.disk_free_percent_below must be between 0 and 100",
            ));
        }
        Ok(())
    }

    pub fn parse(bytes: &[u8]) -> Result<Settings> {
        let s: Settings = crate::regions::config::parse(FILE, bytes)?;
        s.check()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_and_bad_edits_are_refused() {
        let d = Settings::default();
        assert_eq!(
            Settings::parse(&crate::regions::pretty(&d)).ok(),
            Some(d.clone())
        );
        let mut v = serde_json::to_value(&d).unwrap_or_default();
        v["sample_interval_secs"] = 0.into();
        assert!(Settings::parse(v.to_string().as_bytes()).is_err());
        v["sample_interval_secs"] = 5.into();
        v["alerts"]["cache_hit_ratio_below"] = 2.into();
        assert!(Settings::parse(v.to_string().as_bytes()).is_err());
        v["alerts"]["cache_hit_ratio_below"] = 0.9.into();
        assert!(Settings::parse(v.to_string().as_bytes()).is_ok());
        v["alerts"]["extra"] = 1.into();
        assert!(Settings::parse(v.to_string().as_bytes()).is_err());
    }
}
