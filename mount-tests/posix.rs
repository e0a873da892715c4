//! The POSIX surface tools rely on: offsets, truncate, O_APPEND, O_EXCL,
//! rename, unlink, rmdir, chmod/chown/utimens, symlinks, xattrs, statfs,
//! hard links, special files, long names (ENAMETOOLONG), true sizes and mtimes.

use crate::common::*;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::process::Command;

fn blob(m: &Mount, name: &str) -> std::path::PathBuf {
    m.path(&format!("{USERS}/{name}"))
}

#[test]
fn read_and_write_at_any_offset() {
    let m = Mount::new();
    let p = blob(&m, "offsets.bin");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    let mut model = vec![0u8; 0];
    let mut apply = |off: usize, data: &[u8]| {
        f.write_all_at(data, off as u64).unwrap();
        if model.len() < off + data.len() {
            model.resize(off + data.len(), 0);
        }
        model[off..off + data.len()].copy_from_slice(data);
    };
    apply(0, &pattern(1, 0, 10_000));
    apply(5_000, &pattern(2, 0, 20_000)); // overlaps the end and extends
    apply(1 << 20, b"far away"); // leaves a hole
    apply(3, b"xyz");
    apply(131_072 - 2, &pattern(3, 0, 4)); // straddles a 128 KiB boundary
    let mut back = vec![0u8; model.len()];
    f.read_exact_at(&mut back, 0).unwrap();
    assert!(
        back == model,
        "read through the writing fd differs from the model"
    );
    close_file(f).unwrap();
    let got = get(&p);
    assert_eq!(got.len(), model.len(), "size after sparse writes");
    assert!(got == model, "content after close differs from the model");
    assert!(
        got[25_000..131_070].iter().all(|b| *b == 0),
        "the hole before 128 KiB does not read as zeros"
    );
    assert!(
        got[131_074..(1 << 20)].iter().all(|b| *b == 0),
        "the hole before 1 MiB does not read as zeros"
    );
    // Reads at odd offsets and past EOF.
    let f = File::open(&p).unwrap();
    let mut buf = [0u8; 8];
    f.read_exact_at(&mut buf, 1 << 20).unwrap();
    assert_eq!(&buf, b"far away");
    assert_eq!(
        f.read_at(&mut buf, model.len() as u64 + 100).unwrap(),
        0,
        "read past EOF"
    );
    assert_eq!(fs::metadata(&p).unwrap().len(), (1 << 20) + 8);
}

#[test]
fn truncate_and_ftruncate() {
    let m = Mount::new();
    let p = blob(&m, "trunc.bin");
    let data = pattern(4, 0, 100_000);
    put(&p, &data);
    // truncate(2) shrinking
    let c = cstr(&p);
    assert_eq!(
        unsafe { libc::truncate(c.as_ptr(), 1000) },
        0,
        "truncate(2): {}",
        std::io::Error::last_os_error()
    );
    assert_eq!(get(&p), &data[..1000]);
    assert_eq!(fs::metadata(&p).unwrap().len(), 1000);
    // truncate(1) growing: zeros
    run("truncate", &["-s", "5000", p.to_str().unwrap()]);
    let got = get(&p);
    assert_eq!(got.len(), 5000);
    assert_eq!(&got[..1000], &data[..1000]);
    assert!(
        got[1000..].iter().all(|b| *b == 0),
        "extension by truncate is not zeros"
    );
    // ftruncate through an open fd, then write after it
    let mut f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    f.set_len(10).unwrap();
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(b"END").unwrap();
    close_file(f).unwrap();
    let mut want = data[..10].to_vec();
    want.extend_from_slice(b"END");
    assert_eq!(get(&p), want);
    assert_eq!(fs::metadata(&p).unwrap().len(), 13);
    // Truncating a JSON record to a valid prefix is fine; O_TRUNC to 0 as well.
    let r = m.path(&format!("{USERS}/t.json"));
    put(&r, b"[1,2]     ");
    let f = OpenOptions::new().write(true).open(&r).unwrap();
    f.set_len(5).unwrap();
    close_file(f).unwrap();
    assert_eq!(get(&r), b"[1,2]");
}

/// `O_RDONLY|O_TRUNC` truncates, as Linux's own filesystems do (the kernel asks for write
/// permission for it), and the empty version commits at close.
#[test]
fn o_trunc_with_o_rdonly_truncates() {
    let m = Mount::new();
    let p = blob(&m, "rdonly_trunc.bin");
    put(&p, b"hello");
    let mut f = open_raw(&p, libc::O_RDONLY | libc::O_TRUNC, 0).unwrap();
    let mut seen = Vec::new();
    f.read_to_end(&mut seen).unwrap();
    assert_eq!(seen, b"", "read through the truncating descriptor");
    close_file(f).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), 0);
    assert_eq!(get(&p), b"");
}

/// `cat` copied onto the mount and run from there: its path, its bytes, and the process,
/// which waits on its input and so runs until the test closes it.
fn run_from_mount(m: &Mount) -> (std::path::PathBuf, Vec<u8>, std::process::Child) {
    let p = blob(m, "cat");
    let program = fs::read("/usr/bin/cat").unwrap();
    put(&p, &program);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    let child = Command::new(&p)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (p, program, child)
}

