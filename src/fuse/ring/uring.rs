//! A minimal io_uring of our own: just what FUSE's ring commands need (128-byte entries
//! carrying `IORING_OP_URING_CMD`, whose iovec pointer and count go in `addr` and `len`).
//! The `io-uring` crate offers no way to set `len` on a command, and liburing is C; the
//! kernel interface itself is three mapped areas and two system calls.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

const IORING_SETUP_CQSIZE: u32 = 1 << 3;
const IORING_SETUP_SQE128: u32 = 1 << 10;
/// Submission entries are taken in ring order, without the index array (Linux ≥ 6.6;
/// FUSE over io_uring needs 6.14).
const IORING_SETUP_NO_SQARRAY: u32 = 1 << 16;
const IORING_FEAT_SINGLE_MMAP: u32 = 1 << 0;
const IORING_OFF_SQ_RING: i64 = 0;
const IORING_OFF_SQES: i64 = 0x1000_0000;
const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
pub const IORING_OP_URING_CMD: u8 = 46;

/// A submission entry with its 80-byte command area (`IORING_SETUP_SQE128`).
pub const SQE_SIZE: usize = 128;
const CQE_SIZE: usize = 16;

#[repr(C)]
#[derive(Default)]
struct SqOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    flags: u32,
    dropped: u32,
    array: u32,
    resv1: u32,
    user_addr: u64,
}

#[repr(C)]
#[derive(Default)]
struct CqOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    overflow: u32,
    cqes: u32,
    flags: u32,
    resv1: u32,
    user_addr: u64,
}

#[repr(C)]
#[derive(Default)]
struct Params {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    sq_thread_cpu: u32,
    sq_thread_idle: u32,
    features: u32,
    wq_fd: u32,
    resv: [u32; 3],
    sq_off: SqOffsets,
    cq_off: CqOffsets,
}

/// A mapped area, unmapped when dropped.
struct Mapped {
    at: NonNull<u8>,
    len: usize,
}

impl Mapped {
    fn new(fd: RawFd, len: usize, offset: i64) -> io::Result<Mapped> {
        // SAFETY: a fresh shared mapping of the ring's fd; the kernel checks fd and offset.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                offset,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let at = NonNull::new(at.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mapped { at, len })
    }

    /// The `u32` the kernel shares at `offset` (a ring's head or tail).
    fn atomic(&self, offset: u32) -> &AtomicU32 {
        // SAFETY: the kernel's offsets lie inside the mapping, 4-aligned, and these words
        // are only ever accessed atomically, by the kernel and by us.
        unsafe { &*self.at.as_ptr().add(offset as usize).cast::<AtomicU32>() }
    }

    fn word(&self, offset: u32) -> u32 {
        self.atomic(offset).load(Ordering::Relaxed)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; nothing refers to it any more.
        unsafe { libc::munmap(self.at.as_ptr().cast(), self.len) };
    }
}

/// One io_uring: a submission ring of 128-byte entries and a completion ring.
pub struct Uring {
    fd: OwnedFd,
    rings: Mapped,
    sqes: Mapped,
    params: Params,
}

// SAFETY: the mappings are shared memory whose indices are read and written atomically;
// submission is serialised by the caller (`Queue`'s lock) and completions are reaped by one
// thread, as `push` and `reap` say.
unsafe impl Send for Uring {}
unsafe impl Sync for Uring {}

/// A completion: which entry (`user_data`) and its result (0, or a negated errno).
pub struct Completion {
    pub user_data: u64,
    pub res: i32,
}

