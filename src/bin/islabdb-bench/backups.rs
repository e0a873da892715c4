//! `--backups`: snapshots and their archives at scale. The same records (100,000 × scale
//! of ~400 B, in directories of 10,000) are written to a warm-tier collection of the
//! mount and to the native directory; then the mount takes snapshots (`mkdir` in
//! `backups/snapshots/`, timed, with the daemon's memory before and after), the last
//! one's `universe/` is first listed (timed: its tree is rebuilt then) and
//! `universe.tar.gz` is read through (the first read lays the archive out and compresses
//! it once to learn its size; a second read is timed too), against `tar -czf` of the
//! native records in the same run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::WorkDir;
use crate::daemon::{Daemon, DaemonOpts};
use crate::error::{Context, Error, Result};
use crate::records::PER_DIR;
use crate::report::write_json;
use crate::sys::{self, check_interrupt};
use crate::workloads::{self, RECORD_SIZE};

const SNAPSHOTS: usize = 3;

#[derive(Debug, Serialize)]
struct BackupsReport {
    tool: &'static str,
    mode: &'static str,
    started_unix: u64,
    records: usize,
    record_bytes: usize,
    /// Each snapshot's `mkdir`, in seconds.
    snapshot_secs: Vec<f64>,
    snapshot_median_secs: f64,
    /// The daemon's resident memory before the first snapshot and after the last.
    rss_kib_before: u64,
    rss_kib_after: u64,
    /// The first listing of the last snapshot's `universe/` (its tree is rebuilt from the
    /// checkpoint and log it pins, unless a checkpoint did it already), and the daemon's
    /// resident memory after it.
    first_browse_secs: f64,
    rss_kib_after_browse: u64,
    /// `cat universe.tar.gz > /dev/null`: the first (lays the archive out), the second.
    archive_bytes: u64,
    archive_first_read_secs: f64,
    archive_second_read_secs: f64,
    archive_mib_per_sec: f64,
    /// `tar -czf - -C native . > /dev/null` of the same records.
    native_tar_bytes: u64,
    native_tar_secs: f64,
    /// native tar time / the mount's first read: above 1, the mount is faster.
    ratio_vs_native_tar: f64,
    peak_rss_kib: u64,
}

/// Runs `script` in `sh`, counting its stdout's bytes; returns (bytes, seconds).
fn timed_bytes(script: &str) -> Result<(u64, f64)> {
    let t = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .ctx(|| format!("run {script}"))?;
    let mut out = child.stdout.take().ok_or_else(|| Error::msg("no stdout"))?;
    let bytes = std::io::copy(&mut out, &mut std::io::sink()).ctx(|| format!("read {script}"))?;
    let status = child.wait().ctx(|| format!("wait for {script}"))?;
    if !status.success() {
        return Err(Error::msg(format!("{script}: {status}")));
    }
    Ok((bytes, t.elapsed().as_secs_f64()))
}

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

