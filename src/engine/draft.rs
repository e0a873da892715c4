//! Uncommitted content of a file open for writing. Small drafts live in memory; a draft
//! that grows past the spill threshold moves to a staging file in the data directory, so a
//! file larger than RAM streams through. A draft becomes the committed content on
//! close/fsync, or is thrown away.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::tree::Ts;
use crate::error::Result;

enum Buf {
    Mem(Vec<u8>),
    Spilled { file: File, len: u64, path: PathBuf },
}

pub struct Draft {
    buf: Buf,
    /// Changed (written or truncated) since the last commit.
    pub dirty: bool,
    /// Written (not only truncated) since the last commit. A close commits only such a
    /// draft: `sh -c 'cmd > f'` closes a dup of the fd right after the O_TRUNC open, and
    /// that close must not commit the empty intermediate state.
    pub written: bool,
    /// Why the last commit of these exact bytes was refused (so it is not checked again).
    pub refused: Option<String>,
    pub mtime: Ts,
    spill_at: usize,
    spill_path: PathBuf,
}

/// A draft's bytes, for validation and for committing.
pub enum Bytes<'a> {
    Mem(&'a [u8]),
    File(&'a File, u64),
}

impl Bytes<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Bytes::Mem(b) => b.len() as u64,
            Bytes::File(_, len) => *len,
        }
    }

    /// A reader over the bytes (streams spilled drafts from disk).
    pub fn reader(&self) -> Box<dyn Read + '_> {
        match self {
            Bytes::Mem(b) => Box::new(*b),
            Bytes::File(f, len) => Box::new(BufReader::with_capacity(
                1 << 20,
                Read::take(ReadAt { file: f, pos: 0 }, *len),
            )),
        }
    }
}

struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Draft {
    pub fn new(spill_at: usize, spill_path: PathBuf, mtime: Ts) -> Draft {
        Draft {
            buf: Buf::Mem(Vec::new()),
            dirty: false,
            written: false,
            refused: None,
            mtime,
            spill_at,
            spill_path,
        }
    }

    pub fn len(&self) -> u64 {
        match &self.buf {
            Buf::Mem(v) => v.len() as u64,
            Buf::Spilled { len, .. } => *len,
        }
    }

    pub fn bytes(&self) -> Bytes<'_> {
        match &self.buf {
            Buf::Mem(v) => Bytes::Mem(v),
            Buf::Spilled { file, len, .. } => Bytes::File(file, *len),
        }
    }

    pub fn read(&self, off: u64, size: usize) -> Result<Vec<u8>> {
        let len = self.len();
        if off >= len {
            return Ok(Vec::new());
        }
        let n = (len - off).min(size as u64) as usize;
        match &self.buf {
            Buf::Mem(v) => Ok(v[off as usize..off as usize + n].to_vec()),
            Buf::Spilled { file, .. } => {
                let mut out = vec![0; n];
                file.read_exact_at(&mut out, off)?;
                Ok(out)
            }
        }
    }

    pub fn write(&mut self, off: u64, data: &[u8]) -> Result<()> {
        let end = off + data.len() as u64;
        if let Buf::Mem(v) = &self.buf
            && end > self.spill_at as u64
        {
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&self.spill_path)?;
            file.write_all_at(v, 0)?;
            self.buf = Buf::Spilled {
                file,
                len: v.len() as u64,
                path: self.spill_path.clone(),
            };
        }
        match &mut self.buf {
            Buf::Mem(v) => {
                let end = end as usize;
                if v.len() < end {
                    v.resize(end, 0);
                }
                v[off as usize..end].copy_from_slice(data);
            }
            Buf::Spilled { file, len, .. } => {
                file.write_all_at(data, off)?;
                *len = (*len).max(end);
            }
        }
        self.dirty = true;
        self.written = true;
        self.refused = None;
        Ok(())
    }

    pub fn truncate(&mut self, size: u64) -> Result<()> {
        match &mut self.buf {
            Buf::Mem(v) if size <= self.spill_at as u64 => v.resize(size as usize, 0),
            Buf::Mem(_) => {
                // Growing past the threshold: spill by writing the new last byte's region.
                let cur = self.len();
                if size > cur {
                    self.write(size - 1, &[0])?;
                }
            }
            Buf::Spilled { file, len, .. } => {
                file.set_len(size)?;
                *len = size;
            }
        }
        self.dirty = true;
        self.refused = None;
        Ok(())
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if let Buf::Spilled { path, .. } = &self.buf
            && let Err(e) = fs::remove_file(path)
        {
            log::warn!("could not remove staging file {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_past_the_threshold_and_reads_back() {
        let tmp = tempfile::tempdir().expect("tmp");
        let spill = tmp.path().join("d");
        let mut d = Draft::new(100, spill.clone(), Ts::default());
        d.write(0, &[1; 60]).expect("w");
        assert!(!spill.exists());
        d.write(90, &[2; 60]).expect("w");
        assert!(spill.exists());
        assert_eq!(d.len(), 150);
        let all = d.read(0, 1000).expect("r");
        assert_eq!(&all[..60], &[1; 60][..]);
        assert_eq!(&all[60..90], &[0; 30][..]);
        assert_eq!(&all[90..], &[2; 60][..]);
        let mut via_reader = Vec::new();
        d.bytes()
            .reader()
            .read_to_end(&mut via_reader)
            .expect("reader");
        assert_eq!(via_reader, all);
        d.truncate(10).expect("t");
        assert_eq!(d.read(0, 100).expect("r"), vec![1; 10]);
        drop(d);
        assert!(!spill.exists());
    }

    #[test]
    fn truncate_grows_with_zeros() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut d = Draft::new(100, tmp.path().join("d"), Ts::default());
        d.write(0, b"abc").expect("w");
        d.truncate(6).expect("t");
        assert_eq!(d.read(0, 10).expect("r"), b"abc\0\0\0");
        d.truncate(200).expect("t");
        assert_eq!(d.len(), 200);
        assert_eq!(d.read(150, 10).expect("r"), vec![0; 10]);
    }
}
