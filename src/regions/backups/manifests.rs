//! The `manifest.json` of a snapshot (full) and of an incremental backup.

use serde_json::{Value, json};

use super::FORMAT_VERSION;
use crate::engine::snapshot_diff::Changes;
use crate::engine::snapshots::{Frozen, SnapInfo};
use crate::engine::tree::Kind;
use crate::error::Result;
use crate::regions::Cx;
use crate::regions::manifest::rfc3339;

/// Files, bytes and directories of a snapshot by region.
fn by_region(cx: &Cx<'_>, frozen: &Frozen) -> serde_json::Map<String, Value> {
    let mut regions = serde_json::Map::new();
    for (_, attr) in frozen.walk() {
        let name = cx.regions.by_tag(attr.tag).name();
        let entry = regions
            .entry(name)
            .or_insert_with(|| json!({"files": 0, "bytes": 0, "directories": 0}));
        let (key, bytes) = match attr.kind {
            Kind::Dir => ("directories", 0),
            _ => ("files", attr.size),
        };
        entry[key] = json!(entry[key].as_u64().unwrap_or(0) + 1);
        entry["bytes"] = json!(entry["bytes"].as_u64().unwrap_or(0) + bytes);
    }
    regions
}

fn common(info: &SnapInfo, kind: &str, parent: Option<&SnapInfo>) -> Value {
    json!({
        "name": info.name,
        "id": info.id,
        "kind": kind,
        "taken": rfc3339(info.taken),
        "engine_position": info.log_position,
        "format_version": FORMAT_VERSION,
        "parent": parent.map(|p| &p.name),
    })
}

pub fn full(cx: &Cx<'_>, info: &SnapInfo) -> Result<Value> {
    let frozen = cx.store.frozen(info.id)?;
    let tiers: serde_json::Map<String, Value> = crate::engine::codec::Tier::ALL
        .iter()
        .map(|&t| {
            let totals = frozen.contents.tiers[t as usize];
            (
                t.dir_name().to_string(),
                json!({"files": totals.files, "bytes": totals.bytes}),
            )
        })
        .collect();
    let mut doc = common(info, "full", None);
    let contents = &frozen.contents;
    doc["files"] = json!(contents.files());
    doc["bytes"] = json!(contents.bytes());
    doc["directories"] = json!(contents.dirs);
    doc["other_entries"] = json!(contents.others);
    doc["tiers"] = Value::Object(tiers);
    doc["regions"] = Value::Object(by_region(cx, &frozen));
    Ok(doc)
}

pub fn incremental(
    info: &SnapInfo,
    parent: &SnapInfo,
    frozen: &Frozen,
    changes: &Changes,
) -> Value {
    let (mut files, mut bytes) = (0, 0);
    for &ino in &changes.changed {
        if let Ok(a) = frozen.getattr(ino)
            && a.kind == Kind::File
        {
            files += 1;
            bytes += a.size;
        }
    }
    let mut doc = common(info, "incremental", Some(parent));
    doc["parent_id"] = json!(parent.id);
    doc["parent_taken"] = json!(rfc3339(parent.taken));
    doc["changed_entries"] = json!(changes.changed.len());
    doc["changed_files"] = json!(files);
    doc["changed_bytes"] = json!(bytes);
    doc["deleted"] = json!(changes.deleted.len());
    doc
}
