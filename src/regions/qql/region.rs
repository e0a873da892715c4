//! The `qql/` region: queries saved as files and their results as files, an ad-hoc
//! control file, compiled queries, query analytics, and schemas enforced on every commit
//! of a record (any region's, through `Region::vet`).
//!
//! - `qql/queries/<name>.qql`: a saved query (refused with `EINVAL` at commit, the log
//!   naming line and column, if it does not parse).
//! - `qql/results/<name>.json|.jsonl|.csv`: its result now (listed for every saved
//!   query). A result over records only is kept and served again while none of the
//!   directories it read changed; one over the stream or the graph (which also move with
//!   time: new events, decaying strengths) is computed at most once a second.
//! - `qql/ask`, `ask.jsonl`, `ask.csv`: write a query to a handle, read the answer back
//!   from offset 0 of the same handle (`islabdb query` does this); an error answers
//!   `{"error": {"position", "message"}}`.
//! - `qql/compiled_queries/hash_<h>.erl` (FORMAT.md) and `hash_<h>.meta.json`.
//! - `qql/query_analytics/performance.csv` (one line per execution, appended by
//!   maintenance) and `optimization_log.json` (the last plans made, with why).
//! - `qql/schema/universe_schema.json` (users edit it; `schema` says what it holds) and
//!   `validation_rules.erl`, its compiled form.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::ask::Ask;
use super::compiled::{self, Compiled};
use super::eval::{self, Refused};
use super::exec::Stats;
use super::format::Format;
use super::records::each_record;
use super::schema::{DIR as SCHEMA, RULES as RULES_FILE, SOURCE as SCHEMA_FILE};
use super::schema::{Schemas, rules_file};
use super::state::{Cached, Execution, State, lock};
use crate::engine::Change;
use crate::error::{Error, Result};
use crate::namespace;
use crate::regions::graph::Reader;
use crate::regions::temporal::time;
use crate::regions::{Content, Cx, Dir, Event, Generated, Region, Removal, Rule, Sink, Tag};

pub const TAG: Tag = 11;
pub const TOP: &str = "qql";
pub const QUERIES: &str = "qql/queries";
pub const RESULTS: &str = "qql/results";
pub const COMPILED: &str = "qql/compiled_queries";
pub const ANALYTICS: &str = "qql/query_analytics";
pub const PERFORMANCE: &str = "performance.csv";
pub const OPTIMIZATION: &str = "optimization_log.json";
const PERFORMANCE_HEADER: &str = "time,query,rows_scanned,rows_returned,index,micros\n";
/// The ad-hoc control files and the format each answers in.
pub const ASK: [(&str, Format); 3] = [
    ("ask", Format::Json),
    ("ask.jsonl", Format::Jsonl),
    ("ask.csv", Format::Csv),
];
/// Violations listed when a schema is refused.
const VIOLATIONS_LISTED: usize = 10;

pub struct Qql {
    state: Arc<State>,
    graph: Reader,
}

impl Qql {
    pub fn new(graph: Reader) -> Qql {
        Qql {
            state: Arc::default(),
            graph,
        }
    }

