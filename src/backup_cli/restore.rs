//! `islabdb restore BACKUP [INCREMENTAL…] NEW_DATA_DIR`: a universe rebuilt from a
//! snapshot's `universe.tar.gz` (a snapshot's directory, a copy of one, or the archive
//! alone), then each incremental backup applied in order (its `deletions`, then its
//! `changes.tar.gz`). Every backup is checked whole first — every file against its
//! `verification.md5` when there is one, the archives' own checksums (gzip CRC-32, tar
//! header sums) always, and that each incremental follows the one before — and a damaged
//! or misordered set is refused before anything is written.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use md5::{Digest, Md5};

use super::progress::Progress;
use crate::engine::tree::{Kind, ROOT, Ts};
use crate::engine::{Change, CommitAt, Engine, NewNode, SetAttr, Settings};
use crate::error::Error;
use crate::namespace::SEED;
use crate::regions::Regions;
use crate::regions::backups::archive::DELETIONS;
use crate::regions::backups::checksums;
use crate::vfs::Vfs;

const ARCHIVE: &str = "universe.tar.gz";
const CHANGES: &str = "changes.tar.gz";
const CHECKSUMS: &str = "verification.md5";
const MANIFEST: &str = "manifest.json";
/// The newest manifest format this build restores.
const FORMAT_VERSION: u64 = 1;

/// A backup's files, and what its manifest says.
struct Backup {
    archive: PathBuf,
    checksums: Option<PathBuf>,
    /// (name, kind, parent) from `manifest.json`, when there is one.
    named: Option<(String, String, Option<String>)>,
}

/// What a restore did.
pub struct Restored {
    pub entries: u64,
    pub files: u64,
    pub bytes: u64,
    pub checked: u64,
}

fn locate(path: &Path, archive_name: &str) -> Result<Backup, String> {
    let (dir, archive) = if path.is_dir() {
        (path.to_path_buf(), path.join(archive_name))
    } else {
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        (dir, path.to_path_buf())
    };
    if !archive.is_file() {
        return Err(format!("{}: no such archive", archive.display()));
    }
    let mut named = None;
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
        let text = |k: &str| doc[k].as_str().map(str::to_string);
        named = Some((
            text("name").unwrap_or_default(),
            text("kind").unwrap_or_default(),
            text("parent"),
        ));
    }
    let checksums = Some(dir.join(CHECKSUMS)).filter(|p| p.is_file());
    Ok(Backup {
        archive,
        checksums,
        named,
    })
}

