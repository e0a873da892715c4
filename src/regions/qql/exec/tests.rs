//! Planner and operator tests over the in-memory source.

use serde_json::{Value, json};

use super::super::lang::parser::parse;
use super::super::lang::path::JsonPath;
use super::super::memsource::Mem;
use super::plan::{Dependency, Plan, plan};
use super::run::run;
use super::{Error, Output};

const HOT: &str = "spacetime/hot_data/particles/users";
const WARM: &str = "spacetime/warm_data/particles/users";

fn universe() -> Mem {
    let mut m = Mem::default();
    m.add(
        HOT,
        "alice",
        json!({"name": "Alice", "age": 34, "city": "Paris", "status": "active", "total": 10}),
    );
    m.add(
        HOT,
        "bob",
        json!({"name": "Bob", "age": 25, "city": "Lyon", "status": "active", "total": 5.5}),
    );
    m.add(HOT, "carol", json!({"name": "Carol", "age": 41, "city": "Nice", "email": "c@x", "status": "idle", "total": 7}));
    m.add(
        WARM,
        "dave",
        json!({"name": "Dave", "age": 30, "city": "Paris", "status": "idle"}),
    );
    m.add(WARM, "eve", json!({"name": "Al", "age": "unknown"}));
    m.add(
        "spacetime/hot_data/particles/orders",
        "o1",
        json!({"total": 3}),
    );
    m.node("persons", "alice", json!({"name": "Alice"}));
    m.node("persons", "bob", json!({"name": "Bob"}));
    m.node("organizations", "acme", json!({"name": "Acme"}));
    m.node("organizations", "globex", json!({"name": "Globex"}));
    m.node("cities", "paris", json!({"name": "Paris"}));
    m.edge("works_for", "alice", "acme", 0.8);
    m.edge("works_for", "bob", "acme", 0.6);
    m.edge("works_for", "bob", "globex", 0.4);
    m.edge("knows", "alice", "bob", 0.9);
    m.edge("located_in", "acme", "paris", 1.0);
    m.edge("located_in", "globex", "paris", 0.5);
    for (id, v) in [
        ("alice", [1.0, 0.0]),
        ("bob", [0.9, 0.1]),
        ("acme", [0.0, 1.0]),
        ("globex", [0.1, 0.9]),
    ] {
        m.vectors.insert(id.to_string(), v.to_vec());
    }
    for (t, ty) in [
        ("2026-11-01T00:10:00Z", "click"),
        ("2026-11-01T00:50:00Z", "view"),
        ("2026-11-01T01:05:00Z", "click"),
        ("2026-11-01T01:06:00Z", "click"),
        ("2026-11-02T00:00:00Z", "click"),
    ] {
        m.events.push(json!({"timestamp": t, "type": ty}));
    }
    m
}

