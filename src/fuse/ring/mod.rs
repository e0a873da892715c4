//! FUSE over io_uring (Linux ≥ 6.14): the kernel queues each request on the ring of the
//! CPU its caller runs on, and one thread pinned to that CPU serves it. Over `/dev/fuse`
//! every request goes through one queue to whichever worker waited longest, so two
//! clients on two CPUs were served about as fast as one (README, "two parallel clients").
//!
//! Each queue registers `DEPTH` entries, each a header buffer and a payload buffer. The
//! kernel fills an entry with a request and completes its command; the queue's thread
//! decodes it and serves it through [`Fuse::handle`]; the reply is written into the same
//! buffers and handed back with COMMIT_AND_FETCH, which also waits for the next request.
//! A reply the log's flusher gives later (a change acknowledged once durable) is committed
//! from that thread. Mount, INIT, notifications, interrupts and forgets stay on
//! `/dev/fuse` (fuser, `kernel`).

mod abi;
mod uring;

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use self::abi::Decoded;
use self::uring::{SQE_SIZE, Uring};
use super::{Answered, Fuse};
use crate::vfs::Caller;

/// The largest request or reply body: the kernel's largest read or write (max_pages of 4
/// KiB: 256 unless raised), which `kernel` also tells it as max_write and max_readahead.
pub const PAYLOAD: usize = 1 << 20;

/// Entries per queue: requests one CPU's callers can have in flight before the next ones
/// wait in the kernel. A payload buffer's pages are touched only as large requests use
/// them.
const DEPTH: usize = 8;

const CMD_REGISTER: u32 = 1;
const CMD_COMMIT_AND_FETCH: u32 = 2;

/// How long the unmount waits for a queue thread still answering a request.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// A heap buffer the kernel reads and writes through the pointer it was given.
struct Buf {
    at: NonNull<u8>,
    len: usize,
}

impl Buf {
    fn new(len: usize) -> Buf {
        let b: Box<[u8]> = vec![0u8; len].into_boxed_slice();
        let at = NonNull::from(Box::leak(b)).cast::<u8>();
        Buf { at, len }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        // SAFETY: `at` and `len` are the slice `new` leaked, and the kernel no longer has
        // it: the queue, and so its ring, is dropped only after its thread ended.
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.at.as_ptr(),
                self.len,
            ))
        });
    }
}

/// One registered entry: its buffers, and the iovecs naming them to the kernel.
struct Entry {
    header: Buf,
    payload: Buf,
    iov: [libc::iovec; 2],
}

struct Queue {
    qid: u16,
    /// The FUSE device the commands are for.
    dev: OwnedFd,
    ring: Uring,
    /// Serialises pushing and submitting: replies come from this queue's thread and from
    /// the log's flusher.
    submitting: Mutex<()>,
    entries: Vec<Entry>,
    fuse: Arc<Fuse>,
}

// SAFETY: an entry's buffers are used by one party at a time. The kernel owns them from a
// command's submission to its completion; then the queue's thread reads the request, and
// the reply is written by whoever gives it (see `Reply`) before the next submission.
unsafe impl Send for Queue {}
unsafe impl Sync for Queue {}

/// The running queues; `stop` waits for their threads after the unmount.
pub struct Rings {
    stopped: Receiver<u16>,
    queues: usize,
}

impl Rings {
    /// Waits until every queue's thread saw the connection end (the unmount ends each
    /// entry's command), so that no request is being served when the universe closes.
    pub fn stop(self) {
        for _ in 0..self.queues {
            if self.stopped.recv_timeout(STOP_WAIT).is_err() {
                log::warn!("a ring queue is still serving at unmount; closing anyway");
                return;
            }
        }
    }
}

/// Registers a queue for each CPU on the FUSE device `dev`, each served by a thread on
/// its CPU. Call after INIT was answered with FUSE_OVER_IO_URING. The kernel switches to
/// the rings once every queue has an entry; until then requests still come through
/// `/dev/fuse`.
pub fn start(fuse: Arc<Fuse>, dev: BorrowedFd<'_>) -> std::io::Result<Rings> {
    let cpus = possible_cpus()?;
    let allowed = crate::placement::allowed_cpus();
    let (tx, stopped) = mpsc::channel();
    for qid in 0..cpus {
        let queue = Arc::new(Queue::new(
            qid as u16,
            dev.try_clone_to_owned()?,
            fuse.clone(),
        )?);
        let pin = allowed.contains(&qid).then_some(qid);
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("ring-{qid}"))
            .spawn(move || {
                queue.serve(pin);
                let _ = tx.send(queue.qid);
            })?;
    }
    log::info!("serving FUSE over io_uring: {cpus} queues of {DEPTH}");
    Ok(Rings {
        stopped,
        queues: cpus,
    })
}

