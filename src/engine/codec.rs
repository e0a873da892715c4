//! Tiers and their codecs: hot stores bytes as they are, warm with zlib, cold with lz4.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Ordered hot, warm, cold (from the hottest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    Hot,
    Warm,
    Cold,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Hot, Tier::Warm, Tier::Cold];

    /// The directory name the seed gives this tier, in the mount and in the data directory.
    pub fn dir_name(self) -> &'static str {
        match self {
            Tier::Hot => "hot_data",
            Tier::Warm => "warm_data",
            Tier::Cold => "cold_data",
        }
    }

    /// The tier's name (`hot`, `warm`, `cold`).
    pub fn name(self) -> &'static str {
        let d = self.dir_name();
        &d[..d.len() - "_data".len()]
    }

    /// The tier `name` names: by its name or its directory's.
    pub fn from_name(name: &[u8]) -> Option<Tier> {
        Tier::ALL
            .into_iter()
            .find(|t| t.name().as_bytes() == name || t.dir_name().as_bytes() == name)
    }

    pub fn from_dir_name(name: &[u8]) -> Option<Tier> {
        Tier::ALL
            .into_iter()
            .find(|t| t.dir_name().as_bytes() == name)
    }

    pub fn codec(self) -> Codec {
        match self {
            Tier::Hot => Codec::None,
            Tier::Warm => Codec::Zlib,
            Tier::Cold => Codec::Lz4,
        }
    }
}

// One coder and one decoder per thread, reset for each piece: their state is tens of KiB
// (hundreds for the coder), which cost more to set up than a small record takes to code.
thread_local! {
    // Level 2: the fastest that codes with the data's own Huffman tables (this backend's
    // level 1 uses the fixed ones, which save little on records of a few hundred bytes).
    static DEFLATE: RefCell<flate2::Compress> =
        RefCell::new(flate2::Compress::new(flate2::Compression::new(2), true));
    static INFLATE: RefCell<flate2::Decompress> = RefCell::new(flate2::Decompress::new(true));
}

/// No piece of content is coded larger than this (pack entries hold small contents,
/// blob chunks a MiB): a length read off the disk above it is damage, never an allocation.
pub const MAX_DECODED: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Zlib = 1,
    Lz4 = 2,
}

impl Codec {
    pub fn from_u8(b: u8) -> Result<Codec> {
        match b {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Zlib),
            2 => Ok(Codec::Lz4),
            _ => Err(Error::Corrupt(format!("unknown codec {b}"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Zlib => "zlib",
            Codec::Lz4 => "lz4",
        }
    }

    pub fn encode(self, data: &[u8]) -> Vec<u8> {
        match self {
            Codec::None => data.to_vec(),
            Codec::Zlib => DEFLATE.with_borrow_mut(|enc| {
                enc.reset();
                let mut out = Vec::with_capacity(data.len() / 2 + 64);
                // Into a Vec, growing it while the stream has more to give: coding to memory
                // has no way to fail but running out of room.
                loop {
                    let done = enc.total_in() as usize;
                    if out.len() == out.capacity() {
                        out.reserve(out.capacity().max(64));
                    }
                    match enc.compress_vec(&data[done..], &mut out, flate2::FlushCompress::Finish) {
                        Ok(flate2::Status::StreamEnd) => break out,
                        Ok(_) => continue,
                        // Unreachable for a coder reset before each piece; were it reached,
                        // the empty piece fails its decoding, loudly, on every read.
                        Err(_) => break Vec::new(),
                    }
                }
            }),
            Codec::Lz4 => lz4_flex::compress_prepend_size(data),
        }
    }

    /// Decodes `data`; `expected` is the decoded length recorded beside it.
    pub fn decode(self, data: &[u8], expected: usize) -> Result<Vec<u8>> {
        if expected > MAX_DECODED {
            return Err(Error::Corrupt(format!(
                "a piece of {expected} bytes recorded (at most {MAX_DECODED} are ever coded)"
            )));
        }
        let out = match self {
            Codec::None => data.to_vec(),
            Codec::Zlib => {
                // Straight into the output's spare capacity: no zero-filling, no copy out of
                // a reader's buffer (a 1 MiB chunk is decoded on every cache miss).
                let mut out = Vec::with_capacity(expected);
                let status = INFLATE
                    .with_borrow_mut(|dec| {
                        dec.reset(true);
                        dec.decompress_vec(data, &mut out, flate2::FlushDecompress::Finish)
                    })
                    .map_err(|e| Error::Corrupt(format!("zlib: {e}")))?;
                if status != flate2::Status::StreamEnd {
                    return Err(Error::Corrupt(format!(
                        "zlib: stream does not end within the {expected} bytes recorded"
                    )));
                }
                out
            }
            Codec::Lz4 => {
                // The block's own size prefix sizes lz4's allocation: it must be the one
                // recorded before anything is allocated for it.
                let (size, _) = lz4_flex::block::uncompressed_size(data)
                    .map_err(|e| Error::Corrupt(format!("lz4: {e}")))?;
                if size != expected {
                    return Err(Error::Corrupt(format!(
                        "lz4: block of {size} bytes, {expected} recorded"
                    )));
                }
                lz4_flex::decompress_size_prepended(data)
                    .map_err(|e| Error::Corrupt(format!("lz4: {e}")))?
            }
        };
        if out.len() != expected {
            return Err(Error::Corrupt(format!(
                "decoded {} bytes, expected {expected}",
                out.len()
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tier_round_trips() {
        let text = br#"{"name":"alice","tags":["a","b","a","b","a","b"]}"#.repeat(50);
        for tier in Tier::ALL {
            let c = tier.codec();
            for data in [&b""[..], &b"x"[..], &text[..]] {
                let enc = c.encode(data);
                assert_eq!(c.decode(&enc, data.len()).ok().as_deref(), Some(data));
            }
            if c != Codec::None {
                assert!(c.encode(&text).len() < text.len() / 4, "{c:?} compresses");
            }
        }
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        for c in [Codec::Zlib, Codec::Lz4] {
            let enc = c.encode(b"hello hello hello hello");
            let mut bad = enc.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0xff;
            let _ = c.decode(&bad, 23);
            assert!(c.decode(&enc[..enc.len() / 2], 23).is_err());
            assert!(c.decode(&enc, 5).is_err());
        }
    }

    proptest::proptest! {
        /// Any bytes with any recorded size: an error or the bytes, never a panic or an
        /// allocation of what a damaged size prefix claims.
        #[test]
        fn any_input_decodes_or_fails_cleanly(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            expected in 0usize..(1 << 30),
        ) {
            for tier in Tier::ALL {
                let _ = tier.codec().decode(&data, expected);
            }
        }
    }
}
