//! At start: the seed hierarchy is created where missing (all of it in a new universe),
//! and a seed directory whose region changed since the build that wrote the data
//! directory is moved to its new region, with everything it inherited its region from.

use std::collections::HashMap;

use crate::engine::codec::Tier;
use crate::engine::tree::ROOT;
use crate::engine::{Engine, NewNode};
use crate::error::{Error, Result};
use crate::namespace::{self, SeedDir};
use crate::regions::{Regions, Tag};

fn tag_of(regions: &Regions, seed: &SeedDir) -> Result<Tag> {
    regions
        .by_name(seed.region)
        .map(|r| r.tag())
        .ok_or(Error::InvalidArgument(
            "the seed table names a region that is not registered",
        ))
}

/// Creates and migrates the seed hierarchy; returns the seed directories by inode.
pub(super) fn seed_hierarchy(
    engine: &Engine,
    regions: &Regions,
    seed: &'static [SeedDir],
) -> Result<HashMap<u64, &'static SeedDir>> {
    engine.create_root(0o755, Tier::Warm, tag_of(regions, &namespace::ROOT)?)?;
    let mut seeds = HashMap::new();
    let mut by_path = HashMap::new();
    let (mut made, mut moved) = (0, 0);
    for dir in std::iter::once(&namespace::ROOT).chain(seed) {
        let tag = tag_of(regions, dir)?;
        let ino = if dir.path.is_empty() {
            ROOT
        } else {
            let (parent_path, name) = dir.path.rsplit_once('/').unwrap_or(("", dir.path));
            let parent = *by_path
                .get(parent_path)
                .ok_or(Error::InvalidArgument("the seed table lists a child first"))?;
            match engine.lookup(parent, name.as_bytes()) {
                Ok(a) => a.ino,
                Err(Error::NotFound) => {
                    made += 1;
                    let new = NewNode {
                        tag: Some(tag),
                        ..NewNode::root_dir(Some(namespace::seed_tier(dir.path)))
                    };
                    engine.create(parent, name.as_bytes(), new)?.ino
                }
                Err(e) => return Err(e),
            }
        };
        let stored = engine.getattr(ino)?.tag;
        if stored != tag {
            let n = engine.retag(ino, stored, tag)?;
            log::info!("/{}: moved to region {} ({n} inodes)", dir.path, dir.region);
            moved += n;
        }
        seeds.insert(ino, dir);
        by_path.insert(dir.path, ino);
    }
    if made > 0 {
        log::info!("bootstrapped {made} directories of the seed hierarchy");
    }
    if moved > 0 {
        log::info!("migrated {moved} inodes to their regions");
    }
    Ok(seeds)
}
