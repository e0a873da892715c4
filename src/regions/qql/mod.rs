//! QQL, the universe's query language (QQL.md): the language (`lang`: lexer, parser,
//! the JSON value order), its planning and execution (`exec`) over the data-access trait
//! [`source::Source`], result formatting (`format`) and the compiled form (`compiled`).
//! Nothing here touches the filesystem: the `qql/` region implements `Source` over the
//! engine and serves what this module computes.
//!
//! The calls, in order: [`lang::parser::parse`] text into a [`lang::ast::Query`],
//! [`exec::plan::plan`] it against a source, [`exec::run::run`] the plan, then
//! [`format::render`] the output; [`compiled::encode`] / [`compiled::decode`] store a
//! query as `hash_<h>.erl`, named by [`compiled::hash`].

mod ask;
pub mod compiled;
mod engine_source;
mod eval;
pub mod exec;
pub mod format;
mod in_order;
mod indexes;
pub mod lang;
mod paths_index;
mod records;
pub mod region;
pub mod schema;
pub mod source;
mod state;

#[cfg(test)]
mod memsource;
#[cfg(test)]
mod prop_tests;

use self::lang::path::{JsonPath, Step};
use self::schema::paths::{IndexPath, Seg};
use self::schema::scope::Scope;
use crate::engine::codec::Tier;
use crate::regions::Cx;

/// A declared index path as the planner's path.
pub fn index_path(p: &IndexPath) -> JsonPath {
    JsonPath(
        p.segments()
            .iter()
            .map(|s| match s {
                Seg::Key(k) => Step::Member(k.clone()),
                Seg::Index(i) => Step::Index(*i as u64),
            })
            .collect(),
    )
}

/// The directories (paths from the root) a schema entry's scope covers.
pub fn collection_dirs(cx: &Cx<'_>, scope: &Scope) -> Vec<String> {
    let paths = match scope {
        Scope::Particles(n) => Tier::ALL
            .iter()
            .map(|t| format!("spacetime/{}/particles/{n}", t.dir_name()))
            .collect(),
        Scope::TierParticles(t, n) => vec![format!("spacetime/{}/particles/{n}", t.dir_name())],
        Scope::Nodes(n) => vec![format!("quantum_graph/nodes/{n}")],
        Scope::Edges(n) => vec![format!("quantum_graph/edges/{n}")],
    };
    paths
        .into_iter()
        .filter(|p| dir_at(cx, p).is_some())
        .collect()
}

/// The directory at `path` from the root, if there is one.
pub fn dir_at(cx: &Cx<'_>, path: &str) -> Option<u64> {
    let mut ino = crate::engine::tree::ROOT;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = cx.store.lookup(ino, part.as_bytes()).ok()?.ino;
    }
    Some(ino)
}
