//! `quantum_graph/remove_with_edges`: each line written (`<type>/<id>` or `<id>`) removes
//! that node and every edge naming it, in one atomic change (one log record): a crash
//! leaves all of it or none of it.

use std::sync::Arc;

use super::index::EdgeKey;
use super::names::SEP;
use super::{EDGES, NODES, Shared};
use crate::engine::Change;
use crate::error::{Error, Result};
use crate::regions::{Cx, Sink};

/// A line longer than this is not a node's name.
const LINE_MAX: usize = 4096;

pub struct Cascade {
    shared: Arc<Shared>,
    pending: Vec<u8>,
}

impl Cascade {
    pub fn new(shared: Arc<Shared>) -> Cascade {
        Cascade {
            shared,
            pending: Vec::new(),
        }
    }

    fn run_lines(&mut self, cx: &Cx<'_>, last: bool) -> Result<()> {
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            remove(&self.shared, cx, &line[..i])?;
        }
        if last && !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            remove(&self.shared, cx, &line)?;
        }
        if self.pending.len() > LINE_MAX {
            self.pending.clear();
            return Err(Error::InvalidArgument("a line longer than a node's name"));
        }
        Ok(())
    }
}

impl Sink for Cascade {
    fn write(&mut self, cx: &Cx<'_>, bytes: &[u8]) -> Result<usize> {
        self.pending.extend_from_slice(bytes);
        match self.run_lines(cx, false) {
            Ok(()) => Ok(bytes.len()),
            Err(e) => {
                self.pending.clear();
                Err(e)
            }
        }
    }

    fn sync(&mut self, _cx: &Cx<'_>) -> Result<()> {
        Ok(())
    }

    fn close(&mut self, cx: &Cx<'_>) -> Result<()> {
        self.run_lines(cx, true)
    }
}

/// Removes the node `line` names with its edges.
fn remove(shared: &Shared, cx: &Cx<'_>, line: &[u8]) -> Result<()> {
    let spec = std::str::from_utf8(line)
        .map_err(|_| Error::InvalidArgument("a node's name is UTF-8"))?
        .trim();
    if spec.is_empty() {
        return Ok(());
    }
    let (kind, id) = match spec.trim_end_matches(".json").rsplit_once('/') {
        Some((k, id)) => (Some(k.rsplit('/').next().unwrap_or(k)), id),
        None => (None, spec.trim_end_matches(".json")),
    };
    let _held = shared.hold();
    let (node, edges) = {
        let graph = shared.graph();
        let node = graph
            .node(id)
            .filter(|n| kind.is_none_or(|k| k == n.kind))
            .cloned();
        let Some(node) = node else {
            log::warn!("quantum_graph/remove_with_edges: no node '{spec}'");
            return Err(Error::NotFound);
        };
        (node, graph.edges_of(id))
    };
    let dir = |top: &str, name: &str| -> Result<u64> {
        let top = cx.seed_dir(top).ok_or(Error::NotFound)?;
        Ok(cx.store.lookup(top.ino, name.as_bytes())?.ino)
    };
    let mut gone = Vec::with_capacity(edges.len() + 1);
    for k in &edges {
        gone.push((dir(EDGES, &k.relation)?, edge_name(k).into_bytes()));
    }
    gone.push((dir(NODES, &node.kind)?, format!("{id}.json").into_bytes()));
    let changes = gone
        .iter()
        .map(|(parent, name)| Change::RemoveTree {
            parent: *parent,
            name: name.clone(),
        })
        .collect();
    let parents: Vec<u64> = gone.iter().map(|(parent, _)| *parent).collect();
    let _telling = cx.regions.telling(&parents);
    cx.store.apply(changes, true)?;
    for (parent, name) in &gone {
        (cx.gone)(*parent, name);
        let entry = crate::regions::Event::Entry { dir: *parent, name };
        cx.regions.observe(cx, &entry);
    }
    let mut graph = shared.graph();
    for k in &edges {
        graph.remove_edge(k);
    }
    graph.remove_node(id, &node.kind);
    drop(graph);
    shared.node_gone(cx, node.ino);
    log::info!(
        "quantum_graph: removed node {}/{id} with its {} edge(s)",
        node.kind,
        edges.len()
    );
    Ok(())
}

pub fn edge_name(k: &EdgeKey) -> String {
    format!("{}{SEP}{}.json", k.a, k.b)
}
