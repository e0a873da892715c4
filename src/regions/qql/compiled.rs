//! A compiled query as stored in `hash_<h>.erl` (FORMAT.md, "Compiled queries"): the
//! parsed query with its text, the plan's explanation and the compile time, in a sealed
//! file `ISLQQLC1`. The payload is the `bincode` 2 (standard configuration) encoding of
//! [`Compiled`] through serde.

use super::lang::ast::Query;
use super::lang::lexer::normalize;
use crate::engine::frame;
use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"ISLQQLC1";
pub const VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Compiled {
    /// The query as written.
    pub text: String,
    pub query: Query,
    /// `Plan::explain` as JSON text, at compile time.
    pub plan: String,
    /// When it was compiled, µs since the epoch.
    pub compiled_at: i64,
}

/// The file: header (magic, version), u32 payload length, payload, CRC32 of all before.
pub fn encode(c: &Compiled) -> Result<Vec<u8>> {
    let payload = bincode::serde::encode_to_vec(c, bincode::config::standard())
        .map_err(|e| Error::InvalidRecord(format!("compiled query: {e}")))?;
    let len =
        u32::try_from(payload.len()).map_err(|_| Error::NoSpace("compiled query over 4 GiB"))?;
    let mut out = frame::file_header(MAGIC, VERSION).to_vec();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload);
    frame::seal(&mut out);
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<Compiled> {
    const WHAT: &str = "compiled query";
    let body = frame::unseal(bytes, MAGIC, VERSION, WHAT)?;
    let bad = |why: &str| Error::Corrupt(format!("{WHAT}: {why}"));
    let (len, payload) = body
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("no length"))?;
    if payload.len() != u32::from_le_bytes(*len) as usize {
        return Err(bad("payload length does not match"));
    }
    let (c, used) = bincode::serde::decode_from_slice(payload, bincode::config::standard())
        .map_err(|e| bad(&e.to_string()))?;
    if used != payload.len() {
        return Err(bad("bytes after the payload"));
    }
    Ok(c)
}

/// The query's hash: FNV-1a 64 of its normalized text (tokens separated by one space,
/// reserved words upper-case, strings re-quoted), as 16 lowercase hex digits. Queries
/// that differ only in blanks, comments or the case of keywords share it.
pub fn hash(text: &str) -> super::lang::error::Result<String> {
    let norm = normalize(text)?;
    let h = norm.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Ok(format!("{h:016x}"))
}

/// A compiled query file as JSON, as `islabdb compiled FILE` prints it.
pub fn json(bytes: &[u8]) -> Result<serde_json::Value> {
    let c = decode(bytes)?;
    let query = serde_json::to_value(&c.query).map_err(|e| Error::Corrupt(e.to_string()))?;
    let plan: serde_json::Value =
        serde_json::from_str(&c.plan).unwrap_or(serde_json::Value::String(c.plan.clone()));
    Ok(serde_json::json!({
        "text": c.text,
        "query": query,
        "plan": plan,
        "compiled_at": crate::regions::temporal::time::format_rfc3339(c.compiled_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::qql::exec::plan::plan;
    use crate::regions::qql::lang::parser::parse;
    use crate::regions::qql::memsource::Mem;

    fn compiled(text: &str) -> Compiled {
        let query = parse(text).unwrap();
        let plan = plan(&query, &Mem::default()).unwrap().explain().to_string();
        Compiled {
            text: text.to_string(),
            query,
            plan,
            compiled_at: 1_793_491_200_000_000,
        }
    }

    #[test]
    fn round_trips_every_kind_of_query() {
        for text in [
            "FROM spacetime/*/particles/users AS u WHERE .age >= 30.5 AND (.city IN (\"Paris\", [1, null]) OR NOT EXISTS .\"e mail\"[0]) AND .name STARTS WITH \"Al\" SELECT .name, .age AS years ORDER BY .age DESC LIMIT 10 OFFSET 5",
            "FROM STREAM events SINCE \"2026-11-01T00:00:00Z\" UNTIL \"2026-11-02T00:00:00Z\" GROUP BY BUCKET 1h, @key SELECT @bucket, count(), sum(.x), avg(.x), min(.x), max(.x)",
            "NEIGHBOURS OF alice VIA works_for OUT AS n WHERE n@edge.strength > 0.5",
            "PATHS FROM alice TO acme VIA r BOTH MAX DEPTH 4",
            "NEAREST 5 TO [0.1, -0.2, 3]",
            "NEAREST 5 TO alice",
            "FROM quantum_graph/nodes/persons AS p JOIN works_for OUT AS o JOIN * IN SELECT p.name, o.name, @edge.strength",
        ] {
            let c = compiled(text);
            let bytes = encode(&c).unwrap();
            assert_eq!(&bytes[..8], MAGIC);
            assert_eq!(decode(&bytes).unwrap(), c, "{text}");
        }
    }

    /// The bytes FORMAT.md shows for `FROM a`.
    #[test]
    fn layout_is_as_documented() {
        let c = Compiled {
            text: "FROM a".into(),
            query: parse("FROM a").unwrap(),
            plan: "{}".into(),
            compiled_at: -1,
        };
        let bytes = encode(&c).unwrap();
        let mut want = b"ISLQQLC1\x01\x00\x00\x00".to_vec();
        let payload: &[u8] = &[
            6, b'F', b'R', b'O', b'M', b' ', b'a', // text
            0, 1, 1, 0, 1, b'a', 1, 6,
            0, // From::Collections, 1 pattern, 1 segment Name "a", pos 1:6, no alias
            0, 0, 0, 0, 0, 0, 0, // joins, filter, group, select, order, limit, offset
            2, b'{', b'}', // plan
            1,    // compiled_at -1, zigzag
        ];
        want.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
        want.extend_from_slice(payload);
        want.extend_from_slice(&crc32fast::hash(&want).to_le_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn damage_is_caught() {
        let bytes = encode(&compiled("FROM a WHERE .x = 1")).unwrap();
        crate::engine::frame::assert_damage_is_caught(&bytes, |b| decode(b).is_ok());
    }

    #[test]
    fn hash_is_stable_and_ignores_layout() {
        let h = hash("FROM a WHERE .x = 1").unwrap();
        assert_eq!(h.len(), 16);
        assert_eq!(hash("from a\n  where .x=1 -- why").unwrap(), h);
        assert_ne!(hash("FROM a WHERE .x = 2").unwrap(), h);
        // FNV-1a 64 of the normalized text "FROM a".
        assert_eq!(hash("from a").unwrap(), format!("{:016x}", fnv(b"FROM a")));
        assert!(hash("FROM \"a").is_err());
    }

    fn fnv(bytes: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        h
    }
}
