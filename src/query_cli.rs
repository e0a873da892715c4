//! `islabdb query`: a QQL query asked of a mounted universe through its control file
//! (`qql/ask`, `qql/ask.jsonl`, `qql/ask.csv`): one handle, opened read-write, takes the
//! query and then answers it from offset 0. An answer that is an error document names
//! the position and the problem; it is printed to stderr.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The answer's formats, each with its control file.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Json,
    Jsonl,
    Csv,
}

impl Format {
    pub fn control_file(self) -> &'static str {
        match self {
            Format::Json => "ask",
            Format::Jsonl => "ask.jsonl",
            Format::Csv => "ask.csv",
        }
    }
}

/// Asks `query`; the answer's text, or what went wrong.
pub fn ask(mountpoint: &Path, query: &str, format: Format) -> Result<Vec<u8>, String> {
    let control = mountpoint.join("qql").join(format.control_file());
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&control)
        .map_err(|e| format!("{}: {e} (is a universe mounted there?)", control.display()))?;
    f.write_all(query.as_bytes())
        .map_err(|e| format!("{}: {e}", control.display()))?;
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read_at(&mut buf, answer.len() as u64)
            .map_err(|e| format!("{}: {e}", control.display()))?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    if let Some(e) = error_of(&answer) {
        return Err(e);
    }
    Ok(answer)
}

/// The problem an error document states (`{"error": {"position": …, "message": …}}`).
fn error_of(answer: &[u8]) -> Option<String> {
    // A result is an array (JSON), rows (JSON lines) or CSV; only an error is one object.
    if !answer.starts_with(b"{") {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let e = doc.as_object().filter(|o| o.len() == 1)?.get("error")?;
    let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
    Some(match e.get("position").and_then(|p| p.as_str()) {
        Some(p) => format!("{p}: {message}"),
        None => message.to_string(),
    })
}
