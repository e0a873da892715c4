//! The workloads. Each one runs against a directory (on the mount or on the
//! native filesystem, it does not know which), verifies what it reads, and
//! returns how many units it did in how many seconds. Everything a workload
//! needs that is not part of what it measures (expected contents, buffers)
//! is prepared before its clock starts.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::io::IntoRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::error::{Context, Error, Result};
use crate::sys::{self, check_interrupt};

/// Size of one record file in bytes.
pub const RECORD_SIZE: usize = 400;
/// Size of one appended line in bytes (newline included).
pub const LINE_SIZE: usize = 150;
/// Block size of the sequential workloads.
pub const BLOCK: usize = 1 << 20;
/// File names of the opaque (non-JSON) files.
pub const STREAM_FILE: &str = "stream.log";
pub const BIG_FILE: &str = "big.bin";

/// The counts of one run, from the defaults times `--scale`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sizes {
    pub records: usize,
    pub fsync_records: usize,
    pub list_passes: usize,
    pub append_lines: usize,
    pub reopen_lines: usize,
    pub seq_mib: usize,
    pub parallel_records_per_process: usize,
    /// Events each writer appends in the stream workloads.
    pub stream_lines: usize,
    /// Events in the month the range read reads an hour of.
    pub month_events: usize,
    /// Nodes of the graph workloads (each with `graph::FANOUT` edges).
    pub graph_nodes: usize,
    /// Neighbourhoods read.
    pub graph_queries: usize,
    /// Nodes with coordinates that the k-nearest queries search (written once per run).
    pub knn_nodes: usize,
    /// k-nearest queries, each of a node of that set.
    pub knn_queries: usize,
}

impl Sizes {
    pub fn new(scale: f64) -> Sizes {
        let s = |base: f64, min: usize| ((base * scale).round() as usize).max(min);
        Sizes {
            records: s(5000.0, 10),
            fsync_records: s(1000.0, 5),
            list_passes: 10,
            append_lines: s(50_000.0, 100),
            reopen_lines: s(1000.0, 20),
            seq_mib: s(256.0, 2),
            // Never below the full size: at --scale 0.2 a client's 500 records took ~40 ms
            // on the mount and the rounds' two-over-one ratio spread from 1.1 to 1.8; from
            // 1,000 records on it held at 1.9-2.0.
            parallel_records_per_process: s(2500.0, 2500),
            stream_lines: s(4000.0, 40),
            month_events: s(200_000.0, 2000),
            graph_nodes: s(10_000.0, 20),
            graph_queries: s(1000.0, 10),
            knn_nodes: s(100_000.0, 200),
            knn_queries: s(1000.0, 10),
        }
    }
}

/// Units done in a measured interval.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub units: f64,
    pub secs: f64,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.units / self.secs.max(1e-9)
    }
}

fn timed(units: f64, t0: Instant) -> Sample {
    Sample {
        units,
        secs: t0.elapsed().as_secs_f64(),
    }
}

pub fn record_name(i: usize) -> String {
    format!("r{i}.json")
}

/// A record of exactly [`RECORD_SIZE`] bytes of valid JSON whose content
/// depends on its id and generation, so a stale version is detected.
pub fn record(i: usize, generation: u32) -> Vec<u8> {
    let head = format!("{{\"id\":{i},\"gen\":{generation},\"pad\":\"");
    let tail = "\"}\n";
    let pad_len = RECORD_SIZE - head.len() - tail.len();
    let pad = b'a' + ((i + generation as usize * 7) % 26) as u8;
    let mut v = Vec::with_capacity(RECORD_SIZE);
    v.extend_from_slice(head.as_bytes());
    v.resize(head.len() + pad_len, pad);
    v.extend_from_slice(tail.as_bytes());
    v
}

/// One appended line of exactly [`LINE_SIZE`] bytes.
fn line(i: usize) -> Vec<u8> {
    let head = format!("{{\"seq\":{i},\"msg\":\"");
    let tail = "\"}\n";
    let mut v = Vec::with_capacity(LINE_SIZE);
    v.extend_from_slice(head.as_bytes());
    v.resize(LINE_SIZE - tail.len(), b'0' + (i % 10) as u8);
    v.extend_from_slice(tail.as_bytes());
    v
}

/// Closes explicitly, because `close` is where a FUSE filesystem commits
/// (and may refuse) a write; dropping a `File` would ignore that error.
pub fn close(f: File, path: &Path) -> Result<()> {
    let fd = f.into_raw_fd();
    // SAFETY: we own `fd` (taken from the File) and close it exactly once.
    let rc = unsafe { libc::close(fd) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::io(
            std::io::Error::last_os_error(),
            format!("close {}", path.display()),
        ))
    }
}

