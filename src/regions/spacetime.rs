//! `spacetime/`: the tiers that store records. Each tier directory shows
//! `shard.metadata`; records themselves live in the records region below `particles/`.

use serde_json::json;

use crate::engine::codec::Tier;
use crate::namespace;
use crate::regions::{Cx, Dir, Generated, Region, Tag, pretty};

pub struct Spacetime;

pub const SHARD_METADATA: &str = "shard.metadata";

/// The tier whose own directory `dir` is.
fn tier_dir(dir: &Dir) -> Option<Tier> {
    let path = dir.seed?.path.strip_prefix("spacetime/")?;
    Tier::from_dir_name(path.as_bytes())
}

impl Region for Spacetime {
    fn name(&self) -> &'static str {
        "spacetime"
    }

    fn tag(&self) -> Tag {
        3
    }

    fn views(&self, _cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        tier_dir(dir)
            .map(|_| vec![SHARD_METADATA.to_string()])
            .unwrap_or_default()
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        let tier = tier_dir(dir).filter(|_| name == SHARD_METADATA)?;
        Some(Generated::Document(shard_metadata(cx, tier)))
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