/// A running program is not opened to be changed (ETXTBSY), and it keeps running. The
/// kernel checks every flag combination itself except `O_RDONLY|O_TRUNC`: with atomic
/// O_TRUNC it asks the daemon first and, once answered, drops the file's pages and size,
/// so the program dies at its next page fault (pjdfstest's `open::etxtbsy` caught it).
#[test]
fn a_running_program_cannot_be_changed_and_keeps_running() {
    let m = Mount::new();
    let (p, program, mut child) = run_from_mount(&m);
    for (flags, what) in [
        (libc::O_WRONLY, "O_WRONLY"),
        (libc::O_RDWR, "O_RDWR"),
        (libc::O_WRONLY | libc::O_TRUNC, "O_WRONLY|O_TRUNC"),
        (libc::O_RDONLY | libc::O_TRUNC, "O_RDONLY|O_TRUNC"),
    ] {
        expect_errno(
            open_raw(&p, flags, 0),
            &[libc::ETXTBSY],
            &format!("open({what}) of a running program"),
        );
    }
    let c = cstr(&p);
    expect_errno(
        cvt(unsafe { libc::truncate(c.as_ptr(), 0) }),
        &[libc::ETXTBSY],
        "truncate(2) of a running program",
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"still running\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the program died: {}", out.status);
    assert_eq!(out.stdout, b"still running\n");
    assert_eq!(get(&p), program, "the program's file changed");
}

/// The check behind `O_RDONLY|O_TRUNC` looks at every process's program. A program run from
/// the mount for longer than the kernel keeps a file's attributes (the daemon gives 30 s)
/// has stale ones. Had the check let the kernel refresh them, the kernel would have sent a
/// GETATTR to the daemon from the thread serving the open, which over io_uring is the one
/// thread of its CPU's queue: the open would never have returned (seen with the flag
/// `AT_STATX_DONT_SYNC` taken out of `programs::identity`).
#[test]
fn the_running_program_check_asks_nothing_of_the_daemon() {
    let m = Mount::new();
    let other = blob(&m, "other.txt");
    put(&other, b"to be cut\n");
    let (_, _, mut child) = run_from_mount(&m);
    // Nothing looks at the program's file meanwhile, so its attributes go stale.
    std::thread::sleep(std::time::Duration::from_secs(31));
    // In a process of its own: an open the daemon never answers cannot be killed, and
    // would keep this one from exiting.
    let mut opener = Command::new("python3")
        .args([
            "-c",
            "import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_TRUNC))",
        ])
        .arg(&other)
        .spawn()
        .unwrap();
    match exit_within(&mut opener, std::time::Duration::from_secs(10)).unwrap() {
        Some(status) => assert!(status.success(), "O_RDONLY|O_TRUNC failed: {status}"),
        None => {
            let _ = opener.kill();
            panic!("O_RDONLY|O_TRUNC did not return: the daemon waits on itself");
        }
    }
    assert_eq!(get(&other), b"", "O_RDONLY|O_TRUNC truncates");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn o_append_appends() {
    let m = Mount::new();
    let p = blob(&m, "log.txt");
    put(&p, b"one\n");
    let mut a = OpenOptions::new().append(true).open(&p).unwrap();
    let mut b = OpenOptions::new().append(true).open(&p).unwrap();
    a.write_all(b"two\n").unwrap();
    b.write_all(b"three\n").unwrap();
    a.write_all(b"four\n").unwrap();
    close_file(a).unwrap();
    close_file(b).unwrap();
    assert_eq!(
        String::from_utf8(get(&p)).unwrap(),
        "one\ntwo\nthree\nfour\n"
    );
    sh(&format!("echo five >> {}", p.display()));
    assert_eq!(
        String::from_utf8(get(&p)).unwrap(),
        "one\ntwo\nthree\nfour\nfive\n"
    );
    // O_APPEND ignores the seek position.
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(b"six\n").unwrap();
    close_file(f).unwrap();
    assert!(String::from_utf8(get(&p)).unwrap().ends_with("five\nsix\n"));
}

#[test]
fn o_excl_on_an_existing_file_is_eexist() {
    let m = Mount::new();
    let p = m.path(&format!("{USERS}/excl.json"));
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)
        .unwrap();
    close_file(f).unwrap();
    expect_errno(
        OpenOptions::new().write(true).create_new(true).open(&p),
        &[libc::EEXIST],
        "O_CREAT|O_EXCL on an existing file",
    );
    expect_errno(
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(m.path(USERS)),
        &[libc::EEXIST],
        "O_CREAT|O_EXCL on an existing directory",
    );
    expect_errno(
        fs::create_dir(m.path(USERS)),
        &[libc::EEXIST],
        "mkdir of an existing directory",
    );
}

