//! The daemon's own log, kept as files it serves (`observatory/logs/`): every line goes to
//! stderr as before and into up to three books — the main log, the maintenance log
//! (checkpoints, stream rollovers, moves) and the warnings-and-errors log. A book is
//! rotated as `logrotate --copytruncate` does: once it passes its bound it becomes the
//! `.1` file and starts again empty, so `tail -f` sees a truncation and goes on with the
//! new lines.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Bytes a book holds before it rotates.
pub const BOUND: usize = 1 << 20;

#[derive(Default)]
struct Pages {
    current: Vec<u8>,
    previous: Vec<u8>,
    rotations: u64,
}

pub struct Book {
    pages: Mutex<Pages>,
}

impl Book {
    fn new() -> Book {
        Book {
            pages: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pages> {
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, line: &[u8]) {
        let mut p = self.lock();
        if p.current.len() + line.len() > BOUND && !p.current.is_empty() {
            p.previous = std::mem::take(&mut p.current);
            p.rotations += 1;
        }
        p.current.extend_from_slice(line);
    }

    /// The current page (`rotated`: the one before it): its length and bytes from `off`.
    pub fn read(&self, rotated: bool, off: u64, size: usize) -> (u64, Vec<u8>) {
        let p = self.lock();
        let page = if rotated { &p.previous } else { &p.current };
        let start = (off as usize).min(page.len());
        let end = start.saturating_add(size).min(page.len());
        (page.len() as u64, page[start..end].to_vec())
    }

    pub fn len(&self, rotated: bool) -> u64 {
        let p = self.lock();
        (if rotated { &p.previous } else { &p.current }).len() as u64
    }

    pub fn rotations(&self) -> u64 {
        self.lock().rotations
    }
}

/// The three books.
pub struct LogBook {
    pub main: Book,
    pub maintenance: Book,
    pub problems: Book,
}

static BOOK: OnceLock<Arc<LogBook>> = OnceLock::new();

/// The daemon's books, when the daemon installed them (`install`); tests have none.
pub fn books() -> Option<&'static Arc<LogBook>> {
    BOOK.get()
}

/// Whether a line is about maintenance: checkpoints, and the regions' periodic work.
fn is_maintenance(target: &str) -> bool {
    ["checkpointer", "maintenance", "rebalanc"]
        .iter()
        .any(|t| target.contains(t))
}

struct Tee {
    inner: env_logger::Logger,
    book: Arc<LogBook>,
}

impl log::Log for Tee {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.inner.matches(record) {
            return;
        }
        self.inner.log(record);
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let mut line = Vec::with_capacity(128);
        let _ = writeln!(
            line,
            "{now} {:<5} {}: {}",
            record.level(),
            record.target(),
            record.args()
        );
        self.book.main.add(&line);
        if is_maintenance(record.target()) {
            self.book.maintenance.add(&line);
        }
        if record.level() <= log::Level::Warn {
            self.book.problems.add(&line);
        }
        if record.level() == log::Level::Error {
            crate::events::error(record.target(), &record.args().to_string());
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs the logger: `RUST_LOG` as before (default info) to stderr, and the books.
pub fn install() {
    let inner =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
    let level = inner.filter();
    let book = Arc::new(LogBook {
        main: Book::new(),
        maintenance: Book::new(),
        problems: Book::new(),
    });
    let _ = BOOK.set(book.clone());
    if log::set_boxed_logger(Box::new(Tee { inner, book })).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_book_rotates_past_its_bound_and_keeps_the_page_before() {
        let b = Book::new();
        let line = vec![b'x'; 1000];
        for _ in 0..(BOUND / 1000) {
            b.add(&line);
        }
        assert_eq!(b.rotations(), 0);
        let next = vec![b'y'; 1000];
        b.add(&next);
        assert_eq!(b.rotations(), 1);
        assert_eq!(b.read(false, 0, 2000), (1000, next));
        assert_eq!(b.len(true), (BOUND / 1000 * 1000) as u64);
        assert!(is_maintenance("islabdb::engine::checkpointer"));
        assert!(!is_maintenance("islabdb::vfs::handles"));
    }
}
