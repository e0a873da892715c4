//! `temporal/`: append-only event streams partitioned by time. Events (JSON objects, one
//! per line) are appended to `live/events.jsonl`, which routes each to the partition of
//! its hour (`store`); a line is checked when its newline arrives (`sink`). Maintenance
//! rolls hours into compressed days and days into compressed months (`maintenance`);
//! `range/<from>..<to>.jsonl` reads any time range across them (`range`). The generated
//! files describe each partition (`docs`).

pub mod blocks;
mod docs;
pub mod line;
mod maintenance;
pub mod metrics;
pub mod policy;
mod range;
mod sink;
mod store;
pub mod time;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::engine::Attr;
use crate::error::{Error, Result};
use crate::regions::{Cx, Dir, Generated, Region, Sink, Tag};

use self::store::{Dest, EVENTS, HISTORICAL, LIVE, RANGE, RECENT, Shared, TOP};
use self::time::Micros;

pub const TAG: Tag = 5;
/// The control file: writing to it runs maintenance now; reading it shows the last runs.
pub const MAINTAIN: &str = "maintain";
pub const CURRENT_STREAMS: &str = "current_streams.state";
pub const SUMMARY: &str = "summary.json";
pub const METRICS: &str = "metrics.erl";
pub const AGGREGATED: &str = "aggregated.json";
pub const ANALYTICS: &str = "analytics.json";
pub const RETENTION_POLICY: &str = "retention_policy.json";
pub const ARCHIVE_POLICY: &str = "archive_policy.json";

pub struct Temporal {
    shared: Arc<Shared>,
}

impl Temporal {
    pub fn new() -> Temporal {
        Temporal {
            shared: Arc::new(Shared::new()),
        }
    }
}

impl Default for Temporal {
    fn default() -> Self {
        Temporal::new()
    }
}

/// What a directory of the region is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Top,
    Live,
    Recent,
    Historical,
    Range,
    Part(Dest),
    Other,
}

fn place(cx: &Cx<'_>, dir: &Dir) -> Place {
    if let Some(seed) = dir.seed {
        return match seed.path {
            TOP => Place::Top,
            LIVE => Place::Live,
            RECENT => Place::Recent,
            HISTORICAL => Place::Historical,
            RANGE => Place::Range,
            _ => Place::Other,
        };
    }
    let path = cx.store.path_of(dir.ino);
    let [top, seed, key] = path.as_slice() else {
        return Place::Other;
    };
    let Ok(key) = std::str::from_utf8(key) else {
        return Place::Other;
    };
    let dest = match (top.as_slice(), seed.as_slice()) {
        (b"temporal", b"live") => time::parse_hour_key(key).map(Dest::Hour),
        (b"temporal", b"recent") => time::parse_day_key(key).map(Dest::Day),
        (b"temporal", b"historical") => time::parse_month_key(key).map(Dest::Month),
        _ => None,
    };
    dest.map_or(Place::Other, Place::Part)
}