#[test]
fn rename_moves_and_replaces() {
    let m = Mount::new();
    let a = m.path(&format!("{USERS}/a.json"));
    let b = m.path(&format!("{USERS}/b.json"));
    put(&a, b"{\"who\":\"a\"}");
    put(&b, b"{\"who\":\"b\"}");
    fs::rename(&a, &b).unwrap();
    assert!(!a.exists(), "rename left the source");
    assert_eq!(get(&b), b"{\"who\":\"a\"}", "rename over an existing file");
    assert_eq!(
        names(&m.path(USERS))
            .iter()
            .filter(|n| n.ends_with(".json") && *n != "_manifest.json")
            .count(),
        1
    );
    // Across type dirs, with mv(1).
    run(
        "mv",
        &[b.to_str().unwrap(), &m.ps(&format!("{ORDERS}/moved.json"))],
    );
    assert_eq!(
        get(&m.path(&format!("{ORDERS}/moved.json"))),
        b"{\"who\":\"a\"}"
    );
    assert!(!b.exists());
    // Renaming onto itself is a no-op; renaming a missing file is ENOENT.
    let c = m.path(&format!("{ORDERS}/moved.json"));
    fs::rename(&c, &c).unwrap();
    assert_eq!(get(&c), b"{\"who\":\"a\"}");
    expect_errno(
        fs::rename(&a, &b),
        &[libc::ENOENT],
        "rename of a missing file",
    );
    // An open fd keeps reading the renamed file.
    let f = File::open(&c).unwrap();
    let d = m.path(&format!("{ORDERS}/again.json"));
    fs::rename(&c, &d).unwrap();
    let mut buf = [0u8; 5];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"{\"who");
}

#[test]
fn unlink_and_rmdir() {
    let m = Mount::new();
    let ty = m.path("spacetime/hot_data/particles/tmp_type");
    fs::create_dir(&ty).unwrap();
    put(&ty.join("x.json"), b"{}");
    expect_errno(
        fs::remove_dir(&ty),
        &[libc::ENOTEMPTY],
        "rmdir of a non-empty dir",
    );
    let o = output_of(Command::new("rmdir").arg(&ty));
    assert!(
        !o.status.success() && stderr(&o).contains("not empty"),
        "rmdir(1): {}",
        stderr(&o)
    );
    fs::remove_file(ty.join("x.json")).unwrap();
    expect_errno(
        fs::remove_file(ty.join("x.json")),
        &[libc::ENOENT],
        "unlink twice",
    );
    expect_errno(
        fs::remove_file(&ty),
        &[libc::EISDIR, libc::EPERM],
        "unlink of a directory",
    );
    fs::remove_dir(&ty).unwrap();
    assert!(!ty.exists());
    expect_errno(fs::remove_dir(&ty), &[libc::ENOENT], "rmdir twice");
    // An unlinked-but-open file stays readable through its fd.
    let p = blob(&m, "ghost.bin");
    put(&p, b"boo");
    let f = File::open(&p).unwrap();
    fs::remove_file(&p).unwrap();
    assert!(!p.exists());
    let mut buf = [0u8; 3];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"boo");
}

#[test]
fn chmod_chown_and_utimens() {
    let m = Mount::new();
    let p = m.path(&format!("{USERS}/meta.json"));
    put(&p, b"{}");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
    run("chmod", &["u+x,g-r", p.to_str().unwrap()]);
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o700);
    run("chown", &["1234:5678", p.to_str().unwrap()]);
    let md = fs::metadata(&p).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    run_cmd(
        Command::new("touch")
            .env("TZ", "UTC")
            .args(["-d", "2020-01-02 03:04:05"])
            .arg(&p),
    );
    assert_eq!(
        fs::metadata(&p).unwrap().mtime(),
        1_577_934_245,
        "mtime after touch -d"
    );
    let ls = run_cmd(
        Command::new("ls")
            .env("TZ", "UTC")
            .args(["-l", "--time-style=+%Y-%m-%dT%H:%M:%S"])
            .arg(&p),
    );
    assert!(
        stdout(&ls).contains("2020-01-02T03:04:05"),
        "ls -l: {}",
        stdout(&ls)
    );
    run_cmd(
        Command::new("touch")
            .env("TZ", "UTC")
            .args(["-a", "-d", "2019-05-06 07:08:09"])
            .arg(&p),
    );
    let md = fs::metadata(&p).unwrap();
    assert_eq!(md.atime(), 1_557_126_489, "atime after touch -a -d");
    assert_eq!(md.mtime(), 1_577_934_245, "touch -a must not change mtime");
    // Directories too.
    let d = m.path("spacetime/hot_data/particles/metadir");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o750)).unwrap();
    run("chown", &["42:43", d.to_str().unwrap()]);
    run_cmd(
        Command::new("touch")
            .env("TZ", "UTC")
            .args(["-d", "2021-03-04 05:06:07"])
            .arg(&d),
    );
    let md = fs::metadata(&d).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid(), md.mtime()),
        (0o750, 42, 43, 1_614_834_367)
    );
    // A write moves mtime forward to now.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    put(&p, b"{\"x\":1}");
    assert!(
        fs::metadata(&p).unwrap().mtime() >= before - 1,
        "mtime after a write is not current"
    );
}

