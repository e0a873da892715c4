//! A disk in memory that keeps two images, what was written and what was made durable,
//! and loses power on demand (tests only).
//!
//! Every file and every directory has a durable image and the changes made since its last
//! sync, in order. A file's `sync_data`/`sync_all` makes its changes durable, a
//! directory's `sync_dir` its names (creates, renames, removes). Each sync is a
//! *durability point*; `cut_at(n)` makes the power fail at the n-th one: that sync never
//! happens and from then on every call fails with EIO, as if the machine had stopped.
//! `restart` then boots from what survived: the durable images, each followed by a
//! random prefix of its unsynced changes, the last of them torn at a random byte (the
//! page cache writes a file's pages back in any order, but the log relies only on this
//! much: see FORMAT.md). A file whose name did not survive is gone with its bytes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Disk, DiskFile, Open};

/// The simulation's seeded generator: the same seed, the same run.
pub use crate::rng::SplitMix64 as Rng;

/// A file's bytes: `data`, then zeros up to `len` (so that the log's zero-filled space
/// ahead of its records costs no memory).
#[derive(Clone, Default)]
struct Image {
    data: Vec<u8>,
    len: usize,
}

impl Image {
    fn write(&mut self, off: usize, buf: &[u8]) {
        let end = off + buf.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[off..end].copy_from_slice(buf);
        self.len = self.len.max(end);
    }

    fn zero(&mut self, off: usize, n: usize) {
        let end = off + n;
        let stored = end.min(self.data.len());
        if off < stored {
            self.data[off..stored].fill(0);
        }
        self.len = self.len.max(end);
    }

    fn set_len(&mut self, len: usize) {
        self.data.truncate(len);
        self.len = len;
    }

    fn read_at(&self, buf: &mut [u8], off: usize) -> usize {
        let n = buf.len().min(self.len.saturating_sub(off));
        let stored = self.data.len().clamp(off, off + n) - off;
        buf[..stored].copy_from_slice(&self.data[off..off + stored]);
        buf[stored..n].fill(0);
        n
    }
}

enum Change {
    Write(usize, Vec<u8>),
    Zeros(usize, usize),
    SetLen(usize),
}

impl Change {
    fn apply(&self, image: &mut Image) {
        match self {
            Change::Write(off, data) => image.write(*off, data),
            Change::Zeros(off, n) => image.zero(*off, *n),
            Change::SetLen(len) => image.set_len(*len),
        }
    }

    /// The first `n` bytes of a write: what a power cut in the middle of it leaves.
    fn torn(&self, n: usize, image: &mut Image) {
        match self {
            Change::Write(off, data) => image.write(*off, &data[..n]),
            Change::Zeros(off, _) => image.zero(*off, n),
            Change::SetLen(_) => {}
        }
    }

    fn len(&self) -> usize {
        match self {
            Change::Write(_, data) => data.len(),
            Change::Zeros(_, n) => *n,
            Change::SetLen(_) => 0,
        }
    }
}

#[derive(Default)]
struct Inode {
    written: Image,
    durable: Image,
    pending: Vec<Change>,
}

#[derive(Clone, Default)]
struct Dir {
    written: BTreeMap<OsString, usize>,
    durable: BTreeMap<OsString, usize>,
    /// Name changes since the last sync: the name now points at the inode, or at nothing.
    pending: Vec<(OsString, Option<usize>)>,
}

impl Dir {
    fn set(&mut self, name: OsString, ino: Option<usize>) {
        match ino {
            Some(i) => self.written.insert(name.clone(), i),
            None => self.written.remove(&name),
        };
        self.pending.push((name, ino));
    }
}

#[derive(Default)]
struct State {
    inodes: Vec<Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    /// Durability points and writes so far.
    points: u64,
    writes: u64,
    cut_at: Option<u64>,
    dead: bool,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn not_found() -> io::Error {
    io::ErrorKind::NotFound.into()
}

impl State {
    fn alive(&self) -> io::Result<()> {
        if self.dead { Err(eio()) } else { Ok(()) }
    }

    /// Counts a durability point; the power fails at the chosen one.
    fn point(&mut self) -> io::Result<()> {
        self.alive()?;
        self.points += 1;
        if self.cut_at == Some(self.points) {
            self.dead = true;
            return Err(eio());
        }
        Ok(())
    }

