//! Changes the regions have not all heard of yet. The engine makes a change visible
//! before the regions are told of it (a region's own state, such as an index, catches
//! up then), so a reader of both could meet the change in the files and miss it in the
//! region's state. Whoever makes a change the regions will be told of marks its
//! directories from before the change until after the telling (`Regions::telling`); a
//! reader that needs the two to agree asks whether a directory is quiet (`Regions::told`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// How many changes to each directory are made or being made and not yet told.
#[derive(Default)]
pub struct Untold(Mutex<HashMap<u64, u32>>);

impl Untold {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, u32>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn begin(&self, dirs: &[u64]) -> Telling<'_> {
        let mut map = self.lock();
        for &d in dirs {
            *map.entry(d).or_default() += 1;
        }
        Telling {
            untold: self,
            dirs: dirs.to_vec(),
        }
    }

    /// Whether no change to any of `dirs` is being made or told now.
    pub fn quiet(&self, dirs: &[u64]) -> bool {
        let map = self.lock();
        dirs.iter().all(|d| !map.contains_key(d))
    }
}

/// A change between its making and its telling: ends when dropped, also when the change
/// failed (nothing is told then, and nothing needs to be).
pub struct Telling<'a> {
    untold: &'a Untold,
    dirs: Vec<u64>,
}

impl Drop for Telling<'_> {
    fn drop(&mut self) {
        let mut map = self.untold.lock();
        for d in &self.dirs {
            if let Some(n) = map.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    map.remove(d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_quiet_once_every_telling_of_it_ended() {
        let untold = Untold::default();
        let a = untold.begin(&[1, 2]);
        let b = untold.begin(&[2]);
        assert!(!untold.quiet(&[1]) && !untold.quiet(&[2]) && untold.quiet(&[3]));
        drop(a);
        assert!(untold.quiet(&[1, 3]) && !untold.quiet(&[2]));
        drop(b);
        assert!(untold.quiet(&[1, 2, 3]));
        // A change to one directory under two of its names (a rename within it).
        drop(untold.begin(&[4, 4]));
        assert!(untold.quiet(&[4]));
    }
}
