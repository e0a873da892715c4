//! `backups/snapshots/`: a snapshot taken by `mkdir`, consistent while writers run,
//! browsed read-only as `universe/`, the same after `kill -9` and a remount, gone with
//! `rmdir`.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

const SNAPSHOTS: &str = "backups/snapshots";

fn snapshot(m: &Mount, name: &str) {
    fs::create_dir(m.path(&format!("{SNAPSHOTS}/{name}"))).expect("mkdir takes a snapshot");
}

/// The files below `dir`, as (path relative to it, content), sorted.
fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let list = sh(&format!("cd {} && find . -type f | sort", shq(dir)));
    list.lines()
        .map(|p| (p.to_string(), fs::read(dir.join(p)).expect("read")))
        .collect()
}

/// Tokens moved between two collections one rename at a time, and two records rewritten
/// in turn (`a` at `b`'s step or one ahead): every snapshot taken meanwhile holds each
/// token exactly once and the two records of one moment.
#[test]
fn a_snapshot_taken_while_writers_run_is_of_one_moment() {
    let m = Mount::new();
    let (left, right) = (
        "spacetime/hot_data/particles/left",
        "spacetime/warm_data/particles/right",
    );
    for d in [left, right] {
        fs::create_dir_all(m.path(d)).unwrap();
    }
    let tokens = 200;
    for i in 0..tokens {
        fs::write(
            m.path(&format!("{left}/t{i}.json")),
            json!({"t": i}).to_string(),
        )
        .unwrap();
    }
    let pair = "spacetime/hot_data/particles/pair";
    fs::create_dir_all(m.path(pair)).unwrap();
    for name in ["a", "b"] {
        fs::write(
            m.path(&format!("{pair}/{name}.json")),
            json!({"step": 0}).to_string(),
        )
        .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mover = {
        let (stop, l, r) = (stop.clone(), m.path(left), m.path(right));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("t{}.json", i % tokens);
                let (from, to) = if l.join(&name).exists() {
                    (&l, &r)
                } else {
                    (&r, &l)
                };
                fs::rename(from.join(&name), to.join(&name)).unwrap();
                i += 1;
            }
            i
        })
    };
    let writer = {
        let (stop, dir) = (stop.clone(), m.path(pair));
        std::thread::spawn(move || {
            let mut step = 0u64;
            while !stop.load(Ordering::Relaxed) {
                step += 1;
                for name in ["a", "b"] {
                    let body = json!({"step": step}).to_string();
                    fs::write(dir.join(format!("{name}.json")), body).unwrap();
                }
            }
            step
        })
    };
    let rounds = 8;
    for k in 0..rounds {
        std::thread::sleep(Duration::from_millis(100));
        snapshot(&m, &format!("s{k}"));
    }
    stop.store(true, Ordering::Relaxed);
    let (moves, steps) = (mover.join().unwrap(), writer.join().unwrap());
    assert!(moves > 100 && steps > 50, "{moves} moves, {steps} steps");
    for k in 0..rounds {
        let u = m.path(&format!("{SNAPSHOTS}/s{k}/universe"));
        let mut seen = Vec::new();
        for d in [left, right] {
            for e in fs::read_dir(u.join(d)).unwrap() {
                seen.push(e.unwrap().file_name().into_string().unwrap());
            }
        }
        seen.sort();
        let mut want: Vec<String> = (0..tokens).map(|i| format!("t{i}.json")).collect();
        want.sort();
        assert_eq!(seen, want, "snapshot s{k}: each token once");
        let step = |name: &str| {
            let v: Value =
                serde_json::from_slice(&fs::read(u.join(format!("{pair}/{name}.json"))).unwrap())
                    .unwrap();
            v["step"].as_u64().unwrap()
        };
        let (a, b) = (step("a"), step("b"));
        assert!(a == b || a == b + 1, "snapshot s{k}: a at {a}, b at {b}");
    }
}

