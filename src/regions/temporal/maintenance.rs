//! Maintenance: live hours past the live window move into their day's `compressed.gz`,
//! days past the recent window into their month's `compressed.lz4` (+ `indices.btree`),
//! late events waiting in a `backfill.jsonl` join their partition's blocks, and months
//! past the retention go. Each move is one atomic engine batch (the new blocks, the new
//! index and the removal of the source together), taken under the lock appends and range
//! plans take: a reader, a writer and recovery after `kill -9` each see a partition in
//! exactly one place.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::blocks::{self, Codec, Index};
use super::line::Event;
use super::store::{
    self, BACKFILL, Dest, EVENTS, GZ, HISTORICAL, INDEX, LIVE, LZ4, RECENT, Shared, State, child,
    events_of, merge, partitions, read_all, seed,
};
use super::time::{self, Micros};
use crate::engine::codec::Tier;
use crate::engine::{Attr, Change};
use crate::error::{Error, Result};
use crate::regions::Cx;

/// Runs kept for `temporal/maintain`.
const KEPT: usize = 20;

pub struct Log {
    pub runs: VecDeque<Value>,
    pub last_run: Option<Micros>,
    /// The periodic run is due an interval after the last run, or after the start.
    pub since: Micros,
}

impl Log {
    pub fn new() -> Log {
        Log {
            runs: VecDeque::new(),
            last_run: None,
            since: time::now(),
        }
    }
}

/// One run at a time (the periodic one skips while another runs).
pub static RUNNING: Mutex<()> = Mutex::new(());

/// A compressed partition's files.
#[derive(Clone, Copy)]
pub struct Packed {
    pub codec: Codec,
    pub data: &'static str,
}

pub const DAY_FILES: Packed = Packed {
    codec: Codec::Gzip,
    data: GZ,
};
pub const MONTH_FILES: Packed = Packed {
    codec: Codec::Lz4,
    data: LZ4,
};

/// A compressed partition as stored: its data file and its index.
pub struct Stored {
    pub data: Option<Attr>,
    pub index: Index,
}

pub fn stored(cx: &Cx<'_>, dir: u64, p: Packed) -> Result<Stored> {
    let data = child(cx, dir, p.data)?;
    let index = match child(cx, dir, INDEX)? {
        Some(a) => Index::decode(&read_all(cx, &a)?)?,
        None => Index { blocks: Vec::new() },
    };
    Ok(Stored { data, index })
}

/// Every event of a compressed partition, in order.
pub fn decode_all(cx: &Cx<'_>, dir: u64, p: Packed, what: &str) -> Result<Vec<Event>> {
    let s = stored(cx, dir, p)?;
    let Some(data) = s.data else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for b in &s.index.blocks {
        let raw = cx.store.read(data.ino, b.offset, b.length as usize)?;
        let lines = blocks::decode_block(p.codec, &raw, b)?;
        out.extend(events_of(&lines, what)?);
    }
    Ok(out)
}

/// The changes that add `events` (sorted) to the compressed partition in `dir`: new
/// blocks appended when they all come after its last one, else the whole partition
/// rewritten in order.
fn add_events(
    cx: &Cx<'_>,
    dir: u64,
    p: Packed,
    events: Vec<Event>,
    block_bytes: usize,
    what: &str,
) -> Result<Vec<Change>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let s = stored(cx, dir, p)?;
    let after_last = s
        .index
        .blocks
        .last()
        .is_none_or(|b| events.first().is_some_and(|e| e.ts >= b.last));
    let (events, mut index, at) = match &s.data {
        Some(d) if after_last => (events, s.index.blocks, d.size),
        Some(_) => (merge(decode_all(cx, dir, p, what)?, events), Vec::new(), 0),
        None => (events, Vec::new(), 0),
    };
    let pairs: Vec<(Micros, &[u8])> = events.iter().map(|e| (e.ts, &e.line[..])).collect();
    let (bytes, metas) = blocks::encode_blocks(p.codec, &pairs, block_bytes, at);
    index.extend(metas);
    let data = match &s.data {
        Some(d) if at > 0 => Change::Append { ino: d.ino, bytes },
        _ => Change::Put {
            parent: dir,
            name: p.data.as_bytes().to_vec(),
            bytes,
        },
    };
    Ok(vec![
        data,
        Change::Put {
            parent: dir,
            name: INDEX.as_bytes().to_vec(),
            bytes: Index { blocks: index }.encode(),
        },
    ])
}

