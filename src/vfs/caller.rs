//! Who a request comes from. The kernel adapter says it for the length of each request
//! (`acting`); the access checks and the audit trail ask (`acting_now`). Requests the
//! daemon makes itself (regions' own writes, restore, unit tests) have no caller.

use std::cell::Cell;

/// The caller of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// The calling process: where its supplementary groups are found.
    pub pid: u32,
}

#[cfg(test)]
impl Caller {
    /// Root, from no process in particular: the unit tests' caller.
    pub const ROOT: Caller = Caller {
        uid: 0,
        gid: 0,
        pid: 0,
    };
}

thread_local! {
    static ACTING: Cell<Option<Caller>> = const { Cell::new(None) };
}

/// `who` acts on this thread until the returned guard is dropped.
pub fn acting(who: Caller) -> Acting {
    Acting(ACTING.with(|a| a.replace(Some(who))))
}

/// The caller of the request this thread serves, if any.
pub fn acting_now() -> Option<Caller> {
    ACTING.with(Cell::get)
}

/// Restores who acted before (requests do not nest, but a guard must not assume it).
pub struct Acting(Option<Caller>);

impl Drop for Acting {
    fn drop(&mut self) {
        ACTING.with(|a| a.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_acts_for_the_length_of_its_guard_on_its_thread() {
        let alice = Caller {
            uid: 1000,
            gid: 1000,
            pid: 1,
        };
        assert_eq!(acting_now(), None);
        {
            let _a = acting(alice);
            assert_eq!(acting_now(), Some(alice));
            assert_eq!(std::thread::spawn(acting_now).join().ok(), Some(None));
        }
        assert_eq!(acting_now(), None);
    }
}
