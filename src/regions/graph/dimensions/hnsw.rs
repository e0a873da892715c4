//! A hierarchical navigable small world graph (Malkov and Yashunin, 2016) over the slots
//! of a [`Store`]: the approximate half of the index.
//!
//! Each slot gets a level `floor(−ln U · 1/ln M)` (U uniform in (0, 1] from a SplitMix64
//! seeded with a constant, so the same inserts build the same graph), and up to `M`
//! neighbours on each level above 0, `2M` on level 0, chosen by the paper's heuristic
//! (a candidate is kept only if it is nearer the new slot than to every neighbour kept
//! before it: links spread in every direction instead of bunching; room left is filled
//! with the nearest candidates passed over). A neighbour's list takes the new slot's link
//! and may grow by a quarter before the heuristic cuts it back: cutting at every overflow
//! was more than half an insert's distances (the heuristic compares candidates pairwise),
//! and re-choosing once per `max/4` links costs a few percent more distances per search
//! (`approximate_recall_on_*` in `tests.rs` count both). A search descends
//! greedily from the top level's entry point, then explores level 0 keeping the `ef`
//! best, and returns the `k` best of those.
//!
//! Removal: a dead slot stays in the graph and is walked through like any other (so no
//! path breaks), but is never returned. The index rebuilds the graph once dead slots
//! pass half the live ones (see `index`).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::metric::Metric;
use super::store::Store;
use crate::rng::SplitMix64;

/// A slot at a distance (the metric's raw value), ordered by distance then slot so that
/// ties break the same way every time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Near {
    pub d: f32,
    pub slot: u32,
}

impl Eq for Near {}

impl Ord for Near {
    fn cmp(&self, o: &Self) -> Ordering {
        self.d.total_cmp(&o.d).then(self.slot.cmp(&o.slot))
    }
}

impl PartialOrd for Near {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct GraphParams {
    /// Links per slot on levels above 0 (twice that on level 0).
    pub m: usize,
    /// Candidates kept while linking a new slot.
    pub ef_construction: usize,
}

pub struct Graph {
    p: GraphParams,
    /// `1 / ln M`: levels thin out by a factor M each.
    ml: f64,
    links: Links,
    entry: Option<u32>,
    top: usize,
    rng: SplitMix64,
}

/// Each slot's neighbours on each of its levels. Level 0, which every slot has and every
/// search ends on, is one flat array, a fixed stride a slot (its count, then room for a
/// list at its longest): a search reaches a slot's list in one memory access instead of
/// three dependent ones (the slot's levels, the level's list, its items), which were
/// most of a search's stalls. Higher levels (a slot in 24 has any) are lists per slot.
struct Links {
    /// `1 +` level 0's room.
    stride: usize,
    /// The room of a list above level 0.
    upper_room: usize,
    level0: Vec<u32>,
    upper: Vec<Vec<Vec<u32>>>,
}

impl Links {
    fn new(m: usize) -> Self {
        Links {
            stride: 1 + Graph::room(Graph::max_links(m, 0)),
            upper_room: Graph::room(Graph::max_links(m, 1)),
            level0: Vec::new(),
            upper: Vec::new(),
        }
    }

    /// The length at which a list on `level` is cut back.
    fn room(&self, level: usize) -> usize {
        match level {
            0 => self.stride - 1,
            _ => self.upper_room,
        }
    }

    fn slots(&self) -> usize {
        self.upper.len()
    }

    /// Adds a slot with empty lists on levels 0 to `level`.
    fn add(&mut self, level: usize) {
        self.level0.resize(self.level0.len() + self.stride, 0);
        self.upper.push(vec![Vec::new(); level]);
    }

    /// The levels `slot` is on.
    #[cfg(test)]
    fn levels(&self, slot: u32) -> usize {
        1 + self.upper[slot as usize].len()
    }

    fn get(&self, slot: u32, level: usize) -> Option<&[u32]> {
        match level {
            0 => {
                let at = slot as usize * self.stride;
                let n = self.level0[at] as usize;
                Some(&self.level0[at + 1..at + 1 + n])
            }
            _ => self.upper[slot as usize].get(level - 1).map(Vec::as_slice),
        }
    }

    fn set(&mut self, slot: u32, level: usize, list: &[u32]) {
        match level {
            0 => {
                let at = slot as usize * self.stride;
                let n = list.len().min(self.stride - 1);
                self.level0[at] = n as u32;
                self.level0[at + 1..at + 1 + n].copy_from_slice(&list[..n]);
            }
            _ => {
                let l = &mut self.upper[slot as usize][level - 1];
                l.clear();
                l.extend_from_slice(list);
            }
        }
    }

