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
