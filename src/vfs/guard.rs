//! Before a user's operation: may they (`regions::access`)? After a change: the audit
//! trail (`crate::audit`). Operations name what they touch as [`Target`]s; the caller is
//! whoever acts on this thread (`caller`), and requests the daemon makes itself are
//! neither checked nor attributed to a user.

use crate::error::{Error, Result};
use crate::regions::access::Verb;
use crate::vfs::{VIRT, Vfs, acting_now, frozen};

/// What an operation touches.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    /// A file or directory by inode (stored, generated, or of a snapshot's tree).
    Ino(u64),
    /// The entry `name` of the directory `parent` (made, removed, renamed).
    Name(u64, &'a [u8]),
}

/// A target's place: the names of its path, for the access rules, and how the audit
/// trail shows it.
struct Place {
    parts: Vec<Vec<u8>>,
    shown: String,
}

impl Place {
    /// A place in the live universe, shown by its path.
    fn at(parts: Vec<Vec<u8>>) -> Place {
        let shown = crate::namespace::join(&parts);
        Place { parts, shown }
    }
}

impl Vfs {
    fn place(&self, t: Target<'_>) -> Place {
        match t {
            Target::Ino(ino) => self
                .ino_place(ino)
                .unwrap_or_else(|| Place::at(self.engine.path_of(ino))),
            Target::Name(parent, name) => {
                let mut parts = self.engine.path_of(parent);
                parts.push(name.to_vec());
                Place::at(parts)
            }
        }
    }

    /// The place of an inode that is not stored: a generated file is where its directory
    /// is; a snapshot's file is checked where it was when the snapshot was taken (a
    /// snapshot gives no more than the universe did).
    fn ino_place(&self, ino: u64) -> Option<Place> {
        if let Some((id, local)) = frozen::split(ino) {
            let f = self.engine.frozen(id).ok()?;
            let parts = f.path(local);
            let shown = format!(
                "{} (snapshot {})",
                crate::namespace::join(&parts),
                f.info.name
            );
            return Some(Place { parts, shown });
        }
        if ino & VIRT != 0 {
            let (dir, name) = self.views.key(ino)?;
            return Some(self.place(Target::Name(dir, name.as_bytes())));
        }
        None
    }

    /// The caller, when there are rules to check them against.
    fn checked(&self) -> Option<crate::vfs::Caller> {
        acting_now().filter(|_| self.regions.access().active())
    }

    /// Whether the caller may do each verb to its target; a denial is audited as `op`.
    pub(super) fn permit(&self, op: &str, targets: &[(Target<'_>, Verb)]) -> Result<()> {
        let Some(who) = self.checked() else {
            return Ok(());
        };
        let places: Vec<Place> = targets.iter().map(|(t, _)| self.place(*t)).collect();
        self.check(who, op, targets, &places)
    }

    fn check(
        &self,
        who: crate::vfs::Caller,
        op: &str,
        targets: &[(Target<'_>, Verb)],
        places: &[Place],
    ) -> Result<()> {
        for (place, (_, verb)) in places.iter().zip(targets) {
            let parts: Vec<&[u8]> = place.parts.iter().map(Vec::as_slice).collect();
            if let Err(e) = self.regions.access().check(&who, &parts, *verb) {
                let shown = shown(places);
                log::info!("{op} of {} by uid {}: {e}", shown.join(" to "), who.uid);
                crate::audit::record(Some(who), op, &shown, Err(&e));
                return Err(e);
            }
        }
        Ok(())
    }

    /// A change `op` to `targets`: checked, made by `change`, and audited with its result
    /// (showing the targets as they were before: a renamed entry by its old name).
    pub(super) fn audited<T>(
        &self,
        op: &str,
        targets: &[(Target<'_>, Verb)],
        change: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let places: Vec<Place> = targets.iter().map(|(t, _)| self.place(*t)).collect();
        if let Some(who) = self.checked() {
            self.check(who, op, targets, &places)?;
        }
        let res = change();
        self.audit(op, &places, res.as_ref().map(|_| ()));
        res
    }

    /// Records a change the caller made to `ino` (its content committed, or refused).
    pub(super) fn audit_ino(&self, op: &str, ino: u64, res: std::result::Result<(), &Error>) {
        self.audit(op, &[self.place(Target::Ino(ino))], res);
    }

    fn audit(&self, op: &str, places: &[Place], res: std::result::Result<(), &Error>) {
        crate::audit::record(acting_now(), op, &shown(places), res);
    }
}

/// How the audit trail shows places: each once, in order (an exchange names both
/// entries twice, once for each way).
fn shown(places: &[Place]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(places.len());
    for p in places {
        if !out.contains(&p.shown.as_str()) {
            out.push(&p.shown);
        }
    }
    out
}
