//! `backups/cosmic_logs/`: the write-ahead log's segments, shown read-only as they are on
//! disk (read in ranges, never held whole); `cosmic_events.jsonl`, the significant
//! events (`crate::events`); and `audit_trail.log`, who changed what and who was denied
//! (`crate::audit`). Both logs are written at each tick, and bounded to their newest
//! lines as `configuration/backup_policy.json` says.

use std::sync::Arc;

use crate::engine::api::Storage;
use crate::error::{Error, Result};
use crate::regions::appended::Appended;
use crate::regions::backups::policy::{self, Policy};
use crate::regions::config::Watched;
use crate::regions::{Cx, Dir, Generated, RangeSource, Region, Tag};
use crate::waiting::Waiting;

pub struct CosmicLogs {
    policy: Watched<Policy>,
}

impl Default for CosmicLogs {
    fn default() -> Self {
        CosmicLogs {
            policy: Watched::new(policy::FILE, Policy::parse),
        }
    }
}

const LOG_DIR: &str = "backups/cosmic_logs";
const EVENTS_FILE: &str = "cosmic_events.jsonl";
const AUDIT_FILE: &str = "audit_trail.log";
static EVENTS: Appended = Appended::new(LOG_DIR, EVENTS_FILE, "");
static AUDIT: Appended = Appended::new(LOG_DIR, AUDIT_FILE, "");

/// One of the logs the region writes: where its lines wait, and how many it keeps.
struct Log {
    file: &'static Appended,
    name: &'static str,
    waiting: &'static Waiting,
    kept: fn(&Policy) -> u64,
}

const LOGS: [Log; 2] = [
    Log {
        file: &EVENTS,
        name: EVENTS_FILE,
        waiting: &crate::events::WAITING,
        kept: |p| p.events_kept,
    },
    Log {
        file: &AUDIT,
        name: AUDIT_FILE,
        waiting: &crate::audit::WAITING,
        kept: |p| p.audit_kept,
    },
];

struct Segment(String);

impl RangeSource for Segment {
    fn read(&self, store: &dyn Storage, off: u64, size: usize) -> Result<Vec<u8>> {
        store.read_log_segment(&self.0, off, size)
    }
}

impl Region for CosmicLogs {
    fn name(&self) -> &'static str {
        "cosmic_logs"
    }

    fn tag(&self) -> Tag {
        4
    }

    fn data_format(&self) -> &'static str {
        "Framed binary log segments (see FORMAT.md)"
    }

    /// A `.wal` name there belongs to the log (a segment of that name may come later).
    fn may_create(&self, dir: &Dir, name: &[u8]) -> Result<()> {
        if dir.is_seed(LOG_DIR) && name.ends_with(b".wal") {
            return Err(Error::ReadOnlyView);
        }
        Ok(())
    }

    fn views(&self, cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        if !dir.is_seed(LOG_DIR) {
            return Vec::new();
        }
        cx.store
            .log_segments()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    /// The logs are there from the start (empty in a new universe), not from the first
    /// tick: what the tiers hold does not change a second after a mount.
    fn start(&self, cx: &Cx<'_>) -> Result<()> {
        if let Some(dir) = cx.seed_dir(LOG_DIR) {
            for log in &LOGS {
                if cx.store.lookup(dir.ino, log.name.as_bytes()).is_err() {
                    cx.store.put(dir.ino, log.name.as_bytes(), b"")?;
                }
            }
        }
        Ok(())
    }

    /// Writes the lines recorded since the last tick.
    fn tick(&self, cx: &Cx<'_>) {
        let policy = self.policy.get(cx);
        for log in &LOGS {
            let lines = log.waiting.take();
            if let Err(e) = log.file.append(cx, &lines, (log.kept)(&policy)) {
                log::warn!("{}: {e}; its lines wait for the next tick", log.name);
                log.waiting.put_back(lines);
            }
        }
    }

    /// Events of the last moments are not lost to a clean stop.
    fn stop(&self, cx: &Cx<'_>) {
        self.tick(cx);
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        if !dir.is_seed(LOG_DIR) {
            return None;
        }
        let len = cx.store.log_segment_len(name)?;
        Some(Generated::Ranged {
            len,
            source: Arc::new(Segment(name.to_string())),
        })
    }
}
