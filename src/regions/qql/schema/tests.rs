//! The schemas' tests: reading the file, mapping records, validating, modes, rules file.

use serde_json::{Value, json};

use super::compiled::{MAX_MESSAGE, MAX_RULE, Mode};
use super::paths::Seg;
use super::rules_file::{self, Rules};
use super::scope::Scope;
use super::*;
use crate::engine::frame;

const EXAMPLE: &str = r#"{
  "version": 1,
  "collections": {
    "users": {
      "schema": {
        "type": "object",
        "required": ["email", "name"],
        "properties": {
          "email": { "type": "string", "format": "email" },
          "name": { "type": "string", "pattern": "^[A-Z][a-z]+$" },
          "age": { "type": "integer", "minimum": 0 },
          "address": {
            "type": "object",
            "properties": { "zip": { "type": "string", "pattern": "^[0-9]{5}$" } }
          }
        }
      },
      "indexes": [".age", ".address.city", ".tags[0]", ".\"first name\""],
      "mode": "all"
    },
    "spacetime/hot_data/particles/users": {
      "schema": { "required": ["session"] },
      "mode": "new_writes"
    },
    "quantum_graph/nodes/persons": { "schema": { "type": "object", "required": ["name"] } },
    "quantum_graph/edges/works_for": { "indexes": [".since"] }
  }
}"#;

