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
//!
//! The kernel hands a request to whichever worker has waited longest, not to one on the
//! caller's CPU. So while callers run on several CPUs at once, following each one would
//! now and then put every worker on the same CPU, and two clients on two CPUs would be
//! served one at a time (`scripts/bench`'s `parallel`: 0.94 times one client). Then the
//! workers spread instead, one to each CPU with callers.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often a worker looks where its caller runs; a lookup reads `/proc` (a few µs).
const RESAMPLE: Duration = Duration::from_millis(20);

/// How long a CPU counts as having callers after one was last seen there: a few
/// workers' looks, so two clients are both seen while a lone client's rare migration is
/// soon forgotten.
const CALLERS_SEEN: Duration = Duration::from_millis(60);

/// The CPUs the daemon may use, read once at start; `None` when following is off.
static ALLOWED: OnceLock<Option<libc::cpu_set_t>> = OnceLock::new();

/// The origin of the times in [`Callers`].
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Where the daemon's workers have found their callers lately.
static CALLERS: Callers = Callers::new();

/// Numbers the workers in the order they first follow a caller.
static WORKERS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// When this worker looks again, and the CPU it is pinned to (usize::MAX: none).
    static NEXT: Cell<(Option<Instant>, usize)> = const { Cell::new((None, usize::MAX)) };
    /// This worker's number, which decides its CPU when the workers spread.
    static WORKER: usize = WORKERS.fetch_add(1, Ordering::Relaxed);
}

/// Turns following on or off for the whole daemon; call once, before serving.
pub fn init(follow: bool) {
    let allowed = follow.then(current_affinity).flatten();
    if follow && allowed.is_none() {
        log::warn!("cannot read the daemon's CPU affinity; workers stay where they are");
    }
    let _ = ALLOWED.set(allowed);
    EPOCH.get_or_init(Instant::now);
}

fn current_affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) == 0).then_some(set)
    }
}

/// The CPUs this thread may run on (none if that cannot be read), so that nothing is
/// pinned to a CPU `taskset` left out: pinning would succeed there.
pub fn allowed_cpus() -> Vec<usize> {
    let Some(set) = current_affinity() else {
        return Vec::new();
    };
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET only reads the set, and every cpu is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
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
        {
            let target = CALLERS.place(cpu, now, allowed, WORKER.with(|w| *w));
            if target != pinned && pin_to(target) {
                here = target;
            }
        }
        next.set((Some(now + RESAMPLE), here));
    });
}

/// For each CPU, when a worker last found a caller running there (µs after [`EPOCH`],
/// plus one, so that 0 means never).
struct Callers([AtomicU64; libc::CPU_SETSIZE as usize]);

impl Callers {
    const fn new() -> Callers {
        Callers([const { AtomicU64::new(0) }; libc::CPU_SETSIZE as usize])
    }

    /// Where a worker goes that found its caller on `cpu` (below CPU_SETSIZE): there,
    /// unless callers were seen on other CPUs too; then the `worker`-th of those CPUs, so
    /// the workers spread over them.
    fn place(&self, cpu: usize, now: Instant, allowed: &libc::cpu_set_t, worker: usize) -> usize {
        let epoch = *EPOCH.get_or_init(Instant::now);
        let stamp = |t: Instant| t.saturating_duration_since(epoch).as_micros() as u64 + 1;
        self.0[cpu].store(stamp(now), Ordering::Relaxed);
        let since = stamp(now.checked_sub(CALLERS_SEEN).unwrap_or(epoch));
        let busy: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: CPU_ISSET only reads the set; c is below CPU_SETSIZE.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, allowed) })
            .filter(|&c| self.0[c].load(Ordering::Relaxed) >= since)
            .collect();
        match busy.len() {
            0 | 1 => cpu,
            n => busy[worker % n],
        }
    }
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

/// Moves the calling thread to `cpu`; false if the kernel refused.
pub fn pin_to(cpu: usize) -> bool {
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
    fn workers_spread_over_the_cpus_with_callers() {
        // SAFETY: zeroed is the empty set; CPU_SET writes inside it.
        let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for c in [2, 5, 7] {
            // SAFETY: as above.
            unsafe { libc::CPU_SET(c, &mut allowed) };
        }
        let callers = Callers::new();
        let t0 = Instant::now() + CALLERS_SEEN;
        // One client, on CPU 5: every worker follows it there.
        assert_eq!(callers.place(5, t0, &allowed, 0), 5);
        assert_eq!(callers.place(5, t0, &allowed, 1), 5);
        // A second client meanwhile on CPU 2: the workers take one of the two CPUs each,
        // whichever client they served last.
        let t1 = t0 + CALLERS_SEEN / 3;
        assert_eq!(callers.place(2, t1, &allowed, 0), 2);
        let spread = [
            callers.place(5, t1, &allowed, 0),
            callers.place(2, t1, &allowed, 1),
            callers.place(2, t1, &allowed, 2),
        ];
        assert_eq!(spread, [2, 5, 2]);
        // Once no caller has been seen on CPU 2 for a while, they follow CPU 5's again.
        let t2 = t1 + CALLERS_SEEN * 2;
        assert_eq!(callers.place(5, t2, &allowed, 0), 5);
        assert_eq!(callers.place(5, t2, &allowed, 1), 5);
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
