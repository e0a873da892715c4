//! How the universe's files spread over the tiers, and how evenly: the Shannon entropy
//! (bits) of the distribution of files, and of bytes, over hot, warm and cold. 0 bits:
//! everything in one tier; log2(3) ≈ 1.585 bits: an even spread.

use crate::engine::api::Storage;

/// Files and bytes per tier (hot, warm, cold), as the engine stores them now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Balance {
    pub records: [u64; 3],
    pub bytes: [u64; 3],
}

impl Balance {
    pub fn now(store: &dyn Storage) -> Balance {
        let t = store.tier_stats();
        Balance {
            records: [0, 1, 2].map(|i| t[i].records),
            bytes: [0, 1, 2].map(|i| t[i].bytes_stored),
        }
    }

    pub fn records_entropy(&self) -> f64 {
        shannon(&self.records)
    }

    pub fn bytes_entropy(&self) -> f64 {
        shannon(&self.bytes)
    }
}

/// The largest entropy three tiers can have.
pub fn max_entropy() -> f64 {
    3f64.log2()
}

/// Shannon entropy in bits of the distribution `counts` describe (0 for an empty one).
pub fn shannon(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let h: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.log2()
        })
        .sum();
    // -0.0 and rounding below zero read badly in a file.
    h.max(0.0)
}

/// `part` of `total` (0 when there is none).
pub fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_known_distributions() {
        assert_eq!(shannon(&[0, 0, 0]), 0.0);
        assert_eq!(shannon(&[5, 0, 0]), 0.0);
        assert!((shannon(&[1, 1, 0]) - 1.0).abs() < 1e-12);
        assert!((shannon(&[7, 7, 7]) - max_entropy()).abs() < 1e-12);
        // p = (1/2, 1/4, 1/4): 1.5 bits.
        assert!((shannon(&[2, 1, 1]) - 1.5).abs() < 1e-12);
        assert_eq!(share(1, 0), 0.0);
    }
}
