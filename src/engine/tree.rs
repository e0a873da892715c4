//! The in-memory table of every inode: its metadata, where its content lives, and the
//! directory indexes derived from `parent` + `name` (and a file's further names, its hard
//! links). The log and the checkpoints store only `Meta` + `Location` + those names;
//! directories are rebuilt from them on load.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::codec::Tier;
use super::extents::Piece;
use crate::error::{Error, Result};

pub const ROOT: u64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Special files: stored as metadata only; the kernel serves their opens (a pipe, a
    /// socket bound to the name, a device's driver).
    Fifo,
    Socket,
    CharDev,
    BlockDev,
}

/// Seconds and nanoseconds since the epoch (may be negative: `touch -d 1960-01-01`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ts {
    pub secs: i64,
    pub nanos: u32,
}

impl Ts {
    pub fn now() -> Ts {
        Ts::from(SystemTime::now())
    }

    pub fn to_system(self) -> SystemTime {
        if self.secs >= 0 {
            UNIX_EPOCH + Duration::new(self.secs as u64, self.nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs())
                + Duration::from_nanos(self.nanos as u64)
        }
    }
}

impl From<SystemTime> for Ts {
    fn from(t: SystemTime) -> Ts {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Ts {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let mut secs = -(d.as_secs() as i64);
                let mut nanos = 0;
                if d.subsec_nanos() > 0 {
                    secs -= 1;
                    nanos = 1_000_000_000 - d.subsec_nanos();
                }
                Ts { secs, nanos }
            }
        }
    }
}

/// What the log and checkpoints record of an inode.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub ino: u64,
    pub parent: u64,
    /// Shared with the parent's name index: one allocation per name.
    pub name: Arc<[u8]>,
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (not the file type).
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    /// Committed content length.
    pub size: u64,
    pub atime: Ts,
    pub mtime: Ts,
    pub ctime: Ts,
    /// The shard the content belongs to; inherited from the parent directory.
    pub tier: Tier,
    /// The region's label, set by the namespace and inherited like the tier.
    pub tag: u8,
    /// Extended attributes and symlink target: most inodes have neither, and a million
    /// inodes are held in memory, so they live out of line (8 bytes here instead of 32).
    pub extra: Option<Box<Extra>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra {
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub target: Box<[u8]>,
}

impl Meta {
    pub fn xattrs(&self) -> &[(Vec<u8>, Vec<u8>)] {
        self.extra.as_ref().map_or(&[], |e| &e.xattrs)
    }

    pub fn target(&self) -> &[u8] {
        self.extra.as_ref().map_or(&[], |e| &e.target)
    }

    /// A device node's device number, kept where a symlink keeps its target (u32 LE).
    pub fn rdev(&self) -> u32 {
        match (self.kind, <[u8; 4]>::try_from(self.target())) {
            (Kind::CharDev | Kind::BlockDev, Ok(b)) => u32::from_le_bytes(b),
            _ => 0,
        }
    }

    pub fn set_xattrs(&mut self, xattrs: Vec<(Vec<u8>, Vec<u8>)>) {
        let target = self.extra.take().map(|e| e.target).unwrap_or_default();
        self.extra = Extra::boxed(xattrs, target);
    }
}

impl Extra {
    /// `None` when there is nothing to keep.
    pub fn boxed(xattrs: Vec<(Vec<u8>, Vec<u8>)>, target: Box<[u8]>) -> Option<Box<Extra>> {
        (!xattrs.is_empty() || !target.is_empty()).then(|| Box::new(Extra { xattrs, target }))
    }
}

