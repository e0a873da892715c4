//! Real tools over the mount: vim, sed -i, cp -a, tar, rsync, diff. Nothing generated
//! is excluded: a tool meets exactly what a user meets.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

#[test]
fn vim_edits_a_record_in_place() {
    let m = Mount::new();
    let dir = m.path(USERS);
    let p = dir.join("x.json");
    put(&p, b"{\"name\": \"old\", \"n\": 1}\n");
    let before = names(&dir);

    let o = vim(&dir, &m.scratch(), &["%s/old/new/", "wq"], "x.json");
    assert!(
        o.status.success(),
        "vim -es exit {}: {}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(get(&p), b"{\"name\": \"new\", \"n\": 1}\n");
    assert_eq!(
        names(&dir),
        before,
        "vim left swap/backup/test files behind"
    );
    // Edit the file vim just wrote, again.
    let o = vim(&dir, &m.scratch(), &["%s/1/2/", "wq"], "x.json");
    assert!(
        o.status.success(),
        "second vim -es exit {}: {}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(get(&p), b"{\"name\": \"new\", \"n\": 2}\n");
    assert_eq!(
        stdout(&run("jq", &["-r", ".name", p.to_str().unwrap()])).trim(),
        "new"
    );
    assert_eq!(
        names(&dir),
        before,
        "vim left swap/backup/test files behind"
    );
    assert_eq!(fs::metadata(&p).unwrap().len(), 24);
}

#[test]
fn vim_cannot_save_invalid_json_and_the_record_survives() {
    let m = Mount::new();
    let dir = m.path(USERS);
    let p = dir.join("y.json");
    put(&p, b"{\"name\": \"old\"}\n");
    // The substitution makes the JSON invalid; `cq` exits non-zero if `wq` failed.
    let o = vim(
        &dir,
        &m.scratch(),
        &["%s/\"old\"/old/", "wq", "cq"],
        "y.json",
    );
    assert!(!o.status.success(), "vim saved invalid JSON (exit 0)");
    assert_eq!(
        get(&p),
        b"{\"name\": \"old\"}\n",
        "the record after a refused vim save"
    );
    // A follow-up valid edit still works (no stale swap file blocks it).
    let o = vim(&dir, &m.scratch(), &["%s/old/fine/", "wq"], "y.json");
    assert!(
        o.status.success(),
        "vim after a refused save: exit {}: {}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(get(&p), b"{\"name\": \"fine\"}\n");
}

#[test]
fn sed_i_edits_a_record() {
    let m = Mount::new();
    let dir = m.path(ORDERS);
    let p = dir.join("o.json");
    put(&p, b"{\"status\": \"open\", \"items\": [1, 2]}\n");
    let before = names(&dir);
    run_in(&dir, "sed", &["-i", "s/open/shipped/", "o.json"]);
    assert_eq!(get(&p), b"{\"status\": \"shipped\", \"items\": [1, 2]}\n");
    assert_eq!(names(&dir), before, "sed -i left temp files behind");
    // With an absolute path and a backup suffix.
    run("sed", &["-i.bak", "s/shipped/done/", p.to_str().unwrap()]);
    assert_eq!(get(&p), b"{\"status\": \"done\", \"items\": [1, 2]}\n");
    assert_eq!(
        get(&dir.join("o.json.bak")),
        b"{\"status\": \"shipped\", \"items\": [1, 2]}\n"
    );
    // An edit that breaks the JSON is refused and the record stays.
    let o =
        output_of(
            Command::new("sed")
                .current_dir(&dir)
                .args(["-i", "s/\"done\"/done/", "o.json"]),
        );
    assert!(
        !o.status.success(),
        "sed -i produced invalid JSON and exited 0"
    );
    assert!(
        stderr(&o).contains("Invalid argument"),
        "sed's error: {}",
        stderr(&o)
    );
    assert_eq!(get(&p), b"{\"status\": \"done\", \"items\": [1, 2]}\n");
}

#[test]
fn cp_a_preserves_content_mode_and_mtime() {
    let m = Mount::new();
    let src = m.scratch().join("src.json");
    fs::write(&src, b"{\"copied\": true}\n").unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o640)).unwrap();
    set_mtime(&src, "2020-01-02 03:04:05");
    let dst = m.path(&format!("{USERS}/copied.json"));
    run("cp", &["-a", src.to_str().unwrap(), dst.to_str().unwrap()]);
    let (s, d) = (fs::metadata(&src).unwrap(), fs::metadata(&dst).unwrap());
    assert_eq!(get(&dst), b"{\"copied\": true}\n");
    assert_eq!(d.mode() & 0o7777, 0o640, "mode after cp -a into the mount");
    assert_eq!(d.mtime(), s.mtime(), "mtime after cp -a into the mount");
    assert_eq!(d.len(), s.len());

    // And back out.
    let back = m.scratch().join("back.json");
    run("cp", &["-a", dst.to_str().unwrap(), back.to_str().unwrap()]);
    let b = fs::metadata(&back).unwrap();
    assert_eq!(
        (b.mode() & 0o7777, b.mtime(), b.len()),
        (0o640, s.mtime(), s.len()),
        "cp -a out of the mount"
    );
    assert_eq!(fs::read(&back).unwrap(), b"{\"copied\": true}\n");

    // A whole type directory.
    let tdir = m.scratch().join("pets");
    fs::create_dir(&tdir).unwrap();
    for i in 0..5 {
        fs::write(tdir.join(format!("p{i}.json")), format!("{{\"pet\":{i}}}")).unwrap();
    }
    fs::write(tdir.join("photo.bin"), pattern(8, 0, 100_000)).unwrap();
    set_mtime(&tdir, "2019-09-09 09:09:09");
    let dst_dir = m.path("spacetime/warm_data/particles");
    run(
        "cp",
        &["-a", tdir.to_str().unwrap(), dst_dir.to_str().unwrap()],
    );
    assert_same_tree(&tdir, &dst_dir.join("pets"), "cp -a of a directory");
    assert_eq!(
        fs::metadata(dst_dir.join("pets")).unwrap().mtime(),
        fs::metadata(&tdir).unwrap().mtime(),
        "dir mtime after cp -a"
    );
}

/// Fills `dir` (native or in the mount) with a mix of records and files.
fn populate(dir: &Path) {
    for i in 0..6 {
        fs::write(
            dir.join(format!("r{i}.json")),
            json_record(&format!("r{i}"), 100 + i * 3000),
        )
        .unwrap();
    }
    fs::write(dir.join("empty.json"), b"").unwrap();
    fs::write(dir.join("blob.bin"), pattern(11, 0, 300_000)).unwrap();
    fs::write(dir.join("notes.txt"), b"not json {\n").unwrap();
    fs::write(dir.join("private.json"), b"{\"private\":1}").unwrap();
    fs::set_permissions(dir.join("private.json"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("r1.json", dir.join("latest")).unwrap();
    set_mtime(&dir.join("r0.json"), "2020-01-02 03:04:05");
    set_mtime(&dir.join("latest"), "2020-01-03 03:04:05");
}

#[test]
fn tar_out_of_the_mount_and_back_in() {
    let m = Mount::new();
    let users = m.path(USERS);
    populate(&users);
    let tarball = m.scratch().join("users.tar");
    run(
        "tar",
        &[
            "-C",
            users.to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
    );
    // Extract natively: same tree.
    let native = m.scratch().join("native");
    fs::create_dir(&native).unwrap();
    run(
        "tar",
        &[
            "-C",
            native.to_str().unwrap(),
            "-xpf",
            tarball.to_str().unwrap(),
        ],
    );
    assert_same_tree(&users, &native, "tar out of the mount");
    // Extract into a new dir in the mount: the tarball holds exactly what users put in
    // users/, so nothing in it collides with a generated name.
    let restored = m.path("spacetime/cold_data/particles/users_restored");
    fs::create_dir(&restored).unwrap();
    run(
        "tar",
        &[
            "-C",
            restored.to_str().unwrap(),
            "-xpf",
            tarball.to_str().unwrap(),
        ],
    );
    assert_same_tree(&native, &restored, "tar back into the mount");
    // A whole tier, generated files included, tars out cleanly (no "file
    // changed as we read it", sizes are true).
    let tier = m.scratch().join("hot.tar");
    run(
        "tar",
        &[
            "-C",
            m.ps("spacetime").as_str(),
            "-cf",
            tier.to_str().unwrap(),
            "hot_data",
        ],
    );
    let out = m.scratch().join("tier");
    fs::create_dir(&out).unwrap();
    run(
        "tar",
        &["-C", out.to_str().unwrap(), "-xpf", tier.to_str().unwrap()],
    );
    assert_same_tree(
        &users,
        &out.join("hot_data/particles/users"),
        "tar of the whole hot tier",
    );
    serde_json::from_slice::<serde_json::Value>(
        &fs::read(out.join("hot_data/shard.metadata")).unwrap(),
    )
    .expect("shard.metadata inside the tarball is valid JSON");
}

#[test]
fn rsync_into_the_mount_and_back_out() {
    let m = Mount::new();
    let src = m.scratch().join("src");
    fs::create_dir(&src).unwrap();
    populate(&src);
    let dst = m.path("spacetime/hot_data/particles/synced");
    let o = run(
        "rsync",
        &[
            "-a",
            &format!("{}/", src.display()),
            &format!("{}/", dst.display()),
        ],
    );
    assert!(
        stderr(&o).is_empty(),
        "rsync into the mount complained: {}",
        stderr(&o)
    );
    assert_same_tree(&src, &dst, "rsync into the mount");
    // Nothing left to do: sizes, mtimes, modes and links all match.
    let o = run(
        "rsync",
        &[
            "-ain",
            &format!("{}/", src.display()),
            &format!("{}/", dst.display()),
        ],
    );
    assert!(
        stdout(&o).trim().is_empty(),
        "rsync -ain still sees differences:\n{}",
        stdout(&o)
    );

    let back = m.scratch().join("back");
    run(
        "rsync",
        &[
            "-a",
            &format!("{}/", dst.display()),
            &format!("{}/", back.display()),
        ],
    );
    assert_same_tree(&src, &back, "rsync back out of the mount");

    // An incremental update replaces a record through rsync's temp file + rename.
    fs::write(src.join("r2.json"), b"{\"updated\":true}").unwrap();
    fs::remove_file(src.join("notes.txt")).unwrap();
    run(
        "rsync",
        &[
            "-a",
            "--delete",
            &format!("{}/", src.display()),
            &format!("{}/", dst.display()),
        ],
    );
    assert_eq!(get(&dst.join("r2.json")), b"{\"updated\":true}");
    assert!(!dst.join("notes.txt").exists());
    assert_same_tree(&src, &dst, "after an incremental rsync");
    assert!(
        names(&dst).iter().all(|n| !n.starts_with('.')),
        "rsync temp files left in the mount: {:?}",
        names(&dst)
    );
}
