//! Starting, watching and stopping the `islabdb` daemon. [`Daemon`] is a
//! guard: dropping it (on success, error or panic) unmounts the universe and
//! makes sure the daemon process is gone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::error::{Context, Error, Result};
use crate::sys;

impl DaemonOpts {
    /// The CPUs the daemon runs on.
    pub fn cpus(&self) -> Vec<usize> {
        match self.cpu {
            Some(c) => vec![c],
            None => (0..sys::online_cpus()).collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DaemonOpts {
    pub path: PathBuf,
    pub cache_mb: u64,
    pub threads: Option<u32>,
    /// Pin the daemon to this CPU; `None` lets it run on every online CPU
    /// (and not inherit the client's pinning).
    pub cpu: Option<usize>,
    /// Pass `--no-follow`: the daemon's request threads stay where the scheduler puts them.
    pub no_follow: bool,
    /// Pass `--no-statistics`: the daemon keeps no statistics of requests.
    pub no_statistics: bool,
}

pub struct Daemon {
    child: Option<Child>,
    pid: u32,
    mnt: PathBuf,
    log: PathBuf,
}

/// How a stop went.
#[derive(Debug)]
pub struct Stopped {
    /// From the unmount request until the process exited (flush and checkpoint).
    pub shutdown: Duration,
}

impl Daemon {
    /// Spawns `islabdb mount` and waits until `mnt` is a different device
    /// from its parent. Returns the guard and the time it took to be ready.
    pub fn start(
        opts: &DaemonOpts,
        data: &Path,
        mnt: &Path,
        log: &Path,
        ready_timeout: Duration,
    ) -> Result<(Daemon, Duration)> {
        let mut cmd = Command::new(&opts.path);
        cmd.arg("mount")
            .arg("--cache-mb")
            .arg(opts.cache_mb.to_string());
        if let Some(t) = opts.threads {
            cmd.arg("--threads").arg(t.to_string());
        }
        if opts.no_follow {
            cmd.arg("--no-follow");
        }
        if opts.no_statistics {
            cmd.arg("--no-statistics");
        }
        cmd.arg(data).arg(mnt);
        Daemon::spawn(cmd, opts.cpus(), mnt, log, ready_timeout)
    }

    /// Spawns `cmd`, a FUSE daemon that mounts `mnt` and stays in the foreground, on
    /// `cpus`, its output in `log`, and waits until `mnt` is a different device from its
    /// parent. Returns the guard and the time it took to be ready.
    pub fn spawn(
        mut cmd: Command,
        cpus: Vec<usize>,
        mnt: &Path,
        log: &Path,
        ready_timeout: Duration,
    ) -> Result<(Daemon, Duration)> {
        if sys::is_mounted(mnt) {
            return Err(Error::msg(format!(
                "{} is already a mount point; unmount it first",
                mnt.display()
            )));
        }
        let parent = mnt
            .parent()
            .ok_or_else(|| Error::msg(format!("{} has no parent", mnt.display())))?;
        let parent_dev = sys::st_dev(parent).ctx(|| format!("stat {}", parent.display()))?;

        sys::output_to(&mut cmd, log)?;
        // Its own process group keeps a terminal's Ctrl-C away from the daemon
        // (the bench's guard stops it in order).
        sys::own_group(&mut cmd, cpus);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .ctx(|| format!("start {:?}", cmd.get_program()))?;
        let mut daemon = Daemon {
            pid: child.id(),
            child: Some(child),
            mnt: mnt.to_path_buf(),
            log: log.to_path_buf(),
        };
        loop {
            sys::check_interrupt()?;
            if let Some(child) = daemon.child.as_mut()
                && let Some(status) = child.try_wait().ctx(|| "wait for daemon")?
            {
                daemon.child = None;
                return Err(Error::msg(format!(
                    "daemon exited before the mount was ready ({status}); last log lines:\n{}",
                    daemon.log_tail(20)
                )));
            }
            if let Ok(dev) = sys::st_dev(mnt)
                && dev != parent_dev
            {
                return Ok((daemon, started.elapsed()));
            }
            if started.elapsed() > ready_timeout {
                let tail = daemon.log_tail(20);
                drop(daemon);
                return Err(Error::msg(format!(
                    "mount {} not ready after {:.0?}; last daemon log lines:\n{tail}",
                    mnt.display(),
                    ready_timeout
                )));
            }
            sleep(Duration::from_millis(5));
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn status(&self) -> Result<sys::ProcStatus> {
        sys::proc_status(self.pid).ctx(|| format!("read /proc/{}/status of the daemon", self.pid))
    }

    /// Fails if the daemon process has exited on its own.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait().ctx(|| "wait for daemon")?
        {
            self.child = None;
            return Err(Error::msg(format!(
                "the daemon died during the benchmark ({status}); last log lines:\n{}",
                self.log_tail(20)
            )));
        }
        Ok(())
    }

    pub fn log_tail(&self, n: usize) -> String {
        match std::fs::read_to_string(&self.log) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(n);
                lines[start..].join("\n")
            }
            Err(e) => format!("(cannot read {}: {e})", self.log.display()),
        }
    }

    /// Unmounts, waits for the daemon to exit on its own (it checkpoints
    /// first), and escalates to SIGTERM and SIGKILL if it does not.
    pub fn stop(&mut self, exit_timeout: Duration) -> Result<Stopped> {
        let t0 = Instant::now();
        let mut problems = Vec::new();
        if sys::is_mounted(&self.mnt) {
            let mut tries = 0;
            loop {
                match sys::umount(&self.mnt, false) {
                    Ok(()) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                        tries += 1;
                        sleep(Duration::from_millis(100));
                    }
                    Err(e) => {
                        problems.push(format!("umount {}: {e}; detaching", self.mnt.display()));
                        if let Err(e) = sys::umount(&self.mnt, true) {
                            problems.push(format!("umount -l {}: {e}", self.mnt.display()));
                        }
                        break;
                    }
                }
            }
        }
        let mut how = "exited";
        let mut status = None;
        if let Some(mut child) = self.child.take() {
            status = wait_timeout(&mut child, exit_timeout);
            if status.is_none() {
                problems.push(format!(
                    "daemon did not exit {exit_timeout:.0?} after unmount; sending SIGTERM"
                ));
                how = "SIGTERM";
                // SAFETY: plain kill(2) on our own child's pid.
                unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
                status = wait_timeout(&mut child, Duration::from_secs(10));
            }
            if status.is_none() {
                how = "SIGKILL";
                let _ = child.kill();
                status = child.wait().ok();
            }
        }
        if sys::is_mounted(&self.mnt)
            && let Err(e) = sys::umount(&self.mnt, true)
        {
            problems.push(format!("mount {} still present: {e}", self.mnt.display()));
        }
        let shutdown = t0.elapsed();
        let ok_exit = status.is_some_and(|s| s.success());
        if problems.is_empty() && ok_exit {
            Ok(Stopped { shutdown })
        } else {
            if !ok_exit {
                problems.push(format!(
                    "daemon ended by {how} with {}",
                    status.map_or("unknown status".into(), |s| s.to_string())
                ));
            }
            Err(Error::msg(format!(
                "stopping the daemon: {}; last log lines:\n{}",
                problems.join("; "),
                self.log_tail(10)
            )))
        }
    }
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(_) => return None,
        }
        if t0.elapsed() > timeout {
            return None;
        }
        sleep(Duration::from_millis(10));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_none() && !sys::is_mounted(&self.mnt) {
            return;
        }
        if let Err(e) = self.stop(Duration::from_secs(60)) {
            eprintln!("islabdb-bench: while cleaning up: {e}");
        }
    }
}
