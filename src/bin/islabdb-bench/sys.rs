//! Thin wrappers over the few Linux calls the benchmark needs: CPU affinity,
//! filesystem type, device numbers, a system-wide monotonic clock, the mount
//! table and Ctrl-C handling.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Context, Error, Result};

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Pins `pid` (0 = the calling thread) to the given CPUs.
pub fn set_affinity(pid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; zeroed is its empty value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: CPU_SET only writes inside `set`; cpu is bounds-checked by
        // the libc macro against CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size we pass.
    let rc = unsafe { libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs `pid` (0 = the calling thread) may run on.
pub fn get_affinity(pid: libc::pid_t) -> io::Result<Vec<usize>> {
    // SAFETY: as in set_affinity.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size we pass.
    let rc =
        unsafe { libc::sched_getaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = libc::CPU_SETSIZE as usize;
    // SAFETY: CPU_ISSET only reads inside `set`.
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Formats a CPU list compactly, e.g. `0-1` or `0,2`.
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// CPUs online on the machine (not the ones this process may use).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// The filesystem type of `path`: its statfs magic and a readable name.
pub fn fs_type(path: &Path) -> Result<(i64, &'static str)> {
    let c = cstring(path).map_err(|e| Error::io(e, format!("statfs {}", path.display())))?;
    // SAFETY: zeroed statfs is a valid out-buffer.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `buf` a writable statfs.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut buf) };
    if rc != 0 {
        return Err(Error::io(
            io::Error::last_os_error(),
            format!("statfs {}", path.display()),
        ));
    }
    #[allow(clippy::unnecessary_cast)]
    let magic = buf.f_type as i64;
    let name = match magic {
        0xEF53 => "ext2/3/4",
        0x0102_1994 => "tmpfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x6573_5546 => "fuse",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0x8584_58F6 => "ramfs",
        _ => "other",
    };
    Ok((magic, name))
}

pub fn st_dev(path: &Path) -> io::Result<u64> {
    std::fs::metadata(path).map(|m| m.dev())
}

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes, unlike
/// `Instant`, so the two parallel workers can report their start and end.
pub fn monotonic_ns() -> u64 {
    // SAFETY: zeroed timespec is valid; clock_gettime writes into it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: CLOCK_MONOTONIC always exists on Linux; `ts` is writable.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether `mnt` is a mount point in this process's mount table. Unlike a
/// stat, this also works when the FUSE daemon has died ("transport endpoint
/// is not connected").
pub fn is_mounted(mnt: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = mnt.as_os_str().as_bytes();
    info.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|p| unescape_mountinfo(p).as_slice() == want)
    })
}

/// Undoes the octal escapes (`\040` for space, ...) of /proc/self/mountinfo.
fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let digit = |k: usize| u32::from(b[i + k] - b'0');
            out.push((digit(1) * 64 + digit(2) * 8 + digit(3)) as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Unmounts `mnt` with umount2(2); `lazy` detaches even if it is busy.
pub fn umount(mnt: &Path, lazy: bool) -> io::Result<()> {
    let c = cstring(mnt)?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: `c` is a valid C string.
    let rc = unsafe { libc::umount2(c.as_ptr(), flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `cmd`'s output (stdout and stderr) to a new file `log`, its stdin from nothing.
pub fn output_to(cmd: &mut std::process::Command, log: &Path) -> Result<()> {
    use std::process::Stdio;
    let out = std::fs::File::create(log).ctx(|| format!("create {}", log.display()))?;
    let err = out.try_clone().ctx(|| format!("dup {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    Ok(())
}

/// Makes `cmd` start on `cpus` (not inheriting the client's pinning), in its own process
/// group (a terminal's Ctrl-C reaches only the bench, which ends its children in order;
/// `killpg` ends the child and whatever it started), and stopped by SIGTERM if the bench
/// itself dies.
pub fn own_group(cmd: &mut std::process::Command, cpus: Vec<usize>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only makes raw syscalls
    // (sched_setaffinity, setpgid, prctl), which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            set_affinity(0, &cpus)?;
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Ctrl-C and SIGTERM set a flag that the workload loops check, so the run
/// unwinds through the guards that unmount and stop the daemon. They are
/// blocked in every thread and taken by a dedicated `sigwait` thread: a
/// handler would run on the main thread, which may sit uninterruptibly in a
/// FUSE request that a hung daemon never answers (the watchdog then acts).
/// Call before any other thread is started; spawned processes start with an
/// empty signal mask again.
pub fn install_signal_handlers() {
    // SAFETY: sigset_t is plain data; the calls only read/write `set`.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` and `sig` are valid for the call.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                eprintln!("islabdb-bench: interrupted, cleaning up");
                INTERRUPTED.store(true, Ordering::SeqCst);
            }
        }
    });
}

/// Bumped by every [`check_interrupt`], i.e. once per operation: the
/// watchdog's evidence that the client is not stuck in a syscall.
static PROGRESS: AtomicU64 = AtomicU64::new(0);

pub fn check_interrupt() -> Result<()> {
    PROGRESS.fetch_add(1, Ordering::Relaxed);
    if INTERRUPTED.load(Ordering::Relaxed) {
        Err(Error::msg("interrupted"))
    } else {
        Ok(())
    }
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A few fields of /proc/PID/status, in KiB where they are sizes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProcStatus {
    pub vm_rss_kib: u64,
    pub vm_hwm_kib: u64,
    pub threads: u64,
    pub cpus_allowed: String,
}

pub fn proc_status(pid: u32) -> io::Result<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut st = ProcStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let kib = || {
            value
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        };
        match key {
            "VmRSS" => st.vm_rss_kib = kib(),
            "VmHWM" => st.vm_hwm_kib = kib(),
            "Threads" => st.threads = value.parse().unwrap_or(0),
            "Cpus_allowed_list" => st.cpus_allowed = value.to_string(),
            _ => {}
        }
    }
    Ok(st)
}

/// syncfs(2) of the filesystem holding `path`: writes back everything dirty
/// on that disk (the native files and the daemon's data dir alike), so one
/// measurement does not pay for the previous one's writeback.
pub fn syncfs(path: &Path) -> Result<()> {
    let f =
        std::fs::File::open(path).map_err(|e| Error::io(e, format!("open {}", path.display())))?;
    // SAFETY: the fd is valid for the lifetime of `f`.
    let rc = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::io(
            io::Error::last_os_error(),
            format!("syncfs {}", path.display()),
        ))
    }
}

/// `chattr +T`: ext2/3/4 spread the subdirectories of a directory with this
/// flag over block groups as they do top-level directories (Orlov).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

pub fn set_topdir(dir: &Path) -> io::Result<()> {
    let f = std::fs::File::open(dir)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one int through the
    // pointer, which is valid for the duration of the call.
    unsafe {
        if libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) != 0 {
            return Err(io::Error::last_os_error());
        }
        flags |= FS_TOPDIR_FL;
        if libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &flags) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Describes the filesystem `path` is on for the report: its device, mount
/// options (from /proc/self/mountinfo, the longest mount point containing
/// `path`) and, for ext4, whether it has a journal.
pub fn describe_fs(path: &Path) -> String {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return String::new();
    };
    let p = path.as_os_str().as_bytes();
    let mut best: Option<(usize, String, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mp), Some(opts)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let mp = unescape_mountinfo(mp);
        let under = p.starts_with(&mp)
            && (mp == b"/" || p.len() == mp.len() || p.get(mp.len()) == Some(&b'/'));
        if under && best.as_ref().is_none_or(|(len, _, _)| mp.len() >= *len) {
            // After " - ": fstype, source, super options.
            let tail: Vec<&str> = line.split(" - ").nth(1).unwrap_or("").split(' ').collect();
            let source = tail.get(1).copied().unwrap_or("?").to_string();
            let sup = tail.get(2).copied().unwrap_or("");
            best = Some((mp.len(), source, format!("{opts},{sup}")));
        }
    }
    let Some((_, source, opts)) = best else {
        return String::new();
    };
    let dev = source.rsplit('/').next().unwrap_or("");
    let journal = match std::fs::read_to_string(format!("/sys/fs/ext4/{dev}/journal_task")) {
        Ok(t) if t.trim() == "<none>" => ", no journal",
        Ok(_) => ", journal",
        Err(_) => "",
    };
    format!("{source} ({opts}{journal})")
}

