//! Generated views: computed on open from live engine state, read-only, always valid JSON.

use serde_json::{Value, json};

use crate::engine::codec::Tier;
use crate::engine::tree::{Kind, Ts};
use crate::engine::{Attr, Engine};
use crate::namespace::{self, View};

/// RFC 3339 (UTC, seconds) for a timestamp.
pub fn rfc3339(t: Ts) -> String {
    let days = t.secs.div_euclid(86_400);
    let rem = t.secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn pretty(v: Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}

fn data_format(path: &str, attr: &Attr) -> &'static str {
    if path.starts_with("configuration") {
        "JSON configuration records the daemon validates and obeys"
    } else if namespace::is_json_record(attr.tag, b".json") {
        "JSON records, one document per file; other names are opaque bytes"
    } else if path == namespace::LOG_DIR {
        "Framed binary log segments (see FORMAT.md)"
    } else {
        "Files of any content, stored as opaque bytes"
    }
}

fn purpose(path: &str, attr: &Attr) -> String {
    if path.is_empty() {
        return "The universe: root of the IsLab DB mount".into();
    }
    if let Some(seed) = namespace::seed_dir(path) {
        return seed.purpose.into();
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if namespace::is_json_record(attr.tag, b".json") {
        format!(
            "Records of type '{name}' in the {} tier",
            attr.tier.dir_name()
        )
    } else {
        format!("User directory '{name}'")
    }
}

/// The bytes of a view (log segments are read from the engine directly instead).
pub fn render(engine: &Engine, view: &View) -> Vec<u8> {
    match view {
        View::Manifest { dir } => manifest(engine, *dir),
        View::ShardMetadata(tier) => shard_metadata(engine, *tier),
        View::UniverseManifest => universe_manifest(engine),
        View::LogSegment(_) => Vec::new(),
    }
}

fn manifest(engine: &Engine, dir: u64) -> Vec<u8> {
    let Ok(attr) = engine.getattr(dir) else {
        return pretty(json!({ "error": "directory no longer exists" }));
    };
    let path = namespace::join(&engine.path_of(dir));
    let (reads, writes) = engine.dir_counters(dir);
    let location = if path.is_empty() {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    pretty(json!({
        "cosmic_location": location,
        "purpose": purpose(&path, &attr),
        "data_format": data_format(&path, &attr),
        "record_count": engine.entry_count(dir).unwrap_or(0),
        "last_observation": rfc3339(attr.mtime),
        "tier": attr.tier.dir_name(),
        "consistency_model": namespace::consistency(attr.tier),
        "fixed": namespace::seed_dir(&path).is_some() || path.is_empty(),
        "access_patterns": {
            "record_reads": reads,
            "record_commits": writes,
        }
    }))
}

fn shard_metadata(engine: &Engine, tier: Tier) -> Vec<u8> {
    let stats = &engine.tier_stats()[tier as usize];
    let ratio = if stats.bytes_on_disk == 0 {
        1.0
    } else {
        stats.bytes_stored as f64 / stats.bytes_on_disk as f64
    };
    let window = engine.settings().windows[tier as usize];
    pretty(json!({
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

fn universe_manifest(engine: &Engine) -> Vec<u8> {
    let stats = engine.tier_stats();
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
    pretty(json!({
        "universe": "IsLab DB",
        "version": env!("CARGO_PKG_VERSION"),
        "data_directory": engine.root().display().to_string(),
        "inodes": engine.inode_count(),
        "regions": top,
        "tiers": tiers,
        "log_segments": engine.log_segments().len(),
        "engine": engine.counters(),
        "cosmic_background_radiation": 2.7,
    }))
}

/// A view's attributes: a read-only file owned by root, timestamped `at`.
pub fn attr(ino: u64, size: u64, now: Ts) -> Attr {
    Attr {
        ino,
        kind: Kind::File,
        perm: 0o444,
        uid: 0,
        gid: 0,
        size,
        atime: now,
        mtime: now,
        ctime: now,
        nlink: 1,
        tier: Tier::Hot,
        tag: namespace::TAG_PLAIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(Ts { secs: 0, nanos: 0 }), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Ts {
                secs: 1_705_329_000,
                nanos: 0
            }),
            "2024-01-15T14:30:00Z"
        );
        assert_eq!(rfc3339(Ts { secs: -1, nanos: 0 }), "1969-12-31T23:59:59Z");
        assert_eq!(
            rfc3339(Ts {
                secs: 951_782_400,
                nanos: 0
            }),
            "2000-02-29T00:00:00Z"
        );
    }
}
