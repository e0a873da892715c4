//! Which records a collection's entry governs: the names `universe_schema.json` gives its
//! collections, and the mapping of a record's path to the collection it belongs to.
//!
//! A collection is named either
//! - by its name under `particles/` alone (`users`): that collection in every tier,
//!   `spacetime/{hot,warm,cold}_data/particles/users`; or
//! - by its path from the root of the mount: one tier's collection
//!   (`spacetime/hot_data/particles/orders`), a type of graph node
//!   (`quantum_graph/nodes/persons`) or a relation of graph edges
//!   (`quantum_graph/edges/works_for`).
//!
//! A record is a file whose name ends in `.json` directly in a collection's directory
//! (`spacetime/warm_data/particles/users/alice.json`, `quantum_graph/nodes/persons/p1.json`);
//! a file deeper below it belongs to no collection.

use std::fmt;

use crate::engine::codec::Tier;

/// What an entry's name says it governs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `NAME`: the collection `NAME` under `particles/` of every tier.
    Particles(String),
    /// `spacetime/<tier>/particles/NAME`: that collection in one tier.
    TierParticles(Tier, String),
    /// `quantum_graph/nodes/TYPE`.
    Nodes(String),
    /// `quantum_graph/edges/RELATION`.
    Edges(String),
}

/// Where a record is: the collection it belongs to, and its key (its name without `.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place<'a> {
    Particle {
        tier: Tier,
        collection: &'a str,
        key: &'a str,
    },
    Node {
        kind: &'a str,
        id: &'a str,
    },
    Edge {
        relation: &'a str,
        key: &'a str,
    },
}

/// Bytes a collection's name (one path component) holds at most.
pub const MAX_NAME: usize = 255;

/// Whether `s` can name a directory: 1 to [`MAX_NAME`] bytes, no `/` or NUL, not `.` or `..`.
fn is_component(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME && s != "." && s != ".." && !s.contains(['/', '\0'])
}

fn tier_dir(s: &str) -> Option<Tier> {
    Tier::ALL.into_iter().find(|t| t.dir_name() == s)
}

impl Scope {
    /// The scope an entry's name gives, or why the name names no collection.
    pub fn parse(name: &str) -> Result<Scope, String> {
        const FORMS: &str = "a collection is NAME (under particles/ in every tier), \
             spacetime/<hot_data|warm_data|cold_data>/particles/NAME, \
             quantum_graph/nodes/TYPE or quantum_graph/edges/RELATION";
        let parts: Vec<&str> = name.split('/').collect();
        let scope = match parts.as_slice() {
            [n] => Scope::Particles(n.to_string()),
            ["spacetime", tier, "particles", n] => {
                let tier = tier_dir(tier).ok_or_else(|| format!("unknown tier {tier:?}"))?;
                Scope::TierParticles(tier, n.to_string())
            }
            ["quantum_graph", "nodes", n] => Scope::Nodes(n.to_string()),
            ["quantum_graph", "edges", n] => Scope::Edges(n.to_string()),
            _ => return Err(FORMS.to_string()),
        };
        let last = parts.last().copied().unwrap_or_default();
        if !is_component(last) {
            return Err(format!(
                "{last:?} is no directory name (1 to {MAX_NAME} bytes, no '/' or NUL, not \
                 '.' or '..'); {FORMS}"
            ));
        }
        Ok(scope)
    }

    /// Whether a record at `place` is governed by this scope.
    pub fn covers(&self, place: &Place<'_>) -> bool {
        match (self, place) {
            (Scope::Particles(n), Place::Particle { collection, .. }) => n == collection,
            (
                Scope::TierParticles(t, n),
                Place::Particle {
                    tier, collection, ..
                },
            ) => t == tier && n == collection,
            (Scope::Nodes(n), Place::Node { kind, .. }) => n == kind,
            (Scope::Edges(n), Place::Edge { relation, .. }) => n == relation,
            _ => false,
        }
    }

    /// Whether this scope names one tier's collection (rather than a whole collection).
    pub fn is_tier_specific(&self) -> bool {
        matches!(self, Scope::TierParticles(..))
    }
}

impl fmt::Display for Scope {
    /// The entry name this scope is parsed from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Particles(n) => f.write_str(n),
            Scope::TierParticles(t, n) => write!(f, "spacetime/{}/particles/{n}", t.dir_name()),
            Scope::Nodes(n) => write!(f, "quantum_graph/nodes/{n}"),
            Scope::Edges(n) => write!(f, "quantum_graph/edges/{n}"),
        }
    }
}

