//! What a user sees: the root, the seed directories, the generated
//! `_manifest.json` in every directory, `shard.metadata` per tier, and the
//! WAL segments under `backups/cosmic_logs/`.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::time::{Duration, Instant};

const ROOT: [&str; 11] = [
    "_manifest.json",
    "backups",
    "configuration",
    "entropy",
    "observatory",
    "quantum_graph",
    "qql",
    "spacetime",
    "temporal",
    "universe.manifest",
    "wormholes",
];

#[test]
fn root_lists_exactly_the_universe() {
    let m = Mount::new();
    let got: BTreeSet<String> = names(m.mnt()).into_iter().collect();
    let want: BTreeSet<String> = ROOT.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want, "root listing");
    for d in ROOT.iter().filter(|n| !n.contains('.')) {
        assert!(m.path(d).is_dir(), "{d} is not a directory");
    }
    assert!(
        m.path("universe.manifest").is_file(),
        "universe.manifest is not a file"
    );
    assert!(
        !get(&m.path("universe.manifest")).is_empty(),
        "universe.manifest is empty"
    );
    // `ls` agrees with readdir.
    let ls = stdout(&run("ls", &["-A", &m.ps("")]));
    let ls: BTreeSet<String> = ls.lines().map(str::to_string).collect();
    assert_eq!(ls, want, "`ls -A` of the root");
}

#[test]
fn seed_directories_exist() {
    let m = Mount::new();
    let mut dirs = vec![];
    for t in TIERS {
        for sub in ["particles", "quantum_indices", "event_horizon"] {
            dirs.push(format!("spacetime/{t}/{sub}"));
        }
    }
    for ty in ["users", "products", "orders"] {
        dirs.push(format!("spacetime/hot_data/particles/{ty}"));
    }
    for d in [
        "temporal/live",
        "temporal/recent",
        "temporal/historical",
        "quantum_graph/nodes",
        "quantum_graph/edges",
        "quantum_graph/dimensions",
        "quantum_graph/entanglements",
        "backups/snapshots",
        "backups/cosmic_logs",
        "observatory/metrics",
        "observatory/logs",
        "observatory/diagnostics",
        "qql/compiled_queries",
        "qql/query_analytics",
        "qql/schema",
        "wormholes/routing_tables",
    ] {
        dirs.push(d.to_string());
    }
    let missing: Vec<&String> = dirs.iter().filter(|d| !m.path(d).is_dir()).collect();
    assert!(missing.is_empty(), "seed directories missing: {missing:?}");
    for t in TIERS {
        assert!(
            m.path(&format!("spacetime/{t}/shard.metadata")).is_file(),
            "spacetime/{t}/shard.metadata"
        );
    }
}

/// Checks one `_manifest.json` against the contract; returns it.
#[track_caller]
fn check_manifest(m: &Mount, rel: &str) -> Value {
    let dir = m.path(rel);
    assert!(
        names(&dir).iter().any(|n| n == "_manifest.json"),
        "{rel}/ does not list _manifest.json"
    );
    let v = read_json(&dir.join("_manifest.json"));
    let want_loc = if rel.is_empty() {
        "/".to_string()
    } else {
        format!("{rel}/")
    };
    assert_eq!(
        v["cosmic_location"],
        Value::String(want_loc),
        "cosmic_location in {rel}/_manifest.json: {v}"
    );
    assert!(
        v["purpose"].is_string(),
        "purpose in {rel}/_manifest.json: {v}"
    );
    assert!(
        v["record_count"].is_u64(),
        "record_count in {rel}/_manifest.json: {v}"
    );
    assert!(
        v["consistency_model"].is_string(),
        "consistency_model in {rel}/_manifest.json: {v}"
    );
    let lo = v["last_observation"]
        .as_str()
        .unwrap_or_else(|| panic!("last_observation in {rel}/_manifest.json: {v}"));
    assert!(
        is_rfc3339(lo),
        "last_observation {lo:?} in {rel}/_manifest.json is not RFC 3339"
    );
    v
}

#[test]
fn every_directory_has_a_valid_manifest() {
    let m = Mount::new();
    let mut todo = vec![String::new()];
    let mut seen = 0;
    while let Some(rel) = todo.pop() {
        seen += 1;
        assert!(
            seen < 5000,
            "more than 5000 directories in a fresh universe?"
        );
        check_manifest(&m, &rel);
        for e in fs::read_dir(m.path(&rel)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                let name = e.file_name().into_string().unwrap();
                todo.push(if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                });
            }
        }
    }
    assert!(seen >= 30, "only {seen} directories in the universe");
    // jq, the way users read it.
    let out = run(
        "jq",
        &[
            "-r",
            ".cosmic_location",
            &m.ps("spacetime/hot_data/particles/users/_manifest.json"),
        ],
    );
    assert_eq!(stdout(&out).trim(), "spacetime/hot_data/particles/users/");
}

