//! The shape of the universe: the seed's fixed directories, and the region each belongs
//! to. This table is the one place that says which directory belongs to which region;
//! the regions themselves live in `regions/`.

use crate::engine::codec::Tier;

/// A directory of the seed's fixed hierarchy. It cannot be removed or renamed.
#[derive(Clone, Copy)]
pub struct SeedDir {
    pub path: &'static str,
    /// The name of the region that owns it (and, by inheritance, everything made below).
    pub region: &'static str,
    /// Holds users' data: lists only what users put there (its generated files are
    /// reachable by name but not listed). Directories users make are always data.
    pub data: bool,
    pub purpose: &'static str,
}

const fn fixed(path: &'static str, region: &'static str, purpose: &'static str) -> SeedDir {
    SeedDir {
        path,
        region,
        data: false,
        purpose,
    }
}

const fn data(path: &'static str, region: &'static str, purpose: &'static str) -> SeedDir {
    SeedDir {
        path,
        region,
        data: true,
        purpose,
    }
}

/// The root: the universe's own top directory.
pub const ROOT: SeedDir = fixed("", "universe", "The universe: root of the IsLab DB mount");

/// The seed's directories below the root, parents before children.
pub const SEED: &[SeedDir] = &[
    fixed(
        "spacetime",
        "spacetime",
        "Core spacetime shards: the tiers that store records",
    ),
    fixed(
        "spacetime/hot_data",
        "spacetime",
        "High-energy shard: uncompressed, durable before close returns",
    ),
    fixed(
        "spacetime/hot_data/particles",
        "records",
        "Individual records of the hot tier, one directory per type",
    ),
    data(
        "spacetime/hot_data/particles/users",
        "records",
        "User records in the hot tier",
    ),
    data(
        "spacetime/hot_data/particles/products",
        "records",
        "Product records in the hot tier",
    ),
    data(
        "spacetime/hot_data/particles/orders",
        "records",
        "Order records in the hot tier",
    ),
    fixed(
        "spacetime/hot_data/quantum_indices",
        "entanglement",
        "Entangled key relationships of the hot tier",
    ),
    fixed(
        "spacetime/hot_data/event_horizon",
        "spacetime",
        "Cache persistence and cache analytics of the hot tier",
    ),
    fixed(
        "spacetime/warm_data",
        "spacetime",
        "Balanced shard: zlib-compressed, durable within its window",
    ),
    fixed(
        "spacetime/warm_data/particles",
        "records",
        "Individual records of the warm tier, one directory per type",
    ),
    fixed(
        "spacetime/warm_data/quantum_indices",
        "entanglement",
        "Entangled key relationships of the warm tier",
    ),
    fixed(
        "spacetime/warm_data/event_horizon",
        "spacetime",
        "Cache persistence and cache analytics of the warm tier",
    ),
    fixed(
        "spacetime/cold_data",
        "spacetime",
        "Low-energy shard: lz4-compressed, durable within its window",
    ),
    fixed(
        "spacetime/cold_data/particles",
        "records",
        "Individual records of the cold tier, one directory per type",
    ),
    fixed(
        "spacetime/cold_data/quantum_indices",
        "entanglement",
        "Entangled key relationships of the cold tier",
    ),
    fixed(
        "spacetime/cold_data/event_horizon",
        "spacetime",
        "Cache persistence and cache analytics of the cold tier",
    ),
    fixed(
        "temporal",
        "temporal",
        "Time-series data partitioned by time",
    ),
    fixed(
        "temporal/live",
        "temporal",
        "Real-time data of the last hour, hour partitions",
    ),
    fixed(
        "temporal/recent",
        "temporal",
        "Data of the last day, day partitions",
    ),
    fixed(
        "temporal/historical",
        "temporal",
        "Long-term data, month partitions, compressed",
    ),
    fixed(
        "temporal/range",
        "temporal",
        "Time-range reads: <from>..<to>.jsonl streams the events in that range",
    ),
    fixed("quantum_graph", "graph", "Graph database storage"),
    fixed(
        "quantum_graph/nodes",
        "graph",
        "Graph nodes, one directory per node type",
    ),
    data("quantum_graph/nodes/persons", "graph", "Person nodes"),
    data(
        "quantum_graph/nodes/organizations",
        "graph",
        "Organization nodes",
    ),
    data("quantum_graph/nodes/concepts", "graph", "Concept nodes"),
    fixed(
        "quantum_graph/edges",
        "graph",
        "Graph edges, one directory per relation",
    ),
    data("quantum_graph/edges/works_for", "graph", "works_for edges"),
    data(
        "quantum_graph/edges/collaborates_with",
        "graph",
        "collaborates_with edges",
    ),
    data("quantum_graph/edges/leads", "graph", "leads edges"),
    fixed(
        "quantum_graph/neighbourhoods",
        "graph",
        "Each node's edges, out and in, with their strengths now: <id>.json",
    ),
    fixed(
        "quantum_graph/dimensions",
        "graph",
        "Multi-dimensional similarity index",
    ),
    fixed(
        "quantum_graph/entanglements",
        "graph",
        "Registry of strongly correlated nodes",
    ),
    fixed("wormholes", "wormholes", "Routing between shards and tiers"),
    fixed(
        "wormholes/routing_tables",
        "wormholes",
        "Routing lookups between tiers",
    ),
    fixed("entropy", "entropy", "Balance and load of the shards"),
    fixed(
        "qql",
        "qql",
        "Query language: saved queries, results, schemas; ask here (QQL.md)",
    ),
    data("qql/queries", "qql", "Saved queries: <name>.qql"),
    fixed(
        "qql/results",
        "qql",
        "Each saved query's result now: <name>.json, .jsonl, .csv",
    ),
    fixed("qql/compiled_queries", "qql", "Compiled query cache"),
    fixed("qql/query_analytics", "qql", "Query performance data"),
    fixed("qql/schema", "qql", "Schemas enforced on writes"),
    fixed(
        "backups",
        "universe",
        "Snapshots, incremental backups and logs",
    ),
    fixed(
        "backups/snapshots",
        "backups",
        "Point-in-time universe snapshots",
    ),
    fixed(
        "backups/snapshots/incremental",
        "backups",
        "Incremental backups",
    ),
    fixed(
        "backups/cosmic_logs",
        "cosmic_logs",
        "The write-ahead log (read-only), events and audit trail",
    ),
    fixed("observatory", "observatory", "Monitoring and observability"),
    fixed(
        "observatory/metrics",
        "observatory",
        "Live metrics, their history and alerts",
    ),
    fixed("observatory/logs", "observatory", "System logs"),
    fixed(
        "observatory/diagnostics",
        "observatory",
        "Health of each component, latency histograms",
    ),
    fixed(
        "configuration",
        "configuration",
        "Universe configuration the daemon obeys",
    ),
];

