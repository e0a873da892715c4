//! The audit trail: one human-readable line for every change users make and every
//! operation the access configuration denies. Recorded on the request's path, written by
//! the `cosmic_logs` region to `backups/cosmic_logs/audit_trail.log` at its next tick.
//!
//! A line: the time (UTC), the user's name and uid, the result (`ok`, `denied`,
//! `failed`), the operation, its path or paths (JSON-quoted: any byte of a name is
//! shown unambiguously), and for anything but `ok` the reason after a colon:
//!
//! ```text
//! 2026-12-01T16:40:00.123Z alice(1000) ok write "spacetime/hot_data/particles/users/a.json"
//! 2026-12-01T16:40:01.004Z nobody(65534) denied open-read "spacetime/cold_data/x": …
//! ```

use crate::error::Error;
use crate::identity;
use crate::vfs::Caller;
use crate::waiting::Waiting;

/// Lines not yet written to the universe (`cosmic_logs` writes them).
pub static WAITING: Waiting = Waiting::new(100_000);

/// Records that `who` (`None`: the daemon itself) did `op` on `paths`, with `result`.
pub fn record(who: Option<Caller>, op: &str, paths: &[&str], result: Result<(), &Error>) {
    WAITING.push(line(who, op, paths, result));
}

fn line(who: Option<Caller>, op: &str, paths: &[&str], result: Result<(), &Error>) -> String {
    let user = match who {
        Some(c) => format!("{}({})", identity::user_name(c.uid), c.uid),
        None => "islabdb(daemon)".to_string(),
    };
    let outcome = match result {
        Ok(()) => "ok",
        Err(Error::Denied(_)) => "denied",
        Err(_) => "failed",
    };
    let mut text = format!("{} {user} {outcome} {op}", crate::events::now());
    for p in paths {
        text.push(' ');
        text.push_str(&serde_json::Value::from(*p).to_string());
    }
    if let Err(e) = result {
        text.push_str(": ");
        text.push_str(&e.to_string().replace('\n', " "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_time_user_result_operation_paths_and_reason() {
        let root = Caller {
            uid: 0,
            gid: 0,
            pid: 1,
        };
        let l = line(Some(root), "rename", &["a b", "c\"d"], Ok(()));
        let (time, rest) = l.split_once(' ').unwrap_or_default();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{l}");
        assert_eq!(rest, r#"root(0) ok rename "a b" "c\"d""#);
        let denied = Error::Denied("no role of nobody may write to spacetime/hot_data".into());
        let l = line(None, "unlink", &["x"], Err(&denied));
        assert!(
            l.ends_with(
                r#"islabdb(daemon) denied unlink "x": access denied: no role of nobody may write to spacetime/hot_data"#
            ),
            "{l}"
        );
        let l = line(None, "mkdir", &["x"], Err(&Error::Exists));
        assert!(l.contains(" failed mkdir \"x\": "), "{l}");
    }
}