#[test]
fn symlinks_readlink_and_follow() {
    let m = Mount::new();
    let target = m.path(&format!("{USERS}/real.json"));
    put(&target, b"{\"real\":true}");
    let l = m.path(&format!("{USERS}/alias"));
    std::os::unix::fs::symlink("real.json", &l).unwrap();
    assert_eq!(fs::read_link(&l).unwrap().to_str(), Some("real.json"));
    assert!(fs::symlink_metadata(&l).unwrap().file_type().is_symlink());
    assert_eq!(get(&l), b"{\"real\":true}", "reading through the symlink");
    assert_eq!(
        stdout(&run("cat", &[l.to_str().unwrap()])),
        "{\"real\":true}"
    );
    assert_eq!(
        stdout(&run("readlink", &[l.to_str().unwrap()])).trim(),
        "real.json"
    );
    // Absolute, cross-directory and dangling targets.
    let abs = m.path(&format!("{ORDERS}/abs"));
    std::os::unix::fs::symlink(&target, &abs).unwrap();
    assert_eq!(get(&abs), b"{\"real\":true}");
    let rel = m.path(&format!("{ORDERS}/rel"));
    std::os::unix::fs::symlink("../users/real.json", &rel).unwrap();
    assert_eq!(get(&rel), b"{\"real\":true}");
    let dangling = m.path(&format!("{ORDERS}/dangling"));
    std::os::unix::fs::symlink("nowhere.json", &dangling).unwrap();
    assert_eq!(
        fs::read_link(&dangling).unwrap().to_str(),
        Some("nowhere.json")
    );
    expect_errno(
        fs::read(&dangling),
        &[libc::ENOENT],
        "reading a dangling symlink",
    );
    // Writing through a symlink writes the target; unlinking the link keeps it.
    put(&l, b"{\"real\":2}");
    assert_eq!(get(&target), b"{\"real\":2}");
    fs::remove_file(&l).unwrap();
    assert!(target.exists());
    let ls = stdout(&run("ls", &["-l", &m.ps(ORDERS)]));
    assert!(
        ls.contains("rel -> ../users/real.json"),
        "ls -l shows symlinks:\n{ls}"
    );
}

#[test]
fn user_xattrs_set_get_list_remove() {
    let m = Mount::new();
    let p = m.path(&format!("{USERS}/x.json"));
    put(&p, b"{}");
    setxattr(&p, "user.color", b"blue").unwrap();
    setxattr(&p, "user.empty", b"").unwrap();
    setxattr(&p, "user.bin", &[0, 1, 2, 255]).unwrap();
    assert_eq!(getxattr(&p, "user.color").unwrap(), b"blue");
    assert_eq!(getxattr(&p, "user.empty").unwrap(), b"");
    assert_eq!(getxattr(&p, "user.bin").unwrap(), [0, 1, 2, 255]);
    let mut list = listxattr(&p).unwrap();
    list.retain(|n| n.starts_with("user."));
    list.sort();
    assert_eq!(list, ["user.bin", "user.color", "user.empty"]);
    setxattr(&p, "user.color", b"green").unwrap();
    assert_eq!(getxattr(&p, "user.color").unwrap(), b"green", "overwrite");
    removexattr(&p, "user.color").unwrap();
    expect_errno(
        getxattr(&p, "user.color"),
        &[libc::ENODATA],
        "getxattr after removexattr",
    );
    expect_errno(
        removexattr(&p, "user.color"),
        &[libc::ENODATA],
        "removexattr twice",
    );
    expect_errno(
        getxattr(&p, "user.never"),
        &[libc::ENODATA],
        "getxattr of a missing name",
    );
    expect_errno(
        setxattr(&p, "trusted.x", b"1"),
        &[libc::ENOTSUP, libc::EPERM],
        "setxattr trusted.x",
    );
    expect_errno(
        setxattr(&p, "security.x", b"1"),
        &[libc::ENOTSUP, libc::EPERM],
        "setxattr security.x",
    );
    // Directories carry user xattrs too; tools see them.
    let d = m.path(USERS);
    setxattr(&d, "user.owner", b"team-a").unwrap();
    assert_eq!(getxattr(&d, "user.owner").unwrap(), b"team-a");
}

#[test]
fn statfs_reports_nonzero_totals() {
    let m = Mount::new();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    let c = cstr(m.mnt());
    assert_eq!(
        unsafe { libc::statvfs(c.as_ptr(), &mut s) },
        0,
        "statvfs: {}",
        std::io::Error::last_os_error()
    );
    assert!(s.f_blocks > 0, "f_blocks is 0");
    assert!(s.f_bsize > 0 && s.f_frsize > 0, "block size is 0");
    assert!(s.f_namemax >= 255, "f_namemax {}", s.f_namemax);
    let df = stdout(&run("df", &["-P", m.mnt().to_str().unwrap()]));
    let line = df
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("df -P output: {df}"));
    let total: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(total > 0, "df shows 0 total blocks: {df}");
    assert!(
        line.trim_end().ends_with(m.mnt().to_str().unwrap()),
        "df is not about the mount: {df}"
    );
    let st = stdout(&run(
        "stat",
        &["-f", "-c", "%b %S", m.mnt().to_str().unwrap()],
    ));
    let v: Vec<u64> = st.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!(v[0] > 0 && v[1] > 0, "stat -f: {st}");
}

