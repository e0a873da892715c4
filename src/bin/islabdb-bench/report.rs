//! Turning per-round rates into medians, ratios and targets; printing the
//! table; writing the JSON; comparing with an earlier run's JSON.

use std::path::Path;

use serde::Serialize;

use crate::error::{Context, Result};
use crate::workloads::Sizes;

/// Spread between runs (or rounds) above which a number is not to be trusted.
pub const AGREEMENT_PCT: f64 = 10.0;
/// Issue 14's target for the geometric mean of mount/native.
pub const GEOMEAN_TARGET: f64 = 0.6;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// (max - min) / median over the rounds, in percent.
    pub spread_pct: f64,
    pub rounds: Vec<f64>,
}

impl Stats {
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let (min, max) = (v[0], v[n - 1]);
        Some(Stats {
            median,
            min,
            max,
            spread_pct: if median > 0.0 {
                (max - min) / median * 100.0
            } else {
                0.0
            },
            rounds: values.to_vec(),
        })
    }

    /// median(a) / median(b), where both were measured.
    pub fn ratio(a: &Option<Stats>, b: &Option<Stats>) -> Option<f64> {
        match (a, b) {
            (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: String,
    /// What the native column measured, when it is not the same workload.
    pub native_is: &'static str,
    pub native: Option<Stats>,
    pub mount: Option<Stats>,
    /// median(mount) / median(native)
    pub ratio: Option<f64>,
    pub target: Option<f64>,
    pub met: Option<bool>,
    /// A second figure besides the rate (graph_knn: the mount's recall@5; parallel: two
    /// clients' rate over one's).
    pub extra: Option<Extra>,
    /// `--peers`: each peer's rates.
    pub peers: Vec<PeerColumn>,
}

/// A peer's rates on one workload (`--peers`).
#[derive(Debug, Serialize)]
pub struct PeerColumn {
    pub name: &'static str,
    pub stats: Option<Stats>,
    /// median(peer) / median(native)
    pub ratio: Option<f64>,
    /// median(mount) / median(peer): above 1, the mount is faster.
    pub mount_vs_peer: Option<f64>,
}

impl PeerColumn {
    pub fn new(name: &'static str, rates: &[f64], row: &Row) -> PeerColumn {
        let stats = Stats::of(rates);
        PeerColumn {
            name,
            ratio: Stats::ratio(&stats, &row.native),
            mount_vs_peer: Stats::ratio(&row.mount, &stats),
            stats,
        }
    }
}

/// A figure per round other than the rate, for each side that gives it.
#[derive(Debug, Serialize)]
pub struct Extra {
    pub name: &'static str,
    /// The target for the mount's median, and whether it was met.
    pub target: Option<f64>,
    pub met: Option<bool>,
    pub native: Option<Stats>,
    pub mount: Stats,
    pub peers: Vec<(&'static str, Stats)>,
}

impl Row {
    pub fn new(
        name: &'static str,
        unit: &'static str,
        description: String,
        native_is: &'static str,
        target: Option<f64>,
        native: &[f64],
        mount: &[f64],
    ) -> Row {
        let native = Stats::of(native);
        let mount = Stats::of(mount);
        let ratio = Stats::ratio(&mount, &native);
        let met = match (ratio, target) {
            (Some(r), Some(t)) => Some(r >= t),
            _ => None,
        };
        Row {
            name,
            unit,
            description,
            native_is,
            native,
            mount,
            ratio,
            target,
            met,
            extra: None,
            peers: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Placement {
    pub online_cpus: usize,
    pub client_cpus: String,
    pub client_pinned: bool,
    /// Where `parallel`'s workers ran, one CPU each in turn.
    pub parallel_cpus: String,
    pub daemon_cpus: Option<String>,
    pub daemon_threads: Option<u64>,
    /// Whether the daemon's request threads move to their callers' CPU (its default).
    pub daemon_follows: bool,
    pub order: &'static str,
}

#[derive(Debug, Serialize)]
pub struct DaemonInfo {
    pub path: String,
    pub pid: u32,
    pub cache_mb: u64,
    pub threads_arg: Option<u32>,
    pub ready_secs: f64,
    /// VmHWM of the daemon just before unmount.
    pub peak_rss_kib: u64,
    pub rss_kib_at_end: u64,
    /// Where the peak came from (the main benchmark only).
    pub peak_growth: Option<PeakGrowth>,
    /// From the unmount request until the daemon exited.
    pub shutdown_secs: Option<f64>,
    pub log: String,
}

/// The daemon's VmHWM when the rounds began (after the mount and the untimed
/// preparations), and the workloads during which it rose after, by how much (KiB, summed
/// over the rounds).
#[derive(Debug, Serialize)]
pub struct PeakGrowth {
    pub before_rounds_kib: u64,
    pub raised_by: Vec<(&'static str, u64)>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub mode: &'static str,
    pub started_unix: u64,
    pub duration_secs: f64,
    pub scale: f64,
    pub rounds: usize,
    pub sizes: Sizes,
    pub kernel: String,
    pub workdir: String,
    pub fs_type: String,
    /// Device, mount options and journal of the native filesystem.
    pub native_fs: String,
    /// Whether the disk was syncfs'ed before each measurement and the clean
    /// page cache dropped before each creating one.
    pub quiesce: bool,
    pub placement: Placement,
    pub daemon: Option<DaemonInfo>,
    pub workloads: Vec<Row>,
    /// Geometric mean of the ratio over every workload that has one.
    pub geomean: Option<f64>,
    pub geomean_target: f64,
    pub geomean_met: Option<bool>,
    pub targets_met: usize,
    pub targets_total: usize,
    /// `--statistics-cost`: the mount against one keeping no statistics.
    pub statistics_cost: Option<crate::cost::StatisticsCost>,
}

pub fn geomean(rows: &[Row]) -> Option<f64> {
    geomean_of(rows.iter().filter_map(|r| r.ratio))
}

/// The geometric mean of the positive `ratios`.
fn geomean_of(ratios: impl Iterator<Item = f64>) -> Option<f64> {
    let ratios: Vec<f64> = ratios.filter(|r| *r > 0.0).collect();
    if ratios.is_empty() {
        return None;
    }
    Some((ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp())
}

/// 1234567.8 -> "1,234,568"; small numbers keep a few digits.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x.abs() < 100.0 {
        return format!("{x:.2}");
    }
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

fn opt_stat(s: &Option<Stats>) -> (String, String) {
    match s {
        Some(s) => (fmt_num(s.median), format!("{:.0}%", s.spread_pct)),
        None => ("-".into(), "-".into()),
    }
}

pub fn print_table(r: &Report) {
    println!();
    println!(
        "{:<13} {:<10} {:>12} {:>12} {:>7} {:>7} {:>5}  {:>11}",
        "workload", "unit", "native", "mount", "ratio", "target", "met", "spread n/m"
    );
    println!("{}", "-".repeat(86));
    for row in &r.workloads {
        let (n, ns) = opt_stat(&row.native);
        let (m, ms) = opt_stat(&row.mount);
        let ratio = row.ratio.map_or("-".into(), |x| format!("{x:.2}"));
        let target = row.target.map_or("-".into(), |t| format!(">={t:.1}"));
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!(
            "{:<13} {:<10} {:>12} {:>12} {:>7} {:>7} {:>5}  {:>11}",
            row.name,
            row.unit,
            n,
            m,
            ratio,
            target,
            met,
            format!("{ns}/{ms}")
        );
    }
    println!("{}", "-".repeat(86));
    if let Some(g) = r.geomean {
        println!(
            "geometric mean of ratios: {g:.2} (target >= {GEOMEAN_TARGET}: {})",
            if g >= GEOMEAN_TARGET {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    if r.targets_total > 0 {
        println!(
            "workload targets met: {} of {}",
            r.targets_met, r.targets_total
        );
    }
    for row in &r.workloads {
        if !row.native_is.is_empty() {
            println!("note: {}: native column is {}", row.name, row.native_is);
        }
        if let Some(x) = &row.extra {
            let rounds: Vec<String> = x.mount.rounds.iter().map(|r| format!("{r:.3}")).collect();
            let target = match (x.target, x.met) {
                (Some(t), Some(met)) => {
                    format!(" (target >= {t}: {})", if met { "met" } else { "NOT met" })
                }
                _ => String::new(),
            };
            let others: Vec<String> = x
                .native
                .iter()
                .map(|s| ("native", s))
                .chain(x.peers.iter().map(|(name, s)| (*name, s)))
                .map(|(name, s)| format!("{name} {:.3}", s.median))
                .collect();
            println!(
                "note: {}: mount {} median {:.3}{target} (rounds: {}){}",
                row.name,
                x.name,
                x.mount.median,
                rounds.join(", "),
                if others.is_empty() {
                    String::new()
                } else {
                    format!("; {}", others.join(", "))
                }
            );
        }
    }
    if let Some(d) = &r.daemon {
        println!(
            "daemon peak RSS (VmHWM): {:.1} MiB (cache budget {} MiB); RSS at end {:.1} MiB; ready in {:.0} ms{}",
            d.peak_rss_kib as f64 / 1024.0,
            d.cache_mb,
            d.rss_kib_at_end as f64 / 1024.0,
            d.ready_secs * 1000.0,
            d.shutdown_secs.map_or(String::new(), |s| format!(
                "; unmount+exit {:.0} ms",
                s * 1000.0
            ))
        );
        if let Some(g) = &d.peak_growth {
            let raised: Vec<String> = g
                .raised_by
                .iter()
                // Below a MiB is the allocator's noise; the JSON has every figure.
                .filter(|(_, kib)| *kib >= 1024)
                .map(|(wl, kib)| format!("{wl} +{:.1}", *kib as f64 / 1024.0))
                .collect();
            println!(
                "peak RSS before the rounds {:.1} MiB; raised by at least a MiB during (MiB): {}",
                g.before_rounds_kib as f64 / 1024.0,
                if raised.is_empty() {
                    "none".to_string()
                } else {
                    raised.join(", ")
                }
            );
        }
    }
    println!(
        "spread = (max-min)/median over the rounds; above {AGREEMENT_PCT:.0}% the median is shaky"
    );
    print_peers(r);
}

/// `--peers`: each peer's median, its ratio against native, and the mount against it.
fn print_peers(r: &Report) {
    let Some(first) = r.workloads.iter().find(|w| !w.peers.is_empty()) else {
        return;
    };
    let names: Vec<&str> = first.peers.iter().map(|p| p.name).collect();
    println!();
    print!("{:<17} {:>12}", "workload", "mount");
    for n in &names {
        print!(" {:>12} {:>7} {:>9}", n, "ratio", "mount/it");
    }
    println!();
    println!("{}", "-".repeat(30 + 31 * names.len()));
    for row in &r.workloads {
        print!("{:<17} {:>12}", row.name, opt_stat(&row.mount).0);
        for p in &row.peers {
            let f = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.2}"));
            print!(
                " {:>12} {:>7} {:>9}",
                opt_stat(&p.stats).0,
                f(p.ratio),
                f(p.mount_vs_peer)
            );
        }
        println!();
    }
    println!("{}", "-".repeat(30 + 31 * names.len()));
    for (i, n) in names.iter().enumerate() {
        let column = || r.workloads.iter().filter_map(move |w| w.peers.get(i));
        let fmt = |g: Option<f64>| g.map_or("-".into(), |g| format!("{g:.2}"));
        let behind: Vec<&str> = r
            .workloads
            .iter()
            .filter(|w| {
                w.peers
                    .get(i)
                    .is_some_and(|p| p.mount_vs_peer.is_some_and(|x| x < 1.0))
            })
            .map(|w| w.name)
            .collect();
        println!(
            "{n}: geometric mean against native {}; the mount against {n} {} (below 1 on: {})",
            fmt(geomean_of(column().filter_map(|p| p.ratio))),
            fmt(geomean_of(column().filter_map(|p| p.mount_vs_peer))),
            if behind.is_empty() {
                "none".to_string()
            } else {
                behind.join(", ")
            }
        );
    }
}

pub fn write_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(value).ctx(|| "serialize the report")?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))?;
    }
    std::fs::write(path, text + "\n").ctx(|| format!("write {}", path.display()))
}

fn pct_diff(now: f64, before: f64) -> f64 {
    if before == 0.0 {
        return 0.0;
    }
    (now - before) / before * 100.0
}

/// Prints how this run's medians compare with an earlier run's JSON, so two
/// runs can be shown to agree before a number is trusted.
pub fn compare(r: &Report, prev_path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(prev_path).ctx(|| format!("read {}", prev_path.display()))?;
    let prev: serde_json::Value =
        serde_json::from_str(&text).ctx(|| format!("parse {}", prev_path.display()))?;
    let empty = Vec::new();
    let prev_rows = prev["workloads"].as_array().unwrap_or(&empty);
    println!();
    println!("comparison with {}:", prev_path.display());
    println!(
        "{:<13} {:>9} {:>9} {:>9} {:>9} {:>9}  agree",
        "workload", "ratio", "before", "native%", "mount%", "ratio%"
    );
    let (mut agree, mut total) = (0, 0);
    for row in &r.workloads {
        let Some(p) = prev_rows.iter().find(|p| p["name"] == row.name) else {
            continue;
        };
        let med = |v: &serde_json::Value| v["median"].as_f64();
        let nd = row
            .native
            .as_ref()
            .zip(med(&p["native"]))
            .map(|(s, b)| pct_diff(s.median, b));
        let md = row
            .mount
            .as_ref()
            .zip(med(&p["mount"]))
            .map(|(s, b)| pct_diff(s.median, b));
        let rd = row
            .ratio
            .zip(p["ratio"].as_f64())
            .map(|(a, b)| pct_diff(a, b));
        let ok = [nd, md, rd]
            .iter()
            .flatten()
            .all(|d| d.abs() <= AGREEMENT_PCT);
        total += 1;
        if ok {
            agree += 1;
        }
        let f = |d: Option<f64>| d.map_or("-".into(), |d| format!("{d:+.1}"));
        println!(
            "{:<13} {:>9} {:>9} {:>9} {:>9} {:>9}  {}",
            row.name,
            row.ratio.map_or("-".into(), |x| format!("{x:.2}")),
            p["ratio"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.2}")),
            f(nd),
            f(md),
            f(rd),
            if ok { "yes" } else { "NO" }
        );
    }
    println!(
        "{agree} of {total} workloads agree within {AGREEMENT_PCT:.0}% (native and mount medians and their ratio)"
    );
    Ok(())
}
