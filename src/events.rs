//! Significant events (mounts, recoveries, checkpoints, snapshots, restores,
//! configuration changes, refused commits, errors): recorded here wherever they happen,
//! logged at once, and written by the `cosmic_logs` region to
//! `backups/cosmic_logs/cosmic_events.jsonl` at its next tick (about a second later),
//! where they survive restarts.

use std::sync::Mutex;

use serde_json::{Map, Value, json};

/// Lines not yet written to the universe: bounded, the oldest dropped first (a daemon
/// whose universe cannot take them must not grow for it).
static WAITING: Mutex<Vec<String>> = Mutex::new(Vec::new());
const WAITING_MAX: usize = 10_000;

fn waiting() -> std::sync::MutexGuard<'static, Vec<String>> {
    WAITING.lock().unwrap_or_else(|e| e.into_inner())
}

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
    queue(text);
}

/// An error the daemon logged, as an event (the logger calls it).
pub fn error(target: &str, message: &str) {
    let line = json!({"time": now(), "kind": "error", "source": target, "message": message});
    queue(line.to_string());
}

fn queue(line: String) {
    let mut w = waiting();
    if w.len() >= WAITING_MAX {
        w.remove(0);
    }
    w.push(line + "\n");
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The lines recorded since the last call, oldest first.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *waiting())
}

/// Lines taken but not written (the universe refused them): back at the front.
pub fn put_back(mut lines: Vec<String>) {
    let mut w = waiting();
    lines.append(&mut w);
    let excess = lines.len().saturating_sub(WAITING_MAX);
    lines.drain(..excess);
    *w = lines;
}
