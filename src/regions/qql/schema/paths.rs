//! Index paths: the JSON paths of a collection's records that its `indexes` declare
//! (`.age`, `.address.city`, `.tags[0]`, `."first name"`). Parsed and checked here, kept
//! as segments for the query planner, which reads them and nothing else of this module.
//!
//! Grammar (no whitespace anywhere):
//!
//! ```text
//! path   = "." first rest*
//! first  = name | quoted | "[" index "]"
//! rest   = "." name | "." quoted | "[" index "]"
//! name   = one or more of A-Z a-z 0-9 _ - and any non-ASCII character
//! quoted = a JSON string literal ("x y", "a.b", "", "\u00e9"): any member name
//! index  = "0" | [1-9][0-9]*        at most 4294967295
//! ```
//!
//! `.0` is the member named `"0"`; `[0]` is the first element of an array. A path has at
//! most [`MAX_SEGMENTS`] segments and [`MAX_LEN`] bytes of text.

use std::fmt;

/// Segments a path holds at most.
pub const MAX_SEGMENTS: usize = 32;
/// Bytes of text a path holds at most (so every member name fits the rules file's u16).
pub const MAX_LEN: usize = 1024;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// A member of an object.
    Key(String),
    /// An element of an array, from 0.
    Index(usize),
}

/// A parsed index path: its segments, at least one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexPath(Vec<Seg>);

/// Why a path's text is not a path: what was expected, at which character (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    pub position: usize,
    pub why: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.position, self.why)
    }
}

/// A character a bare member name may hold.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || !c.is_ascii()
}

impl IndexPath {
    /// A path from its segments; `None` for none, more than [`MAX_SEGMENTS`], a member
    /// name over [`MAX_LEN`] bytes or an index over 4294967295 (what text could not say).
    pub fn new(segs: Vec<Seg>) -> Option<IndexPath> {
        let fits = |s: &Seg| match s {
            Seg::Key(k) => k.len() <= MAX_LEN,
            Seg::Index(i) => u32::try_from(*i).is_ok(),
        };
        (!segs.is_empty() && segs.len() <= MAX_SEGMENTS && segs.iter().all(fits))
            .then_some(IndexPath(segs))
    }

    pub fn parse(text: &str) -> Result<IndexPath, PathError> {
        // Positions are told in characters, from 1, as an editor shows them.
        let err = |byte: usize, why: String| PathError {
            position: text[..byte].chars().count() + 1,
            why,
        };
        if text.len() > MAX_LEN {
            return Err(err(0, format!("longer than {MAX_LEN} bytes")));
        }
        let mut segs = Vec::new();
        let mut at = 0;
        if !text.starts_with('.') {
            return Err(err(0, "an index path starts with '.'".into()));
        }
        while at < text.len() {
            let rest = &text[at..];
            let first = segs.is_empty();
            if let Some(after) = rest.strip_prefix('.') {
                at += 1;
                if after.starts_with('"') {
                    let (key, len) = quoted(after).map_err(|why| err(at, why))?;
                    segs.push(Seg::Key(key));
                    at += len;
                } else if first && after.starts_with('[') {
                    // `.[0]`: the leading dot may stand before an index, as in jq.
                    continue;
                } else {
                    let len = after
                        .char_indices()
                        .find(|&(_, c)| !is_name_char(c))
                        .map_or(after.len(), |(i, _)| i);
                    if len == 0 {
                        let why = match after.chars().next() {
                            None => "expected a member name after '.'".to_string(),
                            Some(c) => format!(
                                "expected a member name after '.', found {c:?} (a name with \
                                 characters other than letters, digits, '_' and '-' is quoted: \
                                 .\"a b\")"
                            ),
                        };
                        return Err(err(at, why));
                    }
                    segs.push(Seg::Key(after[..len].to_string()));
                    at += len;
                }
            } else if let Some(after) = rest.strip_prefix('[') {
                let digits = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                if digits == 0 {
                    return Err(err(
                        at + 1,
                        "expected an array index (digits) after '['".into(),
                    ));
                }
                if digits > 1 && after.starts_with('0') {
                    return Err(err(at + 1, "an array index has no leading zeros".into()));
                }
                let index = after[..digits]
                    .parse::<u32>()
                    .map_err(|_| err(at + 1, "an array index is at most 4294967295".into()))?;
                if !after[digits..].starts_with(']') {
                    return Err(err(
                        at + 1 + digits,
                        "expected ']' after the array index".into(),
                    ));
                }
                segs.push(Seg::Index(index as usize));
                at += 1 + digits + 1;
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                return Err(err(
                    at,
                    format!(
                        "expected '.' or '[', found {c:?} (a member name with characters other \
                         than letters, digits, '_' and '-' is quoted: .\"a b\")"
                    ),
                ));
            }
            if segs.len() > MAX_SEGMENTS {
                return Err(err(at, format!("more than {MAX_SEGMENTS} segments")));
            }
        }
        Ok(IndexPath(segs))
    }

    pub fn segments(&self) -> &[Seg] {
        &self.0
    }
}

