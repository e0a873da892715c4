//! Black-box mount tests: the real `islabdb` binary mounted on a temp dir
//! (as root, through the kernel), driven by real tools and syscalls.
//!
//! Every test owns its own [`common::Mount`], so tests run in parallel.
//! Run: `cargo test --release --test mount` (needs root and /dev/fuse).
//! `ISLABDB_TEST_KEEP=1` keeps the temp dirs; `ISLABDB_TEST_RUST_LOG=debug`
//! sets the daemon's log level; `ISLABDB_BIN=path` tests another binary.
//!
//! One module per part of the contract:
//! - `backups`: snapshots taken by `mkdir`, of one moment while writers run, browsed
//!   read-only, kept across `kill -9`, removed by `rmdir`
//! - `lifecycle`: CLI, bootstrap, clean exit on umount/SIGTERM/SIGINT, remount
//! - `layout`: the root, seed dirs, `_manifest.json` (listed only in the universe's
//!   own dirs), `shard.metadata`, WAL listing
//! - `records`: JSON validation at write and commit, opaque names, commit atomicity
//! - `durability`: kill -9 and the hot/warm/cold/fsync durability promises
//! - `failing_disk`: an injected fsync failure (`ISLABDB_FAULTS`): commits refused with
//!   EIO, reads served, the last durable state after a remount
//! - `posix`: the POSIX surface tools rely on
//! - `permissions`: allow_other + default_permissions with other uids
//! - `tools`: vim, sed -i, cp -a, tar, rsync over the mount
//! - `roundtrip`: a tree of odd names, modes, sizes and links through tar, rsync,
//!   cp -a, mv, vim, sed -i, shell appends and rm -rf, compared exactly
//! - `config`: `configuration/` edited by sed -i, vim and jq + mv: applied at once or
//!   refused with EINVAL, changing nothing
//! - `temporal`: streams appended, checked, routed, rolled up, read by range, across
//!   concurrent writers, maintenance and `kill -9`
//! - `entanglement`: records read together are prefetched together, kept across restarts
//! - `graph`: nodes and edges kept whole (no dangling edge, also after `kill -9`), views,
//!   tar/rsync round trips
//! - `tiers`: `entropy/` and `wormholes/`: balance, moves by `mv` and by the tiering
//!   policy, routing tables, open handles, traffic and the GraphML topology
//! - `large`: 1 GiB file with bounded daemon memory (also renamed onto a record
//!   name), 100,000-entry directory

mod common;
// The daemon's seeded generator, shared rather than copied: tests draw data from it.
#[allow(dead_code)]
#[path = "../src/rng.rs"]
mod rng;

mod access;
mod backups;
mod config;
mod disk_full;
mod durability;
mod entanglement;
mod failing_disk;
mod graph;
mod large;
mod layout;
mod lifecycle;
mod observatory;
mod permissions;
mod posix;
mod qql;
mod records;
mod roundtrip;
mod temporal;
mod tiers;
mod tools;
