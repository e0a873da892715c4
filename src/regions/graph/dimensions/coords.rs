//! A node's coordinates: the vector the similarity index and the clusters work on.
//!
//! **Given.** A node whose JSON object has a `coordinates` member uses it as it is: an
//! array of 1 to 1,024 numbers, each finite and within the range of an `f32` (stored as
//! the nearest `f32`). Anything else there refuses the node (`EINVAL`), naming the
//! problem.
//!
//! **Derived.** A node without one gets [`DERIVED_DIM`] (64) coordinates from its content
//! by signed feature hashing, so that nodes sharing fields and words point the same way
//! (near by cosine):
//!
//! 1. The JSON value is walked in document order. Each value has a *path*: the member
//!    names from the top joined by `.`, with `[]` appended for an array's elements (so
//!    `{"tags": ["a"]}` has the string `a` at `tags[]`). The top's path is empty.
//! 2. Tokens (UTF-8 strings), each counted once per occurrence:
//!    - `t:<kind>` once, for the top value's kind (`object`, `array`, `string`,
//!      `number`, `bool`, `null`), so that no vector is zero;
//!    - `k:<path>` for every member of every object (the key paths present);
//!    - for a string, every *word* (a maximal run of alphanumeric characters, in Unicode's
//!      sense, lower-cased) gives `w:<word>` and `v:<path>=<word>`: the word alone makes
//!      texts near across fields, the pair makes equal field values nearer still;
//!    - for a number `x`, `n:<path>=<bucket>`, where the bucket is `0` for zero, else the
//!      sign (`+` or `-`) followed by `floor(log2 |x|)` in decimal (so 5 and 7 share
//!      `+2`, 0.3 is `+-2`);
//!    - `b:<path>=true` or `b:<path>=false` for a boolean, `z:<path>` for null.
//! 3. Each token's 64-bit FNV-1a hash `h` (offset basis `0xcbf29ce484222325`, prime
//!    `0x100000001b3`, over its bytes) adds `+1` to coordinate `h mod 64` when bit 63 of
//!    `h` is clear, `−1` when it is set (the sign keeps collisions from piling up).
//! 4. The vector is divided by its euclidean length.
//!
//! The method depends on nothing but the bytes of the tokens: the same content gives the
//! same coordinates on every machine and build. Member order does not matter (sums
//! commute), but repetition does (a word said twice weighs twice).

use serde_json::Value;

use crate::error::{Error, Result};

/// The length of derived coordinates.
pub const DERIVED_DIM: usize = 64;
/// The most numbers a given `coordinates` member may hold.
pub const MAX_DIM: usize = 1024;
/// The member that gives a node's coordinates.
pub const MEMBER: &str = "coordinates";

/// The coordinates of a node's JSON content: given, or derived.
pub fn of_node(node: &Value) -> Result<Vec<f32>> {
    match node.get(MEMBER) {
        Some(given) => given_coordinates(given),
        None => Ok(derive(node)),
    }
}

