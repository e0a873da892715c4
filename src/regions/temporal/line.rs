//! One event: a line of JSON holding an object, with a `timestamp` (RFC 3339) that says
//! where it belongs. A line without one is stamped with the time it arrived.

use super::time::{Micros, format_rfc3339, parse_rfc3339};

/// A checked event, ready to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub ts: Micros,
    /// The line as stored, without its newline.
    pub line: Vec<u8>,
}

/// Why a line was refused, and where in it (1-based column).
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub column: usize,
    pub why: String,
}

/// A line as written, checked; its timestamp still to be given when it has none.
pub enum Parsed {
    Stamped(Event),
    /// The line without a timestamp: `stamp` gives it one.
    Unstamped(Vec<u8>),
}

/// Whether a line holds nothing but blanks (skipped, not refused: `echo >> f`).
pub fn is_blank(raw: &[u8]) -> bool {
    raw.iter().all(u8::is_ascii_whitespace)
}

/// Checks one line (without its newline): a JSON object whose `timestamp`, if any, is a
/// string in RFC 3339.
pub fn parse(raw: &[u8]) -> Result<Parsed, Refusal> {
    let raw = trim_end(raw);
    let value: serde_json::Value = serde_json::from_slice(raw).map_err(|e| Refusal {
        column: e.column(),
        why: format!("not JSON: {e}"),
    })?;
    let Some(obj) = value.as_object() else {
        return Err(Refusal {
            column: 1 + raw.iter().take_while(|b| b.is_ascii_whitespace()).count(),
            why: "an event must be a JSON object".into(),
        });
    };
    let Some(ts) = obj.get("timestamp") else {
        return Ok(Parsed::Unstamped(raw.to_vec()));
    };
    let column = find(raw, b"\"timestamp\"").map_or(1, |i| i + 1);
    let ts = ts.as_str().ok_or_else(|| Refusal {
        column,
        why: "timestamp must be a string in RFC 3339 (e.g. 2026-11-30T19:05:01Z)".into(),
    })?;
    let ts = parse_rfc3339(ts).map_err(|why| Refusal {
        column,
        why: format!("timestamp {ts:?} does not parse: {why}"),
    })?;
    Ok(Parsed::Stamped(Event {
        ts,
        line: raw.to_vec(),
    }))
}

impl Parsed {
    /// The event, stamped with `now` if it had no timestamp of its own: the field goes
    /// first, the rest of the line stays as written.
    pub fn stamp(self, now: Micros) -> Event {
        match self {
            Parsed::Stamped(e) => e,
            Parsed::Unstamped(raw) => {
                let field = format!("\"timestamp\":\"{}\"", format_rfc3339(now));
                let open = raw.iter().position(|&b| b == b'{').unwrap_or(0);
                let rest = &raw[open + 1..];
                let empty = rest
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_none_or(|&b| b == b'}');
                let mut line = Vec::with_capacity(raw.len() + field.len() + 1);
                line.extend_from_slice(&raw[..=open]);
                line.extend_from_slice(field.as_bytes());
                if !empty {
                    line.push(b',');
                }
                line.extend_from_slice(rest);
                Event { ts: now, line }
            }
        }
    }
}

/// The `type` of a stored event, if it has a string one (for the counters by type).
pub fn event_type(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: Option<serde_json::Value>,
    }
    let t: Typed = serde_json::from_slice(line).ok()?;
    match t.kind? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

/// The timestamp of a stored event (stored lines always have a valid one).
pub fn timestamp(line: &[u8]) -> Option<Micros> {
    #[derive(serde::Deserialize)]
    struct Stamped<'a> {
        #[serde(borrow)]
        timestamp: std::borrow::Cow<'a, str>,
    }
    let s: Stamped = serde_json::from_slice(line).ok()?;
    parse_rfc3339(&s.timestamp).ok()
}

fn trim_end(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &raw[..end]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> Refusal {
        match parse(raw.as_bytes()) {
            Err(r) => r,
            Ok(_) => panic!("{raw} was accepted"),
        }
    }

    #[test]
    fn a_line_without_a_timestamp_is_stamped_first_and_kept_as_written() {
        let now = parse_rfc3339("2026-11-30T19:05:01Z").unwrap_or_default();
        let Ok(p) = parse(br#"{"type":"user_action", "user_id":"alice"}"#) else {
            panic!("refused")
        };
        let e = p.stamp(now);
        assert_eq!(e.ts, now);
        let line = String::from_utf8_lossy(&e.line).to_string();
        assert!(
            line.starts_with(r#"{"timestamp":"2026-11-30T19:05:01"#),
            "{line}"
        );
        assert!(
            line.ends_with(r#","type":"user_action", "user_id":"alice"}"#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_slice(&e.line).unwrap_or_default();
        assert_eq!(v["user_id"], "alice");
        let Ok(p) = parse(b" { } \r") else {
            panic!("refused")
        };
        let e = p.stamp(now);
        let v: serde_json::Value = serde_json::from_slice(&e.line).unwrap_or_default();
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
        assert_eq!(timestamp(&e.line), Some(now));
    }

    #[test]
    fn a_line_with_a_timestamp_keeps_it_and_its_bytes() {
        let raw = br#"{"timestamp":"2026-11-30T20:00:00+01:00","type":"x"}"#;
        let Ok(Parsed::Stamped(e)) = parse(raw) else {
            panic!("not stamped")
        };
        assert_eq!(e.line, raw.to_vec());
        assert_eq!(Some(e.ts), parse_rfc3339("2026-11-30T19:00:00Z").ok());
        assert_eq!(event_type(&e.line).as_deref(), Some("x"));
    }

    #[test]
    fn refusals_say_where_and_why() {
        let r = refused(r#"{"type": oops}"#);
        assert_eq!(r.column, 10, "{r:?}");
        assert!(r.why.contains("not JSON"), "{r:?}");
        let r = refused("[1, 2]");
        assert!(r.why.contains("object"), "{r:?}");
        let r = refused(r#"{"a":1,"timestamp":"yesterday"}"#);
        assert_eq!(r.column, 8, "{r:?}");
        assert!(r.why.contains("yesterday"), "{r:?}");
        let r = refused(r#"{"timestamp":1700000000}"#);
        assert!(r.why.contains("string"), "{r:?}");
        assert!(refused(r#"{"a":1} {"b":2}"#).why.contains("not JSON"));
        assert!(is_blank(b"  \r"));
    }
}
