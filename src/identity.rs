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
    let mut buf = vec![0u8; 4096];
    // SAFETY: an all-zero `passwd` is a valid value to be filled in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local of the size passed.
    let rc =
        unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so `pw_name` points into `buf`, terminated.
    let name = unsafe { CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The uid of a user given by name or number.
pub fn uid_of(user: &str) -> Option<u32> {
    if let Ok(n) = user.parse() {
        return Some(n);
    }
    let name = CString::new(user).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: as in `looked_up_name`.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local of the size passed.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(pw.pw_uid)
}

/// The gid of a group given by name or number.
pub fn gid_of(group: &str) -> Option<u32> {
    if let Ok(n) = group.parse() {
        return Some(n);
    }
    let name = CString::new(group).ok()?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: an all-zero `group` is a valid value to be filled in.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local of the size passed.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(gr.gr_gid)
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
