//! Scale: a 1 GiB file streams through a 64 MiB cache with bounded daemon
//! memory (also when renamed onto a record name, which must be checked as JSON), and
//! a directory of 100,000 entries lists completely and stably.

use crate::common::*;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
const GIB_BLOCKS: usize = 1024;
const RSS_LIMIT: u64 = 512 * MIB as u64;
const SEED: u64 = 0x0151_abdb;

/// Reads the file in 1 MiB blocks and compares each with the pattern.
#[track_caller]
fn check_big(p: &std::path::Path, what: &str) {
    let mut f = File::open(p).unwrap();
    let mut buf = vec![0u8; MIB];
    for n in 0..GIB_BLOCKS {
        f.read_exact(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: reading block {n}: {e}"));
        if buf != pattern(SEED, (n * MIB) as u64, MIB) {
            panic!(
                "{what}: block {n} (offset {}) differs from what was written",
                n * MIB
            );
        }
    }
    assert_eq!(f.read(&mut buf).unwrap(), 0, "{what}: data past 1 GiB");
}

#[test]
fn one_gib_file_streams_with_bounded_daemon_memory() {
    let mut m = Mount::with_args_and_watchdog(&["--cache-mb", "64"], Duration::from_secs(420));
    let p = m.path(&format!("{USERS}/big.bin"));
    let t = Instant::now();
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)
        .unwrap();
    for n in 0..GIB_BLOCKS {
        f.write_all(&pattern(SEED, (n * MIB) as u64, MIB))
            .unwrap_or_else(|e| panic!("writing block {n}: {e}"));
    }
    close_file(f).expect("close of the 1 GiB file");
    let write_time = t.elapsed();
    assert_eq!(
        fs::metadata(&p).unwrap().len(),
        1 << 30,
        "size of the 1 GiB file"
    );
    let ls = stdout(&run("ls", &["-l", p.to_str().unwrap()]));
    assert_eq!(
        ls.split_whitespace().nth(4),
        Some("1073741824"),
        "ls -l: {ls}"
    );

    let t = Instant::now();
    check_big(&p, "live read");
    let read_time = t.elapsed();
    let hwm = vm_hwm(m.daemon_pid());
    assert!(
        hwm < RSS_LIMIT,
        "daemon peak RSS {} MiB after a 1 GiB write+read with --cache-mb 64",
        hwm >> 20
    );

    // After a remount nothing can come from the kernel page cache.
    m.remount();
    check_big(&p, "read after remount");
    let hwm2 = vm_hwm(m.daemon_pid());
    assert!(
        hwm2 < RSS_LIMIT,
        "daemon peak RSS {} MiB after reading 1 GiB (remounted)",
        hwm2 >> 20
    );
    eprintln!(
        "1 GiB: write {write_time:.1?}, read {read_time:.1?}, VmHWM {} MiB / {} MiB after remount",
        hwm >> 20,
        hwm2 >> 20
    );
}

/// Peak RSS allowed while a 1 GiB file is renamed onto a record name at --cache-mb 64:
/// the cache plus a constant (writing and reading 1 GiB peaks at 111-138 MiB).
const RENAME_RSS_LIMIT: u64 = (64 + 160) * MIB as u64;

/// Block `n` (1 MiB) of the items of a JSON array of strings: `"<61 letters>",` each.
fn json_items_block(n: usize) -> Vec<u8> {
    const ITEM: usize = 64;
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = Vec::with_capacity(MIB);
    for raw in pattern(SEED ^ 0x15, (n * MIB) as u64, MIB).chunks(ITEM) {
        out.push(b'"');
        out.extend(
            raw[..ITEM - 3]
                .iter()
                .map(|b| alphabet[*b as usize % alphabet.len()]),
        );
        out.extend_from_slice(b"\",");
    }
    out
}

