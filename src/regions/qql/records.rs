//! Reading a collection's records for a query: the files of a directory that are JSON
//! records, parsed whole or, when the query reads only some top-level members, only
//! those (`Members`): the others are skipped, not built. A scan reads in passing
//! (`Storage::read_files_passing`), so that it does not fill the cache with what it reads
//! once.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::in_order;
pub use super::source::Members;
use crate::engine::api::Storage;
use crate::engine::tree::Kind;
use crate::error::Result;
use crate::regions::Cx;

/// A record's content, with only `members` when given. `None` when it is not JSON. A
/// record that is not an object parses as `null` with members given: no member path
/// reaches into it either way.
pub fn parse(bytes: &[u8], members: Members<'_>) -> Option<Value> {
    let Some(members) = members else {
        return serde_json::from_slice(bytes).ok();
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Only(members).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(v)
}

/// Deserializes an object keeping only some members.
struct Only<'m>(&'m [String]);

impl<'de> DeserializeSeed<'de> for Only<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Which of the wanted members a key is.
struct Wanted<'m>(&'m [String]);

impl<'de> DeserializeSeed<'de> for Wanted<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Wanted<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, k: &str) -> std::result::Result<Self::Value, E> {
        Ok(self.0.iter().position(|m| m == k))
    }
}

impl<'de> Visitor<'de> for Only<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(found) = m.next_key_seed(Wanted(self.0))? {
            match found {
                Some(i) => {
                    out.insert(self.0[i].clone(), m.next_value::<Value>()?);
                }
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut s: A,
    ) -> std::result::Result<Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
}

/// A record's parsed content by name in `dir` (`None`: gone, or not a JSON record).
pub fn read_record(
    cx: &Cx<'_>,
    dir: u64,
    name: &[u8],
    members: Members<'_>,
) -> Result<Option<(u64, Value)>> {
    if !name.ends_with(b".json") {
        return Ok(None);
    }
    let Ok(attr) = cx.store.lookup(dir, name) else {
        return Ok(None);
    };
    if attr.kind != Kind::File {
        return Ok(None);
    }
    let bytes = cx.store.read(attr.ino, 0, attr.size as usize)?;
    Ok(parse(&bytes, members).map(|v| (attr.ino, v)))
}

/// Entries read together: one lock of the engine's tree and cache for each slice, and a
/// slice is the piece a helper thread takes.
const SLICE: usize = 256;

/// Reads (in passing) and parses the JSON records of a slice of `dir`'s listing: (name,
/// content) of those that are JSON (an empty file not yet written is not).
fn parse_slice(
    store: &dyn Storage,
    dir: u64,
    listed: &[(u64, u64)],
    members: Members<'_>,
) -> Result<Vec<(Arc<[u8]>, Value)>> {
    let mut out = Vec::new();
    for (name, bytes) in store.read_files_passing(dir, listed, &|n| n.ends_with(b".json"))? {
        match bytes {
            Ok(b) => out.extend(parse(&b, members).map(|v| (name, v))),
            // Removed since it was listed.
            Err(crate::error::Error::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Gives each JSON record of `dir` to `each`: (name, parsed content), read in passing, in
/// listing order. The listing is taken at once (a file moved meanwhile is read where it
/// went, as listed); its slices are read and parsed on helper threads too.
pub fn each_record(
    store: &dyn Storage,
    dir: u64,
    members: Members<'_>,
    each: &mut dyn FnMut(&[u8], Value),
) -> Result<()> {
    let listed = store.listing(dir)?;
    let slices: Vec<&[(u64, u64)]> = listed.chunks(SLICE).collect();
    in_order::run(
        slices.len(),
        |i| parse_slice(store, dir, slices[i], members),
        |parsed| {
            for (name, v) in parsed {
                each(&name, v);
            }
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_keep_only_what_is_asked_and_whole_parses_keep_all() {
        let doc = br#"{"a": 1, "b": {"c": [1, 2]}, "d": "x\"y", "e": null}"#;
        let want = |m: &[&str]| m.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            parse(doc, Some(&want(&["b", "e", "zz"]))),
            Some(json!({"b": {"c": [1, 2]}, "e": null}))
        );
        assert_eq!(parse(doc, Some(&[])), Some(json!({})));
        assert_eq!(parse(doc, None), serde_json::from_slice(doc).ok());
        // Not an object: nothing a member path could reach.
        assert_eq!(
            parse(b"[1, {\"a\": 2}]", Some(&want(&["a"]))),
            Some(json!(null))
        );
        assert_eq!(parse(b"7", Some(&want(&["a"]))), Some(json!(null)));
        // Not JSON, or JSON followed by more: no record, either way.
        for bad in [&b"{\"a\": 1"[..], b"", b"{\"a\": 1} x", b"{\"a\": tru}"] {
            assert_eq!(parse(bad, Some(&want(&["a"]))), None, "{bad:?}");
            assert_eq!(parse(bad, None), None, "{bad:?}");
        }
        // An escaped key is the key it spells.
        assert_eq!(
            parse(br#"{"\u0061": 5}"#, Some(&want(&["a"]))),
            Some(json!({"a": 5}))
        );
    }
}
