//! `qql/`: queries saved as files and their results as files, the ad-hoc control file and
//! `islabdb query`, indexes the planner says it used, schemas refusing bad records and
//! bad schemas, graph and stream queries — driven with the shell's tools and checked
//! against what was written.

use crate::common::*;
use chrono::{Duration as Span, Utc};
use serde_json::{Value, json};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::time::Duration;

const USERS: &str = "spacetime/warm_data/particles/users";
const ORDERS: &str = "spacetime/hot_data/particles/orders";
const SCHEMA: &str = "qql/schema/universe_schema.json";

fn users(m: &Mount) {
    fs::create_dir_all(m.path(USERS)).unwrap();
    for (name, age, city) in [
        ("ada", 36, "London"),
        ("bob", 25, "Paris"),
        ("cy", 41, "Paris"),
        ("dee", 19, "Lyon"),
    ] {
        put(
            &m.path(&format!("{USERS}/{name}.json")),
            json!({"name": name, "age": age, "city": city})
                .to_string()
                .as_bytes(),
        );
    }
}

/// `islabdb query MOUNT TEXT [--format F]`: (stdout, stderr, success).
fn query(m: &Mount, text: &str, format: &str) -> (String, String, bool) {
    let o = output_of(
        Command::new(bin())
            .args(["query"])
            .arg(m.mnt())
            .arg(text)
            .args(["--format", format]),
    );
    (stdout(&o), stderr(&o), o.status.success())
}

fn query_json(m: &Mount, text: &str) -> Value {
    let (out, err, ok) = query(m, text, "json");
    assert!(ok, "{text}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{text}: {e}: {out}"))
}

/// The compiled query whose text is `text`: its `meta.json`.
fn meta_of(m: &Mount, text: &str) -> Value {
    let dir = m.path("qql/compiled_queries");
    names(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".meta.json"))
        .map(|n| read_json(&dir.join(n)))
        .find(|v| v["text"] == text)
        .unwrap_or_else(|| panic!("no compiled query for {text}"))
}

#[test]
fn saved_queries_answer_in_three_formats_and_rerun_only_after_what_they_read_changed() {
    let m = Mount::new();
    users(&m);
    fs::create_dir_all(m.path(ORDERS)).unwrap();
    let text = "FROM spacetime/*/particles/users WHERE .city = \"Paris\" SELECT .name, .age ORDER BY .age\n";
    put(&m.path("qql/queries/paris.qql"), text.as_bytes());
    assert_eq!(
        names(&m.path("qql/results")),
        ["_manifest.json", "paris.csv", "paris.json", "paris.jsonl"]
    );
    let want = json!([{"name": "bob", "age": 25}, {"name": "cy", "age": 41}]);
    assert_eq!(read_json(&m.path("qql/results/paris.json")), want);
    // jq takes every format's rows; the CSV is what Python's csv module reads.
    let o = run("jq", &["-c", ".", &m.ps("qql/results/paris.jsonl")]);
    assert_eq!(
        stdout(&o),
        "{\"age\":25,\"name\":\"bob\"}\n{\"age\":41,\"name\":\"cy\"}\n"
    );
    let o = run(
        "python3",
        &[
            "-c",
            "import csv,sys,json; print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline='')))))",
            &m.ps("qql/results/paris.csv"),
        ],
    );
    let rows: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        rows,
        json!([{"name": "bob", "age": "25"}, {"name": "cy", "age": "41"}])
    );
    // stat tells the size cat reads.
    let len = fs::metadata(m.path("qql/results/paris.json"))
        .unwrap()
        .len();
    assert_eq!(len as usize, get(&m.path("qql/results/paris.json")).len());
    let runs = |m: &Mount| meta_of(m, text)["runs"].as_u64().unwrap();
    let before = runs(&m);

    // A commit elsewhere: the same answer, not computed again.
    put(&m.path(&format!("{ORDERS}/o1.json")), b"{\"total\": 3}");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(read_json(&m.path("qql/results/paris.json")), want);
    assert_eq!(runs(&m), before, "a commit it does not read reran it");

    // A commit it reads: a new answer.
    put(
        &m.path(&format!("{USERS}/eve.json")),
        b"{\"name\": \"eve\", \"age\": 30, \"city\": \"Paris\"}",
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        read_json(&m.path("qql/results/paris.json")),
        json!([{"name": "bob", "age": 25}, {"name": "eve", "age": 30}, {"name": "cy", "age": 41}])
    );
    assert!(runs(&m) > before);
    // A collection made where the pattern looks is read too.
    fs::create_dir_all(m.path("spacetime/cold_data/particles/users")).unwrap();
    put(
        &m.path("spacetime/cold_data/particles/users/fay.json"),
        b"{\"name\": \"fay\", \"age\": 50, \"city\": \"Paris\"}",
    );
    std::thread::sleep(Duration::from_millis(1100));
    let rows = read_json(&m.path("qql/results/paris.json"));
    assert_eq!(rows.as_array().unwrap().len(), 4, "{rows}");

    // A query that does not parse is refused at close, its position in the log.
    expect_errno(
        write_file(&m.path("qql/queries/bad.qql"), b"FROM users WHERE .age >"),
        &[libc::EINVAL],
        "a query that does not parse",
    );
    assert!(
        m.log().contains("qql/queries/bad.qql")
            && m.log().contains("1:24: expected a value after >"),
        "{}",
        tail(&m.log(), 5)
    );
}

