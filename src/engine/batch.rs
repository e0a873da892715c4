//! Batches: changes to several files in one log record, so that after a crash at any point
//! all of them are made or none (a region moving a partition: every event exactly once);
//! and pinned versions, for a reader that must see one version of several files while
//! such batches go on.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::codec::Tier;
use super::commit::{Staged, cache_written};
use super::draft::{Bytes, Tail};
use super::extents;
use super::meta_ops::{check_name, new_meta, touch_dirs};
use super::read::release_pins;
use super::record::{Content, Op};
use super::store::Pins;
use super::tree::{Kind, Node, Tree, Ts};
use super::wal::{self, Durability};
use super::{Data, Engine, MAX_FILE_SIZE, NewNode, Settings, Snapshot, lock};
use crate::error::{Error, Result};

/// One change of a batch (`Engine::apply`).
#[derive(Clone, Debug)]
pub enum Change {
    /// Appends bytes at the end of a regular file's committed content.
    Append { ino: u64, bytes: Vec<u8> },
    /// Sets a regular file's whole content; creates it (owned by root, mode 0644, the
    /// parent's tier and tag) when `parent` has no entry `name`.
    Put {
        parent: u64,
        name: Vec<u8>,
        bytes: Vec<u8>,
    },
    /// Removes a directory and everything below it (or a single file). A file among them
    /// that has a name (hard link) outside them refuses the whole batch.
    RemoveTree { parent: u64, name: Vec<u8> },
}

/// One committed version of a file, held for a reader until dropped: small contents in
/// memory, blobs pinned against checkpoints (`Engine::pin`).
pub struct Pinned {
    snap: Snapshot,
    pins: Arc<Pins>,
}

impl Pinned {
    /// The pinned version's length.
    pub fn size(&self) -> u64 {
        self.snap.size
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        release_pins(&self.pins, &self.snap);
    }
}

/// Plannings of one batch: a file appended to may change while its folded bytes are read
/// back (each time another change of it folds them anew); past this many, the batch fails
/// rather than chase it.
const ATTEMPTS: usize = 8;

/// Inline bytes one batch record holds at most: past them, contents go to blobs, so that a
/// large batch still fits one record (`wal::MAX_RECORD`) with its ops.
const INLINE_BUDGET: u64 = wal::MAX_RECORD as u64 / 2;

/// A change resolved against the tree.
enum Step<'a> {
    /// New content for file `ino`: its first `from` bytes stay; its bytes from there to
    /// `base_len` (of version `version`: small pieces folded into the new one, `extents`)
    /// are logged again, then `bytes`. A `Put` keeps nothing (`base_len` 0).
    Write {
        ino: u64,
        version: u64,
        base_len: u64,
        from: u64,
        tier: Tier,
        bytes: &'a [u8],
    },
    /// A new file `name` in `parent`.
    Create {
        parent: u64,
        name: &'a [u8],
        tier: Tier,
        tag: u8,
        bytes: &'a [u8],
    },
    /// The inodes of a tree, children before their directories, and the directory that
    /// held it.
    Remove { inos: Vec<u64>, parent: u64 },
}

impl Step<'_> {
    /// The committed bytes the content staged for this step holds (folded pieces read
    /// back): while they stay the same, the staged bytes are still the ones to log. Staged
    /// without any, they are only the change's own bytes, right for any version.
    fn basis(&self) -> Option<(u64, u64, u64)> {
        match *self {
            Step::Write {
                ino,
                version,
                base_len,
                from,
                ..
            } if from < base_len => Some((ino, version, from)),
            _ => None,
        }
    }
}

