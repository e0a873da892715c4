//! What a user sees: the root, the seed directories, the generated
//! `_manifest.json` of every directory, `shard.metadata` per tier, and the
//! WAL segments under `backups/cosmic_logs/`.
//!
//! Generated files never get in a tool's way: a data directory (anything below a
//! tier's `particles/` or `quantum_graph/{nodes,edges}/`, and any directory a user
//! makes) lists only what users put there; its manifest is there by name only. The
//! universe's own directories list their generated files.

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
        "qql/queries",
        "qql/results",
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

/// Whether `rel` (a seed directory, or one below the records regions) holds users'
/// data: everything strictly below a tier's `particles/` and below
/// `quantum_graph/nodes/` or `quantum_graph/edges/`.
fn is_data_dir(rel: &str) -> bool {
    let below = |top: &str| {
        rel.strip_prefix(top)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|r| !r.is_empty())
    };
    TIERS
        .iter()
        .any(|t| below(&format!("spacetime/{t}/particles")))
        || below("quantum_graph/nodes")
        || below("quantum_graph/edges")
        || rel == "qql/queries"
}

/// The `region` the manifest of `rel` names (same domain as [`is_data_dir`]).
fn region_of(rel: &str) -> &'static str {
    // A tier's own directories (the tier and its event_horizon) are the spacetime
    // region's, its quantum_indices the entanglement's; particles/ below them the records'.
    let tier = |r: &str| {
        TIERS.iter().any(|t| {
            let dir = format!("spacetime/{t}");
            r == dir || r == format!("{dir}/event_horizon")
        })
    };
    let particles = |r: &str| {
        TIERS
            .iter()
            .any(|t| r == format!("spacetime/{t}/particles"))
    };
    match rel {
        "configuration" => "configuration",
        "backups/cosmic_logs" => "cosmic_logs",
        r if r.starts_with("backups/snapshots") => "backups",
        "spacetime" => "spacetime",
        "temporal" => "temporal",
        r if r.starts_with("temporal/") => "temporal",
        "observatory" => "observatory",
        r if r.starts_with("observatory/") => "observatory",
        "entropy" => "entropy",
        "wormholes" | "wormholes/routing_tables" => "wormholes",
        "quantum_graph" => "graph",
        r if r.starts_with("quantum_graph/") => "graph",
        "qql" => "qql",
        r if r.starts_with("qql/") => "qql",
        r if r.ends_with("/quantum_indices") => "entanglement",
        r if tier(r) => "spacetime",
        r if particles(r) || is_data_dir(r) => "records",
        _ => "universe",
    }
}

/// Checks the `_manifest.json` of a seed directory or of one below the records
/// regions: listed or not as its kind of directory says, region as its path says.
#[track_caller]
fn check_manifest(m: &Mount, rel: &str) -> Value {
    check_manifest_as(m, rel, !is_data_dir(rel), Some(region_of(rel)))
}

