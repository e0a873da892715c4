use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::engine::Settings;
use crate::engine::api::Storage;
use crate::engine::codec::Tier;
use crate::engine::tree::Kind;
use crate::namespace::SEED;
use crate::regions::{Check, Generated, Rule, Tag, config};

fn open(dir: &std::path::Path) -> Vfs {
    let e = Arc::new(Engine::open(dir, Settings::default()).expect("engine"));
    let regions = Regions::builtin(Some(8)).expect("regions");
    Vfs::new(e, regions, SEED).expect("vfs")
}

fn users(v: &Vfs) -> u64 {
    v.resolve("spacetime/hot_data/particles/users")
        .expect("users")
}

fn put(v: &Vfs, dir: u64, name: &str, body: &[u8]) -> Result<u64> {
    let ino = match v.lookup(dir, name.as_bytes()) {
        Ok(a) => a.ino,
        Err(_) => {
            v.mknod(
                dir,
                name.as_bytes(),
                (libc::S_IFREG | 0o644, 0),
                0,
                Caller::ROOT,
            )?
            .ino
        }
    };
    let fh = v.open(ino, libc::O_WRONLY | libc::O_TRUNC)?;
    let res = v.write(fh, 0, body).and_then(|_| v.flush(fh, None));
    let stale = v.release(fh)?;
    assert_eq!(
        stale,
        res.is_err(),
        "a refused draft is reported stale at release"
    );
    res.map(|()| ino)
}

fn get(v: &Vfs, ino: u64) -> Vec<u8> {
    let fh = v.open(ino, libc::O_RDONLY).expect("open");
    let data = v.read(fh, 0, 1 << 30).expect("read").to_vec();
    v.release(fh).expect("release");
    data
}

#[test]
fn records_commit_refuse_and_survive_reopen() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ino;
    {
        let v = open(tmp.path());
        let u = users(&v);
        ino = put(&v, u, "alice.json", br#"{"name":"alice"}"#).expect("valid");
        let err = put(&v, u, "alice.json", b"{broken").expect_err("invalid JSON");
        assert_eq!(err.errno(), libc::EINVAL);
        assert_eq!(get(&v, ino), br#"{"name":"alice"}"#);
        put(&v, u, "notes.txt", b"{not json, fine").expect("opaque");
        put(&v, u, "empty.json", b"").expect("empty record");
        v.engine().shutdown().expect("shutdown");
    }
    let v = open(tmp.path());
    assert_eq!(get(&v, ino), br#"{"name":"alice"}"#);
    let notes = v.lookup(users(&v), b"notes.txt");
    assert_eq!(
        notes.as_ref().map(|a| a.size).ok(),
        Some(15),
        "{:?}",
        notes.err()
    );
}

#[test]
fn views_are_generated_and_read_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let u = users(&v);
    let m = v.lookup(u, b"_manifest.json").expect("manifest");
    let doc: serde_json::Value = serde_json::from_slice(&get(&v, m.ino)).expect("json");
    assert_eq!(
        doc["cosmic_location"],
        "spacetime/hot_data/particles/users/"
    );
    assert_eq!(
        v.open(m.ino, libc::O_WRONLY)
            .map(|_| ())
            .map_err(|e| e.errno()),
        Err(libc::EACCES)
    );
    assert_eq!(
        v.unlink(u, b"_manifest.json", false).map_err(|e| e.errno()),
        Err(libc::EACCES)
    );
    assert_eq!(
        v.mknod(
            u,
            b"_manifest.json",
            (libc::S_IFREG | 0o644, 0),
            0,
            Caller::ROOT
        )
        .map(|_| ())
        .map_err(|e| e.errno()),
        Err(libc::EACCES)
    );
    let names: Vec<Vec<u8>> = v
        .readdir(ROOT, 0, 1000)
        .expect("readdir")
        .into_iter()
        .map(|e| e.name)
        .collect();
    for top in [
        "universe.manifest",
        "spacetime",
        "configuration",
        "_manifest.json",
    ] {
        assert!(names.contains(&top.as_bytes().to_vec()), "{top}");
    }
    let hot = v.resolve("spacetime/hot_data").expect("hot");
    let sm = v.lookup(hot, b"shard.metadata").expect("shard.metadata");
    let doc: serde_json::Value = serde_json::from_slice(&get(&v, sm.ino)).expect("json");
    assert_eq!(doc["codec"], "none");
}

#[test]
fn seed_is_fixed_and_root_is_closed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let st = v.resolve("spacetime").expect("st");
    assert_eq!(
        v.unlink(st, b"hot_data", true).map_err(|e| e.errno()),
        Err(libc::EPERM)
    );
    assert_eq!(
        v.mkdir(ROOT, b"extra", 0o755, 0, Caller::ROOT)
            .map(|_| ())
            .map_err(|e| e.errno()),
        Err(libc::EPERM)
    );
    let u = users(&v);
    put(&v, u, "x.json", b"{}").expect("put");
    let parts = v.resolve("spacetime/hot_data/particles").expect("p");
    assert_eq!(
        v.unlink(parts, b"users", true).map_err(|e| e.errno()),
        Err(libc::EPERM)
    );
}

