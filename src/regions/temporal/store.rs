//! Where events go and how they are added: routing by timestamp to the partition where
//! that time lives now, keeping each partition in time order, in one atomic engine batch
//! per write. One lock orders appends, maintenance's moves and range reads' plans, so
//! each sees the others whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::line::{self, Event, Parsed};
use super::policy::{self, Policies};
use super::time::{self, Micros};
use crate::engine::codec::Tier;
use crate::engine::{Attr, Change};
use crate::error::{Error, Result};
use crate::regions::Cx;
use crate::regions::config::Watched;

pub const TOP: &str = "temporal";
pub const LIVE: &str = "temporal/live";
pub const RECENT: &str = "temporal/recent";
pub const HISTORICAL: &str = "temporal/historical";
pub const RANGE: &str = "temporal/range";
/// A live hour's events, and (generated, in `live/`) the stream's entry point.
pub const EVENTS: &str = "events.jsonl";
/// Late events of a compressed day or month, merged into it by the next maintenance.
pub const BACKFILL: &str = "backfill.jsonl";
pub const GZ: &str = "compressed.gz";
pub const LZ4: &str = "compressed.lz4";
pub const INDEX: &str = "indices.btree";
pub const HOUR: Micros = 3_600_000_000;
pub const DAY: Micros = 24 * HOUR;

/// A partition: a live hour, a recent day or a historical month, by its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dest {
    Hour(Micros),
    Day(Micros),
    Month(Micros),
}

impl Dest {
    /// The seed directory holding it, and its directory's name there.
    pub fn place(self) -> (&'static str, String) {
        match self {
            Dest::Hour(t) => (LIVE, time::hour_key(t)),
            Dest::Day(t) => (RECENT, time::day_key(t)),
            Dest::Month(t) => (HISTORICAL, time::month_key(t)),
        }
    }

    /// The file new events are appended to.
    pub fn file(self) -> &'static str {
        match self {
            Dest::Hour(_) => EVENTS,
            Dest::Day(_) | Dest::Month(_) => BACKFILL,
        }
    }

    pub fn start(self) -> Micros {
        match self {
            Dest::Hour(t) | Dest::Day(t) | Dest::Month(t) => t,
        }
    }

    pub fn end(self) -> Micros {
        match self {
            Dest::Hour(t) => t + HOUR,
            Dest::Day(t) => t + DAY,
            Dest::Month(t) => time::next_month_start(t),
        }
    }
}

/// State that appends, moves and plans share (under `Shared::state`).
#[derive(Default)]
pub struct State {
    /// The newest timestamp of each partition file seen (files stay sorted, so this is
    /// their last line's).
    last: HashMap<u64, Micros>,
    pub last_append: Option<Micros>,
}

