//! `qql/schema/validation_rules.erl` (`ISLSCHM1`): the compiled form of
//! `universe_schema.json`, layout in FORMAT.md. A validator cannot be written out, so the
//! file holds what rebuilds one without reading the source again — per entry its name,
//! mode, index paths (as segments), and its schema's canonical text with that text's
//! hash — and comparing it with the source's [`Rules::of`] tells whether it is stale
//! (a reformatting of the source is no change). `islabdb rules FILE` prints one as JSON
//! ([`rules_json`]).

use serde_json::{Value, json};

use super::canonical;
use super::compiled::{Compiled, Mode};
use super::file::strict_json;
use super::paths::{IndexPath, MAX_SEGMENTS, Seg};
use super::scope::Scope;
use super::{MAX_INDEXES, Schemas};
use crate::engine::frame;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"ISLSCHM1";
const VERSION: u16 = 1;
const WHAT: &str = "validation_rules.erl";
const KEY: u8 = 0;
const INDEX: u8 = 1;

/// One entry, as the file holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleEntry {
    pub name: String,
    pub mode: Mode,
    /// FNV-1a 64 of `schema`.
    pub hash: u64,
    /// The schema's canonical text.
    pub schema: String,
    pub indexes: Vec<IndexPath>,
}

/// A rules file's entries, in ascending byte order of names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub entries: Vec<RuleEntry>,
}

/// The rules file of `schemas`.
pub fn encode(schemas: &Schemas) -> Vec<u8> {
    Rules::of(schemas).encode()
}

/// A rules file as JSON, as `islabdb rules FILE` prints it.
pub fn rules_json(bytes: &[u8]) -> Result<Value> {
    Ok(Rules::decode(bytes)?.json())
}

impl Rules {
    pub fn of(schemas: &Schemas) -> Rules {
        let entry = |c: &Compiled| RuleEntry {
            name: c.name().to_string(),
            mode: c.mode(),
            hash: c.hash(),
            schema: c.canonical().to_string(),
            indexes: c.indexes().to_vec(),
        };
        Rules {
            entries: schemas.entries().map(entry).collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = frame::file_header(MAGIC, VERSION).to_vec();
        put_len32(&mut out, self.entries.len());
        for e in &self.entries {
            put_len16(&mut out, e.name.len());
            out.extend_from_slice(e.name.as_bytes());
            out.push(match e.mode {
                Mode::All => 0,
                Mode::NewWrites => 1,
            });
            out.extend_from_slice(&e.hash.to_le_bytes());
            put_len32(&mut out, e.schema.len());
            out.extend_from_slice(e.schema.as_bytes());
            put_len16(&mut out, e.indexes.len());
            for path in &e.indexes {
                // At most MAX_SEGMENTS (IndexPath's own bound).
                out.push(path.segments().len() as u8);
                for seg in path.segments() {
                    match seg {
                        Seg::Key(k) => {
                            out.push(KEY);
                            put_len16(&mut out, k.len());
                            out.extend_from_slice(k.as_bytes());
                        }
                        Seg::Index(i) => {
                            out.push(INDEX);
                            put_len32(&mut out, *i);
                        }
                    }
                }
            }
        }
        frame::seal(&mut out);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Rules> {
        let body = frame::unseal(bytes, MAGIC, VERSION, WHAT)?;
        if bytes[10..12] != [0, 0] {
            return Err(corrupt("reserved header bytes are not zero"));
        }
        let mut r = Reader { buf: body, at: 0 };
        let count = r.u32("the count")?;
        let mut entries: Vec<RuleEntry> = Vec::new();
        for _ in 0..count {
            let entry = entry(&mut r)?;
            if entries
                .last()
                .is_some_and(|last| last.name.as_bytes() >= entry.name.as_bytes())
            {
                return Err(corrupt(&format!(
                    "collection {:?} out of order",
                    entry.name
                )));
            }
            entries.push(entry);
        }
        if r.at != body.len() {
            return Err(corrupt(&format!(
                "{} bytes after the last entry",
                body.len() - r.at
            )));
        }
        Ok(Rules { entries })
    }

    /// The schemas these entries describe, compiled (the file holds all they need).
    #[cfg(test)]
    pub fn compile(&self) -> std::result::Result<Schemas, super::SchemaError> {
        let mut collections = std::collections::BTreeMap::new();
        for e in &self.entries {
            // Decoding checked that the text is JSON: a failure here would be a bug.
            let schema = strict_json(e.schema.as_bytes())
                .map_err(|err| super::SchemaError::Json(err.to_string()))?;
            let compiled = Compiled::compile(&e.name, e.mode, e.indexes.clone(), schema)?;
            collections.insert(e.name.clone(), compiled);
        }
        Ok(Schemas { collections })
    }

    pub fn json(&self) -> Value {
        json!({
            "version": VERSION,
            "collections": self.entries.iter().map(|e| json!({
                "name": e.name,
                "mode": e.mode.name(),
                "schema_hash": format!("{:016x}", e.hash),
                "indexes": e.indexes.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "schema": strict_json(e.schema.as_bytes()).unwrap_or(Value::Null),
            })).collect::<Vec<_>>(),
        })
    }
}

fn corrupt(why: &str) -> Error {
    Error::Corrupt(format!("{WHAT}: {why}"))
}

fn put_len16(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes());
}

fn put_len32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// Reads the body's fields, each checked against its end.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let got = self
            .buf
            .get(self.at..)
            .and_then(|rest| rest.get(..n))
            .ok_or_else(|| {
                corrupt(&format!(
                    "the file ends inside {what} (byte {})",
                    frame::FILE_HEADER + self.at
                ))
            })?;
        self.at += n;
        Ok(got)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn str(&mut self, len: usize, what: &str) -> Result<&'a str> {
        let at = frame::FILE_HEADER + self.at;
        std::str::from_utf8(self.take(len, what)?)
            .map_err(|_| corrupt(&format!("{what} at byte {at} is not UTF-8")))
    }
}

