//! `quantum_graph/`: nodes and edges written with the shell's tools, kept whole: edges
//! only between existing nodes, nodes with edges kept until removed with them, also
//! across `kill -9`.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

const G: &str = "quantum_graph";

/// Runs `script` with bash (which names the errno of a failed write) in the mount's
/// `quantum_graph/`; (exit ok, stderr).
fn in_graph(m: &Mount, script: &str) -> (bool, String) {
    let o = bash_output(&format!("cd {} && {script}", shq(m.path(G))));
    (o.status.success(), stderr(&o))
}

#[track_caller]
fn ok(m: &Mount, script: &str) {
    let (ok, err) = in_graph(m, script);
    assert!(ok, "{script}: {err}");
}

#[track_caller]
fn refused(m: &Mount, script: &str, errno_text: &str) {
    let (ok, err) = in_graph(m, script);
    assert!(!ok, "{script} was accepted");
    assert!(err.contains(errno_text), "{script}: {err}");
}

/// Every edge file below `edges/` names two nodes that exist below `nodes/`.
#[track_caller]
fn assert_no_dangling_edge(g: &Path) {
    let dirs = |p: std::path::PathBuf| {
        names(&p)
            .into_iter()
            .filter(|n| p.join(n).is_dir())
            .collect::<Vec<_>>()
    };
    let mut ids = BTreeSet::new();
    for t in dirs(g.join("nodes")) {
        for n in names(&g.join("nodes").join(&t)) {
            if let Some(id) = n.strip_suffix(".json") {
                ids.insert(id.to_string());
            }
        }
    }
    for r in dirs(g.join("edges")) {
        for e in names(&g.join("edges").join(&r)) {
            let Some((a, b)) = e.strip_suffix(".json").and_then(|s| s.split_once("_to_")) else {
                continue;
            };
            assert!(
                ids.contains(a) && ids.contains(b),
                "dangling edge {r}/{e} (nodes: {} in all)",
                ids.len()
            );
        }
    }
}

