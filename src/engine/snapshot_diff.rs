//! What changed from one snapshot to a later one (an incremental backup): entries made
//! or changed, and paths removed. Content is compared by where it lives: a snapshot
//! shares unchanged content with the one before, so an unchanged file points at the same
//! place (a file whose content a checkpoint moved counts as changed, which is safe).

use std::collections::HashMap;

use super::snapshots::Frozen;
use super::tree::{Node, ROOT};

/// An incremental change set: `changed` are inodes of the later snapshot, parents before
/// children; `deleted` are paths of the earlier one (a directory once, not what is in it).
pub struct Changes {
    pub changed: Vec<u64>,
    pub deleted: Vec<Vec<Vec<u8>>>,
}

fn same(a: &Node, b: &Node) -> bool {
    let (m, o) = (&a.meta, &b.meta);
    m.kind == o.kind
        && m.perm == o.perm
        && m.uid == o.uid
        && m.gid == o.gid
        && m.mtime == o.mtime
        && m.size == o.size
        && m.target() == o.target()
        && m.rdev() == o.rdev()
        && (a.dir.is_some() || a.loc == b.loc)
}

impl Frozen {
    /// What changed from `earlier` to this snapshot.
    pub fn changes_since(&self, earlier: &Frozen) -> Changes {
        let (now, was) = (self.tree(), earlier.tree());
        let mut changed = Vec::new();
        let mut deleted = Vec::new();
        // Directories present in both, this snapshot's inode to the earlier one's.
        let mut twin: HashMap<u64, u64> = HashMap::from([(ROOT, ROOT)]);
        for n in now.walk() {
            let ino = n.meta.ino;
            let other = if ino == ROOT {
                was.get(ROOT).ok()
            } else {
                twin.get(&n.meta.parent)
                    .and_then(|&dir| was.child(dir, &n.meta.name).ok())
                    .and_then(|i| was.get(i).ok())
            };
            match other {
                Some(o) if o.meta.kind == n.meta.kind => {
                    if n.dir.is_some() {
                        twin.insert(ino, o.meta.ino);
                    }
                    if !same(n, o) {
                        changed.push(ino);
                    }
                }
                // Another kind under the same name: the old goes first.
                Some(o) => {
                    deleted.push(was.path(o.meta.ino));
                    changed.push(ino);
                }
                None => changed.push(ino),
            }
        }
        let back: HashMap<u64, u64> = twin.iter().map(|(&a, &b)| (b, a)).collect();
        for o in was.walk() {
            if o.meta.ino == ROOT {
                continue;
            }
            // Below a directory gone (or replaced) there is nothing more to list.
            let Some(&dir) = back.get(&o.meta.parent) else {
                continue;
            };
            if now.child(dir, &o.meta.name).is_err() {
                deleted.push(was.path(o.meta.ino));
            }
        }
        Changes { changed, deleted }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Engine;
    use crate::engine::codec::Tier;
    use crate::engine::testutil::{file, new_universe, put};
    use crate::engine::tree::ROOT;
    use crate::engine::{NewNode, tree::Kind};

    fn names(e: &Engine, f: &super::Frozen, inos: &[u64]) -> Vec<String> {
        let _ = e;
        inos.iter()
            .map(|&i| crate::namespace::join(&f.path(i)))
            .collect()
    }

    #[test]
    fn changes_are_what_was_made_changed_or_removed_and_nothing_else() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let dir = |parent, name: &str| {
            let new = NewNode {
                kind: Kind::Dir,
                ..NewNode::root_file()
            };
            e.create(parent, name.as_bytes(), new).expect("mkdir").ino
        };
        let (keep, change, gone) = (file(&e, "keep"), file(&e, "change"), file(&e, "gone"));
        for (ino, body) in [(keep, &b"same"[..]), (change, b"before"), (gone, b"x")] {
            put(&e, ino, body);
        }
        let old_dir = dir(ROOT, "old_dir");
        let inner = e
            .create(old_dir, b"inner", NewNode::root_file())
            .expect("f")
            .ino;
        put(&e, inner, b"y");
        let first = e.take_snapshot("first", &[]).expect("snapshot").id;
        put(&e, change, b"after");
        e.remove(ROOT, b"gone", false).expect("rm");
        e.remove(old_dir, b"inner", false).expect("rm");
        e.remove(ROOT, b"old_dir", true).expect("rmdir");
        let new_dir = dir(ROOT, "new_dir");
        let made = e
            .create(new_dir, b"made", NewNode::root_file())
            .expect("f")
            .ino;
        put(&e, made, b"z");
        // A checkpoint between the two moves nothing the diff would see as a change.
        let second = e.take_snapshot("second", &[]).expect("snapshot").id;
        let (a, b) = (e.frozen(first).expect("a"), e.frozen(second).expect("b"));
        let c = b.changes_since(&a);
        let mut changed = names(&e, &b, &c.changed);
        changed.retain(|n| !n.is_empty());
        assert_eq!(changed, ["change", "new_dir", "new_dir/made"]);
        let mut deleted: Vec<String> = c
            .deleted
            .iter()
            .map(|p| crate::namespace::join(p))
            .collect();
        deleted.sort();
        assert_eq!(deleted, ["gone", "old_dir"]);
        // Nothing changed: nothing listed, the root's time apart.
        let third = e.take_snapshot("third", &[]).expect("snapshot").id;
        let c = e.frozen(third).expect("c").changes_since(&b);
        assert!(
            c.changed.is_empty() && c.deleted.is_empty(),
            "{:?}",
            names(&e, &b, &c.changed)
        );
    }
}
