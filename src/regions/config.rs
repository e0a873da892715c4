//! `configuration/`: the files the daemon obeys. Each setting in them takes effect as soon
//! as its file is committed, by whatever way the content arrives (an editor's write, `sed
//! -i`'s rename, `mv tmp …`); content that does not fit the schema is refused with EINVAL
//! and the running and stored configuration stay as they were. A setting the daemon does
//! not obey is not in the files.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::Settings;
use crate::engine::codec::Tier;
use crate::error::{Error, Result};
use crate::regions::access;
use crate::regions::backups;
use crate::regions::entanglement::{self, settings::Settings as EntanglementRules};
use crate::regions::json::JsonCheck;
use crate::regions::observatory;
use crate::regions::records::json_rule;
use crate::regions::temporal::policy::{self, Policies};
use crate::regions::tiering;
use crate::regions::{Check, Cx, Dir, Region, Removal, Rule, Tag, pretty};

pub const SHARD_TOPOLOGY: &str = "shard_topology.json";
pub const UNIVERSE_PARAMETERS: &str = "universe_parameters.json";
const DIR: &str = "configuration";
const WINDOW_MAX_MS: u64 = 60_000;
/// Configuration files are small; anything larger is refused before it is held.
const FILE_MAX: usize = 64 << 10;
/// Files older builds wrote at bootstrap and never read. Removed at start if unchanged.
const RETIRED: [&str; 1] = ["physics_constants.json"];
/// The temporal region's policies (`regions::temporal::policy`).
pub const TEMPORAL_POLICIES: &str = policy::FILE;
/// The observatory's sampling and alerts (`regions::observatory::settings`).
pub const OBSERVATORY: &str = observatory::settings::FILE;
/// Which records are read together, and what is prefetched (`regions::entanglement`).
pub const ENTANGLEMENT: &str = entanglement::settings::FILE;
/// Moves between tiers by themselves (`regions::tiering::policy`).
pub const TIERING_POLICY: &str = tiering::policy::FILE;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPolicy {
    /// How long a commit may stay volatile; 0 = durable before close returns.
    pub durability_window_ms: u64,
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
        let w = Settings::default().windows;
        let policy = |tier: Tier| TierPolicy {
            durability_window_ms: w[tier as usize].as_millis() as u64,
        };
        ShardTopology {
            hot_data: policy(Tier::Hot),
            warm_data: policy(Tier::Warm),
            cold_data: policy(Tier::Cold),
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
            if self.policy(tier).durability_window_ms > WINDOW_MAX_MS {
                return Err(invalid(
                    SHARD_TOPOLOGY,
                    &format!(
                        "durability_window_ms of {} must be at most {WINDOW_MAX_MS}",
                        tier.dir_name()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn apply(&self, s: &mut Settings) {
        for tier in Tier::ALL {
            s.windows[tier as usize] =
                Duration::from_millis(self.policy(tier).durability_window_ms);
        }
    }
}

/// Each setting with its accepted range (the README lists the same).
const RANGES: [(&str, u64, u64); 4] = [
    ("cache_budget_mb", 1, 1 << 20),
    ("checkpoint_interval_secs", 1, 86_400),
    ("checkpoint_log_mb", 1, 1 << 16),
    ("log_segment_mb", 1, 4096),
];

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
    fn values(&self) -> [u64; 4] {
        [
            self.cache_budget_mb,
            self.checkpoint_interval_secs,
            self.checkpoint_log_mb,
            self.log_segment_mb,
        ]
    }

    fn check(&self) -> Result<()> {
        check_ranges(UNIVERSE_PARAMETERS, &RANGES, &self.values())
    }

    fn apply(&self, s: &mut Settings) {
        s.cache_budget = (self.cache_budget_mb as usize) << 20;
        s.checkpoint_interval = Duration::from_secs(self.checkpoint_interval_secs);
        s.checkpoint_bytes = self.checkpoint_log_mb << 20;
        s.segment_max = self.log_segment_mb << 20;
    }
}

/// One of `configuration/`'s files as a region reads it: parsed again only when it
/// changed. A file that does not parse (only one left on disk by hand could) keeps the
/// defaults, loudly.
pub struct Watched<T> {
    name: &'static str,
    parse: fn(&[u8]) -> Result<T>,
    cached: std::sync::Mutex<Option<(Stamp, T)>>,
}

/// What tells one version of a file from another here: its mtime and size.
type Stamp = (i64, u32, u64);

impl<T: Clone + Default> Watched<T> {
    pub fn new(name: &'static str, parse: fn(&[u8]) -> Result<T>) -> Watched<T> {
        Watched {
            name,
            parse,
            cached: std::sync::Mutex::new(None),
        }
    }

    pub fn get(&self, cx: &Cx<'_>) -> T {
        let Some(attr) = cx
            .seed_dir(DIR)
            .and_then(|d| cx.store.lookup(d.ino, self.name.as_bytes()).ok())
        else {
            return T::default();
        };
        let key = (attr.mtime.secs, attr.mtime.nanos, attr.size);
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, v)) = cached.as_ref()
            && *k == key
        {
            return v.clone();
        }
        let bytes = cx
            .store
            .read(attr.ino, 0, attr.size.min(FILE_MAX as u64) as usize);
        let v = bytes.and_then(|b| (self.parse)(&b)).unwrap_or_else(|e| {
            log::error!("{e}; its defaults apply until it is fixed");
            T::default()
        });
        *cached = Some((key, v.clone()));
        v
    }
}

pub fn invalid(name: &str, why: &str) -> Error {
    Error::InvalidRecord(format!("{name}: {why}"))
}

/// Each setting of `file` within its accepted range: `ranges` names them (with the
/// range), `values` gives them in the same order.
pub fn check_ranges(file: &str, ranges: &[(&str, u64, u64)], values: &[u64]) -> Result<()> {
    for ((key, lo, hi), v) in ranges.iter().zip(values) {
        if !(lo..=hi).contains(&v) {
            return Err(invalid(
                file,
                &format!("{key} must be between {lo} and {hi}, not {v}"),
            ));
        }
    }
    Ok(())
}

/// One of the obeyed files parsed into its schema; a refusal names the file, the line and
/// the column.
pub fn parse<T: for<'de> Deserialize<'de>>(name: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        invalid(
            name,
            &format!("line {}, column {}: {e}", e.line(), e.column()),
        )
    })
}