#[test]
fn edges_join_existing_nodes_and_nodes_with_edges_stay() {
    let m = Mount::new();
    ok(
        &m,
        r#"echo '{"name": "Alice", "likes": "physics"}' > nodes/persons/alice.json &&
           echo '{"name": "Bob"}' > nodes/persons/bob.json &&
           echo '{"name": "Acme"}' > nodes/organizations/acme.json &&
           cp nodes/persons/bob.json nodes/persons/carol.json &&
           echo '{"strength": 0.8, "since": "2020-01-01T00:00:00Z", "decay": "365d"}' > edges/works_for/alice_to_acme.json &&
           echo '{"strength": 0.5}' > edges/collaborates_with/alice_to_bob.json &&
           echo '{}' > edges/leads/carol_to_alice.json"#,
    );
    // An edge to a node that does not exist: refused, and the log names the node.
    refused(
        &m,
        "echo '{}' > edges/works_for/alice_to_ghost.json",
        "Invalid argument",
    );
    assert!(
        !m.path("quantum_graph/edges/works_for/alice_to_ghost.json")
            .exists()
    );
    assert!(m.log().contains("there is no node 'ghost'"), "{}", m.log());
    // Badly named edges and node ids that would read as edges are refused.
    refused(
        &m,
        "echo '{}' > edges/works_for/alice.json",
        "Invalid argument",
    );
    refused(
        &m,
        "echo '{}' > nodes/persons/x_to_y.json",
        "Invalid argument",
    );
    refused(
        &m,
        "echo '{\"strength\": 3}' > edges/leads/bob_to_acme.json",
        "Invalid argument",
    );
    // Ids are unique across types.
    refused(
        &m,
        "echo '{}' > nodes/concepts/bob.json",
        "Invalid argument",
    );
    // A node with edges stays: rm, and a rename to another id, are refused.
    refused(&m, "rm nodes/organizations/acme.json", "busy");
    refused(
        &m,
        "mv nodes/persons/alice.json nodes/persons/alicia.json",
        "busy",
    );
    assert!(
        m.path("quantum_graph/nodes/organizations/acme.json")
            .exists()
    );
    // Another type keeps the id, and the edges with it; so does an editor's save.
    ok(&m, "mv nodes/persons/alice.json nodes/concepts/alice.json");
    ok(&m, "mv nodes/concepts/alice.json nodes/persons/alice.json");
    ok(
        &m,
        r#"sed -i 's/Alice/Alice A./' nodes/persons/alice.json && grep -q 'Alice A.' nodes/persons/alice.json"#,
    );
    let o = vim(
        &m.path("quantum_graph/nodes/persons"),
        &m.scratch(),
        &["%s/Bob/Robert/", "wq"],
        "bob.json",
    );
    assert!(o.status.success(), "vim: {}", stderr(&o));
    assert_eq!(
        get(&m.path("quantum_graph/nodes/persons/bob.json")),
        b"{\"name\": \"Robert\"}\n"
    );
    assert!(
        m.path("quantum_graph/edges/collaborates_with/alice_to_bob.json")
            .exists()
    );
    // A node without edges goes as any file.
    ok(
        &m,
        "echo '{}' > nodes/concepts/physics.json && rm nodes/concepts/physics.json",
    );
    assert_eq!(
        names(&m.path("quantum_graph/edges/works_for")),
        ["alice_to_acme.json"]
    );

    // The neighbourhood, with the effective strength now: 0.8 halved per 365 days.
    let v = read_json(&m.path("quantum_graph/neighbourhoods/alice.json"));
    assert_eq!(v["type"], "persons", "{v}");
    assert_eq!(
        (v["out_degree"].clone(), v["in_degree"].clone()),
        (2.into(), 1.into()),
        "{v}"
    );
    let works = v["out"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["relation"] == "works_for")
        .unwrap();
    assert_eq!(works["node"], "acme");
    let years = (chrono_now_secs() - 1_577_836_800) as f64 / (365.0 * 86400.0);
    let expect = 0.8 * 0.5f64.powf(years);
    let got = works["effective_strength"].as_f64().unwrap();
    assert!((got - expect).abs() < 0.001, "{got} vs {expect}");
    assert_eq!(v["in"][0]["node"], "carol", "{v}");
    assert_eq!(v["in"][0]["effective_strength"], 1.0, "{v}");
    let listed = names(&m.path("quantum_graph/neighbourhoods"));
    for id in ["acme.json", "alice.json", "bob.json", "carol.json"] {
        assert!(listed.iter().any(|n| n == id), "{listed:?}");
    }

    // Removing with the edges: one line to the control file.
    ok(&m, "echo organizations/acme > remove_with_edges");
    assert!(
        !m.path("quantum_graph/nodes/organizations/acme.json")
            .exists()
    );
    assert!(names(&m.path("quantum_graph/edges/works_for")).is_empty());
    refused(&m, "echo nobody > remove_with_edges", "No such file");
    assert_no_dangling_edge(&m.path(G));
}

fn chrono_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Writes `path` with `body` and fsyncs it: acknowledged once this returns Ok.
fn commit(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(body)?;
    fsync_file(&f)?;
    close_file(f)
}

