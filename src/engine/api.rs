//! What regions may ask of an engine: the whole of it. Regions hold a `&dyn Storage`, so
//! a second engine (a distributed one) serves every region by implementing this trait.

use crate::engine::CommitAt;
use crate::engine::{Attr, Counters, Data, Engine, NewNode, Settings, TierStats};
use crate::error::Result;

pub trait Storage: Send + Sync {
    fn getattr(&self, ino: u64) -> Result<Attr>;
    fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr>;
    /// The names from the root down to `ino`.
    fn path_of(&self, ino: u64) -> Vec<Vec<u8>>;
    fn entry_count(&self, dir: u64) -> Result<usize>;
    /// (reads, commits) of the files in `dir` since start.
    fn dir_counters(&self, dir: u64) -> (u64, u64);
    /// Committed content of a file.
    fn read(&self, ino: u64, off: u64, size: usize) -> Result<Data>;
    /// Creates or replaces a file owned by root with `bytes`, durably, unchecked: for a
    /// region's own files.
    fn put(&self, parent: u64, name: &[u8], bytes: &[u8]) -> Result<()>;
    fn remove(&self, parent: u64, name: &[u8]) -> Result<()>;
    fn settings(&self) -> Settings;
    fn set_settings(&self, s: Settings);
    fn tier_stats(&self) -> [TierStats; 3];
    fn counters(&self) -> Counters;
    fn inode_count(&self) -> usize;
    /// Where the data lives, for people.
    fn location(&self) -> String;
    /// The log segments as (file name, size), oldest first.
    fn log_segments(&self) -> Vec<(String, u64)>;
    fn read_log_segment(&self, name: &str, off: u64, size: usize) -> Result<Vec<u8>>;
    fn log_segment_len(&self, name: &str) -> Option<u64>;
}

impl Storage for Engine {
    fn getattr(&self, ino: u64) -> Result<Attr> {
        Engine::getattr(self, ino)
    }

    fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        Engine::lookup(self, parent, name)
    }

    fn path_of(&self, ino: u64) -> Vec<Vec<u8>> {
        Engine::path_of(self, ino)
    }

    fn entry_count(&self, dir: u64) -> Result<usize> {
        Engine::entry_count(self, dir)
    }

    fn dir_counters(&self, dir: u64) -> (u64, u64) {
        Engine::dir_counters(self, dir)
    }

    fn read(&self, ino: u64, off: u64, size: usize) -> Result<Data> {
        Engine::read(self, ino, off, size, false)
    }

    fn put(&self, parent: u64, name: &[u8], bytes: &[u8]) -> Result<()> {
        let ino = match Engine::lookup(self, parent, name) {
            Ok(a) => a.ino,
            Err(_) => self.create(parent, name, NewNode::root_file())?.ino,
        };
        self.truncate(ino, 0)?;
        let res = Engine::write(self, ino, 0, bytes)
            .and_then(|()| self.commit(ino, CommitAt::Fsync, &|_, _| Ok(())));
        self.drop_unheld_draft(ino);
        res
    }

    fn remove(&self, parent: u64, name: &[u8]) -> Result<()> {
        Engine::remove(self, parent, name, false)
    }

    fn settings(&self) -> Settings {
        Engine::settings(self)
    }

    fn set_settings(&self, s: Settings) {
        Engine::set_settings(self, s)
    }

    fn tier_stats(&self) -> [TierStats; 3] {
        Engine::tier_stats(self)
    }

    fn counters(&self) -> Counters {
        Engine::counters(self)
    }

    fn inode_count(&self) -> usize {
        Engine::inode_count(self)
    }

    fn location(&self) -> String {
        self.root().display().to_string()
    }

    fn log_segments(&self) -> Vec<(String, u64)> {
        Engine::log_segments(self)
    }

    fn read_log_segment(&self, name: &str, off: u64, size: usize) -> Result<Vec<u8>> {
        Engine::read_log_segment(self, name, off, size)
    }

    fn log_segment_len(&self, name: &str) -> Option<u64> {
        Engine::log_segment_len(self, name)
    }
}