    /// Appends `n` to `slot`'s list on `level`; its new length (the caller cuts the list
    /// back on reaching [`room`](Self::room)).
    fn push(&mut self, slot: u32, level: usize, n: u32) -> usize {
        match level {
            0 => {
                let at = slot as usize * self.stride;
                let len = self.level0[at] as usize;
                if len + 1 >= self.stride {
                    return len; // full: never met, a list is cut back on reaching `room`
                }
                self.level0[at + 1 + len] = n;
                self.level0[at] += 1;
                len + 1
            }
            _ => {
                let l = &mut self.upper[slot as usize][level - 1];
                if l.len() == l.capacity() {
                    // Grown once to the most it holds, not doubled past it.
                    l.reserve_exact(self.upper_room.saturating_sub(l.len()).max(1));
                }
                l.push(n);
                l.len()
            }
        }
    }
}

/// A visited mark per slot, cleared by being made afresh for each search (a few KiB).
struct Visited(Vec<u64>);

impl Visited {
    fn new(n: usize) -> Self {
        Visited(vec![0; n.div_ceil(64)])
    }

    /// Marks `slot`; whether it was unmarked.
    fn first(&mut self, slot: u32) -> bool {
        let (w, b) = (slot as usize / 64, 1u64 << (slot % 64));
        let fresh = self.0[w] & b == 0;
        self.0[w] |= b;
        fresh
    }
}

impl Graph {
    pub fn new(p: GraphParams) -> Graph {
        let m = p.m.max(2);
        Graph {
            p: GraphParams { m, ..p },
            ml: 1.0 / (m as f64).ln(),
            links: Links::new(m),
            entry: None,
            top: 0,
            rng: SplitMix64::new(0x1d1a_b0de_5eed_2024),
        }
    }

    /// A graph of every slot of `store` (dead ones too: they are linked, and skipped).
    pub fn build(p: GraphParams, store: &Store, metric: Metric) -> Graph {
        let mut g = Graph::new(p);
        for slot in 0..store.slots() as u32 {
            g.insert(store, metric, slot);
        }
        g
    }

    /// The slots linked: the store's first `slots()`.
    pub fn slots(&self) -> usize {
        self.links.slots()
    }

    fn dist(store: &Store, metric: Metric, q: &[f32], iq: f32, slot: u32) -> f32 {
        metric.raw(q, iq, store.vector(slot), store.inv(slot))
    }

    /// Links `slot`, the store's newest, into the graph; the slots its search met on the
    /// lowest level (live or dead, `ef_construction` at most), nearest first.
    pub fn insert(&mut self, store: &Store, metric: Metric, slot: u32) -> Vec<Near> {
        debug_assert_eq!(slot as usize, self.links.slots());
        let u = 1.0 - self.rng.next_f64(); // (0, 1]: ln is finite
        let level = ((-u.ln() * self.ml) as usize).min(31);
        self.links.add(level);
        let Some(entry) = self.entry else {
            self.entry = Some(slot);
            self.top = level;
            return Vec::new();
        };
        let (q, iq) = (store.vector(slot), store.inv(slot));
        let mut eps = vec![Near {
            d: Self::dist(store, metric, q, iq, entry),
            slot: entry,
        }];
        for lc in (level + 1..=self.top).rev() {
            eps = self.search_level(store, metric, q, iq, &eps, 1, lc, false);
        }
        for lc in (0..=level.min(self.top)).rev() {
            let found = self.search_level(
                store,
                metric,
                q,
                iq,
                &eps,
                self.p.ef_construction,
                lc,
                false,
            );
            let max = Self::max_links(self.p.m, lc);
            let room = self.links.room(lc);
            let chosen = self.select(store, metric, &found, self.p.m);
            for &n in &chosen {
                if self.links.push(n, lc, slot) >= room {
                    self.shrink(store, metric, n, lc, max);
                }
            }
            self.links.set(slot, lc, &chosen);
            eps = found;
        }
        if level > self.top {
            self.top = level;
            self.entry = Some(slot);
        }
        eps
    }

    /// The links a slot keeps on `level` once its list is re-chosen.
    fn max_links(m: usize, level: usize) -> usize {
        if level == 0 { 2 * m } else { m }
    }

    /// The length at which a list of `max` is re-chosen: a quarter more, at least one.
    fn room(max: usize) -> usize {
        max + (max / 4).max(1)
    }

    /// Cuts `slot`'s links on `level` back to `max`, by the same heuristic.
    fn shrink(&mut self, store: &Store, metric: Metric, slot: u32, level: usize, max: usize) {
        let (v, iv) = (store.vector(slot), store.inv(slot));
        let links = self.links.get(slot, level).unwrap_or_default();
        for &n in links {
            store.prefetch(n);
        }
        let mut cands: Vec<Near> = links
            .iter()
            .map(|&n| Near {
                d: Self::dist(store, metric, v, iv, n),
                slot: n,
            })
            .collect();
        cands.sort_unstable();
        let chosen = self.select(store, metric, &cands, max);
        self.links.set(slot, level, &chosen);
    }

