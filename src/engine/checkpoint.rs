//! Checkpoints: every inode's metadata and content location at one log position, so that
//! recovery loads this file and replays only the log segments from `wal_from` on.
//!
//! `checkpoints/ckpt-<seq>.ckpt`:
//!   `{ header "ISLCKPT1" v2 | frame(bincode Header) | frame(bincode Entry){count} |
//!      frame("END" ++ u64 count) }`. Version 1 entries lack `links`; they are still read.
//! Written to a temporary name, fsynced, renamed, and the directory fsynced: a checkpoint
//! file either exists whole or not at all, so any damage in one is real corruption.

use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::disk::{Appender, Disk, Open, Reader};
use super::frame::{self, Decoded};
use super::tree::{Link, Location, Meta, Tree, Ts};
use super::{decode, encode};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"ISLCKPT1";
/// 2 added `links` to each entry; 3 lets a location be `Extents` (variant 4), which a
/// version 2 file never holds, so 2 and 3 are read alike.
const VERSION: u16 = 3;
const MAX_ENTRY: usize = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    /// The first log segment not contained in this checkpoint.
    pub wal_from: u64,
    pub next_ino: u64,
    /// Shard file ids below this one existed when the checkpoint was taken.
    pub next_file_id: u64,
    pub count: u64,
    pub taken: Ts,
}

