//! Hard links: a file's further names. The first name stays in `Meta`; the others are
//! logged whole (`Op::Links`) whenever they change. All of a file's names share its
//! content, so they share one tier and one region (and, above, one rule).

use super::meta_ops::{attr_of, check_name, move_ops, touch_dirs};
use super::record::Op;
use super::tree::{Kind, Meta, Tree, Ts};
use super::{Attr, Engine, lock};
use crate::error::{Error, Result};

impl Engine {
    /// Gives file `ino` one more name, `newparent/newname` (link(2)). Its names share
    /// one tier and region: the content is stored once, where the tier keeps it.
    pub fn link(&self, ino: u64, newparent: u64, newname: &[u8]) -> Result<Attr> {
        check_name(newname)?;
        let mut tree = lock(&self.tree);
        let node = tree.get(ino)?;
        if node.meta.kind == Kind::Dir {
            return Err(Error::NotPermitted("hard links to directories"));
        }
        if !tree.is_linked(ino) {
            return Err(Error::NotFound);
        }
        let p = tree.get(newparent)?;
        if p.dir.is_none() {
            return Err(Error::NotDir);
        }
        if !tree.is_linked(newparent) {
            return Err(Error::NotFound);
        }
        same_shard(&node.meta, &p.meta)?;
        if tree.child(newparent, newname).is_ok() {
            return Err(Error::Exists);
        }
        let now = Ts::now();
        let mut names = names_of(&tree, ino);
        names.push((newparent, newname.to_vec()));
        let mut meta = node.meta.clone();
        meta.ctime = now;
        let tier = meta.tier;
        let mut ops = vec![Op::Links { ino, names }, Op::keep(meta)];
        ops.extend(touch_dirs(&tree, [newparent, newparent], now)?);
        let lsn = self.log(&mut tree, ops, &[], tier)?;
        let attr = attr_of(&tree, tree.get(ino)?);
        drop(tree);
        self.wait(lsn)?;
        Ok(attr)
    }
}

/// A file's names share its content, stored once in one tier's shard and checked by one
/// region: a name in another tier or region is another device (`EXDEV`).
fn same_shard(file: &Meta, dir: &Meta) -> Result<()> {
    if file.tier != dir.tier || file.tag != dir.tag {
        return Err(Error::CrossDevice(
            "a file's hard links stay in its tier and region",
        ));
    }
    Ok(())
}

/// The further names of `ino` as a `Op::Links` states them.
fn names_of(tree: &Tree, ino: u64) -> Vec<(u64, Vec<u8>)> {
    tree.links(ino)
        .iter()
        .map(|l| (l.parent, l.name.to_vec()))
        .collect()
}

/// The ops that take the name `parent/name` from `ino`: the inode goes with its last
/// name; otherwise its first name passes to a link when the first goes.
pub(super) fn unname_ops(
    tree: &Tree,
    ino: u64,
    (parent, name): (u64, &[u8]),
    now: Ts,
) -> Result<Vec<Op>> {
    let mut names = names_of(tree, ino);
    if names.is_empty() {
        return Ok(vec![Op::Delete { ino }]);
    }
    let mut meta = tree.get(ino)?.meta.clone();
    meta.ctime = now;
    if meta.parent == parent && *meta.name == *name {
        let (p, n) = names.remove(0);
        meta.parent = p;
        meta.name = n.into();
    } else {
        names.retain(|(p, n)| !(*p == parent && n == name));
    }
    Ok(vec![Op::Links { ino, names }, Op::keep(meta)])
}

/// The ops that move the name `from` of `ino` to `to`. A file with links moves only that
/// name, and only within its tier and region; anything else moves as `move_ops` says.
pub(super) fn rename_ops(
    tree: &Tree,
    ino: u64,
    from: (u64, &[u8]),
    to: (u64, &[u8]),
    now: Ts,
) -> Result<Vec<Op>> {
    let mut names = names_of(tree, ino);
    if names.is_empty() {
        return move_ops(tree, ino, to, now);
    }
    let mut meta = tree.get(ino)?.meta.clone();
    same_shard(&meta, &tree.get(to.0)?.meta)?;
    meta.ctime = now;
    if meta.parent == from.0 && *meta.name == *from.1 {
        meta.parent = to.0;
        meta.name = to.1.into();
    } else {
        for n in names
            .iter_mut()
            .filter(|(p, n)| *p == from.0 && n == from.1)
        {
            *n = (to.0, to.1.to_vec());
        }
    }
    Ok(vec![Op::Links { ino, names }, Op::keep(meta)])
}

#[cfg(test)]
mod tests {
    use crate::engine::codec::Tier;
    use crate::engine::testutil::{file, get, new_universe, put, settings};
    use crate::engine::tree::ROOT;
    use crate::engine::{Engine, NewNode};
    use crate::error::Error;

