//! The region's indexes: for a collection directory and a declared JSON path, its
//! records by the value there (`paths_index`). Built by a scan the first time a plan
//! uses one, then kept by every change the region is told of (`Event::Entry`,
//! `Event::Committed` in that directory), so a query never scans what an index answers.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::lang::path::{JsonPath, Step};
use super::lang::value::OrdValue;
use super::paths_index::PathIndex;
use super::records::{each_record, read_record};
use crate::error::Result;
use crate::regions::Cx;

/// An index, or the changes told while it is first built (by a scan, without the lock).
enum Slot {
    Building(Vec<Vec<u8>>),
    Ready(PathIndex<OrdValue>),
}

type Built = HashMap<u64, HashMap<JsonPath, Slot>>;

#[derive(Default)]
pub struct Indexes {
    /// Indexes by directory, then path.
    built: Mutex<Built>,
}

/// The index key of a record's content at `path`.
fn key(value: Option<&Value>, path: &JsonPath) -> Option<OrdValue> {
    value.and_then(|v| path.get(v)).cloned().map(OrdValue)
}

impl Indexes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Built> {
        self.built.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the index of `dir` on `path`. The first use builds it by a scan made
    /// without the lock (commits go on meanwhile; the names they touch are read again
    /// once the scan is done), and a use while another builds it waits for that build.
    pub fn with<T>(
        &self,
        cx: &Cx<'_>,
        dir: u64,
        path: &JsonPath,
        f: impl FnOnce(&PathIndex<OrdValue>) -> T,
    ) -> Result<T> {
        loop {
            let mut built = self.lock();
            match built.get(&dir).and_then(|m| m.get(path)) {
                Some(Slot::Ready(ix)) => return Ok(f(ix)),
                Some(Slot::Building(_)) => {
                    drop(built);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                None => {
                    let slot = Slot::Building(Vec::new());
                    built.entry(dir).or_default().insert(path.clone(), slot);
                    drop(built);
                    let scanned = self.scan(cx, dir, path);
                    let mut built = self.lock();
                    let paths = built.entry(dir).or_default();
                    let pending = match paths.remove(path) {
                        Some(Slot::Building(p)) => p,
                        _ => Vec::new(),
                    };
                    let mut ix = scanned?;
                    for name in pending {
                        ix.set(&name, key(value_of(cx, dir, &name).as_ref(), path));
                    }
                    let ix = match paths.entry(path.clone()).or_insert(Slot::Ready(ix)) {
                        Slot::Ready(ix) => ix,
                        Slot::Building(_) => continue,
                    };
                    return Ok(f(ix));
                }
            }
        }
    }

    fn scan(&self, cx: &Cx<'_>, dir: u64, path: &JsonPath) -> Result<PathIndex<OrdValue>> {
        let mut ix = PathIndex::default();
        let members = top_member(path);
        let members = members.as_ref().map(|m| m.as_slice());
        each_record(cx.store, dir, members, &mut |name, v| {
            ix.set(name, key(Some(&v), path));
        })?;
        Ok(ix)
    }

    /// `name` of `dir` changed: every index of the directory takes its new value.
    pub fn changed(&self, cx: &Cx<'_>, dir: u64, name: &[u8]) {
        let mut built = self.lock();
        let Some(paths) = built.get_mut(&dir) else {
            return;
        };
        let value = value_of(cx, dir, name);
        for (path, slot) in paths.iter_mut() {
            match slot {
                Slot::Ready(ix) => ix.set(name, key(value.as_ref(), path)),
                Slot::Building(pending) => pending.push(name.to_vec()),
            }
        }
    }

    /// Drops the indexes no longer declared (`keep` says which stay).
    pub fn retain(&self, keep: impl Fn(u64, &JsonPath) -> bool) {
        let mut built = self.lock();
        for (dir, paths) in built.iter_mut() {
            paths.retain(|p, _| keep(*dir, p));
        }
        built.retain(|_, paths| !paths.is_empty());
    }
}

/// The member of a record an index on `path` reads (`None`: all of it).
fn top_member(path: &JsonPath) -> Option<[String; 1]> {
    match path.0.first() {
        Some(Step::Member(m)) => Some([m.clone()]),
        _ => None,
    }
}

/// A record's content now, for an index (a record that cannot be read leaves them).
fn value_of(cx: &Cx<'_>, dir: u64, name: &[u8]) -> Option<Value> {
    match read_record(cx, dir, name, None) {
        Ok(v) => v.map(|(_, v)| v),
        Err(e) => {
            log::warn!("qql: index of a changed record: {e}; it leaves the indexes");
            None
        }
    }
}
