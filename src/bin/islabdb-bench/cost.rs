//! What keeping statistics costs (`--statistics-cost`): the same workloads, in the same
//! rounds, on a second daemon started with `--no-statistics`; per workload the ratio of
//! the mount's median to that daemon's, and their geometric mean over the small-file
//! workloads (where a per-request cost shows most).

use serde::Serialize;

use crate::report::Stats;

/// The share of throughput statistics may cost on the small-file workloads.
pub const BUDGET: f64 = 0.05;

#[derive(Debug, Serialize)]
pub struct CostRow {
    pub name: &'static str,
    pub small_files: bool,
    pub with_statistics: Option<Stats>,
    pub without: Option<Stats>,
    /// median(with) / median(without): 1.0 costs nothing.
    pub ratio: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct StatisticsCost {
    pub workloads: Vec<CostRow>,
    /// Geometric mean of the ratios of the small-file workloads.
    pub small_files_geomean: Option<f64>,
    /// 1 - that mean: the share of throughput the statistics cost.
    pub small_files_cost: Option<f64>,
    pub budget: f64,
}

impl StatisticsCost {
    pub fn new(workloads: Vec<CostRow>) -> StatisticsCost {
        let ratios: Vec<f64> = workloads
            .iter()
            .filter(|r| r.small_files)
            .filter_map(|r| r.ratio)
            .filter(|x| *x > 0.0)
            .collect();
        let geomean = (!ratios.is_empty())
            .then(|| (ratios.iter().map(|x| x.ln()).sum::<f64>() / ratios.len() as f64).exp());
        StatisticsCost {
            workloads,
            small_files_geomean: geomean,
            small_files_cost: geomean.map(|g| 1.0 - g),
            budget: BUDGET,
        }
    }

    pub fn print(&self) {
        println!();
        println!(
            "what keeping statistics costs: the mount against one started with --no-statistics"
        );
        println!(
            "{:<16} {:>12} {:>12} {:>7} {:>6}",
            "workload", "with", "without", "ratio", "small"
        );
        for r in &self.workloads {
            let med = |s: &Option<Stats>| {
                s.as_ref()
                    .map_or("-".into(), |s| crate::report::fmt_num(s.median))
            };
            println!(
                "{:<16} {:>12} {:>12} {:>7} {:>6}",
                r.name,
                med(&r.with_statistics),
                med(&r.without),
                r.ratio.map_or("-".into(), |x| format!("{x:.3}")),
                if r.small_files { "yes" } else { "" }
            );
        }
        if let (Some(g), Some(c)) = (self.small_files_geomean, self.small_files_cost) {
            println!(
                "small-file workloads: geometric mean {g:.3}, statistics cost {:.1}% of throughput (budget {:.0}%: {})",
                c * 100.0,
                BUDGET * 100.0,
                if c < BUDGET { "met" } else { "NOT met" }
            );
        }
    }
}