pub fn write_file(path: &Path, data: &[u8], fsync: bool) -> Result<()> {
    let mut f = File::create(path).ctx(|| format!("create {}", path.display()))?;
    f.write_all(data)
        .ctx(|| format!("write {}", path.display()))?;
    if fsync {
        f.sync_all().ctx(|| format!("fsync {}", path.display()))?;
    }
    close(f, path)
}

/// Reads a whole file into `buf` (cleared first) the way `cat` does: open,
/// read until EOF, close.
pub fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    let mut f = File::open(path).ctx(|| format!("open {}", path.display()))?;
    // A plain read loop: `read_to_end` would add an fstat to size the buffer.
    let mut chunk = [0u8; 4096];
    loop {
        let k = f
            .read(&mut chunk)
            .ctx(|| format!("read {}", path.display()))?;
        if k == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..k]);
    }
}

pub fn check_record(path: &Path, got: &[u8], i: usize, generation: u32) -> Result<()> {
    if got == record(i, generation).as_slice() {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(&got[..got.len().min(60)]).into_owned();
    Err(Error::msg(format!(
        "verify {}: expected record {i} generation {generation} ({RECORD_SIZE} B), got {} B starting {shown:?}",
        path.display(),
        got.len()
    )))
}

/// create: open(O_CREAT|O_TRUNC)/write/close of `n` new records.
pub fn create(dir: &Path, n: usize, generation: u32) -> Result<Sample> {
    let data: Vec<Vec<u8>> = (0..n).map(|i| record(i, generation)).collect();
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(record_name(i))).collect();
    let t0 = Instant::now();
    for (path, data) in paths.iter().zip(&data) {
        check_interrupt()?;
        write_file(path, data, false)?;
    }
    Ok(timed(n as f64, t0))
}

/// create+fsync: like create, with fsync before close; files `{prefix}{i}.json`.
pub fn create_fsync(dir: &Path, prefix: &str, n: usize, fsync: bool) -> Result<Sample> {
    let data: Vec<Vec<u8>> = (0..n).map(|i| record(i, 0)).collect();
    let paths: Vec<PathBuf> = (0..n)
        .map(|i| dir.join(format!("{prefix}{i}.json")))
        .collect();
    let t0 = Instant::now();
    for (path, data) in paths.iter().zip(&data) {
        check_interrupt()?;
        write_file(path, data, fsync)?;
    }
    Ok(timed(n as f64, t0))
}

/// stat: lstat of every record by name.
pub fn stat_all(dir: &Path, n: usize) -> Result<Sample> {
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(record_name(i))).collect();
    let t0 = Instant::now();
    for path in &paths {
        check_interrupt()?;
        let md = fs::symlink_metadata(path).ctx(|| format!("stat {}", path.display()))?;
        if !md.is_file() || md.len() != RECORD_SIZE as u64 {
            return Err(Error::msg(format!(
                "stat {}: expected a {RECORD_SIZE} B file, got {:?} of {} B",
                path.display(),
                md.file_type(),
                md.len()
            )));
        }
    }
    Ok(timed(n as f64, t0))
}

/// listing: `passes` full readdirs of the directory holding the `n`
/// records (names only, like `ls -f`); the unit is directory entries.
pub fn list(dir: &Path, n: usize, passes: usize) -> Result<Sample> {
    let mut entries = 0usize;
    let t0 = Instant::now();
    for _ in 0..passes {
        check_interrupt()?;
        // The directory holds only this workload's records (on the mount too: a data
        // directory lists no generated file), so every entry counts.
        let mut listed = 0usize;
        for entry in fs::read_dir(dir).ctx(|| format!("readdir {}", dir.display()))? {
            entry.ctx(|| format!("readdir {}", dir.display()))?;
            listed += 1;
        }
        if listed != n {
            return Err(Error::msg(format!(
                "readdir {}: expected exactly the {n} records, listed {listed} entries",
                dir.display()
            )));
        }
        entries += listed;
    }
    Ok(timed(entries as f64, t0))
}

/// read: open/read/close every record and compare with what was written.
pub fn read_all(dir: &Path, n: usize, generation: u32) -> Result<Sample> {
    let expected: Vec<Vec<u8>> = (0..n).map(|i| record(i, generation)).collect();
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(record_name(i))).collect();
    let mut buf = Vec::with_capacity(4096);
    let t0 = Instant::now();
    for (i, path) in paths.iter().enumerate() {
        check_interrupt()?;
        read_into(path, &mut buf)?;
        if buf != expected[i] {
            check_record(path, &buf, i, generation)?;
        }
    }
    Ok(timed(n as f64, t0))
}