/// `Meta` as the log and checkpoints lay it out (FORMAT.md), field for field; the
/// in-memory struct differs only in where it keeps the rare fields. Written from borrowed
/// fields, read into owned ones.
#[derive(Serialize, Deserialize)]
struct MetaStored<'a> {
    ino: u64,
    parent: u64,
    name: Cow<'a, [u8]>,
    kind: Kind,
    perm: u16,
    uid: u32,
    gid: u32,
    size: u64,
    atime: Ts,
    mtime: Ts,
    ctime: Ts,
    tier: Tier,
    tag: u8,
    xattrs: Cow<'a, [(Vec<u8>, Vec<u8>)]>,
    target: Cow<'a, [u8]>,
}

impl Serialize for Meta {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        MetaStored {
            ino: self.ino,
            parent: self.parent,
            name: Cow::Borrowed(&self.name),
            kind: self.kind,
            perm: self.perm,
            uid: self.uid,
            gid: self.gid,
            size: self.size,
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
            tier: self.tier,
            tag: self.tag,
            xattrs: Cow::Borrowed(self.xattrs()),
            target: Cow::Borrowed(self.target()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Meta, D::Error> {
        let m = MetaStored::deserialize(d)?;
        Ok(Meta {
            ino: m.ino,
            parent: m.parent,
            name: m.name.into(),
            kind: m.kind,
            perm: m.perm,
            uid: m.uid,
            gid: m.gid,
            size: m.size,
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
            tier: m.tier,
            tag: m.tag,
            extra: Extra::boxed(m.xattrs.into_owned(), m.target.into()),
        })
    }
}

/// Where committed content lives. Clone is cheap: pieces are shared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Location {
    Empty,
    /// Raw bytes (`Meta::size` of them) inside a log segment, not yet checkpointed.
    Wal {
        seg: u64,
        off: u64,
    },
    /// One frame of a pack file of a tier's shard.
    Pack {
        tier: Tier,
        id: u64,
        off: u64,
        len: u32,
    },
    /// A chunked blob file of a tier's shard (large files).
    Blob {
        tier: Tier,
        id: u64,
    },
    /// Pieces of the above, in order: a file appended to since its last rewrite.
    Extents(Arc<[Piece]>),
}

pub struct Node {
    pub meta: Meta,
    pub loc: Location,
    /// Bumped on every content change; keys the cache.
    pub version: u64,
    /// Position in the parent's listing (stable readdir offsets).
    pub cookie: u64,
    /// Open file handles; an unlinked node stays readable until they are released.
    pub open: u32,
    pub dir: Option<Box<DirIndex>>,
}

#[derive(Default)]
pub struct DirIndex {
    pub by_name: HashMap<Arc<[u8]>, u64>,
    /// cookie -> ino, in creation order.
    pub order: BTreeMap<u64, u64>,
    next_cookie: u64,
    pub subdirs: u32,
}

/// A name of a file besides its first (`Meta::parent` + `name`): a hard link.
#[derive(Clone, Debug)]
pub struct Link {
    pub parent: u64,
    pub name: Arc<[u8]>,
    /// Its position in the parent's listing, like `Node::cookie` for the first name.
    pub(super) cookie: u64,
}

#[derive(Default)]
pub struct Tree {
    /// Boxed: the table's buckets stay small (a hash table over-allocates buckets, and a
    /// bucket holding a whole node would waste most of a million-record universe's memory).
    nodes: HashMap<u64, Box<Node>>,
    /// Unlinked while open: readable through their handles, gone from the namespace.
    orphans: HashMap<u64, Box<Node>>,
    /// The further names of the few files that have them: kept beside the nodes so that
    /// a node costs nothing for a feature most files never use.
    links: HashMap<u64, Vec<Link>>,
    pub next_ino: u64,
}

impl Tree {
    pub fn get(&self, ino: u64) -> Result<&Node> {
        self.nodes
            .get(&ino)
            .or_else(|| self.orphans.get(&ino))
            .map(|n| &**n)
            .ok_or(Error::NotFound)
    }

