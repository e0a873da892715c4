//! The planner: which index it chooses, why, and what it refuses.

use serde_json::json;

use super::{HOT, WARM, access, plan_error, planned, query, rows, universe};
use crate::regions::qql::exec::Error;
use crate::regions::qql::exec::plan::{Dependency, plan};
use crate::regions::qql::exec::run::run;
use crate::regions::qql::lang::parser::parse;
use crate::regions::qql::lang::path::JsonPath;

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
    assert_eq!(p.explain()["filter"], "(.age >= 30) AND (.age < 40)");
    assert_eq!(p.explain()["columns"], json!(["@key"]));
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
fn a_range_on_the_order_by_path_is_read_in_order_and_stops_early() {
    let mut m = universe();
    m.add(HOT, "zed", json!({"name": "Zed"}));
    m.index(HOT, JsonPath::members(&["age"]));
    let text = format!(
        "FROM {HOT} WHERE .age >= 20 AND .age <= 40 ORDER BY .age DESC LIMIT 1 SELECT @key, .age"
    );
    let p = planned(&m, &text);
    let a = access(&p);
    assert_eq!(a["access"], "index_order", "{a}");
    assert!(a["range"].is_object(), "{a}");
    let out = run(&p, &m).unwrap();
    assert_eq!(out.rows, vec![json!({"@key": "alice", "age": 34})]);
    // The first row in the range and the next (not tied) only; never the record
    // without an age, which the range excludes.
    assert_eq!(out.stats.rows_scanned, 2);
    // Past the end of the range, nothing more is read.
    let none = format!("FROM {HOT} WHERE .age > 100 ORDER BY .age LIMIT 3 SELECT @key");
    let out = run(&planned(&m, &none), &m).unwrap();
    assert!(out.rows.is_empty());
    assert_eq!(out.stats.rows_scanned, 0);
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
