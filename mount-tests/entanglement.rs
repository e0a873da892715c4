//! `spacetime/<tier>/quantum_indices/`: records read together become partners, reading
//! one brings its partners into the cache, and the pairs survive a restart.

use crate::common::*;
use serde_json::{Value, json};
use std::fs;
use std::time::Duration;

const RELATIONSHIPS: &str = "spacetime/hot_data/quantum_indices/relationships.json";
const ANALYTICS: &str = "spacetime/hot_data/event_horizon/cache_analytics.json";

/// The hot tier's reads: (hits, misses) of the cache now (the file is rendered at most once a second).
fn cache(m: &Mount) -> (u64, u64) {
    std::thread::sleep(Duration::from_millis(1100));
    let v = read_json(&m.path(ANALYTICS));
    let n = |k: &str| v["reads_of_this_tier"][k].as_u64().unwrap();
    (n("hits"), n("misses"))
}

/// Evicts every small record from the cache: a 1 MiB budget filled with larger records,
/// then the budget back. The daemon fits the cache's limit to its memory ten times a
/// second, down to an eighth of the budget, and an entry over a quarter of the limit is
/// not cached: each record is kept under a quarter of that eighth (32 KiB), so that they
/// push everything older out whichever limit holds while they are read.
pub fn flush_cache(m: &Mount) {
    let params = m.path("configuration/universe_parameters.json");
    let was = read_json(&params)["cache_budget_mb"].clone();
    edit_json(&params, json!({ "cache_budget_mb": 1 }));
    let big = m.path("spacetime/hot_data/particles/orders");
    let body = format!("{{\"pad\":\"{}\"}}", "b".repeat(24 << 10));
    for i in 0..64 {
        put(&big.join(format!("big{i}.json")), body.as_bytes());
        get(&big.join(format!("big{i}.json")));
    }
    edit_json(&params, json!({ "cache_budget_mb": was }));
}

fn prefetched(v: &Value) -> u64 {
    v["since_mount"]["prefetched_into_cache"].as_u64().unwrap()
}

/// After a training pass (the group read together twice), reading `a0` brings its
/// partners into the cache: reading them then hits it, while the reads of an untrained
/// group after its first record all miss. The pairs are listed with their strength, and
/// kept in `entangled_keys.erl` across a restart.
#[test]
fn records_read_together_are_prefetched_together() {
    let mut m = Mount::new();
    let users = m.path("spacetime/hot_data/particles/users");
    edit_json(
        &m.path("configuration/entanglement_rules.json"),
        json!({ "prefetch_partners": 8 }),
    );
    let group = |g: &str| -> Vec<String> {
        (0..9)
            .map(|i| users.join(format!("{g}{i}.json")).display().to_string())
            .collect()
    };
    for p in group("a").iter().chain(&group("d")) {
        put(p.as_ref(), format!("{{\"name\":\"{p}\"}}").as_bytes());
    }
    for _ in 0..2 {
        // One `cat` of the group: opened within milliseconds of each other.
        let out = run("cat", &group("a"));
        assert!(out.status.success(), "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(1200));
    }
    let v = read_json(&m.path(RELATIONSHIPS));
    let a0 = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "spacetime/hot_data/particles/users/a0.json")
        .unwrap_or_else(|| panic!("a0 listed: {v}"));
    let partners = a0["partners"].as_array().unwrap();
    assert_eq!(partners.len(), 8, "{a0}");
    for p in partners {
        assert!(p["key"].as_str().unwrap().contains("/users/a"), "{p}");
        let s = p["strength"].as_f64().unwrap();
        assert!((1.99..=2.0).contains(&s) && p["entangled"] == true, "{p}");
    }
    assert_eq!(v["universe"]["pairs"], 36, "9 records, each pair once: {v}");

    flush_cache(&m);
    let before = prefetched(&read_json(&m.path(RELATIONSHIPS)));
    get(&users.join("a0.json"));
    wait_json(&m.path(RELATIONSHIPS), 10, "partners prefetched", |v| {
        prefetched(v) >= before + 8
    });
    let (h0, m0) = cache(&m);
    let out = run("cat", &group("a")[1..]);
    assert!(out.status.success());
    let (h1, m1) = cache(&m);
    assert_eq!(
        (h1 - h0, m1 - m0),
        (8, 0),
        "reads of a0's partners after a0: (hits, misses)"
    );
    // Never read together: nothing is prefetched, and the same reads miss.
    get(&users.join("d0.json"));
    std::thread::sleep(Duration::from_millis(300));
    let (h0, m0) = cache(&m);
    let out = run("cat", &group("d")[1..]);
    assert!(out.status.success());
    let (h1, m1) = cache(&m);
    assert_eq!(
        (h1 - h0, m1 - m0),
        (0, 8),
        "an untrained group: (hits, misses)"
    );

    // Kept across a restart: the file holds every pair (header, count, 28 B each, CRC).
    m.remount();
    let kept = fs::read(m.path("spacetime/hot_data/quantum_indices/entangled_keys.erl"))
        .expect("entangled_keys.erl");
    assert_eq!(&kept[..8], b"ISLENTK1");
    let v = read_json(&m.path(RELATIONSHIPS));
    let pairs = v["universe"]["pairs"].as_u64().unwrap();
    assert!(pairs >= 36, "{v}");
    assert_eq!(kept.len() as u64, 12 + 4 + 28 * pairs + 4);
    let ls = fs::metadata(m.path(RELATIONSHIPS)).unwrap().len();
    assert_eq!(
        ls,
        get(&m.path(RELATIONSHIPS)).len() as u64,
        "stat agrees with cat"
    );
}
