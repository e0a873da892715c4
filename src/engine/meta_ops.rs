//! Metadata operations: the namespace (lookup, create, remove, rename, readdir) and
//! attributes.

use super::codec::Tier;
use super::links::{rename_ops, unname_ops};
use super::record::{Content, Op};
use super::tree::{self, Extra, Kind, Meta, ROOT, Tree, Ts};
use super::wal::Durability;
use super::{Attr, DirEntry, Engine, NewNode, SetAttr, lock};
use crate::error::{Error, Result};

pub const NAME_MAX: usize = 255;
/// The largest file: 16 TiB, what ext4 (the usual data disk) holds in one file, so that a
/// draft's staging file can always hold it. A write or truncate past it is `EFBIG`.
pub const MAX_FILE_SIZE: u64 = 1 << 44;

pub(super) fn attr_of(tree: &Tree, node: &tree::Node) -> Attr {
    let m = &node.meta;
    let nlink = match &node.dir {
        Some(d) => 2 + d.subdirs,
        None => tree.nlink(m.ino),
    };
    Attr {
        ino: m.ino,
        kind: m.kind,
        perm: m.perm,
        uid: m.uid,
        gid: m.gid,
        size: m.size,
        atime: m.atime,
        mtime: m.mtime,
        ctime: m.ctime,
        nlink,
        tier: m.tier,
        tag: m.tag,
        rdev: m.rdev(),
    }
}

pub(super) fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Error::InvalidArgument("bad file name"));
    }
    Ok(())
}

