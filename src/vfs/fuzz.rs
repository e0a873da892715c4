//! Every path from user input, fuzzed: random sequences of the calls the kernel makes,
//! with names, offsets, sizes, flags and handles as a user (or a broken tool) can give
//! them, against a real universe. Each call answers a value or an errno; none panics,
//! and the universe reopens after any sequence.

use std::sync::Arc;

use proptest::prelude::*;

use super::{Caller, Changes, Vfs};
use crate::engine::tree::ROOT;
use crate::engine::{Engine, Settings};
use crate::error::Error;
use crate::namespace::SEED;
use crate::regions::Regions;

#[derive(Debug, Clone)]
enum Call {
    Make(usize, Vec<u8>, u32),
    Open(usize, i32),
    Write(usize, u64, Vec<u8>),
    Read(usize, u64, usize),
    Truncate(usize, Option<usize>, u64),
    Fallocate(usize, u64, u64, i32),
    Copy(usize, usize, u64),
    Close(usize),
    Fsync(usize),
    Release(usize),
    Rename(usize, Vec<u8>, usize, Vec<u8>, u32),
    Link(usize, usize, Vec<u8>),
    Unlink(usize, Vec<u8>, bool),
    Xattr(usize, Vec<u8>, Vec<u8>, i32),
    Readdir(usize, u64, usize),
    Lookup(usize, Vec<u8>),
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    let known = [
        "a.json",
        "b",
        "c.txt",
        ".",
        "..",
        "",
        "x/y",
        "nul\0byte",
        "_manifest.json",
        "universe_parameters.json",
        "shard.metadata",
        "users",
        "user.attr",
        "trusted.x",
    ];
    prop_oneof![
        3 => proptest::sample::select(known.to_vec()).prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(|mut n| {
            n.extend_from_slice(b".json");
            n
        }),
        1 => (250usize..260).prop_map(|n| vec![b'n'; n]),
    ]
}

/// Offsets the kernel passes on (at most `i64::MAX`, its largest file offset): small
/// ones, and ones about and past the largest file (`engine::MAX_FILE_SIZE`). The range
/// between is left out: a hole is stored as zeros, so a sparse file of up to the free disk
/// would be written whole.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..70_000,
        1 => (1u64 << 26)..(1 << 26) + 10,
        1 => (1u64 << 44) - 5..(1 << 44) + 5,
        1 => (1u64 << 45)..i64::MAX as u64,
        1 => Just(i64::MAX as u64),
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        Just(br#"{"k": [1, 2, {"x": null}]}"#.to_vec()),
        (0usize..3000).prop_map(|n| vec![b'['; n]),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    // Mostly the newest inodes and handles (index 0 is the newest).
    let i = || prop_oneof![3 => 0usize..2, 1 => 0usize..16];
    prop_oneof![
        (
            i(),
            name(),
            proptest::sample::select(vec![
                libc::S_IFREG | 0o644,
                libc::S_IFDIR | 0o755,
                libc::S_IFLNK | 0o777,
                libc::S_IFIFO | 0o600,
                libc::S_IFCHR | 0o600,
                0o7777,
            ])
        )
            .prop_map(|(d, n, m)| Call::Make(d, n, m)),
        (
            i(),
            proptest::sample::select(vec![
                libc::O_RDONLY,
                libc::O_WRONLY,
                libc::O_RDWR | libc::O_TRUNC,
                libc::O_WRONLY | libc::O_APPEND,
                -1,
            ])
        )
            .prop_map(|(f, fl)| Call::Open(f, fl)),
        (i(), offset(), bytes()).prop_map(|(h, o, b)| Call::Write(h, o, b)),
        (i(), offset(), 0usize..(1 << 20)).prop_map(|(h, o, n)| Call::Read(h, o, n)),
        (i(), proptest::option::of(i()), offset()).prop_map(|(f, h, s)| Call::Truncate(f, h, s)),
        (
            i(),
            offset(),
            offset(),
            proptest::sample::select(vec![
                0,
                libc::FALLOC_FL_KEEP_SIZE,
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                libc::FALLOC_FL_ZERO_RANGE,
                libc::FALLOC_FL_PUNCH_HOLE,
                -1,
            ])
        )
            .prop_map(|(h, o, l, m)| Call::Fallocate(h, o, l, m)),
        (i(), i(), offset()).prop_map(|(a, b, l)| Call::Copy(a, b, l)),
        i().prop_map(Call::Close),
        i().prop_map(Call::Fsync),
        i().prop_map(Call::Release),
        (
            i(),
            name(),
            i(),
            name(),
            proptest::sample::select(vec![
                0,
                libc::RENAME_NOREPLACE,
                libc::RENAME_EXCHANGE,
                libc::RENAME_WHITEOUT,
                u32::MAX,
            ])
        )
            .prop_map(|(a, n, b, m, f)| Call::Rename(a, n, b, m, f)),
        (i(), i(), name()).prop_map(|(f, d, n)| Call::Link(f, d, n)),
        (i(), name(), any::<bool>()).prop_map(|(d, n, r)| Call::Unlink(d, n, r)),
        (i(), name(), bytes(), -1i32..4).prop_map(|(f, n, v, fl)| Call::Xattr(f, n, v, fl)),
        (i(), any::<u64>(), 0usize..300).prop_map(|(d, o, m)| Call::Readdir(d, o, m)),
        (i(), name()).prop_map(|(d, n)| Call::Lookup(d, n)),
    ]
}

