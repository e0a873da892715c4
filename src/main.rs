//! `islabdb`: mounts a universe. Parses the command line, opens the engine, mounts, waits
//! for the mount to end (umount or SIGINT/SIGTERM), then makes everything durable.

mod audit;
mod backup_cli;
mod engine;
mod error;
mod events;
mod fuse;
mod identity;
mod logbook;
mod memory;
mod metrics;
mod namespace;
mod periodic;
mod placement;
mod query_cli;
mod regions;
mod rng;
mod status;
mod vfs;
mod waiting;

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::engine::disk::{self, Faults};
use crate::engine::{Engine, Settings};

/// jemalloc: memory freed by one request thread goes back to the system rather than
/// staying in that thread's glibc arena (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "islabdb",
    version,
    about = "IsLab DB: a database whose interface is a filesystem"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mount the universe stored in DATA_DIR at MOUNTPOINT and serve it in the foreground
    /// until it is unmounted (`umount MOUNTPOINT`) or the daemon gets SIGINT/SIGTERM; both
    /// flush, checkpoint and exit 0. An empty DATA_DIR is bootstrapped with the seed's
    /// hierarchy; an existing one is recovered (checkpoint + log replay).
    Mount(MountArgs),
    /// Ask the universe mounted at MOUNTPOINT a QQL query (see QQL.md) and print the
    /// answer: the same as writing it to MOUNTPOINT/qql/ask (or `ask.jsonl`, `ask.csv`)
    /// and reading the answer back from the same handle. A query in error prints its
    /// position and problem and exits 1.
    Query {
        /// Where the universe is mounted.
        mountpoint: PathBuf,
        /// The query, e.g. `FROM spacetime/*/particles/users WHERE .age >= 30`.
        query: String,
        #[arg(long, value_enum, default_value = "json")]
        format: query_cli::Format,
    },
    /// Run the temporal region's maintenance now on the universe mounted at MOUNTPOINT
    /// (roll live hours into recent days, days into historical months, merge late events,
    /// apply the retention) and print its report. The same as `echo run >
    /// MOUNTPOINT/temporal/maintain`.
    Maintain {
        /// Where the universe is mounted.
        mountpoint: PathBuf,
    },
    /// Print a short summary of the universe mounted at MOUNTPOINT: health, alerts,
    /// request rates and latencies, cache, log, tiers, the daemon's memory and CPU (read
    /// from its `observatory/` files).
    Status {
        /// Where the universe is mounted.
        mountpoint: PathBuf,
    },
    /// Print an hour's `metrics.erl` (a compact binary form, see FORMAT.md) as JSON.
    Metrics {
        /// A `temporal/live/<hour>/metrics.erl`, or a copy of one.
        file: PathBuf,
    },
    /// Print a routing table (`wormholes/routing_tables/*.routes`: what the tiering policy
    /// would move next, see FORMAT.md) as JSON.
    Routes {
        /// A `.routes` file, or a copy of one.
        file: PathBuf,
    },
    /// Print `entropy/vacuum_stability.metrics` (the tiers' balance in binary, see
    /// FORMAT.md) as JSON.
    Vacuum {
        /// A `vacuum_stability.metrics`, or a copy of one.
        file: PathBuf,
    },
    /// Print `quantum_graph/entanglements/strong_correlations.erl` (the graph's entangled
    /// pairs in binary, see FORMAT.md) as JSON.
    Correlations {
        /// A `strong_correlations.erl`, or a copy of one.
        file: PathBuf,
    },
    /// Print a compiled query (`qql/compiled_queries/hash_<h>.erl`, see FORMAT.md) as
    /// JSON: its text, parsed form, plan and compile time.
    Compiled {
        /// A `hash_<h>.erl`, or a copy of one.
        file: PathBuf,
    },
    /// Snapshots of a mounted universe: create, list, remove.
    #[command(subcommand)]
    Snapshot(backup_cli::Snapshot),
    /// Rebuild a universe in NEW_DATA_DIR (new or empty) from a backup (a snapshot's
    /// directory, a copy of it, or its `universe.tar.gz`), then apply incremental backups
    /// in order (`backups/snapshots/incremental/<name>/` or copies of them). Every backup
    /// is checked whole first (every file against `verification.md5` when it is beside
    /// the archive, the archives' own checksums, the incrementals' order); a damaged or
    /// misordered set is refused and nothing is written.
    #[command(verbatim_doc_comment)]
    Restore {
        /// BACKUP [INCREMENTAL...] NEW_DATA_DIR
        #[arg(num_args = 2.., required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Check a data directory (not in use by a daemon) whole: every checkpoint and log
    /// frame, every file's content and every snapshot's read back. Exits 1 and lists what
    /// is wrong if anything is.
    Verify { data_dir: PathBuf },
    /// Print `qql/schema/validation_rules.erl` (the compiled schemas, see FORMAT.md) as
    /// JSON.
    Rules {
        /// A `validation_rules.erl`, or a copy of one.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct MountArgs {
    /// Directory holding the universe's log, shards and checkpoints (created if missing).
    data_dir: PathBuf,
    /// Empty directory to mount the universe on.
    mountpoint: PathBuf,
    /// Content cache budget in MiB; written into `configuration/universe_parameters.json`
    /// (which then says what runs; later edits of the file change it live).
    #[arg(long, value_name = "MIB")]
    cache_mb: Option<u64>,
    /// Threads serving kernel requests.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Serve only the mounting user, even when run as root (by default root's mount
    /// serves every user, with permissions enforced as on any filesystem).
    #[arg(long)]
    private: bool,
    /// Leave the request threads wherever the scheduler puts them (by default each one
    /// moves to the CPU its callers run on, which makes a round trip several times faster
    /// on small VMs; `taskset` still bounds the CPUs used).
    #[arg(long)]
    no_follow: bool,
    /// Serve every request through /dev/fuse even when the kernel offers FUSE over
    /// io_uring (a queue per CPU; root turns it on with
    /// `echo 1 > /sys/module/fuse/parameters/enable_uring`).
    #[arg(long)]
    no_ring: bool,
    /// Keep no statistics of requests: no latency histograms, no learning which records
    /// are read together. For measuring what they cost (`scripts/bench
    /// --statistics-cost`); the observatory's files then show zeros for them.
    #[arg(long)]
    no_statistics: bool,
}

fn main() -> ExitCode {
    logbook::install();
    let cli = Cli::parse();
    match cli.command {
        Command::Mount(args) => match mount(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
                eprintln!("islabdb: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Status { mountpoint } => match status::summary(&mountpoint) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("islabdb: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Metrics { file } => print_decoded(metrics(&file)),
        Command::Routes { file } => print_decoded(decoded(&file, |b| {
            regions::wormholes::routes::Routes::decode(b).map(|r| r.json())
        })),
        Command::Vacuum { file } => print_decoded(decoded(&file, |b| {
            regions::entropy::vacuum::Vacuum::decode(b).map(|v| v.json())
        })),
        Command::Correlations { file } => {
            print_decoded(decoded(&file, regions::graph::correlations_json))
        }
        Command::Compiled { file } => print_decoded(decoded(&file, regions::qql::compiled::json)),
        Command::Rules { file } => {
            print_decoded(decoded(&file, regions::qql::schema::rules_file::rules_json))
        }
        Command::Query {
            mountpoint,
            query,
            format,
        } => match query_cli::ask(&mountpoint, &query, format) {
            Ok(answer) => {
                use std::io::Write;
                match std::io::stdout().write_all(&answer) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("islabdb: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(e) => {
                eprintln!("islabdb: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Snapshot(cmd) => print_decoded(backup_cli::snapshot(cmd)),
        Command::Restore { paths } => print_decoded(backup_cli::restore(&paths)),
        Command::Verify { data_dir } => print_decoded(backup_cli::verify(&data_dir)),
        Command::Maintain { mountpoint } => match maintain(&mountpoint) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("islabdb: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Prints what a decoding command made of its file.
fn print_decoded(text: Result<String, String>) -> ExitCode {
    match text {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("islabdb: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A binary file of the universe as pretty JSON, by `decode`.
fn decoded(
    file: &Path,
    decode: fn(&[u8]) -> error::Result<serde_json::Value>,
) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let doc = decode(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())
}

/// An hour's counters, decoded from their binary form.
fn metrics(file: &Path) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let c = regions::temporal::metrics::Counters::decode(&bytes)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let ts = |t: Option<i64>| t.map(regions::temporal::time::format_rfc3339);
    let doc = serde_json::json!({
        "count": c.count,
        "first": ts(c.first),
        "last": ts(c.last),
        "by_type": c.by_type,
    });
    serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())
}

/// Runs maintenance through the mount's control file; returns the newest run's report.
fn maintain(mountpoint: &Path) -> Result<String, String> {
    use std::io::Write;
    let control = mountpoint
        .join("temporal")
        .join(regions::temporal::MAINTAIN);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&control)
        .map_err(|e| format!("{}: {e} (is a universe mounted there?)", control.display()))?;
    f.write_all(b"run\n")
        .map_err(|e| format!("maintenance failed: {e} (the daemon's log says which step)"))?;
    drop(f);
    let text = std::fs::read(&control).map_err(|e| format!("{}: {e}", control.display()))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", control.display()))?;
    let newest = doc.get("runs").and_then(|r| r.get(0)).cloned();
    serde_json::to_string_pretty(&newest.unwrap_or(doc)).map_err(|e| e.to_string())
}

fn mount(args: &MountArgs) -> Result<(), String> {
    let (data_dir, mountpoint, threads) = (&args.data_dir, &args.mountpoint, args.threads);
    // Signals are taken by one thread with sigwait: block them before any thread starts so
    // that every thread inherits the mask.
    let signals = block_signals()?;
    clear_dead_mount(mountpoint);
    if !mountpoint.is_dir() {
        return Err(format!(
            "mountpoint {} is not a directory",
            mountpoint.display()
        ));
    }
    let opened = match injected_faults()? {
        Some(faults) => Engine::open_on(Arc::new(faults), data_dir, Settings::default()),
        None => Engine::open(data_dir, Settings::default()),
    };
    let engine = Arc::new(
        opened.map_err(|e| format!("cannot open universe in {}: {e}", data_dir.display()))?,
    );
    let c = engine.counters();
    events::record(
        "recovery",
        serde_json::json!({
            "result": "ok",
            "inodes": engine.inode_count(),
            "log_records_replayed": c.recovered_records,
            "micros": c.recovery_us,
        }),
    );
    let regions = regions::Regions::builtin(args.cache_mb)
        .map_err(|e| format!("cannot register the regions: {e}"))?;
    let mut vfs = vfs::Vfs::new(engine.clone(), regions, namespace::SEED)
        .map_err(|e| format!("cannot bootstrap universe: {e}"))?;
    if args.no_statistics {
        vfs = vfs.without_statistics();
    }
    let vfs = std::sync::Arc::new(vfs);
    engine
        .start()
        .map_err(|e| format!("cannot start engine threads: {e}"))?;
    let _governor = memory::govern(engine.clone())
        .map_err(|e| format!("cannot start the memory thread: {e}"))?;

    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName(format!("islabdb:{}", data_dir.display())),
        fuser::MountOption::Subtype("islabdb".into()),
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && !args.private {
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(threads as usize);
    config.clone_fd = true;
    placement::init(!args.no_follow);

    let (stale_tx, stale_rx) = std::sync::mpsc::channel();
    let handlers = Arc::new(fuse::Fuse::new(vfs.clone(), stale_tx, mountpoint));
    let ring_granted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kernel = fuse::kernel::Kernel::new(handlers.clone(), !args.no_ring, ring_granted.clone());
    let session = fuser::Session::new(kernel, mountpoint, &config);
    let session = match session {
        Ok(s) => s,
        // fuser mounts, then waits for the kernel's INIT; the device goes away before it
        // when the mount is unmounted at once. Nothing was served: an ordinary unmount.
        Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {
            log::info!(
                "{} was unmounted before the kernel's first request",
                mountpoint.display()
            );
            return close_universe(&vfs, &engine);
        }
        Err(e) => {
            let _ = engine.shutdown();
            return Err(format!("cannot mount on {}: {e}", mountpoint.display()));
        }
    };
    log::info!(
        "universe {} mounted on {} ({threads} threads)",
        data_dir.display(),
        mountpoint.display()
    );
    events::record(
        "mount",
        serde_json::json!({
            "data_dir": data_dir.display().to_string(),
            "mountpoint": mountpoint.display().to_string(),
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
        }),
    );
    // INIT was answered: if it granted the ring, its queues take over from here.
    let rings = if ring_granted.load(std::sync::atomic::Ordering::Acquire) {
        fuse::ring::start(handlers, session.as_fd())
            .inspect_err(|e| log::warn!("cannot serve FUSE over io_uring ({e}); serving /dev/fuse"))
            .ok()
    } else {
        None
    };
    let notifier = session.notifier();
    std::thread::Builder::new()
        .name("invalidator".into())
        .spawn(move || fuse::invalidator(|s| fuse::kernel::notify(&notifier, s), stale_rx))
        .map_err(|e| format!("cannot start invalidator thread: {e}"))?;
    let target = mountpoint.to_path_buf();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_and_unmount(signals, &target))
        .map_err(|e| format!("cannot start signal thread: {e}"))?;

    let ticker = {
        let vfs = vfs.clone();
        periodic::Periodic::start("regions", std::time::Duration::from_secs(1), move || {
            vfs.tick();
            true
        })
        .map_err(|e| format!("cannot start the regions' thread: {e}"))?
    };

    let served = session.run();
    if let Some(rings) = rings {
        rings.stop();
    }
    events::record(
        "unmount",
        serde_json::json!({"mountpoint": mountpoint.display().to_string()}),
    );
    drop(ticker);
    if let Err(e) = &served {
        log::error!("session ended with an error: {e}");
    }
    close_universe(&vfs, &engine)
}

/// After the mount went: the regions stop, then the engine writes its final checkpoint.
fn close_universe(vfs: &vfs::Vfs, engine: &Engine) -> Result<(), String> {
    vfs.stop();
    engine
        .shutdown()
        .map_err(|e| format!("final checkpoint failed: {e}"))?;
    log::info!("unmounted; everything is durable");
    Ok(())
}

/// The real disk failing as `ISLABDB_FAULTS` says, if it is set (a test hook: see README).
fn injected_faults() -> Result<Option<Faults>, String> {
    let Ok(spec) = std::env::var("ISLABDB_FAULTS") else {
        return Ok(None);
    };
    let faults = Faults::new(disk::real(), &spec).map_err(|e| format!("ISLABDB_FAULTS: {e}"))?;
    log::warn!("test hook ISLABDB_FAULTS={spec}: the data disk will fail as it says");
    Ok(Some(faults))
}

fn block_signals() -> Result<libc::sigset_t, String> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; the calls only
    // read and write the set we own and the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err("cannot block signals".into());
        }
        Ok(set)
    }
}

fn wait_and_unmount(set: libc::sigset_t, mountpoint: &Path) {
    let mut sig = 0;
    // SAFETY: `set` is a valid signal set and `sig` a valid out-pointer.
    if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
        log::error!("sigwait failed; signals will not unmount");
        return;
    }
    log::info!("signal {sig}: unmounting {}", mountpoint.display());
    let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `path` is a valid NUL-terminated string.
    if unsafe { libc::umount2(path.as_ptr(), 0) } != 0 {
        // Busy: detach now; the kernel ends the session when the last open file closes.
        log::warn!("mount is busy; detaching it (served until the last open file closes)");
        // SAFETY: as above.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A daemon killed with SIGKILL leaves its mount behind ("transport endpoint is not
/// connected"); detach it so the universe can be mounted again at the same place.
fn clear_dead_mount(mountpoint: &Path) {
    if let Err(e) = std::fs::metadata(mountpoint)
        && e.raw_os_error() == Some(libc::ENOTCONN)
    {
        log::warn!("{} holds a dead mount; detaching it", mountpoint.display());
        if let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes()) {
            // SAFETY: `path` is a valid NUL-terminated string.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
