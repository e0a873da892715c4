//! The shape of the universe: the seed's fixed directories, which region a path belongs to,
//! and which generated views each directory shows.

use crate::engine::codec::Tier;

/// Region tags stored on inodes (inherited from the parent directory).
pub const TAG_PLAIN: u8 = 0;
/// `.json` files must parse at commit.
pub const TAG_RECORDS: u8 = 1;
/// Records the daemon obeys (`configuration/`).
pub const TAG_CONFIG: u8 = 2;

pub const MANIFEST: &str = "_manifest.json";
pub const SHARD_METADATA: &str = "shard.metadata";
pub const UNIVERSE_MANIFEST: &str = "universe.manifest";
pub const LOG_DIR: &str = "backups/cosmic_logs";

pub struct SeedDir {
    pub path: &'static str,
    pub purpose: &'static str,
    pub tag: u8,
}

const fn dir(path: &'static str, purpose: &'static str, tag: u8) -> SeedDir {
    SeedDir { path, purpose, tag }
}

/// The seed's directories, parents before children. They cannot be removed or renamed.
pub const SEED: &[SeedDir] = &[
    dir(
        "spacetime",
        "Core spacetime shards: the tiers that store records",
        TAG_PLAIN,
    ),
    dir(
        "spacetime/hot_data",
        "High-energy shard: uncompressed, durable before close returns",
        TAG_PLAIN,
    ),
    dir(
        "spacetime/hot_data/particles",
        "Individual records of the hot tier, one directory per type",
        TAG_RECORDS,
    ),
    dir(
        "spacetime/hot_data/particles/users",
        "User records in the hot tier",
        TAG_RECORDS,
    ),
    dir(
        "spacetime/hot_data/particles/products",
        "Product records in the hot tier",
        TAG_RECORDS,
    ),
    dir(
        "spacetime/hot_data/particles/orders",
        "Order records in the hot tier",
        TAG_RECORDS,
    ),
    dir(
        "spacetime/hot_data/quantum_indices",
        "Entangled key relationships of the hot tier",
        TAG_PLAIN,
    ),
    dir(
        "spacetime/hot_data/event_horizon",
        "Cache persistence and cache analytics of the hot tier",
        TAG_PLAIN,
    ),
    dir(
        "spacetime/warm_data",
        "Balanced shard: zlib-compressed, durable within its window",
        TAG_PLAIN,
    ),
    dir(
        "spacetime/warm_data/particles",
        "Individual records of the warm tier, one directory per type",
        TAG_RECORDS,
    ),
    dir(
        "spacetime/warm_data/quantum_indices",
        "Entangled key relationships of the warm tier",
        TAG_PLAIN,
    ),
    dir(
        "spacetime/warm_data/event_horizon",
        "Cache persistence and cache analytics of the warm tier",
        TAG_PLAIN,
    ),
    dir(
        "spacetime/cold_data",
        "Low-energy shard: lz4-compressed, durable within its window",
        TAG_PLAIN,
    ),
    dir(
        "spacetime/cold_data/particles",
        "Individual records of the cold tier, one directory per type",
        TAG_RECORDS,
    ),
    dir(
        "spacetime/cold_data/quantum_indices",
        "Entangled key relationships of the cold tier",
        TAG_PLAIN,
    ),
    dir(
        "spacetime/cold_data/event_horizon",
        "Cache persistence and cache analytics of the cold tier",
        TAG_PLAIN,
    ),
    dir(
        "temporal",
        "Time-series data partitioned by time",
        TAG_PLAIN,
    ),
    dir(
        "temporal/live",
        "Real-time data of the last hour, hour partitions",
        TAG_PLAIN,
    ),
    dir(
        "temporal/recent",
        "Data of the last day, day partitions",
        TAG_PLAIN,
    ),
    dir(
        "temporal/historical",
        "Long-term data, month partitions, compressed",
        TAG_PLAIN,
    ),
    dir("quantum_graph", "Graph database storage", TAG_PLAIN),
    dir(
        "quantum_graph/nodes",
        "Graph nodes, one directory per node type",
        TAG_RECORDS,
    ),
    dir("quantum_graph/nodes/persons", "Person nodes", TAG_RECORDS),
    dir(
        "quantum_graph/nodes/organizations",
        "Organization nodes",
        TAG_RECORDS,
    ),
    dir("quantum_graph/nodes/concepts", "Concept nodes", TAG_RECORDS),
    dir(
        "quantum_graph/edges",
        "Graph edges, one directory per relation",
        TAG_RECORDS,
    ),
    dir(
        "quantum_graph/edges/works_for",
        "works_for edges",
        TAG_RECORDS,
    ),
    dir(
        "quantum_graph/edges/collaborates_with",
        "collaborates_with edges",
        TAG_RECORDS,
    ),
    dir("quantum_graph/edges/leads", "leads edges", TAG_RECORDS),
    dir(
        "quantum_graph/dimensions",
        "Multi-dimensional similarity index",
        TAG_PLAIN,
    ),
    dir(
        "quantum_graph/entanglements",
        "Registry of strongly correlated nodes",
        TAG_PLAIN,
    ),
    dir("wormholes", "Routing between shards and tiers", TAG_PLAIN),
    dir(
        "wormholes/routing_tables",
        "Routing lookups between tiers",
        TAG_PLAIN,
    ),
    dir("entropy", "Balance and load of the shards", TAG_PLAIN),
    dir(
        "qql",
        "Query language: saved queries, results, schemas",
        TAG_PLAIN,
    ),
    dir("qql/compiled_queries", "Compiled query cache", TAG_PLAIN),
    dir("qql/query_analytics", "Query performance data", TAG_PLAIN),
    dir("qql/schema", "Schemas enforced on writes", TAG_PLAIN),
    dir(
        "backups",
        "Snapshots, incremental backups and logs",
        TAG_PLAIN,
    ),
    dir(
        "backups/snapshots",
        "Point-in-time universe snapshots",
        TAG_PLAIN,
    ),
    dir(
        "backups/snapshots/incremental",
        "Incremental backups",
        TAG_PLAIN,
    ),
    dir(
        "backups/cosmic_logs",
        "The write-ahead log (read-only), events and audit trail",
        TAG_PLAIN,
    ),
    dir("observatory", "Monitoring and observability", TAG_PLAIN),
    dir("observatory/metrics", "Performance metrics", TAG_PLAIN),
    dir("observatory/logs", "System logs", TAG_PLAIN),
    dir("observatory/diagnostics", "Diagnostic data", TAG_PLAIN),
    dir(
        "configuration",
        "Universe configuration the daemon obeys",
        TAG_CONFIG,
    ),
];

