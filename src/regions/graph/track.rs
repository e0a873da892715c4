//! Keeping the graph whole: which changes of names are admitted, and the in-memory graph
//! kept in step with the files after each change (and read from them at start).

use super::index::{EdgeKey, Graph, Node, Stored};
use super::names::{self, check_edge_name, check_node_name, edge_ends, node_id};
use super::{EDGES, NODES, Place, Shared};
use crate::engine::tree::Kind;
use crate::error::{Error, Result};
use crate::regions::{Cx, Dir, Naming};

/// Whether `name` in a directory at `place` may change so.
pub fn admit(
    shared: &Shared,
    place: &Place,
    name: &[u8],
    change: Naming<'_>,
    place_of: impl Fn(&Dir) -> Place,
) -> Result<()> {
    let graph = shared.graph();
    let moved_to = match change {
        Naming::RenameTo(to, newname) => Some((place_of(to), newname)),
        _ => None,
    };
    match place {
        Place::Type(kind) => match change {
            Naming::Add(_) | Naming::RenameFrom(..) => {
                check_node_name(name)?;
                let Some(id) = node_id(name) else {
                    return Ok(());
                };
                // The node itself, moving here from its type's directory, keeps its id.
                let itself = |n: &Node| match change {
                    Naming::RenameFrom(from, old) => {
                        node_id(old) == Some(id) && place_of(from) == Place::Type(n.kind.clone())
                    }
                    _ => false,
                };
                match graph.node(id) {
                    Some(n) if &n.kind != kind && !itself(n) => Err(Error::InvalidRecord(format!(
                        "node id '{id}' is taken by {}/{id}.json (ids are unique across types)",
                        n.kind
                    ))),
                    _ => Ok(()),
                }
            }
            _ => {
                let Some(id) = node_id(name) else {
                    return Ok(());
                };
                // Moving to another type keeps the id, and with it the edges.
                if let Some((Place::Type(_), newname)) = &moved_to
                    && node_id(newname) == Some(id)
                {
                    return Ok(());
                }
                in_use(&graph.edges_of(id), kind, id)
            }
        },
        Place::Relation(relation) => match change {
            Naming::Add(_) | Naming::RenameFrom(..) => {
                check_edge_name(name)?;
                let Some((a, b)) = edge_ends(name) else {
                    return Ok(());
                };
                for end in [a, b] {
                    if graph.node(end).is_none() {
                        return Err(Error::InvalidRecord(format!(
                            "edge {relation}/{}: there is no node '{end}' \
                             (quantum_graph/nodes/<type>/{end}.json)",
                            String::from_utf8_lossy(name)
                        )));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        },
        Place::Types | Place::Relations => {
            let Some((to, _)) = &moved_to else {
                return Ok(());
            };
            if to == place {
                return Ok(());
            }
            if matches!(to, Place::Types | Place::Relations) {
                return Err(Error::NotPermitted(
                    "an entry enters nodes/ or edges/ only by being made there",
                ));
            }
            // A type's nodes leave the graph with it: not while edges name them.
            if *place == Place::Types {
                let kind = String::from_utf8_lossy(name);
                for (id, n) in graph.nodes().filter(|(_, n)| n.kind == kind) {
                    in_use(&graph.edges_of(id), &n.kind, id)?;
                }
            }
            Ok(())
        }
        _ => match &moved_to {
            Some((to @ (Place::Types | Place::Relations), _)) if to != place => Err(
                Error::NotPermitted("an entry enters nodes/ or edges/ only by being made there"),
            ),
            _ => Ok(()),
        },
    }
}

fn in_use(edges: &[EdgeKey], kind: &str, id: &str) -> Result<()> {
    if edges.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = edges
        .iter()
        .take(5)
        .map(|k| format!("{}/{}{}{}.json", k.relation, k.a, names::SEP, k.b))
        .collect();
    Err(Error::InUse(format!(
        "node {kind}/{id} has {} edge(s) ({}{}): remove them first, or write '{kind}/{id}' \
         to quantum_graph/remove_with_edges",
        edges.len(),
        shown.join(", "),
        if edges.len() > shown.len() {
            ", ..."
        } else {
            ""
        }
    )))
}

/// `name` in `dir` (at `place`) changed: the graph takes what is there now. Returns the
/// inode of a node that went.
pub fn entry_changed(
    shared: &Shared,
    cx: &Cx<'_>,
    dir: &Dir,
    place: &Place,
    name: &[u8],
) -> Option<u64> {
    let now = cx.store.lookup(dir.ino, name).ok();
    let mut graph = shared.graph();
    match place {
        Place::Type(kind) => {
            let id = node_id(name)?;
            match now {
                Some(a) if a.kind == Kind::File => graph.set_node(id, kind, a.ino),
                _ => return graph.remove_node(id, kind),
            }
        }
        Place::Relation(relation) => {
            let (a, b) = edge_ends(name)?;
            let key = EdgeKey::new(relation, a, b);
            match now {
                Some(attr) if attr.kind == Kind::File => take_edge(&mut graph, cx, key, attr.ino),
                _ => graph.remove_edge(&key),
            }
        }
        Place::Types | Place::Relations => {
            let collection = String::from_utf8_lossy(name).into_owned();
            let is_types = *place == Place::Types;
            if is_types {
                graph.remove_type(&collection);
            } else {
                graph.remove_relation(&collection);
            }
            drop(graph);
            if let Some(a) = now.filter(|a| a.kind == Kind::Dir)
                && let Err(e) = scan(shared, cx, a.ino, &collection, is_types)
            {
                log::warn!("quantum_graph: reading {collection}: {e}");
            }
        }
        _ => {}
    }
    None
}

/// What a stored edge says; one that cannot be read (left by an older build) counts as
/// of no strength, loudly.
fn read_body(cx: &Cx<'_>, ino: u64) -> Option<(super::body::Edge, i64)> {
    match super::body::read_edge(cx, ino) {
        Ok(b) => Some(b),
        Err(e) => {
            log::warn!("quantum_graph: edge inode {ino}: {e}");
            None
        }
    }
}

/// The edge `key`, stored at `ino`, with what it says now.
fn take_edge(graph: &mut Graph, cx: &Cx<'_>, key: EdgeKey, ino: u64) {
    let body = read_body(cx, ino);
    graph.set_edge(key, Stored { ino, body });
}

/// An edge's content was committed: the graph takes what it says now.
pub fn edge_committed(shared: &Shared, cx: &Cx<'_>, relation: &str, name: &[u8], ino: u64) {
    if let Some((a, b)) = edge_ends(name) {
        take_edge(&mut shared.graph(), cx, EdgeKey::new(relation, a, b), ino);
    }
}

/// Adds the nodes (or edges) stored in the collection directory `ino`.
fn scan(shared: &Shared, cx: &Cx<'_>, ino: u64, collection: &str, nodes: bool) -> Result<()> {
    let entries = cx.store.readdir_names(ino)?;
    let mut graph = shared.graph();
    for (name, attr) in entries.iter().filter(|(_, a)| a.kind == Kind::File) {
        if nodes {
            if let Some(id) = node_id(name) {
                graph.set_node(id, collection, attr.ino);
            }
        } else if let Some((a, b)) = edge_ends(name) {
            take_edge(&mut graph, cx, EdgeKey::new(collection, a, b), attr.ino);
        }
    }
    Ok(())
}

/// Reads the whole graph from its files (at start).
pub fn load(shared: &Shared, cx: &Cx<'_>) -> Result<()> {
    for (path, nodes) in [(NODES, true), (EDGES, false)] {
        let Some(dir) = cx.seed_dir(path) else {
            continue;
        };
        for (name, attr) in cx.store.readdir_names(dir.ino)? {
            if attr.kind == Kind::Dir {
                scan(shared, cx, attr.ino, &String::from_utf8_lossy(&name), nodes)?;
            }
        }
    }
    let graph = shared.graph();
    let dangling = graph.dangling();
    if !dangling.is_empty() {
        // Only a universe written before the graph kept its edges whole can hold these.
        log::warn!(
            "quantum_graph: {} edge(s) name a missing node (kept as they are; first: {}/{}{}{})",
            dangling.len(),
            dangling[0].relation,
            dangling[0].a,
            names::SEP,
            dangling[0].b
        );
    }
    log::info!(
        "quantum_graph: {} nodes, {} edges",
        graph.node_count(),
        graph.edge_count()
    );
    Ok(())
}
