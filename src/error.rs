//! The error types of every layer, and the one table that turns them into errnos.

use std::fmt;
use std::io;

use crate::engine::disk::DiskFailed;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug)]
pub enum Error {
    NotFound,
    Exists,
    NotDir,
    IsDir,
    NotEmpty,
    NameTooLong,
    /// A `.json` record (or a configuration file) that does not parse.
    InvalidRecord(String),
    /// An argument the operation cannot take (e.g. renaming a directory into itself).
    InvalidArgument(&'static str),
    /// Writing to a generated, read-only view.
    ReadOnlyView,
    /// A snapshot's tree: nothing in it changes.
    ReadOnlySnapshot,
    /// Removing or moving a directory of the seed's fixed hierarchy.
    Protected,
    /// The access configuration grants none of the caller's roles this operation: says
    /// what was missing.
    Denied(String),
    /// An operation this filesystem deliberately does not offer (hard links, device nodes).
    NotPermitted(&'static str),
    /// What must stay in one tier or region would leave it: a directory moving into
    /// another region (its files would arrive unchecked; `mv` then copies them file by
    /// file, each through the commit path), a hard link into another tier or region.
    CrossDevice(&'static str),
    /// What others still refer to cannot go (a graph node its edges name): says who.
    InUse(String),
    /// A running program opened to be changed.
    TextBusy,
    /// Attribute namespace or flag we do not implement.
    NotSupported(&'static str),
    NoXattr,
    /// The caller's buffer is too small (xattrs).
    Range,
    /// An ioctl: this filesystem has none.
    NoIoctl,
    BadHandle,
    /// A limit of our own was reached (total size of a file's xattrs), or a file would
    /// grow past what the data disk has free.
    NoSpace(&'static str),
    /// A file would grow past the largest size the engine stores (`engine::MAX_FILE_SIZE`).
    FileTooBig,
    /// The data directory is held by another daemon.
    Locked(String),
    /// The disk refused: carries the OS error (ENOSPC, EIO, ...).
    Io(io::Error),
    /// Bytes on disk that fail their checksum or framing.
    Corrupt(String),
    /// A flush to disk (or a write the device answered with EIO) failed earlier; no further
    /// changes are accepted until a remount (see engine::disk::fence).
    Poisoned,
}

impl Error {
    /// The errno a FUSE reply carries for this error. Every variant is listed: adding one
    /// forces a decision here.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotFound => libc::ENOENT,
            Error::Exists => libc::EEXIST,
            Error::NotDir => libc::ENOTDIR,
            Error::IsDir => libc::EISDIR,
            Error::NotEmpty => libc::ENOTEMPTY,
            Error::NameTooLong => libc::ENAMETOOLONG,
            // DESIGN.md: a record that does not parse fails its commit with EINVAL.
            Error::InvalidRecord(_) => libc::EINVAL,
            Error::InvalidArgument(_) => libc::EINVAL,
            // DESIGN.md: writes to generated files answer EACCES.
            Error::ReadOnlyView => libc::EACCES,
            Error::ReadOnlySnapshot => libc::EROFS,
            Error::Denied(_) => libc::EACCES,
            Error::Protected => libc::EPERM,
            Error::NotPermitted(_) => libc::EPERM,
            Error::InUse(_) => libc::EBUSY,
            Error::TextBusy => libc::ETXTBSY,
            Error::CrossDevice(_) => libc::EXDEV,
            Error::NotSupported(_) => libc::EOPNOTSUPP,
            Error::NoXattr => libc::ENODATA,
            Error::Range => libc::ERANGE,
            // Tools probe with TCGETS (isatty) and expect ENOTTY.
            Error::NoIoctl => libc::ENOTTY,
            Error::BadHandle => libc::EBADF,
            Error::NoSpace(_) => libc::ENOSPC,
            Error::FileTooBig => libc::EFBIG,
            Error::Locked(_) => libc::EBUSY,
            // What the caller can act on passes through; anything else the data directory
            // answers is the daemon's trouble, not the caller's (an EACCES or ENOENT from a
            // data file would mislead), and so is an error without an errno.
            Error::Io(e) => match e.raw_os_error() {
                Some(code @ (libc::ENOSPC | libc::EDQUOT | libc::EROFS | libc::EFBIG)) => code,
                _ => libc::EIO,
            },
            Error::Corrupt(_) => libc::EIO,
            Error::Poisoned => libc::EIO,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => write!(f, "no such file or directory"),
            Error::Exists => write!(f, "file exists"),
            Error::NotDir => write!(f, "not a directory"),
            Error::IsDir => write!(f, "is a directory"),
            Error::NotEmpty => write!(f, "directory not empty"),
            Error::NameTooLong => write!(f, "name too long"),
            Error::InvalidRecord(why) => write!(f, "invalid record: {why}"),
            Error::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            Error::ReadOnlyView => write!(f, "generated view is read-only"),
            Error::ReadOnlySnapshot => write!(f, "a snapshot is read-only"),
            Error::Denied(why) => write!(f, "access denied: {why}"),
            Error::Protected => write!(f, "part of the fixed universe hierarchy"),
            Error::NotPermitted(what) => write!(f, "not permitted: {what}"),
            Error::InUse(why) => write!(f, "in use: {why}"),
            Error::TextBusy => write!(f, "a running program cannot be changed"),
            Error::CrossDevice(what) => write!(f, "cross-device: {what}"),
            Error::NotSupported(what) => write!(f, "not supported: {what}"),
            Error::NoXattr => write!(f, "no such attribute"),
            Error::Range => write!(f, "buffer too small"),
            Error::NoIoctl => write!(f, "no ioctls"),
            Error::BadHandle => write!(f, "bad file handle"),
            Error::NoSpace(what) => write!(f, "no space left: {what}"),
            Error::FileTooBig => write!(f, "file too large"),
            Error::Locked(why) => write!(f, "{why}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Corrupt(why) => write!(f, "corrupt data: {why}"),
            Error::Poisoned => write!(
                f,
                "the data disk failed a flush earlier; changes are refused until a remount"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        // The fence's refusal comes up through io::Result like any disk error.
        if e.get_ref().is_some_and(|inner| inner.is::<DiskFailed>()) {
            return Error::Poisoned;
        }
        Error::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_errors_keep_their_errno() {
        let full = Error::Io(io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(full.errno(), libc::ENOSPC);
        let opaque = Error::Io(io::Error::other("x"));
        assert_eq!(opaque.errno(), libc::EIO);
        for passes in [libc::EDQUOT, libc::EROFS, libc::EFBIG] {
            assert_eq!(
                Error::Io(io::Error::from_raw_os_error(passes)).errno(),
                passes
            );
        }
        for hidden in [libc::EACCES, libc::ENOENT, libc::EPERM, libc::EBADF] {
            let e = Error::Io(io::Error::from_raw_os_error(hidden));
            assert_eq!(
                e.errno(),
                libc::EIO,
                "{hidden} of a data file is the daemon's"
            );
        }
        assert_eq!(Error::InvalidRecord("x".into()).errno(), libc::EINVAL);
        assert_eq!(Error::ReadOnlyView.errno(), libc::EACCES);
        // A disk that failed a flush refuses every change with EIO.
        let refused: Error = io::Error::other(DiskFailed).into();
        assert!(matches!(refused, Error::Poisoned), "{refused:?}");
        assert_eq!(refused.errno(), libc::EIO);
    }
}
