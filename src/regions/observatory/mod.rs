//! `observatory/`: the universe explaining itself. Every number comes from the running
//! daemon: its requests (`crate::metrics`), the engine's counters, the process as the
//! kernel sees it. `real_time.json` shows them now, `historical.csv` one row per
//! sampling period (kept across restarts, bounded), `alerts.json` what crossed a
//! threshold of `configuration/observatory.json`, `diagnostics/` the health of each
//! component and the latency histograms in binary.

pub mod dashboard;
mod docs;
mod logs;
mod sampler;
pub mod settings;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use crate::regions::appended::Appended;
use crate::regions::config::Watched;
use crate::regions::temporal::time::{self, Micros};
use crate::regions::{Cx, Dir, Generated, Region, Tag};

/// The kernel's figures of this process, which `memory`'s tests compare its own with.
#[cfg(test)]
pub(crate) use self::sampler::process;
use self::sampler::{Period, Point, Points, Row};
use self::settings::Settings;

pub const TAG: Tag = 6;
pub const TOP: &str = "observatory";
pub const DASHBOARD: &str = "dashboard.svg";
pub const METRICS: &str = "observatory/metrics";
pub const LOGS: &str = "observatory/logs";
pub const DIAGNOSTICS: &str = "observatory/diagnostics";
pub const REAL_TIME: &str = "real_time.json";
pub const HISTORICAL: &str = "historical.csv";
pub const ALERTS: &str = "alerts.json";
pub const HEALTH: &str = "health_check.json";
pub const PROFILE: &str = "performance_profile.erl";

/// An alert raised: since when, and the value that raised it (the latest).
#[derive(Clone, Debug)]
pub struct Alert {
    pub since: Micros,
    pub value: f64,
    pub threshold: f64,
    pub what: &'static str,
}

#[derive(Default)]
struct State {
    points: Points,
    /// The point the last row was taken at.
    last_row: Option<Point>,
    /// The last hour of rows (the dashboard's), oldest first.
    hour: VecDeque<Row>,
    /// Whether the last hour was read back from `historical.csv` (at the first tick).
    loaded: bool,
    alerts: BTreeMap<&'static str, Alert>,
    /// Alerts that ended, newest last (a few, to show what happened).
    cleared: VecDeque<(Micros, Alert)>,
}

pub struct Observatory {
    settings: Watched<Settings>,
    /// `metrics/historical.csv`.
    history: Appended,
    state: Mutex<State>,
}

