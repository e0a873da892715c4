//! `configuration/`: records the daemon itself obeys. A known file that does not fit its
//! schema is refused at commit (EINVAL) and the running configuration stays as it was.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::Settings;
use crate::engine::codec::Tier;
use crate::error::{Error, Result};

pub const SHARD_TOPOLOGY: &str = "shard_topology.json";
pub const UNIVERSE_PARAMETERS: &str = "universe_parameters.json";
const WINDOW_MAX_MS: u64 = 60_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPolicy {
    /// Fixed per tier (DESIGN.md); stated here so the file documents the shard.
    pub codec: String,
    /// How long a commit may stay volatile; 0 = durable before close returns.
    pub durability_window_ms: u64,
    pub consistency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardTopology {
    pub hot_data: TierPolicy,
    pub warm_data: TierPolicy,
    pub cold_data: TierPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniverseParameters {
    pub cache_budget_mb: u64,
    pub checkpoint_interval_secs: u64,
    pub checkpoint_log_mb: u64,
    pub log_segment_mb: u64,
}

impl Default for ShardTopology {
    fn default() -> Self {
        let policy = |tier: Tier, ms, consistency: &str| TierPolicy {
            codec: tier.codec().name().into(),
            durability_window_ms: ms,
            consistency: consistency.into(),
        };
        ShardTopology {
            hot_data: policy(Tier::Hot, 0, "strong"),
            warm_data: policy(Tier::Warm, 100, "eventual"),
            cold_data: policy(Tier::Cold, 1000, "weak"),
        }
    }
}

impl ShardTopology {
    pub fn policy(&self, tier: Tier) -> &TierPolicy {
        match tier {
            Tier::Hot => &self.hot_data,
            Tier::Warm => &self.warm_data,
            Tier::Cold => &self.cold_data,
        }
    }

    fn check(&self) -> Result<()> {
        for tier in Tier::ALL {
            let p = self.policy(tier);
            if p.codec != tier.codec().name() {
                return Err(Error::InvalidRecord(format!(
                    "{}: the codec of {} is fixed to \"{}\"",
                    SHARD_TOPOLOGY,
                    tier.dir_name(),
                    tier.codec().name()
                )));
            }
            if p.durability_window_ms > WINDOW_MAX_MS {
                return Err(Error::InvalidRecord(format!(
                    "{}: durability_window_ms of {} must be at most {WINDOW_MAX_MS}",
                    SHARD_TOPOLOGY,
                    tier.dir_name()
                )));
            }
        }
        Ok(())
    }
}

impl Default for UniverseParameters {
    fn default() -> Self {
        let s = Settings::default();
        UniverseParameters {
            cache_budget_mb: (s.cache_budget >> 20) as u64,
            checkpoint_interval_secs: s.checkpoint_interval.as_secs(),
            checkpoint_log_mb: s.checkpoint_bytes >> 20,
            log_segment_mb: s.segment_max >> 20,
        }
    }
}

impl UniverseParameters {
    fn check(&self) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::InvalidRecord(format!(
                "{UNIVERSE_PARAMETERS}: {what}"
            )))
        };
        if !(1..=1 << 20).contains(&self.cache_budget_mb) {
            return bad("cache_budget_mb must be between 1 and 1048576");
        }
        if !(1..=86_400).contains(&self.checkpoint_interval_secs) {
            return bad("checkpoint_interval_secs must be between 1 and 86400");
        }
        if !(1..=1 << 16).contains(&self.checkpoint_log_mb)
            || !(1..=4096).contains(&self.log_segment_mb)
        {
            return bad("checkpoint_log_mb and log_segment_mb must be positive and sane");
        }
        Ok(())
    }
}

