//! `--queries`: QQL query workloads on 1,000,000 × scale records of 400 B, against the
//! two baselines a user would reach for, in the same run:
//!
//! - the mount: the records in one collection, `spacetime/warm_data/particles/qbench/`,
//!   with `.uid` and `.score` declared indexed; each query one open/write/pread/close of
//!   `qql/ask`, in this process;
//! - SQLite: the same records in one table `records(key TEXT PRIMARY KEY, doc TEXT)` with
//!   expression indexes on `json_extract(doc, '$.uid')` and `'$.score'`, asked by a
//!   long-lived `python3` child (Python's `sqlite3`) that reads one query a line from its
//!   stdin: its rate counts only the time inside Python around `execute` + `fetchall`
//!   (its start-up and the pipe are left out; the rate with the pipe's round trip is in
//!   the JSON too);
//! - jq: the same records as files in one native directory, each query a shell pipeline
//!   `find DIR -name '*.json' -print0 | xargs -0 jq …` (`| jq -s` to order, `| wc -l` to
//!   count, `| sort | uniq -c` to group), timed from the spawn of `bash -c` to its exit.
//!   It takes seconds per query at full scale, so it runs only `--jq-queries` of each
//!   workload.
//!
//! The records are written untimed (each fill's time is printed), every answer of every
//! side is checked against the one the client computes from the generated records, and
//! each workload reports queries/s per side, the mount's ratio to each baseline and the
//! issue's targets. The baselines run unpinned, as a user's shell would; the client
//! (this process) stays where `--cpu` put it; everything is in the page cache (each side
//! has an untimed first pass: the mount's and SQLite's first query, a `cat` of every
//! native record before the jq pipelines).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Value, json};

use crate::WorkDir;
use crate::daemon::{Daemon, DaemonOpts};
use crate::error::{Context, Error, Result};
use crate::report::{DaemonInfo, fmt_num, write_json};
use crate::rng::SplitMix64;
use crate::sys::{self, check_interrupt};
use crate::workloads::{self, RECORD_SIZE};

/// Records at `--scale 1`, and the fewest a run uses.
pub const BASE_RECORDS: f64 = 1_000_000.0;
pub const MIN_RECORDS: usize = 1000;
const COLLECTION: &str = "qbench";
/// Where the records are written on the mount.
const MOUNT_DIR: &str = "spacetime/warm_data/particles/qbench";
/// What queries name: the collection in every tier, as a user who lets the tiering
/// policy move records would write it.
const FROM: &str = "spacetime/*/particles/qbench";
/// `uid` of record i is UID_BASE + UID_STEP × i: unique, not the record's number, and in
/// the order of the keys (so that "ties by key" is "ties by uid" on every side).
const UID_BASE: u64 = 1_000_000;
const UID_STEP: u64 = 7;
/// Scores are uniform in 0..SCORE_RANGE (ties happen at every scale).
const SCORE_RANGE: usize = 1_000_000;
/// A range query's window of scores holds this many records on average (0.1% at scale 1).
const RANGE_ROWS: usize = 1000;
const LIMIT: usize = 10;
/// Each side's measured queries of a workload: at least the minimum and MEASURE_SECS of
/// query time, at most the maximum.
const MEASURE_SECS: f64 = 3.0;
/// The least the watchdog waits during the queries for one to finish.
const QUERY_STALL: Duration = Duration::from_secs(300);
/// "qbench" in ASCII.
const SEED: u64 = 0x7162_656e_6368;

#[rustfmt::skip]
const STATUSES: [&str; 8] = [
    "active", "pending", "suspended", "closed", "trial", "churned", "vip", "new",
];
#[rustfmt::skip]
const CITIES: [&str; 50] = [
    "Amsterdam", "Athens", "Barcelona", "Belgrade", "Berlin", "Bern", "Bordeaux",
    "Bratislava", "Brussels", "Bucharest", "Budapest", "Copenhagen", "Dublin", "Edinburgh",
    "Florence", "Frankfurt", "Geneva", "Genoa", "Hamburg", "Helsinki", "Krakow", "Lille",
    "Lisbon", "Ljubljana", "London", "Luxembourg", "Lyon", "Madrid", "Marseille", "Milan",
    "Munich", "Nantes", "Naples", "Nice", "Oslo", "Paris", "Porto", "Prague", "Riga",
    "Rome", "Rotterdam", "Seville", "Sofia", "Stockholm", "Tallinn", "Toulouse", "Turin",
    "Valencia", "Vienna", "Zurich",
];

/// The records' count for a scale.
pub fn records_for(scale: f64) -> usize {
    ((BASE_RECORDS * scale).round() as usize).max(MIN_RECORDS)
}

// ---------------------------------------------------------------------------------------
// The records and the answers they imply

/// What record i's content is drawn from.
#[derive(Clone, Copy)]
struct Fields {
    score: u32,
    status: u8,
    city: u8,
}

fn fields(i: usize) -> Fields {
    let mut r = SplitMix64::new(SEED.wrapping_add(i as u64));
    Fields {
        score: r.below(SCORE_RANGE) as u32,
        status: r.below(STATUSES.len()) as u8,
        city: r.below(CITIES.len()) as u8,
    }
}

fn uid(i: usize) -> u64 {
    UID_BASE + UID_STEP * i as u64
}

fn key(i: usize) -> String {
    format!("q{i:08}")
}

/// Record i: [`RECORD_SIZE`] bytes of JSON (one line, no tab: SQLite's loader relies on it).
fn body(i: usize, f: Fields) -> Vec<u8> {
    let head = format!(
        "{{\"uid\":{},\"score\":{},\"status\":\"{}\",\"city\":\"{}\",\"name\":\"user {}\",\
         \"email\":\"user{}@example.org\",\"created\":{},\"pad\":\"",
        uid(i),
        f.score,
        STATUSES[f.status as usize],
        CITIES[f.city as usize],
        key(i),
        i,
        1_767_225_600 + i as u64 * 31,
    );
    let tail = "\"}\n";
    let mut v = Vec::with_capacity(RECORD_SIZE.max(head.len() + tail.len()));
    v.extend_from_slice(head.as_bytes());
    v.resize(
        RECORD_SIZE.max(head.len() + tail.len()) - tail.len(),
        b'a' + (i % 26) as u8,
    );
    v.extend_from_slice(tail.as_bytes());
    v
}

/// Every answer, computed by the client from the records it generated.
struct Oracle {
    fields: Vec<Fields>,
    /// (score, i) by score descending, then i ascending: ORDER BY .score DESC and the tie.
    by_score: Vec<(u32, u32)>,
    /// Records by status, then city.
    counts: Vec<[u64; CITIES.len()]>,
}

