//! Parser tests: every grammar rule, and errors with their positions.

use serde_json::json;

use super::ast::*;
use super::error::Pos;
use super::lexer::{Tok, lex, normalize};
use super::parser::parse;
use super::path::{JsonPath, Step};
use super::value::{Lit, cmp, cmp_sort_key, prefix_successor};

fn ok(text: &str) -> Query {
    parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(q) => panic!("{text} parsed: {q:?}"),
        Err(e) => e.to_string(),
    }
}

fn pos(line: u32, col: u32) -> Pos {
    Pos { line, col }
}

fn path_ref(names: &[&str], at: Pos) -> Ref {
    Ref {
        alias: None,
        meta: None,
        path: JsonPath::members(names),
        pos: at,
    }
}

#[test]
fn lexes_tokens_with_positions() {
    let toks = lex("FROM a\n  WHERE .x >= -1.5e2 -- comment\n<> \"q\\\"\\u0041\" 5m").unwrap();
    let kinds: Vec<Tok> = toks.iter().map(|t| t.tok.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            Tok::Word("FROM".into()),
            Tok::Word("a".into()),
            Tok::Word("WHERE".into()),
            Tok::Dot,
            Tok::Word("x".into()),
            Tok::Ge,
            Tok::Float(-150.0),
            Tok::Ne,
            Tok::Str("q\"A".into()),
            Tok::Duration(300_000_000),
            Tok::Eof,
        ]
    );
    assert_eq!(toks[2].pos, pos(2, 3));
    assert_eq!(toks[7].pos, pos(3, 1));
}

#[test]
fn lexer_errors_have_positions() {
    assert_eq!(
        err("FROM a WHERE .x = \"open"),
        "1:19: string not closed (a \" is missing)"
    );
    assert_eq!(
        err("FROM a WHERE .x = 1 ; "),
        "1:21: unexpected character \";\""
    );
    assert_eq!(
        err("FROM a WHERE .x = \"\\q\""),
        "1:20: bad escape \\q in a string"
    );
    assert_eq!(
        err("FROM STREAM events GROUP BY BUCKET 5y"),
        "1:36: unknown duration unit \"y\" (s, m, h or d)"
    );
    assert_eq!(
        err("FROM STREAM events GROUP BY BUCKET 5ms"),
        "1:36: unknown duration unit (s, m, h or d)"
    );
}

#[test]
fn from_collections_patterns_and_alias() {
    let q = ok("FROM spacetime/*/particles/users, quantum_graph/nodes/persons AS u");
    let From::Collections { patterns, alias } = &q.from else {
        panic!("{q:?}")
    };
    assert_eq!(patterns.len(), 2);
    assert_eq!(
        patterns[0].segments,
        vec![
            Segment::Name("spacetime".into()),
            Segment::Any,
            Segment::Name("particles".into()),
            Segment::Name("users".into())
        ]
    );
    assert_eq!(patterns[1].to_string(), "quantum_graph/nodes/persons");
    assert_eq!(patterns[1].pos, pos(1, 35));
    assert_eq!(alias.as_deref(), Some("u"));
    // A quoted pattern, and a quoted or numeric segment.
    let q = ok("from \"spacetime/*/particles/my users\", a/\"b c\"/2026");
    let From::Collections {
        patterns,
        alias: None,
    } = &q.from
    else {
        panic!("{q:?}")
    };
    assert_eq!(
        patterns[0].strings(),
        vec!["spacetime", "*", "particles", "my users"]
    );
    assert_eq!(patterns[1].strings(), vec!["a", "b c", "2026"]);
    assert_eq!(q.select, None);
    assert_eq!(
        err("FROM \"a//b\""),
        "1:6: a path pattern has an empty segment"
    );
}

#[test]
fn from_stream_with_time_range() {
    let q =
        ok("FROM STREAM events SINCE \"2026-11-01T00:00:00Z\" UNTIL \"2026-11-02T00:00:00Z\" AS e");
    let From::Stream {
        name,
        since,
        until,
        alias,
        ..
    } = &q.from
    else {
        panic!("{q:?}")
    };
    assert_eq!(name, "events");
    assert_eq!(*since, Some(1_793_491_200_000_000));
    assert_eq!(until.zip(*since).map(|(u, s)| u - s), Some(86_400_000_000));
    assert_eq!(alias.as_deref(), Some("e"));
    assert!(matches!(
        ok("FROM STREAM events").from,
        From::Stream {
            since: None,
            until: None,
            ..
        }
    ));
    assert!(
        err("FROM STREAM events SINCE \"yesterday\"")
            .starts_with("1:26: \"yesterday\" after SINCE: not an RFC 3339 time")
    );
    assert_eq!(
        err("FROM STREAM events SINCE 5"),
        "1:26: expected a time in quotes after SINCE, found the number 5"
    );
}

