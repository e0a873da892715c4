//! One evaluation of a query: its compiled form and plan (reused while they hold), a run
//! consistent with one point in time (`state`), its record in the analytics, and its
//! rendering.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::compiled;
use super::engine_source::EngineSource;
use super::exec::plan::{Dependency, Plan, plan};
use super::exec::run::run;
use super::exec::{Error as ExecError, Output};
use super::format::{Format, render};
use super::lang;
use super::lang::path::JsonPath;
use super::state::{ATTEMPTS, Entry, Execution, Planned, State, lock};
use crate::regions::Cx;
use crate::regions::graph::Reader;
use crate::regions::temporal::time;

/// A query that cannot be answered: where and why.
#[derive(Debug)]
pub struct Refused {
    /// `line:column` in the query, when the problem is in its text.
    pub position: Option<String>,
    pub message: String,
}

impl Refused {
    pub fn json(&self) -> Value {
        json!({ "error": { "position": self.position, "message": self.message } })
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.position {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl From<lang::error::Error> for Refused {
    fn from(e: lang::error::Error) -> Self {
        Refused {
            position: Some(e.pos.to_string()),
            message: e.message,
        }
    }
}

impl From<ExecError> for Refused {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Query(e) => e.into(),
            other => Refused {
                position: None,
                message: other.to_string(),
            },
        }
    }
}

/// An answer and what it depends on.
pub struct Answer {
    pub bytes: Arc<Vec<u8>>,
    /// The directories read; `None` when it also depends on the stream or the graph
    /// (which move with time too: never cached).
    pub dirs: Option<Vec<u64>>,
    pub at: u64,
}

/// The paths declared indexed for a collection, by the schema file.
pub fn declared(state: &State) -> impl Fn(&str) -> Vec<JsonPath> + use<> {
    let schemas = state.schemas();
    move |collection: &str| {
        let probe = format!("{collection}/_.json");
        schemas
            .for_record(&probe)
            .into_iter()
            .flat_map(|c| c.indexes().iter().map(super::index_path))
            .collect()
    }
}

/// Evaluates `text`, rendered as `format`.
pub fn answer(
    state: &State,
    cx: &Cx<'_>,
    graph: &Reader,
    text: &str,
    format: Format,
) -> Result<Answer, Refused> {
    let hash = compiled::hash(text)?;
    let declared = declared(state);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let at = state.now();
        let source = EngineSource::new(cx, graph, &state.indexes, &declared);
        let plan = plan_of(state, &source, &hash, text, at)?;
        let started = Instant::now();
        let out = run(&plan, &source)?;
        let micros = started.elapsed().as_micros() as u64;
        let mut dirs = source.walked.into_inner();
        dirs.extend(source.read.into_inner());
        // A change is made before the region hears of it: one being made now, or made
        // but not yet heard, may be in what was read and not in the indexes.
        if !cx.regions.told(&dirs) || !state.unchanged_since(&dirs, at) {
            if attempt == ATTEMPTS {
                return Err(Refused {
                    position: None,
                    message: format!(
                        "what the query reads changed while it ran, {ATTEMPTS} times in a \
                         row: no answer of one point in time; ask again"
                    ),
                });
            }
            // Let a burst of commits pass: 1, 2, 4… ms.
            std::thread::sleep(std::time::Duration::from_millis(1 << (attempt - 1)));
            continue;
        }
        record(state, &hash, &out, micros);
        let cacheable = plan
            .depends_on()
            .iter()
            .all(|d| matches!(d, Dependency::Collections(_)));
        return Ok(Answer {
            bytes: Arc::new(render(&out, format).into_bytes()),
            dirs: cacheable.then_some(dirs),
            at,
        });
    }
}

/// The plan of `hash`: the compiled one while its walked directories and the indexes
/// are unchanged, else made anew (and the compiled query replaced).
fn plan_of(
    state: &State,
    source: &EngineSource<'_>,
    hash: &str,
    text: &str,
    at: u64,
) -> Result<Arc<Plan>, Refused> {
    let version = state
        .index_version
        .load(std::sync::atomic::Ordering::Acquire);
    {
        let map = lock(&state.compiled);
        if let Some(e) = map.get(hash)
            && e.index_version == version
            && state.unchanged_since(&e.walked, e.planned_at)
        {
            return Ok(e.plan.clone());
        }
    }
    let started = Instant::now();
    let query = lang::parser::parse(text)?;
    let plan = Arc::new(plan(&query, source)?);
    let compiled_at = time::now();
    state.note_optimization(Planned {
        time: compiled_at,
        hash: hash.to_string(),
        text: text.to_string(),
        plan: plan.clone(),
        planning_micros: started.elapsed().as_micros() as u64,
    });
    let mut map = lock(&state.compiled);
    let (runs, last_micros, last_run, last_stats) = map.get(hash).map_or((0, 0, None, None), |e| {
        (e.runs, e.last_micros, e.last_run, e.last_stats.clone())
    });
    map.insert(
        hash.to_string(),
        Entry {
            text: text.to_string(),
            plan: plan.clone(),
            compiled_at,
            walked: source.walked.borrow().clone(),
            planned_at: at,
            index_version: version,
            runs,
            last_micros,
            last_run,
            last_stats,
        },
    );
    State::trim_compiled(&mut map);
    Ok(plan)
}

/// Counts the run and notes it for `performance.csv`.
fn record(state: &State, hash: &str, out: &Output, micros: u64) {
    let now = time::now();
    if let Some(e) = lock(&state.compiled).get_mut(hash) {
        e.runs += 1;
        e.last_micros = micros;
        e.last_run = Some(now);
        e.last_stats = Some(out.stats.clone());
    }
    lock(&state.performance).push(Execution {
        time: now,
        hash: hash.to_string(),
        stats: out.stats.clone(),
        micros,
    });
}
