//! The region seam. Each region of the universe is one module here that owns everything
//! about it: the generated files its directories show (and how they are rendered and
//! sized), what content it accepts at commit, what it does after a commit, and what it
//! sets up at start. The filesystem layer (`vfs`) finds a directory's region by the tag
//! stored on its inode and calls it through [`Region`]; it never names a region. Which
//! seed directory belongs to which region is said once, in `namespace::SEED`.
//!
//! Adding a region: a module implementing [`Region`], one line in [`Regions::builtin`],
//! and its directories in the seed table.

pub mod access;
pub mod appended;
pub mod backups;
pub mod cache_state;
pub mod config;
pub mod cosmic_logs;
pub mod entanglement;
pub mod entropy;
pub mod graph;
pub mod json;
pub mod manifest;
pub mod observatory;
pub mod qql;
pub mod records;
pub mod spacetime;
pub mod telling;
pub mod temporal;
pub mod tiering;
pub mod universe;
pub mod wormholes;

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use crate::engine::Attr;
use crate::engine::api::Storage;
use crate::engine::codec::Tier;
use crate::error::{Error, Result};
use crate::namespace::SeedDir;

/// A region's identity on disk: stored on every inode of the region (inherited from the
/// directory it was made in). Values are never reused; FORMAT.md lists them.
pub type Tag = u8;

/// A directory, as a region sees it.
#[derive(Clone, Copy)]
pub struct Dir {
    pub ino: u64,
    pub tag: Tag,
    /// Set for the seed's own directories (and the root).
    pub seed: Option<&'static SeedDir>,
}

impl Dir {
    /// The directory `attr` describes (`seed`: its row of the seed table, if any).
    pub fn of(attr: &Attr, seed: Option<&'static SeedDir>) -> Result<Dir> {
        if attr.kind != crate::engine::tree::Kind::Dir {
            return Err(Error::NotDir);
        }
        Ok(Dir {
            ino: attr.ino,
            tag: attr.tag,
            seed,
        })
    }

    /// A directory that holds users' data lists only what users put there.
    pub fn is_data(&self) -> bool {
        self.seed.is_none_or(|s| s.data)
    }

    pub fn is_seed(&self, path: &str) -> bool {
        self.seed.is_some_and(|s| s.path == path)
    }
}

/// What a region may use while it serves a request.
pub struct Cx<'a> {
    pub store: &'a dyn Storage,
    pub regions: &'a Regions,
    /// The seed's directories by inode.
    pub seeds: &'a HashMap<u64, &'static SeedDir>,
    /// What the daemon measured of its requests.
    pub metrics: &'a crate::metrics::Metrics,
    /// Tells the kernel that a file changed behind its back (a region appended to it
    /// itself): whatever it cached of the file goes, so `tail -f` sees the new size.
    pub changed: &'a dyn Fn(u64),
    /// Tells the kernel that a name in a directory went behind its back (a region moved
    /// the file itself): a lookup of it asks again rather than finding the file there.
    pub gone: &'a dyn Fn(u64, &[u8]),
    /// The files open now.
    pub open: &'a dyn OpenFiles,
}

/// What the filesystem holds open.
pub trait OpenFiles {
    fn open_files(&self) -> Vec<Open>;
}

/// One open file description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Open {
    /// The stored file's inode; for a generated file, its directory's.
    pub ino: u64,
    pub kind: OpenKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenKind {
    /// A stored file opened for reading only (it holds the version it opened).
    Reader,
    /// A stored file opened for writing (it holds a draft).
    Writer,
    /// Writes a region takes itself (a stream's entry point, see [`Sink`]).
    Stream,
    /// A generated file.
    View,
}

/// What happened to a stored file, told to every region (whichever owns the file): how a
/// region learns from traffic it does not serve itself.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// `ino` (of region `tag`) was opened for reading.
    Read { ino: u64, tag: Tag },
    /// `ino` (a file, or a directory with everything below it) moved from one tier to
    /// another: by a rename (`how` is `mv`) or by a user's choice of its tier.
    Moved {
        ino: u64,
        from: Tier,
        to: Tier,
        how: &'static str,
    },
    /// The entry `name` of the directory `dir` changed: made, removed, or renamed to or
    /// from (by a user, or by a region moving or removing files itself).
    Entry { dir: u64, name: &'a [u8] },
    /// New content was committed to `name` of `dir` (close or fsync after writes, a
    /// truncate, a rename onto it).
    Committed { dir: u64, name: &'a [u8] },
}

impl Cx<'_> {
    /// The seed directory at `path`: a region's own fixed places.
    pub fn seed_dir(&self, path: &str) -> Option<Dir> {
        let (&ino, &seed) = self.seeds.iter().find(|(_, s)| s.path == path)?;
        Dir::of(&self.store.getattr(ino).ok()?, Some(seed)).ok()
    }
}

