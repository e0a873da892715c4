//! A second CPU for compressing large commits. A warm or cold file is coded chunk by chunk
//! when it is committed, and `close` waits for it; the request thread runs on its
//! caller's CPU (see `placement.rs`), so chunks are coded in pairs: one there, the other
//! on this thread, which the engine starts with the daemon's own CPUs.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use super::codec::Codec;

pub struct Job {
    codec: Codec,
    raw: Arc<Vec<u8>>,
    done: Sender<Vec<u8>>,
}

/// Where jobs go; `None` while no coder thread runs (then everything is coded in place).
#[derive(Default)]
pub struct Coder {
    jobs: Mutex<Option<Sender<Job>>>,
}

impl Coder {
    fn jobs(&self) -> MutexGuard<'_, Option<Sender<Job>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For the coder thread: from now on, jobs arrive here (see `run`).
    pub fn start(&self) -> Receiver<Job> {
        let (tx, rx) = std::sync::mpsc::channel();
        *self.jobs() = Some(tx);
        rx
    }

    /// Hands `raw` to the coder thread; `None` when it does not run.
    pub fn submit(&self, codec: Codec, raw: Arc<Vec<u8>>) -> Option<Receiver<Vec<u8>>> {
        let (done, coded) = std::sync::mpsc::channel();
        let jobs = self.jobs();
        let jobs = jobs.as_ref()?;
        jobs.send(Job { codec, raw, done }).ok()?;
        Some(coded)
    }

    /// Codes `a` here while the coder thread codes `b`; both here when it does not run.
    pub fn code_two(&self, codec: Codec, a: &[u8], b: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        let b = Arc::new(b);
        let coded = self.submit(codec, b.clone());
        let ca = codec.encode(a);
        (ca, collect(coded, codec, &b))
    }
}

/// The result of `submit`: what the coder thread made of `raw`, or `raw` coded here when
/// it did not run or died with the job.
pub fn collect(coded: Option<Receiver<Vec<u8>>>, codec: Codec, raw: &[u8]) -> Vec<u8> {
    match coded.map(|c| c.recv()) {
        Some(Ok(c)) => c,
        _ => codec.encode(raw),
    }
}

/// The coder thread: codes until the engine (holding the sending side) is gone.
pub fn run(jobs: Receiver<Job>) {
    for job in jobs {
        let _ = job.done.send(job.codec.encode(&job.raw));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_coded_alike_with_and_without_the_thread() {
        let a: Vec<u8> = (0..300_000).map(|i| (i % 7) as u8).collect();
        let b: Vec<u8> = (0..200_000).map(|i| (i % 13) as u8).collect();
        let coder = Coder::default();
        for codec in [Codec::None, Codec::Zlib, Codec::Lz4] {
            let inline = coder.code_two(codec, &a, b.clone());
            assert_eq!(inline, (codec.encode(&a), codec.encode(&b)));
        }
        let jobs = coder.start();
        let thread = std::thread::spawn(move || run(jobs));
        for codec in [Codec::None, Codec::Zlib, Codec::Lz4] {
            let (ca, cb) = coder.code_two(codec, &a, b.clone());
            assert_eq!(codec.decode(&ca, a.len()).expect("a"), a);
            assert_eq!(codec.decode(&cb, b.len()).expect("b"), b);
        }
        drop(coder);
        thread
            .join()
            .expect("the coder stops when the engine is gone");
    }
}