fn planned(m: &Mem, text: &str) -> Plan {
    let q = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    plan(&q, m).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn query(m: &Mem, text: &str) -> Output {
    run(&planned(m, text), m).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn rows(m: &Mem, text: &str) -> Vec<Value> {
    query(m, text).rows
}

fn plan_error(m: &Mem, text: &str) -> String {
    let q = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    match plan(&q, m) {
        Ok(_) => panic!("{text} planned"),
        Err(e) => e.to_string(),
    }
}

/// The first collection's access in the plan's explanation.
fn access(p: &Plan) -> Value {
    p.explain()["collections"][0].clone()
}

#[test]
fn planner_uses_an_index_for_equality() {
    let mut m = universe();
    m.index(HOT, JsonPath::members(&["city"]));
    let p = planned(
        &m,
        &format!("FROM {HOT} WHERE .age > 1 AND .city = \"Paris\""),
    );
    let a = access(&p);
    assert_eq!(a["access"], "index");
    assert_eq!(a["index"], ".city");
    assert_eq!(
        a["why"],
        "equality on indexed path .city (.city = \"Paris\")"
    );
    assert_eq!(a["collection"], HOT);
    let out = run(&p, &m).unwrap();
    assert_eq!(
        out.rows,
        vec![json!({"name": "Alice", "age": 34, "city": "Paris", "status": "active", "total": 10})]
    );
    assert_eq!(out.stats.rows_scanned, 1);
    assert_eq!(
        out.stats.accesses,
        vec![(HOT.to_string(), "index .city".to_string())]
    );
}

#[test]
fn planner_merges_range_conjuncts_into_one_index_range() {
    let mut m = universe();
    m.index(HOT, JsonPath::members(&["age"]));
    let p = planned(
        &m,
        &format!("FROM {HOT} WHERE .age >= 30 AND .age < 40 SELECT @key"),
    );
    let a = access(&p);
    assert_eq!(a["access"], "index");
    assert_eq!(
        a["why"],
        "range on indexed path .age (.age >= 30 AND .age < 40)"
    );
    assert_eq!(
        a["ranges"],
        json!([{"from": {"included": 30}, "to": {"excluded": 40}}])
    );
    let out = run(&p, &m).unwrap();
    assert_eq!(out.rows, vec![json!({"@key": "alice"})]);
    assert_eq!(out.stats.rows_scanned, 1);
    // A range holds one kind of value: `.age > 30` reads numbers only.
    let p = planned(&m, &format!("FROM {HOT} WHERE .age > 30"));
    assert_eq!(
        access(&p)["ranges"],
        json!([{"from": {"excluded": 30}, "to": {"excluded": ""}}])
    );
    // Contradicting bounds ask the source nothing.
    let out = query(&m, &format!("FROM {HOT} WHERE .age > 50 AND .age < 20"));
    assert_eq!((out.rows.len(), out.stats.rows_scanned), (0, 0));
}

#[test]
fn planner_uses_an_index_for_in_and_prefix() {
    let mut m = universe();
    m.index(HOT, JsonPath::members(&["name"]));
    let p = planned(
        &m,
        &format!("FROM {HOT} WHERE .name IN (\"Bob\", \"Carol\", \"Bob\") SELECT @key"),
    );
    assert_eq!(
        access(&p)["why"],
        "IN list on indexed path .name (.name IN (3))"
    );
    assert_eq!(
        run(&p, &m).unwrap().rows,
        vec![json!({"@key": "bob"}), json!({"@key": "carol"})]
    );
    let p = planned(
        &m,
        &format!("FROM {HOT} WHERE .name STARTS WITH \"Ca\" SELECT @key"),
    );
    assert_eq!(
        access(&p)["why"],
        "prefix on indexed path .name (.name STARTS WITH \"Ca\")"
    );
    assert_eq!(
        access(&p)["ranges"],
        json!([{"from": {"included": "Ca"}, "to": {"excluded": "Cb"}}])
    );
    assert_eq!(run(&p, &m).unwrap().rows, vec![json!({"@key": "carol"})]);
}

#[test]
fn planner_prefers_equality_over_range() {
    let mut m = universe();
    m.index(HOT, JsonPath::members(&["age"]));
    m.index(HOT, JsonPath::members(&["city"]));
    let p = planned(
        &m,
        &format!("FROM {HOT} WHERE .age > 20 AND .city = \"Lyon\""),
    );
    assert_eq!(access(&p)["index"], ".city");
}

#[test]
fn planner_reads_an_index_in_order_for_order_by_with_limit() {
    let mut m = universe();
    m.index(HOT, JsonPath::members(&["age"]));
    let text = format!("FROM {HOT} ORDER BY .age DESC LIMIT 1 OFFSET 1 SELECT @key, .age");
    let p = planned(&m, &text);
    let a = access(&p);
    assert_eq!(a["access"], "index_order");
    assert_eq!(
        (a["descending"].clone(), a["stop_after"].clone()),
        (json!(true), json!(2))
    );
    let out = run(&p, &m).unwrap();
    assert_eq!(out.rows, vec![json!({"@key": "alice", "age": 34})]);
    // Two rows wanted, the third read shows the order moved on.
    assert_eq!(out.stats.rows_scanned, 3);
    // Without LIMIT, ordering alone is no reason for the index.
    let p = planned(&m, &format!("FROM {HOT} ORDER BY .age"));
    assert_eq!(access(&p)["access"], "scan");
}

#[test]
fn index_order_reads_records_without_the_path_when_the_index_runs_short() {
    let mut m = universe();
    m.add(HOT, "zed", json!({"name": "Zed"}));
    m.index(HOT, JsonPath::members(&["age"]));
    let text = format!("FROM {HOT} WHERE .name != \"Bob\" ORDER BY .age LIMIT 5 SELECT @key");
    assert_eq!(access(&planned(&m, &text))["access"], "index_order");
    let keys = rows(&m, &text);
    assert_eq!(
        keys,
        vec![
            json!({"@key": "alice"}),
            json!({"@key": "carol"}),
            json!({"@key": "zed"})
        ]
    );
}

#[test]
fn planner_scans_when_no_index_serves() {
    let mut m = universe();
    m.index(HOT, JsonPath::members(&["age"]));
    let p = planned(&m, &format!("FROM {HOT} WHERE .city = \"Paris\""));
    assert_eq!(
        access(&p),
        json!({"collection": HOT, "access": "scan", "why": "no indexed path among the filter's paths .city (indexed: .age)"})
    );
    let p = planned(&m, &format!("FROM {HOT} WHERE .age = 34 OR .age = 25"));
    assert_eq!(
        access(&p)["why"],
        "the filter is an OR, and an index serves only the conjuncts of an AND (indexed: .age)"
    );
    let p = planned(&m, &format!("FROM {HOT} WHERE .age != 3 AND NOT .age = 4"));
    assert!(
        access(&p)["why"]
            .as_str()
            .unwrap_or_default()
            .starts_with("no conjunct of the filter")
    );
    let p = planned(&m, &format!("FROM {HOT}"));
    assert_eq!(
        access(&p)["why"],
        "no filter, and no ORDER BY with LIMIT on an indexed path (indexed: .age)"
    );
    let p = planned(&m, &format!("FROM {WARM} WHERE .age = 30"));
    assert_eq!(access(&p)["why"], "the collection has no index");
    // A path of a joined record is no path of the FROM's records.
    let p = planned(
        &m,
        "FROM quantum_graph/nodes/persons AS p JOIN works_for AS o WHERE o.age = 3",
    );
    assert_eq!(access(&p)["access"], "scan");
}

#[test]
fn patterns_match_collections_of_every_tier() {
    let m = universe();
    let p = planned(
        &m,
        "FROM spacetime/*/particles/users, spacetime/hot_data/particles/users SELECT @key, @tier, @collection",
    );
    assert_eq!(p.explain()["collections"].as_array().map(Vec::len), Some(2));
    let out = run(&p, &m).unwrap();
    let tiers: Vec<(Value, Value)> = out
        .rows
        .iter()
        .map(|r| (r["@key"].clone(), r["@tier"].clone()))
        .collect();
    assert_eq!(
        tiers,
        vec![
            (json!("alice"), json!("hot_data")),
            (json!("bob"), json!("hot_data")),
            (json!("carol"), json!("hot_data")),
            (json!("dave"), json!("warm_data")),
            (json!("eve"), json!("warm_data")),
        ]
    );
    assert_eq!(out.rows[0]["@collection"], "users");
    assert_eq!(out.stats.rows_scanned, 5);
    assert!(rows(&m, "FROM spacetime/*/particles/nothing").is_empty());
}

#[test]
fn filters_follow_the_value_order_and_absent_rules() {
    let m = universe();
    let keys = |w: &str| -> Vec<Value> {
        rows(
            &m,
            &format!("FROM spacetime/*/particles/users WHERE {w} SELECT @key"),
        )
        .into_iter()
        .map(|r| r["@key"].clone())
        .collect()
    };
    assert_eq!(
        keys(".age >= 30"),
        vec![json!("alice"), json!("carol"), json!("dave")]
    );
    // Ranges compare one kind: the string age is neither above nor below 30.
    assert_eq!(keys(".age < 30"), vec![json!("bob")]);
    assert_eq!(keys(".age > \"a\""), vec![json!("eve")]);
    // Absent is never equal nor unequal.
    assert_eq!(keys(".email != \"z\""), vec![json!("carol")]);
    assert_eq!(keys("NOT .email = \"z\"").len(), 5);
    assert_eq!(
        keys("NOT EXISTS .email AND .city IN (\"Paris\", \"Lyon\")"),
        vec![json!("alice"), json!("bob"), json!("dave")]
    );
    assert_eq!(
        keys(".name STARTS WITH \"Al\""),
        vec![json!("alice"), json!("eve")]
    );
    assert_eq!(
        keys(".age = 34.0 OR @key = \"eve\""),
        vec![json!("alice"), json!("eve")]
    );
    assert_eq!(
        keys("30 <= .age AND @tier = \"warm_data\""),
        vec![json!("dave")]
    );
    assert_eq!(
        keys(".total = .total"),
        vec![json!("alice"), json!("bob"), json!("carol")]
    );
}

#[test]
fn projection_order_limit_offset() {
    let m = universe();
    let out = query(
        &m,
        "FROM spacetime/*/particles/users SELECT .name, .age AS years, .email ORDER BY .city DESC, .name LIMIT 3 OFFSET 1",
    );
    assert_eq!(out.columns, vec!["name", "years", "email"]);
    assert_eq!(
        out.rows,
        vec![
            json!({"name": "Dave", "years": 30}),
            json!({"name": "Carol", "years": 41, "email": "c@x"}),
            json!({"name": "Bob", "years": 25}),
        ]
    );
    // Absent sorts last in both directions; ties go by @path.
    let keys: Vec<Value> = rows(
        &m,
        "FROM spacetime/*/particles/users ORDER BY .email DESC SELECT @key",
    )
    .into_iter()
    .map(|r| r["@key"].clone())
    .collect();
    assert_eq!(
        keys,
        vec![
            json!("carol"),
            json!("alice"),
            json!("bob"),
            json!("dave"),
            json!("eve")
        ]
    );
    assert!(rows(&m, "FROM spacetime/*/particles/users LIMIT 0").is_empty());
    assert_eq!(
        rows(&m, "FROM spacetime/*/particles/users OFFSET 4").len(),
        1
    );
}

#[test]
fn group_by_with_every_aggregate() {
    let m = universe();
    let out = query(
        &m,
        "FROM spacetime/*/particles/users GROUP BY .status SELECT .status, count(), count(.email) AS emails, sum(.total), avg(.total), min(.age), max(.age)",
    );
    assert_eq!(
        out.rows,
        vec![
            json!({"status": "active", "count": 2, "emails": 0, "sum(total)": 15.5, "avg(total)": 7.75, "min(age)": 25, "max(age)": 34}),
            json!({"status": "idle", "count": 2, "emails": 1, "sum(total)": 7, "avg(total)": 7.0, "min(age)": 30, "max(age)": 41}),
            // Absent is a group of its own, last; its key column is left out.
            json!({"count": 1, "emails": 0, "sum(total)": 0, "avg(total)": null, "min(age)": "unknown", "max(age)": "unknown"}),
        ]
    );
    // Without SELECT: the keys and a count. ORDER BY a column of the output.
    let out = query(
        &m,
        "FROM spacetime/*/particles/users WHERE EXISTS .status GROUP BY .city ORDER BY count() DESC, .city",
    );
    assert_eq!(out.columns, vec!["city", "count"]);
    assert_eq!(out.rows[0], json!({"city": "Paris", "count": 2}));
    let out = query(
        &m,
        "FROM spacetime/*/particles/users GROUP BY .city SELECT .city, count() AS n ORDER BY .n DESC, .city LIMIT 2",
    );
    assert_eq!(
        out.rows,
        vec![
            json!({"city": "Paris", "n": 2}),
            json!({"city": "Lyon", "n": 1})
        ]
    );
}

#[test]
fn aggregates_without_group_by_make_one_row() {
    let m = universe();
    assert_eq!(
        rows(&m, "FROM spacetime/*/particles/users SELECT count()"),
        vec![json!({"count": 5})]
    );
    assert_eq!(
        rows(
            &m,
            "FROM spacetime/*/particles/users WHERE .age > 100 SELECT count(), sum(.age), max(.age)"
        ),
        vec![json!({"count": 0, "sum(age)": 0, "max(age)": null})]
    );
}

#[test]
fn events_by_time_range_and_bucket() {
    let m = universe();
    let out = query(
        &m,
        "FROM STREAM events SINCE \"2026-11-01T00:00:00Z\" UNTIL \"2026-11-02T00:00:00Z\" WHERE .type = \"click\" GROUP BY BUCKET 1h SELECT @bucket, count()",
    );
    assert_eq!(
        out.rows,
        vec![
            json!({"@bucket": "2026-11-01T00:00:00Z", "count": 1}),
            json!({"@bucket": "2026-11-01T01:00:00Z", "count": 2}),
        ]
    );
    assert_eq!(out.stats.rows_scanned, 4);
    let out = query(
        &m,
        "FROM STREAM events WHERE @time >= \"2026-11-01T01:00:00Z\" SELECT @time, .type LIMIT 2",
    );
    assert_eq!(
        out.rows[0],
        json!({"@time": "2026-11-01T01:05:00Z", "type": "click"})
    );
    assert_eq!(out.rows.len(), 2);
    let out = query(
        &m,
        "FROM STREAM events GROUP BY BUCKET 1d, .type SELECT @bucket, .type, count() AS n ORDER BY .n DESC",
    );
    assert_eq!(
        out.rows[0],
        json!({"@bucket": "2026-11-01T00:00:00Z", "type": "click", "n": 3})
    );
}

#[test]
fn neighbours_with_edges_and_effective_strength() {
    let m = universe();
    let out = query(
        &m,
        "NEIGHBOURS OF bob SELECT @key, @direction, @edge.relation, @edge.effective_strength AS s",
    );
    assert_eq!(
        out.rows,
        vec![
            json!({"@key": "alice", "@direction": "in", "@edge.relation": "knows", "s": 0.45}),
            json!({"@key": "acme", "@direction": "out", "@edge.relation": "works_for", "s": 0.3}),
            json!({"@key": "globex", "@direction": "out", "@edge.relation": "works_for", "s": 0.2}),
        ]
    );
    let out = query(
        &m,
        "NEIGHBOURS OF acme VIA works_for IN WHERE @edge.strength > 0.7",
    );
    assert_eq!(out.rows, vec![json!({"name": "Alice"})]);
    let e = run(&planned(&m, "NEIGHBOURS OF nobody"), &m)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(e, Err("no graph node \"nobody\"".to_string()));
}

#[test]
fn paths_up_to_a_depth() {
    let m = universe();
    let out = query(&m, "PATHS FROM alice TO paris MAX DEPTH 3");
    let nodes: Vec<Value> = out.rows.iter().map(|r| r["nodes"].clone()).collect();
    assert_eq!(
        nodes,
        vec![
            json!(["alice", "acme", "paris"]),
            json!(["alice", "bob", "acme", "paris"]),
            json!(["alice", "bob", "globex", "paris"])
        ]
    );
    assert_eq!(out.rows[0]["length"], 2);
    assert_eq!(out.rows[0]["strength"], json!(0.4 * 0.5));
    assert_eq!(out.rows[0]["edges"][0]["relation"], "works_for");
    assert_eq!(rows(&m, "PATHS FROM alice TO paris MAX DEPTH 2").len(), 1);
    assert_eq!(rows(&m, "PATHS FROM alice TO paris VIA works_for").len(), 0);
    assert_eq!(rows(&m, "PATHS FROM paris TO alice").len(), 0);
    assert_eq!(rows(&m, "PATHS FROM paris TO alice IN").len(), 3);
    let best = rows(
        &m,
        "PATHS FROM alice TO paris WHERE .length > 2 ORDER BY .strength DESC LIMIT 1 SELECT .nodes",
    );
    assert_eq!(
        best,
        vec![json!({"nodes": ["alice", "bob", "acme", "paris"]})]
    );
}

#[test]
fn nearest_to_a_node_or_a_vector() {
    let m = universe();
    let out = query(&m, "NEAREST 2 TO alice SELECT @key, @rank");
    assert_eq!(
        out.rows,
        vec![
            json!({"@key": "bob", "@rank": 1}),
            json!({"@key": "globex", "@rank": 2})
        ]
    );
    let out = query(&m, "NEAREST 1 TO [0, 1] SELECT @key, @distance");
    assert_eq!(out.rows, vec![json!({"@key": "acme", "@distance": 0.0})]);
}

#[test]
fn join_along_edges() {
    let m = universe();
    let out = query(
        &m,
        "FROM quantum_graph/nodes/persons AS p JOIN works_for OUT AS o SELECT p.name, o.name AS org, @edge.strength ORDER BY @edge.strength DESC",
    );
    assert_eq!(
        out.rows,
        vec![
            json!({"p.name": "Alice", "org": "Acme", "@edge.strength": 0.8}),
            json!({"p.name": "Bob", "org": "Acme", "@edge.strength": 0.6}),
            json!({"p.name": "Bob", "org": "Globex", "@edge.strength": 0.4}),
        ]
    );
    // Chained JOINs, WHERE over any record, whole records by alias.
    let out = query(
        &m,
        "FROM quantum_graph/nodes/persons AS p JOIN works_for AS o JOIN located_in AS c WHERE o.name = \"Globex\"",
    );
    assert_eq!(
        out.rows,
        vec![json!({"p": {"name": "Bob"}, "o": {"name": "Globex"}, "c": {"name": "Paris"}})]
    );
    let out = query(
        &m,
        "FROM quantum_graph/nodes/organizations JOIN * IN GROUP BY @key SELECT @key, count()",
    );
    assert_eq!(
        out.rows,
        vec![
            json!({"@key": "acme", "count": 2}),
            json!({"@key": "globex", "count": 1})
        ]
    );
}

#[test]
fn planner_refuses_what_does_not_fit() {
    let m = universe();
    assert_eq!(
        plan_error(&m, "FROM a AS p WHERE q.x = 1"),
        "1:19: unknown name q (the rows' records are p)"
    );
    assert_eq!(
        plan_error(&m, "FROM a GROUP BY .x SELECT .y"),
        "1:27: .y is neither a GROUP BY key nor an aggregate"
    );
    assert_eq!(
        plan_error(&m, "FROM a SELECT .x, count()"),
        "1:15: .x is neither a GROUP BY key nor an aggregate"
    );
    assert_eq!(
        plan_error(&m, "FROM a GROUP BY BUCKET 1h"),
        "1:17: BUCKET groups events by time: use it with FROM STREAM"
    );
    assert_eq!(
        plan_error(&m, "FROM a SELECT .x, .y.x AS x"),
        "1:19: two columns are named x: name one with AS"
    );
    assert_eq!(
        plan_error(&m, "FROM a ORDER BY count()"),
        "1:17: count() in ORDER BY needs GROUP BY or aggregates in SELECT"
    );
    assert_eq!(
        plan_error(&m, "FROM a GROUP BY .x ORDER BY sum(.y)"),
        "1:29: ORDER BY sum(.y): the aggregate must be in SELECT"
    );
    assert_eq!(
        plan_error(&m, "FROM a AS p JOIN r AS p"),
        "1:13: the name p is used twice: name the JOIN with AS"
    );
    assert_eq!(
        plan_error(&m, "PATHS FROM a TO b JOIN r"),
        "1:1: JOIN follows edges from records or nodes, not from paths or events"
    );
    assert!(matches!(
        plan(&parse("FROM a AS p WHERE q.x = 1").unwrap(), &m),
        Err(Error::Query(_))
    ));
}

#[test]
fn plan_says_what_it_depends_on_and_explains_itself() {
    let m = universe();
    let p = planned(
        &m,
        "FROM spacetime/*/particles/users AS u JOIN works_for WHERE .age > 3 SELECT .name ORDER BY .name LIMIT 2",
    );
    assert_eq!(
        p.depends_on(),
        vec![
            Dependency::Collections(vec![
                "spacetime".into(),
                "*".into(),
                "particles".into(),
                "users".into()
            ]),
            Dependency::Graph
        ]
    );
    let e = p.explain();
    assert_eq!(
        e["source"],
        json!({"collections": ["spacetime/*/particles/users"]})
    );
    assert_eq!(
        e["joins"],
        json!([{"relation": "works_for", "direction": "OUT", "as": "works_for"}])
    );
    assert_eq!(e["filter"], ".age > 3");
    assert_eq!(e["columns"], json!(["name"]));
    assert_eq!(e["order_by"], json!([".name"]));
    assert_eq!(
        e["depends_on"],
        json!([{"collections": "spacetime/*/particles/users"}, "graph"])
    );
    assert_eq!(
        planned(&m, "FROM STREAM events").depends_on(),
        vec![Dependency::Stream("events".into())]
    );
    assert_eq!(
        planned(&m, "NEAREST 1 TO alice").depends_on(),
        vec![Dependency::Graph]
    );
    let stats = query(&m, "FROM spacetime/hot_data/particles/orders")
        .stats
        .to_json();
    assert_eq!(
        stats,
        json!({"rows_scanned": 1, "rows_returned": 1, "accesses": [{"collection": "spacetime/hot_data/particles/orders", "access": "scan"}]})
    );
}

#[test]
fn a_collection_made_after_planning_is_read_too() {
    let mut m = universe();
    let p = planned(&m, "FROM spacetime/*/particles/users SELECT count()");
    m.add("spacetime/cold_data/particles/users", "old", json!({}));
    assert_eq!(run(&p, &m).unwrap().rows, vec![json!({"count": 6})]);
}
