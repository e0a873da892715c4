//! The engine on a disk that loses power or fails (tests). A seeded workload of creates,
//! overwrites, appends, patches in the middle, renames across tiers, hard links (and
//! links and renames the engine refuses: across tiers, onto a taken name), unlinks of one
//! name, files large enough for blobs, checkpoints and the retirement of log segments
//! (small segments, so many) runs on a simulated disk (`disk::sim`). Every change is
//! durable before it returns (all windows zero), so whatever returned is acknowledged.
//!
//! Power cuts: the workload runs once to count its durability points, then once per
//! point with the power cut there; the universe recovered from what survived must hold
//! exactly what was acknowledged (down to which names are one file, and its link count),
//! plus at most the operation that was under way (in one of the states it passes
//! through: a new file empty before its content), recovering again must give the same
//! tree, and the recovered universe must take new commits that survive the next cut.
//!
//! Failing disks: the N-th fsync, or the N-th write (EIO or ENOSPC), fails, for every N
//! the workload reaches: the operation that met it fails with that errno (EIO for an
//! fsync), after an fsync or EIO every later change fails with EIO while reads go on,
//! after ENOSPC the next changes succeed, and a remount recovers to what was
//! acknowledged (plus at most the failed operation).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::codec::Tier;
use super::disk::sim::{Rng, Sim};
use super::disk::{Disk, Faults};
use super::tree::{Kind, ROOT};
use super::{CommitAt, Engine, NewNode, Settings, store};
use crate::error::{Error, Result};

const DATA_DIR: &str = "/data";
/// One directory per tier: names in two of them are on two devices.
const DIRS: [(&str, Tier); 3] = [
    ("/hot", Tier::Hot),
    ("/warm", Tier::Warm),
    ("/cold", Tier::Cold),
];

/// A universe as compared: what every path shows.
pub(super) type Tree = BTreeMap<String, Entry>;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Entry {
    Dir,
    /// A file's content, the file's first path in order (names of one file share it,
    /// whatever inode numbers the engine gave) and its link count.
    File {
        content: Arc<Vec<u8>>,
        first: String,
        nlink: u32,
    },
}

/// A universe as the test expects it: names of files, and the files they share.
#[derive(Clone, Default)]
struct Model {
    /// Path to file (`None`: a directory).
    names: BTreeMap<String, Option<u64>>,
    files: BTreeMap<u64, Arc<Vec<u8>>>,
    /// Each snapshot taken, by name: the universe it should show.
    snapshots: BTreeMap<String, Tree>,
}

impl Model {
    fn file(&self, path: &str) -> u64 {
        self.names[path].expect("a file")
    }

    fn content(&self, path: &str) -> &[u8] {
        &self.files[&self.file(path)]
    }

    fn is_file(&self, path: &str) -> bool {
        matches!(self.names.get(path), Some(Some(_)))
    }

    fn count(&self, file: u64) -> usize {
        self.names.values().filter(|&&f| f == Some(file)).count()
    }

    /// A new, empty file at `path` (the first state of a `Put` onto a free name).
    fn create(&mut self, path: &str) {
        let id = self.files.keys().next_back().map_or(0, |k| k + 1);
        self.files.insert(id, Arc::default());
        self.names.insert(path.into(), Some(id));
    }

    /// Writes `data` at `at`, or in place of everything (`None`), into `path`'s file: every
    /// name of it reads the change.
    fn write(&mut self, path: &str, at: Option<u64>, data: &[u8]) {
        let content = Arc::make_mut(self.files.get_mut(&self.file(path)).expect("file"));
        let at = match at {
            Some(at) => at as usize,
            None => {
                content.clear();
                0
            }
        };
        let end = at + data.len();
        content.resize(content.len().max(end), 0);
        content[at..end].copy_from_slice(data);
    }

    /// Takes one name; the file goes with its last.
    fn unlink(&mut self, path: &str) {
        if let Some(Some(file)) = self.names.remove(path)
            && self.count(file) == 0
        {
            self.files.remove(&file);
        }
    }

    /// The errno the engine refuses `link(from, to)` with, in the order it checks.
    fn link_refused(&self, from: &str, to: &str) -> Option<i32> {
        if split(from).0 != split(to).0 {
            Some(libc::EXDEV)
        } else if self.names.contains_key(to) {
            Some(libc::EEXIST)
        } else {
            None
        }
    }

