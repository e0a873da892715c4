//! Generated files as inodes. A region names a directory's generated files and renders
//! them (`regions::Region::views`/`generate`); here each (directory, name) gets a stable
//! inode number of its own, and rendered documents are kept until the engine's state
//! moves, so that the size `stat` reports is the size a following read returns (`tar`
//! and `cp` compare the two).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::codec::Tier;
use crate::engine::snapshots::Frozen;
use crate::engine::tree::{Kind, Ts};
use crate::engine::{Attr, Data};
use crate::error::{Error, Result};
use crate::regions::{Dir, Generated, RangeSource, Tag};
use crate::vfs::{Vfs, lock};

/// Inode numbers with this bit set are generated files.
pub const VIRT: u64 = 1 << 63;

/// A generated file's content, as an open handle holds it.
#[derive(Clone)]
pub enum Content {
    /// Rendered in full at one engine generation: every read of one open sees one version.
    Document(Arc<Vec<u8>>),
    Ranged(Arc<dyn RangeSource>),
    /// A file of a snapshot's tree (its inode there).
    Frozen(Arc<Frozen>, u64),
}

#[derive(Default)]
struct Table {
    by_name: HashMap<(u64, Box<str>), u64>,
    by_ino: HashMap<u64, (u64, Box<str>)>,
    next: u64,
    rendered: HashMap<u64, Rendered>,
}

/// A rendered document, and how long it stays what the file holds (`Until`).
struct Rendered {
    until: Until,
    data: Arc<Vec<u8>>,
}

/// While the engine's state does not move; or (a fresh one, showing what moves without
/// the engine) also while its region's `shown` count stays and for no longer than
/// `FRESH_FOR` from a time, so that a `stat` and the read after it agree and a commit (or
/// what the region counts) shows at once; or as long as the daemon runs (a fixed one).
enum Until {
    Moved(u64),
    MovedOrAged {
        generation: u64,
        region: Tag,
        shown: u64,
        at: Instant,
    },
    Never,
}

const FRESH_FOR: Duration = Duration::from_secs(1);

impl Rendered {
    /// `shown`: a region's count now (`Region::shown`).
    fn valid(&self, generation: u64, shown: impl Fn(Tag) -> u64) -> bool {
        match self.until {
            Until::Moved(g) => g == generation,
            Until::MovedOrAged {
                generation: g,
                region,
                shown: n,
                at,
            } => g == generation && shown(region) == n && at.elapsed() < FRESH_FOR,
            Until::Never => true,
        }
    }
}

pub struct Views {
    table: Mutex<Table>,
    /// Generated files carry this time, so that reading one never looks like a change.
    started: Ts,
}

impl Views {
    pub fn new() -> Views {
        Views {
            table: Mutex::default(),
            started: Ts::now(),
        }
    }

    fn ino(&self, dir: u64, name: &str) -> u64 {
        let mut t = lock(&self.table);
        if let Some(&ino) = t.by_name.get(&(dir, name.into())) {
            return ino;
        }
        t.next += 1;
        let ino = VIRT | t.next;
        t.by_name.insert((dir, name.into()), ino);
        t.by_ino.insert(ino, (dir, name.into()));
        ino
    }

    pub(super) fn key(&self, ino: u64) -> Option<(u64, Box<str>)> {
        lock(&self.table).by_ino.get(&ino).cloned()
    }

    /// A directory is gone: so are its generated files.
    pub fn forget_dir(&self, dir: u64) {
        let mut t = lock(&self.table);
        let gone: Vec<u64> = t
            .by_ino
            .iter()
            .filter(|(_, (d, _))| *d == dir)
            .map(|(ino, _)| *ino)
            .collect();
        for ino in gone {
            if let Some(key) = t.by_ino.remove(&ino) {
                t.by_name.remove(&key);
            }
            t.rendered.remove(&ino);
        }
    }

    /// Drops what was rendered of `ino` (written to: what it shows changed).
    pub fn forget(&self, ino: u64) {
        lock(&self.table).rendered.remove(&ino);
    }

    fn attr(&self, ino: u64, size: u64) -> Attr {
        let now = self.started;
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
            tag: 0,
            rdev: 0,
        }
    }
}

impl Content {
    pub fn read(&self, vfs: &Vfs, off: u64, size: usize) -> Result<Data> {
        match self {
            Content::Document(data) => {
                let start = (off as usize).min(data.len());
                let end = start.saturating_add(size).min(data.len());
                Ok(Data::Shared(data.clone(), start..end))
            }
            Content::Ranged(source) => source.read(vfs.engine.as_ref(), off, size).map(Data::Owned),
            Content::Frozen(f, ino) => vfs.engine.read_frozen(f, *ino, off, size),
        }
    }
}

