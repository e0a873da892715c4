//! The canonical text of a JSON value, and its hash: how the rules file stores a schema,
//! so that two spellings of one schema (spacing, key order) are the same schema.
//!
//! Canonical text is compact JSON with every object's members in ascending byte order of
//! their names: no whitespace; strings escape `"` `\` as `\"` `\\`, U+0008 U+000C U+000A
//! U+000D U+0009 as `\b` `\f` `\n` `\r` `\t`, the other characters below U+0020 as
//! `\u00XX` (lowercase hex), and nothing else; numbers as serde_json writes them
//! (integers in decimal; others in the shortest form that reads back the same, an
//! exponent written `e+N` or `e-N`: `2.5`, `-0.0`, `1e+100`). This is
//! what serde_json writes for a value whose maps are sorted, spelled out here so that the
//! format does not depend on it.

use std::fmt::Write;

use serde_json::Value;

/// `v` as canonical text.
pub fn text(v: &Value) -> String {
    let mut out = String::new();
    write_value(v, &mut out);
    out
}

/// A string as a canonical JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(s, &mut out);
    out
}

fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here whatever order the map keeps (serde_json may preserve insertion
            // order when another crate asks for it).
            let mut members: Vec<_> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3): a schema's
/// identity in the rules file and in logs. Not a defence against anyone: the CRC guards
/// the file, and the canonical text itself is compared where it matters.
pub fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_members_and_agrees_with_serde_json() {
        let v: Value = serde_json::from_str(
            r#"{ "b": [1, 2.5, -0.0, 1e100, {"z": null, "a": true}], "a": "q\"\\\n\u0001é\u2028", "": {} }"#,
        )
        .unwrap_or_default();
        let t = text(&v);
        assert_eq!(
            t,
            r#"{"":{},"a":"q\"\\\n\u0001é"#.to_string()
                + "\u{2028}"
                + r#"","b":[1,2.5,-0.0,1e+100,{"a":true,"z":null}]}"#
        );
        // serde_json's own compact output of the same value (its default map is sorted).
        assert_eq!(serde_json::to_string(&v).ok(), Some(t.clone()));
        let back: Value = serde_json::from_str(&t).unwrap_or_default();
        assert_eq!(text(&back), t, "canonical text reads back to itself");
    }

    #[test]
    fn hash_is_fnv1a_64() {
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