    /// The errno the engine refuses `rename(from, to)` with: a file with further names
    /// moves only within its tier.
    fn rename_refused(&self, from: &str, to: &str) -> Option<i32> {
        let same = self.names.get(to) == self.names.get(from);
        let linked = self.count(self.file(from)) > 1;
        (!same && linked && split(from).0 != split(to).0).then_some(libc::EXDEV)
    }

    /// Moves the name `from` to `to`, taking `to` from the file it named, unless both
    /// name one file (then nothing happens, as POSIX says).
    fn rename(&mut self, from: &str, to: &str) {
        if self.names.get(to) == self.names.get(from) {
            return;
        }
        self.unlink(to);
        let file = self.names.remove(from).expect("the name moved");
        self.names.insert(to.into(), file);
    }

    /// The change `op` makes if it succeeds (none if the engine refuses it): what the
    /// workload is planned against.
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Root => {
                self.names.insert("/".into(), None);
            }
            Op::Mkdir(path, _) => {
                self.names.insert(path.to_string(), None);
            }
            Op::Put(path, data) => {
                if !self.is_file(path) {
                    self.create(path);
                }
                self.write(path, None, data);
            }
            Op::Append(path, data) => {
                let at = self.content(path).len() as u64;
                self.write(path, Some(at), data);
            }
            Op::Patch(path, at, data) => self.write(path, Some(*at), data),
            Op::Rename(from, to) if self.rename_refused(from, to).is_none() => {
                self.rename(from, to);
            }
            Op::Link(from, to) if self.link_refused(from, to).is_none() => {
                self.names.insert(to.clone(), self.names[from]);
            }
            Op::Unlink(path) => self.unlink(path),
            Op::Snapshot(name) => {
                self.snapshots.insert(name.clone(), self.live());
            }
            Op::Rename(..) | Op::Link(..) | Op::Checkpoint => {}
        }
    }

    /// What the engine should show: the live universe, then each snapshot's (see
    /// `SNAPSHOT`).
    fn view(&self) -> Tree {
        let mut t = self.live();
        for (name, snap) in &self.snapshots {
            t.extend(in_snapshot(name, snap.clone()));
        }
        t
    }

    /// What the live universe should show.
    fn live(&self) -> Tree {
        let mut first: BTreeMap<u64, &String> = BTreeMap::new();
        for (path, file) in &self.names {
            if let Some(file) = file {
                first.entry(*file).or_insert(path);
            }
        }
        self.names
            .iter()
            .map(|(path, file)| {
                let entry = match file {
                    None => Entry::Dir,
                    Some(f) => Entry::File {
                        content: self.files[f].clone(),
                        first: first[f].clone(),
                        nlink: self.count(*f) as u32,
                    },
                };
                (path.clone(), entry)
            })
            .collect()
    }
}

/// The model of a universe read back: the names that share a first path share a file.
impl From<&Tree> for Model {
    fn from(t: &Tree) -> Model {
        let mut m = Model::default();
        let mut ids: BTreeMap<&String, u64> = BTreeMap::new();
        for (path, entry) in t {
            if let Some(rest) = path.strip_prefix(SNAPSHOT) {
                let (name, inner) = rest.split_once('/').unwrap_or((rest, ""));
                let entry = entry
                    .clone()
                    .with_first(|f| f[SNAPSHOT.len() + name.len()..].to_string());
                m.snapshots
                    .entry(name.to_string())
                    .or_default()
                    .insert(format!("/{inner}"), entry);
                continue;
            }
            let file = match entry {
                Entry::Dir => None,
                Entry::File { content, first, .. } => {
                    let next = ids.len() as u64;
                    let id = *ids.entry(first).or_insert(next);
                    m.files.insert(id, content.clone());
                    Some(id)
                }
            };
            m.names.insert(path.clone(), file);
        }
        m
    }
}

