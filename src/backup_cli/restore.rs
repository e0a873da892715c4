//! `islabdb restore BACKUP NEW_DATA_DIR`: a universe rebuilt from a snapshot's
//! `universe.tar.gz` (a snapshot's directory, a copy of one, or the archive alone). The
//! backup is checked whole first — every file against `verification.md5` when there is
//! one, and the archive's own checksums (gzip CRC-32, tar header sums) always — and a
//! damaged one is refused before anything is written.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use md5::{Digest, Md5};

use super::progress::Progress;
use crate::engine::tree::{Kind, ROOT, Ts};
use crate::engine::{CommitAt, Engine, NewNode, SetAttr, Settings};
use crate::error::Error;
use crate::namespace::SEED;
use crate::regions::Regions;
use crate::regions::backups::checksums;
use crate::vfs::Vfs;

const ARCHIVE: &str = "universe.tar.gz";
const CHECKSUMS: &str = "verification.md5";
const MANIFEST: &str = "manifest.json";
/// The newest manifest format this build restores.
const FORMAT_VERSION: u64 = 1;

/// A backup's files.
struct Backup {
    archive: PathBuf,
    checksums: Option<PathBuf>,
}

/// What a restore did.
pub struct Restored {
    pub entries: u64,
    pub files: u64,
    pub bytes: u64,
    pub checked: u64,
}

fn locate(path: &Path) -> Result<Backup, String> {
    let (dir, archive) = if path.is_dir() {
        (path.to_path_buf(), path.join(ARCHIVE))
    } else {
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        (dir, path.to_path_buf())
    };
    if !archive.is_file() {
        return Err(format!("{}: no such archive", archive.display()));
    }
    if let Ok(text) = std::fs::read(dir.join(MANIFEST)) {
        let doc: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| format!("{}: not a manifest: {e}", dir.join(MANIFEST).display()))?;
        let version = doc["format_version"].as_u64().unwrap_or(0);
        if version > FORMAT_VERSION {
            return Err(format!(
                "{}: format version {version}, newer than this build's {FORMAT_VERSION}",
                dir.join(MANIFEST).display()
            ));
        }
    }
    let checksums = Some(dir.join(CHECKSUMS)).filter(|p| p.is_file());
    Ok(Backup { archive, checksums })
}

/// Counts what is read of the compressed archive, for the progress shown.
struct Counting<R> {
    inner: R,
    progress: Progress,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Each entry of the archive, with its path below `universe/` (empty for the top).
fn each_entry(
    archive: &Path,
    what: &str,
    mut each: impl FnMut(Vec<u8>, &mut tar::Entry<'_, &mut dyn Read>) -> Result<(), String>,
) -> Result<(), String> {
    let damaged = |e: std::io::Error| format!("{}: damaged archive: {e}", archive.display());
    let file = File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut counting = Counting {
        inner: file,
        progress: Progress::new(what, len),
    };
    {
        let mut gz = MultiGzDecoder::new(&mut counting);
        let reader: &mut dyn Read = &mut gz;
        let mut tar = tar::Archive::new(reader);
        for entry in tar.entries().map_err(damaged)? {
            let mut entry = entry.map_err(damaged)?;
            let path = entry.path_bytes().into_owned();
            let rel = match path.strip_prefix(b"universe") {
                Some(rest) if rest.is_empty() || rest.starts_with(b"/") => rest
                    .trim_ascii_start()
                    .strip_prefix(b"/")
                    .unwrap_or(rest)
                    .to_vec(),
                _ => {
                    return Err(format!(
                        "{}: {} is not below universe/: not a snapshot's archive",
                        archive.display(),
                        String::from_utf8_lossy(&path)
                    ));
                }
            };
            let rel = rel.strip_suffix(b"/").map(<[u8]>::to_vec).unwrap_or(rel);
            each(rel, &mut entry)?;
        }
    }
    counting.progress.finish();
    Ok(())
}

/// Reads the whole archive, checking its own sums and every file's MD5 against the
/// backup's checksum file; returns how many files were checked so.
fn verify(backup: &Backup) -> Result<u64, String> {
    let mut want: HashMap<Vec<u8>, String> = HashMap::new();
    if let Some(path) = &backup.checksums {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (i, line) in checksums::parse(&text).into_iter().enumerate() {
            let (hex, name) = line
                .ok_or_else(|| format!("{}: line {} is not a checksum", path.display(), i + 1))?;
            want.insert(name, hex);
        }
    }
    let mut checked = 0;
    each_entry(&backup.archive, "verifying", |rel, entry| {
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Ok(());
        }
        let mut md5 = Md5::new();
        std::io::copy(entry, &mut md5)
            .map_err(|e| format!("{}: damaged archive: {e}", backup.archive.display()))?;
        let mut name = b"universe/".to_vec();
        name.extend_from_slice(&rel);
        if let Some(hex) = want.remove(&name) {
            if checksums::hex(&md5.finalize()) != hex {
                return Err(format!(
                    "damaged backup: {} does not match its checksum",
                    String::from_utf8_lossy(&name)
                ));
            }
            checked += 1;
        }
        Ok(())
    })?;
    if let Some(name) = want.keys().next() {
        return Err(format!(
            "damaged backup: {} (and {} more) listed in {CHECKSUMS} but not in the archive",
            String::from_utf8_lossy(name),
            want.len() - 1
        ));
    }
    Ok(checked)
}

/// Refuses a target that holds anything, or that a running daemon uses.
fn check_target(target: &Path) -> Result<(), String> {
    match std::fs::read_dir(target).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(format!(
            "{}: not empty; a restore makes a new data directory",
            target.display()
        )),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", target.display())),
    }
}

