//! Work on numbered pieces shared with helper threads, its results taken in order.
//!
//! A scan reads, decodes and parses records batch by batch; those batches are independent,
//! while what consumes them (filters, groups, the visitor) runs on the request's thread
//! and wants them in order. The request's thread works too when the next result in order
//! is not ready, so one CPU is never slower than working alone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::Result;

/// Results made but not yet taken, at most this many pieces ahead of the one wanted.
const AHEAD: usize = 8;

/// Helpers started for `pieces` pieces: none for a few (a thread costs more than they do),
/// otherwise one fewer than the CPUs, at most 3.
fn helpers(pieces: usize) -> usize {
    if pieces < 4 {
        return 0;
    }
    (crate::placement::cpus().max(1) - 1).min(3)
}

struct Shared<T> {
    /// The next piece nobody has taken.
    next: AtomicUsize,
    /// The piece the request's thread wants next: nobody takes one `AHEAD` beyond it.
    wanted: AtomicUsize,
    stop: AtomicBool,
    made: Mutex<BTreeMap<usize, T>>,
    changed: Condvar,
}

impl<T> Shared<T> {
    fn made(&self) -> MutexGuard<'_, BTreeMap<usize, T>> {
        // A panicking helper is re-raised by the scope; the map itself stays whole.
        self.made.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the next piece if one is left and not too far ahead.
    fn take(&self, count: usize) -> Option<usize> {
        let i = self.next.load(Ordering::SeqCst);
        if i >= count || i >= self.wanted.load(Ordering::SeqCst) + AHEAD {
            return None;
        }
        self.next
            .compare_exchange(i, i + 1, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
    }
}

/// Runs `work` on every piece `0..count`, on this thread and helpers, and gives each
/// result to `take` in order of its piece. The first error, of either, ends the run.
pub fn run<T: Send>(
    count: usize,
    work: impl Fn(usize) -> Result<T> + Sync,
    mut take: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let helpers = helpers(count);
    if helpers == 0 {
        return (0..count).try_for_each(|i| take(work(i)?));
    }
    let shared = Shared {
        next: AtomicUsize::new(0),
        wanted: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        made: Mutex::new(BTreeMap::new()),
        changed: Condvar::new(),
    };
    let (shared, work) = (&shared, &work);
    std::thread::scope(|s| {
        for _ in 0..helpers {
            s.spawn(move || {
                crate::placement::spread();
                help(shared, count, work);
            });
        }
        let out = {
            let _guard = StopOnPanic(shared);
            lead(shared, count, work, &mut take)
        };
        shared.stop.store(true, Ordering::SeqCst);
        shared.changed.notify_all();
        out
    })
}

/// Stops the run if the thread holding it unwinds: a helper's piece would be waited for
/// forever, and helpers would wait forever for the request's thread to move on (the
/// scope re-raises the panic once every thread is done).
struct StopOnPanic<'a, T>(&'a Shared<T>);

impl<T> Drop for StopOnPanic<'_, T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop.store(true, Ordering::SeqCst);
            self.0.changed.notify_all();
        }
    }
}

/// A helper: takes pieces while there are some it may take, waits while it may not.
fn help<T>(shared: &Shared<T>, count: usize, work: &(impl Fn(usize) -> Result<T> + Sync)) {
    let _guard = StopOnPanic(shared);
    loop {
        if shared.stop.load(Ordering::SeqCst) || shared.next.load(Ordering::SeqCst) >= count {
            return;
        }
        match shared.take(count) {
            Some(i) => {
                let r = work(i);
                // An error ends the run: the request's thread reports it when it gets there.
                let failed = r.is_err();
                if let Ok(v) = r {
                    shared.made().insert(i, v);
                } else {
                    shared.stop.store(true, Ordering::SeqCst);
                }
                shared.changed.notify_all();
                if failed {
                    return;
                }
            }
            None => {
                let made = shared.made();
                // Woken when the wanted piece moves on (or the run stops); the timeout
                // covers a wakeup lost between the check above and this wait.
                let _ = shared
                    .changed
                    .wait_timeout(made, std::time::Duration::from_millis(5));
            }
        }
    }
}

/// The request's thread: takes results in order, working itself when the next is not made.
fn lead<T>(
    shared: &Shared<T>,
    count: usize,
    work: &(impl Fn(usize) -> Result<T> + Sync),
    take: &mut impl FnMut(T) -> Result<()>,
) -> Result<()> {
    for want in 0..count {
        shared.wanted.store(want, Ordering::SeqCst);
        shared.changed.notify_all();
        let v = loop {
            if let Some(v) = shared.made().remove(&want) {
                break v;
            }
            if let Some(i) = shared.take(count) {
                let v = work(i)?;
                if i == want {
                    break v;
                }
                shared.made().insert(i, v);
                continue;
            }
            let made = shared.made();
            if made.contains_key(&want) {
                continue;
            }
            if shared.stop.load(Ordering::SeqCst) {
                // A helper failed on a piece this thread has not reached: do it here, to
                // report its error (or its result, if the failure has passed).
                drop(made);
                break work(want)?;
            }
            let _ = shared
                .changed
                .wait_timeout(made, std::time::Duration::from_millis(5));
        };
        take(v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn results_come_in_order_whoever_made_them() {
        for count in [0, 1, 3, 4, 5, 100, 1000] {
            let mut got = Vec::new();
            run(
                count,
                |i| {
                    // Uneven pieces, so that helpers finish out of order.
                    if i % 7 == 0 {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                    Ok(i * 2)
                },
                |v| {
                    got.push(v);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(got, (0..count).map(|i| i * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_helper_that_panics_ends_the_run_instead_of_hanging_it() {
        for _ in 0..20 {
            let r = std::panic::catch_unwind(|| {
                run(
                    100,
                    |i| {
                        assert!(i != 30, "piece 30 fails");
                        Ok(i)
                    },
                    |_| Ok(()),
                )
            });
            assert!(r.is_err());
        }
    }

    #[test]
    fn the_first_error_in_order_ends_the_run() {
        let mut got = Vec::new();
        let r = run(
            200,
            |i| if i == 57 { Err(Error::NotFound) } else { Ok(i) },
            |v| {
                got.push(v);
                Ok(())
            },
        );
        assert!(matches!(r, Err(Error::NotFound)));
        assert_eq!(got, (0..57).collect::<Vec<_>>());
        // An error of the taker ends it too.
        let r = run(200, Ok, |v| if v == 9 { Err(Error::IsDir) } else { Ok(()) });
        assert!(matches!(r, Err(Error::IsDir)));
    }
}
