//! The harness: a [`Mount`] guard that owns a temp dir, runs the real
//! `islabdb` binary on it and always cleans up, plus small helpers for
//! running tools and checking errnos.
//!
//! Layout of one guard's temp dir (`/tmp/islabdb-mt-XXXXXX/`):
//!
//! ```text
//! data/         DATA_DIR of the daemon (kept across remounts)
//! mnt/          MOUNTPOINT
//! daemon.log    stdout+stderr of every daemon this guard started
//! scratch/      native (non-FUSE) files a test wants to compare against
//! ```

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::{FromRawFd, IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Seeded record type directories.
pub const USERS: &str = "spacetime/hot_data/particles/users";
pub const PRODUCTS: &str = "spacetime/hot_data/particles/products";
pub const ORDERS: &str = "spacetime/hot_data/particles/orders";
pub const TIERS: [&str; 3] = ["hot_data", "warm_data", "cold_data"];

/// How long the daemon gets to show up as a mountpoint.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the daemon gets to exit after an unmount or a signal.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `Drop` waits after unmounting before it SIGKILLs the daemon.
const DROP_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default life of one guard before the watchdog SIGKILLs its daemon, so a
/// hung daemon fails the test (blocked calls get ENOTCONN) instead of hanging
/// the suite forever.
const DEFAULT_WATCHDOG: Duration = Duration::from_secs(120);
/// Tools run by [`run`] are killed after this long.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(100);

/// The binary under test. `ISLABDB_BIN` overrides it (e.g. a debug build).
pub fn bin() -> PathBuf {
    match std::env::var_os("ISLABDB_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_islabdb")),
    }
}

/// One running (or stopped) `islabdb mount DATA MNT`.
pub struct Mount {
    /// `None` once the guard decided the dir must be leaked (still mounted).
    tmp: Option<tempfile::TempDir>,
    base: PathBuf,
    data: PathBuf,
    mnt: PathBuf,
    log_path: PathBuf,
    args: Vec<String>,
    /// Environment variables every later start of the daemon gets (test hooks).
    env: Vec<(String, String)>,
    child: Option<Child>,
    starts: u32,
    /// pid the watchdog may kill; 0 when no daemon is running.
    watched_pid: Arc<AtomicI32>,
    /// Dropping the sender stops the watchdog.
    watchdog: Option<mpsc::Sender<()>>,
}

impl Mount {
    /// Mounts a fresh, empty data dir with default options.
    #[track_caller]
    pub fn new() -> Mount {
        Mount::with_args(&[])
    }

    /// Mounts a fresh data dir, passing `args` (e.g. `--cache-mb 64`) before
    /// DATA_DIR and MOUNTPOINT, on every start of this guard.
    #[track_caller]
    pub fn with_args(args: &[&str]) -> Mount {
        Mount::with_args_and_watchdog(args, DEFAULT_WATCHDOG)
    }

