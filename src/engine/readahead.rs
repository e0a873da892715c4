//! Read-ahead of large files. Reads go around the kernel's page cache (see `fuse.rs`), so
//! the kernel reads nothing ahead; and a blob chunk has to be read and decoded (zlib for the
//! warm tier) before the first byte of it can be served. When a reader moves through a
//! blob in order, the next chunks are decoded into the cache by a worker thread, on
//! another CPU, while the reader is served the current one.
//!
//! This module keeps the bookkeeping (who reads where, what is being fetched); the engine's
//! worker does the fetching (`Engine::run_readahead`).

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::cache::Key;
use super::codec::Tier;

/// Chunks fetched ahead of a sequential reader.
const DEPTH: u32 = 2;
/// Readers remembered; past this the memory is cleared (it only decides read-ahead).
const TRACKED: usize = 1024;

/// What to fetch into the cache.
pub enum Job {
    /// One chunk of a blob.
    Chunk { key: Key, tier: Tier, id: u64 },
    /// A small file's whole content, asked for before anyone reads it (a partner of a
    /// file just opened).
    File(u64),
}

#[derive(Default)]
struct State {
    in_flight: HashSet<Key>,
    /// Per inode: the version and chunk its last read ended in.
    last: HashMap<u64, (u64, u32)>,
}

#[derive(Default)]
pub struct Readahead {
    state: Mutex<State>,
    landed: Condvar,
    /// Where jobs go; `None` while no worker runs (then nothing is read ahead).
    jobs: Mutex<Option<Sender<Job>>>,
}

impl Readahead {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn jobs(&self) -> MutexGuard<'_, Option<Sender<Job>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For the worker: from now on, jobs arrive here.
    pub fn start(&self) -> Receiver<Job> {
        let (tx, rx) = std::sync::mpsc::channel();
        *self.jobs() = Some(tx);
        rx
    }

    /// For the worker, when it stops: nothing more is queued, and nobody waits for
    /// what was queued but will not be fetched.
    pub fn stop(&self) {
        let mut st = self.lock();
        *self.jobs() = None;
        st.in_flight.clear();
        self.landed.notify_all();
    }

    /// Notes that chunk `key.chunk` of a blob of `chunks` chunks was read. When the reader
    /// is moving forward in order (or starts at the beginning), the chunks after it that
    /// `cached` does not already hold are queued.
    pub fn after_read(
        &self,
        key: Key,
        chunks: u32,
        (tier, id): (Tier, u64),
        cached: impl Fn(&Key) -> bool,
    ) {
        // Lock order as in `stop`: state, then jobs. No worker: nothing to note either.
        let mut st = self.lock();
        let jobs = self.jobs();
        let Some(jobs) = jobs.as_ref() else {
            return;
        };
        let last = st.last.get(&key.ino).copied();
        // Only on entering a chunk: reads within one chunk have queued what they would.
        let sequential = last != Some((key.version, key.chunk))
            && (key.chunk == 0 || last == Some((key.version, key.chunk.wrapping_sub(1))));
        if st.last.len() >= TRACKED && !st.last.contains_key(&key.ino) {
            st.last.clear();
        }
        st.last.insert(key.ino, (key.version, key.chunk));
        if !sequential {
            return;
        }
        for next in key.chunk + 1..key.chunk.saturating_add(1 + DEPTH).min(chunks) {
            let ahead = Key { chunk: next, ..key };
            if st.in_flight.contains(&ahead) || cached(&ahead) {
                continue;
            }
            if jobs
                .send(Job::Chunk {
                    key: ahead,
                    tier,
                    id,
                })
                .is_ok()
            {
                st.in_flight.insert(ahead);
            }
        }
    }

    /// Queues `ino`'s content to be fetched into the cache. False when no worker runs.
    pub fn prefetch(&self, ino: u64) -> bool {
        self.jobs()
            .as_ref()
            .is_some_and(|jobs| jobs.send(Job::File(ino)).is_ok())
    }

    /// Waits while `key` is being fetched ahead. True when it was (look in the cache again).
    pub fn wait(&self, key: &Key) -> bool {
        let mut st = self.lock();
        let mut waited = false;
        while st.in_flight.contains(key) {
            waited = true;
            st = self.landed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        waited
    }

    /// The worker is done with `key` (cached, or given up on).
    pub fn done(&self, key: &Key) {
        self.lock().in_flight.remove(key);
        self.landed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(j: Job) -> Option<u32> {
        match j {
            Job::Chunk { key, .. } => Some(key.chunk),
            Job::File(_) => None,
        }
    }

    fn key(chunk: u32) -> Key {
        Key {
            ino: 9,
            version: 1,
            chunk,
        }
    }

    #[test]
    fn queues_ahead_of_a_sequential_reader_only() {
        let ra = Readahead::default();
        ra.after_read(key(0), 10, (Tier::Warm, 4), |_| false);
        assert!(!ra.wait(&key(1)), "no worker, no read-ahead");
        let jobs = ra.start();
        let blob = (Tier::Warm, 4);
        ra.after_read(key(0), 10, blob, |_| false);
        let queued: Vec<u32> = jobs.try_iter().filter_map(chunk).collect();
        assert_eq!(queued, [1, 2], "a read from the start fetches ahead");
        ra.after_read(key(0), 10, blob, |_| false);
        assert_eq!(
            jobs.try_iter().count(),
            0,
            "more reads in one chunk queue nothing"
        );

        ra.after_read(key(1), 10, blob, |_| false);
        let queued: Vec<u32> = jobs.try_iter().filter_map(chunk).collect();
        assert_eq!(queued, [3], "chunks already in flight are not queued twice");

        ra.after_read(key(7), 10, blob, |_| false);
        assert_eq!(jobs.try_iter().count(), 0, "a jump is not sequential");
        ra.after_read(key(8), 10, blob, |k| k.chunk == 9);
        assert_eq!(
            jobs.try_iter().count(),
            0,
            "cached chunks and the end stop it"
        );

        // A reader waiting for a chunk in flight is released when it lands.
        let ra = std::sync::Arc::new(ra);
        let waiter = {
            let ra = ra.clone();
            std::thread::spawn(move || ra.wait(&key(2)))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        ra.done(&key(2));
        assert!(
            waiter.join().expect("join"),
            "the waiter saw the chunk in flight"
        );
        assert!(!ra.wait(&key(2)), "nothing to wait for once it landed");

        // A stopping worker releases every waiter and takes no more jobs.
        ra.after_read(key(5), 10, blob, |_| false);
        ra.after_read(key(6), 10, blob, |_| false);
        assert!(jobs.try_iter().count() > 0);
        ra.stop();
        assert!(!ra.wait(&key(7)), "waiters are released on stop");
        ra.after_read(key(7), 10, blob, |_| false);
        assert_eq!(jobs.try_iter().count(), 0, "nothing is queued after stop");
    }
}
