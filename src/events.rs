//! Significant events (mounts, recoveries, checkpoints, snapshots, restores,
//! configuration changes, refused commits, errors): recorded here wherever they happen,
//! logged at once, and written by the `cosmic_logs` region to
//! `backups/cosmic_logs/cosmic_events.jsonl` at its next tick (about a second later),
//! where they survive restarts.

use serde_json::{Map, Value, json};

use crate::waiting::Waiting;

/// Events not yet written to the universe (`cosmic_logs` writes them).
pub static WAITING: Waiting = Waiting::new(10_000);

/// Records an event of `kind`, with `fields` (an object), as one JSON line.
pub fn record(kind: &str, fields: Value) {
    let mut line = Map::new();
    line.insert("time".into(), json!(now()));
    line.insert("kind".into(), json!(kind));
    if let Value::Object(f) = fields {
        line.extend(f);
    }
    let text = Value::Object(line).to_string();
    log::info!(target: "islabdb::event", "{text}");
    WAITING.push(text);
}

/// An error the daemon logged, as an event (the logger calls it).
pub fn error(target: &str, message: &str) {
    let line = json!({"time": now(), "kind": "error", "source": target, "message": message});
    WAITING.push(line.to_string());
}

/// The time of a line of the universe's logs: UTC, to the millisecond.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
