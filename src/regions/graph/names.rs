//! Names in the graph. A node is `nodes/<type>/<id>.json`; its id is unique across
//! types, so an edge names its ends by id alone: `edges/<relation>/<a>_to_<b>.json`.
//! An id therefore cannot contain `_to_`. Other names (editors' temporary files) are
//! not part of the graph.

use crate::error::{Error, Result};

pub const SEP: &str = "_to_";
const EXT: &str = ".json";

/// The id of the node a `.json` name in a type directory holds.
pub fn node_id(name: &[u8]) -> Option<&str> {
    let stem = std::str::from_utf8(name).ok()?.strip_suffix(EXT)?;
    (!stem.is_empty() && !stem.starts_with('.')).then_some(stem)
}

/// The ends `(a, b)` a `.json` name in a relation directory names.
pub fn edge_ends(name: &[u8]) -> Option<(&str, &str)> {
    let stem = std::str::from_utf8(name).ok()?.strip_suffix(EXT)?;
    if stem.starts_with('.') {
        return None;
    }
    let (a, b) = stem.split_once(SEP)?;
    (!a.is_empty() && !b.is_empty() && !b.contains(SEP)).then_some((a, b))
}

/// A `.json` name that can be a node (other names are not part of the graph).
pub fn check_node_name(name: &[u8]) -> Result<()> {
    match node_id(name) {
        Some(id) if id.contains(SEP) => Err(Error::InvalidRecord(format!(
            "node id '{id}' contains '{SEP}', which separates an edge's ends"
        ))),
        _ => Ok(()),
    }
}

/// A `.json` name in a relation directory must name its two ends.
pub fn check_edge_name(name: &[u8]) -> Result<()> {
    let Some(stem) = std::str::from_utf8(name)
        .ok()
        .and_then(|n| n.strip_suffix(EXT))
    else {
        return Ok(());
    };
    if stem.starts_with('.') || edge_ends(name).is_some() {
        return Ok(());
    }
    Err(Error::InvalidRecord(format!(
        "edge '{stem}{EXT}' must be named <a>{SEP}<b>{EXT} (node ids, each without '{SEP}')"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_names_give_their_ends() {
        assert_eq!(edge_ends(b"alice_to_acme.json"), Some(("alice", "acme")));
        assert_eq!(edge_ends(b"a_b_to_c_d.json"), Some(("a_b", "c_d")));
        assert_eq!(edge_ends(b"alice_to_alice.json"), Some(("alice", "alice")));
        for bad in [
            &b"alice.json"[..],
            b"_to_acme.json",
            b"alice_to_.json",
            b"a_to_b_to_c.json",
            b"alice_to_acme.txt",
            b".alice_to_acme.json.swp",
        ] {
            assert_eq!(edge_ends(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(check_edge_name(b"alice.json").is_err());
        assert!(check_edge_name(b"a_to_b_to_c.json").is_err());
        assert!(check_edge_name(b".alice_to_acme.json.swp").is_ok());
        assert!(check_edge_name(b"notes.txt").is_ok());
        assert!(check_edge_name(b"alice_to_acme.json").is_ok());
    }

    #[test]
    fn node_ids_are_stems_without_the_separator() {
        assert_eq!(node_id(b"alice.json"), Some("alice"));
        assert_eq!(node_id(b"alice.json~"), None);
        assert_eq!(node_id(b".alice.json"), None);
        assert_eq!(node_id(b".json"), None);
        assert!(check_node_name(b"a_to_b.json").is_err());
        assert!(check_node_name(b"alice.json").is_ok());
        assert!(check_node_name(b"x_to_y.txt").is_ok());
    }
}