/// The events waiting in a partition's `backfill.jsonl`, and the change that removes it.
fn backfill(cx: &Cx<'_>, dir: u64, what: &str) -> Result<Option<(Vec<Event>, Change)>> {
    let Some(a) = child(cx, dir, BACKFILL)? else {
        return Ok(None);
    };
    let events = events_of(&read_all(cx, &a)?, what)?;
    Ok(Some((
        events,
        Change::RemoveTree {
            parent: dir,
            name: BACKFILL.as_bytes().to_vec(),
        },
    )))
}

struct Run<'a, 'c> {
    shared: &'a Shared,
    cx: &'a Cx<'c>,
    block_bytes: usize,
    report: serde_json::Map<String, Value>,
}

impl Run<'_, '_> {
    fn note(&mut self, what: &str, v: Value) {
        let list = self
            .report
            .entry(what)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = list {
            a.push(v);
        }
    }

    /// One atomic step: `changes` in one batch, durable before the next step. The caller
    /// holds the state lock from reading the source on, so no append slips in between.
    fn commit(&self, st: &mut State, changes: Vec<Change>, gone: &[u64]) -> Result<()> {
        self.cx.store.apply(changes, true)?;
        self.shared.forget(st, gone);
        Ok(())
    }

    fn move_hour(&mut self, start: Micros, name: &str, ino: u64) -> Result<()> {
        let shared = self.shared;
        let mut st = shared.lock();
        let live = seed(self.cx, LIVE)?;
        let what = format!("{LIVE}/{name}");
        let (events, gone) = match child(self.cx, ino, EVENTS)? {
            Some(a) => (events_of(&read_all(self.cx, &a)?, &what)?, vec![a.ino]),
            None => (Vec::new(), Vec::new()),
        };
        let n = events.len();
        let day = time::day_key(start);
        let day_dir =
            self.cx
                .store
                .mkdir(seed(self.cx, RECENT)?, day.as_bytes(), Some(Tier::Hot))?;
        let mut changes = add_events(
            self.cx,
            day_dir.ino,
            DAY_FILES,
            events,
            self.block_bytes,
            &what,
        )?;
        changes.push(Change::RemoveTree {
            parent: live,
            name: name.as_bytes().to_vec(),
        });
        self.commit(&mut st, changes, &gone)?;
        log::info!("temporal: moved {what} ({n} events) into {RECENT}/{day}/{GZ}");
        self.note(
            "moved_hours",
            json!({ "hour": name, "events": n, "into": format!("{RECENT}/{day}/{GZ}") }),
        );
        Ok(())
    }

    fn move_day(&mut self, start: Micros, name: &str, ino: u64) -> Result<()> {
        let shared = self.shared;
        let mut st = shared.lock();
        let what = format!("{RECENT}/{name}");
        let mut events = decode_all(self.cx, ino, DAY_FILES, &what)?;
        if let Some((late, _)) = backfill(self.cx, ino, &what)? {
            events = merge(events, late);
        }
        let n = events.len();
        let month = time::month_key(start);
        let month_dir = self.cx.store.mkdir(
            seed(self.cx, HISTORICAL)?,
            month.as_bytes(),
            Some(Tier::Hot),
        )?;
        let mut changes = add_events(
            self.cx,
            month_dir.ino,
            MONTH_FILES,
            events,
            self.block_bytes,
            &what,
        )?;
        changes.push(Change::RemoveTree {
            parent: seed(self.cx, RECENT)?,
            name: name.as_bytes().to_vec(),
        });
        self.commit(&mut st, changes, &[])?;
        log::info!("temporal: moved {what} ({n} events) into {HISTORICAL}/{month}/{LZ4}");
        self.note(
            "moved_days",
            json!({ "day": name, "events": n, "into": format!("{HISTORICAL}/{month}/{LZ4}") }),
        );
        Ok(())
    }

