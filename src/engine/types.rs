//! The plain types the engine's callers pass in and get back.

use std::sync::Arc;
use std::time::Duration;

use super::codec::Tier;
use super::tree::{self, Kind, Location, Ts};

/// Tunables; the daemon fills them from `configuration/` and the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    pub cache_budget: usize,
    /// How long a commit in each tier (hot, warm, cold) may stay volatile; zero = at once.
    pub windows: [Duration; 3],
    pub segment_max: u64,
    /// Checkpoint when this many log bytes accumulated, or after `checkpoint_interval`.
    pub checkpoint_bytes: u64,
    pub checkpoint_interval: Duration,
    /// Drafts larger than this move to a staging file.
    pub spill_at: usize,
    /// Contents up to this size are committed into the log itself; larger ones to blobs.
    pub inline_max: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cache_budget: 256 << 20,
            windows: [
                Duration::ZERO,
                Duration::from_millis(100),
                Duration::from_secs(1),
            ],
            segment_max: 64 << 20,
            checkpoint_bytes: 128 << 20,
            checkpoint_interval: Duration::from_secs(60),
            spill_at: 8 << 20,
            inline_max: 256 << 10,
        }
    }
}

/// Which event asks for a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitAt {
    /// close(2) of one descriptor: commits written content.
    Close,
    /// A handle's last descriptor is gone, or a truncate by path: commits any change,
    /// unless other writers still hold the file open.
    Release,
    /// fsync(2): commits any change and returns once it is durable.
    Fsync,
}

/// What the filesystem layer sees of an inode.
#[derive(Clone, Debug)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Ts,
    pub mtime: Ts,
    pub ctime: Ts,
    pub nlink: u32,
    pub tier: Tier,
    pub tag: u8,
    /// A device node's device number (0 for anything else).
    pub rdev: u32,
}

/// A file of a directory read in passing (`Engine::read_files_passing`): its name there,
/// and its whole content or why it could not be read.
pub type PassingFile = (std::sync::Arc<[u8]>, crate::error::Result<Data>);

/// Bytes read from a file: a range of a buffer the cache (or a pinned reader) shares, so
/// that a read inside one cached chunk is answered without copying it, or owned bytes.
pub enum Data {
    Shared(Arc<Vec<u8>>, std::ops::Range<usize>),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Shared(buf, range) => &buf[range.clone()],
            Data::Owned(v) => v,
        }
    }
}

/// A small piece's bytes, held by a snapshot (`None` for a blob piece, pinned instead).
pub(super) type Held = Option<Arc<Vec<u8>>>;

/// One committed version of a file, pinned for a reader (see `Engine::snapshot`).
#[derive(Clone)]
pub struct Snapshot {
    pub(super) ino: u64,
    /// The tier the file was in (whose cache figures its reads count in).
    pub(super) tier: Tier,
    pub(super) version: u64,
    pub(super) loc: Location,
    pub(super) size: u64,
    pub(super) whole: Option<Arc<Vec<u8>>>,
    /// Of content in pieces: each small piece's bytes (blobs are pinned instead).
    pub(super) held: Option<Arc<[Held]>>,
}

impl Snapshot {
    /// The committed version `n` holds now (its small content not loaded yet).
    pub(super) fn of(n: &tree::Node) -> Snapshot {
        Snapshot {
            ino: n.meta.ino,
            tier: n.meta.tier,
            version: n.version,
            loc: n.loc.clone(),
            size: n.meta.size,
            whole: None,
            held: None,
        }
    }
}

/// One directory listing entry; `offset` resumes the listing after it.
pub struct DirEntry {
    pub offset: u64,
    pub ino: u64,
    pub kind: Kind,
    pub name: Vec<u8>,
}

/// A new inode's description.
pub struct NewNode<'a> {
    pub kind: Kind,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub target: &'a [u8],
    /// Overrides of the inherited tier and region tag (bootstrap of the seed hierarchy).
    pub tier: Option<Tier>,
    pub tag: Option<u8>,
}

impl NewNode<'_> {
    /// A file owned by root, mode 0644, of its directory's tier and region: what the
    /// universe writes for itself.
    pub fn root_file() -> NewNode<'static> {
        NewNode {
            kind: Kind::File,
            perm: 0o644,
            uid: 0,
            gid: 0,
            target: &[],
            tier: None,
            tag: None,
        }
    }

    /// A directory owned by root, mode 0755, in `tier` (`None`: its parent's).
    pub fn root_dir(tier: Option<Tier>) -> NewNode<'static> {
        NewNode {
            kind: Kind::Dir,
            perm: 0o755,
            tier,
            ..NewNode::root_file()
        }
    }
}

#[derive(Default, Clone, Copy)]
pub struct SetAttr {
    pub perm: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<Ts>,
    pub mtime: Option<Ts>,
}
