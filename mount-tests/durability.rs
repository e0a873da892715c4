//! Durability by tier, and crash safety: after `kill -9` and a remount of
//! the same DATA_DIR nothing acknowledged is lost and nothing is corrupt.

use crate::common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// The body of crash-test record `{prefix}{i}`: ~1 KiB of valid JSON.
fn body(prefix: &str, i: usize) -> Vec<u8> {
    json_record(&format!("{prefix}{i}"), 1000 + i % 50)
}

/// How one writer commits a record.
#[derive(Clone, Copy)]
enum Commit {
    Close,
    FsyncThenClose,
}

/// Writes `dir/{prefix}{i}.json` for i = start.. until `stop` or an error;
/// returns the i whose commit was acknowledged.
fn writer(
    dir: PathBuf,
    prefix: &'static str,
    start: usize,
    how: Commit,
    stop: Arc<AtomicBool>,
) -> Vec<usize> {
    let mut acked = Vec::new();
    let mut i = start;
    while !stop.load(Ordering::SeqCst) {
        let p = dir.join(format!("{prefix}{i}.json"));
        let res = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&p)?;
            f.write_all(&body(prefix, i))?;
            if let Commit::FsyncThenClose = how {
                fsync_file(&f)?;
            }
            close_file(f)
        })();
        if res.is_err() {
            break;
        }
        acked.push(i);
        i += 1;
    }
    acked
}

/// Every acknowledged record is byte-identical; every other `{prefix}*.json`
/// in `dir` is complete or empty.
#[track_caller]
fn verify(dir: &Path, prefix: &str, acked: &[usize], what: &str) {
    for &i in acked {
        let p = dir.join(format!("{prefix}{i}.json"));
        match fs::read(&p) {
            Ok(b) => assert!(
                b == body(prefix, i),
                "{what}: acknowledged {} differs after the crash ({} bytes)",
                p.display(),
                b.len()
            ),
            Err(e) => panic!(
                "{what}: acknowledged {} is lost after the crash: {e}",
                p.display()
            ),
        }
    }
    for n in names(dir) {
        let Some(i) = n
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(".json"))
            .and_then(|r| r.parse::<usize>().ok())
        else {
            continue;
        };
        let b = get(&dir.join(&n));
        assert!(
            b.is_empty() || b == body(prefix, i),
            "{what}: {n} is neither empty nor complete after the crash ({} bytes: {:?}...)",
            b.len(),
            String::from_utf8_lossy(&b[..b.len().min(60)])
        );
    }
}

#[test]
fn kill9_keeps_every_acknowledged_commit() {
    let mut m = Mount::new();
    let hot = m.path(USERS);
    let warm = m.path("spacetime/warm_data/particles/crash");
    let cold = m.path("spacetime/cold_data/particles/crash");
    fs::create_dir(&warm).unwrap();
    fs::create_dir(&cold).unwrap();
    let mut all: [Vec<usize>; 3] = Default::default();
    // Two crash/recover rounds: the second one crashes a recovered store.
    for round in 0..2 {
        let stop = Arc::new(AtomicBool::new(false));
        let next = |v: &Vec<usize>| {
            v.last()
                .map_or(round * 1_000_000, |x| x + 1)
                .max(round * 1_000_000)
        };
        let writers = [
            (hot.clone(), "k", Commit::Close, next(&all[0])),
            (warm.clone(), "w", Commit::FsyncThenClose, next(&all[1])),
            (cold.clone(), "c", Commit::Close, next(&all[2])),
        ]
        .map(|(dir, prefix, how, start)| {
            let stop = stop.clone();
            thread::spawn(move || writer(dir, prefix, start, how, stop))
        });
        thread::sleep(Duration::from_millis(1000));
        m.kill9();
        stop.store(true, Ordering::SeqCst);
        for (k, w) in writers.into_iter().enumerate() {
            let acked = w.join().unwrap();
            assert!(
                !acked.is_empty(),
                "round {round}: writer {k} never got a commit acknowledged"
            );
            all[k].extend(acked);
        }
        m.remount();
        verify(
            &hot,
            "k",
            &all[0],
            &format!("round {round}, hot_data (close)"),
        );
        verify(
            &warm,
            "w",
            &all[1],
            &format!("round {round}, warm_data (fsync)"),
        );
        // cold commits are only durable within 1 s: none may be corrupt, and
        // those older than the window must be there; check the shape only.
        verify(&cold, "c", &[], &format!("round {round}, cold_data"));
    }
    let n: usize = all.iter().map(Vec::len).sum();
    eprintln!(
        "kill9 test: {n} acknowledged commits checked ({} hot)",
        all[0].len()
    );
}

#[test]
fn warm_and_cold_commits_become_durable_within_their_window() {
    let mut m = Mount::new();
    // Margins are generous (10x and 3x the promised windows): this checks
    // the promise, not the speed.
    for (tier, wait) in [
        ("warm_data", Duration::from_millis(1000)),
        ("cold_data", Duration::from_millis(3000)),
    ] {
        let ty = format!("spacetime/{tier}/particles/window");
        fs::create_dir_all(m.path(&ty)).unwrap();
        let rec = json_record(tier, 2000);
        put(&m.path(&format!("{ty}/r.json")), &rec);
        put(&m.path(&format!("{ty}/blob.bin")), &pattern(1, 0, 10_000));
        thread::sleep(wait);
        m.kill9();
        m.remount();
        assert!(
            get(&m.path(&format!("{ty}/r.json"))) == rec,
            "{tier}: a record closed {wait:?} before kill -9 is missing or differs"
        );
        assert!(
            get(&m.path(&format!("{ty}/blob.bin"))) == pattern(1, 0, 10_000),
            "{tier}: blob after kill -9"
        );
    }
}

