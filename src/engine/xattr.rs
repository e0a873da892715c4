//! Extended attributes, kept in the inode's metadata.

use super::record::Content;
use super::tree::Ts;
use super::{Engine, NAME_MAX, lock};
use crate::error::{Error, Result};

const XATTR_VALUE_MAX: usize = 64 << 10;
const XATTR_TOTAL_MAX: usize = 256 << 10;

impl Engine {
    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        let tree = lock(&self.tree);
        let node = tree.get(ino)?;
        node.meta
            .xattrs()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(Error::NoXattr)
    }

    pub fn listxattr(&self, ino: u64) -> Result<Vec<Vec<u8>>> {
        let tree = lock(&self.tree);
        Ok(tree
            .get(ino)?
            .meta
            .xattrs()
            .iter()
            .map(|(k, _)| k.clone())
            .collect())
    }

    /// Sets (`Some`) or removes (`None`) an attribute; `create`/`replace` are the
    /// XATTR_CREATE / XATTR_REPLACE conditions.
    pub fn setxattr(
        &self,
        ino: u64,
        name: &[u8],
        value: Option<&[u8]>,
        create: bool,
        replace: bool,
    ) -> Result<()> {
        if name.len() > NAME_MAX {
            return Err(Error::Range);
        }
        let mut tree = lock(&self.tree);
        let mut meta = tree.get(ino)?.meta.clone();
        let mut xattrs = meta.xattrs().to_vec();
        let pos = xattrs.iter().position(|(k, _)| k == name);
        match (value, pos) {
            (Some(_), Some(_)) if create => return Err(Error::Exists),
            (Some(_), None) if replace => return Err(Error::NoXattr),
            (None, None) => return Err(Error::NoXattr),
            (Some(v), _) if v.len() > XATTR_VALUE_MAX => return Err(Error::Range),
            (Some(v), Some(i)) => xattrs[i].1 = v.to_vec(),
            (Some(v), None) => xattrs.push((name.to_vec(), v.to_vec())),
            (None, Some(i)) => {
                xattrs.remove(i);
            }
        }
        let total: usize = xattrs.iter().map(|(k, v)| k.len() + v.len()).sum();
        if total > XATTR_TOTAL_MAX {
            return Err(Error::NoSpace("a file's attributes are limited in size"));
        }
        meta.set_xattrs(xattrs);
        meta.ctime = Ts::now();
        let tier = meta.tier;
        let lsn = self.log_upsert(&mut tree, meta, Content::Keep, tier)?;
        drop(tree);
        self.wait(lsn)
    }
}
