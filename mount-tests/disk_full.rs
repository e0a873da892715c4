//! A full data disk: commits fail with ENOSPC, the daemon keeps serving, and
//! nothing acknowledged before is lost (also across kill -9 and remount).

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// A small tmpfs, unmounted on drop (after the daemon's guard, declared later).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("islabdb-full-")
            .tempdir()
            .expect("temp dir");
        let out = run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                &dir.path().to_string_lossy(),
            ],
        );
        assert!(out.status.success(), "mount tmpfs: {}", stderr(&out));
        Tmpfs { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn resize(&self, size: &str) {
        let out = run(
            "mount",
            &[
                "-o",
                &format!("remount,size={size}"),
                &self.path().to_string_lossy(),
            ],
        );
        assert!(out.status.success(), "remount tmpfs: {}", stderr(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = umount2(self.dir.path(), libc::MNT_DETACH);
    }
}

/// Moves the (stopped) universe's data dir onto `disk`, leaving a symlink.
fn move_data_to(data: &Path, disk: &Path) {
    let out = run(
        "cp",
        &[
            "-a",
            &format!("{}/.", data.display()),
            &disk.to_string_lossy(),
        ],
    );
    assert!(out.status.success(), "cp: {}", stderr(&out));
    fs::remove_dir_all(data).expect("remove data dir");
    std::os::unix::fs::symlink(disk, data).expect("symlink data dir");
}

/// A new universe whose data directory lives on `disk`.
fn mount_on(disk: &Tmpfs) -> Mount {
    let mut m = Mount::new();
    m.unmount_cleanly();
    move_data_to(m.data(), &disk.path());
    m.remount();
    m
}

#[test]
fn a_full_data_disk_gives_enospc_and_loses_nothing() {
    let disk = Tmpfs::new("24m");
    let mut m = mount_on(&disk);

    let dir = m.path("spacetime/hot_data/particles/full");
    fs::create_dir(&dir).expect("mkdir");
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..1000 {
        let p = dir.join(format!("r{i}.json"));
        match write_file(&p, &json_record(&format!("r{i}"), 100_000)) {
            Ok(()) => acked.push(i),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let err = refused.expect("24 MiB of disk filled without an error");
    assert_eq!(errno_of(&err), libc::ENOSPC, "want ENOSPC, got {err}");
    assert!(acked.len() > 20, "only {} records fit", acked.len());
    assert!(
        m.is_running(),
        "the daemon survives a full disk; log:\n{}",
        tail(&m.log(), 40)
    );
    // Everything acknowledged reads back while the disk is full.
    for &i in &acked {
        assert_eq!(
            get(&dir.join(format!("r{i}.json"))),
            json_record(&format!("r{i}"), 100_000)
        );
    }
    // The worst case after a full disk: killed, then remounted with room again.
    disk.resize("256m");
    m.kill9();
    m.remount();
    for &i in &acked {
        let p = m.path(&format!("spacetime/hot_data/particles/full/r{i}.json"));
        assert_eq!(
            get(&p),
            json_record(&format!("r{i}"), 100_000),
            "r{i} after remount"
        );
    }
    // And it accepts commits again.
    put(
        &m.path("spacetime/hot_data/particles/full/after.json"),
        b"{\"ok\":true}",
    );
}

/// A file grown past what the data disk has free (`truncate -s`, `fallocate -l`, a write
/// far past the end) is refused with ENOSPC before anything is written: a hole is stored
/// as zeros, and writing them would fill the disk only to fail at the commit.
#[test]
fn growing_a_file_past_the_free_disk_is_refused_before_writing() {
    let disk = Tmpfs::new("64m");
    let m = mount_on(&disk);
    let p = m.path("spacetime/hot_data/particles/users/huge.bin");
    put(&p, b"small");
    let used = || {
        sh(&format!("du -sk {}", shq(disk.path())))
            .split_whitespace()
            .next()
            .unwrap_or("")
            .parse::<u64>()
            .unwrap()
    };
    let before = used();
    for cmd in [
        format!("truncate -s 1G {}", shq(&p)),
        format!("fallocate -l 1G {}", shq(&p)),
        format!(
            "dd if=/dev/zero of={} bs=1 count=1 seek=1G conv=notrunc status=none",
            shq(&p)
        ),
    ] {
        let o = sh_output(&cmd);
        assert!(
            !o.status.success() && stderr(&o).contains("No space left on device"),
            "{cmd}: {} {}",
            o.status,
            stderr(&o)
        );
        assert_eq!(get(&p), b"small", "{cmd}: the file is unchanged");
    }
    // Refused for its size, before any byte went to the disk (not by a full disk later).
    assert_eq!(
        m.log().matches("refusing to grow a file").count(),
        3,
        "log:\n{}",
        tail(&m.log(), 20)
    );
    assert!(
        used() < before + 4096,
        "the refused growth wrote to the data disk: {} KiB before, {} KiB after",
        before,
        used()
    );
    let o = sh_output(&format!("truncate -s 1M {}", shq(&p)));
    assert!(o.status.success(), "a growth that fits: {}", stderr(&o));
    assert_eq!(fs::metadata(&p).unwrap().len(), 1 << 20);
}
