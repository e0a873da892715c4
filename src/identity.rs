//! Who a request comes from, in the words of the machine's user database: names for the
//! audit trail, and users and groups named in the access configuration.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::Mutex;

/// Names already looked up: the audit trail names the user of every change, and the
/// user database is a file read per lookup.
static NAMES: Mutex<Option<HashMap<u32, String>>> = Mutex::new(None);

/// The name of user `uid`, or its number when the machine knows no such user.
pub fn user_name(uid: u32) -> String {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names
        .get_or_insert_with(HashMap::new)
        .entry(uid)
        .or_insert_with(|| looked_up_name(uid).unwrap_or_else(|| uid.to_string()))
        .clone()
}

fn looked_up_name(uid: u32) -> Option<String> {
    // SAFETY (of the call): `getpwuid_r` is given what `entry` promises.
    from_database(
        |pw, buf, len, found| unsafe { libc::getpwuid_r(uid, pw, buf, len, found) },
        |pw: &libc::passwd| {
            // SAFETY: a found entry's name points into the buffer, NUL-ended.
            (!pw.pw_name.is_null()).then(|| {
                unsafe { CStr::from_ptr(pw.pw_name) }
                    .to_string_lossy()
                    .into_owned()
            })
        },
    )
}

/// The uid of a user given by name or number.
pub fn uid_of(user: &str) -> Option<u32> {
    if let Ok(n) = user.parse() {
        return Some(n);
    }
    let name = CString::new(user).ok()?;
    // SAFETY (of the call): as in `looked_up_name`.
    from_database(
        |pw, buf, len, found| unsafe { libc::getpwnam_r(name.as_ptr(), pw, buf, len, found) },
        |pw: &libc::passwd| Some(pw.pw_uid),
    )
}

/// The gid of a group given by name or number.
pub fn gid_of(group: &str) -> Option<u32> {
    if let Ok(n) = group.parse() {
        return Some(n);
    }
    let name = CString::new(group).ok()?;
    // SAFETY (of the call): as in `looked_up_name`.
    from_database(
        |gr, buf, len, found| unsafe { libc::getgrnam_r(name.as_ptr(), gr, buf, len, found) },
        |gr: &libc::group| Some(gr.gr_gid),
    )
}

/// An entry of the user database.
trait Entry {}
impl Entry for libc::passwd {}
impl Entry for libc::group {}

/// One of libc's reentrant lookups in the user database (`get*_r`): `call` fills an
/// entry whose strings point into a buffer, and `read` takes what is wanted from it
/// while the buffer lives.
fn from_database<T: Entry, R>(
    call: impl FnOnce(*mut T, *mut libc::c_char, usize, *mut *mut T) -> libc::c_int,
    read: impl FnOnce(&T) -> Option<R>,
) -> Option<R> {
    let mut buf = vec![0u8; 16384];
    // SAFETY: an `Entry` is a C struct of integers and pointers: all zeros is valid.
    let mut entry: T = unsafe { std::mem::zeroed() };
    let mut found: *mut T = std::ptr::null_mut();
    let rc = call(&mut entry, buf.as_mut_ptr().cast(), buf.len(), &mut found);
    if rc != 0 || found.is_null() {
        return None;
    }
    read(&entry)
}

/// The groups process `pid` acts with: `gid` and its supplementary groups, as the kernel
/// shows them (a request carries only the primary group).
pub fn groups(pid: u32, gid: u32) -> Vec<u32> {
    let mut out = vec![gid];
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    if let Some(line) = status.lines().find_map(|l| l.strip_prefix("Groups:")) {
        out.extend(
            line.split_whitespace()
                .filter_map(|g| g.parse::<u32>().ok()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_numbers_resolve() {
        assert_eq!(user_name(0), "root");
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(uid_of("1234"), Some(1234));
        assert_eq!(gid_of("root"), Some(0));
        assert_eq!(uid_of("no-such-user-anywhere"), None);
        assert_eq!(user_name(4_000_000_000), "4000000000");
        let me = std::process::id();
        assert!(groups(me, 77).contains(&77));
    }
}
