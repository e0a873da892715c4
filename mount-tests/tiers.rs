//! `entropy/` and `wormholes/`: the tiers' balance, the moves between them (a user's `mv`
//! and the tiering policy's), the routes the policy would take, open handles and traffic,
//! all measured from the running daemon.

use crate::common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

const STATE: &str = "entropy/current_state.json";
const LOG: &str = "entropy/rebalancing_log.jsonl";
const POLICY: &str = "configuration/tiering_policy.json";
const CONNECTIONS: &str = "wormholes/active_connections.json";
const HOT_USERS: &str = "spacetime/hot_data/particles/users";

/// Sets fields of the tiering policy (a checked edit).
fn policy(m: &Mount, changes: Value) {
    edit_json(&m.path(POLICY), changes);
}

/// A generated file that moves without the engine is kept for a second once rendered:
/// this reads a rendering made after now.
fn fresh_json(m: &Mount, rel: &str) -> Value {
    std::thread::sleep(Duration::from_millis(1100));
    read_json(&m.path(rel))
}

/// Waits until `pred` holds (up to 15 s), reading `rel` as JSON; returns it.
fn wait(m: &Mount, rel: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_json(&m.path(rel), 15, what, pred)
}

/// The rebalancing log's lines, each parsed (jq must accept the file too).
fn log_lines(m: &Mount) -> Vec<Value> {
    let o = run("jq", &["-c", ".", &m.ps(LOG)]);
    assert!(o.status.success(), "jq: {}", stderr(&o));
    String::from_utf8(get(&m.path(LOG)))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn wait_logged(m: &Mount, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(l) = log_lines(m).into_iter().find(|l| pred(l)) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "not logged: {}",
            String::from_utf8_lossy(&get(&m.path(LOG)))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn records(v: &Value, tier: &str) -> i64 {
    v["tiers"][tier]["records"].as_i64().unwrap()
}

/// `islabdb routes FILE` as JSON.
fn routes(m: &Mount, name: &str) -> Value {
    let o = run(
        bin().to_str().unwrap(),
        &["routes", &m.ps(&format!("wormholes/routing_tables/{name}"))],
    );
    serde_json::from_slice(&o.stdout).expect("routes JSON")
}

fn candidate_inodes(r: &Value) -> Vec<u64> {
    r["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["inode"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_users_mv_between_tiers_is_logged_and_moves_the_counts_by_one() {
    let mut m = Mount::new();
    let alice = m.path(&format!("{HOT_USERS}/alice.json"));
    put(&alice, b"{\"name\":\"alice\"}");
    fs::create_dir(m.path("spacetime/cold_data/particles/users")).unwrap();
    let before = fresh_json(&m, STATE);
    let o = run(
        "mv",
        &[
            alice.to_str().unwrap(),
            &m.ps("spacetime/cold_data/particles/users/alice.json"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let line = wait_logged(&m, |l| l["key"] == "users/alice");
    assert_eq!(line["from"], "hot_data", "{line}");
    assert_eq!(line["to"], "cold_data", "{line}");
    assert_eq!(line["reason"], "mv", "{line}");
    assert_eq!(line["by"], "user", "{line}");
    assert_eq!(line["bytes"], 16, "{line}");
    assert!(is_rfc3339(line["time"].as_str().unwrap()), "{line}");
    let after = fresh_json(&m, STATE);
    assert_eq!(
        records(&after, "hot_data"),
        records(&before, "hot_data") - 1
    );
    assert_eq!(
        records(&after, "cold_data"),
        records(&before, "cold_data") + 1
    );
    assert_eq!(after["moves"]["by_user"], 1, "{after}");
    assert_eq!(after["tiers"]["cold_data"]["moved_in"], 1, "{after}");
    assert_eq!(after["tiers"]["hot_data"]["moved_out"], 1, "{after}");
    assert_eq!(after["moves"]["last"]["key"], "users/alice", "{after}");
    // One file left the hot tier for the cold one: the spread is a little more even.
    assert!(
        after["entropy_bits"]["records"].as_f64().unwrap()
            > before["entropy_bits"]["records"].as_f64().unwrap(),
        "{before}\n{after}"
    );
    let analytics = fresh_json(&m, "wormholes/network_analytics.json");
    let route = analytics["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["from"] == "hot_data" && r["to"] == "cold_data")
        .cloned()
        .unwrap_or_default();
    assert_eq!(route["moves"], 1, "{analytics}");
    assert_eq!(route["bytes_moved"], 16, "{analytics}");
    // The log is a file of the universe: it survives a restart.
    m.remount();
    assert!(log_lines(&m).iter().any(|l| l["key"] == "users/alice"));
}

#[test]
fn the_policy_demotes_an_untouched_record_and_keeps_one_being_read() {
    let m = Mount::new();
    let (idle, busy) = (
        m.path(&format!("{HOT_USERS}/idle.json")),
        m.path(&format!("{HOT_USERS}/busy.json")),
    );
    put(&idle, b"{\"idle\":true}");
    put(&busy, b"{\"busy\":true}");
    let idle_ino = fs::metadata(&idle).unwrap().ino();
    // Off by default: nothing moves, but the routes show what would.
    assert_eq!(read_json(&m.path(POLICY))["enabled"], false);
    expect_errno(
        write_file(&m.path(POLICY), b"{\"enabled\": true}"),
        &[libc::EINVAL],
        "a policy missing its settings",
    );
    policy(
        &m,
        serde_json::json!({
            "enabled": true, "demote_after_secs": 2, "demote_cold_after_secs": 3600,
            "interval_secs": 1, "promote_after_reads": 1000,
        }),
    );
    let warm_idle = m.path("spacetime/warm_data/particles/users/idle.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !names(&m.path("spacetime/warm_data/particles")).contains(&"users".to_string())
        || !names(&m.path("spacetime/warm_data/particles/users")).contains(&"idle.json".into())
    {
        assert!(Instant::now() < deadline, "idle.json was not demoted");
        get(&busy);
        std::thread::sleep(Duration::from_millis(300));
    }
    get(&busy);
    assert_eq!(fs::metadata(&warm_idle).unwrap().ino(), idle_ino);
    assert_eq!(get(&warm_idle), b"{\"idle\":true}");
    let hot = names(&m.path(HOT_USERS));
    assert!(!idle.exists(), "the kernel forgot the old name");
    assert!(hot.contains(&"busy.json".to_string()), "{hot:?}");
    assert!(!hot.contains(&"idle.json".to_string()), "{hot:?}");
    let line = wait_logged(&m, |l| l["key"] == "users/idle");
    assert_eq!(line["by"], "policy", "{line}");
    assert_eq!(
        (&line["from"], &line["to"]),
        (&"hot_data".into(), &"warm_data".into())
    );
    assert!(
        line["reason"].as_str().unwrap().starts_with("untouched "),
        "{line}"
    );
    assert!(
        !log_lines(&m).iter().any(|l| l["key"] == "users/busy"),
        "a record being read stays"
    );
    // The manifests of both directories show the move.
    let out = read_json(&m.path(&format!("{HOT_USERS}/_manifest.json")));
    assert_eq!(out["tiering"]["records_moved_out_by_policy"], 1, "{out}");
    let into = read_json(&m.path("spacetime/warm_data/particles/users/_manifest.json"));
    assert_eq!(into["tiering"]["records_moved_in_by_policy"], 1, "{into}");
    assert_eq!(into["tiering"]["last_move"]["key"], "users/idle", "{into}");
    let state = fresh_json(&m, STATE);
    assert_eq!(state["moves"]["by_policy"], 1, "{state}");
    assert_eq!(state["policy"]["enabled"], true, "{state}");
    assert!(
        m.log()
            .contains("tiering: spacetime/warm_data/particles/users/idle.json moved")
    );
}

#[test]
fn routing_tables_list_what_the_policy_would_move() {
    let m = Mount::new();
    let a = m.path(&format!("{HOT_USERS}/a.json"));
    put(&a, b"{}");
    fs::create_dir(m.path("spacetime/warm_data/particles/users")).unwrap();
    let w = m.path("spacetime/warm_data/particles/users/w.json");
    put(&w, b"[1]");
    let empty = routes(&m, "hot_to_warm.routes");
    assert_eq!(empty["from"], "hot_data");
    assert_eq!(empty["to"], "warm_data");
    assert_eq!(empty["count"], 0, "a day must pass by default: {empty}");
    // Disabled, with short times: the tables show what it would move, nothing moves.
    policy(
        &m,
        serde_json::json!({ "demote_after_secs": 2, "demote_cold_after_secs": 1 }),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let h = routes(&m, "hot_to_warm.routes");
    assert_eq!(h["policy_enabled"], false, "{h}");
    assert_eq!(h["untouched_after_secs"], 2, "{h}");
    assert!(
        candidate_inodes(&h).contains(&fs::metadata(&a).unwrap().ino()),
        "{h}"
    );
    let c = &h["candidates"][0];
    assert!(is_rfc3339(c["last_touch"].as_str().unwrap()), "{h}");
    let wc = routes(&m, "warm_to_cold.routes");
    assert_eq!(
        candidate_inodes(&wc),
        [fs::metadata(&w).unwrap().ino()],
        "{wc}"
    );
    assert_eq!(wc["candidates"][0]["size"], 3, "{wc}");
    assert!(a.exists() && w.exists(), "nothing moved");
    // Read now, it is no candidate any more (for two seconds).
    get(&a);
    std::thread::sleep(Duration::from_millis(1100));
    let h = routes(&m, "hot_to_warm.routes");
    assert!(
        !candidate_inodes(&h).contains(&fs::metadata(&a).unwrap().ino()),
        "{h}"
    );
    // The binary balance decodes too.
    let o = run(
        bin().to_str().unwrap(),
        &["vacuum", &m.ps("entropy/vacuum_stability.metrics")],
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("vacuum JSON");
    assert!(
        v["tiers"]["warm_data"]["records"].as_u64().unwrap() >= 1,
        "{v}"
    );
    let o = sh_output(&format!(
        "{} routes {}",
        bin().display(),
        shq(m.path("entropy/current_state.json"))
    ));
    assert!(!o.status.success(), "not a routes file");
}

#[test]
fn active_connections_count_a_handle_while_it_is_open() {
    let m = Mount::new();
    let f = m.path(&format!("{HOT_USERS}/held.json"));
    put(&f, b"{}");
    let reader = |v: &Value| v["regions"]["records"]["reader"].as_u64().unwrap_or(0);
    let held = fs::File::open(&f).unwrap();
    let v = wait(&m, CONNECTIONS, "the held file", |v| reader(v) == 1);
    assert_eq!(v["tiers"]["hot_data"]["reader"], 1, "{v}");
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == format!("{HOT_USERS}/held.json") && f["kind"] == "reader"),
        "{v}"
    );
    assert!(v["open"]["reader"].as_u64().unwrap() >= 1, "{v}");
    drop(held);
    wait(&m, CONNECTIONS, "closed", |v| reader(v) == 0);
}

#[test]
fn topology_opens_in_networkx_and_every_generated_file_agrees_with_stat() {
    let m = Mount::new();
    edit_json(
        &m.path("configuration/observatory.json"),
        serde_json::json!({ "sample_interval_secs": 1 }),
    );
    let users = m.path(HOT_USERS);
    for i in 0..20 {
        put(&users.join(format!("u{i}.json")), b"{\"n\":1}");
    }
    for _ in 0..3 {
        for i in 0..20 {
            get(&users.join(format!("u{i}.json")));
        }
    }
    let traffic = wait(&m, "wormholes/network_analytics.json", "traffic", |v| {
        v["tiers"]["hot_data"]["reads"].as_u64().unwrap_or(0) >= 60
    });
    assert!(
        traffic["tiers"]["hot_data"]["commits"].as_u64().unwrap() >= 20,
        "{traffic}"
    );
    let graph = m.path("wormholes/topology.graphml");
    let script = r#"
import sys, networkx as nx
g = nx.read_graphml(sys.argv[1])
for t in ("hot_data", "warm_data", "cold_data"):
    assert g.nodes["tier:" + t]["kind"] == "tier", t
e = g.edges["region:records", "tier:hot_data"]
assert e["weight"] >= 80 and e["reads"] >= 60 and e["commits"] >= 20, e
assert g.has_edge("tier:hot_data", "tier:warm_data")
assert g.has_edge("tier:warm_data", "tier:cold_data")
assert g.nodes["tier:hot_data"]["records"] >= 20
print(g.number_of_nodes(), g.number_of_edges())
"#;
    let o = output_of(
        std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&graph),
    );
    assert!(o.status.success(), "networkx: {}", stderr(&o));
    // The history gets rows on the observatory's period; Python's csv reads it.
    let csv = m.path("entropy/historical_entropy.csv");
    let deadline = Instant::now() + Duration::from_secs(15);
    while fs::read_to_string(&csv).unwrap().lines().count() < 3 {
        assert!(Instant::now() < deadline, "no rows");
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = run(
        "python3",
        &[
            "-c",
            "import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); assert r and int(r[-1]['hot_records']) >= 20 and float(r[-1]['records_entropy_bits']) >= 0, r[-1]",
            &csv.to_string_lossy(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // stat and cat agree for every generated file, while the figures move.
    let files = [
        STATE,
        "entropy/vacuum_stability.metrics",
        "entropy/_manifest.json",
        CONNECTIONS,
        "wormholes/network_analytics.json",
        "wormholes/topology.graphml",
        "wormholes/_manifest.json",
        "wormholes/routing_tables/hot_to_warm.routes",
        "wormholes/routing_tables/warm_to_cold.routes",
        "wormholes/routing_tables/_manifest.json",
    ];
    assert_eq!(
        names(&m.path("entropy")),
        [
            "_manifest.json",
            "current_state.json",
            "historical_entropy.csv",
            "rebalancing_log.jsonl",
            "vacuum_stability.metrics"
        ]
    );
    assert_eq!(
        names(&m.path("wormholes")),
        [
            "_manifest.json",
            "active_connections.json",
            "network_analytics.json",
            "routing_tables",
            "topology.graphml"
        ]
    );
    assert_eq!(
        names(&m.path("wormholes/routing_tables")),
        [
            "_manifest.json",
            "hot_to_warm.routes",
            "warm_to_cold.routes"
        ]
    );
    for round in 0..6 {
        for rel in files {
            let size = fs::metadata(m.path(rel)).unwrap().len();
            let got = get(&m.path(rel));
            assert_eq!(
                got.len() as u64,
                size,
                "stat and cat of {rel}, round {round}"
            );
            if rel.ends_with(".json") {
                serde_json::from_slice::<Value>(&got).unwrap_or_else(|e| panic!("{rel}: {e}"));
            }
        }
        get(&users.join("u1.json"));
        std::thread::sleep(Duration::from_millis(300));
    }
    let manifest = read_json(&m.path("entropy/_manifest.json"));
    assert_eq!(manifest["region"], "entropy", "{manifest}");
    expect_errno(
        write_file(&m.path(STATE), b"{}"),
        &[libc::EACCES],
        "a generated file",
    );
}

#[test]
fn the_policy_promotes_a_cold_record_read_often() {
    let m = Mount::new();
    let cold = m.path("spacetime/cold_data/particles/orders");
    fs::create_dir(&cold).unwrap();
    put(&cold.join("o1.json"), b"{\"o\":1}");
    put(&cold.join("o2.json"), b"{\"o\":2}");
    for _ in 0..5 {
        get(&cold.join("o1.json"));
    }
    policy(
        &m,
        serde_json::json!({
            "enabled": true, "promote_after_reads": 5, "promote_window_secs": 60,
            "interval_secs": 1,
        }),
    );
    let line = wait_logged(&m, |l| l["key"] == "orders/o1");
    assert_eq!(
        (&line["from"], &line["to"]),
        (&"cold_data".into(), &"hot_data".into())
    );
    assert_eq!(line["reason"], "read 5 times in 60 s", "{line}");
    assert_eq!(
        get(&m.path("spacetime/hot_data/particles/orders/o1.json")),
        b"{\"o\":1}"
    );
    assert_eq!(names(&cold), ["o2.json"], "the one read once stays");
}