impl Engine {
    /// Applies every change in one log record: after a crash at any point, all of them
    /// or none. With `sync`, durable when this returns; otherwise within the shortest
    /// window of the tiers it touches, a tier whose changes are durable at once (hot)
    /// counting as the warm default: a caller that needs it durable calls `sync_all`
    /// (at close(2)). Appends to one file are joined in order; any other two changes of
    /// one file or name refuse the batch.
    pub fn apply(&self, changes: Vec<Change>, sync: bool) -> Result<()> {
        let changes = join_appends(changes);
        if changes.is_empty() {
            return Ok(());
        }
        // Batches go one at a time: two appending to one file would otherwise keep
        // changing each other's folded bytes (only a commit from a draft can still do so).
        let _one = lock(&self.batches);
        for _ in 0..ATTEMPTS {
            let planned = plan(&lock(&self.tree), &changes)?;
            let staged = self.stage_steps(&planned);
            let tree = lock(&self.tree);
            let steps = plan(&tree, &changes)?;
            // A file appended to changed while its folded bytes were read back (the read
            // may have failed for it): plan again.
            if !steps
                .iter()
                .map(Step::basis)
                .eq(planned.iter().map(Step::basis))
            {
                continue;
            }
            return self.log_steps(tree, steps, staged?, sync);
        }
        Err(Error::Io(std::io::Error::other(
            "files of the batch kept changing; try again",
        )))
    }

    /// Reads back and stages every step's new bytes, outside the tree lock (blobs are coded
    /// and fsynced here). A step without content stages nothing.
    fn stage_steps(&self, steps: &[Step<'_>]) -> Result<Vec<Staged>> {
        let inline_max = self.settings().inline_max as u64;
        let mut budget = INLINE_BUDGET;
        steps
            .iter()
            .map(|step| {
                let (ino, version, base_len, from, tier, bytes) = match *step {
                    Step::Write {
                        ino,
                        version,
                        base_len,
                        from,
                        tier,
                        bytes,
                    } => (ino, version, base_len, from, tier, bytes),
                    // A new file has no base to read.
                    Step::Create { tier, bytes, .. } => (0, 0, 0, 0, tier, bytes),
                    Step::Remove { .. } => return Ok(Staged::default()),
                };
                let base = |off, n| self.read_base(ino, version, off, n);
                let all = Bytes {
                    base_len,
                    base: &base,
                    tail: Tail::Mem(bytes),
                };
                let logged = all.len() - from;
                let inline = logged <= inline_max.min(budget);
                if inline {
                    budget -= logged;
                }
                self.stage(tier, &mut *all.reader_from(from), logged, inline)
            })
            .collect()
    }

    /// Logs the planned steps with their staged content as one record, under the same
    /// hold of the tree they were planned against.
    fn log_steps(
        &self,
        mut tree: MutexGuard<'_, Tree>,
        steps: Vec<Step<'_>>,
        staged: Vec<Staged>,
        sync: bool,
    ) -> Result<()> {
        let now = Ts::now();
        let mut ops = Vec::new();
        // Per step: the file it writes, its directory, and its content (cached when inline
        // or a whole blob, as a commit's is).
        let mut written = Vec::with_capacity(steps.len());
        let mut dirs = Vec::new();
        for (step, s) in steps.iter().zip(&staged) {
            let (meta, from) = match *step {
                Step::Write {
                    ino,
                    base_len,
                    from,
                    bytes,
                    ..
                } => {
                    let mut meta = tree.get(ino)?.meta.clone();
                    meta.size = base_len + bytes.len() as u64;
                    meta.mtime = now;
                    meta.ctime = now;
                    (meta, from)
                }
                Step::Create {
                    parent,
                    name,
                    tier,
                    tag,
                    bytes,
                } => {
                    let ino = tree.alloc_ino();
                    let new = NewNode::root_file();
                    let mut meta = new_meta(ino, (parent, name), &new, (tier, tag));
                    meta.size = bytes.len() as u64;
                    dirs.push(parent);
                    (meta, 0)
                }
                Step::Remove { ref inos, parent } => {
                    ops.extend(inos.iter().map(|&ino| Op::Delete { ino }));
                    dirs.push(parent);
                    written.push(None);
                    continue;
                }
            };
            let content = Content::new(from, meta.size, s.blob);
            written.push(Some((meta.ino, meta.parent, meta.size, content)));
            ops.push(Op::Upsert { meta, content });
        }
        let mut seen = HashSet::new();
        for dir in dirs {
            if seen.insert(dir) {
                ops.extend(touch_dirs(&tree, [dir, dir], now)?);
            }
        }
        // A new file is in its directory's tier, which a touched directory brings in.
        let tiers: Vec<Tier> = ops
            .iter()
            .filter_map(|op| tree.get(op.ino()).ok())
            .map(|n| n.meta.tier)
            .collect();
        let durability = if sync {
            Durability::Sync
        } else {
            self.batch_window(&tiers)
        };
        let inline: Vec<&[u8]> = staged.iter().map(|s| &s.inline[..]).collect();
        let lsn = self.log_with(&mut tree, ops, &inline, durability)?;
        let mut cached = Vec::new();
        for (w, s) in written.iter().zip(staged) {
            if let Some((ino, _, size, content)) = *w
                && let Ok(n) = tree.get(ino)
            {
                cached.push(((ino, n.version, size), content, s.inline));
            }
        }
        drop(tree);
        {
            let mut cache = lock(&self.cache);
            for (written, content, inline) in cached {
                cache_written(&mut cache, written, content, inline);
            }
        }
        let mut counters = lock(&self.dir_counters);
        for &(_, parent, ..) in written.iter().flatten() {
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
            counters.entry(parent).or_default().1 += 1;
        }
        drop(counters);
        self.wait(lsn)
    }

    /// When a batch touching `tiers` becomes durable unless its caller syncs: within the
    /// shortest of their windows, a zero window (a change durable at once) counting as the
    /// warm default.
    fn batch_window(&self, tiers: &[Tier]) -> Durability {
        let warm = Settings::default().windows[Tier::Warm as usize];
        let windows = self.settings().windows;
        let w = tiers
            .iter()
            .map(|&t| windows[t as usize])
            .map(|w| if w.is_zero() { warm } else { w })
            .min()
            .unwrap_or(warm);
        Durability::Within(w)
    }

    /// Pins the committed version of file `ino`: reads through the handle see that version
    /// whatever commits, batches and checkpoints come after, until it is dropped.
    pub fn pin(&self, ino: u64) -> Result<Pinned> {
        if lock(&self.tree).get(ino)?.meta.kind == Kind::Dir {
            return Err(Error::IsDir);
        }
        Ok(Pinned {
            snap: self.snapshot(ino)?,
            pins: self.pins.clone(),
        })
    }

    /// Reads a range of a pinned version.
    pub fn read_pinned(&self, p: &Pinned, off: u64, size: usize) -> Result<Data> {
        self.read_version(&p.snap, off, size)
    }
}

/// The changes with every file's appends joined into its first: `plan` refuses any other
/// change to a file appended to, so nothing comes between them.
fn join_appends(changes: Vec<Change>) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::with_capacity(changes.len());
    let mut first: HashMap<u64, usize> = HashMap::new();
    for c in changes {
        if let Change::Append { ino, bytes } = &c
            && let Some(Change::Append { bytes: to, .. }) =
                first.get(ino).and_then(|&i| out.get_mut(i))
        {
            to.extend_from_slice(bytes);
            continue;
        }
        if let Change::Append { ino, .. } = &c {
            first.insert(*ino, out.len());
        }
        out.push(c);
    }
    out
}

