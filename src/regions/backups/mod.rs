//! `backups/snapshots/`: `mkdir backups/snapshots/<name>` takes a snapshot of the whole
//! universe (`Engine::take_snapshot`: content shared, not copied); the directory then
//! shows it, read-only: `universe/` (the universe as it was, browsed in the snapshot's
//! own tree), `universe.tar.gz` (`archive`), `verification.md5` (`checksums`) and
//! `manifest.json`. `rmdir` removes it.

mod archive;
pub mod checksums;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::engine::snapshots::SnapInfo;
use crate::engine::tree::Kind;
use crate::error::{Error, Result};
use crate::regions::manifest::rfc3339;
use crate::regions::{Cx, Dir, Generated, Naming, Region, Tag, pretty};

pub const TAG: Tag = 12;
const SNAPSHOTS: &str = "backups/snapshots";
const INCREMENTAL: &str = "incremental";
const UNIVERSE: &str = "universe";
const MANIFEST: &str = "manifest.json";
const ARCHIVE: &str = "universe.tar.gz";
const CHECKSUMS: &str = "verification.md5";
/// The manifest's format; a restore refuses a newer one.
const FORMAT_VERSION: u64 = 1;

/// What was made of each snapshot, kept while it is: a snapshot never changes.
#[derive(Default)]
pub struct Backups {
    archives: Mutex<HashMap<u64, Arc<archive::Archive>>>,
    checksums: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
}

impl Backups {
    fn archive(&self, cx: &Cx<'_>, info: &SnapInfo) -> Result<Arc<archive::Archive>> {
        if let Some(a) = lock(&self.archives).get(&info.id) {
            return Ok(a.clone());
        }
        let a = Arc::new(archive::Archive::build(
            cx.store,
            cx.store.frozen(info.id)?,
        )?);
        lock(&self.archives).insert(info.id, a.clone());
        Ok(a)
    }

    fn checksums(&self, cx: &Cx<'_>, info: &SnapInfo) -> Result<Arc<Vec<u8>>> {
        if let Some(c) = lock(&self.checksums).get(&info.id) {
            return Ok(c.clone());
        }
        let frozen = cx.store.frozen(info.id)?;
        let c = Arc::new(checksums::verification(cx.store, &frozen)?);
        lock(&self.checksums).insert(info.id, c.clone());
        Ok(c)
    }

    /// Forgets what was made of snapshot `id` (removed).
    fn forget(&self, id: u64) {
        lock(&self.archives).remove(&id);
        lock(&self.checksums).remove(&id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The snapshot a directory of `backups/snapshots/` shows.
fn shown(cx: &Cx<'_>, dir: &Dir) -> Option<std::sync::Arc<SnapInfo>> {
    if dir.seed.is_some() {
        return None;
    }
    let parent = cx.seed_dir(SNAPSHOTS)?;
    let path = cx.store.path_of(dir.ino);
    let name = path.last()?;
    if cx.store.lookup(parent.ino, name).ok()?.ino != dir.ino {
        return None;
    }
    cx.store
        .snapshots()
        .into_iter()
        .find(|s| s.name.as_bytes() == name.as_slice())
}

fn manifest(cx: &Cx<'_>, info: &SnapInfo) -> Result<serde_json::Value> {
    let frozen = cx.store.frozen(info.id)?;
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
    let tiers: serde_json::Map<String, serde_json::Value> = crate::engine::codec::Tier::ALL
        .iter()
        .map(|&t| {
            let totals = info.tiers[t as usize];
            (
                t.dir_name().to_string(),
                json!({"files": totals.files, "bytes": totals.bytes}),
            )
        })
        .collect();
    Ok(json!({
        "name": info.name,
        "id": info.id,
        "taken": rfc3339(info.taken),
        "engine_position": info.log_position,
        "format_version": FORMAT_VERSION,
        "kind": "full",
        "parent": null,
        "files": info.files(),
        "bytes": info.bytes(),
        "directories": info.dirs,
        "other_entries": info.others,
        "tiers": tiers,
        "regions": regions,
    }))
}

impl Region for Backups {
    fn name(&self) -> &'static str {
        "backups"
    }

    fn tag(&self) -> Tag {
        TAG
    }

    fn data_format(&self) -> &'static str {
        "Snapshots: each directory shows one, read-only"
    }

    /// `backups/snapshots/` takes directories only, each a new snapshot; a snapshot's
    /// directory takes nothing.
    fn admit(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8], change: Naming<'_>) -> Result<()> {
        if !dir.is_seed(SNAPSHOTS) {
            if dir.seed.is_none() {
                return Err(Error::ReadOnlySnapshot);
            }
            return Ok(());
        }
        match change {
            Naming::Add(Kind::Dir) => {
                let name = std::str::from_utf8(name)
                    .map_err(|_| Error::InvalidArgument("a snapshot's name is UTF-8"))?;
                if cx.store.lookup(dir.ino, name.as_bytes()).is_ok()
                    || cx.store.snapshots().iter().any(|s| s.name == name)
                {
                    return Err(Error::Exists);
                }
                cx.store.take_snapshot(name)?;
                Ok(())
            }
            Naming::Add(_) => Err(Error::NotPermitted(
                "backups/snapshots/ holds snapshots: mkdir takes one",
            )),
            Naming::Remove if name != INCREMENTAL.as_bytes() => {
                let found = cx
                    .store
                    .snapshots()
                    .into_iter()
                    .find(|s| s.name.as_bytes() == name);
                match found {
                    Some(s) => {
                        self.forget(s.id);
                        cx.store.remove_snapshot(s.id)
                    }
                    None => Ok(()),
                }
            }
            Naming::Remove => Ok(()),
            Naming::RenameFrom(..) | Naming::RenameTo(..) => {
                Err(Error::NotPermitted("a snapshot keeps its name"))
            }
        }
    }

    fn lists_views(&self, dir: &Dir) -> bool {
        dir.seed.is_none() || !dir.is_data()
    }

    fn views(&self, cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        match shown(cx, dir) {
            Some(_) => [UNIVERSE, ARCHIVE, MANIFEST, CHECKSUMS]
                .map(String::from)
                .to_vec(),
            None => Vec::new(),
        }
    }

    fn snapshot_root(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8]) -> Option<u64> {
        if name != UNIVERSE.as_bytes() {
            return None;
        }
        shown(cx, dir).map(|s| s.id)
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        let info = shown(cx, dir)?;
        match name {
            MANIFEST => Some(match manifest(cx, &info) {
                Ok(doc) => Generated::Fixed(pretty(&doc)),
                Err(e) => Generated::Failed(e),
            }),
            CHECKSUMS => Some(match self.checksums(cx, &info) {
                Ok(c) => Generated::Fixed(c.to_vec()),
                Err(e) => Generated::Failed(e),
            }),
            ARCHIVE => Some(match self.archive(cx, &info) {
                Ok(a) => Generated::Ranged {
                    len: a.len(),
                    source: a,
                },
                Err(e) => Generated::Failed(e),
            }),
            _ => None,
        }
    }

    /// A snapshot taken with no directory made for it (the daemon stopped in between)
    /// gets its directory now.
    fn start(&self, cx: &Cx<'_>) -> Result<()> {
        let Some(dir) = cx.seed_dir(SNAPSHOTS) else {
            return Ok(());
        };
        for s in cx.store.snapshots() {
            if cx.store.lookup(dir.ino, s.name.as_bytes()).is_err() {
                log::warn!("snapshot {:?} had no directory; made", s.name);
                cx.store.mkdir(dir.ino, s.name.as_bytes(), None)?;
            }
        }
        Ok(())
    }
}