    #[track_caller]
    pub fn with_args_and_watchdog(args: &[&str], watchdog: Duration) -> Mount {
        let tmp = tempfile::Builder::new()
            .prefix("islabdb-mt-")
            .tempdir()
            .expect("create temp dir");
        let base = tmp.path().canonicalize().expect("canonicalize temp dir");
        // Other uids (permission tests) must be able to walk to the mountpoint.
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        let data = base.join("data");
        let mnt = base.join("mnt");
        fs::create_dir(&data).unwrap();
        fs::create_dir(&mnt).unwrap();
        fs::create_dir(base.join("scratch")).unwrap();
        fs::set_permissions(&mnt, fs::Permissions::from_mode(0o755)).unwrap();
        let watched_pid = Arc::new(AtomicI32::new(0));
        let (tx, rx) = mpsc::channel::<()>();
        {
            let pid = Arc::clone(&watched_pid);
            let name = thread::current().name().unwrap_or("?").to_string();
            thread::spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(watchdog) {
                    let p = pid.load(Ordering::SeqCst);
                    if p > 0 {
                        eprintln!(
                            "watchdog: test {name} still running after {watchdog:?}; \
                             SIGKILL daemon pid {p} so blocked calls fail"
                        );
                        unsafe { libc::kill(p, libc::SIGKILL) };
                    }
                }
            });
        }
        let mut m = Mount {
            tmp: Some(tmp),
            log_path: base.join("daemon.log"),
            base,
            data,
            mnt,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            child: None,
            starts: 0,
            watched_pid,
            watchdog: Some(tx),
        };
        m.start();
        m
    }

    /// The temp dir that holds data/, mnt/, scratch/ and the log.
    pub fn base(&self) -> &Path {
        &self.base
    }
    /// A native (non-FUSE) scratch dir inside the guard's temp dir.
    pub fn scratch(&self) -> PathBuf {
        self.base.join("scratch")
    }
    pub fn data(&self) -> &Path {
        &self.data
    }
    pub fn mnt(&self) -> &Path {
        &self.mnt
    }
    /// Absolute path of `rel` inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            self.mnt.clone()
        } else {
            self.mnt.join(rel)
        }
    }
    /// [`Mount::path`] as a `String`, handy for tool arguments.
    pub fn ps(&self, rel: &str) -> String {
        self.path(rel).to_str().expect("utf-8 path").to_string()
    }
    /// Everything the daemon(s) of this guard logged so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
    pub fn daemon_pid(&self) -> u32 {
        self.child.as_ref().expect("daemon is not running").id()
    }
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
    pub fn is_mounted(&self) -> bool {
        is_mountpoint(&self.mnt)
    }

    /// Starts the daemon on the guard's data dir and waits until the mount is
    /// up. Panics (with the log) if the daemon exits early or never mounts.
    #[track_caller]
    fn start(&mut self) {
        // The kernel lists the mount before the daemon has answered its handshake; a
        // stat of the root waits for that answer, so a test begins on a mount that serves.
        self.start_until(
            |m| m.is_mounted() && fs::metadata(&m.mnt).is_ok(),
            Duration::from_millis(20),
        );
    }

    /// Starts the daemon and unmounts as soon as the kernel lists the mount; returns how
    /// the daemon exited. The daemon is stopped (SIGSTOP) from the moment the mount is
    /// seen until it is unmounted, so the unmount often comes before it has answered the
    /// kernel's first request, as it would on a loaded machine.
    #[track_caller]
    pub fn restart_and_unmount_at_once(&mut self) -> ExitStatus {
        self.start_until(Mount::is_mounted, Duration::ZERO);
        let pid = self.daemon_pid() as i32;
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let unmounted = umount2(&self.mnt, 0);
        unsafe { libc::kill(pid, libc::SIGCONT) };
        if let Err(e) = unmounted {
            panic!("umount {}: {e}", self.mnt.display());
        }
        self.exit_after_umount()
    }

    /// Starts the daemon, polling every `poll` until `ready`.
    #[track_caller]
    fn start_until(&mut self, ready: impl Fn(&Mount) -> bool, poll: Duration) {
        assert!(self.child.is_none(), "start: a daemon is already running");
        assert!(
            !self.is_mounted(),
            "start: {} is still mounted",
            self.mnt.display()
        );
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open log");
        writeln!(
            log,
            "==== test harness: start #{} of {} mount {:?} ====",
            self.starts,
            bin().display(),
            self.args
        )
        .unwrap();
        let child = Command::new(bin())
            .arg("mount")
            .args(&self.args)
            // `scripts/test` runs the suite a second time with `--no-ring` here, so that
            // both transports (FUSE over io_uring, /dev/fuse) are driven by every test; a
            // test that gives one of these flags itself keeps it once.
            .args(
                std::env::var("ISLABDB_TEST_MOUNT_ARGS")
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter(|a| !self.args.iter().any(|own| own == a)),
            )
            .arg(&self.data)
            .arg(&self.mnt)
            .env(
                "RUST_LOG",
                std::env::var("ISLABDB_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin().display()));
        self.watched_pid.store(child.id() as i32, Ordering::SeqCst);
        self.child = Some(child);
        let started = Instant::now();
        let deadline = started + MOUNT_TIMEOUT;
        loop {
            if ready(self) {
                // A slow start under the suite's load is worth seeing before it is a failure.
                if started.elapsed() > Duration::from_secs(5) {
                    eprintln!(
                        "mount of {} took {:?}",
                        self.mnt.display(),
                        started.elapsed()
                    );
                }
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.reaped();
                panic!(
                    "daemon exited before mounting ({status}); log:\n{}",
                    tail(&self.log(), 200)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} is not a mountpoint {MOUNT_TIMEOUT:?} after starting the daemon; log:\n{}",
                    self.mnt.display(),
                    tail(&self.log(), 200)
                );
            }
            thread::sleep(poll);
        }
    }

    fn reaped(&mut self) {
        self.watched_pid.store(0, Ordering::SeqCst);
        self.child = None;
    }

    /// Waits up to `timeout` for the daemon to exit.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = exit_within(self.child.as_mut()?, timeout).unwrap()?;
        self.reaped();
        Some(status)
    }

    /// `kill -9` the daemon, reap it, and unmount the dead mount (which would
    /// answer ENOTCONN otherwise).
    #[track_caller]
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("kill9: daemon is not running");
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().expect("wait for killed daemon");
        self.reaped();
        unmount_dead(&self.mnt);
        assert!(
            !self.is_mounted(),
            "kill9: {} is still mounted",
            self.mnt.display()
        );
    }

    /// `umount MNT` and wait for the daemon to exit; returns its status.
    /// Panics if the unmount fails or the daemon does not exit in time.
    #[track_caller]
    pub fn unmount_and_wait(&mut self) -> ExitStatus {
        assert!(
            self.child.is_some(),
            "unmount_and_wait: daemon is not running"
        );
        // Another test's fork holds copies of every descriptor until its exec closes them
        // (close-on-exec): a file this test closed a moment ago may keep the mount busy
        // for that long. A user's `umount` retried would see the same.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = umount2(&self.mnt, 0) {
            if e.raw_os_error() != Some(libc::EBUSY) || Instant::now() > deadline {
                panic!(
                    "umount {}: {e}; open in it: {:?}",
                    self.mnt.display(),
                    holders(&self.mnt)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.exit_after_umount()
    }

    /// Waits for the daemon to exit after its mount went; panics with its log if it does
    /// not in time.
    #[track_caller]
    fn exit_after_umount(&mut self) -> ExitStatus {
        match self.wait_exit(EXIT_TIMEOUT) {
            Some(status) => status,
            None => panic!(
                "daemon did not exit within {EXIT_TIMEOUT:?} after umount; log:\n{}",
                tail(&self.log(), 100)
            ),
        }
    }

    /// Unmounts and asserts that the daemon exited with success; if not, the panic says
    /// how it exited and ends with its log.
    #[track_caller]
    pub fn unmount_cleanly(&mut self) {
        let status = self.unmount_and_wait();
        assert!(
            status.success(),
            "daemon exited with {status} at unmount; log:\n{}",
            tail(&self.log(), 100)
        );
    }

    /// Sends `sig` to the daemon and waits for it to exit; returns its status.
    #[track_caller]
    pub fn signal_and_wait(&mut self, sig: i32) -> ExitStatus {
        let pid = self.daemon_pid() as i32;
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
        match self.wait_exit(EXIT_TIMEOUT) {
            Some(status) => status,
            None => panic!(
                "daemon did not exit within {EXIT_TIMEOUT:?} after signal {sig}; log:\n{}",
                tail(&self.log(), 100)
            ),
        }
    }

    /// Sets (`Some`) or clears (`None`) an environment variable for the daemon's next
    /// starts, such as the test hook `ISLABDB_FAULTS`.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.to_string(), v.to_string()));
        }
    }

    /// Starts the daemon again on the same data dir. A running daemon is
    /// first stopped cleanly (and must exit 0).
    #[track_caller]
    pub fn remount(&mut self) {
        if self.child.is_some() {
            let status = self.unmount_and_wait();
            assert!(
                status.success(),
                "daemon exit status after umount: {status}; log:\n{}",
                tail(&self.log(), 100)
            );
        }
        self.start();
    }

    /// Best-effort teardown used by `Drop`: never panics.
    fn teardown(&mut self) {
        if self.is_mounted() && self.child.is_some() {
            let r = umount2(&self.mnt, 0);
            if let Err(e) = &r {
                eprintln!(
                    "teardown: umount {}: {e}; trying umount -l",
                    self.mnt.display()
                );
            }
            if r.is_err() && umount2(&self.mnt, libc::MNT_DETACH).is_err() {
                let _ = run_with_timeout(
                    Command::new("fusermount3").arg("-uz").arg(&self.mnt),
                    Duration::from_secs(10),
                );
            }
        }
        if self.child.is_some() && self.wait_exit(DROP_EXIT_TIMEOUT).is_none() {
            let pid = self.child.as_ref().map_or(0, Child::id);
            eprintln!("teardown: daemon pid {pid} did not exit after unmount; SIGKILL");
            if let Some(child) = self.child.as_mut() {
                let _ = child.kill();
            }
            // A daemon thread waiting in the kernel for a request only it could serve
            // (one it sent to its own mount) outlives SIGKILL (`exit_within`).
            if self.wait_exit(DROP_EXIT_TIMEOUT).is_none() {
                eprintln!("teardown: daemon pid {pid} cannot be reaped; left behind");
                self.reaped();
            }
        }
        if self.is_mounted() {
            unmount_dead(&self.mnt);
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.watchdog.take();
        self.teardown();
        if thread::panicking() {
            eprintln!(
                "---- daemon log ({}) ----\n{}\n---- end of daemon log ----",
                self.log_path.display(),
                tail(&self.log(), 80)
            );
        }
        if self.is_mounted() {
            // Never let TempDir's recursive delete walk into a live mount.
            eprintln!(
                "teardown: {} is still mounted; leaving {} behind",
                self.mnt.display(),
                self.base.display()
            );
            if let Some(t) = self.tmp.take() {
                let _ = t.keep();
            }
        } else if std::env::var_os("ISLABDB_TEST_KEEP").is_some()
            && let Some(t) = self.tmp.take()
        {
            eprintln!("ISLABDB_TEST_KEEP: keeping {}", t.keep().display());
        }
    }
}

