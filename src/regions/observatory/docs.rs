//! The observatory's generated files.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Alert;
use super::sampler::{self, Period, Point, Points};
use super::settings::Settings;
use crate::engine::codec::Tier;
use crate::engine::frame;
use crate::metrics::{self, Metrics, Op};
use crate::regions::temporal::time::{self, Micros};
use crate::regions::{Cx, pretty};

fn us(ns: u64) -> f64 {
    (ns as f64 / 10.0).round() / 100.0
}

fn ratio(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

pub fn real_time(cx: &Cx<'_>, points: &Points, uptime: Duration) -> Vec<u8> {
    let m = cx.metrics;
    let c = cx.store.counters();
    let now = Point::now(m, c.clone());
    // Rates over the last ten seconds of samples (since the start before there are any).
    let period = points
        .back(&now, 10.0)
        .map(|old| Period::between(old, &now));
    let mut ops = Map::new();
    for (i, op) in Op::ALL.iter().enumerate() {
        let h = m.histogram(*op);
        let counts = h.counts();
        let per_sec = match &period {
            Some(p) => p.per_sec[i],
            None => m.count(*op) as f64 / uptime.as_secs_f64().max(1e-3),
        };
        ops.insert(
            op.name().into(),
            json!({
                "count": m.count(*op),
                "per_sec": (per_sec * 10.0).round() / 10.0,
                "p50_us": us(metrics::quantile(&counts, 0.5)),
                "p99_us": us(metrics::quantile(&counts, 0.99)),
                "max_us": us(h.max()),
            }),
        );
    }
    let lookups = c.cache_hits + c.cache_misses;
    let tiers: Map<String, Value> = Tier::ALL
        .iter()
        .zip(cx.store.tier_stats())
        .map(|(t, s)| {
            (
                t.dir_name().to_string(),
                json!({ "records": s.records, "bytes_stored": s.bytes_stored, "bytes_on_disk": s.bytes_on_disk }),
            )
        })
        .collect();
    let p = sampler::process();
    let refusals: Vec<Value> = cx
        .metrics
        .refusals()
        .iter()
        .rev()
        .map(|r| {
            let at =
                r.at.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as Micros);
            json!({ "at": time::format_rfc3339(at), "why": r.why })
        })
        .collect();
    pretty(&json!({
        "at": time::format_rfc3339(time::now()),
        "uptime_secs": uptime.as_secs(),
        "rates_over_secs": period.as_ref().map_or(uptime.as_secs_f64(), |p| p.secs).round(),
        "operations": ops,
        "cache": {
            "hits": c.cache_hits,
            "misses": c.cache_misses,
            "hit_ratio": if lookups == 0 { Value::Null } else { json!(ratio(c.cache_hits as f64 / lookups as f64)) },
            "bytes": c.cache_bytes,
            "budget": c.cache_budget,
            "limit": c.cache_limit,
            "entries": c.cache_entries,
            "evictions": c.cache_evictions,
        },
        "log": {
            "bytes": c.log_bytes,
            "records": c.log_records,
            "fsyncs": c.fsyncs,
            "group_commit_batch": if c.fsyncs == 0 { 0.0 } else { (c.fsynced_records as f64 / c.fsyncs as f64 * 100.0).round() / 100.0 },
            "bytes_awaiting_checkpoint": c.log_bytes_since_checkpoint,
        },
        "checkpoints": {
            "count": c.checkpoints,
            "last_duration_ms": c.last_checkpoint_us as f64 / 1000.0,
        },
        "tiers": tiers,
        "process": {
            "rss_bytes": p.rss_bytes,
            "peak_rss_bytes": p.peak_rss_bytes,
            "cpu_secs": (p.cpu_secs * 100.0).round() / 100.0,
            "cpu_percent": period.as_ref().map_or(0.0, |p| (p.cpu_percent * 10.0).round() / 10.0),
            "threads": p.threads,
        },
        "commits": {
            "count": c.commits,
            "refused": c.refused_commits,
            "last_refused": refusals,
        },
    }))
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "alert": a.what,
        "since": time::format_rfc3339(a.since),
        "value": a.value,
        "threshold": a.threshold,
    })
}