fn settings() -> Settings {
    Settings {
        // Every change durable before it returns: every Ok is an acknowledgement.
        windows: [Duration::ZERO; 3],
        // Many segments, so that checkpoints retire them.
        segment_max: 8 << 10,
        inline_max: 1024,
        spill_at: 4096,
        ..Settings::default()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Root,
    Mkdir(&'static str, Tier),
    /// Creates the file if needed and replaces its content.
    Put(String, Vec<u8>),
    Append(String, Vec<u8>),
    /// Writes over the middle of a file (a streamed draft moves to a staging file).
    Patch(String, u64, Vec<u8>),
    Rename(String, String),
    /// A further name for the file at the first path.
    Link(String, String),
    Unlink(String),
    Checkpoint,
    /// A snapshot of that name (each name once).
    Snapshot(String),
}

/// Where a snapshot's entries show in a `Tree`: `@<name>/<path>`.
const SNAPSHOT: &str = "@";

/// A snapshot's entries, as they show in a `Tree` with the live universe's.
fn in_snapshot(name: &str, snap: Tree) -> impl Iterator<Item = (String, Entry)> + '_ {
    snap.into_iter().map(move |(path, entry)| {
        let entry = entry.with_first(|f| format!("{SNAPSHOT}{name}{f}"));
        (format!("{SNAPSHOT}{name}{path}"), entry)
    })
}

impl Entry {
    /// The entry with its file's first path changed by `f`.
    fn with_first(self, f: impl FnOnce(&str) -> String) -> Entry {
        match self {
            Entry::File {
                content,
                first,
                nlink,
            } => Entry::File {
                content,
                first: f(&first),
                nlink,
            },
            Entry::Dir => Entry::Dir,
        }
    }
}

fn bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let tag = rng.next_u64();
    (0..len)
        .map(|i| (tag.wrapping_mul(i as u64 + 1) >> 24) as u8)
        .collect()
}

/// Sizes for every way content is stored: in the log, a blob coded at commit, a blob
/// streamed while written, and (rarely) several chunks.
fn size(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=59 => rng.below(300),
        60..=79 => 1025 + rng.below(3000),
        80..=97 => 4097 + rng.below(30_000),
        _ => store::CHUNK + rng.below(4096),
    }
}

/// The workload of `seed`: set-up, then `n` operations, each chosen against what the
/// ones before leave.
fn workload(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut ops = vec![Op::Root];
    ops.extend(DIRS.iter().map(|&(d, tier)| Op::Mkdir(d, tier)));
    let mut m = Model::default();
    ops.iter().for_each(|op| m.apply(op));
    for _ in 0..n {
        let dir = DIRS[rng.below(DIRS.len())].0;
        let name = format!("{dir}/f{}", rng.below(5));
        let files: Vec<&String> = m.names.keys().filter(|p| m.is_file(p)).collect();
        let existing = files.get(rng.below(files.len())).map(|f| f.to_string());
        let op = match (rng.below(25), existing) {
            (0..=6, _) | (_, None) => {
                let len = size(&mut rng);
                Op::Put(name, bytes(&mut rng, len))
            }
            (7..=9, Some(f)) => {
                let len = rng.below(400);
                Op::Append(f, bytes(&mut rng, len))
            }
            (10, Some(f)) => {
                let off = rng.below(m.content(&f).len() + 1) as u64;
                let len = rng.below(200);
                Op::Patch(f, off, bytes(&mut rng, len))
            }
            (11..=14, Some(f)) => Op::Rename(f, name),
            (15..=16, Some(f)) => Op::Unlink(f),
            // Mostly onto a free name in the file's own directory; elsewhere, another
            // tier (or a taken name) refuses it.
            (17..=19, Some(f)) => {
                let k = rng.below(5);
                let free = (0..5)
                    .map(|i| format!("{}/f{}", split(&f).0, (k + i) % 5))
                    .find(|p| !m.names.contains_key(p));
                match (rng.below(4), free) {
                    (1.., Some(to)) => Op::Link(f, to),
                    _ => Op::Link(f, name),
                }
            }
            (20..=22, _) => Op::Checkpoint,
            _ => Op::Snapshot(format!("s{}", m.snapshots.len())),
        };
        m.apply(&op);
        ops.push(op);
    }
    ops
}

/// Runs operations, keeping the states each one passes through.
struct Runner<'a> {
    e: &'a Engine,
    now: Model,
    /// The states the current operation went through, its starting state first.
    seen: Vec<Tree>,
}

fn split(path: &str) -> (&str, &[u8]) {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    (dir, name.as_bytes())
}