/// Unmounts a mount whose daemon is gone (or going): plain umount, then
/// lazy, then fusermount3 -uz.
/// The processes with a descriptor or working directory below `mnt` (from /proc).
pub fn holders(mnt: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for p in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let links = fs::read_dir(p.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|fd| fd.path())
            .chain([p.path().join("cwd")]);
        for l in links {
            if fs::read_link(&l).is_ok_and(|t| t.starts_with(mnt)) {
                let cmd = fs::read_to_string(p.path().join("cmdline")).unwrap_or_default();
                out.push(format!(
                    "{pid} {}: {}",
                    cmd.replace('\0', " ").trim(),
                    l.display()
                ));
            }
        }
    }
    out
}

pub fn unmount_dead(mnt: &Path) {
    for _ in 0..50 {
        if !is_mountpoint(mnt) || umount2(mnt, 0).is_ok() {
            return;
        }
        // EBUSY while some thread still holds an fd into it; retry briefly.
        thread::sleep(Duration::from_millis(20));
    }
    if umount2(mnt, libc::MNT_DETACH).is_ok() || !is_mountpoint(mnt) {
        return;
    }
    let _ = run_with_timeout(
        Command::new("fusermount3").arg("-uz").arg(mnt),
        Duration::from_secs(10),
    );
}

