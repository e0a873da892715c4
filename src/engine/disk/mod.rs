//! The engine's one way to the data directory: every open, write, fsync, rename, remove
//! and directory sync goes through `Disk`, so that a test can stand in for the disk.
//!
//! - `Real` is `std::fs` (reads are `pread` on the file handle, no copies added);
//! - `Fence` wraps the disk the engine uses: after a failed fsync (or a write the device
//!   answered with EIO) it refuses every change, so nothing later is called durable;
//! - `Faults` makes the N-th write or fsync fail (`ISLABDB_FAULTS`, a test hook);
//! - `Sim` (tests) keeps what was written apart from what was made durable, and cuts the
//!   power at the N-th durability point.
//!
//! Durability as the engine assumes it, and as `Sim` models it: a file's bytes and length
//! are durable after its `sync_data`/`sync_all`; a name (create, rename, remove) is
//! durable after `sync_dir` of its directory. Directories themselves are made at open,
//! before anything is acknowledged, and are taken as durable.

mod faults;
mod fence;
mod real;
#[cfg(test)]
pub mod sim;

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use self::faults::Faults;
pub use self::fence::{DiskFailed, Fence};
pub use self::real::Real;

/// How `Disk::open` opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// An existing file, for reading.
    Read,
    /// An existing file, for reading and writing.
    Write,
    /// A new or truncated file, for reading and writing.
    Create,
}

impl Open {
    /// Whether a file opened this way can change the disk.
    pub fn writes(self) -> bool {
        self != Open::Read
    }
}

pub trait Disk: Send + Sync {
    fn open(&self, path: &Path, how: Open) -> io::Result<Box<dyn DiskFile>>;
    /// The files (not directories) in `dir`, with their lengths.
    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, u64)>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the names in `dir` durable (creates, renames and removes in it).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Takes `path` as this process's exclusive lock on the data directory, held until the
    /// returned guard goes; `WouldBlock` (its message names the holder) if another has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>>;
}

pub trait DiskFile: Send + Sync {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize>;
    fn write_all_at(&self, buf: &[u8], off: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The bytes (and the length, as far as reading them needs it) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// The bytes and all of the file's metadata durable.
    fn sync_all(&self) -> io::Result<()>;

    fn read_exact_at(&self, mut buf: &mut [u8], mut off: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, off) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    off += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The real disk, for `Engine::open` and the engine's unit tests.
pub fn real() -> Arc<dyn Disk> {
    Arc::new(Real)
}

/// A whole file's bytes.
pub fn read(disk: &dyn Disk, path: &Path) -> io::Result<Vec<u8>> {
    let f = disk.open(path, Open::Read)?;
    let mut buf = vec![0; f.len()? as usize];
    f.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// Reads a file in order from `pos` (for `BufReader` and `Read::take`).
pub struct Reader<'a> {
    pub file: &'a dyn DiskFile,
    pub pos: u64,
}

impl io::Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Writes a file in order from its start (for `BufWriter`).
pub struct Appender {
    pub file: Box<dyn DiskFile>,
    pos: u64,
}

impl Appender {
    pub fn new(file: Box<dyn DiskFile>) -> Appender {
        Appender { file, pos: 0 }
    }
}

impl io::Write for Appender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.pos)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