/// `ln` and link(2): one file under several names, `nlink` true, content shared until
/// the last name goes; special files link too. A file's names stay under one rule, in
/// one tier and one region: `EXDEV` otherwise, as for another filesystem.
#[test]
fn hard_links_share_content_until_the_last_name_goes() {
    let mut m = Mount::new();
    let p = |rel: &str| m.path(&format!("{USERS}/{rel}"));
    put(&p("orig.json"), b"{\"v\": 1}");
    fs::create_dir(p("d")).unwrap();
    fs::hard_link(p("orig.json"), p("d/second.json")).unwrap();
    let o = output_of(Command::new("ln").arg(p("orig.json")).arg(p("third.json")));
    assert!(o.status.success(), "ln: {}", stderr(&o));
    let md = fs::metadata(p("third.json")).unwrap();
    assert_eq!(md.nlink(), 3);
    assert_eq!(md.ino(), fs::metadata(p("orig.json")).unwrap().ino());
    assert_eq!(
        sh(&format!("stat -c %h {}", shq(p("d/second.json")))).trim(),
        "3"
    );
    put(&p("d/second.json"), b"{\"v\": 2}");
    assert_eq!(get(&p("orig.json")), b"{\"v\": 2}");
    // Invalid JSON through any name is refused for all of them.
    expect_errno(
        write_file(&p("third.json"), b"{broken"),
        &[libc::EINVAL],
        "invalid JSON through a link",
    );
    assert_eq!(get(&p("orig.json")), b"{\"v\": 2}");
    fs::remove_file(p("orig.json")).unwrap();
    assert_eq!(fs::metadata(p("third.json")).unwrap().nlink(), 2);
    // Rules, tiers, regions.
    put(&p("notes.txt"), b"not json");
    let o = output_of(Command::new("ln").arg(p("notes.txt")).arg(p("notes.json")));
    assert!(
        !o.status.success() && stderr(&o).contains("Invalid cross-device link"),
        "ln of an unchecked file to a record name: {}",
        stderr(&o)
    );
    expect_errno(
        fs::hard_link(p("third.json"), p("third.txt")),
        &[libc::EXDEV],
        "a record's link under a name no rule checks",
    );
    expect_errno(
        fs::hard_link(
            p("third.json"),
            m.path("spacetime/cold_data/particles/third.json"),
        ),
        &[libc::EXDEV],
        "a link into another tier",
    );
    expect_errno(
        fs::hard_link(p("notes.txt"), m.path("entropy/notes.txt")),
        &[libc::EXDEV],
        "a link into another region",
    );
    expect_errno(
        fs::hard_link(p("_manifest.json"), p("manifest-copy.json")),
        &[libc::EPERM],
        "a link to a generated file",
    );
    expect_errno(
        fs::hard_link(p("d"), p("d2")),
        &[libc::EPERM],
        "a link to a directory",
    );
    // Special files link like files.
    sh(&format!("mkfifo {}", shq(p("fifo"))));
    fs::hard_link(p("fifo"), p("d/fifo2")).unwrap();
    assert_eq!(fs::symlink_metadata(p("fifo")).unwrap().nlink(), 2);
    // Everything stays across a restart, and after kill -9.
    m.remount();
    let p = |rel: &str| m.path(&format!("{USERS}/{rel}"));
    assert_eq!(fs::metadata(p("d/second.json")).unwrap().nlink(), 2);
    assert_eq!(get(&p("third.json")), b"{\"v\": 2}");
    assert_eq!(fs::symlink_metadata(p("d/fifo2")).unwrap().nlink(), 2);
    fs::hard_link(p("notes.txt"), p("d/notes-link.txt")).unwrap();
    m.kill9();
    m.remount();
    let p = |rel: &str| m.path(&format!("{USERS}/{rel}"));
    assert_eq!(fs::metadata(p("notes.txt")).unwrap().nlink(), 2);
    fs::remove_file(p("third.json")).unwrap();
    fs::remove_file(p("d/second.json")).unwrap();
    assert!(!p("third.json").exists() && !p("d/second.json").exists());
    assert_eq!(names(&p("d")), ["fifo2", "notes-link.txt"]);
}

#[test]
fn names_longer_than_255_bytes_are_enametoolong() {
    let m = Mount::new();
    let ok = format!("{}.json", "a".repeat(250));
    assert_eq!(ok.len(), 255);
    put(&m.path(&format!("{USERS}/{ok}")), b"{\"long\":true}");
    assert_eq!(get(&m.path(&format!("{USERS}/{ok}"))), b"{\"long\":true}");
    assert!(names(&m.path(USERS)).contains(&ok));
    let bad = format!("{}.json", "b".repeat(251));
    assert_eq!(bad.len(), 256);
    let too_long = [libc::ENAMETOOLONG];
    expect_errno(
        File::create(m.path(&format!("{USERS}/{bad}"))),
        &too_long,
        "create with a 256-byte name",
    );
    expect_errno(
        fs::create_dir(m.path(&format!("{USERS}/{}", "d".repeat(300)))),
        &too_long,
        "mkdir with a 300-byte name",
    );
    expect_errno(
        fs::rename(
            m.path(&format!("{USERS}/{ok}")),
            m.path(&format!("{USERS}/{bad}")),
        ),
        &too_long,
        "rename to a 256-byte name",
    );
    expect_errno(
        std::os::unix::fs::symlink("x", m.path(&format!("{USERS}/{bad}"))),
        &too_long,
        "symlink with a 256-byte name",
    );
    // 256 bytes of multi-byte UTF-8 (128 two-byte chars) is also too long.
    let utf = "é".repeat(128);
    assert_eq!(utf.len(), 256);
    expect_errno(
        File::create(m.path(&format!("{USERS}/{utf}"))),
        &too_long,
        "create with a 256-byte UTF-8 name",
    );
    assert!(names(&m.path(USERS)).iter().all(|n| n.len() <= 255));
}

