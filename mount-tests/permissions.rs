//! The mount is made with allow_other + default_permissions: other uids can
//! use it, and the kernel's normal POSIX checks apply (modes, owners, sticky).

use crate::common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Output;

const NOBODY: u32 = 65534;
const OTHER: u32 = 65533;

/// `sh -c script` as uid/gid `id`; returns the output whatever the status.
fn sh_as(id: u32, script: &str) -> Output {
    output_of(as_user(id, "sh").arg("-c").arg(script))
}

#[track_caller]
fn assert_denied(o: &Output, what: &str, msg: &str) {
    assert!(!o.status.success(), "{what} succeeded: {}", stdout(o));
    assert!(
        stderr(o).contains(msg),
        "{what}: want \"{msg}\", got: {}",
        stderr(o)
    );
}

#[test]
fn other_users_get_posix_mode_checks() {
    let m = Mount::new();
    let public = m.path(&format!("{USERS}/public.json"));
    let secret = m.path(&format!("{USERS}/secret.json"));
    put(&public, b"{\"public\":true}");
    put(&secret, b"{\"secret\":true}");
    fs::set_permissions(&public, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();

    // allow_other: another uid can reach and read the mount at all.
    let o = output_of(as_user(NOBODY, "cat").arg(&public));
    assert!(
        o.status.success(),
        "nobody cannot read a 0644 record: {}",
        stderr(&o)
    );
    assert_eq!(o.stdout, b"{\"public\":true}");
    let o = output_of(as_user(NOBODY, "ls").arg(m.path(USERS)));
    assert!(
        o.status.success() && stdout(&o).contains("public.json"),
        "nobody cannot list: {}",
        stderr(&o)
    );

    // default_permissions: a 0600 root file is EACCES for nobody.
    assert_denied(
        &output_of(as_user(NOBODY, "cat").arg(&secret)),
        "nobody reading a 0600 root file",
        "Permission denied",
    );
    assert_denied(
        &sh_as(NOBODY, &format!("echo '{{}}' > {}", public.display())),
        "nobody writing a 0644 root file",
        "Permission denied",
    );
    assert_denied(
        &sh_as(NOBODY, &format!("echo '{{}}' > {}/mine.json", m.ps(USERS))),
        "nobody creating in a root-owned 0755 dir",
        "Permission denied",
    );
    assert_denied(
        &output_of(as_user(NOBODY, "rm").arg("-f").arg(&public)),
        "nobody deleting in a 0755 dir",
        "Permission denied",
    );
    assert_denied(
        &output_of(as_user(NOBODY, "chmod").arg("666").arg(&public)),
        "nobody chmod of root's file",
        "Operation not permitted",
    );
    assert_eq!(get(&public), b"{\"public\":true}");
    assert_eq!(get(&secret), b"{\"secret\":true}");
    assert!(!m.path(&format!("{USERS}/mine.json")).exists());

    // Opening it up works for them, and ownership of what they create is theirs.
    let shared = m.path("spacetime/hot_data/particles/open");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let o = sh_as(
        NOBODY,
        &format!("echo '{{\"by\":\"nobody\"}}' > {}/n.json", shared.display()),
    );
    assert!(
        o.status.success(),
        "nobody cannot create in a 0777 dir: {}",
        stderr(&o)
    );
    let md = fs::metadata(shared.join("n.json")).unwrap();
    assert_eq!(
        (md.uid(), md.gid()),
        (NOBODY, NOBODY),
        "owner of a file created by nobody"
    );
    // Without the sticky bit, another user may delete it.
    let o = output_of(as_user(OTHER, "rm").arg(shared.join("n.json")));
    assert!(
        o.status.success(),
        "in a 0777 dir another user cannot delete: {}",
        stderr(&o)
    );
}

#[test]
fn sticky_dir_protects_other_users_files() {
    let m = Mount::new();
    let dir = m.path("spacetime/hot_data/particles/tmp");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(
        fs::metadata(&dir).unwrap().mode() & 0o7777,
        0o1777,
        "mode of the sticky dir"
    );
    let a = dir.join("a.json");
    let o = sh_as(
        NOBODY,
        &format!("echo '{{\"owner\":\"nobody\"}}' > {}", a.display()),
    );
    assert!(
        o.status.success(),
        "nobody cannot create in a 1777 dir: {}",
        stderr(&o)
    );
    assert_eq!(fs::metadata(&a).unwrap().uid(), NOBODY);

    assert_denied(
        &output_of(as_user(OTHER, "rm").arg("-f").arg(&a)),
        "another user deleting in a sticky dir",
        "Operation not permitted",
    );
    assert_denied(
        &output_of(as_user(OTHER, "mv").arg(&a).arg(dir.join("stolen.json"))),
        "another user renaming in a sticky dir",
        "Operation not permitted",
    );
    assert_eq!(get(&a), b"{\"owner\":\"nobody\"}\n", "the file survived");
    assert!(!dir.join("stolen.json").exists());

    // The other user can still create and delete their own files there.
    let b = dir.join("b.json");
    let o = sh_as(
        OTHER,
        &format!("echo '[]' > {} && rm {}", b.display(), b.display()),
    );
    assert!(
        o.status.success(),
        "another user cannot use the sticky dir for their own file: {}",
        stderr(&o)
    );
    // The owner can delete theirs.
    let o = output_of(as_user(NOBODY, "rm").arg(&a));
    assert!(
        o.status.success(),
        "the owner cannot delete their own file: {}",
        stderr(&o)
    );
    assert!(!a.exists());
}