#[test]
fn rename_onto_record_name_needs_json_and_retiers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let u = users(&v);
    put(&v, u, "draft.tmp", b"not json").expect("tmp");
    assert_eq!(
        v.rename(u, b"draft.tmp", u, b"bob.json", 0)
            .map_err(|e| e.errno()),
        Err(libc::EINVAL)
    );
    put(&v, u, "draft.tmp", b"{\"ok\":true}").expect("tmp");
    v.rename(u, b"draft.tmp", u, b"bob.json", 0)
        .expect("valid rename");
    let cold = v.resolve("spacetime/cold_data/particles").expect("cold");
    let t = v
        .mkdir(cold, b"users", 0o755, 0, Caller::ROOT)
        .expect("mkdir");
    v.rename(u, b"bob.json", t.ino, b"bob.json", 0)
        .expect("retier");
    let a = v.lookup(t.ino, b"bob.json").expect("moved");
    assert_eq!(a.tier, Tier::Cold);
    v.engine().checkpoint().expect("checkpoint");
    assert_eq!(get(&v, a.ino), b"{\"ok\":true}");
    let stats = v.engine().tier_stats();
    assert_eq!(stats[2].records, 1);
}

#[test]
fn config_edits_apply_live_or_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let conf = v.resolve("configuration").expect("conf");
    let topo = v
        .lookup(conf, config::SHARD_TOPOLOGY.as_bytes())
        .expect("topo");
    let mut doc: serde_json::Value = serde_json::from_slice(&get(&v, topo.ino)).expect("json");
    doc["warm_data"]["durability_window_ms"] = 250.into();
    put(&v, conf, config::SHARD_TOPOLOGY, doc.to_string().as_bytes()).expect("valid edit");
    assert_eq!(
        v.engine().settings().windows[1],
        std::time::Duration::from_millis(250)
    );
    doc["warm_data"]["durability_window_ms"] = "later".into();
    let err =
        put(&v, conf, config::SHARD_TOPOLOGY, doc.to_string().as_bytes()).expect_err("bad edit");
    assert_eq!(err.errno(), libc::EINVAL);
    assert_eq!(
        v.engine().settings().windows[1],
        std::time::Duration::from_millis(250)
    );
}

#[test]
fn large_directories_list_every_entry_once_across_calls() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let d = v
        .mkdir(users(&v), b"many", 0o755, 0, Caller::ROOT)
        .expect("mkdir")
        .ino;
    for i in 0..3000 {
        v.mknod(
            d,
            format!("f{i}").as_bytes(),
            (libc::S_IFREG | 0o644, 0),
            0,
            Caller::ROOT,
        )
        .expect("mknod");
    }
    let mut seen = std::collections::HashSet::new();
    let mut off = 0;
    loop {
        let batch = v.readdir(d, off, 100).expect("readdir");
        if batch.is_empty() {
            break;
        }
        for e in batch {
            assert!(seen.insert(e.name), "duplicate");
            off = e.offset;
        }
        // Removing entries between calls must not skip or repeat the others.
        let _ = v.unlink(d, b"f0", false);
    }
    assert_eq!(
        seen.len(),
        3000 + 2,
        ". .. and every file: a data directory lists no generated file"
    );
    // The same directory in a snapshot's tree, read in pages of 100.
    let snapshots = v.resolve("backups/snapshots").expect("snapshots");
    v.mkdir(snapshots, b"s", 0o755, 0, Caller::ROOT)
        .expect("snapshot");
    let path = "s/universe/spacetime/hot_data/particles/users/many";
    let frozen = path.split('/').try_fold(snapshots, |dir, name| {
        v.lookup(dir, name.as_bytes()).map(|a| a.ino)
    });
    let frozen = frozen.expect("the directory in the snapshot");
    let (mut listed, mut off) = (Vec::new(), 0);
    loop {
        let batch = v.readdir(frozen, off, 100).expect("readdir");
        let Some(last) = batch.last() else {
            break;
        };
        off = last.offset;
        listed.extend(batch.into_iter().map(|e| e.name));
    }
    let unique: std::collections::HashSet<&Vec<u8>> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "an entry listed twice");
    assert_eq!(listed.len(), 2999 + 2, ". .. and every file left");
}

fn names_in(v: &Vfs, dir: u64) -> Vec<String> {
    v.readdir(dir, 0, 100_000)
        .expect("readdir")
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect()
}

#[test]
fn data_directories_hide_generated_files_but_serve_them_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let u = users(&v);
    put(&v, u, "a.json", b"{}").expect("put");
    assert_eq!(names_in(&v, u), [".", "..", "a.json"]);
    let sub = v
        .mkdir(u, b"sub", 0o755, 0, Caller::ROOT)
        .expect("mkdir")
        .ino;
    assert_eq!(names_in(&v, sub), [".", ".."]);
    let m = v.lookup(sub, b"_manifest.json").expect("by name");
    let doc: serde_json::Value = serde_json::from_slice(&get(&v, m.ino)).expect("json");
    assert_eq!(doc["region"], "records");
    assert_eq!(doc["generated_files_listed"], false);
    v.unlink(u, b"sub", true)
        .expect("rmdir of a directory holding only its manifest");
    let particles = v
        .resolve("spacetime/hot_data/particles")
        .expect("particles");
    assert!(names_in(&v, particles).contains(&"_manifest.json".to_string()));
    let hot = v.resolve("spacetime/hot_data").expect("hot");
    let listed = names_in(&v, hot);
    assert!(listed.contains(&"shard.metadata".to_string()), "{listed:?}");
    // A user's directory anywhere is data, also outside the record regions.
    let live = v
        .resolve("spacetime/hot_data/event_horizon")
        .expect("horizon");
    let mine = v
        .mkdir(live, b"mine", 0o755, 0, Caller::ROOT)
        .expect("mkdir")
        .ino;
    assert_eq!(names_in(&v, mine), [".", ".."]);
    assert!(names_in(&v, live).contains(&"_manifest.json".to_string()));
}