/// Writes `head`, `blocks` 1 MiB blocks made by `block`, then `tail` to a new file, one
/// block in memory at a time.
fn write_streamed(p: &std::path::Path, head: &[u8], block: impl Fn(usize) -> Vec<u8>, tail: &[u8]) {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p)
        .unwrap();
    f.write_all(head).unwrap();
    for n in 0..GIB_BLOCKS {
        f.write_all(&block(n))
            .unwrap_or_else(|e| panic!("{}: writing block {n}: {e}", p.display()));
    }
    f.write_all(tail).unwrap();
    close_file(f).unwrap_or_else(|e| panic!("close of {}: {e}", p.display()));
}

/// `mv` of a 1 GiB file onto a `.json` name checks its content as JSON, streaming:
/// non-JSON is refused (EINVAL) and stays where it was, a valid document becomes the
/// record; the daemon's memory stays bounded by its cache either way.
#[test]
fn renaming_a_gib_onto_a_record_name_is_checked_with_bounded_memory() {
    let m = Mount::with_args_and_watchdog(&["--cache-mb", "64"], Duration::from_secs(600));
    let users = m.path(USERS);
    let pid = m.daemon_pid();
    let t = Instant::now();

    let big = users.join("big.bin");
    let x = users.join("x.json");
    write_streamed(&big, b"", |n| pattern(SEED, (n * MIB) as u64, MIB), b"");
    let hwm_written = vm_hwm(pid);
    let refused = output_of(std::process::Command::new("mv").arg(&big).arg(&x));
    let hwm_refused = vm_hwm(pid);

    let big2 = users.join("big2.bin");
    let y = users.join("y.json");
    write_streamed(&big2, b"[", json_items_block, b"0]");
    let accepted = output_of(std::process::Command::new("mv").arg(&big2).arg(&y));
    let hwm_accepted = vm_hwm(pid);
    eprintln!(
        "rename of 1 GiB onto a record name: {:.1?} in all; VmHWM {} MiB after writing, \
         {} MiB after the refused mv, {} MiB after the accepted one",
        t.elapsed(),
        hwm_written >> 20,
        hwm_refused >> 20,
        hwm_accepted >> 20
    );

    // GNU mv words EINVAL from rename(2) as "cannot move ... to a subdirectory of itself".
    assert!(
        !refused.status.success() && mv_says_einval(&refused),
        "mv of 1 GiB of non-JSON onto x.json: {}, stderr {:?}",
        refused.status,
        stderr(&refused)
    );
    assert!(!x.exists(), "x.json appeared after the refused mv");
    assert_eq!(
        fs::metadata(&big).unwrap().len(),
        1 << 30,
        "big.bin after the refused mv"
    );
    let mut f = File::open(&big).unwrap();
    let mut buf = vec![0u8; MIB];
    f.read_exact(&mut buf).unwrap();
    assert!(
        buf == pattern(SEED, 0, MIB),
        "big.bin's first MiB after the refused mv"
    );

    assert!(
        accepted.status.success(),
        "mv of 1 GiB of JSON onto y.json: {}, stderr {:?}",
        accepted.status,
        stderr(&accepted)
    );
    assert!(!big2.exists(), "big2.bin is still there after the mv");
    let want_len = (1u64 << 30) + 3;
    assert_eq!(fs::metadata(&y).unwrap().len(), want_len, "size of y.json");
    let mut f = File::open(&y).unwrap();
    let mut head = [0u8; 2];
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"[\"", "y.json's first bytes");
    let mut tail = [0u8; 4];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut tail, want_len - 4).unwrap();
    assert_eq!(&tail, b"\",0]", "y.json's last bytes");

    for (hwm, what) in [
        (hwm_refused, "refusing the rename of 1 GiB of non-JSON"),
        (hwm_accepted, "accepting the rename of 1 GiB of JSON"),
    ] {
        assert!(
            hwm < RENAME_RSS_LIMIT,
            "daemon peak RSS {} MiB after {what} with --cache-mb 64 (limit {} MiB)",
            hwm >> 20,
            RENAME_RSS_LIMIT >> 20
        );
    }
}

