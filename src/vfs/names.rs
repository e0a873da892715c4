//! The namespace: creating, removing, renaming and listing entries. Seed directories are
//! fixed, the root holds exactly the seed's top level, generated files' names are taken.

use crate::engine::tree::{Kind, ROOT};
use crate::engine::{Attr, DirEntry, NewNode, SetAttr};
use crate::error::{Error, Result};
use crate::metrics::Op;
use crate::regions::access::Verb;
use crate::regions::telling::Telling;
use crate::regions::{Dir, Event, Naming, Removal, Tag};
use crate::vfs::guard::Target;
use crate::vfs::{Caller, VIRT, Vfs, frozen, lock};
use std::sync::MutexGuard;

/// What `Vfs::hold` holds while names change.
pub(super) struct Held<'a> {
    _regions: Vec<MutexGuard<'a, ()>>,
    _telling: Telling<'a>,
}

impl Vfs {
    /// Refuses names of generated files, new entries at the root, and what the
    /// directory's region does not let be made there.
    fn check_new_name(&self, dir: &Dir, name: &[u8]) -> Result<()> {
        if dir.ino == ROOT {
            return Err(Error::Protected);
        }
        if self.is_view(dir, name) {
            return Err(Error::ReadOnlyView);
        }
        self.region(dir).may_create(dir, name)
    }

