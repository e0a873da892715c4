//! `entropy/`: the balance and load of the tiers. `current_state.json` shows files and
//! bytes per tier, the Shannon entropy of their spread, each tier's temperature (reads and
//! commits of its records per second over the sampling period) and the moves between
//! tiers; `historical_entropy.csv` one row per sampling period (kept across restarts,
//! bounded); `rebalancing_log.jsonl` every move, by a user's `mv` or by the policy;
//! `vacuum_stability.metrics` the same figures in binary. Every figure is measured from
//! the running daemon; the moves themselves are the tiering's (`regions::tiering`).

mod balance;
mod history;
pub mod vacuum;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;

use crate::engine::codec::Tier;
use crate::error::{Error, Result};
use crate::regions::appended::Appended;
use crate::regions::config::Watched;
use crate::regions::observatory::settings::{self as sampling, Settings as Sampling};
use crate::regions::temporal::time;
use crate::regions::tiering::traffic::Rates;
use crate::regions::tiering::{Tiering, moves, tier_of_path};
use crate::regions::{Cx, Dir, Event, Generated, Region, Tag, pretty};

use self::balance::{Balance, max_entropy, share};
use self::history::Row;
use self::vacuum::Vacuum;

pub const TAG: Tag = 8;
pub const DIR: &str = "entropy";
pub const CURRENT: &str = "current_state.json";
pub const HISTORY: &str = "historical_entropy.csv";
pub const LOG: &str = "rebalancing_log.jsonl";

#[derive(Default)]
struct State {
    /// When the last row was taken (and the moves counted then).
    last_row: Option<(Instant, u64)>,
    /// The newest rows' entropy, for `vacuum_stability.metrics`.
    samples: VecDeque<vacuum::Sample>,
    loaded: bool,
}

pub struct Entropy {
    tiering: Arc<Tiering>,
    /// The observatory's sampling period, which this history follows too.
    sampling: Watched<Sampling>,
    history: Appended,
    log: Appended,
    state: Mutex<State>,
}

impl Entropy {
    pub fn new(tiering: Arc<Tiering>) -> Entropy {
        Entropy {
            tiering,
            sampling: Watched::new(sampling::FILE, Sampling::parse),
            history: Appended::new(DIR, HISTORY, history::HEADER),
            log: Appended::new(DIR, LOG, ""),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads and commits per second of each tier's records over the sampling period.
    fn temperature(&self, cx: &Cx<'_>) -> (Option<Rates>, [f64; 3]) {
        let period = self.sampling.get(cx).sample_interval_secs as f64;
        let rates = self.tiering.lock().traffic.over(period);
        let t = rates
            .as_ref()
            .map_or([0.0; 3], |r| [0, 1, 2].map(|i| r.per_sec(&r.tiers[i])));
        (rates, t)
    }

    fn current_state(&self, cx: &Cx<'_>) -> Vec<u8> {
        let b = Balance::now(cx.store);
        let (rates, temp) = self.temperature(cx);
        let policy = self.tiering.policy.get(cx);
        let st = self.tiering.lock();
        let (records, bytes): (u64, u64) = (b.records.iter().sum(), b.bytes.iter().sum());
        let mut tiers = serde_json::Map::new();
        for tier in Tier::ALL {
            let i = tier as usize;
            let (into, out) = (st.moves.of_tier(tier, true), st.moves.of_tier(tier, false));
            let ops = rates.as_ref().map(|r| r.tiers[i]).unwrap_or_default();
            tiers.insert(
                tier.dir_name().to_string(),
                json!({
                    "records": b.records[i],
                    "bytes": b.bytes[i],
                    "share_of_records": round(share(b.records[i], records)),
                    "share_of_bytes": round(share(b.bytes[i], bytes)),
                    "temperature": {
                        "record_reads": ops.reads,
                        "record_commits": ops.commits,
                        "ops_per_sec": round(temp[i]),
                    },
                    "moved_in": into.count,
                    "moved_out": out.count,
                    "bytes_moved_in": into.bytes,
                    "bytes_moved_out": out.bytes,
                }),
            );
        }
        pretty(&json!({
            "sampled_at": time::format_rfc3339(time::now()),
            "records": records,
            "bytes": bytes,
            "tiers": tiers,
            "entropy_bits": {
                "records": round(b.records_entropy()),
                "bytes": round(b.bytes_entropy()),
                "max": round(max_entropy()),
            },
            "temperature_period_secs": round(rates.as_ref().map_or(0.0, |r| r.secs)),
            "moves": {
                "by_user": st.moves.by_user.count,
                "by_policy": st.moves.by_policy.count,
                "bytes_moved": st.moves.by_user.bytes + st.moves.by_policy.bytes,
                "last": st.moves.last.as_ref().map(moves::Move::json),
            },
            "policy": {
                "enabled": policy.enabled,
                "interval_secs": policy.interval_secs,
                "last_pass": st.last_pass_at.map(time::format_rfc3339),
                "last_pass_moved": st.last_pass_moved,
            },
        }))
    }

    fn vacuum(&self, cx: &Cx<'_>) -> Vec<u8> {
        let b = Balance::now(cx.store);
        let (rates, temp) = self.temperature(cx);
        let moves = &self.tiering.lock().moves;
        let tiers = Tier::ALL.map(|tier| {
            let i = tier as usize;
            vacuum::TierFigures {
                records: b.records[i],
                bytes: b.bytes[i],
                ops_per_sec: temp[i],
                moved_in: moves.of_tier(tier, true).count,
                moved_out: moves.of_tier(tier, false).count,
            }
        });
        Vacuum {
            at: time::now(),
            period_ms: rates.map_or(0, |r| (r.secs * 1000.0) as u32),
            tiers,
            records_entropy: b.records_entropy(),
            bytes_entropy: b.bytes_entropy(),
            samples: self.lock().samples.iter().copied().collect(),
        }
        .encode()
    }

    /// Writes the moves made since the last tick to the rebalancing log.
    fn flush_log(&self, cx: &Cx<'_>) {
        let pending = self.tiering.take_pending();
        if pending.is_empty() {
            return;
        }
        let lines: Vec<String> = pending.iter().map(moves::Move::line).collect();
        let keep = self.tiering.policy.get(cx).log_rows;
        if let Err(e) = self.log.append(cx, &lines, keep) {
            log::warn!("{DIR}/{LOG}: {e}; {} moves not logged", lines.len());
        }
    }

    /// A row of the history when a sampling period ended.
    fn sample(&self, cx: &Cx<'_>) {
        let s = self.sampling.get(cx);
        let moved = {
            let t = self.tiering.lock();
            t.moves.by_user.count + t.moves.by_policy.count
        };
        let mut st = self.lock();
        if !st.loaded {
            st.loaded = true;
            let rows = self.history.body(cx).unwrap_or_default();
            st.samples = rows
                .iter()
                .filter_map(|l| Row::parse(l))
                .map(|r| vacuum::Sample {
                    at: r.at,
                    records_entropy: r.records_entropy,
                    bytes_entropy: r.bytes_entropy,
                })
                .collect();
            while st.samples.len() > vacuum::SAMPLES {
                st.samples.pop_front();
            }
        }
        let Some((at, moved_before)) = st.last_row else {
            // The first period starts now.
            st.last_row = Some((Instant::now(), moved));
            return;
        };
        if at.elapsed().as_secs() < s.sample_interval_secs {
            return;
        }
        drop(st);
        let b = Balance::now(cx.store);
        let (_, temperature) = self.temperature(cx);
        let row = Row {
            at: time::now(),
            balance: b,
            records_entropy: b.records_entropy(),
            bytes_entropy: b.bytes_entropy(),
            temperature,
            moves: moved.saturating_sub(moved_before),
        };
        if let Err(e) = self.history.append(cx, &[row.csv()], s.history_rows) {
            log::warn!("{DIR}/{HISTORY}: {e}");
        }
        let mut st = self.lock();
        st.last_row = Some((Instant::now(), moved));
        st.samples.push_back(vacuum::Sample {
            at: row.at,
            records_entropy: row.records_entropy,
            bytes_entropy: row.bytes_entropy,
        });
        while st.samples.len() > vacuum::SAMPLES {
            st.samples.pop_front();
        }
    }
}

fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

impl Region for Entropy {
    fn name(&self) -> &'static str {
        "entropy"
    }

    fn tag(&self) -> Tag {
        TAG
    }

    fn data_format(&self) -> &'static str {
        "Generated JSON and binary views of the tiers' balance, a CSV history and a JSON-lines log of moves (FORMAT.md)"
    }