fn open(dir: &std::path::Path) -> Vfs {
    let settings = Settings {
        spill_at: 64 << 10,
        inline_max: 16 << 10,
        ..Settings::default()
    };
    let e = Arc::new(Engine::open(dir, settings).expect("engine"));
    Vfs::new(e, Regions::builtin(Some(8)).expect("regions"), SEED).expect("vfs")
}

/// Runs `calls`; directories, files and handles are picked by index from those seen so
/// far, newest first (seed directories, a generated file, numbers that name nothing).
fn run(v: &Vfs, calls: &[Call]) {
    let mut dirs: Vec<u64> = vec![ROOT, 1 << 63 | 7];
    for p in [
        "configuration",
        "entropy",
        "temporal/live",
        "spacetime/cold_data/particles",
        "spacetime/hot_data/particles/users",
    ] {
        dirs.extend(v.resolve(p));
    }
    let mut inos: Vec<u64> = vec![ROOT, 987_654_321];
    inos.extend(
        v.lookup(dirs[dirs.len() - 1], b"_manifest.json")
            .map(|a| a.ino),
    );
    let mut fhs: Vec<u64> = vec![0, u64::MAX];
    let pick = |list: &[u64], i: usize| list[list.len() - 1 - i % list.len()];
    // Two files open for writing to start from: an opaque one and a record.
    let start = [
        Call::Make(0, b"f.txt".to_vec(), libc::S_IFREG | 0o644),
        Call::Make(0, b"r.json".to_vec(), libc::S_IFREG | 0o644),
        Call::Open(1, libc::O_RDWR),
        Call::Open(0, libc::O_RDWR),
    ];
    for c in start.iter().chain(calls) {
        let res: Result<(), Error> = match c.clone() {
            Call::Make(d, n, mode) => {
                let d = pick(&dirs, d);
                match mode & libc::S_IFMT {
                    libc::S_IFDIR => v
                        .mkdir(d, &n, mode, 0o022, Caller::ROOT)
                        .map(|a| dirs.push(a.ino)),
                    libc::S_IFLNK => v
                        .symlink(d, &n, b"target", Caller::ROOT)
                        .map(|a| inos.push(a.ino)),
                    _ => v
                        .mknod(d, &n, (mode, 0o022), 0x0103, Caller::ROOT)
                        .map(|a| inos.push(a.ino)),
                }
            }
            Call::Open(f, flags) => v.open(pick(&inos, f), flags).map(|fh| fhs.push(fh)),
            Call::Write(h, off, data) => v.write(pick(&fhs, h), off, &data).map(drop),
            Call::Read(h, off, n) => v.read(pick(&fhs, h), off, n).map(drop),
            Call::Truncate(f, h, size) => {
                let c = Changes {
                    size: Some(size),
                    ..Changes::default()
                };
                v.setattr(pick(&inos, f), h.map(|h| pick(&fhs, h)), c)
                    .map(drop)
            }
            Call::Fallocate(h, off, len, mode) => v.fallocate(pick(&fhs, h), (off, len), mode),
            Call::Copy(a, b, len) => v
                .copy_range((pick(&fhs, a), 0), (pick(&fhs, b), 3), len.min(1 << 22))
                .map(drop),
            Call::Close(h) => v.flush(pick(&fhs, h), None),
            Call::Fsync(h) => v.fsync(pick(&fhs, h)),
            Call::Release(h) => v.release(pick(&fhs, h)).map(drop),
            Call::Rename(a, n, b, m, flags) => {
                v.rename(pick(&dirs, a), &n, pick(&dirs, b), &m, flags)
            }
            Call::Link(f, d, n) => v.link(pick(&inos, f), pick(&dirs, d), &n).map(drop),
            Call::Unlink(d, n, dir) => v.unlink(pick(&dirs, d), &n, dir),
            Call::Xattr(f, n, val, flags) => v.setxattr(pick(&inos, f), &n, &val, flags),
            Call::Readdir(d, off, max) => v.readdir(pick(&dirs, d), off, max).map(drop),
            Call::Lookup(d, n) => v.lookup(pick(&dirs, d), &n).map(drop),
        };
        if let Err(e) = res {
            // The data directory is healthy: an EIO would blame it for the caller's input.
            assert!(
                e.errno() > 0 && e.errno() != libc::EIO,
                "{c:?}: {e} (errno {})",
                e.errno()
            );
        }
    }
    for fh in fhs {
        let _ = v.release(fh);
    }
}

proptest! {
    // 96 sequences in the test command; `PROPTEST_CASES=2000` for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(96),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_sequence_of_calls_answers_and_the_universe_reopens(
        calls in proptest::collection::vec(call(), 1..60),
    ) {
        let tmp = tempfile::tempdir().expect("tmp");
        {
            let v = open(tmp.path());
            run(&v, &calls);
            v.engine().shutdown().expect("shutdown");
        }
        let v = open(tmp.path());
        let users = v.resolve("spacetime/hot_data/particles/users").expect("users");
        v.readdir(users, 0, 1000).expect("the universe reopens and lists");
    }
}

/// Found by the fuzz test: an empty write far past the end of a draft, then a copy
/// from it.
#[test]
fn an_empty_write_far_past_the_end_then_a_copy_from_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    run(&v, &[Call::Write(1, 64 << 20, vec![]), Call::Copy(1, 0, 1)]);
    drop(v);
    drop(open(tmp.path()));
}
