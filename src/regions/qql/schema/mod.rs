//! Schemas enforced on writes: `qql/schema/universe_schema.json` gives a JSON Schema per
//! collection of records, and its index paths; `qql/schema/validation_rules.erl` is its
//! compiled form (`rules_file`, layout in FORMAT.md). This module is the logic: reading
//! the file, mapping a record to the rules that apply to it, checking records, deciding
//! what installing a new file must check. The region that serves the files wires it in.
//!
//! # `universe_schema.json`
//!
//! ```json
//! {
//!   "version": 1,
//!   "collections": {
//!     "users": {
//!       "schema": { "type": "object", "required": ["email"],
//!                   "properties": { "age": { "type": "integer", "minimum": 0 } } },
//!       "indexes": [".age", ".address.city"],
//!       "mode": "all"
//!     },
//!     "spacetime/hot_data/particles/orders": { "schema": { "required": ["total"] } },
//!     "quantum_graph/nodes/persons": { "schema": { "type": "object" }, "mode": "new_writes" }
//!   }
//! }
//! ```
//!
//! - The root is an object with exactly `version` (the number 1) and `collections` (an
//!   object, possibly empty). Any other key, here or in an entry, is refused, and so is an
//!   object that gives a member twice (anywhere in the file, schemas included).
//! - Each member of `collections` is an entry. Its name is a collection (`scope`):
//!   `NAME`, the collection `particles/NAME` in every tier; or a path from the root of the
//!   mount, `spacetime/<hot_data|warm_data|cold_data>/particles/NAME` (that tier's
//!   collection only), `quantum_graph/nodes/TYPE` or `quantum_graph/edges/RELATION`.
//! - `schema` (optional; absent means `true`, every record): a JSON Schema, an object or a
//!   boolean. Its draft is the one its `$schema` names (draft 4, 6, 7, 2019-09, 2020-12),
//!   2020-12 without one. `format` is asserted (`"format": "email"` refuses what is no
//!   e-mail address) and an unknown format refuses the schema; `idn-hostname` and
//!   `idn-email` count as unknown (the crate's IDNA tables are not built in). A schema
//!   refers only to itself (`$ref` to `#/$defs/…`, anchors) and to the meta-schemas:
//!   any other reference refuses it, nothing is ever fetched.
//! - `indexes` (optional, default none): at most [`MAX_INDEXES`] index paths, strings in
//!   the grammar of `paths` (`.age`, `.address.city`, `.tags[0]`, `."first name"`), none
//!   declared twice. Only declared here: the query planner builds and uses them.
//! - `mode` (optional, default `"all"`): `"all"` or `"new_writes"` ([`compiled::Mode`]).
//!
//! # Which rules a record obeys
//!
//! A record (a `.json` file directly in a collection's directory: `scope`) obeys every
//! entry that covers it — all apply, none replaces another: a record of
//! `spacetime/hot_data/particles/orders` obeys both `orders` and
//! `spacetime/hot_data/particles/orders`, the collection-wide entry first. So a
//! tier-specific entry can only add rules, and what a collection-wide schema promises
//! (that the planner may rely on) holds in every tier. A record that moves into a collection
//! (`mv`, a rename onto its name) is checked there like a commit.
//! An empty file is a record not yet written and is not checked (the wiring's part).
//!
//! # Modes, and installing a new file
//!
//! A commit of a record is checked against every entry covering it, whatever their mode:
//! the first violation refuses it (`EINVAL`, [`Violation::into_error`], logged with
//! [`Violation::log_line`]), and the previous version stays. Installing a new
//! `universe_schema.json` (a commit of it, through the same path as any configuration)
//! is refused while an existing record violates an entry in mode `"all"` that is new,
//! whose schema changed, or that was `"new_writes"` before
//! ([`Compiled::checks_existing_on_install`], [`Schemas::check_existing`]); the refusal
//! lists the first violations. An entry in mode `"new_writes"` is installed without
//! looking at the records already there: they stay as they are until next written, and
//! are then checked like any commit.

