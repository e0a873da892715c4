//! Helpers the engine's unit tests share: a small universe, whole-file puts and gets.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::codec::Tier;
use super::tree::ROOT;
use super::{CommitAt, Engine, NewNode, Settings};

pub fn settings() -> Settings {
    Settings {
        inline_max: 1024,
        spill_at: 4096,
        ..Settings::default()
    }
}

pub fn file(e: &Engine, name: &str) -> u64 {
    e.create(ROOT, name.as_bytes(), NewNode::root_file())
        .expect("create")
        .ino
}

pub fn put(e: &Engine, ino: u64, data: &[u8]) {
    e.open_handle(ino, true).expect("open");
    e.truncate(ino, 0).expect("truncate");
    e.write(ino, 0, data).expect("write");
    e.commit(ino, CommitAt::Close, &|_, _| Ok(()))
        .expect("commit");
    e.close_handle(ino, true);
}

pub fn get(e: &Engine, ino: u64) -> Vec<u8> {
    e.read(ino, 0, 1 << 30, false).expect("read").to_vec()
}

pub fn new_universe(dir: &Path, tier: Tier) -> Engine {
    let e = Engine::open(dir, settings()).expect("open");
    e.create_root(0o755, tier, 0).expect("root");
    e
}

/// Checkpoints taken back to back on another thread, until `stop`.
pub struct Checkpointing {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointing {
    pub fn start(e: &Arc<Engine>) -> Checkpointing {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    e.checkpoint().expect("checkpoint");
                }
            })
        };
        Checkpointing { stop, thread }
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("checkpointer");
    }
}

/// Damage to a file's bytes, as a failing disk or a careless copy leaves it: ranges
/// overwritten anywhere, the file cut, bytes after its end.
#[derive(Clone, Debug)]
pub struct Damage {
    writes: Vec<(usize, Vec<u8>)>,
    cut: Option<usize>,
    tail: Vec<u8>,
}

impl Damage {
    pub fn apply(&self, f: &mut Vec<u8>) {
        for (at, bytes) in &self.writes {
            if f.is_empty() {
                break;
            }
            let at = at % f.len();
            let end = (at + bytes.len()).min(f.len());
            f[at..end].copy_from_slice(&bytes[..end - at]);
        }
        if let Some(cut) = self.cut {
            f.truncate(cut.min(f.len()));
        }
        f.extend_from_slice(&self.tail);
    }
}

/// Any `Damage` to a file of about `len` bytes.
pub fn damage(len: usize) -> impl proptest::strategy::Strategy<Value = Damage> {
    use proptest::prelude::*;
    (
        proptest::collection::vec(
            (0..len, proptest::collection::vec(any::<u8>(), 1..16)),
            1..4,
        ),
        proptest::option::of(0..len),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(writes, cut, tail)| Damage { writes, cut, tail })
}
