//! `quantum_graph/`: nodes (`nodes/<type>/<id>.json`) and the edges between them
//! (`edges/<relation>/<a>_to_<b>.json`). For now this holds only the region's
//! self-contained libraries: [`dimensions`], the coordinates of nodes, the index that
//! finds a node's nearest neighbours and the clusters of similar nodes. The region itself
//! (commit checks, generated files) is wired on top of them.

pub mod dimensions;
