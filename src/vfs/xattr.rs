//! Extended attributes: only the `user.` namespace is stored; the others (security,
//! trusted, system ACLs) need kernel cooperation this filesystem does not offer.

use crate::error::{Error, Result};
use crate::vfs::{VIRT, Vfs};

impl Vfs {
    fn xattr_target(&self, ino: u64) -> Result<u64> {
        if ino & VIRT != 0 {
            return Err(Error::NotSupported("attributes on generated views"));
        }
        Ok(ino)
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        if ino & VIRT != 0 {
            return Err(Error::NoXattr);
        }
        self.engine.getxattr(ino, name)
    }

    pub fn listxattr(&self, ino: u64) -> Result<Vec<Vec<u8>>> {
        if ino & VIRT != 0 {
            return Ok(Vec::new());
        }
        self.engine.listxattr(ino)
    }

    pub fn setxattr(&self, ino: u64, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        let ino = self.xattr_target(ino)?;
        if !name.starts_with(b"user.") {
            return Err(Error::NotSupported("xattr namespaces other than user."));
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
        let ino = self.xattr_target(ino)?;
        if !name.starts_with(b"user.") {
            return Err(Error::NoXattr);
        }
        self.engine.setxattr(ino, name, None, false, false)
    }
}