#[test]
fn ls_shows_true_sizes_and_mtimes() {
    let m = Mount::new();
    let p = m.path(&format!("{USERS}/sized.bin"));
    put(&p, &pattern(5, 0, 12_345));
    run_cmd(
        Command::new("touch")
            .env("TZ", "UTC")
            .args(["-d", "2020-01-02 03:04:05"])
            .arg(&p),
    );
    let ls = run_cmd(
        Command::new("ls")
            .env("TZ", "UTC")
            .args(["-l", "--time-style=+%Y-%m-%dT%H:%M:%S"])
            .arg(&p),
    );
    let line = stdout(&ls);
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[4], "12345", "ls -l size: {line}");
    assert_eq!(f[5], "2020-01-02T03:04:05", "ls -l mtime: {line}");
    // Size tracks every kind of change, seen by a fresh stat.
    let mut fh = OpenOptions::new().append(true).open(&p).unwrap();
    fh.write_all(b"12345").unwrap();
    // (the uncommitted size is not asserted: others see the committed version)
    close_file(fh).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), 12_350);
    assert_eq!(
        stdout(&run("stat", &["-c", "%s", p.to_str().unwrap()])).trim(),
        "12350"
    );
    assert_eq!(
        stdout(&run("wc", &["-c", p.to_str().unwrap()]))
            .split_whitespace()
            .next(),
        Some("12350")
    );
    let du = stdout(&run("du", &["-b", p.to_str().unwrap()]));
    assert!(du.starts_with("12350"), "du -b: {du}");
    // A directory's entries show in ls -l with their sizes.
    put(&m.path(&format!("{USERS}/three.json")), b"[3]");
    let ls = stdout(&run("ls", &["-l", &m.ps(USERS)]));
    let line = ls
        .lines()
        .find(|l| l.ends_with(" three.json"))
        .unwrap_or_else(|| panic!("ls -l:\n{ls}"));
    assert_eq!(line.split_whitespace().nth(4), Some("3"), "{line}");
}