/// The kernel has a queue for every possible CPU (online or not), and a request goes to
/// its caller's: `/sys/devices/system/cpu/possible` ("0-3") gives how many.
fn possible_cpus() -> std::io::Result<usize> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let last = list
        .trim()
        .rsplit([',', '-'])
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| std::io::Error::other(format!("possible CPUs {list:?}")))?;
    Ok(last + 1)
}

/// Where a request's answer goes. The answer may come while `Fuse::handle` still runs and
/// its `Op` still borrows the entry's payload (at once, or from the flusher within that
/// time): it is then held, and written once `handle` returned.
struct Reply {
    queue: Arc<Queue>,
    entry: usize,
    unique: u64,
    commit_id: u64,
    /// A listing's most bytes.
    limit: usize,
    stage: Mutex<Stage>,
}

/// When a command pushed on the ring is submitted.
#[derive(Clone, Copy, PartialEq)]
enum Submit {
    /// At once: from a thread other than the queue's.
    Now,
    /// With the queue thread's next wait for completions: one system call for both.
    WithWait,
}

enum Stage {
    Serving,
    Held(Answered),
    Returned,
}

impl Reply {
    fn answered(&self, answer: Answered) {
        let mut stage = self.stage.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *stage, Stage::Returned) {
            Stage::Serving => *stage = Stage::Held(answer),
            // From another thread (the flusher), after the queue's thread went on.
            Stage::Returned | Stage::Held(_) => {
                drop(stage);
                self.commit(answer, Submit::Now);
            }
        }
    }

    /// `handle` returned: the payload is free to be written.
    fn returned(&self) {
        let mut stage = self.stage.lock().unwrap_or_else(PoisonError::into_inner);
        if let Stage::Held(answer) = std::mem::replace(&mut *stage, Stage::Returned) {
            drop(stage);
            self.commit(answer, Submit::WithWait);
        }
    }

    fn commit(&self, answer: Answered, submit: Submit) {
        let q = &self.queue;
        let e = &q.entries[self.entry];
        // SAFETY: the entry is ours until the commit below (see `Queue`'s Send), and no
        // borrow of its payload is alive (`Stage`).
        let (header, payload) = unsafe {
            (
                std::slice::from_raw_parts_mut(e.header.at.as_ptr(), e.header.len),
                std::slice::from_raw_parts_mut(e.payload.at.as_ptr(), e.payload.len),
            )
        };
        let (error, len) = match answer.and_then(|a| abi::encode(&a, self.limit, payload)) {
            Ok(len) => (0, len),
            Err(errno) => (errno, 0),
        };
        header[..16].copy_from_slice(&abi::out_header(self.unique, error, len));
        abi::set_payload_len(header, len);
        q.submit(self.entry, CMD_COMMIT_AND_FETCH, self.commit_id, submit);
    }
}

impl Queue {
    fn new(qid: u16, dev: OwnedFd, fuse: Arc<Fuse>) -> std::io::Result<Queue> {
        let entries = (0..DEPTH)
            .map(|_| {
                let (header, payload) = (Buf::new(abi::REQ_HEADER), Buf::new(PAYLOAD));
                let iov = [
                    libc::iovec {
                        iov_base: header.at.as_ptr().cast(),
                        iov_len: header.len,
                    },
                    libc::iovec {
                        iov_base: payload.at.as_ptr().cast(),
                        iov_len: payload.len,
                    },
                ];
                Entry {
                    header,
                    payload,
                    iov,
                }
            })
            .collect();
        Ok(Queue {
            qid,
            dev,
            ring: Uring::new(DEPTH as u32)?,
            submitting: Mutex::new(()),
            entries,
            fuse,
        })
    }

