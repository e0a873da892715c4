//! Records: `.json` files in record regions must hold one valid JSON document when they
//! are committed. An empty file is a record not yet written, and is accepted.

use std::io::Read;

use crate::error::{Error, Result};

/// Checks that `bytes` hold exactly one JSON value (or nothing). Streams, so a large
/// record is validated without holding it in memory twice.
pub fn validate_json(bytes: &mut dyn Read, len: u64) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let mut de = serde_json::Deserializer::from_reader(bytes);
    let res =
        <serde::de::IgnoredAny as serde::Deserialize>::deserialize(&mut de).and_then(|_| de.end());
    res.map_err(|e| {
        Error::InvalidRecord(format!(
            "invalid JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str) -> Result<()> {
        validate_json(&mut s.as_bytes(), s.len() as u64)
    }

    #[test]
    fn accepts_documents_and_empty_files() {
        assert!(check("").is_ok());
        assert!(check("{\"a\": [1, 2, {\"b\": null}]}\n").is_ok());
        assert!(check("  42 ").is_ok());
    }

    #[test]
    fn refuses_with_line_and_column() {
        let err = check("{\n  \"a\": 1,\n  oops\n}")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("column"), "{err}");
        assert!(check("{} {}").is_err(), "two documents");
        assert!(check("{\"a\":").is_err(), "truncated");
    }
}
