//! `wormholes/active_connections.json`: the files open now, by kind of handle (a reader,
//! a writer, a stream's writer, a generated file's reader), per region and per tier.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::namespace;
use crate::regions::temporal::time;
use crate::regions::{Cx, OpenKind, pretty};

/// Files the document names one by one at most (the counts cover all of them).
const LISTED: usize = 200;

fn kind_name(k: OpenKind) -> &'static str {
    match k {
        OpenKind::Reader => "reader",
        OpenKind::Writer => "writer",
        OpenKind::Stream => "stream",
        OpenKind::View => "view",
    }
}

/// Counts of each kind, and their total.
#[derive(Default)]
struct Kinds(BTreeMap<&'static str, u64>);

impl Kinds {
    fn add(&mut self, k: OpenKind) {
        *self.0.entry(kind_name(k)).or_default() += 1;
        *self.0.entry("total").or_default() += 1;
    }

    fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for k in ["reader", "writer", "stream", "view", "total"] {
            m.insert(k.to_string(), json!(self.0.get(k).copied().unwrap_or(0)));
        }
        Value::Object(m)
    }
}

pub fn render(cx: &Cx<'_>) -> Vec<u8> {
    let open = cx.open.open_files();
    let mut all = Kinds::default();
    let mut regions: BTreeMap<&'static str, Kinds> = BTreeMap::new();
    let mut tiers: BTreeMap<&'static str, Kinds> = BTreeMap::new();
    let mut files = Vec::new();
    for o in &open {
        all.add(o.kind);
        // Closed and removed since it was listed: counted, but nowhere.
        let Ok(attr) = cx.store.getattr(o.ino) else {
            continue;
        };
        let region = cx.regions.by_tag(attr.tag).name();
        regions.entry(region).or_default().add(o.kind);
        tiers.entry(attr.tier.dir_name()).or_default().add(o.kind);
        if files.len() < LISTED {
            files.push(json!({
                "inode": o.ino,
                "path": namespace::join(&cx.store.path_of(o.ino)),
                "kind": kind_name(o.kind),
                "region": region,
                "tier": attr.tier.dir_name(),
            }));
        }
    }
    let by = |m: BTreeMap<&'static str, Kinds>| -> serde_json::Map<String, Value> {
        m.into_iter()
            .map(|(k, v)| (k.to_string(), v.json()))
            .collect()
    };
    pretty(&json!({
        "sampled_at": time::format_rfc3339(time::now()),
        "open": all.json(),
        "regions": by(regions),
        "tiers": by(tiers),
        "files": files,
        "files_listed_at_most": LISTED,
    }))
}
