//! The universe's own structure: the root and the seed directories no other region
//! claims. Files stored here are opaque bytes. The root shows `universe.manifest`.

use serde_json::{Value, json};

use crate::engine::codec::Tier;
use crate::namespace;
use crate::regions::{Cx, Dir, Generated, Region, Tag, pretty};

pub struct Universe;

pub const UNIVERSE_MANIFEST: &str = "universe.manifest";

impl Region for Universe {
    fn name(&self) -> &'static str {
        "universe"
    }

    fn tag(&self) -> Tag {
        0
    }

    fn views(&self, _cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        if dir.is_seed("") {
            vec![UNIVERSE_MANIFEST.to_string()]
        } else {
            Vec::new()
        }
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        (dir.is_seed("") && name == UNIVERSE_MANIFEST)
            .then(|| Generated::Document(universe_manifest(cx)))
    }
}

fn universe_manifest(cx: &Cx<'_>) -> Vec<u8> {
    let stats = cx.store.tier_stats();
    let tiers: serde_json::Map<String, Value> = Tier::ALL
        .iter()
        .map(|t| {
            let s = &stats[*t as usize];
            (
                t.dir_name().to_string(),
                json!({ "codec": t.codec().name(), "records": s.records, "bytes_stored": s.bytes_stored }),
            )
        })
        .collect();
    let top: Vec<&str> = namespace::SEED
        .iter()
        .filter(|d| !d.path.contains('/'))
        .map(|d| d.path)
        .collect();
    let regions: Vec<&str> = cx.regions.all().map(|r| r.name()).collect();
    pretty(&json!({
        "universe": "IsLab DB",
        "version": env!("CARGO_PKG_VERSION"),
        "data_directory": cx.store.location(),
        "inodes": cx.store.inode_count(),
        "top_level": top,
        "regions": regions,
        "tiers": tiers,
        "log_segments": cx.store.log_segments().len(),
        "engine": cx.store.counters(),
        "cosmic_background_radiation": 2.7,
    }))
}
