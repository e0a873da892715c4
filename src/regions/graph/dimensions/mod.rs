//! `quantum_graph/dimensions/`: where graph nodes sit in space, and who their neighbours
//! are. Pure functions and in-memory structures; the graph region does the file I/O.
//!
//! - [`coords`]: a node's coordinates, its own `coordinates` or derived from its content
//!   (feature hashing, documented there).
//! - [`metric`]: cosine (default) or euclidean distance.
//! - [`index`]: k nearest neighbours, exact below 10,000 vectors, HNSW ([`hnsw`]) above.
//! - [`index_file`]: `coordinate_index.btree`, an append-only log of the index's changes
//!   that a commit extends by one entry and that loads back into an `index::Index`.
//! - [`clusters`]: k-means clusters for `similarity_clusters.json`.

pub mod clusters;
pub mod coords;
mod hnsw;
pub mod index;
pub mod index_file;
pub mod metric;
mod store;
#[cfg(test)]
pub(super) mod tests;