/// One of the files the daemon obeys: how it is checked, and what it holds until edited
/// (`None`: written at start from the command line, see `start`).
struct Obeyed {
    name: &'static str,
    check: fn(&[u8]) -> Result<()>,
    default: Option<fn() -> Vec<u8>>,
}

/// Every file the daemon obeys.
const OBEYED: [Obeyed; 8] = [
    Obeyed {
        name: SHARD_TOPOLOGY,
        check: |b| parse::<ShardTopology>(SHARD_TOPOLOGY, b)?.check(),
        default: Some(|| pretty(&ShardTopology::default())),
    },
    Obeyed {
        name: UNIVERSE_PARAMETERS,
        check: |b| parse::<UniverseParameters>(UNIVERSE_PARAMETERS, b)?.check(),
        default: None,
    },
    Obeyed {
        name: TEMPORAL_POLICIES,
        check: |b| Policies::parse(b).map(|_| ()),
        default: Some(|| Policies::default().to_file()),
    },
    Obeyed {
        name: OBSERVATORY,
        check: |b| observatory::settings::Settings::parse(b).map(|_| ()),
        default: Some(|| pretty(&observatory::settings::Settings::default())),
    },
    Obeyed {
        name: ENTANGLEMENT,
        check: |b| EntanglementRules::parse(b).map(|_| ()),
        default: Some(|| pretty(&EntanglementRules::default())),
    },
    Obeyed {
        name: TIERING_POLICY,
        check: |b| tiering::policy::Policy::parse(b).map(|_| ()),
        default: Some(|| pretty(&tiering::policy::Policy::default())),
    },
    Obeyed {
        name: backups::policy::FILE,
        check: |b| backups::policy::Policy::parse(b).map(|_| ()),
        default: Some(|| pretty(&backups::policy::Policy::default())),
    },
    // Not written at start: without it, modes and owners alone decide.
    Obeyed {
        name: access::policy::FILE,
        check: |b| access::policy::Rules::parse(b).map(|_| ()),
        default: None,
    },
];

