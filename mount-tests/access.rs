//! Roles by region (`configuration/cosmic_security.json`) and the audit trail
//! (`backups/cosmic_logs/audit_trail.log`), driven as other users with `setpriv`. Modes
//! are opened wide first, so every refusal seen here is the roles' (the kernel's mode
//! checks are `permissions.rs`'s).

use crate::common::*;
use crate::temporal::{event, hour_key};
use chrono::{DateTime, Utc};
use std::fs;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;
const DAEMON: u32 = 1;
/// Debian's `users` group: the observer and analytics roles.
const USERS_GID: u32 = 100;
/// Debian's `adm` group: the admin role.
const ADM_GID: u32 = 4;
const SECURITY: &str = "configuration/cosmic_security.json";
const AUDIT: &str = "backups/cosmic_logs/audit_trail.log";

/// The seed's grants, with its roles given to this machine's users and groups.
const SEED_GRANTS: &str = r#"{"cosmic_security": {
  "roles": {
    "admin": {"groups": ["adm"]},
    "physics_engine": {"users": ["daemon"]},
    "observer": {"groups": ["users"]},
    "quantum_engineer": {"users": ["daemon"]},
    "archivist": {"users": ["nobody"]},
    "real_time_processor": {"users": ["daemon"]},
    "analytics_engine": {"groups": ["users"]},
    "data_scientist": {"users": ["nobody"]}
  },
  "spacetime_access": {
    "hot_data": ["admin", "physics_engine"],
    "warm_data": ["admin", "physics_engine", "observer"],
    "cold_data": ["admin", "archivist"]
  },
  "quantum_operations": {
    "entangle": ["admin", "quantum_engineer"],
    "observe": ["admin", "physics_engine", "observer"],
    "collapse": ["admin", "quantum_engineer"]
  },
  "temporal_access": {
    "live": ["admin", "real_time_processor"],
    "recent": ["admin", "analytics_engine"],
    "historical": ["admin", "data_scientist", "archivist"]
  },
  "qql_access": ["analytics_engine"],
  "backups_access": ["archivist"],
  "configuration_access": {"read": ["observer"], "write": []}
}}
"#;

/// `sh -c script` in the mount as uid/gid `id` with the supplementary `groups`.
fn sh_as(m: &Mount, id: u32, groups: &[u32], script: &str) -> Output {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={id}")).arg(format!("--regid={id}"));
    if groups.is_empty() {
        c.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        c.arg(format!("--groups={}", list.join(",")));
    }
    output_of(c.arg("sh").arg("-c").arg(script).current_dir(m.path("")))
}

/// Who acts in a case of the grants' table.
#[derive(Clone, Copy, Debug)]
enum Who {
    Daemon,
    Nobody,
    /// nobody in the `users` group.
    User,
    /// nobody in the `adm` group.
    Admin,
}

impl Who {
    fn run(self, m: &Mount, script: &str) -> Output {
        match self {
            Who::Daemon => sh_as(m, DAEMON, &[], script),
            Who::Nobody => sh_as(m, NOBODY, &[], script),
            Who::User => sh_as(m, NOBODY, &[USERS_GID], script),
            Who::Admin => sh_as(m, NOBODY, &[ADM_GID], script),
        }
    }
}

#[track_caller]
fn allowed(m: &Mount, who: Who, script: &str) {
    let o = who.run(m, script);
    assert!(
        o.status.success(),
        "{who:?} was refused `{script}`: {}",
        stderr(&o)
    );
}

#[track_caller]
fn denied(m: &Mount, who: Who, script: &str) {
    let o = who.run(m, script);
    assert!(
        !o.status.success() && stderr(&o).contains("Permission denied"),
        "{who:?} was not denied `{script}`: status {:?}, {}",
        o.status.code(),
        stderr(&o)
    );
}

