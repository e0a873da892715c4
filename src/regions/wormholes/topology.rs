//! `wormholes/topology.graphml`: the local topology as a graph for standard tools
//! (networkx, Gephi, yEd, Cytoscape): a node per tier (its files and bytes) and per
//! region, an edge from each region to each tier it has traffic in (weight: reads plus
//! commits since the mount), and an edge along each route between tiers (weight: moves
//! made along it).

use std::fmt::Write;

use crate::engine::codec::Tier;
use crate::regions::tiering::State;

use super::analytics;

/// `s` as XML text or attribute content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

const KEYS: [(&str, &str, &str, &str); 9] = [
    ("n_kind", "node", "kind", "string"),
    ("n_label", "node", "label", "string"),
    ("n_records", "node", "records", "long"),
    ("n_bytes", "node", "bytes", "long"),
    ("e_kind", "edge", "kind", "string"),
    ("e_weight", "edge", "weight", "double"),
    ("e_reads", "edge", "reads", "long"),
    ("e_commits", "edge", "commits", "long"),
    ("e_moves", "edge", "moves", "long"),
];

struct Graph(String);

impl Graph {
    fn node(&mut self, id: &str, kind: &str, label: &str, figures: &[(&str, u64)]) {
        let _ = write!(
            self.0,
            "    <node id=\"{}\">\n      <data key=\"n_kind\">{kind}</data>\n      <data key=\"n_label\">{}</data>\n",
            escape(id),
            escape(label)
        );
        for (k, v) in figures {
            let _ = writeln!(self.0, "      <data key=\"{k}\">{v}</data>");
        }
        self.0.push_str("    </node>\n");
    }

    fn edge(
        &mut self,
        n: usize,
        from: &str,
        to: &str,
        kind: &str,
        weight: u64,
        figures: &[(&str, u64)],
    ) {
        let _ = write!(
            self.0,
            "    <edge id=\"e{n}\" source=\"{}\" target=\"{}\">\n      <data key=\"e_kind\">{kind}</data>\n      <data key=\"e_weight\">{weight}</data>\n",
            escape(from),
            escape(to)
        );
        for (k, v) in figures {
            let _ = writeln!(self.0, "      <data key=\"{k}\">{v}</data>");
        }
        self.0.push_str("    </edge>\n");
    }
}

fn tier_id(t: Tier) -> String {
    format!("tier:{}", t.dir_name())
}

/// The graph of `st`'s latest traffic, with `records`/`bytes` per tier.
pub fn render(st: &State, records: [u64; 3], bytes: [u64; 3], regions: &[&str]) -> Vec<u8> {
    let mut g = Graph(String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
         http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
    ));
    for (id, on, name, ty) in KEYS {
        let _ = writeln!(
            g.0,
            "  <key id=\"{id}\" for=\"{on}\" attr.name=\"{name}\" attr.type=\"{ty}\"/>"
        );
    }
    g.0.push_str("  <graph id=\"universe\" edgedefault=\"directed\">\n");
    for t in Tier::ALL {
        let i = t as usize;
        g.node(
            &tier_id(t),
            "tier",
            t.dir_name(),
            &[("n_records", records[i]), ("n_bytes", bytes[i])],
        );
    }
    for r in regions {
        g.node(&format!("region:{r}"), "region", r, &[]);
    }
    let mut n = 0;
    if let Some(p) = st.traffic.latest() {
        for (&(region, tier), ops) in &p.regions {
            if ops.total() == 0 || !regions.contains(&region) {
                continue;
            }
            g.edge(
                n,
                &format!("region:{region}"),
                &tier_id(tier),
                "traffic",
                ops.total(),
                &[("e_reads", ops.reads), ("e_commits", ops.commits)],
            );
            n += 1;
        }
    }
    for (from, to) in analytics::routes(st) {
        let moves = st.moves.pairs[from as usize][to as usize].count;
        g.edge(
            n,
            &tier_id(from),
            &tier_id(to),
            "route",
            moves,
            &[("e_moves", moves)],
        );
        n += 1;
    }
    g.0.push_str("  </graph>\n</graphml>\n");
    g.0.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_xml_needs() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        let doc = String::from_utf8(render(
            &State::default(),
            [1, 2, 3],
            [4, 5, 6],
            &["records"],
        ))
        .unwrap_or_default();
        assert!(doc.contains("<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\""));
        assert!(doc.contains("<node id=\"tier:hot_data\">"));
        assert!(doc.contains("source=\"tier:hot_data\" target=\"tier:warm_data\""));
        assert!(doc.ends_with("</graphml>\n"));
    }
}
