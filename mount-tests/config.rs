//! `configuration/`: exactly the two files the daemon obeys. An edit by the tools users
//! use (`sed -i`, `vim -es`, `jq … > tmp && mv tmp …`) takes effect at once when it is
//! valid; an invalid one fails in the tool with EINVAL and changes nothing: not the
//! file, not what runs, and not after a remount either.

use crate::common::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Output;

const CONF: &str = "configuration";
const TOPOLOGY: &str = "shard_topology.json";
const PARAMS: &str = "universe_parameters.json";
const POLICIES: &str = "temporal_policies.json";
const OBSERVATORY: &str = "observatory.json";
const TIERING: &str = "tiering_policy.json";
const MIB: u64 = 1 << 20;

/// What a fresh universe starts with (serde_json's pretty printing).
const TOPOLOGY_DEFAULT: &str = r#"{
  "hot_data": {
    "durability_window_ms": 0
  },
  "warm_data": {
    "durability_window_ms": 100
  },
  "cold_data": {
    "durability_window_ms": 1000
  }
}"#;
const POLICIES_DEFAULT: &str = r#"{
  "maintenance_interval_secs": 30,
  "live_window_hours": 1,
  "recent_window_hours": 24,
  "historical_retention_months": 12,
  "block_kib": 256
}"#;
const PARAMS_DEFAULT: &str = r#"{
  "cache_budget_mb": 256,
  "checkpoint_interval_secs": 60,
  "checkpoint_log_mb": 128,
  "log_segment_mb": 64
}"#;

fn conf(m: &Mount, name: &str) -> PathBuf {
    m.path(&format!("{CONF}/{name}"))
}

/// `jq -r FILTER configuration/NAME`, trimmed.
#[track_caller]
fn jq(m: &Mount, filter: &str, name: &str) -> String {
    let p = conf(m, name);
    stdout(&run("jq", &["-r", filter, p.to_str().unwrap()]))
        .trim()
        .to_string()
}

/// A counter of the engine, as `universe.manifest` shows it.
#[track_caller]
fn engine(m: &Mount, key: &str) -> u64 {
    let v = read_json(&m.path("universe.manifest"));
    v["engine"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("engine.{key} in universe.manifest: {}", v["engine"]))
}

