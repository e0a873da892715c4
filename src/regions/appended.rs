//! A file of the universe a region appends lines to itself (a history, a log): stored like
//! any file, so it survives restarts, and bounded: once it holds a tenth more lines than
//! it keeps, it is cut back to its newest lines in one step (cutting at every append would
//! rewrite the whole file each time).

use std::sync::Mutex;

use crate::engine::Change;
use crate::error::{Error, Result};
use crate::regions::Cx;

pub struct Appended {
    /// The seed directory holding it.
    dir: &'static str,
    name: &'static str,
    /// The first line (with its newline), or "" for a file of lines only.
    header: &'static str,
    /// Lines below the header the file holds (counted at the first append).
    lines: Mutex<Option<u64>>,
}

impl Appended {
    pub const fn new(dir: &'static str, name: &'static str, header: &'static str) -> Appended {
        Appended {
            dir,
            name,
            header,
            lines: Mutex::new(None),
        }
    }

    /// Appends `new` (whole lines, each ending with a newline), keeping at most about
    /// `keep` lines: made with its header when missing, cut back to `keep` lines once it
    /// grew a tenth past them.
    pub fn append(&self, cx: &Cx<'_>, new: &[String], keep: u64) -> Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let dir = cx.seed_dir(self.dir).ok_or(Error::NotFound)?.ino;
        let file = cx.store.lookup(dir, self.name.as_bytes()).ok();
        let mut counted = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let lines = match (&file, *counted) {
            (Some(_), Some(n)) => n,
            (Some(_), None) => self.body(cx)?.len() as u64,
            (None, _) => 0,
        };
        let added = new.len() as u64;
        let change = match &file {
            Some(a) if lines + added <= keep + keep / 10 => Change::Append {
                ino: a.ino,
                bytes: new.concat().into_bytes(),
            },
            _ => {
                let mut text = String::from(self.header);
                let old = if file.is_some() {
                    self.body(cx)?
                } else {
                    Vec::new()
                };
                let room = keep.saturating_sub(added) as usize;
                for l in &old[old.len().saturating_sub(room)..] {
                    text.push_str(l);
                    text.push('\n');
                }
                let from = new.len().saturating_sub(keep.max(1) as usize);
                new[from..].iter().for_each(|l| text.push_str(l));
                Change::Put {
                    parent: dir,
                    name: self.name.as_bytes().to_vec(),
                    bytes: text.into_bytes(),
                }
            }
        };
        let cut = matches!(change, Change::Put { .. });
        cx.store.apply(vec![change], false)?;
        *counted = Some(if cut {
            (lines.min(keep.saturating_sub(added)) + added).min(keep.max(1))
        } else {
            lines + added
        });
        if let Some(a) = &file {
            (cx.changed)(a.ino);
        }
        Ok(())
    }

    /// The lines below the header, as stored now (none when the file is missing).
    pub fn body(&self, cx: &Cx<'_>) -> Result<Vec<String>> {
        let dir = cx.seed_dir(self.dir).ok_or(Error::NotFound)?.ino;
        let Ok(a) = cx.store.lookup(dir, self.name.as_bytes()) else {
            return Ok(Vec::new());
        };
        let text = cx.store.read(a.ino, 0, a.size as usize)?;
        let text = String::from_utf8_lossy(&text);
        let skip = usize::from(!self.header.is_empty());
        Ok(text
            .lines()
            .skip(skip)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }
}

/// The fields of one line of a CSV history a region appends (no quoting: no field holds a
/// comma).
pub struct Columns<'a>(Vec<&'a str>);

impl<'a> Columns<'a> {
    /// `line`'s fields, if it has `n` of them.
    pub fn of(line: &'a str, n: usize) -> Option<Columns<'a>> {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        (f.len() == n).then_some(Columns(f))
    }

    pub fn int(&self, i: usize) -> Option<u64> {
        self.0.get(i)?.parse().ok()
    }

    pub fn num(&self, i: usize) -> Option<f64> {
        self.0.get(i)?.parse().ok()
    }

    /// An RFC 3339 instant, in µs since the epoch.
    pub fn time(&self, i: usize) -> Option<crate::regions::temporal::time::Micros> {
        crate::regions::temporal::time::parse_rfc3339(self.0.get(i)?).ok()
    }
}
