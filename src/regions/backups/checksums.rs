//! `verification.md5`: the MD5 of every regular file of a snapshot, as `md5sum` prints
//! them (`<hex>  universe/<path>`), so that `md5sum -c verification.md5` run in the
//! snapshot's directory, or where its `universe.tar.gz` was unpacked, checks every file.

use md5::{Digest, Md5};

use super::archive::archived_path;
use crate::engine::api::Storage;
use crate::engine::snapshots::Frozen;
use crate::engine::tree::Kind;
use crate::error::Result;

/// One line as `md5sum` writes it: a name holding a newline or a backslash is escaped,
/// and its line starts with a backslash.
pub fn line(hex: &str, name: &[u8]) -> Vec<u8> {
    let escape = name.iter().any(|&b| b == b'\n' || b == b'\\');
    let mut out = Vec::with_capacity(name.len() + hex.len() + 4);
    if escape {
        out.push(b'\\');
    }
    out.extend_from_slice(hex.as_bytes());
    out.extend_from_slice(b"  ");
    for &b in name {
        match b {
            b'\n' if escape => out.extend_from_slice(b"\\n"),
            b'\\' if escape => out.extend_from_slice(b"\\\\"),
            _ => out.push(b),
        }
    }
    out.push(b'\n');
    out
}

/// The (hex, name) pairs of a checksum file as `md5sum` writes it; `None` for a line
/// that is not one.
pub fn parse(text: &[u8]) -> Vec<Option<(String, Vec<u8>)>> {
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (escaped, l) = match l.strip_prefix(b"\\") {
                Some(rest) => (true, rest),
                None => (false, l),
            };
            let hex = std::str::from_utf8(l.get(..32)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let name = l.get(32..)?.strip_prefix(b"  ")?;
            let mut out = Vec::with_capacity(name.len());
            let mut bytes = name.iter();
            while let Some(&b) = bytes.next() {
                match (escaped, b) {
                    (true, b'\\') => match bytes.next() {
                        Some(b'n') => out.push(b'\n'),
                        Some(b'\\') => out.push(b'\\'),
                        _ => return None,
                    },
                    _ => out.push(b),
                }
            }
            Some((hex.to_ascii_lowercase(), out))
        })
        .collect()
}

pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checksum file of the regular files among `inos` of snapshot `frozen`.
pub fn verification(store: &dyn Storage, frozen: &Frozen, inos: &[u64]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for &ino in inos {
        let attr = frozen.getattr(ino)?;
        if attr.kind != Kind::File {
            continue;
        }
        let path = frozen.path(ino);
        let mut md5 = Md5::new();
        let mut off = 0;
        while off < attr.size {
            let data = store.read_frozen(frozen, attr.ino, off, 1 << 20)?;
            if data.is_empty() {
                break;
            }
            md5.update(&data[..]);
            off += data.len() as u64;
        }
        out.extend(line(&hex(&md5.finalize()), &archived_path(&path)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped_as_md5sum_escapes_them() {
        let h = hex(&Md5::digest(b""));
        assert_eq!(h, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            line(&h, b"universe/a b"),
            format!("{h}  universe/a b\n").into_bytes()
        );
        assert_eq!(
            line(&h, b"universe/a\nb\\c"),
            format!("\\{h}  universe/a\\nb\\\\c\n").into_bytes()
        );
        // Read back as written.
        let mut file = line(&h, b"universe/a b");
        file.extend(line(&h, b"universe/a\nb\\c"));
        file.extend(b"not a line\n");
        assert_eq!(
            parse(&file),
            [
                Some((h.clone(), b"universe/a b".to_vec())),
                Some((h.clone(), b"universe/a\nb\\c".to_vec())),
                None
            ]
        );
    }
}
