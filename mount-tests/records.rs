//! Records under `spacetime/<tier>/particles/<type>/`: `.json` must parse at
//! commit (close/fsync) or the commit fails with EINVAL and the previous
//! version stays; other names are opaque bytes; commits are atomic for
//! readers.

use crate::common::*;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Every prefix of it could start a JSON document, so each write is accepted; the whole
/// is not one, so the commit is refused.
const INCOMPLETE: &[u8] = b"{\n  \"name\": \"alice\",\n  \"age\": ";

#[test]
fn record_roundtrip_with_shell_cat_and_jq() {
    let m = Mount::new();
    let p = m.ps(&format!("{USERS}/alice.json"));
    sh(&format!(
        "printf '%s\\n' '{{\"name\":\"alice\",\"age\":30}}' > {p}"
    ));
    assert_eq!(
        stdout(&run("cat", &[&p])),
        "{\"name\":\"alice\",\"age\":30}\n"
    );
    assert_eq!(stdout(&run("jq", &["-r", ".name", &p])).trim(), "alice");
    assert!(names(&m.path(USERS)).contains(&"alice.json".to_string()));
    assert_eq!(
        fs::metadata(&p).unwrap().len(),
        "{\"name\":\"alice\",\"age\":30}\n".len() as u64
    );
    // Overwrite with the shell, then jq sees the new version.
    sh(&format!("echo '{{\"name\":\"alice\",\"age\":31}}' > {p}"));
    assert_eq!(stdout(&run("jq", &[".age", &p])).trim(), "31");
    // grep across records, as users do.
    sh(&format!(
        "echo '{{\"name\":\"bob\"}}' > {}",
        m.ps(&format!("{USERS}/bob.json"))
    ));
    let hits = sh(&format!("cd {} && grep -l alice *.json", m.ps(USERS)));
    assert_eq!(hits.trim(), "alice.json");
}

#[test]
fn mkdir_makes_a_record_type() {
    let m = Mount::new();
    let ty = "spacetime/warm_data/particles/reviews";
    fs::create_dir(m.path(ty)).unwrap();
    assert!(m.path(ty).is_dir());
    assert!(names(&m.path("spacetime/warm_data/particles")).contains(&"reviews".to_string()));
    put(&m.path(&format!("{ty}/r1.json")), b"{\"stars\":5}");
    // A type directory lists only its records; its manifest is there by name.
    assert_eq!(names(&m.path(ty)), vec!["r1.json"]);
    assert_eq!(
        read_json(&m.path(&format!("{ty}/_manifest.json")))["cosmic_location"],
        format!("{ty}/")
    );
    expect_errno(
        fs::create_dir(m.path(ty)),
        &[libc::EEXIST],
        "mkdir of an existing type",
    );
    fs::remove_file(m.path(&format!("{ty}/r1.json"))).unwrap();
    fs::remove_dir(m.path(ty)).unwrap();
    assert!(!m.path(ty).exists());
}

