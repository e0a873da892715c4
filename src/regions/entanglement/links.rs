//! The memory of which records are read together. Every open of a record for reading is
//! compared with the opens shortly before it (the window); each pair read together gains
//! one unit of strength, and strength fades with a half-life, so that what is read
//! together now counts more than what was long ago. Memory is bounded twice: partners
//! per record, and pairs in all (the weakest go first).

use std::collections::{HashMap, VecDeque};

use super::settings::Settings;

/// Milliseconds since the Unix epoch: strengths are kept across restarts.
pub type Millis = i64;

/// Opens remembered to pair with the next ones (within the window, at most this many).
const RECENT: usize = 16;

/// One side of a pair: the strength it had at `at`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    pub partner: u64,
    pub strength: f32,
    pub at: Millis,
    /// log2 of `strength`, kept: bounding a key's partners ranks them (`rank`) at every
    /// new pair.
    log2_strength: f64,
}

impl Link {
    fn rank(&self, s: &Settings) -> f64 {
        rank(self.log2_strength, self.at, s)
    }

    /// The strength now, faded since `at`.
    pub fn effective(&self, now: Millis, s: &Settings) -> f64 {
        let age = (now - self.at).max(0) as f64 / 1000.0;
        f64::from(self.strength) * 0.5f64.powf(age / s.half_life_secs as f64)
    }
}

/// Orders links as their strengths now do, whatever the time: every strength fades by the
/// same factor, so log2 of the strength now differs from this by the same amount for all.
/// Comparing strengths now costs two powers a comparison, which was most of the daemon's
/// time while records were read in turn (every read makes new pairs, and each new pair
/// ranks its keys' partners).
fn rank(log2_strength: f64, at: Millis, s: &Settings) -> f64 {
    log2_strength + at as f64 / (1000.0 * s.half_life_secs as f64)
}

/// A pair as it is stored: each pair once, `a < b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    pub a: u64,
    pub b: u64,
    pub strength: f32,
    pub at: Millis,
}

#[derive(Default)]
pub struct Links {
    /// The latest opens, oldest first, each record once.
    recent: VecDeque<(u64, Millis)>,
    /// Each record's partners; every pair appears on both sides, alike.
    /// foldhash rather than SipHash: the keys are inode numbers, hashed a few dozen times
    /// a read.
    keys: HashMap<u64, Vec<Link>, foldhash::fast::RandomState>,
    pairs: usize,
    /// Opens seen and pairs reinforced, since the mount.
    pub reads: u64,
    pub co_accesses: u64,
}