pub fn restore(backup: &Path, target: &Path) -> Result<Restored, String> {
    // A live data directory is refused here (it is not empty) and by its lock.
    check_target(target)?;
    let backup = locate(backup)?;
    let checked = verify(&backup)?;
    if backup.checksums.is_none() {
        eprintln!("no {CHECKSUMS} beside the archive: checked its own checksums only");
    }
    let fail = |e: Error| format!("{}: {e}", target.display());
    let engine = Arc::new(Engine::open(target, Settings::default()).map_err(fail)?);
    engine.start().map_err(fail)?;
    let restored = {
        // The seed's hierarchy and its regions first: what the archive holds lands in the
        // regions it came from.
        let regions = Regions::builtin(None).map_err(fail)?;
        let _vfs = Vfs::new(engine.clone(), regions, SEED).map_err(fail)?;
        let mut into = Into {
            engine: &engine,
            dirs: HashMap::from([(Vec::new(), ROOT)]),
            mtimes: Vec::new(),
            done: Restored {
                entries: 0,
                files: 0,
                bytes: 0,
                checked,
            },
        };
        each_entry(&backup.archive, "restoring", |rel, entry| {
            into.entry(&rel, entry)
                .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(&rel)))
        })?;
        for (ino, mtime) in into.mtimes.drain(..) {
            let set = SetAttr {
                mtime: Some(mtime),
                ..SetAttr::default()
            };
            engine.setattr(ino, set).map_err(fail)?;
        }
        into.done
    };
    engine.shutdown().map_err(fail)?;
    Ok(restored)
}

/// Where entries are restored to.
struct Into<'a> {
    engine: &'a Engine,
    /// Directories made or found, by path.
    dirs: HashMap<Vec<u8>, u64>,
    /// Directories' times, set once nothing more is made in them.
    mtimes: Vec<(u64, Ts)>,
    done: Restored,
}

impl Into<'_> {
    fn entry(
        &mut self,
        rel: &[u8],
        entry: &mut tar::Entry<'_, &mut dyn Read>,
    ) -> crate::error::Result<()> {
        let h = entry.header();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular => Kind::File,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::Char => Kind::CharDev,
            tar::EntryType::Block => Kind::BlockDev,
            _ => return Err(Error::NotSupported("a tar entry of this type")),
        };
        let perm = h.mode().map_err(Error::Io)? as u16 & 0o7777;
        let (uid, gid) = (
            h.uid().map_err(Error::Io)? as u32,
            h.gid().map_err(Error::Io)? as u32,
        );
        let mtime = Ts::from(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(h.mtime().map_err(Error::Io)?),
        );
        let set = SetAttr {
            perm: Some(perm),
            uid: Some(uid),
            gid: Some(gid),
            atime: None,
            mtime: None,
        };
        self.done.entries += 1;
        if rel.is_empty() {
            self.engine.setattr(ROOT, set)?;
            self.mtimes.push((ROOT, mtime));
            return Ok(());
        }
        let (parent_path, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&rel[..0], rel),
        };
        let parent = *self.dirs.get(parent_path).ok_or(Error::NotFound)?;
        let target = match kind {
            Kind::Symlink => entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .ok_or(Error::InvalidArgument("a symlink without a target"))?,
            Kind::CharDev | Kind::BlockDev => {
                let major = h.device_major().map_err(Error::Io)?.unwrap_or(0);
                let minor = h.device_minor().map_err(Error::Io)?.unwrap_or(0);
                (libc::makedev(major, minor) as u32).to_le_bytes().to_vec()
            }
            _ => Vec::new(),
        };
        let new = NewNode {
            kind,
            perm,
            uid,
            gid,
            target: &target,
            tier: None,
            tag: None,
        };
        // The seed's directories and the regions' own files exist already.
        let ino = match self.engine.create(parent, name, new) {
            Ok(a) => a.ino,
            Err(Error::Exists) => {
                let found = self.engine.lookup(parent, name)?;
                if found.kind != kind {
                    return Err(Error::Exists);
                }
                self.engine.setattr(found.ino, set)?;
                found.ino
            }
            Err(e) => return Err(e),
        };
        match kind {
            Kind::Dir => {
                self.dirs.insert(rel.to_vec(), ino);
                self.mtimes.push((ino, mtime));
            }
            Kind::File => {
                self.write(ino, entry)?;
                let set = SetAttr {
                    mtime: Some(mtime),
                    ..SetAttr::default()
                };
                self.engine.setattr(ino, set)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The file's content, written and committed as a writer would.
    fn write(&mut self, ino: u64, entry: &mut dyn Read) -> crate::error::Result<()> {
        self.engine.open_handle(ino, true)?;
        let res = (|| {
            self.engine.truncate(ino, 0)?;
            let mut buf = vec![0; 1 << 20];
            let mut off = 0;
            loop {
                let n = entry.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                self.engine.write(ino, off, &buf[..n])?;
                off += n as u64;
            }
            self.engine.commit(ino, CommitAt::Close, &|_, _| Ok(()))?;
            self.done.files += 1;
            self.done.bytes += off;
            Ok(())
        })();
        self.engine.close_handle(ino, true);
        res
    }
}