/// Content about to be committed, read whole the first time a region asks for it.
pub struct Content<'a> {
    read: &'a mut dyn FnMut() -> Result<Vec<u8>>,
    bytes: Option<Vec<u8>>,
}

impl<'a> Content<'a> {
    pub fn new(read: &'a mut dyn FnMut() -> Result<Vec<u8>>) -> Content<'a> {
        Content { read, bytes: None }
    }

    pub fn bytes(&mut self) -> Result<&[u8]> {
        if self.bytes.is_none() {
            self.bytes = Some((self.read)()?);
        }
        Ok(self.bytes.as_deref().unwrap_or_default())
    }
}

/// The content of a generated file.
pub enum Generated {
    /// Small content, rendered in full; regenerated only when the engine's state moved.
    Document(Vec<u8>),
    /// Small content that also shows what moves without the engine (a region's own
    /// counters): rendered again when the engine's state moved, as a document is, and
    /// once it is a second old, so that a `stat` and the read right after it agree, and
    /// `watch cat` sees it move.
    Fresh(Vec<u8>),
    /// Small content that never changes while the daemon runs, under a name that is always
    /// there (a control file's usage): the kernel may keep its name and attributes, which
    /// spares a lookup and a getattr round trip at every open.
    Fixed(Vec<u8>),
    /// Content read in ranges where it lives (e.g. a log segment), never held whole.
    Ranged {
        len: u64,
        source: Arc<dyn RangeSource>,
    },
    /// The file exists but cannot be made now (what it is made from is damaged): opening
    /// or reading it fails with this error's errno.
    Failed(Error),
}

pub trait RangeSource: Send + Sync {
    fn read(&self, store: &dyn Storage, off: u64, size: usize) -> Result<Vec<u8>>;
}

/// A streaming content check: fed the bytes of a file in order from offset 0.
pub trait Check: Send {
    /// The next bytes. `Err` as soon as no continuation could make the content valid
    /// (a writer going forward then gets EINVAL from that very `write(2)`).
    fn feed(&mut self, bytes: &[u8]) -> Result<()>;
    /// The content ended here.
    fn finish(&mut self) -> Result<()>;
}

/// Where the writes of one open go when a region takes them itself (see
/// [`Region::takes_writes`]): a stream's entry point, an append-only partition, a control
/// file. Offsets do not matter: what is written is appended, in the order of the writes.
pub trait Sink: Send {
    /// The bytes of one `write(2)`; returns how many it took (fewer than given: the
    /// writer sends the rest again, and meets the reason then). `Err` fails that write,
    /// and nothing of it is kept.
    fn write(&mut self, cx: &Cx<'_>, bytes: &[u8]) -> Result<usize>;
    /// `fsync(2)`: everything taken so far is durable when this returns.
    fn sync(&mut self, cx: &Cx<'_>) -> Result<()>;
    /// `close(2)` by a writer: what is still pending ends here (an unterminated last line
    /// counts), and all of it is durable when this returns.
    fn close(&mut self, cx: &Cx<'_>) -> Result<()>;
    /// Whether `close(2)` ends something (`close` does work): when it does not, the kernel
    /// is told not to send it, one round trip less per use.
    fn ends_at_close(&self) -> bool {
        true
    }

    /// What a read of the same handle returns, from offset 0, once something was written
    /// (a control file that answers what it was asked); `None`: reads show the file.
    fn answer(&mut self, _cx: &Cx<'_>) -> Option<Result<Arc<Vec<u8>>>> {
        None
    }
}

/// A change to a directory's names, as [`Region::admit`] is asked about it.
#[derive(Clone, Copy)]
pub enum Naming<'a> {
    /// A new entry of this kind (create, mkdir, mknod, symlink, link).
    Add(crate::engine::tree::Kind),
    /// A rename onto a free name brings the entry `name` of the directory `from` here
    /// (the target directory's region is asked).
    RenameFrom(&'a Dir, &'a [u8]),
    /// The entry goes (unlink, rmdir, or replaced by a rename onto it).
    Remove,
    /// The entry is renamed to `newname` in the directory `to` (its region is asked
    /// `RenameFrom` too, when the name there is free).
    RenameTo(&'a Dir, &'a [u8]),
}

/// What unlinking a name does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Removal {
    Gone,
    /// The name goes from listings and lookups, but the file stays in force (and comes
    /// back at the next mount): a file then created under the name takes its place as an
    /// edit of it, checked at commit, the old content staying if it is refused. This is
    /// what `mv` from another filesystem does to its target: remove it, then create it.
    UntilReplaced,
}

/// The rule content committed to a name must follow.
pub struct Rule {
    /// Two names with the same rule accept the same content: a rename between them needs
    /// no new check.
    pub id: &'static str,
    pub check: Box<dyn Check>,
}

/// One region of the universe. Every method has a default that does nothing, so a region
/// states only what it adds.
pub trait Region: Send + Sync {
    fn name(&self) -> &'static str;