#[test]
fn fsync_is_durable_in_every_tier() {
    let mut m = Mount::new();
    let mut expect = vec![];
    for tier in TIERS {
        let ty = format!("spacetime/{tier}/particles/synced");
        fs::create_dir_all(m.path(&ty)).unwrap();
        for (name, data) in [
            ("s.json", json_record(tier, 3000)),
            ("s.bin", pattern(2, 0, 50_000)),
        ] {
            let p = m.path(&format!("{ty}/{name}"));
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&p)
                .unwrap();
            f.write_all(&data).unwrap();
            fsync_file(&f).unwrap_or_else(|e| panic!("fsync {}: {e}", p.display()));
            // Kill while the fd is still open: fsync alone must have made it durable.
            expect.push((p, data, f));
        }
    }
    m.kill9();
    let expect: Vec<_> = expect
        .into_iter()
        .map(|(p, d, f)| {
            drop(f);
            (p, d)
        })
        .collect();
    m.remount();
    for (p, data) in expect {
        assert!(
            get(&p) == data,
            "{} lost or changed after fsync + kill -9",
            p.display()
        );
    }
}

/// Files under `dir` whose name ends in `.wal`, newest last.
fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() && e.file_name().to_string_lossy().ends_with(".wal") {
                out.push(e.path());
            }
        }
    }
    out.sort_by_key(|p| (fs::metadata(p).unwrap().modified().unwrap(), p.clone()));
    out
}

#[test]
fn garbage_after_the_last_wal_record_is_dropped_on_recovery() {
    let mut m = Mount::new();
    let recs: Vec<Vec<u8>> = (0..20).map(|i| body("g", i)).collect();
    for (i, r) in recs.iter().enumerate() {
        put(&m.path(&format!("{USERS}/g{i}.json")), r);
    }
    m.kill9();
    let wals = wal_files(m.data());
    let last = wals
        .last()
        .unwrap_or_else(|| panic!("no *.wal file under the data dir {:?}", names(m.data())));
    let mut f = OpenOptions::new().append(true).open(last).unwrap();
    f.write_all(&pattern(77, 0, 333)).unwrap();
    drop(f);
    let log_before = m.log().len();
    m.remount();
    for (i, r) in recs.iter().enumerate() {
        assert!(
            get(&m.path(&format!("{USERS}/g{i}.json"))) == *r,
            "g{i}.json after recovering a torn WAL tail"
        );
    }
    let new_log = m.log()[log_before..].to_string();
    assert!(
        new_log
            .lines()
            .any(|l| l.contains("WARN") || l.contains("ERROR")),
        "recovery of a WAL with a garbage tail logged no warning:\n{new_log}"
    );
    // And the store keeps working and recovers again.
    put(&m.path(&format!("{USERS}/after.json")), b"{\"after\":true}");
    m.kill9();
    m.remount();
    assert_eq!(
        get(&m.path(&format!("{USERS}/after.json"))),
        b"{\"after\":true}"
    );
    assert!(get(&m.path(&format!("{USERS}/g0.json"))) == recs[0]);
}

/// An empty hot-tier file is acknowledged by the close of the handle that created it
/// (the create itself does not wait for the disk): it must survive kill -9.
#[test]
fn an_empty_hot_file_survives_kill9_once_closed() {
    let mut m = Mount::new();
    let p = m.path("spacetime/hot_data/particles/users/empty.json");
    let f = open_raw(&p, libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL, 0o644).expect("create");
    close_file(f).expect("close");
    let q = m.path("spacetime/hot_data/particles/users/made_by_mknod");
    let c = cstr(&q);
    assert_eq!(
        unsafe { libc::mknod(c.as_ptr(), libc::S_IFREG | 0o644, 0) },
        0,
        "mknod"
    );
    m.kill9();
    m.remount();
    assert_eq!(
        get(&m.path("spacetime/hot_data/particles/users/empty.json")),
        b""
    );
    assert!(
        m.path("spacetime/hot_data/particles/users/made_by_mknod")
            .exists()
    );
}

/// Damage in the middle of the log, before acknowledged records, is not guessed around:
/// the mount is refused with a message naming the segment; repaired, it mounts again.
#[test]
fn damage_in_the_middle_of_the_wal_refuses_the_mount() {
    let mut m = Mount::new();
    let recs: Vec<Vec<u8>> = (0..20).map(|i| body("mid", i)).collect();
    for (i, r) in recs.iter().enumerate() {
        put(&m.path(&format!("{USERS}/mid{i}.json")), r);
    }
    m.kill9();
    let seg = wal_files(m.data())
        .into_iter()
        .max_by_key(|p| fs::metadata(p).map(|md| md.len()).unwrap_or(0))
        .expect("a WAL segment");
    let original = fs::read(&seg).unwrap();
    let mut bad = original.clone();
    bad[12 + 8 + 10] ^= 0x5a; // inside the first record's payload
    fs::write(&seg, &bad).unwrap();

    let mut cmd = std::process::Command::new(bin());
    cmd.arg("mount").arg(m.data()).arg(m.mnt());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(15));
    if is_mountpoint(m.mnt()) {
        unmount_dead(m.mnt());
    }
    let out = out.expect("the daemon neither mounted nor exited within 15 s");
    assert!(!out.status.success(), "a damaged log mounted: {out:?}");
    let err = stderr(&out);
    let name = seg.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        err.contains("refusing") && err.contains(&name),
        "the refusal does not explain itself:\n{err}"
    );

    fs::write(&seg, &original).unwrap();
    m.remount();
    for (i, r) in recs.iter().enumerate() {
        assert!(
            get(&m.path(&format!("{USERS}/mid{i}.json"))) == *r,
            "mid{i}.json"
        );
    }
}
