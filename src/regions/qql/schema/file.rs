//! Reading `universe_schema.json` (its format: the module above): strictly, refusing what
//! it does not know, each refusal saying where.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::compiled::{Compiled, Mode};
use super::paths::IndexPath;
use super::scope::Scope;
use super::{MAX_INDEXES, SchemaError, Schemas};

impl Schemas {
    /// Parses and compiles `universe_schema.json`.
    pub fn parse(bytes: &[u8]) -> Result<Schemas, SchemaError> {
        let Strict(root) =
            serde_json::from_slice(bytes).map_err(|e| SchemaError::Json(e.to_string()))?;
        let root = object(
            &root,
            "",
            "an object { \"version\": 1, \"collections\": {…} }",
        )?;
        known_keys(
            root,
            "",
            &["version", "collections"],
            "version, collections",
        )?;
        let version = root.get("version").ok_or(SchemaError::Missing {
            at: String::new(),
            key: "version",
        })?;
        if version.as_u64() != Some(1) {
            return Err(SchemaError::Version(version.to_string()));
        }
        let collections = root.get("collections").ok_or(SchemaError::Missing {
            at: String::new(),
            key: "collections",
        })?;
        let collections = object(
            collections,
            "/collections",
            "an object of collections by name",
        )?;
        let mut out = BTreeMap::new();
        for (name, entry) in collections {
            let compiled = parse_entry(name, entry)?;
            out.insert(name.clone(), compiled);
        }
        Ok(Schemas { collections: out })
    }
}

fn parse_entry(name: &str, entry: &Value) -> Result<Compiled, SchemaError> {
    Scope::parse(name).map_err(|why| SchemaError::BadCollection {
        name: name.to_string(),
        why,
    })?;
    let at = format!("/collections/{}", pointer_token(name));
    let entry = object(
        entry,
        &at,
        "an object { \"schema\", \"indexes\", \"mode\" }",
    )?;
    known_keys(
        entry,
        &at,
        &["schema", "indexes", "mode"],
        "schema, indexes, mode",
    )?;
    let mode = match entry.get("mode") {
        None => Mode::All,
        Some(Value::String(s)) => Mode::from_name(s).ok_or_else(|| SchemaError::BadMode {
            collection: name.to_string(),
            given: canonical_string(s),
        })?,
        Some(_) => {
            return Err(SchemaError::WrongType {
                at: format!("{at}/mode"),
                expected: "\"all\" or \"new_writes\"",
            });
        }
    };
    let indexes = match entry.get("indexes") {
        None => Vec::new(),
        Some(Value::Array(items)) => indexes(name, &at, items)?,
        Some(_) => {
            return Err(SchemaError::WrongType {
                at: format!("{at}/indexes"),
                expected: "an array of index paths",
            });
        }
    };
    // An entry without a schema only declares indexes: it accepts every record.
    let schema = entry.get("schema").cloned().unwrap_or(Value::Bool(true));
    Compiled::compile(name, mode, indexes, schema)
}

fn indexes(name: &str, at: &str, items: &[Value]) -> Result<Vec<IndexPath>, SchemaError> {
    if items.len() > MAX_INDEXES {
        return Err(SchemaError::TooManyIndexes {
            collection: name.to_string(),
            count: items.len(),
        });
    }
    let mut out: Vec<IndexPath> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(SchemaError::WrongType {
                at: format!("{at}/indexes/{i}"),
                expected: "a string (an index path such as \".address.city\")",
            });
        };
        let path = IndexPath::parse(text).map_err(|error| SchemaError::BadIndex {
            collection: name.to_string(),
            index: text.clone(),
            error,
        })?;
        // `.a` and `."a"` are one path declared twice.
        if out.contains(&path) {
            return Err(SchemaError::DuplicateIndex {
                collection: name.to_string(),
                index: text.clone(),
            });
        }
        out.push(path);
    }
    Ok(out)
}

fn object<'v>(
    v: &'v Value,
    at: &str,
    expected: &'static str,
) -> Result<&'v Map<String, Value>, SchemaError> {
    v.as_object().ok_or_else(|| SchemaError::WrongType {
        at: at.to_string(),
        expected,
    })
}

fn known_keys(
    obj: &Map<String, Value>,
    at: &str,
    keys: &[&str],
    known: &'static str,
) -> Result<(), SchemaError> {
    match obj.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(key) => Err(SchemaError::UnknownKey {
            at: at.to_string(),
            key: key.clone(),
            known,
        }),
        None => Ok(()),
    }
}

fn canonical_string(s: &str) -> String {
    super::canonical::string(s)
}

/// A member name as one token of a JSON pointer (RFC 6901: `~` as `~0`, `/` as `~1`).
fn pointer_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// A JSON value read so that an object giving a member twice is an error, rather than its
/// last value silently winning (a collection declared twice would lose a schema unseen).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("member {key:?} given twice")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// `bytes` as JSON, an object giving a member twice being an error (the rules file's
/// canonical schemas are read this way too).
pub fn strict_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Strict>(bytes).map(|Strict(v)| v)
}