fn given_coordinates(v: &Value) -> Result<Vec<f32>> {
    let bad = |why: String| Err(Error::InvalidRecord(format!("`{MEMBER}`: {why}")));
    let Some(items) = v.as_array() else {
        return bad(format!("must be an array of numbers, not {}", kind(v)));
    };
    if items.is_empty() || items.len() > MAX_DIM {
        return bad(format!(
            "must hold 1 to {MAX_DIM} numbers, it holds {}",
            items.len()
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(x) = item.as_f64() else {
            return bad(format!("item {i} is {}, not a number", kind(item)));
        };
        // serde_json parses no NaN or infinity, but a huge literal overflows an f32.
        if !x.is_finite() || x.abs() > f64::from(f32::MAX) {
            return bad(format!(
                "item {i} ({x}) is out of the range of a 32-bit float"
            ));
        }
        out.push(x as f32);
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Derived coordinates (see the module's documentation), of unit length.
pub fn derive(node: &Value) -> Vec<f32> {
    let mut v = vec![0f32; DERIVED_DIM];
    let mut add = |token: &str| {
        let h = fnv1a(token.as_bytes());
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[(h % DERIVED_DIM as u64) as usize] += sign;
    };
    add(&format!("t:{}", kind(node)));
    walk(node, &mut String::new(), &mut add);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    // Never zero in practice (the kind token alone is ±1 somewhere), unless tokens cancel
    // out exactly; a zero vector is then kept as it is (distance 1 to all by cosine).
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn walk(v: &Value, path: &mut String, add: &mut impl FnMut(&str)) {
    match v {
        Value::Object(members) => {
            for (name, child) in members {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                add(&format!("k:{path}"));
                walk(child, path, add);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            let len = path.len();
            path.push_str("[]");
            for item in items {
                walk(item, path, add);
            }
            path.truncate(len);
        }
        Value::String(s) => {
            for word in s.split(|c: char| !c.is_alphanumeric()) {
                if word.is_empty() {
                    continue;
                }
                let word = word.to_lowercase();
                add(&format!("w:{word}"));
                add(&format!("v:{path}={word}"));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let bucket = if x == 0.0 {
                "0".to_string()
            } else {
                let sign = if x > 0.0 { '+' } else { '-' };
                format!("{sign}{}", x.abs().log2().floor() as i64)
            };
            add(&format!("n:{path}={bucket}"));
        }
        Value::Bool(b) => add(&format!("b:{path}={b}")),
        Value::Null => add(&format!("z:{path}")),
    }
}

/// 64-bit FNV-1a: fixed by its definition, unlike std's hasher (free to change between
/// Rust versions), so derived coordinates written to disk stay valid.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::graph::dimensions::metric::Metric;
    use serde_json::json;

    #[test]
    fn fnv1a_matches_its_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn derivation_is_deterministic_unit_and_pinned() {
        let node = json!({"name": "Alice Smith", "age": 34, "tags": ["physics", "rust"]});
        let a = of_node(&node).unwrap();
        assert_eq!(a.len(), DERIVED_DIM);
        assert_eq!(a, of_node(&node).unwrap());
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        // Member order does not matter.
        let reordered = json!({"tags": ["physics", "rust"], "age": 34, "name": "Alice Smith"});
        assert_eq!(a, of_node(&reordered).unwrap());
        // The method is part of the format: a change to it must show here. The hashes of
        // the tokens of `{}` are fixed by FNV-1a alone.
        let empty = derive(&json!({}));
        let h = fnv1a(b"t:object");
        let mut want = vec![0f32; DERIVED_DIM];
        want[(h % 64) as usize] = if h >> 63 == 0 { 1.0 } else { -1.0 };
        assert_eq!(empty, want);
        // Numbers fall in buckets of powers of two.
        assert_eq!(derive(&json!({"n": 5})), derive(&json!({"n": 7})));
        assert_ne!(derive(&json!({"n": 5})), derive(&json!({"n": 9})));
        assert_ne!(derive(&json!({"n": 5})), derive(&json!({"n": -5})));
    }

    #[test]
    fn similar_records_are_nearer_than_dissimilar_ones() {
        let d = |a: &Value, b: &Value| Metric::Cosine.distance(&derive(a), &derive(b));
        let alice = json!({"type": "person", "name": "Alice Smith",
            "bio": "quantum physicist working on entanglement", "age": 34});
        let bob = json!({"type": "person", "name": "Bob Smith",
            "bio": "physicist working on quantum entanglement experiments", "age": 38});
        let acme = json!({"kind": "company", "title": "Acme Widgets Ltd",
            "employees": 12000, "founded": 1952, "public": true});
        let near = d(&alice, &bob);
        let far = d(&alice, &acme);
        assert!(near < far, "near {near} far {far}");
        assert!(near < 0.5, "near {near}");
        // Case and punctuation do not separate words.
        assert!(d(&json!({"t": "Hello, World!"}), &json!({"t": "hello world"})) < 1e-6);
    }

    #[test]
    fn given_coordinates_are_used_and_bad_ones_refused() {
        let c = of_node(&json!({"name": "x", "coordinates": [1, 2.5, -3e10]})).unwrap();
        assert_eq!(c, vec![1.0, 2.5, -3e10]);
        for (bad, says) in [
            (json!({"coordinates": "1,2"}), "not string"),
            (json!({"coordinates": []}), "it holds 0"),
            (json!({"coordinates": [1, "2"]}), "item 1 is string"),
            (json!({"coordinates": [1, null]}), "item 1 is null"),
            (json!({"coordinates": [1e300]}), "out of the range"),
            (
                json!({"coordinates": vec![0; MAX_DIM + 1]}),
                "it holds 1025",
            ),
        ] {
            match of_node(&bad) {
                Err(Error::InvalidRecord(why)) => {
                    assert!(why.contains("coordinates"), "{why}");
                    assert!(why.contains(says.trim_start_matches("not ")), "{why}");
                }
                other => panic!("{bad} gave {other:?}"),
            }
        }
        assert_eq!(
            of_node(&json!({"coordinates": vec![0.5; MAX_DIM]}))
                .unwrap()
                .len(),
            MAX_DIM
        );
    }
}
