//! Each operator: sources (collections, stream, graph), filters, projection, order,
//! limit and offset, grouping and aggregates, joins.

use serde_json::{Value, json};

use super::{planned, query, rows, universe};
use crate::regions::qql::exec::run::run;

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