    /// The saved queries' names (without `.qql`).
    fn saved(&self, cx: &Cx<'_>) -> Vec<String> {
        let Some(dir) = cx.seed_dir(QUERIES) else {
            return Vec::new();
        };
        let mut out: Vec<String> = cx
            .store
            .readdir_names(dir.ino)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(n, _)| {
                let n = String::from_utf8(n).ok()?;
                n.strip_suffix(".qql").map(str::to_string)
            })
            .collect();
        out.sort();
        out
    }

    /// The result file `name` (`<query>.<format>`), kept while what it read is unchanged.
    fn result(&self, cx: &Cx<'_>, name: &str) -> Option<Generated> {
        let (query, ext) = name.rsplit_once('.')?;
        let format = Format::from_extension(ext)?;
        let dir = cx.seed_dir(QUERIES)?;
        let file = format!("{query}.qql");
        let attr = cx.store.lookup(dir.ino, file.as_bytes()).ok()?;
        let key = (query.to_string(), format);
        if let Some(c) = lock(&self.state.results).get(&key)
            && self.state.unchanged_since(&c.dirs, c.at)
        {
            return Some(Generated::Fresh(c.bytes.to_vec()));
        }
        let text = match cx.store.read(attr.ino, 0, attr.size as usize) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) => return Some(Generated::Failed(e)),
        };
        match eval::answer(&self.state, cx, &self.graph, &text, format) {
            Ok(a) => {
                if let Some(mut dirs) = a.dirs {
                    dirs.push(dir.ino);
                    let cached = Cached {
                        dirs,
                        at: a.at,
                        bytes: a.bytes.clone(),
                    };
                    lock(&self.state.results).insert(key, cached);
                }
                Some(Generated::Fresh(a.bytes.to_vec()))
            }
            Err(e) => {
                log::warn!("qql/results/{name}: {e}");
                Some(Generated::Failed(Error::InvalidRecord(e.to_string())))
            }
        }
    }

    fn compiled_views(&self) -> Vec<String> {
        let mut out: Vec<String> = lock(&self.state.compiled)
            .keys()
            .flat_map(|h| [format!("hash_{h}.erl"), format!("hash_{h}.meta.json")])
            .collect();
        out.sort();
        out
    }

    fn compiled_file(&self, name: &str) -> Option<Generated> {
        let rest = name.strip_prefix("hash_")?;
        let map = lock(&self.state.compiled);
        if let Some(h) = rest.strip_suffix(".erl") {
            let e = map.get(h)?;
            let c = Compiled {
                text: e.text.clone(),
                query: e.plan.query.clone(),
                plan: e.plan.explain().to_string(),
                compiled_at: e.compiled_at,
            };
            return Some(match compiled::encode(&c) {
                Ok(b) => Generated::Fresh(b),
                Err(e) => Generated::Failed(e),
            });
        }
        let h = rest.strip_suffix(".meta.json")?;
        let e = map.get(h)?;
        let meta = json!({
            "hash": h,
            "text": e.text,
            "plan": e.plan.explain(),
            "compiled_at": time::format_rfc3339(e.compiled_at),
            "runs": e.runs,
            "last_run": e.last_run.map(time::format_rfc3339),
            "last_duration_micros": e.last_micros,
            "last_run_read": e.last_stats.as_ref().map(Stats::to_json),
            "depends_on": e.plan.depends_on().iter().map(|d| d.to_json()).collect::<Vec<_>>(),
        });
        Some(Generated::Fresh(crate::regions::pretty(&meta)))
    }

    /// A new schema file: refused if it is invalid, or if records already there break
    /// an entry it installs in mode `all`.
    fn vet_schema_file(&self, cx: &Cx<'_>, bytes: &[u8]) -> Result<()> {
        let new = Schemas::parse(bytes).map_err(|e| Error::InvalidRecord(e.to_string()))?;
        let old = self.state.schemas();
        let entries = new.to_check_on_install(Some(&old));
        if entries.is_empty() {
            return Ok(());
        }
        // Record by record: a collection of a million records is not held at once.
        let mut found = Vec::new();
        for entry in &entries {
            for path in super::collection_dirs(cx, entry.scope()) {
                let Some(dir) = super::dir_at(cx, &path) else {
                    continue;
                };
                each_record(cx.store, dir, None, &mut |name, v| {
                    let left = VIOLATIONS_LISTED - found.len();
                    if left > 0 {
                        let at = format!("{path}/{}", String::from_utf8_lossy(name));
                        found.extend(new.check_existing(
                            Some(&old),
                            [(at.as_str(), &v)].into_iter(),
                            left,
                        ));
                    }
                })?;
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        for (path, v) in &found {
            log::warn!("{SCHEMA}/{SCHEMA_FILE}: {}", v.log_line(path));
        }
        Err(Error::InvalidRecord(format!(
            "{} existing record(s) break the new schema (the log lists the first {}); \
             fix them first, or give the entry \"mode\": \"new_writes\"",
            found.len(),
            found.len().min(VIOLATIONS_LISTED)
        )))
    }

    /// Reads the schema file into force (at start, and after each commit of it).
    fn load_schemas(&self, cx: &Cx<'_>) {
        let Some(dir) = cx.seed_dir(SCHEMA) else {
            return;
        };
        let schemas = match super::super::read_own(cx, dir.ino, SCHEMA_FILE) {
            Ok(Some(b)) if !b.iter().all(u8::is_ascii_whitespace) => match Schemas::parse(&b) {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("{SCHEMA}/{SCHEMA_FILE}: {e}; no schema is enforced");
                    Schemas::empty()
                }
            },
            Ok(_) => Schemas::empty(),
            Err(e) => {
                log::warn!("{SCHEMA}/{SCHEMA_FILE}: {e}; no schema is enforced");
                Schemas::empty()
            }
        };
        *self
            .state
            .schemas
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(schemas);
        // Plans and indexes follow the declared indexes.
        self.state.index_version.fetch_add(1, Ordering::AcqRel);
        let declared = eval::declared(&self.state);
        self.state.indexes.retain(|dir, path| {
            let p = namespace::join(&cx.store.path_of(dir));
            declared(&p).contains(path)
        });
    }

    /// Appends the executions noted since the last tick to `performance.csv`.
    fn flush_performance(&self, cx: &Cx<'_>) {
        let runs = std::mem::take(&mut *lock(&self.state.performance));
        if runs.is_empty() {
            return;
        }
        let Some(dir) = cx.seed_dir(ANALYTICS) else {
            return;
        };
        let res = cx
            .store
            .lookup(dir.ino, PERFORMANCE.as_bytes())
            .and_then(|a| {
                let bytes: String = runs.iter().map(Execution::csv_line).collect();
                let bytes = bytes.into_bytes();
                cx.store
                    .apply(vec![Change::Append { ino: a.ino, bytes }], false)
            });
        if let Err(e) = res {
            log::warn!("{ANALYTICS}/{PERFORMANCE}: {e}");
        }
    }
}