impl Links {
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// `ino` was opened for reading at `now`: pairs it with the opens of the window.
    /// Returns how many pairs that reinforced.
    pub fn read(&mut self, ino: u64, now: Millis, s: &Settings) -> usize {
        self.reads += 1;
        let since = now - s.window_ms as Millis;
        while self.recent.front().is_some_and(|&(_, t)| t < since) {
            self.recent.pop_front();
        }
        self.recent.retain(|&(k, _)| k != ino);
        let partners: Vec<u64> = self.recent.iter().map(|&(k, _)| k).collect();
        for &p in &partners {
            self.reinforce(ino, p, now, s);
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((ino, now));
        if self.pairs > s.max_pairs {
            self.shed(s);
        }
        partners.len()
    }

    /// `ino`'s partners at least `min_strength` strong now, strongest first.
    pub fn entangled(&self, ino: u64, now: Millis, s: &Settings) -> Vec<(u64, f64)> {
        let mut out: Vec<(u64, f64)> = self
            .links_of(ino)
            .iter()
            .map(|l| (l.partner, l.effective(now, s)))
            .filter(|&(_, e)| e >= s.min_strength)
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1));
        out
    }

    pub fn links_of(&self, ino: u64) -> &[Link] {
        self.keys.get(&ino).map_or(&[], |v| v.as_slice())
    }

    /// Every record with partners.
    pub fn records(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys.keys().copied()
    }

    /// Every pair once.
    pub fn all_pairs(&self) -> Vec<Pair> {
        let mut out = Vec::with_capacity(self.pairs);
        for (&a, links) in &self.keys {
            for l in links.iter().filter(|l| a < l.partner) {
                out.push(Pair {
                    a,
                    b: l.partner,
                    strength: l.strength,
                    at: l.at,
                });
            }
        }
        out
    }

    /// Takes pairs kept from before (a restart), within this build's bounds.
    pub fn restore(&mut self, pairs: impl IntoIterator<Item = Pair>, s: &Settings) {
        for p in pairs {
            if p.a == p.b || !(p.strength.is_finite() && p.strength > 0.0) {
                continue;
            }
            self.set(p.a, p.b, p.strength, p.at, s);
        }
        if self.pairs > s.max_pairs {
            self.shed(s);
        }
    }

    /// A record is gone: so are its pairs.
    pub fn forget(&mut self, ino: u64) {
        if let Some(links) = self.keys.remove(&ino) {
            for l in links {
                self.unlink_side(l.partner, ino);
                self.pairs -= 1;
            }
        }
        self.recent.retain(|&(k, _)| k != ino);
    }

    fn reinforce(&mut self, a: u64, b: u64, now: Millis, s: &Settings) {
        self.co_accesses += 1;
        let was = self
            .links_of(a)
            .iter()
            .find(|l| l.partner == b)
            .map_or(0.0, |l| l.effective(now, s));
        self.set(a, b, (was + 1.0) as f32, now, s);
    }

    /// Sets the pair `a`–`b` on both sides, making room on each if it is new.
    fn set(&mut self, a: u64, b: u64, strength: f32, at: Millis, s: &Settings) {
        let mut new = false;
        let log2_strength = f64::from(strength).log2();
        for (x, y) in [(a, b), (b, a)] {
            let list = self.keys.entry(x).or_default();
            match list.iter_mut().find(|l| l.partner == y) {
                Some(l) => {
                    l.strength = strength;
                    l.at = at;
                    l.log2_strength = log2_strength;
                }
                None => {
                    new = true;
                    list.push(Link {
                        partner: y,
                        strength,
                        at,
                        log2_strength,
                    });
                }
            }
        }
        if new {
            self.pairs += 1;
            for x in [a, b] {
                self.trim(x, s);
            }
        }
    }

    /// Keeps `x`'s partners within the bound, dropping the weakest pairs.
    fn trim(&mut self, x: u64, s: &Settings) {
        while self.links_of(x).len() > s.partners_per_key {
            let weakest = self
                .links_of(x)
                .iter()
                .map(|l| (l.rank(s), l.partner))
                .min_by(|p, q| p.0.total_cmp(&q.0))
                .map(|(_, partner)| partner);
            let Some(w) = weakest else { return };
            self.unlink_side(x, w);
            self.unlink_side(w, x);
            self.pairs -= 1;
        }
    }

    fn unlink_side(&mut self, x: u64, y: u64) {
        if let Some(list) = self.keys.get_mut(&x) {
            list.retain(|l| l.partner != y);
            if list.is_empty() {
                self.keys.remove(&x);
            }
        }
    }

    /// Drops the weakest pairs down to nine tenths of the bound (so that this runs once
    /// per tenth of the bound of new pairs, not at every one).
    fn shed(&mut self, s: &Settings) {
        let keep = s.max_pairs * 9 / 10;
        if self.pairs <= keep {
            return;
        }
        let mut ranked: Vec<(f64, Pair)> = self
            .all_pairs()
            .into_iter()
            .map(|p| (rank(f64::from(p.strength).log2(), p.at, s), p))
            .collect();
        // Strongest first; only the split at `keep` matters, not the order on either side.
        ranked.select_nth_unstable_by(keep, |p, q| q.0.total_cmp(&p.0));
        for (_, p) in &ranked[keep..] {
            self.unlink_side(p.a, p.b);
            self.unlink_side(p.b, p.a);
            self.pairs -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Settings {
        Settings {
            window_ms: 100,
            half_life_secs: 100,
            min_strength: 2.0,
            partners_per_key: 3,
            max_pairs: 20,
            ..Settings::default()
        }
    }

    #[test]
    fn records_read_together_become_entangled_and_fade() {
        let s = rules();
        let mut l = Links::default();
        for pass in 0..3 {
            let t = pass * 10_000;
            l.read(1, t, &s);
            l.read(2, t + 10, &s);
            l.read(3, t + 20, &s);
            // Outside the window: with nobody.
            l.read(9, t + 500, &s);
        }
        assert_eq!(l.pairs(), 3, "1-2, 1-3, 2-3");
        let now = 20_020;
        let e = l.entangled(1, now, &s);
        let mut partners: Vec<u64> = e.iter().map(|p| p.0).collect();
        partners.sort();
        assert_eq!(partners, [2, 3], "{e:?}");
        // Three passes 10 s apart, 100 s half-life: 1/2^0.2 + 1/2^0.1 + 1.
        let expect = 0.5f64.powf(0.2) + 0.5f64.powf(0.1) + 1.0;
        assert!((e[0].1 - expect).abs() < 0.01, "{e:?}");
        assert!(l.entangled(9, now, &s).is_empty());
        // A minute later it has faded below the threshold (2.8 / 2^0.6).
        assert!(l.entangled(1, now + 60_000, &s).is_empty());
        assert_eq!(l.links_of(2).len(), 2, "both sides alike");
    }

    #[test]
    fn memory_stays_within_its_bounds() {
        let s = rules();
        let mut l = Links::default();
        let mut seed = 7u64;
        for i in 0..5_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            l.read(seed >> 58, i * 20, &s);
            assert!(l.pairs() <= s.max_pairs, "pairs {}", l.pairs());
            for k in l.records() {
                assert!(l.links_of(k).len() <= s.partners_per_key);
            }
        }
        // Both sides of every pair, and the count right.
        let pairs = l.all_pairs();
        assert_eq!(pairs.len(), l.pairs());
        for p in pairs {
            assert!(l.links_of(p.b).iter().any(|x| x.partner == p.a));
        }
        let first = l.records().next().expect("a record");
        l.forget(first);
        assert!(l.links_of(first).is_empty());
        assert_eq!(l.all_pairs().len(), l.pairs());
        assert!(
            l.records()
                .all(|k| l.links_of(k).iter().all(|x| x.partner != first))
        );
    }

    #[test]
    fn the_pair_dropped_is_the_weakest_now_not_the_weakest_when_set() {
        let s = Settings {
            window_ms: 100,
            half_life_secs: 100,
            partners_per_key: 2,
            max_pairs: 20,
            ..Settings::default()
        };
        // Record 1 has two partners: 2, strong long ago, and 3, weak but recent.
        let partners_after = |t: Millis| {
            let mut l = Links::default();
            let pair = |b, strength, at| Pair {
                a: 1,
                b,
                strength,
                at,
            };
            l.restore([pair(2, 4.0, 0), pair(3, 1.0, t)], &s);
            // 1 and 4 read together: a third partner for 1, one too many.
            l.read(1, t + 10, &s);
            l.read(4, t + 20, &s);
            let mut kept: Vec<u64> = l.links_of(1).iter().map(|x| x.partner).collect();
            kept.sort();
            kept
        };
        // 100 s on, 2 is worth 4 / 2 = 2: the newest-but-weakest (3, worth ~1) goes.
        assert_eq!(partners_after(100_000), [2, 4]);
        // 300 s on, 2 is worth 4 / 8 = 0.5: now it is the weakest.
        assert_eq!(partners_after(300_000), [3, 4]);
    }
}