/// Polls the daemon log (it is written asynchronously) for one line that
/// names `rel` and says "line" and "column".
#[track_caller]
fn assert_logged_parse_error(m: &Mount, rel: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let log = m.log();
        if log
            .lines()
            .any(|l| l.contains(rel) && l.contains("line") && l.contains("column"))
        {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "no log line names {rel} with \"line\" and \"column\"; log:\n{}",
                tail(&log, 40)
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn invalid_json_is_refused_at_close_and_the_old_version_stays() {
    let m = Mount::new();
    let rel = format!("{USERS}/alice.json");
    let p = m.path(&rel);
    let v1 = b"{\"name\":\"alice\",\"v\":1}";
    put(&p, v1);

    // Truncate and write a document that never ends: close must fail with EINVAL.
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.write_all(INCOMPLETE)
        .expect("the write of a valid start is accepted; the whole is checked at commit");
    expect_errno(
        close_file(f),
        &[libc::EINVAL],
        "close after writing an incomplete JSON document",
    );
    assert_eq!(
        get(&p),
        v1,
        "a fresh open must see the previous committed version"
    );
    assert_eq!(
        fs::metadata(&p).unwrap().len(),
        v1.len() as u64,
        "size of the previous version"
    );
    assert_logged_parse_error(&m, &rel);

    // Overwriting a few bytes in place (no truncate) that break the JSON.
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(b"[[", 0).unwrap();
    expect_errno(
        close_file(f),
        &[libc::EINVAL],
        "close after an in-place edit that breaks the JSON",
    );
    assert_eq!(get(&p), v1);

    // Appending garbage after a valid document.
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b"}}").unwrap();
    expect_errno(
        close_file(f),
        &[libc::EINVAL],
        "close after appending garbage",
    );
    assert_eq!(get(&p), v1);

    // And a valid rewrite still works afterwards.
    put(&p, b"{\"name\":\"alice\",\"v\":2}");
    assert_eq!(get(&p), b"{\"name\":\"alice\",\"v\":2}");
}

#[test]
fn invalid_json_is_refused_at_fsync() {
    let m = Mount::new();
    let rel = "spacetime/hot_data/particles/orders/o1.json";
    let p = m.path(rel);
    put(&p, b"{\"order\":1}");
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.write_all(b"{\"order\": 1,").unwrap();
    expect_errno(fsync_file(&f), &[libc::EINVAL], "fsync of invalid JSON");
    assert_eq!(
        get(&p),
        b"{\"order\":1}",
        "a fresh open after the refused fsync"
    );
    let _ = close_file(f);
    assert_eq!(get(&p), b"{\"order\":1}", "after close");
    assert_logged_parse_error(&m, rel);
    // A valid fsync on the same kind of handle succeeds.
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.write_all(b"{\"order\":2}").unwrap();
    fsync_file(&f).unwrap();
    close_file(f).unwrap();
    assert_eq!(get(&p), b"{\"order\":2}");
}

#[test]
fn a_new_record_with_invalid_json_never_shows_the_garbage() {
    let m = Mount::new();
    let p = m.path(&format!("{PRODUCTS}/fresh.json"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)
        .unwrap();
    // A valid start that never ends (garbage from the first byte is refused by the
    // write itself: `writes_that_cannot_start_json_fail_at_once`).
    f.write_all(b"{\"fresh\": [1, 2").unwrap();
    expect_errno(
        close_file(f),
        &[libc::EINVAL],
        "close of a new .json with an incomplete document",
    );
    match fs::read(&p) {
        Ok(b) => assert!(
            b.is_empty(),
            "after a refused first commit the file holds {:?}",
            String::from_utf8_lossy(&b)
        ),
        Err(e) => assert_eq!(
            errno_of(&e),
            libc::ENOENT,
            "reading the refused new record: {e}"
        ),
    }
}

#[test]
fn empty_json_file_is_accepted() {
    let m = Mount::new();
    run("touch", &[&m.ps(&format!("{USERS}/empty.json"))]);
    let md = fs::metadata(m.path(&format!("{USERS}/empty.json"))).unwrap();
    assert!(md.is_file() && md.len() == 0, "touch x.json: {md:?}");
    let f = File::create(m.path(&format!("{USERS}/empty2.json"))).unwrap();
    close_file(f).expect("closing an empty new .json");
    // Truncating a valid record to empty is accepted too.
    let p = m.path(&format!("{USERS}/was_full.json"));
    put(&p, b"{\"a\":1}");
    let f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    close_file(f).expect("closing a record truncated to empty");
    assert_eq!(get(&p), b"");
    sh(&format!(": > {}", m.ps(&format!("{USERS}/empty3.json"))));
    assert_eq!(get(&m.path(&format!("{USERS}/empty3.json"))), b"");
}

#[test]
fn names_not_ending_in_json_are_opaque_bytes() {
    let m = Mount::new();
    let mut garbage = b"not { json \x00\xff\xfe binary".to_vec();
    garbage.extend(pattern(9, 0, 70_000));
    for name in [
        ".alice.json.swp",
        "alice.json~",
        "sedAb12Cd",
        "blob.bin",
        "4913",
        "notes.txt",
        "alice.json.tmp",
        "noext",
    ] {
        let p = m.path(&format!("{USERS}/{name}"));
        write_file(&p, &garbage).unwrap_or_else(|e| panic!("writing opaque bytes to {name}: {e}"));
        assert!(get(&p) == garbage, "{name}: content differs");
        assert_eq!(
            fs::metadata(&p).unwrap().len(),
            garbage.len() as u64,
            "{name}: size"
        );
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(b"{{{", 5).unwrap();
        close_file(f).unwrap_or_else(|e| panic!("in-place edit of {name}: {e}"));
        fs::remove_file(&p).unwrap();
    }
}

#[test]
fn renaming_non_json_content_onto_a_json_name_is_einval() {
    let m = Mount::new();
    let tmp = m.path(&format!("{USERS}/draft~"));
    let dst = m.path(&format!("{USERS}/bob.json"));
    put(&tmp, b"this is not json");
    expect_errno(
        fs::rename(&tmp, &dst),
        &[libc::EINVAL],
        "rename invalid content onto a new .json name",
    );
    assert_eq!(get(&tmp), b"this is not json", "the source must stay");
    assert!(!dst.exists(), "the refused target appeared");

    put(&dst, b"{\"v\":1}");
    expect_errno(
        fs::rename(&tmp, &dst),
        &[libc::EINVAL],
        "rename invalid content over an existing .json",
    );
    assert_eq!(get(&dst), b"{\"v\":1}", "the existing record must stay");
    assert_eq!(get(&tmp), b"this is not json");

    // Valid content under an opaque name may become a record (sed -i, rsync do this).
    put(&tmp, b"{\"v\":2}");
    fs::rename(&tmp, &dst).unwrap();
    assert!(!tmp.exists());
    assert_eq!(get(&dst), b"{\"v\":2}");
    let out = run("jq", &[".v", dst.to_str().unwrap()]);
    assert_eq!(stdout(&out).trim(), "2");
}

/// Reads a whole file through an already-open fd, from offset 0.
fn read_all_at(f: &File) -> Vec<u8> {
    let mut v = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = f.read_at(&mut buf, v.len() as u64).unwrap();
        if n == 0 {
            return v;
        }
        v.extend_from_slice(&buf[..n]);
    }
}

/// A child forked while a file is open for writing holds a copy of the descriptor until
/// its exec closes it; that close (a flush from another process) must not commit the
/// half-written file. The writer's own close does.
#[test]
fn a_child_started_while_writing_does_not_commit_the_half_written_file() {
    children_exec_while_a_writer_holds("half.txt", b"first half, ", b"second half\n");
}

/// The same before the writer's first write: the child's close must not publish the file
/// O_TRUNC emptied.
#[test]
fn a_child_started_between_an_o_trunc_open_and_the_first_write_commits_nothing() {
    children_exec_while_a_writer_holds("emptied.txt", b"", b"new version\n");
}

/// Writes `first` through an `O_TRUNC` descriptor, starts children (they inherit it and
/// drop it at exec), checks that readers still see the old version, then writes `second`
/// and closes.
fn children_exec_while_a_writer_holds(name: &str, first: &[u8], second: &[u8]) {
    let m = Mount::new();
    let p = m.path(&format!("{USERS}/{name}"));
    put(&p, b"old version\n");
    let mut w = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    w.write_all(first).unwrap();
    for _ in 0..3 {
        let o = output_of(&mut Command::new("true"));
        assert!(o.status.success());
    }
    assert_eq!(
        get(&p),
        b"old version\n",
        "a reader sees the writer's unfinished file after a child's exec closed its copy"
    );
    w.write_all(second).unwrap();
    close_file(w).unwrap();
    assert_eq!(get(&p), [first, second].concat());
}

#[test]
fn commit_is_atomic_for_a_reader_opened_before() {
    let m = Mount::new();
    let p = m.path(&format!("{USERS}/atomic.json"));
    let a = json_record("aaaa", 64 * 1024);
    let b = json_record("bbbb", 64 * 1024);
    put(&p, &a);
    let reader = File::open(&p).unwrap();
    assert!(read_all_at(&reader) == a);

    let mut w = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    for (i, chunk) in b.chunks(4096).enumerate() {
        w.write_all_at(chunk, (i * 4096) as u64).unwrap();
        // The writer sees its own writes at once.
        let mut own = vec![0u8; chunk.len()];
        w.read_exact_at(&mut own, (i * 4096) as u64).unwrap();
        assert_eq!(
            own, chunk,
            "the writer does not see its own write at chunk {i}"
        );
        let seen = read_all_at(&reader);
        assert!(
            seen == a || seen == b,
            "an earlier fd saw a mix after chunk {i} (len {})",
            seen.len()
        );
        if i % 4 == 0 {
            // A fresh open before the commit sees the old version.
            let fresh = get(&p);
            assert!(
                fresh == a || fresh == b,
                "a fresh open before close saw a mix after chunk {i}"
            );
        }
    }
    w.flush().unwrap();
    close_file(w).unwrap();
    let seen = read_all_at(&reader);
    assert!(
        seen == a || seen == b,
        "the earlier fd saw a mix after the commit"
    );
    assert!(
        get(&p) == b,
        "a new open after close must see the new content"
    );
    let mut s = Vec::new();
    File::open(&p).unwrap().read_to_end(&mut s).unwrap();
    assert!(s == b);
}

#[test]
fn concurrent_readers_never_see_a_torn_record() {
    let m = Mount::new();
    let p = m.path("spacetime/hot_data/particles/products/torn.json");
    let versions: Arc<Vec<Vec<u8>>> = Arc::new(vec![
        json_record("v0", 48 * 1024),
        json_record("v1", 48 * 1024),
        json_record("v2", 20 * 1024),
    ]);
    put(&p, &versions[0]);
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    // Writer phase, for the failure message: round * 10 + 1 opened (O_TRUNC),
    // 2 written, 3 closed.
    let phase = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (p, versions, done, reads, phase) = (
                p.clone(),
                versions.clone(),
                done.clone(),
                reads.clone(),
                phase.clone(),
            );
            thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    let before = phase.load(Ordering::SeqCst);
                    let mut f = File::open(&p).unwrap();
                    let fstat_len = f.metadata().unwrap().len();
                    let mut got = Vec::new();
                    f.read_to_end(&mut got).unwrap();
                    let after = phase.load(Ordering::SeqCst);
                    if !versions.contains(&got) {
                        return Err(format!(
                            "torn read: {} bytes (fstat said {fstat_len}), starts {:?}; writer phase \
                             {before} at open, {after} after the read (round*10 + 1 opened with \
                             O_TRUNC, 2 all written, 3 closed)",
                            got.len(),
                            String::from_utf8_lossy(&got[..got.len().min(40)])
                        ));
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            })
        })
        .collect();
    const ROUNDS: usize = 300;
    for round in 0..ROUNDS {
        let v = &versions[round % 3];
        let mut f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        phase.store(round * 10 + 1, Ordering::SeqCst);
        for c in v.chunks(3000) {
            f.write_all(c).unwrap();
        }
        phase.store(round * 10 + 2, Ordering::SeqCst);
        close_file(f).unwrap_or_else(|e| panic!("close in round {round}: {e}"));
        phase.store(round * 10 + 3, Ordering::SeqCst);
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        if let Err(e) = r.join().unwrap() {
            panic!("{e}");
        }
    }
    assert!(
        reads.load(Ordering::SeqCst) > 0,
        "the readers never completed a read"
    );
    assert!(get(&p) == versions[(ROUNDS - 1) % 3]);
}

