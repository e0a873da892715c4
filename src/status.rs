//! `islabdb status MOUNTPOINT`: the observatory's, entropy's and entanglement's files,
//! summed up for a person.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

fn read(mnt: &Path, rel: &str) -> Result<Value, String> {
    let path = mnt.join(rel);
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("{}: {e} (is a universe mounted there?)", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Bytes for people: 1.5 GiB, 320 KiB.
fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

pub fn summary(mnt: &Path) -> Result<String, String> {
    let rt = read(mnt, "observatory/metrics/real_time.json")?;
    let health = read(mnt, "observatory/diagnostics/health_check.json")?;
    let alerts = read(mnt, "observatory/metrics/alerts.json")?;
    let mut out = String::new();
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let _ = writeln!(
        out,
        "universe at {}: {} (up {} s)",
        mnt.display(),
        health["status"].as_str().unwrap_or("?"),
        u(&rt["uptime_secs"])
    );
    if let Some(parts) = health["components"].as_object() {
        for (name, p) in parts {
            if p["status"] != "ok" {
                let _ = writeln!(
                    out,
                    "  {name}: {} — {}",
                    p["status"].as_str().unwrap_or("?"),
                    p["why"].as_str().unwrap_or("")
                );
            }
        }
    }
    for a in alerts["active"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  ALERT {} since {}: {} (threshold {})",
            a["alert"].as_str().unwrap_or("?"),
            a["since"].as_str().unwrap_or("?"),
            a["value"],
            a["threshold"]
        );
    }
    let _ = writeln!(
        out,
        "requests (per second over {} s, p50 / p99):",
        u(&rt["rates_over_secs"])
    );
    if let Some(ops) = rt["operations"].as_object() {
        for (name, o) in ops {
            if u(&o["count"]) == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "  {name:<8} {:>10.1}/s  {:>9.1} µs / {:>9.1} µs  ({} in all)",
                f(&o["per_sec"]),
                f(&o["p50_us"]),
                f(&o["p99_us"]),
                u(&o["count"])
            );
        }
    }
    let c = &rt["cache"];
    let _ = writeln!(
        out,
        "cache: {} of {} used, hit ratio {}",
        bytes(u(&c["bytes"])),
        bytes(u(&c["budget"])),
        c["hit_ratio"]
            .as_f64()
            .map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0))
    );
    let l = &rt["log"];
    let _ = writeln!(
        out,
        "log: {} written, {} fsyncs ({} records each), {} awaiting a checkpoint",
        bytes(u(&l["bytes"])),
        u(&l["fsyncs"]),
        f(&l["group_commit_batch"]),
        bytes(u(&l["bytes_awaiting_checkpoint"]))
    );
    if let Some(tiers) = rt["tiers"].as_object() {
        for (name, t) in tiers {
            let _ = writeln!(
                out,
                "{name}: {} records, {} stored, {} on disk",
                u(&t["records"]),
                bytes(u(&t["bytes_stored"])),
                bytes(u(&t["bytes_on_disk"]))
            );
        }
    }
    let e = read(mnt, "entropy/current_state.json")?;
    let _ = writeln!(
        out,
        "balance: entropy {:.2} of {:.2} bits over the tiers; {} moves by users, {} by the \
         policy ({})",
        f(&e["entropy_bits"]["records"]),
        f(&e["entropy_bits"]["max"]),
        u(&e["moves"]["by_user"]),
        u(&e["moves"]["by_policy"]),
        if e["policy"]["enabled"] == true {
            "on"
        } else {
            "off"
        }
    );
    let k = read(mnt, "spacetime/hot_data/quantum_indices/relationships.json")?;
    let g = read(mnt, "quantum_graph/entanglements/entanglement_map.json")?;
    let _ = writeln!(
        out,
        "entanglement: {} pairs of records read together, {} files prefetched; {} pairs of \
         graph nodes",
        u(&k["universe"]["pairs"]),
        u(&k["since_mount"]["prefetched_into_cache"]),
        u(&g["pairs"])
    );
    let p = &rt["process"];
    let _ = writeln!(
        out,
        "daemon: {} resident (peak {}), {:.1}% CPU, {} threads",
        bytes(u(&p["rss_bytes"])),
        bytes(u(&p["peak_rss_bytes"])),
        f(&p["cpu_percent"]),
        u(&p["threads"])
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(3 << 30), "3.0 GiB");
    }
}