/// Checks one `_manifest.json` against the contract; returns it. `listed`: whether
/// readdir shows it (it is always there by name); `region`: the one it must name
/// (`None`: any non-empty string).
#[track_caller]
fn check_manifest_as(m: &Mount, rel: &str, listed: bool, region: Option<&str>) -> Value {
    let dir = m.path(rel);
    assert_eq!(
        names(&dir).iter().any(|n| n == "_manifest.json"),
        listed,
        "{rel}/ {} list _manifest.json: {:?}",
        if listed { "must" } else { "must not" },
        names(&dir)
    );
    let man = dir.join("_manifest.json");
    let md = fs::metadata(&man).unwrap_or_else(|e| panic!("stat {rel}/_manifest.json: {e}"));
    assert!(md.is_file(), "{rel}/_manifest.json is not a file");
    let v = read_json(&man);
    assert_eq!(
        md.len(),
        get(&man).len() as u64,
        "{rel}/_manifest.json: stat size against the bytes read"
    );
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
    let got_region = v["region"].as_str().unwrap_or_default();
    match region {
        Some(want) => assert_eq!(got_region, want, "region in {rel}/_manifest.json: {v}"),
        None => assert!(
            !got_region.is_empty(),
            "region in {rel}/_manifest.json: {v}"
        ),
    }
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

/// `rel/_manifest.json` cannot be created, written, truncated, unlinked, renamed onto
/// or moved away; it stays what it was.
#[track_caller]
fn assert_manifest_read_only(m: &Mount, rel: &str) {
    let man = m.path(&format!("{rel}/_manifest.json"));
    let original = read_json(&man);
    let eacces = [libc::EACCES];
    for (flags, what) in [
        (libc::O_WRONLY, "open O_WRONLY"),
        (libc::O_RDWR, "open O_RDWR"),
        (libc::O_WRONLY | libc::O_TRUNC, "open O_WRONLY|O_TRUNC"),
        (libc::O_WRONLY | libc::O_CREAT, "open O_WRONLY|O_CREAT"),
        (libc::O_WRONLY | libc::O_APPEND, "open O_WRONLY|O_APPEND"),
    ] {
        expect_errno(
            open_raw(&man, flags, 0o644),
            &eacces,
            &format!("{rel}: {what}"),
        );
    }
    expect_errno(
        fs::remove_file(&man),
        &eacces,
        &format!("unlink {rel}/_manifest.json"),
    );
    let src = m.path(&format!("{rel}/src.json"));
    put(&src, b"{\"a\":1}");
    expect_errno(
        fs::rename(&src, &man),
        &eacces,
        &format!("rename onto {rel}/_manifest.json"),
    );
    assert!(src.exists(), "{rel}: the rename source vanished");
    fs::remove_file(&src).unwrap();
    // A manifest can't be moved away either.
    expect_errno(
        fs::rename(&man, m.path(&format!("{rel}/moved.json"))),
        &[libc::EACCES, libc::EPERM],
        &format!("rename {rel}/_manifest.json away"),
    );
    // The shell way.
    let o = sh_output(&format!("echo '{{}}' > {}", shq(&man)));
    assert!(
        !o.status.success(),
        "`echo > {rel}/_manifest.json` succeeded"
    );
    assert!(
        stderr(&o).contains("Permission denied"),
        "{rel}: shell error: {}",
        stderr(&o)
    );
    assert_eq!(
        read_json(&man)["cosmic_location"],
        original["cosmic_location"],
        "{rel}/_manifest.json changed"
    );
}

#[test]
fn manifest_is_read_only() {
    let m = Mount::new();
    fs::create_dir(m.path(&format!("{USERS}/sub"))).unwrap();
    fs::create_dir(m.path("spacetime/hot_data/event_horizon/mine")).unwrap();
    for rel in [
        USERS,
        &format!("{USERS}/sub"),
        "spacetime/hot_data/event_horizon/mine",
        "spacetime/hot_data/event_horizon",
    ] {
        assert_manifest_read_only(&m, rel);
    }
}

/// The generated names a structural directory lists besides its seed entries.
#[test]
fn structural_directories_list_their_generated_files() {
    let m = Mount::new();
    put(&m.path(&format!("{USERS}/w.json")), &json_record("w", 4000));
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<String>>()
    };
    for (rel, want) in [
        ("", set(&ROOT)),
        (
            "spacetime",
            set(&["_manifest.json", "cold_data", "hot_data", "warm_data"]),
        ),
        (
            "spacetime/hot_data/particles",
            set(&["_manifest.json", "orders", "products", "users"]),
        ),
        (
            "quantum_graph/nodes",
            set(&["_manifest.json", "concepts", "organizations", "persons"]),
        ),
        (
            "quantum_graph/edges",
            set(&["_manifest.json", "collaborates_with", "leads", "works_for"]),
        ),
        (
            "temporal/live",
            set(&["_manifest.json", "current_streams.state", "events.jsonl"]),
        ),
        (
            "observatory/metrics",
            set(&["_manifest.json", "alerts.json", "real_time.json"]),
        ),
    ] {
        let mut got: BTreeSet<String> = names(&m.path(rel)).into_iter().collect();
        // A file the observatory appends a row to every sampling period, once one passed.
        got.remove("historical.csv");
        assert_eq!(got, want, "listing of {rel:?}");
    }
    for t in TIERS {
        let got: BTreeSet<String> = names(&m.path(&format!("spacetime/{t}")))
            .into_iter()
            .collect();
        let want = set(&[
            "_manifest.json",
            "event_horizon",
            "particles",
            "quantum_indices",
            "shard.metadata",
        ]);
        assert_eq!(got, want, "listing of spacetime/{t}");
    }
    // configuration/ lists its manifest beside its files (which files: `config::`).
    assert!(
        names(&m.path("configuration")).contains(&"_manifest.json".to_string()),
        "configuration/ does not list _manifest.json: {:?}",
        names(&m.path("configuration"))
    );
    let logs = names(&m.path("backups/cosmic_logs"));
    let (wal, other): (Vec<&String>, Vec<&String>) = logs.iter().partition(|n| n.ends_with(".wal"));
    assert!(
        !wal.is_empty(),
        "backups/cosmic_logs lists no *.wal: {logs:?}"
    );
    assert_eq!(
        other,
        vec!["_manifest.json", "audit_trail.log", "cosmic_events.jsonl"],
        "backups/cosmic_logs lists the manifest, the audit trail, the events and the segments: {logs:?}"
    );
    // `ls -A` agrees with readdir.
    let ls = stdout(&run("ls", &["-A", &m.ps("spacetime/hot_data")]));
    assert_eq!(
        ls.lines().collect::<BTreeSet<&str>>(),
        [
            "_manifest.json",
            "event_horizon",
            "particles",
            "quantum_indices",
            "shard.metadata",
        ]
        .into_iter()
        .collect(),
        "`ls -A spacetime/hot_data`"
    );
}

