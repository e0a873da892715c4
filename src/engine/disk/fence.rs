//! A failing disk is reported, never hidden. After a failed fsync the kernel may have
//! dropped the dirty pages it could not write and marked them clean, so a later fsync that
//! succeeds proves nothing about them: from then on nothing can be called durable. The
//! fence therefore refuses every change to the data directory once any fsync fails, or
//! once the device answers a write with EIO (a full disk, ENOSPC, is not a failure: the
//! write that met it is undone by its caller). Reads go on. The cause is logged once;
//! a remount recovers to what the disk holds.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::{Disk, DiskFile, Open};

/// The error every change gets once the disk has failed (`Error::Poisoned`, EIO).
#[derive(Debug)]
pub struct DiskFailed;

impl fmt::Display for DiskFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the data disk failed earlier; changes are refused until a remount"
        )
    }
}

impl std::error::Error for DiskFailed {}

#[derive(Default)]
struct State {
    /// What failed first.
    cause: OnceLock<String>,
}

impl State {
    fn check(&self) -> io::Result<()> {
        match self.cause.get() {
            Some(_) => Err(io::Error::other(DiskFailed)),
            None => Ok(()),
        }
    }

    /// Passes `res` on; a failure that leaves the disk's state unknown fails the disk.
    fn watch<T>(&self, res: io::Result<T>, sync: bool, what: &str, path: &Path) -> io::Result<T> {
        if let Err(e) = &res
            && (sync || e.raw_os_error() == Some(libc::EIO))
        {
            let cause = format!("{what} of {} failed: {e}", path.display());
            if self.cause.set(cause.clone()).is_ok() {
                log::error!("data disk: {cause}; refusing every further change until a remount");
            }
        }
        res
    }
}

pub struct Fence {
    inner: Arc<dyn Disk>,
    state: Arc<State>,
}

impl Fence {
    pub fn new(inner: Arc<dyn Disk>) -> Fence {
        Fence {
            inner,
            state: Arc::default(),
        }
    }

    /// Whether the disk has failed (changes are refused).
    pub fn failed(&self) -> bool {
        self.state.cause.get().is_some()
    }

    /// Runs one change to the data directory, unless the disk failed.
    fn change<T>(
        &self,
        sync: bool,
        what: &str,
        path: &Path,
        op: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        self.state.check()?;
        self.state.watch(op(), sync, what, path)
    }
}

impl Disk for Fence {
    fn open(&self, path: &Path, how: Open) -> io::Result<Box<dyn DiskFile>> {
        if !how.writes() {
            // Reads go on after a failure, straight to the file.
            return self.inner.open(path, how);
        }
        let inner = self.change(false, "open", path, || self.inner.open(path, how))?;
        Ok(Box::new(FencedFile {
            inner,
            state: self.state.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, u64)>> {
        self.inner.list(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.change(false, "rename", from, || self.inner.rename(from, to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.change(false, "remove", path, || self.inner.remove(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.change(true, "fsync", dir, || self.inner.sync_dir(dir))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.change(false, "mkdir", dir, || self.inner.create_dir_all(dir))
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.change(false, "remove", dir, || self.inner.remove_dir_all(dir))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        self.inner.lock(path)
    }
}

struct FencedFile {
    inner: Box<dyn DiskFile>,
    state: Arc<State>,
    path: PathBuf,
}

impl FencedFile {
    fn change<T>(
        &self,
        sync: bool,
        what: &str,
        op: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        self.state.check()?;
        self.state.watch(op(), sync, what, &self.path)
    }
}

impl DiskFile for FencedFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        self.inner.read_at(buf, off)
    }

    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, off)
    }

    fn write_all_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.change(false, "write", || self.inner.write_all_at(buf, off))
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.change(false, "truncate", || self.inner.set_len(len))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.change(true, "fsync", || self.inner.sync_data())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.change(true, "fsync", || self.inner.sync_all())
    }
}