impl Oracle {
    fn new(n: usize) -> Oracle {
        let fields: Vec<Fields> = (0..n).map(fields).collect();
        let mut by_score: Vec<(u32, u32)> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.score, i as u32))
            .collect();
        by_score.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut counts = vec![[0u64; CITIES.len()]; STATUSES.len()];
        for f in &fields {
            counts[f.status as usize][f.city as usize] += 1;
        }
        Oracle {
            fields,
            by_score,
            counts,
        }
    }

    fn expected(&self, q: &Query) -> Result<Value> {
        Ok(match *q {
            Query::Lookup(i) => {
                let doc = serde_json::from_slice(&body(i, self.fields[i]))
                    .ctx(|| format!("parse record {i}"))?;
                Value::Array(vec![doc])
            }
            Query::Range(a, b) => {
                let start = self.by_score.partition_point(|&(s, _)| s > b);
                let rows = self.by_score[start..]
                    .iter()
                    .take_while(|&&(s, _)| s >= a)
                    .take(LIMIT)
                    .map(|&(s, i)| json!([uid(i as usize), s]))
                    .collect();
                Value::Array(rows)
            }
            Query::Scan(s, c) => json!(self.counts[s][c]),
            Query::Group => {
                let groups: serde_json::Map<String, Value> = STATUSES
                    .iter()
                    .enumerate()
                    .map(|(s, name)| (name.to_string(), self.counts[s].iter().sum::<u64>()))
                    .filter(|(_, n)| *n > 0)
                    .map(|(name, n)| (name, json!(n)))
                    .collect();
                Value::Object(groups)
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// The workloads and their queries, in each side's language

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wq {
    Lookup,
    Range,
    Scan,
    Group,
}

const ALL: [Wq; 4] = [Wq::Lookup, Wq::Range, Wq::Scan, Wq::Group];

/// One query; its parameters index the generated values.
#[derive(Clone, Copy, Debug)]
enum Query {
    /// uid of record i
    Lookup(usize),
    /// score in a..=b
    Range(u32, u32),
    /// status index, city index
    Scan(usize, usize),
    Group,
}

const SQL_LOOKUP: &str = "SELECT doc FROM records WHERE json_extract(doc, '$.uid') = ?";
const SQL_RANGE: &str = "SELECT json_extract(doc, '$.uid'), json_extract(doc, '$.score') \
     FROM records WHERE json_extract(doc, '$.score') BETWEEN ? AND ? \
     ORDER BY json_extract(doc, '$.score') DESC, key LIMIT 10";
const SQL_SCAN: &str = "SELECT count(*) FROM records \
     WHERE json_extract(doc, '$.status') = ? AND json_extract(doc, '$.city') = ?";
const SQL_GROUP: &str = "SELECT json_extract(doc, '$.status'), count(*) FROM records GROUP BY 1";
const SQL_INDEXES: [&str; 2] = [
    "CREATE INDEX records_uid ON records(json_extract(doc, '$.uid'))",
    "CREATE INDEX records_score ON records(json_extract(doc, '$.score'))",
];

impl Wq {
    fn name(self) -> &'static str {
        match self {
            Wq::Lookup => "indexed_lookup",
            Wq::Range => "indexed_range",
            Wq::Scan => "full_scan",
            Wq::Group => "group_by",
        }
    }

    fn describe(self, n: usize) -> String {
        match self {
            Wq::Lookup => "uid = <a random existing uid>: the one record back".into(),
            Wq::Range => format!(
                "score in a random window holding ~{} of the {n} records, ORDER BY score DESC \
                 (ties by key), LIMIT {LIMIT}: uid and score back",
                RANGE_ROWS.min(n)
            ),
            Wq::Scan => format!(
                "status = <one of {}> AND city = <one of {}> (neither indexed): the count back",
                STATUSES.len(),
                CITIES.len()
            ),
            Wq::Group => "GROUP BY status, count(): a row per status back".into(),
        }
    }

    fn indexed(self) -> bool {
        matches!(self, Wq::Lookup | Wq::Range)
    }

    /// The issue's targets: (baseline, least mount/baseline ratio).
    fn targets(self) -> &'static [(&'static str, f64)] {
        match self {
            Wq::Lookup | Wq::Range => &[("jq", 100.0), ("sqlite", 0.2)],
            Wq::Scan => &[("jq", 10.0)],
            Wq::Group => &[],
        }
    }

    /// (least, most) measured queries per side, besides MEASURE_SECS.
    fn bounds(self) -> (usize, usize) {
        if self.indexed() {
            (100, 20_000)
        } else {
            (3, 200)
        }
    }

    /// Queries mount and SQLite alternate in, so that both see the same load.
    fn batch(self) -> usize {
        if self.indexed() { 50 } else { 1 }
    }

    /// `count` queries (the first is the untimed warm-up), the same for every side.
    fn queries(self, n: usize, count: usize) -> Vec<Query> {
        let mut r = SplitMix64::new(SEED ^ ((self as u64 + 1) << 32));
        let width = (RANGE_ROWS as u64 * SCORE_RANGE as u64)
            .div_ceil(n as u64)
            .clamp(1, SCORE_RANGE as u64) as usize;
        (0..count)
            .map(|_| match self {
                Wq::Lookup => Query::Lookup(r.below(n)),
                Wq::Range => {
                    let a = r.below(SCORE_RANGE - width + 1);
                    Query::Range(a as u32, (a + width - 1) as u32)
                }
                Wq::Scan => Query::Scan(r.below(STATUSES.len()), r.below(CITIES.len())),
                Wq::Group => Query::Group,
            })
            .collect()
    }

    fn sql(self) -> &'static str {
        match self {
            Wq::Lookup => SQL_LOOKUP,
            Wq::Range => SQL_RANGE,
            Wq::Scan => SQL_SCAN,
            Wq::Group => SQL_GROUP,
        }
    }
}

impl Query {
    fn qql(&self) -> String {
        match *self {
            Query::Lookup(i) => format!("FROM {FROM} WHERE .uid = {}", uid(i)),
            Query::Range(a, b) => format!(
                "FROM {FROM} WHERE .score >= {a} AND .score <= {b} SELECT .uid, .score \
                 ORDER BY .score DESC LIMIT {LIMIT}"
            ),
            Query::Scan(s, c) => format!(
                "FROM {FROM} WHERE .status = \"{}\" AND .city = \"{}\" SELECT count()",
                STATUSES[s], CITIES[c]
            ),
            Query::Group => format!("FROM {FROM} GROUP BY .status SELECT .status, count()"),
        }
    }

    fn params(&self) -> Value {
        match *self {
            Query::Lookup(i) => json!([uid(i)]),
            Query::Range(a, b) => json!([a, b]),
            Query::Scan(s, c) => json!([STATUSES[s], CITIES[c]]),
            Query::Group => json!([]),
        }
    }

