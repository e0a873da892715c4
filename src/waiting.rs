//! Lines recorded wherever something happens and written into the universe later, by the
//! region that keeps them (at its next tick): bounded, the oldest dropped first, so that a
//! daemon whose universe cannot take them does not grow for it.

use std::sync::{Mutex, MutexGuard};

pub struct Waiting {
    lines: Mutex<Vec<String>>,
    max: usize,
}

impl Waiting {
    pub const fn new(max: usize) -> Waiting {
        Waiting {
            lines: Mutex::new(Vec::new()),
            max,
        }
    }

    fn lines(&self) -> MutexGuard<'_, Vec<String>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one line (without its newline).
    pub fn push(&self, line: String) {
        let mut w = self.lines();
        if w.len() >= self.max {
            w.remove(0);
        }
        w.push(line + "\n");
    }

    /// The lines pushed since the last call, oldest first, each with its newline.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines())
    }

    /// Lines taken but not written (the universe refused them): back at the front.
    pub fn put_back(&self, mut lines: Vec<String>) {
        let mut w = self.lines();
        lines.append(&mut w);
        let excess = lines.len().saturating_sub(self.max);
        lines.drain(..excess);
        *w = lines;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_in_order() {
        let w = Waiting::new(3);
        for i in 0..5 {
            w.push(i.to_string());
        }
        let taken = w.take();
        assert_eq!(taken, ["2\n", "3\n", "4\n"]);
        w.push("5".into());
        w.put_back(taken);
        assert_eq!(
            w.take(),
            ["3\n", "4\n", "5\n"],
            "put back before the new, bounded"
        );
        assert!(w.take().is_empty());
    }
}