/// Verifies every `stride`-th record outside any timing.
pub fn verify_sample(dir: &Path, n: usize, generation: u32, stride: usize) -> Result<()> {
    let mut buf = Vec::new();
    for i in (0..n).step_by(stride.max(1)) {
        let path = dir.join(record_name(i));
        read_into(&path, &mut buf)?;
        check_record(&path, &buf, i, generation)?;
    }
    Ok(())
}

/// overwrite in place: open(O_TRUNC)/write/close of every existing record.
pub fn overwrite(dir: &Path, n: usize, generation: u32) -> Result<Sample> {
    let data: Vec<Vec<u8>> = (0..n).map(|i| record(i, generation)).collect();
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(record_name(i))).collect();
    let mut opts = OpenOptions::new();
    opts.write(true).truncate(true);
    let t0 = Instant::now();
    for (path, data) in paths.iter().zip(&data) {
        check_interrupt()?;
        let mut f = opts
            .open(path)
            .ctx(|| format!("open O_TRUNC {}", path.display()))?;
        f.write_all(data)
            .ctx(|| format!("write {}", path.display()))?;
        close(f, path)?;
    }
    Ok(timed(n as f64, t0))
}

/// editor pattern: write `.tmp{i}`, close, rename it over `r{i}.json`.
pub fn editor(dir: &Path, n: usize, generation: u32) -> Result<Sample> {
    let data: Vec<Vec<u8>> = (0..n).map(|i| record(i, generation)).collect();
    let paths: Vec<(PathBuf, PathBuf)> = (0..n)
        .map(|i| (dir.join(format!(".tmp{i}")), dir.join(record_name(i))))
        .collect();
    let t0 = Instant::now();
    for ((tmp, path), data) in paths.iter().zip(&data) {
        check_interrupt()?;
        write_file(tmp, data, false)?;
        fs::rename(tmp, path)
            .ctx(|| format!("rename {} over {}", tmp.display(), path.display()))?;
    }
    Ok(timed(n as f64, t0))
}

/// append: one file opened with O_APPEND, one write(2) per ~150 B line.
pub fn append(dir: &Path, lines: usize) -> Result<Sample> {
    let path = dir.join(STREAM_FILE);
    let data: Vec<Vec<u8>> = (0..lines).map(line).collect();
    let t0 = Instant::now();
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .ctx(|| format!("open O_APPEND {}", path.display()))?;
    for (i, l) in data.iter().enumerate() {
        if i % 1024 == 0 {
            check_interrupt()?;
        }
        f.write_all(l)
            .ctx(|| format!("append line {i} to {}", path.display()))?;
    }
    close(f, &path)?;
    Ok(timed(lines as f64, t0))
}

/// append-reopen: `n` more lines appended to the appended file (which holds the first
/// `first` lines), each with its own open(O_APPEND)/write/close, as `echo line >> f`
/// does; the file's size is checked after.
pub fn append_reopen(dir: &Path, first: usize, n: usize) -> Result<Sample> {
    let path = dir.join(STREAM_FILE);
    let data: Vec<Vec<u8>> = (first..first + n).map(line).collect();
    let size = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.len())
            .ctx(|| format!("stat {}", p.display()))
    };
    let want = size(&path)? + data.iter().map(|l| l.len() as u64).sum::<u64>();
    let t0 = Instant::now();
    for (i, l) in data.iter().enumerate() {
        if i % 64 == 0 {
            check_interrupt()?;
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .ctx(|| format!("open O_APPEND {}", path.display()))?;
        f.write_all(l)
            .ctx(|| format!("append line {} to {}", first + i, path.display()))?;
        close(f, &path)?;
    }
    let sample = timed(n as f64, t0);
    let got = size(&path)?;
    if got != want {
        return Err(Error::msg(format!(
            "{}: {got} bytes after the reopened appends, expected {want}",
            path.display()
        )));
    }
    Ok(sample)
}