#[test]
fn records_work_in_every_tier_and_through_cat() {
    let m = Mount::new();
    for t in TIERS {
        let ty = format!("spacetime/{t}/particles/users");
        if !m.path(&ty).exists() {
            fs::create_dir(m.path(&ty)).unwrap();
        }
        let rec = json_record(t, 5000);
        put(&m.path(&format!("{ty}/carol.json")), &rec);
        let out = run_cmd(Command::new("cat").arg(m.path(&format!("{ty}/carol.json"))));
        assert!(out.stdout == rec, "{t}: cat shows different bytes");
    }
}

fn shard_count(m: &Mount, tier: &str) -> u64 {
    read_json(&m.path(&format!("spacetime/{tier}/shard.metadata")))["record_count"]
        .as_u64()
        .unwrap_or_else(|| panic!("record_count of {tier}"))
}

#[test]
fn mv_between_tiers_retiers_the_record() {
    let mut m = Mount::new();
    let small = json_record("small", 3000);
    let big = json_record("big", 600_000);
    put(&m.path(&format!("{USERS}/a.json")), &small);
    put(&m.path(&format!("{USERS}/b.json")), &big);
    let (hot0, warm0, cold0) = (
        shard_count(&m, "hot_data"),
        shard_count(&m, "warm_data"),
        shard_count(&m, "cold_data"),
    );
    for t in ["warm_data", "cold_data"] {
        fs::create_dir(m.path(&format!("spacetime/{t}/particles/users"))).unwrap();
    }
    run(
        "mv",
        &[
            &m.ps(&format!("{USERS}/a.json")),
            &m.ps("spacetime/cold_data/particles/users/a.json"),
        ],
    );
    run(
        "mv",
        &[
            &m.ps(&format!("{USERS}/b.json")),
            &m.ps("spacetime/warm_data/particles/users/b.json"),
        ],
    );
    assert!(
        !m.path(&format!("{USERS}/a.json")).exists()
            && !m.path(&format!("{USERS}/b.json")).exists()
    );
    let check = |m: &Mount, when: &str| {
        assert!(
            get(&m.path("spacetime/cold_data/particles/users/a.json")) == small,
            "a.json content in cold_data {when}"
        );
        assert!(
            get(&m.path("spacetime/warm_data/particles/users/b.json")) == big,
            "b.json content in warm_data {when}"
        );
    };
    check(&m, "after mv");
    assert_eq!(
        (
            shard_count(&m, "hot_data"),
            shard_count(&m, "warm_data"),
            shard_count(&m, "cold_data")
        ),
        (hot0 - 2, warm0 + 1, cold0 + 1),
        "shard.metadata record_count of (hot, warm, cold) after moving one record to warm and one to cold"
    );
    m.remount();
    check(&m, "after remount");
    // A clean unmount saved what each tier had in the cache, and the records read
    // together (files of that tier).
    let saved = |t: &str| {
        [
            "event_horizon/cache_state.erl",
            "quantum_indices/entangled_keys.erl",
        ]
        .iter()
        .map(|f| u64::from(m.path(&format!("spacetime/{t}/{f}")).exists()))
        .sum::<u64>()
    };
    assert_eq!(
        (
            shard_count(&m, "hot_data") - saved("hot_data"),
            shard_count(&m, "warm_data") - saved("warm_data"),
            shard_count(&m, "cold_data") - saved("cold_data")
        ),
        (hot0 - 2, warm0 + 1, cold0 + 1),
        "record counts after remount"
    );
    // And back to hot with rename(2) over an existing record.
    put(&m.path(&format!("{USERS}/a.json")), b"{\"old\":true}");
    fs::rename(
        m.path("spacetime/cold_data/particles/users/a.json"),
        m.path(&format!("{USERS}/a.json")),
    )
    .unwrap();
    assert!(
        get(&m.path(&format!("{USERS}/a.json"))) == small,
        "a.json moved back over an existing hot record"
    );
    assert_eq!(
        shard_count(&m, "cold_data") - saved("cold_data"),
        cold0,
        "cold record_count after moving a.json back"
    );
}

