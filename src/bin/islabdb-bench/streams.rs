//! Stream workloads (the temporal region): events appended with `>>` by one and by four
//! writers at once, and a range read of one hour out of a month of rolled-up events. The
//! native side does the same work the way a user would without the region: appends to a
//! file, and `zcat | awk` over a gzip'd month.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration as Span, TimeZone, Utc};

use crate::error::{Context, Error, Result};
use crate::sys::check_interrupt;
use crate::workloads::{Sample, close};

/// Where one side's stream workloads run.
pub enum Place {
    /// A native directory: the appended file and the gzip'd month live there.
    Native(PathBuf),
    /// The mount's `temporal/` directory.
    Mount(PathBuf),
}

/// One event line of about 150 B; `ts` makes it a backfilled event of that time.
fn event(i: usize, ts: Option<&str>) -> String {
    let pad = "x".repeat(80);
    match ts {
        Some(t) => format!(
            "{{\"timestamp\":\"{t}\",\"type\":\"t{}\",\"i\":{i},\"pad\":\"{pad}\"}}\n",
            i % 5
        ),
        None => format!("{{\"type\":\"t{}\",\"i\":{i},\"pad\":\"{pad}\"}}\n", i % 5),
    }
}

impl Place {
    fn stream(&self) -> PathBuf {
        match self {
            Place::Native(d) => d.join("events.jsonl"),
            Place::Mount(t) => t.join("live/events.jsonl"),
        }
    }
}

/// `writers` threads at once, each appending `lines` events with one
/// open(O_APPEND)/write/close per line (`echo event >> events.jsonl`).
pub fn appends(place: &Place, writers: usize, lines: usize) -> Result<Sample> {
    let path = place.stream();
    if let Place::Native(_) = place {
        fs::File::create(&path).ctx(|| format!("create {}", path.display()))?;
    }
    let data: Vec<Vec<String>> = (0..writers)
        .map(|w| (0..lines).map(|i| event(w * lines + i, None)).collect())
        .collect();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = data
            .iter()
            .map(|lines| {
                let path = &path;
                s.spawn(move || -> Result<()> {
                    for (i, l) in lines.iter().enumerate() {
                        if i % 64 == 0 {
                            check_interrupt()?;
                        }
                        let mut f = OpenOptions::new()
                            .append(true)
                            .open(path)
                            .ctx(|| format!("open O_APPEND {}", path.display()))?;
                        f.write_all(l.as_bytes())
                            .ctx(|| format!("append to {}", path.display()))?;
                        close(f, path)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| Error::msg("an appending thread panicked"))?
            })
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(Sample {
        units: (writers * lines) as f64,
        secs: t0.elapsed().as_secs_f64(),
    })
}

/// The month the range read reads: three months back, so that it is historical.
fn month() -> DateTime<Utc> {
    let back = Utc::now() - Span::days(92);
    Utc.with_ymd_and_hms(back.year(), back.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(back)
}

/// The month's events, evenly spread over it, in time order.
fn month_events(n: usize) -> Vec<String> {
    let start = month();
    let secs = 28 * 86_400 / n.max(1) as i64;
    (0..n)
        .map(|i| {
            let t = start + Span::seconds(i as i64 * secs.max(1));
            event(i, Some(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
        })
        .collect()
}

/// The hour read: the 15th at 10:00.
fn hour() -> DateTime<Utc> {
    month() + Span::days(14) + Span::hours(10)
}

/// Puts a month of `n` events in place (untimed): on the mount, appended through the
/// stream and rolled into `historical/<month>/` by maintenance (once: a later round finds
/// it there); natively, one gzip file.
pub fn prepare_month(place: &Place, n: usize) -> Result<()> {
    let events = month_events(n);
    match place {
        Place::Native(dir) => {
            let path = dir.join("month.jsonl.gz");
            let f = fs::File::create(&path).ctx(|| format!("create {}", path.display()))?;
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
            for e in &events {
                gz.write_all(e.as_bytes())
                    .ctx(|| format!("write {}", path.display()))?;
            }
            gz.finish().ctx(|| format!("finish {}", path.display()))?;
        }
        Place::Mount(t) => {
            let lz4 = t.join(format!(
                "historical/{}/compressed.lz4",
                month().format("%Y-%m")
            ));
            if lz4.exists() {
                return Ok(());
            }
            let path = t.join("live/events.jsonl");
            let mut f = OpenOptions::new()
                .append(true)
                .open(&path)
                .ctx(|| format!("open O_APPEND {}", path.display()))?;
            for chunk in events.chunks(4096) {
                f.write_all(chunk.concat().as_bytes())
                    .ctx(|| format!("append to {}", path.display()))?;
            }
            close(f, &path)?;
            fs::write(t.join("maintain"), b"run\n").ctx(|| "run maintenance".to_string())?;
        }
    }
    Ok(())
}

fn blocks_decompressed(t: &Path) -> Result<u64> {
    let path = t.join("live/current_streams.state");
    let text = fs::read(&path).ctx(|| format!("read {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    Ok(v["blocks_decompressed"].as_u64().unwrap_or(0))
}

/// One hour of the month read: on the mount as a range file, natively with
/// `zcat | awk`. Both must give exactly the hour's events; MiB/s of them. Returns the
/// sample and, on the mount, how many blocks were decompressed.
pub fn range_read(place: &Place, n: usize) -> Result<(Sample, Option<u64>)> {
    let h = hour();
    let prefix = h.format("{\"timestamp\":\"%Y-%m-%dT%H:").to_string();
    let want: String = month_events(n)
        .into_iter()
        .filter(|e| e.starts_with(&prefix))
        .collect();
    let (sample, blocks, got) = read_hour(place, h)?;
    if got != want.as_bytes() {
        return Err(Error::msg(format!(
            "range read of {h}: {} bytes, expected the hour's {} bytes",
            got.len(),
            want.len()
        )));
    }
    Ok((sample, blocks))
}

fn read_hour(place: &Place, h: DateTime<Utc>) -> Result<(Sample, Option<u64>, Vec<u8>)> {
    let t0;
    let (out, blocks) = match place {
        Place::Native(dir) => {
            let gz = dir.join("month.jsonl.gz");
            let prefix = h.format("\\\"timestamp\\\":\\\"%Y-%m-%dT%H:").to_string();
            let script = format!("zcat '{}' | awk 'index($0, \"{prefix}\")'", gz.display());
            t0 = Instant::now();
            let o = Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .ctx(|| format!("run {script}"))?;
            if !o.status.success() {
                return Err(Error::msg(format!(
                    "{script}: {}",
                    String::from_utf8_lossy(&o.stderr)
                )));
            }
            (o.stdout, None)
        }
        Place::Mount(t) => {
            let before = blocks_decompressed(t)?;
            let name = format!(
                "range/{}..{}.jsonl",
                h.format("%Y-%m-%dT%H:%M"),
                (h + Span::hours(1)).format("%Y-%m-%dT%H:%M")
            );
            let path = t.join(name);
            t0 = Instant::now();
            let out = fs::read(&path).ctx(|| format!("read {}", path.display()))?;
            let secs = t0.elapsed();
            let blocks = blocks_decompressed(t)? - before;
            return Ok((
                Sample {
                    units: out.len() as f64 / (1 << 20) as f64,
                    secs: secs.as_secs_f64(),
                },
                Some(blocks),
                out,
            ));
        }
    };
    Ok((
        Sample {
            units: out.len() as f64 / (1 << 20) as f64,
            secs: t0.elapsed().as_secs_f64(),
        },
        blocks,
        out,
    ))
}
