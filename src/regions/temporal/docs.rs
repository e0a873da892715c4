//! The region's generated files, computed from what is stored when they are read, and the
//! control file that runs maintenance.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::line::{self, Event};
use super::maintenance::{self, DAY_FILES, MONTH_FILES, Packed};
use super::metrics::Counters;
use super::store::{
    self, BACKFILL, Dest, EVENTS, HISTORICAL, LIVE, RECENT, Shared, child, events_of, merge,
    partitions, read_all,
};
use super::time::{self, Micros};
use crate::error::Result;
use crate::regions::{Cx, Sink, pretty};

fn ts(t: Option<Micros>) -> Value {
    t.map_or(Value::Null, |t| json!(time::format_rfc3339(t)))
}

/// Counters of `events`, and their counts by a time bucket.
fn tally(events: &[Event], bucket: fn(Micros) -> String) -> (Counters, BTreeMap<String, u64>) {
    let mut c = Counters::default();
    let mut by = BTreeMap::new();
    for e in events {
        c.add(e.ts, line::event_type(&e.line).as_deref());
        *by.entry(bucket(e.ts)).or_default() += 1;
    }
    (c, by)
}

fn counters_json(c: &Counters) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("count".into(), json!(c.count));
    m.insert("first".into(), ts(c.first));
    m.insert("last".into(), ts(c.last));
    m.insert("by_type".into(), json!(c.by_type));
    m
}

fn hour_events(cx: &Cx<'_>, dir: u64) -> Result<(Vec<Event>, u64)> {
    match child(cx, dir, EVENTS)? {
        Some(a) => Ok((events_of(&read_all(cx, &a)?, EVENTS)?, a.size)),
        None => Ok((Vec::new(), 0)),
    }
}

pub fn hour_summary(cx: &Cx<'_>, dir: u64, d: Dest) -> Result<Vec<u8>> {
    let (events, bytes) = hour_events(cx, dir)?;
    let (c, _) = tally(&events, time::hour_key);
    let mut m = serde_json::Map::new();
    m.insert("partition".into(), json!(time::hour_key(d.start())));
    m.insert("from".into(), ts(Some(d.start())));
    m.insert("to".into(), ts(Some(d.end())));
    m.extend(counters_json(&c));
    m.insert("bytes".into(), json!(bytes));
    Ok(pretty(&Value::Object(m)))
}

pub fn hour_metrics(cx: &Cx<'_>, dir: u64) -> Result<Vec<u8>> {
    let (events, _) = hour_events(cx, dir)?;
    Ok(tally(&events, time::hour_key).0.encode())
}

/// A compressed partition's events (late ones merged in), and its stored blocks.
fn packed_events(
    cx: &Cx<'_>,
    dir: u64,
    p: Packed,
    what: &str,
) -> Result<(Vec<Event>, maintenance::Stored, u64)> {
    let mut events = maintenance::decode_all(cx, dir, p, what)?;
    let mut late = 0;
    if let Some(a) = child(cx, dir, BACKFILL)? {
        let l = events_of(&read_all(cx, &a)?, what)?;
        late = l.len() as u64;
        events = merge(events, l);
    }
    Ok((events, maintenance::stored(cx, dir, p)?, late))
}

fn hour_of_day(t: Micros) -> String {
    time::hour_key(t)
        .rsplit('-')
        .next()
        .unwrap_or_default()
        .to_string()
}

pub fn day_aggregated(cx: &Cx<'_>, dir: u64, d: Dest) -> Result<Vec<u8>> {
    let key = time::day_key(d.start());
    let (events, _, late) = packed_events(cx, dir, DAY_FILES, &key)?;
    let (c, by_hour) = tally(&events, hour_of_day);
    let mut m = serde_json::Map::new();
    m.insert("day".into(), json!(key));
    m.extend(counters_json(&c));
    m.insert("by_hour".into(), json!(by_hour));
    m.insert("awaiting_merge".into(), json!(late));
    Ok(pretty(&Value::Object(m)))
}

/// Storage figures of a compressed partition.
fn storage(s: &maintenance::Stored, p: Packed) -> Value {
    let raw: u64 = s.index.blocks.iter().map(|b| b.raw_len).sum();
    let stored = s.data.as_ref().map_or(0, |a| a.size);
    json!({
        "file": p.data,
        "blocks": s.index.blocks.len(),
        "compressed_bytes": stored,
        "raw_bytes": raw,
        "compression_ratio": if stored == 0 { 1.0 } else { ((raw as f64 / stored as f64) * 1000.0).round() / 1000.0 },
    })
}

pub fn day_analytics(cx: &Cx<'_>, dir: u64, d: Dest) -> Result<Vec<u8>> {
    let key = time::day_key(d.start());
    let (events, s, _) = packed_events(cx, dir, DAY_FILES, &key)?;
    let (c, by_hour) = tally(&events, hour_of_day);
    let busiest = by_hour
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(h, n)| json!({ "hour": h, "events": n }));
    let share: BTreeMap<&String, f64> = c
        .by_type
        .iter()
        .map(|(t, n)| {
            (
                t,
                ((*n as f64 / c.count.max(1) as f64) * 10_000.0).round() / 10_000.0,
            )
        })
        .collect();
    Ok(pretty(&json!({
        "day": key,
        "count": c.count,
        "first": ts(c.first),
        "last": ts(c.last),
        "hours_with_events": by_hour.len(),
        "events_per_active_hour": if by_hour.is_empty() { 0.0 } else { c.count as f64 / by_hour.len() as f64 },
        "busiest_hour": busiest,
        "type_share": share,
        "storage": storage(&s, DAY_FILES),
    })))
}

