//! Log records: the changes one record holds (`Op`), how `Engine::log` appends and applies
//! them, and how recovery replays them (`apply_record`). `encode`/`decode` are the bincode
//! form checkpoints share.

use std::sync::atomic::Ordering;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::codec::Tier;
use super::extents::{self, Part};
use super::tree::{Location, Meta, Tree};
use super::wal::Durability;
use super::{Engine, acks};
use crate::error::{Error, Result};

pub fn encode<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Serializing plain structs into a Vec has no failure mode.
    bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(b, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| Error::Corrupt(format!("undecodable record: {e}")))
}

/// One logged change. Record payload:
/// `{ u8 version | u32 ops_len (LE) | bincode Vec<Op> | inline content bytes }`, the
/// inline bytes being the contents of the ops that have some, in op order (`inline_len`).
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Op {
    Upsert {
        meta: Meta,
        content: Content,
    },
    Delete {
        ino: u64,
    },
    /// The further names (hard links) of `ino` are now exactly these (record version 2).
    Links {
        ino: u64,
        names: Vec<(u64, Vec<u8>)>,
    },
}

impl Op {
    /// The inode the op changes.
    pub(super) fn ino(&self) -> u64 {
        match self {
            Op::Upsert { meta, .. } => meta.ino,
            Op::Delete { ino } | Op::Links { ino, .. } => *ino,
        }
    }

    /// New metadata, same content.
    pub(super) fn keep(meta: Meta) -> Op {
        Op::Upsert {
            meta,
            content: Content::Keep,
        }
    }

