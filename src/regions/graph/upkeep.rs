//! The graph's slow maintenance, on a thread of its own: linking the commits' inserts into
//! the index's proximity graph, building that graph (seconds at 10,000 nodes, a minute at
//! 100,000), clustering, and noting the nearest of nodes no commit noted since the start.
//! Linking works under the space's lock, a few inserts per hold, so a commit or read waits
//! a few milliseconds at most; every other step copies what it needs under the lock and
//! works on the copy without it, so commits and reads never wait for it, and the other
//! regions' maintenance (which shares the tick) is not delayed. It touches nothing on
//! disk: a daemon stopped mid-way loses only work redone at the next start.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Shared;
use super::space::Space;

/// Changes left to a build when it is caught up under the lock (each costs an insert).
const CATCH_UP_UNDER_LOCK: usize = 64;
/// Inserts linked per hold of the lock (each ~0.3-0.6 ms: a commit waits for at most a
/// few milliseconds).
const LINKED_PER_HOLD: usize = 8;
/// Nodes whose nearest are noted per hold of the lock (each a query of a fraction of a
/// millisecond).
const NOTED_PER_HOLD: usize = 32;

/// Starts a pass on its thread, unless one is running or nothing is due.
pub fn start(shared: &Arc<Shared>) {
    if !shared.space().upkeep_due() || shared.upkeep.swap(true, Ordering::AcqRel) {
        return;
    }
    let s = Arc::clone(shared);
    let spawned = crate::placement::background("graph-upkeep", move || {
        pass(&s);
        s.upkeep.store(false, Ordering::Release);
    });
    if let Err(e) = spawned {
        log::warn!("graph maintenance not started: {e}");
        shared.upkeep.store(false, Ordering::Release);
    }
}

fn pass(shared: &Shared) {
    link_deferred(shared);
    build_index(shared);
    link_deferred(shared);
    note_nearest(shared);
    shared.space().tighten();
    let points = shared.space().cluster_input();
    if let Some(c) = points.and_then(Space::cluster) {
        shared.space().set_clusters(c);
    }
}

/// Builds the proximity graph on a copy, then catches it up with the commits made
/// meanwhile (off the lock while many are left) and puts it in place.
fn build_index(shared: &Shared) {
    let Some(mut build) = shared.space().index_build() else {
        return;
    };
    build.run();
    loop {
        let mut space = shared.space();
        let Some(changes) = space.index_changes(&build) else {
            return;
        };
        if changes.len() <= CATCH_UP_UNDER_LOCK {
            build.apply(changes);
            space.install_index(build);
            return;
        }
        drop(space);
        build.apply(changes);
    }
}

/// Links the commits' inserts that wait, a few per hold of the lock.
fn link_deferred(shared: &Shared) {
    while shared.space().link_deferred(LINKED_PER_HOLD) {}
}

/// Notes the nearest of every node that has none noted, a few per hold of the lock.
fn note_nearest(shared: &Shared) {
    loop {
        let mut space = shared.space();
        let todo = space.unnoted(NOTED_PER_HOLD);
        if todo.is_empty() {
            return;
        }
        space.note_nearest(&todo);
    }
}