impl Region for Temporal {
    fn name(&self) -> &'static str {
        "temporal"
    }

    fn tag(&self) -> Tag {
        TAG
    }

    fn data_format(&self) -> &'static str {
        "JSON-line events partitioned by time: live hours as text, recent days as \
         multi-member gzip, historical months as LZ4 frames with a block index (FORMAT.md)"
    }

    fn purpose_of_user_dir(&self, name: &str, _attr: &Attr) -> String {
        if time::parse_hour_key(name).is_some() {
            format!("Events of the hour {name} (UTC), appended in time order")
        } else if time::parse_day_key(name).is_some() {
            format!("Events of the day {name} (UTC), compressed in blocks")
        } else if time::parse_month_key(name).is_some() {
            format!("Events of the month {name} (UTC), compressed in indexed blocks")
        } else {
            format!("Directory '{name}' (not a partition)")
        }
    }

    fn lists_views(&self, _dir: &Dir) -> bool {
        true
    }

    fn views(&self, cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        let names: &[&str] = match place(cx, dir) {
            Place::Top => &[MAINTAIN],
            Place::Live => &[EVENTS, CURRENT_STREAMS],
            Place::Recent => &[RETENTION_POLICY],
            Place::Historical => &[ARCHIVE_POLICY],
            Place::Part(Dest::Hour(_)) => &[SUMMARY, METRICS],
            Place::Part(Dest::Day(_)) => &[AGGREGATED, ANALYTICS],
            Place::Part(Dest::Month(_)) => &[SUMMARY],
            Place::Range | Place::Other => &[],
        };
        names.iter().map(|n| n.to_string()).collect()
    }

    fn resolves(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> bool {
        dir.is_seed(RANGE) && range::parse_name(name).is_some() && place(cx, dir) == Place::Range
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        let place = place(cx, dir);
        if place == Place::Range {
            let (from, to) = range::parse_name(name)?;
            return Some(match range::plan(&self.shared, cx, from, to) {
                Ok(r) => Generated::Ranged {
                    len: r.len(),
                    source: r,
                },
                Err(e) => {
                    log::error!("temporal/range/{name}: {e}");
                    Generated::Failed(e)
                }
            });
        }
        let doc = match (place, name) {
            (Place::Top, MAINTAIN) => Ok(docs::maintain(&self.shared, cx)),
            // The stream's entry point reads empty whatever is appended: fixed, so the
            // kernel keeps its name and attributes and a `>>` does not ask for them.
            (Place::Live, EVENTS) => return Some(Generated::Fixed(Vec::new())),
            (Place::Live, CURRENT_STREAMS) => docs::current_streams(&self.shared, cx),
            (Place::Recent, RETENTION_POLICY) => docs::retention_policy(&self.shared, cx),
            (Place::Historical, ARCHIVE_POLICY) => docs::archive_policy(&self.shared, cx),
            (Place::Part(d @ Dest::Hour(_)), SUMMARY) => docs::hour_summary(cx, dir.ino, d),
            (Place::Part(Dest::Hour(_)), METRICS) => docs::hour_metrics(cx, dir.ino),
            (Place::Part(d @ Dest::Day(_)), AGGREGATED) => docs::day_aggregated(cx, dir.ino, d),
            (Place::Part(d @ Dest::Day(_)), ANALYTICS) => docs::day_analytics(cx, dir.ino, d),
            (Place::Part(d @ Dest::Month(_)), SUMMARY) => docs::month_summary(cx, dir.ino, d),
            _ => return None,
        };
        // The stream's state and the maintenance log are the region's own.
        let fresh = matches!(
            (place, name),
            (Place::Live, CURRENT_STREAMS) | (Place::Top, MAINTAIN)
        );
        Some(match doc {
            Ok(d) if fresh => Generated::Fresh(d),
            Ok(d) => Generated::Document(d),
            Err(e) => {
                let path = crate::namespace::join(&cx.store.path_of(dir.ino));
                log::error!("{path}/{name}: {e}");
                Generated::Failed(e)
            }
        })
    }

    fn takes_writes(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8]) -> bool {
        match place(cx, dir) {
            Place::Top => name == MAINTAIN.as_bytes(),
            Place::Live | Place::Part(Dest::Hour(_)) => name == EVENTS.as_bytes(),
            _ => false,
        }
    }

    fn sink(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8], truncate: bool) -> Result<Box<dyn Sink>> {
        let path = format!(
            "{}/{}",
            crate::namespace::join(&cx.store.path_of(dir.ino)),
            String::from_utf8_lossy(name)
        );
        match place(cx, dir) {
            Place::Top => Ok(Box::new(docs::Control::new(self.shared.clone()))),
            Place::Live => Ok(Box::new(sink::Stream::new(self.shared.clone(), None, path))),
            Place::Part(d @ Dest::Hour(_)) if !truncate => Ok(Box::new(sink::Stream::new(
                self.shared.clone(),
                Some(d),
                path,
            ))),
            Place::Part(_) => Err(Error::NotPermitted(
                "a partition is append-only: open it with O_APPEND (>>), not O_TRUNC (>)",
            )),
            _ => Err(Error::ReadOnlyView),
        }
    }

    /// Partitions are made by the region itself, from what is appended.
    fn may_create(&self, _dir: &Dir, _name: &[u8]) -> Result<()> {
        Err(Error::NotPermitted(
            "temporal/ holds only the partitions it makes: append events to \
             temporal/live/events.jsonl",
        ))
    }

    fn tick(&self, cx: &Cx<'_>) {
        let p = self.shared.policies(cx);
        let now = time::now();
        let due = {
            let log = self
                .shared
                .maintenance
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            now - log.since >= p.maintenance_interval_secs as Micros * 1_000_000
        };
        if !due {
            return;
        }
        // A run someone asked for is under way: this one is not needed.
        let Ok(_one) = maintenance::RUNNING.try_lock() else {
            return;
        };
        maintenance::run(&self.shared, cx, now);
    }
}
