//! Extended attributes: only the `user.` namespace is stored; the others (security,
//! trusted, system ACLs) need kernel cooperation this filesystem does not offer.
//!
//! One name is the filesystem's own: `user.islabdb.tier` reads as the tier a file or
//! directory is stored in (`hot`, `warm`, `cold`), and setting it moves the file, or the
//! directory with everything below it, into that tier where it is — where its region lets
//! users choose (`Region::tier_is_chosen`; elsewhere a file's tier is its place, `EPERM`).
//! It is not listed, so copies of files (`cp -a`, `rsync -X`, `tar --xattrs`) do not
//! carry it to places where it means nothing or cannot be set.

use crate::engine::codec::Tier;
use crate::engine::tree::Kind;
use crate::error::{Error, Result};
use crate::regions::Event;
use crate::regions::access::Verb;
use crate::vfs::guard::Target;
use crate::vfs::{VIRT, Vfs, frozen};

/// The attribute that tells, and where allowed chooses, a file's tier.
pub const TIER: &[u8] = b"user.islabdb.tier";

impl Vfs {
    fn xattr_target(&self, ino: u64) -> Result<u64> {
        if frozen::split(ino).is_some() {
            return Err(Error::ReadOnlySnapshot);
        }
        if ino & VIRT != 0 {
            return Err(Error::NotSupported("attributes on generated views"));
        }
        Ok(ino)
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        if frozen::split(ino).is_some() {
            let attrs = self.frozen_xattrs(ino)?;
            let found = attrs.into_iter().find(|(n, _)| n == name);
            return found.map(|(_, v)| v).ok_or(Error::NoXattr);
        }
        if ino & VIRT != 0 {
            return Err(Error::NoXattr);
        }
        if name == TIER {
            return Ok(self.engine.getattr(ino)?.tier.name().as_bytes().to_vec());
        }
        self.engine.getxattr(ino, name)
    }

    pub fn listxattr(&self, ino: u64) -> Result<Vec<Vec<u8>>> {
        if frozen::split(ino).is_some() {
            return Ok(self
                .frozen_xattrs(ino)?
                .into_iter()
                .map(|(n, _)| n)
                .collect());
        }
        if ino & VIRT != 0 {
            return Ok(Vec::new());
        }
        self.engine.listxattr(ino)
    }

    pub fn setxattr(&self, ino: u64, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        self.audited("setxattr", &[(Target::Ino(ino), Verb::Write)], || {
            self.set_xattr(ino, name, value, flags)
        })
    }

    fn set_xattr(&self, ino: u64, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        let ino = self.xattr_target(ino)?;
        if !name.starts_with(b"user.") {
            return Err(Error::NotSupported("xattr namespaces other than user."));
        }
        if name == TIER {
            return self.choose_tier(ino, value);
        }
        self.engine.setxattr(
            ino,
            name,
            Some(value),
            flags & libc::XATTR_CREATE != 0,
            flags & libc::XATTR_REPLACE != 0,
        )
    }

    pub fn removexattr(&self, ino: u64, name: &[u8]) -> Result<()> {
        self.audited("removexattr", &[(Target::Ino(ino), Verb::Write)], || {
            self.remove_xattr(ino, name)
        })
    }

    fn remove_xattr(&self, ino: u64, name: &[u8]) -> Result<()> {
        let ino = self.xattr_target(ino)?;
        if !name.starts_with(b"user.") {
            return Err(Error::NoXattr);
        }
        if name == TIER {
            return Err(Error::NotPermitted("a tier can be chosen, not removed"));
        }
        self.engine.setxattr(ino, name, None, false, false)
    }

    /// Moves `ino` (with what is below it) into the tier `value` names, where it is.
    fn choose_tier(&self, ino: u64, value: &[u8]) -> Result<()> {
        let tier = Tier::from_name(value.trim_ascii())
            .ok_or(Error::InvalidArgument("a tier is hot, warm or cold"))?;
        let attr = self.engine.getattr(ino)?;
        let dir = match attr.kind {
            Kind::Dir => attr.ino,
            _ => self.engine.parent_of(ino)?,
        };
        let dir = self.dir_of(&self.engine.getattr(dir)?)?;
        if !self.region(&dir).tier_is_chosen(&self.cx(), &dir) {
            return Err(Error::NotPermitted(
                "here a file's tier is where it is: mv it into another tier's directory",
            ));
        }
        let _held = self.hold(&[&dir]);
        self.engine.set_tier(ino, tier)?;
        if attr.tier != tier {
            let moved = Event::Moved {
                ino,
                from: attr.tier,
                to: tier,
                how: "tier chosen (user.islabdb.tier)",
            };
            self.regions.observe(&self.cx(), &moved);
        }
        Ok(())
    }
}