#[test]
fn graph_sources() {
    let q = ok("NEIGHBOURS OF alice VIA works_for OUT AS n");
    assert!(
        matches!(&q.from, From::Neighbours { of, via: Some(v), dir: Direction::Out, alias: Some(a), .. }
        if of == "alice" && v == "works_for" && a == "n")
    );
    let q = ok("neighbors of \"bob-2\"");
    assert!(
        matches!(&q.from, From::Neighbours { of, via: None, dir: Direction::Both, alias: None, .. } if of == "bob-2")
    );
    let q = ok("PATHS FROM alice TO acme VIA knows BOTH MAX DEPTH 4");
    assert!(
        matches!(&q.from, From::Paths { from, to, via: Some(v), dir: Direction::Both, max_depth: 4, .. }
        if from == "alice" && to == "acme" && v == "knows")
    );
    assert!(matches!(
        ok("PATHS FROM a TO b").from,
        From::Paths {
            dir: Direction::Out,
            max_depth: 3,
            via: None,
            ..
        }
    ));
    assert!(
        matches!(ok("NEAREST 5 TO alice").from, From::Nearest { k: 5, to: Target::Node(ref n), .. } if n == "alice")
    );
    assert!(matches!(ok("NEAREST 2 TO [0.5, 1, -2] AS m").from,
        From::Nearest { k: 2, to: Target::Vector(ref v), alias: Some(_), .. } if *v == vec![0.5, 1.0, -2.0]));
    assert_eq!(
        err("PATHS FROM a TO b MAX DEPTH 0"),
        "1:29: the depth after MAX DEPTH must be between 1 and 8"
    );
    assert_eq!(
        err("NEAREST 5 TO [1, \"x\"]"),
        "1:18: expected a number in the vector, found the string \"x\""
    );
    assert_eq!(
        err("NEIGHBOURS OF FROM"),
        "1:15: expected a node id after OF, found \"FROM\""
    );
    assert_eq!(
        err("WHERE .a = 1"),
        "1:1: expected FROM, NEIGHBOURS, PATHS or NEAREST at the start of a query, found \"WHERE\""
    );
    assert_eq!(
        err("SELECT .a"),
        "1:10: expected FROM, NEIGHBOURS, PATHS or NEAREST at the start of a query, found the end of the query"
    );
}

#[test]
fn joins() {
    let q = ok(
        "FROM quantum_graph/nodes/persons AS p JOIN works_for OUT AS o JOIN * IN JOIN located_in",
    );
    assert_eq!(q.joins.len(), 3);
    assert_eq!(q.joins[0].relation.as_deref(), Some("works_for"));
    assert_eq!(q.joins[0].alias.as_deref(), Some("o"));
    assert_eq!(q.joins[1].relation, None);
    assert_eq!(q.joins[1].dir, Direction::In);
    assert_eq!(q.joins[2].dir, Direction::Out);
    assert_eq!(q.joins[2].pos, pos(1, 73));
    assert_eq!(
        err("FROM a JOIN WHERE"),
        "1:13: expected a relation (or *) after JOIN, found \"WHERE\""
    );
}

