//! A data directory's integrity, checked whole (`islabdb verify`): opening it already
//! checks every checkpoint and log frame and that every inode hangs from the root; here
//! every file's content is read back (each piece's frame checksum, its decoded length),
//! every shard file a file or a snapshot names is found, and every snapshot's tree is
//! loaded and read the same way.

use super::tree::{Kind, ROOT};
use super::{Engine, lock};

/// What a check found.
#[derive(Default)]
pub struct Report {
    pub inodes: u64,
    pub files: u64,
    pub bytes: u64,
    pub snapshots: u64,
    pub snapshot_files: u64,
    /// Each problem, naming the file.
    pub problems: Vec<String>,
}

impl Engine {
    /// The bytes `verify` reads: the universe's files and every snapshot's.
    pub fn verify_total(&self) -> u64 {
        let live: u64 = lock(&self.tree).nodes().map(|n| n.meta.size).sum();
        let frozen = self.snapshots().into_iter().map(|s| self.frozen(s.id));
        live + frozen
            .filter_map(|f| Some(f.ok()?.contents.bytes()))
            .sum::<u64>()
    }

    /// Reads everything back; `progress` hears of the bytes read as they are.
    pub fn verify(&self, progress: &mut dyn FnMut(u64)) -> Report {
        let mut report = Report::default();
        let files: Vec<(u64, u64)> = {
            let tree = lock(&self.tree);
            report.inodes = tree.len() as u64;
            tree.nodes()
                .filter(|n| n.meta.kind == Kind::File)
                .map(|n| (n.meta.ino, n.meta.size))
                .collect()
        };
        let path = |ino| crate::namespace::join(&self.path_of(ino));
        for (ino, size) in files {
            report.files += 1;
            let mut off = 0;
            while off < size {
                match self.read(ino, off, 1 << 20, false) {
                    Ok(d) if d.is_empty() => {
                        report
                            .problems
                            .push(format!("{}: ends at {off} of {size} bytes", path(ino)));
                        break;
                    }
                    Ok(d) => {
                        off += d.len() as u64;
                        progress(d.len() as u64);
                    }
                    Err(e) => {
                        report.problems.push(format!("{}: {e}", path(ino)));
                        break;
                    }
                }
            }
            report.bytes += off;
        }
        for info in self.snapshots() {
            report.snapshots += 1;
            let f = match self.frozen(info.id) {
                Ok(f) => f,
                Err(e) => {
                    report
                        .problems
                        .push(format!("snapshot {:?}: {e}", info.name));
                    continue;
                }
            };
            let root = f.getattr(ROOT).map(|_| ());
            if let Err(e) = root {
                report
                    .problems
                    .push(format!("snapshot {:?}: no root: {e}", info.name));
            }
            for (p, attr) in f.walk() {
                if attr.kind != Kind::File {
                    continue;
                }
                report.snapshot_files += 1;
                let mut off = 0;
                while off < attr.size {
                    match self.read_frozen(&f, attr.ino, off, 1 << 20) {
                        Ok(d) if !d.is_empty() => {
                            off += d.len() as u64;
                            progress(d.len() as u64);
                        }
                        other => {
                            let why = other
                                .err()
                                .map_or("ends early".to_string(), |e| e.to_string());
                            report.problems.push(format!(
                                "snapshot {:?}: {}: {why}",
                                info.name,
                                crate::namespace::join(&p)
                            ));
                            break;
                        }
                    }
                }
            }
        }
        report
    }
}
