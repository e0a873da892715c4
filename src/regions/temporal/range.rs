//! Time-range reads: `temporal/range/<from>..<to>.jsonl` holds the events of
//! `from <= timestamp < to` from live hours, recent days and historical months, in time
//! order. Its plan is made under the lock maintenance moves under, and pins every file it
//! reads, so a read that began before a move keeps reading what it planned. Of compressed
//! partitions only the blocks the index says overlap the range are read; blocks inside the
//! range are decompressed only when read, the (at most two) edge blocks of a partition at
//! planning, to know where the range cuts them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::blocks::{self, BlockMeta, Codec};
use super::line::Event;
use super::maintenance::{self, DAY_FILES, MONTH_FILES, Packed};
use super::store::{
    BACKFILL, Dest, EVENTS, HISTORICAL, LIVE, RECENT, Shared, child, events_of, lines_of, merge,
    partitions, read_all, read_span,
};
use super::time::{self, Micros};
use crate::engine::Pinned;
use crate::engine::api::Storage;
use crate::error::{Error, Result};
use crate::regions::{Cx, RangeSource};

enum Segment {
    /// Lines of a live partition file, read where they are.
    File { pin: Arc<Pinned>, off: u64 },
    /// A whole block inside the range, decompressed when read.
    Block {
        pin: Arc<Pinned>,
        codec: Codec,
        meta: BlockMeta,
    },
    /// Lines already at hand (an edge block's part in the range, late events).
    Bytes(Arc<Vec<u8>>),
}

/// A piece of the range, before pieces overlapping in time are merged.
struct Source {
    first: Micros,
    last: Micros,
    len: u64,
    seg: Segment,
}

/// A segment at its place in the range's bytes.
struct Placed {
    at: u64,
    len: u64,
    seg: Segment,
}

/// The last plan, while the universe stays as it was planned from.
pub struct Cached {
    generation: u64,
    span: (Micros, Micros),
    plan: Arc<RangeRead>,
}

pub struct RangeRead {
    segments: Vec<Placed>,
    len: u64,
    shared: Arc<Shared>,
    /// The block last decompressed, for reads that continue inside it.
    decoded: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
}

impl RangeRead {
    pub fn len(&self) -> u64 {
        self.len
    }
}

/// The byte range of the lines of `bytes` (sorted) with from <= ts < to, with their first
/// and last timestamps.
fn cut(
    bytes: &[u8],
    from: Micros,
    to: Micros,
    what: &str,
) -> Result<Option<(u64, u64, Micros, Micros)>> {
    let (mut start, mut end) = (None, 0);
    let (mut first, mut last) = (0, 0);
    let mut at = 0;
    for e in events_of(bytes, what)? {
        let n = e.line.len() as u64 + 1;
        if e.ts >= to {
            break;
        }
        if e.ts >= from {
            if start.is_none() {
                start = Some(at);
                first = e.ts;
            }
            last = e.ts;
            end = at + n;
        }
        at += n;
    }
    Ok(start.map(|s| (s, end - s, first, last)))
}

/// The events of `bytes` with from <= ts < to.
fn within(bytes: &[u8], from: Micros, to: Micros, what: &str) -> Result<Vec<Event>> {
    Ok(events_of(bytes, what)?
        .into_iter()
        .filter(|e| e.ts >= from && e.ts < to)
        .collect())
}

fn bytes_source(events: &[Event]) -> Option<Source> {
    let (first, last) = (events.first()?.ts, events.last()?.ts);
    let b = lines_of(events);
    Some(Source {
        first,
        last,
        len: b.len() as u64,
        seg: Segment::Bytes(Arc::new(b)),
    })
}

/// The partition directories of `path` whose time overlaps [from, to).
fn overlapping(
    cx: &Cx<'_>,
    path: &str,
    key: fn(&str) -> Option<Micros>,
    dest: fn(Micros) -> Dest,
    (from, to): (Micros, Micros),
) -> Result<Vec<(String, u64)>> {
    Ok(partitions(cx, path, key)?
        .into_iter()
        .filter(|(t, _, _)| dest(*t).start() < to && dest(*t).end() > from)
        .map(|(_, n, i)| (n, i))
        .collect())
}

struct Planner<'a, 'c> {
    cx: &'a Cx<'c>,
    shared: &'a Shared,
    from: Micros,
    to: Micros,
    sources: Vec<Source>,
}