pub fn month_summary(cx: &Cx<'_>, dir: u64, d: Dest) -> Result<Vec<u8>> {
    let key = time::month_key(d.start());
    let (events, s, late) = packed_events(cx, dir, MONTH_FILES, &key)?;
    let (c, by_day) = tally(&events, time::day_key);
    let mut m = serde_json::Map::new();
    m.insert("month".into(), json!(key));
    m.extend(counters_json(&c));
    m.insert("by_day".into(), json!(by_day));
    m.insert("awaiting_merge".into(), json!(late));
    m.insert("storage".into(), storage(&s, MONTH_FILES));
    Ok(pretty(&Value::Object(m)))
}

pub fn current_streams(shared: &Shared, cx: &Cx<'_>) -> Result<Vec<u8>> {
    let mut open = Vec::new();
    for (_, name, ino) in partitions(cx, LIVE, time::parse_hour_key)? {
        let (events, bytes) = hour_events(cx, ino)?;
        open.push(json!({
            "partition": name,
            "path": format!("{LIVE}/{name}/{EVENTS}"),
            "events": events.len(),
            "bytes": bytes,
            "last_event": ts(events.last().map(|e| e.ts)),
        }));
    }
    Ok(pretty(&json!({
        "open_partitions": open,
        "writers": shared.writers.load(Ordering::Relaxed),
        "last_append": ts(shared.lock().last_append),
        "events_appended_since_start": shared.appended.load(Ordering::Relaxed),
        "range_reads": shared.range_reads.load(Ordering::Relaxed),
        "blocks_decompressed": shared.blocks_decoded.load(Ordering::Relaxed),
    })))
}

pub fn retention_policy(shared: &Shared, cx: &Cx<'_>) -> Result<Vec<u8>> {
    let p = shared.policies(cx);
    let window = p.recent_window_hours as Micros * store::HOUR;
    let days: Vec<Value> = partitions(cx, RECENT, time::parse_day_key)?
        .into_iter()
        .map(|(t, name, _)| json!({ "day": name, "moves_to_historical_after": ts(Some(Dest::Day(t).end() + window)) }))
        .collect();
    Ok(pretty(&json!({
        "live_window_hours": p.live_window_hours,
        "recent_window_hours": p.recent_window_hours,
        "maintenance_interval_secs": p.maintenance_interval_secs,
        "codec": "gzip, one member per block",
        "block_kib": p.block_kib,
        "days": days,
        "configured_in": format!("configuration/{}", super::policy::FILE),
    })))
}

pub fn archive_policy(shared: &Shared, cx: &Cx<'_>) -> Result<Vec<u8>> {
    let p = shared.policies(cx);
    let months: Vec<Value> = partitions(cx, HISTORICAL, time::parse_month_key)?
        .into_iter()
        .map(|(t, name, _)| {
            let mut end = Dest::Month(t).end();
            for _ in 0..p.historical_retention_months {
                end = time::next_month_start(end);
            }
            let deleted = (p.historical_retention_months > 0).then_some(end);
            json!({ "month": name, "deleted_after": ts(deleted) })
        })
        .collect();
    Ok(pretty(&json!({
        "historical_retention_months": p.historical_retention_months,
        "keeps_forever": p.historical_retention_months == 0,
        "codec": "LZ4 frames, one per block, indexed in indices.btree",
        "block_kib": p.block_kib,
        "months": months,
        "configured_in": format!("configuration/{}", super::policy::FILE),
    })))
}

pub fn maintain(shared: &Shared, cx: &Cx<'_>) -> Vec<u8> {
    let p = shared.policies(cx);
    let log = shared.maintenance.lock().unwrap_or_else(|e| e.into_inner());
    let next = log.since + p.maintenance_interval_secs as Micros * 1_000_000;
    pretty(&json!({
        "how": "write anything to this file (echo run > temporal/maintain) to run maintenance now",
        "interval_secs": p.maintenance_interval_secs,
        "last_run": ts(log.last_run),
        "next_due": ts(Some(next)),
        "runs": log.runs.iter().rev().collect::<Vec<_>>(),
    }))
}

/// `temporal/maintain`: each write runs maintenance once, and fails if a step failed.
pub struct Control {
    shared: Arc<Shared>,
}

impl Control {
    pub fn new(shared: Arc<Shared>) -> Control {
        Control { shared }
    }
}

impl Sink for Control {
    fn write(&mut self, cx: &Cx<'_>, bytes: &[u8]) -> Result<usize> {
        let _one = maintenance::RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let report = maintenance::run(&self.shared, cx, time::now());
        match maintenance::failed(&report) {
            Some(why) => Err(maintenance::as_error(why)),
            None => Ok(bytes.len()),
        }
    }

    fn sync(&mut self, _cx: &Cx<'_>) -> Result<()> {
        Ok(())
    }

    fn close(&mut self, _cx: &Cx<'_>) -> Result<()> {
        Ok(())
    }
}
