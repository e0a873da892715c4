//! The region's indexes: for a collection directory and a declared JSON path, its
//! records by the value there (`paths_index`). Built by a scan the first time a plan
//! uses one, then kept by every change the region is told of (`Event::Entry`,
//! `Event::Committed` in that directory), so a query never scans what an index answers.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::lang::path::JsonPath;
use super::lang::value::OrdValue;
use super::paths_index::PathIndex;
use crate::error::Result;
use crate::regions::Cx;

/// A record's parsed content by name in `dir` (`None`: gone, or not a JSON record).
pub fn read_record(cx: &Cx<'_>, dir: u64, name: &[u8]) -> Result<Option<(u64, Value)>> {
    if !name.ends_with(b".json") {
        return Ok(None);
    }
    let Ok(attr) = cx.store.lookup(dir, name) else {
        return Ok(None);
    };
    if attr.kind != crate::engine::tree::Kind::File {
        return Ok(None);
    }
    let bytes = cx.store.read(attr.ino, 0, attr.size as usize)?;
    Ok(serde_json::from_slice(&bytes).ok().map(|v| (attr.ino, v)))
}

#[derive(Default)]
pub struct Indexes {
    /// Built indexes by directory, then path.
    built: Mutex<HashMap<u64, HashMap<JsonPath, PathIndex<OrdValue>>>>,
}

impl Indexes {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, HashMap<JsonPath, PathIndex<OrdValue>>>> {
        self.built.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the index of `dir` on `path`, built first by a scan if it is not yet.
    pub fn with<T>(
        &self,
        cx: &Cx<'_>,
        dir: u64,
        path: &JsonPath,
        f: impl FnOnce(&PathIndex<OrdValue>) -> T,
    ) -> Result<T> {
        let mut built = self.lock();
        if let Some(ix) = built.get(&dir).and_then(|m| m.get(path)) {
            return Ok(f(ix));
        }
        // Built under the lock, so that no change slips between the scan and the index.
        let mut ix = PathIndex::default();
        for (name, _) in cx.store.readdir_names(dir)? {
            if let Some((_, v)) = read_record(cx, dir, &name)? {
                ix.set(&name, path.get(&v).cloned().map(OrdValue));
            }
        }
        let ix = built
            .entry(dir)
            .or_default()
            .entry(path.clone())
            .or_insert(ix);
        Ok(f(ix))
    }

    /// `name` of `dir` changed: every index of the directory takes its new value.
    pub fn changed(&self, cx: &Cx<'_>, dir: u64, name: &[u8]) {
        let mut built = self.lock();
        let Some(paths) = built.get_mut(&dir) else {
            return;
        };
        let value = match read_record(cx, dir, name) {
            Ok(v) => v.map(|(_, v)| v),
            Err(e) => {
                log::warn!("qql: index of a changed record: {e}; it leaves the indexes");
                None
            }
        };
        for (path, ix) in paths.iter_mut() {
            let key = value
                .as_ref()
                .and_then(|v| path.get(v))
                .cloned()
                .map(OrdValue);
            ix.set(name, key);
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