/// What `universe/` shows is the universe as it was, byte for byte and mode for mode,
/// while the live one moves on; it is read-only; it survives `kill -9` and a remount;
/// `rmdir` removes it.
#[test]
fn a_snapshot_is_browsed_read_only_and_kept_until_removed() {
    let mut m = Mount::new();
    let users = "spacetime/warm_data/particles/users";
    fs::create_dir_all(m.path(users)).unwrap();
    for i in 0..50 {
        fs::write(
            m.path(&format!("{users}/u{i}.json")),
            json!({"n": i, "pad": "x".repeat(i * 40)}).to_string(),
        )
        .unwrap();
    }
    fs::write(m.path("spacetime/cold_data/big.bin"), vec![7u8; 3 << 20]).unwrap();
    run("chmod", &["0600", &m.ps(&format!("{users}/u3.json"))]);
    let before = m.scratch().join("before");
    // The users' data (a data directory lists only what users put there).
    run("cp", &["-a", &m.ps(users), &before.display().to_string()]);
    snapshot(&m, "kept");
    // The live universe moves on.
    fs::write(m.path(&format!("{users}/u1.json")), b"{\"changed\": true}").unwrap();
    fs::remove_file(m.path(&format!("{users}/u2.json"))).unwrap();
    fs::write(m.path(&format!("{users}/new.json")), b"{}").unwrap();
    fs::write(m.path("spacetime/cold_data/big.bin"), b"small now").unwrap();
    let u = m.path(&format!("{SNAPSHOTS}/kept/universe"));
    let check = |m: &Mount| {
        let diff = output_of(
            std::process::Command::new("diff")
                .arg("-r")
                .arg(&before)
                .arg(m.path(&format!("{SNAPSHOTS}/kept/universe/{users}"))),
        );
        assert!(diff.status.success(), "{}", stdout(&diff));
        assert_eq!(
            sh(&format!(
                "stat -c %a {}",
                shq(u.join(format!("{users}/u3.json")))
            ))
            .trim(),
            "600"
        );
        let big = fs::read(u.join("spacetime/cold_data/big.bin")).unwrap();
        assert!(big == vec![7u8; 3 << 20], "the snapshot's big.bin");
        // Only stored files: no generated one is part of a snapshot.
        assert!(!u.join("spacetime/cold_data/shard.metadata").exists());
    };
    check(&m);
    for (what, o) in [
        (
            "write",
            bash_output(&format!(
                "echo x > {}",
                shq(u.join(format!("{users}/u1.json")))
            )),
        ),
        (
            "create",
            bash_output(&format!("touch {}", shq(u.join("new")))),
        ),
        (
            "remove",
            bash_output(&format!("rm {}", shq(u.join(format!("{users}/u1.json"))))),
        ),
        (
            "chmod",
            bash_output(&format!("chmod 0777 {}", shq(u.join(users)))),
        ),
    ] {
        assert!(!o.status.success(), "{what} in a snapshot");
        assert!(
            stderr(&o).contains("Read-only file system"),
            "{what}: {}",
            stderr(&o)
        );
    }
    let manifest: Value = serde_json::from_slice(
        &fs::read(m.path(&format!("{SNAPSHOTS}/kept/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["name"], "kept");
    // The records are the users' 50; the cold tier holds big.bin alone.
    assert_eq!(manifest["regions"]["records"]["files"], 50, "{manifest}");
    assert_eq!(
        manifest["tiers"]["cold_data"]["bytes"],
        3 << 20,
        "{manifest}"
    );
    m.kill9();
    m.remount();
    check(&m);
    assert_eq!(
        sh(&format!("ls {}", m.ps(SNAPSHOTS)))
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["_manifest.json", "incremental", "kept"]
    );
    // A second name is refused while taken; a file is no snapshot.
    assert!(fs::create_dir(m.path(&format!("{SNAPSHOTS}/kept"))).is_err());
    assert!(fs::write(m.path(&format!("{SNAPSHOTS}/file")), b"x").is_err());
    run("rmdir", &[m.ps(&format!("{SNAPSHOTS}/kept"))]);
    assert!(!m.path(&format!("{SNAPSHOTS}/kept")).exists());
    m.remount();
    assert!(!m.path(&format!("{SNAPSHOTS}/kept")).exists());
    assert_eq!(files(&m.path(users)).len(), 50);
}

/// `universe.tar.gz` unpacks with plain `tar -xzf` into exactly `universe/` (names,
/// modes, sizes, symlinks, contents); `md5sum -c verification.md5` passes in the
/// snapshot's directory and where the archive was unpacked, and fails there once a byte
/// of an unpacked file is flipped; `gzip -t` finds the archive whole.
#[test]
fn the_archive_and_the_checksums_are_what_the_snapshot_holds() {
    let m = Mount::new();
    let users = "spacetime/hot_data/particles/users";
    fs::create_dir_all(m.path(users)).unwrap();
    for i in 0..300 {
        fs::write(
            m.path(&format!("{users}/u{i}.json")),
            json!({"n": i}).to_string(),
        )
        .unwrap();
    }
    // Past one gzip member, a name past tar's 100 bytes, odd names, a symlink, modes.
    let mut big = Vec::with_capacity(9 << 20);
    let mut x: u32 = 1;
    while big.len() < 9 << 20 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        big.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(m.path("spacetime/cold_data/big.bin"), &big).unwrap();
    let long = format!("spacetime/warm_data/particles/{}", "l".repeat(120));
    fs::create_dir_all(m.path(&long)).unwrap();
    fs::write(m.path(&format!("{long}/a b \\ c.json")), b"{}").unwrap();
    std::os::unix::fs::symlink("u1.json", m.path(&format!("{users}/link"))).unwrap();
    run("chmod", &["0640", &m.ps(&format!("{users}/u7.json"))]);
    snapshot(&m, "arch");
    let snap = m.path(&format!("{SNAPSHOTS}/arch"));
    // Names, types, modes, sizes (of all but directories) and symlink targets.
    let listing = |dir: &std::path::Path| {
        sh(&format!(
            "cd {} && {{ find universe -type d -printf '%p %y %m\\n'; \
             find universe ! -type d -printf '%p %y %m %s %l\\n'; }} | sort",
            shq(dir)
        ))
    };
    run_in(&snap, "gzip", &["-t", "universe.tar.gz"]);
    run_in(&snap, "md5sum", &["-c", "--quiet", "verification.md5"]);
    let out = m.scratch().join("unpacked");
    fs::create_dir_all(&out).unwrap();
    run_in(
        &out,
        "tar",
        &["-xzf", &snap.join("universe.tar.gz").display().to_string()],
    );
    let (unpacked, shown) = (listing(&out), listing(&snap));
    assert!(
        unpacked == shown,
        "unpacked:\n{}\nshown:\n{}",
        tail(&unpacked, 20),
        tail(&shown, 20)
    );
    let tar_names = sh(&format!(
        "tar --quoting-style=literal -tzf {} | sed 's,/$,,' | sort",
        shq(snap.join("universe.tar.gz"))
    ));
    let found = sh(&format!("cd {} && find universe | sort", shq(&snap)));
    assert!(
        tar_names == found,
        "tar -t:\n{}\nfind:\n{}",
        tail(&tar_names, 5),
        tail(&found, 5)
    );
    run(
        "diff",
        &[
            "-r",
            &out.join("universe").display().to_string(),
            &snap.join("universe").display().to_string(),
        ],
    );
    // The size stat gives is what a read returns.
    let size = fs::metadata(snap.join("universe.tar.gz")).unwrap().len();
    assert_eq!(
        fs::read(snap.join("universe.tar.gz")).unwrap().len() as u64,
        size
    );
    fs::copy(snap.join("verification.md5"), out.join("verification.md5")).unwrap();
    run_in(&out, "md5sum", &["-c", "--quiet", "verification.md5"]);
    let victim = out.join("universe/spacetime/cold_data/big.bin");
    let mut bytes = fs::read(&victim).unwrap();
    bytes[4 << 20] ^= 1;
    fs::write(&victim, bytes).unwrap();
    let o = output_of(
        std::process::Command::new("md5sum")
            .args(["-c", "--quiet", "verification.md5"])
            .current_dir(&out),
    );
    assert!(!o.status.success(), "a flipped byte passed md5sum -c");
    assert!(stdout(&o).contains("big.bin: FAILED"), "{}", stdout(&o));
}

/// `islabdb restore` rebuilds a snapshot from a copy of its directory into a new data
/// directory that mounts as the snapshot was; a damaged copy is refused before anything
/// is written; the live data directory is refused; `islabdb verify` passes on the
/// restored directory and names the damage once a shard file is flipped.
#[test]
fn a_backup_restores_into_a_new_data_directory_and_damage_is_refused() {
    let m = Mount::new();
    let users = "spacetime/hot_data/particles/users";
    fs::create_dir_all(m.path(&format!("{users}/deep/er"))).unwrap();
    for i in 0..100 {
        fs::write(
            m.path(&format!("{users}/u{i}.json")),
            json!({"n": i}).to_string(),
        )
        .unwrap();
    }
    fs::write(m.path(&format!("{users}/deep/er/x.json")), b"[1, 2]").unwrap();
    let mut big = Vec::with_capacity(3 << 20);
    let mut x: u32 = 7;
    while big.len() < 3 << 20 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        big.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(m.path("spacetime/warm_data/big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("u1.json", m.path(&format!("{users}/link"))).unwrap();
    run("chmod", &["0600", &m.ps(&format!("{users}/u5.json"))]);
    run("chown", &["7:8", &m.ps(&format!("{users}/u6.json"))]);
    run(
        &bin().display().to_string(),
        &["snapshot", "create", &m.ps(""), "full"],
    );
    let snap = m.path(&format!("{SNAPSHOTS}/full"));
    let backup = m.scratch().join("backup");
    fs::create_dir_all(&backup).unwrap();
    for f in ["universe.tar.gz", "verification.md5", "manifest.json"] {
        fs::copy(snap.join(f), backup.join(f)).unwrap();
    }
    let restore = |from: &std::path::Path, to: &std::path::Path| {
        output_of(
            std::process::Command::new(bin())
                .arg("restore")
                .arg(from)
                .arg(to),
        )
    };
    // The live data directory is refused.
    let o = restore(&backup, m.data());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    // Into a new one, mounted as the snapshot was.
    let mut m2 = Mount::new();
    m2.unmount_and_wait();
    fs::remove_dir_all(m2.data()).unwrap();
    let o = restore(&backup, m2.data());
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = fs::read_to_string(backup.join("verification.md5"))
        .unwrap()
        .lines()
        .count();
    assert!(
        stdout(&o).contains(&format!("{listed} checked")),
        "{}",
        stdout(&o)
    );
    m2.remount();
    let listing = |dir: &std::path::Path| {
        sh(&format!(
            "cd {} && find . ! -name _manifest.json -printf '%p %y %m %U:%G %s %l\\n' | sort",
            shq(dir)
        ))
    };
    let (was, now) = (
        listing(&snap.join("universe").join(users)),
        listing(&m2.path(users)),
    );
    assert!(was == now, "snapshot:\n{was}\nrestored:\n{now}");
    assert!(fs::read(m2.path("spacetime/warm_data/big.bin")).unwrap() == big);
    let sums = sh(&format!(
        "grep '  universe/spacetime/' {} | sed 's,  universe/,  ,'",
        shq(backup.join("verification.md5"))
    ));
    fs::write(m2.scratch().join("sums"), &sums).unwrap();
    run_in(
        m2.mnt(),
        "md5sum",
        &[
            "-c",
            "--quiet",
            &m2.scratch().join("sums").display().to_string(),
        ],
    );
    // A restored universe checks out whole, and a flipped byte of a shard file shows.
    m2.unmount_and_wait();
    let verify = || {
        output_of(
            std::process::Command::new(bin())
                .arg("verify")
                .arg(m2.data()),
        )
    };
    let o = verify();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("no problem found"), "{}", stdout(&o));
    let blob = sh(&format!(
        "ls -S {}/spacetime/*/shard/*.blob | head -1",
        shq(m2.data())
    ));
    let blob = blob.trim();
    let mut bytes = fs::read(blob).unwrap();
    bytes[1 << 20] ^= 1;
    fs::write(blob, bytes).unwrap();
    let o = verify();
    assert!(!o.status.success(), "a flipped shard byte passed verify");
    assert!(stderr(&o).contains("big.bin"), "{}", stderr(&o));
    // A damaged backup is refused, and nothing is written.
    let archive = backup.join("universe.tar.gz");
    let mut bytes = fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    fs::write(&archive, bytes).unwrap();
    let target = m.scratch().join("never");
    let o = restore(&backup, &target);
    assert!(!o.status.success(), "a damaged backup was restored");
    assert!(stderr(&o).contains("damaged"), "{}", stderr(&o));
    assert!(
        !target.exists(),
        "a refused restore wrote {}",
        target.display()
    );
}

/// Each snapshot after the first comes with `incremental/<name>/`: what changed since the
/// snapshot before it. A full backup and then its incrementals, restored in order, give
/// exactly the later snapshot; incrementals out of order are refused.
#[test]
fn a_full_backup_and_its_incrementals_restore_to_the_later_snapshot() {
    let m = Mount::new();
    let users = "spacetime/hot_data/particles/users";
    let u = |rel: &str| m.path(&format!("{users}/{rel}"));
    fs::create_dir_all(u("d1")).unwrap();
    for i in 0..60 {
        fs::write(u(&format!("u{i}.json")), json!({"n": i}).to_string()).unwrap();
    }
    fs::write(u("d1/x.json"), b"{}").unwrap();
    snapshot(&m, "s1");
    // Changed, removed (a file, a directory with a file), made, a mode changed.
    fs::write(u("u1.json"), b"{\"n\": \"changed\"}").unwrap();
    fs::remove_file(u("u2.json")).unwrap();
    fs::remove_dir_all(u("d1")).unwrap();
    fs::create_dir(u("d2")).unwrap();
    fs::write(u("d2/y.json"), b"{\"new\": 1}").unwrap();
    run("chmod", &["0600", &u("u3.json").display().to_string()]);
    snapshot(&m, "s2");
    // A name that was a directory becomes a file, and one removed comes back.
    fs::remove_dir_all(u("d2")).unwrap();
    fs::write(u("d2"), b"now a file").unwrap();
    fs::write(u("u2.json"), b"{\"back\": true}").unwrap();
    snapshot(&m, "s3");
    let inc = m.path(&format!("{SNAPSHOTS}/incremental"));
    assert_eq!(
        sh(&format!("ls {}", shq(&inc)))
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["_manifest.json", "s2", "s3"]
    );
    let manifest: Value =
        serde_json::from_slice(&fs::read(inc.join("s2/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["parent"], "s1");
    assert_eq!(manifest["deleted"], 2, "{manifest}");
    // Only what changed: the three files changed or made, not the 57 others.
    assert_eq!(manifest["changed_files"], 3, "{manifest}");
    // The snapshots' own directories are not part of a snapshot.
    let shown = sh(&format!(
        "ls -A {}",
        m.ps(&format!("{SNAPSHOTS}/s3/universe/{SNAPSHOTS}"))
    ));
    assert_eq!(shown.trim(), "incremental");
    // Copies, as a user would keep them.
    let keep = |from: &std::path::Path, to: &str| {
        let dir = m.scratch().join(to);
        fs::create_dir_all(&dir).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() && e.file_name() != "_manifest.json" {
                fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
        }
        dir
    };
    let full = keep(&m.path(&format!("{SNAPSHOTS}/s1")), "s1");
    let (i2, i3) = (keep(&inc.join("s2"), "i2"), keep(&inc.join("s3"), "i3"));
    let restore = |args: &[&std::path::Path], to: &std::path::Path| {
        output_of(
            std::process::Command::new(bin())
                .arg("restore")
                .args(args)
                .arg(to),
        )
    };
    let o = restore(&[&full, &i3], &m.scratch().join("skipped"));
    assert!(
        !o.status.success() && stderr(&o).contains("in order"),
        "{}",
        stderr(&o)
    );
    let mut m2 = Mount::new();
    m2.unmount_and_wait();
    fs::remove_dir_all(m2.data()).unwrap();
    let o = restore(&[&full, &i2, &i3], m2.data());
    assert!(o.status.success(), "{}", stderr(&o));
    m2.remount();
    let listing = |dir: &std::path::Path| {
        sh(&format!(
            "cd {} && find . -printf '%p %y %m %s %l\\n' | sort",
            shq(dir)
        ))
    };
    let (want, got) = (
        listing(&m.path(&format!("{SNAPSHOTS}/s3/universe/{users}"))),
        listing(&m2.path(users)),
    );
    assert!(want == got, "s3:\n{want}\nrestored:\n{got}");
    run(
        "diff",
        &[
            "-r",
            &m.ps(&format!("{SNAPSHOTS}/s3/universe/{users}")),
            &m2.ps(users),
        ],
    );
}

/// `backups/cosmic_logs/cosmic_events.jsonl` records the recovery, the mount, a snapshot,
/// a configuration change and a refused write, one JSON object a line (`jq` reads every
/// one); what was written survives `kill -9`, and the next mount adds its recovery.
#[test]
fn significant_events_are_kept_in_cosmic_events() {
    let mut m = Mount::new();
    let events = m.path("backups/cosmic_logs/cosmic_events.jsonl");
    snapshot(&m, "ev");
    let bad = bash_output(&format!(
        "echo '{{bad' > {}",
        m.ps("spacetime/hot_data/particles/users/x.json")
    ));
    assert!(!bad.status.success());
    run(
        "sed",
        &[
            "-i",
            "s/\"cache_budget_mb\": [0-9]*/\"cache_budget_mb\": 128/",
            &m.ps("configuration/universe_parameters.json"),
        ],
    );
    let kinds = |m: &Mount| -> Vec<String> {
        let text = sh(&format!("jq -c .kind {}", shq(&events)));
        let _ = m;
        text.lines()
            .map(|l| l.trim_matches('"').to_string())
            .collect()
    };
    // Written at the next tick of the regions (about a second).
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = if events.exists() {
            kinds(&m)
        } else {
            Vec::new()
        };
        if seen.iter().any(|k| k == "configuration") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for want in ["recovery", "mount", "snapshot", "refused", "configuration"] {
        assert!(
            seen.iter().any(|k| k == want),
            "no {want} event in {seen:?}"
        );
    }
    let refused = sh(&format!(
        "jq -c 'select(.kind == \"refused\")' {}",
        shq(&events)
    ));
    assert!(
        refused.contains("x.json") && refused.contains("\"operation\":\"write\""),
        "{refused}"
    );
    // Durable within the warm window: give it that, then kill.
    std::thread::sleep(Duration::from_millis(300));
    m.kill9();
    m.remount();
    let mut after = Vec::new();
    for _ in 0..50 {
        after = kinds(&m);
        if after.iter().filter(|k| *k == "recovery").count() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        after.starts_with(&seen),
        "before kill -9: {seen:?}\nafter: {after:?}"
    );
    assert_eq!(
        after.iter().filter(|k| *k == "recovery").count(),
        2,
        "{after:?}"
    );
}

/// `configuration/backup_policy.json` keeps the newest `keep_last` snapshots: older ones
/// go, with their directories, at the regions' next tick; an invalid edit is `EINVAL`.
#[test]
fn the_retention_policy_keeps_the_newest_snapshots() {
    let m = Mount::new();
    let policy = m.path("configuration/backup_policy.json");
    // sed -i's rename is checked: an invalid edit fails in the tool.
    let bad = output_of(
        std::process::Command::new("sed")
            .args(["-i", "s/\"keep_last\": 0/\"keep_last\": -1/"])
            .arg(&policy),
    );
    assert!(
        stderr(&bad).contains("Invalid argument"),
        "{}",
        stderr(&bad)
    );
    for k in 0..4 {
        snapshot(&m, &format!("r{k}"));
    }
    fs::write(
        &policy,
        json!({"keep_last": 2, "keep_days": 0, "events_kept": 100}).to_string(),
    )
    .unwrap();
    let names = || {
        let text = sh(&format!("ls {}", m.ps(SNAPSHOTS)));
        text.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let want = ["_manifest.json", "incremental", "r2", "r3"];
    for _ in 0..50 {
        if names() == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(names(), want);
    // r3's parent r2 is still there: its incremental stays; r2's parent went.
    assert_eq!(
        sh(&format!("ls {}", m.ps(&format!("{SNAPSHOTS}/incremental"))))
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["_manifest.json", "r3"]
    );
    assert_eq!(
        files(&m.path(&format!("{SNAPSHOTS}/r3/universe/configuration"))).len(),
        7
    );
}