    fn tag(&self) -> Tag;

    /// What files stored in this region hold (for manifests).
    fn data_format(&self) -> &'static str {
        "Files of any content, stored as opaque bytes"
    }

    /// A manifest's purpose line for a directory users made in this region.
    fn purpose_of_user_dir(&self, name: &str, _attr: &Attr) -> String {
        format!("User directory '{name}'")
    }

    /// Whether listing `dir` shows its generated files (a directory of users' data shows
    /// only what users put there).
    fn lists_views(&self, dir: &Dir) -> bool {
        !dir.is_data()
    }

    /// Generated files `dir` shows besides its `_manifest.json`.
    fn views(&self, _cx: &Cx<'_>, _dir: &Dir) -> Vec<String> {
        Vec::new()
    }

    /// The content of one of the names `views` gave.
    fn generate(&self, _cx: &Cx<'_>, _dir: &Dir, _name: &str) -> Option<Generated> {
        None
    }

    /// A count that moves whenever this region's `Fresh` files would show something new
    /// without a commit (a query's plan logged): their renderings are kept only while it
    /// stays, so that what was just done shows at once.
    fn shown(&self) -> u64 {
        0
    }

    /// The rule content committed to `name` in `dir` must follow; `None`: opaque bytes.
    fn rule(&self, _dir: &Dir, _name: &[u8]) -> Option<Rule> {
        None
    }

    /// Whether `name` in `dir` is a snapshot's tree, shown read-only: the id the
    /// engine knows it by (`Engine::frozen`). Asked before generated files.
    fn snapshot_root(&self, _cx: &Cx<'_>, _dir: &Dir, _name: &[u8]) -> Option<u64> {
        None
    }

    /// Whether `name` is a generated file of `dir`, answered by name: one reachable without
    /// being listed (a file whose name is a query), or one of many listed views the region
    /// finds faster than by listing them all. Asked before `views`.
    fn resolves(&self, _cx: &Cx<'_>, _dir: &Dir, _name: &str) -> bool {
        false
    }

    /// Whether users may choose the tier of `dir` (with what is in it) by setting its
    /// `user.islabdb.tier` attribute, or of a file in it by setting the file's; elsewhere
    /// a file's tier is where it is (`EPERM`).
    fn tier_is_chosen(&self, _cx: &Cx<'_>, _dir: &Dir) -> bool {
        false
    }

    /// Whether the region takes the writes to `name` in `dir` itself ([`Sink`]). A stored
    /// file it takes writes for is append-only: readers see appends as they come
    /// (rather than the version they opened), and truncating it is `EPERM`.
    fn takes_writes(&self, _cx: &Cx<'_>, _dir: &Dir, _name: &[u8]) -> bool {
        false
    }

    /// A sink for one open of `name` for writing (`takes_writes` said yes); `truncate`:
    /// the open asked for `O_TRUNC`.
    fn sink(
        &self,
        _cx: &Cx<'_>,
        _dir: &Dir,
        _name: &[u8],
        _truncate: bool,
    ) -> Result<Box<dyn Sink>> {
        Err(Error::ReadOnlyView)
    }