/// umount2(2) directly: unlike umount(8) it does not stat the target first,
/// so it cannot hang on a wedged daemon.
pub fn umount2(mnt: &Path, flags: i32) -> io::Result<()> {
    let c = cstr(mnt);
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether `path` is the mount point of a FUSE mount, per /proc/self/mountinfo
/// (reading it never touches the FUSE daemon, so it cannot hang).
pub fn is_mountpoint(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let want = path.to_str().expect("utf-8 path");
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let fstype = line
            .split(" - ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap_or("");
        fields.len() > 4 && unescape_mountinfo(fields[4]) == want && fstype.starts_with("fuse")
    })
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

// ---------------------------------------------------------------- tools

/// Waits up to `timeout` for `child` to exit; `None` if it is still running. Never blocks
/// in wait(2): a process waiting in the kernel on a wedged mount may outlive even SIGKILL,
/// and a blocking wait would hang the suite instead of failing the test.
pub fn exit_within(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `c`, killing it after `timeout`. Returns its output.
pub fn run_with_timeout(c: &mut Command, timeout: Duration) -> io::Result<Output> {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let Some(status) = exit_within(&mut child, timeout)? else {
        let _ = child.kill();
        let _ = exit_within(&mut child, timeout);
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("killed after {timeout:?}"),
        ));
    };
    Ok(Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    })
}

fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    if let Some(d) = c.get_current_dir() {
        s = format!("(cd {} && {s})", d.display());
    }
    s
}

/// Runs a command (with [`TOOL_TIMEOUT`]) and returns its output whatever its
/// exit status. Panics only if it cannot be run at all or times out.
#[track_caller]
pub fn output_of(c: &mut Command) -> Output {
    match run_with_timeout(c, TOOL_TIMEOUT) {
        Ok(o) => o,
        Err(e) => panic!("`{}`: {e}", describe(c)),
    }
}

/// Runs a command and panics, with its stdout and stderr, unless it exits 0.
#[track_caller]
pub fn run_cmd(c: &mut Command) -> Output {
    let o = output_of(c);
    if !o.status.success() {
        panic!(
            "`{}` failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            describe(c),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    o
}

/// `run("cat", &[path])`: runs a tool, panics unless it exits 0.
#[track_caller]
pub fn run<S: AsRef<OsStr>>(cmd: &str, args: &[S]) -> Output {
    run_cmd(Command::new(cmd).args(args))
}

/// Like [`run`] with a working directory.
#[track_caller]
pub fn run_in<S: AsRef<OsStr>>(dir: &Path, cmd: &str, args: &[S]) -> Output {
    run_cmd(Command::new(cmd).args(args).current_dir(dir))
}

/// `sh -c script`, panics unless it exits 0; returns stdout as a String.
#[track_caller]
pub fn sh(script: &str) -> String {
    stdout(&run("sh", &["-c", script]))
}

/// `sh -c script` (dash on Debian) whatever its exit status.
#[track_caller]
pub fn sh_output(script: &str) -> Output {
    output_of(Command::new("sh").arg("-c").arg(script))
}

/// `bash -c script` whatever its exit status. Dash reports every failed write of a
/// builtin as "I/O error"; bash names the errno, so tests that check the message use it.
#[track_caller]
pub fn bash_output(script: &str) -> Output {
    output_of(Command::new("bash").arg("-c").arg(script))
}

/// Whether a failed `mv` reports EINVAL: from a copy (across filesystems) as "Invalid
/// argument", from rename(2) as "cannot move ... to a subdirectory of itself" (what
/// EINVAL means for rename(2) on a native filesystem).
pub fn mv_says_einval(o: &Output) -> bool {
    let e = stderr(o);
    !o.status.success() && (e.contains("Invalid argument") || e.contains("subdirectory of itself"))
}

/// `s` as one single-quoted shell word.
pub fn shq(s: impl AsRef<OsStr>) -> String {
    let s = s.as_ref().to_str().expect("utf-8 shell word");
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `vim -es` with `-u NONE`, a private HOME (no user vimrc or viminfo) and a dumb
/// terminal, run in `dir` on `file`; each of `cmds` is one `-c` command.
pub fn vim(dir: &Path, home: &Path, cmds: &[&str], file: &str) -> Output {
    let mut c = Command::new("vim");
    c.current_dir(dir)
        .env("HOME", home)
        .env("TERM", "dumb")
        .args(["-u", "NONE", "-i", "NONE", "-es"]);
    for cmd in cmds {
        c.arg("-c").arg(cmd);
    }
    c.arg(file);
    output_of(&mut c)
}

/// Sets the mtime (and atime) of `path`, not following a symlink, with `touch -h -d`;
/// `date` is anything `touch -d` takes, read in UTC (`@SECS` too).
#[track_caller]
pub fn set_mtime(path: &Path, date: &str) {
    run_cmd(
        Command::new("touch")
            .env("TZ", "UTC")
            .args(["-h", "-d", date])
            .arg(path),
    );
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A command run as uid/gid `id` with no supplementary groups.
pub fn as_user(id: u32, cmd: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={id}"))
        .arg(format!("--regid={id}"))
        .arg("--clear-groups")
        .arg(cmd);
    c
}

// ---------------------------------------------------------------- errno checks

pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EACCES => "EACCES",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENODATA => "ENODATA",
        libc::ENOTSUP => "ENOTSUP",
        libc::ENOTCONN => "ENOTCONN",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// Asserts that `r` failed with one of `want` errnos.
#[track_caller]
pub fn expect_errno<T: std::fmt::Debug>(r: io::Result<T>, want: &[i32], what: &str) {
    let names: Vec<String> = want.iter().map(|&e| errno_name(e)).collect();
    match r {
        Ok(v) => panic!("{what}: expected {names:?}, but it succeeded ({v:?})"),
        Err(e) => {
            let got = e.raw_os_error().unwrap_or(-1);
            assert!(
                want.contains(&got),
                "{what}: expected {names:?}, got {} ({e})",
                errno_name(got)
            );
        }
    }
}

pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// open(2) with explicit flags; returns a `File` that owns the fd.
pub fn open_raw(path: &Path, flags: i32, mode: u32) -> io::Result<File> {
    let c = cstr(path);
    let fd = cvt(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) })?;
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// close(2) that reports its error (dropping a `File` ignores it).
pub fn close_file(f: File) -> io::Result<()> {
    let fd: RawFd = f.into_raw_fd();
    cvt(unsafe { libc::close(fd) }).map(|_| ())
}

/// fsync(2) on a file, errno preserved.
pub fn fsync_file(f: &File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    cvt(unsafe { libc::fsync(f.as_raw_fd()) }).map(|_| ())
}

/// Creates/truncates `path`, writes `data`, and closes with error checking.
pub fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(data)?;
    close_file(f)
}

/// [`write_file`] that panics with context.
#[track_caller]
pub fn put(path: &Path, data: &[u8]) {
    if let Err(e) = write_file(path, data) {
        panic!("write {}: {e}", path.display());
    }
}

/// `fs::read` that panics with context.
#[track_caller]
pub fn get(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[track_caller]
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = get(path);
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{} is not valid JSON ({e}):\n{}",
            path.display(),
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Waits until `pred` holds of the JSON at `path` (up to `secs` seconds), reading it
/// again every 200 ms; returns it. Panics with `what` and the last reading.
#[track_caller]
pub fn wait_json(
    path: &Path,
    secs: u64,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = read_json(path);
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        thread::sleep(Duration::from_millis(200));
    }
}

/// Edits the JSON file at `path` (a configuration file): each field of `changes`
/// replaces the file's, except that an object merges into the object there, one level
/// down. Panics unless the edit is accepted.
#[track_caller]
pub fn edit_json(path: &Path, changes: serde_json::Value) {
    let mut s = read_json(path);
    for (k, v) in changes.as_object().expect("changes are an object") {
        if let (Some(inner), Some(obj)) = (s.get_mut(k), v.as_object()) {
            for (ik, iv) in obj {
                inner[ik] = iv.clone();
            }
        } else {
            s[k] = v.clone();
        }
    }
    write_file(path, s.to_string().as_bytes()).expect("a valid edit");
}

/// Names in a directory via read_dir (panics on error).
#[track_caller]
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8 name")
        })
        .collect();
    v.sort();
    v
}