/// Parses and checks one of the obeyed files.
fn validate(name: &str, bytes: &[u8]) -> Result<()> {
    match OBEYED.iter().find(|o| o.name == name) {
        Some(o) => (o.check)(bytes),
        None => Err(invalid(name, "not a configuration file this daemon knows")),
    }
}

/// The check of an obeyed file: JSON syntax as the bytes arrive, the schema at the end.
struct Schema {
    name: &'static str,
    json: JsonCheck,
    bytes: Vec<u8>,
}

impl Check for Schema {
    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        if self.bytes.len() + bytes.len() > FILE_MAX {
            return Err(invalid(self.name, "larger than 64 KiB"));
        }
        self.json
            .feed(bytes)
            .map_err(|e| invalid(self.name, &e.to_string()))?;
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.bytes.is_empty() {
            return Err(invalid(self.name, "empty: the file must hold its settings"));
        }
        validate(self.name, &self.bytes)
    }
}

pub struct Configuration {
    /// `--cache-mb`: written into the file at start, so the file tells what runs.
    cache_mb: Option<u64>,
}

impl Configuration {
    pub fn new(cache_mb: Option<u64>) -> Configuration {
        Configuration { cache_mb }
    }

    fn known(name: &[u8]) -> Option<&'static str> {
        OBEYED.iter().map(|o| o.name).find(|k| k.as_bytes() == name)
    }

    fn read(cx: &Cx<'_>, dir: u64, name: &str) -> Option<Vec<u8>> {
        let attr = cx.store.lookup(dir, name.as_bytes()).ok()?;
        if attr.size > FILE_MAX as u64 {
            return None;
        }
        let data = cx.store.read(attr.ino, 0, attr.size as usize).ok()?;
        Some(data.to_vec())
    }

    /// Reads both files into the engine's settings. A stored file that does not fit (left
    /// by an older build: edits are checked) keeps its defaults, loudly.
    fn apply(cx: &Cx<'_>, dir: u64) {
        fn load<T: Default + for<'de> Deserialize<'de>>(cx: &Cx<'_>, dir: u64, name: &str) -> T {
            let bytes = Configuration::read(cx, dir, name).unwrap_or_default();
            match validate(name, &bytes).and_then(|()| parse::<T>(name, &bytes)) {
                Ok(v) => v,
                Err(e) => {
                    log::error!("{e}; its defaults apply until it is fixed");
                    T::default()
                }
            }
        }
        let mut s = cx.store.settings();
        load::<ShardTopology>(cx, dir, SHARD_TOPOLOGY).apply(&mut s);
        load::<UniverseParameters>(cx, dir, UNIVERSE_PARAMETERS).apply(&mut s);
        log::info!(
            "settings: cache {} MiB, durability windows {:?}, log segments {} MiB, \
             checkpoint every {:?} or {} MiB of log",
            s.cache_budget >> 20,
            s.windows,
            s.segment_max >> 20,
            s.checkpoint_interval,
            s.checkpoint_bytes >> 20
        );
        cx.store.set_settings(s);
    }

    /// Brings an older build's files to this build's: the tier policies lose the fixed
    /// `codec` and the unchecked `consistency` (their windows kept), retired files go.
    fn migrate(cx: &Cx<'_>, dir: u64) -> Result<()> {
        if let Some(old) = Self::read(cx, dir, SHARD_TOPOLOGY)
            && validate(SHARD_TOPOLOGY, &old).is_err()
            && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&old)
        {
            for tier in Tier::ALL {
                if let Some(p) = v.get_mut(tier.dir_name()).and_then(|p| p.as_object_mut()) {
                    p.remove("codec");
                    p.remove("consistency");
                }
            }
            if let Ok(topology) = serde_json::from_value::<ShardTopology>(v)
                && topology.check().is_ok()
            {
                cx.store
                    .put(dir, SHARD_TOPOLOGY.as_bytes(), &pretty(&topology))?;
                log::info!("{SHARD_TOPOLOGY}: migrated to this build's layout");
            }
        }
        // The file older builds wrote and never obeyed is obeyed now: its settings keep
        // their meaning in this build's layout.
        if let Some(old) = Self::read(cx, dir, TEMPORAL_POLICIES)
            && Policies::parse(&old).is_err()
            && let Some(p) = Policies::from_retired(&old)
        {
            cx.store
                .put(dir, TEMPORAL_POLICIES.as_bytes(), &p.to_file())?;
            log::info!("{TEMPORAL_POLICIES}: migrated to this build's layout");
        }
        if let Some(old) = Self::read(cx, dir, ENTANGLEMENT)
            && EntanglementRules::parse(&old).is_err()
            && let Some(rules) = EntanglementRules::from_retired(&old)
        {
            cx.store
                .put(dir, ENTANGLEMENT.as_bytes(), &pretty(&rules))?;
            log::info!("{ENTANGLEMENT}: migrated to this build's layout");
        }
        for name in RETIRED {
            match Self::read(cx, dir, name) {
                Some(b) if b == retired_default(name) => {
                    cx.store.remove(dir, name.as_bytes())?;
                    log::info!("{name}: removed (written by an older build, never obeyed)");
                }
                Some(_) => log::warn!(
                    "configuration/{name}: kept because it was edited, but this build does \
                     not read it"
                ),
                None => {}
            }
        }
        Ok(())
    }
}

