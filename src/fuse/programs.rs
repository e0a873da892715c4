//! Which files of the mount are some process's running program.
//!
//! Linux refuses to open a running program to change it (ETXTBSY). The kernel checks this
//! itself before it asks us, except for `O_RDONLY|O_TRUNC`: with atomic O_TRUNC it sends
//! that open first, and once we answer it drops the file's pages and size; the program
//! then dies at its next page fault (SIGBUS), and only then does the kernel check, and
//! find no one running the file. So that open asks here first.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub struct Programs {
    mountpoint: PathBuf,
    /// The mount's device (major, minor), read at the first question: the mount is up then.
    device: OnceLock<Option<(u32, u32)>>,
}

impl Programs {
    pub fn new(mountpoint: &Path) -> Programs {
        // Absolute before the mount covers it: the daemon's later look must find it again.
        let mountpoint = std::fs::canonicalize(mountpoint).unwrap_or_else(|_| mountpoint.into());
        Programs {
            mountpoint,
            device: OnceLock::new(),
        }
    }

    /// Whether a process visible to the daemon runs inode `ino` of this mount. Processes
    /// of other users are not visible to an unprivileged daemon: for them this says no.
    pub fn running(&self, ino: u64) -> bool {
        let device = *self.device.get_or_init(|| {
            let device = identity(&self.mountpoint).map(|(dev, _)| dev);
            if device.is_none() {
                log::warn!(
                    "cannot stat the mountpoint {}: O_RDONLY|O_TRUNC of a running program \
                     is not refused",
                    self.mountpoint.display()
                );
            }
            device
        });
        let Some(device) = device else {
            return false;
        };
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return false;
        };
        procs.flatten().any(|p| {
            let name = p.file_name();
            name.as_bytes().iter().all(u8::is_ascii_digit)
                && identity(&p.path().join("exe")) == Some((device, ino))
        })
    }
}

/// A path's (device, inode), from what the kernel has cached (`AT_STATX_DONT_SYNC`): a
/// look at one of our files must never send a request to this daemon, whose thread may be
/// the one that would have to answer it.
fn identity(path: &Path) -> Option<((u32, u32), u64)> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stx = MaybeUninit::<libc::statx>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `stx` a buffer of the struct statx fills.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_STATX_DONT_SYNC,
            libc::STATX_INO,
            stx.as_mut_ptr(),
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: statx succeeded, so it filled the struct.
    let stx = unsafe { stx.assume_init() };
    Some(((stx.stx_dev_major, stx.stx_dev_minor), stx.stx_ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_program_this_test_runs_and_no_other() {
        let exe = std::fs::canonicalize("/proc/self/exe").expect("own program");
        let dir = exe.parent().expect("a directory");
        let (_, ino) = identity(&exe).expect("identity of the own program");
        let programs = Programs::new(dir);
        assert!(programs.running(ino), "the test's own program runs");
        let (_, dir_ino) = identity(dir).expect("identity of its directory");
        assert!(
            !programs.running(dir_ino),
            "a directory is nobody's program"
        );
    }
}