impl Engine {
    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        let mut attr = {
            let tree = lock(&self.tree);
            let node = tree.get(ino)?;
            attr_of(&tree, node)
        };
        // A writer sees its own writes: size, mtime and ctime follow the draft. A refused draft
        // is not the file: until it is written again or released, the file is the
        // committed version (a `stat` right after the failed close, before the kernel's
        // asynchronous release reaches us, must not show the refused size).
        let draft = lock(&self.drafts).map.get(&ino).cloned();
        if let Some(d) = draft {
            let d = lock(&d);
            if d.refused.is_none() {
                attr.size = d.len();
                attr.mtime = d.mtime;
                if d.dirty {
                    attr.ctime = d.ctime;
                }
            }
        }
        Ok(attr)
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        let ino = lock(&self.tree).child(parent, name)?;
        self.getattr(ino)
    }

    pub fn create(&self, parent: u64, name: &[u8], new: NewNode<'_>) -> Result<Attr> {
        check_name(name)?;
        let mut tree = lock(&self.tree);
        let p = tree.get(parent)?;
        if p.dir.is_none() {
            return Err(Error::NotDir);
        }
        if !tree.is_linked(parent) {
            return Err(Error::NotFound);
        }
        if tree.child(parent, name).is_ok() {
            return Err(Error::Exists);
        }
        let (tier, tag) = (
            new.tier.unwrap_or(p.meta.tier),
            new.tag.unwrap_or(p.meta.tag),
        );
        let mut pmeta = p.meta.clone();
        let ino = tree.alloc_ino();
        let meta = new_meta(ino, (parent, name), &new, (tier, tag));
        let now = meta.ctime;
        pmeta.mtime = now;
        pmeta.ctime = now;
        let ops = vec![
            Op::Upsert {
                meta,
                content: Content::Empty,
            },
            Op::keep(pmeta),
        ];
        let lsn = self.log(&mut tree, ops, &[], tier)?;
        let attr = attr_of(&tree, tree.get(ino)?);
        drop(tree);
        // A new file is made durable by the close of the handle that created it (see
        // `settle`), which a strict tier's commit does anyway: one fsync per file, not two.
        if new.kind != Kind::File {
            self.wait(lsn)?;
        }
        Ok(attr)
    }

    /// Makes everything logged so far durable if `ino` lives in a tier whose changes must be
    /// durable at once (hot): closing a file there, even unwritten, acknowledges it.
    pub fn settle(&self, ino: u64) -> Result<()> {
        let tier = match lock(&self.tree).get(ino) {
            Ok(n) => n.meta.tier,
            // Gone already: nothing of it is left to make durable.
            Err(_) => return Ok(()),
        };
        match self.durability(tier) {
            Durability::Sync => self.sync_all(),
            Durability::Within(_) => Ok(()),
        }
    }

    /// The root directory, made once when the universe is new.
    pub fn create_root(&self, perm: u16, tier: Tier, tag: u8) -> Result<()> {
        let mut tree = lock(&self.tree);
        if tree.get(ROOT).is_ok() {
            return Ok(());
        }
        let root = NewNode {
            perm,
            tag: Some(tag),
            ..NewNode::root_dir(Some(tier))
        };
        let meta = new_meta(ROOT, (ROOT, b""), &root, (tier, tag));
        let lsn = self.log_upsert(&mut tree, meta, Content::Empty, Tier::Hot)?;
        drop(tree);
        self.wait(lsn)
    }

    /// Unlinks a file or symlink (`dir == false`) or removes an empty directory.
    pub fn remove(&self, parent: u64, name: &[u8], dir: bool) -> Result<()> {
        let mut tree = lock(&self.tree);
        let ino = tree.child(parent, name)?;
        let node = tree.get(ino)?;
        check_removable(node, dir)?;
        let tier = node.meta.tier;
        let now = Ts::now();
        let mut ops = unname_ops(&tree, ino, (parent, name), now)?;
        ops.extend(touch_dirs(&tree, [parent, parent], now)?);
        let lsn = self.log(&mut tree, ops, &[], tier)?;
        drop(tree);
        self.wait(lsn)
    }

    /// Renames; an existing target is replaced atomically (one log record). Moving into
    /// another tier re-tiers the node and everything below it.
    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        noreplace: bool,
    ) -> Result<()> {
        check_name(newname)?;
        let mut tree = lock(&self.tree);
        let ino = tree.child(parent, name)?;
        let src_is_dir = tree.get(ino)?.meta.kind == Kind::Dir;
        check_move(&tree, ino, newparent)?;
        let now = Ts::now();
        let mut ops = Vec::new();
        if let Ok(dst) = tree.child(newparent, newname) {
            if dst == ino {
                return Ok(());
            }
            if noreplace {
                return Err(Error::Exists);
            }
            check_removable(tree.get(dst)?, src_is_dir)?;
            ops = unname_ops(&tree, dst, (newparent, newname), now)?;
        }
        ops.extend(rename_ops(
            &tree,
            ino,
            (parent, name),
            (newparent, newname),
            now,
        )?);
        ops.extend(touch_dirs(&tree, [parent, newparent], now)?);
        let tier = self.stricter(&tree, [ino, newparent]);
        let lsn = self.log(&mut tree, ops, &[], tier)?;
        drop(tree);
        self.wait(lsn)
    }

    /// Puts `ino`, and everything below it, in `tier` where it is (one log record); new
    /// files made below it are born there. A hard-linked file stays in its tier, as in a
    /// rename.
    pub fn set_tier(&self, ino: u64, tier: Tier) -> Result<()> {
        let mut tree = lock(&self.tree);
        let mut meta = tree.get(ino)?.meta.clone();
        if meta.tier == tier {
            return Ok(());
        }
        if meta.kind != Kind::Dir && tree.nlink(ino) > 1 {
            return Err(Error::CrossDevice("a hard-linked file stays in its tier"));
        }
        let (from, tag) = (meta.tier, meta.tag);
        meta.tier = tier;
        meta.ctime = Ts::now();
        let mut ops = vec![Op::keep(meta)];
        ops.extend(below_ops(&tree, ino, (tier, tag))?);
        let lsn = self.log(&mut tree, ops, &[], self.stricter_of([from, tier]))?;
        drop(tree);
        self.wait(lsn)
    }

    /// Swaps two entries atomically (`RENAME_EXCHANGE`): one log record.
    pub fn exchange(&self, parent: u64, name: &[u8], newparent: u64, newname: &[u8]) -> Result<()> {
        let mut tree = lock(&self.tree);
        let a = tree.child(parent, name)?;
        let b = tree.child(newparent, newname)?;
        if a == b {
            return Ok(());
        }
        check_move(&tree, a, newparent)?;
        check_move(&tree, b, parent)?;
        let now = Ts::now();
        // Both names are taken until the record is applied: `a` first passes through a
        // name no user can give (it holds a NUL), so each op of the record, replayed in
        // order, is a plain move. Each op states a whole new state, so all three are
        // computed from the tree as it is now; the first moves only the name (the
        // subtree follows in the third).
        let mut ops = rename_ops(&tree, a, (parent, name), (newparent, EXCHANGE_SLOT), now)?;
        ops.retain(|op| op.ino() == a);
        ops.extend(rename_ops(
            &tree,
            b,
            (newparent, newname),
            (parent, name),
            now,
        )?);
        ops.extend(rename_ops(
            &tree,
            a,
            (parent, name),
            (newparent, newname),
            now,
        )?);
        ops.extend(touch_dirs(&tree, [parent, newparent], now)?);
        let tier = self.stricter(&tree, [a, b]);
        let lsn = self.log(&mut tree, ops, &[], tier)?;
        drop(tree);
        self.wait(lsn)
    }

    /// Of the tiers of `inos`, the one whose changes must be durable first: it decides
    /// when a move touching them all is durable.
    fn stricter(&self, tree: &Tree, inos: [u64; 2]) -> Tier {
        self.stricter_of(inos.map(|i| tree.get(i).map_or(Tier::Hot, |n| n.meta.tier)))
    }

    /// Of two tiers, the one whose changes must be durable sooner.
    fn stricter_of(&self, tiers: [Tier; 2]) -> Tier {
        if self.durability(tiers[0]) == Durability::Sync {
            tiers[0]
        } else {
            tiers[1]
        }
    }

    pub fn setattr(&self, ino: u64, set: SetAttr) -> Result<Attr> {
        let mut tree = lock(&self.tree);
        let mut meta = tree.get(ino)?.meta.clone();
        if let Some(p) = set.perm {
            meta.perm = p & 0o7777;
        }
        if let Some(u) = set.uid {
            meta.uid = u;
        }
        if let Some(g) = set.gid {
            meta.gid = g;
        }
        if let Some(a) = set.atime {
            meta.atime = a;
        }
        if let Some(m) = set.mtime {
            meta.mtime = m;
        }
        meta.ctime = Ts::now();
        let tier = meta.tier;
        let linked = tree.is_linked(ino);
        let lsn = if linked {
            self.log_upsert(&mut tree, meta, Content::Keep, tier)?
        } else {
            tree.get_mut(ino)?.meta = meta;
            None
        };
        drop(tree);
        // An explicit mtime also applies to an open draft (`touch -d` while open, `cp -a`).
        // The map's lock goes before the draft's is taken (the order on `drafts`).
        let draft = lock(&self.drafts).map.get(&ino).cloned();
        if let (Some(m), Some(d)) = (set.mtime, draft) {
            lock(&d).mtime = m;
        }
        self.wait(lsn)?;
        self.getattr(ino)
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let tree = lock(&self.tree);
        let node = tree.get(ino)?;
        if node.meta.kind != Kind::Symlink {
            return Err(Error::InvalidArgument("not a symlink"));
        }
        Ok(node.meta.target().to_vec())
    }

    /// Directory entries after `cookie` (their `offset` is their cookie), at most `max`.
    pub fn readdir(&self, ino: u64, cookie: u64, max: usize) -> Result<Vec<DirEntry>> {
        let tree = lock(&self.tree);
        let dir = tree.dir(ino)?;
        let mut out = Vec::with_capacity(max.min(dir.order.len()));
        for (&c, &child) in dir.order.range(cookie + 1..).take(max) {
            if let Ok(n) = tree.get(child)
                && let Some(name) = tree.entry_name(n, ino, c)
            {
                out.push(DirEntry {
                    offset: c,
                    ino: child,
                    kind: n.meta.kind,
                    name: name.to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// The directory holding `ino`, and its name there.
    pub fn entry_of(&self, ino: u64) -> Result<(u64, Vec<u8>)> {
        let tree = lock(&self.tree);
        let m = &tree.get(ino)?.meta;
        Ok((m.parent, m.name.to_vec()))
    }

    /// Moves `ino` from region tag `from` to `to`, with everything below it that inherited
    /// `from` (a subtree of another region keeps its own). Returns how many inodes moved.
    pub fn retag(&self, ino: u64, from: u8, to: u8) -> Result<usize> {
        let mut tree = lock(&self.tree);
        let mut ops = Vec::new();
        let mut todo = vec![ino];
        while let Some(i) = todo.pop() {
            let n = tree.get(i)?;
            if n.meta.tag != from {
                continue;
            }
            let mut meta = n.meta.clone();
            meta.tag = to;
            ops.push(Op::keep(meta));
            if let Some(d) = &n.dir {
                todo.extend(d.order.values());
            }
        }
        let moved = ops.len();
        let mut ops = ops.into_iter();
        let mut lsn = None;
        loop {
            // Bounded records: a large subtree is moved in several.
            let batch: Vec<Op> = ops.by_ref().take(4096).collect();
            if batch.is_empty() {
                break;
            }
            lsn = self.log(&mut tree, batch, &[], Tier::Hot)?;
        }
        drop(tree);
        self.wait(lsn)?;
        Ok(moved)
    }

    pub fn parent_of(&self, ino: u64) -> Result<u64> {
        Ok(lock(&self.tree).get(ino)?.meta.parent)
    }

    pub fn path_of(&self, ino: u64) -> Vec<Vec<u8>> {
        lock(&self.tree).path(ino)
    }

    pub fn entry_count(&self, ino: u64) -> Result<usize> {
        Ok(lock(&self.tree).dir(ino)?.order.len())
    }
}

/// A new inode's metadata, all its times now.
pub(super) fn new_meta(
    ino: u64,
    (parent, name): (u64, &[u8]),
    new: &NewNode<'_>,
    (tier, tag): (Tier, u8),
) -> Meta {
    let now = Ts::now();
    Meta {
        ino,
        parent,
        name: name.into(),
        kind: new.kind,
        perm: new.perm & 0o7777,
        uid: new.uid,
        gid: new.gid,
        // A symlink's size is its target's length; a device's target is its number.
        size: match new.kind {
            Kind::Symlink => new.target.len() as u64,
            _ => 0,
        },
        atime: now,
        mtime: now,
        ctime: now,
        tier,
        tag,
        extra: Extra::boxed(Vec::new(), new.target.into()),
    }
}

/// The name an exchanged entry holds for the length of one log record.
const EXCHANGE_SLOT: &[u8] = b"\0exchange";

/// `ino` may move into `newparent`: a directory, and not below `ino` itself.
fn check_move(tree: &Tree, ino: u64, newparent: u64) -> Result<()> {
    if tree.get(newparent)?.dir.is_none() {
        return Err(Error::NotDir);
    }
    if tree.get(ino)?.meta.kind == Kind::Dir && tree.is_within(newparent, ino) {
        return Err(Error::InvalidArgument(
            "cannot move a directory into itself",
        ));
    }
    Ok(())
}

/// The ops that move `ino` to `newparent/newname`: its new entry, and its subtree when it
/// changes tier or region.
pub(super) fn move_ops(
    tree: &Tree,
    ino: u64,
    (newparent, newname): (u64, &[u8]),
    now: Ts,
) -> Result<Vec<Op>> {
    let np = &tree.get(newparent)?.meta;
    let (ntier, ntag) = (np.tier, np.tag);
    let mut meta = tree.get(ino)?.meta.clone();
    meta.parent = newparent;
    meta.name = newname.into();
    meta.ctime = now;
    let retier = meta.tier != ntier || meta.tag != ntag;
    meta.tier = ntier;
    meta.tag = ntag;
    let mut ops = vec![Op::keep(meta)];
    if retier {
        ops.extend(below_ops(tree, ino, (ntier, ntag))?);
    }
    Ok(ops)
}

/// The ops that put everything below `ino` in `tier` and region `tag`.
fn below_ops(tree: &Tree, ino: u64, (tier, tag): (Tier, u8)) -> Result<Vec<Op>> {
    if tree.links_below(ino) {
        return Err(Error::CrossDevice(
            "a directory holding hard-linked files stays in its tier and region",
        ));
    }
    let mut ops = Vec::new();
    for child in tree.descendants(ino) {
        let mut m = tree.get(child)?.meta.clone();
        m.tier = tier;
        m.tag = tag;
        ops.push(Op::keep(m));
    }
    Ok(ops)
}

/// The ops that set the mtime and ctime of the directories a move changed.
pub(super) fn touch_dirs(tree: &Tree, [a, b]: [u64; 2], now: Ts) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    for dir in if a == b { vec![a] } else { vec![a, b] } {
        let mut m = tree.get(dir)?.meta.clone();
        m.mtime = now;
        m.ctime = now;
        ops.push(Op::keep(m));
    }
    Ok(ops)
}

/// Whether `node` may go (unlinked, or replaced by a rename): a directory only when `dir`
/// is asked for and it is empty, anything else only when it is not.
fn check_removable(node: &tree::Node, dir: bool) -> Result<()> {
    match (dir, node.meta.kind == Kind::Dir) {
        (true, false) => Err(Error::NotDir),
        (false, true) => Err(Error::IsDir),
        _ if node.dir.as_ref().is_some_and(|d| !d.order.is_empty()) => Err(Error::NotEmpty),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::CommitAt;
    use crate::engine::codec::Tier;
    use crate::engine::draft::Bytes;
    use crate::engine::testutil::{file, new_universe, put};
    use crate::engine::tree::Meta;
    use crate::error::Error;

    #[test]
    fn a_refused_draft_does_not_show_in_the_files_attributes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "f.json");
        put(&e, f, b"{}");
        e.open_handle(f, true).expect("open");
        e.write(f, 0, b"[not json").expect("write");
        assert_eq!(
            e.getattr(f).expect("attr").size,
            9,
            "the writer sees its draft"
        );
        let refuse = |_: &Meta, _: &Bytes<'_>| Err(Error::InvalidRecord("bad".into()));
        assert!(e.commit(f, CommitAt::Close, &refuse).is_err());
        // The handle is not released yet (the kernel releases asynchronously).
        assert_eq!(
            e.getattr(f).expect("attr").size,
            2,
            "the committed size again"
        );
        e.write(f, 9, b"]").expect("write");
        assert_eq!(
            e.getattr(f).expect("attr").size,
            10,
            "written again: the draft"
        );
        e.close_handle(f, true);
    }

    /// Past the largest file a write or truncate is EFBIG from the engine itself, whatever
    /// the data disk would answer for a staging file that large (or an offset that
    /// overflows).
    #[test]
    fn a_file_past_the_largest_size_is_efbig() {
        use crate::engine::MAX_FILE_SIZE;
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "f");
        e.open_handle(f, true).expect("open");
        let too_big = |r: Result<(), Error>| matches!(r, Err(Error::FileTooBig));
        assert!(too_big(e.write(f, MAX_FILE_SIZE, b"x")));
        assert!(too_big(e.write(f, u64::MAX - 1, b"xy")));
        assert!(too_big(e.truncate(f, MAX_FILE_SIZE + 1)));
        assert_eq!(Error::FileTooBig.errno(), libc::EFBIG);
        e.close_handle(f, true);
    }
}
