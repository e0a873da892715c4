//! The filesystem, without FUSE: inodes, open handles, and the dispatch to the region that
//! owns each directory (`regions/`). It knows the seed's fixed hierarchy (from
//! `namespace`) but no region by name. `fuse.rs` only unpacks kernel requests into these
//! calls. The path of a request: `names` (lookup, create, rename, remove, listing),
//! `handles` (open, read, write, close), `commit` (the one commit path), `views`
//! (generated files), `bootstrap` (seed hierarchy and migration at start).

mod bootstrap;
mod caller;
mod commit;
mod frozen;
mod guard;
mod handles;
mod names;
mod views;
mod xattr;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::engine::tree::{ROOT, Ts};
use crate::engine::{Attr, Engine};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, Op};
use crate::namespace::SeedDir;
use crate::regions::{Cx, Dir, Region, Regions};

pub use self::caller::{Caller, acting, acting_now};
pub use self::views::VIRT;

/// What `setattr` may change.
#[derive(Default)]
pub struct Changes {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Ts>,
    pub mtime: Option<Ts>,
}

pub struct Statfs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
}

pub struct Vfs {
    engine: Arc<Engine>,
    regions: Regions,
    /// The seed's directories by inode (they can be neither removed nor renamed).
    seeds: HashMap<u64, &'static SeedDir>,
    handles: Mutex<HashMap<u64, handles::Handle>>,
    next_fh: AtomicU64,
    /// Content checks running ahead of the commit for writers going forward (see
    /// `handles::Ahead`).
    ahead: Mutex<HashMap<u64, Arc<Mutex<handles::Ahead>>>>,
    views: views::Views,
    /// Names unlinked by users whose region keeps the file until a new file of that name
    /// replaces it (`regions::Removal::UntilReplaced`), with the kept inode.
    detached: Mutex<HashMap<Entry, u64>>,
    /// Tells the kernel a file changed, or a name went, behind its back (set by the FUSE
    /// layer).
    notify: OnceLock<Listener>,
    /// What the daemon measures of its own requests.
    metrics: Metrics,
}

/// Where changes go when nobody listens (no kernel: tests).
fn unheard(_: u64) {}
fn unheard_name(_: u64, _: &[u8]) {}

/// Who hears of changes made behind the kernel's back: to a file's content and
/// attributes, and to a directory's names.
pub struct Listener {
    pub changed: Box<dyn Fn(u64) + Send + Sync>,
    pub gone: Box<NameGone>,
}

/// Hears that `name` went from directory `parent`.
pub type NameGone = dyn Fn(u64, &[u8]) + Send + Sync;

/// A directory entry: the directory's inode and the name in it.
type Entry = (u64, Box<[u8]>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Vfs {
    /// Wraps an opened engine: creates whatever part of the seed hierarchy is missing,
    /// migrates a data directory of an older build, and starts every region.
    pub fn new(engine: Arc<Engine>, regions: Regions, seed: &'static [SeedDir]) -> Result<Vfs> {
        let seeds = bootstrap::seed_hierarchy(&engine, &regions, seed)?;
        let vfs = Vfs {
            engine,
            regions,
            seeds,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            ahead: Mutex::new(HashMap::new()),
            views: views::Views::new(),
            detached: Mutex::new(HashMap::new()),
            notify: OnceLock::new(),
            metrics: Metrics::new(),
        };
        let cx = vfs.cx();
        for region in vfs.regions.all() {
            region.start(&cx)?;
        }
        Ok(vfs)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn cx(&self) -> Cx<'_> {
        Cx {
            store: self.engine.as_ref(),
            regions: &self.regions,
            seeds: &self.seeds,
            metrics: &self.metrics,
            changed: match self.notify.get() {
                Some(l) => l.changed.as_ref(),
                None => &unheard,
            },
            gone: match self.notify.get() {
                Some(l) => l.gone.as_ref(),
                None => &unheard_name,
            },
            open: self,
        }
    }

    /// Keeps no statistics of requests (their cost measured by the benchmark): no
    /// latencies, and regions do not learn from reads.
    pub fn without_statistics(mut self) -> Vfs {
        self.metrics = Metrics::off();
        self
    }

    /// Where to say that a file changed behind the kernel's back (once, at mount).
    pub fn notify_with(&self, l: Listener) {
        if self.notify.set(l).is_err() {
            log::warn!("a second change listener was refused");
        }
    }

    /// At a clean unmount, before the engine shuts down: each region keeps what it keeps.
    pub fn stop(&self) {
        let cx = self.cx();
        for region in self.regions.all() {
            region.stop(&cx);
        }
    }

    /// Each region's periodic work; the daemon calls it about once a second.
    pub fn tick(&self) {
        let cx = self.cx();
        for region in self.regions.all() {
            region.tick(&cx);
        }
    }

    /// A directory as its region sees it.
    fn dir(&self, ino: u64) -> Result<Dir> {
        self.dir_of(&self.engine.getattr(ino)?)
    }

    fn dir_of(&self, attr: &Attr) -> Result<Dir> {
        Dir::of(attr, self.seeds.get(&attr.ino).copied())
    }

    fn region(&self, dir: &Dir) -> &dyn Region {
        self.regions.by_tag(dir.tag)
    }

    fn is_seed(&self, ino: u64) -> bool {
        ino == ROOT || self.seeds.contains_key(&ino)
    }

    #[cfg(test)]
    pub(crate) fn resolve(&self, path: &str) -> Result<u64> {
        let mut ino = ROOT;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            ino = self.engine.lookup(ino, part.as_bytes())?.ino;
        }
        Ok(ino)
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        let _t = self.metrics.time(Op::Lookup);
        if frozen::split(parent).is_some() {
            return self.frozen_lookup(parent, name);
        }
        if parent & VIRT != 0 {
            return Err(Error::NotDir);
        }
        match self.engine.lookup(parent, name) {
            Ok(_) if self.detached(parent, name).is_some() => Err(Error::NotFound),
            Err(Error::NotFound) => self.view_attr_by_name(parent, name),
            other => other,
        }
    }

    /// The inode kept under a detached name.
    fn detached(&self, parent: u64, name: &[u8]) -> Option<u64> {
        let d = lock(&self.detached);
        if d.is_empty() {
            return None;
        }
        d.get(&(parent, name.into())).copied()
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        let _t = self.metrics.time(Op::Getattr);
        if frozen::split(ino).is_some() {
            return self.frozen_getattr(ino);
        }
        if ino & VIRT != 0 {
            return self.view_attr(ino);
        }
        self.engine.getattr(ino)
    }

    pub fn statfs(&self) -> Result<Statfs> {
        let st = self.engine.statfs()?;
        Ok(Statfs {
            blocks: st.f_blocks,
            bfree: st.f_bfree,
            bavail: st.f_bavail,
            files: st.f_files.max(self.engine.inode_count() as u64),
            ffree: st.f_ffree,
            bsize: st.f_bsize as u32,
            namelen: crate::engine::NAME_MAX as u32,
        })
    }
}
