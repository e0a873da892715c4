//! `_manifest.json`: every directory's generated description, whatever its region. Data
//! directories serve it by name without listing it; the seed's own directories list it.

use serde_json::json;

use crate::engine::tree::Ts;
use crate::namespace;
use crate::regions::{Cx, Dir, Region, pretty};

pub const NAME: &str = "_manifest.json";

pub fn render(cx: &Cx<'_>, dir: &Dir, region: &dyn Region) -> Vec<u8> {
    let Ok(attr) = cx.store.getattr(dir.ino) else {
        return pretty(&json!({ "error": "directory no longer exists" }));
    };
    let path = namespace::join(&cx.store.path_of(dir.ino));
    let (reads, writes) = cx.store.dir_counters(dir.ino);
    let location = if path.is_empty() {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    let purpose = match dir.seed {
        Some(seed) => seed.purpose.to_string(),
        None => region.purpose_of_user_dir(path.rsplit('/').next().unwrap_or(&path), &attr),
    };
    let mut doc = json!({
        "cosmic_location": location,
        "region": region.name(),
        "purpose": purpose,
        "data_format": region.data_format(),
        "record_count": cx.store.entry_count(dir.ino).unwrap_or(0),
        "last_observation": rfc3339(attr.mtime),
        "tier": attr.tier.dir_name(),
        "consistency_model": namespace::consistency(attr.tier),
        "fixed": dir.seed.is_some(),
        "generated_files": cx.regions.views(cx, dir),
        "generated_files_listed": region.lists_views(dir),
        "access_patterns": {
            "record_reads": reads,
            "record_commits": writes,
        }
    });
    if let Some(fields) = doc.as_object_mut() {
        for r in cx.regions.all() {
            for (k, v) in r.manifest_fields(cx, dir) {
                fields.insert(k.to_string(), v);
            }
        }
    }
    pretty(&doc)
}

/// RFC 3339 (UTC, seconds) for a timestamp.
pub fn rfc3339(t: Ts) -> String {
    let days = t.secs.div_euclid(86_400);
    let rem = t.secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(Ts { secs: 0, nanos: 0 }), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Ts {
                secs: 1_705_329_000,
                nanos: 0
            }),
            "2024-01-15T14:30:00Z"
        );
        assert_eq!(rfc3339(Ts { secs: -1, nanos: 0 }), "1969-12-31T23:59:59Z");
        assert_eq!(
            rfc3339(Ts {
                secs: 951_782_400,
                nanos: 0
            }),
            "2000-02-29T00:00:00Z"
        );
    }
}