fn entry(r: &mut Reader<'_>) -> Result<RuleEntry> {
    let len = r.u16("a collection's name")?;
    let name = r.str(usize::from(len), "a collection's name")?.to_string();
    Scope::parse(&name).map_err(|why| corrupt(&format!("collection {name:?}: {why}")))?;
    let bad = |why: &str| corrupt(&format!("collection {name:?}: {why}"));
    let mode = match r.u8("a mode")? {
        0 => Mode::All,
        1 => Mode::NewWrites,
        m => return Err(bad(&format!("unknown mode {m}"))),
    };
    let hash = r.u64("a schema's hash")?;
    let len = r.u32("a schema's length")?;
    let schema = r.str(len as usize, "a schema")?.to_string();
    let parsed = strict_json(schema.as_bytes()).map_err(|e| bad(&format!("schema: {e}")))?;
    if !matches!(parsed, Value::Object(_) | Value::Bool(_)) || canonical::text(&parsed) != schema {
        return Err(bad(
            "schema is not canonical JSON of an object or a boolean",
        ));
    }
    if canonical::hash(schema.as_bytes()) != hash {
        return Err(bad("schema does not match its hash"));
    }
    let count = r.u16("an index count")?;
    if usize::from(count) > MAX_INDEXES {
        return Err(bad(&format!("{count} index paths")));
    }
    let mut indexes: Vec<IndexPath> = Vec::new();
    for _ in 0..count {
        let segs = r.u8("an index path")?;
        if segs == 0 || usize::from(segs) > MAX_SEGMENTS {
            return Err(bad(&format!("an index path of {segs} segments")));
        }
        let mut path = Vec::new();
        for _ in 0..segs {
            path.push(match r.u8("a segment")? {
                KEY => {
                    let len = r.u16("a member name")?;
                    Seg::Key(r.str(usize::from(len), "a member name")?.to_string())
                }
                INDEX => Seg::Index(r.u32("an array index")? as usize),
                k => return Err(bad(&format!("unknown segment kind {k}"))),
            });
        }
        let path = IndexPath::new(path).ok_or_else(|| bad("a bad index path"))?;
        if indexes.contains(&path) {
            return Err(bad(&format!("index path {path} twice")));
        }
        indexes.push(path);
    }
    Ok(RuleEntry {
        name,
        mode,
        hash,
        schema,
        indexes,
    })
}
