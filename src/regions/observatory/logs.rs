//! `observatory/logs/`: the daemon's log books (`crate::logbook`) as files, read where
//! they are (`tail -f` follows them; a rotation shows as a truncation, the lines before it
//! in the `.1` file).

use std::sync::Arc;

use crate::engine::api::Storage;
use crate::error::Result;
use crate::logbook::{self, Book, LogBook};
use crate::regions::{Generated, RangeSource};

/// Which of the books a file shows.
type Which = fn(&LogBook) -> &Book;

/// Each book's file name, and which book it is.
const FILES: [(&str, Which); 3] = [
    ("quantum_db.log", |b| &b.main),
    ("physics_engine.log", |b| &b.maintenance),
    ("error_gravitational_waves.log", |b| &b.problems),
];

/// The log files there are now: each book, and its page before the last rotation.
pub fn names() -> Vec<String> {
    let Some(books) = logbook::books() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, book) in FILES {
        out.push(name.to_string());
        if book(books).rotations() > 0 {
            out.push(format!("{name}.1"));
        }
    }
    out
}

struct Page {
    books: Arc<LogBook>,
    book: Which,
    rotated: bool,
}

impl RangeSource for Page {
    fn read(&self, _store: &dyn Storage, off: u64, size: usize) -> Result<Vec<u8>> {
        Ok((self.book)(&self.books).read(self.rotated, off, size).1)
    }
}

pub fn generate(name: &str) -> Option<Generated> {
    let books = logbook::books()?;
    let (base, rotated) = match name.strip_suffix(".1") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let (_, book) = FILES.into_iter().find(|(n, _)| *n == base)?;
    Some(Generated::Ranged {
        len: book(books).len(rotated),
        source: Arc::new(Page {
            books: books.clone(),
            book,
            rotated,
        }),
    })
}