pub fn run(
    scale: f64,
    opts: &DaemonOpts,
    work: &WorkDir,
    json: &Path,
    stall: Duration,
) -> Result<()> {
    let n = ((100_000.0 * scale) as usize).max(1);
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!("backups mode: {n} records of {RECORD_SIZE} B on the mount (warm tier) and natively");
    let log = work.root.join("daemon.log");
    let (mut d, _) = Daemon::start(opts, &work.data, &work.mnt, &log, Duration::from_secs(15))?;
    let watchdog = sys::Watchdog::start(d.pid(), stall);
    let mounted = work.mnt.join("spacetime/warm_data/particles");
    for (i, root) in (0..n).flat_map(|i| [(i, &mounted), (i, &work.native)]) {
        check_interrupt()?;
        let dir = root.join(format!("bench-d{:04}", i / PER_DIR));
        if i % PER_DIR == 0 {
            std::fs::create_dir_all(&dir).ctx(|| format!("mkdir {}", dir.display()))?;
        }
        workloads::write_file(
            &dir.join(workloads::record_name(i)),
            &workloads::record(i, 0),
            false,
        )?;
    }
    sys::syncfs(&work.native)?;
    let before = d.status()?;
    let mut snapshot_secs = Vec::new();
    for k in 0..SNAPSHOTS {
        let dir = work.mnt.join(format!("backups/snapshots/bench{k}"));
        let t = Instant::now();
        std::fs::create_dir(&dir).ctx(|| format!("mkdir {}", dir.display()))?;
        snapshot_secs.push(t.elapsed().as_secs_f64());
    }
    let after = d.status()?;
    let universe = work
        .mnt
        .join(format!("backups/snapshots/bench{}/universe", SNAPSHOTS - 1));
    let t = Instant::now();
    let listed = std::fs::read_dir(&universe)
        .ctx(|| format!("ls {}", universe.display()))?
        .count();
    let first_browse_secs = t.elapsed().as_secs_f64();
    let browsed = d.status()?;
    if listed == 0 {
        return Err(Error::msg("the snapshot's universe/ is empty"));
    }
    let archive = work.mnt.join(format!(
        "backups/snapshots/bench{}/universe.tar.gz",
        SNAPSHOTS - 1
    ));
    let (archive_bytes, first) = timed_bytes(&format!("cat {}", quoted(&archive)))?;
    let (_, second) = timed_bytes(&format!("cat {}", quoted(&archive)))?;
    let (native_tar_bytes, native) =
        timed_bytes(&format!("tar -czf - -C {} .", quoted(&work.native)))?;
    d.check_alive()?;
    let peak = d.status()?.vm_hwm_kib;
    drop(watchdog);
    d.stop(Duration::from_secs(300))?;
    let mut sorted = snapshot_secs.clone();
    sorted.sort_by(f64::total_cmp);
    let report = BackupsReport {
        tool: "islabdb-bench",
        mode: "backups",
        started_unix,
        records: n,
        record_bytes: RECORD_SIZE,
        snapshot_median_secs: sorted[sorted.len() / 2],
        snapshot_secs,
        rss_kib_before: before.vm_rss_kib,
        rss_kib_after: after.vm_rss_kib,
        first_browse_secs,
        rss_kib_after_browse: browsed.vm_rss_kib,
        archive_bytes,
        archive_first_read_secs: first,
        archive_second_read_secs: second,
        archive_mib_per_sec: archive_bytes as f64 / (1 << 20) as f64 / first,
        native_tar_bytes,
        native_tar_secs: native,
        ratio_vs_native_tar: native / first,
        peak_rss_kib: peak,
    };
    println!(
        "snapshot of {n} records: median {:.1} ms ({:?} s); daemon RSS {:.1} -> {:.1} MiB",
        report.snapshot_median_secs * 1000.0,
        report.snapshot_secs,
        before.vm_rss_kib as f64 / 1024.0,
        after.vm_rss_kib as f64 / 1024.0
    );
    println!(
        "first listing of its universe/ (the tree rebuilt): {:.2} s; daemon RSS {:.1} MiB",
        first_browse_secs,
        browsed.vm_rss_kib as f64 / 1024.0
    );
    println!(
        "universe.tar.gz: {:.1} MiB, first read {:.2} s ({:.1} MiB/s), second read {:.2} s",
        archive_bytes as f64 / (1 << 20) as f64,
        first,
        report.archive_mib_per_sec,
        second
    );
    println!(
        "native tar -czf: {:.1} MiB in {:.2} s; mount/native speed {:.2}x; peak RSS {:.1} MiB",
        native_tar_bytes as f64 / (1 << 20) as f64,
        native,
        report.ratio_vs_native_tar,
        peak as f64 / 1024.0
    );
    write_json(&report, json)?;
    println!("report written to {}", json.display());
    Ok(())
}
