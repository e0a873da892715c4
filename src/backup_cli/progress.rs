//! Progress of a long offline task: a bar on a terminal (`indicatif`), plain lines at
//! every tenth otherwise (a log or a pipe keeps them readable).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    what: String,
    total: u64,
    done: u64,
    bar: Option<ProgressBar>,
    /// The tenths printed so far (plain lines).
    tenths: u64,
}

impl Progress {
    /// Progress of `what` over `total` bytes (or items).
    pub fn new(what: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style =
                ProgressStyle::with_template("{msg:>12} [{bar:40}] {bytes}/{total_bytes} ({eta})")
                    .map(|s| s.progress_chars("=> "));
            if let Ok(style) = style {
                bar.set_style(style);
            }
            bar.set_message(what.to_string());
            bar
        });
        Progress {
            what: what.to_string(),
            total,
            done: 0,
            bar,
            tenths: 0,
        }
    }

    pub fn advance(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.set_position(self.done),
            None => {
                let tenths = (self.done * 10)
                    .checked_div(self.total)
                    .unwrap_or(10)
                    .min(10);
                if tenths > self.tenths {
                    self.tenths = tenths;
                    eprintln!("{}: {}%", self.what, tenths * 10);
                }
            }
        }
    }

    pub fn finish(self) {
        match self.bar {
            Some(bar) => bar.finish(),
            None if self.tenths < 10 => eprintln!("{}: 100%", self.what),
            None => {}
        }
    }
}