    /// Holds the regions of `dirs` (each once, in tag order) while their names change:
    /// what their checks admitted stays true until the change is made. Until dropped
    /// (after the regions were told), `dirs` count as changing (`Regions::telling`).
    pub(super) fn hold(&self, dirs: &[&Dir]) -> Held<'_> {
        let mut tags: Vec<Tag> = dirs.iter().map(|d| d.tag).collect();
        tags.sort_unstable();
        tags.dedup();
        let inos: Vec<u64> = dirs.iter().map(|d| d.ino).collect();
        Held {
            _regions: tags
                .into_iter()
                .filter_map(|t| self.regions.by_tag(t).hold())
                .collect(),
            _telling: self.regions.telling(&inos),
        }
    }

    /// Asks `dir`'s region whether `name` may change so.
    fn admit(&self, dir: &Dir, name: &[u8], change: Naming<'_>) -> Result<()> {
        self.region(dir).admit(&self.cx(), dir, name, change)
    }

    /// Tells `dir`'s region that its entry `name` changed.
    fn entry_changed(&self, dir: &Dir, name: &[u8]) {
        let cx = self.cx();
        self.region(dir).entry_changed(&cx, dir, name);
        self.regions
            .observe(&cx, &Event::Entry { dir: dir.ino, name });
    }

    /// The stored entry `name` of `parent`; a generated file there is read-only.
    fn stored(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        match self.engine.lookup(parent, name) {
            Ok(_) if self.detached(parent, name).is_some() => Err(Error::NotFound),
            Err(Error::NotFound) if self.view_in(parent, name).is_some() => {
                Err(Error::ReadOnlyView)
            }
            other => other,
        }
    }

    /// A file created under a detached name is the kept file, emptied for its new
    /// content (the commit decides whether the new content replaces the old).
    fn reclaim(
        &self,
        (parent, name): (u64, &[u8]),
        kind: Kind,
        perm: u16,
        who: Caller,
    ) -> Result<Option<Attr>> {
        let Some(ino) = self.detached(parent, name) else {
            return Ok(None);
        };
        if kind != Kind::File {
            return Err(Error::Exists);
        }
        lock(&self.detached).remove(&(parent, name.into()));
        let set = SetAttr {
            perm: Some(perm),
            uid: Some(who.uid),
            gid: Some(who.gid),
            ..SetAttr::default()
        };
        self.engine.setattr(ino, set).map(Some)
    }

    /// Creates an inode with permission bits `mode & !umask`.
    pub(super) fn new_node(
        &self,
        (parent, name): (u64, &[u8]),
        kind: Kind,
        mode: (u32, u32),
        who: Caller,
        target: &[u8],
    ) -> Result<Attr> {
        let op = match kind {
            Kind::Dir => "mkdir",
            Kind::Symlink => "symlink",
            Kind::File => "create",
            _ => "mknod",
        };
        let made = (Target::Name(parent, name), Verb::Write);
        self.audited(op, &[made], || {
            self.make_node((parent, name), kind, mode, who, target)
        })
    }

    fn make_node(
        &self,
        (parent, name): (u64, &[u8]),
        kind: Kind,
        (mode, umask): (u32, u32),
        who: Caller,
        target: &[u8],
    ) -> Result<Attr> {
        if parent & VIRT != 0 {
            return Err(frozen::not_stored(parent));
        }
        let mut perm = (mode & !umask & 0o7777) as u16;
        if let Some(attr) = self.reclaim((parent, name), kind, perm, who)? {
            return Ok(attr);
        }
        let p = self.engine.getattr(parent)?;
        let dir = self.dir_of(&p)?;
        let _held = self.hold(&[&dir]);
        self.check_new_name(&dir, name)?;
        self.admit(&dir, name, Naming::Add(kind))?;
        let mut gid = who.gid;
        // A setgid directory passes its group on, and its setgid bit to subdirectories.
        if p.perm & libc::S_ISGID as u16 != 0 {
            gid = p.gid;
            if kind == Kind::Dir {
                perm |= libc::S_ISGID as u16;
            }
        }
        let made = self.engine.create(
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
        )?;
        self.entry_changed(&dir, name);
        Ok(made)
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

    /// A regular file, or a special file (FIFO, socket, device node) stored as metadata.
    pub fn mknod(
        &self,
        parent: u64,
        name: &[u8],
        (mode, umask): (u32, u32),
        rdev: u32,
        who: Caller,
    ) -> Result<Attr> {
        let kind = match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDev,
            libc::S_IFBLK => Kind::BlockDev,
            _ => return Err(Error::InvalidArgument("unknown file type")),
        };
        let number = rdev.to_le_bytes();
        let target: &[u8] = match kind {
            Kind::CharDev | Kind::BlockDev => &number,
            _ => &[],
        };
        if kind != Kind::File
            && let Ok(dir) = self.dir(parent)
            && self.region(&dir).rule(&dir, name).is_some()
        {
            // Such a name holds content its region checks: only a regular file can.
            return Err(Error::InvalidArgument(
                "a special file cannot take a record's name",
            ));
        }
        let attr = self.new_node((parent, name), kind, (mode, umask), who, target)?;
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
        if frozen::split(ino).is_some() {
            return self.frozen_readlink(ino);
        }
        self.engine.readlink(ino)
    }

    pub fn unlink(&self, parent: u64, name: &[u8], dir: bool) -> Result<()> {
        let _t = self.metrics.time(Op::Remove);
        let op = if dir { "rmdir" } else { "unlink" };
        let gone = (Target::Name(parent, name), Verb::Remove);
        self.audited(op, &[gone], || self.remove_entry(parent, name, dir))
    }

    fn remove_entry(&self, parent: u64, name: &[u8], dir: bool) -> Result<()> {
        if parent & VIRT != 0 {
            return Err(frozen::not_stored(parent));
        }
        let ino = self.stored(parent, name)?.ino;
        if self.is_seed(ino) {
            return Err(Error::Protected);
        }
        let from = self.dir(parent)?;
        if !dir && self.region(&from).removal(&from, name) == Removal::UntilReplaced {
            lock(&self.detached).insert((parent, name.into()), ino);
            return Ok(());
        }
        let _held = self.hold(&[&from]);
        self.admit(&from, name, Naming::Remove)?;
        self.engine.remove(parent, name, dir)?;
        self.entry_changed(&from, name);
        if dir {
            self.views.forget_dir(ino);
        }
        Ok(())
    }

    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<()> {
        let _t = self.metrics.time(Op::Rename);
        let mut targets = vec![
            (Target::Name(parent, name), Verb::Remove),
            (Target::Name(newparent, newname), Verb::Write),
        ];
        if flags & libc::RENAME_EXCHANGE != 0 {
            // The other entry leaves its place for this one's.
            targets.push((Target::Name(newparent, newname), Verb::Remove));
            targets.push((Target::Name(parent, name), Verb::Write));
        }
        self.audited("rename", &targets, || {
            self.rename_entry((parent, name), (newparent, newname), flags)
        })
    }

    fn rename_entry(
        &self,
        (parent, name): (u64, &[u8]),
        (newparent, newname): (u64, &[u8]),
        flags: u32,
    ) -> Result<()> {
        if let Some(p) = [parent, newparent].into_iter().find(|p| p & VIRT != 0) {
            return Err(frozen::not_stored(p));
        }
        if flags & libc::RENAME_WHITEOUT != 0 {
            return Err(Error::NotSupported("RENAME_WHITEOUT"));
        }
        let src = self.stored(parent, name)?;
        if self.is_seed(src.ino) {
            return Err(Error::Protected);
        }
        let (from, to) = (self.dir(parent)?, self.dir(newparent)?);
        let _held = self.hold(&[&from, &to]);
        if flags & libc::RENAME_EXCHANGE != 0 {
            return self.exchange((&from, name, &src), (&to, newname));
        }
        self.check_new_name(&to, newname)?;
        match self.engine.lookup(newparent, newname) {
            Ok(dst) if self.is_seed(dst.ino) => return Err(Error::Protected),
            // The name stays, with new content (an editor's save): nothing to admit.
            Ok(_) => {}
            Err(_) => self.admit(&to, newname, Naming::RenameFrom(&from, name))?,
        }
        self.admit(&from, name, Naming::RenameTo(&to, newname))?;
        if self.region(&from).removal(&from, name) == Removal::UntilReplaced {
            return Err(Error::NotPermitted(
                "renaming away a file its region keeps (edit or replace it)",
            ));
        }
        self.admit_move(&src, (&from, name), (&to, newname))?;
        self.engine.rename(
            parent,
            name,
            newparent,
            newname,
            flags & libc::RENAME_NOREPLACE != 0,
        )?;
        // A kept file's detached name is taken by what replaced it.
        lock(&self.detached).remove(&(newparent, newname.into()));
        self.entry_changed(&from, name);
        self.entry_changed(&to, newname);
        self.tell_if_moved(&src);
        if src.kind == Kind::File {
            self.told_committed(&to, newname);
        }
        Ok(())
    }

    /// Tells every region when a rename moved `before` into another tier.
    fn tell_if_moved(&self, before: &Attr) {
        if let Ok(now) = self.engine.getattr(before.ino)
            && now.tier != before.tier
        {
            let event = Event::Moved {
                ino: before.ino,
                from: before.tier,
                to: now.tier,
                how: "mv",
            };
            self.regions.observe(&self.cx(), &event);
        }
    }

    /// What a move of `src` from `from/name` to `to/newname` must pass: a directory stays
    /// in its region (its files would arrive unchecked: `mv` copies them instead, file by
    /// file, through the commit path); a file's content follows the rule of its new name.
    fn admit_move(
        &self,
        src: &Attr,
        (from, name): (&Dir, &[u8]),
        (to, newname): (&Dir, &[u8]),
    ) -> Result<()> {
        match src.kind {
            Kind::Dir if from.tag != to.tag => {
                return Err(Error::CrossDevice(
                    "a directory cannot move into another region",
                ));
            }
            Kind::Dir => {}
            _ if src.nlink > 1 => self.same_rule((from, name), (to, newname))?,
            Kind::File => self.admit_rename(src, (from, name), (to, newname))?,
            _ => {}
        }
        // A draft's check ran under the old name's rule.
        self.stop_ahead(src.ino, None);
        Ok(())
    }

    /// `RENAME_EXCHANGE`: each entry takes the other's place, both checked as moves. A
    /// region's kept file may go this way: its name still holds a file after.
    fn exchange(
        &self,
        (from, name, a): (&Dir, &[u8], &Attr),
        (to, newname): (&Dir, &[u8]),
    ) -> Result<()> {
        let b = self.stored(to.ino, newname)?;
        if self.is_seed(b.ino) {
            return Err(Error::Protected);
        }
        self.admit_move(a, (from, name), (to, newname))?;
        self.admit_move(&b, (to, newname), (from, name))?;
        self.engine.exchange(from.ino, name, to.ino, newname)?;
        self.entry_changed(from, name);
        self.entry_changed(to, newname);
        self.tell_if_moved(a);
        self.tell_if_moved(&b);
        for (kind, dir, arrived) in [(a.kind, to, newname), (b.kind, from, name)] {
            if kind == Kind::File {
                self.told_committed(dir, arrived);
            }
        }
        Ok(())
    }

    /// link(2): one more name for a stored file. Its names share its content, so they
    /// share one rule too (a name checked by another rule would let content in unchecked
    /// through the other names); the engine keeps them in one tier and region.
    pub fn link(&self, ino: u64, newparent: u64, newname: &[u8]) -> Result<Attr> {
        let targets = [
            (Target::Ino(ino), Verb::Write),
            (Target::Name(newparent, newname), Verb::Write),
        ];
        self.audited("link", &targets, || {
            self.link_entry(ino, newparent, newname)
        })
    }

    fn link_entry(&self, ino: u64, newparent: u64, newname: &[u8]) -> Result<Attr> {
        if ino & VIRT != 0 {
            return Err(Error::NotPermitted("hard links to generated files"));
        }
        if newparent & VIRT != 0 {
            return Err(frozen::not_stored(newparent));
        }
        let (parent, name) = self.engine.entry_of(ino)?;
        let (from, to) = (self.dir(parent)?, self.dir(newparent)?);
        let _held = self.hold(&[&to]);
        self.check_new_name(&to, newname)?;
        self.admit(&to, newname, Naming::Add(Kind::File))?;
        self.same_rule((&from, &name), (&to, newname))?;
        let linked = self.engine.link(ino, newparent, newname)?;
        self.entry_changed(&to, newname);
        Ok(linked)
    }

    /// The names of one file are checked by one rule (or none).
    fn same_rule(&self, (a, name): (&Dir, &[u8]), (b, other): (&Dir, &[u8])) -> Result<()> {
        let rule = |d: &Dir, n: &[u8]| self.region(d).rule(d, n).map(|r| r.id);
        if rule(a, name) != rule(b, other) {
            return Err(Error::CrossDevice(
                "the names of a hard-linked file must be checked by one rule",
            ));
        }
        Ok(())
    }

    /// opendir(2): a directory, listed if the caller may read it.
    pub fn opendir(&self, ino: u64) -> Result<()> {
        if self.getattr(ino)?.kind != Kind::Dir {
            return Err(Error::NotDir);
        }
        self.permit("list", &[(Target::Ino(ino), Verb::Read)])
    }

    /// Entries after `offset`. Offsets 1 and 2 are "." and "..", then the generated files
    /// (listed only outside data directories), then real entries at their stable cookie +
    /// `REAL_BASE`.
    pub fn readdir(&self, ino: u64, offset: u64, max: usize) -> Result<Vec<DirEntry>> {
        let _t = self.metrics.time(Op::Readdir);
        const REAL_BASE: u64 = 64;
        if frozen::split(ino).is_some() {
            return self.frozen_readdir(ino, offset, max);
        }
        if ino & VIRT != 0 {
            return Err(Error::NotDir);
        }
        let dir = self.dir(ino)?;
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
        if self.region(&dir).lists_views(&dir) && offset < REAL_BASE {
            for (i, name) in self
                .view_names(&dir)
                .into_iter()
                .enumerate()
                .take((REAL_BASE - 3) as usize)
            {
                let (view, kind) =
                    match self
                        .region(&dir)
                        .snapshot_root(&self.cx(), &dir, name.as_bytes())
                    {
                        Some(id) => (self.frozen_root(id)?.ino, Kind::Dir),
                        None => (self.view_ino(ino, &name), Kind::File),
                    };
                fixed.push(entry(3 + i as u64, view, kind, name.as_bytes()));
            }
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
        if !lock(&self.detached).is_empty() {
            out.retain(|e| self.detached(ino, &e.name).is_none());
        }
        Ok(out)
    }
}