#[test]
fn manifest_record_count_counts_entries() {
    let m = Mount::new();
    let parent = "spacetime/hot_data/particles";
    let before = check_manifest(&m, parent)["record_count"].as_u64().unwrap();
    assert_eq!(
        before, 3,
        "a fresh particles/ holds users, products, orders"
    );
    fs::create_dir(m.path(&format!("{parent}/inventory"))).unwrap();
    assert_eq!(
        check_manifest(&m, parent)["record_count"],
        4,
        "after mkdir particles/inventory"
    );

    let ty = format!("{parent}/inventory");
    assert_eq!(check_manifest(&m, &ty)["record_count"], 0, "a new type dir");
    for i in 0..3 {
        put(
            &m.path(&format!("{ty}/item{i}.json")),
            format!("{{\"i\":{i}}}").as_bytes(),
        );
    }
    assert_eq!(
        check_manifest(&m, &ty)["record_count"],
        3,
        "after 3 records"
    );
    fs::remove_file(m.path(&format!("{ty}/item1.json"))).unwrap();
    assert_eq!(
        check_manifest(&m, &ty)["record_count"],
        2,
        "after unlinking one"
    );
}

#[test]
fn manifest_is_read_only() {
    let m = Mount::new();
    let man = m.path(&format!("{USERS}/_manifest.json"));
    let original = get(&man);
    let eacces = [libc::EACCES];
    for (flags, what) in [
        (libc::O_WRONLY, "open O_WRONLY"),
        (libc::O_RDWR, "open O_RDWR"),
        (libc::O_WRONLY | libc::O_TRUNC, "open O_WRONLY|O_TRUNC"),
        (libc::O_WRONLY | libc::O_CREAT, "open O_WRONLY|O_CREAT"),
        (libc::O_WRONLY | libc::O_APPEND, "open O_WRONLY|O_APPEND"),
    ] {
        expect_errno(open_raw(&man, flags, 0o644), &eacces, what);
    }
    expect_errno(fs::remove_file(&man), &eacces, "unlink _manifest.json");
    let src = m.path(&format!("{USERS}/src.json"));
    put(&src, b"{\"a\":1}");
    expect_errno(
        fs::rename(&src, &man),
        &eacces,
        "rename onto _manifest.json",
    );
    assert!(src.exists(), "the rename source vanished");
    // A manifest can't be moved away either, nor created where one is generated.
    expect_errno(
        fs::rename(&man, m.path(&format!("{USERS}/moved.json"))),
        &[libc::EACCES, libc::EPERM],
        "rename _manifest.json away",
    );
    // The shell way.
    let o = output_of(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("echo '{{}}' > '{}'", man.display())),
    );
    assert!(!o.status.success(), "`echo > _manifest.json` succeeded");
    assert!(
        stderr(&o).contains("Permission denied"),
        "shell error: {}",
        stderr(&o)
    );
    let after = read_json(&man);
    assert_eq!(
        after["cosmic_location"],
        serde_json::from_slice::<Value>(&original).unwrap()["cosmic_location"],
        "manifest changed"
    );
}

#[track_caller]
fn shard(m: &Mount, tier: &str) -> Value {
    let v = read_json(&m.path(&format!("spacetime/{tier}/shard.metadata")));
    assert_eq!(v["tier"], tier, "tier in {tier}/shard.metadata: {v}");
    for k in ["record_count", "bytes_stored", "bytes_on_disk"] {
        assert!(
            v[k].is_u64(),
            "{k} in {tier}/shard.metadata is not a non-negative integer: {v}"
        );
    }
    assert!(
        v["compression_ratio"].is_number(),
        "compression_ratio in {tier}/shard.metadata: {v}"
    );
    v
}

fn num(v: &Value, k: &str) -> i64 {
    v[k].as_u64().unwrap() as i64
}

