//! Length + CRC framing shared by every file the engine writes (log, packs, blobs,
//! checkpoints), and the versioned file header that starts each of them.
//!
//! Frame format: `{ u32 len (LE) | u32 crc32(payload) (LE) | payload[len] }`.
//! File header:  `{ [u8; 8] magic | u16 version (LE) | u16 reserved }` (12 bytes).

use crate::error::{Error, Result};

pub const FRAME_HEADER: usize = 8;
pub const FILE_HEADER: usize = 12;

/// Appends one frame holding `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Frame header for a payload that is written separately (large payloads avoid a copy).
pub fn header(payload: &[u8]) -> [u8; FRAME_HEADER] {
    let mut h = [0u8; FRAME_HEADER];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole frame whose checksum matches; `next` is the offset after it.
    Frame { payload: &'a [u8], next: usize },
    /// The buffer ends inside the frame: a write that did not finish.
    Torn,
    /// The frame is complete but its checksum (or length) is wrong.
    Bad,
}

/// Decodes the frame starting at `at`. `max_len` bounds the length field so that a
/// corrupted length cannot be mistaken for a huge torn frame.
pub fn decode(buf: &[u8], at: usize, max_len: usize) -> Decoded<'_> {
    let Some(head) = buf.get(at..at + FRAME_HEADER) else {
        return Decoded::Torn;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len > max_len {
        return Decoded::Bad;
    }
    let start = at + FRAME_HEADER;
    let Some(payload) = buf.get(start..start + len) else {
        return Decoded::Torn;
    };
    if crc32fast::hash(payload) != crc {
        return Decoded::Bad;
    }
    Decoded::Frame {
        payload,
        next: start + len,
    }
}

pub fn file_header(magic: &[u8; 8], version: u16) -> [u8; FILE_HEADER] {
    let mut h = [0u8; FILE_HEADER];
    h[..8].copy_from_slice(magic);
    h[8..10].copy_from_slice(&version.to_le_bytes());
    h
}

/// Checks a file header's magic and that its version is one this build reads (1..=`max`);
/// returns the version. `what` names the file in errors.
pub fn check_file_header(buf: &[u8], magic: &[u8; 8], max: u16, what: &str) -> Result<u16> {
    let Some(h) = buf.get(..FILE_HEADER) else {
        return Err(Error::Corrupt(format!(
            "{what}: file shorter than its header"
        )));
    };
    if &h[..8] != magic {
        return Err(Error::Corrupt(format!("{what}: bad magic bytes")));
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version == 0 || version > max {
        return Err(Error::Corrupt(format!(
            "{what}: format version {version}, this build reads up to {max}"
        )));
    }
    Ok(version)
}

/// Appends the trailing CRC32 of everything in `out` (the small binary files
/// regions write end with one).
pub fn seal(out: &mut Vec<u8>) {
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The bytes between the header and the trailing CRC32 of a file [`seal`]ed behind a
/// [`file_header`], once the header (magic, version up to `version`) and the CRC
/// check out. `what` names the file in errors.
pub fn unseal<'a>(bytes: &'a [u8], magic: &[u8; 8], version: u16, what: &str) -> Result<&'a [u8]> {
    check_file_header(bytes, magic, version, what)?;
    let (sealed, crc) = bytes
        .split_last_chunk::<4>()
        .filter(|(sealed, _)| sealed.len() >= FILE_HEADER)
        .ok_or_else(|| Error::Corrupt(format!("{what}: too short for its checksum")))?;
    if crc32fast::hash(sealed) != u32::from_le_bytes(*crc) {
        return Err(Error::Corrupt(format!("{what}: checksum mismatch")));
    }
    Ok(&sealed[FILE_HEADER..])
}

/// A [`seal`]ed file of `count` fixed-width records (`write` appends them): the file
/// header, a u32 count, the records, the trailing CRC32.
pub fn records_file(
    magic: &[u8; 8],
    version: u16,
    count: usize,
    write: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut out = file_header(magic, version).to_vec();
    out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
    write(&mut out);
    seal(&mut out);
    out
}

/// The `width`-byte records of a file [`records_file`] wrote, once its header, its CRC
/// and its count check out. `what` names the file in errors.
pub fn records<'a>(
    bytes: &'a [u8],
    (magic, version): (&[u8; 8], u16),
    width: usize,
    what: &str,
) -> Result<std::slice::ChunksExact<'a, u8>> {
    let body = unseal(bytes, magic, version, what)?;
    let bad = || Error::Corrupt(format!("{what}: records do not match their count"));
    let (count, rest) = body.split_first_chunk::<4>().ok_or_else(bad)?;
    if rest.len() != u32::from_le_bytes(*count) as usize * width {
        return Err(bad());
    }
    Ok(rest.chunks_exact(width))
}

/// Reads little-endian fields off the front of a slice whose length was checked first
/// (past its end a field reads as zeros).
pub struct Fields<'a>(pub &'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        match self.0.split_first_chunk::<N>() {
            Some((head, rest)) => {
                self.0 = rest;
                *head
            }
            None => [0; N],
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    pub fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
    pub fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.take())
    }
    pub fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take())
    }
    pub fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
}

/// For the tests of a [`seal`]ed file's decoder: every flipped byte and every cut of
/// `bytes` is refused (`decodes` says whether a buffer decoded).
#[cfg(test)]
pub fn assert_damage_is_caught(bytes: &[u8], decodes: impl Fn(&[u8]) -> bool) {
    assert!(decodes(bytes), "the intact file decodes");
    for i in 0..bytes.len() {
        let mut d = bytes.to_vec();
        d[i] ^= 0x01;
        assert!(!decodes(&d), "flip at {i}");
    }
    for cut in 0..bytes.len() {
        assert!(!decodes(&bytes[..cut]), "cut at {cut}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_cut_is_torn() {
        let mut buf = Vec::new();
        encode(b"hello", &mut buf);
        assert_eq!(
            decode(&buf, 0, 1 << 20),
            Decoded::Frame {
                payload: b"hello",
                next: buf.len()
            }
        );
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut], 0, 1 << 20), Decoded::Torn, "cut {cut}");
        }
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let mut buf = Vec::new();
        encode(b"some payload", &mut buf);
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    !matches!(decode(&bad, 0, 1 << 20), Decoded::Frame { .. }),
                    "flip {byte}:{bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn header_checks_magic() {
        let h = file_header(b"ISLTEST1", 3);
        assert_eq!(check_file_header(&h, b"ISLTEST1", 3, "t").ok(), Some(3));
        assert!(
            check_file_header(&h, b"ISLTEST1", 2, "t").is_err(),
            "newer version"
        );
        assert!(check_file_header(&h, b"ISLOTHER", 3, "t").is_err());
        assert!(check_file_header(&h[..5], b"ISLTEST1", 3, "t").is_err());
    }
}