    fn views(&self, _cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        if dir.is_seed(DIR) {
            vec![CURRENT.to_string(), vacuum::FILE.to_string()]
        } else {
            Vec::new()
        }
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        if !dir.is_seed(DIR) {
            return None;
        }
        // Temperatures and moves change without the engine's state moving.
        match name {
            CURRENT => Some(Generated::Fresh(self.current_state(cx))),
            vacuum::FILE => Some(Generated::Fresh(self.vacuum(cx))),
            _ => None,
        }
    }

    /// The history and the log are there from the start (empty), so a reader finds them.
    fn start(&self, cx: &Cx<'_>) -> Result<()> {
        let dir = cx.seed_dir(DIR).ok_or(Error::NotFound)?.ino;
        for (name, empty) in [(HISTORY, history::HEADER), (LOG, "")] {
            if cx.store.lookup(dir, name.as_bytes()).is_err() {
                cx.store.put(dir, name.as_bytes(), empty.as_bytes())?;
            }
        }
        Ok(())
    }

    fn observe(&self, cx: &Cx<'_>, event: &Event<'_>) {
        self.tiering.observe(cx, event);
    }

    fn tick(&self, cx: &Cx<'_>) {
        self.tiering.tick(cx);
        self.flush_log(cx);
        self.sample(cx);
    }

    /// What the policy moved into and out of a record type directory.
    fn manifest_fields(&self, cx: &Cx<'_>, dir: &Dir) -> Vec<(&'static str, serde_json::Value)> {
        let moved = self.tiering.lock().moves.by_dir.get(&dir.ino).cloned();
        let path = crate::namespace::join(&cx.store.path_of(dir.ino));
        let is_type_dir = tier_of_path(&path).is_some()
            && path.split('/').nth(2) == Some("particles")
            && path.split('/').count() == 4;
        if moved.is_none() && !is_type_dir {
            return Vec::new();
        }
        vec![(
            "tiering",
            moves::manifest_fields(&moved.unwrap_or_default()),
        )]
    }
}
