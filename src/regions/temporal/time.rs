//! Instants of the temporal region: microseconds since the Unix epoch (UTC), how they are
//! written (RFC 3339), and the calendar partitions (hours, days, months) they fall into.
//!
//! Every instant spelled here lies in the years 0000 to 9999 UTC: that is what RFC 3339's
//! four-digit years and the partition keys can write. `parse_*` never produce an instant
//! outside that span; the other functions take any `Micros` and treat one outside it as
//! the nearest end of it (so they are total and a key always has its documented shape).

// Nothing uses these building blocks until the temporal region lands; `expect` (not
// `allow`) so that this goes once everything here is used.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SecondsFormat, Timelike, Utc};

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

const SECOND: Micros = 1_000_000;
const HOUR: Micros = 3600 * SECOND;
const DAY: Micros = 24 * HOUR;

/// 0000-01-01T00:00:00Z.
const MIN: Micros = -62_167_219_200 * SECOND;
/// 9999-12-31T23:59:59.999999Z.
pub const MAX: Micros = 253_402_300_800 * SECOND - 1;

pub fn now() -> Micros {
    Utc::now().timestamp_micros()
}

/// `t`'s calendar date and time in UTC.
fn civil(t: Micros) -> NaiveDateTime {
    // Never the default: the clamp keeps `t` inside chrono's range.
    DateTime::from_timestamp_micros(t.clamp(MIN, MAX))
        .unwrap_or_default()
        .naive_utc()
}

/// RFC 3339 (`2026-11-30T19:05:01Z`, fractional seconds, `+01:00` offsets, lowercase t/z
/// accepted, and a space for the `T` as the RFC allows). Digits past the sixth of a
/// fraction are dropped. A leap second (`23:59:60`) is the instant after `23:59:59.999999`,
/// i.e. the next minute's start plus its fraction. Err: a short human reason.
pub fn parse_rfc3339(s: &str) -> std::result::Result<Micros, String> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("not an RFC 3339 time such as 2026-11-30T19:05:01Z ({e})"))?
        .timestamp_micros();
    if !(MIN..=MAX).contains(&t) {
        return Err("outside the years 0000 to 9999 UTC".to_string());
    }
    Ok(t)
}