/// User-made directories in several regions, with what the test puts in each.
const USER_DIRS: [&str; 7] = [
    "spacetime/hot_data/particles/users/sub",
    "spacetime/hot_data/particles/users/sub/deeper",
    "spacetime/cold_data/particles/newtype",
    "quantum_graph/nodes/persons/team",
    "quantum_graph/edges/mentors",
    "spacetime/hot_data/event_horizon/mine",
    "spacetime/warm_data/event_horizon/mine",
];

#[test]
fn data_directories_list_only_what_users_put_there() {
    let m = Mount::new();
    // The seed's data directories start empty, and say so.
    for rel in [
        USERS,
        PRODUCTS,
        ORDERS,
        "quantum_graph/nodes/persons",
        "quantum_graph/edges/leads",
    ] {
        assert_eq!(
            names(&m.path(rel)),
            Vec::<String>::new(),
            "listing of {rel}"
        );
        assert_eq!(stdout(&run("ls", &["-A", &m.ps(rel)])), "", "`ls -A {rel}`");
        check_manifest(&m, rel);
    }
    for rel in USER_DIRS {
        fs::create_dir(m.path(rel)).unwrap_or_else(|e| panic!("mkdir {rel}: {e}"));
    }
    // In a relation's directory a `.json` is an edge, named by the nodes it joins.
    put(&m.path("quantum_graph/nodes/concepts/a.json"), b"{}");
    let record = |rel: &str| {
        if rel.starts_with("quantum_graph/edges/") {
            "a_to_a.json"
        } else {
            "a.json"
        }
    };
    for rel in USER_DIRS {
        put(&m.path(&format!("{rel}/{}", record(rel))), b"{\"a\": 1}\n");
        put(&m.path(&format!("{rel}/b.txt")), b"not json {\n");
        std::os::unix::fs::symlink(record(rel), m.path(&format!("{rel}/c"))).unwrap();
    }
    for rel in USER_DIRS {
        let mut want = vec![record(rel), "b.txt", "c"];
        if rel.ends_with("/sub") {
            want.push("deeper");
        }
        want.sort();
        assert_eq!(names(&m.path(rel)), want, "listing of {rel}");
        let ls = stdout(&run("ls", &["-A", &m.ps(rel)]));
        assert_eq!(ls.lines().collect::<Vec<_>>(), want, "`ls -A {rel}`");
        // Hidden from listings, there by name: stat, cat and jq read it.
        let region = if rel.starts_with("quantum_graph/") {
            Some("graph")
        } else if rel.contains("/particles/") {
            Some("records")
        } else if rel.starts_with("spacetime/") {
            Some("spacetime")
        } else {
            None
        };
        check_manifest_as(&m, rel, false, region);
        let man = m.ps(&format!("{rel}/_manifest.json"));
        let cat: Value = serde_json::from_slice(&run("cat", &[&man]).stdout)
            .unwrap_or_else(|e| panic!("`cat {rel}/_manifest.json` is not JSON: {e}"));
        assert_eq!(
            cat["cosmic_location"],
            format!("{rel}/"),
            "cat {rel}/_manifest.json"
        );
        assert_eq!(
            stdout(&run("jq", &["-r", ".cosmic_location", &man])).trim(),
            format!("{rel}/"),
            "jq .cosmic_location {rel}/_manifest.json"
        );
    }
    // find meets exactly what was put there.
    let found = stdout(&run("find", &[&m.ps(USER_DIRS[0]), "-mindepth", "1"]));
    let mut found: Vec<&str> = found.lines().collect();
    found.sort();
    let base = m.ps(USER_DIRS[0]);
    let want: Vec<String> = [
        "a.json",
        "b.txt",
        "c",
        "deeper",
        "deeper/a.json",
        "deeper/b.txt",
        "deeper/c",
    ]
    .iter()
    .map(|n| format!("{base}/{n}"))
    .collect();
    assert_eq!(found, want, "`find {} -mindepth 1`", USER_DIRS[0]);
}

