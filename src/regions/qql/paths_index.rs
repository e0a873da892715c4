//! A secondary index of one collection directory on one JSON path: its records' names
//! by the value at that path, in the value order of QQL (`lang::value`). Built by a scan
//! the first time a plan uses it, then kept by every change the region is told of (a
//! commit to a name of the directory re-reads that record, a name that went leaves).
//! Records without the path are not in it (a filter on the path never matches them).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

pub struct PathIndex<K> {
    by_key: BTreeMap<K, BTreeSet<Vec<u8>>>,
    key_of: HashMap<Vec<u8>, K>,
}

impl<K> Default for PathIndex<K> {
    fn default() -> Self {
        PathIndex {
            by_key: BTreeMap::new(),
            key_of: HashMap::new(),
        }
    }
}

impl<K: Ord + Clone> PathIndex<K> {
    /// `name` now holds `key` at the path (`None`: it lacks the path, or is gone).
    pub fn set(&mut self, name: &[u8], key: Option<K>) {
        if let Some(old) = self.key_of.remove(name)
            && let Some(names) = self.by_key.get_mut(&old)
        {
            names.remove(name);
            if names.is_empty() {
                self.by_key.remove(&old);
            }
        }
        if let Some(k) = key {
            self.by_key
                .entry(k.clone())
                .or_default()
                .insert(name.to_vec());
            self.key_of.insert(name.to_vec(), k);
        }
    }

    /// Records indexed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.key_of.len()
    }

    /// The names whose key is within the bounds, in key order (names in byte order
    /// within a key), or the reverse.
    pub fn range<'a>(
        &'a self,
        lo: Bound<&'a K>,
        hi: Bound<&'a K>,
        descending: bool,
    ) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        if matches!((lo, hi), (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) if a > b)
        {
            return Box::new(std::iter::empty());
        }
        let r = self.by_key.range::<K, _>((lo, hi));
        let names = |(_, n): (&'a K, &'a BTreeSet<Vec<u8>>)| n.iter().map(Vec::as_slice);
        if descending {
            Box::new(r.rev().flat_map(move |e| names(e).rev()))
        } else {
            Box::new(r.flat_map(names))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(it: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
        it.map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
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
        let all = ix.range(Bound::Unbounded, Bound::Unbounded, false);
        assert_eq!(names(all), ["a", "b"]);
        ix.set(b"e", Some(20));
        let ge20 = ix.range(Bound::Included(&20), Bound::Unbounded, false);
        assert_eq!(names(ge20), ["b", "e"]);
        let desc = ix.range(Bound::Unbounded, Bound::Excluded(&20), true);
        assert_eq!(names(desc), ["a"]);
        let rev = ix.range(Bound::Unbounded, Bound::Unbounded, true);
        assert_eq!(names(rev), ["e", "b", "a"]);
        let empty = ix.range(Bound::Included(&25), Bound::Included(&5), false);
        assert_eq!(names(empty), Vec::<String>::new());
    }
}
