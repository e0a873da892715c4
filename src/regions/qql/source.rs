//! What the executor reads the universe through. The `qql/` region implements
//! [`Source`] over the engine; the tests use an in-memory one (`memsource.rs`).

use std::ops::Bound;

use serde_json::{Value, json};

pub use super::lang::ast::{Direction, Target};
use super::lang::path::JsonPath;
use crate::error::Result;

/// A directory of records: `spacetime/hot_data/particles/users`, `quantum_graph/nodes/persons`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Its path from the mount's root.
    pub path: String,
    /// Its last segment (`users`, `persons`).
    pub name: String,
    /// `hot_data`, `warm_data` or `cold_data` for a spacetime collection.
    pub tier: Option<String>,
}

/// One JSON file of a collection (or a graph node).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The file's path from the mount's root (`…/users/alice.json`).
    pub path: String,
    /// The file name without `.json` (a node's id).
    pub key: String,
    /// The collection's name (a node's type).
    pub collection: String,
    pub tier: Option<String>,
    pub value: Value,
}

/// An edge as the graph serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRow {
    pub relation: String,
    pub from: String,
    pub to: String,
    pub strength: f64,
    /// The strength after its decay, now.
    pub effective_strength: f64,
    /// The edge file's path (`quantum_graph/edges/works_for/alice_to_acme.json`).
    pub path: String,
}

impl EdgeRow {
    /// The edge as rows show it under `@edge`.
    pub fn to_json(&self) -> Value {
        json!({
            "relation": self.relation,
            "from": self.from,
            "to": self.to,
            "strength": self.strength,
            "effective_strength": self.effective_strength,
            "path": self.path,
        })
    }

    /// The node at the other end from `id`.
    pub fn other(&self, id: &str) -> &str {
        if self.from == id {
            &self.to
        } else {
            &self.from
        }
    }
}

/// The top-level members of each record a query reads (`None`: all of it). A source may
/// leave the others out of the records it returns (the engine's does not parse them).
pub type Members<'a> = Option<&'a [String]>;

/// Records one by one: an index scan may be left early (ORDER BY … LIMIT).
pub type Records<'a> = Box<dyn Iterator<Item = Result<Record>> + 'a>;

pub trait Source {
    /// The collections whose path matches `pattern` (one string a segment, `*` for any
    /// one segment), in path order.
    fn collections(&self, pattern: &[String]) -> Result<Vec<Collection>>;

    /// Gives every record of a collection whose content `keep` accepts to `each` (in any
    /// order: the executor orders rows itself). `keep` lets a source skip making records
    /// a filter refuses; a visitor, not an iterator, so that a source may read its
    /// records in batches.
    fn scan(
        &self,
        c: &Collection,
        members: Members<'_>,
        keep: &dyn Fn(&Value) -> bool,
        each: &mut dyn FnMut(Record),
    ) -> Result<()>;

    /// The JSON paths this collection has an index on.
    fn indexes(&self, c: &Collection) -> Vec<JsonPath>;

    /// The records whose value at `path` lies between `lo` and `hi` in the order of
    /// `lang::value::cmp`, in that order (reversed when `descending`; records with equal
    /// values in any order). Records where `path` is absent are not in an index.
    fn index_range<'s>(
        &'s self,
        c: &Collection,
        path: &JsonPath,
        range: (Bound<&Value>, Bound<&Value>),
        descending: bool,
        members: Members<'s>,
    ) -> Result<Records<'s>>;

    /// The events of a stream with `from <= timestamp < to` (µs since the epoch), in time
    /// order.
    fn events(&self, stream: &str, from: Option<i64>, to: Option<i64>) -> Result<Vec<Value>>;

    /// A graph node by id.
    fn node(&self, id: &str) -> Result<Option<Record>>;

    /// The edges at a node: leaving it (`Out`), reaching it (`In`) or both, of one
    /// relation or any.
    fn edges(&self, id: &str, relation: Option<&str>, dir: Direction) -> Result<Vec<EdgeRow>>;

    /// The `k` nodes nearest to a node (itself excluded) or a vector, nearest first, with
    /// their cosine distance.
    fn nearest(&self, target: &Target, k: usize) -> Result<Vec<(String, f32)>>;
}