#[test]
fn user_directories_are_removed_by_rmdir_and_rm_rf() {
    let m = Mount::new();
    for rel in USER_DIRS.iter().filter(|r| !r.ends_with("/deeper")) {
        let dir = m.path(rel);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {rel}: {e}"));
        fs::remove_dir(&dir).unwrap_or_else(|e| panic!("rmdir of the empty {rel}: {e}"));
        assert!(!dir.exists(), "{rel} after rmdir");
        // Again with content, nested, removed with rm -rf.
        fs::create_dir_all(dir.join("x/y")).unwrap();
        // In a relation's directory a `.json` is an edge, named by its ends.
        let record = if rel.starts_with("quantum_graph/edges/") {
            "a.bin"
        } else {
            "a.json"
        };
        put(&dir.join(record), b"{}");
        put(&dir.join("x/y/b.bin"), &pattern(3, 0, 10_000));
        std::os::unix::fs::symlink("../a.json", dir.join("x/l")).unwrap();
        let o = output_of(std::process::Command::new("rm").arg("-rf").arg(&dir));
        assert!(
            o.status.success(),
            "rm -rf {rel}: {}\n{}",
            o.status,
            stderr(&o)
        );
        assert!(!dir.exists(), "{rel} after rm -rf");
    }
    // The seed's own data directories stay (they are part of the universe).
    expect_errno(
        fs::remove_dir(m.path(USERS)),
        &[libc::EACCES, libc::EPERM],
        "rmdir of the seed's users/",
    );
}

#[test]
fn ls_counts_exactly_the_records_of_a_data_directory() {
    const N: usize = 5000;
    let m = Mount::new();
    let rel = "spacetime/warm_data/particles/five_k";
    let dir = m.path(rel);
    fs::create_dir(&dir).unwrap();
    for i in 0..N {
        put(
            &dir.join(format!("r{i}.json")),
            format!("{{\"i\":{i}}}").as_bytes(),
        );
    }
    for cmd in ["ls", "ls -A", "ls -f"] {
        let n = sh(&format!("{cmd} {} | wc -l", shq(&dir)));
        let want = if cmd == "ls -f" { N + 2 } else { N };
        assert_eq!(
            n.trim(),
            want.to_string(),
            "`{cmd} | wc -l` of a data directory with {N} records{}",
            if cmd == "ls -f" {
                " (-f shows . and ..)"
            } else {
                ""
            }
        );
    }
    assert_eq!(names(&dir).len(), N, "readdir of {rel}");
    assert_eq!(
        read_json(&dir.join("_manifest.json"))["record_count"],
        N,
        "record_count in {rel}/_manifest.json"
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
