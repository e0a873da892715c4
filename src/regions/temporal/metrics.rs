//! An hour partition's counters (`live/<hour>/metrics.erl`): how many events, their time
//! span, and how many of each `type`, in a small binary form (FORMAT.md, "Temporal
//! streams").

// Nothing uses these building blocks until the temporal region lands; `expect` (not
// `allow`) so that this goes once everything here is used.

use std::collections::BTreeMap;

use super::time::Micros;
use crate::engine::frame;
use crate::engine::frame::{seal, unseal};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"ISLTMET1";
const VERSION: u16 = 1;
const WHAT: &str = "temporal metrics";

/// The type events without a string `type` count under.
pub const UNTYPED: &str = "";

const HAS_FIRST: u8 = 1;
const HAS_LAST: u8 = 2;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub count: u64,
    /// The earliest and latest event's timestamp.
    pub first: Option<Micros>,
    pub last: Option<Micros>,
    pub by_type: BTreeMap<String, u64>,
}

impl Counters {
    /// One event at `t`, of type `event_type` (None: it has no string `type`, and counts
    /// under [`UNTYPED`]).
    pub fn add(&mut self, t: Micros, event_type: Option<&str>) {
        self.add_events(1, Some(t), Some(t));
        self.add_typed(event_type.unwrap_or(UNTYPED), 1);
    }

    /// Adds `other`'s events (the tests check it against adding each event).
    #[cfg(test)]
    pub fn merge(&mut self, other: &Counters) {
        self.add_events(other.count, other.first, other.last);
        for (ty, n) in &other.by_type {
            self.add_typed(ty, *n);
        }
    }

    // Counts saturate: decoded counters may hold any value.

    fn add_events(&mut self, n: u64, first: Option<Micros>, last: Option<Micros>) {
        self.count = self.count.saturating_add(n);
        self.first = self.first.into_iter().chain(first).min();
        self.last = self.last.into_iter().chain(last).max();
    }