#[test]
fn a_write_that_makes_a_record_invalid_fails_at_once_and_the_old_version_stays() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let u = users(&v);
    let ino = put(&v, u, "x.json", br#"{"v": 1}"#).expect("put");
    let fh = v.open(ino, libc::O_WRONLY | libc::O_TRUNC).expect("open");
    v.write(fh, 0, b"{").expect("a valid start");
    let err = v.write(fh, 1, b"bad").expect_err("can never be JSON");
    assert_eq!(err.errno(), libc::EINVAL);
    assert_eq!(
        v.flush(fh, None).map_err(|e| e.errno()),
        Err(libc::EINVAL),
        "close refuses the same draft"
    );
    assert!(
        v.release(fh).expect("release"),
        "the kernel must drop its cache"
    );
    assert_eq!(get(&v, ino), br#"{"v": 1}"#);
    // Written in pieces, a record is checked as the pieces arrive, and accepted.
    let fh = v.open(ino, libc::O_WRONLY | libc::O_TRUNC).expect("open");
    let body = br#"{"name": "bob", "tags": [1, 2.5e3, true, null]}"#;
    for (i, b) in body.iter().enumerate() {
        v.write(fh, i as u64, &[*b]).expect("byte by byte");
    }
    v.flush(fh, None).expect("commit");
    v.release(fh).expect("release");
    assert_eq!(get(&v, ino), body);
    // Out of order the check waits for the commit.
    let fh = v.open(ino, libc::O_WRONLY | libc::O_TRUNC).expect("open");
    v.write(fh, 1, b"\"a\": 1}").expect("a later part first");
    v.write(fh, 0, b"{").expect("then the start");
    v.flush(fh, None).expect("commit");
    v.release(fh).expect("release");
    assert_eq!(get(&v, ino), br#"{"a": 1}"#);
}

#[test]
fn a_directory_does_not_move_across_regions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let live = v
        .resolve("spacetime/hot_data/event_horizon")
        .expect("horizon");
    let d = v
        .mkdir(live, b"d", 0o755, 0, Caller::ROOT)
        .expect("mkdir")
        .ino;
    put(&v, d, "x.json", b"not json").expect("opaque here");
    assert_eq!(
        v.rename(live, b"d", users(&v), b"d", 0)
            .map_err(|e| e.errno()),
        Err(libc::EXDEV),
        "mv copies it file by file instead, each through the commit path"
    );
    let cold = v.resolve("spacetime/cold_data/particles").expect("cold");
    let sub = v
        .mkdir(users(&v), b"sub", 0o755, 0, Caller::ROOT)
        .expect("mkdir");
    put(&v, sub.ino, "y.json", b"{}").expect("put");
    v.rename(users(&v), b"sub", cold, b"sub", 0)
        .expect("within one region a directory moves, and changes tier");
}

#[test]
fn configuration_renamed_into_place_is_checked_and_applied() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let conf = v.resolve("configuration").expect("conf");
    let file = config::UNIVERSE_PARAMETERS.as_bytes();
    let params = v.lookup(conf, file).expect("params");
    let mut doc: serde_json::Value = serde_json::from_slice(&get(&v, params.ino)).expect("json");
    assert_eq!(
        doc["cache_budget_mb"], 8,
        "--cache-mb is written into the file"
    );
    doc["cache_budget_mb"] = 3.into();
    doc["log_segment_mb"] = 2.into();
    put(&v, conf, "tmp", doc.to_string().as_bytes()).expect("tmp");
    v.rename(conf, b"tmp", conf, file, 0).expect("valid rename");
    let s = v.engine().settings();
    assert_eq!((s.cache_budget, s.segment_max), (3 << 20, 2 << 20));
    doc["cache_budget_mb"] = 0.into();
    put(&v, conf, "tmp", doc.to_string().as_bytes()).expect("tmp");
    assert_eq!(
        v.rename(conf, b"tmp", conf, file, 0).map_err(|e| e.errno()),
        Err(libc::EINVAL)
    );
    assert_eq!(v.engine().settings().cache_budget, 3 << 20);
    // What `mv` from another filesystem does: remove the target, then create it.
    v.unlink(conf, file, false).expect("unlink");
    assert_eq!(
        v.lookup(conf, file).map(|_| ()).map_err(|e| e.errno()),
        Err(libc::ENOENT)
    );
    assert_eq!(
        v.engine().settings().cache_budget,
        3 << 20,
        "still in force"
    );
    let new = |mb: u64| {
        let mut d = doc.clone();
        d["cache_budget_mb"] = mb.into();
        let (_, fh) = v
            .create(
                conf,
                file,
                0o600,
                0,
                libc::O_WRONLY | libc::O_EXCL,
                Caller::ROOT,
            )
            .expect("create");
        let res = v
            .write(fh, 0, d.to_string().as_bytes())
            .and_then(|_| v.flush(fh, None));
        v.release(fh).expect("release");
        res
    };
    assert_eq!(new(0).map_err(|e| e.errno()), Err(libc::EINVAL));
    assert_eq!(v.engine().settings().cache_budget, 3 << 20);
    let kept = v
        .lookup(conf, file)
        .expect("the refused edit leaves the file as it was");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&get(&v, kept.ino)).expect("json")["cache_budget_mb"],
        3
    );
    v.unlink(conf, file, false).expect("unlink");
    new(5).expect("a valid replacement");
    assert_eq!(v.engine().settings().cache_budget, 5 << 20);
    assert_eq!(
        v.rename(conf, file, conf, b"elsewhere", 0)
            .map_err(|e| e.errno()),
        Err(libc::EPERM),
        "an obeyed file is not renamed away"
    );
    assert_eq!(
        put(&v, conf, "mine.json", b"{}")
            .map(|_| ())
            .map_err(|e| e.errno()),
        Err(libc::EINVAL),
        "configuration holds only what the daemon obeys"
    );
    let listed = names_in(&v, conf);
    for name in [
        config::SHARD_TOPOLOGY,
        config::UNIVERSE_PARAMETERS,
        "_manifest.json",
    ] {
        assert!(listed.contains(&name.to_string()), "{listed:?}");
    }
}