pub fn join(parts: &[Vec<u8>]) -> String {
    parts
        .iter()
        .map(|p| String::from_utf8_lossy(p))
        .collect::<Vec<_>>()
        .join("/")
}

/// The tier a seed path stores into: its `spacetime/<tier>` ancestor; configuration is
/// hot (small, must not be lost), and so are streams (durable at close; what maintenance
/// compresses is stored as it is); everything else warm.
pub fn seed_tier(path: &str) -> Tier {
    let mut parts = path.split('/');
    match (parts.next(), parts.next()) {
        (Some("spacetime"), Some(t)) => Tier::from_dir_name(t.as_bytes()).unwrap_or(Tier::Warm),
        (Some("configuration" | "temporal"), _) => Tier::Hot,
        _ => Tier::Warm,
    }
}

pub fn consistency(tier: Tier) -> &'static str {
    match tier {
        Tier::Hot => "strong: durable before close returns",
        Tier::Warm => "eventual: durable within the warm window",
        Tier::Cold => "weak: durable within the cold window, compressed",
    }
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
        assert_eq!(seed_tier("temporal/live"), Tier::Hot);
        assert_eq!(seed_tier("quantum_graph"), Tier::Warm);
    }

    #[test]
    fn data_directories_are_below_particles_and_graph_collections() {
        for d in SEED {
            let below_particles = d.path.contains("/particles/");
            let collection = d.path.starts_with("quantum_graph/nodes/")
                || d.path.starts_with("quantum_graph/edges/");
            let saved_queries = d.path == "qql/queries";
            assert_eq!(
                d.data,
                below_particles || collection || saved_queries,
                "{}",
                d.path
            );
        }
        assert!(!ROOT.data && ROOT.path.is_empty());
    }
}