#[test]
fn a_truncating_writer_does_not_hide_the_committed_version() {
    let m = Mount::new();
    let p = m.path(&format!("{USERS}/trunc_open.json"));
    let old = json_record("old", 10_000);
    put(&p, &old);
    // Warm the kernel's caches the way a reader would.
    assert!(get(&p) == old);
    assert_eq!(fs::metadata(&p).unwrap().len(), old.len() as u64);
    let mut w = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    let seen = get(&p);
    assert!(
        seen == old,
        "after another process opened with O_TRUNC (nothing written, not closed) a fresh open read {} bytes, not the committed {}",
        seen.len(),
        old.len()
    );
    w.write_all(&json_record("new", 7_000)[..3000]).unwrap();
    let seen = get(&p);
    assert!(
        seen == old,
        "with an uncommitted O_TRUNC + partial write pending, a fresh open read {} bytes, not the committed {}",
        seen.len(),
        old.len()
    );
    w.write_all(&json_record("new", 7_000)[3000..]).unwrap();
    close_file(w).unwrap();
    assert!(
        get(&p) == json_record("new", 7_000),
        "a fresh open after close sees the new version"
    );
    assert_eq!(fs::metadata(&p).unwrap().len(), 7_000);
}

/// A record's file holds its old version, or (for a record never committed) nothing.
#[track_caller]
fn assert_holds(p: &std::path::Path, old: Option<&[u8]>, what: &str) {
    match (fs::read(p), old) {
        (Ok(b), Some(old)) => assert!(
            b == old,
            "{what}: {} holds {:?}, not its previous version {:?}",
            p.display(),
            String::from_utf8_lossy(&b),
            String::from_utf8_lossy(old)
        ),
        (Ok(b), None) => assert!(
            b.is_empty(),
            "{what}: the refused new record {} holds {:?}",
            p.display(),
            String::from_utf8_lossy(&b)
        ),
        (Err(e), None) if errno_of(&e) == libc::ENOENT => {}
        (Err(e), _) => panic!("{what}: reading {}: {e}", p.display()),
    }
}