    fn add_typed(&mut self, ty: &str, n: u64) {
        match self.by_type.get_mut(ty) {
            Some(have) => *have = have.saturating_add(n),
            None => {
                self.by_type.insert(ty.to_string(), n);
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = frame::file_header(MAGIC, VERSION).to_vec();
        put_varint(&mut out, self.count);
        let present = if self.first.is_some() { HAS_FIRST } else { 0 }
            | if self.last.is_some() { HAS_LAST } else { 0 };
        out.push(present);
        for t in self.first.into_iter().chain(self.last) {
            put_varint(&mut out, zigzag(t));
        }
        put_varint(&mut out, self.by_type.len() as u64);
        for (ty, n) in &self.by_type {
            put_varint(&mut out, ty.len() as u64);
            out.extend_from_slice(ty.as_bytes());
            put_varint(&mut out, *n);
        }
        seal(&mut out);
        out
    }

    /// Err(Corrupt) on a bad magic, version or CRC, or fields that do not parse: a varint
    /// past 64 bits, unknown flags, a name that is not UTF-8, names out of order or
    /// repeated, bytes missing or left over.
    pub fn decode(b: &[u8]) -> Result<Counters> {
        let mut r = Reader(unseal(b, MAGIC, VERSION, WHAT)?);
        let count = r.varint()?;
        let present = r.byte()?;
        if present & !(HAS_FIRST | HAS_LAST) != 0 {
            return Err(corrupt(format!("unknown flags {present:#04x}")));
        }
        let mut time = |flag: u8| -> Result<Option<Micros>> {
            (present & flag != 0)
                .then(|| r.varint().map(unzigzag))
                .transpose()
        };
        let (first, last) = (time(HAS_FIRST)?, time(HAS_LAST)?);
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        for _ in 0..r.varint()? {
            let len = r.varint()?;
            let name = std::str::from_utf8(r.bytes(len)?)
                .map_err(|_| corrupt("a type name is not UTF-8".into()))?;
            if by_type
                .last_key_value()
                .is_some_and(|(prev, _)| prev.as_str() >= name)
            {
                return Err(corrupt(format!("type {name:?} out of order")));
            }
            by_type.insert(name.to_string(), r.varint()?);
        }
        if !r.0.is_empty() {
            return Err(corrupt(format!("{} bytes left over", r.0.len())));
        }
        Ok(Counters {
            count,
            first,
            last,
            by_type,
        })
    }
}

fn corrupt(why: String) -> Error {
    Error::Corrupt(format!("{WHAT}: {why}"))
}

/// LEB128: 7 bits a byte, least significant first, the high bit set on all but the last.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Signed to unsigned so that instants near the epoch, either side, stay short.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// The fields not yet read.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self
            .0
            .split_first()
            .ok_or_else(|| corrupt("ends early".into()))?;
        self.0 = rest;
        Ok(b)
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.0.len())
            .ok_or_else(|| corrupt("ends early".into()))?;
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if (bits << shift) >> shift != bits {
                return Err(corrupt("a number past 64 bits".into()));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("a number past 64 bits".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Counters {
        let mut c = Counters::default();
        c.add(1_796_065_501_000_000, Some("click"));
        c.add(1_796_065_400_000_000, None);
        c.add(1_796_065_600_000_000, Some("click"));
        c.add(-3, Some("héllo"));
        c
    }

    #[test]
    fn add_counts_by_type_and_spans_time() {
        let c = sample();
        assert_eq!(c.count, 4);
        assert_eq!(c.first, Some(-3));
        assert_eq!(c.last, Some(1_796_065_600_000_000));
        let types: Vec<(&str, u64)> = c.by_type.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(types, [(UNTYPED, 1), ("click", 2), ("héllo", 1)]);
        assert_eq!(
            Counters::decode(&Counters::default().encode()).ok(),
            Some(Counters::default())
        );
    }

    #[test]
    fn merge_is_adding_each_event() {
        let events = [
            (5, Some("a")),
            (-7, None),
            (9, Some("b")),
            (5, Some("a")),
            (0, Some("")),
        ];
        for split in 0..=events.len() {
            let (mut left, mut right, mut all) = (
                Counters::default(),
                Counters::default(),
                Counters::default(),
            );
            for (i, &(t, ty)) in events.iter().enumerate() {
                let side: &mut Counters = if i < split { &mut left } else { &mut right };
                side.add(t, ty);
                all.add(t, ty);
            }
            left.merge(&right);
            assert_eq!(left, all, "split at {split}");
        }
        let mut full = Counters {
            count: u64::MAX,
            by_type: BTreeMap::from([("x".into(), u64::MAX)]),
            ..Default::default()
        };
        full.add(0, Some("x"));
        assert_eq!(
            (full.count, full.by_type["x"]),
            (u64::MAX, u64::MAX),
            "saturates"
        );
    }

    #[test]
    fn varints_at_the_edges() {
        for v in [0, 1, 0x7f, 0x80, 0x3fff, 0x4000, u64::MAX - 1, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut r = Reader(&b);
            assert_eq!(r.varint().ok(), Some(v));
            assert!(r.0.is_empty());
        }
        for t in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(t)), t);
        }
        assert_eq!(zigzag(-1), 1);
        // 10 bytes whose last carries bits past the 64th; 11 bytes.
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader(&over).varint().is_err());
        let long = [
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ];
        assert!(Reader(&long).varint().is_err());
        assert!(Reader(&[0x80]).varint().is_err(), "ends inside");
    }

    fn refused(bytes: &[u8], case: &str) {
        match Counters::decode(bytes) {
            Err(Error::Corrupt(why)) => assert!(why.contains(WHAT), "{case}: {why}"),
            other => panic!("{case}: {other:?}"),
        }
    }

    /// A file with `body` between a valid header and a matching CRC.
    fn forged(body: &[u8]) -> Vec<u8> {
        let mut out = frame::file_header(MAGIC, VERSION).to_vec();
        out.extend_from_slice(body);
        seal(&mut out);
        out
    }

    #[test]
    fn every_kind_of_damage_is_refused() {
        let good = sample().encode();
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            refused(&bad, &format!("bit {bit}"));
        }
        for cut in 0..good.len() {
            refused(&good[..cut], &format!("cut at {cut}"));
        }
        let mut longer = good.clone();
        longer.push(0);
        refused(&longer, "a byte more");
        let mut other_magic = good[..good.len() - 4].to_vec();
        other_magic[..8].copy_from_slice(b"ISLTIDX1");
        seal(&mut other_magic);
        refused(&other_magic, "the index's magic");
        let mut version = good[..good.len() - 4].to_vec();
        version[8] = 2;
        seal(&mut version);
        refused(&version, "version 2");

        assert_eq!(forged(&[0, 0, 0]), Counters::default().encode());
        assert!(Counters::decode(&forged(&[3, 3, 1, 2, 0])).is_ok());
        for (case, body) in [
            ("empty", &[][..]),
            ("no flags", &[0]),
            ("no type count", &[0, 0]),
            ("unknown flag", &[0, 4, 0]),
            ("first missing", &[0, 1, 0x80]),
            (
                "count past 64 bits",
                &[
                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0,
                ],
            ),
            ("type missing", &[1, 0, 1]),
            ("name cut", &[1, 0, 1, 5, b'a']),
            (
                "name length past the file",
                &[1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, b'a', 1],
            ),
            ("type count missing", &[1, 0, 1, 1, b'a']),
            ("not UTF-8", &[1, 0, 1, 1, 0xff, 1]),
            ("out of order", &[2, 0, 2, 1, b'b', 1, 1, b'a', 1]),
            ("repeated", &[2, 0, 2, 1, b'a', 1, 1, b'a', 1]),
            ("left over", &[0, 0, 0, 0]),
        ] {
            refused(&forged(body), case);
        }
    }

    fn counters() -> impl Strategy<Value = Counters> {
        (
            any::<u64>(),
            proptest::option::of(any::<i64>()),
            proptest::option::of(any::<i64>()),
            proptest::collection::btree_map(".{0,12}", any::<u64>(), 0..8),
        )
            .prop_map(|(count, first, last, by_type)| Counters {
                count,
                first,
                last,
                by_type,
            })
    }

    proptest! {
        #[test]
        fn counters_round_trip(c in counters()) {
            prop_assert_eq!(Counters::decode(&c.encode()).ok(), Some(c));
        }

        #[test]
        fn added_events_round_trip(events in proptest::collection::vec(
            (any::<i64>(), proptest::option::of("[a-z]{0,3}")), 0..40)
        ) {
            let mut c = Counters::default();
            for (t, ty) in &events {
                c.add(*t, ty.as_deref());
            }
            prop_assert_eq!(c.count, events.len() as u64);
            prop_assert_eq!(c.by_type.values().sum::<u64>(), c.count);
            prop_assert_eq!(c.first, events.iter().map(|e| e.0).min());
            prop_assert_eq!(c.last, events.iter().map(|e| e.0).max());
            prop_assert_eq!(Counters::decode(&c.encode()).ok(), Some(c));
        }
    }
}
