//! Writes to a stream: bytes arrive in pieces of any size, a line counts when its newline
//! arrives, each line is checked, and the complete lines of one write are stored in one
//! atomic batch. An invalid line fails the write that completes it (EINVAL) and is
//! dropped whole; the lines before it are kept.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::line;
use super::store::{Dest, Shared};
use crate::error::{Error, Result};
use crate::regions::{Cx, Sink};

pub struct Stream {
    shared: Arc<Shared>,
    /// A partition written straight to: its events must belong to it.
    within: Option<Dest>,
    /// For the log: the file as the writer named it.
    path: String,
    /// The last line's bytes so far (no newline yet).
    pending: Vec<u8>,
    /// Lines completed through this open (the log's line numbers).
    lines: u64,
    /// Whether lines were stored since the last sync: a close makes them durable. The
    /// last close of an open comes twice (the kernel's flush, then its release); the
    /// second must not sync again, or it syncs other writers' lines on its own, outside
    /// their group commit.
    unsynced: bool,
}

impl Stream {
    pub fn new(shared: Arc<Shared>, within: Option<Dest>, path: String) -> Stream {
        shared.writers.fetch_add(1, Ordering::Relaxed);
        Stream {
            shared,
            within,
            path,
            pending: Vec::new(),
            lines: 0,
            unsynced: false,
        }
    }

    /// Checks and stores the complete lines of `pending` (all of it, with `last`: the
    /// open ends). Returns how far into `pending` the stored lines reach, and whether an
    /// invalid line stopped it there. An invalid first line is an error.
    fn take_lines(&mut self, cx: &Cx<'_>, last: bool) -> Result<(usize, bool)> {
        let mut parsed = Vec::new();
        let mut taken = 0;
        let mut refused = None;
        while taken < self.pending.len() {
            let rest = &self.pending[taken..];
            let (raw, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], taken + i + 1),
                None if last => (rest, self.pending.len()),
                None => break,
            };
            self.lines += 1;
            if !line::is_blank(raw) {
                match line::parse(raw) {
                    Ok(p) => parsed.push(p),
                    Err(r) => {
                        refused = Some((self.lines, r));
                        break;
                    }
                }
            }
            taken = next;
        }
        if let Some((n, r)) = &refused {
            log::warn!(
                "{}: refusing line {n} at column {}: {}; the lines before it are kept",
                self.path,
                r.column,
                r.why
            );
            let why = format!("{}: line {n}, column {}: {}", self.path, r.column, r.why);
            cx.metrics.refused(why);
            if parsed.is_empty() {
                return Err(Error::InvalidRecord(format!(
                    "{}: line {n}, column {}: {}",
                    self.path, r.column, r.why
                )));
            }
        }
        self.unsynced |= self.shared.store(cx, parsed, self.within)?;
        Ok((taken, refused.is_some()))
    }
}

impl Sink for Stream {
    fn write(&mut self, cx: &Cx<'_>, bytes: &[u8]) -> Result<usize> {
        let before = self.pending.len();
        self.pending.extend_from_slice(bytes);
        match self.take_lines(cx, false) {
            Ok((taken, false)) => {
                self.pending.drain(..taken);
                Ok(bytes.len())
            }
            Ok((taken, true)) => {
                // A short write: the writer sends the rest again and meets the refusal.
                self.pending.clear();
                Ok(taken - before)
            }
            Err(e) => {
                // The write is refused whole, with the line it completed.
                self.pending.clear();
                Err(e)
            }
        }
    }

    fn sync(&mut self, cx: &Cx<'_>) -> Result<()> {
        if self.unsynced {
            cx.store.sync()?;
            self.unsynced = false;
        }
        Ok(())
    }

    fn close(&mut self, cx: &Cx<'_>) -> Result<()> {
        if !self.pending.is_empty() {
            let res = self.take_lines(cx, true);
            self.pending.clear();
            if res?.1 {
                self.sync(cx)?;
                return Err(Error::InvalidRecord(format!(
                    "{}: the last line was refused (the log says why)",
                    self.path
                )));
            }
        }
        self.sync(cx)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.writers.fetch_sub(1, Ordering::Relaxed);
    }
}