/// The shell sees the refusal: the write(2) that makes the record impossible fails, so
/// `echo`/`printf` fail (a failed close(2) is ignored by shells).
#[test]
fn invalid_json_from_the_shell_fails_in_the_shell() {
    let m = Mount::new();
    let users = shq(m.path(USERS));
    for (cmd, name) in [
        ("echo '{bad' > x.json", "x.json"),
        ("printf '[1,,' > y.json", "y.json"),
    ] {
        let script = format!("cd {users} && {cmd}");
        // dash reports a failed builtin write as "I/O error"; its exit status tells.
        let o = sh_output(&script);
        assert!(
            !o.status.success(),
            "sh -c \"{cmd}\" in users/ exited 0 (stderr {:?})",
            stderr(&o)
        );
        assert_holds(
            &m.path(&format!("{USERS}/{name}")),
            None,
            &format!("sh: {cmd}"),
        );
        // bash names the errno.
        let o = bash_output(&script);
        assert!(
            !o.status.success() && stderr(&o).contains("Invalid argument"),
            "bash -c \"{cmd}\" in users/: {}, stderr {:?}",
            o.status,
            stderr(&o)
        );
        assert_holds(
            &m.path(&format!("{USERS}/{name}")),
            None,
            &format!("bash: {cmd}"),
        );
    }
    // The shell's next, valid write makes the record.
    sh(&format!("cd {users} && echo '{{\"good\": true}}' > x.json"));
    assert_eq!(
        get(&m.path(&format!("{USERS}/x.json"))),
        b"{\"good\": true}\n"
    );
}

