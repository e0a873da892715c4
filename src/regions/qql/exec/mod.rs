//! Planning and execution: [`plan::plan`] turns a parsed query into a [`plan::Plan`] (what each
//! reference points at, which index each collection is read through and why), [`run`]
//! computes its rows from a [`Source`](super::source::Source).

pub mod access;
mod graph;
mod group;
pub mod plan;
mod pred;
mod row;
pub mod run;

#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::{Value, json};

use super::lang;

#[derive(Debug)]
pub enum Error {
    /// A query the planner refuses (an unknown alias, an aggregate without grouping…),
    /// with its position.
    Query(lang::error::Error),
    /// What the query asked for does not exist or is too large (a node that is not
    /// there, too many paths).
    Run(String),
    /// The source failed to read.
    Source(crate::error::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Query(e) => write!(f, "{e}"),
            Error::Run(why) => f.write_str(why),
            Error::Source(e) => write!(f, "reading the universe: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::error::Error> for Error {
    fn from(e: crate::error::Error) -> Self {
        Error::Source(e)
    }
}

impl From<lang::error::Error> for Error {
    fn from(e: lang::error::Error) -> Self {
        Error::Query(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// What a run read and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Records, events, edges and nodes read from the source.
    pub rows_scanned: u64,
    pub rows_returned: u64,
    /// One line per collection read: its path and how (`scan` or `index .age`).
    pub accesses: Vec<(String, String)>,
}

impl Stats {
    pub fn to_json(&self) -> Value {
        let accesses: Vec<Value> = self
            .accesses
            .iter()
            .map(|(c, how)| json!({"collection": c, "access": how}))
            .collect();
        json!({
            "rows_scanned": self.rows_scanned,
            "rows_returned": self.rows_returned,
            "accesses": accesses,
        })
    }
}

/// A query's result: rows in order. `columns` names the SELECT's columns (a row lacks
/// the key of a column whose value was absent); it is empty when the rows are whole
/// records.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub columns: Vec<String>,
    pub rows: Vec<Value>,
    pub stats: Stats,
}
