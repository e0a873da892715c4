//! `observatory/`: the daemon's own figures as files, measured from what it serves.

use crate::common::*;
use serde_json::Value;
use std::fs;
use std::time::{Duration, Instant};

const REAL_TIME: &str = "observatory/metrics/real_time.json";
const SETTINGS: &str = "configuration/observatory.json";

fn settings(m: &Mount, changes: Value) {
    edit_json(&m.path(SETTINGS), changes);
}

/// Waits until `pred` holds of the JSON at `rel` (up to 10 s); returns it.
fn wait_for(m: &Mount, rel: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_json(&m.path(rel), 10, what, pred)
}

#[test]
fn real_time_counts_what_was_done_and_stat_agrees_with_cat() {
    let m = Mount::new();
    let users = m.path("spacetime/hot_data/particles/users");
    for i in 0..50 {
        put(
            &users.join(format!("u{i}.json")),
            format!("{{\"i\":{i}}}").as_bytes(),
        );
    }
    let before = read_json(&m.path(REAL_TIME));
    for _ in 0..3 {
        for i in 0..50 {
            get(&users.join(format!("u{i}.json")));
        }
    }
    // A rendering stays for a second (so that stat and read agree): read a new one.
    std::thread::sleep(Duration::from_millis(1100));
    let after = read_json(&m.path(REAL_TIME));
    let count = |v: &Value, op: &str| v["operations"][op]["count"].as_u64().unwrap();
    assert!(
        count(&after, "read") >= count(&before, "read") + 150,
        "{after}"
    );
    assert!(count(&before, "commit") >= 50, "{before}");
    assert!(after["operations"]["read"]["p99_us"].as_f64().unwrap() > 0.0);
    assert!(after["cache"]["hits"].as_u64().unwrap() > 0, "{after}");
    assert!(after["process"]["rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(
        after["log"]["fsyncs"].as_u64().unwrap() > 0,
        "hot commits fsync"
    );
    assert!(after["tiers"]["hot_data"]["records"].as_u64().unwrap() >= 50);
    // A refused commit shows with why.
    let _ = write_file(&users.join("bad.json"), b"{oops");
    std::thread::sleep(Duration::from_millis(1100));
    let refused = read_json(&m.path(REAL_TIME));
    let why = refused["commits"]["last_refused"][0]["why"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("bad.json"), "{refused}");
    // What stat says is what cat reads, while the figures move.
    for _ in 0..20 {
        let size = fs::metadata(m.path(REAL_TIME)).unwrap().len();
        let got = get(&m.path(REAL_TIME));
        get(&users.join("u1.json"));
        assert_eq!(got.len() as u64, size, "stat and read of real_time.json");
        serde_json::from_slice::<Value>(&got).expect("JSON");
    }
    for rel in [
        "observatory/metrics/alerts.json",
        "observatory/diagnostics/health_check.json",
    ] {
        read_json(&m.path(rel));
    }
    let health = read_json(&m.path("observatory/diagnostics/health_check.json"));
    assert_eq!(health["status"], "ok", "{health}");
    let profile = get(&m.path("observatory/diagnostics/performance_profile.erl"));
    assert_eq!(&profile[..8], b"ISLPROF1");
    // The same, summed up for a person from the shell.
    let o = output_of(std::process::Command::new(bin()).arg("status").arg(m.mnt()));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for line in [
        "universe at",
        ": ok",
        "read ",
        "cache:",
        "log:",
        "hot_data:",
        "balance:",
        "entanglement:",
        "daemon:",
    ] {
        assert!(
            text.contains(line),
            "`islabdb status` lacks {line:?}:\n{text}"
        );
    }
}

#[test]
fn history_is_sampled_on_its_period_and_survives_a_restart() {
    let mut m = Mount::new();
    settings(&m, serde_json::json!({ "sample_interval_secs": 1 }));
    let csv = m.path("observatory/metrics/historical.csv");
    let rows = |m: &Mount| -> Vec<String> {
        fs::read_to_string(m.path("observatory/metrics/historical.csv"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&m).len() < 4 {
        assert!(Instant::now() < deadline, "rows: {:?}", rows(&m));
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = rows(&m);
    assert!(r[0].starts_with("timestamp,ops_per_sec,"), "{}", r[0]);
    let width = r[0].split(',').count();
    for row in &r[1..] {
        assert_eq!(row.split(',').count(), width, "{row}");
    }
    // Python's csv module reads it as a table.
    let o = run(
        "python3",
        &[
            "-c",
            "import csv,sys; rows=list(csv.DictReader(open(sys.argv[1]))); assert rows and float(rows[-1]['ops_per_sec']) >= 0; print(len(rows))",
            &csv.to_string_lossy(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let n = r.len();
    m.remount();
    std::thread::sleep(Duration::from_millis(2500));
    let again = rows(&m);
    assert!(
        again.len() > n,
        "kept and appended after a restart: {} then {}",
        n,
        again.len()
    );
    assert_eq!(again[..n], r[..], "the rows before the restart stay");
    // Bounded: with room for 10 rows it keeps at most 11 (a tenth past, then trimmed).
    settings(&m, serde_json::json!({ "history_rows": 10 }));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(rows(&m).len() <= 1 + 11, "{}", rows(&m).len());
}

#[test]
fn an_alert_is_raised_past_its_threshold_and_cleared_after() {
    let m = Mount::new();
    settings(
        &m,
        serde_json::json!({ "sample_interval_secs": 1, "alerts": { "commit_p99_ms_above": 0.000001 } }),
    );
    let users = m.path("spacetime/hot_data/particles/users");
    let raised = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            put(&users.join("a.json"), b"{}");
            let v = read_json(&m.path("observatory/metrics/alerts.json"));
            if v["active"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["alert"] == "commit_p99_high")
            {
                break v;
            }
            assert!(Instant::now() < deadline, "not raised: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(raised["active"][0]["since"].is_string(), "{raised}");
    assert!(m.log().contains("alert commit_p99_high"), "logged");
    settings(
        &m,
        serde_json::json!({ "alerts": { "commit_p99_ms_above": 100000.0 } }),
    );
    wait_for(&m, "observatory/metrics/alerts.json", "cleared", |v| {
        v["active"].as_array().unwrap().is_empty()
            && v["recently_cleared"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["alert"] == "commit_p99_high")
    });
    expect_errno(
        write_file(&m.path(SETTINGS), b"{\"sample_interval_secs\": 0}"),
        &[libc::EINVAL],
        "an invalid edit",
    );
}

#[test]
fn the_daemons_log_is_served_as_files_and_tail_f_follows_it() {
    let m = Mount::new();
    let main = m.path("observatory/logs/quantum_db.log");
    let text = String::from_utf8(get(&main)).unwrap();
    assert!(text.contains("mounted on"), "{text}");
    assert_eq!(fs::metadata(&main).unwrap().len(), get(&main).len() as u64);
    let mut tail = std::process::Command::new("tail")
        .args(["-n", "0", "-f", "-s", "0.2"])
        .arg(&main)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let users = m.path("spacetime/hot_data/particles/users");
    let _ = write_file(&users.join("broken.json"), b"{nope");
    let problems = String::from_utf8(get(
        &m.path("observatory/logs/error_gravitational_waves.log")
    ))
    .unwrap();
    assert!(problems.contains("broken.json"), "{problems}");
    assert!(
        !problems.contains(" INFO "),
        "warnings and errors only: {problems}"
    );
    // Maintenance lines go to the physics log.
    let later = chrono::Utc::now() - chrono::Duration::days(3);
    let line = format!(
        "{{\"timestamp\":\"{}\"}}\n",
        later.format("%Y-%m-%dT%H:%M:%SZ")
    );
    write_file(&m.path("temporal/live/events.jsonl"), line.as_bytes()).unwrap();
    fs::write(m.path("temporal/maintain"), b"run\n").unwrap();
    let physics = String::from_utf8(get(&m.path("observatory/logs/physics_engine.log"))).unwrap();
    assert!(physics.contains("merged 1 late events"), "{physics}");
    std::thread::sleep(Duration::from_millis(800));
    let _ = tail.kill();
    let out = tail.wait_with_output().unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains("broken.json"), "tail -f saw: {seen}");
}

/// The dashboard as a person sees it: drawn by `rsvg-convert` (what a browser would),
/// it is a picture, not a blank page, and the picture changes under load.
#[test]
fn the_dashboard_draws_the_last_hour_and_changes_under_load() {
    let m = Mount::new();
    settings(&m, serde_json::json!({ "sample_interval_secs": 1 }));
    let svg = m.path("observatory/dashboard.svg");
    let draw = |name: &str| -> Vec<u8> {
        let png = m.scratch().join(name);
        let o = run(
            "rsvg-convert",
            &[
                "-w",
                "800",
                "-o",
                &png.to_string_lossy(),
                &svg.to_string_lossy(),
            ],
        );
        assert!(o.status.success(), "rsvg-convert: {}", stderr(&o));
        let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(&png).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        buf
    };
    let quiet = draw("quiet.png");
    let users = m.path("spacetime/hot_data/particles/users");
    let until = Instant::now() + Duration::from_secs(4);
    let mut i = 0;
    while Instant::now() < until {
        put(
            &users.join(format!("l{}.json", i % 200)),
            format!("{{\"i\":{i}}}").as_bytes(),
        );
        get(&users.join(format!("l{}.json", i % 200)));
        i += 1;
    }
    std::thread::sleep(Duration::from_millis(1100));
    let busy = draw("busy.png");
    let text = String::from_utf8(get(&svg)).unwrap();
    assert!(
        text.contains("<svg") && text.contains("viewBox"),
        "{}",
        &text[..200.min(text.len())]
    );
    let colors: std::collections::BTreeSet<&[u8]> = busy.chunks(4).collect();
    assert!(
        colors.len() > 50,
        "{} colors: a blank picture?",
        colors.len()
    );
    assert_eq!(quiet.len(), busy.len());
    let differ = quiet
        .chunks(4)
        .zip(busy.chunks(4))
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        differ * 100 > busy.len() / 4,
        "{differ} pixels of {} changed under load",
        busy.len() / 4
    );
}

/// A smaller cache budget, written into the configuration, shows in `real_time.json` at
/// once, and the cache holds no more than it.
#[test]
fn a_smaller_cache_budget_shows_and_the_cache_stays_within_it() {
    let m = Mount::new();
    let users = m.path("spacetime/hot_data/particles/users");
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(64 << 10));
    for i in 0..64 {
        put(&users.join(format!("big{i}.json")), body.as_bytes());
        get(&users.join(format!("big{i}.json")));
    }
    std::thread::sleep(Duration::from_millis(1100));
    let before = read_json(&m.path(REAL_TIME));
    assert!(
        before["cache"]["bytes"].as_u64().unwrap() > 2 << 20,
        "{before}"
    );
    let params = m.path("configuration/universe_parameters.json");
    let mut p = read_json(&params);
    p["cache_budget_mb"] = 1.into();
    write_file(&params, p.to_string().as_bytes()).expect("a valid edit");
    for i in 0..64 {
        get(&users.join(format!("big{i}.json")));
    }
    std::thread::sleep(Duration::from_millis(1100));
    let after = read_json(&m.path(REAL_TIME));
    assert_eq!(after["cache"]["budget"], 1 << 20, "{after}");
    assert!(
        after["cache"]["bytes"].as_u64().unwrap() <= 1 << 20,
        "{after}"
    );
    assert!(after["cache"]["evictions"].as_u64().unwrap() > 0, "{after}");
}

/// The cache budget is the daemon's memory budget: once the cache is full, what the rest
/// of the daemon holds is taken from the cache's share, so its resident memory stays near
/// the budget (without this the daemon held 95 MiB at `--cache-mb 64` here, the budget
/// plus the rest).
#[test]
fn the_daemon_stays_within_its_memory_budget() {
    const BUDGET: u64 = 64 << 20;
    let m = Mount::with_args(&["--cache-mb", "64"]);
    let src = tempfile::NamedTempFile::new().unwrap();
    let mut body = Vec::with_capacity(256 << 20);
    for n in 0..256u64 {
        body.extend(pattern(0x6d656d, n << 20, 1 << 20));
    }
    fs::write(src.path(), &body).unwrap();
    let dest = m.path("spacetime/warm_data/particles/big.bin");
    run("cp", &[src.path(), dest.as_path()]);
    let out = run("cat", &[&dest]);
    assert!(out.stdout == body, "cat read back other bytes");
    // The figures settle within a second of the reads (the limit is refitted ten times a
    // second, freed pages go back to the system within one).
    std::thread::sleep(Duration::from_millis(2500));
    let v = read_json(&m.path(REAL_TIME));
    let n = |a: &str, b: &str| v[a][b].as_u64().unwrap();
    assert!(n("process", "rss_bytes") <= BUDGET + (8 << 20), "{v}");
    let peak = vm_hwm(m.daemon_pid());
    assert!(
        peak <= BUDGET + (16 << 20),
        "peak RSS {} MiB with a 64 MiB budget",
        peak >> 20
    );
    assert_eq!(n("cache", "budget"), BUDGET, "{v}");
    assert!(n("cache", "limit") < BUDGET, "{v}");
    assert!(n("cache", "bytes") <= n("cache", "limit"), "{v}");
    assert!(n("cache", "bytes") > 16 << 20, "the cache was used: {v}");
}

/// A working set read before a clean restart is in the cache again after it: read back in
/// the background from `cache_state.erl`, so re-reading it hits the cache.
#[test]
fn the_cache_is_warm_again_after_a_restart() {
    let mut m = Mount::new();
    let dir = m.path("spacetime/warm_data/particles/warmset");
    fs::create_dir(&dir).unwrap();
    let body = format!("{{\"pad\":\"{}\"}}", "w".repeat(4000));
    for i in 0..200 {
        put(&dir.join(format!("r{i}.json")), body.as_bytes());
    }
    m.remount();
    for i in 0..200 {
        get(&dir.join(format!("r{i}.json")));
    }
    m.remount();
    let analytics = "spacetime/warm_data/event_horizon/cache_analytics.json";
    let warmed = wait_for(&m, analytics, "warmed", |v| {
        v["warm_restart"]["done"] == true
            && v["warm_restart"]["files_read_back"].as_u64() >= Some(200)
    });
    assert!(
        m.path("spacetime/warm_data/event_horizon/cache_state.erl")
            .exists(),
        "{warmed}"
    );
    let before = read_json(&m.path(analytics));
    for i in 0..200 {
        assert_eq!(get(&dir.join(format!("r{i}.json"))), body.as_bytes());
    }
    std::thread::sleep(Duration::from_millis(1100));
    let after = read_json(&m.path(analytics));
    let n = |v: &Value, k: &str| v["reads_of_this_tier"][k].as_u64().unwrap();
    let (hits, misses) = (
        n(&after, "hits") - n(&before, "hits"),
        n(&after, "misses") - n(&before, "misses"),
    );
    let ratio = hits as f64 / (hits + misses).max(1) as f64;
    assert!(
        ratio > 0.9,
        "hit ratio {ratio} ({hits} hits, {misses} misses) after a restart"
    );
    assert!(after["cached_files"].as_u64().unwrap() >= 200, "{after}");
}
