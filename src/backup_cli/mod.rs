//! The backup commands: snapshots taken and removed through a mount (`mkdir`/`rmdir` in
//! `backups/snapshots/`, what a user would type), a universe restored from a backup
//! (`restore`), and a data directory's integrity checked (`verify`).

mod progress;
pub mod restore;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::engine::{Engine, Settings};

const SNAPSHOTS: &str = "backups/snapshots";

#[derive(clap::Subcommand)]
pub enum Snapshot {
    /// Take a snapshot of the universe mounted at MOUNTPOINT now (the same as `mkdir
    /// MOUNTPOINT/backups/snapshots/NAME`).
    Create { mountpoint: PathBuf, name: String },
    /// List the snapshots of the universe mounted at MOUNTPOINT, oldest first: name,
    /// time taken, files, bytes.
    List { mountpoint: PathBuf },
    /// Remove a snapshot (the same as `rmdir MOUNTPOINT/backups/snapshots/NAME`).
    Remove { mountpoint: PathBuf, name: String },
}

fn snapshots_dir(mountpoint: &Path) -> Result<PathBuf, String> {
    let dir = mountpoint.join(SNAPSHOTS);
    if !dir.is_dir() {
        return Err(format!("{}: is a universe mounted there?", dir.display()));
    }
    Ok(dir)
}

pub fn snapshot(cmd: Snapshot) -> Result<String, String> {
    match cmd {
        Snapshot::Create { mountpoint, name } => {
            let path = snapshots_dir(&mountpoint)?.join(&name);
            let started = Instant::now();
            std::fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(format!("snapshot {name} taken in {:?}", started.elapsed()))
        }
        Snapshot::List { mountpoint } => {
            let dir = snapshots_dir(&mountpoint)?;
            let mut rows = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
                let path = entry.map_err(|e| e.to_string())?.path();
                let Ok(bytes) = std::fs::read(path.join("manifest.json")) else {
                    continue;
                };
                let m: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                rows.push((
                    m["id"].as_u64().unwrap_or(0),
                    format!(
                        "{}\t{}\t{} files\t{} bytes",
                        m["name"].as_str().unwrap_or_default(),
                        m["taken"].as_str().unwrap_or_default(),
                        m["files"],
                        m["bytes"]
                    ),
                ));
            }
            rows.sort();
            Ok(rows
                .into_iter()
                .map(|(_, r)| r)
                .collect::<Vec<_>>()
                .join("\n"))
        }
        Snapshot::Remove { mountpoint, name } => {
            let path = snapshots_dir(&mountpoint)?.join(&name);
            std::fs::remove_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(format!("snapshot {name} removed"))
        }
    }
}

/// `paths`: the full backup, its incrementals in order, then the new data directory.
pub fn restore(paths: &[PathBuf]) -> Result<String, String> {
    let [backup, incrementals @ .., target] = paths else {
        return Err("restore needs a backup and a new data directory".into());
    };
    let r = restore::restore(backup, incrementals, target)?;
    Ok(format!(
        "restored {} entries ({} files, {} bytes; {} checked against their checksums) into {}",
        r.entries,
        r.files,
        r.bytes,
        r.checked,
        target.display()
    ))
}

/// Checks `data_dir` whole; `Err` lists the problems found.
pub fn verify(data_dir: &Path) -> Result<String, String> {
    let engine = Engine::open(data_dir, Settings::default())
        .map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let mut progress = progress::Progress::new("verifying", engine.verify_total());
    let report = engine.verify(&mut |n| progress.advance(n));
    progress.finish();
    let summary = format!(
        "{} inodes; {} files, {} bytes read back; {} snapshots, {} of their files read back",
        report.inodes, report.files, report.bytes, report.snapshots, report.snapshot_files
    );
    if report.problems.is_empty() {
        return Ok(format!("{summary}; no problem found"));
    }
    Err(format!(
        "{summary}; {} problems:\n{}",
        report.problems.len(),
        report.problems.join("\n")
    ))
}