    /// The shell pipeline over the native directory `dir`.
    fn jq(&self, dir: &Path) -> String {
        let find = format!(
            "find {} -name '*.json' -print0 | xargs -0 jq",
            shell_quote(&dir.display().to_string())
        );
        match *self {
            Query::Lookup(i) => format!("{find} -c 'select(.uid == {})'", uid(i)),
            Query::Range(a, b) => format!(
                "{find} -c 'select(.score >= {a} and .score <= {b}) | [.uid, .score]' \
                 | jq -cs 'sort_by(-.[1], .[0]) | .[:{LIMIT}]'"
            ),
            Query::Scan(s, c) => format!(
                "{find} -c 'select(.status == \"{}\" and .city == \"{}\") | .uid' | wc -l",
                STATUSES[s], CITIES[c]
            ),
            Query::Group => format!("{find} -r .status | sort | uniq -c"),
        }
    }

    /// The mount's answer (a JSON array of rows) in the form [`Oracle::expected`] gives.
    fn mount_answer(&self, answer: &[u8]) -> Result<Value> {
        let v: Value = serde_json::from_slice(answer).ctx(|| "parse the answer")?;
        if let Some(e) = v.get("error") {
            return Err(Error::msg(format!("the mount answered an error: {e}")));
        }
        let rows = v
            .as_array()
            .ok_or_else(|| Error::msg(format!("the answer is not an array: {v}")))?;
        let field = |r: &Value, f: &str| {
            r.get(f)
                .cloned()
                .ok_or_else(|| Error::msg(format!("a row without {f:?}: {r}")))
        };
        Ok(match self {
            Query::Lookup(_) => v.clone(),
            Query::Range(..) => Value::Array(
                rows.iter()
                    .map(|r| Ok(json!([field(r, "uid")?, field(r, "score")?])))
                    .collect::<Result<_>>()?,
            ),
            Query::Scan(..) => match rows.as_slice() {
                [] => json!(0),
                [r] => field(r, "count")?,
                _ => return Err(Error::msg(format!("more than one count: {v}"))),
            },
            Query::Group => Value::Object(
                rows.iter()
                    .map(|r| {
                        let status = field(r, "status")?;
                        let s = status
                            .as_str()
                            .ok_or_else(|| Error::msg(format!("a status not a string: {r}")))?;
                        Ok((s.to_string(), field(r, "count")?))
                    })
                    .collect::<Result<_>>()?,
            ),
        })
    }

    /// SQLite's rows (arrays of columns), likewise.
    fn sqlite_answer(&self, rows: &Value) -> Result<Value> {
        let rows = rows
            .as_array()
            .ok_or_else(|| Error::msg(format!("rows are not an array: {rows}")))?;
        Ok(match self {
            Query::Lookup(_) => Value::Array(
                rows.iter()
                    .map(|r| {
                        let doc = r[0].as_str().unwrap_or_default();
                        serde_json::from_str(doc).ctx(|| format!("parse the document {doc:?}"))
                    })
                    .collect::<Result<_>>()?,
            ),
            Query::Range(..) => Value::Array(rows.clone()),
            Query::Scan(..) => rows.first().map_or(Value::Null, |r| r[0].clone()),
            Query::Group => Value::Object(
                rows.iter()
                    .filter_map(|r| Some((r[0].as_str()?.to_string(), r[1].clone())))
                    .collect(),
            ),
        })
    }

    /// The pipeline's output, likewise.
    fn jq_answer(&self, out: &[u8]) -> Result<Value> {
        let text = String::from_utf8_lossy(out);
        let lines = text.lines().filter(|l| !l.trim().is_empty());
        Ok(match self {
            Query::Lookup(_) => Value::Array(
                lines
                    .map(|l| serde_json::from_str(l).ctx(|| format!("parse {l:?}")))
                    .collect::<Result<_>>()?,
            ),
            Query::Range(..) => {
                let t = text.trim();
                serde_json::from_str(t).ctx(|| format!("parse {t:?}"))?
            }
            Query::Scan(..) => {
                let t = text.trim();
                json!(t.parse::<u64>().ctx(|| format!("parse the count {t:?}"))?)
            }
            Query::Group => Value::Object(
                lines
                    .map(|l| {
                        let (count, status) = l
                            .trim()
                            .split_once(' ')
                            .ok_or_else(|| Error::msg(format!("a line of uniq -c: {l:?}")))?;
                        let count: u64 = count.parse().ctx(|| format!("parse {l:?}"))?;
                        Ok((status.to_string(), json!(count)))
                    })
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------
// The three sides

/// Asks the mount `query` through `qql/ask`: one open (read-write), write, preads from
/// offset 0 until EOF, close. The answer lands in `buf`.
fn ask(control: &Path, query: &str, buf: &mut Vec<u8>, chunk: &mut [u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(control)
        .ctx(|| format!("open {}", control.display()))?;
    f.write_all(query.as_bytes())
        .ctx(|| format!("write the query to {}", control.display()))?;
    buf.clear();
    loop {
        let k = f
            .read_at(chunk, buf.len() as u64)
            .ctx(|| format!("read the answer from {}", control.display()))?;
        if k == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..k]);
    }
    workloads::close(f, control)
}

/// A child process in its own process group, killed with everything it started when
/// the guard is dropped before it exited.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: killpg(2) of the process group our child leads (own_group).
            unsafe { libc::killpg(self.0.id() as libc::pid_t, libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}

fn all_cpus() -> Vec<usize> {
    (0..sys::online_cpus()).collect()
}

/// Runs `bash -c 'set -o pipefail; PIPELINE'`; its stdout and the seconds from the spawn
/// until it exited. Polls, so that Ctrl-C ends it and the watchdog sees progress.
fn pipeline(text: &str) -> Result<(Vec<u8>, f64)> {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -o pipefail; {text}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    sys::own_group(&mut cmd, all_cpus());
    let t0 = Instant::now();
    let mut g = Group(cmd.spawn().ctx(|| "start bash")?);
    let out = drain(g.0.stdout.take());
    let err = drain(g.0.stderr.take());
    let status = loop {
        check_interrupt()?;
        if let Some(s) = g.0.try_wait().ctx(|| "wait for the pipeline")? {
            break s;
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let secs = t0.elapsed().as_secs_f64();
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        return Err(Error::msg(format!(
            "`{text}` exited with {status}: {}",
            String::from_utf8_lossy(&err).trim()
        )));
    }
    Ok((out, secs))
}

/// Reads `r` to its end on a thread of its own (a pipe must not fill while we wait).
fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut v);
        }
        v
    })
}

/// The Python side: reads one JSON request a line, answers one JSON line.
const SQLITE_PY: &str = r#"
import json, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
inp, out = sys.stdin, sys.stdout
def reply(obj):
    out.write(json.dumps(obj) + "\n")
    out.flush()
while True:
    line = inp.readline()
    if not line:
        break
    try:
        req = json.loads(line)
        op = req["op"]
        if op == "load":
            n = req["n"]
            t = time.perf_counter()
            db.execute("CREATE TABLE records(key TEXT PRIMARY KEY, doc TEXT)")
            def rows():
                for _ in range(n):
                    k, _, d = inp.readline().rstrip("\n").partition("\t")
                    yield k, d
            with db:
                db.executemany("INSERT INTO records(key, doc) VALUES (?, ?)", rows())
            reply({"secs": time.perf_counter() - t})
        elif op == "exec":
            t = time.perf_counter()
            with db:
                db.execute(req["sql"])
            reply({"secs": time.perf_counter() - t})
        elif op == "query":
            t = time.perf_counter()
            rows = db.execute(req["sql"], req["params"]).fetchall()
            secs = time.perf_counter() - t
            reply({"rows": rows, "secs": secs})
        elif op == "plan":
            rows = db.execute("EXPLAIN QUERY PLAN " + req["sql"], req["params"]).fetchall()
            reply({"rows": [r[-1] for r in rows]})
        elif op == "version":
            reply({"sqlite": sqlite3.sqlite_version, "python": sys.version.split()[0]})
        else:
            raise ValueError("unknown op " + repr(op))
    except Exception as e:
        reply({"error": type(e).__name__ + ": " + str(e)})
        sys.exit(1)
"#;

struct Sqlite {
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    line: String,
    // Last: dropped (killed if still running) after its pipes are closed.
    child: Group,
}

impl Sqlite {
    /// Writes the script next to the database (where `--keep` leaves both) and starts it.
    fn start(db: &Path) -> Result<Sqlite> {
        let script = db.with_extension("py");
        std::fs::write(&script, SQLITE_PY).ctx(|| format!("write {}", script.display()))?;
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        sys::own_group(&mut cmd, all_cpus());
        let mut child = Group(cmd.spawn().ctx(|| "start python3 (for SQLite)")?);
        let (Some(stdin), Some(stdout)) = (child.0.stdin.take(), child.0.stdout.take()) else {
            return Err(Error::msg("python3's pipes are missing"));
        };
        Ok(Sqlite {
            stdin: BufWriter::with_capacity(1 << 16, stdin),
            stdout: BufReader::new(stdout),
            line: String::new(),
            child,
        })
    }