impl Region for Qql {
    fn name(&self) -> &'static str {
        "qql"
    }

    fn tag(&self) -> Tag {
        TAG
    }

    fn lists_views(&self, dir: &Dir) -> bool {
        [TOP, RESULTS, COMPILED, ANALYTICS, SCHEMA]
            .iter()
            .any(|p| dir.is_seed(p))
    }

    fn views(&self, cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        if dir.is_seed(TOP) {
            ASK.iter().map(|(n, _)| (*n).to_string()).collect()
        } else if dir.is_seed(RESULTS) {
            self.saved(cx)
                .into_iter()
                .flat_map(|q| ["json", "jsonl", "csv"].map(|e| format!("{q}.{e}")))
                .collect()
        } else if dir.is_seed(COMPILED) {
            self.compiled_views()
        } else if dir.is_seed(ANALYTICS) {
            vec![OPTIMIZATION.to_string()]
        } else if dir.is_seed(SCHEMA) {
            vec![RULES_FILE.to_string()]
        } else {
            Vec::new()
        }
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        if dir.is_seed(TOP) {
            let (_, format) = ASK.iter().find(|(n, _)| *n == name)?;
            return Some(Generated::Fixed(super::ask::usage(*format)));
        }
        if dir.is_seed(RESULTS) {
            return self.result(cx, name);
        }
        if dir.is_seed(COMPILED) {
            return self.compiled_file(name);
        }
        if dir.is_seed(ANALYTICS) && name == OPTIMIZATION {
            let log: Vec<Value> = lock(&self.state.optimizations)
                .iter()
                .map(|p| {
                    json!({
                        "time": time::format_rfc3339(p.time),
                        "query": p.hash,
                        "text": p.text,
                        "plan": p.plan.explain(),
                        "planning_micros": p.planning_micros,
                    })
                })
                .collect();
            return Some(Generated::Fresh(crate::regions::pretty(&json!({
                "plans": log.len(),
                "latest_first": log.into_iter().rev().collect::<Vec<_>>(),
            }))));
        }
        if dir.is_seed(SCHEMA) && name == RULES_FILE {
            return Some(Generated::Fresh(rules_file::encode(&self.state.schemas())));
        }
        None
    }

    fn shown(&self) -> u64 {
        self.state.logged.load(Ordering::Acquire)
    }

    fn rule(&self, dir: &Dir, name: &[u8]) -> Option<Rule> {
        if dir.is_seed(QUERIES) && name.ends_with(b".qql") {
            return Some(super::ask::query_rule());
        }
        if dir.is_seed(SCHEMA) && name == SCHEMA_FILE.as_bytes() {
            return Some(crate::regions::records::json_rule());
        }
        None
    }

    fn may_create(&self, dir: &Dir, name: &[u8]) -> Result<()> {
        if dir.is_seed(SCHEMA) && name != SCHEMA_FILE.as_bytes() {
            return Err(Error::NotPermitted(
                "qql/schema holds universe_schema.json (and its compiled form) only",
            ));
        }
        if [TOP, RESULTS, COMPILED, ANALYTICS]
            .iter()
            .any(|p| dir.is_seed(p))
        {
            return Err(Error::NotPermitted(
                "qql/ holds what the region makes: save queries in qql/queries/",
            ));
        }
        Ok(())
    }

    fn removal(&self, dir: &Dir, name: &[u8]) -> Removal {
        if dir.is_seed(SCHEMA) && name == SCHEMA_FILE.as_bytes() {
            Removal::UntilReplaced
        } else {
            Removal::Gone
        }
    }

    fn takes_writes(&self, _cx: &Cx<'_>, dir: &Dir, name: &[u8]) -> bool {
        dir.is_seed(TOP) && ASK.iter().any(|(n, _)| n.as_bytes() == name)
    }

    fn sink(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8], _truncate: bool) -> Result<Box<dyn Sink>> {
        let format = ASK
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .filter(|_| self.takes_writes(cx, dir, name))
            .map(|(_, f)| *f)
            .ok_or(Error::ReadOnlyView)?;
        Ok(Box::new(Ask::new(
            self.state.clone(),
            self.graph.clone(),
            format,
        )))
    }

    fn vet(&self, cx: &Cx<'_>, dir: &Dir, name: &[u8], content: &mut Content<'_>) -> Result<()> {
        if dir.is_seed(SCHEMA) && name == SCHEMA_FILE.as_bytes() {
            return self.vet_schema_file(cx, content.bytes()?);
        }
        let schemas = self.state.schemas();
        if schemas.is_empty() || !name.ends_with(b".json") {
            return Ok(());
        }
        let path = format!(
            "{}/{}",
            namespace::join(&cx.store.path_of(dir.ino)),
            String::from_utf8_lossy(name)
        );
        if schemas.for_record(&path).is_empty() {
            return Ok(());
        }
        let bytes = content.bytes()?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| Error::InvalidRecord(e.to_string()))?;
        schemas.validate(&path, &v).map_err(|v| {
            log::warn!("{}", v.log_line(&path));
            v.into_error(&path)
        })
    }

    fn observe(&self, cx: &Cx<'_>, event: &Event<'_>) {
        let (Event::Entry { dir, name } | Event::Committed { dir, name }) = *event else {
            return;
        };
        self.state.touch(dir);
        self.state.indexes.changed(cx, dir, name);
        if name == SCHEMA_FILE.as_bytes() && cx.seed_dir(SCHEMA).is_some_and(|s| s.ino == dir) {
            self.load_schemas(cx);
        }
    }

    fn start(&self, cx: &Cx<'_>) -> Result<()> {
        if let Some(dir) = cx.seed_dir(SCHEMA)
            && cx.store.lookup(dir.ino, SCHEMA_FILE.as_bytes()).is_err()
        {
            let empty = crate::regions::pretty(&json!({ "version": 1, "collections": {} }));
            cx.store.put(dir.ino, SCHEMA_FILE.as_bytes(), &empty)?;
        }
        if let Some(dir) = cx.seed_dir(ANALYTICS)
            && cx.store.lookup(dir.ino, PERFORMANCE.as_bytes()).is_err()
        {
            cx.store.put(
                dir.ino,
                PERFORMANCE.as_bytes(),
                PERFORMANCE_HEADER.as_bytes(),
            )?;
        }
        self.load_schemas(cx);
        Ok(())
    }

    fn tick(&self, cx: &Cx<'_>) {
        self.flush_performance(cx);
    }
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Self {
        Error::InvalidRecord(r.to_string())
    }
}
