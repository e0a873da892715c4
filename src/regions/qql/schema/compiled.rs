//! One collection's rules, compiled: its JSON Schema as a validator (the `jsonschema`
//! crate), its mode and its index paths; and what a refused record is told.

use std::fmt;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use super::SchemaError;
use super::canonical;
use super::paths::IndexPath;
use super::scope::{Place, Scope};
use crate::error::Error;

/// When an entry's schema is enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `"all"`: every record obeys it. Installing it (or changing it) is refused while
    /// an existing record violates it; later commits are checked.
    All,
    /// `"new_writes"`: only commits after it is installed are checked; records already
    /// there stay as they are until they are next written.
    NewWrites,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::NewWrites => "new_writes",
        }
    }

    pub fn from_name(s: &str) -> Option<Mode> {
        [Mode::All, Mode::NewWrites]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// Why a record is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The entry whose schema refuses it (its name in `universe_schema.json`).
    pub collection: String,
    /// Where in the record, as a JSON pointer (`/address/zip`; empty for the whole record).
    pub instance_path: String,
    /// The keyword that failed and what it wanted: `type: "integer"`, `required: ["email"]`,
    /// `minimum: 0`, `pattern: "^[a-z]+$"` (the schema's own value, cut at
    /// [`MAX_RULE`] bytes).
    pub rule: String,
    /// The validator's message (cut at [`MAX_MESSAGE`] bytes).
    pub message: String,
}

/// Bytes of a [`Violation::rule`] kept (a long `enum` or `anyOf` is cut).
pub const MAX_RULE: usize = 200;
/// Bytes of a [`Violation::message`] kept (it may quote the record's value).
pub const MAX_MESSAGE: usize = 300;

/// `s` cut to at most `max` bytes at a character boundary, with `…` where it was cut.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl Violation {
    /// The log line of a refused commit of `file` (its path from the root): names the
    /// file, where in the record, and the rule.
    pub fn log_line(&self, file: &str) -> String {
        let at = if self.instance_path.is_empty() {
            "the record"
        } else {
            &self.instance_path
        };
        format!(
            "{file}: refused by the schema of {}: at {at}: {} ({})",
            self.collection, self.rule, self.message
        )
    }

    /// The refusal of a commit of `file`: `EINVAL`, saying what [`Violation::log_line`] says.
    pub fn into_error(self, file: &str) -> Error {
        Error::InvalidRecord(self.log_line(file))
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.instance_path.is_empty() {
            "the record"
        } else {
            &self.instance_path
        };
        write!(f, "at {at}: {} ({})", self.rule, self.message)
    }
}

/// Refuses every external resource a schema names: schemas never fetch anything (the
/// crate's own network and file resolution are not built in either; this holds even if
/// another crate turned them on).
struct NoRetrieval;

impl jsonschema::Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "{uri} is outside the schema: a schema refers only to itself ($defs, #anchors) \
             and to the JSON Schema meta-schemas"
        )
        .into())
    }
}

/// One entry of `universe_schema.json`, compiled.
pub struct Compiled {
    name: String,
    scope: Scope,
    mode: Mode,
    indexes: Vec<IndexPath>,
    schema: Value,
    canonical: String,
    hash: u64,
    validator: jsonschema::Validator,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("indexes", &self.indexes)
            .field("schema", &self.canonical)
            .finish_non_exhaustive()
    }
}

impl Compiled {
    /// Compiles the entry `name` (a name [`Scope::parse`] takes). The schema's draft is
    /// the one its `$schema` names, 2020-12 without one; `format` is asserted and an
    /// unknown format refused.
    pub fn compile(
        name: &str,
        mode: Mode,
        indexes: Vec<IndexPath>,
        schema: Value,
    ) -> Result<Compiled, SchemaError> {
        let scope = Scope::parse(name).map_err(|why| SchemaError::BadCollection {
            name: name.to_string(),
            why,
        })?;
        if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
            return Err(SchemaError::InvalidSchema {
                collection: name.to_string(),
                at: String::new(),
                message: "a JSON Schema is an object or a boolean".into(),
            });
        }
        let validator = jsonschema::options()
            .with_retriever(NoRetrieval)
            // A database's schema means what it says: `"format": "email"` is checked.
            .should_validate_formats(true)
            .should_ignore_unknown_formats(false)
            .build(&schema)
            .map_err(|e| SchemaError::InvalidSchema {
                collection: name.to_string(),
                at: e.instance_path().as_str().to_string(),
                message: e.to_string(),
            })?;
        let canonical = canonical::text(&schema);
        Ok(Compiled {
            name: name.to_string(),
            scope,
            mode,
            indexes,
            hash: canonical::hash(canonical.as_bytes()),
            canonical,
            schema,
            validator,
        })
    }

    /// Its name in `universe_schema.json`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The declared index paths, in the order declared.
    pub fn indexes(&self) -> &[IndexPath] {
        &self.indexes
    }

    #[cfg(test)]
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// The schema's canonical text (compact, members sorted: `canonical`).
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// FNV-1a 64 of [`Compiled::canonical`]: the schema's identity.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Whether a record at `place` is governed by this entry.
    pub fn covers(&self, place: &Place<'_>) -> bool {
        self.scope.covers(place)
    }

    /// The first violation of the schema by `record`, if any.
    pub fn validate(&self, record: &Value) -> Result<(), Violation> {
        let Err(e) = self.validator.validate(record) else {
            return Ok(());
        };
        Err(Violation {
            collection: self.name.clone(),
            instance_path: e.instance_path().as_str().to_string(),
            rule: cut(self.rule(&e), MAX_RULE),
            message: cut(e.to_string(), MAX_MESSAGE),
        })
    }

    /// The failed keyword and what it wanted: its value in the schema.
    fn rule(&self, e: &jsonschema::ValidationError<'_>) -> String {
        let keyword = e.kind().keyword();
        match e.kind() {
            // The one property missing, rather than the whole list.
            ValidationErrorKind::Required { property } => format!("required: [{property}]"),
            ValidationErrorKind::FalseSchema => "false (the schema allows nothing here)".into(),
            _ => {
                // The schema path ends at the keyword (`/properties/age/minimum`); through
                // a `$ref` it is where the keyword is written.
                let wanted = self
                    .schema
                    .pointer(e.schema_path().as_str())
                    .map(canonical::text);
                match wanted {
                    Some(w) => format!("{keyword}: {w}"),
                    None => keyword.to_string(),
                }
            }
        }
    }

    /// Whether installing this entry over `previous` (the entry of the same name in the
    /// schemas in force, if any) must first check the records already there: in mode
    /// `all`, when the entry is new, its schema changed, or it was `new_writes` (records
    /// written before may not obey it). Changing only the indexes, or installing the same
    /// schema again, checks nothing.
    pub fn checks_existing_on_install(&self, previous: Option<&Compiled>) -> bool {
        self.mode == Mode::All
            && previous.is_none_or(|p| p.canonical != self.canonical || p.mode != Mode::All)
    }
}
