//! A secondary index of one collection directory on one JSON path: its records' names
//! by the value at that path, in the value order of QQL (`lang::value`). Built by a scan
//! the first time a plan uses it, then kept by every change the region is told of (a
//! commit to a name of the directory re-reads that record, a name that went leaves).
//! Records without the path are not in it (a filter on the path never matches them).
//!
//! Read a page at a time ([`PathIndex::page`]), so that a reader holds the index's lock
//! only for the names it is about to read, and stops early without copying the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// A record's file name, shared by both directions of the index.
pub type Name = Arc<[u8]>;

/// The names under one key: most keys of an index on an identifier have one, and a set
/// of one would cost a whole B-tree node.
enum Names {
    One(Name),
    Many(BTreeSet<Name>),
}

impl Names {
    fn add(&mut self, name: Name) {
        match self {
            Names::Many(set) => {
                set.insert(name);
            }
            Names::One(first) => *self = Names::Many(BTreeSet::from([first.clone(), name])),
        }
    }

    /// In byte order, or the reverse.
    fn iter(&self, descending: bool) -> Box<dyn Iterator<Item = &Name> + '_> {
        match self {
            Names::One(n) => Box::new(std::iter::once(n)),
            Names::Many(s) if descending => Box::new(s.iter().rev()),
            Names::Many(s) => Box::new(s.iter()),
        }
    }
}

pub struct PathIndex<K> {
    by_key: BTreeMap<K, Names>,
    key_of: HashMap<Name, K>,
}

impl<K> Default for PathIndex<K> {
    fn default() -> Self {
        PathIndex {
            by_key: BTreeMap::new(),
            key_of: HashMap::new(),
        }
    }
}

/// Where a page ends: the key and name of its last entry; the next page starts after it.
pub type Position<K> = (K, Name);

impl<K: Ord + Clone> PathIndex<K> {
    /// `name` now holds `key` at the path (`None`: it lacks the path, or is gone).
    pub fn set(&mut self, name: &[u8], key: Option<K>) {
        let old = self.key_of.remove_entry(name);
        let shared: Name = match &old {
            Some((n, _)) => n.clone(),
            None => Arc::from(name),
        };
        if let Some((_, old)) = old {
            self.unfile(&old, name);
        }
        let Some(k) = key else {
            return;
        };
        match self.by_key.get_mut(&k) {
            Some(names) => names.add(shared.clone()),
            None => {
                self.by_key.insert(k.clone(), Names::One(shared.clone()));
            }
        }
        self.key_of.insert(shared, k);
    }

    /// Takes `name` out from under `key`.
    fn unfile(&mut self, key: &K, name: &[u8]) {
        let empty = match self.by_key.get_mut(key) {
            Some(Names::One(n)) => **n == *name,
            Some(Names::Many(set)) => {
                set.remove(name);
                set.is_empty()
            }
            None => false,
        };
        if empty {
            self.by_key.remove(key);
        }
    }

    /// Records indexed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.key_of.len()
    }

    /// Up to `n` names whose key is within the bounds, in key order (names in byte order
    /// within a key) or the reverse, starting after `after` (a page's end), with where
    /// this page ends (`None`: nothing was left).
    pub fn page(
        &self,
        (lo, hi): (Bound<&K>, Bound<&K>),
        descending: bool,
        after: Option<&Position<K>>,
        n: usize,
    ) -> (Vec<Name>, Option<Position<K>>) {
        if matches!((lo, hi), (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) if a > b)
        {
            return (Vec::new(), None);
        }
        // Resume at the last page's key: its names past the last one come first.
        let (lo, hi) = match (after, descending) {
            (None, _) => (lo, hi),
            (Some((k, _)), false) => (Bound::Included(k), hi),
            (Some((k, _)), true) => (lo, Bound::Included(k)),
        };
        let range = self.by_key.range::<K, _>((lo, hi));
        let entries: Box<dyn Iterator<Item = (&K, &Names)>> = if descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut out = Vec::new();
        let mut last = None;
        for (k, names) in entries {
            let resumed = after.filter(|(at, _)| at == k).map(|(_, name)| name);
            for name in names.iter(descending) {
                let passed =
                    resumed.is_some_and(|r| if descending { name >= r } else { name <= r });
                if passed {
                    continue;
                }
                if out.len() == n {
                    return (out, last);
                }
                out.push(name.clone());
                last = Some((k.clone(), name.clone()));
            }
        }
        (out, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ns: &[Name]) -> Vec<String> {
        ns.iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    /// Every name of a range, read `n` at a time.
    fn all(
        ix: &PathIndex<i64>,
        lo: Bound<&i64>,
        hi: Bound<&i64>,
        desc: bool,
        n: usize,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let (page, end) = ix.page((lo, hi), desc, after.as_ref(), n);
            assert!(page.len() <= n);
            out.extend(names(&page));
            match end {
                Some(e) => after = Some(e),
                None => return out,
            }
        }
    }

    #[test]
    fn keeps_each_name_under_its_latest_key_and_answers_ranges_both_ways() {
        let mut ix: PathIndex<i64> = PathIndex::default();
        ix.set(b"a", Some(30));
        ix.set(b"b", Some(20));
        ix.set(b"c", Some(30));
        ix.set(b"d", None);
        ix.set(b"a", Some(10)); // moved
        ix.set(b"c", None); // gone
        assert_eq!(ix.len(), 2);
        for n in [1, 2, 100] {
            use Bound::{Excluded, Included, Unbounded};
            assert_eq!(all(&ix, Unbounded, Unbounded, false, n), ["a", "b"]);
            let mut ix = PathIndex::default();
            for (name, k) in [("a", 10), ("b", 20), ("e", 20), ("f", 20), ("g", 40)] {
                ix.set(name.as_bytes(), Some(k));
            }
            assert_eq!(
                all(&ix, Included(&20), Unbounded, false, n),
                ["b", "e", "f", "g"]
            );
            assert_eq!(all(&ix, Unbounded, Excluded(&20), true, n), ["a"]);
            assert_eq!(
                all(&ix, Unbounded, Included(&20), true, n),
                ["f", "e", "b", "a"]
            );
            assert_eq!(
                all(&ix, Unbounded, Unbounded, true, n),
                ["g", "f", "e", "b", "a"]
            );
            assert_eq!(
                all(&ix, Included(&25), Included(&5), false, n),
                Vec::<String>::new()
            );
            // A key's many names shrink back to one, then none.
            ix.set(b"e", None);
            ix.set(b"f", Some(10));
            assert_eq!(all(&ix, Included(&20), Included(&20), false, n), ["b"]);
            ix.set(b"b", Some(40));
            assert_eq!(
                all(&ix, Included(&20), Included(&20), false, n),
                Vec::<String>::new()
            );
            assert_eq!(
                all(&ix, Unbounded, Unbounded, false, n),
                ["a", "f", "b", "g"]
            );
        }
    }
}
