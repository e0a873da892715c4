//! `configuration/cosmic_security.json`: roles mapped to the machine's users and groups,
//! and which roles may do what in each region, in the seed's shape:
//!
//! ```json
//! {"cosmic_security": {
//!   "roles": {"admin": {"users": ["root"]}, "observer": {"groups": ["staff"]}},
//!   "spacetime_access": {"hot_data": ["physics_engine"], "warm_data": {"read": ["observer"], "write": []}},
//!   "quantum_operations": {"observe": ["observer"], "entangle": [], "collapse": []},
//!   "temporal_access": {"live": ["real_time_processor"]},
//!   "qql_access": ["analytics_engine"], "backups_access": [], "configuration_access": []
//! }}
//! ```
//!
//! A grant is a list of roles (they may read and change) or `{"read": […], "write": […]}`.
//! The graph's operations are its own: observe reads, entangle makes or changes, collapse
//! removes. A place the file does not name stays open (modes and owners only). Root and
//! the `admin` role may do everything, and only they may change this file.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::identity;
use crate::regions::config::{invalid, parse};

pub const FILE: &str = "cosmic_security.json";
pub const ADMIN: &str = "admin";

/// What a request does to what it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Reads content or lists names.
    Read,
    /// Makes an entry, or changes one's content or attributes.
    Write,
    /// Removes an entry (or renames it away).
    Remove,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    cosmic_security: Security,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Security {
    roles: BTreeMap<String, Members>,
    spacetime_access: Option<Tiers>,
    temporal_access: Option<Stages>,
    quantum_operations: Option<Operations>,
    qql_access: Option<Grant>,
    backups_access: Option<Grant>,
    configuration_access: Option<Grant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Members {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// The tiers' grants (a tier not named stays open).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tiers {
    hot_data: Option<Grant>,
    warm_data: Option<Grant>,
    cold_data: Option<Grant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stages {
    live: Option<Grant>,
    recent: Option<Grant>,
    historical: Option<Grant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Operations {
    observe: Option<Vec<String>>,
    entangle: Option<Vec<String>>,
    collapse: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Grant {
    Both(Vec<String>),
    Split(ReadWrite),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadWrite {
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
}

/// A role's members, as the machine numbers them.
struct Role {
    uids: Vec<u32>,
    gids: Vec<u32>,
}

/// Roles allowed each verb in one place (`None`: anyone).
#[derive(Default)]
struct Allowed {
    read: Option<Vec<usize>>,
    write: Option<Vec<usize>>,
    remove: Option<Vec<usize>>,
}

/// The file, checked and resolved: what `Rules::decide` answers from.
pub struct Rules {
    roles: Vec<Role>,
    admin: Option<usize>,
    /// By place: `spacetime/hot_data`, `temporal/live`, `quantum_graph`, `qql`, ...
    places: HashMap<&'static str, Allowed>,
    /// Whether some role names groups: only then are a caller's groups looked up.
    by_group: bool,
}

/// Every place the file can grant.
const PLACES: [&str; 10] = [
    "spacetime/hot_data",
    "spacetime/warm_data",
    "spacetime/cold_data",
    "temporal/live",
    "temporal/recent",
    "temporal/historical",
    "quantum_graph",
    "qql",
    "backups",
    "configuration",
];

/// Where in the universe a path is, as far as access goes: the places it needs a grant
/// of (none: open), and whether only root and admin may change it.
struct Needs {
    places: &'static [&'static str],
    admin_only: bool,
}

const OPEN: Needs = Needs {
    places: &[],
    admin_only: false,
};

fn needs(parts: &[&[u8]], verb: Verb) -> Needs {
    let place = |p: &'static [&'static str]| Needs {
        places: p,
        admin_only: false,
    };
    match parts {
        [b"spacetime", b"hot_data", ..] => place(&["spacetime/hot_data"]),
        [b"spacetime", b"warm_data", ..] => place(&["spacetime/warm_data"]),
        [b"spacetime", b"cold_data", ..] => place(&["spacetime/cold_data"]),
        [b"temporal", b"live", ..] => place(&["temporal/live"]),
        [b"temporal", b"recent", ..] => place(&["temporal/recent"]),
        [b"temporal", b"historical", ..] => place(&["temporal/historical"]),
        // A range read gives events of every stage.
        [b"temporal", b"range", ..] => {
            place(&["temporal/live", "temporal/recent", "temporal/historical"])
        }
        [b"quantum_graph", ..] => place(&["quantum_graph"]),
        [b"qql", ..] => place(&["qql"]),
        [b"backups", ..] => place(&["backups"]),
        [b"configuration", name] if *name == FILE.as_bytes() && verb != Verb::Read => Needs {
            places: &[],
            admin_only: true,
        },
        [b"configuration", ..] => place(&["configuration"]),
        _ => OPEN,
    }
}

impl Rules {
    pub fn parse(bytes: &[u8]) -> Result<Rules> {
        let stored: Stored = parse(FILE, bytes)?;
        Rules::resolve(stored.cosmic_security)
    }

    fn resolve(s: Security) -> Result<Rules> {
        let mut roles = Vec::new();
        let mut index = HashMap::new();
        for (name, m) in &s.roles {
            let uids = m
                .users
                .iter()
                .map(|u| identity::uid_of(u).ok_or_else(|| unknown("user", u)))
                .collect::<Result<_>>()?;
            let gids = m
                .groups
                .iter()
                .map(|g| identity::gid_of(g).ok_or_else(|| unknown("group", g)))
                .collect::<Result<_>>()?;
            index.insert(name.as_str(), roles.len());
            roles.push(Role { uids, gids });
        }
        let ids = |names: &[String]| -> Result<Vec<usize>> {
            names
                .iter()
                .map(|n| {
                    index.get(n.as_str()).copied().ok_or_else(|| {
                        invalid(FILE, &format!("role '{n}' is granted but not in \"roles\""))
                    })
                })
                .collect()
        };
        let grant = |g: &Option<Grant>| -> Result<Allowed> {
            Ok(match g {
                None => Allowed::default(),
                Some(Grant::Both(r)) => Allowed {
                    read: Some(ids(r)?),
                    write: Some(ids(r)?),
                    remove: Some(ids(r)?),
                },
                Some(Grant::Split(rw)) => Allowed {
                    read: Some(ids(&rw.read)?),
                    write: Some(ids(&rw.write)?),
                    remove: Some(ids(&rw.write)?),
                },
            })
        };
        let ops = |o: &Option<Vec<String>>| o.as_deref().map(ids).transpose();
        let mut places = HashMap::new();
        if let Some(t) = &s.spacetime_access {
            places.insert("spacetime/hot_data", grant(&t.hot_data)?);
            places.insert("spacetime/warm_data", grant(&t.warm_data)?);
            places.insert("spacetime/cold_data", grant(&t.cold_data)?);
        }
        if let Some(t) = &s.temporal_access {
            places.insert("temporal/live", grant(&t.live)?);
            places.insert("temporal/recent", grant(&t.recent)?);
            places.insert("temporal/historical", grant(&t.historical)?);
        }
        if let Some(q) = &s.quantum_operations {
            let allowed = Allowed {
                read: ops(&q.observe)?,
                write: ops(&q.entangle)?,
                remove: ops(&q.collapse)?,
            };
            places.insert("quantum_graph", allowed);
        }
        places.insert("qql", grant(&s.qql_access)?);
        places.insert("backups", grant(&s.backups_access)?);
        places.insert("configuration", grant(&s.configuration_access)?);
        Ok(Rules {
            by_group: roles.iter().any(|r| !r.gids.is_empty()),
            admin: index.get(ADMIN).copied(),
            roles,
            places,
        })
    }

    /// Rules for a security file that is there but cannot be obeyed at mount (a user it
    /// names was removed from the machine since): every place it could name is closed to
    /// all but root, who can mend the file. Access never opens up by accident.
    pub fn locked() -> Rules {
        let none = || Some(Vec::new());
        let closed = || Allowed {
            read: none(),
            write: none(),
            remove: none(),
        };
        Rules {
            roles: Vec::new(),
            admin: None,
            places: PLACES.iter().map(|p| (*p, closed())).collect(),
            by_group: false,
        }
    }

    /// Whether `uid` (in `groups`, asked only if a role names groups) may do `verb` to the
    /// entry at `parts`; a refusal says what was missing.
    pub fn decide(
        &self,
        uid: u32,
        groups: impl FnOnce() -> Vec<u32>,
        parts: &[&[u8]],
        verb: Verb,
    ) -> Result<()> {
        let need = needs(parts, verb);
        if uid == 0 || (need.places.is_empty() && !need.admin_only) {
            return Ok(());
        }
        let groups = if self.by_group { groups() } else { Vec::new() };
        let has = |r: &usize| {
            let role = &self.roles[*r];
            role.uids.contains(&uid) || role.gids.iter().any(|g| groups.contains(g))
        };
        if self.admin.as_ref().is_some_and(has) {
            return Ok(());
        }
        if need.admin_only {
            return Err(Error::Denied(format!(
                "only root and the {ADMIN} role may change {FILE}"
            )));
        }
        for place in need.places {
            let Some(allowed) = self.places.get(place) else {
                continue;
            };
            let roles = match verb {
                Verb::Read => &allowed.read,
                Verb::Write => &allowed.write,
                Verb::Remove => &allowed.remove,
            };
            if roles.as_ref().is_some_and(|r| !r.iter().any(has)) {
                return Err(Error::Denied(format!(
                    "no role of {}({uid}) is granted {} in {place} ({FILE})",
                    identity::user_name(uid),
                    verb_name(place, verb)
                )));
            }
        }
        Ok(())
    }
}

/// A verb as the file names it for a place.
fn verb_name(place: &str, verb: Verb) -> &'static str {
    match (place, verb) {
        ("quantum_graph", Verb::Read) => "observe",
        ("quantum_graph", Verb::Write) => "entangle",
        ("quantum_graph", Verb::Remove) => "collapse",
        (_, Verb::Read) => "read",
        (_, Verb::Write | Verb::Remove) => "write",
    }
}

fn unknown(what: &str, name: &str) -> Error {
    invalid(FILE, &format!("no {what} '{name}' on this machine"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOBODY: u32 = 65534;
    const DAEMON: u32 = 1;

    fn rules(text: &str) -> Rules {
        match Rules::parse(text.as_bytes()) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    fn path(p: &str) -> Vec<&[u8]> {
        p.split('/').map(str::as_bytes).collect()
    }

    fn may(r: &Rules, uid: u32, groups: &[u32], p: &str, verb: Verb) -> bool {
        r.decide(uid, || groups.to_vec(), &path(p), verb).is_ok()
    }

    const SEED: &str = r#"{"cosmic_security": {
        "roles": {
            "admin": {"users": ["4242"]},
            "physics_engine": {"users": ["daemon"]},
            "observer": {"groups": ["777"]},
            "quantum_engineer": {"users": ["daemon"]},
            "archivist": {"users": ["nobody"]}
        },
        "spacetime_access": {
            "hot_data": ["admin", "physics_engine"],
            "warm_data": {"read": ["observer"], "write": ["physics_engine"]},
            "cold_data": ["admin", "archivist"]
        },
        "quantum_operations": {
            "entangle": ["quantum_engineer"],
            "observe": ["observer", "quantum_engineer"],
            "collapse": []
        },
        "temporal_access": {"live": ["physics_engine"]},
        "configuration_access": {"read": ["observer"], "write": []}
    }}"#;

    #[test]
    fn each_grant_allows_its_roles_and_denies_the_others() {
        let r = rules(SEED);
        let hot = "spacetime/hot_data/particles/users/a.json";
        assert!(may(&r, DAEMON, &[], hot, Verb::Write));
        assert!(!may(&r, NOBODY, &[], hot, Verb::Read));
        assert!(may(
            &r,
            NOBODY,
            &[],
            "spacetime/cold_data/particles/x",
            Verb::Remove
        ));
        let warm = "spacetime/warm_data/particles/x/y.json";
        assert!(may(&r, NOBODY, &[777], warm, Verb::Read), "by group");
        assert!(!may(&r, NOBODY, &[777], warm, Verb::Write), "read only");
        assert!(!may(&r, NOBODY, &[], warm, Verb::Read), "not in the group");
        let edge = "quantum_graph/edges/works_for/e.json";
        assert!(may(&r, DAEMON, &[], edge, Verb::Write), "entangle");
        assert!(
            !may(&r, DAEMON, &[], edge, Verb::Remove),
            "nobody may collapse"
        );
        assert!(may(&r, NOBODY, &[777], edge, Verb::Read), "observe");
        assert!(!may(&r, NOBODY, &[], edge, Verb::Read));
        assert!(
            may(&r, 4242, &[], edge, Verb::Remove),
            "admin does everything"
        );
        assert!(may(&r, 0, &[], edge, Verb::Remove), "root does everything");
        assert!(may(
            &r,
            DAEMON,
            &[],
            "temporal/live/s/now.jsonl",
            Verb::Write
        ));
        assert!(!may(
            &r,
            NOBODY,
            &[],
            "temporal/live/s/now.jsonl",
            Verb::Read
        ));
        assert!(
            may(&r, NOBODY, &[], "temporal/historical/x", Verb::Read),
            "not named"
        );
        assert!(
            !may(&r, NOBODY, &[], "temporal/range/a..b.jsonl", Verb::Read),
            "a range reads the live stage too"
        );
        assert!(
            may(&r, NOBODY, &[], "qql/queries/q.qql", Verb::Write),
            "open"
        );
        assert!(may(
            &r,
            NOBODY,
            &[],
            "observatory/dashboard.json",
            Verb::Read
        ));
        assert!(
            may(&r, NOBODY, &[], "spacetime", Verb::Read),
            "above the tiers"
        );
    }

    #[test]
    fn only_root_and_admin_change_the_security_file() {
        let r = rules(SEED);
        let file = format!("configuration/{FILE}");
        assert!(
            may(&r, NOBODY, &[777], &file, Verb::Read),
            "read as configuration"
        );
        for verb in [Verb::Write, Verb::Remove] {
            assert!(!may(&r, DAEMON, &[777], &file, verb));
            assert!(may(&r, 4242, &[], &file, verb));
            assert!(may(&r, 0, &[], &file, verb));
        }
        assert!(!may(
            &r,
            NOBODY,
            &[777],
            "configuration/shard_topology.json",
            Verb::Write
        ));
    }

    #[test]
    fn a_file_that_cannot_be_obeyed_closes_every_place_to_all_but_root() {
        // Every place a file can grant is one the locked rules close.
        let every = br#"{"cosmic_security": {"roles": {"a": {"users": ["root"]}},
            "spacetime_access": {}, "temporal_access": {}, "quantum_operations": {}}}"#;
        let granted: std::collections::BTreeSet<&str> = Rules::parse(every)
            .expect("rules")
            .places
            .into_keys()
            .collect();
        assert_eq!(granted, PLACES.into_iter().collect());
        let r = Rules::locked();
        for place in PLACES {
            let path = format!("{place}/x");
            assert!(!may(&r, NOBODY, &[], &path, Verb::Read), "{place}");
            assert!(may(&r, 0, &[], &path, Verb::Remove), "{place}");
        }
        assert!(
            may(&r, NOBODY, &[], "observatory/x", Verb::Read),
            "not a place"
        );
        assert!(may(
            &r,
            0,
            &[],
            &format!("configuration/{FILE}"),
            Verb::Write
        ));
        assert!(!may(
            &r,
            4242,
            &[],
            &format!("configuration/{FILE}"),
            Verb::Write
        ));
    }

    #[test]
    fn an_invalid_file_is_refused_with_its_reason() {
        let bad = [
            (
                r#"{"cosmic_security": {"roles": {}, "qql_access": ["ghost"]}}"#,
                "ghost",
            ),
            (
                r#"{"cosmic_security": {"roles": {"a": {"users": ["no-such-user-x"]}}}}"#,
                "no-such-user-x",
            ),
            (
                r#"{"cosmic_security": {"roles": {}, "spacetime_access": {"hot": []}}}"#,
                "hot",
            ),
            (r#"{"roles": {}}"#, "cosmic_security"),
            (
                r#"{"cosmic_security": {"roles": {}, "qql_access": 3}}"#,
                "line",
            ),
        ];
        for (text, why) in bad {
            match Rules::parse(text.as_bytes()) {
                Ok(_) => panic!("accepted {text}"),
                Err(e) => assert!(e.to_string().contains(why), "{text}: {e}"),
            }
        }
    }
}