#[test]
fn shard_metadata_counts_records_per_tier() {
    let m = Mount::new();
    for (tier, codec) in [
        ("hot_data", "none"),
        ("warm_data", "zlib"),
        ("cold_data", "lz4"),
    ] {
        let before = shard(&m, tier);
        assert_eq!(before["codec"], codec, "codec of {tier}: {before}");
        let ty = format!("spacetime/{tier}/particles/shardtest");
        fs::create_dir(m.path(&ty)).unwrap();
        for i in 0..3 {
            put(
                &m.path(&format!("{ty}/r{i}.json")),
                &json_record(&format!("r{i}"), 1000),
            );
        }
        std::os::unix::fs::symlink("r0.json", m.path(&format!("{ty}/link"))).unwrap();
        let after = shard(&m, tier);
        assert_eq!(
            num(&after, "record_count") - num(&before, "record_count"),
            3,
            "{tier}: record_count after 3 files, a dir and a symlink: {before} -> {after}"
        );
        assert!(
            num(&after, "bytes_stored") - num(&before, "bytes_stored") >= 3000,
            "{tier}: bytes_stored after writing 3000 bytes: {before} -> {after}"
        );
        fs::remove_file(m.path(&format!("{ty}/r1.json"))).unwrap();
        let after_rm = shard(&m, tier);
        assert_eq!(
            num(&after_rm, "record_count") - num(&before, "record_count"),
            2,
            "{tier}: record_count after unlinking one: {before} -> {after_rm}"
        );
    }
}

#[test]
fn warm_and_cold_tiers_are_stored_compressed() {
    let m = Mount::new();
    // 1 MiB of very compressible JSON per tier.
    let mut body = b"{\"rows\":[".to_vec();
    while body.len() < (1 << 20) {
        body.extend_from_slice(b"{\"name\":\"alice\",\"city\":\"paris\",\"n\":1},");
    }
    body.extend_from_slice(b"{}]}");
    for (tier, compressed) in [
        ("hot_data", false),
        ("warm_data", true),
        ("cold_data", true),
    ] {
        let before = shard(&m, tier);
        let ty = format!("spacetime/{tier}/particles/ztest");
        fs::create_dir(m.path(&ty)).unwrap();
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(m.path(&format!("{ty}/big.json")))
            .unwrap();
        f.write_all(&body).unwrap();
        fsync_file(&f).unwrap();
        close_file(f).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = shard(&m, tier);
            let stored = num(&now, "bytes_stored") - num(&before, "bytes_stored");
            let disk = num(&now, "bytes_on_disk") - num(&before, "bytes_on_disk");
            let ok = stored >= body.len() as i64
                && if compressed {
                    disk * 2 < stored
                } else {
                    disk >= stored
                };
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{tier}: after an fsynced 1 MiB compressible record, bytes_stored grew by {stored} and \
                 bytes_on_disk by {disk} (want {}): {before} -> {now}",
                if compressed {
                    "on disk < half of stored"
                } else {
                    "on disk >= stored, uncompressed"
                }
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            get(&m.path(&format!("{ty}/big.json"))) == body,
            "{tier}: content read back differs"
        );
    }
}

#[test]
fn cosmic_logs_lists_wal_segments_read_only() {
    let m = Mount::new();
    put(&m.path(&format!("{USERS}/w.json")), &json_record("w", 4000));
    let dir = m.path("backups/cosmic_logs");
    let wals: Vec<String> = names(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .collect();
    assert!(
        !wals.is_empty(),
        "backups/cosmic_logs lists no *.wal: {:?}",
        names(&dir)
    );
    let ro = [libc::EACCES, libc::EPERM, libc::EROFS];
    for w in &wals {
        let p = dir.join(w);
        assert!(
            fs::metadata(&p).unwrap().is_file(),
            "{w} is not a regular file"
        );
        let data = fs::read(&p).unwrap_or_else(|e| panic!("reading {w}: {e}"));
        assert_eq!(
            data.len() as u64,
            fs::metadata(&p).unwrap().len(),
            "{w}: size"
        );
        // Header, then whole non-empty frames to the very end: the zero-filled space the
        // daemon keeps after the last record is not part of the segment.
        let mut at = 12;
        while at + 8 <= data.len() {
            let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            assert!(len > 0, "{w}: empty frame at byte {at} of {}", data.len());
            at += 8 + len;
        }
        assert_eq!(at, data.len(), "{w}: does not end at a record boundary");
        expect_errno(
            open_raw(&p, libc::O_WRONLY, 0),
            &ro,
            &format!("open {w} for writing"),
        );
        expect_errno(
            open_raw(&p, libc::O_WRONLY | libc::O_TRUNC, 0),
            &ro,
            &format!("truncate {w}"),
        );
        expect_errno(fs::remove_file(&p), &ro, &format!("unlink {w}"));
    }
    expect_errno(
        open_raw(&dir.join("mine.wal"), libc::O_WRONLY | libc::O_CREAT, 0o644),
        &ro,
        "create in cosmic_logs",
    );
    let after = names(&dir);
    assert!(
        !after.iter().any(|n| n == "mine.wal"),
        "mine.wal appeared in cosmic_logs: {after:?}"
    );
    assert!(
        after.iter().any(|n| n.ends_with(".wal")),
        "no *.wal left after refused unlinks: {after:?}"
    );
}
