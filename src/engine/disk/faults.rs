//! Injected failures, a test hook: the N-th write or fsync (counted from 1 over the whole
//! data directory) fails with the given errno instead of reaching the disk. The daemon
//! takes them from `ISLABDB_FAULTS` at mount (see README), the unit tests directly.
//!
//! Spec: faults separated by commas, each `fail-write=N` or `fail-fsync=N`, optionally
//! followed by `:eio` (the default) or `:enospc`. fsyncs are those of files and of
//! directories.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Disk, DiskFile, Open};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    Write,
    Fsync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fault {
    point: Point,
    nth: u64,
    errno: i32,
}

/// Parses a spec (see the module); the error names what is wrong.
fn parse(spec: &str) -> Result<Vec<Fault>, String> {
    spec.split(',')
        .map(|one| {
            let bad =
                || format!("{one:?}: want fail-write=N or fail-fsync=N, then :eio or :enospc");
            let (point, rest) = if let Some(r) = one.trim().strip_prefix("fail-write=") {
                (Point::Write, r)
            } else if let Some(r) = one.trim().strip_prefix("fail-fsync=") {
                (Point::Fsync, r)
            } else {
                return Err(bad());
            };
            let (n, errno) = match rest.split_once(':') {
                None => (rest, libc::EIO),
                Some((n, "eio")) => (n, libc::EIO),
                Some((n, "enospc")) => (n, libc::ENOSPC),
                Some(_) => return Err(bad()),
            };
            match n.parse() {
                Ok(nth) if nth > 0 => Ok(Fault { point, nth, errno }),
                _ => Err(bad()),
            }
        })
        .collect()
}

struct Plan {
    faults: Vec<Fault>,
    writes: AtomicU64,
    fsyncs: AtomicU64,
}

impl Plan {
    /// Counts one write or fsync; the error it must fail with, if it is a chosen one.
    fn pass(&self, point: Point) -> io::Result<()> {
        let count = match point {
            Point::Write => &self.writes,
            Point::Fsync => &self.fsyncs,
        };
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        match self.faults.iter().find(|f| f.point == point && f.nth == n) {
            Some(f) => Err(io::Error::from_raw_os_error(f.errno)),
            None => Ok(()),
        }
    }
}

pub struct Faults {
    inner: Arc<dyn Disk>,
    plan: Arc<Plan>,
}

impl Faults {
    /// `inner` failing as `spec` (see the module) says.
    pub fn new(inner: Arc<dyn Disk>, spec: &str) -> Result<Faults, String> {
        Ok(Faults {
            inner,
            plan: Arc::new(Plan {
                faults: parse(spec)?,
                writes: AtomicU64::new(0),
                fsyncs: AtomicU64::new(0),
            }),
        })
    }
}

impl Disk for Faults {
    fn open(&self, path: &Path, how: Open) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(FaultyFile {
            inner: self.inner.open(path, how)?,
            plan: self.plan.clone(),
        }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, u64)>> {
        self.inner.list(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.plan.pass(Point::Fsync)?;
        self.inner.sync_dir(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        self.inner.lock(path)
    }
}

struct FaultyFile {
    inner: Box<dyn DiskFile>,
    plan: Arc<Plan>,
}

impl DiskFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        self.inner.read_at(buf, off)
    }

    fn write_all_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.plan.pass(Point::Write)?;
        self.inner.write_all_at(buf, off)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.plan.pass(Point::Fsync)?;
        self.inner.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.plan.pass(Point::Fsync)?;
        self.inner.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_what_is_wrong() {
        assert_eq!(
            parse("fail-fsync=3,fail-write=10:enospc"),
            Ok(vec![
                Fault {
                    point: Point::Fsync,
                    nth: 3,
                    errno: libc::EIO
                },
                Fault {
                    point: Point::Write,
                    nth: 10,
                    errno: libc::ENOSPC
                },
            ])
        );
        for bad in [
            "",
            "fail-fsync=0",
            "fail-read=1",
            "fail-write=2:eperm",
            "fail-fsync=x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