fn example() -> Schemas {
    Schemas::parse(EXAMPLE.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn one(schema: Value) -> Schemas {
    let text = json!({"version": 1, "collections": {"users": {"schema": schema}}}).to_string();
    Schemas::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match Schemas::parse(text.as_bytes()) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

fn with_users(entry: &str) -> String {
    format!(r#"{{"version": 1, "collections": {{"users": {entry}}}}}"#)
}

const ALICE: &str = "spacetime/warm_data/particles/users/alice.json";
const HOT_ALICE: &str = "spacetime/hot_data/particles/users/alice.json";

fn alice() -> Value {
    json!({"email": "alice@example.com", "name": "Alice", "age": 30,
           "address": {"zip": "75001"}})
}

#[test]
fn the_files_live_in_the_seed_directory() {
    assert!(crate::namespace::SEED.iter().any(|d| d.path == DIR));
    assert_eq!(format!("{DIR}/{SOURCE}"), "qql/schema/universe_schema.json");
    assert_eq!(format!("{DIR}/{RULES}"), "qql/schema/validation_rules.erl");
}

#[test]
fn parses_the_example() {
    let s = example();
    let names: Vec<&str> = s.entries().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "quantum_graph/edges/works_for",
            "quantum_graph/nodes/persons",
            "spacetime/hot_data/particles/users",
            "users"
        ]
    );
    let users = s.get("users").unwrap_or_else(|| panic!("users"));
    assert_eq!(users.mode(), Mode::All);
    assert_eq!(users.scope(), &Scope::Particles("users".into()));
    let idx: Vec<Vec<Seg>> = users
        .indexes()
        .iter()
        .map(|p| p.segments().to_vec())
        .collect();
    assert_eq!(
        idx,
        [
            vec![Seg::Key("age".into())],
            vec![Seg::Key("address".into()), Seg::Key("city".into())],
            vec![Seg::Key("tags".into()), Seg::Index(0)],
            vec![Seg::Key("first name".into())],
        ]
    );
    let hot = s.get("spacetime/hot_data/particles/users");
    assert_eq!(hot.map(|c| c.mode()), Some(Mode::NewWrites));
    // Defaults: mode all, no indexes, the schema `true`.
    let edges = s.get("quantum_graph/edges/works_for");
    assert_eq!(
        edges.map(|c| (c.mode(), c.schema().clone())),
        Some((Mode::All, json!(true)))
    );
    assert_eq!(edges.map(|c| c.indexes().len()), Some(1));
    assert!(Schemas::parse(br#"{"version": 1, "collections": {}}"#).is_ok_and(|s| s.is_empty()));
    assert!(Schemas::empty().is_empty());
}

#[test]
fn refuses_bad_files_saying_where() {
    let cases: Vec<(String, &str)> = vec![
        (
            "{".into(),
            "not JSON: EOF while parsing an object at line 1 column 1",
        ),
        ("[]".into(), "/: expected an object"),
        (
            r#"{"version": 1, "collections": {}, "colections": {}}"#.into(),
            "/: unknown key \"colections\" (known: version, collections)",
        ),
        (
            r#"{"collections": {}}"#.into(),
            "/: missing key \"version\"",
        ),
        (r#"{"version": 1}"#.into(), "/: missing key \"collections\""),
        (
            r#"{"version": 2, "collections": {}}"#.into(),
            "/version: version 2, this build reads version 1",
        ),
        (
            r#"{"version": "1", "collections": {}}"#.into(),
            "/version: version \"1\", this build reads version 1",
        ),
        (
            r#"{"version": 1, "collections": []}"#.into(),
            "/collections: expected an object of collections by name",
        ),
        (
            r#"{"version": 1, "collections": {"users": {}, "users": {}}}"#.into(),
            "not JSON: member \"users\" given twice at line 1 column 51",
        ),
        (
            with_users(r#"{"schema": {"type": "object", "type": "string"}}"#),
            "not JSON: member \"type\" given twice at line 1 column 76",
        ),
        (
            with_users("[]"),
            "/collections/users: expected an object { \"schema\", \"indexes\", \"mode\" }",
        ),
        (
            with_users(r#"{"shema": {}}"#),
            "/collections/users: unknown key \"shema\" (known: schema, indexes, mode)",
        ),
        (
            with_users(r#"{"mode": "some"}"#),
            "collection \"users\": mode \"some\", expected \"all\" or \"new_writes\"",
        ),
        (
            with_users(r#"{"mode": 1}"#),
            "/collections/users/mode: expected \"all\" or \"new_writes\"",
        ),
        (
            with_users(r#"{"indexes": ".age"}"#),
            "/collections/users/indexes: expected an array of index paths",
        ),
        (
            with_users(r#"{"indexes": [".age", 3]}"#),
            "/collections/users/indexes/1: expected a string",
        ),
        (
            with_users(r#"{"indexes": [".age", ".a b"]}"#),
            "collection \"users\": index path \".a b\" at character 3: expected '.' or '['",
        ),
        (
            with_users(r#"{"indexes": [".age", ".\"age\""]}"#),
            "collection \"users\": index path \".\\\"age\\\"\" is declared twice",
        ),
        (
            with_users(&format!(
                r#"{{"indexes": [{}]}}"#,
                (0..=MAX_INDEXES)
                    .map(|i| format!("\".f{i}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            "collection \"users\": 65 index paths, at most 64 are declared",
        ),
        (
            with_users(r#"{"schema": {"properties": {"age": {"type": "integr"}}}}"#),
            "collection \"users\": invalid JSON Schema at /properties/age/type: ",
        ),
        (
            with_users(r#"{"schema": {"minimum": "zero"}}"#),
            "collection \"users\": invalid JSON Schema at /minimum: ",
        ),
        (
            with_users(r#"{"schema": 5}"#),
            "collection \"users\": invalid JSON Schema at its root: a JSON Schema is an object or a boolean",
        ),
        (
            with_users(r#"{"schema": {"pattern": "(unclosed"}}"#),
            "collection \"users\": invalid JSON Schema at",
        ),
        (
            with_users(r#"{"schema": {"format": "emial"}}"#),
            "collection \"users\": invalid JSON Schema",
        ),
        (
            with_users(r#"{"schema": {"format": "idn-hostname"}}"#),
            "collection \"users\": invalid JSON Schema at /format: Unknown format",
        ),
        (
            r#"{"version": 1, "collections": {"spacetime/hot/particles/users": {}}}"#.into(),
            "collection \"spacetime/hot/particles/users\": unknown tier \"hot\"",
        ),
        (
            r#"{"version": 1, "collections": {"particles/users": {}}}"#.into(),
            "collection \"particles/users\": a collection is NAME",
        ),
    ];
    for (text, want) in cases {
        let got = err(&text);
        assert!(got.starts_with(want), "{text}\n got: {got}\nwant: {want}");
    }
}

#[test]
fn external_references_are_refused_without_fetching() {
    for r in [
        "https://example.com/schema.json",
        "file:///etc/passwd",
        "other.json#/x",
    ] {
        let got = err(&with_users(&format!(r#"{{"schema": {{"$ref": "{r}"}}}}"#)));
        assert!(
            got.starts_with("collection \"users\": invalid JSON Schema"),
            "{got}"
        );
    }
    // What a schema may refer to: itself, and the drafts' meta-schemas (built in).
    let own = one(
        json!({"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}),
    );
    assert!(own.validate(ALICE, &json!({"a": 1})).is_ok());
    let meta = one(json!({"$ref": "https://json-schema.org/draft/2020-12/schema"}));
    assert!(meta.validate(ALICE, &json!({"type": "object"})).is_ok());
    assert!(meta.validate(ALICE, &json!({"type": 5})).is_err());
}

#[test]
fn drafts_follow_dollar_schema_and_default_to_2020_12() {
    // `prefixItems` exists from 2020-12 on; draft 7 ignores it.
    let schema = |draft: Option<&str>| {
        let mut s = json!({"prefixItems": [{"type": "integer"}]});
        if let (Some(d), Some(o)) = (draft, s.as_object_mut()) {
            o.insert("$schema".into(), json!(d));
        }
        one(s)
    };
    let record = json!(["not an integer"]);
    assert!(schema(None).validate(ALICE, &record).is_err());
    let d7 = schema(Some("http://json-schema.org/draft-07/schema#"));
    assert!(d7.validate(ALICE, &record).is_ok());
}

#[test]
fn maps_records_to_the_entries_that_govern_them() {
    let s = example();
    let names = |path: &str| -> Vec<String> {
        s.for_record(path)
            .iter()
            .map(|c| c.name().to_string())
            .collect()
    };
    assert_eq!(
        names(HOT_ALICE),
        ["users", "spacetime/hot_data/particles/users"]
    );
    assert_eq!(names(ALICE), ["users"]);
    assert_eq!(
        names("spacetime/cold_data/particles/users/bob.json"),
        ["users"]
    );
    assert_eq!(
        names("/quantum_graph/nodes/persons/p1.json"),
        ["quantum_graph/nodes/persons"]
    );
    assert_eq!(
        names("quantum_graph/edges/works_for/p1_to_o1.json"),
        ["quantum_graph/edges/works_for"]
    );
    assert!(names("spacetime/hot_data/particles/orders/o1.json").is_empty());
    assert!(names("quantum_graph/nodes/users/u.json").is_empty());
    assert!(names("spacetime/hot_data/particles/users/notes.txt").is_empty());
    assert!(names("qql/schema/universe_schema.json").is_empty());
}

#[test]
fn all_entries_apply_the_collection_wide_one_first() {
    let s = example();
    let no_session = alice();
    assert!(s.validate(ALICE, &no_session).is_ok());
    let v = s.validate(HOT_ALICE, &no_session).err();
    assert_eq!(
        v.map(|v| (v.collection, v.rule)),
        Some((
            "spacetime/hot_data/particles/users".into(),
            "required: [\"session\"]".into()
        ))
    );
    // A record that fails both is told the collection-wide schema's violation.
    let v = s.validate(HOT_ALICE, &json!({"name": "Alice"})).err();
    assert_eq!(v.map(|v| v.collection), Some("users".into()));
    let mut ok = alice();
    ok["session"] = json!("s1");
    assert!(s.validate(HOT_ALICE, &ok).is_ok());
}

/// The violation `record` meets in `users` of `one(schema)`: pointer, rule.
fn violation(s: &Schemas, record: Value) -> (String, String, String) {
    match s.validate(ALICE, &record) {
        Ok(()) => panic!("accepted {record}"),
        Err(v) => {
            assert_eq!(v.collection, "users");
            (v.instance_path, v.rule, v.message)
        }
    }
}

#[test]
fn violations_name_the_json_pointer_and_the_rule() {
    let s = example();
    assert!(s.validate(ALICE, &alice()).is_ok());
    let with = |f: &dyn Fn(&mut Value)| {
        let mut r = alice();
        f(&mut r);
        violation(&s, r)
    };
    let (at, rule, msg) = with(&|r| r["age"] = json!("thirty"));
    assert_eq!((at.as_str(), rule.as_str()), ("/age", "type: \"integer\""));
    assert!(
        msg.contains("\"thirty\" is not of type \"integer\""),
        "{msg}"
    );

    let (at, rule, _) = with(&|r| r["age"] = json!(-1));
    assert_eq!((at.as_str(), rule.as_str()), ("/age", "minimum: 0"));

    let (at, rule, _) = with(&|r| {
        r.as_object_mut().map(|o| o.remove("email"));
    });
    assert_eq!((at.as_str(), rule.as_str()), ("", "required: [\"email\"]"));

    let (at, rule, _) = with(&|r| r["name"] = json!("alice"));
    assert_eq!(
        (at.as_str(), rule.as_str()),
        ("/name", "pattern: \"^[A-Z][a-z]+$\"")
    );

    let (at, rule, _) = with(&|r| r["address"]["zip"] = json!("7500"));
    assert_eq!(
        (at.as_str(), rule.as_str()),
        ("/address/zip", "pattern: \"^[0-9]{5}$\"")
    );

    let (at, rule, _) = with(&|r| r["email"] = json!("not an address"));
    assert_eq!(
        (at.as_str(), rule.as_str()),
        ("/email", "format: \"email\"")
    );

    let (at, rule, _) = violation(&s, json!([1, 2]));
    assert_eq!((at.as_str(), rule.as_str()), ("", "type: \"object\""));
}

#[test]
fn violations_through_refs_arrays_and_false_schemas() {
    let s = one(json!({
        "$defs": {"pos": {"type": "integer", "minimum": 1}},
        "properties": {
            "n": {"$ref": "#/$defs/pos"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}},
            "secret": false,
            "kind": {"enum": ["a", "b"]}
        },
        "additionalProperties": {"type": "number"}
    }));
    let (at, rule, _) = violation(&s, json!({"n": 0}));
    assert_eq!((at.as_str(), rule.as_str()), ("/n", "minimum: 1"));
    let (at, rule, _) = violation(&s, json!({"tags": ["ok", "toolong"]}));
    assert_eq!((at.as_str(), rule.as_str()), ("/tags/1", "maxLength: 3"));
    let (at, rule, _) = violation(&s, json!({"secret": 1}));
    assert_eq!(
        (at.as_str(), rule.as_str()),
        ("/secret", "false (the schema allows nothing here)")
    );
    let (at, rule, _) = violation(&s, json!({"kind": "c"}));
    assert_eq!(
        (at.as_str(), rule.as_str()),
        ("/kind", "enum: [\"a\",\"b\"]")
    );
    let (at, rule, _) = violation(&s, json!({"other": "x"}));
    assert_eq!((at.as_str(), rule.as_str()), ("/other", "type: \"number\""));
    // A JSON pointer escapes '/' and '~' in member names.
    let s = one(json!({"properties": {"a/b~c": {"type": "string"}}}));
    let (at, _, _) = violation(&s, json!({"a/b~c": 1}));
    assert_eq!(at, "/a~1b~0c");
}

#[test]
fn long_rules_and_messages_are_cut() {
    let options: Vec<String> = (0..200).map(|i| format!("option number {i}")).collect();
    let s = one(json!({"properties": {"k": {"enum": options}}}));
    let long = "x".repeat(2000);
    let (_, rule, msg) = violation(&s, json!({"k": long}));
    assert!(rule.starts_with("enum: [\"option number 0\",") && rule.ends_with('…'));
    assert!(rule.len() <= MAX_RULE + '…'.len_utf8());
    assert!(msg.len() <= MAX_MESSAGE + '…'.len_utf8() && msg.ends_with('…'));
}

#[test]
fn a_refusal_is_einval_and_its_log_line_names_file_path_and_rule() {
    let s = example();
    let mut r = alice();
    r["address"]["zip"] = json!(75001);
    let v = s
        .validate(ALICE, &r)
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert_eq!(
        v.log_line(ALICE),
        "spacetime/warm_data/particles/users/alice.json: refused by the schema of users: \
         at /address/zip: type: \"string\" (75001 is not of type \"string\")"
    );
    let e = v.into_error(ALICE);
    assert_eq!(e.errno(), libc::EINVAL);
    assert!(e.to_string().contains("/address/zip: type: \"string\""));
    let root = s
        .validate(ALICE, &json!(1))
        .err()
        .map(|v| v.log_line("f.json"));
    assert!(root.is_some_and(|l| l.contains("at the record: type: \"object\"")));
    let as_error: crate::error::Error = SchemaError::Version("2".into()).into();
    assert_eq!(as_error.errno(), libc::EINVAL);
}

#[test]
fn modes_say_what_installing_checks() {
    let all = one(json!({"required": ["a"]}));
    let file = |schema: Value, mode: &str, indexes: Value| {
        let text = json!({"version": 1, "collections": {"users": {
            "schema": schema, "mode": mode, "indexes": indexes}}})
        .to_string();
        Schemas::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    };
    let names = |s: &Schemas, prev: Option<&Schemas>| -> Vec<String> {
        s.to_check_on_install(prev)
            .iter()
            .map(|c| c.name().to_string())
            .collect()
    };
    let users = || vec!["users".to_string()];
    // New entry in mode all: checked; in mode new_writes: not.
    assert_eq!(names(&all, None), users());
    assert_eq!(names(&all, Some(&Schemas::empty())), users());
    let new_writes = file(json!({"required": ["a"]}), "new_writes", json!([]));
    assert!(names(&new_writes, None).is_empty());
    // The same schema again (even spelt otherwise, with other indexes): nothing to check.
    let same = file(json!({ "required": ["a"] }), "all", json!([".a"]));
    assert!(names(&same, Some(&all)).is_empty());
    // A changed schema: checked; new_writes to all with the same schema: checked.
    let changed = file(json!({"required": ["a", "b"]}), "all", json!([]));
    assert_eq!(names(&changed, Some(&all)), users());
    assert_eq!(names(&same, Some(&new_writes)), users());
    // all to new_writes: never.
    assert!(names(&new_writes, Some(&all)).is_empty());
    let c = all.get("users");
    assert!(c.is_some_and(|c| !c.checks_existing_on_install(Some(c))));
    assert!(c.is_some_and(|c| c.checks_existing_on_install(None)));
}

#[test]
fn check_existing_lists_the_first_violations() {
    let s = one(json!({"required": ["a"]}));
    let good = json!({"a": 1});
    let bad = json!({"b": 1});
    let paths: Vec<String> = (0..10)
        .map(|i| format!("spacetime/hot_data/particles/users/u{i}.json"))
        .collect();
    let mut records: Vec<(&str, &Value)> = Vec::new();
    records.push(("spacetime/hot_data/particles/orders/o.json", &bad)); // another collection
    records.push(("spacetime/hot_data/particles/users/sub/x.json", &bad)); // no record
    for (i, p) in paths.iter().enumerate() {
        records.push((p, if i % 2 == 0 { &good } else { &bad }));
    }
    let found = s.check_existing(None, records.iter().copied(), 3);
    let at: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(at, [paths[1].as_str(), &paths[3], &paths[5]]);
    assert_eq!(found[0].1.rule, "required: [\"a\"]");
    assert_eq!(
        s.check_existing(None, records.iter().copied(), 100).len(),
        5
    );
    assert!(
        s.check_existing(None, records.iter().copied(), 0)
            .is_empty()
    );
    // Nothing to check when the schema is what was in force.
    let again = one(json!({"required": ["a"]}));
    assert!(
        again
            .check_existing(Some(&s), records.iter().copied(), 10)
            .is_empty()
    );
    // Stops reading at the limit.
    let mut read = 0;
    let counted = records.iter().copied().inspect(|_| read += 1);
    assert_eq!(s.check_existing(None, counted, 1).len(), 1);
    assert_eq!(read, 4);
}

#[test]
fn check_existing_judges_each_entry_by_its_own_change() {
    let before = example();
    // The hot tier's entry becomes mode all: its records are checked; `users` unchanged.
    let after = EXAMPLE.replace("\"mode\": \"new_writes\"", "\"mode\": \"all\"");
    let after = Schemas::parse(after.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let no_session = alice();
    let records = [(ALICE, &no_session), (HOT_ALICE, &no_session)];
    let found = after.check_existing(Some(&before), records.iter().copied(), 10);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, HOT_ALICE);
    assert_eq!(found[0].1.collection, "spacetime/hot_data/particles/users");
}

fn example_rules() -> Vec<u8> {
    rules_file::encode(&example())
}

#[test]
fn rules_file_round_trips_and_rebuilds_the_schemas() {
    let s = example();
    let bytes = rules_file::encode(&s);
    let rules = Rules::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rules, Rules::of(&s));
    assert_eq!(rules.entries.len(), 4);
    let loaded = rules.compile().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Rules::of(&loaded), rules);
    // The rebuilt schemas judge as the source's do.
    let mut r = alice();
    r["age"] = json!(-3);
    assert_eq!(loaded.validate(ALICE, &r), s.validate(ALICE, &r));
    assert_eq!(
        loaded.validate(HOT_ALICE, &alice()),
        s.validate(HOT_ALICE, &alice())
    );
    // A reformatted source is the same rules; a changed one is not.
    let compact: Value = serde_json::from_str(EXAMPLE).unwrap_or_default();
    let reformatted = Schemas::parse(compact.to_string().as_bytes());
    assert!(reformatted.is_ok_and(|r| rules_file::encode(&r) == bytes));
    let changed = Schemas::parse(
        EXAMPLE
            .replace("\"minimum\": 0", "\"minimum\": 1")
            .as_bytes(),
    );
    assert!(changed.is_ok_and(|c| Rules::of(&c) != rules));
    let empty = rules_file::encode(&Schemas::empty());
    assert_eq!(empty.len(), 12 + 4 + 4);
    assert!(Rules::decode(&empty).is_ok_and(|r| r.compile().is_ok_and(|s| s.is_empty())));
}

#[test]
fn rules_file_layout_is_as_documented() {
    let s = Schemas::parse(
        br#"{"version": 1, "collections": {"u": {"schema": {"type": "string"}, "mode": "new_writes", "indexes": [".a[2]"]}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let b = rules_file::encode(&s);
    let schema = br#"{"type":"string"}"#;
    let mut want = b"ISLSCHM1".to_vec();
    want.extend_from_slice(&[1, 0, 0, 0]); // version 1, reserved
    want.extend_from_slice(&1u32.to_le_bytes()); // one entry
    want.extend_from_slice(&[1, 0, b'u', 1]); // name "u", mode new_writes
    want.extend_from_slice(&canonical::hash(schema).to_le_bytes());
    want.extend_from_slice(&(schema.len() as u32).to_le_bytes());
    want.extend_from_slice(schema);
    want.extend_from_slice(&[1, 0, 2]); // one index path of two segments
    want.extend_from_slice(&[0, 1, 0, b'a']); // key "a"
    want.extend_from_slice(&[1, 2, 0, 0, 0]); // index 2
    want.extend_from_slice(&crc32fast::hash(&want).to_le_bytes());
    assert_eq!(b, want);
}

#[test]
fn rules_file_damage_is_caught() {
    let bytes = example_rules();
    frame::assert_damage_is_caught(&bytes, |d| Rules::decode(d).is_ok());
}

/// `body` sealed as a rules file (a valid CRC over invalid content).
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut out = frame::file_header(b"ISLSCHM1", 1).to_vec();
    out.extend_from_slice(body);
    frame::seal(&mut out);
    out
}

fn entry_bytes(name: &str, mode: u8, hash: Option<u64>, schema: &str) -> Vec<u8> {
    let mut b = (name.len() as u16).to_le_bytes().to_vec();
    b.extend_from_slice(name.as_bytes());
    b.push(mode);
    let h = hash.unwrap_or_else(|| canonical::hash(schema.as_bytes()));
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&(schema.len() as u32).to_le_bytes());
    b.extend_from_slice(schema.as_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b
}

#[test]
fn rules_file_content_is_checked_beyond_its_crc() {
    let body = |entries: &[Vec<u8>], extra: &[u8]| {
        let mut b = (entries.len() as u32).to_le_bytes().to_vec();
        entries.iter().for_each(|e| b.extend_from_slice(e));
        b.extend_from_slice(extra);
        sealed(&b)
    };
    let ok = entry_bytes("a", 0, None, "true");
    assert!(Rules::decode(&body(std::slice::from_ref(&ok), &[])).is_ok());
    let refused = |bytes: Vec<u8>, want: &str| {
        let got = Rules::decode(&bytes).err().map(|e| e.to_string());
        assert!(
            got.as_deref().is_some_and(|g| g.contains(want)),
            "{got:?}, want {want}"
        );
    };
    refused(
        body(std::slice::from_ref(&ok), &[0]),
        "1 bytes after the last entry",
    );
    refused(body(&[ok.clone(), ok.clone()], &[]), "out of order");
    refused(
        body(&[entry_bytes("b", 0, None, "true"), ok.clone()], &[]),
        "out of order",
    );
    refused(
        body(&[entry_bytes("a", 2, None, "true")], &[]),
        "unknown mode 2",
    );
    refused(
        body(&[entry_bytes("a", 0, Some(1), "true")], &[]),
        "does not match its hash",
    );
    refused(
        body(&[entry_bytes("a", 0, None, "{ }")], &[]),
        "not canonical",
    );
    refused(
        body(&[entry_bytes("a", 0, None, r#"{"b":1,"a":2}"#)], &[]),
        "not canonical",
    );
    refused(
        body(&[entry_bytes("a", 0, None, "5")], &[]),
        "not canonical",
    );
    refused(
        body(&[entry_bytes("a", 0, None, r#"{"a":1,"a":1}"#)], &[]),
        "twice",
    );
    refused(
        body(&[entry_bytes("x/y", 0, None, "true")], &[]),
        "a collection is NAME",
    );
    let mut b = sealed(&0u32.to_le_bytes());
    b[10] = 1;
    let n = b.len() - 4;
    let crc = crc32fast::hash(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
    refused(b, "reserved header bytes");
    // A count larger than the entries: the file ends inside one.
    let mut short = 5u32.to_le_bytes().to_vec();
    short.extend_from_slice(&ok);
    refused(sealed(&short), "ends inside");
    // An index path of no segments.
    let mut e = entry_bytes("a", 0, None, "true");
    let n = e.len();
    e[n - 2..].copy_from_slice(&1u16.to_le_bytes());
    e.push(0);
    refused(body(&[e], &[]), "an index path of 0 segments");
}

#[test]
fn rules_file_renders_as_json() {
    let got = rules_file::rules_json(&example_rules()).unwrap_or_else(|e| panic!("{e}"));
    let users = &got["collections"][3];
    assert_eq!(got["version"], 1);
    assert_eq!(users["name"], "users");
    assert_eq!(users["mode"], "all");
    assert_eq!(
        users["indexes"],
        json!([".age", ".address.city", ".tags[0]", ".\"first name\""])
    );
    let source: Value = serde_json::from_str(EXAMPLE).unwrap_or_default();
    assert_eq!(users["schema"], source["collections"]["users"]["schema"]);
    let hash = example().get("users").map(|c| format!("{:016x}", c.hash()));
    assert_eq!(users["schema_hash"].as_str(), hash.as_deref());
    assert_eq!(got["collections"][2]["mode"], "new_writes");
    assert!(rules_file::rules_json(b"ISLSCHM1").is_err());
}

#[test]
fn schemas_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Schemas>();
}