/// What [`assert_same_tree`] compares of one entry (found with `symlink_metadata`).
#[derive(Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// 'f' file, 'd' directory, 'l' symlink, 'p' FIFO, 's' socket, 'c'/'b' device.
    pub kind: char,
    /// A device's number.
    pub rdev: u64,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    /// Of files and symlinks (a directory's size depends on the filesystem).
    pub size: Option<u64>,
    /// Seconds: tar keeps only those.
    pub mtime: i64,
    pub target: Option<PathBuf>,
    /// The file's other names in the tree (hard links), relative like the key.
    pub same_file: Vec<PathBuf>,
}

/// Every entry below `root` (not `root` itself), by path relative to it; symlinks are
/// not followed.
#[track_caller]
pub fn tree_entries(root: &Path) -> BTreeMap<PathBuf, TreeEntry> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let dir = root.join(&rel);
        let rd = fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
        for e in rd {
            let e = e.unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
            let rel = rel.join(e.file_name());
            let p = root.join(&rel);
            let md =
                fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
            let ft = md.file_type();
            let kind = if ft.is_symlink() {
                'l'
            } else if ft.is_dir() {
                'd'
            } else if ft.is_file() {
                'f'
            } else if ft.is_fifo() {
                'p'
            } else if ft.is_socket() {
                's'
            } else if ft.is_char_device() {
                'c'
            } else {
                'b'
            };
            if kind == 'd' {
                todo.push(rel.clone());
            } else {
                inodes.entry(md.ino()).or_default().push(rel.clone());
            }
            let target = (kind == 'l').then(|| {
                fs::read_link(&p).unwrap_or_else(|e| panic!("readlink {}: {e}", p.display()))
            });
            out.insert(
                rel,
                TreeEntry {
                    kind,
                    rdev: md.rdev(),
                    perm: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    size: (kind != 'd').then_some(md.len()),
                    mtime: md.mtime(),
                    target,
                    same_file: Vec::new(),
                },
            );
        }
    }
    for names in inodes.values().filter(|n| n.len() > 1) {
        for name in names {
            if let Some(e) = out.get_mut(name) {
                e.same_file = names.iter().filter(|n| *n != name).cloned().collect();
                e.same_file.sort();
            }
        }
    }
    out
}