const ENTRIES: usize = 100_000;

#[test]
fn hundred_thousand_entries_list_completely_and_stably() {
    let m = Mount::with_args_and_watchdog(&[], Duration::from_secs(420));
    let rel = "spacetime/cold_data/particles/many";
    let dir = m.path(rel);
    fs::create_dir(&dir).unwrap();
    let name = |i: usize| format!("n{i:06}.json");
    let t = Instant::now();
    let threads = 4;
    let dir_arc = Arc::new(dir.clone());
    let hs: Vec<_> = (0..threads)
        .map(|k| {
            let dir = dir_arc.clone();
            thread::spawn(move || {
                for i in (k..ENTRIES).step_by(threads) {
                    let p = dir.join(format!("n{i:06}.json"));
                    let f =
                        File::create(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
                    close_file(f).unwrap_or_else(|e| panic!("close {}: {e}", p.display()));
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    eprintln!("created {ENTRIES} files in {:.1?}", t.elapsed());
    let want: HashSet<String> = (0..ENTRIES).map(name).collect();

    // ls lists every entry exactly once.
    let ls = run("ls", &["-1", "-f", dir.to_str().unwrap()]);
    let lines: Vec<String> = stdout(&ls)
        .lines()
        .map(str::to_string)
        .filter(|l| l != "." && l != "..")
        .collect();
    let set: HashSet<String> = lines.iter().cloned().collect();
    assert_eq!(
        lines.len(),
        set.len(),
        "ls printed {} names but only {} distinct",
        lines.len(),
        set.len()
    );
    let missing: Vec<&String> = want.iter().filter(|n| !set.contains(*n)).take(5).collect();
    assert!(
        missing.is_empty(),
        "ls misses entries (first: {missing:?}); it printed {} names",
        lines.len()
    );
    // A data directory lists only what users put there (its manifest is there by name).
    let extra: Vec<&String> = set.iter().filter(|n| !want.contains(*n)).take(5).collect();
    assert!(extra.is_empty(), "ls shows unexpected entries: {extra:?}");
    assert_eq!(
        stdout(&run(
            "sh",
            &["-c", &format!("ls {} | wc -l", dir.display())]
        ))
        .trim(),
        ENTRIES.to_string()
    );

    // read_dir gives each name exactly once.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in fs::read_dir(&dir).unwrap() {
        *counts
            .entry(e.unwrap().file_name().into_string().unwrap())
            .or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(
        dups.is_empty(),
        "read_dir returned names more than once: {dups:?}"
    );
    assert_eq!(counts.len(), ENTRIES, "read_dir entry count");
    assert_eq!(
        read_json(&dir.join("_manifest.json"))["record_count"],
        ENTRIES,
        "record_count of the big dir"
    );

    // Stable offsets: change the dir in the middle of a scan; every entry
    // that exists throughout is returned exactly once.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut it = fs::read_dir(&dir).unwrap();
    for _ in 0..ENTRIES / 2 {
        *seen
            .entry(
                it.next()
                    .unwrap()
                    .unwrap()
                    .file_name()
                    .into_string()
                    .unwrap(),
            )
            .or_default() += 1;
    }
    let removed_seen: Vec<String> = seen
        .keys()
        .filter(|n| n.starts_with('n'))
        .take(1000)
        .cloned()
        .collect();
    let removed_unseen: Vec<String> = want
        .iter()
        .filter(|n| !seen.contains_key(*n))
        .take(1000)
        .cloned()
        .collect();
    for n in removed_seen.iter().chain(&removed_unseen) {
        fs::remove_file(dir.join(n)).unwrap();
    }
    for i in 0..1000 {
        put(&dir.join(format!("added{i:04}.json")), b"");
    }
    for e in it {
        *seen
            .entry(e.unwrap().file_name().into_string().unwrap())
            .or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(
        dups.is_empty(),
        "a scan with concurrent changes returned names twice: {dups:?}"
    );
    let removed: HashSet<&String> = removed_seen.iter().chain(&removed_unseen).collect();
    let lost: Vec<&String> = want
        .iter()
        .filter(|n| !removed.contains(n) && !seen.contains_key(*n))
        .take(5)
        .collect();
    assert!(
        lost.is_empty(),
        "a scan with concurrent changes skipped unchanged entries: {lost:?}"
    );
}

/// A file past the daemon's in-memory draft size, written in order and then changed out
/// of order before the close (the daemon switches how it holds the draft on the way):
/// the writer sees its own bytes, and the commit keeps every one of them.
#[test]
fn a_large_draft_changed_out_of_order_keeps_every_byte() {
    use std::os::unix::fs::FileExt;
    let mut m = Mount::new();
    let dir = m.path("spacetime/warm_data/particles/mixed");
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join("mixed.bin");
    let mut model = pattern(SEED ^ 7, 0, 12 * MIB);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&p)
        .unwrap();
    for (n, block) in model.chunks(MIB).enumerate() {
        f.write_all_at(block, (n * MIB) as u64).unwrap();
    }
    let patch = pattern(SEED ^ 9, 0, 4096);
    let at = 5 * MIB + 3;
    f.write_all_at(&patch, at as u64).unwrap();
    model[at..at + patch.len()].copy_from_slice(&patch);
    let more = pattern(SEED ^ 11, 0, 2 * MIB + 17);
    f.write_all_at(&more, model.len() as u64).unwrap();
    model.extend_from_slice(&more);
    let mut own = vec![0u8; 10_000];
    f.read_exact_at(&mut own, (at - 5000) as u64).unwrap();
    assert!(
        own == model[at - 5000..at + 5000],
        "the writer does not see its own bytes"
    );
    close_file(f).unwrap();
    assert!(
        get(&p) == model,
        "the committed file differs from what was written"
    );
    m.remount();
    assert!(get(&p) == model, "the file differs after a remount");
}

/// Blob files in the warm tier's shard directory.
fn warm_blobs(m: &Mount) -> Vec<String> {
    names(&m.data().join("spacetime/warm_data/shard"))
        .into_iter()
        .filter(|n| n.ends_with(".blob"))
        .collect()
}

/// kill -9 while a large file is being rewritten in order: the previous version comes
/// back whole, and the half-written new content leaves no file behind once the
/// universe is checkpointed.
#[test]
fn kill9_during_a_large_rewrite_keeps_the_old_version_and_no_leftovers() {
    let mut m = Mount::new();
    let dir = m.path("spacetime/warm_data/particles/rewrite");
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join("big.bin");
    let old = pattern(SEED ^ 21, 0, 10 * MIB + 5);
    put(&p, &old);
    m.remount(); // a checkpoint: the old version's blob is the only one
    assert_eq!(warm_blobs(&m).len(), 1, "{:?}", warm_blobs(&m));

    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    for n in 0..20 {
        f.write_all(&pattern(SEED ^ 23, (n * MIB) as u64, MIB))
            .unwrap();
    }
    m.kill9();
    drop(f);
    m.remount();
    assert!(
        get(&p) == old,
        "the committed version after kill -9 mid-rewrite"
    );
    assert_eq!(
        warm_blobs(&m).len(),
        2,
        "the rewrite was streaming into a blob of its own: {:?}",
        warm_blobs(&m)
    );
    m.unmount_cleanly();
    assert_eq!(
        warm_blobs(&m).len(),
        1,
        "the interrupted rewrite's blob outlived a checkpoint: {:?}",
        warm_blobs(&m)
    );
}

/// The log segments (as `backups/cosmic_logs/` lists them: up to the last record) and the
/// shard files of the data directory, with their sizes.
fn stored_files(m: &Mount) -> HashMap<std::path::PathBuf, u64> {
    let mut out = HashMap::new();
    let logs = m.path("backups/cosmic_logs");
    let mut dirs = vec![logs.clone()];
    dirs.extend(TIERS.map(|t| m.data().join("spacetime").join(t).join("shard")));
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if dir == logs && !name.ends_with(".wal") {
                continue;
            }
            if let Ok(meta) = fs::metadata(&p) {
                out.insert(p, meta.len());
            }
        }
    }
    out
}

/// `stored_files` once they stop growing: what a phase wrote includes its audit lines,
/// which the daemon writes at its next tick (about once a second). Without waiting for
/// them, one phase's lines could be counted in the next phase's growth.
fn settled_files(m: &Mount) -> HashMap<std::path::PathBuf, u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = stored_files(m);
    loop {
        std::thread::sleep(Duration::from_millis(2500));
        let now = stored_files(m);
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Bytes the log and the shards grew by from `before` to `after` (a checkpoint may retire
/// files meanwhile; only growth counts).
fn stored_growth(
    before: &HashMap<std::path::PathBuf, u64>,
    after: &HashMap<std::path::PathBuf, u64>,
) -> u64 {
    after
        .iter()
        .map(|(p, len)| len.saturating_sub(before.get(p).copied().unwrap_or(0)))
        .sum()
}

/// `echo line >> f` 200 times: the log (and the shards) grow by what the lines hold (plus
/// each record's metadata), the same for a 64 MiB file as for a one-line file; a reader
/// that opened the large file before keeps its version.
#[test]
fn appends_log_what_they_append_not_the_file() {
    let m = Mount::with_args_and_watchdog(&[], Duration::from_secs(300));
    let (large, small) = (
        m.path("spacetime/hot_data/event_horizon/large.log"),
        m.path("spacetime/hot_data/event_horizon/small.log"),
    );
    let mut f = File::create(&large).unwrap();
    for n in 0..64 {
        f.write_all(&pattern(SEED, (n * MIB) as u64, MIB)).unwrap();
    }
    close_file(f).expect("close of the 64 MiB file");
    fs::write(&small, b"first line\n").unwrap();
    let reader = File::open(&large).unwrap();

    let appends = |path: &std::path::Path| {
        let before = settled_files(&m);
        let script = format!(
            "for i in $(seq 200); do echo \"appended line $i\" >> {}; done",
            shq(path)
        );
        let out = sh_output(&script);
        assert!(out.status.success(), "appends: {}", stderr(&out));
        stored_growth(&before, &settled_files(&m))
    };
    let to_small = appends(&small);
    let to_large = appends(&large);
    let lines: String = (1..=200).map(|i| format!("appended line {i}\n")).collect();
    for (what, grown) in [("a 64 MiB", to_large), ("a one-line", to_small)] {
        assert!(
            grown < 200 * 400,
            "200 appended lines ({} bytes) to {what} file logged {grown} bytes",
            lines.len()
        );
    }
    assert!(
        to_large <= to_small + to_small / 4 + 4096,
        "appending to a 64 MiB file logged {to_large} bytes, to a small one {to_small}"
    );

    let size = fs::metadata(&large).unwrap().len();
    assert_eq!(size, (64 * MIB + lines.len()) as u64);
    let r = File::open(&large).unwrap();
    let mut tail = vec![0u8; lines.len()];
    r.read_exact_at(&mut tail, (64 * MIB) as u64).unwrap();
    assert_eq!(String::from_utf8_lossy(&tail), lines);
    let mut head = vec![0u8; MIB];
    r.read_exact_at(&mut head, 0).unwrap();
    assert!(
        head == pattern(SEED, 0, MIB),
        "the first MiB after the appends"
    );
    assert_eq!(
        fs::read(&small).unwrap(),
        [b"first line\n".as_slice(), lines.as_bytes()].concat()
    );

    // The reader opened before the appends sees the 64 MiB it opened, and no more.
    let mut rest = vec![0u8; 64];
    let n = reader.read_at(&mut rest, (64 * MIB - 8) as u64).unwrap();
    assert_eq!(rest[..n], pattern(SEED, (64 * MIB - 8) as u64, 8));
}
