//! Which CPU a request is served on, and what gives way to requests.
//!
//! A FUSE request is a round trip: the caller blocks, a worker wakes, answers, and wakes the
//! caller. When the worker sleeps on another CPU, both wakeups cross CPUs; on a small VM
//! whose idle vCPUs halt, each costs tens of microseconds, several times the work itself
//! (`scripts/bench --daemon-cpu` shows it). A worker on the caller's own CPU runs as soon as
//! the caller blocks and hands the CPU straight back. So, like receive flow steering in
//! networking, each worker thread follows its callers: now and then it looks up the CPU
//! its current caller last ran on and moves there. Only CPUs the daemon was started with
//! are used (`taskset` still decides).

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often a worker looks where its caller runs; a lookup reads `/proc` (a few µs).
const RESAMPLE: Duration = Duration::from_millis(20);

/// The CPUs the daemon may use, read once at start; `None` when following is off.
static ALLOWED: OnceLock<Option<libc::cpu_set_t>> = OnceLock::new();

thread_local! {
    /// When this worker looks again, and the CPU it is pinned to (usize::MAX: none).
    static NEXT: Cell<(Option<Instant>, usize)> = const { Cell::new((None, usize::MAX)) };
}

/// Turns following on or off for the whole daemon; call once, before serving.
pub fn init(follow: bool) {
    let allowed = follow.then(current_affinity).flatten();
    if follow && allowed.is_none() {
        log::warn!("cannot read the daemon's CPU affinity; workers stay where they are");
    }
    let _ = ALLOWED.set(allowed);
}

fn current_affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) == 0).then_some(set)
    }
}

/// Called by a worker with the thread id of the process it serves.
pub fn follow(caller: u32) {
    let Some(Some(allowed)) = ALLOWED.get() else {
        return;
    };
    NEXT.with(|next| {
        let (due, pinned) = next.get();
        let now = Instant::now();
        if due.is_some_and(|t| now < t) {
            return;
        }
        let mut here = pinned;
        if let Some(cpu) = caller_cpu(caller)
            // SAFETY: CPU_ISSET only reads the set, and cpu was range-checked.
            && cpu < libc::CPU_SETSIZE as usize
            && unsafe { libc::CPU_ISSET(cpu, allowed) }
            && cpu != pinned
            && pin_to(cpu)
        {
            here = cpu;
        }
        next.set((Some(now + RESAMPLE), here));
    });
}

/// The CPUs the daemon may use: not those of the calling worker, which follows one.
pub fn cpus() -> usize {
    match ALLOWED.get() {
        // SAFETY: CPU_COUNT only reads the set.
        Some(Some(allowed)) => unsafe { libc::CPU_COUNT(allowed) as usize },
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Lets the calling thread run on any of the daemon's CPUs again. A thread a worker
/// starts inherits the CPU the worker follows; a helper that shares a request's work must
/// run beside it, not take turns with it on one CPU.
pub fn spread() {
    if let Some(Some(allowed)) = ALLOWED.get() {
        // SAFETY: the set was filled by sched_getaffinity; 0 means the calling thread.
        unsafe {
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), allowed);
        }
    }
}

/// Starts background work that gives way to requests: a thread named `name` running `work`
/// at the lowest scheduling priority (nice 19, which Linux keeps per thread). With a CPU
/// shared by clients and the daemon, the graph's index builds took a fifth of it and
/// halved the requests served meanwhile (`scripts/bench --daemon-cpu 1`); at this
/// priority they run in what requests leave idle.
pub fn background<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // SAFETY: setpriority on the calling thread's own id; raising nice needs no
            // privilege.
            let set =
                unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
            if set != 0 {
                log::warn!(
                    "background thread keeps its priority: {}",
                    std::io::Error::last_os_error()
                );
            }
            work()
        })
}

/// The CPU a thread last ran on: field 39 of `/proc/<tid>/stat`, counted after the
/// command name, which may itself hold spaces and parentheses.
fn caller_cpu(tid: u32) -> Option<usize> {
    let stat = std::fs::read(format!("/proc/{tid}/stat")).ok()?;
    let after = stat.iter().rposition(|&b| b == b')')?;
    let fields = std::str::from_utf8(&stat[after + 1..]).ok()?;
    fields
        .split_ascii_whitespace()
        .nth(39 - 3)
        .and_then(|f| f.parse().ok())
}

fn pin_to(cpu: usize) -> bool {
    // SAFETY: the set is plain data built here; 0 means the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_work_alone_runs_at_the_lowest_priority() {
        let nice = || {
            // SAFETY: plain libc queries of the calling thread's id and priority.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        };
        let before = nice();
        let background = background("test-background", nice).unwrap().join().unwrap();
        assert_eq!(background, 19);
        assert_eq!(nice(), before, "the spawning thread keeps its priority");
    }

    #[test]
    fn reads_the_cpu_of_a_thread() {
        // SAFETY: plain libc queries about the calling thread.
        let (tid, cpu) = unsafe { (libc::gettid() as u32, libc::sched_getcpu()) };
        // The test thread may migrate between the two calls; it ran on one of the CPUs.
        let got = caller_cpu(tid).expect("own /proc stat parses");
        let online = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(got < online.max(cpu as usize + 1), "cpu {got} of {online}");
        assert_eq!(caller_cpu(u32::MAX), None, "a thread that does not exist");
    }

    #[test]
    fn a_worker_moves_to_its_callers_cpu() {
        init(true);
        let allowed = ALLOWED.get().unwrap().as_ref().unwrap();
        let target = (0..libc::CPU_SETSIZE as usize)
            .rev()
            // SAFETY: CPU_ISSET reads the set.
            .find(|&c| unsafe { libc::CPU_ISSET(c, allowed) })
            .unwrap();
        // A caller pinned to the last allowed CPU...
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let caller = std::thread::spawn(move || {
            assert!(pin_to(target));
            // SAFETY: plain libc query.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let elsewhere = (0..target)
            // SAFETY: CPU_ISSET reads the set.
            .find(|&c| unsafe { libc::CPU_ISSET(c, allowed) });
        // ...makes a worker that follows it run there, wherever it ran before.
        std::thread::spawn(move || {
            if let Some(c) = elsewhere {
                assert!(pin_to(c));
            }
            follow(tid);
            // SAFETY: plain libc query.
            unsafe { libc::sched_getcpu() as usize }
        })
        .join()
        .map(|cpu| assert_eq!(cpu, target))
        .unwrap();
        done_tx.send(()).unwrap();
        caller.join().unwrap();
    }
}
