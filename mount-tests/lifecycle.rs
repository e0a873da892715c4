//! The CLI and the daemon's life: help, bootstrap, refusing a second mount,
//! clean exit on umount and on SIGTERM/SIGINT, remount recovery.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

#[test]
fn help_prints_usage() {
    let top = run(bin().to_str().unwrap(), &["--help"]);
    let text = stdout(&top).to_lowercase();
    assert!(
        text.contains("usage"),
        "`islabdb --help` has no usage line:\n{text}"
    );
    assert!(
        text.contains("mount"),
        "`islabdb --help` does not mention the mount command:\n{text}"
    );

    let sub = run(bin().to_str().unwrap(), &["mount", "--help"]);
    let text = stdout(&sub).to_lowercase();
    assert!(
        text.contains("usage"),
        "`islabdb mount --help` has no usage line:\n{text}"
    );
    for word in ["--cache-mb", "--threads"] {
        assert!(
            text.contains(word),
            "`islabdb mount --help` does not mention {word}:\n{text}"
        );
    }
}

#[test]
fn bootstraps_an_empty_data_dir() {
    let m = Mount::new();
    assert!(
        !names(m.data()).is_empty(),
        "the data dir is still empty after mounting; log:\n{}",
        m.log()
    );
    // The mount root is a directory that lists, and root answers stat.
    let md = fs::metadata(m.mnt()).unwrap();
    assert!(md.is_dir());
    assert!(!names(m.mnt()).is_empty(), "the mount root is empty");
}

#[test]
fn second_mount_of_the_same_data_dir_is_refused() {
    let m = Mount::new();
    let mnt2 = m.base().join("mnt2");
    fs::create_dir(&mnt2).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("mount").arg(m.data()).arg(&mnt2);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(15));
    // Whatever happened, never leave a second mount behind.
    if is_mountpoint(&mnt2) {
        unmount_dead(&mnt2);
    }
    let out = out.expect("the second daemon neither exited nor was refused within 15 s");
    assert!(
        !out.status.success(),
        "a second mount of the same DATA_DIR exited 0: {out:?}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("already"),
        "the refusal does not say \"already\" on stderr:\n{err}"
    );
    // The first mount still works.
    assert!(m.is_mounted());
    put(&m.path(&format!("{USERS}/still.json")), b"{\"ok\":true}");
    assert_eq!(
        get(&m.path(&format!("{USERS}/still.json"))),
        b"{\"ok\":true}"
    );
}

#[test]
fn umount_exits_zero_and_remount_recovers_everything() {
    let mut m = Mount::new();
    let rec = |t: &str| format!("spacetime/{t}/particles/people/p.json");
    for t in TIERS {
        fs::create_dir_all(m.path(&format!("spacetime/{t}/particles/people"))).unwrap();
        put(&m.path(&rec(t)), format!("{{\"tier\":\"{t}\"}}").as_bytes());
    }
    let blob = pattern(3, 0, 300_000);
    put(&m.path(&format!("{USERS}/blob.bin")), &blob);
    fs::set_permissions(
        m.path(&format!("{USERS}/blob.bin")),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::chown(m.path(&format!("{USERS}/blob.bin")), Some(1234), Some(5678)).unwrap();
    let mut t = Command::new("touch");
    t.env("TZ", "UTC")
        .arg("-d")
        .arg("2020-01-02 03:04:05")
        .arg(m.path(&format!("{USERS}/blob.bin")));
    run_cmd(&mut t);
    std::os::unix::fs::symlink("blob.bin", m.path(&format!("{USERS}/link"))).unwrap();
    fs::create_dir(m.path(&format!("{PRODUCTS}/empty_type"))).unwrap();
    setxattr(&m.path(&format!("{USERS}/blob.bin")), "user.color", b"blue").unwrap();

    let status = m.unmount_and_wait();
    assert!(
        status.success(),
        "daemon exit status after umount: {status}"
    );
    assert!(!m.is_mounted());
    m.remount();

    for t in TIERS {
        assert_eq!(
            get(&m.path(&rec(t))),
            format!("{{\"tier\":\"{t}\"}}").as_bytes(),
            "record in {t} after remount"
        );
    }
    let p = m.path(&format!("{USERS}/blob.bin"));
    assert!(get(&p) == blob, "blob content changed across remount");
    let md = fs::symlink_metadata(&p).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o640, "mode after remount");
    assert_eq!((md.uid(), md.gid()), (1234, 5678), "owner after remount");
    assert_eq!(
        md.mtime(),
        1_577_934_245,
        "mtime after remount (touch -d '2020-01-02 03:04:05' UTC)"
    );
    assert_eq!(md.size(), blob.len() as u64);
    assert_eq!(
        fs::read_link(m.path(&format!("{USERS}/link")))
            .unwrap()
            .to_str(),
        Some("blob.bin")
    );
    assert!(
        m.path(&format!("{PRODUCTS}/empty_type")).is_dir(),
        "empty dir lost across remount"
    );
    assert_eq!(
        getxattr(&p, "user.color").unwrap(),
        b"blue",
        "xattr after remount"
    );
}

