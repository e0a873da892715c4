//! A thread that runs a job once per period until it is dropped (or the job says it is
//! done): the regions' tick and the memory governor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Periodic {
    name: &'static str,
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Runs `job` every `period`, the first time one period after the start; `job`
    /// returns false to end the thread.
    pub fn start(
        name: &'static str,
        period: Duration,
        mut job: impl FnMut() -> bool + Send + 'static,
    ) -> std::io::Result<Periodic> {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                loop {
                    std::thread::sleep(period);
                    if !flag.load(Ordering::Relaxed) || !job() {
                        return;
                    }
                }
            })?;
        Ok(Periodic {
            name,
            running,
            thread: Some(thread),
        })
    }
}

impl Drop for Periodic {
    /// Stops the thread and waits for its job to finish.
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("the {} thread panicked", self.name);
        }
    }
}
