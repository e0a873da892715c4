//! What a node and an edge hold. A node is a JSON object; its optional `coordinates` are
//! checked as `dimensions::coords` reads them. An edge is a JSON object whose optional
//! `strength` is a number in 0..=1 (default 1), `since` an RFC 3339 time (default: the
//! edge's last commit), and `decay` the half-life of its strength: seconds as a number,
//! or a string such as `"90s"`, `"30m"`, `"12h"`, `"30d"`. The effective strength is
//! `strength × 0.5^((now − since) / decay)`, or `strength` without a `decay`.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::regions::json::JsonCheck;
use crate::regions::temporal::time::{self, Micros};
use crate::regions::{Check, Rule};

/// A node or an edge is held whole to be checked: more than this is refused.
pub const MAX_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Edge {
    pub strength: f64,
    pub since: Option<Micros>,
    /// Half-life.
    pub decay: Option<Micros>,
}

impl Edge {
    /// The strength at `now`; `committed` stands in for a missing `since`.
    pub fn effective(&self, now: Micros, committed: Micros) -> f64 {
        let Some(half) = self.decay else {
            return self.strength;
        };
        let age = (now - self.since.unwrap_or(committed)).max(0) as f64;
        self.strength * 0.5f64.powf(age / half as f64)
    }
}

/// What the stored edge at `ino` says, with the time of its last commit (standing in for
/// a missing `since`). An edge not written yet is of full strength.
pub fn read_edge(cx: &crate::regions::Cx<'_>, ino: u64) -> Result<(Edge, Micros)> {
    let attr = cx.store.getattr(ino)?;
    let bytes = cx.store.read(ino, 0, attr.size as usize)?;
    let committed = attr.mtime.secs * 1_000_000 + i64::from(attr.mtime.nanos / 1000);
    let v: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&bytes).map_err(|e| invalid("edge", e))?
    };
    Ok((parse_edge(&v)?, committed))
}

fn invalid(what: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidRecord(format!("{what}: {why}"))
}

pub fn check_node(v: &Value) -> Result<()> {
    if !v.is_object() {
        return Err(invalid("node", "must be a JSON object"));
    }
    super::dimensions::coords::of_node(v).map(|_| ())
}

/// A duration: seconds as a number, or a number with a unit (s, m, h, d).
fn duration(v: &Value) -> Option<Micros> {
    let secs = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let s = s.trim();
            let unit = match s.chars().last()? {
                's' => 1.0,
                'm' => 60.0,
                'h' => 3600.0,
                'd' => 86_400.0,
                _ => return None,
            };
            s[..s.len() - 1].trim().parse::<f64>().ok()? * unit
        }
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0 && secs < 1e12).then_some((secs * 1e6) as Micros)
}

pub fn parse_edge(v: &Value) -> Result<Edge> {
    if !v.is_object() {
        return Err(invalid("edge", "must be a JSON object"));
    }
    let strength = match v.get("strength") {
        None => 1.0,
        Some(s) => match s.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => x,
            _ => return Err(invalid("strength", "must be a number from 0 to 1")),
        },
    };
    let since = match v.get("since") {
        None => None,
        Some(s) => Some(
            s.as_str()
                .ok_or_else(|| invalid("since", "must be an RFC 3339 time"))
                .and_then(|s| time::parse_rfc3339(s).map_err(|e| invalid("since", e)))?,
        ),
    };
    let decay = match v.get("decay") {
        None => None,
        Some(d) => Some(duration(d).ok_or_else(|| {
            invalid(
                "decay",
                "must be a half-life: seconds, or a number with s, m, h or d (\"30d\")",
            )
        })?),
    };
    Ok(Edge {
        strength,
        since,
        decay,
    })
}

/// The check of a node's or an edge's content: JSON as the bytes arrive, what it holds
/// at the end.
pub struct BodyCheck {
    json: JsonCheck,
    bytes: Vec<u8>,
    /// The document was judged as soon as it was complete.
    judged: bool,
    check: fn(&Value) -> Result<()>,
    what: &'static str,
}

impl BodyCheck {
    fn judge(&self) -> Result<()> {
        let v: Value = serde_json::from_slice(&self.bytes).map_err(|e| invalid(self.what, e))?;
        (self.check)(&v)
    }
}

