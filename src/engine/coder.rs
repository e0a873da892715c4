//! A second CPU for compressing large files. A warm or cold file is coded chunk by chunk
//! as it is streamed into its blob (see `draft.rs`), and the request thread doing it runs
//! on its caller's CPU (see `placement.rs`); whole chunks are handed to this thread, which
//! the engine starts with the daemon's own CPUs.

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
    fn chunks_are_coded_alike_with_and_without_the_thread() {
        let a: Vec<u8> = (0..300_000).map(|i| (i % 7) as u8).collect();
        let coder = Coder::default();
        for codec in [Codec::None, Codec::Zlib, Codec::Lz4] {
            let inline = collect(coder.submit(codec, Arc::new(a.clone())), codec, &a);
            assert_eq!(inline, codec.encode(&a));
        }
        let jobs = coder.start();
        let thread = std::thread::spawn(move || run(jobs));
        for codec in [Codec::None, Codec::Zlib, Codec::Lz4] {
            let coded = coder.submit(codec, Arc::new(a.clone()));
            assert!(coded.is_some(), "the running thread takes the job");
            let ca = collect(coded, codec, &a);
            assert_eq!(codec.decode(&ca, a.len()).expect("a"), a);
        }
        drop(coder);
        thread
            .join()
            .expect("the coder stops when the engine is gone");
    }
}