/// The trees below `a` and `b` are the same: `diff -r` (symlinks compared as links)
/// finds no difference, and every entry has the same relative path, type, permission
/// bits, owner, group, size, mtime (seconds), symlink target, device number and other
/// names in the tree (hard links). The roots themselves are not compared.
#[track_caller]
pub fn assert_same_tree(a: &Path, b: &Path, what: &str) {
    let o = output_of(
        Command::new("diff")
            .args(["-r", "--no-dereference"])
            .arg(a)
            .arg(b),
    );
    // diff cannot compare special files: it names each pair of the same kind ("File x is
    // a fifo while file y is a fifo"); the walk below compares their kinds and numbers.
    let same_kind = |l: &&str| {
        l.split_once(" while file ").is_some_and(|(x, y)| {
            x.starts_with("File ")
                && x.rsplit_once(" is a ").map(|(_, k)| k)
                    == y.rsplit_once(" is a ").map(|(_, k)| k)
        })
    };
    let out = stdout(&o);
    let differ: Vec<&str> = out.lines().filter(|l| !same_kind(l)).collect();
    assert!(
        o.status.code().is_some_and(|c| c <= 1) && differ.is_empty() && o.stderr.is_empty(),
        "{what}: diff -r {} {} ({}):\n{}{}",
        a.display(),
        b.display(),
        o.status,
        differ.join("\n"),
        stderr(&o)
    );
    let (x, y) = (tree_entries(a), tree_entries(b));
    let only = |p: &BTreeMap<PathBuf, TreeEntry>, q: &BTreeMap<PathBuf, TreeEntry>| {
        p.keys()
            .filter(|k| !q.contains_key(*k))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (only_a, only_b) = (only(&x, &y), only(&y, &x));
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "{what}: only in {}: {only_a:?}; only in {}: {only_b:?}",
        a.display(),
        b.display()
    );
    let differ: Vec<String> = x
        .iter()
        .filter(|(k, v)| y[*k] != **v)
        .map(|(k, v)| format!("{}:\n  {v:?}\n  {:?}", k.display(), y[k]))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} entries differ between {} and {}:\n{}",
        differ.len(),
        a.display(),
        b.display(),
        differ.join("\n")
    );
}