/// Drops the clean page cache (`echo 1 > /proc/sys/vm/drop_caches`), which
/// includes the cached inode-table blocks ext4 consults to skip recently
/// deleted inodes. Needs root.
pub fn drop_page_cache() -> io::Result<()> {
    std::fs::write("/proc/sys/vm/drop_caches", "1")
}

/// Kills the daemon if the client makes no progress for `timeout`: an
/// operation stuck on a hung daemon would otherwise block the benchmark (and
/// CI) forever. Killing the daemon fails the pending request with ENOTCONN,
/// so the run ends with an error and the guards clean up.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(daemon_pid: u32, timeout: Duration) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut last = PROGRESS.load(Ordering::Relaxed);
            let mut since = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let now = PROGRESS.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    since = Instant::now();
                    continue;
                }
                // Interrupted but still inside one operation: the daemon is
                // not answering, and Ctrl-C cannot end a FUSE request.
                let interrupted =
                    INTERRUPTED.load(Ordering::Relaxed) && since.elapsed() > Duration::from_secs(3);
                if interrupted || since.elapsed() > timeout {
                    eprintln!(
                        "islabdb-bench: no progress for {:.0?}{}: the daemon (pid {daemon_pid}) looks hung; killing it",
                        since.elapsed(),
                        if interrupted {
                            " after the interrupt"
                        } else {
                            ""
                        }
                    );
                    INTERRUPTED.store(true, Ordering::SeqCst);
                    // SAFETY: plain kill(2) of the daemon we spawned.
                    unsafe { libc::kill(daemon_pid as libc::pid_t, libc::SIGKILL) };
                    return;
                }
            }
        });
        Watchdog {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