/// The outcome of an operation the model says the engine refuses with `errno` before it
/// changes anything: that refusal is no change, and no failure of the run.
fn refused<T>(op: &Op, res: Result<T>, errno: i32) -> Result<()> {
    match res {
        Err(err) if err.errno() == errno => Ok(()),
        Err(err) => Err(err),
        Ok(_) => panic!("{op:?} was done; expected errno {errno}"),
    }
}

impl Runner<'_> {
    /// One change by the engine: the model follows if it succeeded. Failed or not, it
    /// may have reached the disk (its record written, the fsync that failed aside), so
    /// both states are possible after a crash.
    fn step<T>(&mut self, res: Result<T>, change: impl FnOnce(&mut Model)) -> Result<T> {
        let mut next = self.now.clone();
        change(&mut next);
        self.seen.push(next.view());
        let v = res?;
        self.now = next;
        Ok(v)
    }

    fn dir(&self, path: &str) -> Result<u64> {
        if path.is_empty() {
            return Ok(ROOT);
        }
        let (parent, name) = split(path);
        Ok(self.e.lookup(self.dir(parent)?, name)?.ino)
    }

    /// Writes `data` at `off` (after truncating to nothing when `off` is `None`) through
    /// a handle, and commits at close and at release, as the filesystem does (a truncate
    /// with nothing written after it commits at release only).
    fn write(&mut self, ino: u64, off: Option<u64>, data: &[u8]) -> Result<()> {
        let e = self.e;
        e.open_handle(ino, true)?;
        let res = (|| {
            let at = match off {
                Some(at) => at,
                None => {
                    e.truncate(ino, 0)?;
                    0
                }
            };
            // In pieces, as a writer's calls arrive.
            for (i, piece) in data.chunks(7000).enumerate() {
                e.write(ino, at + (i * 7000) as u64, piece)?;
            }
            e.commit(ino, CommitAt::Close, &|_, _| Ok(()))?;
            e.commit(ino, CommitAt::Release, &|_, _| Ok(()))
        })();
        e.close_handle(ino, true);
        res
    }

    fn run(&mut self, op: &Op) -> Result<()> {
        self.seen = vec![self.now.view()];
        let e = self.e;
        match op {
            Op::Root => self.step(e.create_root(0o755, Tier::Hot, 0), |m| m.apply(op)),
            Op::Mkdir(path, tier) => {
                let (parent, name) = split(path);
                let new = NewNode::root_dir(Some(*tier));
                let made = e.create(self.dir(parent)?, name, new);
                self.step(made, |m| m.apply(op))?;
                Ok(())
            }
            Op::Put(path, data) => {
                let (parent, name) = split(path);
                let parent = self.dir(parent)?;
                let ino = match e.lookup(parent, name) {
                    Ok(a) => a.ino,
                    Err(Error::NotFound) => {
                        let made = e.create(parent, name, NewNode::root_file());
                        self.step(made, |m| m.create(path))?.ino
                    }
                    Err(other) => return Err(other),
                };
                let res = self.write(ino, None, data);
                self.step(res, |m| m.write(path, None, data))
            }
            Op::Append(path, data) | Op::Patch(path, _, data) => {
                let (parent, name) = split(path);
                let ino = e.lookup(self.dir(parent)?, name)?.ino;
                let at = match op {
                    Op::Patch(_, at, _) => *at,
                    _ => self.now.content(path).len() as u64,
                };
                let res = self.write(ino, Some(at), data);
                self.step(res, |m| m.write(path, Some(at), data))
            }
            Op::Rename(from, to) => {
                let ((fp, fname), (tp, tname)) = (split(from), split(to));
                let res = e.rename(self.dir(fp)?, fname, self.dir(tp)?, tname, false);
                match self.now.rename_refused(from, to) {
                    Some(errno) => refused(op, res, errno),
                    None => self.step(res, |m| m.rename(from, to)),
                }
            }
            Op::Link(from, to) => {
                let ((fp, fname), (tp, tname)) = (split(from), split(to));
                let ino = e.lookup(self.dir(fp)?, fname)?.ino;
                let res = e.link(ino, self.dir(tp)?, tname);
                match self.now.link_refused(from, to) {
                    Some(errno) => refused(op, res, errno),
                    None => self.step(res, |m| m.apply(op)).map(drop),
                }
            }
            Op::Unlink(path) => {
                let (parent, name) = split(path);
                let res = e.remove(self.dir(parent)?, name, false);
                self.step(res, |m| m.unlink(path))
            }
            Op::Checkpoint => e.checkpoint(),
            Op::Snapshot(name) => self
                .step(e.take_snapshot(name, &[]), |m| m.apply(op))
                .map(drop),
        }
    }
}

