//! `wormholes/`: the routing between tiers, on one machine the local topology.
//! `active_connections.json` shows the open handles per region and tier,
//! `network_analytics.json` the traffic per tier and region and the moves along each
//! route, `topology.graphml` all of it as a graph for graph tools, and
//! `routing_tables/{hot_to_warm,warm_to_cold}.routes` what the tiering policy would move
//! next (binary, FORMAT.md). The figures are the tiering's (`regions::tiering`), shared
//! with `entropy/`, which drives its sampling.

mod analytics;
mod connections;
pub mod routes;
mod topology;

use std::sync::Arc;

use crate::engine::codec::Tier;
use crate::regions::config::Watched;
use crate::regions::entropy::TAG as ENTROPY;
use crate::regions::observatory::settings::{self as sampling, Settings as Sampling};
use crate::regions::temporal::time;
use crate::regions::tiering::Tiering;
use crate::regions::tiering::candidates::{self, Candidate};
use crate::regions::{Cx, Dir, Generated, Region, Tag};

use self::routes::{Route, Routes};

pub const TAG: Tag = 9;
pub const DIR: &str = "wormholes";
pub const ROUTING: &str = "wormholes/routing_tables";
pub const CONNECTIONS: &str = "active_connections.json";
pub const ANALYTICS: &str = "network_analytics.json";
pub const TOPOLOGY: &str = "topology.graphml";
pub const HOT_TO_WARM: &str = "hot_to_warm.routes";
pub const WARM_TO_COLD: &str = "warm_to_cold.routes";

pub struct Wormholes {
    tiering: Arc<Tiering>,
    sampling: Watched<Sampling>,
}

impl Wormholes {
    pub fn new(tiering: Arc<Tiering>) -> Wormholes {
        Wormholes {
            tiering,
            sampling: Watched::new(sampling::FILE, Sampling::parse),
        }
    }

    fn routes(&self, cx: &Cx<'_>, from: Tier) -> Vec<u8> {
        let p = self.tiering.policy.get(cx);
        let now = time::now();
        let plan = candidates::plan(cx, &self.tiering, &p, now);
        let (to, after, list) = match from {
            Tier::Hot => (Tier::Warm, p.demote_after_secs, plan.hot_to_warm),
            _ => (Tier::Cold, p.demote_cold_after_secs, plan.warm_to_cold),
        };
        let entry = |c: &Candidate| Route {
            ino: c.ino,
            last_touch: c.last_touch,
            size: c.size,
            reads: c.reads,
        };
        Routes {
            from,
            to,
            enabled: p.enabled,
            at: now,
            after_secs: after,
            entries: list.iter().map(entry).collect(),
        }
        .encode()
    }
}

impl Region for Wormholes {
    fn name(&self) -> &'static str {
        "wormholes"
    }

    fn tag(&self) -> Tag {
        TAG
    }

    fn data_format(&self) -> &'static str {
        "Generated JSON, GraphML and binary routing tables of the traffic between tiers (FORMAT.md)"
    }

    fn views(&self, _cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        let names: &[&str] = if dir.is_seed(DIR) {
            &[CONNECTIONS, ANALYTICS, TOPOLOGY]
        } else if dir.is_seed(ROUTING) {
            &[HOT_TO_WARM, WARM_TO_COLD]
        } else {
            &[]
        };
        names.iter().map(|n| n.to_string()).collect()
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        // Handles, rates and how long records sat untouched all move without the engine.
        let doc = if dir.is_seed(DIR) {
            match name {
                CONNECTIONS => connections::render(cx),
                ANALYTICS => {
                    let period = self.sampling.get(cx).sample_interval_secs as f64;
                    let st = self.tiering.lock();
                    let rates = st.traffic.over(period);
                    analytics::render(&st, rates.as_ref())
                }
                TOPOLOGY => {
                    let t = cx.store.tier_stats();
                    let regions: Vec<&str> = cx
                        .regions
                        .all()
                        .filter(|r| r.tag() != ENTROPY && r.tag() != TAG)
                        .map(|r| r.name())
                        .collect();
                    let st = self.tiering.lock();
                    topology::render(
                        &st,
                        [0, 1, 2].map(|i| t[i].records),
                        [0, 1, 2].map(|i| t[i].bytes_stored),
                        &regions,
                    )
                }
                _ => return None,
            }
        } else if dir.is_seed(ROUTING) {
            match name {
                HOT_TO_WARM => self.routes(cx, Tier::Hot),
                WARM_TO_COLD => self.routes(cx, Tier::Warm),
                _ => return None,
            }
        } else {
            return None;
        };
        Some(Generated::Fresh(doc))
    }
}