/// The audit trail's lines once they hold `want` (written at the regions' next tick).
#[track_caller]
fn audit_with(m: &Mount, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(m.path(AUDIT)).unwrap_or_default();
        if text.contains(want) || Instant::now() > deadline {
            assert!(text.contains(want), "no line with {want} in:\n{text}");
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Data in every region the grants name, written by root, modes opened to all. Returns
/// the stream's partition written to, with the time its events are stamped with: the next
/// hour's, live from now until the test ends even if the clock passes an hour meanwhile
/// (an event stamped now would then belong to another partition than the one chosen).
fn universe_for_everyone(m: &Mount) -> (String, DateTime<Utc>) {
    let at = Utc::now() + chrono::Duration::hours(1);
    let live = format!("temporal/live/{}/events.jsonl", hour_key(at));
    let script = r#"set -e
        mkdir -p spacetime/warm_data/particles/things spacetime/cold_data/particles/old
        echo '{"name": "hot"}' > spacetime/hot_data/particles/users/h.json
        echo '{"name": "warm"}' > spacetime/warm_data/particles/things/w.json
        echo '{"name": "cold"}' > spacetime/cold_data/particles/old/c.json
        echo '{"name": "Alice"}' > quantum_graph/nodes/persons/alice.json
        echo '{"name": "Acme"}' > quantum_graph/nodes/organizations/acme.json
        echo '{"strength": 0.5}' > quantum_graph/edges/works_for/alice_to_acme.json
        echo "$EVENT" >> temporal/live/events.jsonl
        echo 'FROM spacetime/*/particles/users SELECT .name' > qql/queries/names.qql
        mkdir backups/snapshots/first
        find spacetime quantum_graph temporal/live qql/queries configuration -type d \
            -exec chmod 777 {} +
        chmod 666 spacetime/*/particles/*/*.json quantum_graph/*/*/*.json \
            "$LIVE" configuration/shard_topology.json
    "#;
    let o = bash_output(&format!(
        "cd {} && EVENT={} LIVE={} && {script}",
        shq(m.path("")),
        shq(event("1", Some(at), "start")),
        shq(&live)
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    (live, at)
}

/// Each of the seed's grants, allowed to the roles it names and denied to the others,
/// through real tools; root and the admin role do everything; denials are audited with
/// the user's name and uid.
#[test]
fn each_seed_grant_is_allowed_and_denied_as_configured() {
    let m = Mount::new();
    let (live, at) = universe_for_everyone(&m);
    // Before the file exists, modes alone decide.
    allowed(
        &m,
        Who::Nobody,
        "cat spacetime/hot_data/particles/users/h.json",
    );
    put(&m.path(SECURITY), SEED_GRANTS.as_bytes());

    let hot = "spacetime/hot_data/particles/users";
    allowed(&m, Who::Daemon, &format!("cat {hot}/h.json"));
    allowed(&m, Who::Daemon, &format!("echo '{{}}' > {hot}/d.json"));
    denied(&m, Who::Nobody, &format!("cat {hot}/h.json"));
    denied(&m, Who::User, &format!("ls {hot}"));
    denied(&m, Who::User, &format!("echo '{{}}' > {hot}/u.json"));
    denied(&m, Who::Nobody, &format!("rm {hot}/d.json"));
    denied(&m, Who::Nobody, &format!("mv {hot}/d.json {hot}/e.json"));
    denied(&m, Who::Nobody, &format!("touch {hot}/h.json"));

    let warm = "spacetime/warm_data/particles/things";
    allowed(&m, Who::User, &format!("cat {warm}/w.json && ls {warm}"));
    allowed(&m, Who::User, &format!("echo '{{}}' > {warm}/u.json"));
    denied(&m, Who::Nobody, &format!("cat {warm}/w.json"));

    let cold = "spacetime/cold_data/particles/old";
    allowed(&m, Who::Nobody, &format!("cat {cold}/c.json"));
    allowed(&m, Who::Nobody, &format!("echo '{{}}' > {cold}/n.json"));
    denied(&m, Who::Daemon, &format!("cat {cold}/c.json"));
    // A move out of a tier is a removal there.
    denied(&m, Who::Nobody, &format!("mv {cold}/n.json {warm}/n.json"));

    let graph = "quantum_graph";
    allowed(
        &m,
        Who::User,
        &format!("cat {graph}/nodes/persons/alice.json"),
    );
    denied(
        &m,
        Who::Nobody,
        &format!("cat {graph}/nodes/persons/alice.json"),
    );
    denied(
        &m,
        Who::User,
        &format!("echo '{{}}' > {graph}/edges/leads/alice_to_acme.json"),
    );
    denied(
        &m,
        Who::User,
        &format!("rm {graph}/edges/works_for/alice_to_acme.json"),
    );
    allowed(
        &m,
        Who::Daemon,
        &format!("echo '{{}}' > {graph}/edges/leads/alice_to_acme.json"),
    );
    allowed(
        &m,
        Who::Daemon,
        &format!("rm {graph}/edges/leads/alice_to_acme.json"),
    );

    // The hour's partition (the entry point `events.jsonl` is root's, by its mode).
    allowed(
        &m,
        Who::Daemon,
        &format!("echo {} >> {live}", shq(event("2", Some(at), "t"))),
    );
    denied(
        &m,
        Who::User,
        &format!("echo {} >> {live}", shq(event("3", Some(at), "t"))),
    );
    denied(&m, Who::User, &format!("cat {live}"));
    allowed(&m, Who::Daemon, &format!("cat {live}"));
    allowed(&m, Who::User, "ls temporal/recent");
    denied(&m, Who::Nobody, "ls temporal/recent");
    allowed(&m, Who::Nobody, "ls temporal/historical");
    denied(&m, Who::Daemon, "ls temporal/historical");

    allowed(
        &m,
        Who::User,
        "cat qql/results/names.json && ls qql/queries",
    );
    denied(&m, Who::Nobody, "cat qql/results/names.json");
    denied(
        &m,
        Who::Daemon,
        "echo 'FROM qql SELECT .x' > qql/queries/mine.qql",
    );

    allowed(
        &m,
        Who::Nobody,
        "ls backups/snapshots/first/universe && cat backups/snapshots/first/manifest.json",
    );
    denied(&m, Who::Daemon, "ls backups/snapshots");
    // A snapshot's copy of a file is granted as the file was where it was taken.
    let copy = format!("backups/snapshots/first/universe/{hot}/h.json");
    allowed(&m, Who::Daemon, &format!("cat {copy}"));
    denied(&m, Who::User, &format!("cat {copy}"));
    denied(&m, Who::Daemon, "cat backups/snapshots/first/manifest.json");

    allowed(&m, Who::User, "cat configuration/shard_topology.json");
    denied(&m, Who::Nobody, "cat configuration/shard_topology.json");
    denied(
        &m,
        Who::User,
        "cat configuration/shard_topology.json > configuration/shard_topology.json",
    );

    // The admin role, by group, and root do everything.
    allowed(
        &m,
        Who::Admin,
        &format!("cat {hot}/h.json {cold}/c.json {live}"),
    );
    allowed(
        &m,
        Who::Admin,
        &format!("rm {graph}/edges/works_for/alice_to_acme.json"),
    );
    allowed(&m, Who::Admin, "ls backups/snapshots qql/results");
    let o = bash_output(&format!(
        "cat {} > /dev/null",
        m.ps(&format!("{hot}/h.json"))
    ));
    assert!(o.status.success(), "root: {}", stderr(&o));

    // The trail is written behind the requests: wait for the last audited one.
    let last = format!("nobody(65534) ok unlink \"{graph}/edges/works_for/alice_to_acme.json\"");
    let trail = audit_with(&m, &last);
    for want in [
        format!(
            "nobody(65534) denied open \"{hot}/h.json\": access denied: no role of nobody(65534) is granted read in spacetime/hot_data"
        ),
        format!("nobody(65534) denied unlink \"{hot}/d.json\""),
        format!("nobody(65534) denied rename \"{cold}/n.json\" \"{warm}/n.json\""),
        format!("daemon(1) denied open \"{cold}/c.json\""),
        format!(
            "nobody(65534) denied create \"{graph}/edges/leads/alice_to_acme.json\": access denied: no role of nobody(65534) is granted entangle in quantum_graph"
        ),
        format!(
            "nobody(65534) denied unlink \"{graph}/edges/works_for/alice_to_acme.json\": access denied: no role of nobody(65534) is granted collapse"
        ),
        format!("daemon(1) ok create \"{graph}/edges/leads/alice_to_acme.json\""),
        format!("daemon(1) ok unlink \"{graph}/edges/leads/alice_to_acme.json\""),
        format!("nobody(65534) ok unlink \"{graph}/edges/works_for/alice_to_acme.json\""),
        format!("daemon(1) ok write \"{hot}/d.json\""),
    ] {
        assert!(
            trail.contains(&want),
            "no `{want}` in the audit trail:\n{trail}"
        );
    }
}

/// Only root and the admin role change the security file: another user's edit, removal
/// or replacement is `EACCES` and audited, even with the file's mode open to all; the
/// admin's edit (by `sed -i`) takes effect at once; an invalid edit is `EINVAL` and
/// changes nothing.
#[test]
fn only_the_admin_role_changes_the_security_configuration() {
    let m = Mount::new();
    universe_for_everyone(&m);
    put(&m.path(SECURITY), SEED_GRANTS.as_bytes());
    let o = bash_output(&format!("chmod 666 {}", m.ps(SECURITY)));
    assert!(o.status.success(), "{}", stderr(&o));
    let hot = "spacetime/hot_data/particles/users/h.json";
    denied(&m, Who::User, &format!("cat {hot}"));

    denied(&m, Who::Daemon, &format!("echo '{{}}' > {SECURITY}"));
    denied(&m, Who::Daemon, &format!("rm {SECURITY}"));
    denied(
        &m,
        Who::Daemon,
        &format!("sed -i 's/observer/x/' {SECURITY}"),
    );
    denied(&m, Who::User, &format!("truncate -s 0 {SECURITY}"));
    assert_eq!(get(&m.path(SECURITY)), SEED_GRANTS.as_bytes(), "unchanged");

    // The admin gives the observers the hot tier; it holds from the next request.
    allowed(
        &m,
        Who::Admin,
        &format!(
            r#"sed -i 's/"hot_data": \["admin", "physics_engine"\]/"hot_data": ["admin", "physics_engine", "observer"]/' {SECURITY}"#
        ),
    );
    allowed(&m, Who::User, &format!("cat {hot}"));

    // An invalid edit: cp reports the refused close; file and rules stay.
    let before = get(&m.path(SECURITY));
    let bad = Who::Admin.run(
        &m,
        &format!(
            r#"echo '{{"cosmic_security": {{"roles": {{}}, "qql_access": ["ghost"]}}}}' > /tmp/islabdb-bad-security.json && cp /tmp/islabdb-bad-security.json {SECURITY}"#
        ),
    );
    assert!(
        !bad.status.success() && stderr(&bad).contains("Invalid argument"),
        "an invalid edit: {:?} {}",
        bad.status.code(),
        stderr(&bad)
    );
    assert_eq!(
        get(&m.path(SECURITY)),
        before,
        "the refused edit changed nothing"
    );
    allowed(&m, Who::User, &format!("cat {hot}"));
    denied(&m, Who::Nobody, &format!("cat {hot}"));

    let trail = audit_with(&m, "failed write \"configuration/cosmic_security.json\"");
    for want in [
        "daemon(1) denied open \"configuration/cosmic_security.json\": access denied: only root and the admin role may change cosmic_security.json",
        "daemon(1) denied unlink \"configuration/cosmic_security.json\"",
        "nobody(65534) denied open \"configuration/cosmic_security.json\"",
        "\"configuration/cosmic_security.json\"\n",
        "nobody(65534) failed write \"configuration/cosmic_security.json\": invalid record: cosmic_security.json: role 'ghost' is granted but not in \"roles\"",
    ] {
        assert!(
            trail.contains(want),
            "no `{want}` in the audit trail:\n{trail}"
        );
    }
    assert!(
        trail.lines().any(|l| l.contains("nobody(65534) ok rename")
            && l.ends_with(" \"configuration/cosmic_security.json\"")),
        "the admin's sed -i is not in the audit trail:\n{trail}"
    );
}

/// Every change a user makes is one line of the audit trail, with the user's name and
/// uid, the operation and the path; the lines survive `kill -9` and a remount, and the
/// trail keeps the newest `audit_kept` lines.
#[test]
fn changes_are_audited_kept_across_kill_9_and_bounded() {
    let mut m = Mount::new();
    let dir = "spacetime/hot_data/particles/users";
    let o = bash_output(&format!("chmod 777 {}", m.ps(dir)));
    assert!(o.status.success(), "{}", stderr(&o));
    let script = format!(
        r#"set -e; cd {dir}
        echo '{{"a": 1}}' > a.json
        chmod 600 a.json
        mv a.json b.json
        ln b.json c.json
        setfattr -n user.note -v hi b.json
        truncate -s 0 b.json
        echo '{{bad' > b.json || true
        mkdir sub && rmdir sub
        rm c.json"#
    );
    // A stream opened to append (no commit follows: what it appends is taken as it
    // comes), before the rest, so that its line is in by the last one's.
    let o = bash_output(&format!(
        "echo '{{\"id\": \"1\", \"type\": \"t\"}}' >> {}",
        m.ps("temporal/live/events.jsonl")
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sh_as(&m, NOBODY, &[], &script);
    assert!(o.status.success(), "{}", stderr(&o));
    let trail = audit_with(&m, &format!("ok unlink \"{dir}/c.json\""));
    let appended = trail
        .lines()
        .find(|l| l.contains(" ok append \"temporal/live/") && l.ends_with("events.jsonl\""));
    assert!(
        appended.is_some_and(|l| l.contains(" root(0) ")),
        "no append of the stream by root in:\n{trail}"
    );
    let ops = [
        ("create", "a.json"),
        ("write", "a.json"),
        ("chmod", "a.json"),
        ("setxattr", "b.json"),
        ("truncate", "b.json"),
        ("mkdir", "sub"),
        ("rmdir", "sub"),
        ("unlink", "c.json"),
    ];
    for (op, name) in ops {
        let want = format!("nobody(65534) ok {op} \"{dir}/{name}\"");
        assert!(trail.contains(&want), "no `{want}` in:\n{trail}");
    }
    for (op, from, to) in [("rename", "a.json", "b.json"), ("link", "b.json", "c.json")] {
        let want = format!("nobody(65534) ok {op} \"{dir}/{from}\" \"{dir}/{to}\"");
        assert!(trail.contains(&want), "no `{want}` in:\n{trail}");
    }
    // A record refused at commit: a failed change, audited as such.
    let refused = format!("nobody(65534) failed write \"{dir}/b.json\": invalid record");
    assert!(trail.contains(&refused), "no `{refused}` in:\n{trail}");

    // Durable within the warm window: give it that, then kill.
    std::thread::sleep(Duration::from_millis(300));
    m.kill9();
    m.remount();
    let after = fs::read_to_string(m.path(AUDIT)).unwrap();
    assert!(
        after.starts_with(&trail),
        "lost by kill -9:\nbefore:\n{trail}\nafter:\n{after}"
    );

    let policy = m.path("configuration/backup_policy.json");
    let mut p = read_json(&policy);
    p["audit_kept"] = 10.into();
    put(&policy, p.to_string().as_bytes());
    let o = bash_output(&format!(
        "cd {} && for i in $(seq 1 30); do echo '{{}}' > r$i.json; done",
        m.ps(dir)
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let last = format!("root(0) ok write \"{dir}/r30.json\"");
    let text = audit_with(&m, &last);
    let lines = text.lines().count();
    assert!(lines <= 11, "{lines} lines kept of 10:\n{text}");
    assert!(
        text.lines().last().is_some_and(|l| l.contains(&last)),
        "{text}"
    );
}