fn parse<T: for<'de> Deserialize<'de>>(name: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::InvalidRecord(format!(
            "{name}: line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// Checks a configuration file the daemon obeys; other names only need to be JSON.
pub fn validate(name: &str, bytes: &[u8]) -> Result<()> {
    match name {
        SHARD_TOPOLOGY => parse::<ShardTopology>(name, bytes)?.check(),
        UNIVERSE_PARAMETERS => parse::<UniverseParameters>(name, bytes)?.check(),
        _ => Ok(()),
    }
}

/// The engine settings from the two files (either may be missing: defaults apply).
/// `cache_override` (from the command line) wins over the file.
pub fn settings(
    topology: Option<&[u8]>,
    params: Option<&[u8]>,
    cache_override: Option<usize>,
) -> Settings {
    let topology: ShardTopology = topology
        .and_then(|b| {
            parse(SHARD_TOPOLOGY, b)
                .map_err(|e| log::warn!("{e}; using defaults"))
                .ok()
        })
        .unwrap_or_default();
    let params: UniverseParameters = params
        .and_then(|b| {
            parse(UNIVERSE_PARAMETERS, b)
                .map_err(|e| log::warn!("{e}; using defaults"))
                .ok()
        })
        .unwrap_or_default();
    let mut s = Settings::default();
    for tier in Tier::ALL {
        s.windows[tier as usize] =
            Duration::from_millis(topology.policy(tier).durability_window_ms);
    }
    s.cache_budget = cache_override.unwrap_or((params.cache_budget_mb as usize) << 20);
    s.checkpoint_interval = Duration::from_secs(params.checkpoint_interval_secs);
    s.checkpoint_bytes = params.checkpoint_log_mb << 20;
    s.segment_max = params.log_segment_mb << 20;
    s
}

/// The files `configuration/` starts with: (name, pretty JSON).
pub fn defaults() -> Vec<(&'static str, String)> {
    let pretty = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    vec![
        (
            "physics_constants.json",
            pretty(serde_json::json!({
                "cosmic_background_radiation_kelvin": 2.7,
                "speed_of_light_m_per_s": 299_792_458u64,
                "note": "Informational; the engine does not read these."
            })),
        ),
        (
            SHARD_TOPOLOGY,
            pretty(serde_json::to_value(ShardTopology::default()).unwrap_or_default()),
        ),
        (
            "entanglement_rules.json",
            pretty(serde_json::json!({ "co_access_window_ms": 1000, "min_correlation": 0.5 })),
        ),
        (
            "temporal_policies.json",
            pretty(serde_json::json!({
                "live_retention_hours": 1,
                "recent_retention_days": 1,
                "historical_retention_months": 12
            })),
        ),
        (
            UNIVERSE_PARAMETERS,
            pretty(serde_json::to_value(UniverseParameters::default()).unwrap_or_default()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_give_the_documented_windows() {
        for (name, text) in defaults() {
            assert!(validate(name, text.as_bytes()).is_ok(), "{name}");
        }
        let d = defaults();
        let topo = d
            .iter()
            .find(|(n, _)| *n == SHARD_TOPOLOGY)
            .map(|(_, t)| t.as_bytes());
        let s = settings(topo, None, None);
        assert_eq!(
            s.windows,
            [
                Duration::ZERO,
                Duration::from_millis(100),
                Duration::from_secs(1)
            ]
        );
    }

    #[test]
    fn bad_edits_are_refused() {
        let mut v = serde_json::to_value(ShardTopology::default()).unwrap_or_default();
        v["warm_data"]["codec"] = "lz4".into();
        assert!(validate(SHARD_TOPOLOGY, v.to_string().as_bytes()).is_err());
        v["warm_data"]["codec"] = "zlib".into();
        v["warm_data"]["durability_window_ms"] = 500.into();
        assert!(validate(SHARD_TOPOLOGY, v.to_string().as_bytes()).is_ok());
        let s = settings(Some(v.to_string().as_bytes()), None, Some(1 << 20));
        assert_eq!(s.windows[1], Duration::from_millis(500));
        assert_eq!(s.cache_budget, 1 << 20);
        v["warm_data"]["durability_window_ms"] = "soon".into();
        assert!(validate(SHARD_TOPOLOGY, v.to_string().as_bytes()).is_err());
        assert!(validate(UNIVERSE_PARAMETERS, br#"{"cache_budget_mb": 0, "checkpoint_interval_secs": 1, "checkpoint_log_mb": 1, "log_segment_mb": 1}"#).is_err());
        assert!(
            validate(UNIVERSE_PARAMETERS, br#"{"cache_budget_mb": 5}"#).is_err(),
            "missing keys"
        );
    }
}
