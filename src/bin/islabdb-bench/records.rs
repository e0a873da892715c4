//! `--records N`: memory and recovery at scale. Fills one warm-tier universe
//! with N records of ~400 B in directories of 10,000, checks the daemon's
//! peak RSS against the cache budget + 300 B per record, unmounts cleanly,
//! remounts and times recovery (until the mount is ready), then verifies a
//! sample of records.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::WorkDir;
use crate::daemon::{Daemon, DaemonOpts};
use crate::error::{Context, Error, Result};
use crate::report::write_json;
use crate::sys::{self, check_interrupt};
use crate::workloads::{self, RECORD_SIZE};

pub const PER_DIR: usize = 10_000;
/// Issue 14's targets at scale (issue 3 asked 400 B a record and 10 s): JuiceFS's
/// metadata cost a file, and a recovery a user waits for without noticing much.
pub const BYTES_PER_RECORD_BUDGET: u64 = 300;
pub const RECOVERY_TARGET_SECS: f64 = 5.0;
const SAMPLE: usize = 1000;

#[derive(Debug, Serialize)]
struct RecordsReport {
    tool: &'static str,
    mode: &'static str,
    started_unix: u64,
    records: usize,
    directories: usize,
    record_bytes: usize,
    cache_mb: u64,
    create_secs: f64,
    create_ops_per_sec: f64,
    /// VmHWM of the daemon after the fill, before unmount.
    peak_rss_kib: u64,
    rss_kib_after_fill: u64,
    /// cache budget + 300 B per record
    rss_budget_kib: u64,
    rss_met: bool,
    data_dir_bytes_before_unmount: u64,
    data_dir_bytes_after_unmount: u64,
    /// From the unmount request until the daemon exited.
    shutdown_secs: f64,
    /// From spawning the daemon on the filled data dir until the mount is ready.
    recovery_secs: f64,
    recovery_target_secs: f64,
    recovery_met: bool,
    rss_kib_after_recovery: u64,
    peak_rss_kib_after_verify: u64,
    sample_verified: usize,
    listing_checked: String,
}

fn dir_of(root: &Path, i: usize) -> PathBuf {
    root.join(format!("bench-d{:04}", i / PER_DIR))
}