#[test]
fn an_older_data_directory_is_migrated_to_the_regions_of_this_build() {
    let tmp = tempfile::tempdir().expect("tmp");
    let old_topology = serde_json::json!({
        "hot_data": { "codec": "none", "durability_window_ms": 0, "consistency": "strong" },
        "warm_data": { "codec": "zlib", "durability_window_ms": 250, "consistency": "eventual" },
        "cold_data": { "codec": "lz4", "durability_window_ms": 1000, "consistency": "weak" },
    });
    let (horizon, logs) = {
        let v = open(tmp.path());
        let e = v.engine();
        // What an older build left: spacetime and the log directory were plain (tag 0),
        // three configuration files nothing read, the tier policies with fixed fields.
        let spacetime = v.resolve("spacetime").expect("spacetime");
        let horizon = v
            .resolve("spacetime/hot_data/event_horizon")
            .expect("horizon");
        put(&v, horizon, "notes.txt", b"mine").expect("a user's file");
        let logs = v.resolve("backups/cosmic_logs").expect("logs");
        e.retag(spacetime, 3, 0).expect("retag");
        e.retag(logs, 4, 0).expect("retag");
        let conf = v.resolve("configuration").expect("conf");
        for name in ["physics_constants.json", "entanglement_rules.json"] {
            e.put(conf, name.as_bytes(), &config::retired_default(name))
                .expect("old file");
        }
        // Written, never obeyed; obeyed now, in this build's layout.
        let old_policies = br#"{"live_retention_hours": 2, "recent_retention_days": 1, "historical_retention_months": 12}"#;
        e.put(conf, config::TEMPORAL_POLICIES.as_bytes(), old_policies)
            .expect("old file");
        e.put(
            conf,
            config::SHARD_TOPOLOGY.as_bytes(),
            old_topology.to_string().as_bytes(),
        )
        .expect("old layout");
        assert_eq!(v.dir(horizon).expect("dir").tag, 0);
        e.shutdown().expect("shutdown");
        (horizon, logs)
    };
    let v = open(tmp.path());
    assert_eq!(v.dir(horizon).expect("dir").tag, 3);
    assert_eq!(v.dir(logs).expect("dir").tag, 4);
    let notes = v.lookup(horizon, b"notes.txt").expect("notes");
    assert_eq!(notes.tag, 3, "what the directory held moved with it");
    assert_eq!(
        v.dir(v.resolve("spacetime/hot_data/particles").expect("p"))
            .expect("dir")
            .tag,
        crate::regions::records::TAG,
        "a region below keeps its own"
    );
    let conf = v.resolve("configuration").expect("conf");
    let mut listed = names_in(&v, conf);
    listed.sort();
    assert_eq!(
        listed,
        [
            ".",
            "..",
            "_manifest.json",
            "backup_policy.json",
            config::ENTANGLEMENT,
            config::OBSERVATORY,
            config::SHARD_TOPOLOGY,
            config::TEMPORAL_POLICIES,
            config::TIERING_POLICY,
            config::UNIVERSE_PARAMETERS
        ],
        "retired files are gone"
    );
    let rules = v
        .lookup(conf, config::ENTANGLEMENT.as_bytes())
        .expect("rules");
    let doc: serde_json::Value = serde_json::from_slice(&get(&v, rules.ino)).expect("json");
    assert_eq!(
        doc["window_ms"], 1000,
        "the old file's window is kept: {doc}"
    );
    let policies = v
        .lookup(conf, config::TEMPORAL_POLICIES.as_bytes())
        .expect("policies");
    let doc: serde_json::Value = serde_json::from_slice(&get(&v, policies.ino)).expect("json");
    assert_eq!(doc["live_window_hours"], 2, "{doc}");
    assert_eq!(doc["recent_window_hours"], 24, "{doc}");
    let topo = v
        .lookup(conf, config::SHARD_TOPOLOGY.as_bytes())
        .expect("topo");
    let doc: serde_json::Value = serde_json::from_slice(&get(&v, topo.ino)).expect("json");
    assert_eq!(
        doc["warm_data"],
        serde_json::json!({ "durability_window_ms": 250 })
    );
    assert_eq!(
        v.engine().settings().windows[Tier::Warm as usize],
        std::time::Duration::from_millis(250)
    );
}