/// append read-back: the appended file read with 64 KiB reads and compared.
pub fn append_read(dir: &Path, lines: usize) -> Result<Sample> {
    let path = dir.join(STREAM_FILE);
    let expected: Vec<u8> = (0..lines).flat_map(line).collect();
    let mut got = Vec::with_capacity(expected.len() + BLOCK);
    let mut buf = vec![0u8; 64 << 10];
    let t0 = Instant::now();
    let mut f = File::open(&path).ctx(|| format!("open {}", path.display()))?;
    loop {
        check_interrupt()?;
        let k = f
            .read(&mut buf)
            .ctx(|| format!("read {}", path.display()))?;
        if k == 0 {
            break;
        }
        got.extend_from_slice(&buf[..k]);
    }
    drop(f);
    let sample = timed(got.len() as f64 / BLOCK as f64, t0);
    if got != expected {
        let at = got
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len()));
        return Err(Error::msg(format!(
            "verify {}: {} B read, {} B expected, first difference at byte {at} (line {})",
            path.display(),
            got.len(),
            expected.len(),
            at / LINE_SIZE
        )));
    }
    Ok(sample)
}

fn stamp(buf: &mut [u8], block: usize) {
    let tag = (block as u64 ^ 0x1575_ab00_0000_0000).to_le_bytes();
    buf[..8].copy_from_slice(&tag);
    let n = buf.len();
    buf[n - 8..].copy_from_slice(&tag);
}

fn pattern_block() -> Vec<u8> {
    (0..BLOCK).map(|i| (i % 251) as u8).collect()
}

/// sequential write: `mib` blocks of 1 MiB to one opaque file, then close.
pub fn seq_write(dir: &Path, mib: usize) -> Result<Sample> {
    let path = dir.join(BIG_FILE);
    let mut buf = pattern_block();
    let t0 = Instant::now();
    let mut f = File::create(&path).ctx(|| format!("create {}", path.display()))?;
    for b in 0..mib {
        check_interrupt()?;
        stamp(&mut buf, b);
        f.write_all(&buf)
            .ctx(|| format!("write block {b} of {}", path.display()))?;
    }
    close(f, &path)?;
    Ok(timed(mib as f64, t0))
}

/// sequential read: the same file with 1 MiB reads; each block's stamps and
/// a few pattern bytes are checked.
pub fn seq_read(dir: &Path, mib: usize) -> Result<Sample> {
    let path = dir.join(BIG_FILE);
    let reference = pattern_block();
    let mut buf = vec![0u8; BLOCK];
    let t0 = Instant::now();
    let mut f = File::open(&path).ctx(|| format!("open {}", path.display()))?;
    for b in 0..mib {
        check_interrupt()?;
        f.read_exact(&mut buf)
            .ctx(|| format!("read block {b} of {}", path.display()))?;
        let mut want = [0u8; 16];
        stamp(&mut want, b);
        let ok = buf[..8] == want[..8]
            && buf[BLOCK - 8..] == want[8..]
            && (8..BLOCK - 8).step_by(4093).all(|i| buf[i] == reference[i]);
        if !ok {
            return Err(Error::msg(format!(
                "verify {}: block {b} has the wrong content",
                path.display()
            )));
        }
    }
    let extra = f
        .read(&mut buf)
        .ctx(|| format!("read end of {}", path.display()))?;
    drop(f);
    let sample = timed(mib as f64, t0);
    if extra != 0 {
        return Err(Error::msg(format!(
            "verify {}: longer than the {mib} MiB written",
            path.display()
        )));
    }
    Ok(sample)
}

/// unlink: remove every record.
pub fn unlink_all(dir: &Path, n: usize) -> Result<Sample> {
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(record_name(i))).collect();
    let t0 = Instant::now();
    for path in &paths {
        check_interrupt()?;
        fs::remove_file(path).ctx(|| format!("unlink {}", path.display()))?;
    }
    Ok(timed(n as f64, t0))
}

/// Removes every regular file of `dir` except generated ones (`_*`), so the
/// next round starts from an empty directory. Each unlink counts as progress for
/// the watchdog: emptying a large directory (graph_knn's set) takes a while.
pub fn clean_dir(dir: &Path) -> Result<()> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in rd {
        check_interrupt()?;
        let entry = entry.ctx(|| format!("readdir {}", dir.display()))?;
        if entry.file_name().as_encoded_bytes().starts_with(b"_") {
            continue;
        }
        let path = entry.path();
        let ft = entry
            .file_type()
            .ctx(|| format!("stat {}", path.display()))?;
        if !ft.is_dir() {
            fs::remove_file(&path).ctx(|| format!("unlink {}", path.display()))?;
        }
    }
    Ok(())
}

/// The name of `parallel`'s second figure.
pub const SCALING: &str = "rate over one client's";