/// Refuses incrementals that are not each the next after the backup before it (when
/// their manifests say).
fn check_chain(full: &Backup, incrementals: &[Backup]) -> Result<(), String> {
    let mut before = full.named.as_ref().map(|(name, _, _)| name.clone());
    for inc in incrementals {
        let Some((name, kind, parent)) = &inc.named else {
            return Err(format!(
                "{}: no manifest.json beside it: cannot tell what it follows",
                inc.archive.display()
            ));
        };
        if kind != "incremental" {
            return Err(format!(
                "{}: a {kind} backup, not an incremental",
                inc.archive.display()
            ));
        }
        if let Some(b) = &before
            && parent.as_deref() != Some(b.as_str())
        {
            return Err(format!(
                "incremental {name} follows {}, not {b}: give them in order",
                parent.as_deref().unwrap_or("nothing")
            ));
        }
        before = Some(name.clone());
    }
    Ok(())
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

/// An archive's entry: below `universe/` (empty for the top), or an incremental's list
/// of removed paths.
enum Item {
    Universe(Vec<u8>),
    Deletions,
}

/// Each entry of the archive.
fn each_entry(
    archive: &Path,
    what: &str,
    mut each: impl FnMut(Item, &mut tar::Entry<'_, &mut dyn Read>) -> Result<(), String>,
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
            if path == DELETIONS.as_bytes() {
                each(Item::Deletions, &mut entry)?;
                continue;
            }
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
            each(Item::Universe(rel), &mut entry)?;
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
    each_entry(&backup.archive, "verifying", |item, entry| {
        let rel = match item {
            Item::Universe(rel) if entry.header().entry_type() == tar::EntryType::Regular => rel,
            // Read through all the same: gzip's CRC covers every byte.
            _ => {
                std::io::copy(entry, &mut std::io::sink())
                    .map_err(|e| format!("{}: damaged archive: {e}", backup.archive.display()))?;
                return Ok(());
            }
        };
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

pub fn restore(backup: &Path, incrementals: &[PathBuf], target: &Path) -> Result<Restored, String> {
    // A live data directory is refused here (it is not empty) and by its lock.
    check_target(target)?;
    let full = locate(backup, ARCHIVE)?;
    let incrementals = incrementals
        .iter()
        .map(|p| locate(p, CHANGES))
        .collect::<Result<Vec<_>, _>>()?;
    check_chain(&full, &incrementals)?;
    let mut checked = 0;
    for b in std::iter::once(&full).chain(&incrementals) {
        checked += verify(b)?;
        if b.checksums.is_none() {
            eprintln!(
                "no {CHECKSUMS} beside {}: checked its own checksums only",
                b.archive.display()
            );
        }
    }
    let fail = |e: Error| format!("{}: {e}", target.display());
    let engine = Arc::new(Engine::open(target, Settings::default()).map_err(fail)?);
    engine.start().map_err(fail)?;
    let restored = {
        // The seed's hierarchy and its regions first: what the archive holds lands in the
        // regions it came from.
        let regions = Regions::builtin(None).map_err(fail)?;
        let vfs = Vfs::new(engine.clone(), regions, SEED).map_err(fail)?;
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
        for b in std::iter::once(&full).chain(&incrementals) {
            each_entry(&b.archive, "restoring", |item, entry| match item {
                Item::Universe(rel) => into
                    .entry(&rel, entry)
                    .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(&rel))),
                Item::Deletions => into
                    .delete(entry)
                    .map_err(|e| format!("{}: {DELETIONS}: {e}", b.archive.display())),
            })?;
            for (ino, mtime) in into.mtimes.drain(..) {
                let set = SetAttr {
                    mtime: Some(mtime),
                    ..SetAttr::default()
                };
                engine.setattr(ino, set).map_err(fail)?;
            }
        }
        let done = into.done;
        crate::events::record(
            "restore",
            serde_json::json!({
                "from": backup.display().to_string(),
                "incrementals": incrementals.len(),
                "entries": done.entries,
                "files": done.files,
                "bytes": done.bytes,
            }),
        );
        // The restored universe's event log starts with its restore.
        vfs.stop();
        done
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
        let (parent, name) = self.parent_of(rel)?;
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

    /// The directory at `path`: made or found before, or looked up (an incremental holds
    /// only the directories that changed).
    fn dir(&mut self, path: &[u8]) -> crate::error::Result<u64> {
        if let Some(&ino) = self.dirs.get(path) {
            return Ok(ino);
        }
        let mut ino = ROOT;
        for part in path.split(|&b| b == b'/') {
            ino = self.engine.lookup(ino, part)?.ino;
        }
        self.dirs.insert(path.to_vec(), ino);
        Ok(ino)
    }

    /// The directory holding `rel`, and `rel`'s last name.
    fn parent_of<'r>(&mut self, rel: &'r [u8]) -> crate::error::Result<(u64, &'r [u8])> {
        match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => Ok((self.dir(&rel[..i])?, &rel[i + 1..])),
            None => Ok((ROOT, rel)),
        }
    }

    /// Removes what an incremental's list names (each `universe/<path>`, NUL-ended).
    fn delete(&mut self, list: &mut dyn Read) -> crate::error::Result<()> {
        let mut bytes = Vec::new();
        list.read_to_end(&mut bytes)?;
        for path in bytes.split(|&b| b == 0).filter(|p| !p.is_empty()) {
            let rel = path
                .strip_prefix(b"universe/")
                .ok_or(Error::InvalidArgument("a removed path not below universe/"))?;
            let (parent, name) = self.parent_of(rel)?;
            let change = Change::RemoveTree {
                parent,
                name: name.to_vec(),
            };
            self.engine.apply(vec![change], false)?;
        }
        // What was removed may have been a directory looked up before.
        self.dirs.clear();
        self.dirs.insert(Vec::new(), ROOT);
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