/// A region made here, to show that one is added without touching the filesystem layer:
/// its own name and tag, one generated file, one commit rule, one after-commit action.
struct Counting {
    commits: Arc<AtomicUsize>,
}

struct Digits;

impl Check for Digits {
    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        match bytes.iter().all(u8::is_ascii_digit) {
            true => Ok(()),
            false => Err(Error::InvalidRecord("digits only".into())),
        }
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

impl Region for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    fn tag(&self) -> Tag {
        200
    }

    fn views(&self, _cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        match dir.is_seed("counting") {
            true => vec!["total.txt".into()],
            false => Vec::new(),
        }
    }

    fn generate(&self, _cx: &Cx<'_>, _dir: &Dir, name: &str) -> Option<Generated> {
        let n = self.commits.load(Ordering::SeqCst);
        (name == "total.txt").then(|| Generated::Document(format!("{n}\n").into_bytes()))
    }

    fn rule(&self, _dir: &Dir, name: &[u8]) -> Option<Rule> {
        name.ends_with(b".num").then(|| Rule {
            id: "digits",
            check: Box::new(Digits),
        })
    }

    fn committed(&self, cx: &Cx<'_>, dir: &Dir, _name: &[u8]) {
        // Told while the directory still counts as changing: a reader comparing the
        // files with what regions keep of them waits until every region was told.
        assert!(!cx.regions.told(&[dir.ino]), "told after the telling ended");
        self.commits.fetch_add(1, Ordering::SeqCst);
    }

    fn observe(&self, cx: &Cx<'_>, event: &crate::regions::Event<'_>) {
        if let crate::regions::Event::Entry { dir, .. } = *event {
            assert!(!cx.regions.told(&[dir]), "told after the telling ended");
        }
    }
}

#[test]
fn a_region_is_added_through_the_seam_alone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let commits = Arc::new(AtomicUsize::new(0));
    let mut regions = Regions::builtin(None).expect("regions");
    regions
        .register(Box::new(Counting {
            commits: commits.clone(),
        }))
        .expect("register");
    let mut seed = SEED.to_vec();
    seed.push(crate::namespace::SeedDir {
        path: "counting",
        region: "counting",
        data: false,
        purpose: "Counts what is committed here",
    });
    let seed: &'static [crate::namespace::SeedDir] = Vec::leak(seed);
    let e = Arc::new(Engine::open(tmp.path(), Settings::default()).expect("engine"));
    let v = Vfs::new(e, regions, seed).expect("vfs");
    let dir = v.resolve("counting").expect("its seed directory");
    assert!(names_in(&v, ROOT).contains(&"counting".to_string()));
    assert_eq!(
        names_in(&v, dir),
        [".", "..", "_manifest.json", "total.txt"]
    );
    put(&v, dir, "a.num", b"12345").expect("digits are accepted");
    assert_eq!(commits.load(Ordering::SeqCst), 1);
    assert!(v.regions.told(&[dir]), "the telling ends with the commit");
    let total = v.lookup(dir, b"total.txt").expect("generated");
    assert_eq!(get(&v, total.ino), b"1\n");
    let err = put(&v, dir, "b.num", b"12x").expect_err("refused at the write");
    assert_eq!(err.errno(), libc::EINVAL);
    put(&v, dir, "c.txt", b"abc").expect("no rule for this name");
    assert_eq!(
        v.rename(dir, b"c.txt", dir, b"c.num", 0)
            .map_err(|e| e.errno()),
        Err(libc::EINVAL),
        "a rename is checked by the same rule"
    );
    let m = v.lookup(dir, b"_manifest.json").expect("manifest");
    let doc: serde_json::Value = serde_json::from_slice(&get(&v, m.ino)).expect("json");
    assert_eq!(doc["region"], "counting");
    assert_eq!(doc["purpose"], "Counts what is committed here");
}

#[test]
fn a_removed_configuration_file_stays_in_force_until_replaced() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = config::SHARD_TOPOLOGY.as_bytes();
    {
        let v = open(tmp.path());
        let conf = v.resolve("configuration").expect("conf");
        let topo = v.lookup(conf, file).expect("topology");
        let mut doc: serde_json::Value = serde_json::from_slice(&get(&v, topo.ino)).expect("json");
        doc["cold_data"]["durability_window_ms"] = 2000.into();
        put(&v, conf, config::SHARD_TOPOLOGY, doc.to_string().as_bytes()).expect("edit");
        v.unlink(conf, file, false).expect("rm");
        assert!(!names_in(&v, conf).contains(&config::SHARD_TOPOLOGY.to_string()));
        assert_eq!(
            v.unlink(conf, file, false).map_err(|e| e.errno()),
            Err(libc::ENOENT)
        );
        assert_eq!(
            v.engine().settings().windows[Tier::Cold as usize],
            std::time::Duration::from_secs(2)
        );
        v.engine().shutdown().expect("shutdown");
    }
    let v = open(tmp.path());
    let conf = v.resolve("configuration").expect("conf");
    let topo = v.lookup(conf, file).expect("back after a restart");
    let doc: serde_json::Value = serde_json::from_slice(&get(&v, topo.ino)).expect("json");
    assert_eq!(doc["cold_data"]["durability_window_ms"], 2000);
    assert_eq!(
        v.engine().settings().windows[Tier::Cold as usize],
        std::time::Duration::from_secs(2)
    );
}