/// `>` truncates at open and the write is refused: the truncation belongs to the same
/// draft, so nothing is committed and the record keeps its old content.
#[test]
fn a_refused_shell_write_keeps_the_old_record() {
    let m = Mount::new();
    let p = m.path(&format!("{USERS}/x.json"));
    let old = b"{\"v\": 1}\n";
    put(&p, old);
    let x = shq(&p);
    for (shell, cmd) in [
        ("sh", format!("echo '{{bad' > {x}")),
        ("bash", format!("echo '{{bad' > {x}")),
        ("sh", format!("printf '[1,,' > {x}")),
    ] {
        let o = output_of(std::process::Command::new(shell).arg("-c").arg(&cmd));
        assert!(
            !o.status.success(),
            "{shell} -c \"{cmd}\" over an existing record exited 0 (stderr {:?})",
            stderr(&o)
        );
        assert_holds(&p, Some(old), &format!("{shell}: {cmd}"));
        assert_eq!(
            stdout(&run("cat", &[&p])).as_bytes(),
            old,
            "`cat` after {shell}: {cmd}"
        );
    }
    sh(&format!("echo '{{\"v\": 2}}' > {x}"));
    assert_eq!(get(&p), b"{\"v\": 2}\n");
}

/// The write(2) that makes the bytes written so far (from offset 0, in order) impossible
/// as the start of a JSON document fails with EINVAL; the writes before it succeed.
#[test]
fn writes_that_cannot_start_json_fail_at_once() {
    let m = Mount::new();
    let old = b"{\"old\": true}";
    // (accepted first write, refused second write)
    let cases: [(&[u8], &[u8]); 8] = [
        (b"", b"{bad"),
        (b"[1,", b","),
        (b"{\"a\": 1, ", b"oops}"),
        (b"{\"a\"", b" 1}"),
        (b"{\"a\":1}", b"}"),
        (b"tru", b"3"),
        (b"[\"x", b"\\q\"]"),
        (b"[0", b"1]"),
    ];
    for (i, (first, second)) in cases.iter().enumerate() {
        let what = format!(
            "case {i}: {:?} then {:?}",
            String::from_utf8_lossy(first),
            String::from_utf8_lossy(second)
        );
        for existing in [false, true] {
            let p = m.path(&format!("{USERS}/c{i}-{existing}.json"));
            if existing {
                put(&p, old);
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&p)
                .unwrap();
            if !first.is_empty() {
                f.write_all(first)
                    .unwrap_or_else(|e| panic!("{what}: the valid start was refused: {e}"));
            }
            expect_errno(
                f.write_all(second),
                &[libc::EINVAL],
                &format!("{what}: write"),
            );
            // Whatever close says, nothing of the draft is committed.
            let _ = close_file(f);
            assert_holds(&p, existing.then_some(&old[..]), &what);
        }
    }
}