/// What an older build wrote into a retired file.
pub fn retired_default(name: &str) -> Vec<u8> {
    let v = match name {
        "physics_constants.json" => serde_json::json!({
            "cosmic_background_radiation_kelvin": 2.7,
            "speed_of_light_m_per_s": 299_792_458u64,
            "note": "Informational; the engine does not read these."
        }),
        _ => serde_json::json!({ "co_access_window_ms": 1000, "min_correlation": 0.5 }),
    };
    pretty(&v)
}

impl Region for Configuration {
    fn name(&self) -> &'static str {
        "configuration"
    }

    fn tag(&self) -> Tag {
        2
    }

    fn data_format(&self) -> &'static str {
        "JSON configuration records the daemon validates and obeys"
    }

    fn rule(&self, dir: &Dir, name: &[u8]) -> Option<Rule> {
        if !name.ends_with(b".json") {
            return None;
        }
        if !dir.is_seed(DIR) {
            return Some(json_rule());
        }
        // A `.json` name the daemon does not read cannot be made here (`may_create`); one
        // an older build left is kept as a plain JSON record.
        Some(match Self::known(name) {
            Some(known) => Rule {
                id: known,
                check: Box::new(Schema {
                    name: known,
                    json: JsonCheck::new(),
                    bytes: Vec::new(),
                }),
            },
            None => json_rule(),
        })
    }

    fn committed(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8]) {
        if dir.is_seed(DIR)
            && let Some(file) = Self::known(name)
        {
            crate::events::record("configuration", serde_json::json!({"file": file}));
            Self::apply(cx, dir.ino);
            if file == access::policy::FILE {
                cx.regions.access().reload(cx);
            }
        }
    }

    /// Nothing in `configuration/` may look obeyed without being so.
    fn may_create(&self, dir: &Dir, name: &[u8]) -> Result<()> {
        if dir.is_seed(DIR) && name.ends_with(b".json") && Self::known(name).is_none() {
            let names: Vec<&str> = OBEYED.iter().map(|o| o.name).collect();
            return Err(Error::InvalidRecord(format!(
                "{}: not a configuration file this daemon knows (it reads {})",
                String::from_utf8_lossy(name),
                names.join(", ")
            )));
        }
        Ok(())
    }

    /// An obeyed file is always there: removing it only makes room for its replacement.
    fn removal(&self, dir: &Dir, name: &[u8]) -> Removal {
        if dir.is_seed(DIR) && Self::known(name).is_some() {
            Removal::UntilReplaced
        } else {
            Removal::Gone
        }
    }

    fn start(&self, cx: &Cx<'_>) -> Result<()> {
        let dir = cx.seed_dir(DIR).ok_or(Error::NotFound)?.ino;
        Self::migrate(cx, dir)?;
        for o in &OBEYED {
            if let Some(default) = o.default
                && cx.store.lookup(dir, o.name.as_bytes()).is_err()
            {
                cx.store.put(dir, o.name.as_bytes(), &default())?;
            }
        }
        let stored = Self::read(cx, dir, UNIVERSE_PARAMETERS)
            .and_then(|b| parse::<UniverseParameters>(UNIVERSE_PARAMETERS, &b).ok());
        let mut params = stored.clone().unwrap_or_default();
        if let Some(mb) = self.cache_mb {
            params.cache_budget_mb = mb;
        }
        params.check()?;
        if stored.is_none_or(|s| s.values() != params.values()) {
            cx.store
                .put(dir, UNIVERSE_PARAMETERS.as_bytes(), &pretty(&params))?;
        }
        Self::apply(cx, dir);
        cx.regions.access().reload(cx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::check_stream;

    fn check(name: &str, text: &str) -> Result<()> {
        let dir = Dir {
            ino: 9,
            tag: 2,
            seed: crate::namespace::SEED.iter().find(|d| d.path == DIR),
        };
        let mut rule = Configuration::new(None)
            .rule(&dir, name.as_bytes())
            .ok_or(Error::NotFound)?;
        check_stream(&mut rule, &mut text.as_bytes(), text.len() as u64)
    }

    #[test]
    fn defaults_fit_their_schema() {
        let topo = String::from_utf8_lossy(&pretty(&ShardTopology::default())).to_string();
        assert!(check(SHARD_TOPOLOGY, &topo).is_ok(), "{topo}");
        let params = String::from_utf8_lossy(&pretty(&UniverseParameters::default())).to_string();
        assert!(check(UNIVERSE_PARAMETERS, &params).is_ok(), "{params}");
        let mut s = Settings::default();
        ShardTopology::default().apply(&mut s);
        assert_eq!(s.windows, Settings::default().windows);
    }

    #[test]
    fn bad_edits_are_refused() {
        let mut v = serde_json::to_value(ShardTopology::default()).unwrap_or_default();
        v["warm_data"]["durability_window_ms"] = 500.into();
        assert!(check(SHARD_TOPOLOGY, &v.to_string()).is_ok());
        v["warm_data"]["durability_window_ms"] = 60_001.into();
        assert!(check(SHARD_TOPOLOGY, &v.to_string()).is_err(), "range");
        v["warm_data"]["durability_window_ms"] = "soon".into();
        assert!(check(SHARD_TOPOLOGY, &v.to_string()).is_err(), "type");
        v["warm_data"]["durability_window_ms"] = 5.into();
        v["warm_data"]["codec"] = "zlib".into();
        assert!(
            check(SHARD_TOPOLOGY, &v.to_string()).is_err(),
            "unknown key"
        );
        let p = r#"{"cache_budget_mb": 0, "checkpoint_interval_secs": 1, "checkpoint_log_mb": 1, "log_segment_mb": 1}"#;
        assert!(check(UNIVERSE_PARAMETERS, p).is_err(), "zero cache");
        assert!(
            check(UNIVERSE_PARAMETERS, r#"{"cache_budget_mb": 5}"#).is_err(),
            "missing keys"
        );
        assert!(check(UNIVERSE_PARAMETERS, "").is_err(), "empty");
        assert!(check(UNIVERSE_PARAMETERS, "{").is_err(), "truncated");
        let conf = Dir {
            ino: 9,
            tag: 2,
            seed: crate::namespace::SEED.iter().find(|d| d.path == DIR),
        };
        let region = Configuration::new(None);
        assert!(
            region.may_create(&conf, b"mine.json").is_err(),
            "unknown file"
        );
        assert!(
            region.may_create(&conf, b".mine.json.swp").is_ok(),
            "an editor's"
        );
        assert_eq!(
            region.removal(&conf, SHARD_TOPOLOGY.as_bytes()),
            Removal::UntilReplaced
        );
    }

    #[test]
    fn every_setting_is_applied() {
        let p = UniverseParameters {
            cache_budget_mb: 3,
            checkpoint_interval_secs: 4,
            checkpoint_log_mb: 5,
            log_segment_mb: 6,
        };
        let mut s = Settings::default();
        p.apply(&mut s);
        assert_eq!(s.cache_budget, 3 << 20);
        assert_eq!(s.checkpoint_interval, Duration::from_secs(4));
        assert_eq!(s.checkpoint_bytes, 5 << 20);
        assert_eq!(s.segment_max, 6 << 20);
    }
}
