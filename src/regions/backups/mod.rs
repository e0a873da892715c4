//! `backups/snapshots/`: `mkdir backups/snapshots/<name>` takes a snapshot of the whole
//! universe (`Engine::take_snapshot`: content shared, not copied); the directory then
//! shows it, read-only: `universe/` (the universe as it was, browsed in the snapshot's
//! own tree), `universe.tar.gz` (`archive`), `verification.md5` (`checksums`) and
//! `manifest.json`. `rmdir` removes it.

pub mod archive;
pub mod checksums;
mod manifests;
pub mod policy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::engine::snapshot_diff::Changes;
use crate::engine::snapshots::{Frozen, SnapInfo};
use crate::engine::tree::Kind;
use crate::error::{Error, Result};
use crate::regions::config::Watched;
use crate::regions::{Cx, Dir, Generated, Naming, Region, Tag, pretty};

pub const TAG: Tag = 12;
const SNAPSHOTS: &str = "backups/snapshots";
const INCREMENTAL: &str = "incremental";
const INCREMENTAL_DIR: &str = "backups/snapshots/incremental";
const CHANGES: &str = "changes.tar.gz";
const UNIVERSE: &str = "universe";
const MANIFEST: &str = "manifest.json";
const ARCHIVE: &str = "universe.tar.gz";
const CHECKSUMS: &str = "verification.md5";
/// The manifest's format; a restore refuses a newer one.
const FORMAT_VERSION: u64 = 1;

/// What a directory of the region shows.
enum Shown {
    /// A snapshot's directory.
    Full(Arc<SnapInfo>),
    /// `incremental/<name>`: from the snapshot's parent to it.
    Incremental(Arc<SnapInfo>, Arc<SnapInfo>),
}

/// An incremental backup: what changed, and what is made of it.
struct Delta {
    changes: Changes,
    frozen: Arc<Frozen>,
}

/// A snapshot's id, and whether it is its incremental backup that is meant.
type Key = (u64, bool);

/// What was made of each snapshot, kept while it is: a snapshot never changes; and the
/// policy.
pub struct Backups {
    archives: Mutex<HashMap<Key, Arc<archive::Archive>>>,
    checksums: Mutex<HashMap<Key, Arc<Vec<u8>>>>,
    deltas: Mutex<HashMap<u64, Arc<Delta>>>,
    policy: Watched<policy::Policy>,
}