#[track_caller]
fn window(m: &Mount, tier: &str) -> u64 {
    let v = read_json(&m.path(&format!("spacetime/{tier}/shard.metadata")));
    v["durability_window_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("durability_window_ms in {tier}/shard.metadata: {v}"))
}

/// What runs, as the daemon shows it: the cache budget and the tiers' windows.
#[derive(Debug, PartialEq)]
struct Running {
    cache_budget: u64,
    windows: Vec<u64>,
}

#[track_caller]
fn running(m: &Mount) -> Running {
    Running {
        cache_budget: engine(m, "cache_budget"),
        windows: TIERS.iter().map(|t| window(m, t)).collect(),
    }
}

/// The bytes of both files.
#[track_caller]
fn files(m: &Mount) -> [Vec<u8>; 2] {
    [get(&conf(m, TOPOLOGY)), get(&conf(m, PARAMS))]
}

/// The log segments `backups/cosmic_logs/` lists, with their sizes, oldest first.
#[track_caller]
fn wal_segments(m: &Mount) -> Vec<(String, u64)> {
    let dir = m.path("backups/cosmic_logs");
    names(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .map(|n| {
            let len = fs::metadata(dir.join(&n)).unwrap().len();
            (n, len)
        })
        .collect()
}

/// `sed -i EXPR configuration/NAME`.
fn sed_i(m: &Mount, expr: &str, name: &str) -> Output {
    output_of(
        std::process::Command::new("sed")
            .current_dir(m.path(CONF))
            .args(["-i", expr, name]),
    )
}

/// `vim -es` running `cmd`, then `wq` (and `cq`, to exit non-zero when `wq` failed).
fn vim_edit(m: &Mount, cmd: &str, name: &str) -> Output {
    vim(&m.path(CONF), &m.scratch(), &[cmd, "wq", "cq"], name)
}

#[track_caller]
fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}\n{}{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

#[test]
fn configuration_holds_exactly_the_files_the_daemon_obeys() {
    let m = Mount::new();
    assert_eq!(
        names(&m.path(CONF)),
        [
            "_manifest.json",
            "backup_policy.json",
            "entanglement_rules.json",
            OBSERVATORY,
            TOPOLOGY,
            POLICIES,
            TIERING,
            PARAMS
        ],
        "configuration/ lists its manifest and the files the daemon obeys"
    );
    for (name, want) in [
        (TOPOLOGY, TOPOLOGY_DEFAULT),
        (PARAMS, PARAMS_DEFAULT),
        (POLICIES, POLICIES_DEFAULT),
    ] {
        let got = String::from_utf8(get(&conf(&m, name))).unwrap();
        assert_eq!(
            got.trim_end(),
            want,
            "configuration/{name} of a fresh universe"
        );
    }
    assert_eq!(
        running(&m),
        Running {
            cache_budget: 256 * MIB,
            windows: vec![0, 100, 1000]
        },
        "what runs with the default configuration"
    );
}

#[test]
fn cache_mb_on_the_command_line_is_written_into_the_file() {
    let mut m = Mount::with_args(&["--cache-mb", "64"]);
    assert_eq!(
        jq(&m, ".cache_budget_mb", PARAMS),
        "64",
        "the file after --cache-mb 64"
    );
    assert_eq!(engine(&m, "cache_budget"), 64 * MIB);
    // The file tells what runs: an edit changes it, the next --cache-mb writes it again.
    let o = sed_i(
        &m,
        r#"s/"cache_budget_mb": 64/"cache_budget_mb": 32/"#,
        PARAMS,
    );
    assert_ok(&o, "sed -i cache_budget_mb 64 -> 32");
    assert_eq!(jq(&m, ".cache_budget_mb", PARAMS), "32");
    assert_eq!(engine(&m, "cache_budget"), 32 * MIB, "after the edit");
    m.remount();
    assert_eq!(
        jq(&m, ".cache_budget_mb", PARAMS),
        "64",
        "after a remount with --cache-mb 64"
    );
    assert_eq!(
        engine(&m, "cache_budget"),
        64 * MIB,
        "after a remount with --cache-mb 64"
    );
}

#[test]
fn sed_i_lowers_the_cache_budget_at_once() {
    let mut m = Mount::new();
    let dir = m.path("spacetime/warm_data/particles/cached");
    fs::create_dir(&dir).unwrap();
    for i in 0..40 {
        put(
            &dir.join(format!("r{i}.json")),
            &json_record(&format!("r{i}"), 128 << 10),
        );
    }
    let read_all = || {
        for i in 0..40 {
            get(&dir.join(format!("r{i}.json")));
        }
    };
    read_all();
    let filled = engine(&m, "cache_bytes");
    assert!(
        filled > 2 * MIB,
        "cache_bytes after reading 5 MiB of records: {filled}"
    );
    let names_before = names(&m.path(CONF));

    let o = sed_i(
        &m,
        r#"s/"cache_budget_mb": 256/"cache_budget_mb": 1/"#,
        PARAMS,
    );
    assert_ok(&o, "sed -i cache_budget_mb 256 -> 1");
    assert_eq!(jq(&m, ".cache_budget_mb", PARAMS), "1");
    assert_eq!(
        names(&m.path(CONF)),
        names_before,
        "sed -i left files behind"
    );
    assert_eq!(
        engine(&m, "cache_budget"),
        MIB,
        "cache_budget right after the edit"
    );
    let now = engine(&m, "cache_bytes");
    assert!(
        now <= MIB,
        "cache_bytes right after lowering the budget to 1 MiB: {now} (was {filled})"
    );
    read_all();
    let now = engine(&m, "cache_bytes");
    assert!(
        now <= MIB,
        "cache_bytes after reading 5 MiB again under a 1 MiB budget: {now}"
    );
    m.remount();
    assert_eq!(jq(&m, ".cache_budget_mb", PARAMS), "1", "after a remount");
    assert_eq!(
        engine(&m, "cache_budget"),
        MIB,
        "cache_budget after a remount"
    );
}

#[test]
fn vim_changes_a_durability_window_at_once() {
    let mut m = Mount::new();
    let names_before = names(&m.path(CONF));
    // `\>`: the warm window (100), not the cold one (1000).
    let o = vim_edit(
        &m,
        r#"%s/"durability_window_ms": 100\>/"durability_window_ms": 250/"#,
        TOPOLOGY,
    );
    assert_ok(&o, "vim -es: warm durability_window_ms 100 -> 250");
    assert_eq!(jq(&m, ".warm_data.durability_window_ms", TOPOLOGY), "250");
    assert_eq!(names(&m.path(CONF)), names_before, "vim left files behind");
    let want = Running {
        cache_budget: 256 * MIB,
        windows: vec![0, 250, 1000],
    };
    assert_eq!(running(&m), want, "right after the edit");
    m.remount();
    assert_eq!(running(&m), want, "after a remount");
}

#[test]
fn jq_and_mv_within_configuration_set_the_log_segment_size() {
    let mut m = Mount::new();
    let names_before = names(&m.path(CONF));
    let c = shq(m.path(CONF));
    sh(&format!(
        "cd {c} && jq '.log_segment_mb = 1' {PARAMS} > {PARAMS}.tmp && mv {PARAMS}.tmp {PARAMS}"
    ));
    assert_eq!(jq(&m, ".log_segment_mb", PARAMS), "1");
    assert_eq!(names(&m.path(CONF)), names_before);

    // Records up to 256 KiB are logged whole: 5 MiB of them crosses several 1 MiB segments.
    const RECORD: u64 = 100 << 10;
    let write_5mib = |m: &Mount, ty: &str| {
        let dir = m.path(&format!("spacetime/warm_data/particles/{ty}"));
        fs::create_dir(&dir).unwrap();
        for i in 0..50 {
            put(
                &dir.join(format!("r{i}.json")),
                &json_record(&format!("{ty}{i}"), RECORD as usize),
            );
        }
    };
    let check = |m: &Mount, ty: &str, when: &str| {
        let before: BTreeSet<String> = wal_segments(m).into_iter().map(|(n, _)| n).collect();
        write_5mib(m, ty);
        let after = wal_segments(m);
        let new = after.iter().filter(|(n, _)| !before.contains(n)).count();
        assert!(
            new >= 3,
            "{when}: writing 5 MiB with log_segment_mb 1 started {new} new segments: {before:?} -> {after:?}"
        );
        // Every segment but the active (last) one is sealed near 1 MiB.
        for (n, len) in &after[..after.len() - 1] {
            assert!(
                *len <= MIB + RECORD + 4096,
                "{when}: sealed segment {n} holds {len} bytes with log_segment_mb 1: {after:?}"
            );
        }
    };
    check(&m, "segs", "right after the edit");
    m.remount();
    assert_eq!(jq(&m, ".log_segment_mb", PARAMS), "1", "after a remount");
    check(&m, "segs2", "after a remount");
}

#[test]
fn jq_and_mv_from_native_disk_apply_at_once() {
    let mut m = Mount::new();
    let names_before = names(&m.path(CONF));
    let tmp = m.scratch().join("edit.json");
    for (filter, name) in [
        (".cold_data.durability_window_ms = 2000", TOPOLOGY),
        (".cache_budget_mb = 8", PARAMS),
    ] {
        sh(&format!(
            "jq '{filter}' {} > {} && mv {} {}",
            shq(conf(&m, name)),
            shq(&tmp),
            shq(&tmp),
            shq(conf(&m, name))
        ));
    }
    assert_eq!(jq(&m, ".cold_data.durability_window_ms", TOPOLOGY), "2000");
    assert_eq!(jq(&m, ".cache_budget_mb", PARAMS), "8");
    assert_eq!(names(&m.path(CONF)), names_before);
    let want = Running {
        cache_budget: 8 * MIB,
        windows: vec![0, 100, 2000],
    };
    assert_eq!(running(&m), want, "right after the edits");
    m.remount();
    assert_eq!(running(&m), want, "after a remount");
}

/// One invalid edit of a default file, as each tool makes it.
struct Bad {
    file: &'static str,
    what: &'static str,
    /// A substitution that sed (BRE) and vim read alike.
    subst: &'static str,
    /// The same mistake as a jq filter; `None`: broken JSON (the file cut short).
    jq: Option<&'static str>,
}

const BAD: [Bad; 12] = [
    Bad {
        file: PARAMS,
        what: "cache_budget_mb 0 (out of range)",
        subst: r#"s/"cache_budget_mb": 256/"cache_budget_mb": 0/"#,
        jq: Some(".cache_budget_mb = 0"),
    },
    Bad {
        file: PARAMS,
        what: "checkpoint_interval_secs 86401 (out of range)",
        subst: r#"s/"checkpoint_interval_secs": 60/"checkpoint_interval_secs": 86401/"#,
        jq: Some(".checkpoint_interval_secs = 86401"),
    },
    Bad {
        file: PARAMS,
        what: "log_segment_mb 4097 (out of range)",
        subst: r#"s/"log_segment_mb": 64/"log_segment_mb": 4097/"#,
        jq: Some(".log_segment_mb = 4097"),
    },
    Bad {
        file: PARAMS,
        what: "log_segment_mb a string (wrong type)",
        subst: r#"s/"log_segment_mb": 64/"log_segment_mb": "64"/"#,
        jq: Some(r#".log_segment_mb = "64""#),
    },
    Bad {
        file: PARAMS,
        what: "an unknown key",
        subst: r#"s/"cache_budget_mb"/"cache_mb": 1, "cache_budget_mb"/"#,
        jq: Some(".cache_mb = 1"),
    },
    Bad {
        file: PARAMS,
        what: "broken JSON (a trailing comma)",
        subst: r#"s/"log_segment_mb": 64/"log_segment_mb": 64,/"#,
        jq: None,
    },
    Bad {
        file: TOPOLOGY,
        what: "cold durability_window_ms 60001 (out of range)",
        subst: r#"s/"durability_window_ms": 1000/"durability_window_ms": 60001/"#,
        jq: Some(".cold_data.durability_window_ms = 60001"),
    },
    Bad {
        file: TOPOLOGY,
        what: "hot durability_window_ms -1 (out of range)",
        subst: r#"s/"durability_window_ms": 0/"durability_window_ms": -1/"#,
        jq: Some(".hot_data.durability_window_ms = -1"),
    },
    Bad {
        file: TOPOLOGY,
        what: "warm durability_window_ms a string (wrong type)",
        subst: r#"s/"durability_window_ms": 100\>/"durability_window_ms": "100"/"#,
        jq: Some(r#".warm_data.durability_window_ms = "100""#),
    },
    Bad {
        file: TOPOLOGY,
        what: "an unknown key in a tier",
        subst: r#"s/"warm_data": {/"warm_data": {"compression": "zstd", /"#,
        jq: Some(r#".warm_data.compression = "zstd""#),
    },
    Bad {
        file: TOPOLOGY,
        what: "an unknown tier",
        subst: r#"s/"hot_data": {/"lukewarm_data": {"durability_window_ms": 5}, "hot_data": {/"#,
        jq: Some(r#".lukewarm_data = {"durability_window_ms": 5}"#),
    },
    Bad {
        file: TOPOLOGY,
        what: "broken JSON (an unquoted key)",
        subst: r#"s/"cold_data"/cold_data/"#,
        jq: None,
    },
];

/// The substitution changes a copy of the file on native disk (so a tool's success
/// below cannot come from a pattern that matched nothing).
#[track_caller]
fn assert_subst_applies(m: &Mount, bad: &Bad) {
    let copy = m.scratch().join(bad.file);
    fs::write(&copy, get(&conf(m, bad.file))).unwrap();
    run("sed", &["-i", bad.subst, copy.to_str().unwrap()]);
    assert!(
        fs::read(&copy).unwrap() != get(&conf(m, bad.file)),
        "test bug: {:?} does not change {}",
        bad.subst,
        bad.file
    );
}

/// Runs `edit` for every invalid edit: each must be refused (`refused` checks the tool's
/// output) and change neither the files nor what runs, now or after a remount.
#[track_caller]
fn assert_invalid_edits_change_nothing(
    tool: &str,
    edit: impl Fn(&Mount, &Bad) -> Output,
    refused: impl Fn(&Output) -> bool,
) {
    let mut m = Mount::new();
    let (bytes, run_before) = (files(&m), running(&m));
    for bad in &BAD {
        assert_subst_applies(&m, bad);
        let o = edit(&m, bad);
        assert!(
            refused(&o),
            "{tool}: {} in {}: not refused as EINVAL ({}):\n{}{}",
            bad.what,
            bad.file,
            o.status,
            stdout(&o),
            stderr(&o)
        );
        assert!(
            files(&m) == bytes,
            "{tool}: {} in {}: the configuration changed to:\n{}",
            bad.what,
            bad.file,
            String::from_utf8_lossy(&get(&conf(&m, bad.file)))
        );
        assert_eq!(
            running(&m),
            run_before,
            "{tool}: {} in {}: what runs changed",
            bad.what,
            bad.file
        );
    }
    m.remount();
    assert!(
        files(&m) == bytes,
        "{tool}: the configuration after a remount"
    );
    assert_eq!(running(&m), run_before, "{tool}: what runs after a remount");
}

#[test]
fn invalid_edits_by_sed_i_change_nothing() {
    assert_invalid_edits_change_nothing(
        "sed -i",
        |m, bad| sed_i(m, bad.subst, bad.file),
        |o| !o.status.success() && stderr(o).contains("Invalid argument"),
    );
}

#[test]
fn invalid_edits_by_vim_change_nothing() {
    assert_invalid_edits_change_nothing(
        "vim -es",
        |m, bad| vim_edit(m, &format!("%{}", bad.subst), bad.file),
        |o| !o.status.success(),
    );
}

/// `jq FILTER file > tmp && mv tmp file` (a broken file: `head -c -2`), with `tmp` in
/// configuration/ (mv renames) or on native disk (mv copies).
fn jq_mv(m: &Mount, bad: &Bad, tmp: &std::path::Path) -> Output {
    let file = shq(conf(m, bad.file));
    let make = match bad.jq {
        Some(filter) => format!("jq '{filter}' {file}"),
        None => format!("head -c -2 {file}"),
    };
    let o = sh_output(&format!("{make} > {t} && mv {t} {file}", t = shq(tmp)));
    let _ = fs::remove_file(tmp);
    o
}

#[test]
fn invalid_edits_by_jq_and_mv_change_nothing() {
    assert_invalid_edits_change_nothing(
        "jq > configuration/tmp && mv",
        |m, bad| jq_mv(m, bad, &conf(m, &format!("{}.tmp", bad.file))),
        mv_says_einval,
    );
    assert_invalid_edits_change_nothing(
        "jq > native tmp && mv",
        |m, bad| jq_mv(m, bad, &m.scratch().join("edit.json")),
        mv_says_einval,
    );
}

#[test]
fn an_unknown_configuration_file_is_refused() {
    let m = Mount::new();
    let before = names(&m.path(CONF));
    let c = shq(m.path(CONF));
    let o = sh_output(&format!("cd {c} && echo '{{}}' > whatever.json"));
    assert!(
        !o.status.success(),
        "sh: echo '{{}}' > configuration/whatever.json exited 0 (stderr {:?})",
        stderr(&o)
    );
    let o = bash_output(&format!("cd {c} && echo '{{}}' > whatever.json"));
    assert!(
        !o.status.success() && stderr(&o).contains("Invalid argument"),
        "bash: echo '{{}}' > configuration/whatever.json: {}, stderr {:?}",
        o.status,
        stderr(&o)
    );
    assert_eq!(
        names(&m.path(CONF)),
        before,
        "configuration/ after the refusals"
    );
}