    /// How many of the record's inline bytes are this op's content.
    pub(super) fn inline_len(&self) -> u64 {
        match self {
            Op::Upsert {
                meta,
                content: Content::Inline,
            } => meta.size,
            Op::Upsert {
                meta,
                content:
                    Content::Append {
                        base_len,
                        blob: None,
                    },
            } => meta.size.saturating_sub(*base_len),
            _ => 0,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(super) enum Content {
    Keep,
    Empty,
    /// `Meta::size` bytes after the ops in this same record.
    Inline,
    Blob {
        tier: Tier,
        id: u64,
    },
    /// The first `base_len` bytes of the inode's content as it stands, then `Meta::size -
    /// base_len` new bytes: inline after the ops, or the whole of a blob (`extents`).
    /// Replaying it over a checkpoint that already holds it, or later appends, gives the
    /// same bytes: those begin with the same `base_len` bytes. (Over one that holds a later
    /// rewrite it gives bytes the rewrite's own record then replaces.)
    Append {
        base_len: u64,
        blob: Option<(Tier, u64)>,
    },
}

impl Content {
    /// The content of a file of `len` bytes whose record logs its bytes from `from` on,
    /// in `blob` or inline (`from` 0: the whole content).
    pub(super) fn new(from: u64, len: u64, blob: Option<(Tier, u64)>) -> Content {
        match (from, blob) {
            (0, _) if len == 0 => Content::Empty,
            (0, None) => Content::Inline,
            (0, Some((tier, id))) => Content::Blob { tier, id },
            (base_len, blob) => Content::Append { base_len, blob },
        }
    }
}

/// Version 2 added `Op::Links`, version 3 records in which more than one op has inline
/// content (a build before it would read every op's content at the first inline byte). A
/// record that needs neither is still written as version 1, so that a universe that never
/// used them stays readable by older builds.
const RECORD_VERSION: u8 = 3;

fn record_version(ops: &[Op]) -> u8 {
    if ops.iter().filter(|op| op.inline_len() > 0).count() > 1 {
        RECORD_VERSION
    } else if ops.iter().any(|op| matches!(op, Op::Links { .. })) {
        2
    } else {
        1
    }
}

impl Engine {
    /// Logs `ops` and applies them. `inline` is the content of the ops that carry it
    /// inline, in op order (in as many parts as is handy). Returns the log position to
    /// wait for when the change must be durable now (`tier`'s window is zero).
    pub(super) fn log(
        &self,
        tree: &mut Tree,
        ops: Vec<Op>,
        inline: &[&[u8]],
        tier: Tier,
    ) -> Result<Option<u64>> {
        self.log_with(tree, ops, inline, self.durability(tier))
    }

    /// `log`, durable as `durability` says.
    pub(super) fn log_with(
        &self,
        tree: &mut Tree,
        ops: Vec<Op>,
        inline: &[&[u8]],
        durability: Durability,
    ) -> Result<Option<u64>> {
        // Recovery finds each op's content by counting: bytes that do not add up would
        // give every op after the first a neighbour's bytes.
        let inline_len: u64 = inline.iter().map(|p| p.len() as u64).sum();
        if inline_len != ops.iter().map(Op::inline_len).sum::<u64>() {
            return Err(Error::InvalidArgument(
                "a record's inline content does not match its ops",
            ));
        }
        let body = encode(&ops);
        let mut head = Vec::with_capacity(5);
        head.push(record_version(&ops));
        head.extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.generation.fetch_add(1, Ordering::Relaxed);
        let mut parts = vec![&head[..], &body[..]];
        parts.extend_from_slice(inline);
        let at = self.wal.append(&parts, durability)?;
        let inline_off = at.payload_off + (head.len() + body.len()) as u64;
        apply_ops(tree, ops, at.seg, inline_off);
        Ok((durability == Durability::Sync).then_some(at.lsn))
    }

    /// `log` of one inode's new state without inline content.
    pub(super) fn log_upsert(
        &self,
        tree: &mut Tree,
        meta: Meta,
        content: Content,
        tier: Tier,
    ) -> Result<Option<u64>> {
        self.log(tree, vec![Op::Upsert { meta, content }], &[], tier)
    }

    /// Waits until a change acknowledged to someone is durable. Deferring (`acks`), it
    /// only notes what is owed when another thread's fsync is under way or other requests
    /// wait behind this one.
    pub(super) fn wait(&self, lsn: Option<u64>) -> Result<()> {
        match lsn {
            Some(lsn) if acks::deferring_now() => {
                if acks::others_waiting() || !self.wal.sync_unless_busy(lsn)? {
                    acks::owe(lsn);
                }
                Ok(())
            }
            Some(lsn) => self.wal.sync_to(lsn),
            None => Ok(()),
        }
    }
}

/// Applies a record's ops in order: each op's inline content follows the one before's,
/// the first at `inline_off`.
fn apply_ops(tree: &mut Tree, ops: Vec<Op>, seg: u64, mut inline_off: u64) {
    for op in ops {
        let len = op.inline_len();
        apply_op(tree, op, seg, inline_off);
        // Saturating: a damaged (yet checksummed) record may state any sizes.
        inline_off = inline_off.saturating_add(len);
    }
}

fn apply_op(tree: &mut Tree, op: Op, seg: u64, inline_off: u64) {
    match op {
        Op::Upsert { meta, content } => {
            let loc = match content {
                Content::Append { base_len, blob } => {
                    let now = tree
                        .get(meta.ino)
                        .map(|n| extents::pieces(&n.loc, n.meta.size))
                        .unwrap_or_default();
                    let tail = match blob {
                        Some((tier, id)) => Part::Blob { tier, id },
                        None => Part::Wal {
                            seg,
                            off: inline_off,
                        },
                    };
                    let tail_len = meta.size.saturating_sub(base_len);
                    Some(extents::append(&now, base_len, tail, tail_len))
                }
                Content::Keep => None,
                Content::Empty => Some(Location::Empty),
                Content::Inline => Some(Location::Wal {
                    seg,
                    off: inline_off,
                }),
                Content::Blob { tier, id } => Some(Location::Blob { tier, id }),
            };
            tree.upsert(meta, loc);
        }
        Op::Delete { ino } => tree.delete(ino),
        Op::Links { ino, names } => {
            tree.set_links(ino, names.into_iter().map(|(p, n)| (p, n.into())).collect())
        }
    }
}

pub(super) fn apply_record(
    tree: &mut Tree,
    seg: u64,
    payload_off: u64,
    payload: &[u8],
) -> Result<()> {
    let bad =
        |why: &str| Error::Corrupt(format!("log segment {seg} record at {payload_off}: {why}"));
    let (&version, rest) = payload.split_first().ok_or_else(|| bad("empty"))?;
    if !(1..=RECORD_VERSION).contains(&version) {
        return Err(bad(&format!(
            "record version {version}, this build reads up to {RECORD_VERSION}"
        )));
    }
    let len_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("short"))?;
    let ops_len = u32::from_le_bytes(len_bytes) as usize;
    let body = rest.get(4..4 + ops_len).ok_or_else(|| bad("short ops"))?;
    let ops: Vec<Op> = decode(body)?;
    apply_ops(tree, ops, seg, payload_off + 5 + ops_len as u64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::engine::codec::Tier;
    use crate::engine::testutil::{file, get, new_universe, put, settings};
    use crate::engine::{Engine, disk, wal};
    use crate::error::Error;

    /// Cut the log at every byte offset of its last records: recovery always succeeds and
    /// gives a state some prefix of the commits produced, never a mix.
    #[test]
    fn log_cut_at_every_offset_recovers_a_committed_prefix() {
        let tmp = tempfile::tempdir().expect("tmp");
        let versions: Vec<Vec<u8>> = (0..4)
            .map(|i| format!("version {i} ").repeat(i + 1).into_bytes())
            .collect();
        let f;
        {
            let e = new_universe(tmp.path(), Tier::Hot);
            f = file(&e, "f");
            for v in &versions {
                put(&e, f, v);
            }
        }
        let wal_dir = tmp.path().join("backups/cosmic_logs");
        let seg = wal::list_segments(&disk::Real, &wal_dir).expect("list")[0];
        let path = wal_dir.join(wal::segment_name(seg));
        let full = fs::read(&path).expect("read");
        let from = full.len() - 600;
        for cut in from..=full.len() {
            let probe = tempfile::tempdir().expect("tmp");
            let probe_wal = probe.path().join("backups/cosmic_logs");
            fs::create_dir_all(&probe_wal).expect("mkdir");
            fs::write(probe_wal.join(wal::segment_name(seg)), &full[..cut]).expect("write");
            let e = Engine::open(probe.path(), settings()).expect("a torn tail recovers");
            match e.getattr(f) {
                Ok(_) => {
                    let got = get(&e, f);
                    assert!(
                        got.is_empty() || versions.contains(&got),
                        "cut {cut}: {got:?}"
                    );
                }
                Err(Error::NotFound) => {}
                Err(other) => panic!("cut {cut}: {other}"),
            }
        }
        // The whole log gives the last version.
        let e = Engine::open(tmp.path(), settings()).expect("reopen");
        assert_eq!(get(&e, f), versions[3]);
    }

    proptest::proptest! {
        /// Whatever bytes a (damaged but checksummed) log record holds, applying it is an
        /// error or a change, never a panic.
        #[test]
        fn any_payload_applies_or_fails_cleanly(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let mut tree = crate::engine::tree::Tree::default();
            let _ = super::apply_record(&mut tree, 1, 12, &payload);
        }
    }

    /// The same damage in a real log: reopening refuses the universe with a clear message.
    #[test]
    fn recovery_refuses_a_log_that_makes_a_cycle() {
        use crate::engine::NewNode;
        use crate::engine::record::Op;
        use crate::engine::tree::ROOT;
        let tmp = tempfile::tempdir().expect("tmp");
        {
            let e = new_universe(tmp.path(), Tier::Hot);
            let dir = |parent, name: &str| {
                e.create(parent, name.as_bytes(), NewNode::root_dir(None))
                    .expect("mkdir")
                    .ino
            };
            let a = dir(ROOT, "a");
            let b = dir(a, "b");
            let mut tree = crate::engine::lock(&e.tree);
            let mut meta = tree.get(a).expect("a").meta.clone();
            meta.parent = b;
            let lsn = e
                .log(&mut tree, vec![Op::keep(meta)], &[], Tier::Hot)
                .expect("log");
            drop(tree);
            e.wait(lsn).expect("durable");
        }
        let err = Engine::open(tmp.path(), settings()).err().expect("refused");
        assert!(
            matches!(&err, Error::Corrupt(why) if why.contains("hang from the root")),
            "{err}"
        );
    }

    /// Records that are well formed but make two directories each other's parent (as only
    /// a damaged log could): recovery refuses the tree instead of looping over it.
    #[test]
    fn a_cycle_of_directories_is_reported_as_corruption() {
        use crate::engine::tree::{Kind, ROOT, Tree, tests::meta};
        let mut tree = Tree::default();
        tree.upsert(meta(ROOT, ROOT, "", Kind::Dir), None);
        tree.upsert(meta(2, ROOT, "a", Kind::Dir), None);
        tree.upsert(meta(3, 2, "b", Kind::Dir), None);
        assert!(tree.check_connected().is_ok());
        tree.upsert(meta(2, 3, "a", Kind::Dir), None);
        let err = tree
            .check_connected()
            .expect_err("a and b are each other's parent");
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        assert!(!tree.is_within(3, ROOT), "a bounded walk up the cycle");
    }
}
