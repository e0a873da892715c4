//! The last few files opened for reads, kept open: a scan reads thousands of small
//! contents from one log segment or pack, and opening the file for each (and checking
//! its header) cost more than the read.

use std::sync::{Mutex, MutexGuard};

use crate::error::Result;

pub struct OpenFiles<K, F> {
    /// Most recently opened last.
    kept: Mutex<Vec<(K, F)>>,
    most: usize,
}

impl<K: PartialEq, F: Clone> OpenFiles<K, F> {
    pub fn new(most: usize) -> Self {
        OpenFiles {
            kept: Mutex::new(Vec::new()),
            most,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(K, F)>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file kept for `key`, or the one `open` makes, kept from now on (the oldest
    /// kept one closed when there are too many).
    pub fn get(&self, key: K, open: impl FnOnce() -> Result<F>) -> Result<F> {
        if let Some((_, f)) = self.lock().iter().find(|(k, _)| *k == key) {
            return Ok(f.clone());
        }
        let f = open()?;
        let mut kept = self.lock();
        if kept.len() >= self.most {
            kept.remove(0);
        }
        kept.push((key, f.clone()));
        Ok(f)
    }

    /// Closes the kept files `gone` says were deleted.
    pub fn forget(&self, gone: impl Fn(&K) -> bool) {
        self.lock().retain(|(k, _)| !gone(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_few_and_forgets_the_deleted() {
        let files: OpenFiles<u64, u64> = OpenFiles::new(2);
        let opens = std::cell::Cell::new(0);
        let open = |v: u64| {
            opens.set(opens.get() + 1);
            Ok(v * 10)
        };
        assert_eq!(files.get(1, || open(1)).unwrap(), 10);
        assert_eq!(files.get(1, || open(1)).unwrap(), 10);
        assert_eq!(opens.get(), 1, "kept, not opened again");
        files.get(2, || open(2)).unwrap();
        files.get(3, || open(3)).unwrap(); // 1 is closed
        files.get(1, || open(1)).unwrap();
        assert_eq!(opens.get(), 4);
        files.forget(|k| *k == 1);
        files.get(1, || open(1)).unwrap();
        assert_eq!(opens.get(), 5);
    }
}
