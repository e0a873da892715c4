//! Snapshots' trees, browsed read-only. A region names the place of a snapshot's tree
//! (`Region::snapshot_root`); its inodes get numbers of their own here: `VIRT | FROZEN`,
//! the snapshot's id, and the inode's number in the snapshot. Anything that would change
//! them answers `EROFS`.

use std::sync::Arc;

use crate::engine::snapshots::Frozen;
use crate::engine::tree::{Kind, ROOT};
use crate::engine::{Attr, DirEntry};
use crate::error::{Error, Result};
use crate::vfs::{VIRT, Vfs};

/// Inodes of snapshots' trees have this bit besides `VIRT`.
const FROZEN: u64 = 1 << 62;
const ID_SHIFT: u32 = 40;
const LOCAL: u64 = (1 << ID_SHIFT) - 1;

/// (snapshot id, inode in it) of a snapshot tree's inode.
pub(super) fn split(ino: u64) -> Option<(u64, u64)> {
    (ino & (VIRT | FROZEN) == VIRT | FROZEN)
        .then_some(((ino & !(VIRT | FROZEN)) >> ID_SHIFT, ino & LOCAL))
}

fn join(id: u64, ino: u64) -> Result<u64> {
    if id >= 1 << (62 - ID_SHIFT) || ino > LOCAL {
        return Err(Error::NotSupported(
            "a snapshot beyond the numbers its inodes can take",
        ));
    }
    Ok(VIRT | FROZEN | id << ID_SHIFT | ino)
}

/// What a change to `ino` (a parent, or the file itself) is refused with when it is not
/// stored: a snapshot's tree is read-only, a generated file is no directory.
pub(super) fn not_stored(ino: u64) -> Error {
    match split(ino) {
        Some(_) => Error::ReadOnlySnapshot,
        None => Error::NotDir,
    }
}

impl Vfs {
    /// Snapshot `id`'s tree, and the inode `ino` names in it.
    fn frozen(&self, ino: u64) -> Result<(Arc<Frozen>, u64)> {
        let (id, local) = split(ino).ok_or(Error::NotFound)?;
        Ok((self.engine.frozen(id)?, local))
    }

    fn frozen_attr(&self, f: &Frozen, mut attr: Attr) -> Result<Attr> {
        attr.ino = join(f.info.id, attr.ino)?;
        Ok(attr)
    }

    /// The root of snapshot `id`'s tree.
    pub(super) fn frozen_root(&self, id: u64) -> Result<Attr> {
        let f = self.engine.frozen(id)?;
        self.frozen_attr(&f, f.getattr(ROOT)?)
    }

    pub(super) fn frozen_getattr(&self, ino: u64) -> Result<Attr> {
        let (f, local) = self.frozen(ino)?;
        self.frozen_attr(&f, f.getattr(local)?)
    }

    pub(super) fn frozen_lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        let (f, local) = self.frozen(parent)?;
        self.frozen_attr(&f, f.lookup(local, name)?)
    }

    /// Entries after `offset`: "." and ".." (offsets 1 and 2), then the tree's entries in
    /// order, each at its listing position + `LISTED`, so that a page starts where the
    /// last ended without listing what came before.
    pub(super) fn frozen_readdir(
        &self,
        ino: u64,
        offset: u64,
        max: usize,
    ) -> Result<Vec<DirEntry>> {
        const LISTED: u64 = 3;
        let (f, local) = self.frozen(ino)?;
        let mut out = Vec::new();
        for (at, name) in [(1, &b"."[..]), (2, b"..")] {
            if offset < at && out.len() < max {
                out.push(DirEntry {
                    offset: at,
                    ino,
                    kind: Kind::Dir,
                    name: name.to_vec(),
                });
            }
        }
        let after = offset.checked_sub(LISTED);
        for (cookie, name, attr) in f.entries(local, after, max - out.len())? {
            out.push(DirEntry {
                offset: cookie.saturating_add(LISTED),
                ino: join(f.info.id, attr.ino)?,
                kind: attr.kind,
                name,
            });
        }
        Ok(out)
    }

    pub(super) fn frozen_readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let (f, local) = self.frozen(ino)?;
        f.readlink(local)
    }

    pub(super) fn frozen_xattrs(&self, ino: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (f, local) = self.frozen(ino)?;
        f.xattrs(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_inode_number_splits_back_and_is_no_generated_file_number() {
        let ino = join(5, 123).expect("fits");
        assert_eq!(split(ino), Some((5, 123)));
        assert_eq!(split(VIRT | 7), None);
        assert_eq!(split(7), None);
        assert!(join(1 << 22, 1).is_err() && join(1, 1 << 40).is_err());
    }
}
