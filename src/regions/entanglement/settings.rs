//! `configuration/entanglement_rules.json`: what counts as records read together, how
//! fast the memory of it fades, how much of it is kept, and how much is prefetched; and,
//! under `graph`, what makes two graph nodes entangled (`regions::graph::entangle`).
//! Checked by the configuration region (an invalid edit is EINVAL); read by the
//! entanglement region as it stands.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::regions::config;

pub const FILE: &str = "entanglement_rules.json";

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Two records opened for reading at most this far apart were read together.
    pub window_ms: u64,
    /// A pair's strength (one per time read together) halves in this time.
    pub half_life_secs: u64,
    /// Partners at least this strong are entangled: shown so and prefetched.
    pub min_strength: f64,
    /// Entangled partners brought into the cache when a record is opened (0: none).
    pub prefetch_partners: usize,
    /// Partners kept per record (the weakest goes first).
    pub partners_per_key: usize,
    /// Pairs kept in all: bounds memory and `entangled_keys.erl` (28 bytes a pair).
    pub max_pairs: usize,
    /// Graph nodes' entanglement (absent in files of older builds: the defaults).
    #[serde(default)]
    pub graph: GraphRules,
}

/// What makes two graph nodes entangled: enough neighbours in common (weighted by the
/// edges' effective, decayed strengths), or coordinates nearly alike.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphRules {
    /// Neighbours two nodes must share at least.
    pub min_shared_neighbours: u64,
    /// Their neighbourhoods' weighted Jaccard similarity must reach this (0..1).
    pub min_jaccard: f64,
    /// Or their cosine similarity must reach this (0..1).
    pub min_similarity: f64,
    /// Pairs kept (the strongest).
    pub max_pairs: u64,
    /// Entangled partners brought into the cache when a node is opened.
    pub prefetch_partners: u64,
    /// Maintenance recomputes the pairs at most this often, once the graph changed.
    pub interval_secs: u64,
}

impl Default for GraphRules {
    fn default() -> Self {
        GraphRules {
            min_shared_neighbours: 2,
            min_jaccard: 0.5,
            min_similarity: 0.95,
            max_pairs: 10_000,
            prefetch_partners: 4,
            interval_secs: 60,
        }
    }
}

const GRAPH_RANGES: [(&str, u64, u64); 4] = [
    ("graph.min_shared_neighbours", 1, 1_000),
    ("graph.max_pairs", 1, 1_000_000),
    ("graph.prefetch_partners", 0, 64),
    ("graph.interval_secs", 1, 86_400),
];

impl GraphRules {
    fn check(&self) -> Result<()> {
        let values = [
            self.min_shared_neighbours,
            self.max_pairs,
            self.prefetch_partners,
            self.interval_secs,
        ];
        config::check_ranges(FILE, &GRAPH_RANGES, &values)?;
        for (name, v) in [
            ("graph.min_jaccard", self.min_jaccard),
            ("graph.min_similarity", self.min_similarity),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(config::invalid(
                    FILE,
                    &format!("{name} must be between 0 and 1"),
                ));
            }
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window_ms: 1000,
            half_life_secs: 86_400,
            // Read together twice, not long ago (each time adds one; it fades since).
            min_strength: 1.5,
            prefetch_partners: 4,
            partners_per_key: 16,
            max_pairs: 100_000,
            graph: GraphRules::default(),
        }
    }
}

/// Each bounded setting with its accepted range (the README lists the same).
const RANGES: [(&str, u64, u64); 5] = [
    ("window_ms", 1, 60_000),
    ("half_life_secs", 1, 365 * 86_400),
    ("prefetch_partners", 0, 64),
    ("partners_per_key", 1, 256),
    ("max_pairs", 16, 10_000_000),
];

impl Settings {
    pub fn check(&self) -> Result<()> {
        let values = [
            self.window_ms,
            self.half_life_secs,
            self.prefetch_partners as u64,
            self.partners_per_key as u64,
            self.max_pairs as u64,
        ];
        config::check_ranges(FILE, &RANGES, &values)?;
        if !(self.min_strength.is_finite() && self.min_strength > 0.0) {
            return Err(config::invalid(
                FILE,
                "min_strength must be a positive number",
            ));
        }
        self.graph.check()
    }

    pub fn parse(bytes: &[u8]) -> Result<Settings> {
        let s: Settings = crate::regions::config::parse(FILE, bytes)?;
        s.check()?;
        Ok(s)
    }

    /// The file older builds wrote at bootstrap and never read
    /// (`{"co_access_window_ms", "min_correlation"}`): its window is kept.
    pub fn from_retired(bytes: &[u8]) -> Option<Settings> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Old {
            co_access_window_ms: u64,
            #[serde(rename = "min_correlation")]
            _min_correlation: f64,
        }
        let old: Old = serde_json::from_slice(bytes).ok()?;
        let s = Settings {
            window_ms: old.co_access_window_ms,
            ..Settings::default()
        };
        s.check().ok().map(|()| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_values_are_refused() {
        let d = Settings::default();
        assert!(d.check().is_ok());
        let text = serde_json::to_vec(&d).expect("json");
        assert_eq!(Settings::parse(&text).ok(), Some(d));
        for bad in [
            Settings { window_ms: 0, ..d },
            Settings {
                min_strength: -1.0,
                ..d
            },
            Settings { max_pairs: 1, ..d },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        assert!(Settings::parse(br#"{"window_ms": 5}"#).is_err());
        let mut bad_graph = d;
        bad_graph.graph.min_jaccard = 1.5;
        assert!(bad_graph.check().is_err());
        // A file without the graph's section (an older build's) takes its defaults.
        let mut old = serde_json::to_value(d).expect("json");
        old.as_object_mut().expect("object").remove("graph");
        let parsed = Settings::parse(old.to_string().as_bytes()).expect("parses");
        assert_eq!(parsed.graph, GraphRules::default());
        let old = br#"{"co_access_window_ms": 250, "min_correlation": 0.5}"#;
        assert_eq!(Settings::from_retired(old).map(|s| s.window_ms), Some(250));
    }
}