/// `mount` then `umount` at once, as a script might: the unmount often comes before the
/// daemon has answered the kernel's first request (the harness holds the daemon still
/// meanwhile), and is still an ordinary unmount.
#[test]
fn umount_right_after_mount_exits_zero() {
    let mut m = Mount::new();
    let rec = format!("{USERS}/kept.json");
    put(&m.path(&rec), b"{\"kept\":true}");
    m.unmount_cleanly();
    const STARTS: usize = 10;
    for i in 0..STARTS {
        let status = m.restart_and_unmount_at_once();
        assert!(
            status.success(),
            "start {i}: daemon exited with {status} when unmounted at once; log:\n{}",
            tail(&m.log(), 50)
        );
    }
    // How many came before the daemon's first answer (a race, made likely: shown).
    let early = m.log().matches("before the kernel's first request").count();
    eprintln!("{early} of {STARTS} unmounts came before the daemon's handshake");
    m.remount();
    assert_eq!(get(&m.path(&rec)), b"{\"kept\":true}");
}

fn clean_exit_on(sig: i32) {
    let mut m = Mount::new();
    // A cold record is only durable within 1 s unless flushed: the signal
    // handler must flush it.
    fs::create_dir_all(m.path("spacetime/cold_data/particles/logs")).unwrap();
    let p = "spacetime/cold_data/particles/logs/last.json";
    put(&m.path(p), b"{\"written\":\"just before the signal\"}");
    put(&m.path(&format!("{USERS}/u.json")), b"{\"u\":1}");
    let status = m.signal_and_wait(sig);
    assert!(
        status.success(),
        "daemon exit status after signal {sig}: {status}; log:\n{}",
        tail(&m.log(), 50)
    );
    assert!(
        !m.is_mounted(),
        "the daemon exited on signal {sig} but left {} mounted",
        m.mnt().display()
    );
    m.remount();
    assert_eq!(get(&m.path(p)), b"{\"written\":\"just before the signal\"}");
    assert_eq!(get(&m.path(&format!("{USERS}/u.json"))), b"{\"u\":1}");
}

#[test]
fn sigterm_flushes_unmounts_and_exits_zero() {
    clean_exit_on(libc::SIGTERM);
}

#[test]
fn sigint_flushes_unmounts_and_exits_zero() {
    clean_exit_on(libc::SIGINT);
}

#[test]
fn mount_accepts_cache_and_thread_options() {
    let mut m = Mount::with_args(&["--cache-mb", "16", "--threads", "4"]);
    let p = m.path(&format!("{USERS}/opt.json"));
    put(&p, b"{\"opts\":true}");
    assert_eq!(get(&p), b"{\"opts\":true}");
    let status = m.unmount_and_wait();
    assert!(status.success(), "exit status after umount: {status}");
}

/// Threads of the daemon named `ring-<cpu>`: the FUSE-over-io_uring queues.
fn ring_threads(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|comm| comm.starts_with("ring-"))
        .count()
}

/// Whether the kernel offers FUSE over io_uring now (root turns it on).
fn kernel_offers_the_ring() -> bool {
    fs::read_to_string("/sys/module/fuse/parameters/enable_uring").is_ok_and(|v| v.trim() == "Y")
}

/// With FUSE over io_uring offered, the daemon serves a queue per CPU and the requests
/// arrive there; with `--no-ring`, or when the kernel does not offer it, everything goes
/// through /dev/fuse. Either way the mount serves the same files.
#[test]
fn requests_come_over_io_uring_when_the_kernel_offers_it_and_else_over_dev_fuse() {
    let offered = kernel_offers_the_ring();
    let no_ring = std::env::var("ISLABDB_TEST_MOUNT_ARGS").is_ok_and(|a| a.contains("--no-ring"));
    for args in [&[][..], &["--no-ring"][..]] {
        let m = Mount::with_args(args);
        let dir = m.path("spacetime/warm_data/particles/ring");
        fs::create_dir(&dir).unwrap();
        for i in 0..200 {
            fs::write(dir.join(format!("r{i}.json")), format!("{{\"i\":{i}}}")).unwrap();
        }
        for i in 0..200 {
            let got = fs::read_to_string(dir.join(format!("r{i}.json"))).unwrap();
            assert_eq!(got, format!("{{\"i\":{i}}}"));
        }
        // The kernel's queues: one for each possible CPU ("0-1").
        let possible = fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
        let last = possible.trim().rsplit([',', '-']).next().unwrap();
        let cpus = last.parse::<usize>().unwrap() + 1;
        let log = m.log();
        if offered && args.is_empty() && !no_ring {
            assert!(
                log.contains(&format!("serving FUSE over io_uring: {cpus} queues")),
                "no ring queue for each of {cpus} CPUs:\n{log}"
            );
            assert_eq!(ring_threads(m.daemon_pid()), cpus);
        } else {
            assert!(!log.contains("serving FUSE over io_uring"), "{log}");
            assert_eq!(ring_threads(m.daemon_pid()), 0);
        }
    }
}
