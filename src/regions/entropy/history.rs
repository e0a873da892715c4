//! `entropy/historical_entropy.csv`: one row per sampling period of
//! `configuration/observatory.json` (the observatory's, so both histories line up), kept
//! across restarts and bounded by its `history_rows`.

use crate::regions::appended::Columns;
use crate::regions::temporal::time::{self, Micros};

use super::balance::Balance;

/// One period: the balance at its end, its entropy, each tier's temperature over it (reads
/// and commits of records per second), and the moves between tiers during it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub at: Micros,
    pub balance: Balance,
    pub records_entropy: f64,
    pub bytes_entropy: f64,
    pub temperature: [f64; 3],
    pub moves: u64,
}

pub const HEADER: &str = "timestamp,hot_records,warm_records,cold_records,hot_bytes,warm_bytes,cold_bytes,records_entropy_bits,bytes_entropy_bits,hot_ops_per_sec,warm_ops_per_sec,cold_ops_per_sec,moves\n";
const COLUMNS: usize = 13;

impl Row {
    pub fn csv(&self) -> String {
        let (r, b, t) = (
            &self.balance.records,
            &self.balance.bytes,
            &self.temperature,
        );
        format!(
            "{},{},{},{},{},{},{},{:.4},{:.4},{:.2},{:.2},{:.2},{}\n",
            time::format_rfc3339(self.at),
            r[0],
            r[1],
            r[2],
            b[0],
            b[1],
            b[2],
            self.records_entropy,
            self.bytes_entropy,
            t[0],
            t[1],
            t[2],
            self.moves,
        )
    }

    /// A row as `csv` wrote it (None for the header or a line of another shape).
    pub fn parse(line: &str) -> Option<Row> {
        let c = Columns::of(line, COLUMNS)?;
        let ints = |from: usize| Some([c.int(from)?, c.int(from + 1)?, c.int(from + 2)?]);
        Some(Row {
            at: c.time(0)?,
            balance: Balance {
                records: ints(1)?,
                bytes: ints(4)?,
            },
            records_entropy: c.num(7)?,
            bytes_entropy: c.num(8)?,
            temperature: [c.num(9)?, c.num(10)?, c.num(11)?],
            moves: c.int(12)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_back_as_written() {
        let r = Row {
            at: 1_780_000_000_000_000,
            balance: Balance {
                records: [1, 2, 3],
                bytes: [4, 5, 6],
            },
            records_entropy: 1.4591,
            bytes_entropy: 1.4833,
            temperature: [2.5, 0.0, 0.25],
            moves: 7,
        };
        assert_eq!(Row::parse(&r.csv()), Some(r.clone()));
        assert_eq!(HEADER.split(',').count(), COLUMNS);
        assert!(Row::parse(HEADER).is_none());
    }
}