mod canonical;
pub mod compiled;
pub mod error;
mod file;
pub mod paths;
pub mod rules_file;
pub mod scope;

use std::collections::BTreeMap;

use serde_json::Value;

pub use self::compiled::{Compiled, Violation};
pub use self::error::SchemaError;
pub use self::scope::collection_of;

/// Where the schemas live, from the root of the mount.
pub const DIR: &str = "qql/schema";
/// The file users edit.
pub const SOURCE: &str = "universe_schema.json";
/// Its compiled form.
pub const RULES: &str = "validation_rules.erl";
/// Index paths an entry declares at most.
pub const MAX_INDEXES: usize = 64;

/// The schemas in force: every entry of `universe_schema.json`, compiled.
#[derive(Debug, Default)]
pub struct Schemas {
    /// By name, in ascending byte order of names.
    collections: BTreeMap<String, Compiled>,
}

impl Schemas {
    /// No schema: every record is accepted (no `universe_schema.json`).
    pub fn empty() -> Schemas {
        Schemas::default()
    }

    pub fn is_empty(&self) -> bool {
        self.collections.is_empty()
    }

    /// The entry named `name` in `universe_schema.json`.
    pub fn get(&self, name: &str) -> Option<&Compiled> {
        self.collections.get(name)
    }

    /// Every entry, in ascending byte order of names.
    pub fn entries(&self) -> impl Iterator<Item = &Compiled> {
        self.collections.values()
    }

    /// The entries a record at `path` (from the root of the mount) obeys: none for a file
    /// that is no record or a collection without a schema; else the collection-wide entry
    /// before a tier-specific one.
    pub fn for_record(&self, path: &str) -> Vec<&Compiled> {
        let Some(place) = collection_of(path) else {
            return Vec::new();
        };
        let mut out: Vec<&Compiled> = self.entries().filter(|c| c.covers(&place)).collect();
        out.sort_by_key(|c| c.scope().is_tier_specific());
        out
    }

    /// Checks `record`, about to be committed at `path`, against every entry covering it:
    /// the first violation.
    pub fn validate(&self, path: &str, record: &Value) -> Result<(), Violation> {
        self.for_record(path)
            .into_iter()
            .try_for_each(|c| c.validate(record))
    }

    /// The entries whose records must be checked before these schemas replace
    /// `previous` (`None`: there were none), by [`Compiled::checks_existing_on_install`].
    pub fn to_check_on_install<'s>(&'s self, previous: Option<&Schemas>) -> Vec<&'s Compiled> {
        self.entries()
            .filter(|c| c.checks_existing_on_install(previous.and_then(|p| p.get(c.name()))))
            .collect()
    }

    /// The first `limit` violations, in the order of `records` (path from the root, parsed
    /// record), of the entries that installing these schemas over `previous` must check
    /// ([`Schemas::to_check_on_install`]): installing is refused unless it is empty. Each
    /// record is checked against every such entry covering it; at most one violation a
    /// record. Reading stops at the limit.
    pub fn check_existing<'a>(
        &self,
        previous: Option<&Schemas>,
        records: impl Iterator<Item = (&'a str, &'a Value)>,
        limit: usize,
    ) -> Vec<(String, Violation)> {
        let mut checked = self.to_check_on_install(previous);
        checked.sort_by_key(|c| c.scope().is_tier_specific());
        let mut out = Vec::new();
        if checked.is_empty() || limit == 0 {
            return out;
        }
        for (path, record) in records {
            let Some(place) = collection_of(path) else {
                continue;
            };
            let first = checked
                .iter()
                .filter(|c| c.covers(&place))
                .find_map(|c| c.validate(record).err());
            if let Some(v) = first {
                out.push((path.to_string(), v));
                if out.len() == limit {
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