#[test]
fn the_control_file_and_the_cli_answer_ad_hoc_queries_and_name_errors_positions() {
    let m = Mount::new();
    users(&m);
    let text = "FROM spacetime/*/particles/users GROUP BY .city SELECT .city, count(), max(.age) ORDER BY .city";
    // One handle: write the query, read the answer from offset 0.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.path("qql/ask"))
        .unwrap();
    (&f).write_all(text.as_bytes()).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let n = f.read_at(&mut buf, 0).unwrap();
    let via_file: Value = serde_json::from_slice(&buf[..n]).unwrap();
    let want = json!([
        {"city": "London", "count": 1, "max(age)": 36},
        {"city": "Lyon", "count": 1, "max(age)": 19},
        {"city": "Paris", "count": 2, "max(age)": 41}
    ]);
    assert_eq!(via_file, want);
    assert_eq!(query_json(&m, text), want);
    let (csv, _, ok) = query(&m, text, "csv");
    assert!(ok);
    assert_eq!(
        csv,
        "city,count,max(age)\r\nLondon,1,36\r\nLyon,1,19\r\nParis,2,41\r\n"
    );
    // An error names where and what; the CLI fails.
    let (_, err, ok) = query(&m, "FROM spacetime/*/particles/users WHERE .age >", "json");
    assert!(!ok);
    assert!(err.contains("1:") && err.contains("expected"), "{err}");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.path("qql/ask.jsonl"))
        .unwrap();
    (&f).write_all(b"FROM nowhere/at/all SELECT count()")
        .unwrap();
    let n = f.read_at(&mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"{\"count\":0}\n");
}

