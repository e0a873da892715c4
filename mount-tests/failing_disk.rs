//! A failing disk is reported, never hidden: with the test hook `ISLABDB_FAULTS` the
//! daemon's data disk fails an fsync; that commit and every later one fail with EIO,
//! reads go on, the cause is logged once, and a remount recovers to the last durable
//! state.

use crate::common::*;
use std::fs::{self, File, OpenOptions};
use std::io::Write;

/// Record `i` of this test.
fn record(i: usize) -> Vec<u8> {
    json_record(&format!("r{i}"), 200 + i)
}

#[test]
fn a_failed_fsync_refuses_every_later_commit_and_a_remount_recovers() {
    let mut m = Mount::new();
    m.unmount_cleanly();
    // The remount's own start (a new log segment: its file and its directory) takes two
    // fsyncs, then each hot commit one: the fourth fsync is the second commit's.
    m.set_env("ISLABDB_FAULTS", Some("fail-fsync=4"));
    m.remount();
    let dir = m.path(USERS);
    let mut acked = Vec::new();
    let mut failed = None;
    for i in 0..20 {
        let p = dir.join(format!("r{i}.json"));
        // The commit whose fsync fails says so at its close: an earlier refusal (at the
        // next open) would mean that close was acknowledged without its fsync.
        let mut f = File::create(&p).unwrap_or_else(|e| panic!("create r{i}: {e}"));
        f.write_all(&record(i)).expect("write");
        match close_file(f) {
            Ok(()) => acked.push(i),
            Err(e) => {
                failed = Some((i, e));
                break;
            }
        }
    }
    let (lost, err) = failed.expect("every commit succeeded despite the failing disk");
    assert_eq!(errno_of(&err), libc::EIO, "the failed commit: {err}");
    assert!(!acked.is_empty(), "no commit succeeded before the failure");

    // Every later change is refused with EIO: a rewrite fails at close, a new file at
    // its creation, a directory at mkdir.
    let first = dir.join(format!("r{}.json", acked[0]));
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&first)
        .expect("open for a rewrite");
    f.write_all(&record(99)).expect("write to the draft");
    expect_errno(close_file(f), &[libc::EIO], "close of a rewrite");
    expect_errno(
        write_file(&dir.join("after.json"), b"{}"),
        &[libc::EIO],
        "a new file",
    );
    expect_errno(fs::create_dir(dir.join("sub")), &[libc::EIO], "mkdir");
    // Reads of what is durable go on.
    for &i in &acked {
        assert_eq!(get(&dir.join(format!("r{i}.json"))), record(i), "r{i}");
    }
    assert!(m.is_running(), "the daemon keeps serving");
    let log = m.log();
    assert_eq!(
        log.matches("data disk: fsync").count(),
        1,
        "the cause is logged once:\n{}",
        tail(&log, 40)
    );

    // Its final checkpoint cannot be taken either: the exit says so.
    let status = m.unmount_and_wait();
    assert!(!status.success(), "exit after a failed disk: {status}");
    m.set_env("ISLABDB_FAULTS", None);
    m.remount();
    let dir = m.path(USERS);
    for &i in &acked {
        assert_eq!(
            get(&dir.join(format!("r{i}.json"))),
            record(i),
            "r{i} after remount"
        );
    }
    // The failed commit is there whole or not at all; nothing refused is.
    match fs::read(dir.join(format!("r{lost}.json"))) {
        Ok(b) => assert!(b == record(lost), "r{lost} is half there"),
        Err(e) => assert_eq!(errno_of(&e), libc::ENOENT, "r{lost}: {e}"),
    }
    assert_eq!(get(&first), record(acked[0]), "the refused rewrite");
    assert!(!dir.join("after.json").exists() && !dir.join("sub").exists());
    put(&dir.join("again.json"), b"{\"ok\":true}");
}