pub fn join(parts: &[Vec<u8>]) -> String {
    parts
        .iter()
        .map(|p| String::from_utf8_lossy(p))
        .collect::<Vec<_>>()
        .join("/")
}

pub fn seed_dir(path: &str) -> Option<&'static SeedDir> {
    SEED.iter().find(|d| d.path == path)
}

/// The tier a seed path stores into: its `spacetime/<tier>` ancestor; configuration is
/// hot (small, must not be lost), everything else warm.
pub fn seed_tier(path: &str) -> Tier {
    let mut parts = path.split('/');
    match (parts.next(), parts.next()) {
        (Some("spacetime"), Some(t)) => Tier::from_dir_name(t.as_bytes()).unwrap_or(Tier::Warm),
        (Some("configuration"), _) => Tier::Hot,
        _ => Tier::Warm,
    }
}

/// Whether a file's commits must parse as JSON.
pub fn is_json_record(tag: u8, name: &[u8]) -> bool {
    (tag == TAG_RECORDS || tag == TAG_CONFIG) && name.ends_with(b".json")
}

pub fn consistency(tier: Tier) -> &'static str {
    match tier {
        Tier::Hot => "strong: durable before close returns",
        Tier::Warm => "eventual: durable within the warm window",
        Tier::Cold => "weak: durable within the cold window, compressed",
    }
}

/// A generated, read-only file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    Manifest { dir: u64 },
    ShardMetadata(Tier),
    UniverseManifest,
    LogSegment(String),
}

/// The views a directory shows besides its entries, given its path.
pub fn fixed_views(dir: u64, path: &str) -> Vec<(String, View)> {
    let mut out = vec![(MANIFEST.to_string(), View::Manifest { dir })];
    if path.is_empty() {
        out.push((UNIVERSE_MANIFEST.to_string(), View::UniverseManifest));
    }
    if let Some(t) = path
        .strip_prefix("spacetime/")
        .and_then(|t| Tier::from_dir_name(t.as_bytes()))
    {
        out.push((SHARD_METADATA.to_string(), View::ShardMetadata(t)));
    }
    out
}

/// A first test on the name alone, so that the common case (no view could have this name)
/// costs no walk up the tree to the directory's path.
pub fn may_name_view(name: &[u8]) -> bool {
    name == MANIFEST.as_bytes()
        || name == UNIVERSE_MANIFEST.as_bytes()
        || name == SHARD_METADATA.as_bytes()
        || name.ends_with(b".wal")
}

/// True for names no user file may take in a directory of this path.
pub fn is_view_name(path: &str, name: &[u8]) -> bool {
    name == MANIFEST.as_bytes()
        || (path.is_empty() && name == UNIVERSE_MANIFEST.as_bytes())
        || (path.starts_with("spacetime/") && name == SHARD_METADATA.as_bytes())
        || (path == LOG_DIR && name.ends_with(b".wal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists_parents_first_and_tiers_follow_paths() {
        for (i, d) in SEED.iter().enumerate() {
            if let Some((parent, _)) = d.path.rsplit_once('/') {
                assert!(
                    SEED[..i].iter().any(|p| p.path == parent),
                    "{} before its parent",
                    d.path
                );
            }
        }
        assert_eq!(seed_tier("spacetime/cold_data/particles"), Tier::Cold);
        assert_eq!(seed_tier("configuration"), Tier::Hot);
        assert_eq!(seed_tier("temporal/live"), Tier::Warm);
    }

    #[test]
    fn json_rules_and_view_names() {
        assert!(is_json_record(TAG_RECORDS, b"alice.json"));
        assert!(!is_json_record(TAG_RECORDS, b".alice.json.swp"));
        assert!(!is_json_record(TAG_PLAIN, b"alice.json"));
        assert!(is_view_name("spacetime/hot_data", b"shard.metadata"));
        assert!(is_view_name("", b"universe.manifest"));
        assert!(!is_view_name("temporal", b"universe.manifest"));
        assert!(may_name_view(b"wal-00000001.wal") && !may_name_view(b"alice.json"));
        assert_eq!(fixed_views(1, "").len(), 2);
        assert_eq!(fixed_views(9, "spacetime/warm_data").len(), 2);
    }
}