/// Two clients at once against one alone: one process creating `n` records in its own
/// directory and reading them all back, then two such processes at once. Returns the
/// two's sample and their rate over the one's (the issue asks for 1.6 or more). Worker
/// `k` is pinned to `cpus[k % len]` (none: they keep the client's placement), so two
/// clients on a machine of two CPUs each have one, as two users' shells would.
pub fn parallel(exe: &Path, dirs: &[PathBuf], n: usize, cpus: &[usize]) -> Result<(Sample, f64)> {
    let one = clients(exe, &dirs[..1], n, cpus)?;
    let all = clients(exe, dirs, n, cpus)?;
    let scaling = all.rate() / one.rate();
    Ok((all, scaling))
}

/// `dirs.len()` worker processes at once, each creating `n` records in its own directory
/// and then reading them all back. A start barrier lines them up; the span is from the
/// first start to the last end (CLOCK_MONOTONIC, shared by all).
fn clients(exe: &Path, dirs: &[PathBuf], n: usize, cpus: &[usize]) -> Result<Sample> {
    let mut children = Vec::new();
    for (k, dir) in dirs.iter().enumerate() {
        let child = Command::new(exe)
            .arg("--worker-dir")
            .arg(dir)
            .arg("--worker-count")
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ctx(|| format!("start worker process {k}"))?;
        let child = ChildGuard(child);
        if !cpus.is_empty() {
            let cpu = cpus[k % cpus.len()];
            sys::set_affinity(child.0.id() as libc::pid_t, &[cpu])
                .ctx(|| format!("pin worker process {k} to CPU {cpu}"))?;
        }
        children.push(child);
    }
    let mut readers = Vec::new();
    for (k, c) in children.iter_mut().enumerate() {
        let out =
            c.0.stdout
                .take()
                .ok_or_else(|| Error::msg("worker stdout missing"))?;
        let mut r = BufReader::new(out);
        let mut l = String::new();
        r.read_line(&mut l)
            .ctx(|| format!("wait for worker {k} to be ready"))?;
        if l.trim() != "ready" {
            return Err(Error::msg(format!(
                "worker {k} failed before starting (said {l:?})"
            )));
        }
        readers.push(r);
    }
    for (k, c) in children.iter_mut().enumerate() {
        let stdin =
            c.0.stdin
                .as_mut()
                .ok_or_else(|| Error::msg("worker stdin missing"))?;
        stdin
            .write_all(b"go\n")
            .and_then(|_| stdin.flush())
            .ctx(|| format!("start worker {k}"))?;
    }
    let (mut first, mut last, mut ops) = (u64::MAX, 0u64, 0u64);
    for (k, r) in readers.iter_mut().enumerate() {
        let mut l = String::new();
        r.read_line(&mut l)
            .ctx(|| format!("read the result of worker {k}"))?;
        let nums: Vec<u64> = l
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [start, end, done] = nums[..] else {
            return Err(Error::msg(format!(
                "worker {k} failed (see its error above; it said {l:?})"
            )));
        };
        first = first.min(start);
        last = last.max(end);
        ops += done;
    }
    for (k, mut c) in children.into_iter().enumerate() {
        drop(c.0.stdin.take());
        let status = c.0.wait().ctx(|| format!("wait for worker {k}"))?;
        if !status.success() {
            return Err(Error::msg(format!("worker {k} exited with {status}")));
        }
    }
    Ok(Sample {
        units: ops as f64,
        secs: (last.saturating_sub(first)) as f64 / 1e9,
    })
}

/// Kills a worker that is still running when the parent bails out.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The worker side of [`parallel`] (`islabdb-bench --worker-dir D`).
pub fn worker(dir: &Path, n: usize) -> Result<()> {
    fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))?;
    let data: Vec<Vec<u8>> = (0..n).map(|i| record(i, 3)).collect();
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(record_name(i))).collect();
    let mut out = std::io::stdout();
    writeln!(out, "ready")
        .and_then(|_| out.flush())
        .ctx(|| "tell the parent we are ready")?;
    let mut go = String::new();
    std::io::stdin()
        .read_line(&mut go)
        .ctx(|| "wait for the start signal")?;
    let start = sys::monotonic_ns();
    for (path, data) in paths.iter().zip(&data) {
        check_interrupt()?;
        write_file(path, data, false)?;
    }
    let mut buf = Vec::with_capacity(4096);
    for (i, path) in paths.iter().enumerate() {
        check_interrupt()?;
        read_into(path, &mut buf)?;
        if buf != data[i] {
            check_record(path, &buf, i, 3)?;
        }
    }
    let end = sys::monotonic_ns();
    writeln!(out, "{start} {end} {}", 2 * n)
        .and_then(|_| out.flush())
        .ctx(|| "report to the parent")?;
    for path in &paths {
        fs::remove_file(path).ctx(|| format!("unlink {}", path.display()))?;
    }
    Ok(())
}