/// `2026-11-30T19:05:01.123456Z`: always UTC (`Z`); a fraction only when nonzero, with 3
/// digits when `t` is a whole millisecond and 6 otherwise.
pub fn format_rfc3339(t: Micros) -> String {
    civil(t)
        .and_utc()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `2026-11-30-19`: the hour partition `t` falls into.
pub fn hour_key(t: Micros) -> String {
    format!("{}-{:02}", day_key(t), civil(t).hour())
}

/// `2026-11-30`.
pub fn day_key(t: Micros) -> String {
    format!("{}-{:02}", month_key(t), civil(t).day())
}

/// `2026-11`.
pub fn month_key(t: Micros) -> String {
    let c = civil(t);
    format!("{:04}-{:02}", c.year(), c.month())
}

/// The start of the hour an [`hour_key`] names; None unless `s` has exactly that shape
/// (ASCII digits, zero-padded) and names a real hour.
pub fn parse_hour_key(s: &str) -> Option<Micros> {
    at(s, "dddd-dd-dd-dd")
}

pub fn parse_day_key(s: &str) -> Option<Micros> {
    at(s, "dddd-dd-dd")
}

pub fn parse_month_key(s: &str) -> Option<Micros> {
    at(s, "dddd-dd")
}

pub fn hour_start(t: Micros) -> Micros {
    t.clamp(MIN, MAX).div_euclid(HOUR) * HOUR
}

pub fn day_start(t: Micros) -> Micros {
    t.clamp(MIN, MAX).div_euclid(DAY) * DAY
}

pub fn month_start(t: Micros) -> Micros {
    day_start(t) - i64::from(civil(t).day0()) * DAY
}

/// The start of the month after `t`'s (for December 9999: 10000-01-01, outside the span
/// the other functions spell, but still the right end of a range).
pub fn next_month_start(t: Micros) -> Micros {
    month_start(t) + i64::from(civil(t).num_days_in_month()) * DAY
}

/// A bound of a range-read file name: `2026-11-01`, `2026-11-01T00`, `2026-11-01T00:00`,
/// `2026-11-01T00:00:00` (UTC; `t` accepted for `T`), or a full RFC 3339 time.
pub fn parse_bound(s: &str) -> Option<Micros> {
    const UTC_FORMS: [&str; 4] = [
        "dddd-dd-dd",
        "dddd-dd-ddTdd",
        "dddd-dd-ddTdd:dd",
        "dddd-dd-ddTdd:dd:dd",
    ];
    parse_rfc3339(s)
        .ok()
        .or_else(|| UTC_FORMS.iter().find_map(|form| at(s, form)))
}

/// A range-read file name `<from>..<to>.jsonl` → (from, to) with from < to; None otherwise.
/// The first `..` separates the bounds (a bound holds at most single dots, before a
/// fraction).
pub fn parse_range_name(name: &str) -> Option<(Micros, Micros)> {
    let (from, to) = name.strip_suffix(".jsonl")?.split_once("..")?;
    let (from, to) = (parse_bound(from)?, parse_bound(to)?);
    (from < to).then_some((from, to))
}

/// The UTC instant `s` spells when it has exactly the shape of `pattern`, where each run of
/// `d`s is one zero-padded ASCII number (year, month, day, hour, minute, second, in that
/// order; those left out are the start of their unit) and any other character stands for
/// itself, letters in either case. None if the shape differs or the date does not exist.
fn at(s: &str, pattern: &str) -> Option<Micros> {
    if s.len() != pattern.len() {
        return None;
    }
    let mut fields = [0u32, 1, 1, 0, 0, 0];
    let mut field = 0;
    let mut in_number = false;
    for (c, p) in s.bytes().zip(pattern.bytes()) {
        if p == b'd' {
            let slot = fields.get_mut(field)?;
            if !in_number {
                *slot = 0;
                in_number = true;
            }
            if !c.is_ascii_digit() {
                return None;
            }
            *slot = *slot * 10 + u32::from(c - b'0');
        } else {
            if !c.eq_ignore_ascii_case(&p) {
                return None;
            }
            if in_number {
                field += 1;
                in_number = false;
            }
        }
    }
    let [year, month, day, hour, minute, second] = fields;
    let t = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_opt(hour, minute, second)?
        .and_utc()
        .timestamp_micros();
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> Micros {
        parse_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_span_ends_are_what_they_say() {
        assert_eq!(format_rfc3339(MIN), "0000-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(MAX), "9999-12-31T23:59:59.999999Z");
        assert_eq!(t("0000-01-01T00:00:00Z"), MIN);
        assert_eq!(t("9999-12-31T23:59:59.999999Z"), MAX);
        // Beyond the span by an offset: the RFC's syntax, but no instant we can spell.
        assert!(parse_rfc3339("0000-01-01T00:00:00+00:01").is_err());
        assert!(parse_rfc3339("9999-12-31T23:59:59-00:01").is_err());
        // Anything else is taken as the nearest end.
        assert_eq!(format_rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
        assert_eq!(hour_key(i64::MAX), "9999-12-31-23");
        assert_eq!(month_start(i64::MIN), MIN);
        assert_eq!(next_month_start(MAX), MAX + 1, "10000-01-01");
    }

    #[test]
    fn rfc3339_parsing() {
        let base = 1_796_065_501 * SECOND; // 2026-11-30T19:05:01Z
        assert_eq!(t("2026-11-30T19:05:01Z"), base);
        assert_eq!(t("2026-11-30t19:05:01z"), base, "lowercase");
        assert_eq!(t("2026-11-30 19:05:01Z"), base, "space for T");
        assert_eq!(t("2026-11-30T20:05:01+01:00"), base);
        assert_eq!(t("2026-11-30T13:35:01-05:30"), base);
        assert_eq!(t("2026-12-01T00:05:01+05:00"), base, "offset across a day");
        assert_eq!(t("2026-11-30T19:05:01-00:00"), base);
        assert_eq!(t("2026-11-30T19:05:01.5Z"), base + 500_000);
        assert_eq!(t("2026-11-30T19:05:01.000001Z"), base + 1);
        assert_eq!(
            t("2026-11-30T19:05:01.123456789Z"),
            base + 123_456,
            "truncated"
        );
        assert_eq!(t("1969-12-31T23:59:59.999999Z"), -1);
        assert_eq!(
            t("2016-12-31T23:59:60.25Z"),
            t("2017-01-01T00:00:00.25Z"),
            "leap second"
        );
        assert_eq!(t("2024-02-29T12:00:00Z") + DAY, t("2024-03-01T12:00:00Z"));
        assert!(
            parse_rfc3339("2000-02-29T00:00:00Z").is_ok(),
            "400-year leap"
        );
        for bad in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T19:60:00Z",
            "2026-11-30T19:05:01",
            "2026-11-30T19:05:01+24:00",
            "2026-11-30T19:05:01+0100",
            "2026-11-30T19:05:01.Z",
            "2026-11-30T19:05:01Z ",
            "2026-11-30",
            "26-11-30T19:05:01Z",
            "+2026-11-30T19:05:01Z",
            "2026-11-30T19:05Z",
        ] {
            let e = parse_rfc3339(bad).expect_err(bad);
            assert!(!e.is_empty());
        }
    }

    #[test]
    fn formatting_trims_the_fraction_to_millis_or_micros() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_500_000), "1970-01-01T00:00:01.500Z");
        assert_eq!(format_rfc3339(1_000_001), "1970-01-01T00:00:01.000001Z");
        assert_eq!(format_rfc3339(123_450), "1970-01-01T00:00:00.123450Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(format_rfc3339(-SECOND), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn keys_and_starts() {
        let x = t("2026-11-30T19:05:01.25Z");
        assert_eq!(hour_key(x), "2026-11-30-19");
        assert_eq!(day_key(x), "2026-11-30");
        assert_eq!(month_key(x), "2026-11");
        assert_eq!(hour_start(x), t("2026-11-30T19:00:00Z"));
        assert_eq!(day_start(x), t("2026-11-30T00:00:00Z"));
        assert_eq!(month_start(x), t("2026-11-01T00:00:00Z"));
        assert_eq!(next_month_start(x), t("2026-12-01T00:00:00Z"));
        // Keys are UTC whatever offset the event was written with.
        assert_eq!(hour_key(t("2026-12-01T00:30:00+01:00")), "2026-11-30-23");
        // Before the epoch the partition is still the one the instant falls in.
        assert_eq!(hour_key(-1), "1969-12-31-23");
        assert_eq!(hour_start(-1), -HOUR);
        assert_eq!(day_start(-1), -DAY);
        assert_eq!(month_start(-1), t("1969-12-01T00:00:00Z"));
        assert_eq!(next_month_start(-1), 0);
        // Month ends, leap years.
        let leap_end = t("2024-02-29T23:59:59.999999Z");
        assert_eq!(month_start(leap_end), t("2024-02-01T00:00:00Z"));
        assert_eq!(next_month_start(leap_end), leap_end + 1);
        assert_eq!(
            next_month_start(t("2026-02-10T00:00:00Z")),
            t("2026-03-01T00:00:00Z")
        );
        assert_eq!(
            next_month_start(t("2026-12-31T23:00:00Z")),
            t("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            next_month_start(t("2026-01-31T00:00:00Z")),
            t("2026-02-01T00:00:00Z")
        );
        assert_eq!(
            next_month_start(t("2026-04-01T00:00:00Z")),
            t("2026-05-01T00:00:00Z")
        );
        assert_eq!(
            month_start(t("2026-05-01T00:00:00Z")),
            t("2026-05-01T00:00:00Z")
        );
        assert_eq!(hour_key(0), "1970-01-01-00");
        assert_eq!(month_key(MIN), "0000-01");
    }

    #[test]
    fn keys_parse_only_in_their_exact_shape() {
        assert_eq!(
            parse_hour_key("2026-11-30-19"),
            Some(t("2026-11-30T19:00:00Z"))
        );
        assert_eq!(parse_day_key("2026-11-30"), Some(t("2026-11-30T00:00:00Z")));
        assert_eq!(parse_month_key("2026-11"), Some(t("2026-11-01T00:00:00Z")));
        assert_eq!(parse_day_key("2024-02-29"), Some(t("2024-02-29T00:00:00Z")));
        assert_eq!(parse_month_key("0000-01"), Some(MIN));
        for bad in [
            "2026-11-30-24",
            "2026-02-30-00",
            "2026-1-30-19",
            "2026-11-30-9",
            "2026-11-30-019",
            "2026-11-30-19 ",
            "2026-11-30T19",
            "2026-11-30",
            "+026-11-30-19",
            "2026-11-3a-19",
            "２０２６-11-30-19",
        ] {
            assert_eq!(parse_hour_key(bad), None, "{bad}");
        }
        for bad in [
            "2026-02-29",
            "2026-11-31",
            "2026-11-30-19",
            "2026-11",
            "2026/11/30",
        ] {
            assert_eq!(parse_day_key(bad), None, "{bad}");
        }
        for bad in ["2026-13", "2026-00", "2026-11-30", "2026-1", "20261-01"] {
            assert_eq!(parse_month_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn bounds() {
        let day = t("2026-11-01T00:00:00Z");
        assert_eq!(parse_bound("2026-11-01"), Some(day));
        assert_eq!(parse_bound("2026-11-01T00"), Some(day));
        assert_eq!(parse_bound("2026-11-01T05"), Some(day + 5 * HOUR));
        assert_eq!(
            parse_bound("2026-11-01t05:30"),
            Some(day + 5 * HOUR + 1800 * SECOND)
        );
        assert_eq!(parse_bound("2026-11-01T00:00:07"), Some(day + 7 * SECOND));
        assert_eq!(parse_bound("2026-11-01T01:00:00+01:00"), Some(day));
        assert_eq!(
            parse_bound("2026-11-01T00:00:00.5Z"),
            Some(day + SECOND / 2)
        );
        for bad in [
            "",
            "2026-11",
            "2026-11-31",
            "2026-11-01T24",
            "2026-11-01T1",
            "2026-11-01T00:60",
            "2026-11-01T00:00:00.5",
            "2026-11-01T00+01:00",
            "2026-11-01T",
            "now",
        ] {
            assert_eq!(parse_bound(bad), None, "{bad}");
        }
    }

    #[test]
    fn range_names() {
        let d1 = t("2026-11-01T00:00:00Z");
        let d2 = t("2026-11-02T00:00:00Z");
        assert_eq!(
            parse_range_name("2026-11-01..2026-11-02.jsonl"),
            Some((d1, d2))
        );
        assert_eq!(
            parse_range_name("2026-11-01T00:00:00.5Z..2026-11-01T01.jsonl"),
            Some((d1 + SECOND / 2, d1 + HOUR))
        );
        assert_eq!(
            parse_range_name("2026-11-01T23:00:00-01:00..2026-11-02T00:00:00.000001Z.jsonl"),
            Some((d2, d2 + 1))
        );
        for bad in [
            "2026-11-01..2026-11-01.jsonl",
            "2026-11-02..2026-11-01.jsonl",
            "2026-11-01..2026-11-02",
            "2026-11-01..2026-11-02.json",
            "2026-11-01.2026-11-02.jsonl",
            "2026-11-01...2026-11-02.jsonl",
            "2026-11-01..2026-11-02..2026-11-03.jsonl",
            "..2026-11-02.jsonl",
            "2026-11-01...jsonl",
            "2026-02-30..2026-03-01.jsonl",
            ".jsonl",
        ] {
            assert_eq!(parse_range_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn now_is_in_the_span() {
        let n = now();
        assert!(n > t("2025-01-01T00:00:00Z") && n < MAX, "{n}");
    }

    proptest! {
        #[test]
        fn every_instant_round_trips_and_falls_in_its_partitions(x in MIN..=MAX) {
            prop_assert_eq!(parse_rfc3339(&format_rfc3339(x)), Ok(x));
            let h = hour_start(x);
            prop_assert!(h <= x && x < h + HOUR);
            prop_assert_eq!(parse_hour_key(&hour_key(x)), Some(h));
            let d = day_start(x);
            prop_assert!(d <= x && x < d + DAY);
            prop_assert_eq!(parse_day_key(&day_key(x)), Some(d));
            let m = month_start(x);
            let next = next_month_start(x);
            prop_assert!(m <= x && x < next);
            prop_assert_eq!(parse_month_key(&month_key(x)), Some(m));
            prop_assert_eq!(month_start(next - 1), m);
            prop_assert!((28 * DAY..=31 * DAY).contains(&(next - m)));
            if next <= MAX {
                prop_assert_eq!(month_start(next), next);
            }
        }
    }
}