impl Vfs {
    /// Names of the generated files of `dir`.
    pub(super) fn view_names(&self, dir: &Dir) -> Vec<String> {
        self.regions.views(&self.cx(), dir)
    }

    pub(super) fn is_view(&self, dir: &Dir, name: &[u8]) -> bool {
        // A region answers by name first: a directory with a view per entry (one per
        // graph node) need not list them all for each lookup.
        std::str::from_utf8(name).is_ok_and(|name| {
            self.region(dir).resolves(&self.cx(), dir, name)
                || self.view_names(dir).iter().any(|n| n == name)
        })
    }

    /// The generated file `name` of directory `parent`, if it has one.
    pub(super) fn view_in(&self, parent: u64, name: &[u8]) -> Option<u64> {
        self.view_of(&self.dir(parent).ok()?, name)
    }

    /// The generated file `name` of `dir`, if it has one.
    fn view_of(&self, dir: &Dir, name: &[u8]) -> Option<u64> {
        let name = std::str::from_utf8(name).ok()?;
        self.is_view(dir, name.as_bytes())
            .then(|| self.views.ino(dir.ino, name))
    }

    /// A name the engine does not store: a snapshot's tree, or a generated file (the
    /// directory resolved once for both questions: this runs at every missed lookup).
    pub(super) fn view_attr_by_name(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        let Ok(dir) = self.dir(parent) else {
            return Err(Error::NotFound);
        };
        if let Some(id) = self.region(&dir).snapshot_root(&self.cx(), &dir, name) {
            return self.frozen_root(id);
        }
        match self.view_of(&dir, name) {
            Some(ino) => self.view_attr(ino),
            None => Err(Error::NotFound),
        }
    }

    /// Inode number of a generated file listed in `dir`.
    pub(super) fn view_ino(&self, dir: u64, name: &str) -> u64 {
        self.views.ino(dir, name)
    }

    /// The content of a generated file now, with its size.
    pub(super) fn view_content(&self, ino: u64) -> Result<(Content, u64)> {
        let (dir, name) = self.views.key(ino).ok_or(Error::NotFound)?;
        let generation = self.engine.generation();
        let shown = |tag| self.regions.by_tag(tag).shown();
        if let Some(r) = lock(&self.views.table).rendered.get(&ino)
            && r.valid(generation, shown)
        {
            return Ok((Content::Document(r.data.clone()), r.data.len() as u64));
        }
        let d = self.dir(dir).map_err(|_| Error::NotFound)?;
        // Counted before rendering: what moves meanwhile renders again at the next look.
        let shown_before = shown(d.tag);
        let (bytes, until) = match self.regions.generate(&self.cx(), &d, &name) {
            Some(Generated::Document(bytes)) => (bytes, Until::Moved(generation)),
            Some(Generated::Fresh(bytes)) => {
                let until = Until::MovedOrAged {
                    generation,
                    region: d.tag,
                    shown: shown_before,
                    at: Instant::now(),
                };
                (bytes, until)
            }
            Some(Generated::Fixed(bytes)) => (bytes, Until::Never),
            Some(Generated::Ranged { len, source }) => return Ok((Content::Ranged(source), len)),
            Some(Generated::Failed(e)) => return Err(e),
            None => return Err(Error::NotFound),
        };
        let data = Arc::new(bytes);
        let len = data.len() as u64;
        let mut t = lock(&self.views.table);
        t.rendered.retain(|_, r| r.valid(generation, shown));
        t.rendered.insert(
            ino,
            Rendered {
                until,
                data: data.clone(),
            },
        );
        Ok((Content::Document(data), len))
    }

    /// Whether the kernel may keep what it learnt of `ino` (its name, its attributes) for
    /// a while: true of stored files, and of fixed generated files once rendered.
    pub fn attrs_keep(&self, ino: u64) -> bool {
        ino & VIRT == 0
            || lock(&self.views.table)
                .rendered
                .get(&ino)
                .is_some_and(|r| matches!(r.until, Until::Never))
    }

    pub(super) fn view_attr(&self, ino: u64) -> Result<Attr> {
        let (_, size) = self.view_content(ino)?;
        let mut attr = self.views.attr(ino, size);
        // A control file or a stream's entry point: its region takes what is written.
        if self.taken(ino).is_some() {
            attr.perm = 0o644;
        }
        Ok(attr)
    }
}