impl Default for Backups {
    fn default() -> Self {
        Backups {
            archives: Mutex::default(),
            checksums: Mutex::default(),
            deltas: Mutex::default(),
            policy: Watched::new(policy::FILE, policy::Policy::parse),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `universe/<path>` NUL-terminated, for each path removed.
fn deletions(changes: &Changes) -> Vec<u8> {
    let mut out = Vec::new();
    for p in &changes.deleted {
        out.extend(archive::archived_path(p));
        out.push(0);
    }
    out
}

impl Backups {
    fn delta(&self, cx: &Cx<'_>, info: &SnapInfo, parent: &SnapInfo) -> Result<Arc<Delta>> {
        if let Some(d) = lock(&self.deltas).get(&info.id) {
            return Ok(d.clone());
        }
        let frozen = cx.store.frozen(info.id)?;
        let earlier = cx.store.frozen(parent.id)?;
        let changes = frozen.changes_since(&earlier);
        let d = Arc::new(Delta { changes, frozen });
        lock(&self.deltas).insert(info.id, d.clone());
        Ok(d)
    }

    fn archive(&self, cx: &Cx<'_>, shown: &Shown) -> Result<Arc<archive::Archive>> {
        let key = shown.key();
        if let Some(a) = lock(&self.archives).get(&key) {
            return Ok(a.clone());
        }
        let a = Arc::new(match shown {
            Shown::Full(info) => archive::Archive::whole(cx.store, cx.store.frozen(info.id)?)?,
            Shown::Incremental(info, parent) => {
                let d = self.delta(cx, info, parent)?;
                let list = deletions(&d.changes);
                archive::Archive::build(cx.store, d.frozen.clone(), &d.changes.changed, Some(list))?
            }
        });
        lock(&self.archives).insert(key, a.clone());
        Ok(a)
    }

    fn checksums(&self, cx: &Cx<'_>, shown: &Shown) -> Result<Arc<Vec<u8>>> {
        let key = shown.key();
        if let Some(c) = lock(&self.checksums).get(&key) {
            return Ok(c.clone());
        }
        let c = Arc::new(match shown {
            Shown::Full(info) => {
                let frozen = cx.store.frozen(info.id)?;
                let inos: Vec<u64> = frozen.walk().into_iter().map(|(_, a)| a.ino).collect();
                checksums::verification(cx.store, &frozen, &inos)?
            }
            Shown::Incremental(info, parent) => {
                let d = self.delta(cx, info, parent)?;
                checksums::verification(cx.store, &d.frozen, &d.changes.changed)?
            }
        });
        lock(&self.checksums).insert(key, c.clone());
        Ok(c)
    }

    fn manifest(&self, cx: &Cx<'_>, shown: &Shown) -> Result<serde_json::Value> {
        match shown {
            Shown::Full(info) => manifests::full(cx, info),
            Shown::Incremental(info, parent) => {
                let d = self.delta(cx, info, parent)?;
                Ok(manifests::incremental(info, parent, &d.frozen, &d.changes))
            }
        }
    }

    /// Forgets what was made of snapshot `id` (removed), and of incrementals from it.
    fn forget(&self, id: u64) {
        // An incremental's parent may be the one removed: all of them go.
        let gone = |&(i, incremental): &Key| i == id || incremental;
        lock(&self.archives).retain(|k, _| !gone(k));
        lock(&self.checksums).retain(|k, _| !gone(k));
        lock(&self.deltas).clear();
    }

    /// Removes snapshot `info` and its directory (`rmdir`, or the retention policy).
    fn remove(&self, cx: &Cx<'_>, info: &SnapInfo) -> Result<()> {
        self.forget(info.id);
        cx.store.remove_snapshot(info.id)?;
        self.sync_incrementals(cx)
    }

    /// Removes the snapshots the policy no longer keeps, with their directories.
    fn apply_retention(&self, cx: &Cx<'_>) -> Result<()> {
        let policy = self.policy.get(cx);
        let snaps = cx.store.snapshots();
        let now = crate::engine::tree::Ts::now().secs;
        let taken: Vec<(u64, u64)> = snaps
            .iter()
            .map(|s| (s.id, now.saturating_sub(s.taken.secs).max(0) as u64))
            .collect();
        let Some(dir) = cx.seed_dir(SNAPSHOTS) else {
            return Ok(());
        };
        for id in policy.expired(&taken) {
            let Some(info) = snaps.iter().find(|s| s.id == id) else {
                continue;
            };
            log::info!(
                "snapshot {:?} is past the retention policy: removed",
                info.name
            );
            self.remove(cx, info)?;
            match cx.store.remove_dir(dir.ino, info.name.as_bytes()) {
                Ok(()) | Err(Error::NotFound) => (cx.gone)(dir.ino, info.name.as_bytes()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Gives `incremental/` a directory for each snapshot whose parent is still there,
    /// and no other.
    fn sync_incrementals(&self, cx: &Cx<'_>) -> Result<()> {
        let Some(dir) = cx.seed_dir(INCREMENTAL_DIR) else {
            return Ok(());
        };
        let snaps = cx.store.snapshots();
        let want: Vec<&str> = snaps
            .iter()
            .filter(|s| s.parent.is_some_and(|p| snaps.iter().any(|o| o.id == p)))
            .map(|s| s.name.as_str())
            .collect();
        for (name, _) in cx.store.readdir_names(dir.ino)? {
            if !want.iter().any(|w| w.as_bytes() == name.as_slice()) {
                cx.store.remove_dir(dir.ino, &name)?;
                (cx.gone)(dir.ino, &name);
            }
        }
        for name in want {
            cx.store.mkdir(dir.ino, name.as_bytes(), None)?;
        }
        Ok(())
    }
}

impl Shown {
    fn key(&self) -> Key {
        match self {
            Shown::Full(i) => (i.id, false),
            Shown::Incremental(i, _) => (i.id, true),
        }
    }
}

/// What a directory of the region shows, if anything.
fn shown(cx: &Cx<'_>, dir: &Dir) -> Option<Shown> {
    if dir.seed.is_some() {
        return None;
    }
    let path = cx.store.path_of(dir.ino);
    let name = path.last()?;
    let snaps = cx.store.snapshots();
    let find = |name: &[u8]| snaps.iter().find(|s| s.name.as_bytes() == name).cloned();
    for (seed, incremental) in [(SNAPSHOTS, false), (INCREMENTAL_DIR, true)] {
        let parent = cx.seed_dir(seed)?;
        if cx.store.lookup(parent.ino, name).ok()?.ino != dir.ino {
            continue;
        }
        let info = find(name)?;
        if !incremental {
            return Some(Shown::Full(info));
        }
        let parent = snaps.iter().find(|s| Some(s.id) == info.parent)?.clone();
        return Some(Shown::Incremental(info, parent));
    }
    None
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
    /// directory takes nothing; `incremental/` is kept by the region alone.
    fn admit(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8], change: Naming<'_>) -> Result<()> {
        if dir.is_seed(INCREMENTAL_DIR) {
            return Err(Error::NotPermitted(
                "an incremental backup comes with each snapshot (mkdir in backups/snapshots/)",
            ));
        }
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
                // The snapshots' own directories are not part of one.
                let mut hidden = vec![dir.ino];
                hidden.extend(cx.seed_dir(INCREMENTAL_DIR).map(|d| d.ino));
                cx.store.take_snapshot(name, &hidden)?;
                self.sync_incrementals(cx)
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
                    Some(s) => self.remove(cx, &s),
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
            Some(Shown::Full(_)) => [UNIVERSE, ARCHIVE, MANIFEST, CHECKSUMS]
                .map(String::from)
                .to_vec(),
            Some(Shown::Incremental(..)) => {
                [CHANGES, MANIFEST, CHECKSUMS].map(String::from).to_vec()
            }
            None => Vec::new(),
        }
    }

    fn snapshot_root(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8]) -> Option<u64> {
        if name != UNIVERSE.as_bytes() {
            return None;
        }
        match shown(cx, dir)? {
            Shown::Full(info) => Some(info.id),
            Shown::Incremental(..) => None,
        }
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        let info = shown(cx, dir)?;
        let archive = match info {
            Shown::Full(_) => ARCHIVE,
            Shown::Incremental(..) => CHANGES,
        };
        match name {
            MANIFEST => Some(match self.manifest(cx, &info) {
                Ok(doc) => Generated::Fixed(pretty(&doc)),
                Err(e) => Generated::Failed(e),
            }),
            CHECKSUMS => Some(match self.checksums(cx, &info) {
                Ok(c) => Generated::Fixed(c.to_vec()),
                Err(e) => Generated::Failed(e),
            }),
            n if n == archive => Some(match self.archive(cx, &info) {
                Ok(a) => Generated::Ranged {
                    len: a.len(),
                    source: a,
                },
                Err(e) => Generated::Failed(e),
            }),
            _ => None,
        }
    }

    fn tick(&self, cx: &Cx<'_>) {
        if let Err(e) = self.apply_retention(cx) {
            log::error!("backups: the retention policy could not be applied: {e}");
        }
    }

    /// A snapshot taken with no directory made for it (the daemon stopped in between)
    /// gets its directory now, and so does its incremental backup.
    fn start(&self, cx: &Cx<'_>) -> Result<()> {
        self.sync_incrementals(cx)?;
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