    /// The paper's neighbour heuristic over `cands` (nearest first): keep a candidate
    /// only if it is nearer the new slot than to any kept one. Room left is filled with
    /// the nearest of those passed over, so a slot in a tight clump keeps `m` links.
    fn select(&self, store: &Store, metric: Metric, cands: &[Near], m: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        let mut passed = Vec::new();
        for c in cands {
            if kept.len() >= m {
                break;
            }
            let (v, iv) = (store.vector(c.slot), store.inv(c.slot));
            if kept
                .iter()
                .all(|&k| Self::dist(store, metric, v, iv, k) > c.d)
            {
                kept.push(c.slot);
            } else {
                passed.push(c.slot);
            }
        }
        let room = m.saturating_sub(kept.len());
        kept.extend(passed.into_iter().take(room));
        kept
    }

    /// Best-first search of one level from `eps`, keeping the `ef` nearest (only live
    /// ones when `live_only`); returned nearest first.
    #[allow(clippy::too_many_arguments)]
    fn search_level(
        &self,
        store: &Store,
        metric: Metric,
        q: &[f32],
        iq: f32,
        eps: &[Near],
        ef: usize,
        level: usize,
        live_only: bool,
    ) -> Vec<Near> {
        let mut seen = Visited::new(self.links.slots());
        let mut todo: BinaryHeap<Reverse<Near>> = BinaryHeap::new();
        let mut best: BinaryHeap<Near> = BinaryHeap::new();
        let keep = |s: u32| !live_only || store.is_live(s);
        for &e in eps {
            if seen.first(e.slot) {
                todo.push(Reverse(e));
                if keep(e.slot) {
                    best.push(e);
                }
            }
        }
        while best.len() > ef {
            best.pop();
        }
        let mut fresh: Vec<u32> = Vec::new();
        while let Some(Reverse(c)) = todo.pop() {
            if best.len() >= ef && best.peek().is_some_and(|w| c.d > w.d) {
                break;
            }
            let Some(links) = self.links.get(c.slot, level) else {
                continue;
            };
            // The unvisited first, their vectors asked for; then their distances.
            fresh.clear();
            for &n in links {
                if seen.first(n) {
                    store.prefetch(n);
                    fresh.push(n);
                }
            }
            for &n in &fresh {
                let d = Self::dist(store, metric, q, iq, n);
                let near = Near { d, slot: n };
                if best.len() < ef || best.peek().is_some_and(|w| near < *w) {
                    todo.push(Reverse(near));
                    if keep(n) {
                        best.push(near);
                        if best.len() > ef {
                            best.pop();
                        }
                    }
                }
            }
        }
        best.into_sorted_vec()
    }

    /// The `k` live slots nearest `q` found with `ef` candidates, nearest first.
    pub fn search(
        &self,
        store: &Store,
        metric: Metric,
        q: &[f32],
        iq: f32,
        k: usize,
        ef: usize,
    ) -> Vec<Near> {
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        let mut eps = vec![Near {
            d: Self::dist(store, metric, q, iq, entry),
            slot: entry,
        }];
        for lc in (1..=self.top).rev() {
            eps = self.search_level(store, metric, q, iq, &eps, 1, lc, false);
        }
        let mut found = self.search_level(store, metric, q, iq, &eps, ef.max(k), 0, true);
        found.truncate(k);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::graph::dimensions::metric::inv_norm;
    use crate::regions::graph::dimensions::tests::random_vec;

    /// The smallest `m` (a quarter of 2 is 0) still has its lists cut back, and a graph
    /// with enough links finds a stored vector itself.
    #[test]
    fn lists_stay_within_their_room_for_every_m() {
        let mut rng = SplitMix64::new(3);
        for m in [2, 3, 4, 24] {
            let mut store = Store::new(8);
            let mut g = Graph::new(GraphParams {
                m,
                ef_construction: 32,
            });
            for key in 0..1_500u64 {
                let v = random_vec(&mut rng, 8);
                let slot = store.push(key, &v);
                g.insert(&store, Metric::Euclidean, slot);
            }
            for slot in 0..g.links.slots() as u32 {
                for level in 0..g.links.levels(slot) {
                    let list = g.links.get(slot, level).unwrap_or_default();
                    let room = Graph::room(Graph::max_links(g.p.m, level));
                    assert!(
                        list.len() < room,
                        "m {m}: slot {slot} level {level}: {}",
                        list.len()
                    );
                }
            }
            if m < 4 {
                continue; // too few links to promise every search its way
            }
            for slot in (0..1_500u32).step_by(97) {
                let v = store.vector(slot).to_vec();
                let found = g.search(&store, Metric::Euclidean, &v, inv_norm(&v), 1, 64);
                assert_eq!(found.first().map(|n| n.slot), Some(slot), "m {m}");
            }
        }
    }
}