    fn names(e: &Engine, dir: u64) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = e
            .readdir(dir, 0, 1000)
            .expect("readdir")
            .into_iter()
            .map(|d| (String::from_utf8_lossy(&d.name).into_owned(), d.ino))
            .collect();
        out.sort();
        out
    }

    fn mkdir(e: &Engine, parent: u64, name: &str, tier: Option<Tier>) -> u64 {
        e.create(parent, name.as_bytes(), NewNode::root_dir(tier))
            .expect("mkdir")
            .ino
    }

    #[test]
    fn names_share_content_and_count_until_the_last_goes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "a");
        put(&e, f, b"one");
        let d = mkdir(&e, ROOT, "d", None);
        assert_eq!(e.link(f, ROOT, b"b").expect("link").nlink, 2);
        assert_eq!(e.link(f, d, b"c").expect("link").nlink, 3);
        assert_eq!(e.lookup(d, b"c").expect("lookup").ino, f);
        assert_eq!(
            names(&e, ROOT),
            [("a".into(), f), ("b".into(), f), ("d".into(), d)]
        );
        put(&e, f, b"two");
        assert_eq!(get(&e, e.lookup(d, b"c").expect("c").ino), b"two");
        // The first name goes: a link takes its place.
        e.remove(ROOT, b"a", false).expect("rm a");
        assert_eq!(e.getattr(f).expect("attr").nlink, 2);
        assert_eq!(names(&e, ROOT), [("b".into(), f), ("d".into(), d)]);
        e.remove(d, b"c", false).expect("rm c");
        assert_eq!(e.getattr(f).expect("attr").nlink, 1);
        assert!(names(&e, d).is_empty());
        e.remove(ROOT, b"b", false).expect("rm b");
        assert!(matches!(e.getattr(f), Err(Error::NotFound)));
    }

    #[test]
    fn links_survive_replay_and_checkpoints() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (f, d);
        {
            let e = new_universe(tmp.path(), Tier::Hot);
            d = mkdir(&e, ROOT, "d", None);
            f = file(&e, "a");
            put(&e, f, b"shared");
            e.link(f, d, b"x").expect("link");
            e.link(f, d, b"y").expect("link");
        }
        let expect = |e: &Engine| {
            assert_eq!(e.getattr(f).expect("attr").nlink, 3);
            assert_eq!(names(e, d), [("x".into(), f), ("y".into(), f)]);
            assert_eq!(get(e, e.lookup(d, b"y").expect("y").ino), b"shared");
        };
        let e = Engine::open(tmp.path(), settings()).expect("replayed");
        expect(&e);
        e.checkpoint().expect("checkpoint");
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("from the checkpoint");
        expect(&e);
        // The first name, in a directory that comes after the links' in the checkpoint.
        e.remove(ROOT, b"a", false).expect("rm");
        e.checkpoint().expect("checkpoint");
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert_eq!(e.getattr(f).expect("attr").nlink, 2);
        assert_eq!(names(&e, d), [("x".into(), f), ("y".into(), f)]);
    }

    #[test]
    fn renames_move_one_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let f = file(&e, "a");
        e.link(f, ROOT, b"b").expect("link");
        // Onto another name of the same file: nothing happens (POSIX).
        e.rename(ROOT, b"a", ROOT, b"b", false).expect("rename");
        assert_eq!(names(&e, ROOT), [("a".into(), f), ("b".into(), f)]);
        e.rename(ROOT, b"b", ROOT, b"c", false)
            .expect("rename link");
        assert_eq!(names(&e, ROOT), [("a".into(), f), ("c".into(), f)]);
        // Replacing a name of a linked file takes only that name.
        let g = file(&e, "g");
        e.rename(ROOT, b"g", ROOT, b"a", false).expect("replace");
        assert_eq!(names(&e, ROOT), [("a".into(), g), ("c".into(), f)]);
        assert_eq!(e.getattr(f).expect("attr").nlink, 1);
        // Exchange of a link with another file.
        e.link(f, ROOT, b"d").expect("link");
        e.exchange(ROOT, b"d", ROOT, b"a").expect("exchange");
        assert_eq!(
            names(&e, ROOT),
            [("a".into(), f), ("c".into(), f), ("d".into(), g)]
        );
        drop(e);
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert_eq!(
            names(&e, ROOT),
            [("a".into(), f), ("c".into(), f), ("d".into(), g)]
        );
    }

    #[test]
    fn names_stay_in_one_tier() {
        let tmp = tempfile::tempdir().expect("tmp");
        let e = new_universe(tmp.path(), Tier::Hot);
        let warm = mkdir(&e, ROOT, "warm", Some(Tier::Warm));
        let hot = mkdir(&e, ROOT, "hot", None);
        let f = file(&e, "a");
        fn cross<T>(r: Result<T, Error>) -> bool {
            matches!(r, Err(Error::CrossDevice(_)))
        }
        assert!(cross(e.link(f, warm, b"b")), "link into another tier");
        e.link(f, hot, b"b").expect("link");
        assert!(
            cross(e.rename(ROOT, b"a", warm, b"a", false)),
            "a linked file's move"
        );
        assert!(
            cross(e.rename(ROOT, b"hot", warm, b"hot", false)),
            "its directory's"
        );
        assert!(cross(e.set_tier(f, Tier::Cold)), "a linked file's tier");
        assert!(cross(e.set_tier(hot, Tier::Cold)), "its directory's tier");
        e.remove(ROOT, b"a", false).expect("one name left");
        e.rename(ROOT, b"hot", warm, b"hot", false)
            .expect("moves and re-tiers");
        assert_eq!(e.getattr(f).expect("attr").tier, Tier::Warm);
        assert!(matches!(
            e.link(hot, ROOT, b"dirlink"),
            Err(Error::NotPermitted(_))
        ));
        assert!(matches!(e.link(f, hot, b"b"), Err(Error::Exists)));
        // Once its one name is left, its tier is chosen where it is, with its directory's.
        e.set_tier(ROOT, Tier::Hot).expect("unchanged");
        e.set_tier(warm, Tier::Cold).expect("a directory's tier");
        assert_eq!(e.getattr(warm).expect("attr").tier, Tier::Cold);
        assert_eq!(e.getattr(hot).expect("attr").tier, Tier::Cold);
        assert_eq!(e.getattr(f).expect("attr").tier, Tier::Cold);
        let g = e
            .create(hot, b"new", NewNode::root_file())
            .expect("create")
            .ino;
        assert_eq!(e.getattr(g).expect("attr").tier, Tier::Cold, "born there");
    }
}