/// A valid record in 1-3 byte write(2)s (splitting escapes, numbers, literals and UTF-8
/// sequences) is accepted and reads back exactly; the same record less its last byte
/// passes every write and is refused at close.
#[test]
fn tiny_writes_of_a_record_are_accepted_and_checked_at_close() {
    let m = Mount::new();
    let mut doc =
        String::from("{\"name\": \"naïve café ☃ \\\"q\\\" \\\\ \\/ \\u00e9\\ud83d\\ude00\",\n");
    doc.push_str("  \"items\": [");
    for i in 0..120 {
        if i > 0 {
            doc.push_str(", ");
        }
        doc.push_str(&format!(
            "{{\"i\": {i}, \"x\": -{i}.5e+{}, \"ok\": {}, \"nil\": null, \"s\": \"ü{i}€𝄞\\t\", \"e\": [[], {{}}, 0, -0.0, 1E-7]}}",
            i % 7,
            i % 2 == 0
        ));
    }
    doc.push_str("]\n}\n");
    let doc = doc.into_bytes();
    serde_json::from_slice::<serde_json::Value>(&doc).expect("the test's record is JSON");

    let write_tiny = |p: &std::path::Path, bytes: &[u8]| -> (File, usize) {
        let mut f = File::create(p).unwrap();
        let (mut at, mut writes) = (0, 0);
        while at < bytes.len() {
            let n = (1 + writes % 3).min(bytes.len() - at);
            f.write_all(&bytes[at..at + n]).unwrap_or_else(|e| {
                panic!(
                    "write {writes} ({n} bytes at offset {at}, after {:?}): {e}",
                    String::from_utf8_lossy(&bytes[at.saturating_sub(20)..at])
                )
            });
            at += n;
            writes += 1;
        }
        (f, writes)
    };
    let p = m.path(&format!("{USERS}/tiny.json"));
    let (f, writes) = write_tiny(&p, &doc);
    assert!(writes > 3000, "only {writes} writes");
    close_file(f).expect("close of a valid record written in tiny writes");
    assert!(get(&p) == doc, "the record read back differs");
    run("jq", &["-e", ".items[119].i == 119", p.to_str().unwrap()]);

    let q = m.path(&format!("{USERS}/cut.json"));
    let (f, _) = write_tiny(&q, &doc[..doc.len() - 3]);
    expect_errno(
        close_file(f),
        &[libc::EINVAL],
        "close of a record cut short, written in tiny writes",
    );
    assert_holds(&q, None, "a record cut short");
    // The smallest such case.
    let r = m.path(&format!("{USERS}/open.json"));
    let mut f = File::create(&r).unwrap();
    f.write_all(b"{\"a\": 1")
        .expect("a valid start is accepted");
    expect_errno(close_file(f), &[libc::EINVAL], "close of {\"a\": 1");
    assert_holds(&r, None, "{\"a\": 1");
    put(&r, b"{\"a\": 1}");
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&r)
        .unwrap();
    f.write_all(b"{\"a\": 2").unwrap();
    expect_errno(
        close_file(f),
        &[libc::EINVAL],
        "close of {\"a\": 2 over a record",
    );
    assert_holds(&r, Some(b"{\"a\": 1}"), "{\"a\": 2 over a record");
}