/// What a run of the workload left: the states the universe may be in on the disk.
struct Outcome {
    /// The engine, unless it failed to open.
    engine: Option<Engine>,
    /// Acknowledged: every operation that returned.
    acked: Model,
    /// The states the failed operation went through (`acked` first), if one failed.
    failed: Option<(Error, Vec<Tree>)>,
}

impl Outcome {
    /// The states a recovery may find.
    fn allowed(&self) -> Vec<Tree> {
        match &self.failed {
            Some((_, seen)) => seen.clone(),
            None => vec![self.acked.view()],
        }
    }
}

pub(super) fn open(disk: Arc<dyn Disk>) -> Result<Engine> {
    Engine::open_on(disk, Path::new(DATA_DIR), settings())
}

/// Runs `ops` on `disk` until one fails.
fn run(disk: Arc<dyn Disk>, ops: &[Op]) -> Outcome {
    let e = match open(disk) {
        Ok(e) => e,
        Err(err) => {
            return Outcome {
                engine: None,
                acked: Model::default(),
                failed: Some((err, vec![Tree::new()])),
            };
        }
    };
    let mut r = Runner {
        e: &e,
        now: Model::default(),
        seen: Vec::new(),
    };
    let mut failed = None;
    for op in ops {
        if let Err(err) = r.run(op) {
            failed = Some((err, std::mem::take(&mut r.seen)));
            break;
        }
    }
    let acked = r.now;
    Outcome {
        engine: Some(e),
        acked,
        failed,
    }
}

/// Every file and directory of the universe (unreadable content shows as such), the
/// names of one inode as one file; then every snapshot's, under `SNAPSHOT`.
pub(super) fn read_tree(e: &Engine) -> Tree {
    if e.getattr(ROOT).is_err() {
        return Tree::new();
    }
    let list = |dir| {
        let entries = e.readdir(dir, 0, usize::MAX).expect("readdir");
        entries
            .into_iter()
            .map(|d| (d.name, d.ino, d.kind))
            .collect()
    };
    let content = |ino| e.read(ino, 0, 1 << 30, false).map(|d| d.to_vec());
    let nlink = |ino| e.getattr(ino).map_or(0, |a| a.nlink);
    let mut t = walk(list, content, nlink);
    for info in e.snapshots() {
        let snap = match e.frozen(info.id) {
            Ok(f) => {
                let list = |dir| {
                    let entries = f.entries(dir, None, usize::MAX).expect("snapshot readdir");
                    entries
                        .into_iter()
                        .map(|(_, name, a)| (name, a.ino, a.kind))
                        .collect()
                };
                let content = |ino| e.read_frozen(&f, ino, 0, 1 << 30).map(|d| d.to_vec());
                let nlink = |ino| f.getattr(ino).map_or(0, |a| a.nlink);
                walk(list, content, nlink)
            }
            Err(err) => {
                let unbuilt = Entry::File {
                    content: Arc::new(format!("<not rebuilt: {err}>").into_bytes()),
                    first: "/".into(),
                    nlink: 0,
                };
                Tree::from([("/".to_string(), unbuilt)])
            }
        };
        t.extend(in_snapshot(&info.name, snap));
    }
    t
}

/// The tree below the root as `list` (a directory's names, inodes and kinds), `content`
/// and `nlink` show it.
fn walk(
    list: impl Fn(u64) -> Vec<(Vec<u8>, u64, Kind)>,
    content: impl Fn(u64) -> Result<Vec<u8>>,
    nlink: impl Fn(u64) -> u32,
) -> Tree {
    let mut t = Tree::new();
    t.insert("/".into(), Entry::Dir);
    let mut files = Vec::new();
    let mut todo = vec![(ROOT, String::new())];
    while let Some((dir, path)) = todo.pop() {
        for (name, ino, kind) in list(dir) {
            let p = format!("{path}/{}", String::from_utf8_lossy(&name));
            if kind == Kind::Dir {
                t.insert(p.clone(), Entry::Dir);
                todo.push((ino, p));
            } else {
                files.push((p, ino));
            }
        }
    }
    let mut first: BTreeMap<u64, &String> = BTreeMap::new();
    for (p, ino) in &files {
        first
            .entry(*ino)
            .and_modify(|f| *f = (*f).min(p))
            .or_insert(p);
    }
    for (p, ino) in &files {
        let content =
            content(*ino).unwrap_or_else(|err| format!("<unreadable: {err}>").into_bytes());
        let entry = Entry::File {
            content: Arc::new(content),
            first: first[ino].clone(),
            nlink: nlink(*ino),
        };
        t.insert(p.clone(), entry);
    }
    t
}