/// A writer building a chain of nodes and edges, and removing every fifth node with its
/// edges, while the daemon is killed: after the remount, no edge dangles, and every
/// acknowledged node and edge that no removal touched is there.
#[test]
fn kill9_in_the_middle_of_graph_commits_leaves_no_dangling_edge() {
    let mut m = Mount::new();
    let g = m.path(G);
    fs::create_dir(g.join("edges/links")).unwrap();
    for round in 0..2 {
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (g, stop) = (g.clone(), stop.clone());
            thread::spawn(move || {
                let (mut nodes, mut edges, mut targeted) =
                    (Vec::new(), Vec::new(), BTreeSet::new());
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let id = format!("r{round}n{i}");
                    let node = g.join(format!("nodes/concepts/{id}.json"));
                    if commit(&node, format!("{{\"i\": {i}}}").as_bytes()).is_err() {
                        break;
                    }
                    nodes.push(id.clone());
                    if i > 0 {
                        let e = format!("r{round}n{i}_to_r{round}n{}", i - 1);
                        if commit(
                            &g.join(format!("edges/links/{e}.json")),
                            b"{\"strength\": 0.5}",
                        )
                        .is_err()
                        {
                            break;
                        }
                        edges.push(e);
                    }
                    if i >= 3 && i % 5 == 0 {
                        let victim = format!("r{round}n{}", i - 3);
                        targeted.insert(victim.clone());
                        if fs::write(g.join("remove_with_edges"), format!("concepts/{victim}\n"))
                            .is_err()
                        {
                            break;
                        }
                    }
                    i += 1;
                }
                (nodes, edges, targeted)
            })
        };
        thread::sleep(Duration::from_millis(1500));
        m.kill9();
        stop.store(true, Ordering::SeqCst);
        let (nodes, edges, targeted) = writer.join().unwrap();
        assert!(
            nodes.len() > 10,
            "round {round}: only {} nodes acknowledged",
            nodes.len()
        );
        m.remount();
        assert_no_dangling_edge(&g);
        for id in nodes.iter().filter(|id| !targeted.contains(*id)) {
            assert!(
                g.join(format!("nodes/concepts/{id}.json")).exists(),
                "round {round}: acknowledged node {id} lost"
            );
        }
        for e in &edges {
            let (a, b) = e.split_once("_to_").unwrap();
            if !targeted.contains(a) && !targeted.contains(b) {
                assert!(
                    g.join(format!("edges/links/{e}.json")).exists(),
                    "round {round}: acknowledged edge {e} lost"
                );
            }
        }
        eprintln!(
            "round {round}: {} nodes, {} edges acknowledged, {} removals asked",
            nodes.len(),
            edges.len(),
            targeted.len()
        );
    }
}

/// `tar` and `rsync` copy the graph out exactly, and back into an empty graph (nodes
/// first, then edges: an edge can only join existing nodes).
#[test]
fn tar_and_rsync_round_trip_nodes_and_edges() {
    let m = Mount::new();
    ok(
        &m,
        r#"for i in 1 2 3 4 5; do echo "{\"name\": \"p$i\"}" > nodes/persons/p$i.json; done &&
           echo '{"name": "Acme"}' > nodes/organizations/acme.json &&
           for i in 1 2 3 4 5; do echo "{\"strength\": 0.$i}" > edges/works_for/p${i}_to_acme.json; done &&
           echo '{}' > edges/collaborates_with/p1_to_p2.json"#,
    );
    let out = m.scratch().join("out");
    fs::create_dir_all(&out).unwrap();
    let g = m.path(G);
    let tar = format!(
        "tar -C {} -cf - nodes edges | tar -C {} -xf -",
        shq(&g),
        shq(&out)
    );
    assert!(sh_output(&tar).status.success());
    let diff = sh_output(&format!(
        "diff -r {} {} && diff -r {} {}",
        shq(g.join("nodes")),
        shq(out.join("nodes")),
        shq(g.join("edges")),
        shq(out.join("edges"))
    ));
    assert!(diff.status.success(), "{}", stdout(&diff));

    // Back into an empty graph: remove everything, then restore.
    ok(
        &m,
        "for n in nodes/*/*.json; do t=${n#nodes/}; echo ${t%.json} > remove_with_edges; done",
    );
    assert!(names(&g.join("edges/works_for")).is_empty());
    let back = sh_output(&format!(
        "rsync -a {}/nodes/ {}/nodes/ && rsync -a {}/edges/ {}/edges/",
        shq(&out),
        shq(&g),
        shq(&out),
        shq(&g)
    ));
    assert!(back.status.success(), "{}", stderr(&back));
    let diff = sh_output(&format!(
        "diff -r {} {}/nodes && diff -r {}/edges {}/edges",
        shq(out.join("nodes")),
        shq(&g),
        shq(&out),
        shq(&g)
    ));
    assert!(diff.status.success(), "{}", stdout(&diff));
    let v: Value = read_json(&g.join("neighbourhoods/acme.json"));
    assert_eq!(v["in_degree"], 5, "{v}");
    assert_no_dangling_edge(&g);
}

