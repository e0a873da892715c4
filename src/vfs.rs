//! The filesystem, without FUSE: inodes, open handles and the policies of the universe
//! (generated views, the fixed seed hierarchy, records that must parse, configuration the
//! daemon obeys). `fuse.rs` only unpacks kernel requests into these calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::draft::Bytes;
use crate::engine::tree::{Kind, Meta, ROOT, Ts};
use crate::engine::{Attr, CommitAt, Data, DirEntry, Engine, NewNode, SetAttr, Snapshot, wal};
use crate::error::{Error, Result};
use crate::namespace::{self, TAG_CONFIG, View};
use crate::regions::{config, records, views};

/// Inode numbers with this bit set are generated views: `VIRT | arg << 8 | kind`.
pub const VIRT: u64 = 1 << 63;

enum Handle {
    /// A reader holds the version it opened; a writer reads its draft.
    File {
        ino: u64,
        writer: bool,
        snap: Option<Snapshot>,
    },
    /// A view's bytes, generated at open so every read of one open sees one version.
    View {
        data: Arc<Vec<u8>>,
    },
    Log {
        name: String,
    },
}

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

/// The caller of a request.
#[derive(Clone, Copy)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
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
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    cache_override: Option<usize>,
    views: Mutex<HashMap<u64, Rendered>>,
    /// Views carry this time, so that reading one never looks like a change to `tar`.
    started: Ts,
}