impl Planner<'_, '_> {
    fn live(&mut self, name: &str, dir: u64) -> Result<()> {
        let Some(a) = child(self.cx, dir, EVENTS)? else {
            return Ok(());
        };
        let pin = Arc::new(self.cx.store.pin(a.ino)?);
        let bytes = read_pinned_all(self.cx.store, &pin)?;
        if let Some((off, len, first, last)) = cut(&bytes, self.from, self.to, name)? {
            self.sources.push(Source {
                first,
                last,
                len,
                seg: Segment::File { pin, off },
            });
        }
        Ok(())
    }

    fn packed(&mut self, name: &str, dir: u64, p: Packed) -> Result<()> {
        let s = maintenance::stored(self.cx, dir, p)?;
        if let Some(data) = s.data {
            let pin = Arc::new(self.cx.store.pin(data.ino)?);
            for b in s.index.overlapping(self.from, self.to) {
                if b.first >= self.from && b.last < self.to {
                    self.sources.push(Source {
                        first: b.first,
                        last: b.last,
                        len: b.raw_len,
                        seg: Segment::Block {
                            pin: pin.clone(),
                            codec: p.codec,
                            meta: *b,
                        },
                    });
                    continue;
                }
                let stored = self
                    .cx
                    .store
                    .read_pinned(&pin, b.offset, b.length as usize)?;
                let raw = blocks::decode_block(p.codec, &stored, b)?;
                self.shared.blocks_decoded.fetch_add(1, Ordering::Relaxed);
                self.sources
                    .extend(bytes_source(&within(&raw, self.from, self.to, name)?));
            }
        }
        if let Some(a) = child(self.cx, dir, BACKFILL)? {
            let late = within(&read_all(self.cx, &a)?, self.from, self.to, name)?;
            self.sources.extend(bytes_source(&late));
        }
        Ok(())
    }

    /// The sources in time order; sources that overlap in time merged into one.
    fn segments(mut self) -> Result<(Vec<Placed>, u64)> {
        self.sources.sort_by_key(|s| (s.first, s.last));
        let mut clusters: Vec<Vec<Source>> = Vec::new();
        for s in self.sources {
            match clusters.last_mut() {
                Some(c) if c.iter().any(|x| s.first < x.last) => c.push(s),
                _ => clusters.push(vec![s]),
            }
        }
        let mut out = Vec::new();
        let mut at = 0;
        for mut c in clusters {
            let seg = if c.len() == 1 {
                c.pop().map(|s| (s.len, s.seg))
            } else {
                let mut all = Vec::new();
                for s in c {
                    let bytes = segment_bytes(self.cx.store, self.shared, &s.seg, s.len)?;
                    all = merge(all, events_of(&bytes, "range")?);
                }
                bytes_source(&all).map(|s| (s.len, s.seg))
            };
            if let Some((len, seg)) = seg {
                out.push(Placed { at, len, seg });
                at += len;
            }
        }
        Ok((out, at))
    }
}

fn read_pinned_all(store: &dyn Storage, pin: &Pinned) -> Result<Vec<u8>> {
    read_span(0, pin.size(), |off, n| store.read_pinned(pin, off, n))
}

fn decode(
    store: &dyn Storage,
    shared: &Shared,
    pin: &Pinned,
    codec: Codec,
    meta: &BlockMeta,
) -> Result<Vec<u8>> {
    let stored = store.read_pinned(pin, meta.offset, meta.length as usize)?;
    shared.blocks_decoded.fetch_add(1, Ordering::Relaxed);
    blocks::decode_block(codec, &stored, meta)
}

/// A whole segment's bytes.
fn segment_bytes(store: &dyn Storage, shared: &Shared, seg: &Segment, len: u64) -> Result<Vec<u8>> {
    match seg {
        Segment::File { pin, off } => read_span(*off, len, |at, n| store.read_pinned(pin, at, n)),
        Segment::Block { pin, codec, meta } => decode(store, shared, pin, *codec, meta),
        Segment::Bytes(b) => Ok(b.to_vec()),
    }
}

/// The read of [from, to): planned again only when the universe changed since.
pub fn plan(shared: &Arc<Shared>, cx: &Cx<'_>, from: Micros, to: Micros) -> Result<Arc<RangeRead>> {
    let generation = cx.store.generation();
    let mut last = shared.last_plan.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = last.as_ref()
        && c.generation == generation
        && c.span == (from, to)
    {
        return Ok(c.plan.clone());
    }
    let plan = Arc::new(make_plan(shared, cx, from, to)?);
    *last = Some(Cached {
        generation,
        span: (from, to),
        plan: plan.clone(),
    });
    Ok(plan)
}

