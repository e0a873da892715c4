//! Durability waits handed off. A request whose reply must wait for the log's fsync (a
//! hot-tier close, an `fsync(2)`) would otherwise hold one of the few request threads
//! while another thread's fsync runs and then for its own: with two threads, two writers
//! waiting leave nobody to take the next writer's commit, so each fsync covered about
//! one commit however many writers there were. Run inside [`deferring`], an
//! acknowledgement wait of the engine (`wait`, `sync_all`) that finds an fsync under way
//! only notes the log position it owes; the caller then gives its reply to
//! [`Engine::when_durable`], and the log's flusher sends it after the next fsync, one
//! for every reply owed meanwhile. Finding none under way, the thread still syncs
//! itself: handing a lone writer's fsync to the flusher cost a wakeup of another thread
//! per commit and halved one `>>` loop's rate.
//!
//! A thread that knows other requests already wait behind the one it serves (a ring
//! queue's thread, whose queue gets every request made on its CPU) says so with
//! [`serving`]: its durability waits are then owed even when no fsync is under way. The
//! flusher syncs while the thread serves the requests behind, and their commits share
//! that fsync or the next instead of each waiting, queue and all, for its own.
//!
//! Only acknowledgements are handed off. What must be durable before the engine itself
//! goes on (a checkpoint or a snapshot naming log positions, a new segment) still waits
//! on its own thread (`Wal::sync_to`), and a deferred change can only be followed by
//! changes logged after it, which a crash keeps only with it.

use std::cell::Cell;

use super::Engine;
use super::wal::Ack;

thread_local! {
    /// Inside `deferring`: the highest log position this thread's work owes (0: none yet).
    static OWED: Cell<Option<u64>> = const { Cell::new(None) };
    /// Inside `serving`: whether requests wait behind the one this thread serves.
    static OTHERS_WAITING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work`, the serving of one request, knowing whether other requests already wait
/// behind it on this thread.
pub fn serving<T>(others_waiting: bool, work: impl FnOnce() -> T) -> T {
    let outer = OTHERS_WAITING.replace(others_waiting);
    let out = work();
    OTHERS_WAITING.set(outer);
    out
}

/// Whether this thread's durability waits are owed whatever the log is doing.
pub(super) fn others_waiting() -> bool {
    OTHERS_WAITING.get()
}

/// Runs `work` with its durability waits noted instead of waited for. Returns its result
/// and the log position that must be durable before anyone is told of it, if any.
pub fn deferring<T>(work: impl FnOnce() -> T) -> (T, Option<u64>) {
    let outer = OWED.replace(Some(0));
    let out = work();
    let owed = OWED.replace(outer).filter(|&lsn| lsn > 0);
    (out, owed)
}

/// Whether this thread runs inside `deferring`.
pub(super) fn deferring_now() -> bool {
    OWED.get().is_some()
}

/// Notes that `lsn` must be durable before this thread's work is acknowledged.
pub(super) fn owe(lsn: u64) {
    if let Some(o) = OWED.get() {
        OWED.set(Some(o.max(lsn)));
    }
}

impl Engine {
    /// Calls `ack` once the log is durable up to `lsn` (at once if it is), with the
    /// fsync's failure if it failed.
    pub fn when_durable(&self, lsn: u64, ack: Ack) {
        self.wal.when_durable(lsn, ack);
    }

    /// Makes the log look as if another thread's fsync were under way (or not), so that a
    /// durability wait inside `deferring` is owed instead of synced.
    #[cfg(test)]
    pub fn hold_sync(&self, on: bool) {
        self.wal.hold_sync(on);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    use super::*;
    use crate::engine::codec::Tier;
    use crate::engine::disk::sim::{Rng, Sim};
    use crate::engine::testutil::{file, get, put, settings};

    const DATA: &str = "/data";

    fn open(disk: &Sim) -> Engine {
        Engine::open_on(Arc::new(disk.clone()), Path::new(DATA), settings()).expect("open")
    }

    /// What power cuts now could leave: the durable image and some of what was not synced.
    fn cuts(disk: &Sim) -> Vec<Sim> {
        (0..16)
            .map(|seed| disk.restart(&mut Rng::new(seed)))
            .collect()
    }

    #[test]
    fn a_deferred_acknowledgement_goes_out_only_once_its_commit_is_durable() {
        let (disk, e, ino) = hot_file();

        // No fsync under way: the request's thread syncs, and owes nothing.
        let ((), owed) = deferring(|| put(&e, ino, b"first"));
        assert_eq!(owed, None);
        for d in &cuts(&disk) {
            assert_eq!(get(&open(d), ino), b"first");
        }

        // Another thread's fsync under way: the commit is only noted as owed.
        e.hold_sync(true);
        let ((), owed) = deferring(|| put(&e, ino, b"acknowledged"));
        e.hold_sync(false);
        let lsn = owed.expect("a hot-tier commit owes its fsync");
        assert!(
            cuts(&disk)
                .iter()
                .any(|d| get(&open(d), ino) != b"acknowledged"),
            "the commit was made durable on the request's thread"
        );
        assert_eq!(deferring(|| get(&e, ino)).1, None, "a read owes nothing");

        for d in &acked(&e, &disk, lsn) {
            assert_eq!(get(&open(d), ino), b"acknowledged");
        }
    }

    #[test]
    fn a_request_with_others_waiting_behind_it_leaves_its_fsync_to_the_flusher() {
        let (disk, e, ino) = hot_file();

        // Nothing behind and no fsync under way: the thread syncs itself.
        let ((), owed) = serving(false, || deferring(|| put(&e, ino, b"alone")));
        assert_eq!(owed, None);

        // No fsync under way, but requests behind: owed, not synced on this thread.
        let ((), owed) = serving(true, || deferring(|| put(&e, ino, b"behind")));
        assert!(
            !others_waiting(),
            "serving leaves the thread as it found it"
        );
        let lsn = owed.expect("a hot-tier commit with requests behind owes its fsync");
        assert!(
            cuts(&disk).iter().any(|d| get(&open(d), ino) != b"behind"),
            "the commit was made durable on the request's thread"
        );
        for d in &acked(&e, &disk, lsn) {
            assert_eq!(get(&open(d), ino), b"behind");
        }
    }

    /// A simulated disk, an engine on it and a file of the hot tier.
    fn hot_file() -> (Sim, Arc<Engine>, u64) {
        let disk = Sim::default();
        let e = Arc::new(open(&disk));
        e.create_root(0o755, Tier::Hot, 0).expect("root");
        let ino = file(&e, "a");
        (disk, e, ino)
    }

    /// Gives `lsn`'s acknowledgement to a running flusher and returns what power cuts at
    /// the moment of the acknowledgement could leave.
    fn acked(e: &Arc<Engine>, disk: &Sim, lsn: u64) -> Vec<Sim> {
        let (tx, rx) = mpsc::channel();
        let at_ack = disk.clone();
        e.when_durable(
            lsn,
            Box::new(move |res| {
                let _ = tx.send((res, cuts(&at_ack)));
            }),
        );
        let flusher = {
            let e = e.clone();
            std::thread::spawn(move || e.wal.run_flusher())
        };
        let (res, images) = rx.recv_timeout(Duration::from_secs(10)).expect("acked");
        res.expect("durable");
        e.wal.shutdown().expect("shutdown");
        flusher.join().expect("flusher");
        images
    }
}