/// The nodes `id`'s neighbourhood lists as nearest, nearest first.
#[track_caller]
fn nearest(m: &Mount, id: &str) -> Vec<String> {
    let v = read_json(&m.path(&format!("{G}/neighbourhoods/{id}.json")));
    (v["nearest"].as_array())
        .unwrap_or_else(|| panic!("{id}'s neighbourhood lists no nearest: {v}"))
        .iter()
        .map(|n| n["node"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Nodes placed by their `coordinates`: each neighbourhood lists the nearest by cosine,
/// the clusters find the two groups, and the index file is kept across a restart.
#[test]
fn nearest_nodes_and_clusters_follow_the_coordinates() {
    let mut m = Mount::new();
    let concepts = m.path("quantum_graph/nodes/concepts");
    let place = |id: &str, c: [f32; 3]| {
        put(
            &concepts.join(format!("{id}.json")),
            format!("{{\"coordinates\": [{}, {}, {}]}}", c[0], c[1], c[2]).as_bytes(),
        );
    };
    for (i, d) in [0.0f32, 0.05, 0.1, 0.15].iter().enumerate() {
        place(&format!("a{i}"), [1.0, *d, 0.0]);
        place(&format!("b{i}"), [0.0, *d, 1.0]);
    }
    let a0 = nearest(&m, "a0");
    assert_eq!(
        (a0.len(), &a0[..3]),
        (5, &["a1", "a2", "a3"].map(String::from)[..])
    );
    assert_eq!(nearest(&m, "b3")[..3], ["b2", "b1", "b0"]);
    let clusters = wait_json(
        &m.path("quantum_graph/dimensions/similarity_clusters.json"),
        10,
        "clusters computed",
        |v| v["clusters"].as_array().is_some_and(|c| c.len() == 2),
    );
    let mut groups: Vec<Vec<String>> = clusters["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut g: Vec<String> = c["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            g.sort();
            g
        })
        .collect();
    groups.sort();
    assert_eq!(groups, [["a0", "a1", "a2", "a3"], ["b0", "b1", "b2", "b3"]]);
    // A node moving changes its neighbours; one removed leaves them: the views, read a
    // moment ago, show each commit at once.
    place("a3", [0.0, 0.2, 1.0]);
    assert_eq!(nearest(&m, "b3")[0], "a3");
    fs::remove_file(concepts.join("b2.json")).unwrap();
    assert!(!nearest(&m, "b3").contains(&"b2".to_string()));
    m.remount();
    let file = get(&m.path("quantum_graph/dimensions/coordinate_index.btree"));
    assert_eq!(&file[..8], b"ISLDIMX1");
    assert_eq!(nearest(&m, "b3")[0], "a3", "the index after a restart");
    assert!(!m.log().contains("rebuilt from the nodes"), "{}", m.log());
}

/// Cosine distance, as the index measures it.
fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    1.0 - dot / (norm(a) * norm(b))
}

/// Past 10,000 nodes the running daemon builds its index's graph; a node committed after
/// that waits to be linked into it, and is found all the same from the moment it is
/// written. Each twin written beside a node is that node's nearest, and the node the
/// twin's, whether the twin still waits or is linked (both happen: maintenance links a
/// few at each tick), and after a restart; a twin removed leaves its node's list at once.
/// The nearest lists kept through the graph's build are compared with an exact scan done
/// here.
#[test]
fn past_ten_thousand_nodes_the_graph_is_built_and_later_nodes_are_found_at_once() {
    const NODES: usize = 10_000;
    const DIM: usize = 8;
    const TWINS: usize = 100;
    let mut m = Mount::new();
    let points = m.path(&format!("{G}/nodes/points"));
    fs::create_dir(&points).unwrap();
    let clusters = m.path(&format!("{G}/dimensions/similarity_clusters.json"));
    let mut rng = crate::rng::SplitMix64::new(14);
    let mut vectors: Vec<(String, Vec<f32>)> = (0..NODES)
        .map(|i| {
            let v = (0..DIM).map(|_| rng.next_f64() as f32 * 2.0 - 1.0);
            (format!("p{i}"), v.collect())
        })
        .collect();
    let place = |id: &str, v: &[f32]| {
        let body = serde_json::json!({ "coordinates": v }).to_string();
        put(&points.join(format!("{id}.json")), body.as_bytes());
    };
    for (id, v) in &vectors {
        place(id, v);
    }
    let built = |v: &Value| v["index"]["search"] == "approximate (HNSW)";
    wait_json(&clusters, 120, "the graph built at 10,000 nodes", built);

    // Twins, each a hundredth of a unit from a node: far nearer than any other node.
    let twinned = |j: usize| j * (NODES / TWINS);
    let twin_of = |j: usize| format!("p{}", twinned(j));
    for j in 0..TWINS {
        let (of, mut v) = vectors[twinned(j)].clone();
        v[0] += 0.01;
        let twin = format!("t{j}");
        place(&twin, &v);
        assert_eq!(
            nearest(&m, &of)[0],
            twin,
            "{of}'s nearest once {twin} is written"
        );
        assert_eq!(nearest(&m, &twin)[0], of, "{twin}'s nearest");
        vectors.push((twin, v));
    }

    // The lists against a scan: the graph's answers are approximate, the lists as good as
    // the inserts' searches, so nearly every one of them is exact.
    let exact = |id: &str, all: &[(String, Vec<f32>)]| -> Vec<String> {
        let v = &all.iter().find(|(n, _)| n == id).expect("a node written").1;
        let mut d: Vec<(f32, &String)> = (all.iter())
            .filter(|(n, _)| n != id)
            .map(|(n, w)| (cosine_distance(v, w), n))
            .collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        d.iter().take(5).map(|(_, n)| n.to_string()).collect()
    };
    let (mut found, mut wanted) = (0, 0);
    for i in (37..NODES).step_by(NODES / 50) {
        let id = format!("p{i}");
        let listed = nearest(&m, &id);
        let want = exact(&id, &vectors);
        found += want.iter().filter(|n| listed.contains(n)).count();
        wanted += want.len();
    }
    assert!(
        found * 100 >= wanted * 95,
        "{found} of the {wanted} exact nearest listed"
    );

    // Half the twins go: each leaves its node's list at once.
    for j in (0..TWINS).step_by(2) {
        fs::remove_file(points.join(format!("t{j}.json"))).unwrap();
        let left = nearest(&m, &twin_of(j));
        assert!(!left.contains(&format!("t{j}")), "t{j} removed: {left:?}");
    }
    let linked = |v: &Value| v["index"]["waiting_to_be_linked"] == 0;
    let v = wait_json(&clusters, 60, "every node linked", linked);
    assert_eq!(v["index"]["nodes"], NODES + TWINS / 2);

    m.remount();
    wait_json(
        &clusters,
        120,
        "the graph built again after a restart",
        built,
    );
    for j in 0..TWINS {
        let listed = nearest(&m, &twin_of(j));
        match j % 2 {
            0 => assert!(!listed.contains(&format!("t{j}")), "t{j}: {listed:?}"),
            _ => assert_eq!(listed[0], format!("t{j}"), "after a restart"),
        }
    }
    assert!(!m.log().contains("rebuilt from the nodes"), "{}", m.log());
}

/// Nodes sharing their neighbours are entangled: listed in `entanglement_map.json` with
/// why, held in `strong_correlations.erl` (which `islabdb correlations` decodes), and
/// opening one brings the other into the cache.
#[test]
fn nodes_sharing_neighbours_are_entangled_and_prefetched_together() {
    let m = Mount::new();
    ok(
        &m,
        r#"for n in a b x y lonely; do echo "{\"name\": \"$n\"}" > nodes/persons/$n.json; done &&
           for n in a b; do for t in x y; do echo '{"strength": 0.9}' > edges/collaborates_with/${n}_to_$t.json; done; done &&
           echo '{"strength": 0.2}' > edges/leads/lonely_to_x.json"#,
    );
    let map = wait_json(
        &m.path("quantum_graph/entanglements/entanglement_map.json"),
        10,
        "pairs computed",
        |v| v["pairs"].as_u64().is_some_and(|n| n >= 2),
    );
    let pairs: Vec<(String, String)> = map["entangled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["a"].as_str().unwrap().to_string(),
                p["b"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |x: &str, y: &str| {
        pairs
            .iter()
            .any(|(a, b)| (a == x && b == y) || (a == y && b == x))
    };
    assert!(
        has("persons/a", "persons/b") && has("persons/x", "persons/y"),
        "{map}"
    );
    assert!(
        !pairs
            .iter()
            .any(|(a, b)| a.contains("lonely") || b.contains("lonely")),
        "{map}"
    );
    // Co-located: one type, one tier.
    assert_eq!(map["pairs_in_two_tiers"], 0, "{map}");
    assert!(
        map["entangled"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["tiers"] == serde_json::json!(["warm", "warm"])),
        "{map}"
    );
    let ino = |id: &str| {
        fs::metadata(m.path(&format!("quantum_graph/nodes/persons/{id}.json")))
            .unwrap()
            .ino()
    };
    let erl = m.path("quantum_graph/entanglements/strong_correlations.erl");
    let out = output_of(
        std::process::Command::new(bin())
            .arg("correlations")
            .arg(&erl),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let decoded: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (a, b) = (ino("a").min(ino("b")), ino("a").max(ino("b")));
    assert!(
        decoded
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["a"] == a && p["b"] == b && p["shared_neighbours"] == true),
        "{decoded}"
    );

    // Opening a brings b into the cache.
    crate::entanglement::flush_cache(&m);
    let analytics = "spacetime/warm_data/event_horizon/cache_analytics.json";
    let prefetched = |m: &Mount| {
        read_json(&m.path("spacetime/hot_data/quantum_indices/relationships.json"))["since_mount"]
            ["prefetched_into_cache"]
            .as_u64()
            .unwrap()
    };
    let before = prefetched(&m);
    get(&m.path("quantum_graph/nodes/persons/a.json"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while prefetched(&m) == before {
        assert!(std::time::Instant::now() < deadline, "b was not prefetched");
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(1100));
    let reads = |m: &Mount| {
        let v = read_json(&m.path(analytics));
        let n = |k: &str| v["reads_of_this_tier"][k].as_u64().unwrap();
        (n("hits"), n("misses"))
    };
    let (h0, m0) = reads(&m);
    get(&m.path("quantum_graph/nodes/persons/b.json"));
    thread::sleep(Duration::from_millis(1100));
    let (h1, m1) = reads(&m);
    assert_eq!(
        (h1 - h0, m1 - m0),
        (1, 0),
        "reading b after a: (hits, misses)"
    );
}

/// `getfattr -n user.islabdb.tier` of `rel` (below `quantum_graph/`).
fn tier_of(m: &Mount, rel: &str) -> String {
    let o = run(
        "getfattr",
        &[
            "-n",
            "user.islabdb.tier",
            "--only-values",
            &m.ps(&format!("{G}/{rel}")),
        ],
    );
    assert!(o.status.success(), "getfattr {rel}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn users_choose_the_tier_of_a_node_type_or_a_node_and_it_stays_chosen() {
    let mut m = Mount::new();
    ok(
        &m,
        r#"echo '{"name": "Alice"}' > nodes/persons/alice.json &&
           echo '{"name": "Bob"}' > nodes/persons/bob.json &&
           echo '{"name": "Acme"}' > nodes/organizations/acme.json &&
           echo '{"strength": 0.9}' > edges/works_for/alice_to_acme.json"#,
    );
    // By default nodes and edges live in the warm tier.
    for rel in [
        "nodes/persons",
        "nodes/persons/alice.json",
        "edges/works_for/alice_to_acme.json",
    ] {
        assert_eq!(tier_of(&m, rel), "warm", "{rel}");
    }
    // A type's directory moves with its nodes, and new nodes are born there.
    ok(&m, "setfattr -n user.islabdb.tier -v hot nodes/persons");
    ok(&m, r#"echo '{"name": "Carol"}' > nodes/persons/carol.json"#);
    for rel in [
        "nodes/persons",
        "nodes/persons/alice.json",
        "nodes/persons/bob.json",
        "nodes/persons/carol.json",
    ] {
        assert_eq!(tier_of(&m, rel), "hot", "{rel}");
    }
    assert_eq!(tier_of(&m, "nodes/organizations/acme.json"), "warm");
    // One node on its own; the record and its edges stay whole.
    ok(
        &m,
        "setfattr -n user.islabdb.tier -v cold nodes/persons/bob.json",
    );
    assert_eq!(tier_of(&m, "nodes/persons/bob.json"), "cold");
    assert_eq!(
        get(&m.path(&format!("{G}/nodes/persons/bob.json"))),
        b"{\"name\": \"Bob\"}\n"
    );
    refused(
        &m,
        "setfattr -n user.islabdb.tier -v lukewarm nodes/persons",
        "Invalid argument",
    );
    refused(
        &m,
        "setfattr -x user.islabdb.tier nodes/persons",
        "Operation not permitted",
    );
    // Elsewhere a record's tier is its place: mv it instead.
    fs::create_dir_all(m.path("spacetime/warm_data/particles/users")).unwrap();
    put(
        &m.path("spacetime/warm_data/particles/users/dave.json"),
        b"{}",
    );
    let dave = m.path("spacetime/warm_data/particles/users/dave.json");
    let o = output_of(
        std::process::Command::new("setfattr")
            .args(["-n", "user.islabdb.tier", "-v", "hot"])
            .arg(&dave),
    );
    assert!(
        !o.status.success() && stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // Each choice is a move of the rebalancing log, with its reason.
    let log = m.path("entropy/rebalancing_log.jsonl");
    let moves = |v: &Value| -> Vec<(String, String, String)> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|l| {
                        let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
                        (s("path"), s("to"), s("reason"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let chosen = "tier chosen (user.islabdb.tier)".to_string();
    let want = [
        (
            format!("{G}/nodes/persons"),
            "hot_data".to_string(),
            chosen.clone(),
        ),
        (
            format!("{G}/nodes/persons/bob.json"),
            "cold_data".to_string(),
            chosen.clone(),
        ),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let o = run("jq", &["-s", ".", log.to_str().unwrap()]);
        assert!(o.status.success(), "jq: {}", stderr(&o));
        let got = moves(&serde_json::from_slice(&o.stdout).unwrap());
        if want.iter().all(|w| {
            got.iter()
                .any(|g| g.0.ends_with(&w.0) && g.1 == w.1 && g.2 == w.2)
        }) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not logged: {got:?}");
        thread::sleep(Duration::from_millis(200));
    }
    // The choices are durable: after kill -9 and a remount they hold.
    m.kill9();
    m.remount();
    assert_eq!(tier_of(&m, "nodes/persons/alice.json"), "hot");
    assert_eq!(tier_of(&m, "nodes/persons/carol.json"), "hot");
    assert_eq!(tier_of(&m, "nodes/persons/bob.json"), "cold");
    assert_eq!(tier_of(&m, "nodes/organizations/acme.json"), "warm");
    assert_eq!(
        get(&m.path(&format!("{G}/nodes/persons/alice.json"))),
        b"{\"name\": \"Alice\"}\n"
    );
    assert_no_dangling_edge(&m.path(G));
}