#[test]
fn where_comparisons_and_literals() {
    let q = ok("FROM a WHERE .age >= 30");
    assert_eq!(
        q.filter,
        Some(Expr::Cmp(
            Operand::Ref(path_ref(&["age"], pos(1, 14))),
            CmpOp::Ge,
            Operand::Lit(Lit::Int(30))
        ))
    );
    for (op, want) in [
        ("=", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        ("<>", CmpOp::Ne),
        ("<", CmpOp::Lt),
        ("<=", CmpOp::Le),
        (">", CmpOp::Gt),
    ] {
        let q = ok(&format!("FROM a WHERE .x {op} 1"));
        assert!(
            matches!(q.filter, Some(Expr::Cmp(_, o, _)) if o == want),
            "{op}"
        );
    }
    let q = ok("FROM a WHERE .x = [1, 2.5, \"s\", true, false, null, []]");
    let Some(Expr::Cmp(_, _, Operand::Lit(l))) = q.filter else {
        panic!()
    };
    assert_eq!(l.to_value(), json!([1, 2.5, "s", true, false, null, []]));
    // A literal on the left, a reference on both sides.
    assert!(matches!(
        ok("FROM a WHERE 3 < .x").filter,
        Some(Expr::Cmp(Operand::Lit(_), CmpOp::Lt, Operand::Ref(_)))
    ));
    assert!(matches!(
        ok("FROM a WHERE .x = .y").filter,
        Some(Expr::Cmp(Operand::Ref(_), CmpOp::Eq, Operand::Ref(_)))
    ));
    assert_eq!(
        err("FROM a WHERE .x = "),
        "1:19: expected a value after =, found the end of the query"
    );
    assert_eq!(
        err("FROM a WHERE .x 3"),
        "1:17: expected a comparison (=, !=, <, <=, >, >=), IN, NOT IN or STARTS WITH after .x, found the number 3"
    );
}

#[test]
fn where_in_exists_starts_with() {
    let q = ok("FROM a WHERE .city IN (\"Paris\", \"Lyon\")");
    assert!(matches!(&q.filter, Some(Expr::In(_, l)) if l.len() == 2));
    let q = ok("FROM a WHERE .city NOT IN (1)");
    assert!(matches!(&q.filter, Some(Expr::Not(x)) if matches!(**x, Expr::In(..))));
    let q = ok("FROM a WHERE EXISTS .email");
    assert!(matches!(&q.filter, Some(Expr::Exists(r)) if r.path == JsonPath::members(&["email"])));
    let q = ok("FROM a WHERE .name STARTS WITH \"Al\"");
    assert!(matches!(&q.filter, Some(Expr::StartsWith(_, s)) if s == "Al"));
    assert_eq!(
        err("FROM a WHERE .x IN ()"),
        "1:21: expected a value in the IN list, found \")\""
    );
    assert_eq!(
        err("FROM a WHERE .x IN (1 2)"),
        "1:23: expected \",\" or \")\" in the IN list, found the number 2"
    );
    assert_eq!(
        err("FROM a WHERE .x STARTS WITH 1"),
        "1:29: expected a string after STARTS WITH, found the number 1"
    );
    assert_eq!(
        err("FROM a WHERE EXISTS 1"),
        "1:21: expected a path after EXISTS, found the number 1"
    );
}

#[test]
fn boolean_precedence_and_parentheses() {
    // NOT binds tighter than AND, AND tighter than OR.
    let q = ok("FROM a WHERE NOT .a = 1 AND .b = 2 OR .c = 3");
    let Some(Expr::Or(xs)) = &q.filter else {
        panic!("{q:?}")
    };
    assert_eq!(xs.len(), 2);
    let Expr::And(ys) = &xs[0] else { panic!() };
    assert!(matches!(ys[0], Expr::Not(_)));
    let q = ok("FROM a WHERE .a = 1 AND (.b = 2 OR NOT EXISTS .c)");
    let Some(Expr::And(xs)) = &q.filter else {
        panic!()
    };
    assert!(matches!(&xs[1], Expr::Or(ys) if matches!(ys[1], Expr::Not(_))));
    assert_eq!(
        err("FROM a WHERE (.a = 1"),
        "1:21: expected \")\" to close the parenthesis, found the end of the query"
    );
}

#[test]
fn references_paths_and_meta_fields() {
    let q = ok(
        "FROM a AS p WHERE p.address.city = 1 AND .tags[0] = 2 AND .\"odd key\"[1].x = 3 AND @key = 4 AND p@edge.strength = 5 AND .[2] = 6",
    );
    let Some(Expr::And(xs)) = &q.filter else {
        panic!()
    };
    let refs: Vec<Ref> = xs
        .iter()
        .map(|x| match x {
            Expr::Cmp(Operand::Ref(r), _, _) => r.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(refs[0].alias.as_deref(), Some("p"));
    assert_eq!(refs[0].path, JsonPath::members(&["address", "city"]));
    assert_eq!(
        refs[1].path.0,
        vec![Step::Member("tags".into()), Step::Index(0)]
    );
    assert_eq!(
        refs[2].path.0,
        vec![
            Step::Member("odd key".into()),
            Step::Index(1),
            Step::Member("x".into())
        ]
    );
    assert_eq!(refs[2].to_string(), ".\"odd key\"[1].x");
    assert_eq!(refs[3].meta.as_deref(), Some("key"));
    assert!(refs[3].path.is_empty());
    assert_eq!(
        (refs[4].alias.as_deref(), refs[4].meta.as_deref()),
        (Some("p"), Some("edge"))
    );
    assert_eq!(refs[4].to_string(), "p@edge.strength");
    assert_eq!(refs[5].path.0, vec![Step::Index(2)]);
    assert_eq!(
        err("FROM a WHERE @nope = 1"),
        "1:15: unknown meta field @nope (known: @key, @path, @tier, @collection, @time, @bucket, @edge, @distance, @rank, @direction)"
    );
    assert_eq!(
        err("FROM a WHERE . = 1"),
        "1:16: expected a member name after \".\", found \"=\""
    );
    assert_eq!(
        err("FROM a WHERE .a[x] = 1"),
        "1:17: expected an array index (0, 1, …) after \"[\", found \"x\""
    );
}

#[test]
fn group_by_keys_and_buckets() {
    let q = ok("FROM STREAM events GROUP BY BUCKET 1h, .type");
    assert_eq!(q.group.len(), 2);
    assert!(matches!(q.group[0], GroupKey::Bucket(3_600_000_000, _)));
    assert!(matches!(&q.group[1], GroupKey::Ref(r) if r.path == JsonPath::members(&["type"])));
    for (d, us) in [
        ("30s", 30_000_000),
        ("5m", 300_000_000),
        ("1d", 86_400_000_000),
    ] {
        assert!(
            matches!(ok(&format!("FROM STREAM e GROUP BY BUCKET {d}")).group[0], GroupKey::Bucket(u, _) if u == us)
        );
    }
    assert_eq!(
        err("FROM a GROUP .x"),
        "1:14: expected BY after GROUP, found \".\""
    );
    assert_eq!(
        err("FROM a GROUP BY BUCKET 5"),
        "1:24: expected a duration (like 30s, 5m, 1h, 1d) after BUCKET, found the number 5"
    );
}

#[test]
fn select_items_aggregates_and_star() {
    let q = ok(
        "FROM a GROUP BY .status SELECT .status, count(), COUNT(.x) AS n, sum(.total), avg(.total), min(.t), max(.t)",
    );
    let items = q.select.unwrap_or_default();
    assert_eq!(items.len(), 7);
    assert!(matches!(items[1].term, Term::Agg(AggFn::Count, None, _)));
    assert!(matches!(items[2].term, Term::Agg(AggFn::Count, Some(_), _)));
    assert_eq!(items[2].name.as_deref(), Some("n"));
    let fns: Vec<String> = items[3..].iter().map(|i| i.term.to_string()).collect();
    assert_eq!(
        fns,
        vec!["sum(.total)", "avg(.total)", "min(.t)", "max(.t)"]
    );
    assert_eq!(ok("FROM a SELECT *").select, None);
    assert_eq!(
        ok("FROM a SELECT .x AS \"my col\"")
            .select
            .unwrap_or_default()[0]
            .name
            .as_deref(),
        Some("my col")
    );
    assert_eq!(
        err("FROM users SELECT FROM"),
        "1:19: expected a path, a meta field or an aggregate after SELECT, found \"FROM\""
    );
    assert_eq!(err("FROM a SELECT sum()"), "1:15: sum() needs a path");
    assert_eq!(
        err("FROM a SELECT median(.x)"),
        "1:15: unknown function median() (count, sum, min, max or avg)"
    );
    assert_eq!(
        err("FROM a SELECT .x AS"),
        "1:20: expected a name after AS, found the end of the query"
    );
}

#[test]
fn order_limit_offset() {
    let q = ok("FROM a ORDER BY .age DESC, .name ASC, .x, count() LIMIT 10 OFFSET 5");
    let dirs: Vec<bool> = q.order.iter().map(|o| o.desc).collect();
    assert_eq!(dirs, vec![true, false, false, false]);
    assert_eq!((q.limit, q.offset), (Some(10), Some(5)));
    assert_eq!(ok("FROM a OFFSET 3").offset, Some(3));
    assert_eq!(
        err("FROM a LIMIT -1"),
        "1:14: expected a number of rows after LIMIT, found the number -1"
    );
    assert_eq!(
        err("FROM a ORDER .x"),
        "1:14: expected BY after ORDER, found \".\""
    );
}

#[test]
fn clause_order_is_fixed() {
    assert_eq!(
        err("FROM a SELECT .x WHERE .x = 1"),
        "1:18: expected the end of the query (clauses go in the order FROM, JOIN, WHERE, GROUP BY, ORDER BY, LIMIT, OFFSET; SELECT first, after GROUP BY or last), found \"WHERE\""
    );
    // SELECT first, after GROUP BY, or last; once.
    let a = ok("SELECT .x FROM a WHERE .x = 1 ORDER BY .x LIMIT 1");
    let b = ok("FROM a WHERE .x = 1 SELECT .x ORDER BY .x LIMIT 1");
    let c = ok("FROM a WHERE .x = 1 ORDER BY .x LIMIT 1 SELECT .x");
    let shape = |q: &Query| {
        let sel: Vec<String> = q
            .select
            .iter()
            .flatten()
            .map(|i| i.term.to_string())
            .collect();
        (
            sel,
            q.filter.as_ref().map(ToString::to_string),
            q.order.len(),
            q.limit,
        )
    };
    assert_eq!(
        shape(&a),
        (
            vec![".x".to_string()],
            Some(".x = 1".to_string()),
            1,
            Some(1)
        )
    );
    assert!(shape(&a) == shape(&b) && shape(&b) == shape(&c));
    assert_eq!(
        err("SELECT .x FROM a SELECT .y"),
        "1:18: a query has one SELECT"
    );
    assert_eq!(
        err("FROM a SELECT .x LIMIT 1 SELECT .y"),
        "1:26: a query has one SELECT"
    );
    // Keywords in any case, comments and line breaks anywhere.
    let q = ok("from a -- the users\nwhere .x = 1\n  select .x order by .x desc limit 1");
    assert!(q.filter.is_some() && q.select.is_some() && q.order[0].desc && q.limit == Some(1));
    assert_eq!(
        err("FROM a\nWHERE .x ="),
        "2:11: expected a value after =, found the end of the query"
    );
}

#[test]
fn reserved_words_must_be_quoted_as_names() {
    assert_eq!(
        err("FROM a AS select"),
        "1:11: expected a name after AS, found \"select\""
    );
    assert!(
        matches!(ok("FROM a AS \"select\"").from, From::Collections { alias: Some(ref a), .. } if a == "select")
    );
    // Members are never reserved.
    assert!(ok("FROM a WHERE .from = 1 AND .count = 2").filter.is_some());
}

#[test]
fn normalized_text_ignores_blanks_comments_and_keyword_case() {
    let a = normalize("from  a\nwhere .x = \"y\" -- note").unwrap();
    let b = normalize("FROM a WHERE .x=\"y\"").unwrap();
    assert_eq!(a, b);
    assert_eq!(a, "FROM a WHERE . x = \"y\"");
    assert_ne!(normalize("FROM a WHERE .x = \"Y\"").unwrap(), b);
}

#[test]
fn value_order_is_total_and_kinds_come_in_order() {
    let ordered = [
        json!(null),
        json!(false),
        json!(true),
        json!(-2),
        json!(1),
        json!(1.5),
        json!(""),
        json!("a"),
        json!("b"),
        json!([]),
        json!([1]),
        json!([1, 2]),
        json!([2]),
        json!({}),
        json!({"a": 1}),
        json!({"a": 2}),
        json!({"b": 0}),
    ];
    for (i, a) in ordered.iter().enumerate() {
        for (j, b) in ordered.iter().enumerate() {
            assert_eq!(cmp(a, b), i.cmp(&j), "{a} vs {b}");
        }
    }
    assert!(cmp(&json!(1), &json!(1.0)).is_eq());
    // Absent sorts last in both directions.
    assert!(cmp_sort_key(Some(&json!(1)), None, false).is_lt());
    assert!(cmp_sort_key(Some(&json!(1)), None, true).is_lt());
    assert!(cmp_sort_key(Some(&json!(1)), Some(&json!(2)), true).is_gt());
}

#[test]
fn paths_read_values_and_absent() {
    let v = json!({"a": {"b": [10, {"c": 1}]}, "odd key": true});
    let p = |steps: Vec<Step>| JsonPath(steps);
    assert_eq!(
        p(vec![
            Step::Member("a".into()),
            Step::Member("b".into()),
            Step::Index(0)
        ])
        .get(&v),
        Some(&json!(10))
    );
    assert_eq!(JsonPath::members(&["odd key"]).get(&v), Some(&json!(true)));
    assert_eq!(JsonPath::members(&["a", "x"]).get(&v), None);
    assert_eq!(
        p(vec![Step::Member("a".into()), Step::Index(0)]).get(&v),
        None
    );
    assert_eq!(
        p(vec![
            Step::Member("a".into()),
            Step::Member("b".into()),
            Step::Index(5)
        ])
        .get(&v),
        None
    );
    assert_eq!(JsonPath::default().get(&v), Some(&v));
}

#[test]
fn prefix_successor_bounds_a_prefix() {
    assert_eq!(prefix_successor("Al").as_deref(), Some("Am"));
    assert_eq!(prefix_successor("").as_deref(), None);
    assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
}
