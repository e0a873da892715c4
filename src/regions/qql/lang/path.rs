//! JSON paths: `.address.city`, `.tags[0]`, `."odd key"`. The empty path is the value
//! itself.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    Member(String),
    Index(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct JsonPath(pub Vec<Step>);

impl JsonPath {
    /// A path of members, e.g. `JsonPath::members(&["address", "city"])`.
    #[cfg(test)]
    pub fn members(names: &[&str]) -> JsonPath {
        JsonPath(
            names
                .iter()
                .map(|n| Step::Member((*n).to_string()))
                .collect(),
        )
    }

    /// The value at this path in `v`, or `None` when the path is absent (a missing
    /// member, an index past the end, or a step into a value of the wrong kind).
    pub fn get<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(v, |v, step| match step {
            Step::Member(m) => v.as_object()?.get(m),
            Step::Index(i) => v.as_array()?.get(usize::try_from(*i).ok()?),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn plain(m: &str) -> bool {
    let mut chars = m.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Written as in QQL text: `.address.city`, `.tags[0]`, `."odd key"`; the empty path
/// writes nothing.
impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.0 {
            match step {
                Step::Member(m) if plain(m) => write!(f, ".{m}")?,
                Step::Member(m) => write!(f, ".{}", super::lexer::quote(m))?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}