#[test]
fn special_files_are_stored_as_metadata_and_survive_a_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dev = (1 << 8) | 3; // major 1, minor 3: /dev/null's number
    let kinds = [
        ("pipe", libc::S_IFIFO, 0, Kind::Fifo),
        ("sock", libc::S_IFSOCK, 0, Kind::Socket),
        ("null", libc::S_IFCHR, dev, Kind::CharDev),
        ("disk", libc::S_IFBLK, dev + 1, Kind::BlockDev),
    ];
    let live = {
        let v = open(tmp.path());
        let live = v
            .resolve("spacetime/hot_data/event_horizon")
            .expect("horizon");
        for (name, fmt, rdev, kind) in kinds {
            let a = v
                .mknod(live, name.as_bytes(), (fmt | 0o640, 0), rdev, Caller::ROOT)
                .expect("mknod");
            assert_eq!(
                (a.kind, a.rdev, a.size, a.perm),
                (kind, rdev, 0, 0o640),
                "{name}"
            );
        }
        assert_eq!(
            v.mknod(
                users(&v),
                b"p.json",
                (libc::S_IFIFO | 0o644, 0),
                0,
                Caller::ROOT
            )
            .map(|_| ())
            .map_err(|e| e.errno()),
            Err(libc::EINVAL),
            "a record's name holds content"
        );
        v.mknod(users(&v), b"p", (libc::S_IFIFO | 0o644, 0), 0, Caller::ROOT)
            .expect("any other name in a record directory");
        v.engine().shutdown().expect("shutdown");
        live
    };
    let v = open(tmp.path());
    for (name, _, rdev, kind) in kinds {
        let a = v.lookup(live, name.as_bytes()).expect("after a restart");
        assert_eq!((a.kind, a.rdev), (kind, rdev), "{name}");
    }
    assert_eq!(
        v.engine()
            .tier_stats()
            .iter()
            .map(|s| s.records)
            .sum::<u64>(),
        configuration_files(&v) + 6,
        "special files are not records (the configuration files, entropy's history and \
         rebalancing log, the query schema and performance log, the events' log and the \
         audit trail are)"
    );
}