impl Observatory {
    pub fn new() -> Observatory {
        Observatory {
            settings: Watched::new(settings::FILE, Settings::parse),
            history: Appended::new(METRICS, HISTORICAL, sampler::HEADER),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Observatory {
    fn default() -> Self {
        Observatory::new()
    }
}

const HOUR: Micros = 3_600_000_000;
const CLEARED_KEPT: usize = 20;

impl Observatory {
    /// The last hour of `historical.csv`, for the dashboard after a restart.
    fn load_hour(&self, cx: &Cx<'_>, st: &mut State) {
        let from = time::now() - HOUR;
        if let Ok(lines) = self.history.body(cx) {
            st.hour = lines
                .iter()
                .filter_map(|l| Row::parse(l))
                .filter(|r| r.at >= from)
                .collect();
        }
    }

    fn evaluate(&self, cx: &Cx<'_>, st: &mut State, period: &Period, s: &Settings, now: Micros) {
        let t = &s.alerts;
        let c = cx.store.counters();
        let disk_free = cx
            .store
            .disk_space()
            .ok()
            .filter(|(_, total)| *total > 0)
            .map(|(free, total)| free as f64 / total as f64 * 100.0);
        let checks: [(&'static str, Option<f64>, f64, bool); 5] = [
            (
                "cache_hit_ratio_low",
                period.hit_ratio,
                t.cache_hit_ratio_below,
                period
                    .hit_ratio
                    .is_some_and(|r| r < t.cache_hit_ratio_below),
            ),
            (
                "commit_p99_high",
                Some(period.commit_p99_us / 1000.0),
                t.commit_p99_ms_above,
                period.commit_p99_us / 1000.0 > t.commit_p99_ms_above,
            ),
            (
                "data_disk_nearly_full",
                disk_free,
                t.disk_free_percent_below,
                disk_free.is_some_and(|f| f < t.disk_free_percent_below),
            ),
            (
                "wal_backlog_high",
                Some((c.log_bytes_since_checkpoint >> 20) as f64),
                t.wal_backlog_mb_above as f64,
                c.log_bytes_since_checkpoint >> 20 > t.wal_backlog_mb_above,
            ),
            (
                "disk_failed",
                Some(if c.disk_failed { 1.0 } else { 0.0 }),
                0.0,
                c.disk_failed,
            ),
        ];
        for (what, value, threshold, raised) in checks {
            match (raised, st.alerts.get_mut(what)) {
                (true, Some(a)) => a.value = value.unwrap_or(0.0),
                (true, None) => {
                    log::warn!("alert {what}: {value:?} (threshold {threshold})");
                    st.alerts.insert(
                        what,
                        Alert {
                            since: now,
                            value: value.unwrap_or(0.0),
                            threshold,
                            what,
                        },
                    );
                }
                (false, Some(_)) => {
                    if let Some(a) = st.alerts.remove(what) {
                        log::info!("alert {what} cleared");
                        st.cleared.push_back((now, a));
                        while st.cleared.len() > CLEARED_KEPT {
                            st.cleared.pop_front();
                        }
                    }
                }
                (false, None) => {}
            }
        }
    }
}

impl Region for Observatory {
    fn name(&self) -> &'static str {
        "observatory"
    }

    fn tag(&self) -> Tag {
        TAG
    }

    fn data_format(&self) -> &'static str {
        "Generated JSON, CSV and binary views of the running daemon (FORMAT.md)"
    }

    fn views(&self, _cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        if dir.is_seed(LOGS) {
            return logs::names();
        }
        let names: &[&str] = if dir.is_seed(TOP) {
            &[DASHBOARD]
        } else if dir.is_seed(METRICS) {
            &[REAL_TIME, ALERTS]
        } else if dir.is_seed(DIAGNOSTICS) {
            &[HEALTH, PROFILE]
        } else {
            &[]
        };
        names.iter().map(|n| n.to_string()).collect()
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        if dir.is_seed(LOGS) {
            return logs::generate(name);
        }
        let s = self.settings.get(cx);
        let doc = if dir.is_seed(TOP) && name == DASHBOARD {
            let st = self.lock();
            let samples: Vec<dashboard::Sample> = st
                .hour
                .iter()
                .map(|r| dashboard::Sample {
                    at: r.at,
                    ops_per_sec: r.ops_per_sec,
                    p99_us: r.p99_us,
                    hit_ratio: r.hit_ratio,
                    tier_bytes: r.tier_bytes,
                })
                .collect();
            dashboard::render(&samples, time::now())
        } else if dir.is_seed(METRICS) {
            match name {
                REAL_TIME => {
                    let st = self.lock();
                    docs::real_time(cx, &st.points, cx.metrics.uptime())
                }
                ALERTS => {
                    let st = self.lock();
                    docs::alerts(&st.alerts, &st.cleared, &s)
                }
                _ => return None,
            }
        } else if dir.is_seed(DIAGNOSTICS) {
            match name {
                HEALTH => docs::health(cx, &s),
                PROFILE => docs::profile(cx.metrics),
                _ => return None,
            }
        } else {
            return None;
        };
        // Every figure here moves without the engine: rendered for each stat and open.
        Some(Generated::Fresh(doc))
    }

    fn tick(&self, cx: &Cx<'_>) {
        let s = self.settings.get(cx);
        let point = Point::now(cx.metrics, cx.store.counters());
        let now = time::now();
        let mut st = self.lock();
        if !st.loaded {
            st.loaded = true;
            self.load_hour(cx, &mut st);
        }
        let recent = st
            .points
            .back(&point, s.sample_interval_secs as f64)
            .cloned();
        if let Some(old) = &recent {
            let period = Period::between(old, &point);
            self.evaluate(cx, &mut st, &period, &s, now);
        }
        let due = st
            .last_row
            .as_ref()
            .is_none_or(|p| point.when.duration_since(p.when).as_secs() >= s.sample_interval_secs);
        if due && let Some(old) = st.last_row.clone().or(recent) {
            let period = Period::between(&old, &point);
            let tiers = cx.store.tier_stats();
            let row = Row {
                at: now,
                ops_per_sec: period.ops_per_sec,
                p99_us: period.p99_us,
                commit_p99_us: period.commit_p99_us,
                hit_ratio: period.hit_ratio,
                cache_bytes: point.counters.cache_bytes,
                rss_bytes: sampler::process().rss_bytes,
                cpu_percent: period.cpu_percent,
                tier_bytes: [
                    tiers[0].bytes_stored,
                    tiers[1].bytes_stored,
                    tiers[2].bytes_stored,
                ],
                log_bytes: point.counters.log_bytes,
                fsyncs_per_sec: period.fsyncs_per_sec,
            };
            if let Err(e) = self.history.append(cx, &[row.csv()], s.history_rows) {
                log::warn!("{METRICS}/{HISTORICAL}: {e}");
            }
            st.hour.push_back(row);
            while st.hour.front().is_some_and(|r| r.at < now - HOUR) {
                st.hour.pop_front();
            }
            st.last_row = Some(point.clone());
        } else if due {
            st.last_row = Some(point.clone());
        }
        st.points.push(point);
    }
}
