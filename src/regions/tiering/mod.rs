//! Tiering: what the universe knows about where its records live and how they move
//! between the tiers, shared by the two regions that show it (`entropy/`: balance,
//! history and the log of moves; `wormholes/`: routes, traffic and topology). It notes
//! every read of a stored file (`Event::Read`) and every move by a user's `mv`
//! (`Event::Moved`), samples the traffic of each tier and region, and runs the optional
//! policy of `configuration/tiering_policy.json` that demotes records nobody touched for
//! a while and promotes records read often.

pub mod candidates;
pub mod moves;
pub mod policy;
pub mod traffic;

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::engine::codec::Tier;
use crate::regions::config::Watched;
use crate::regions::temporal::time::{self, Micros};
use crate::regions::{Cx, Event};

use self::moves::{Move, Moves};
use self::policy::Policy;
use self::traffic::Points;

/// Files whose reads are remembered at most (the least recently read are forgotten first:
/// they fall back to their mtime, which is older, so forgetting only ages them).
const READS_KEPT: usize = 100_000;
/// Read instants kept per file: enough for any `promote_after_reads` that matters.
const READ_TIMES: usize = 64;

/// When a file was read lately.
#[derive(Clone, Default)]
pub struct Reads {
    pub last: Micros,
    /// The latest read instants, oldest first.
    pub times: VecDeque<Micros>,
}

impl Reads {
    /// Reads since `from`.
    pub fn since(&self, from: Micros) -> u32 {
        self.times.iter().filter(|&&t| t >= from).count() as u32
    }
}

#[derive(Default)]
pub struct State {
    pub reads: HashMap<u64, Reads>,
    pub moves: Moves,
    /// Moves not yet written to the rebalancing log, oldest first.
    pub pending: Vec<Move>,
    pub last_pass: Option<Instant>,
    /// When the last pass ran, and what it moved.
    pub last_pass_at: Option<Micros>,
    pub last_pass_moved: usize,
    pub traffic: Points,
}

pub struct Tiering {
    pub policy: Watched<Policy>,
    state: Mutex<State>,
}

impl Default for Tiering {
    fn default() -> Self {
        Tiering::new()
    }
}

impl Tiering {
    pub fn new() -> Tiering {
        Tiering {
            policy: Watched::new(policy::FILE, Policy::parse),
            state: Mutex::default(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes what happened to a stored file: called on the request's path, so it only
    /// counts (what is written is written at the next tick).
    pub fn observe(&self, cx: &Cx<'_>, event: &Event<'_>) {
        match *event {
            Event::Read { ino, .. } => {
                let now = time::now();
                let mut st = self.lock();
                if st.reads.len() >= READS_KEPT && !st.reads.contains_key(&ino) {
                    forget_oldest(&mut st.reads);
                }
                let r = st.reads.entry(ino).or_default();
                r.last = now;
                r.times.push_back(now);
                while r.times.len() > READ_TIMES {
                    r.times.pop_front();
                }
            }
            Event::Moved { ino, from, to, how } => {
                let m = Move::by_user(cx, ino, (from, to), how);
                let mut st = self.lock();
                st.moves.count(&m);
                st.pending.push(m);
            }
            Event::Entry { .. } | Event::Committed { .. } => {}
        }
    }

    /// One tick's work: the traffic sample, and the policy's pass when one is due.
    pub fn tick(&self, cx: &Cx<'_>) {
        let point = traffic::Point::now(cx);
        self.lock().traffic.push(point);
        let p = self.policy.get(cx);
        let due = {
            let st = self.lock();
            st.last_pass
                .is_none_or(|t| t.elapsed().as_secs() >= p.interval_secs)
        };
        if p.enabled && due {
            let moved = moves::pass(cx, self, &p);
            let mut st = self.lock();
            st.last_pass = Some(Instant::now());
            st.last_pass_at = Some(time::now());
            st.last_pass_moved = moved;
        }
    }

    /// The moves still to log, oldest first.
    pub fn take_pending(&self) -> Vec<Move> {
        std::mem::take(&mut self.lock().pending)
    }
}

/// Drops the tenth of the remembered files read longest ago (one scan for many inserts).
fn forget_oldest(reads: &mut HashMap<u64, Reads>) {
    let mut lasts: Vec<Micros> = reads.values().map(|r| r.last).collect();
    if lasts.is_empty() {
        return;
    }
    let cut = lasts.len() / 10;
    let (_, &mut edge, _) = lasts.select_nth_unstable(cut);
    reads.retain(|_, r| r.last > edge);
}

/// The tier named in a path below `spacetime/`.
pub fn tier_of_path(path: &str) -> Option<Tier> {
    let rest = path.strip_prefix("spacetime/")?;
    Tier::from_dir_name(rest.split('/').next()?.as_bytes())
}