pub struct Shared {
    state: Mutex<State>,
    policies: Watched<Policies>,
    pub writers: AtomicU64,
    pub appended: AtomicU64,
    pub range_reads: AtomicU64,
    pub blocks_decoded: AtomicU64,
    pub maintenance: Mutex<super::maintenance::Log>,
    /// The last range planned, with the engine generation it was planned at: a `stat`,
    /// an open and the reads of one `cat` share one plan while nothing changes.
    pub last_plan: Mutex<Option<super::range::Cached>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The inode of one of the seed's directories.
pub fn seed(cx: &Cx<'_>, path: &str) -> Result<u64> {
    cx.seed_dir(path).map(|d| d.ino).ok_or(Error::NotFound)
}

/// The entry `name` of `dir`, if there is one.
pub fn child(cx: &Cx<'_>, dir: u64, name: &str) -> Result<Option<Attr>> {
    match cx.store.lookup(dir, name.as_bytes()) {
        Ok(a) => Ok(Some(a)),
        Err(Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The partition directories of a seed directory (those whose names `key` reads as a
/// start), oldest first: (start, name, inode).
pub fn partitions(
    cx: &Cx<'_>,
    path: &str,
    key: fn(&str) -> Option<Micros>,
) -> Result<Vec<(Micros, String, u64)>> {
    let mut out: Vec<_> = cx
        .store
        .readdir_names(seed(cx, path)?)?
        .into_iter()
        .filter_map(|(name, attr)| {
            let name = String::from_utf8(name).ok()?;
            Some((key(&name)?, name, attr.ino))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A file's whole committed content.
pub fn read_all(cx: &Cx<'_>, attr: &Attr) -> Result<Vec<u8>> {
    read_span(0, attr.size, |off, n| cx.store.read(attr.ino, off, n))
}

/// `len` bytes from `from` through `read` (offset, size), a bounded piece at a time.
pub fn read_span(
    from: u64,
    len: u64,
    read: impl Fn(u64, usize) -> Result<crate::engine::Data>,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        let want = (len - out.len() as u64).min(4 << 20) as usize;
        let data = read(from + out.len() as u64, want)?;
        if data.is_empty() {
            break;
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// The events of stored JSON lines (stored lines always carry a valid timestamp; one that
/// does not, as only damage could leave, is reported).
pub fn events_of(bytes: &[u8], what: &str) -> Result<Vec<Event>> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let ts = line::timestamp(l).ok_or_else(|| {
                Error::Corrupt(format!("{what}: a stored line without a valid timestamp"))
            })?;
            Ok(Event {
                ts,
                line: l.to_vec(),
            })
        })
        .collect()
}

/// Events as stored: one line each.
pub fn lines_of(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.iter().map(|e| e.line.len() + 1).sum());
    for e in events {
        out.extend_from_slice(&e.line);
        out.push(b'\n');
    }
    out
}

/// Merges two lists sorted by time; on equal times `old` goes first (arrival order).
pub fn merge(old: Vec<Event>, new: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut a, mut b) = (old.into_iter().peekable(), new.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.ts <= y.ts,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            state: Mutex::default(),
            policies: Watched::new(policy::FILE, Policies::parse),
            writers: AtomicU64::new(0),
            appended: AtomicU64::new(0),
            range_reads: AtomicU64::new(0),
            blocks_decoded: AtomicU64::new(0),
            maintenance: Mutex::new(super::maintenance::Log::new()),
            last_plan: Mutex::new(None),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The policies in force: `configuration/temporal_policies.json` as it stands.
    pub fn policies(&self, cx: &Cx<'_>) -> Policies {
        self.policies.get(cx)
    }

    /// The partition where an event of time `ts` lives now: a live hour that still exists
    /// or is inside the live window, else its recent day, else its historical month.
    pub fn route(&self, cx: &Cx<'_>, ts: Micros, now: Micros, p: &Policies) -> Result<Dest> {
        let exists = |d: Dest| -> Result<bool> {
            let (parent, name) = d.place();
            Ok(child(cx, seed(cx, parent)?, &name)?.is_some())
        };
        let hour = Dest::Hour(time::hour_start(ts));
        if exists(hour)? || hour.end() > now - p.live_window_hours as i64 * HOUR {
            return Ok(hour);
        }
        let day = Dest::Day(time::day_start(ts));
        if exists(day)? || day.end() > now - p.recent_window_hours as i64 * HOUR {
            return Ok(day);
        }
        let month = Dest::Month(time::month_start(ts));
        if exists(month)? || !expired(month, now, p) {
            return Ok(month);
        }
        Err(Error::InvalidRecord(format!(
            "timestamp {} is older than historical_retention_months ({}) keeps",
            time::format_rfc3339(ts),
            p.historical_retention_months
        )))
    }

    /// The newest timestamp in a partition file (its last line's).
    fn last_of(&self, cx: &Cx<'_>, st: &mut State, attr: &Attr) -> Result<Option<Micros>> {
        if let Some(&t) = st.last.get(&attr.ino) {
            return Ok(Some(t));
        }
        let mut from = attr.size.saturating_sub(64 << 10);
        loop {
            let tail = cx.store.read(attr.ino, from, (attr.size - from) as usize)?;
            let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
            match body.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    let t = line::timestamp(&body[i + 1..]);
                    if let Some(t) = t {
                        st.last.insert(attr.ino, t);
                    }
                    return Ok(t);
                }
                None if from == 0 => {
                    let t = line::timestamp(body);
                    if let Some(t) = t {
                        st.last.insert(attr.ino, t);
                    }
                    return Ok(t);
                }
                None => from = from.saturating_sub(1 << 20),
            }
        }
    }

    /// Forgets what was cached of files that moved or went.
    pub fn forget(&self, st: &mut State, inos: &[u64]) {
        for ino in inos {
            st.last.remove(ino);
        }
    }

    /// Stores the events of one write: stamped now if they have no time of their own,
    /// routed, and added to their partitions in time order, all in one atomic batch.
    /// `within`: the events must belong to this partition (a write straight to it).
    /// Returns whether there were any (a close then has something to make durable).
    pub fn store(&self, cx: &Cx<'_>, parsed: Vec<Parsed>, within: Option<Dest>) -> Result<bool> {
        if parsed.is_empty() {
            return Ok(false);
        }
        let p = self.policies(cx);
        let mut st = self.lock();
        let now = time::now();
        let mut events: Vec<Event> = parsed.into_iter().map(|e| e.stamp(now)).collect();
        if let Some(d) = within
            && let Some(e) = events.iter().find(|e| e.ts < d.start() || e.ts >= d.end())
        {
            let (_, name) = d.place();
            return Err(Error::InvalidRecord(format!(
                "an event of {} does not belong to partition {name}: append it to \
                 temporal/live/{EVENTS}, which routes each event to its partition",
                time::format_rfc3339(e.ts)
            )));
        }
        events.sort_by_key(|e| e.ts);
        let mut by_dest: BTreeMap<Dest, Vec<Event>> = BTreeMap::new();
        for e in events {
            by_dest
                .entry(self.route(cx, e.ts, now, &p)?)
                .or_default()
                .push(e);
        }
        let mut changes = Vec::new();
        let mut touched = Vec::new();
        let count: usize = by_dest.values().map(Vec::len).sum();
        for (dest, new) in by_dest {
            let (parent, name) = dest.place();
            let dir = cx
                .store
                .mkdir(seed(cx, parent)?, name.as_bytes(), Some(Tier::Hot))?;
            let file = dest.file();
            let newest = new.last().map(|e| e.ts);
            match child(cx, dir.ino, file)? {
                None => changes.push(Change::Put {
                    parent: dir.ino,
                    name: file.as_bytes().to_vec(),
                    bytes: lines_of(&new),
                }),
                Some(attr) => {
                    let last = self.last_of(cx, &mut st, &attr)?;
                    let in_order = last.is_none_or(|l| new.first().is_none_or(|e| e.ts >= l));
                    if in_order {
                        changes.push(Change::Append {
                            ino: attr.ino,
                            bytes: lines_of(&new),
                        });
                    } else {
                        // A late event inside the partition: it is rewritten in order.
                        let old = events_of(&read_all(cx, &attr)?, &name)?;
                        changes.push(Change::Put {
                            parent: dir.ino,
                            name: file.as_bytes().to_vec(),
                            bytes: lines_of(&merge(old, new)),
                        });
                    }
                    if let Some(t) = newest {
                        let l = st.last.entry(attr.ino).or_insert(t);
                        *l = (*l).max(t);
                    }
                    touched.push(attr.ino);
                }
            }
        }
        cx.store.apply(changes, false)?;
        st.last_append = Some(now);
        drop(st);
        self.appended.fetch_add(count as u64, Ordering::Relaxed);
        for ino in touched {
            (cx.changed)(ino);
        }
        Ok(true)
    }
}

/// Whether a month is past `historical_retention_months` (0 keeps every month).
pub fn expired(month: Dest, now: Micros, p: &Policies) -> bool {
    if p.historical_retention_months == 0 {
        return false;
    }
    let mut end = month.end();
    for _ in 0..p.historical_retention_months {
        end = time::next_month_start(end);
    }
    end <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: Micros, tag: &str) -> Event {
        Event {
            ts,
            line: tag.as_bytes().to_vec(),
        }
    }

    #[test]
    fn merging_keeps_time_order_and_arrival_order_on_ties() {
        let old = vec![ev(1, "a"), ev(3, "b"), ev(3, "c")];
        let new = vec![ev(0, "x"), ev(3, "y"), ev(9, "z")];
        let got: Vec<_> = merge(old, new).into_iter().map(|e| e.line).collect();
        let want: Vec<Vec<u8>> = ["x", "a", "b", "c", "y", "z"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn months_expire_after_their_retention() {
        let p = Policies {
            historical_retention_months: 2,
            ..Policies::default()
        };
        let at = |s: &str| time::parse_rfc3339(s).unwrap_or_default();
        let sept = Dest::Month(at("2026-09-01T00:00:00Z"));
        assert!(!expired(sept, at("2026-11-30T23:59:59Z"), &p));
        assert!(expired(sept, at("2026-12-01T00:00:00Z"), &p));
        let forever = Policies {
            historical_retention_months: 0,
            ..p
        };
        assert!(!expired(sept, at("2099-01-01T00:00:00Z"), &forever));
    }
}