    /// Late events of a compressed partition join its blocks.
    fn fold(&mut self, parent: &str, name: &str, ino: u64, p: Packed) -> Result<()> {
        let shared = self.shared;
        let mut st = shared.lock();
        let what = format!("{parent}/{name}");
        let Some((late, remove)) = backfill(self.cx, ino, &what)? else {
            return Ok(());
        };
        let n = late.len();
        let mut changes = add_events(self.cx, ino, p, late, self.block_bytes, &what)?;
        changes.push(remove);
        self.commit(&mut st, changes, &[])?;
        log::info!("temporal: merged {n} late events into {what}/{}", p.data);
        self.note("merged_backfill", json!({ "partition": what, "events": n }));
        Ok(())
    }

    fn expire(&mut self, name: &str) -> Result<()> {
        let shared = self.shared;
        let mut st = shared.lock();
        let changes = vec![Change::RemoveTree {
            parent: seed(self.cx, HISTORICAL)?,
            name: name.as_bytes().to_vec(),
        }];
        self.commit(&mut st, changes, &[])?;
        log::info!("temporal: deleted {HISTORICAL}/{name}: past historical_retention_months");
        self.note("expired_months", json!(name));
        Ok(())
    }

    fn step(&mut self, what: &str, res: Result<()>) {
        if let Err(e) = res {
            log::error!("temporal maintenance: {what}: {e}");
            self.note("errors", json!(format!("{what}: {e}")));
        }
    }
}

/// Runs maintenance once, as of `now`; returns its report (also kept for
/// `temporal/maintain`). Each step that fails is logged and reported; the others run.
pub fn run(shared: &Shared, cx: &Cx<'_>, now: Micros) -> Value {
    let p = shared.policies(cx);
    let started = std::time::Instant::now();
    let mut run = Run {
        shared,
        cx,
        block_bytes: p.block_bytes(),
        report: serde_json::Map::new(),
    };
    let live_before = now - p.live_window_hours as i64 * store::HOUR;
    match partitions(cx, LIVE, time::parse_hour_key) {
        Ok(hours) => {
            for (start, name, ino) in hours {
                if Dest::Hour(start).end() <= live_before {
                    let res = run.move_hour(start, &name, ino);
                    run.step(&format!("{LIVE}/{name}"), res);
                }
            }
        }
        Err(e) => run.step(LIVE, Err(e)),
    }
    let recent_before = now - p.recent_window_hours as i64 * store::HOUR;
    match partitions(cx, RECENT, time::parse_day_key) {
        Ok(days) => {
            for (start, name, ino) in days {
                let res = if Dest::Day(start).end() <= recent_before {
                    run.move_day(start, &name, ino)
                } else {
                    run.fold(RECENT, &name, ino, DAY_FILES)
                };
                run.step(&format!("{RECENT}/{name}"), res);
            }
        }
        Err(e) => run.step(RECENT, Err(e)),
    }
    match partitions(cx, HISTORICAL, time::parse_month_key) {
        Ok(months) => {
            for (start, name, ino) in months {
                let res = if store::expired(Dest::Month(start), now, &p) {
                    run.expire(&name)
                } else {
                    run.fold(HISTORICAL, &name, ino, MONTH_FILES)
                };
                run.step(&format!("{HISTORICAL}/{name}"), res);
            }
        }
        Err(e) => run.step(HISTORICAL, Err(e)),
    }
    let mut report = run.report;
    report.insert("started".into(), json!(time::format_rfc3339(now)));
    report.insert(
        "duration_ms".into(),
        json!(started.elapsed().as_millis() as u64),
    );
    let report = Value::Object(report);
    let mut log = shared.maintenance.lock().unwrap_or_else(|e| e.into_inner());
    log.last_run = Some(now);
    log.since = now;
    log.runs.push_back(report.clone());
    while log.runs.len() > KEPT {
        log.runs.pop_front();
    }
    report
}

/// Whether a report holds failed steps.
pub fn failed(report: &Value) -> Option<String> {
    let errors = report.get("errors")?.as_array()?;
    let all: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
    (!all.is_empty()).then(|| all.join("; "))
}

/// The error a failed on-demand run gives its caller.
pub fn as_error(why: String) -> Error {
    Error::Io(std::io::Error::other(format!("maintenance failed: {why}")))
}