    fn send(&mut self, req: &Value) -> Result<()> {
        let mut text = req.to_string();
        text.push('\n');
        self.stdin
            .write_all(text.as_bytes())
            .and_then(|_| self.stdin.flush())
            .ctx(|| "send a request to the SQLite helper (python3)")
    }

    fn receive(&mut self) -> Result<Value> {
        self.line.clear();
        let k = self
            .stdout
            .read_line(&mut self.line)
            .ctx(|| "read the SQLite helper's answer")?;
        if k == 0 {
            let status = self.child.0.wait().map(|s| s.to_string());
            return Err(Error::msg(format!(
                "the SQLite helper (python3) exited ({}) without answering",
                status.unwrap_or_else(|e| e.to_string())
            )));
        }
        let v: Value =
            serde_json::from_str(&self.line).ctx(|| "parse the SQLite helper's answer")?;
        if let Some(e) = v.get("error") {
            return Err(Error::msg(format!("SQLite helper: {e}")));
        }
        Ok(v)
    }

    fn request(&mut self, req: &Value) -> Result<Value> {
        self.send(req)?;
        self.receive()
    }

    /// Inserts the records in one transaction (the table made first); seconds taken.
    fn load(&mut self, n: usize, oracle: &Oracle) -> Result<f64> {
        self.send(&json!({"op": "load", "n": n}))?;
        for (i, &f) in oracle.fields.iter().enumerate() {
            check_interrupt()?;
            let mut doc = body(i, f);
            doc.pop(); // the newline ends the line instead
            let line = [key(i).as_bytes(), b"\t", &doc, b"\n"].concat();
            self.stdin
                .write_all(&line)
                .ctx(|| "send a record to the SQLite helper")?;
        }
        self.stdin.flush().ctx(|| "send the records")?;
        Ok(self.receive()?["secs"].as_f64().unwrap_or(0.0))
    }

    /// Rows, seconds inside Python, seconds of the round trip.
    fn query(&mut self, sql: &str, params: &Value) -> Result<(Value, f64, f64)> {
        let t0 = Instant::now();
        let mut v = self.request(&json!({"op": "query", "sql": sql, "params": params}))?;
        let round_trip = t0.elapsed().as_secs_f64();
        Ok((
            v["rows"].take(),
            v["secs"].as_f64().unwrap_or(round_trip),
            round_trip,
        ))
    }