#[test]
fn rename_exchange_swaps_two_entries_in_one_record() {
    let tmp = tempfile::tempdir().expect("tmp");
    let x = libc::RENAME_EXCHANGE;
    let (u, live) = {
        let v = open(tmp.path());
        let u = users(&v);
        put(&v, u, "a.json", br#"{"a": 1}"#).expect("a");
        put(&v, u, "b.json", br#"{"b": 2}"#).expect("b");
        put(&v, u, "notes.txt", b"not json").expect("notes");
        let d = v.mkdir(u, b"dir", 0o755, 0, Caller::ROOT).expect("dir");
        put(&v, d.ino, "inner.json", b"{}").expect("inner");
        v.rename(u, b"a.json", u, b"b.json", x).expect("exchange");
        assert_eq!(
            v.rename(u, b"notes.txt", u, b"a.json", x)
                .map_err(|e| e.errno()),
            Err(libc::EINVAL),
            "non-JSON content would arrive at a record's name"
        );
        assert_eq!(
            v.rename(u, b"a.json", u, b"missing.json", x)
                .map_err(|e| e.errno()),
            Err(libc::ENOENT)
        );
        v.rename(u, b"notes.txt", u, b"dir", x)
            .expect("a file and a directory trade places");
        let live = v
            .resolve("spacetime/hot_data/event_horizon")
            .expect("horizon");
        let mine = v
            .mkdir(live, b"mine", 0o755, 0, Caller::ROOT)
            .expect("mine");
        put(&v, mine.ino, "x", b"anything").expect("x");
        assert_eq!(
            v.rename(live, b"mine", u, b"notes.txt", x)
                .map_err(|e| e.errno()),
            Err(libc::EXDEV),
            "a directory stays in its region"
        );
        // No checkpoint: the next open replays the record.
        (u, live)
    };
    let v = open(tmp.path());
    let read = |name: &str| get(&v, v.lookup(u, name.as_bytes()).expect(name).ino);
    assert_eq!(read("a.json"), br#"{"b": 2}"#);
    assert_eq!(read("b.json"), br#"{"a": 1}"#);
    assert_eq!(read("dir"), b"not json");
    let moved = v.lookup(u, b"notes.txt").expect("the directory");
    assert_eq!(moved.kind, Kind::Dir);
    v.lookup(moved.ino, b"inner.json")
        .expect("with what it held");
    let mut listed = names_in(&v, u);
    listed.sort();
    assert_eq!(
        listed,
        [".", "..", "a.json", "b.json", "dir", "notes.txt"],
        "no trace of the passage"
    );
    assert!(v.lookup(live, b"mine").is_ok());
}

#[test]
fn a_rename_while_writing_ends_the_check_of_the_old_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let u = users(&v);
    let ino = put(&v, u, "a.json", b"{}").expect("a");
    let fh = v.open(ino, libc::O_WRONLY | libc::O_TRUNC).expect("open");
    v.write(fh, 0, b"{").expect("a record's start");
    v.rename(u, b"a.json", u, b"a.txt", 0)
        .expect("rename while open");
    v.write(fh, 1, b" not json any more")
        .expect("an opaque name's content is not checked");
    v.flush(fh, None).expect("commit under the new name");
    v.release(fh).expect("release");
    assert_eq!(get(&v, ino), b"{ not json any more");
}

#[test]
fn hard_links_share_one_rule_one_tier_and_one_region() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let u = users(&v);
    let errno = |r: Result<Attr>| r.map(|_| ()).map_err(|e| e.errno());
    let a = put(&v, u, "a.json", br#"{"n":1}"#).expect("record");
    assert_eq!(v.link(a, u, b"b.json").expect("same rule").nlink, 2);
    // A name no rule checks would let anything in through it, and the reverse.
    assert_eq!(errno(v.link(a, u, b"a.txt")), Err(libc::EXDEV));
    let t = put(&v, u, "t.txt", b"not json").expect("opaque");
    assert_eq!(errno(v.link(t, u, b"t.json")), Err(libc::EXDEV));
    // Written through either name, the content is checked by the rule.
    let err = put(&v, u, "b.json", b"{broken").expect_err("refused");
    assert_eq!(err.errno(), libc::EINVAL);
    assert_eq!(get(&v, a), br#"{"n":1}"#);
    put(&v, u, "b.json", br#"{"n":2}"#).expect("valid");
    assert_eq!(get(&v, a), br#"{"n":2}"#);
    // Another tier, another region, a generated file.
    let cold = v.resolve("spacetime/cold_data/particles").expect("cold");
    assert_eq!(errno(v.link(a, cold, b"a.json")), Err(libc::EXDEV));
    let live = v
        .resolve("spacetime/hot_data/event_horizon")
        .expect("horizon");
    assert_eq!(errno(v.link(t, live, b"t.txt")), Err(libc::EXDEV));
    let m = v.lookup(u, b"_manifest.json").expect("manifest");
    assert_eq!(errno(v.link(m.ino, u, b"m.json")), Err(libc::EPERM));
    // A rename keeps the names under one rule.
    assert_eq!(
        v.rename(u, b"b.json", u, b"b.txt", 0)
            .map_err(|e| e.errno()),
        Err(libc::EXDEV)
    );
    v.rename(u, b"b.json", u, b"c.json", 0)
        .expect("within the rule");
    v.unlink(u, b"a.json", false).expect("rm");
    v.rename(u, b"c.json", u, b"c.txt", 0)
        .expect("one name left: a plain rename");
}

/// The `.json` files `configuration/` stores (each a record of the hot tier).
fn configuration_files(v: &Vfs) -> u64 {
    let conf = v.resolve("configuration").expect("conf");
    names_in(v, conf)
        .iter()
        .filter(|n| n.ends_with(".json") && *n != "_manifest.json")
        .count() as u64
}

/// Asks `text` through a handle of `qql/ask`, as `islabdb query` does.
fn ask(v: &Vfs, text: &str) -> serde_json::Value {
    let qql = v.resolve("qql").expect("qql");
    let ask = v.lookup(qql, b"ask").expect("qql/ask").ino;
    let fh = v.open(ask, libc::O_RDWR).expect("open ask");
    v.write(fh, 0, text.as_bytes()).expect("write the query");
    let out = v.read(fh, 0, 1 << 20).expect("read the answer").to_vec();
    v.release(fh).expect("release");
    serde_json::from_slice(&out).expect("a JSON answer")
}

#[test]
fn a_query_waits_out_a_change_its_regions_have_not_all_heard_of() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let u = users(&v);
    put(&v, u, "ada.json", br#"{"name": "ada"}"#).expect("put");
    let text = "FROM spacetime/hot_data/particles/users SELECT count()";
    assert_eq!(ask(&v, text), serde_json::json!([{"count": 1}]));
    // As a commit between its making and the end of its telling: what was read may show
    // the change while an index has not caught up, so no answer is of one moment.
    let changing = v.regions.telling(&[u]);
    let refused = ask(&v, text);
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("changed while it ran")),
        "{refused}"
    );
    // A change elsewhere does not concern it.
    let cold = v.resolve("spacetime/cold_data").expect("cold");
    let elsewhere = v.regions.telling(&[cold]);
    drop(changing);
    assert_eq!(ask(&v, text), serde_json::json!([{"count": 1}]));
    drop(elsewhere);
}

#[test]
fn the_roles_are_checked_for_whoever_acts_and_only_once_there_are_rules() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = open(tmp.path());
    let ino = put(&v, users(&v), "a.json", b"{}").expect("record");
    let nobody = Caller {
        uid: 65534,
        gid: 65534,
        pid: std::process::id(),
    };
    let errno = |r: Result<()>| r.map_err(|e| e.errno());
    let read = |v: &Vfs| {
        let _as = acting(nobody);
        let fh = v.open(ino, libc::O_RDONLY)?;
        v.release(fh).map(|_| ())
    };
    assert_eq!(errno(read(&v)), Ok(()), "no rules: modes alone decide");
    let conf = v.resolve("configuration").expect("conf");
    let rules = br#"{"cosmic_security": {"roles": {"keeper": {"users": ["daemon"]}},
        "spacetime_access": {"hot_data": ["keeper"]}}}"#;
    put(&v, conf, "cosmic_security.json", rules).expect("rules");
    assert_eq!(errno(read(&v)), Err(libc::EACCES), "nobody is no keeper");
    {
        let _as = acting(nobody);
        let gone = v.unlink(users(&v), b"a.json", false);
        assert_eq!(errno(gone), Err(libc::EACCES));
        assert_eq!(errno(v.opendir(users(&v))), Err(libc::EACCES));
        assert_eq!(errno(v.opendir(conf)), Ok(()), "a place not named is open");
        let _as = acting(Caller { uid: 0, ..nobody });
        assert_eq!(errno(v.opendir(users(&v))), Ok(()), "root does everything");
    }
    assert_eq!(
        get(&v, ino),
        b"{}",
        "the daemon's own requests are not checked"
    );
    let keeper = Caller {
        uid: 1,
        gid: 1,
        pid: std::process::id(),
    };
    let _as = acting(keeper);
    let edit = put(&v, conf, "cosmic_security.json", b"{}").map(|_| ());
    assert_eq!(errno(edit), Err(libc::EACCES), "only admin edits the rules");
    assert_eq!(errno(v.unlink(users(&v), b"a.json", false)), Ok(()));
}

/// A stored security file naming a user the machine no longer has (written here below
/// the filesystem, which would refuse it) cannot be obeyed at the next start: every place
/// it can name is closed to all but root, also places it did not name, until root
/// mends it.
#[test]
fn a_security_file_that_cannot_be_obeyed_at_start_closes_every_place_to_all_but_root() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = b"cosmic_security.json";
    {
        let v = open(tmp.path());
        let conf = v.resolve("configuration").expect("conf");
        let rules = br#"{"cosmic_security": {"roles": {"keeper": {"users": ["daemon"]}},
            "spacetime_access": {"hot_data": ["keeper"]}}}"#;
        put(&v, conf, "cosmic_security.json", rules).expect("rules");
        put(&v, users(&v), "a.json", b"{}").expect("record");
        v.engine().shutdown().expect("shutdown");
    }
    {
        let e = Engine::open(tmp.path(), Settings::default()).expect("engine");
        let conf = e
            .lookup(crate::engine::tree::ROOT, b"configuration")
            .expect("conf");
        let ino = e.lookup(conf.ino, file).expect("security file").ino;
        let gone =
            br#"{"cosmic_security": {"roles": {"keeper": {"users": ["islabdb-no-such-user"]}},
            "spacetime_access": {"hot_data": ["keeper"]}}}"#;
        crate::engine::testutil::put(&e, ino, gone);
        e.shutdown().expect("shutdown");
    }
    let v = open(tmp.path());
    let conf = v.resolve("configuration").expect("conf");
    let errno = |r: Result<()>| r.map_err(|e| e.errno());
    let nobody = Caller {
        uid: 65534,
        gid: 65534,
        pid: std::process::id(),
    };
    {
        let _as = acting(nobody);
        for dir in [users(&v), conf, v.resolve("backups").expect("backups")] {
            assert_eq!(errno(v.opendir(dir)), Err(libc::EACCES), "{dir}");
        }
    }
    {
        let _as = acting(Caller { uid: 0, ..nobody });
        assert_eq!(errno(v.opendir(users(&v))), Ok(()), "root does everything");
        let mended = br#"{"cosmic_security": {"roles": {"keeper": {"users": ["daemon"]}},
            "spacetime_access": {"hot_data": ["keeper"]}}}"#;
        put(&v, conf, "cosmic_security.json", mended).expect("root mends it");
    }
    let _as = acting(nobody);
    assert_eq!(
        errno(v.opendir(conf)),
        Ok(()),
        "mended: an unnamed place is open"
    );
    assert_eq!(errno(v.opendir(users(&v))), Err(libc::EACCES));
}

