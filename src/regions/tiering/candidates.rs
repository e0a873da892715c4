//! What the policy would move next: the records (`.json` files directly in a type
//! directory below `spacetime/<tier>/particles/`) untouched long enough to go down a
//! tier, and those read often enough to come up to hot. A record's last touch is its
//! last write (mtime) or its last read this daemon saw, whichever is later.

use crate::engine::Attr;
use crate::engine::codec::Tier;
use crate::engine::tree::{Kind, Ts};
use crate::regions::Cx;
use crate::regions::temporal::time::Micros;

use super::Tiering;
use super::policy::Policy;

const SECOND: Micros = 1_000_000;

#[derive(Clone, Debug)]
pub struct Candidate {
    pub ino: u64,
    /// Its type directory, and that directory's name.
    pub parent: u64,
    pub type_name: Vec<u8>,
    pub name: Vec<u8>,
    pub from: Tier,
    pub to: Tier,
    pub last_touch: Micros,
    pub size: u64,
    /// Reads within the policy's promotion window.
    pub reads: u32,
    pub reason: String,
}

/// The candidates of each route, in the order the policy takes them.
#[derive(Default)]
pub struct Plan {
    /// Warm and cold records read often, most read first.
    pub promote: Vec<Candidate>,
    /// Untouched longest first.
    pub hot_to_warm: Vec<Candidate>,
    pub warm_to_cold: Vec<Candidate>,
}

pub fn micros(t: Ts) -> Micros {
    t.secs
        .saturating_mul(SECOND)
        .saturating_add(i64::from(t.nanos) / 1000)
}

/// One record as found: its type directory (inode, name), its name, its attributes.
struct Found {
    parent: u64,
    type_name: Vec<u8>,
    name: Vec<u8>,
    attr: Attr,
}

/// Every record stored in `tier`.
fn records(cx: &Cx<'_>, tier: Tier) -> Vec<Found> {
    let Some(particles) = cx.seed_dir(&format!("spacetime/{}/particles", tier.dir_name())) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (type_name, dir) in cx.store.readdir_names(particles.ino).unwrap_or_default() {
        if dir.kind != Kind::Dir {
            continue;
        }
        for (name, attr) in cx.store.readdir_names(dir.ino).unwrap_or_default() {
            if attr.kind == Kind::File && name.ends_with(b".json") && attr.tier == tier {
                out.push(Found {
                    parent: dir.ino,
                    type_name: type_name.clone(),
                    name,
                    attr,
                });
            }
        }
    }
    out
}

/// What `p` would move at `now`, whether it is enabled or not.
pub fn plan(cx: &Cx<'_>, tiering: &Tiering, p: &Policy, now: Micros) -> Plan {
    let found: Vec<(Tier, Found)> = Tier::ALL
        .into_iter()
        .flat_map(|t| records(cx, t).into_iter().map(move |f| (t, f)))
        .collect();
    let window = now.saturating_sub(secs(p.promote_window_secs));
    let mut plan = Plan::default();
    let st = tiering.lock();
    for (tier, f) in found {
        let (last_read, reads) = st
            .reads
            .get(&f.attr.ino)
            .map_or((None, 0), |r| (Some(r.last), r.since(window)));
        let last_touch = micros(f.attr.mtime).max(last_read.unwrap_or(Micros::MIN));
        let idle = now.saturating_sub(last_touch);
        let candidate = |to: Tier, reason: String| Candidate {
            ino: f.attr.ino,
            parent: f.parent,
            type_name: f.type_name.clone(),
            name: f.name.clone(),
            from: tier,
            to,
            last_touch,
            size: f.attr.size,
            reads,
            reason,
        };
        let untouched =
            |after: u64| (idle >= secs(after)).then(|| format!("untouched {} s", idle / SECOND));
        match tier {
            Tier::Hot => plan
                .hot_to_warm
                .extend(untouched(p.demote_after_secs).map(|r| candidate(Tier::Warm, r))),
            Tier::Warm | Tier::Cold if reads >= p.promote_after_reads => {
                plan.promote.push(candidate(
                    Tier::Hot,
                    format!("read {reads} times in {} s", p.promote_window_secs),
                ))
            }
            Tier::Warm => plan
                .warm_to_cold
                .extend(untouched(p.demote_cold_after_secs).map(|r| candidate(Tier::Cold, r))),
            Tier::Cold => {}
        }
    }
    plan.promote.sort_by_key(|c| std::cmp::Reverse(c.reads));
    plan.hot_to_warm.sort_by_key(|c| c.last_touch);
    plan.warm_to_cold.sort_by_key(|c| c.last_touch);
    plan
}

fn secs(s: u64) -> Micros {
    i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(SECOND)
}