    /// Once at a clean unmount, before the engine's last checkpoint: what the region keeps
    /// for the next mount.
    fn stop(&self, _cx: &Cx<'_>) {}

    /// Called about once a second from a thread of its own: a region's periodic work
    /// (it decides itself when its work is due).
    fn tick(&self, _cx: &Cx<'_>) {}

    /// Something happened to a stored file (of any region). Called on the request's path:
    /// a region notes it and does its work later, or elsewhere.
    fn observe(&self, _cx: &Cx<'_>, _event: &Event<'_>) {}

    /// Asked of every region before content is committed to `name` in `dir` (any
    /// region's: after the owning region's rule passed): a region keeping rules over
    /// other regions' files (schemas) reads the content with `content` and refuses it
    /// with an error. Only a region that has something to say about `dir` reads it.
    fn vet(
        &self,
        _cx: &Cx<'_>,
        _dir: &Dir,
        _name: &[u8],
        _content: &mut Content<'_>,
    ) -> Result<()> {
        Ok(())
    }

    /// Content was committed to `name` in `dir`, by any way (close, fsync, rename onto
    /// it, truncate). Runs after the commit is logged.
    fn committed(&self, _cx: &Cx<'_>, _dir: &Dir, _name: &[u8]) {}

    /// Whether a new entry `name` may be made in `dir` (by create, mkdir, symlink, or a
    /// rename onto a free name).
    fn may_create(&self, _dir: &Dir, _name: &[u8]) -> Result<()> {
        Ok(())
    }

    /// Serializes the region's checks of names ([`Region::admit`]) with the changes they
    /// admit: the filesystem holds this from the check until the change is made (a check
    /// that another entry exists stays true until then).
    fn hold(&self) -> Option<MutexGuard<'_, ()>> {
        None
    }

    /// Whether a change to the names of `dir` may be made (checked under
    /// [`Region::hold`], after `may_create`). The errno of a refusal reaches the caller.
    fn admit(&self, _cx: &Cx<'_>, _dir: &Dir, _name: &[u8], _change: Naming<'_>) -> Result<()> {
        Ok(())
    }

    /// `name` in `dir` was made, removed or renamed (to or from), by any way: the region
    /// looks at what is there now. Runs after the change, still under [`Region::hold`].
    fn entry_changed(&self, _cx: &Cx<'_>, _dir: &Dir, _name: &[u8]) {}

    /// What unlinking `name` from `dir` does. A region that must keep the file answers
    /// [`Removal::UntilReplaced`]; renaming such a file away is refused.
    fn removal(&self, _dir: &Dir, _name: &[u8]) -> Removal {
        Removal::Gone
    }

    /// Fields this region adds to the `_manifest.json` of `dir`, whichever region owns it:
    /// what it knows of the directory that the directory's own region does not (e.g. the
    /// moves of its records between tiers).
    fn manifest_fields(&self, _cx: &Cx<'_>, _dir: &Dir) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }

    /// Once at start, when the seed hierarchy exists: the region's own files, their
    /// migration from older builds, and whatever the daemon must obey from them.
    fn start(&self, _cx: &Cx<'_>) -> Result<()> {
        Ok(())
    }
}

/// The registered regions.
pub struct Regions {
    list: Vec<Box<dyn Region>>,
    untold: telling::Untold,
    access: access::Access,
}

impl Regions {
    /// The universe's regions. `cache_mb` is the command line's cache budget, which the
    /// configuration region writes into its file.
    pub fn builtin(cache_mb: Option<u64>) -> Result<Regions> {
        let mut r = Regions {
            list: vec![Box::new(universe::Universe)],
            untold: telling::Untold::default(),
            access: access::Access::default(),
        };
        r.register(Box::new(spacetime::Spacetime::default()))?;
        r.register(Box::new(records::Records))?;
        r.register(Box::new(config::Configuration::new(cache_mb)))?;
        r.register(Box::new(cosmic_logs::CosmicLogs::default()))?;
        r.register(Box::new(backups::Backups::default()))?;
        r.register(Box::new(temporal::Temporal::new()))?;
        r.register(Box::new(observatory::Observatory::new()))?;
        r.register(Box::new(entanglement::Entanglement::default()))?;
        let graph = graph::QuantumGraph::default();
        let reader = graph.reader();
        r.register(Box::new(graph))?;
        r.register(Box::new(qql::region::Qql::new(reader)))?;
        // Both show the tiering: the one state they share, made here.
        let tiering = Arc::new(tiering::Tiering::new());
        r.register(Box::new(entropy::Entropy::new(tiering.clone())))?;
        r.register(Box::new(wormholes::Wormholes::new(tiering)))?;
        Ok(r)
    }

    pub fn register(&mut self, region: Box<dyn Region>) -> Result<()> {
        if self
            .list
            .iter()
            .any(|r| r.tag() == region.tag() || r.name() == region.name())
        {
            return Err(Error::InvalidArgument(
                "a region's name and tag must be unique",
            ));
        }
        self.list.push(region);
        Ok(())
    }

    /// The region owning inodes of `tag`. A tag no region claims (written by a newer
    /// build) is served as the universe's plain files.
    pub fn by_tag(&self, tag: Tag) -> &dyn Region {
        let found = self.list.iter().find(|r| r.tag() == tag);
        found.unwrap_or(&self.list[0]).as_ref()
    }

    pub fn by_name(&self, name: &str) -> Option<&dyn Region> {
        self.list
            .iter()
            .find(|r| r.name() == name)
            .map(|r| r.as_ref())
    }

    pub fn all(&self) -> impl Iterator<Item = &dyn Region> {
        self.list.iter().map(|r| r.as_ref())
    }

    /// Who may do what, by region (`configuration/cosmic_security.json`).
    pub fn access(&self) -> &access::Access {
        &self.access
    }

    /// Marks `dirs` as changing from now until the returned telling is dropped: after
    /// the change is made and every region was told of it (`telling`).
    pub fn telling(&self, dirs: &[u64]) -> telling::Telling<'_> {
        self.untold.begin(dirs)
    }

    /// Whether every change made to `dirs` so far was told to every region.
    pub fn told(&self, dirs: &[u64]) -> bool {
        self.untold.quiet(dirs)
    }

    /// Tells every region what happened.
    pub fn observe(&self, cx: &Cx<'_>, event: &Event<'_>) {
        for r in &self.list {
            r.observe(cx, event);
        }
    }

    /// Every region's word on content about to be committed (`Region::vet`).
    pub fn vet(
        &self,
        cx: &Cx<'_>,
        dir: &Dir,
        name: &[u8],
        content: &mut Content<'_>,
    ) -> Result<()> {
        for r in &self.list {
            r.vet(cx, dir, name, content)?;
        }
        Ok(())
    }

    /// Every generated file of `dir`: its manifest, then its region's own.
    pub fn views(&self, cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        let mut out = vec![manifest::NAME.to_string()];
        out.extend(self.by_tag(dir.tag).views(cx, dir));
        out
    }

    pub fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        let region = self.by_tag(dir.tag);
        if name == manifest::NAME {
            return Some(Generated::Document(manifest::render(cx, dir, region)));
        }
        region.generate(cx, dir, name)
    }
}

/// Feeds everything `read` yields to `rule`'s check, in pieces of bounded size (`len`,
/// the expected length, only sizes the buffer: small records are the common case).
pub fn check_stream(rule: &mut Rule, read: &mut dyn std::io::Read, len: u64) -> Result<()> {
    let mut buf = vec![0u8; len.clamp(1, 256 << 10) as usize];
    loop {
        let n = match read.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        rule.check.feed(&buf[..n])?;
    }
    rule.check.finish()
}

/// A region's own stored file in `dir`: whole, if there is one.
pub fn read_own(cx: &Cx<'_>, dir: u64, name: &str) -> Result<Option<Vec<u8>>> {
    let attr = match cx.store.lookup(dir, name.as_bytes()) {
        Ok(a) => a,
        Err(Error::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(
        cx.store.read(attr.ino, 0, attr.size as usize)?.to_vec(),
    ))
}

/// Writes a region's own stored file in `dir` durably, or removes it for `None` (a file
/// with nothing to keep is not left holding an older content).
pub fn keep_file(cx: &Cx<'_>, dir: u64, name: &str, bytes: Option<&[u8]>) -> Result<()> {
    match bytes {
        Some(b) => cx.store.put(dir, name.as_bytes(), b),
        None => match cx.store.remove(dir, name.as_bytes()) {
            Err(Error::NotFound) => Ok(()),
            other => other,
        },
    }
}

/// Pretty JSON with a final newline, fields in their declared order: how every generated
/// document and every file the daemon writes for people is written.
pub fn pretty<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}