#[test]
fn a_stream_closing_does_not_hold_up_other_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = Arc::new(open(tmp.path()));
    let dir = v.resolve("temporal/live").expect("temporal/live");
    let live = v.lookup(dir, b"events.jsonl").expect("the stream").ino;
    let stream = v
        .open(live, libc::O_WRONLY | libc::O_APPEND)
        .expect("open the stream");
    let sink = match lock(&v.handles).get(&stream) {
        Some(handles::Handle::Sink { sink, .. }) => sink.clone(),
        _ => panic!("a stream's handle is a sink"),
    };
    // The stream's close is under way: it waits at its sink (a close waits there for the
    // log's fsync)...
    let held = lock(&sink);
    let closer = {
        let v = v.clone();
        std::thread::spawn(move || v.flush(stream, None))
    };
    // (not a timing: without the pause the close may come later, and nothing is shown)
    std::thread::sleep(std::time::Duration::from_millis(100));
    // ...while a record elsewhere is written.
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let v = v.clone();
        std::thread::spawn(move || {
            let _ = tx.send(put(&v, users(&v), "meanwhile.json", b"{}").is_ok());
        })
    };
    let served = rx.recv_timeout(std::time::Duration::from_secs(10));
    drop(held);
    closer.join().expect("closer").expect("close");
    writer.join().expect("writer");
    assert_eq!(served, Ok(true), "the write waited for the stream's close");
    v.release(stream).expect("release");
}