    fn split(path: &Path) -> io::Result<(PathBuf, OsString)> {
        match (path.parent(), path.file_name()) {
            (Some(d), Some(n)) => Ok((d.to_path_buf(), n.to_os_string())),
            _ => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    fn dir(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(not_found)
    }

    fn lookup(&mut self, path: &Path) -> io::Result<usize> {
        let (dir, name) = Self::split(path)?;
        self.dir(&dir)?
            .written
            .get(&name)
            .copied()
            .ok_or_else(not_found)
    }
}

/// The simulated disk; clones share it.
#[derive(Clone, Default)]
pub struct Sim(Arc<Mutex<State>>);

impl Sim {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the power fail at the `n`-th durability point from now on (counted from 1
    /// since this disk was made).
    pub fn cut_at(&self, n: u64) {
        self.state().cut_at = Some(n);
    }

    /// Durability points so far.
    pub fn points(&self) -> u64 {
        self.state().points
    }

    /// Writes so far.
    pub fn writes(&self) -> u64 {
        self.state().writes
    }

    /// Whether the power is gone.
    pub fn is_dead(&self) -> bool {
        self.state().dead
    }

    /// Cuts the power now (if it is still on) and boots a new disk from what survived.
    pub fn restart(&self, rng: &mut Rng) -> Sim {
        let old = self.state();
        let mut new = State::default();
        let mut kept: BTreeMap<usize, usize> = BTreeMap::new();
        for (path, dir) in &old.dirs {
            let mut names = dir.durable.clone();
            for (name, ino) in &dir.pending[..rng.below(dir.pending.len() + 1)] {
                match ino {
                    Some(i) => names.insert(name.clone(), *i),
                    None => names.remove(name),
                };
            }
            for ino in names.values_mut() {
                let next = kept.len();
                *ino = *kept.entry(*ino).or_insert(next);
            }
            new.dirs.insert(
                path.clone(),
                Dir {
                    durable: names.clone(),
                    written: names,
                    pending: Vec::new(),
                },
            );
        }
        new.inodes.resize_with(kept.len(), Inode::default);
        for (&old_ino, &ino) in &kept {
            let f = &old.inodes[old_ino];
            let mut bytes = f.durable.clone();
            let keep = rng.below(f.pending.len() + 1);
            for c in &f.pending[..keep] {
                c.apply(&mut bytes);
            }
            if let Some(c) = f.pending.get(keep) {
                c.torn(rng.below(c.len()), &mut bytes);
            }
            new.inodes[ino] = Inode {
                written: bytes.clone(),
                durable: bytes,
                pending: Vec::new(),
            };
        }
        Sim(Arc::new(Mutex::new(new)))
    }
}

impl Disk for Sim {
    fn open(&self, path: &Path, how: Open) -> io::Result<Box<dyn DiskFile>> {
        let mut s = self.state();
        s.alive()?;
        let ino = match (s.lookup(path), how) {
            (Ok(ino), Open::Create) => {
                let f = &mut s.inodes[ino];
                f.written.set_len(0);
                f.pending.push(Change::SetLen(0));
                ino
            }
            (Ok(ino), _) => ino,
            (Err(e), Open::Create) if e.kind() == io::ErrorKind::NotFound => {
                let (dir, name) = State::split(path)?;
                let ino = s.inodes.len();
                s.dir(&dir)?.set(name, Some(ino));
                s.inodes.push(Inode::default());
                ino
            }
            (Err(e), _) => return Err(e),
        };
        Ok(Box::new(SimFile {
            sim: self.clone(),
            ino,
        }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, u64)>> {
        let mut s = self.state();
        s.alive()?;
        let names: Vec<(OsString, usize)> = s
            .dir(dir)?
            .written
            .iter()
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        Ok(names
            .into_iter()
            .map(|(n, i)| (n, s.inodes[i].written.len as u64))
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.alive()?;
        let ino = s.lookup(from)?;
        let ((fd, fname), (td, tname)) = (State::split(from)?, State::split(to)?);
        s.dir(&td)?;
        s.dir(&fd)?.set(fname, None);
        s.dir(&td)?.set(tname, Some(ino));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.alive()?;
        s.lookup(path)?;
        let (dir, name) = State::split(path)?;
        s.dir(&dir)?.set(name, None);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.dir(dir)?;
        s.point()?;
        let d = s.dir(dir)?;
        d.durable = d.written.clone();
        d.pending.clear();
        Ok(())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.alive()?;
        for d in dir.ancestors() {
            s.dirs.entry(d.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.alive()?;
        s.dir(dir)?;
        s.dirs.retain(|d, _| !d.starts_with(dir));
        Ok(())
    }

    fn lock(&self, _path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        // One engine at a time uses a simulated disk.
        Ok(Box::new(()))
    }
}

struct SimFile {
    sim: Sim,
    ino: usize,
}

impl SimFile {
    fn with<T>(&self, f: impl FnOnce(&mut Inode) -> T) -> io::Result<T> {
        let mut s = self.sim.state();
        s.alive()?;
        Ok(f(&mut s.inodes[self.ino]))
    }

    fn sync(&self) -> io::Result<()> {
        let mut s = self.sim.state();
        s.point()?;
        let f = &mut s.inodes[self.ino];
        for c in std::mem::take(&mut f.pending) {
            c.apply(&mut f.durable);
        }
        Ok(())
    }
}

impl DiskFile for SimFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        self.with(|f| f.written.read_at(buf, off as usize))
    }

    fn write_all_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        let off = off as usize;
        let zeros = buf.chunks(64).all(|c| c.iter().fold(0, |a, &b| a | b) == 0);
        let change = if zeros {
            Change::Zeros(off, buf.len())
        } else {
            Change::Write(off, buf.to_vec())
        };
        let mut s = self.sim.state();
        s.alive()?;
        s.writes += 1;
        let f = &mut s.inodes[self.ino];
        change.apply(&mut f.written);
        f.pending.push(change);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        self.with(|f| f.written.len as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(|f| {
            f.written.set_len(len as usize);
            f.pending.push(Change::SetLen(len as usize));
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(d: &Sim, p: &str) -> Option<Vec<u8>> {
        super::super::read(d, Path::new(p)).ok()
    }

    #[test]
    fn only_what_was_synced_survives_and_unsynced_tails_tear() {
        let d = Sim::default();
        d.create_dir_all(Path::new("/d")).expect("mkdir");
        let a = d.open(Path::new("/d/a"), Open::Create).expect("a");
        a.write_all_at(b"durable", 0).expect("w");
        a.sync_all().expect("sync");
        d.sync_dir(Path::new("/d")).expect("dir");
        a.write_all_at(b" and not", 7).expect("w");
        let b = d.open(Path::new("/d/b"), Open::Create).expect("b");
        b.write_all_at(b"synced, its name not", 0).expect("w");
        b.sync_all().expect("sync");
        let mut seen_torn = false;
        let mut seen_b = false;
        for seed in 0..64 {
            let after = d.restart(&mut Rng::new(seed));
            let got = read(&after, "/d/a").expect("a's name was synced");
            assert!(
                b"durable and not".starts_with(&got) && got.len() >= 7,
                "{got:?}"
            );
            seen_torn |= got.len() > 7 && got.len() < 15;
            if let Some(b) = read(&after, "/d/b") {
                assert_eq!(b, b"synced, its name not");
                seen_b = true;
            }
        }
        assert!(seen_torn && seen_b, "tails are kept, torn or dropped");
        assert!(!d.is_dead(), "a restart leaves the old disk as it was");
    }

    #[test]
    fn the_power_fails_at_the_chosen_durability_point() {
        let d = Sim::default();
        d.create_dir_all(Path::new("/d")).expect("mkdir");
        d.cut_at(2);
        let a = d.open(Path::new("/d/a"), Open::Create).expect("a");
        d.sync_dir(Path::new("/d")).expect("point 1");
        a.write_all_at(b"x", 0).expect("w");
        assert!(a.sync_data().is_err(), "point 2 never happens");
        assert!(d.is_dead() && a.read_at(&mut [0], 0).is_err());
        assert_eq!(d.points(), 2);
        let after = d.restart(&mut Rng::new(1));
        assert!(read(&after, "/d/a").is_some_and(|b| b.is_empty() || b == b"x"));
    }
}