/// Maps `len` bytes of `f` shared; the closure gets the mapping as a slice. With `sync`,
/// the mapping is written back with msync(MS_SYNC) before it is unmapped.
fn with_mapping(f: &File, len: usize, write: bool, sync: bool, use_it: impl FnOnce(&mut [u8])) {
    use std::os::fd::AsRawFd;
    let prot = libc::PROT_READ | if write { libc::PROT_WRITE } else { 0 };
    // SAFETY: a fresh shared mapping of an open file, unmapped below; nothing else
    // aliases it while the closure runs.
    unsafe {
        let at = libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(
            at,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        use_it(std::slice::from_raw_parts_mut(at as *mut u8, len));
        if sync {
            assert_eq!(libc::msync(at, len, libc::MS_SYNC), 0, "msync");
        }
        assert_eq!(libc::munmap(at, len), 0, "munmap");
    }
}

#[test]
fn mmap_reads_committed_content_and_writes_commit_at_close_or_msync() {
    let m = Mount::new();
    let p = blob(&m, "mapped.bin");
    let v0 = pattern(41, 0, 3 * 4096 + 100);
    put(&p, &v0);

    let f = File::open(&p).unwrap();
    with_mapping(&f, v0.len(), false, false, |map| {
        assert!(map == &v0[..], "a read-only mapping shows the file")
    });
    drop(f);

    // Stores through a mapping are the writer's draft until close(2) commits them.
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    let mut v1 = v0.clone();
    v1[10..20].copy_from_slice(b"0123456789");
    v1[2 * 4096 + 7] = b'!';
    with_mapping(&f, v0.len(), true, false, |map| {
        map[10..20].copy_from_slice(b"0123456789");
        map[2 * 4096 + 7] = b'!';
    });
    assert!(
        get(&p) == v0,
        "stores through a mapping showed before the close"
    );
    close_file(f).unwrap();
    assert!(
        get(&p) == v1,
        "stores through a mapping were not committed at close"
    );

    // msync(MS_SYNC) is an fsync: it commits, durably, with the file still open.
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    let mut v2 = v1.clone();
    v2[4096..4100].copy_from_slice(b"sync");
    with_mapping(&f, v0.len(), true, true, |map| {
        map[4096..4100].copy_from_slice(b"sync")
    });
    assert!(get(&p) == v2, "msync did not commit the mapped stores");
    close_file(f).unwrap();
    assert!(get(&p) == v2);
}

/// FIFOs, sockets and device nodes are stored as metadata and served by the kernel: a
/// pipe carries data between two processes, a socket bound to a name in the mount
/// accepts connections, a device keeps its number (and is not opened: the mount is
/// `nodev`); `rsync -a` copies them out and back in, and they survive a remount.
#[test]
fn special_files_are_made_used_and_copied() {
    let mut m = Mount::new();
    let dir = m.path(&format!("{USERS}/specials"));
    fs::create_dir(&dir).unwrap();
    let through = sh(&format!(
        "cd {} && mkfifo pipe && (echo through the pipe > pipe &) && cat pipe",
        shq(&dir)
    ));
    assert_eq!(through, "through the pipe\n");

    let sock = dir.join("sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut client = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    client.write_all(b"ping").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let mut got = [0u8; 4];
    std::io::Read::read_exact(&mut server, &mut got).unwrap();
    assert_eq!(&got, b"ping", "through the socket bound in the mount");
    drop((client, server, listener));

    let made = output_of(
        Command::new("mknod")
            .arg(dir.join("null"))
            .args(["c", "1", "3"]),
    );
    assert!(made.status.success(), "mknod c: {}", stderr(&made));
    let made = output_of(
        Command::new("mknod")
            .arg(dir.join("disk"))
            .args(["b", "7", "9"]),
    );
    assert!(made.status.success(), "mknod b: {}", stderr(&made));
    let st = sh(&format!(
        "stat -c '%F %t %T' {} {}",
        shq(dir.join("null")),
        shq(dir.join("disk"))
    ));
    assert_eq!(st, "character special file 1 3\nblock special file 7 9\n");
    expect_errno(
        File::open(dir.join("null")),
        &[libc::EACCES],
        "open of a device on a nodev mount",
    );

    let refused = output_of(Command::new("mkfifo").arg(m.path(&format!("{USERS}/p.json"))));
    assert!(
        !refused.status.success() && stderr(&refused).contains("Invalid argument"),
        "mkfifo with a record's name: {}",
        stderr(&refused)
    );

    let out = m.scratch().join("specials");
    let o = run(
        "rsync",
        &[
            "-a",
            &format!("{}/", dir.display()),
            &format!("{}/", out.display()),
        ],
    );
    assert!(o.status.success(), "rsync out: {}", stderr(&o));
    assert_same_tree(&dir, &out, "rsync -a of special files out of the mount");
    let back = m.path(&format!("{USERS}/specials-back"));
    let o = run(
        "rsync",
        &[
            "-a",
            &format!("{}/", out.display()),
            &format!("{}/", back.display()),
        ],
    );
    assert!(o.status.success(), "rsync in: {}", stderr(&o));
    assert_same_tree(&out, &back, "rsync -a of special files into the mount");

    let before = tree_entries(&dir);
    m.remount();
    assert_eq!(tree_entries(&dir), before, "special files after a remount");
}

fn renameat2(from: &std::path::Path, to: &std::path::Path, flags: u32) -> std::io::Result<()> {
    let (a, b) = (cstr(from), cstr(to));
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them as given.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `renameat2`: `RENAME_NOREPLACE` refuses an existing target; `RENAME_EXCHANGE` swaps
/// two entries at once (files, or a file and a directory), each checked by the rules of
/// where it arrives; it survives a `kill -9` and remount.
#[test]
fn rename_noreplace_and_exchange() {
    let mut m = Mount::new();
    let (a, b) = (blob(&m, "a.json"), blob(&m, "b.json"));
    put(&a, br#"{"a": 1}"#);
    put(&b, br#"{"b": 2}"#);
    expect_errno(
        renameat2(&a, &b, libc::RENAME_NOREPLACE),
        &[libc::EEXIST],
        "NOREPLACE onto b",
    );
    renameat2(&a, &blob(&m, "c.json"), libc::RENAME_NOREPLACE).expect("NOREPLACE to a free name");
    let c = blob(&m, "c.json");
    renameat2(&c, &b, libc::RENAME_EXCHANGE).expect("exchange");
    assert_eq!(get(&b), br#"{"a": 1}"#);
    assert_eq!(get(&c), br#"{"b": 2}"#);
    let notes = blob(&m, "notes.txt");
    put(&notes, b"not json");
    expect_errno(
        renameat2(&notes, &b, libc::RENAME_EXCHANGE),
        &[libc::EINVAL],
        "exchange bringing non-JSON to a record's name",
    );
    let dir = blob(&m, "dir");
    fs::create_dir(&dir).unwrap();
    put(&dir.join("inner.json"), b"{}");
    renameat2(&notes, &dir, libc::RENAME_EXCHANGE).expect("a file and a directory");
    assert_eq!(get(&dir), b"not json");
    assert!(notes.join("inner.json").is_file());
    expect_errno(
        renameat2(&c, &blob(&m, "missing.json"), libc::RENAME_EXCHANGE),
        &[libc::ENOENT],
        "exchange with nothing",
    );
    m.kill9();
    m.remount();
    assert_eq!(get(&b), br#"{"a": 1}"#);
    assert_eq!(get(&c), br#"{"b": 2}"#);
    assert_eq!(get(&dir), b"not json");
    assert_eq!(get(&notes.join("inner.json")), b"{}");
    let mut listed = names(&m.path(USERS));
    listed.sort();
    assert_eq!(listed, ["b.json", "c.json", "dir", "notes.txt"]);
}

/// fallocate(1) in every mode it has: the default mode grows the file with zeros,
/// `--keep-size` changes nothing, `--punch-hole` and `--zero-range` zero a range (the
/// latter growing the file unless kept); modes that move data are refused. Each change is
/// committed like a write and survives a remount.
#[test]
fn fallocate_modes() {
    let mut m = Mount::new();
    let p = blob(&m, "falloc.bin");
    let body: Vec<u8> = (0..100u8).collect();
    put(&p, &body);
    let fa = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        let path = p.to_str().unwrap().to_string();
        all.push(&path);
        output_of(Command::new("fallocate").args(&all))
    };
    let ok =
        |o: std::process::Output, what: &str| assert!(o.status.success(), "{what}: {}", stderr(&o));
    ok(fa(&["-l", "50"]), "inside the file");
    assert_eq!(get(&p), body, "allocating inside the file changes nothing");
    ok(fa(&["-n", "-o", "0", "-l", "4096"]), "--keep-size");
    assert_eq!(fs::metadata(&p).unwrap().len(), 100);
    ok(fa(&["-p", "-o", "10", "-l", "20"]), "--punch-hole");
    let mut want = body.clone();
    want[10..30].fill(0);
    assert_eq!(get(&p), want, "punched");
    ok(
        fa(&["-z", "-o", "90", "-l", "30"]),
        "--zero-range past the end",
    );
    want[90..].fill(0);
    want.resize(120, 0);
    assert_eq!(get(&p), want, "zeroed and grown");
    ok(fa(&["-o", "0", "-l", "200"]), "the default mode grows");
    want.resize(200, 0);
    assert_eq!(get(&p), want);
    let o = fa(&["-c", "-o", "0", "-l", "4096"]);
    assert!(!o.status.success(), "--collapse-range is refused");
    m.remount();
    assert_eq!(get(&p), want, "after a remount");
}

/// copy_file_range(2) copies through the daemon's read and write paths: the bytes land
/// where asked, and a copy that would make a record invalid is refused like a write.
#[test]
fn copy_file_range_copies_and_is_checked() {
    let m = Mount::new();
    let src = blob(&m, "src.bin");
    let data = pattern(3, 0, 300_000);
    put(&src, &data);
    let copy =
        |from: &std::path::Path, to: &std::path::Path, off_in: i64, off_out: i64, len: usize| {
            let (a, b) = (
                File::open(from).unwrap(),
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(to)
                    .unwrap(),
            );
            let (mut oi, mut oo) = (off_in, off_out);
            // SAFETY: valid descriptors and offsets owned by this frame.
            let n = unsafe {
                libc::copy_file_range(
                    std::os::fd::AsRawFd::as_raw_fd(&a),
                    &mut oi,
                    std::os::fd::AsRawFd::as_raw_fd(&b),
                    &mut oo,
                    len,
                    0,
                )
            };
            let res = if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            };
            (res, close_file(b))
        };
    let dst = blob(&m, "dst.bin");
    let (n, closed) = copy(&src, &dst, 1000, 0, 250_000);
    assert_eq!(n.unwrap(), 250_000);
    closed.unwrap();
    assert_eq!(get(&dst), &data[1000..251_000]);
    let rec = blob(&m, "r.json");
    put(&rec, br#"{"kept": true}"#);
    let (n, _) = copy(&src, &rec, 0, 0, 100);
    expect_errno(n, &[libc::EINVAL], "copying non-JSON over a record's start");
    assert_eq!(get(&rec), br#"{"kept": true}"#);
}

/// ftruncate(2) and fallocate(2) update a file's mtime and ctime at once, as writes do,
/// also before the writer closes it (what `fstat` on the open descriptor shows).
#[test]
fn ftruncate_and_fallocate_update_mtime_and_ctime_at_once() {
    let m = Mount::new();
    let p = blob(&m, "times.bin");
    put(&p, b"0123456789");
    let times = |f: &File| {
        let md = f.metadata().unwrap();
        ((md.mtime(), md.mtime_nsec()), (md.ctime(), md.ctime_nsec()))
    };
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    let before = times(&f);
    std::thread::sleep(std::time::Duration::from_millis(20));
    f.set_len(4).unwrap();
    let truncated = times(&f);
    assert!(
        truncated.0 > before.0 && truncated.1 > before.1,
        "ftruncate: {before:?} -> {truncated:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    // SAFETY: a valid descriptor; the range is in bounds.
    let rc = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&f), 0, 0, 4096) };
    assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
    let allocated = times(&f);
    assert!(
        allocated.0 > truncated.0 && allocated.1 > truncated.1,
        "fallocate: {truncated:?} -> {allocated:?}"
    );
    assert_eq!(f.metadata().unwrap().len(), 4096);
    close_file(f).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), 4096, "committed at close");
}