fn make_plan(shared: &Arc<Shared>, cx: &Cx<'_>, from: Micros, to: Micros) -> Result<RangeRead> {
    let mut p = Planner {
        cx,
        shared,
        from,
        to,
        sources: Vec::new(),
    };
    {
        let _moves = shared.lock();
        let span = (from, to);
        for (name, dir) in overlapping(cx, LIVE, time::parse_hour_key, Dest::Hour, span)? {
            p.live(&format!("{LIVE}/{name}"), dir)?;
        }
        for (name, dir) in overlapping(cx, RECENT, time::parse_day_key, Dest::Day, span)? {
            p.packed(&format!("{RECENT}/{name}"), dir, DAY_FILES)?;
        }
        for (name, dir) in overlapping(cx, HISTORICAL, time::parse_month_key, Dest::Month, span)? {
            p.packed(&format!("{HISTORICAL}/{name}"), dir, MONTH_FILES)?;
        }
    }
    shared.range_reads.fetch_add(1, Ordering::Relaxed);
    let (segments, len) = p.segments()?;
    Ok(RangeRead {
        segments,
        len,
        shared: shared.clone(),
        decoded: Mutex::new(None),
    })
}

impl RangeSource for RangeRead {
    fn read(&self, store: &dyn Storage, off: u64, size: usize) -> Result<Vec<u8>> {
        let end = self.len.min(off.saturating_add(size as u64));
        let mut out = Vec::with_capacity(end.saturating_sub(off) as usize);
        let mut i = self.segments.partition_point(|p| p.at + p.len <= off);
        let mut pos = off;
        while pos < end {
            let Some(Placed { at, len, seg }) = self.segments.get(i) else {
                break;
            };
            let (rel, n) = (pos - at, (end - pos).min(at + len - pos));
            match seg {
                Segment::File { pin, off } => {
                    out.extend_from_slice(&store.read_pinned(pin, off + rel, n as usize)?);
                }
                Segment::Block { pin, codec, meta } => {
                    let mut cached = self.decoded.lock().unwrap_or_else(|e| e.into_inner());
                    let raw = match cached.as_ref() {
                        Some((j, raw)) if *j == i => raw.clone(),
                        _ => {
                            let raw = Arc::new(decode(store, &self.shared, pin, *codec, meta)?);
                            *cached = Some((i, raw.clone()));
                            raw
                        }
                    };
                    let bytes = raw.get(rel as usize..(rel + n) as usize).ok_or_else(|| {
                        Error::Corrupt(format!(
                            "block at {} is shorter than its index says",
                            meta.offset
                        ))
                    })?;
                    out.extend_from_slice(bytes);
                }
                Segment::Bytes(b) => {
                    let bytes = b
                        .get(rel as usize..(rel + n) as usize)
                        .ok_or_else(|| Error::Corrupt("a range's segment moved".into()))?;
                    out.extend_from_slice(bytes);
                }
            }
            pos += n;
            i += 1;
        }
        Ok(out)
    }
}

/// The range a file name of `temporal/range/` asks for.
pub fn parse_name(name: &str) -> Option<(Micros, Micros)> {
    time::parse_range_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_a_sorted_partition_finds_the_lines_in_range() {
        let line = |s: &str| format!(r#"{{"timestamp":"2026-11-30T10:{s}:00Z"}}"#);
        let text = format!(
            "{}\n{}\n{}\n{}\n",
            line("00"),
            line("10"),
            line("20"),
            line("30")
        );
        let at =
            |s: &str| time::parse_rfc3339(&format!("2026-11-30T10:{s}:00Z")).unwrap_or_default();
        let got = cut(text.as_bytes(), at("05"), at("30"), "t").ok().flatten();
        let first_len = line("00").len() as u64 + 1;
        let (off, len, first, last) = got.unwrap_or_default();
        assert_eq!(off, first_len);
        assert_eq!(len, 2 * first_len);
        assert_eq!((first, last), (at("10"), at("20")));
        assert!(
            cut(text.as_bytes(), at("31"), at("40"), "t")
                .ok()
                .flatten()
                .is_none()
        );
    }
}