/// A view's bytes and the engine generation they were generated at.
type Rendered = (u64, Arc<Vec<u8>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn view_ino(view: &View) -> u64 {
    let (arg, kind) = match view {
        View::Manifest { dir } => (*dir, 0),
        View::ShardMetadata(t) => (*t as u64, 1),
        View::UniverseManifest => (0, 2),
        View::LogSegment(name) => (wal::parse_segment_name(name).unwrap_or(0), 3),
    };
    VIRT | (arg << 8) | kind
}

fn view_of(ino: u64) -> Option<View> {
    if ino & VIRT == 0 {
        return None;
    }
    let arg = (ino & !VIRT) >> 8;
    match ino & 0xff {
        0 => Some(View::Manifest { dir: arg }),
        1 => crate::engine::codec::Tier::ALL
            .get(arg as usize)
            .map(|t| View::ShardMetadata(*t)),
        2 => Some(View::UniverseManifest),
        3 => Some(View::LogSegment(wal::segment_name(arg))),
        _ => None,
    }
}

fn is_write(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
}

impl Vfs {
    /// Wraps an opened engine; a new universe gets the seed's hierarchy and configuration.
    pub fn new(engine: Arc<Engine>, cache_override: Option<usize>) -> Result<Vfs> {
        let vfs = Vfs {
            engine,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            cache_override,
            views: Mutex::new(HashMap::new()),
            started: Ts::now(),
        };
        vfs.bootstrap()?;
        vfs.apply_config();
        Ok(vfs)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Creates whatever part of the seed hierarchy is missing (all of it on a new universe).
    fn bootstrap(&self) -> Result<()> {
        let e = &self.engine;
        e.create_root(
            0o755,
            crate::engine::codec::Tier::Warm,
            namespace::TAG_PLAIN,
        )?;
        let mut made = 0;
        for seed in namespace::SEED {
            let (parent_path, name) = seed.path.rsplit_once('/').unwrap_or(("", seed.path));
            let parent = self.resolve(parent_path)?;
            if e.lookup(parent, name.as_bytes()).is_ok() {
                continue;
            }
            e.create(
                parent,
                name.as_bytes(),
                NewNode {
                    kind: Kind::Dir,
                    perm: 0o755,
                    uid: 0,
                    gid: 0,
                    target: &[],
                    tier: Some(namespace::seed_tier(seed.path)),
                    tag: Some(seed.tag),
                },
            )?;
            made += 1;
        }
        let conf = self.resolve("configuration")?;
        for (name, text) in config::defaults() {
            if e.lookup(conf, name.as_bytes()).is_ok() {
                continue;
            }
            let attr = e.create(
                conf,
                name.as_bytes(),
                NewNode {
                    kind: Kind::File,
                    perm: 0o644,
                    uid: 0,
                    gid: 0,
                    target: &[],
                    tier: None,
                    tag: None,
                },
            )?;
            e.write(attr.ino, 0, text.as_bytes())?;
            e.commit(attr.ino, CommitAt::Fsync, &|_, _| Ok(()))?;
            e.drop_unheld_draft(attr.ino);
            made += 1;
        }
        if made > 0 {
            log::info!("bootstrapped {made} entries of the seed hierarchy");
        }
        Ok(())
    }

    fn resolve(&self, path: &str) -> Result<u64> {
        let mut ino = ROOT;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            ino = self.engine.lookup(ino, part.as_bytes())?.ino;
        }
        Ok(ino)
    }

    fn config_file(&self, name: &str) -> Option<Vec<u8>> {
        let conf = self.resolve("configuration").ok()?;
        let attr = self.engine.lookup(conf, name.as_bytes()).ok()?;
        self.engine
            .read(attr.ino, 0, attr.size as usize, false)
            .ok()
            .map(Data::into_vec)
    }

    /// (Re)reads `configuration/` into the engine's settings.
    fn apply_config(&self) {
        let topo = self.config_file(config::SHARD_TOPOLOGY);
        let params = self.config_file(config::UNIVERSE_PARAMETERS);
        let s = config::settings(topo.as_deref(), params.as_deref(), self.cache_override);
        log::info!(
            "settings: cache {} MiB, durability windows {:?}",
            s.cache_budget >> 20,
            s.windows
        );
        self.engine.set_settings(s);
    }

    fn dir_path(&self, ino: u64) -> String {
        namespace::join(&self.engine.path_of(ino))
    }

    fn views_in(&self, dir: u64) -> Vec<(String, View)> {
        let path = self.dir_path(dir);
        let mut out = namespace::fixed_views(dir, &path);
        if path == namespace::LOG_DIR {
            for (name, _) in self.engine.log_segments() {
                out.push((name.clone(), View::LogSegment(name)));
            }
        }
        out
    }

    fn view_named(&self, dir: u64, name: &[u8]) -> Option<View> {
        if !namespace::may_name_view(name) {
            return None;
        }
        self.views_in(dir)
            .into_iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, v)| v)
    }

    fn view_attr(&self, view: &View) -> Attr {
        let size = match view {
            View::LogSegment(name) => self.engine.log_segment_len(name).unwrap_or(0),
            other => self.rendered(other).len() as u64,
        };
        views::attr(view_ino(view), size, self.started)
    }

    /// A view's bytes, reused until the engine's state changes, so that the size `stat`
    /// reports is the size a following read returns (`tar` and `cp` compare the two).
    fn rendered(&self, view: &View) -> Arc<Vec<u8>> {
        let ino = view_ino(view);
        let mut cache = lock(&self.views);
        let generation = self.engine.generation();
        if let Some((g, data)) = cache.get(&ino)
            && *g == generation
        {
            return data.clone();
        }
        let data = Arc::new(views::render(&self.engine, view));
        cache.retain(|_, (g, _)| *g == generation);
        cache.insert(ino, (generation, data.clone()));
        data
    }

    /// Refuses names that belong to views, and new entries at the root (it holds exactly
    /// the seed's top level).
    fn check_new_name(&self, parent: u64, name: &[u8]) -> Result<()> {
        if parent == ROOT {
            return Err(Error::Protected);
        }
        if namespace::may_name_view(name) && namespace::is_view_name(&self.dir_path(parent), name) {
            return Err(Error::ReadOnlyView);
        }
        Ok(())
    }

    fn is_seed(&self, ino: u64) -> bool {
        ino == ROOT || namespace::seed_dir(&self.dir_path(ino)).is_some()
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        if parent & VIRT != 0 {
            return Err(Error::NotDir);
        }
        match self.engine.lookup(parent, name) {
            Err(Error::NotFound) => match self.view_named(parent, name) {
                Some(v) => Ok(self.view_attr(&v)),
                None => Err(Error::NotFound),
            },
            other => other,
        }
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        match view_of(ino) {
            Some(v) => Ok(self.view_attr(&v)),
            None => self.engine.getattr(ino),
        }
    }

    fn handle_is_writer(&self, fh: Option<u64>) -> bool {
        fh.and_then(|fh| match lock(&self.handles).get(&fh) {
            Some(Handle::File { writer, .. }) => Some(*writer),
            _ => None,
        })
        .unwrap_or(false)
    }

    pub fn setattr(&self, ino: u64, fh: Option<u64>, c: Changes) -> Result<Attr> {
        if ino & VIRT != 0 {
            return Err(Error::ReadOnlyView);
        }
        if let Some(size) = c.size {
            self.engine.truncate(ino, size)?;
            if !self.handle_is_writer(fh) {
                // truncate(2) by path commits at once, like any other write without an open.
                let res = self
                    .engine
                    .commit(ino, CommitAt::Release, &|m, b| self.check(m, b));
                self.engine.drop_unheld_draft(ino);
                res?;
            }
        }
        let set = SetAttr {
            perm: c.mode.map(|m| (m & 0o7777) as u16),
            uid: c.uid,
            gid: c.gid,
            atime: c.atime,
            mtime: c.mtime,
        };
        if c.mode.is_some()
            || c.uid.is_some()
            || c.gid.is_some()
            || c.atime.is_some()
            || c.mtime.is_some()
        {
            self.engine.setattr(ino, set)
        } else {
            self.engine.getattr(ino)
        }
    }

    /// Creates an inode with permission bits `mode & !umask`.
    fn new_node(
        &self,
        (parent, name): (u64, &[u8]),
        kind: Kind,
        (mode, umask): (u32, u32),
        who: Caller,
        target: &[u8],
    ) -> Result<Attr> {
        if parent & VIRT != 0 {
            return Err(Error::NotDir);
        }
        self.check_new_name(parent, name)?;
        let p = self.engine.getattr(parent)?;
        let mut perm = (mode & !umask & 0o7777) as u16;
        let mut gid = who.gid;
        // A setgid directory passes its group on, and its setgid bit to subdirectories.
        if p.perm & libc::S_ISGID as u16 != 0 {
            gid = p.gid;
            if kind == Kind::Dir {
                perm |= libc::S_ISGID as u16;
            }
        }
        self.engine.create(
            parent,
            name,
            NewNode {
                kind,
                perm,
                uid: who.uid,
                gid,
                target,
                tier: None,
                tag: None,
            },
        )
    }

    pub fn mkdir(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
        who: Caller,
    ) -> Result<Attr> {
        self.new_node((parent, name), Kind::Dir, (mode, umask), who, &[])
    }

    pub fn mknod(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
        who: Caller,
    ) -> Result<Attr> {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Error::NotPermitted("device nodes, FIFOs and sockets"));
        }
        let attr = self.new_node((parent, name), Kind::File, (mode, umask), who, &[])?;
        // No handle will close it: make it as durable as its tier asks now.
        self.engine.settle(attr.ino)?;
        Ok(attr)
    }

    pub fn symlink(&self, parent: u64, name: &[u8], target: &[u8], who: Caller) -> Result<Attr> {
        if target.len() > 4095 {
            return Err(Error::NameTooLong);
        }
        self.new_node((parent, name), Kind::Symlink, (0o777, 0), who, target)
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        self.engine.readlink(ino)
    }

    fn add_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, h);
        fh
    }

    pub fn create(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
        flags: i32,
        who: Caller,
    ) -> Result<(Attr, u64)> {
        let attr = self.new_node((parent, name), Kind::File, (mode, umask), who, &[])?;
        let fh = self.open(attr.ino, flags)?;
        Ok((attr, fh))
    }

    /// Opens a file or a view; returns the handle.
    pub fn open(&self, ino: u64, flags: i32) -> Result<u64> {
        if let Some(view) = view_of(ino) {
            if is_write(flags) {
                return Err(Error::ReadOnlyView);
            }
            let h = match view {
                View::LogSegment(name) => Handle::Log { name },
                other => Handle::View {
                    data: self.rendered(&other),
                },
            };
            return Ok(self.add_handle(h));
        }
        let writer = is_write(flags);
        let attr = self.engine.getattr(ino)?;
        if attr.kind == Kind::Dir {
            return Err(Error::IsDir);
        }
        self.engine.open_handle(ino, writer)?;
        if writer
            && flags & libc::O_TRUNC != 0
            && let Err(e) = self.engine.truncate(ino, 0)
        {
            let _ = self.engine.close_handle(ino, writer);
            return Err(e);
        }
        let snap = if writer {
            None
        } else {
            if let Ok(p) = self.engine.parent_of(ino) {
                self.engine.note_read(p);
            }
            match self.engine.snapshot(ino) {
                Ok(s) => Some(s),
                Err(e) => {
                    let _ = self.engine.close_handle(ino, writer);
                    return Err(e);
                }
            }
        };
        Ok(self.add_handle(Handle::File { ino, writer, snap }))
    }

    pub fn read(&self, fh: u64, off: u64, size: usize) -> Result<Data> {
        enum Src {
            File(u64, bool),
            Version(Snapshot),
            Bytes(Arc<Vec<u8>>),
            Log(String),
        }
        let src = match lock(&self.handles).get(&fh) {
            Some(Handle::File { snap: Some(s), .. }) => Src::Version(s.clone()),
            Some(Handle::File { ino, writer, .. }) => Src::File(*ino, *writer),
            Some(Handle::View { data }) => Src::Bytes(data.clone()),
            Some(Handle::Log { name }) => Src::Log(name.clone()),
            None => return Err(Error::BadHandle),
        };
        match src {
            Src::File(ino, writer) => self.engine.read(ino, off, size, writer),
            Src::Version(snap) => self.engine.read_version(&snap, off, size),
            Src::Bytes(data) => {
                let start = (off as usize).min(data.len());
                let end = start.saturating_add(size).min(data.len());
                Ok(Data::Shared(data, start..end))
            }
            Src::Log(name) => self
                .engine
                .read_log_segment(&name, off, size)
                .map(Data::Owned),
        }
    }

    fn file_handle(&self, fh: u64) -> Result<(u64, bool)> {
        match lock(&self.handles).get(&fh) {
            Some(Handle::File { ino, writer, .. }) => Ok((*ino, *writer)),
            Some(_) => Err(Error::ReadOnlyView),
            None => Err(Error::BadHandle),
        }
    }

    pub fn write(&self, fh: u64, off: u64, data: &[u8]) -> Result<usize> {
        let (ino, writer) = self.file_handle(fh)?;
        if !writer {
            return Err(Error::BadHandle);
        }
        self.engine.write(ino, off, data)?;
        Ok(data.len())
    }

    /// The commit-time rules: `.json` records must parse; configuration must fit its schema.
    fn check(&self, meta: &Meta, bytes: &Bytes<'_>) -> Result<()> {
        if !namespace::is_json_record(meta.tag, &meta.name) {
            return Ok(());
        }
        let res = records::validate_json(&mut bytes.reader(), bytes.len()).and_then(|()| {
            if meta.tag != TAG_CONFIG {
                return Ok(());
            }
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut bytes.reader(), &mut all)?;
            config::validate(&String::from_utf8_lossy(&meta.name), &all)
        });
        if let Err(e) = &res {
            log::warn!(
                "refusing commit of {}: {e}; the previous version stays",
                namespace::join(&self.engine.path_of(meta.ino))
            );
        }
        res
    }

    fn commit(&self, ino: u64, when: CommitAt) -> Result<()> {
        // The check sees the inode's metadata anyway: it notes whether this is a
        // configuration file, so that a commit costs no second lookup.
        let config = std::cell::Cell::new(false);
        self.engine.commit(ino, when, &|m, b| {
            config.set(m.tag == TAG_CONFIG);
            self.check(m, b)
        })?;
        if config.get() {
            self.apply_config();
        }
        Ok(())
    }

    /// close(2) of one descriptor: the commit point.
    pub fn flush(&self, fh: u64) -> Result<()> {
        match self.file_handle(fh) {
            Ok((ino, true)) => self.commit(ino, CommitAt::Close),
            Ok((_, false)) | Err(Error::ReadOnlyView) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub fn fsync(&self, fh: u64) -> Result<()> {
        match self.file_handle(fh) {
            Ok((ino, true)) => self.commit(ino, CommitAt::Fsync),
            Ok((_, false)) => self.engine.sync_all(),
            Err(Error::ReadOnlyView) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The last close of a handle. Returns true when writes were thrown away (a refused
    /// record): the kernel must forget what it cached of the file.
    pub fn release(&self, fh: u64) -> Result<bool> {
        let h = lock(&self.handles).remove(&fh);
        let Some(Handle::File { ino, writer, snap }) = h else {
            return Ok(false);
        };
        if let Some(s) = &snap {
            self.engine.release_snapshot(s);
        }
        // Normally flush already committed; this covers writes after the last flush
        // (mmap). Errors cannot reach anyone here, so they are only logged.
        if writer {
            match self.commit(ino, CommitAt::Release) {
                Ok(()) | Err(Error::InvalidRecord(_)) => {}
                Err(e) => log::warn!("commit at release of inode {ino} failed: {e}"),
            }
        }
        Ok(self.engine.close_handle(ino, writer))
    }

    pub fn unlink(&self, parent: u64, name: &[u8], dir: bool) -> Result<()> {
        if parent & VIRT != 0 {
            return Err(Error::NotDir);
        }
        let ino = match self.engine.lookup(parent, name) {
            Ok(a) => a.ino,
            Err(Error::NotFound) if self.view_named(parent, name).is_some() => {
                return Err(Error::ReadOnlyView);
            }
            Err(e) => return Err(e),
        };
        if self.is_seed(ino) {
            return Err(Error::Protected);
        }
        self.engine.remove(parent, name, dir)
    }

    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<()> {
        if parent & VIRT != 0 || newparent & VIRT != 0 {
            return Err(Error::NotDir);
        }
        if flags & libc::RENAME_EXCHANGE != 0 || flags & libc::RENAME_WHITEOUT != 0 {
            return Err(Error::NotSupported("RENAME_EXCHANGE and RENAME_WHITEOUT"));
        }
        let src = match self.engine.lookup(parent, name) {
            Ok(a) => a,
            Err(Error::NotFound) if self.view_named(parent, name).is_some() => {
                return Err(Error::ReadOnlyView);
            }
            Err(e) => return Err(e),
        };
        if self.is_seed(src.ino) {
            return Err(Error::Protected);
        }
        self.check_new_name(newparent, newname)?;
        if let Ok(dst) = self.engine.lookup(newparent, newname)
            && self.is_seed(dst.ino)
        {
            return Err(Error::Protected);
        }
        // A file becoming a record must already be one.
        let np = self.engine.getattr(newparent)?;
        if src.kind == Kind::File
            && namespace::is_json_record(np.tag, newname)
            && !namespace::is_json_record(src.tag, name)
        {
            let data = self.engine.read(src.ino, 0, src.size as usize, false)?;
            records::validate_json(&mut &data[..], data.len() as u64).inspect_err(|e| {
                log::warn!(
                    "refusing rename of {}/{} onto a record name: {e}",
                    self.dir_path(parent),
                    String::from_utf8_lossy(name)
                )
            })?;
        }
        self.engine.rename(
            parent,
            name,
            newparent,
            newname,
            flags & libc::RENAME_NOREPLACE != 0,
        )
    }

    pub fn link(&self) -> Result<Attr> {
        Err(Error::NotPermitted("hard links"))
    }

    /// Entries after `offset`. Offsets 1 and 2 are "." and "..", then the views, then
    /// real entries at their stable cookie + `REAL_BASE`.
    pub fn readdir(&self, ino: u64, offset: u64, max: usize) -> Result<Vec<DirEntry>> {
        const REAL_BASE: u64 = 64;
        if ino & VIRT != 0 {
            return Err(Error::NotDir);
        }
        let parent = if ino == ROOT {
            ROOT
        } else {
            self.engine.parent_of(ino)?
        };
        let entry = |offset, ino, kind, name: &[u8]| DirEntry {
            offset,
            ino,
            kind,
            name: name.to_vec(),
        };
        let mut fixed = vec![
            entry(1, ino, Kind::Dir, b"."),
            entry(2, parent, Kind::Dir, b".."),
        ];
        for (i, (name, view)) in self
            .views_in(ino)
            .into_iter()
            .enumerate()
            .take((REAL_BASE - 3) as usize)
        {
            fixed.push(entry(
                3 + i as u64,
                view_ino(&view),
                Kind::File,
                name.as_bytes(),
            ));
        }
        let mut out: Vec<DirEntry> = fixed
            .into_iter()
            .filter(|e| e.offset > offset)
            .take(max)
            .collect();
        if out.len() < max {
            let after = offset.saturating_sub(REAL_BASE);
            for mut e in self.engine.readdir(ino, after, max - out.len())? {
                e.offset += REAL_BASE;
                out.push(e);
            }
        }
        Ok(out)
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

    fn xattr_target(&self, ino: u64) -> Result<u64> {
        if ino & VIRT != 0 {
            return Err(Error::NotSupported("attributes on generated views"));
        }
        Ok(ino)
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        if ino & VIRT != 0 {
            return Err(Error::NoXattr);
        }
        self.engine.getxattr(ino, name)
    }

    pub fn listxattr(&self, ino: u64) -> Result<Vec<Vec<u8>>> {
        if ino & VIRT != 0 {
            return Ok(Vec::new());
        }
        self.engine.listxattr(ino)
    }

    /// Only the `user.` namespace is stored; the others (security, trusted, system ACLs)
    /// need kernel cooperation this filesystem does not offer.
    pub fn setxattr(&self, ino: u64, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        let ino = self.xattr_target(ino)?;
        if !name.starts_with(b"user.") {
            return Err(Error::NotSupported("xattr namespaces other than user."));
        }
        self.engine.setxattr(
            ino,
            name,
            Some(value),
            flags & libc::XATTR_CREATE != 0,
            flags & libc::XATTR_REPLACE != 0,
        )
    }

    pub fn removexattr(&self, ino: u64, name: &[u8]) -> Result<()> {
        let ino = self.xattr_target(ino)?;
        if !name.starts_with(b"user.") {
            return Err(Error::NoXattr);
        }
        self.engine.setxattr(ino, name, None, false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Settings;

    const ROOT_CALLER: Caller = Caller { uid: 0, gid: 0 };

    fn open(dir: &std::path::Path) -> Vfs {
        let e = Arc::new(Engine::open(dir, Settings::default()).expect("engine"));
        Vfs::new(e, Some(8 << 20)).expect("vfs")
    }

    fn users(v: &Vfs) -> u64 {
        v.resolve("spacetime/hot_data/particles/users")
            .expect("users")
    }

    fn put(v: &Vfs, dir: u64, name: &str, body: &[u8]) -> Result<u64> {
        let ino = match v.lookup(dir, name.as_bytes()) {
            Ok(a) => a.ino,
            Err(_) => {
                v.mknod(dir, name.as_bytes(), libc::S_IFREG | 0o644, 0, ROOT_CALLER)?
                    .ino
            }
        };
        let fh = v.open(ino, libc::O_WRONLY | libc::O_TRUNC)?;
        v.write(fh, 0, body)?;
        let res = v.flush(fh);
        let stale = v.release(fh)?;
        assert_eq!(
            stale,
            res.is_err(),
            "a refused draft is reported stale at release"
        );
        res.map(|()| ino)
    }

    fn get(v: &Vfs, ino: u64) -> Vec<u8> {
        let fh = v.open(ino, libc::O_RDONLY).expect("open");
        let data = v.read(fh, 0, 1 << 30).expect("read").into_vec();
        v.release(fh).expect("release");
        data
    }

    #[test]
    fn records_commit_refuse_and_survive_reopen() {
        let tmp = tempfile::tempdir().expect("tmp");
        let ino;
        {
            let v = open(tmp.path());
            let u = users(&v);
            ino = put(&v, u, "alice.json", br#"{"name":"alice"}"#).expect("valid");
            let err = put(&v, u, "alice.json", b"{broken").expect_err("invalid JSON");
            assert_eq!(err.errno(), libc::EINVAL);
            assert_eq!(get(&v, ino), br#"{"name":"alice"}"#);
            put(&v, u, "notes.txt", b"{not json, fine").expect("opaque");
            put(&v, u, "empty.json", b"").expect("empty record");
            v.engine().shutdown().expect("shutdown");
        }
        let v = open(tmp.path());
        assert_eq!(get(&v, ino), br#"{"name":"alice"}"#);
        let notes = v.lookup(users(&v), b"notes.txt");
        assert_eq!(
            notes.as_ref().map(|a| a.size).ok(),
            Some(15),
            "{:?}",
            notes.err()
        );
    }

    #[test]
    fn views_are_generated_and_read_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let v = open(tmp.path());
        let u = users(&v);
        let m = v.lookup(u, b"_manifest.json").expect("manifest");
        let doc: serde_json::Value = serde_json::from_slice(&get(&v, m.ino)).expect("json");
        assert_eq!(
            doc["cosmic_location"],
            "spacetime/hot_data/particles/users/"
        );
        assert_eq!(
            v.open(m.ino, libc::O_WRONLY)
                .map(|_| ())
                .map_err(|e| e.errno()),
            Err(libc::EACCES)
        );
        assert_eq!(
            v.unlink(u, b"_manifest.json", false).map_err(|e| e.errno()),
            Err(libc::EACCES)
        );
        assert_eq!(
            v.mknod(u, b"_manifest.json", libc::S_IFREG | 0o644, 0, ROOT_CALLER)
                .map(|_| ())
                .map_err(|e| e.errno()),
            Err(libc::EACCES)
        );
        let names: Vec<Vec<u8>> = v
            .readdir(ROOT, 0, 1000)
            .expect("readdir")
            .into_iter()
            .map(|e| e.name)
            .collect();
        for top in [
            "universe.manifest",
            "spacetime",
            "configuration",
            "_manifest.json",
        ] {
            assert!(names.contains(&top.as_bytes().to_vec()), "{top}");
        }
        let hot = v.resolve("spacetime/hot_data").expect("hot");
        let sm = v.lookup(hot, b"shard.metadata").expect("shard.metadata");
        let doc: serde_json::Value = serde_json::from_slice(&get(&v, sm.ino)).expect("json");
        assert_eq!(doc["codec"], "none");
    }

    #[test]
    fn seed_is_fixed_and_root_is_closed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let v = open(tmp.path());
        let st = v.resolve("spacetime").expect("st");
        assert_eq!(
            v.unlink(st, b"hot_data", true).map_err(|e| e.errno()),
            Err(libc::EPERM)
        );
        assert_eq!(
            v.mkdir(ROOT, b"extra", 0o755, 0, ROOT_CALLER)
                .map(|_| ())
                .map_err(|e| e.errno()),
            Err(libc::EPERM)
        );
        let u = users(&v);
        put(&v, u, "x.json", b"{}").expect("put");
        let parts = v.resolve("spacetime/hot_data/particles").expect("p");
        assert_eq!(
            v.unlink(parts, b"users", true).map_err(|e| e.errno()),
            Err(libc::EPERM)
        );
    }

    #[test]
    fn rename_onto_record_name_needs_json_and_retiers() {
        let tmp = tempfile::tempdir().expect("tmp");
        let v = open(tmp.path());
        let u = users(&v);
        put(&v, u, "draft.tmp", b"not json").expect("tmp");
        assert_eq!(
            v.rename(u, b"draft.tmp", u, b"bob.json", 0)
                .map_err(|e| e.errno()),
            Err(libc::EINVAL)
        );
        put(&v, u, "draft.tmp", b"{\"ok\":true}").expect("tmp");
        v.rename(u, b"draft.tmp", u, b"bob.json", 0)
            .expect("valid rename");
        let cold = v.resolve("spacetime/cold_data/particles").expect("cold");
        let t = v
            .mkdir(cold, b"users", 0o755, 0, ROOT_CALLER)
            .expect("mkdir");
        v.rename(u, b"bob.json", t.ino, b"bob.json", 0)
            .expect("retier");
        let a = v.lookup(t.ino, b"bob.json").expect("moved");
        assert_eq!(a.tier, crate::engine::codec::Tier::Cold);
        v.engine().checkpoint().expect("checkpoint");
        assert_eq!(get(&v, a.ino), b"{\"ok\":true}");
        let stats = v.engine().tier_stats();
        assert_eq!(stats[2].records, 1);
    }

    #[test]
    fn config_edits_apply_live_or_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let v = open(tmp.path());
        let conf = v.resolve("configuration").expect("conf");
        let topo = v
            .lookup(conf, config::SHARD_TOPOLOGY.as_bytes())
            .expect("topo");
        let mut doc: serde_json::Value = serde_json::from_slice(&get(&v, topo.ino)).expect("json");
        doc["warm_data"]["durability_window_ms"] = 250.into();
        put(&v, conf, config::SHARD_TOPOLOGY, doc.to_string().as_bytes()).expect("valid edit");
        assert_eq!(
            v.engine().settings().windows[1],
            std::time::Duration::from_millis(250)
        );
        doc["warm_data"]["durability_window_ms"] = "later".into();
        let err = put(&v, conf, config::SHARD_TOPOLOGY, doc.to_string().as_bytes())
            .expect_err("bad edit");
        assert_eq!(err.errno(), libc::EINVAL);
        assert_eq!(
            v.engine().settings().windows[1],
            std::time::Duration::from_millis(250)
        );
    }

    #[test]
    fn large_directories_list_every_entry_once_across_calls() {
        let tmp = tempfile::tempdir().expect("tmp");
        let v = open(tmp.path());
        let d = v
            .mkdir(users(&v), b"many", 0o755, 0, ROOT_CALLER)
            .expect("mkdir")
            .ino;
        for i in 0..3000 {
            v.mknod(
                d,
                format!("f{i}").as_bytes(),
                libc::S_IFREG | 0o644,
                0,
                ROOT_CALLER,
            )
            .expect("mknod");
        }
        let mut seen = std::collections::HashSet::new();
        let mut off = 0;
        loop {
            let batch = v.readdir(d, off, 100).expect("readdir");
            if batch.is_empty() {
                break;
            }
            for e in batch {
                assert!(seen.insert(e.name), "duplicate");
                off = e.offset;
            }
            // Removing entries between calls must not skip or repeat the others.
            let _ = v.unlink(d, b"f0", false);
        }
        assert_eq!(seen.len(), 3000 + 3, ". .. _manifest.json and every file");
    }
}