/// A tree in a line per entry (sizes, not contents; the first name of a file with
/// several), for failure messages.
/// Fails, showing `got` and every state it might have been, unless it is one of them.
#[track_caller]
pub(super) fn assert_one_of(what: &str, got: &Tree, allowed: &[Tree]) {
    assert!(
        allowed.contains(got),
        "{what}\n  {}\nexpected one of\n{}",
        show(got),
        allowed
            .iter()
            .map(|t| format!("  {}", show(t)))
            .collect::<Vec<_>>()
            .join("\n--\n")
    );
}

fn show(t: &Tree) -> String {
    t.iter()
        .map(|(p, entry)| match entry {
            Entry::Dir => format!("{}/", p.trim_end_matches('/')),
            Entry::File { content: c, .. } if c.starts_with(b"<unreadable") => {
                format!("{p} {}", String::from_utf8_lossy(c))
            }
            Entry::File {
                content: c,
                first,
                nlink,
            } => {
                let mut line = format!("{p} ({} B, {:02x?})", c.len(), &c[..c.len().min(4)]);
                if *nlink != 1 || first != p {
                    line += &format!(" = {first}, nlink {nlink}");
                }
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}
/// Cuts the power (a restart from what survived) and recovers: the new disk and the
/// universe the engine finds on it.
pub(super) fn recover(disk: &Sim, rng: &mut Rng, what: &str) -> (Sim, Tree) {
    let after = disk.restart(rng);
    let e = open(Arc::new(after.clone())).unwrap_or_else(|e| panic!("{what}: recovery: {e}"));
    let t = read_tree(&e);
    (after, t)
}

const SEEDS: u64 = 20;
const OPS: usize = 70;

/// One power cut: at durability point `cut` of `seed`'s workload.
fn cut_and_check(seed: u64, ops: &[Op], cut: u64) {
    let what = format!("seed {seed}, power cut at durability point {cut}");
    let disk = Sim::default();
    disk.cut_at(cut);
    let out = run(Arc::new(disk.clone()), ops);
    if let Some((err, _)) = &out.failed {
        assert!(disk.is_dead(), "{what}: failed before the cut: {err}");
    }
    let mut rng = Rng::new(seed.wrapping_mul(0x1_0000_0001) ^ cut);
    let (after, first) = recover(&disk, &mut rng, &what);
    assert_one_of(&format!("{what}: recovered"), &first, &out.allowed());
    let (after, second) = recover(&after, &mut rng, &what);
    assert!(
        second == first,
        "{what}: a second recovery differs:\n  {}\nfirst:\n  {}",
        show(&second),
        show(&first)
    );
    // The recovered universe takes commits that survive the next cut.
    let expect = {
        let e = open(Arc::new(after.clone())).expect("reopen");
        let mut r = Runner {
            e: &e,
            now: Model::from(&second),
            seen: Vec::new(),
        };
        for op in [
            Op::Root,
            Op::Put("/after".into(), b"after recovery".to_vec()),
        ] {
            r.run(&op)
                .unwrap_or_else(|e| panic!("{what}: after recovery: {e}"));
        }
        r.now.view()
    };
    let (_, third) = recover(&after, &mut rng, &what);
    assert!(
        third == expect,
        "{what}: a commit after recovery:\n  {}\nexpected\n  {}",
        show(&third),
        show(&expect)
    );
}

#[test]
fn a_power_cut_at_any_durability_point_keeps_every_acknowledged_commit() {
    let (mut points, mut snapshots) = (0, 0);
    for seed in 0..SEEDS {
        let ops = workload(seed, OPS);
        snapshots += ops
            .iter()
            .filter(|op| matches!(op, Op::Snapshot(_)))
            .count();
        let disk = Sim::default();
        let out = run(Arc::new(disk.clone()), &ops);
        if let Some((err, _)) = out.failed {
            panic!("seed {seed}: the workload fails without a fault: {err}");
        }
        let e = out.engine.expect("opened");
        let got = read_tree(&e);
        assert!(
            got == out.acked.view(),
            "seed {seed}: without a fault:\n  {}\nexpected\n  {}",
            show(&got),
            show(&out.acked.view())
        );
        let total = disk.points();
        for cut in 1..=total {
            cut_and_check(seed, &ops, cut);
        }
        points += total;
    }
    assert!(points > 2000, "only {points} durability points");
    assert!(snapshots > 40, "only {snapshots} snapshots taken");
    eprintln!("{points} power cuts, each recovered three times; {snapshots} snapshots");
}

/// The disk fails as `spec` says (see `disk::faults`) under `seed`'s workload.
fn fail_and_check(seed: u64, ops: &[Op], spec: &str) {
    let what = format!("seed {seed}, {spec}");
    let refused = if spec.ends_with(":enospc") && spec.starts_with("fail-write") {
        libc::ENOSPC
    } else {
        libc::EIO
    };
    let disk = Sim::default();
    let faulty = Faults::new(Arc::new(disk.clone()), spec).expect("spec");
    let out = run(Arc::new(faulty), ops);
    // After the failure, while the engine still runs: a new file (the root first, if the
    // failure came before it), and a checkpoint.
    let probe = Op::Put("/probe".into(), b"after the failure".to_vec());
    let allowed = match &out.failed {
        None => vec![out.acked.view()],
        Some((err, seen)) => {
            assert_eq!(err.errno(), refused, "{what}: failed with {err}");
            match &out.engine {
                Some(e) if refused == libc::ENOSPC => {
                    // A full disk fails the change that met it, and nothing else.
                    let mut r = Runner {
                        e,
                        now: out.acked.clone(),
                        seen: Vec::new(),
                    };
                    for op in [Op::Root, probe] {
                        r.run(&op)
                            .unwrap_or_else(|err| panic!("{what}: after ENOSPC: {op:?}: {err}"));
                    }
                    vec![r.now.view()]
                }
                Some(e) => {
                    // A failed disk is never hidden: reads go on, every change is refused.
                    let now = read_tree(e);
                    assert!(
                        seen.contains(&now),
                        "{what}: reads after the failure:\n  {}",
                        show(&now)
                    );
                    let mut r = Runner {
                        e,
                        now: out.acked.clone(),
                        seen: Vec::new(),
                    };
                    let first = if e.getattr(ROOT).is_ok() {
                        probe
                    } else {
                        Op::Root
                    };
                    for op in [first, Op::Checkpoint] {
                        match r.run(&op) {
                            Err(err) => assert_eq!(err.errno(), libc::EIO, "{what}: {op:?}: {err}"),
                            Ok(()) => panic!("{what}: {op:?} succeeded on a failed disk"),
                        }
                    }
                    seen.clone()
                }
                None => seen.clone(),
            }
        }
    };
    drop(out);
    // A remount recovers to what the disk holds, and so does a power cut: nothing
    // acknowledged waited on the failed fsync.
    let mut rng = Rng::new(seed);
    let (_, cut) = recover(&disk, &mut rng, &what);
    let e = open(Arc::new(disk)).unwrap_or_else(|e| panic!("{what}: remount: {e}"));
    for (how, got) in [("remounted", read_tree(&e)), ("after a power cut", cut)] {
        assert_one_of(&format!("{what}: {how}"), &got, &allowed);
    }
}

#[test]
fn a_failing_disk_is_reported_never_hidden() {
    for seed in 100..106 {
        let ops = workload(seed, 30);
        let disk = Sim::default();
        let out = run(Arc::new(disk.clone()), &ops);
        assert!(out.failed.is_none(), "seed {seed}: fails without a fault");
        let (fsyncs, writes) = (disk.points(), disk.writes());
        for n in 1..=fsyncs {
            fail_and_check(seed, &ops, &format!("fail-fsync={n}"));
        }
        for n in 1..=writes {
            fail_and_check(seed, &ops, &format!("fail-write={n}"));
            fail_and_check(seed, &ops, &format!("fail-write={n}:enospc"));
        }
    }
}
