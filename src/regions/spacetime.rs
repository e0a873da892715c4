//! `spacetime/`: the tiers that store records. Each tier directory shows
//! `shard.metadata`, each tier's `event_horizon/` its `cache_analytics.json` and, after a
//! clean unmount, the `cache_state.erl` the next mount warms the cache from
//! (`cache_state`); records themselves live in the records region below `particles/`.

use serde_json::json;

use crate::engine::codec::Tier;
use crate::namespace;
use std::sync::Mutex;

use crate::regions::cache_state::{self, Warming};
use crate::regions::{Cx, Dir, Generated, Region, Tag, pretty};

#[derive(Default)]
pub struct Spacetime {
    warming: Mutex<Warming>,
}

pub const SHARD_METADATA: &str = "shard.metadata";
pub const CACHE_ANALYTICS: &str = "cache_analytics.json";
/// Bytes read back into the cache per tick while warming.
const WARM_STEP: u64 = 64 << 20;

/// The tier whose own directory `dir` is.
fn tier_dir(dir: &Dir) -> Option<Tier> {
    let path = dir.seed?.path.strip_prefix("spacetime/")?;
    Tier::from_dir_name(path.as_bytes())
}

/// The tier whose `event_horizon/` `dir` is.
fn horizon_of(dir: &Dir) -> Option<Tier> {
    let path = dir.seed?.path.strip_prefix("spacetime/")?;
    Tier::from_dir_name(path.strip_suffix("/event_horizon")?.as_bytes())
}

fn horizon(cx: &Cx<'_>, tier: Tier) -> Option<Dir> {
    cx.seed_dir(&format!("spacetime/{}/event_horizon", tier.dir_name()))
}

impl Spacetime {
    fn lock(&self) -> std::sync::MutexGuard<'_, Warming> {
        self.warming.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cache_analytics(&self, cx: &Cx<'_>, tier: Tier) -> Vec<u8> {
        let c = cx.store.counters();
        let (mut files, mut bytes) = (0u64, 0u64);
        for (ino, b) in cx.store.cached_files() {
            if cx.store.getattr(ino).is_ok_and(|a| a.tier == tier) {
                files += 1;
                bytes += b;
            }
        }
        let ratio = |hits: u64, misses: u64| match hits + misses {
            0 => serde_json::Value::Null,
            n => json!(hits as f64 / n as f64),
        };
        let (hits, misses) = c.cache_by_tier[tier as usize];
        let w = self.lock();
        pretty(&json!({
            "tier": tier.dir_name(),
            "cached_files": files,
            "cached_bytes": bytes,
            "reads_of_this_tier": {
                "hits": hits,
                "misses": misses,
                "hit_ratio": ratio(hits, misses),
            },
            "cache": {
                "hits": c.cache_hits,
                "misses": c.cache_misses,
                "hit_ratio": ratio(c.cache_hits, c.cache_misses),
                "bytes": c.cache_bytes,
                "budget": c.cache_budget,
                "limit": c.cache_limit,
                "entries": c.cache_entries,
                "evictions": c.cache_evictions,
            },
            "warm_restart": {
                "files_saved_at_last_unmount": w.saved,
                "files_read_back": w.files,
                "bytes_read_back": w.bytes,
                "done": w.queue.is_empty(),
            },
        }))
    }
}

impl Region for Spacetime {
    fn name(&self) -> &'static str {
        "spacetime"
    }

    fn tag(&self) -> Tag {
        3
    }

    fn views(&self, _cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        if tier_dir(dir).is_some() {
            vec![SHARD_METADATA.to_string()]
        } else if horizon_of(dir).is_some() {
            vec![CACHE_ANALYTICS.to_string()]
        } else {
            Vec::new()
        }
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        if let Some(tier) = horizon_of(dir).filter(|_| name == CACHE_ANALYTICS) {
            // Cache figures move with every read, without the engine's state moving.
            return Some(Generated::Fresh(self.cache_analytics(cx, tier)));
        }
        let tier = tier_dir(dir).filter(|_| name == SHARD_METADATA)?;
        Some(Generated::Document(shard_metadata(cx, tier)))
    }

    /// Reads what the cache held at the last clean unmount, to warm it (`tick`).
    fn start(&self, cx: &Cx<'_>) -> crate::error::Result<()> {
        let mut entries = Vec::new();
        for tier in Tier::ALL {
            let Some(dir) = horizon(cx, tier) else {
                continue;
            };
            match super::read_own(cx, dir.ino, cache_state::FILE)
                .and_then(|b| b.map(|b| cache_state::decode(&b)).transpose())
            {
                Ok(e) => entries.extend(e.into_iter().flatten()),
                Err(e) => log::warn!("{}: {e}; the cache starts cold", tier.dir_name()),
            }
        }
        let mut w = self.lock();
        w.saved = entries.len();
        w.queue = cache_state::plan(entries, cx.store.settings().cache_budget as u64);
        Ok(())
    }

    fn tick(&self, cx: &Cx<'_>) {
        let mut w = self.lock();
        if w.queue.is_empty() {
            return;
        }
        cache_state::warm(cx, &mut w, WARM_STEP);
        if w.queue.is_empty() {
            log::info!(
                "cache warmed from the last unmount: {} files, {} bytes",
                w.files,
                w.bytes
            );
        }
    }

    /// Writes what the cache holds, per tier, for the next mount.
    fn stop(&self, cx: &Cx<'_>) {
        let mut per_tier: [Vec<cache_state::Entry>; 3] = Default::default();
        for (rank, (ino, bytes)) in cx.store.cached_files().into_iter().enumerate() {
            if let Ok(a) = cx.store.getattr(ino) {
                per_tier[a.tier as usize].push(cache_state::Entry {
                    ino,
                    bytes,
                    rank: rank as u32,
                });
            }
        }
        for tier in Tier::ALL {
            let Some(dir) = horizon(cx, tier) else {
                continue;
            };
            let entries = &per_tier[tier as usize];
            let bytes = (!entries.is_empty()).then(|| cache_state::encode(entries));
            // A tier with nothing cached keeps no file (nor an older one's list).
            let res = super::keep_file(cx, dir.ino, cache_state::FILE, bytes.as_deref());
            if let Err(e) = res {
                log::warn!("{}/{}: {e}", tier.dir_name(), cache_state::FILE);
            }
        }
    }
}

fn shard_metadata(cx: &Cx<'_>, tier: Tier) -> Vec<u8> {
    let stats = &cx.store.tier_stats()[tier as usize];
    let ratio = if stats.bytes_on_disk == 0 {
        1.0
    } else {
        stats.bytes_stored as f64 / stats.bytes_on_disk as f64
    };
    let window = cx.store.settings().windows[tier as usize];
    pretty(&json!({
        "tier": tier.dir_name(),
        "codec": tier.codec().name(),
        "record_count": stats.records,
        "bytes_stored": stats.bytes_stored,
        "bytes_on_disk": stats.bytes_on_disk,
        "bytes_awaiting_checkpoint": stats.bytes_in_log,
        "shard_files": stats.shard_files,
        "compression_ratio": (ratio * 1000.0).round() / 1000.0,
        "durability_window_ms": window.as_millis() as u64,
        "consistency_model": namespace::consistency(tier),
    }))
}