/// Checks the shape of an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|x| x.iter().all(u8::is_ascii_digit))
    };
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap();
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !(b[10] == b'T' || b[10] == b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &s[i..] {
        "Z" | "z" => true,
        rest => {
            let r = rest.as_bytes();
            r.len() == 6
                && (r[0] == b'+' || r[0] == b'-')
                && r[1..3].iter().all(u8::is_ascii_digit)
                && r[3] == b':'
                && r[4..6].iter().all(u8::is_ascii_digit)
        }
    }
}

// ---------------------------------------------------------------- data

/// Deterministic pseudo-random bytes (xorshift64*), the same for the same
/// (seed, offset): block `n` of a big file is `pattern(seed, n * len, len)`.
pub fn pattern(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    assert_eq!(offset % 8, 0, "pattern offsets are multiples of 8");
    let mut out = Vec::with_capacity(len + 8);
    let mut word = offset / 8;
    while out.len() < len {
        let mut x =
            (seed ^ 0x9E37_79B9_7F4A_7C15).wrapping_add(word.wrapping_mul(0xD1B5_4A32_D192_ED03));
        x ^= x >> 30;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        out.extend_from_slice(&x.to_le_bytes());
        word += 1;
    }
    out.truncate(len);
    out
}

/// A valid JSON record of exactly `len` bytes (len >= 32) that encodes `tag`.
pub fn json_record(tag: &str, len: usize) -> Vec<u8> {
    let head = format!("{{\"key\":\"{tag}\",\"pad\":\"");
    let tail = "\"}\n";
    assert!(
        len >= head.len() + tail.len(),
        "record too short for tag {tag}"
    );
    let fill = len - head.len() - tail.len();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let seed = tag
        .bytes()
        .fold(7u64, |h, c| h.wrapping_mul(31).wrapping_add(c as u64));
    let mut v = head.into_bytes();
    v.extend(
        pattern(seed, 0, fill)
            .iter()
            .map(|b| alphabet[*b as usize % alphabet.len()]),
    );
    v.extend_from_slice(tail.as_bytes());
    debug_assert_eq!(v.len(), len);
    v
}

/// VmHWM (peak RSS) of a process in bytes.
pub fn vm_hwm(pid: u32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

// ---------------------------------------------------------------- xattrs

pub fn setxattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let (c, n) = (cstr(p), CString::new(name).unwrap());
    cvt(unsafe {
        libc::setxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(|_| ())
}

pub fn getxattr(p: &Path, name: &str) -> io::Result<Vec<u8>> {
    let (c, n) = (cstr(p), CString::new(name).unwrap());
    let mut buf = vec![0u8; 65536];
    let r = unsafe { libc::getxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

pub fn listxattr(p: &Path) -> io::Result<Vec<String>> {
    let c = cstr(p);
    let mut buf = vec![0u8; 65536];
    let r = unsafe { libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

pub fn removexattr(p: &Path, name: &str) -> io::Result<()> {
    let (c, n) = (cstr(p), CString::new(name).unwrap());
    cvt(unsafe { libc::removexattr(c.as_ptr(), n.as_ptr()) }).map(|_| ())
}