impl Header {
    /// The header of a checkpoint of `tree` holding the entries of `order`.
    pub fn of(
        tree: &Tree,
        order: &[&super::tree::Node],
        wal_from: u64,
        next_file_id: u64,
    ) -> Header {
        Header {
            wal_from,
            next_ino: tree.next_ino,
            next_file_id,
            count: order.len() as u64,
            taken: Ts::now(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub meta: Meta,
    pub loc: Location,
    /// The file's further names (hard links): (parent, name).
    pub links: Vec<(u64, Vec<u8>)>,
}

/// An entry as version 1 wrote it.
#[derive(Deserialize)]
struct EntryV1 {
    meta: Meta,
    loc: Location,
}

fn name(seq: u64) -> String {
    format!("ckpt-{seq:08}.ckpt")
}

/// Checkpoint `seq` of `dir`.
pub fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(name(seq))
}

fn list(disk: &dyn Disk, dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for (n, _) in disk.list(dir)? {
        if let Some(seq) = n
            .to_str()
            .and_then(|n| n.strip_prefix("ckpt-")?.strip_suffix(".ckpt")?.parse().ok())
        {
            out.push(seq);
        } else if n.to_str().is_some_and(|n| n.ends_with(".tmp")) {
            // A checkpoint that was being written when the daemon stopped.
            disk.remove(&dir.join(n))?;
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The newest checkpoint, if any.
pub fn latest(disk: &dyn Disk, dir: &Path) -> Result<Option<(u64, PathBuf)>> {
    Ok(list(disk, dir)?.last().map(|&s| (s, path(dir, s))))
}

/// Entries framed in memory, so that the tree is locked only while they are encoded and
/// the file is written after: readers wait for the encoding (of a million inodes, a
/// fraction of a second), not for the disk.
#[derive(Default)]
pub struct Entries {
    /// Framed entries, in chunks: one buffer of the whole would be copied as it grows.
    chunks: Vec<Vec<u8>>,
    count: u64,
}

/// A chunk of `Entries` is closed past this size.
const CHUNK: usize = 4 << 20;

impl Entries {
    /// The entries of `order` (every inode of `tree`, parents first).
    pub fn of(tree: &Tree, order: &[&super::tree::Node]) -> Entries {
        let mut entries = Entries::default();
        for n in order {
            entries.push(&n.meta, &n.loc, tree.links(n.meta.ino));
        }
        entries
    }

    pub fn push(&mut self, meta: &Meta, loc: &Location, links: &[Link]) {
        #[derive(Serialize)]
        struct EntryRef<'a> {
            meta: &'a Meta,
            loc: &'a Location,
            links: Vec<(u64, &'a [u8])>,
        }
        let links = links.iter().map(|l| (l.parent, &*l.name)).collect();
        if self.chunks.last().is_none_or(|c| c.len() >= CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK + (CHUNK >> 4)));
        }
        let Some(out) = self.chunks.last_mut() else {
            return;
        };
        // The frame is written in place: header room, payload, then the header.
        let at = out.len();
        out.extend_from_slice(&[0; frame::FRAME_HEADER]);
        // Serializing plain structs into a Vec has no failure mode.
        let _ = bincode::serde::encode_into_std_write(
            &EntryRef { meta, loc, links },
            out,
            bincode::config::standard(),
        );
        let header = frame::header(&out[at + frame::FRAME_HEADER..]);
        out[at..at + frame::FRAME_HEADER].copy_from_slice(&header);
        self.count += 1;
    }
}

pub struct Writer {
    disk: Arc<dyn Disk>,
    out: BufWriter<Appender>,
    tmp: PathBuf,
    path: PathBuf,
    count: u64,
    expected: u64,
    scratch: Vec<u8>,
}

impl Writer {
    /// A writer of checkpoint `seq` in `dir`.
    pub fn numbered(disk: Arc<dyn Disk>, dir: &Path, seq: u64, header: &Header) -> Result<Writer> {
        Writer::create(disk, path(dir, seq), header)
    }

    /// A writer of a checkpoint that becomes `path` when finished.
    pub fn create(disk: Arc<dyn Disk>, path: PathBuf, header: &Header) -> Result<Writer> {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = disk.open(&tmp, Open::Create)?;
        let mut out = BufWriter::with_capacity(1 << 20, Appender::new(file));
        out.write_all(&frame::file_header(MAGIC, VERSION))?;
        let mut scratch = Vec::new();
        frame::encode(&encode(header), &mut scratch);
        out.write_all(&scratch)?;
        Ok(Writer {
            disk,
            out,
            tmp,
            path,
            count: 0,
            expected: header.count,
            scratch,
        })
    }

    pub fn entries(&mut self, entries: &Entries) -> Result<()> {
        for c in &entries.chunks {
            self.out.write_all(c)?;
        }
        self.count += entries.count;
        Ok(())
    }

    /// Seals the file and makes it the newest checkpoint.
    pub fn finish(mut self) -> Result<PathBuf> {
        if self.count != self.expected {
            return Err(Error::Corrupt(format!(
                "checkpoint wrote {} entries, header says {}",
                self.count, self.expected
            )));
        }
        let mut end = b"END".to_vec();
        end.extend_from_slice(&self.count.to_le_bytes());
        self.scratch.clear();
        frame::encode(&end, &mut self.scratch);
        self.out.write_all(&self.scratch)?;
        let out = self.out.into_inner().map_err(|e| e.into_error())?;
        out.file.sync_all()?;
        self.disk.rename(&self.tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            self.disk.sync_dir(dir)?;
        }
        Ok(self.path)
    }
}

/// Loads a checkpoint, calling `each` for every entry; returns its header.
pub fn load(disk: &dyn Disk, path: &Path, mut each: impl FnMut(Entry)) -> Result<Header> {
    // Streamed frame by frame: a checkpoint of millions of inodes is never in memory whole.
    let file = disk.open(path, Open::Read)?;
    let mut r = BufReader::with_capacity(
        1 << 20,
        Reader {
            file: &*file,
            pos: 0,
        },
    );
    let what = path.display().to_string();
    let corrupt = |why: String| Error::Corrupt(format!("checkpoint {what}: {why}"));
    let mut head = [0u8; frame::FILE_HEADER];
    r.read_exact(&mut head)
        .map_err(|_| corrupt("shorter than its header".into()))?;
    let version = frame::check_file_header(&head, MAGIC, VERSION, &what)?;
    let mut at = frame::FILE_HEADER as u64;
    let mut buf = Vec::new();
    let mut next = |r: &mut BufReader<Reader<'_>>, buf: &mut Vec<u8>| -> Result<()> {
        let mut fh = [0u8; frame::FRAME_HEADER];
        r.read_exact(&mut fh)
            .map_err(|_| corrupt(format!("cut at byte {at}")))?;
        let len = u32::from_le_bytes([fh[0], fh[1], fh[2], fh[3]]) as usize;
        if len > MAX_ENTRY {
            return Err(corrupt(format!("damaged frame length at byte {at}")));
        }
        buf.clear();
        buf.extend_from_slice(&fh);
        buf.resize(frame::FRAME_HEADER + len, 0);
        r.read_exact(&mut buf[frame::FRAME_HEADER..])
            .map_err(|_| corrupt(format!("cut at byte {at}")))?;
        if !matches!(frame::decode(buf, 0, MAX_ENTRY), Decoded::Frame { .. }) {
            return Err(corrupt(format!("damaged frame at byte {at}")));
        }
        at += buf.len() as u64;
        buf.drain(..frame::FRAME_HEADER);
        Ok(())
    };
    next(&mut r, &mut buf)?;
    let header: Header = decode(&buf)?;
    for _ in 0..header.count {
        next(&mut r, &mut buf)?;
        each(match version {
            1 => decode::<EntryV1>(&buf).map(|e| Entry {
                meta: e.meta,
                loc: e.loc,
                links: Vec::new(),
            })?,
            _ => decode(&buf)?,
        });
    }
    next(&mut r, &mut buf)?;
    let mut rest = [0u8; 1];
    if buf.get(..3) != Some(b"END")
        || buf[3..] != header.count.to_le_bytes()
        || r.read(&mut rest)? != 0
    {
        return Err(corrupt("missing end marker".into()));
    }
    Ok(header)
}

/// Loads a checkpoint into a tree of its own; returns it with the header.
pub fn load_tree(disk: &dyn Disk, path: &Path) -> Result<(Tree, Header)> {
    let mut tree = Tree::default();
    // Links name directories anywhere in the tree: entered once every inode is.
    let mut links = Vec::new();
    let header = load(disk, path, |e| {
        if !e.links.is_empty() {
            links.push((e.meta.ino, e.links));
        }
        tree.upsert(e.meta, Some(e.loc));
    })?;
    for (ino, names) in links {
        tree.set_links(ino, names.into_iter().map(|(p, n)| (p, n.into())).collect());
    }
    tree.next_ino = tree.next_ino.max(header.next_ino);
    Ok((tree, header))
}

/// Deletes checkpoints older than `seq`, but those in `kept` (snapshots pin them).
pub fn remove_older(disk: &dyn Disk, dir: &Path, seq: u64, kept: &HashSet<u64>) -> Result<()> {
    for old in list(disk, dir)? {
        if old < seq && !kept.contains(&old) {
            disk.remove(&path(dir, old))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::engine::disk::{self, Real};
    use crate::engine::tree::{Kind, tests::meta};

    fn write(dir: &Path, seq: u64, n: u64) -> PathBuf {
        let header = Header {
            wal_from: 7,
            next_ino: n + 2,
            next_file_id: 3,
            count: n,
            taken: Ts::now(),
        };
        let mut entries = Entries::default();
        for i in 0..n {
            entries.push(
                &meta(i + 2, 1, &format!("f{i}"), Kind::File),
                &Location::Empty,
                &[],
            );
        }
        let mut w = Writer::numbered(disk::real(), dir, seq, &header).expect("create");
        w.entries(&entries).expect("entries");
        w.finish().expect("finish")
    }

    #[test]
    fn entries_over_many_chunks_load_in_order() {
        let tmp = tempfile::tempdir().expect("tmp");
        // Past several of the in-memory chunks.
        let n = 3 * CHUNK as u64 / 30;
        let path = write(tmp.path(), 1, n);
        let mut next = 2;
        let h = load(&Real, &path, |e| {
            assert_eq!(e.meta.ino, next);
            next += 1;
        })
        .expect("load");
        assert_eq!((h.count, next), (n, n + 2));
    }

    #[test]
    fn round_trip_and_latest_wins() {
        let tmp = tempfile::tempdir().expect("tmp");
        write(tmp.path(), 1, 3);
        let p = write(tmp.path(), 2, 5);
        let (seq, path) = latest(&Real, tmp.path()).expect("list").expect("some");
        assert_eq!((seq, &path), (2, &p));
        let mut names = Vec::new();
        let h = load(&Real, &path, |e| names.push(e.meta.name)).expect("load");
        assert_eq!((h.wal_from, h.count, names.len()), (7, 5, 5));
        remove_older(&Real, tmp.path(), 2, &HashSet::new()).expect("rm");
        assert_eq!(list(&Real, tmp.path()).expect("list"), vec![2]);
    }

    #[test]
    fn any_cut_or_flip_is_reported_as_corruption() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = write(tmp.path(), 1, 4);
        let full = fs::read(&path).expect("read");
        for cut in 0..full.len() {
            fs::write(&path, &full[..cut]).expect("write");
            assert!(load(&Real, &path, |_| {}).is_err(), "cut at {cut} accepted");
        }
        for at in 0..full.len() {
            let mut bad = full.clone();
            bad[at] ^= 0x10;
            fs::write(&path, &bad).expect("write");
            let mut n = 0;
            let res = load(&Real, &path, |_| n += 1);
            // A flip in the reserved header bytes is harmless; anything else must be caught.
            assert!(
                res.is_err() || (10..12).contains(&at),
                "flip at {at} accepted"
            );
        }
    }

    proptest::proptest! {
        /// Any damage to a checkpoint (bytes overwritten, the file cut or extended) is
        /// reported as corruption, never a panic or an entry that was not written.
        #[test]
        fn any_damage_is_reported(damage in crate::engine::testutil::damage(2000)) {
            let tmp = tempfile::tempdir().expect("tmp");
            let path = write(tmp.path(), 1, 6);
            let good = fs::read(&path).expect("read");
            let mut f = good.clone();
            damage.apply(&mut f);
            fs::write(&path, &f).expect("write");
            let mut names = Vec::new();
            match load(&Real, &path, |e| names.push(e.meta.name.to_vec())) {
                // Unchanged where it matters (only the reserved header bytes differ).
                Ok(_) => proptest::prop_assert!(
                    f.len() == good.len() && f[12..] == good[12..] && names.len() == 6
                ),
                Err(e) => proptest::prop_assert!(matches!(e, Error::Corrupt(_)), "{}", e),
            }
        }
    }

    /// A checkpoint written by a build before hard links (version 1, entries without
    /// `links`) still loads; one with links keeps them.
    #[test]
    fn version_1_entries_load_and_links_round_trip() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = write(tmp.path(), 1, 2);
        let mut bytes = fs::read(&path).expect("read");
        // Rewrite it as version 1: same header, entries without the trailing links.
        bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
        let mut at = frame::FILE_HEADER;
        let mut v1 = bytes[..at].to_vec();
        for i in 0..4 {
            let Decoded::Frame { payload, next } = frame::decode(&bytes, at, MAX_ENTRY) else {
                panic!("frame {i}");
            };
            let mut body = payload.to_vec();
            if (1..3).contains(&i) {
                assert_eq!(body.pop(), Some(0), "an empty links list is one byte");
            }
            frame::encode(&body, &mut v1);
            at = next;
        }
        fs::write(&path, &v1).expect("write v1");
        let mut got = Vec::new();
        load(&Real, &path, |e| got.push((e.meta.name, e.links))).expect("load v1");
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, l)| l.is_empty()));

        let header = Header {
            wal_from: 1,
            next_ino: 9,
            next_file_id: 1,
            count: 1,
            taken: Ts::now(),
        };
        let mut w = Writer::numbered(disk::real(), tmp.path(), 2, &header).expect("create");
        let link = Link {
            parent: 5,
            name: (*b"other").into(),
            cookie: 0,
        };
        let mut entries = Entries::default();
        entries.push(&meta(8, 1, "f", Kind::File), &Location::Empty, &[link]);
        w.entries(&entries).expect("entries");
        let path = w.finish().expect("finish");
        let mut links = Vec::new();
        load(&Real, &path, |e| links = e.links).expect("load");
        assert_eq!(links, vec![(5, b"other".to_vec())]);
    }
}