fn twice() -> Error {
    Error::InvalidArgument("a batch changes one file or name twice")
}

/// The batch's changes resolved against `tree`: refused as a whole when one cannot be
/// made, or when two change one file or name (or one puts a file into a tree another
/// removes).
fn plan<'a>(tree: &Tree, changes: &'a [Change]) -> Result<Vec<Step<'a>>> {
    let mut steps = Vec::with_capacity(changes.len());
    let mut inos = HashSet::new();
    let mut names = HashSet::new();
    for c in changes {
        let step = match c {
            Change::Append { ino, bytes } => {
                let n = regular(tree, *ino)?;
                let len = n.meta.size;
                if len.saturating_add(bytes.len() as u64) > MAX_FILE_SIZE {
                    return Err(Error::FileTooBig);
                }
                let pieces = extents::pieces(&n.loc, len);
                Step::Write {
                    ino: *ino,
                    version: n.version,
                    base_len: len,
                    from: extents::fold_from(&pieces, bytes.len() as u64),
                    tier: n.meta.tier,
                    bytes,
                }
            }
            Change::Put {
                parent,
                name,
                bytes,
            } => {
                check_name(name)?;
                let p = tree.get(*parent)?;
                if p.dir.is_none() {
                    return Err(Error::NotDir);
                }
                if !tree.is_linked(*parent) {
                    return Err(Error::NotFound);
                }
                match tree.child(*parent, name) {
                    Ok(ino) => {
                        let n = regular(tree, ino)?;
                        Step::Write {
                            ino,
                            version: n.version,
                            base_len: 0,
                            from: 0,
                            tier: n.meta.tier,
                            bytes,
                        }
                    }
                    Err(_) => Step::Create {
                        parent: *parent,
                        name,
                        tier: p.meta.tier,
                        tag: p.meta.tag,
                        bytes,
                    },
                }
            }
            Change::RemoveTree { parent, name } => Step::Remove {
                inos: tree_of(tree, *parent, name)?,
                parent: *parent,
            },
        };
        let fresh = match &step {
            Step::Write { ino, .. } => inos.insert(*ino),
            Step::Create { parent, name, .. } => names.insert((*parent, *name)),
            Step::Remove { inos: gone, .. } => gone.iter().all(|&i| inos.insert(i)),
        };
        if !fresh {
            return Err(twice());
        }
        steps.push(step);
    }
    if names.iter().any(|(parent, _)| inos.contains(parent)) {
        return Err(twice());
    }
    Ok(steps)
}

