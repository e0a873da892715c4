//! `wormholes/network_analytics.json`: the traffic of each tier and region (reads and
//! commits since the mount and per second over the sampling period) and the moves along
//! each route between tiers.

use serde_json::{Value, json};

use crate::engine::codec::Tier;
use crate::regions::pretty;
use crate::regions::temporal::time;
use crate::regions::tiering::State;
use crate::regions::tiering::traffic::{Ops, Rates};

fn rate(n: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        (n as f64 / secs * 100.0).round() / 100.0
    }
}

fn ops(total: Ops, period: Ops, secs: f64) -> Value {
    json!({
        "reads": total.reads,
        "commits": total.commits,
        "reads_per_sec": rate(period.reads, secs),
        "commits_per_sec": rate(period.commits, secs),
    })
}

/// The routes worth showing: the seed's two, and any other pair something moved along.
pub fn routes(st: &State) -> Vec<(Tier, Tier)> {
    let mut out = vec![(Tier::Hot, Tier::Warm), (Tier::Warm, Tier::Cold)];
    for from in Tier::ALL {
        for to in Tier::ALL {
            if from != to
                && !out.contains(&(from, to))
                && st.moves.pairs[from as usize][to as usize].count > 0
            {
                out.push((from, to));
            }
        }
    }
    out
}

pub fn render(st: &State, rates: Option<&Rates>) -> Vec<u8> {
    let latest = st.traffic.latest();
    let secs = rates.map_or(0.0, |r| r.secs);
    let mut tiers = serde_json::Map::new();
    for tier in Tier::ALL {
        let i = tier as usize;
        let total = latest.map(|p| p.tiers[i]).unwrap_or_default();
        let period = rates.map(|r| r.tiers[i]).unwrap_or_default();
        tiers.insert(tier.dir_name().to_string(), ops(total, period, secs));
    }
    let regions: Vec<Value> = latest
        .map(|p| {
            p.regions
                .iter()
                .map(|(&(region, tier), &total)| {
                    let period = rates
                        .and_then(|r| r.regions.get(&(region, tier)).copied())
                        .unwrap_or_default();
                    let mut v = ops(total, period, secs);
                    v["region"] = json!(region);
                    v["tier"] = json!(tier.dir_name());
                    v
                })
                .collect()
        })
        .unwrap_or_default();
    let routes: Vec<Value> = routes(st)
        .into_iter()
        .map(|(from, to)| {
            let t = st.moves.pairs[from as usize][to as usize];
            json!({
                "from": from.dir_name(),
                "to": to.dir_name(),
                "moves": t.count,
                "bytes_moved": t.bytes,
            })
        })
        .collect();
    pretty(&json!({
        "sampled_at": time::format_rfc3339(time::now()),
        "period_secs": (secs * 1000.0).round() / 1000.0,
        "tiers": tiers,
        "regions": regions,
        "routes": routes,
        "moves": {
            "by_user": { "count": st.moves.by_user.count, "bytes": st.moves.by_user.bytes },
            "by_policy": { "count": st.moves.by_policy.count, "bytes": st.moves.by_policy.bytes },
        },
    }))
}