    pub fn get_mut(&mut self, ino: u64) -> Result<&mut Node> {
        match self.nodes.get_mut(&ino) {
            Some(n) => Ok(&mut **n),
            None => self
                .orphans
                .get_mut(&ino)
                .map(|n| &mut **n)
                .ok_or(Error::NotFound),
        }
    }

    pub fn is_linked(&self, ino: u64) -> bool {
        self.nodes.contains_key(&ino)
    }

    /// The further names of `ino` (none for most files).
    pub fn links(&self, ino: u64) -> &[Link] {
        if self.links.is_empty() {
            return &[];
        }
        self.links.get(&ino).map_or(&[], Vec::as_slice)
    }

    /// How many names a file has: its first and its links (0 once unlinked).
    pub fn nlink(&self, ino: u64) -> u32 {
        if self.is_linked(ino) {
            1 + self.links(ino).len() as u32
        } else {
            0
        }
    }

    /// The name `node` has in `dir` at listing position `cookie`.
    pub fn entry_name<'t>(
        &'t self,
        node: &'t Node,
        dir: u64,
        cookie: u64,
    ) -> Option<&'t Arc<[u8]>> {
        if node.meta.parent == dir && node.cookie == cookie {
            return Some(&node.meta.name);
        }
        self.links(node.meta.ino)
            .iter()
            .find(|l| l.parent == dir && l.cookie == cookie)
            .map(|l| &l.name)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values().map(|n| &**n)
    }

    pub fn dir(&self, ino: u64) -> Result<&DirIndex> {
        self.get(ino)?.dir.as_deref().ok_or(Error::NotDir)
    }

    pub fn child(&self, parent: u64, name: &[u8]) -> Result<u64> {
        self.dir(parent)?
            .by_name
            .get(name)
            .copied()
            .ok_or(Error::NotFound)
    }

    pub fn alloc_ino(&mut self) -> u64 {
        self.next_ino = self.next_ino.max(ROOT + 1);
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    /// Applies a logged "this inode now looks like `meta`" — the one mutation used both live
    /// and during replay, so that the two cannot disagree. `loc` is `None` when the content
    /// did not change.
    pub fn upsert(&mut self, meta: Meta, loc: Option<Location>) {
        self.next_ino = self.next_ino.max(meta.ino + 1);
        let ino = meta.ino;
        if let Some(mut node) = self.nodes.remove(&ino) {
            let moved = node.meta.parent != meta.parent || node.meta.name != meta.name;
            if moved && ino != ROOT {
                self.unlink_entry(&node);
            }
            node.meta = meta;
            if let Some(loc) = loc {
                node.loc = loc;
                node.version += 1;
            }
            if moved && ino != ROOT {
                self.link_entry(&mut node);
            }
            self.nodes.insert(ino, node);
            return;
        }
        let mut node = Box::new(Node {
            dir: (meta.kind == Kind::Dir).then(Box::default),
            meta,
            loc: loc.unwrap_or(Location::Empty),
            version: 1,
            cookie: 0,
            open: 0,
        });
        if ino != ROOT {
            self.link_entry(&mut node);
        }
        self.nodes.insert(ino, node);
    }

    /// Removes an inode from the namespace. If handles are still open it stays readable
    /// as an orphan until `release_orphan`.
    pub fn delete(&mut self, ino: u64) {
        self.set_links(ino, Vec::new());
        if let Some(node) = self.nodes.remove(&ino) {
            self.unlink_entry(&node);
            if node.open > 0 {
                self.orphans.insert(ino, node);
            }
        }
    }

    pub fn orphan_locations(&self) -> impl Iterator<Item = Location> + '_ {
        self.orphans.values().map(|n| n.loc.clone())
    }

    pub fn release_orphan(&mut self, ino: u64) {
        if self.orphans.get(&ino).is_some_and(|n| n.open == 0) {
            self.orphans.remove(&ino);
        }
    }

    /// Applies a logged "the further names of `ino` are now exactly `names`": names that
    /// stay keep their listing position.
    pub fn set_links(&mut self, ino: u64, names: Vec<(u64, Arc<[u8]>)>) {
        let old = self.links.remove(&ino).unwrap_or_default();
        let Some(kind) = self.nodes.get(&ino).map(|n| n.meta.kind) else {
            if !names.is_empty() {
                log::warn!("links of inode {ino}, which is not in the namespace; ignored");
            }
            return;
        };
        let (kept, gone): (Vec<Link>, Vec<Link>) = old
            .into_iter()
            .partition(|l| names.iter().any(|(p, n)| *p == l.parent && *n == l.name));
        for l in gone {
            self.remove_entry(l.parent, &l.name, ino, l.cookie, kind);
        }
        let mut links = Vec::with_capacity(names.len());
        for (parent, name) in names {
            let link = match kept.iter().find(|l| l.parent == parent && l.name == name) {
                Some(l) => l.clone(),
                None => match self.add_entry(parent, &name, ino, kind) {
                    Some(cookie) => Link {
                        parent,
                        name,
                        cookie,
                    },
                    None => continue,
                },
            };
            links.push(link);
        }
        if !links.is_empty() {
            self.links.insert(ino, links);
        }
    }

    fn link_entry(&mut self, node: &mut Node) {
        let m = &node.meta;
        if let Some(cookie) = self.add_entry(m.parent, &m.name, m.ino, m.kind) {
            node.cookie = cookie;
        }
    }

    /// Enters `ino` under `name` in directory `parent`; returns its listing position.
    fn add_entry(&mut self, parent: u64, name: &Arc<[u8]>, ino: u64, kind: Kind) -> Option<u64> {
        let Some(dir) = self
            .nodes
            .get_mut(&parent)
            .and_then(|p| p.dir.as_deref_mut())
        else {
            log::warn!(
                "inode {ino} names a parent {parent} that is not a directory; kept unlinked"
            );
            return None;
        };
        if let Some(old) = dir.by_name.insert(name.clone(), ino) {
            // Only a damaged log could name two inodes alike; the later record wins.
            log::warn!("inode {ino} replaces inode {old} under the same name");
            dir.order.retain(|_, v| *v != old);
        }
        dir.next_cookie += 1;
        let cookie = dir.next_cookie + 2; // 1 and 2 are "." and ".."
        dir.order.insert(cookie, ino);
        if kind == Kind::Dir {
            dir.subdirs += 1;
        }
        Some(cookie)
    }

    fn unlink_entry(&mut self, node: &Node) {
        let m = &node.meta;
        self.remove_entry(m.parent, &m.name, m.ino, node.cookie, m.kind);
    }

    fn remove_entry(&mut self, parent: u64, name: &[u8], ino: u64, cookie: u64, kind: Kind) {
        if let Some(dir) = self
            .nodes
            .get_mut(&parent)
            .and_then(|p| p.dir.as_deref_mut())
        {
            if dir.by_name.get(name) == Some(&ino) {
                dir.by_name.remove(name);
            }
            dir.order.remove(&cookie);
            if kind == Kind::Dir {
                dir.subdirs = dir.subdirs.saturating_sub(1);
            }
        }
    }

    /// The entries of directory `dir` that are their inode's first name: a walk over
    /// them visits every inode once, however many links it has.
    fn first_names<'t>(&'t self, dir: &'t Node) -> impl Iterator<Item = &'t Node> + 't {
        let ino = dir.meta.ino;
        dir.dir.as_deref().into_iter().flat_map(move |d| {
            d.order.iter().filter_map(move |(&cookie, child)| {
                let n = self.nodes.get(child)?;
                (n.meta.parent == ino && n.cookie == cookie).then_some(&**n)
            })
        })
    }

    /// The path of an inode from the root, as components.
    pub fn path(&self, mut ino: u64) -> Vec<Vec<u8>> {
        let mut parts = Vec::new();
        while ino != ROOT {
            let Ok(node) = self.get(ino) else { break };
            parts.push(node.meta.name.to_vec());
            if parts.len() > 4096 {
                break;
            }
            ino = node.meta.parent;
        }
        parts.reverse();
        parts
    }

    /// True if `ino` is `ancestor` or lies below it.
    pub fn is_within(&self, mut ino: u64, ancestor: u64) -> bool {
        // No chain of parents is longer than the table without a cycle, which
        // `check_connected` rules out at recovery.
        for _ in 0..=self.nodes.len() {
            if ino == ancestor {
                return true;
            }
            if ino == ROOT {
                return false;
            }
            match self.get(ino) {
                Ok(n) => ino = n.meta.parent,
                Err(_) => return false,
            }
        }
        false
    }

    /// Every linked inode, parents before children and each directory's entries in
    /// listing order: the order a checkpoint stores them, so that loading can link each
    /// one into its already-loaded parent. Nodes, not numbers: each is looked up once.
    pub fn walk(&self) -> Vec<&Node> {
        let mut out = Vec::with_capacity(self.nodes.len());
        out.extend(self.nodes.get(&ROOT).map(|n| &**n));
        let mut i = 0;
        while i < out.len() {
            let dir = out[i];
            out.extend(self.first_names(dir));
            i += 1;
        }
        out
    }

    /// Recovery's last check: every inode hangs from the root. A damaged log (its frames
    /// intact) could leave inodes outside, in a cycle of directories or under a parent
    /// that is not a directory; serving such a tree could loop forever, so it is refused.
    pub fn check_connected(&self) -> Result<()> {
        let reached = self.walk().len();
        if reached == self.nodes.len() {
            return Ok(());
        }
        Err(Error::Corrupt(format!(
            "{} of {} inodes do not hang from the root (a cycle of directories or a parent \
             that is not a directory)",
            self.nodes.len() - reached,
            self.nodes.len()
        )))
    }

    /// Whether any entry below directory `ino` is a name of a file with several.
    pub fn links_below(&self, ino: u64) -> bool {
        if self.links.is_empty() {
            return false;
        }
        let mut stack = vec![ino];
        while let Some(d) = stack.pop() {
            let Ok(dir) = self.dir(d) else { continue };
            for &child in dir.order.values() {
                if self.links.contains_key(&child) {
                    return true;
                }
                stack.push(child);
            }
        }
        false
    }

    /// Every inode below `ino` (not `ino` itself).
    pub fn descendants(&self, ino: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut stack: Vec<&Node> = self.get(ino).into_iter().collect();
        while let Some(d) = stack.pop() {
            for child in self.first_names(d) {
                out.push(child.meta.ino);
                stack.push(child);
            }
        }
        out
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn meta(ino: u64, parent: u64, name: &str, kind: Kind) -> Meta {
        Meta {
            ino,
            parent,
            name: name.as_bytes().into(),
            kind,
            perm: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            atime: Ts::default(),
            mtime: Ts::default(),
            ctime: Ts::default(),
            tier: Tier::Hot,
            tag: 0,
            extra: None,
        }
    }

    #[test]
    fn directories_follow_upserts_and_deletes() {
        let mut t = Tree::default();
        t.upsert(meta(ROOT, ROOT, "", Kind::Dir), None);
        t.upsert(meta(2, ROOT, "a", Kind::Dir), None);
        t.upsert(meta(3, 2, "f", Kind::File), None);
        assert_eq!(t.child(2, b"f").ok(), Some(3));
        assert_eq!(t.dir(ROOT).map(|d| d.subdirs).ok(), Some(1));
        // rename f -> ROOT/g
        t.upsert(meta(3, ROOT, "g", Kind::File), None);
        assert!(t.child(2, b"f").is_err());
        assert_eq!(t.child(ROOT, b"g").ok(), Some(3));
        assert_eq!(t.path(3), vec![b"g".to_vec()]);
        assert!(t.is_within(3, ROOT) && !t.is_within(3, 2));
        t.delete(3);
        assert!(t.child(ROOT, b"g").is_err());
        assert!(t.get(3).is_err());
        assert_eq!(t.next_ino, 4);
    }

    #[test]
    fn cookies_stay_stable_when_others_leave() {
        let mut t = Tree::default();
        t.upsert(meta(ROOT, ROOT, "", Kind::Dir), None);
        for i in 0..10 {
            t.upsert(meta(10 + i, ROOT, &format!("n{i}"), Kind::File), None);
        }
        let before: Vec<(u64, u64)> = t
            .dir(ROOT)
            .map(|d| d.order.iter().map(|(c, i)| (*c, *i)).collect())
            .unwrap_or_default();
        t.delete(12);
        let after: Vec<(u64, u64)> = t
            .dir(ROOT)
            .map(|d| d.order.iter().map(|(c, i)| (*c, *i)).collect())
            .unwrap_or_default();
        let expected: Vec<(u64, u64)> = before.into_iter().filter(|(_, i)| *i != 12).collect();
        assert_eq!(after, expected);
    }

    #[test]
    fn open_nodes_survive_unlink_as_orphans() {
        let mut t = Tree::default();
        t.upsert(meta(ROOT, ROOT, "", Kind::Dir), None);
        t.upsert(meta(5, ROOT, "f", Kind::File), None);
        if let Ok(n) = t.get_mut(5) {
            n.open = 1;
        }
        t.delete(5);
        assert!(t.get(5).is_ok() && !t.is_linked(5));
        if let Ok(n) = t.get_mut(5) {
            n.open = 0;
        }
        t.release_orphan(5);
        assert!(t.get(5).is_err());
    }

    #[test]
    fn timestamps_before_the_epoch_round_trip() {
        let t = Ts {
            secs: -5,
            nanos: 250,
        };
        assert_eq!(Ts::from(t.to_system()), t);
        let u = Ts {
            secs: 1_700_000_000,
            nanos: 999,
        };
        assert_eq!(Ts::from(u.to_system()), u);
    }

    /// The layout written before `Extra` existed; logs and checkpoints hold it.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Stored {
        ino: u64,
        parent: u64,
        name: Box<[u8]>,
        kind: Kind,
        perm: u16,
        uid: u32,
        gid: u32,
        size: u64,
        atime: Ts,
        mtime: Ts,
        ctime: Ts,
        tier: Tier,
        tag: u8,
        xattrs: Box<[(Vec<u8>, Vec<u8>)]>,
        target: Box<[u8]>,
    }

    #[test]
    fn meta_keeps_its_stored_layout() {
        let cfg = bincode::config::standard();
        let mut link = meta(7, 1, "link", Kind::Symlink);
        link.extra = Extra::boxed(
            vec![(b"user.a".to_vec(), b"1".to_vec())],
            (*b"target").into(),
        );
        for m in [meta(5, 1, "plain.json", Kind::File), link] {
            let bytes = bincode::serde::encode_to_vec(&m, cfg).expect("encode");
            let (old, _): (Stored, usize) =
                bincode::serde::decode_from_slice(&bytes, cfg).expect("decode as stored");
            assert_eq!(&*old.name, &*m.name);
            assert_eq!(&*old.xattrs, m.xattrs());
            assert_eq!(&*old.target, m.target());
            let again = bincode::serde::encode_to_vec(&old, cfg).expect("encode stored");
            assert_eq!(again, bytes, "same bytes both ways");
            let (back, _): (Meta, usize) =
                bincode::serde::decode_from_slice(&again, cfg).expect("decode");
            assert_eq!(back, m);
        }
        assert_eq!(
            meta(5, 1, "x", Kind::File).extra,
            None,
            "no box when there is nothing"
        );
    }
}
