//! The content cache: an LRU of decoded contents (whole small files, and 1 MiB chunks of
//! large ones) bounded by a byte limit, keyed by inode version so that a stale entry can
//! never be served. Old versions are not hunted down on commit (that would scan the
//! cache); they are never asked for again and age out under the limit.
//!
//! Written content is cached as it is written, as a read would cache it: a new blob's
//! chunks by where they live (`Key::part`) while it is coded (`draft`), renamed to the
//! file's version when a commit makes the blob a file's whole content (`adopt_blob`). A
//! blob thrown away uncommitted leaves its chunks to age out likewise.
//!
//! The budget (`--cache-mb`) is the daemon's memory budget: the limit is what the rest of
//! the daemon leaves of it (`share`), at least an eighth of it, so that the graph's index,
//! the inode table and the request buffers are paid for by the cache rather than on top.

use std::sync::Arc;

use lru::LruCache;

use super::codec::Tier;
use super::extents::Part;
use super::store::CHUNK;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub ino: u64,
    pub version: u64,
    /// `WHOLE` for a whole content, else the chunk index of a blob.
    pub chunk: u32,
}

pub const WHOLE: u32 = u32::MAX;

impl Key {
    /// The key of stored bytes that never change (a piece of a file, see `extents`): by
    /// where they live, so that every version sharing the piece shares the entry. The top
    /// bit keeps these apart from inode numbers, which never get near it.
    pub fn part(part: Part, chunk: u32) -> Key {
        const PART: u64 = 1 << 63;
        let (kind, id, version) = match part {
            Part::Wal { seg, off } => (0, seg, off),
            Part::Pack { id, off, .. } => (1, id, off),
            Part::Blob { id, .. } => (2, id, 0),
        };
        Key {
            ino: PART | kind << 61 | id,
            version,
            chunk,
        }
    }
}

pub struct Cache {
    lru: LruCache<Key, Arc<Vec<u8>>>,
    bytes: usize,
    budget: usize,
    /// What the rest of the daemon used at the last `fit` (the limit gives way to it).
    rest: usize,
    pub hits: u64,
    pub misses: u64,
    /// (hits, misses) of the reads of each tier's files.
    pub by_tier: [(u64, u64); 3],
    pub evictions: u64,
}

/// What an entry costs besides its bytes (LRU node and hash slot ~100 B, the Arc'd Vec
/// header ~56 B, allocator headers), so that a budget full of tiny records is honest.
const ENTRY_OVERHEAD: usize = 192;

impl Cache {
    pub fn new(budget: usize) -> Cache {
        Cache {
            lru: LruCache::unbounded(),
            bytes: 0,
            budget,
            rest: 0,
            hits: 0,
            misses: 0,
            by_tier: [(0, 0); 3],
            evictions: 0,
        }
    }

    /// Whether `key` is cached, without counting a hit or refreshing it.
    pub fn contains(&self, key: &Key) -> bool {
        self.lru.contains(key)
    }

    /// A read of a file of `tier`: counted as a hit or a miss, overall and for the tier.
    pub fn get(&mut self, key: &Key, tier: Tier) -> Option<Arc<Vec<u8>>> {
        let hit = self.lru.get(key).cloned();
        let t = &mut self.by_tier[tier as usize];
        if hit.is_some() {
            self.hits += 1;
            t.0 += 1;
        } else {
            self.misses += 1;
            t.1 += 1;
        }
        hit
    }

    /// Caches `data` (counted by its allocation, not its length) unless it would take more
    /// than a quarter of the limit: one large read must not flush everything else.
    pub fn put(&mut self, key: Key, data: Arc<Vec<u8>>) {
        let cost = cost_of(&data);
        if cost > self.limit() / 4 {
            return;
        }
        if let Some(old) = self.lru.put(key, data) {
            self.bytes -= cost_of(&old);
        }
        self.bytes += cost;
        self.shrink();
    }

    /// Files blob `id`'s chunks, cached by where they live while it was written, under
    /// version `version` of `ino`, whose whole content (`len` bytes) the blob now is.
    pub fn adopt_blob(&mut self, (tier, id): (Tier, u64), len: u64, ino: u64, version: u64) {
        let chunks = len.div_ceil(CHUNK as u64).min(u64::from(WHOLE)) as u32;
        for chunk in 0..chunks {
            let from = Key::part(Part::Blob { tier, id }, chunk);
            if let Some(data) = self.lru.pop(&from) {
                self.bytes -= cost_of(&data);
                let to = Key {
                    ino,
                    version,
                    chunk,
                };
                self.put(to, data);
            }
        }
    }