fn du(path: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    for e in rd.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => total += du(&e.path()),
            Ok(_) => total += e.metadata().map_or(0, |m| m.len()),
            Err(_) => {}
        }
    }
    total
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn run(
    n: usize,
    opts: &DaemonOpts,
    work: &WorkDir,
    json: &Path,
    stall: Duration,
) -> Result<()> {
    if n == 0 {
        return Err(Error::msg("--records must be at least 1"));
    }
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let warm = work.mnt.join("spacetime/warm_data/particles");
    let log1 = work.root.join("daemon.log");
    let log2 = work.root.join("daemon-remount.log");
    let dirs = n.div_ceil(PER_DIR);
    println!(
        "records mode: {n} records of {RECORD_SIZE} B in {dirs} directories of up to {PER_DIR} under spacetime/warm_data/particles, cache budget {} MiB",
        opts.cache_mb
    );

    let (mut d, ready) =
        Daemon::start(opts, &work.data, &work.mnt, &log1, Duration::from_secs(15))?;
    println!(
        "mounted fresh universe in {:.0} ms (daemon pid {})",
        ready.as_secs_f64() * 1000.0,
        d.pid()
    );
    let watchdog = sys::Watchdog::start(d.pid(), stall);
    let t0 = Instant::now();
    let step = (n / 10).max(1);
    for i in 0..n {
        check_interrupt()?;
        if i % PER_DIR == 0 {
            let dir = dir_of(&warm, i);
            std::fs::create_dir_all(&dir).ctx(|| format!("mkdir {}", dir.display()))?;
        }
        let path = dir_of(&warm, i).join(workloads::record_name(i));
        workloads::write_file(&path, &workloads::record(i, 0), false)?;
        if (i + 1) % step == 0 || i + 1 == n {
            d.check_alive()?;
            let st = d.status()?;
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "  {:>9} records, {:>6.1} s, {:>8.0} records/s, daemon RSS {:.1} MiB (peak {:.1})",
                i + 1,
                secs,
                (i + 1) as f64 / secs,
                mib(st.vm_rss_kib),
                mib(st.vm_hwm_kib)
            );
        }
    }
    let create_secs = t0.elapsed().as_secs_f64();
    let fill = d.status()?;
    let budget_kib = opts.cache_mb * 1024 + (BYTES_PER_RECORD_BUDGET * n as u64).div_ceil(1024);
    let rss_met = fill.vm_hwm_kib <= budget_kib;
    println!(
        "daemon peak RSS {:.1} MiB vs budget {:.1} MiB ({} MiB cache + {BYTES_PER_RECORD_BUDGET} B x {n}): {}",
        mib(fill.vm_hwm_kib),
        mib(budget_kib),
        opts.cache_mb,
        if rss_met { "met" } else { "NOT met" }
    );
    drop(watchdog);
    let before = du(&work.data);
    let stopped = d.stop(Duration::from_secs(300))?;
    drop(d);
    let after = du(&work.data);
    println!(
        "unmounted: daemon exited {:.2} s after umount; data dir {:.1} MiB (was {:.1} MiB while mounted)",
        stopped.shutdown.as_secs_f64(),
        after as f64 / 1048576.0,
        before as f64 / 1048576.0
    );

    let (mut d, recovery) =
        Daemon::start(opts, &work.data, &work.mnt, &log2, Duration::from_secs(600))?;
    let recovery_secs = recovery.as_secs_f64();
    let recovery_met = recovery_secs < RECOVERY_TARGET_SECS;
    let after_recovery = d.status()?;
    println!(
        "remounted (recovery) in {recovery_secs:.2} s (target < {RECOVERY_TARGET_SECS} s: {}), daemon RSS {:.1} MiB",
        if recovery_met { "met" } else { "NOT met" },
        mib(after_recovery.vm_rss_kib)
    );

    // A deterministic spread-out sample: a stride coprime with most N, plus
    // the first and last record.
    let mut idx: Vec<usize> = (0..SAMPLE.min(n))
        .map(|k| (k as u64 * 7_919_u64 * 104_729 % n as u64) as usize)
        .collect();
    idx.push(0);
    idx.push(n - 1);
    idx.sort_unstable();
    idx.dedup();
    let watchdog = sys::Watchdog::start(d.pid(), stall);
    let mut buf = Vec::new();
    for &i in &idx {
        check_interrupt()?;
        let path = dir_of(&warm, i).join(workloads::record_name(i));
        workloads::read_into(&path, &mut buf)?;
        workloads::check_record(&path, &buf, i, 0)?;
    }
    let first = dir_of(&warm, 0);
    let want = n.min(PER_DIR);
    let listed = std::fs::read_dir(&first)
        .ctx(|| format!("readdir {}", first.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let b = name.as_encoded_bytes();
            b.starts_with(b"r") && b.ends_with(b".json")
        })
        .count();
    if listed != want {
        return Err(Error::msg(format!(
            "after recovery, {} lists {listed} records, expected {want}",
            first.display()
        )));
    }
    drop(watchdog);
    let after_verify = d.status()?;
    println!(
        "verified {} records after recovery and the listing of {} ({listed} records)",
        idx.len(),
        first.display()
    );
    d.stop(Duration::from_secs(300))?;
    drop(d);

    let report = RecordsReport {
        tool: "islabdb-bench",
        mode: "records",
        started_unix,
        records: n,
        directories: dirs,
        record_bytes: RECORD_SIZE,
        cache_mb: opts.cache_mb,
        create_secs,
        create_ops_per_sec: n as f64 / create_secs.max(1e-9),
        peak_rss_kib: fill.vm_hwm_kib,
        rss_kib_after_fill: fill.vm_rss_kib,
        rss_budget_kib: budget_kib,
        rss_met,
        data_dir_bytes_before_unmount: before,
        data_dir_bytes_after_unmount: after,
        shutdown_secs: stopped.shutdown.as_secs_f64(),
        recovery_secs,
        recovery_target_secs: RECOVERY_TARGET_SECS,
        recovery_met,
        rss_kib_after_recovery: after_recovery.vm_rss_kib,
        peak_rss_kib_after_verify: after_verify.vm_hwm_kib,
        sample_verified: idx.len(),
        listing_checked: first.display().to_string(),
    };
    write_json(&report, json)?;
    println!("wrote {}", json.display());
    Ok(())
}