/// A directory does not move into another region by rename(2) (EXDEV: its files would
/// arrive unchecked); `mv` then moves it file by file, each through the commit path, so a
/// tree of valid records arrives whole and its source goes, while non-JSON under a
/// `.json` name is refused and stays where it was.
#[test]
fn mv_of_a_directory_into_a_record_region_moves_it_file_by_file_through_the_commit_path() {
    let m = Mount::new();
    let good = m.path("spacetime/hot_data/event_horizon/good");
    fs::create_dir(&good).unwrap();
    put(&good.join("a.json"), br#"{"a": 1}"#);
    put(&good.join("notes.txt"), b"opaque");
    let o = run("mv", &[good.to_str().unwrap(), &m.ps(USERS)]);
    assert!(o.status.success(), "mv of valid records: {}", stderr(&o));
    assert!(!good.exists(), "the source went");
    let moved = m.path(&format!("{USERS}/good"));
    assert_eq!(get(&moved.join("a.json")), br#"{"a": 1}"#);
    assert_eq!(get(&moved.join("notes.txt")), b"opaque");

    let bad = m.path("spacetime/hot_data/event_horizon/bad");
    fs::create_dir(&bad).unwrap();
    put(&bad.join("x.json"), b"not json at all");
    // mv makes the directory, then moves each file by rename(2), which the records'
    // rule refuses (GNU mv words EINVAL from rename as "a subdirectory of itself").
    let o = output_of(Command::new("mv").arg(&bad).arg(m.path(USERS)));
    assert!(
        !o.status.success() && mv_says_einval(&o),
        "mv of non-JSON under a .json name: {}",
        stderr(&o)
    );
    assert_eq!(
        get(&bad.join("x.json")),
        b"not json at all",
        "the source stays"
    );
    assert!(!m.path(&format!("{USERS}/bad/x.json")).exists());
}