pub fn alerts(
    active: &BTreeMap<&'static str, Alert>,
    cleared: &VecDeque<(Micros, Alert)>,
    s: &Settings,
) -> Vec<u8> {
    let cleared: Vec<Value> = cleared
        .iter()
        .rev()
        .map(|(at, a)| {
            let mut v = alert_json(a);
            v["cleared"] = json!(time::format_rfc3339(*at));
            v
        })
        .collect();
    pretty(&json!({
        "active": active.values().map(alert_json).collect::<Vec<_>>(),
        "recently_cleared": cleared,
        "thresholds": s.alerts,
        "configured_in": format!("configuration/{}", super::settings::FILE),
    }))
}

const LEVELS: [&str; 3] = ["ok", "degraded", "failing"];

pub fn health(cx: &Cx<'_>, s: &Settings) -> Vec<u8> {
    let c = cx.store.counters();
    let mut parts = Map::new();
    let mut worst = 0;
    let mut part = |name: &str, level: usize, why: String| {
        worst = worst.max(level);
        parts.insert(name.into(), json!({ "status": LEVELS[level], "why": why }));
    };
    if c.disk_failed {
        part("engine", 2, "the data disk failed (an fsync or a write returned EIO): every change is refused until a remount".into());
    } else {
        part("engine", 0, "accepting changes".into());
    }
    match cx.store.disk_space() {
        Ok((free, total)) if total > 0 => {
            let pct = free as f64 / total as f64 * 100.0;
            let level = if free < 64 << 20 {
                2
            } else if pct < s.alerts.disk_free_percent_below {
                1
            } else {
                0
            };
            part(
                "data_disk",
                level,
                format!("{:.1}% free ({} MiB)", pct, free >> 20),
            );
        }
        Ok(_) => part("data_disk", 1, "the data disk reports no size".into()),
        Err(e) => part(
            "data_disk",
            2,
            format!("cannot read the data disk's space: {e}"),
        ),
    }
    let backlog = c.log_bytes_since_checkpoint >> 20;
    let level = usize::from(backlog > s.alerts.wal_backlog_mb_above);
    part(
        "checkpoints",
        level,
        format!(
            "{} since the mount, the last took {:.1} ms; {backlog} MiB of log await the next",
            c.checkpoints,
            c.last_checkpoint_us as f64 / 1000.0
        ),
    );
    part(
        "recovery",
        0,
        format!(
            "{} log records replayed at mount in {:.1} ms",
            c.recovered_records,
            c.recovery_us as f64 / 1000.0
        ),
    );
    let logs = std::io::Write::flush(&mut std::io::stderr());
    match logs {
        Ok(()) => part("log", 0, "the daemon's log (stderr) accepts writes".into()),
        Err(e) => part(
            "log",
            1,
            format!("the daemon's log (stderr) refuses writes: {e}"),
        ),
    }
    pretty(&json!({
        "status": LEVELS[worst],
        "at": time::format_rfc3339(time::now()),
        "components": parts,
    }))
}

pub const PROFILE_MAGIC: &[u8; 8] = b"ISLPROF1";
pub const PROFILE_VERSION: u16 = 1;

/// The latency histograms, compact: per kind its name, count, max and the buckets that
/// counted anything (FORMAT.md, "Latency profile").
pub fn profile(m: &Metrics) -> Vec<u8> {
    let mut out = frame::file_header(PROFILE_MAGIC, PROFILE_VERSION).to_vec();
    out.extend_from_slice(&(Op::ALL.len() as u16).to_le_bytes());
    for op in Op::ALL {
        let h = m.histogram(op);
        let name = op.name().as_bytes();
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&m.count(op).to_le_bytes());
        out.extend_from_slice(&h.max().to_le_bytes());
        let buckets: Vec<(usize, u64)> = h
            .counts()
            .into_iter()
            .enumerate()
            .filter(|(_, n)| *n > 0)
            .collect();
        out.extend_from_slice(&(buckets.len() as u16).to_le_bytes());
        for (b, n) in buckets {
            out.extend_from_slice(&(b as u16).to_le_bytes());
            out.extend_from_slice(&metrics::bucket_floor(b).to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    frame::seal(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_sealed_and_holds_every_kind() {
        let m = Metrics::new();
        m.record(Op::Read, 5_000);
        m.record(Op::Read, 7_000);
        let p = profile(&m);
        let body = frame::unseal(&p, PROFILE_MAGIC, PROFILE_VERSION, "profile").unwrap_or_default();
        assert_eq!(
            u16::from_le_bytes([body[0], body[1]]) as usize,
            Op::ALL.len()
        );
        let mut damaged = p.clone();
        damaged[20] ^= 1;
        assert!(frame::unseal(&damaged, PROFILE_MAGIC, PROFILE_VERSION, "profile").is_err());
    }
}