    /// A new budget, less what the rest of the daemon used at the last `fit`.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        self.shrink();
    }

    /// Fits the limit to a daemon whose resident memory is `resident` bytes, this cache
    /// included, evicting what no longer fits.
    pub fn fit(&mut self, resident: usize) {
        self.rest = resident.saturating_sub(self.bytes);
        self.shrink();
    }

    fn shrink(&mut self) {
        let limit = self.limit();
        while self.bytes > limit {
            match self.lru.pop_lru() {
                Some((_, v)) => {
                    self.bytes -= cost_of(&v);
                    self.evictions += 1;
                }
                None => break,
            }
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// What the cache may hold now: the budget less what the rest of the daemon uses.
    pub fn limit(&self) -> usize {
        share(self.budget, self.rest)
    }

    /// The files with cached content, most recently used first, with the bytes cached of
    /// each (pieces shared between versions are kept by where they live, not by file, and
    /// are left out).
    pub fn files(&self) -> Vec<(u64, u64)> {
        let mut seen = std::collections::HashMap::new();
        let mut order = Vec::new();
        for (key, data) in self.lru.iter() {
            if key.ino >> 63 == 1 {
                continue;
            }
            let bytes = seen.entry(key.ino).or_insert_with(|| {
                order.push(key.ino);
                0u64
            });
            *bytes += data.len() as u64;
        }
        order
            .into_iter()
            .map(|ino| (ino, seen.get(&ino).copied().unwrap_or(0)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }
}

/// What the cache may hold of `budget` when the rest of the daemon holds `rest` bytes:
/// what is left, but never under an eighth of the budget (a cache that holds nothing
/// would turn every read into a decode; past that point the daemon is over budget, and
/// `real_time.json` shows it).
pub fn share(budget: usize, rest: usize) -> usize {
    budget.saturating_sub(rest).max(budget / 8)
}

/// What an entry holds in memory.
fn cost_of(data: &Vec<u8>) -> usize {
    data.capacity() + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> Key {
        Key {
            ino,
            version: 1,
            chunk: WHOLE,
        }
    }

    impl Cache {
        fn get_hot(&mut self, key: &Key) -> Option<Arc<Vec<u8>>> {
            self.get(key, Tier::Hot)
        }
    }

    #[test]
    fn stays_under_budget_and_evicts_least_recent() {
        let mut c = Cache::new(10_000);
        for i in 0..100 {
            c.put(key(i), Arc::new(vec![0; 1000]));
            assert!(c.bytes() <= 10_000);
        }
        // 8 entries of 1000 + 192 bytes fit: 92..=99.
        assert_eq!((c.len(), c.evictions), (8, 92));
        // The newest survive, the oldest are gone.
        assert!(c.get_hot(&key(99)).is_some());
        assert!(c.get_hot(&key(0)).is_none());
        // Touching an entry protects it from the next eviction.
        c.get_hot(&key(92));
        c.put(key(200), Arc::new(vec![0; 1000]));
        c.put(key(201), Arc::new(vec![0; 1000]));
        assert!(c.get_hot(&key(92)).is_some());
        assert!(c.get_hot(&key(93)).is_none() && c.get_hot(&key(94)).is_none());
    }

    #[test]
    fn oversized_entries_are_not_cached_and_budget_changes_apply() {
        let mut c = Cache::new(10_000);
        c.put(key(1), Arc::new(vec![0; 5000]));
        assert!(c.get_hot(&key(1)).is_none());
        c.put(key(3), Arc::new(vec![0; 2000]));
        c.set_budget(1000);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn the_limit_gives_way_to_the_rest_of_the_daemon() {
        let mut c = Cache::new(80_000);
        for i in 0..60 {
            c.put(key(i), Arc::new(vec![0; 1000]));
        }
        let full = c.bytes();
        assert_eq!(full, 60 * 1192);
        // The rest of the daemon holds 30,000 bytes beside the cache: 50,000 are left.
        c.fit(full + 30_000);
        assert_eq!(c.limit(), 50_000);
        assert!(
            c.bytes() <= 50_000 && c.bytes() > 50_000 - 1192,
            "{}",
            c.bytes()
        );
        // The newest entries stayed.
        assert!(c.get_hot(&key(59)).is_some() && c.get_hot(&key(0)).is_none());
        // The rest grows past the budget: the cache keeps its eighth.
        c.fit(c.bytes() + 200_000);
        assert_eq!(c.limit(), 10_000);
        assert!(c.bytes() <= 10_000);
        // An entry over a quarter of the limit is not cached while it is small.
        c.put(key(100), Arc::new(vec![0; 3000]));
        assert!(c.get_hot(&key(100)).is_none());
        // The rest shrinks again: the limit is back at the budget.
        c.fit(c.bytes());
        assert_eq!(c.limit(), 80_000);
        // A new budget gives way to the rest as the last fit measured it, at once.
        c.fit(c.bytes() + 30_000);
        c.set_budget(60_000);
        assert_eq!(c.limit(), 30_000);
        assert!(c.bytes() <= 30_000);
        assert_eq!(
            (share(100, 0), share(100, 40), share(100, 95)),
            (100, 60, 12)
        );
    }
}