    fn plan(&mut self, sql: &str, params: &Value) -> Result<Vec<String>> {
        let v = self.request(&json!({"op": "plan", "sql": sql, "params": params}))?;
        Ok(v["rows"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn finish(mut self) -> Result<()> {
        self.stdin
            .flush()
            .ctx(|| "flush the SQLite helper's stdin")?;
        let Sqlite { stdin, child, .. } = self;
        drop(stdin);
        let mut child = child;
        let status = child.0.wait().ctx(|| "wait for the SQLite helper")?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "the SQLite helper exited with {status}"
            )))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Measuring and reporting

/// One side's measured queries of one workload.
#[derive(Debug, Serialize, Default)]
struct SideStats {
    queries: usize,
    secs: f64,
    queries_per_sec: f64,
    median_ms: f64,
    max_ms: f64,
}

impl SideStats {
    fn of(secs: &[f64]) -> SideStats {
        if secs.is_empty() {
            return SideStats::default();
        }
        let total: f64 = secs.iter().sum();
        let mut v = secs.to_vec();
        v.sort_by(f64::total_cmp);
        SideStats {
            queries: v.len(),
            secs: total,
            queries_per_sec: v.len() as f64 / total.max(1e-9),
            median_ms: v[v.len() / 2] * 1000.0,
            max_ms: v[v.len() - 1] * 1000.0,
        }
    }
}

#[derive(Debug, Serialize)]
struct Target {
    against: &'static str,
    /// The mount's queries/s over the baseline's must be at least this.
    min_ratio: f64,
    ratio: f64,
    met: bool,
}

#[derive(Debug, Serialize)]
struct QueryRow {
    name: &'static str,
    description: String,
    /// The first measured query in each side's language.
    qql: String,
    sql: &'static str,
    jq: String,
    mount: SideStats,
    /// Time inside Python around execute + fetchall.
    sqlite: SideStats,
    /// The same queries timed by the client: request and answer through the pipe.
    sqlite_round_trip: SideStats,
    jq_pipeline: SideStats,
    mount_vs_sqlite: f64,
    mount_vs_sqlite_round_trip: f64,
    mount_vs_jq: f64,
    targets: Vec<Target>,
    /// The untimed first query on the mount (for the indexed workloads: builds the index).
    mount_first_query_secs: f64,
    /// The untimed read of every native record (`xargs cat`) before the jq pipelines.
    native_warm_secs: f64,
    /// `plan.collections` of the mount's optimization log for the first query.
    mount_plan: Value,
    /// SQLite's EXPLAIN QUERY PLAN of the first query.
    sqlite_plan: Vec<String>,
    /// Answers checked against the client's own (every one of every side).
    answers_verified: usize,
    /// From the daemon's `performance.csv`, over the measured queries: the median time
    /// of a run inside the daemon (planning excluded) and rows it read.
    mount_daemon_run_micros_median: Option<f64>,
    mount_rows_scanned_median: Option<f64>,
    /// Per query, the client's time less the daemon's run: FUSE requests, parsing and
    /// planning, rendering (median).
    mount_outside_run_micros_median: Option<f64>,
    /// From `optimization_log.json` (its last 100 plans): the median time to parse and
    /// plan a query text not planned before, and how many of those plans it holds.
    mount_planning_micros_median: Option<f64>,
    mount_plans_logged: usize,
    /// The daemon's VmRSS and VmHWM when the workload's mount queries were done.
    daemon_rss_kib_after: u64,
    daemon_peak_rss_kib_after: u64,
}

#[derive(Debug, Serialize)]
struct Fills {
    /// open/write/close of each record on the mount, one directory.
    mount_secs: f64,
    native_secs: f64,
    /// The inserts in one transaction (Python's time, the records sent through the pipe).
    sqlite_insert_secs: f64,
    sqlite_index_secs: f64,
    sqlite_db_bytes: u64,
    /// One readdir of the whole collection directory, counted.
    mount_listing_secs: f64,
    native_listing_secs: f64,
    /// The daemon's RSS after the mount's fill.
    mount_rss_kib_after_fill: u64,
}

#[derive(Debug, Serialize)]
struct QueriesReport {
    tool: &'static str,
    mode: &'static str,
    started_unix: u64,
    duration_secs: f64,
    scale: f64,
    records: usize,
    record_bytes: usize,
    kernel: String,
    workdir: String,
    fs_type: String,
    native_fs: String,
    client_cpus: String,
    client_pinned: bool,
    /// Where python3 and the jq pipelines ran.
    baseline_cpus: String,
    sqlite_version: String,
    python_version: String,
    jq_version: String,
    mount_from: &'static str,
    measure_secs: f64,
    jq_queries_per_workload: usize,
    fills: Fills,
    workloads: Vec<QueryRow>,
    targets_met: usize,
    targets_total: usize,
    daemon: Option<DaemonInfo>,
}

/// Measured seconds per query; `done` when the workload's bounds say so.
struct Meter {
    secs: Vec<f64>,
    total: f64,
}

impl Meter {
    fn new() -> Meter {
        Meter {
            secs: Vec::new(),
            total: 0.0,
        }
    }

    fn push(&mut self, s: f64) {
        self.secs.push(s);
        self.total += s;
    }

    fn done(&self, (least, most): (usize, usize)) -> bool {
        self.secs.len() >= most || (self.secs.len() >= least && self.total >= MEASURE_SECS)
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

/// Checks one side's answer to query `k` of a workload.
fn check(wl: Wq, side: &str, k: usize, q: &Query, got: Value, want: &Value) -> Result<()> {
    if &got == want {
        return Ok(());
    }
    let cut = |v: &Value| {
        let s = v.to_string();
        if s.chars().count() > 600 {
            format!("{}…", s.chars().take(600).collect::<String>())
        } else {
            s
        }
    };
    Err(Error::msg(format!(
        "{} query {k} on {side} gave a wrong answer to {}:\n  got      {}\n  expected {}",
        wl.name(),
        q.qql(),
        cut(&got),
        cut(want)
    )))
}

/// The plan the mount's optimization log holds for `text` (its `collections`).
fn mount_plan(mnt: &Path, text: &str) -> Value {
    let path = mnt.join("qql/query_analytics/optimization_log.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return Value::Null;
    };
    let Ok(log) = serde_json::from_slice::<Value>(&bytes) else {
        return Value::Null;
    };
    log["latest_first"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["text"] == text))
        .map_or(Value::Null, |e| e["plan"]["collections"].clone())
}

/// The median planning time of the logged plans of `texts`, and how many there are.
fn planning_micros(mnt: &Path, texts: &std::collections::HashSet<String>) -> (Option<f64>, usize) {
    let path = mnt.join("qql/query_analytics/optimization_log.json");
    let log: Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let micros: Vec<f64> = log["latest_first"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["text"].as_str().is_some_and(|t| texts.contains(t)))
                .filter_map(|e| e["planning_micros"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    (median(&micros), micros.len())
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The daemon's own line for each execution (`performance.csv`, appended every second):
/// (rows scanned, micros). Waits up to 10 s for `want` of them.
fn executions(mnt: &Path, want: usize) -> Result<Vec<(f64, f64)>> {
    let path = mnt.join("qql/query_analytics/performance.csv");
    let t0 = Instant::now();
    loop {
        check_interrupt()?;
        let text = std::fs::read_to_string(&path).ctx(|| format!("read {}", path.display()))?;
        // time,query,rows_scanned,rows_returned,index,micros (only `index` may be quoted)
        let runs: Vec<(f64, f64)> = text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let scanned = l.split(',').nth(2)?.parse().ok()?;
                let micros = l.rsplit(',').next()?.parse().ok()?;
                Some((scanned, micros))
            })
            .collect();
        if runs.len() >= want || t0.elapsed() > Duration::from_secs(10) {
            return Ok(runs);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn describe_plan(plan: &Value) -> String {
    let Some(cs) = plan.as_array() else {
        return "(not in the optimization log)".into();
    };
    cs.iter()
        .map(|c| {
            let access = c["access"].as_str().unwrap_or("?");
            match c["index"].as_str() {
                Some(ix) => format!("{access} on {ix}"),
                None => format!("{access} ({})", c["why"].as_str().unwrap_or("")),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Counts a directory's entries with one readdir pass; (entries, seconds).
fn list(dir: &Path) -> Result<(usize, f64)> {
    let t0 = Instant::now();
    let mut n = 0;
    for e in std::fs::read_dir(dir).ctx(|| format!("readdir {}", dir.display()))? {
        e.ctx(|| format!("readdir {}", dir.display()))?;
        n += 1;
        if n % 10_000 == 0 {
            check_interrupt()?;
        }
    }
    Ok((n, t0.elapsed().as_secs_f64()))
}

/// Writes every record into `dir` (open/write/close each); seconds taken. `progress`
/// is called at every tenth.
fn fill(
    dir: &Path,
    oracle: &Oracle,
    mut progress: impl FnMut(usize, f64) -> Result<()>,
) -> Result<f64> {
    std::fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))?;
    let n = oracle.fields.len();
    let step = (n / 10).max(1);
    let t0 = Instant::now();
    for (i, &f) in oracle.fields.iter().enumerate() {
        check_interrupt()?;
        let path = dir.join(format!("{}.json", key(i)));
        workloads::write_file(&path, &body(i, f), false)?;
        if (i + 1) % step == 0 || i + 1 == n {
            progress(i + 1, t0.elapsed().as_secs_f64())?;
        }
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// What one workload's measurement uses.
struct Sides<'a> {
    n: usize,
    oracle: &'a Oracle,
    mnt: &'a Path,
    /// `qql/ask`
    control: PathBuf,
    native_dir: &'a Path,
    sqlite: &'a mut Sqlite,
    daemon: &'a mut Daemon,
    jq_queries: usize,
    buf: Vec<u8>,
    chunk: Vec<u8>,
}

/// One workload on the three sides: its row, and the mount's measured seconds per query.
fn workload(wl: Wq, x: &mut Sides<'_>) -> Result<(QueryRow, Vec<f64>)> {
    let bounds = wl.bounds();
    let qs = wl.queries(x.n, bounds.1.max(x.jq_queries) + 1);
    let want: Vec<Value> = qs
        .iter()
        .map(|q| x.oracle.expected(q))
        .collect::<Result<_>>()?;
    let mut verified = 0;

    // Untimed first query on each side: builds the mount's index, warms both.
    let (first, rest) = qs.split_first().ok_or_else(|| Error::msg("no queries"))?;
    let t0 = Instant::now();
    ask(&x.control, &first.qql(), &mut x.buf, &mut x.chunk)
        .ctx(|| format!("{} on the mount: {}", wl.name(), first.qql()))?;
    let mount_first_query_secs = t0.elapsed().as_secs_f64();
    check(
        wl,
        "the mount",
        0,
        first,
        first.mount_answer(&x.buf)?,
        &want[0],
    )?;
    let mount_plan = mount_plan(x.mnt, &first.qql());
    let (rows0, _, _) = x.sqlite.query(wl.sql(), &first.params())?;
    check(
        wl,
        "SQLite",
        0,
        first,
        first.sqlite_answer(&rows0)?,
        &want[0],
    )?;
    let sqlite_plan = x.sqlite.plan(wl.sql(), &first.params())?;
    verified += 2;
    println!(
        "{}: first query (untimed) on the mount {:.3} s; mount plan: {}; SQLite plan: {}",
        wl.name(),
        mount_first_query_secs,
        describe_plan(&mount_plan),
        sqlite_plan.join("; ")
    );
    if wl.indexed() && !describe_plan(&mount_plan).starts_with("index") {
        println!(
            "  WARNING: the mount did not use its index for {}",
            wl.name()
        );
    }
    if wl.indexed() && !sqlite_plan.iter().any(|p| p.contains("INDEX")) {
        println!("  WARNING: SQLite did not use its index for {}", wl.name());
    }

    let (mut m, mut sq, mut rt) = (Meter::new(), Meter::new(), Vec::new());
    let mut texts = std::collections::HashSet::new();
    while !(m.done(bounds) && sq.done(bounds)) {
        for _ in 0..wl.batch() {
            if m.done(bounds) {
                break;
            }
            check_interrupt()?;
            let k = m.secs.len() + 1;
            let q = &qs[k];
            let text = q.qql();
            let t0 = Instant::now();
            ask(&x.control, &text, &mut x.buf, &mut x.chunk)
                .ctx(|| format!("{} on the mount: {text}", wl.name()))?;
            m.push(t0.elapsed().as_secs_f64());
            texts.insert(text);
            check(wl, "the mount", k, q, q.mount_answer(&x.buf)?, &want[k])?;
            verified += 1;
        }
        for _ in 0..wl.batch() {
            if sq.done(bounds) {
                break;
            }
            check_interrupt()?;
            let k = sq.secs.len() + 1;
            let q = &qs[k];
            let (got, inside, round_trip) = x.sqlite.query(wl.sql(), &q.params())?;
            sq.push(inside);
            rt.push(round_trip);
            check(wl, "SQLite", k, q, q.sqlite_answer(&got)?, &want[k])?;
            verified += 1;
        }
    }
    x.daemon.check_alive()?;
    let mem = x.daemon.status()?;
    let (planning, plans) = planning_micros(x.mnt, &texts);

    // The pipelines meet the records in the page cache, as the mount and SQLite met theirs
    // after their first query: the fills and the daemon may have pushed some out.
    let (_, native_warm_secs) = pipeline(&format!(
        "find {} -name '*.json' -print0 | xargs -0 cat > /dev/null",
        x.native_dir.display()
    ))
    .ctx(|| format!("{}: reading the native records once", wl.name()))?;
    println!(
        "{}: native records read once, untimed, before the jq pipelines: {native_warm_secs:.1} s",
        wl.name()
    );
    let mut jq = Vec::new();
    for (k, q) in rest.iter().enumerate().take(x.jq_queries) {
        let (out, secs) = pipeline(&q.jq(x.native_dir))
            .ctx(|| format!("{} with jq, query {}", wl.name(), k + 1))?;
        jq.push(secs);
        check(wl, "jq", k + 1, q, q.jq_answer(&out)?, &want[k + 1])?;
        verified += 1;
    }

    let (mount, sqlite_s, round_trip, jq) = (
        SideStats::of(&m.secs),
        SideStats::of(&sq.secs),
        SideStats::of(&rt),
        SideStats::of(&jq),
    );
    let vs_sqlite = ratio(mount.queries_per_sec, sqlite_s.queries_per_sec);
    let vs_jq = ratio(mount.queries_per_sec, jq.queries_per_sec);
    let targets = wl
        .targets()
        .iter()
        .map(|&(against, min_ratio)| {
            let r = if against == "jq" { vs_jq } else { vs_sqlite };
            Target {
                against,
                min_ratio,
                ratio: r,
                met: r >= min_ratio,
            }
        })
        .collect();
    let row = QueryRow {
        name: wl.name(),
        description: wl.describe(x.n),
        qql: rest[0].qql(),
        sql: wl.sql(),
        jq: rest[0].jq(x.native_dir),
        mount_vs_sqlite: vs_sqlite,
        mount_vs_sqlite_round_trip: ratio(mount.queries_per_sec, round_trip.queries_per_sec),
        mount_vs_jq: vs_jq,
        mount,
        sqlite: sqlite_s,
        sqlite_round_trip: round_trip,
        jq_pipeline: jq,
        targets,
        mount_first_query_secs,
        native_warm_secs,
        mount_plan,
        sqlite_plan,
        answers_verified: verified,
        mount_daemon_run_micros_median: None,
        mount_rows_scanned_median: None,
        mount_outside_run_micros_median: None,
        mount_planning_micros_median: planning,
        mount_plans_logged: plans,
        daemon_rss_kib_after: mem.vm_rss_kib,
        daemon_peak_rss_kib_after: mem.vm_hwm_kib,
    };
    print_row(&row);
    Ok((row, m.secs))
}

pub struct Setup<'a> {
    pub scale: f64,
    pub jq_queries: usize,
    pub opts: &'a DaemonOpts,
    pub work: &'a WorkDir,
    pub json: &'a Path,
    pub stall: Duration,
    pub client_cpus: String,
    pub pinned: bool,
}

pub fn run(s: &Setup<'_>) -> Result<()> {
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let n = records_for(s.scale);
    let work = s.work;

    // The baselines' tools first: no point filling anything without them.
    let (jq_out, _) = pipeline("jq --version").ctx(|| "jq is needed for the native baseline")?;
    let jq_version = String::from_utf8_lossy(&jq_out).trim().to_string();
    let db_path = work.root.join("qbench.sqlite");
    let mut sqlite = Sqlite::start(&db_path)?;
    let v = sqlite
        .request(&json!({"op": "version"}))
        .ctx(|| "python3 with its sqlite3 module is needed for the SQLite baseline")?;
    let sqlite_version = v["sqlite"].as_str().unwrap_or("?").to_string();
    let python_version = v["python"].as_str().unwrap_or("?").to_string();
    println!(
        "queries mode: {n} records of {RECORD_SIZE} B; mount: {MOUNT_DIR}/ (one directory), \
         queried as {FROM}; SQLite {sqlite_version} (Python {python_version}); {jq_version}; \
         python3 and the jq pipelines unpinned on CPUs {}",
        sys::cpu_list(&all_cpus())
    );

    let oracle = Oracle::new(n);
    let (mut d, ready) = Daemon::start(
        s.opts,
        &work.data,
        &work.mnt,
        &work.root.join("daemon.log"),
        Duration::from_secs(15),
    )?;
    println!(
        "mounted fresh universe in {:.0} ms (daemon pid {}, --cache-mb {})",
        ready.as_secs_f64() * 1000.0,
        d.pid(),
        s.opts.cache_mb
    );

    // Fills, untimed as far as the queries go.
    let mount_dir = work.mnt.join(MOUNT_DIR);
    let watchdog = sys::Watchdog::start(d.pid(), s.stall);
    println!("filling the mount ({MOUNT_DIR}/):");
    let mount_secs = fill(&mount_dir, &oracle, |done, secs| {
        d.check_alive()?;
        let st = d.status()?;
        println!(
            "  {done:>9} records, {secs:>7.1} s, {:>8.0} records/s, daemon RSS {:.1} MiB (peak {:.1})",
            done as f64 / secs.max(1e-9),
            mib(st.vm_rss_kib),
            mib(st.vm_hwm_kib)
        );
        Ok(())
    })?;
    let after_fill = d.status()?;
    let (listed, mount_listing_secs) = list(&mount_dir)?;
    drop(watchdog);
    if listed != n {
        return Err(Error::msg(format!(
            "{} lists {listed} entries after the fill, expected {n}",
            mount_dir.display()
        )));
    }
    let schema =
        json!({"version": 1, "collections": {COLLECTION: {"indexes": [".uid", ".score"]}}});
    let schema_path = work.mnt.join("qql/schema/universe_schema.json");
    workloads::write_file(&schema_path, schema.to_string().as_bytes(), false)
        .ctx(|| "declare the indexes")?;

    let native_dir = work.native.join(COLLECTION);
    let native_secs = fill(&native_dir, &oracle, |_, _| Ok(()))?;
    let (native_listed, native_listing_secs) = list(&native_dir)?;
    if native_listed != n {
        return Err(Error::msg(format!(
            "{} lists {native_listed} entries, expected {n}",
            native_dir.display()
        )));
    }

    let sqlite_insert_secs = sqlite.load(n, &oracle)?;
    let mut sqlite_index_secs = 0.0;
    for ddl in SQL_INDEXES {
        sqlite_index_secs += sqlite.request(&json!({"op": "exec", "sql": ddl}))?["secs"]
            .as_f64()
            .unwrap_or(0.0);
    }
    let sqlite_db_bytes = std::fs::metadata(&db_path).map_or(0, |m| m.len());
    sys::syncfs(&work.native)?;
    let fills = Fills {
        mount_secs,
        native_secs,
        sqlite_insert_secs,
        sqlite_index_secs,
        sqlite_db_bytes,
        mount_listing_secs,
        native_listing_secs,
        mount_rss_kib_after_fill: after_fill.vm_rss_kib,
    };
    println!(
        "fills: mount {:.1} s ({:.0} records/s), native {:.1} s ({:.0}/s), SQLite inserts {:.1} s \
         + 2 indexes {:.1} s ({:.1} MiB); a readdir of the whole directory: mount {:.2} s, \
         native {:.2} s; daemon RSS after the fill {:.1} MiB",
        mount_secs,
        n as f64 / mount_secs.max(1e-9),
        native_secs,
        n as f64 / native_secs.max(1e-9),
        sqlite_insert_secs,
        sqlite_index_secs,
        sqlite_db_bytes as f64 / 1048576.0,
        mount_listing_secs,
        native_listing_secs,
        mib(after_fill.vm_rss_kib)
    );
    println!(
        "measuring: per workload, mount and SQLite alternate until each has {MEASURE_SECS} s of \
         query time (within bounds), then {} jq pipelines; every answer is checked",
        s.jq_queries
    );

    let mut rows = Vec::new();
    let mut client_secs = Vec::new();
    // One query over a million records legitimately takes tens of seconds without a
    // sign of progress (an index's first build, a group-by): a longer leash here.
    let watchdog = sys::Watchdog::start(d.pid(), s.stall.max(QUERY_STALL));
    let mut sides = Sides {
        n,
        oracle: &oracle,
        mnt: &work.mnt,
        control: work.mnt.join("qql/ask"),
        native_dir: &native_dir,
        sqlite: &mut sqlite,
        daemon: &mut d,
        jq_queries: s.jq_queries,
        buf: Vec::new(),
        chunk: vec![0u8; 1 << 17],
    };
    for wl in ALL {
        let (row, secs) = workload(wl, &mut sides)?;
        rows.push(row);
        client_secs.push(secs);
    }
    drop(sides);
    // Split the daemon's record of executions by workload: each asked 1 + measured.
    let asked: usize = rows.iter().map(|r| 1 + r.mount.queries).sum();
    let runs = executions(&work.mnt, asked)?;
    if runs.len() == asked {
        let mut at = 0;
        for (r, client) in rows.iter_mut().zip(&client_secs) {
            let measured = &runs[at + 1..at + 1 + r.mount.queries];
            at += 1 + r.mount.queries;
            let (scanned, micros): (Vec<f64>, Vec<f64>) = measured.iter().copied().unzip();
            let outside: Vec<f64> = client
                .iter()
                .zip(&micros)
                .map(|(c, d)| c * 1e6 - d)
                .collect();
            r.mount_rows_scanned_median = median(&scanned);
            r.mount_daemon_run_micros_median = median(&micros);
            r.mount_outside_run_micros_median = median(&outside);
        }
    } else {
        println!(
            "note: performance.csv holds {} executions, {asked} were asked: the daemon's own \
             times are left out",
            runs.len()
        );
    }
    drop(watchdog);
    sqlite.finish()?;

    let st = d.status()?;
    let stopped = d.stop(Duration::from_secs(300));
    let daemon = DaemonInfo {
        path: s.opts.path.display().to_string(),
        pid: d.pid(),
        cache_mb: s.opts.cache_mb,
        threads_arg: s.opts.threads,
        ready_secs: ready.as_secs_f64(),
        peak_rss_kib: st.vm_hwm_kib,
        rss_kib_at_end: st.vm_rss_kib,
        peak_growth: None,
        shutdown_secs: stopped.as_ref().ok().map(|s| s.shutdown.as_secs_f64()),
        log: d.log_path().display().to_string(),
    };
    let targets_total = rows.iter().map(|r| r.targets.len()).sum();
    let targets_met = rows
        .iter()
        .flat_map(|r| &r.targets)
        .filter(|t| t.met)
        .count();
    let report = QueriesReport {
        tool: "islabdb-bench",
        mode: "queries",
        started_unix,
        duration_secs: started.elapsed().as_secs_f64(),
        scale: s.scale,
        records: n,
        record_bytes: RECORD_SIZE,
        kernel: sys::kernel_release(),
        workdir: work.root.display().to_string(),
        fs_type: work.fs_type.clone(),
        native_fs: sys::describe_fs(&work.native),
        client_cpus: s.client_cpus.clone(),
        client_pinned: s.pinned,
        baseline_cpus: sys::cpu_list(&all_cpus()),
        sqlite_version,
        python_version,
        jq_version,
        mount_from: FROM,
        measure_secs: MEASURE_SECS,
        jq_queries_per_workload: s.jq_queries,
        fills,
        workloads: rows,
        targets_met,
        targets_total,
        daemon: Some(daemon),
    };
    print_summary(&report);
    write_json(&report, s.json)?;
    println!(
        "wrote {} (total {:.1} s)",
        s.json.display(),
        report.duration_secs
    );
    stopped.map(drop)
}

fn print_row(r: &QueryRow) {
    let line = |side: &str, st: &SideStats| {
        println!(
            "  {side:<28} {:>7} queries in {:>7.2} s: {:>10} queries/s (median {:.2} ms, max {:.2} ms)",
            st.queries,
            st.secs,
            fmt_num(st.queries_per_sec),
            st.median_ms,
            st.max_ms
        );
    };
    println!("{}: {}", r.name, r.description);
    line("mount (qql/ask)", &r.mount);
    line("SQLite (inside Python)", &r.sqlite);
    line("SQLite (through the pipe)", &r.sqlite_round_trip);
    line("jq (find | xargs jq)", &r.jq_pipeline);
    println!(
        "  mount/SQLite {:.3}, mount/jq {}; answers verified: {}",
        r.mount_vs_sqlite,
        fmt_num(r.mount_vs_jq),
        r.answers_verified
    );
}

fn print_summary(r: &QueriesReport) {
    println!();
    println!(
        "{:<15} {:>10} {:>10} {:>9} {:>7} {:>7} {:>9}  targets",
        "workload", "mount q/s", "SQLite q/s", "jq q/s", "/SQLite", "(pipe)", "/jq"
    );
    println!("{}", "-".repeat(110));
    for w in &r.workloads {
        let targets: Vec<String> = w
            .targets
            .iter()
            .map(|t| {
                format!(
                    "{} >= {}: {}",
                    t.against,
                    t.min_ratio,
                    if t.met { "met" } else { "MISSED" }
                )
            })
            .collect();
        println!(
            "{:<15} {:>10} {:>10} {:>9} {:>7.3} {:>7.3} {:>9}  {}",
            w.name,
            fmt_num(w.mount.queries_per_sec),
            fmt_num(w.sqlite.queries_per_sec),
            fmt_num(w.jq_pipeline.queries_per_sec),
            w.mount_vs_sqlite,
            w.mount_vs_sqlite_round_trip,
            fmt_num(w.mount_vs_jq),
            if targets.is_empty() {
                "(report only)".to_string()
            } else {
                targets.join(", ")
            }
        );
    }
    println!("{}", "-".repeat(110));
    println!(
        "targets met: {} of {}. SQLite q/s is its time inside Python (execute + fetchall), and \
         the targets are judged on it;\n(pipe) is the mount's ratio to SQLite timed by this \
         client, request and answer through the pipe. jq: {} pipelines per workload.",
        r.targets_met, r.targets_total, r.jq_queries_per_workload
    );
    println!(
        "where the mount's time goes (medians): at the client / planning a new text / run \
         inside the daemon / client less run (per query), rows read; daemon RSS (peak) after"
    );
    let us = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.0} us"));
    for w in &r.workloads {
        println!(
            "  {:<15} {:>9.0} us / {:>9} / {:>10} / {:>9}, {:>7} rows; {:>7.1} MiB ({:.1})",
            w.name,
            w.mount.median_ms * 1000.0,
            us(w.mount_planning_micros_median),
            us(w.mount_daemon_run_micros_median),
            us(w.mount_outside_run_micros_median),
            w.mount_rows_scanned_median
                .map_or("-".into(), |x| format!("{x:.0}")),
            mib(w.daemon_rss_kib_after),
            mib(w.daemon_peak_rss_kib_after)
        );
    }
    if let Some(d) = &r.daemon {
        println!(
            "daemon peak RSS (VmHWM): {:.1} MiB (cache budget {} MiB; {:.1} MiB after the fill); \
             RSS at end {:.1} MiB; log {}",
            mib(d.peak_rss_kib),
            d.cache_mb,
            mib(r.fills.mount_rss_kib_after_fill),
            mib(d.rss_kib_at_end),
            d.log
        );
    }
}
