//! Records: below `particles/` and the graph's node and edge collections, a `.json` file
//! must hold one JSON document whenever it is committed (an empty file is a record not
//! yet written). Other names are opaque bytes (editors' temp files, blobs).

use crate::engine::Attr;
use crate::error::{Error, Result};
use crate::regions::json::JsonCheck;
use crate::regions::{Check, Dir, Region, Rule, Tag};

pub struct Records;

pub const TAG: Tag = 1;

impl Region for Records {
    fn name(&self) -> &'static str {
        "records"
    }

    fn tag(&self) -> Tag {
        TAG
    }

    fn data_format(&self) -> &'static str {
        "JSON records, one document per file; other names are opaque bytes"
    }

    fn purpose_of_user_dir(&self, name: &str, attr: &Attr) -> String {
        format!(
            "Records of type '{name}' in the {} tier",
            attr.tier.dir_name()
        )
    }

    fn rule(&self, _dir: &Dir, name: &[u8]) -> Option<Rule> {
        name.ends_with(b".json").then(json_rule)
    }
}

/// One JSON document (or nothing).
pub fn json_rule() -> Rule {
    Rule {
        id: "json",
        check: Box::new(Json(JsonCheck::new())),
    }
}

struct Json(JsonCheck);

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidRecord(format!("invalid JSON at {e}"))
}

impl Check for Json {
    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        self.0.feed(bytes).map_err(invalid)
    }

    fn finish(&mut self) -> Result<()> {
        self.0.finish().map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::check_stream;

    fn check(s: &str) -> Result<()> {
        check_stream(&mut json_rule(), &mut s.as_bytes(), s.len() as u64)
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