    /// Hands entry `i` to the kernel: to register it, or with its reply to commit.
    fn submit(&self, i: usize, cmd: u32, commit_id: u64, submit: Submit) {
        let mut sqe = [0u8; SQE_SIZE];
        sqe[0] = uring::IORING_OP_URING_CMD;
        sqe[4..8].copy_from_slice(&self.dev.as_raw_fd().to_ne_bytes());
        sqe[8..12].copy_from_slice(&cmd.to_ne_bytes());
        if cmd == CMD_REGISTER {
            let iov = self.entries[i].iov.as_ptr() as u64;
            sqe[16..24].copy_from_slice(&iov.to_ne_bytes());
            sqe[24..28].copy_from_slice(&2u32.to_ne_bytes());
        }
        sqe[32..40].copy_from_slice(&(i as u64).to_ne_bytes());
        sqe[48..72].copy_from_slice(&abi::command(self.qid, commit_id));
        let _one = self
            .submitting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let res = self.ring.push(&sqe).and_then(|()| match submit {
            Submit::Now => self.enter(false),
            Submit::WithWait => Ok(()),
        });
        if let Err(e) = res {
            // The request's caller waits until the unmount ends the connection.
            log::error!("ring queue {}: cannot submit entry {i}: {e}", self.qid);
        }
    }

    /// Submits every command pushed and not yet submitted and, with `wait`, sleeps until
    /// a completion is there.
    fn enter(&self, wait: bool) -> std::io::Result<()> {
        loop {
            match self.ring.enter(self.ring.pending(), wait) {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                res => return res,
            }
        }
    }

    /// The queue's thread: registers the entries, then serves what they bring until the
    /// connection ends.
    fn serve(self: &Arc<Queue>, cpu: Option<usize>) {
        if let Some(cpu) = cpu
            && !crate::placement::pin_to(cpu)
        {
            log::warn!("ring queue {}: cannot move to CPU {cpu}", self.qid);
        }
        for i in 0..DEPTH {
            self.submit(i, CMD_REGISTER, 0, Submit::WithWait);
        }
        let mut live = DEPTH;
        let mut done = Vec::with_capacity(DEPTH);
        while live > 0 {
            if let Err(e) = self.enter(true) {
                log::error!("ring queue {}: {e}", self.qid);
                return;
            }
            self.ring.reap(&mut done);
            let reaped = done.len();
            for (k, c) in done.drain(..).enumerate() {
                let i = c.user_data as usize;
                match -c.res {
                    0 if i < DEPTH => self.request(i, k + 1 < reaped || self.ring.ready()),
                    // INIT's answer not yet taken in: the kernel asks to register again.
                    libc::EAGAIN | libc::EINTR if i < DEPTH => {
                        std::thread::sleep(Duration::from_millis(10));
                        self.submit(i, CMD_REGISTER, 0, Submit::WithWait);
                    }
                    libc::ENOTCONN | libc::ECANCELED | libc::ENODEV => live -= 1,
                    errno => {
                        log::error!(
                            "ring queue {}: entry {i}: {}",
                            self.qid,
                            std::io::Error::from_raw_os_error(errno)
                        );
                        live -= 1;
                    }
                }
            }
        }
    }

    /// Serves the request entry `i` holds; `others_waiting` when more of this queue's
    /// requests are already there to be served after it.
    fn request(self: &Arc<Queue>, i: usize, others_waiting: bool) {
        let e = &self.entries[i];
        // SAFETY: the kernel completed this entry's command: its buffers are ours until
        // the commit, and nothing writes them before `Reply::returned`.
        let header = unsafe { std::slice::from_raw_parts(e.header.at.as_ptr(), e.header.len) };
        let h = abi::header(header);
        let (commit_id, len) = abi::ent_in_out(header);
        // SAFETY: as above; the kernel wrote `len` bytes, at most the buffer's length.
        let payload = unsafe {
            std::slice::from_raw_parts(e.payload.at.as_ptr(), (len as usize).min(e.payload.len))
        };
        let reply = |limit| Reply {
            queue: self.clone(),
            entry: i,
            unique: h.unique,
            commit_id,
            limit,
            stage: Mutex::new(Stage::Serving),
        };
        match abi::decode(&h, &header[abi::OP_IN], payload) {
            Ok(Decoded::Serve(op, limit)) => {
                let reply = Arc::new(reply(limit));
                let answer = reply.clone();
                let by = Caller {
                    uid: h.uid,
                    gid: h.gid,
                    pid: h.pid,
                };
                self.fuse
                    .handle(op, by, others_waiting, move |a| answer.answered(a));
                reply.returned();
            }
            Ok(Decoded::Answer(a)) => reply(0).commit(a, Submit::WithWait),
            Err(errno) => {
                log::warn!("ring queue {}: malformed request {}", self.qid, h.opcode);
                reply(0).commit(Err(errno), Submit::WithWait);
            }
        }
    }
}