/// The member name of a quoted segment at the start of `s` (which starts with `"`), and
/// how many bytes its literal takes.
fn quoted(s: &str) -> Result<(String, usize), String> {
    let bytes = s.as_bytes();
    let mut i = 1;
    // The literal ends at the first quote no backslash escapes.
    loop {
        match bytes.get(i) {
            None => return Err("unterminated quoted name".into()),
            Some(b'\\') => i += 2,
            Some(b'"') => break,
            Some(_) => i += 1,
        }
    }
    let literal = &s[..=i];
    serde_json::from_str::<String>(literal)
        .map(|key| (key, literal.len()))
        .map_err(|e| format!("bad quoted name {literal}: {e}"))
}

impl fmt::Display for IndexPath {
    /// The path's canonical text: names bare where they can be, quoted otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if !k.is_empty() && k.chars().all(is_name_char) => write!(f, ".{k}")?,
                Seg::Key(k) => {
                    f.write_str(".")?;
                    f.write_str(&super::canonical::string(k))?;
                }
                Seg::Index(n) if i == 0 => write!(f, ".[{n}]")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    #[test]
    fn parses_members_quoted_names_and_indexes() {
        let p = |t: &str| IndexPath::parse(t).map(|p| p.segments().to_vec());
        assert_eq!(p(".age"), Ok(vec![key("age")]));
        assert_eq!(p(".address.city"), Ok(vec![key("address"), key("city")]));
        assert_eq!(p(".tags[0]"), Ok(vec![key("tags"), Seg::Index(0)]));
        assert_eq!(
            p(".m[10][2].x"),
            Ok(vec![key("m"), Seg::Index(10), Seg::Index(2), key("x")])
        );
        assert_eq!(p(".\"x y\""), Ok(vec![key("x y")]));
        assert_eq!(p(".\"a.b\".c"), Ok(vec![key("a.b"), key("c")]));
        assert_eq!(p(".\"\""), Ok(vec![key("")]));
        assert_eq!(p(".\"q\\\"\\u00e9\""), Ok(vec![key("q\"é")]));
        assert_eq!(p(".[3]"), Ok(vec![Seg::Index(3)]));
        assert_eq!(p(".0"), Ok(vec![key("0")]));
        assert_eq!(p(".città-x_1"), Ok(vec![key("città-x_1")]));
    }

    #[test]
    fn refuses_bad_paths_with_their_position() {
        let e = |t: &str| IndexPath::parse(t).err().map(|e| (e.position, e.why));
        let pos = |t: &str| e(t).map(|(p, _)| p);
        assert_eq!(pos("age"), Some(1));
        assert_eq!(pos(""), Some(1));
        assert_eq!(pos("."), Some(2));
        assert_eq!(pos(".a..b"), Some(4));
        assert_eq!(pos(".a b"), Some(3));
        assert_eq!(pos(".a[x]"), Some(4));
        assert_eq!(pos(".a[01]"), Some(4));
        assert_eq!(pos(".a[-1]"), Some(4));
        assert_eq!(pos(".a[1"), Some(5));
        assert_eq!(pos(".a[99999999999]"), Some(4));
        assert_eq!(pos(".\"abc"), Some(2));
        assert_eq!(pos(".\"a\\x\""), Some(2));
        assert_eq!(pos(".é b"), Some(3), "characters, not bytes");
        assert_eq!(
            pos(".a.[0]"),
            Some(4),
            "only the leading dot may precede '['"
        );
        let (_, why) = e(".a b").unwrap_or_default();
        assert!(why.contains("quoted"), "{why}");
        let deep = ".a".repeat(MAX_SEGMENTS + 1);
        assert!(e(&deep).is_some_and(|(_, w)| w.contains("segments")));
        assert!(IndexPath::parse(&".a".repeat(MAX_SEGMENTS)).is_ok());
        let long = format!(".{}", "a".repeat(MAX_LEN));
        assert!(e(&long).is_some_and(|(_, w)| w.contains("longer")));
    }

    #[test]
    fn displays_canonically_and_round_trips() {
        for (text, shown) in [
            (".age", ".age"),
            (".\"age\"", ".age"),
            (".\"x y\"[2]", ".\"x y\"[2]"),
            (".[0].a", ".[0].a"),
            (".\"\"", ".\"\""),
            (".\"tab\\t\"", ".\"tab\\t\""),
        ] {
            let p = IndexPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.to_string(), shown);
            assert_eq!(IndexPath::parse(shown).ok(), Some(p));
        }
    }

    #[test]
    fn looks_values_up() {
        let v = serde_json::json!({"a": {"tags": ["x", "y"]}, "x y": 1});
        let get = |t: &str| {
            IndexPath::parse(t)
                .ok()
                .and_then(|p| crate::regions::qql::index_path(&p).get(&v).cloned())
        };
        assert_eq!(get(".a.tags[1]"), Some("y".into()));
        assert_eq!(get(".\"x y\""), Some(1.into()));
        assert_eq!(get(".a.tags[2]"), None);
        assert_eq!(get(".a[0]"), None);
    }
}
