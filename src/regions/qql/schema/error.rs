//! Why `universe_schema.json` (or a rules file rebuilt into schemas) is refused.

use std::fmt;

use super::paths::PathError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaError {
    /// Not JSON, or an object that gives a member twice: serde_json's message, with its
    /// line and column.
    Json(String),
    /// The file's root or an entry is not an object, or a value has the wrong type. `at`
    /// is a JSON pointer into the file (`/collections/users/indexes/0`).
    WrongType {
        at: String,
        expected: &'static str,
    },
    /// A key this build does not know: an error rather than ignored, since a misspelt
    /// `"mode"` would otherwise silently mean the default.
    UnknownKey {
        at: String,
        key: String,
        known: &'static str,
    },
    Missing {
        at: String,
        key: &'static str,
    },
    /// A `version` other than 1 (as written in the file).
    Version(String),
    /// A collection's name names no collection.
    BadCollection {
        name: String,
        why: String,
    },
    BadMode {
        collection: String,
        given: String,
    },
    /// The JSON Schema does not compile: the crate's message, and where in the schema
    /// (a JSON pointer; empty for its root).
    InvalidSchema {
        collection: String,
        at: String,
        message: String,
    },
    BadIndex {
        collection: String,
        index: String,
        error: PathError,
    },
    DuplicateIndex {
        collection: String,
        index: String,
    },
    TooManyIndexes {
        collection: String,
        count: usize,
    },
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = |at: &str| {
            if at.is_empty() {
                "/".to_string()
            } else {
                at.to_string()
            }
        };
        match self {
            SchemaError::Json(e) => write!(f, "not JSON: {e}"),
            SchemaError::WrongType { at, expected } => {
                write!(f, "{}: expected {expected}", root(at))
            }
            SchemaError::UnknownKey { at, key, known } => {
                write!(f, "{}: unknown key {key:?} (known: {known})", root(at))
            }
            SchemaError::Missing { at, key } => write!(f, "{}: missing key {key:?}", root(at)),
            SchemaError::Version(v) => {
                write!(f, "/version: version {v}, this build reads version 1")
            }
            SchemaError::BadCollection { name, why } => write!(f, "collection {name:?}: {why}"),
            SchemaError::BadMode { collection, given } => write!(
                f,
                "collection {collection:?}: mode {given}, expected \"all\" or \"new_writes\""
            ),
            SchemaError::InvalidSchema {
                collection,
                at,
                message,
            } => {
                let at = if at.is_empty() { "its root" } else { at };
                write!(
                    f,
                    "collection {collection:?}: invalid JSON Schema at {at}: {message}"
                )
            }
            SchemaError::BadIndex {
                collection,
                index,
                error,
            } => write!(f, "collection {collection:?}: index path {index:?} {error}"),
            SchemaError::DuplicateIndex { collection, index } => write!(
                f,
                "collection {collection:?}: index path {index:?} is declared twice"
            ),
            SchemaError::TooManyIndexes { collection, count } => write!(
                f,
                "collection {collection:?}: {count} index paths, at most {} are declared",
                super::MAX_INDEXES
            ),
        }
    }
}

impl std::error::Error for SchemaError {}

/// A schemas file that is refused is an invalid configuration: `EINVAL` for its writer.
impl From<SchemaError> for crate::error::Error {
    fn from(e: SchemaError) -> Self {
        crate::error::Error::InvalidRecord(e.to_string())
    }
}