#[test]
fn an_index_declared_in_the_schema_is_used_for_ranges_and_order_and_logged() {
    let m = Mount::new();
    users(&m);
    let schema = json!({"version": 1, "collections": {"users": {"indexes": [".age"]}}});
    write_file(&m.path(SCHEMA), schema.to_string().as_bytes()).expect("a valid schema");
    let text =
        "FROM spacetime/*/particles/users WHERE .age >= 25 SELECT .name ORDER BY .age DESC LIMIT 2";
    let rows = query_json(&m, text);
    assert_eq!(rows, json!([{"name": "cy"}, {"name": "ada"}]));
    let log = read_json(&m.path("qql/query_analytics/optimization_log.json"));
    let plan = log["latest_first"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["text"] == text)
        .expect("the plan is logged");
    let s = plan["plan"].to_string();
    assert!(s.contains("\"index\"") && s.contains(".age"), "{s}");
    // The log shows the next plan at once, though it was read a moment ago.
    let next = "FROM spacetime/*/particles/users WHERE .age >= 30 SELECT .name";
    query_json(&m, next);
    let log = read_json(&m.path("qql/query_analytics/optimization_log.json"));
    assert_eq!(
        log["latest_first"][0]["text"], next,
        "the newest plan is first in the log read right after its query"
    );
    // The index follows commits: a new record, a changed one, a removed one.
    put(
        &m.path(&format!("{USERS}/gus.json")),
        b"{\"name\": \"gus\", \"age\": 60}",
    );
    put(
        &m.path(&format!("{USERS}/cy.json")),
        b"{\"name\": \"cy\", \"age\": 20}",
    );
    fs::remove_file(m.path(&format!("{USERS}/ada.json"))).unwrap();
    assert_eq!(
        query_json(&m, text),
        json!([{"name": "gus"}, {"name": "bob"}])
    );
    // Each execution is a line of performance.csv (appended by maintenance).
    let perf = m.path("qql/query_analytics/performance.csv");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8(get(&perf)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= 3 {
            assert_eq!(
                lines[0],
                "time,query,rows_scanned,rows_returned,index,micros"
            );
            assert!(lines[1..].iter().any(|l| l.contains(".age")), "{text}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The compiled form is in the binary file, its meta beside it.
    let meta = meta_of(&m, text);
    let h = meta["hash"].as_str().unwrap();
    let erl = get(&m.path(&format!("qql/compiled_queries/hash_{h}.erl")));
    assert_eq!(&erl[..8], b"ISLQQLC1");
    assert!(meta["runs"].as_u64().unwrap() >= 2, "{meta}");
}

#[test]
fn a_schema_refuses_a_bad_record_and_records_refuse_a_schema_they_break() {
    let m = Mount::new();
    users(&m);
    let schema = json!({"version": 1, "collections": {"users": {"schema": {
        "type": "object", "required": ["name", "age"],
        "properties": {"age": {"type": "integer", "minimum": 0}}}}}});
    write_file(&m.path(SCHEMA), schema.to_string().as_bytes()).expect("records obey it");
    let bob = m.path(&format!("{USERS}/bob.json"));
    let before = get(&bob);
    expect_errno(
        write_file(&bob, b"{\"name\": \"bob\", \"age\": -3}"),
        &[libc::EINVAL],
        "a record the schema refuses",
    );
    assert_eq!(get(&bob), before, "the previous version stays");
    let log = m.log();
    assert!(
        log.contains("users/bob.json") && log.contains("/age") && log.contains("minimum"),
        "{}",
        tail(&log, 5)
    );
    // A schema the records already there break is refused, and the old one stays.
    let stricter =
        json!({"version": 1, "collections": {"users": {"schema": {"required": ["email"]}}}});
    expect_errno(
        write_file(&m.path(SCHEMA), stricter.to_string().as_bytes()),
        &[libc::EINVAL],
        "a schema existing records break",
    );
    assert!(m.log().contains("\"email\""), "{}", tail(&m.log(), 5));
    assert_eq!(read_json(&m.path(SCHEMA)), schema);
    expect_errno(
        write_file(&bob, b"{\"name\": \"bob\"}"),
        &[libc::EINVAL],
        "the old schema still holds",
    );
    // Validating only new writes is the documented way in.
    let new_writes = json!({"version": 1, "collections": {"users": {"schema": {"required": ["email"]}, "mode": "new_writes"}}});
    write_file(&m.path(SCHEMA), new_writes.to_string().as_bytes()).expect("new writes only");
    write_file(&bob, b"{\"name\": \"bob\", \"email\": \"b@x\"}").expect("a record with email");
    // The compiled rules are readable.
    let rules = get(&m.path("qql/schema/validation_rules.erl"));
    assert!(rules.len() > 16);
}

#[test]
fn graph_traversal_similarity_and_joins() {
    let m = Mount::new();
    let g = |rel: &str, body: &str| put(&m.path(&format!("quantum_graph/{rel}")), body.as_bytes());
    g(
        "nodes/persons/alice.json",
        r#"{"name": "Alice", "coordinates": [1, 0, 0]}"#,
    );
    g(
        "nodes/persons/bob.json",
        r#"{"name": "Bob", "coordinates": [0.9, 0.1, 0]}"#,
    );
    g(
        "nodes/organizations/acme.json",
        r#"{"name": "Acme", "coordinates": [0, 1, 0]}"#,
    );
    g(
        "nodes/concepts/physics.json",
        r#"{"name": "Physics", "coordinates": [0, 0, 1]}"#,
    );
    g("edges/works_for/alice_to_acme.json", r#"{"strength": 0.8}"#);
    g("edges/works_for/bob_to_acme.json", r#"{"strength": 0.5}"#);
    g(
        "edges/collaborates_with/alice_to_bob.json",
        r#"{"strength": 0.9}"#,
    );
    g("edges/leads/acme_to_physics.json", r#"{"strength": 1}"#);

    let rows = query_json(
        &m,
        "NEIGHBOURS OF acme VIA works_for IN SELECT @key ORDER BY @key",
    );
    assert_eq!(rows, json!([{"@key": "alice"}, {"@key": "bob"}]));
    let rows = query_json(&m, "PATHS FROM bob TO physics MAX DEPTH 3");
    let s = rows.to_string();
    assert!(s.contains("acme") && s.contains("physics"), "{s}");
    let rows = query_json(&m, "NEAREST 1 TO alice SELECT @key");
    assert_eq!(rows, json!([{"@key": "bob"}]));
    let rows = query_json(&m, "NEAREST 1 TO [0, 0.1, 1] SELECT @key");
    assert_eq!(rows, json!([{"@key": "physics"}]));
    let rows = query_json(
        &m,
        "FROM quantum_graph/nodes/persons AS p JOIN works_for OUT AS o SELECT p.name AS name, o.name AS org ORDER BY p.name",
    );
    assert_eq!(
        rows,
        json!([{"name": "Alice", "org": "Acme"}, {"name": "Bob", "org": "Acme"}])
    );
}

#[test]
fn a_time_range_aggregate_over_rolled_up_partitions() {
    let m = Mount::new();
    // Days past the live hour go to the recent window, rolled into compressed days.
    let policies = m.path("configuration/temporal_policies.json");
    let mut p = read_json(&policies);
    p["live_window_hours"] = json!(1);
    p["recent_window_hours"] = json!(24 * 30);
    write_file(&policies, p.to_string().as_bytes()).expect("valid policies");
    let now = Utc::now();
    let day = |d: i64| {
        (now - Span::days(d))
            .format("%Y-%m-%dT12:00:00Z")
            .to_string()
    };
    let mut lines = String::new();
    // Three days ago: 3 clicks and 1 view; two days ago: 2 clicks.
    for (d, ty) in [
        (3, "click"),
        (3, "click"),
        (3, "view"),
        (3, "click"),
        (2, "click"),
        (2, "click"),
    ] {
        lines.push_str(&format!(
            "{{\"type\": \"{ty}\", \"timestamp\": \"{}\"}}\n",
            day(d)
        ));
    }
    let mut f = OpenOptions::new()
        .append(true)
        .open(m.path("temporal/live/events.jsonl"))
        .unwrap();
    f.write_all(lines.as_bytes()).unwrap();
    close_file(f).expect("events stored");
    let o = run_cmd(Command::new(bin()).arg("maintain").arg(m.mnt()));
    assert!(o.status.success());
    let from = (now - Span::days(4))
        .format("%Y-%m-%dT00:00:00Z")
        .to_string();
    let to = (now - Span::days(1))
        .format("%Y-%m-%dT00:00:00Z")
        .to_string();
    let text = format!(
        "FROM STREAM events SINCE \"{from}\" UNTIL \"{to}\" WHERE .type = \"click\" GROUP BY BUCKET 1d SELECT @bucket, count() ORDER BY @bucket"
    );
    let rows = query_json(&m, &text);
    let counts: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [3, 2], "{rows}");
    // The days were rolled up: they live in compressed partitions now.
    let recent = names(&m.path("temporal/recent"));
    let rolled = m.path(&format!("temporal/recent/{}/compressed.gz", &day(3)[..10]));
    assert!(rolled.is_file(), "{recent:?}");
}

/// A collection large enough that a scan reads it in many batches and ORDER BY … LIMIT
/// without an index keeps only its best rows as they come: every answer is checked
/// against the one computed here from what was written.
#[test]
fn scans_of_thousands_of_records_filter_group_and_order_like_the_records_say() {
    let m = Mount::new();
    let dir = "spacetime/cold_data/particles/events_big";
    fs::create_dir_all(m.path(dir)).unwrap();
    let n = 3000;
    let kinds = ["a", "b", "c"];
    let rec = |i: usize| {
        json!({
            "n": i,
            "kind": kinds[i % 3],
            "w": (i % 7) as f64 / 4.0,
            "pad": "x".repeat(i % 50),
        })
    };
    for i in 0..n {
        fs::write(m.path(&format!("{dir}/r{i:05}.json")), rec(i).to_string()).unwrap();
    }
    let from = "FROM spacetime/*/particles/events_big";
    let count = query_json(
        &m,
        &format!("{from} WHERE .kind = \"b\" AND .n >= 1000 SELECT count()"),
    );
    let want = (0..n).filter(|i| i % 3 == 1 && *i >= 1000).count();
    assert_eq!(count, json!([{"count": want}]));

    let groups = query_json(
        &m,
        &format!(
            "{from} GROUP BY .kind SELECT .kind, count() AS c, sum(.w) AS s, min(.n) AS lo, max(.n) AS hi"
        ),
    );
    let want: Vec<Value> = kinds
        .iter()
        .enumerate()
        .map(|(k, kind)| {
            let is = (0..n).filter(|i| i % 3 == k);
            json!({
                "kind": kind,
                "c": is.clone().count(),
                "s": is.clone().map(|i| (i % 7) as f64 / 4.0).sum::<f64>(),
                "lo": is.clone().min(),
                "hi": is.max(),
            })
        })
        .collect();
    assert_eq!(groups, Value::Array(want));

    // .n is not indexed: the 5 largest of a scan, kept as it goes.
    let top = query_json(
        &m,
        &format!("{from} WHERE .kind != \"a\" SELECT .n ORDER BY .n DESC LIMIT 5 OFFSET 2"),
    );
    let want: Vec<Value> = (0..n)
        .rev()
        .filter(|i| i % 3 != 0)
        .skip(2)
        .take(5)
        .map(|i| json!({"n": i}))
        .collect();
    assert_eq!(top, Value::Array(want));

    // Whole records back: every member, not only those the filter read.
    let whole = query_json(&m, &format!("{from} WHERE .n = 2999"));
    assert_eq!(whole, json!([rec(2999)]));
}

/// How many plans `optimization_log.json` holds for `text`.
fn plans_made(m: &Mount, text: &str) -> usize {
    // A generated file that moves without a commit is rendered at most once a second.
    std::thread::sleep(Duration::from_millis(1100));
    let log = read_json(&m.path("qql/query_analytics/optimization_log.json"));
    log["latest_first"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["text"] == text)
        .count()
}

#[test]
fn a_plan_is_reused_until_its_collections_or_the_declared_indexes_change() {
    let m = Mount::new();
    users(&m);
    let text = "FROM spacetime/*/particles/users WHERE .age >= 30 SELECT .name ORDER BY .name";
    let want = json!([{"name": "ada"}, {"name": "cy"}]);
    for _ in 0..3 {
        assert_eq!(query_json(&m, text), want);
    }
    assert_eq!(plans_made(&m, text), 1, "asked 3 times, planned once");
    assert!(meta_of(&m, text)["runs"].as_u64().unwrap() >= 3);
    // A record committed changes the answer, not the plan.
    put(
        &m.path(&format!("{USERS}/eve.json")),
        b"{\"name\": \"eve\", \"age\": 30}",
    );
    let want = json!([{"name": "ada"}, {"name": "cy"}, {"name": "eve"}]);
    assert_eq!(query_json(&m, text), want);
    assert_eq!(plans_made(&m, text), 1);
    // An index declared on its path: planned again, and the plan uses it.
    let schema = json!({"version": 1, "collections": {"users": {"indexes": [".age"]}}});
    write_file(&m.path(SCHEMA), schema.to_string().as_bytes()).expect("a valid schema");
    assert_eq!(query_json(&m, text), want);
    assert_eq!(plans_made(&m, text), 2);
    let plan = meta_of(&m, text)["plan"].to_string();
    assert!(
        plan.contains("\"index\"") && plan.contains(".age"),
        "{plan}"
    );
    // A collection made where a pattern looks: planned again, and it joins the answer.
    let pets = "FROM spacetime/*/particles/pets SELECT count()";
    assert_eq!(query_json(&m, pets), json!([{"count": 0}]));
    assert_eq!(query_json(&m, pets), json!([{"count": 0}]));
    assert_eq!(plans_made(&m, pets), 1);
    fs::create_dir_all(m.path("spacetime/cold_data/particles/pets")).unwrap();
    put(
        &m.path("spacetime/cold_data/particles/pets/rex.json"),
        b"{\"name\": \"rex\"}",
    );
    assert_eq!(query_json(&m, pets), json!([{"count": 1}]));
    assert_eq!(plans_made(&m, pets), 2);
}

/// A record moving between two collections one pattern matches, while the pattern is
/// counted: a scan reading one collection before the move and the other after would
/// count it twice or not at all; every answer must be of one point in time.
#[test]
fn an_answer_is_consistent_with_one_point_in_time_while_records_move() {
    let m = Mount::new();
    let (hot, warm) = (
        "spacetime/hot_data/particles/movers",
        "spacetime/warm_data/particles/movers",
    );
    for dir in [hot, warm] {
        fs::create_dir_all(m.path(dir)).unwrap();
    }
    let n = 1500;
    for i in 0..n {
        let dir = if i % 2 == 0 { hot } else { warm };
        fs::write(
            m.path(&format!("{dir}/m{i}.json")),
            json!({"i": i}).to_string(),
        )
        .unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mover = {
        let (stop, a, b) = (stop.clone(), m.path(hot), m.path(warm));
        std::thread::spawn(move || {
            let mut moves = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Bursts of moves with pauses between: a query meets some bursts, and
                // can run between them.
                for i in (0..20).map(|k| k * 2) {
                    fs::rename(a.join(format!("m{i}.json")), b.join(format!("m{i}.json"))).unwrap();
                    fs::rename(b.join(format!("m{i}.json")), a.join(format!("m{i}.json"))).unwrap();
                    moves += 2;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            moves
        })
    };
    let text = "FROM spacetime/*/particles/movers SELECT count(), sum(.i) AS sum";
    let want = json!([{"count": n, "sum": (0..n).sum::<i64>()}]);
    let mut answered = 0;
    for _ in 0..60 {
        // An answer is of one moment, or an error saying there was none to be had.
        let (out, err, ok) = query(&m, text, "json");
        if ok {
            let got: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(got, want);
            answered += 1;
        } else {
            assert!(err.contains("changed while it ran"), "{err}");
        }
    }
    assert!(answered >= 30, "only {answered} of 60 answered");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let moves = mover.join().unwrap();
    assert!(moves > 100, "the records hardly moved ({moves} renames)");
}

/// Two records committed in turn, `a` then `b`, each to the same step: at any moment `a`
/// is at `b`'s step or one ahead. A scan reading `a` before a round and `b` after it, or
/// an index that has not yet heard of a commit the read records show, would answer `b`
/// ahead of `a`: a mix of two moments. Both plans are asked, the scan and the index.
#[test]
fn an_answer_is_consistent_with_one_point_in_time_while_records_are_rewritten() {
    let m = Mount::new();
    let dir = "spacetime/hot_data/particles/steps";
    fs::create_dir_all(m.path(dir)).unwrap();
    let schema = json!({"version": 1, "collections": {"steps": {"indexes": [".step"]}}});
    write_file(&m.path(SCHEMA), schema.to_string().as_bytes()).expect("a valid schema");
    let record = |name: &str, step: u64| {
        fs::write(
            m.path(&format!("{dir}/{name}.json")),
            json!({"step": step, "pad": "x".repeat(200)}).to_string(),
        )
        .unwrap()
    };
    // `a` first and `b` last in the listing, many records between: a scan takes a while
    // from one to the other.
    record("a", 0);
    for i in 0..1500 {
        record(&format!("m{i}"), 0);
    }
    record("b", 0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), m.path(dir));
        std::thread::spawn(move || {
            let mut step = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                step += 1;
                for name in ["a", "b"] {
                    let body = json!({"step": step, "pad": "x".repeat(200)}).to_string();
                    fs::write(path.join(format!("{name}.json")), body).unwrap();
                }
                if step.is_multiple_of(20) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            step
        })
    };
    let scan = format!("FROM {dir} WHERE @key IN (\"a\", \"b\") SELECT @key, .step");
    let indexed = format!("FROM {dir} WHERE .step >= 1 SELECT @key, .step ORDER BY .step");
    let mut answered = [0, 0];
    // A scan is refused whenever a rewrite lands while it runs: ask until each kind of
    // query has answered enough times to show something (bounded).
    for round in 0..400 {
        if answered[0] >= 15 && answered[1] >= 15 {
            break;
        }
        let text = if round % 2 == 0 { &scan } else { &indexed };
        let (out, err, ok) = query(&m, text, "json");
        if !ok {
            assert!(err.contains("changed while it ran"), "{err}");
            continue;
        }
        answered[round % 2] += 1;
        let rows: Value = serde_json::from_str(&out).unwrap();
        let step = |key: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .find(|r| r["key"] == key)
                .map_or(0, |r| r["step"].as_u64().unwrap())
        };
        let (a, b) = (step("a"), step("b"));
        assert!(a == b || a == b + 1, "{text}: a at {a}, b at {b}: {rows}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let steps = writer.join().unwrap();
    assert!(
        steps > 50,
        "the records were hardly rewritten ({steps} rounds)"
    );
    assert!(
        answered[0] >= 15 && answered[1] >= 15,
        "too few answers: {answered:?}"
    );
}
