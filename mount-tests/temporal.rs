//! `temporal/`: events appended as JSON lines, routed to hour partitions, checked line by
//! line, rolled into compressed days and months by maintenance, read by time range; every
//! event exactly once across moves, concurrent writers and `kill -9`.

use crate::common::*;
use chrono::{DateTime, Duration as Span, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STREAM: &str = "temporal/live/events.jsonl";
const POLICIES: &str = "configuration/temporal_policies.json";

pub(crate) fn hour_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d-%H").to_string()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn event(id: &str, t: Option<DateTime<Utc>>, ty: &str) -> String {
    match t {
        Some(t) => format!(
            r#"{{"id":"{id}","type":"{ty}","timestamp":"{}"}}"#,
            rfc3339(t)
        ),
        None => format!(r#"{{"id":"{id}","type":"{ty}"}}"#),
    }
}

/// Appends `lines` through one open of `rel` (a `>>`).
fn append(m: &Mount, rel: &str, lines: &[String]) {
    let mut f = OpenOptions::new().append(true).open(m.path(rel)).unwrap();
    let mut text = lines.join("\n");
    text.push('\n');
    f.write_all(text.as_bytes()).unwrap();
    close_file(f).expect("close of the stream");
}

/// Sets the policies (only the keys given; the others keep their defaults).
fn set_policies(m: &Mount, changes: serde_json::Value) {
    let mut p = read_json(&m.path(POLICIES));
    for (k, v) in changes.as_object().unwrap() {
        p[k] = v.clone();
    }
    write_file(&m.path(POLICIES), p.to_string().as_bytes()).expect("a valid policy edit");
}

fn maintain(m: &Mount) -> serde_json::Value {
    let o = run_cmd(Command::new(bin()).arg("maintain").arg(m.mnt()));
    serde_json::from_slice(&o.stdout).expect("the maintenance report is JSON")
}

/// The ids of JSON lines, in order, checking each is an object with a timestamp.
fn ids(text: &[u8]) -> Vec<(DateTime<Utc>, String)> {
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).expect("a stored line is JSON");
            let t = v["timestamp"]
                .as_str()
                .expect("every event has a timestamp");
            let t = DateTime::parse_from_rfc3339(t)
                .expect("RFC 3339")
                .with_timezone(&Utc);
            (t, v["id"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

fn assert_time_order(events: &[(DateTime<Utc>, String)], what: &str) {
    for w in events.windows(2) {
        assert!(w[0].0 <= w[1].0, "{what}: {:?} before {:?}", w[0], w[1]);
    }
}

/// Every event stored in the partitions, read with the tools users would use: `cat` for
/// live hours and late events, `zcat` for days, `lz4cat` for months. Each file must be
/// in time order.
fn all_partitions(m: &Mount) -> Vec<(DateTime<Utc>, String)> {
    let mut out = Vec::new();
    let mut read = |path: &Path, tool: &str| {
        let o = run(tool, &[path]);
        assert!(
            o.status.success(),
            "{tool} {}: {}",
            path.display(),
            stderr(&o)
        );
        let got = ids(&o.stdout);
        assert_time_order(&got, &path.display().to_string());
        out.extend(got);
    };
    for (dir, files) in [
        ("temporal/live", &[("events.jsonl", "cat")][..]),
        (
            "temporal/recent",
            &[("compressed.gz", "zcat"), ("backfill.jsonl", "cat")][..],
        ),
        (
            "temporal/historical",
            &[("compressed.lz4", "lz4cat"), ("backfill.jsonl", "cat")][..],
        ),
    ] {
        for part in fs::read_dir(m.path(dir)).unwrap() {
            let part = part.unwrap().path();
            if !part.is_dir() {
                continue;
            }
            for (file, tool) in files {
                let p = part.join(file);
                if p.exists() {
                    read(&p, tool);
                }
            }
        }
    }
    out.sort();
    out
}

fn range_read(m: &Mount, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, String)> {
    let name = format!(
        "temporal/range/{}..{}.jsonl",
        from.format("%Y-%m-%dT%H:%M:%S"),
        to.format("%Y-%m-%dT%H:%M:%S")
    );
    let path = m.path(&name);
    let size = fs::metadata(&path).expect("a range file").len();
    let o = run("cat", &[&path]);
    assert!(o.status.success(), "cat {name}: {}", stderr(&o));
    assert_eq!(
        o.stdout.len() as u64,
        size,
        "{name}: stat's size is what cat reads"
    );
    let got = ids(&o.stdout);
    assert_time_order(&got, &name);
    got
}

fn assert_exactly_once(
    got: &[(DateTime<Utc>, String)],
    want: &BTreeMap<String, DateTime<Utc>>,
    what: &str,
) {
    let mut seen = BTreeSet::new();
    for (t, id) in got {
        assert!(seen.insert(id.clone()), "{what}: {id} twice");
        assert_eq!(
            want.get(id),
            Some(t),
            "{what}: {id} unexpected or at another time"
        );
    }
    let missing: Vec<_> = want.keys().filter(|k| !seen.contains(*k)).take(5).collect();
    assert!(
        missing.is_empty(),
        "{what}: missing {} events, e.g. {missing:?}",
        want.len() - seen.len()
    );
}

#[test]
fn an_appended_line_is_stamped_and_routed_to_its_hour() {
    let m = Mount::new();
    let before = Utc::now();
    let o = sh(&format!(
        "echo '{{\"type\":\"user_action\",\"user_id\":\"alice\"}}' >> {}",
        shq(m.path(STREAM))
    ));
    assert_eq!(o, "");
    let after = Utc::now();
    let candidates: BTreeSet<String> = [hour_key(before), hour_key(after)].into();
    let hour = candidates
        .iter()
        .find(|h| m.path(&format!("temporal/live/{h}/events.jsonl")).exists())
        .expect("the event's hour partition exists")
        .clone();
    let part = format!("temporal/live/{hour}/events.jsonl");
    let o = run("jq", &["-c", ".", &m.ps(&part)]);
    assert!(o.status.success(), "jq: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["user_id"], "alice");
    let t = DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap()).unwrap();
    assert!(
        t >= before - Span::seconds(1) && t <= after + Span::seconds(1),
        "{t}"
    );
    assert_eq!(
        stdout(&run("wc", &["-l", &m.ps(&part)]))
            .split_whitespace()
            .next(),
        Some("1")
    );
    assert_eq!(
        get(&m.path(STREAM)),
        b"",
        "the entry point holds nothing itself"
    );

    // A timestamp of its own: two hours ahead is another (live) partition; straight to a
    // partition works for its own hour.
    let later = Utc::now() + Span::hours(2);
    append(&m, STREAM, &[event("x", Some(later), "click")]);
    let later_part = format!("temporal/live/{}/events.jsonl", hour_key(later));
    assert_eq!(
        ids(&get(&m.path(&later_part))),
        vec![(
            DateTime::parse_from_rfc3339(&rfc3339(later))
                .unwrap()
                .with_timezone(&Utc),
            "x".to_string()
        )]
    );
    append(&m, &later_part, &[event("y", Some(later), "click")]);
    assert_eq!(ids(&get(&m.path(&later_part))).len(), 2);

    let summary = read_json(&m.path(&format!("temporal/live/{}/summary.json", hour_key(later))));
    assert_eq!(summary["count"], 2);
    assert_eq!(summary["by_type"]["click"], 2);
    let metrics = get(&m.path(&format!("temporal/live/{}/metrics.erl", hour_key(later))));
    assert!(!metrics.is_empty());
    // The binary form says what the summary says (`islabdb metrics` decodes it).
    let o = run_cmd(
        Command::new(bin())
            .arg("metrics")
            .arg(m.path(&format!("temporal/live/{}/metrics.erl", hour_key(later)))),
    );
    let decoded: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(decoded["count"], summary["count"], "{decoded}");
    assert_eq!(decoded["by_type"], summary["by_type"], "{decoded}");
    assert_eq!(decoded["last"], summary["last"], "{decoded}");
    let state = read_json(&m.path("temporal/live/current_streams.state"));
    assert!(
        state["open_partitions"].as_array().unwrap().len() >= 2,
        "{state}"
    );
    assert!(state["last_append"].is_string(), "{state}");
    assert_eq!(state["events_appended_since_start"], 3);

    // A partition is append-only and holds only its hour.
    expect_errno(
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(m.path(&later_part)),
        &[libc::EPERM],
        "O_TRUNC of a partition",
    );
    let mut f = OpenOptions::new()
        .append(true)
        .open(m.path(&later_part))
        .unwrap();
    expect_errno(
        f.write_all(format!("{}\n", event("z", Some(Utc::now() - Span::days(3)), "x")).as_bytes()),
        &[libc::EINVAL],
        "an event of another hour straight into a partition",
    );
    drop(f);
    expect_errno(
        fs::write(m.path("temporal/live/mine.txt"), b"x"),
        &[libc::EPERM],
        "a file of one's own in live/",
    );
}

/// The name lookups and attribute requests the daemon has served so far.
fn lookups_and_getattrs(m: &Mount) -> u64 {
    // The document is rendered afresh once the previous rendering is a second old.
    std::thread::sleep(Duration::from_millis(1100));
    let ops = &read_json(&m.path("observatory/metrics/real_time.json"))["operations"];
    ops["lookup"]["count"].as_u64().unwrap() + ops["getattr"]["count"].as_u64().unwrap()
}

#[test]
fn the_entry_point_is_known_to_the_kernel_and_reads_empty_after_appends() {
    let m = Mount::new();
    let later = Utc::now() + Span::hours(2);
    let part = format!("temporal/live/{}/events.jsonl", hour_key(later));
    append(&m, STREAM, &[event("e0", Some(later), "t")]);
    let before = lookups_and_getattrs(&m);
    for i in 1..50 {
        append(&m, STREAM, &[event(&format!("e{i}"), Some(later), "t")]);
    }
    let asked = lookups_and_getattrs(&m) - before;
    // Reading the counters asks for a few names itself; each `>>` asking again would
    // be 49 lookups and 49 getattrs more.
    assert!(asked < 10, "{asked} lookups and getattrs for 49 appends");
    let meta = fs::metadata(m.path(STREAM)).unwrap();
    assert_eq!(meta.len(), 0, "the entry point's size after appends");
    assert_eq!(fs::read(m.path(STREAM)).unwrap(), b"");
    let got: Vec<String> = ids(&fs::read(m.path(&part)).unwrap())
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let want: Vec<String> = (0..50).map(|i| format!("e{i}")).collect();
    assert_eq!(got, want);
}

#[test]
fn invalid_lines_fail_the_write_that_completes_them_and_lose_nothing_before() {
    let m = Mount::new();
    let later = Utc::now() + Span::hours(3);
    let part = format!("temporal/live/{}/events.jsonl", hour_key(later));
    let mut f = OpenOptions::new()
        .append(true)
        .open(m.path(STREAM))
        .unwrap();
    let a = event("a", Some(later), "t");
    let b = event("b", Some(later + Span::seconds(1)), "t");
    f.write_all(format!("{a}\n").as_bytes()).unwrap();
    // A line split across writes counts when its newline arrives.
    let (b1, b2) = b.split_at(10);
    f.write_all(b1.as_bytes()).unwrap();
    assert!(
        !m.path(&part).exists() || ids(&get(&m.path(&part))).len() == 1,
        "half a line is not an event"
    );
    f.write_all(b2.as_bytes()).unwrap();
    f.write_all(b"\n").unwrap();
    expect_errno(
        f.write_all(b"{\"id\": oops}\n"),
        &[libc::EINVAL],
        "not JSON",
    );
    expect_errno(f.write_all(b"[1,2]\n"), &[libc::EINVAL], "not an object");
    expect_errno(
        f.write_all(b"{\"id\":\"c\",\"timestamp\":\"yesterday\"}\n"),
        &[libc::EINVAL],
        "a timestamp that does not parse",
    );
    // The stream goes on after a refusal.
    let c = event("c", Some(later + Span::seconds(2)), "t");
    f.write_all(format!("{c}\n").as_bytes()).unwrap();
    close_file(f).expect("close");
    let got: Vec<String> = ids(&get(&m.path(&part)))
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(got, ["a", "b", "c"]);
    let log = m.log();
    assert!(
        log.contains("line 3 at column 8"),
        "the log says where: {}",
        tail(&log, 20)
    );
    assert!(log.contains("yesterday"), "{}", tail(&log, 20));
    // An unterminated last line counts at close; a bad one fails the close.
    let d = event("d", Some(later + Span::seconds(3)), "t");
    let mut f = OpenOptions::new()
        .append(true)
        .open(m.path(STREAM))
        .unwrap();
    f.write_all(d.as_bytes()).unwrap();
    close_file(f).expect("close ends the last line");
    let mut f = OpenOptions::new()
        .append(true)
        .open(m.path(STREAM))
        .unwrap();
    f.write_all(b"{\"id\":").unwrap();
    expect_errno(close_file(f), &[libc::EINVAL], "close of a half line");
    let got: Vec<String> = ids(&get(&m.path(&part)))
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(got, ["a", "b", "c", "d"]);
}

/// Four processes append 2,000 lines each with `>>` (one open per line) while a fifth
/// writes 2,000 lines through one descriptor in pieces that split lines: nothing lost,
/// duplicated or interleaved; after `kill -9` and a remount, every acknowledged line is
/// there exactly once.
#[test]
fn concurrent_appenders_lose_duplicate_and_interleave_nothing() {
    let mut m = Mount::new();
    let stream = shq(m.path(STREAM));
    let mut kids = Vec::new();
    for w in 0..4 {
        let script = format!(
            "for i in $(seq 1 2000); do echo \"{{\\\"id\\\":\\\"w{w}-$i\\\",\\\"type\\\":\\\"w{w}\\\"}}\" >> {stream} || exit 1; done"
        );
        kids.push(Command::new("sh").arg("-c").arg(script).spawn().unwrap());
    }
    let path = m.path(STREAM);
    let splitter = std::thread::spawn(move || {
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        for i in 1..=2000 {
            let line = format!("{{\"id\":\"s-{i}\",\"type\":\"s\"}}\n");
            let (a, b) = line.split_at(line.len() / 2);
            f.write_all(a.as_bytes()).unwrap();
            f.write_all(b.as_bytes()).unwrap();
        }
        close_file(f).expect("close");
    });
    for mut k in kids {
        assert!(k.wait().unwrap().success(), "a writer failed");
    }
    splitter.join().unwrap();
    let check = |m: &Mount| {
        let mut ids_by_writer: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut total = 0;
        for part in fs::read_dir(m.path("temporal/live")).unwrap() {
            let p = part.unwrap().path().join("events.jsonl");
            if !p.exists() {
                continue;
            }
            let got = ids(&get(&p));
            assert_time_order(&got, &p.display().to_string());
            for (_, id) in got {
                total += 1;
                let w = id.split('-').next().unwrap().to_string();
                assert!(
                    ids_by_writer.entry(w).or_default().insert(id.clone()),
                    "{id} twice"
                );
            }
        }
        assert_eq!(total, 5 * 2000);
        for (w, set) in &ids_by_writer {
            assert_eq!(set.len(), 2000, "writer {w}");
        }
    };
    check(&m);
    m.kill9();
    m.remount();
    check(&m);
}

#[test]
fn tail_f_shows_lines_as_they_are_routed() {
    let m = Mount::new();
    let later = Utc::now() + Span::hours(4);
    let part = format!("temporal/live/{}/events.jsonl", hour_key(later));
    append(&m, STREAM, &[event("first", Some(later), "t")]);
    let mut tail = Command::new("tail")
        .args(["-n", "+1", "-f", "-s", "0.2"])
        .arg(m.path(&part))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(tail.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("first"), "{line}");
    for i in 0..3 {
        append(
            &m,
            STREAM,
            &[event(
                &format!("next{i}"),
                Some(later + Span::seconds(i + 1)),
                "t",
            )],
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..3 {
            let mut l = String::new();
            if out.read_line(&mut l).is_err() {
                break;
            }
            let _ = tx.send(l);
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 3 && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(l);
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert_eq!(seen.len(), 3, "tail -f saw {seen:?}");
    assert!(seen[2].contains("next2"), "{seen:?}");
}

/// Events of now, of hours ago, of days ago and of months ago, appended out of order:
/// each lands where its time lives, every event is read exactly once and in order from
/// the partitions (`cat`, `zcat`, `lz4cat`) and from a range read, before and after
/// maintenance rolls hours into days and days into months, and after `kill -9`.
#[test]
fn backfill_across_hours_days_and_months_is_read_exactly_once_in_order() {
    let mut m = Mount::new();
    // Long windows first: old hours arrive as live partitions, for maintenance to move.
    set_policies(
        &m,
        serde_json::json!({ "live_window_hours": 24 * 31, "recent_window_hours": 24 * 31, "maintenance_interval_secs": 86_400 }),
    );
    let now = Utc::now();
    let mut want = BTreeMap::new();
    let mut lines = Vec::new();
    let mut seed = 7u64;
    for i in 0..3000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let back = match i % 5 {
            0 => Span::minutes((seed >> 40) as i64 % 30),
            1 => Span::hours(2 + (seed >> 40) as i64 % 20),
            2 => Span::days(2 + (seed >> 40) as i64 % 10),
            3 => Span::days(40 + (seed >> 40) as i64 % 20),
            _ => Span::days(150 + (seed >> 40) as i64 % 60),
        };
        let t = DateTime::parse_from_rfc3339(&rfc3339(now - back))
            .unwrap()
            .with_timezone(&Utc);
        let id = format!("e{i}");
        want.insert(id.clone(), t);
        lines.push(event(&id, Some(t), ["a", "b", "c"][i % 3]));
    }
    for chunk in lines.chunks(250) {
        append(&m, STREAM, chunk);
    }
    expect_errno(
        fs::OpenOptions::new()
            .append(true)
            .open(m.path(STREAM))
            .and_then(|mut f| {
                f.write_all(
                    format!("{}\n", event("old", Some(now - Span::days(800)), "a")).as_bytes(),
                )
            }),
        &[libc::EINVAL],
        "an event older than the retention",
    );
    let (from, to) = (now - Span::days(400), now + Span::days(1));
    assert_exactly_once(&all_partitions(&m), &want, "partitions before maintenance");
    assert_exactly_once(&range_read(&m, from, to), &want, "range before maintenance");

    set_policies(
        &m,
        serde_json::json!({ "live_window_hours": 1, "recent_window_hours": 24 }),
    );
    let report = maintain(&m);
    assert!(
        report["moved_hours"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{report}"
    );
    assert!(
        report["moved_days"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{report}"
    );
    assert!(report.get("errors").is_none(), "{report}");
    assert!(
        m.log().contains("temporal: moved temporal/live/"),
        "every move is logged"
    );
    let after = all_partitions(&m);
    assert_exactly_once(&after, &want, "partitions after maintenance");
    assert_exactly_once(&range_read(&m, from, to), &want, "range after maintenance");
    // Only the last hours stay live; no late events wait once maintenance ran.
    for part in fs::read_dir(m.path("temporal/live")).unwrap() {
        let name = part.unwrap().file_name().into_string().unwrap();
        if let Ok(t) =
            chrono::NaiveDateTime::parse_from_str(&format!("{name}:00"), "%Y-%m-%d-%H:%M")
        {
            assert!(now - t.and_utc() < Span::hours(3), "{name} is still live");
        }
    }
    let late = sh(&format!(
        "find {} -name backfill.jsonl",
        shq(m.path("temporal"))
    ));
    assert_eq!(late, "", "late events merged");
    // A day's generated files count what it holds: its hours still live count there.
    let live_hours: BTreeSet<String> = names(&m.path("temporal/live")).into_iter().collect();
    for day in fs::read_dir(m.path("temporal/recent")).unwrap() {
        let day = day.unwrap().file_name().into_string().unwrap();
        if !day.starts_with("20") {
            continue;
        }
        let agg = read_json(&m.path(&format!("temporal/recent/{day}/aggregated.json")));
        let in_day = want
            .values()
            .filter(|t| {
                t.format("%Y-%m-%d").to_string() == day && !live_hours.contains(&hour_key(**t))
            })
            .count();
        assert_eq!(agg["count"], in_day as u64, "{day}: {agg}");
        let by_hour: u64 = agg["by_hour"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(by_hour, in_day as u64, "{agg}");
        let analytics = read_json(&m.path(&format!("temporal/recent/{day}/analytics.json")));
        assert_eq!(analytics["count"], in_day as u64, "{analytics}");
        assert!(
            analytics["storage"]["compressed_bytes"].as_u64().unwrap() > 0,
            "{analytics}"
        );
    }
    let month = hour_key(now - Span::days(45))[..7].to_string();
    let summary = read_json(&m.path(&format!("temporal/historical/{month}/summary.json")));
    let in_month = want
        .values()
        .filter(|t| t.format("%Y-%m").to_string() == month)
        .count();
    assert_eq!(summary["count"], in_month as u64, "{summary}");
    assert!(
        m.path(&format!("temporal/historical/{month}/indices.btree"))
            .exists()
    );

    // One hour of a month: only the blocks it needs are decompressed.
    set_policies(&m, serde_json::json!({ "block_kib": 4 }));
    let state = |m: &Mount| {
        read_json(&m.path("temporal/live/current_streams.state"))["blocks_decompressed"]
            .as_u64()
            .unwrap()
    };
    let hour_from = DateTime::parse_from_rfc3339(&format!(
        "{}T00:00:00Z",
        (now - Span::days(45)).format("%Y-%m-%d")
    ))
    .unwrap()
    .with_timezone(&Utc);
    let before = state(&m);
    let one = range_read(&m, hour_from, hour_from + Span::hours(1));
    let sub: BTreeMap<String, DateTime<Utc>> = want
        .iter()
        .filter(|(_, t)| **t >= hour_from && **t < hour_from + Span::hours(1))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_exactly_once(&one, &sub, "one hour");
    let blocks = read_json(&m.path(&format!("temporal/historical/{month}/summary.json")))["storage"]["blocks"].as_u64().unwrap();
    assert!(
        state(&m) - before < blocks.max(2),
        "{} of {blocks} blocks decompressed",
        state(&m) - before
    );

    m.kill9();
    m.remount();
    assert_exactly_once(&all_partitions(&m), &want, "partitions after kill -9");
    assert_exactly_once(&range_read(&m, from, to), &want, "range after kill -9");
}

/// `kill -9` at many points of maintenance: every event is still there exactly once
/// after each remount, and a later maintenance finishes the work.
#[test]
fn kill_9_during_maintenance_loses_and_duplicates_nothing() {
    let mut m = Mount::new();
    set_policies(
        &m,
        serde_json::json!({ "live_window_hours": 24 * 31, "recent_window_hours": 24 * 31, "maintenance_interval_secs": 86_400, "block_kib": 4 }),
    );
    let now = Utc::now();
    let mut want = BTreeMap::new();
    let mut lines = Vec::new();
    for h in 0..300i64 {
        for k in 0..20 {
            let t =
                DateTime::parse_from_rfc3339(&rfc3339(now - Span::hours(2 + h) + Span::seconds(k)))
                    .unwrap()
                    .with_timezone(&Utc);
            let id = format!("h{h}k{k}");
            want.insert(id.clone(), t);
            lines.push(event(&id, Some(t), "x"));
        }
    }
    for chunk in lines.chunks(500) {
        append(&m, STREAM, chunk);
    }
    let (from, to) = (now - Span::days(40), now + Span::days(1));
    set_policies(
        &m,
        serde_json::json!({ "live_window_hours": 1, "recent_window_hours": 24 }),
    );
    for delay_ms in [30u64, 120, 300, 700] {
        let control = m.path("temporal/maintain");
        let runner = std::thread::spawn(move || {
            let _ = fs::write(control, b"run\n");
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        m.kill9();
        let _ = runner.join();
        m.remount();
        assert_exactly_once(
            &all_partitions(&m),
            &want,
            &format!("partitions after kill at {delay_ms} ms"),
        );
    }
    let report = maintain(&m);
    assert!(report.get("errors").is_none(), "{report}");
    assert_exactly_once(&all_partitions(&m), &want, "after maintenance finished");
    assert_exactly_once(
        &range_read(&m, from, to),
        &want,
        "range after maintenance finished",
    );
}

#[test]
fn policies_apply_live_and_an_invalid_edit_is_einval() {
    let m = Mount::new();
    let before = get(&m.path(POLICIES));
    expect_errno(
        write_file(&m.path(POLICIES), b"{\"live_window_hours\": 0}"),
        &[libc::EINVAL],
        "a policy out of range",
    );
    assert_eq!(
        get(&m.path(POLICIES)),
        before,
        "the running policy is unchanged"
    );
    set_policies(&m, serde_json::json!({ "historical_retention_months": 3 }));
    let archive = read_json(&m.path("temporal/historical/archive_policy.json"));
    assert_eq!(archive["historical_retention_months"], 3);
    let retention = read_json(&m.path("temporal/recent/retention_policy.json"));
    assert_eq!(retention["recent_window_hours"], 24);
}