/// The linked regular file `ino`.
fn regular(tree: &Tree, ino: u64) -> Result<&Node> {
    if !tree.is_linked(ino) {
        return Err(Error::NotFound);
    }
    let n = tree.get(ino)?;
    match n.meta.kind {
        Kind::File => Ok(n),
        Kind::Dir => Err(Error::IsDir),
        _ => Err(Error::InvalidArgument("not a regular file")),
    }
}

/// The inodes `parent/name` and everything below it, children before their directories.
/// Refused when one of them has a name outside them: a hard link elsewhere would keep a
/// file the batch means to remove.
fn tree_of(tree: &Tree, parent: u64, name: &[u8]) -> Result<Vec<u64>> {
    let top = tree.child(parent, name)?;
    let mut inos = tree.descendants(top);
    inos.reverse();
    inos.push(top);
    let gone: HashSet<u64> = inos.iter().copied().collect();
    let dirs: HashSet<u64> = inos
        .iter()
        .copied()
        .filter(|&i| tree.dir(i).is_ok())
        .collect();
    // A further name of a removed file outside the tree, or a name inside it of a file
    // whose first name is outside.
    let named_outside = inos
        .iter()
        .any(|&i| tree.links(i).iter().any(|l| !dirs.contains(&l.parent)));
    let named_inside = dirs.iter().any(|&d| {
        tree.dir(d)
            .is_ok_and(|d| d.order.values().any(|i| !gone.contains(i)))
    });
    if named_outside || named_inside {
        return Err(Error::NotPermitted(
            "removing a tree that holds a file with a name outside it",
        ));
    }
    Ok(inos)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use super::Change;
    use crate::engine::api::Storage;
    use crate::engine::codec::Tier;
    use crate::engine::crash::{assert_one_of, open, read_tree, recover};
    use crate::engine::disk::sim::{Rng, Sim};
    use crate::engine::extents::{self, MAX_PIECES, Part};
    use crate::engine::testutil::{file, get, new_universe, put, settings};
    use crate::engine::tree::{Kind, Location, ROOT};
    use crate::engine::wal::{self, Durability};
    use crate::engine::{Engine, NewNode, frame, lock, store};
    use crate::error::Error;

    fn content(n: usize, salt: u8) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ salt).collect()
    }

    fn mkdir(e: &Engine, parent: u64, name: &str, tier: Option<Tier>) -> u64 {
        Storage::mkdir(e, parent, name.as_bytes(), tier)
            .expect("mkdir")
            .ino
    }

    fn file_in(e: &Engine, parent: u64, name: &str) -> u64 {
        e.create(parent, name.as_bytes(), NewNode::root_file())
            .expect("create")
            .ino
    }

    fn put_to(parent: u64, name: &str, bytes: &[u8]) -> Change {
        Change::Put {
            parent,
            name: name.as_bytes().to_vec(),
            bytes: bytes.to_vec(),
        }
    }

    fn remove_tree(parent: u64, name: &str) -> Change {
        Change::RemoveTree {
            parent,
            name: name.as_bytes().to_vec(),
        }
    }

    fn append(ino: u64, bytes: &[u8]) -> Change {
        Change::Append {
            ino,
            bytes: bytes.to_vec(),
        }
    }

    fn names(e: &Engine, dir: u64) -> Vec<String> {
        let mut out: Vec<String> = Storage::readdir_names(e, dir)
            .expect("readdir")
            .into_iter()
            .map(|(n, _)| String::from_utf8_lossy(&n).into_owned())
            .collect();
        out.sort();
        out
    }

    fn ino_of(e: &Engine, parent: u64, name: &str) -> u64 {
        e.lookup(parent, name.as_bytes()).expect("lookup").ino
    }

    fn pieces_of(e: &Engine, ino: u64) -> Vec<extents::Piece> {
        let tree = lock(&e.tree);
        let n = tree.get(ino).expect("node");
        extents::pieces(&n.loc, n.meta.size)
    }

    #[test]
    fn a_put_an_append_and_a_removal_are_one_change_that_survives_a_reopen() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let log = file(&e, "log");
        put(&e, log, b"first line\n");
        let part = mkdir(&e, ROOT, "part", None);
        let x = file_in(&e, part, "x");
        put(&e, x, b"x");
        let sub = mkdir(&e, part, "sub", Some(Tier::Cold));
        let y = file_in(&e, sub, "y");
        put(&e, y, &content(5000, 1));
        let root_mtime = e.getattr(ROOT).expect("root").mtime;
        let changes = vec![
            put_to(ROOT, "new", b"hello"),
            append(log, b"second line\n"),
            remove_tree(ROOT, "part"),
        ];
        Storage::apply(&e, changes, true).expect("apply");
        assert_ne!(e.getattr(ROOT).expect("root").mtime, root_mtime);
        let check = |e: &Engine| {
            assert_eq!(names(e, ROOT), ["log", "new"]);
            assert_eq!(get(e, ino_of(e, ROOT, "new")), b"hello");
            assert_eq!(get(e, log), b"first line\nsecond line\n");
            for gone in [part, x, sub, y] {
                assert!(matches!(e.getattr(gone), Err(Error::NotFound)), "{gone}");
            }
            let root = e.getattr(ROOT).expect("root");
            assert_eq!((root.nlink, root.mtime), (2, root.ctime));
        };
        check(&e);
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        check(&e);
    }

    #[test]
    fn inline_contents_of_several_ops_replay_at_their_own_offsets() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let g = file(&e, "g");
        let mut g_bytes = content(2000, 1);
        put(&e, g, &g_bytes);
        // The first byte of the payload of the next record: its version.
        let next_version = |e: &Engine| {
            let &(seq, len) = e.wal.segments().last().expect("a segment");
            move |e: &Engine| {
                let at = len + frame::FRAME_HEADER as u64;
                e.wal.read_segment(seq, at, 1).expect("read")[0]
            }
        };
        let version = next_version(&e);
        let changes = vec![
            put_to(ROOT, "a", b"first content"),
            append(g, b" appended"),
            put_to(ROOT, "b", b"second, longer content"),
        ];
        e.apply(changes, true).expect("apply");
        assert_eq!(version(&e), 3, "several inline contents: version 3");
        g_bytes.extend_from_slice(b" appended");
        let version = next_version(&e);
        e.apply(vec![put_to(ROOT, "c", b"only one")], true)
            .expect("apply");
        assert_eq!(version(&e), 1, "one inline content: still version 1");
        let check = |e: &Engine| {
            assert_eq!(get(e, ino_of(e, ROOT, "a")), b"first content");
            assert_eq!(get(e, g), g_bytes);
            assert_eq!(get(e, ino_of(e, ROOT, "b")), b"second, longer content");
            assert_eq!(get(e, ino_of(e, ROOT, "c")), b"only one");
        };
        check(&e);
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        check(&e);
    }

    #[test]
    fn many_batched_appends_keep_few_pieces_and_every_byte() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "events");
        let mut model = content(3000, 5);
        put(&e, f, &model);
        for i in 0..600 {
            let (one, two) = (format!("event {i}\n"), format!("and {i}\n"));
            // Two appends to one file in one batch are joined in order.
            let changes = if i % 3 == 0 {
                vec![append(f, one.as_bytes()), append(f, two.as_bytes())]
            } else {
                vec![append(f, one.as_bytes())]
            };
            e.apply(changes, false).expect("apply");
            model.extend_from_slice(one.as_bytes());
            if i % 3 == 0 {
                model.extend_from_slice(two.as_bytes());
            }
            let pieces = pieces_of(&e, f).len();
            assert!(pieces <= MAX_PIECES, "{pieces} pieces");
            if i % 200 == 199 {
                e.checkpoint().expect("checkpoint");
            }
        }
        assert!(get(&e, f) == model);
        Storage::sync(&e).expect("sync");
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert!(get(&e, f) == model);
    }

    /// Batches appending to one file from several threads, checkpoints among them (which
    /// move the folded bytes a batch reads back): every line lands once, each thread's in
    /// order, and no batch gives up.
    #[test]
    fn racing_batched_appends_keep_every_line_once() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = Arc::new(new_universe(tmp.path(), Tier::Hot));
        let f = file(&e, "events");
        put(&e, f, &content(600, 1));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let e = e.clone();
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let line = format!("{t} {i:04}\n");
                        e.apply(vec![append(f, line.as_bytes())], false)
                            .expect("apply");
                        if i % 100 == 50 {
                            e.checkpoint().expect("checkpoint");
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        let got = get(&e, f);
        assert!(got[..600] == content(600, 1)[..]);
        let lines: Vec<&[u8]> = got[600..].split_inclusive(|&b| b == b'\n').collect();
        for t in 0..4 {
            let mine: Vec<String> = lines
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .filter(|l| l.starts_with(&format!("{t} ")))
                .collect();
            let want: Vec<String> = (0..300).map(|i| format!("{t} {i:04}\n")).collect();
            assert_eq!(mine, want);
        }
        assert_eq!(lines.len(), 1200);
    }

    #[test]
    fn large_puts_and_appends_go_through_blobs() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Warm);
        let g = file(&e, "g");
        let mut g_bytes = content(3000, 2);
        put(&e, g, &g_bytes);
        let big = content(2 * store::CHUNK + 7, 3);
        let more = content(5000, 4);
        let changes = vec![put_to(ROOT, "big", &big), append(g, &more)];
        e.apply(changes, true).expect("apply");
        g_bytes.extend_from_slice(&more);
        let b = ino_of(&e, ROOT, "big");
        assert!(matches!(
            lock(&e.tree).get(b).expect("big").loc,
            Location::Blob { .. }
        ));
        let is_blob = |p: &extents::Piece| matches!(p.part, Part::Blob { .. });
        assert!(
            pieces_of(&e, g).iter().all(is_blob),
            "{:?}",
            pieces_of(&e, g)
        );
        let check = |e: &Engine| {
            assert!(get(e, b) == big);
            assert!(get(e, g) == g_bytes);
        };
        check(&e);
        e.checkpoint().expect("checkpoint");
        check(&e);
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        check(&e);
    }

    #[test]
    fn a_tree_holding_a_file_named_outside_it_is_not_removed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let d = mkdir(&e, ROOT, "d", None);
        let x = file_in(&e, d, "x");
        put(&e, x, b"linked");
        e.link(x, ROOT, b"x2").expect("link");
        let logged = e.wal.written();
        // The tree holding it, and the file itself under its other name.
        for changes in [
            vec![put_to(ROOT, "new", b"n"), remove_tree(ROOT, "d")],
            vec![remove_tree(ROOT, "x2")],
        ] {
            match e.apply(changes, true) {
                Err(Error::NotPermitted(_)) => {}
                other => panic!("not refused: {other:?}"),
            }
        }
        assert_eq!(e.wal.written(), logged, "nothing logged");
        assert_eq!(names(&e, ROOT), ["d", "x2"]);
        assert_eq!(names(&e, d), ["x"]);
        assert_eq!(e.getattr(x).expect("x").nlink, 2);
        // With all its names inside the tree, the file goes with it.
        e.link(x, d, b"x3").expect("link");
        e.remove(ROOT, b"x2", false).expect("unlink");
        e.apply(vec![remove_tree(ROOT, "d")], true).expect("apply");
        assert_eq!(names(&e, ROOT), Vec::<String>::new());
        assert!(matches!(e.getattr(x), Err(Error::NotFound)));
    }

    #[test]
    fn a_batch_changing_one_file_or_name_twice_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "f");
        put(&e, f, b"f");
        mkdir(&e, ROOT, "d", None);
        let d = ino_of(&e, ROOT, "d");
        for changes in [
            vec![put_to(ROOT, "a", b"1"), put_to(ROOT, "a", b"2")],
            vec![put_to(ROOT, "f", b"new"), append(f, b"more")],
            vec![put_to(d, "n", b"n"), remove_tree(ROOT, "d")],
            vec![remove_tree(ROOT, "f"), append(f, b"more")],
        ] {
            match e.apply(changes, true) {
                Err(Error::InvalidArgument(_)) => {}
                other => panic!("not refused: {other:?}"),
            }
        }
        assert_eq!(names(&e, ROOT), ["d", "f"]);
        assert_eq!(get(&e, f), b"f");
    }

    #[test]
    fn a_pinned_version_reads_its_bytes_after_batches_and_checkpoints() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Warm);
        let small = file(&e, "small");
        put(&e, small, b"small, in the log: a few dozen bytes");
        let big = file(&e, "big");
        put(&e, big, &content(2 * store::CHUNK + 3, 1));
        let pieces = file(&e, "pieces");
        put(&e, pieces, &content(3000, 2));
        e.apply(vec![append(pieces, &content(100, 3))], true)
            .expect("apply");
        assert!(pieces_of(&e, pieces).len() > 1);
        let files = [small, big, pieces];
        let old: Vec<Vec<u8>> = files.iter().map(|&f| get(&e, f)).collect();
        let blob = match lock(&e.tree).get(big).expect("big").loc {
            Location::Blob { tier, id } => (tier, id),
            ref other => panic!("not a blob: {other:?}"),
        };
        let pinned: Vec<_> = files
            .iter()
            .map(|&f| Storage::pin(&e, f).expect("pin"))
            .collect();
        for (p, o) in pinned.iter().zip(&old) {
            assert_eq!(p.size(), o.len() as u64);
        }
        assert!(matches!(e.pin(ROOT), Err(Error::IsDir)));
        let changes = vec![
            append(small, b", appended to"),
            put_to(ROOT, "big", b"replaced"),
            remove_tree(ROOT, "pieces"),
        ];
        e.apply(changes, true).expect("apply");
        let check = |what: &str| {
            for (p, o) in pinned.iter().zip(&old) {
                let whole = Storage::read_pinned(&e, p, 0, 1 << 30).expect("read");
                assert!(*whole == o[..], "{what}");
                let part = e.read_pinned(p, 10, 20).expect("read");
                assert_eq!(*part, o[10..30], "{what}");
            }
        };
        check("after the batch");
        for round in 0..2 {
            e.checkpoint().expect("checkpoint");
            check(&format!("after checkpoint {round}"));
        }
        assert_eq!(get(&e, big), b"replaced");
        // Dropped, the handles release their blobs: the next checkpoint retires them.
        drop(pinned);
        e.checkpoint().expect("checkpoint");
        assert!(e.store.blob(blob.0, blob.1).is_err());
    }

    #[test]
    fn mkdir_makes_a_directory_once_and_refuses_a_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let s: &dyn Storage = &e;
        let made = s.mkdir(ROOT, b"d", Some(Tier::Cold)).expect("mkdir");
        assert_eq!(
            (made.kind, made.tier, made.perm),
            (Kind::Dir, Tier::Cold, 0o755)
        );
        let again = s.mkdir(ROOT, b"d", None).expect("mkdir again");
        assert_eq!(again.ino, made.ino);
        file(&e, "f");
        assert!(matches!(s.mkdir(ROOT, b"f", None), Err(Error::Exists)));
        let listed = s.readdir_names(ROOT).expect("readdir");
        let kinds: Vec<(&[u8], Kind)> = listed.iter().map(|(n, a)| (&n[..], a.kind)).collect();
        assert_eq!(kinds, [(&b"d"[..], Kind::Dir), (&b"f"[..], Kind::File)]);
    }

    #[test]
    fn an_unsynced_batch_is_durable_within_the_shortest_window_hot_counting_as_warm() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let ms = |n| Durability::Within(Duration::from_millis(n));
        assert_eq!(e.batch_window(&[Tier::Hot]), ms(100));
        assert_eq!(e.batch_window(&[Tier::Cold]), ms(1000));
        assert_eq!(e.batch_window(&[Tier::Cold, Tier::Hot]), ms(100));
    }

    /// The universe the batch of the crash tests changes (made on `e`), and that batch: an
    /// inline append to a blob, a new blob, a file put over inline (so two inline contents
    /// in one record) and a tree of another tier removed.
    fn crash_setup(e: &Engine) -> Vec<Change> {
        e.create_root(0o755, Tier::Hot, 0).expect("root");
        let hot = mkdir(e, ROOT, "hot", Some(Tier::Hot));
        let warm = mkdir(e, ROOT, "warm", Some(Tier::Warm));
        let a = file_in(e, hot, "a");
        put(e, a, &content(3000, 1));
        let c = file_in(e, hot, "c");
        put(e, c, b"c before");
        let d = mkdir(e, warm, "d", None);
        let x = file_in(e, d, "x");
        put(e, x, b"x");
        let sub = mkdir(e, d, "sub", None);
        let y = file_in(e, sub, "y");
        put(e, y, &content(5000, 2));
        vec![
            append(a, &content(300, 3)),
            put_to(hot, "b", &content(2500, 4)),
            put_to(hot, "c", b"c after"),
            remove_tree(warm, "d"),
        ]
    }

    #[test]
    fn a_power_cut_anywhere_in_a_batch_leaves_all_of_it_or_none() {
        let disk = Sim::default();
        let e = open(Arc::new(disk.clone())).expect("open");
        let changes = crash_setup(&e);
        let (from, before) = (disk.points(), read_tree(&e));
        e.apply(changes, true).expect("apply");
        let (to, after) = (disk.points(), read_tree(&e));
        drop(e);
        assert!(before != after);
        assert!(
            to > from + 1,
            "the blob and the record: {} points",
            to - from
        );
        let mut seen = [false; 2];
        for cut in from + 1..=to {
            let disk = Sim::default();
            disk.cut_at(cut);
            let e = open(Arc::new(disk.clone())).expect("open");
            let changes = crash_setup(&e);
            assert!(
                e.apply(changes, true).is_err() && disk.is_dead(),
                "cut {cut}"
            );
            drop(e);
            for restart in 0..8 {
                let what = format!("power cut at durability point {cut}, restart {restart}");
                let (_, got) = recover(&disk, &mut Rng::new(restart), &what);
                let allowed = [before.clone(), after.clone()];
                assert_one_of(&what, &got, &allowed);
                seen[usize::from(got == after)] = true;
            }
        }
        assert_eq!(seen, [true, true], "both outcomes happen");
    }

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).expect("mkdir");
        for entry in fs::read_dir(from).expect("list") {
            let entry = entry.expect("entry");
            let dest = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy_dir(&entry.path(), &dest);
            } else {
                fs::copy(entry.path(), &dest).expect("copy");
            }
        }
    }

    #[test]
    fn a_log_cut_anywhere_in_a_batch_record_recovers_all_of_it_or_none() {
        let tmp = tempfile::tempdir().expect("tmp");
        let changes = crash_setup(&Engine::open(tmp.path(), settings()).expect("open"));
        // Reopened, the log goes on in a new segment: the batch's record is alone in it.
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        let before = read_tree(&e);
        let &(seq, from) = e.wal.segments().last().expect("a segment");
        e.apply(changes, true).expect("apply");
        let &(_, to) = e.wal.segments().last().expect("a segment");
        let after = read_tree(&e);
        drop(e);
        let name = wal::segment_name(seq);
        let full = fs::read(tmp.path().join("backups/cosmic_logs").join(&name)).expect("read");
        for cut in from..=to {
            let probe = tempfile::tempdir().expect("tmp");
            copy_dir(tmp.path(), probe.path());
            let seg = probe.path().join("backups/cosmic_logs").join(&name);
            fs::write(seg, &full[..cut as usize]).expect("cut");
            let e = Engine::open(probe.path(), settings()).expect("a torn record recovers");
            let want = if cut == to { &after } else { &before };
            assert_one_of(
                &format!("log cut at {cut}"),
                &read_tree(&e),
                std::slice::from_ref(want),
            );
        }
    }
}