impl Uring {
    /// A ring with room for `entries` submissions and twice as many completions.
    pub fn new(entries: u32) -> io::Result<Uring> {
        let mut params = Params {
            flags: IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE | IORING_SETUP_NO_SQARRAY,
            cq_entries: entries * 2,
            ..Params::default()
        };
        // SAFETY: io_uring_setup fills in `params`, which outlives the call.
        let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, &mut params) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // Both rings in one mapping (Linux ≥ 5.4): heads, tails, then the completions.
        if params.features & IORING_FEAT_SINGLE_MMAP == 0 {
            return Err(io::Error::other("io_uring cannot map its rings at once"));
        }
        let raw = fd.as_raw_fd();
        let rings_len = params.cq_off.cqes as usize + params.cq_entries as usize * CQE_SIZE;
        let rings = Mapped::new(raw, rings_len, IORING_OFF_SQ_RING)?;
        let sqes = Mapped::new(raw, params.sq_entries as usize * SQE_SIZE, IORING_OFF_SQES)?;
        Ok(Uring {
            fd,
            rings,
            sqes,
            params,
        })
    }

    /// Queues one submission entry (not yet submitted). The caller serialises pushes and
    /// `submit`s; the ring has room, since each of our entries is in flight at most once.
    pub fn push(&self, sqe: &[u8; SQE_SIZE]) -> io::Result<()> {
        let off = &self.params.sq_off;
        let head = self.rings.atomic(off.head).load(Ordering::Acquire);
        let tail = self.rings.atomic(off.tail).load(Ordering::Relaxed);
        if tail.wrapping_sub(head) >= self.rings.word(off.ring_entries) {
            return Err(io::Error::other("io_uring submission ring is full"));
        }
        let slot = (tail & self.rings.word(off.ring_mask)) as usize;
        // SAFETY: `slot` is inside the mapped entries, and the kernel does not read it
        // until the tail below passes it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                sqe.as_ptr(),
                self.sqes.at.as_ptr().add(slot * SQE_SIZE),
                SQE_SIZE,
            );
        }
        self.rings
            .atomic(off.tail)
            .store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Entries pushed and not yet taken by the kernel.
    pub fn pending(&self) -> u32 {
        let off = &self.params.sq_off;
        let head = self.rings.atomic(off.head).load(Ordering::Acquire);
        let tail = self.rings.atomic(off.tail).load(Ordering::Acquire);
        tail.wrapping_sub(head)
    }

    /// Whether completions wait to be reaped.
    pub fn ready(&self) -> bool {
        let off = &self.params.cq_off;
        let head = self.rings.atomic(off.head).load(Ordering::Relaxed);
        head != self.rings.atomic(off.tail).load(Ordering::Acquire)
    }

    /// Submits `to_submit` entries pushed and, with `wait`, sleeps until a completion is
    /// there. The kernel does not wait when it submitted fewer than asked (another
    /// thread took some): the caller then just looks for completions again.
    pub fn enter(&self, to_submit: u32, wait: bool) -> io::Result<()> {
        let (min, flags) = if wait {
            (1, IORING_ENTER_GETEVENTS)
        } else {
            (0, 0)
        };
        // SAFETY: no argument points at memory (the signal mask pointer is null).
        let n = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.fd.as_raw_fd(),
                to_submit,
                min,
                flags,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Takes every completion there is. Only one thread reaps.
    pub fn reap(&self, into: &mut Vec<Completion>) {
        let cq = &self.rings;
        let off = &self.params.cq_off;
        let mut head = cq.atomic(off.head).load(Ordering::Relaxed);
        let tail = cq.atomic(off.tail).load(Ordering::Acquire);
        let mask = cq.word(off.ring_mask);
        while head != tail {
            let at = off.cqes as usize + (head & mask) as usize * CQE_SIZE;
            // SAFETY: the entry lies inside the mapped ring, and the kernel filled it
            // before it moved the tail we read with Acquire.
            let (user_data, res) = unsafe {
                let p = cq.at.as_ptr().add(at);
                (
                    p.cast::<u64>().read_unaligned(),
                    p.add(8).cast::<i32>().read_unaligned(),
                )
            };
            into.push(Completion { user_data, res });
            head = head.wrapping_add(1);
        }
        cq.atomic(off.head).store(head, Ordering::Release);
    }
}
