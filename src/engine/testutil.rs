//! Helpers the engine's unit tests share: a small universe, whole-file puts and gets.

use std::path::Path;

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
