//! Moves between tiers: a user's `mv` (seen through `Event::Moved`) or the policy's (made
//! here, one record at a time, with the engine's rename), counted per pair of tiers and
//! per directory, and written as one JSON line each to the rebalancing log.

use std::collections::HashMap;

use serde_json::json;

use crate::engine::codec::Tier;
use crate::engine::tree::Kind;
use crate::namespace;
use crate::regions::Cx;
use crate::regions::temporal::time::{self, Micros};

use super::Tiering;
use super::candidates::{self, Candidate};
use super::policy::Policy;

/// One move of a file (or a directory with what is below it) into another tier.
#[derive(Clone, Debug)]
pub struct Move {
    pub at: Micros,
    pub ino: u64,
    /// Where it is now, from the root.
    pub path: String,
    pub from: Tier,
    pub to: Tier,
    pub bytes: u64,
    pub directory: bool,
    pub reason: String,
    pub by_policy: bool,
    /// The directories it left and entered (known for the policy's moves).
    pub dirs: Option<(u64, u64)>,
}

impl Move {
    /// A user's move of `ino` from `from` to `to` (`how`: a rename, or a choice of tier).
    pub fn by_user(cx: &Cx<'_>, ino: u64, (from, to): (Tier, Tier), how: &str) -> Move {
        let attr = cx.store.getattr(ino).ok();
        Move {
            at: time::now(),
            ino,
            path: namespace::join(&cx.store.path_of(ino)),
            from,
            to,
            bytes: attr.as_ref().map_or(0, |a| a.size),
            directory: attr.is_some_and(|a| a.kind == Kind::Dir),
            reason: how.to_string(),
            by_policy: false,
            dirs: None,
        }
    }

    /// The record's key: its name without `.json`, below its type (`users/alice`).
    pub fn key(&self) -> String {
        let mut parts = self.path.rsplit('/');
        let name = parts.next().unwrap_or_default();
        let name = name.strip_suffix(".json").unwrap_or(name);
        match parts.next() {
            Some(ty) if !self.directory => format!("{ty}/{name}"),
            _ => name.to_string(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "time": time::format_rfc3339(self.at),
            "key": self.key(),
            "path": self.path,
            "inode": self.ino,
            "kind": if self.directory { "directory" } else { "file" },
            "from": self.from.dir_name(),
            "to": self.to.dir_name(),
            "bytes": self.bytes,
            "by": if self.by_policy { "policy" } else { "user" },
            "reason": self.reason,
        })
    }

    /// One line of `rebalancing_log.jsonl`.
    pub fn line(&self) -> String {
        let mut l = serde_json::to_string(&self.json()).unwrap_or_default();
        l.push('\n');
        l
    }
}

/// Moves of one kind: how many, and their bytes.
#[derive(Clone, Copy, Default, Debug)]
pub struct Tally {
    pub count: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, m: &Move) {
        self.count += 1;
        self.bytes += m.bytes;
    }
}

/// What the policy moved out of and into one directory.
#[derive(Clone, Default)]
pub struct DirMoves {
    pub moved_in: u64,
    pub moved_out: u64,
    pub last: Option<Move>,
}

/// Every move since the mount.
#[derive(Default)]
pub struct Moves {
    /// By pair: `[from][to]`.
    pub pairs: [[Tally; 3]; 3],
    pub by_user: Tally,
    pub by_policy: Tally,
    pub by_dir: HashMap<u64, DirMoves>,
    pub last: Option<Move>,
}

impl Moves {
    pub fn count(&mut self, m: &Move) {
        self.pairs[m.from as usize][m.to as usize].add(m);
        if m.by_policy {
            self.by_policy.add(m);
        } else {
            self.by_user.add(m);
        }
        if let Some((out, into)) = m.dirs {
            let d = self.by_dir.entry(out).or_default();
            d.moved_out += 1;
            d.last = Some(m.clone());
            let d = self.by_dir.entry(into).or_default();
            d.moved_in += 1;
            d.last = Some(m.clone());
        }
        self.last = Some(m.clone());
    }

    /// Moves into (`into`) or out of a tier.
    pub fn of_tier(&self, tier: Tier, into: bool) -> Tally {
        let mut t = Tally::default();
        for other in Tier::ALL.into_iter().filter(|&o| o != tier) {
            let p = if into {
                self.pairs[other as usize][tier as usize]
            } else {
                self.pairs[tier as usize][other as usize]
            };
            t.count += p.count;
            t.bytes += p.bytes;
        }
        t
    }
}

/// One pass of the policy: the most read records up first, then the longest untouched
/// down, at most `max_moves_per_pass` in all. Returns how many moved.
pub fn pass(cx: &Cx<'_>, tiering: &Tiering, p: &Policy) -> usize {
    let plan = candidates::plan(cx, tiering, p, time::now());
    let all = plan
        .promote
        .iter()
        .chain(&plan.hot_to_warm)
        .chain(&plan.warm_to_cold);
    let mut moved = 0;
    for c in all.take(p.max_moves_per_pass as usize) {
        match move_one(cx, c) {
            Ok(Some(m)) => {
                log::info!(
                    "tiering: {} moved {} -> {} ({})",
                    m.path,
                    m.from.dir_name(),
                    m.to.dir_name(),
                    m.reason
                );
                let mut st = tiering.lock();
                st.moves.count(&m);
                st.pending.push(m);
                moved += 1;
            }
            Ok(None) => {}
            Err(e) => log::warn!(
                "tiering: moving {} to {}: {e}",
                String::from_utf8_lossy(&c.name),
                c.to.dir_name()
            ),
        }
    }
    moved
}

/// Moves one candidate into the same type directory of its target tier (made if
/// missing). `None`: a record of that name is there already (a user's, left alone).
fn move_one(cx: &Cx<'_>, c: &Candidate) -> crate::error::Result<Option<Move>> {
    let particles = cx
        .seed_dir(&format!("spacetime/{}/particles", c.to.dir_name()))
        .ok_or(crate::error::Error::NotFound)?;
    let target = cx.store.mkdir(particles.ino, &c.type_name, None)?;
    if cx.store.lookup(target.ino, &c.name).is_ok() {
        log::debug!(
            "tiering: {} stays: the name is taken in {}",
            String::from_utf8_lossy(&c.name),
            c.to.dir_name()
        );
        return Ok(None);
    }
    let _telling = cx.regions.telling(&[c.parent, target.ino]);
    cx.store.rename(c.parent, &c.name, target.ino, &c.name)?;
    // The kernel may still hold the old name (and the parents' attributes).
    (cx.gone)(c.parent, &c.name);
    (cx.changed)(c.parent);
    (cx.changed)(target.ino);
    for dir in [c.parent, target.ino] {
        let entry = crate::regions::Event::Entry { dir, name: &c.name };
        cx.regions.observe(cx, &entry);
    }
    Ok(Some(Move {
        at: time::now(),
        ino: c.ino,
        path: namespace::join(&cx.store.path_of(c.ino)),
        from: c.from,
        to: c.to,
        bytes: c.size,
        directory: false,
        reason: c.reason.clone(),
        by_policy: true,
        dirs: Some((c.parent, target.ino)),
    }))
}

/// A directory's policy moves, for its manifest.
pub fn manifest_fields(d: &DirMoves) -> serde_json::Value {
    json!({
        "records_moved_in_by_policy": d.moved_in,
        "records_moved_out_by_policy": d.moved_out,
        "last_move": d.last.as_ref().map(Move::json),
    })
}