/// The collection a record belongs to, from its path from the root of the mount (a
/// leading `/` is allowed): `None` for a file that is no record of a collection.
pub fn collection_of(path_from_root: &str) -> Option<Place<'_>> {
    let path = path_from_root.strip_prefix('/').unwrap_or(path_from_root);
    let parts: Vec<&str> = path.split('/').collect();
    let place = match parts.as_slice() {
        ["spacetime", tier, "particles", collection, file] => Place::Particle {
            tier: tier_dir(tier)?,
            collection,
            key: file.strip_suffix(".json")?,
        },
        ["quantum_graph", "nodes", kind, file] => Place::Node {
            kind,
            id: file.strip_suffix(".json")?,
        },
        ["quantum_graph", "edges", relation, file] => Place::Edge {
            relation,
            key: file.strip_suffix(".json")?,
        },
        _ => return None,
    };
    parts.iter().all(|p| is_component(p)).then_some(place)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_records_of_every_tier_and_the_graph() {
        for tier in Tier::ALL {
            let path = format!("spacetime/{}/particles/users/alice.json", tier.dir_name());
            assert_eq!(
                collection_of(&path),
                Some(Place::Particle {
                    tier,
                    collection: "users",
                    key: "alice"
                })
            );
        }
        assert_eq!(
            collection_of("/quantum_graph/nodes/persons/p1.json"),
            Some(Place::Node {
                kind: "persons",
                id: "p1"
            })
        );
        assert_eq!(
            collection_of("quantum_graph/edges/works_for/p1_to_o1.json"),
            Some(Place::Edge {
                relation: "works_for",
                key: "p1_to_o1"
            })
        );
        for not_a_record in [
            "spacetime/hot_data/particles/users/alice.txt",
            "spacetime/hot_data/particles/users/sub/alice.json",
            "spacetime/hot_data/particles/users.json",
            "spacetime/lukewarm/particles/users/alice.json",
            "spacetime/hot_data/quantum_indices/users/a.json",
            "quantum_graph/neighbourhoods/p1.json",
            "quantum_graph/nodes/persons/x/p1.json",
            "spacetime/hot_data/particles/users/",
            "spacetime/hot_data/particles//a.json",
            "qql/schema/universe_schema.json",
            "",
        ] {
            assert_eq!(collection_of(not_a_record), None, "{not_a_record}");
        }
    }

    #[test]
    fn names_parse_to_scopes_and_cover_their_records() {
        let s = |n: &str| Scope::parse(n);
        assert_eq!(s("users"), Ok(Scope::Particles("users".into())));
        assert_eq!(
            s("spacetime/hot_data/particles/orders"),
            Ok(Scope::TierParticles(Tier::Hot, "orders".into()))
        );
        assert_eq!(
            s("quantum_graph/nodes/persons"),
            Ok(Scope::Nodes("persons".into()))
        );
        assert_eq!(
            s("quantum_graph/edges/works_for"),
            Ok(Scope::Edges("works_for".into()))
        );
        for bad in [
            "",
            ".",
            "..",
            "spacetime/hot/particles/orders",
            "spacetime/hot_data/particles",
            "spacetime/hot_data/particles/",
            "quantum_graph/nodes",
            "quantum_graph/persons",
            "particles/users",
            "/users",
            "a\0b",
        ] {
            assert!(s(bad).is_err(), "{bad:?}");
        }
        assert!(s(&"x".repeat(MAX_NAME + 1)).is_err());
        for name in [
            "users",
            "spacetime/cold_data/particles/users",
            "quantum_graph/nodes/persons",
            "quantum_graph/edges/works_for",
        ] {
            assert_eq!(s(name).map(|s| s.to_string()).as_deref(), Ok(name));
        }

        let hot = collection_of("spacetime/hot_data/particles/users/a.json");
        let warm = collection_of("spacetime/warm_data/particles/users/a.json");
        let node = collection_of("quantum_graph/nodes/users/a.json");
        let all = Scope::Particles("users".into());
        let hot_only = Scope::TierParticles(Tier::Hot, "users".into());
        let cover = |s: &Scope, p: Option<Place<'_>>| p.is_some_and(|p| s.covers(&p));
        assert!(cover(&all, hot) && cover(&all, warm) && !cover(&all, node));
        assert!(cover(&hot_only, hot) && !cover(&hot_only, warm));
        assert!(cover(&Scope::Nodes("users".into()), node));
        assert!(!cover(&Scope::Edges("users".into()), node));
    }
}
