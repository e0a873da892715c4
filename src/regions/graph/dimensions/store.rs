//! The vectors of an index, in slots: one flat array of `f32`s, a slot per vector ever
//! inserted since the last compaction. Removing or replacing a key only marks its slot
//! dead (the proximity graph keeps pointing at it, and walks through it), so slot numbers
//! stay valid until [`Store::compacted`] drops the dead ones.

use std::collections::HashMap;

use super::metric::inv_norm;

#[derive(Clone, Default)]
pub struct Store {
    /// Length of every vector; 0 while the store has never held one.
    pub dim: usize,
    data: Vec<f32>,
    /// `1/|v|` per slot, for the cosine.
    inv: Vec<f32>,
    keys: Vec<u64>,
    live: Vec<bool>,
    slots: HashMap<u64, u32>,
}

impl Store {
    pub fn new(dim: usize) -> Store {
        Store {
            dim,
            ..Store::default()
        }
    }

    /// Live vectors.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every slot, live or dead.
    pub fn slots(&self) -> usize {
        self.keys.len()
    }

    pub fn dead(&self) -> usize {
        self.slots() - self.len()
    }

    pub fn vector(&self, slot: u32) -> &[f32] {
        let at = slot as usize * self.dim;
        &self.data[at..at + self.dim]
    }

    /// Asks the CPU to start loading `slot`'s vector into its cache. A graph search meets
    /// vectors in no order the hardware can guess, and waited on memory for each one in
    /// turn; asked for all of a node's neighbours before their distances are computed,
    /// the loads overlap (`approximate_recall_on_*` in `tests.rs` show the query rates).
    pub fn prefetch(&self, slot: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            const LINE: usize = 64;
            let v = self.vector(slot);
            let first = v.as_ptr().cast::<i8>();
            let lead = first.addr() % LINE;
            let line_start = first.wrapping_sub(lead);
            let mut at = 0;
            while at < lead + std::mem::size_of_val(v) {
                // SAFETY: a prefetch is a hint: it reads nothing into the program and cannot
                // fault; the addresses are those of the cache lines the slice lies in.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(line_start.wrapping_add(at)) };
                at += LINE;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    pub fn inv(&self, slot: u32) -> f32 {
        self.inv[slot as usize]
    }

    pub fn key(&self, slot: u32) -> u64 {
        self.keys[slot as usize]
    }

    pub fn is_live(&self, slot: u32) -> bool {
        self.live[slot as usize]
    }

    pub fn slot_of(&self, key: u64) -> Option<u32> {
        self.slots.get(&key).copied()
    }

    /// Puts `v` (of length `dim`) in a new slot for `key`, which must hold none.
    pub fn push(&mut self, key: u64, v: &[f32]) -> u32 {
        debug_assert!(v.len() == self.dim && !self.slots.contains_key(&key));
        let slot = self.keys.len() as u32;
        self.data.extend_from_slice(v);
        self.inv.push(inv_norm(v));
        self.keys.push(key);
        self.live.push(true);
        self.slots.insert(key, slot);
        slot
    }

    /// Marks `key`'s slot dead; the slot it had.
    pub fn kill(&mut self, key: u64) -> Option<u32> {
        let slot = self.slots.remove(&key)?;
        self.live[slot as usize] = false;
        Some(slot)
    }

    /// The live `(key, vector)`s, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[f32])> {
        (0..self.slots() as u32)
            .filter(|&s| self.is_live(s))
            .map(|s| (self.key(s), self.vector(s)))
    }

    /// The same live vectors in fresh slots (same order), without the dead.
    pub fn compacted(&self) -> Store {
        let mut out = Store::new(self.dim);
        out.data.reserve(self.len() * self.dim);
        for (key, v) in self.iter() {
            out.push(key, v);
        }
        out
    }
}