pub fn rule(id: &'static str, what: &'static str, check: fn(&Value) -> Result<()>) -> Rule {
    Rule {
        id,
        check: Box::new(BodyCheck {
            json: JsonCheck::new(),
            bytes: Vec::new(),
            judged: false,
            check,
            what,
        }),
    }
}

impl Check for BodyCheck {
    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        if self.bytes.len() + bytes.len() > MAX_BYTES {
            return Err(invalid(self.what, "larger than 1 MiB"));
        }
        self.json
            .feed(bytes)
            .map_err(|e| invalid(self.what, format!("invalid JSON at {e}")))?;
        self.bytes.extend_from_slice(bytes);
        // Judged as soon as it is whole, so that the write completing a bad one fails
        // (a shell's `echo … > f` sees that; it never sees a failing close).
        if !self.judged && self.json.complete() {
            self.judged = true;
            self.judge()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.json
            .finish()
            .map_err(|e| invalid(self.what, format!("invalid JSON at {e}")))?;
        // An empty file is a node or edge not written yet (as for any record).
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.judge()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::check_stream;
    use serde_json::json;

    #[test]
    fn edges_decay_with_their_half_life() {
        let e =
            parse_edge(&json!({"strength": 0.8, "since": "2026-01-01T00:00:00Z", "decay": "10d"}))
                .expect("edge");
        let since = e.since.expect("since");
        let day = 86_400_000_000;
        assert!((e.effective(since, 0) - 0.8).abs() < 1e-9);
        assert!((e.effective(since + 10 * day, 0) - 0.4).abs() < 1e-9);
        assert!((e.effective(since + 20 * day, 0) - 0.2).abs() < 1e-9);
        // Before `since`: not stronger than given.
        assert!((e.effective(since - day, 0) - 0.8).abs() < 1e-9);
        let plain = parse_edge(&json!({})).expect("edge");
        assert_eq!(plain.strength, 1.0);
        assert_eq!(plain.effective(i64::MAX / 2, 0), 1.0);
        let secs =
            parse_edge(&json!({"decay": 60, "since": "2026-01-01T00:00:00Z"})).expect("edge");
        assert_eq!(secs.decay, Some(60_000_000));
        // Without `since`, the commit time counts.
        let nosince = parse_edge(&json!({"decay": "1h"})).expect("edge");
        assert!((nosince.effective(3_600_000_000, 0) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn bad_edges_and_nodes_are_refused_with_the_field() {
        for (v, field) in [
            (json!({"strength": 1.5}), "strength"),
            (json!({"strength": "high"}), "strength"),
            (json!({"since": "yesterday"}), "since"),
            (json!({"decay": "soon"}), "decay"),
            (json!({"decay": -3}), "decay"),
            (json!([1, 2]), "edge"),
        ] {
            let e = parse_edge(&v).expect_err("refused");
            assert!(e.to_string().contains(field), "{v}: {e}");
        }
        assert!(check_node(&json!({"name": "alice", "coordinates": [0.1, 2]})).is_ok());
        for v in [
            json!([1]),
            json!({"coordinates": []}),
            json!({"coordinates": [1, "x"]}),
            json!({"coordinates": 3}),
        ] {
            assert!(check_node(&v).is_err(), "{v}");
        }
        let check = |text: &str| {
            let mut r = rule("graph-edge", "edge", |v| parse_edge(v).map(|_| ()));
            check_stream(&mut r, &mut text.as_bytes(), text.len() as u64)
        };
        assert!(check("").is_ok());
        assert!(check("{\"strength\": 0.5}\n").is_ok());
        assert!(check("{\"strength\": 2}").is_err());
        assert!(check("{\"strength\": ").is_err());
        // Judged by the write that completes it, before the end.
        let mut r = rule("graph-edge", "edge", |v| parse_edge(v).map(|_| ()));
        assert!(r.check.feed(b"{\"strength\": 0.5}").is_ok());
        let mut r = rule("graph-edge", "edge", |v| parse_edge(v).map(|_| ()));
        assert!(r.check.feed(b"{\"strength\": 3}\n").is_err());
    }
}
