//! Planner and operator tests over the in-memory source: a small universe and the
//! helpers both use.

use serde_json::{Value, json};

mod operators;
mod planner;

use crate::regions::qql::exec::Output;
use crate::regions::qql::exec::plan::{Plan, plan};
use crate::regions::qql::exec::run::run;
use crate::regions::qql::lang::parser::parse;
use crate::regions::qql::memsource::Mem;

pub const HOT: &str = "spacetime/hot_data/particles/users";
pub const WARM: &str = "spacetime/warm_data/particles/users";

pub fn universe() -> Mem {
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

pub fn planned(m: &Mem, text: &str) -> Plan {
    let q = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    plan(&q, m).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn query(m: &Mem, text: &str) -> Output {
    run(&planned(m, text), m).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn rows(m: &Mem, text: &str) -> Vec<Value> {
    query(m, text).rows
}

pub fn plan_error(m: &Mem, text: &str) -> String {
    let q = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    match plan(&q, m) {
        Ok(_) => panic!("{text} planned"),
        Err(e) => e.to_string(),
    }
}

/// The first collection's access in the plan's explanation.
pub fn access(p: &Plan) -> Value {
    p.explain()["collections"][0].clone()
}
