//! The daemon's memory: one budget for all of it. The cache is the only part that can give
//! memory back on demand, so a thread measures the process's resident memory ten times a
//! second and fits the cache's limit to what the rest leaves of the budget (see
//! `engine::cache`). The allocator is tuned so that what is freed leaves the resident
//! set within about a second, or the measure would count memory nobody holds.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;
use crate::periodic::Periodic;

/// jemalloc's options, read before `main` (the symbol is the prefixed `malloc_conf` of
/// tikv-jemalloc-sys). Background threads purge freed pages even in arenas whose threads
/// went idle; a dirty page is returned after 1 s rather than 10 s, and not kept "muzzy"
/// (lazily freed pages still count as resident until the kernel needs them). One arena:
/// a cached chunk is often allocated on one thread (a writer's, the read-ahead's) and
/// evicted by another's read, and a page freed into one thread's arena is reused only by
/// that arena's threads; with an arena per thread, the freed chunks of a file just
/// written stayed resident for a second while a reader's new ones were paged in
/// (`cp` of 256 MiB then `cat` at a 64 MiB budget: peak 88 / 96 MiB, with one arena
/// 71 / 69). Small allocations still come from each thread's own cache.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 70] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:1\0";

/// How often the cache is fitted: a burst of allocation overshoots the budget for at most
/// this long before the cache gives way.
const PERIOD: Duration = Duration::from_millis(100);

/// The process's resident memory in bytes (`/proc/self/statm`), if it can be read.
pub fn resident() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * usize::try_from(page).ok()?)
}

/// The thread that keeps the cache within what the budget leaves; stopped when dropped.
pub fn govern(engine: Arc<Engine>) -> std::io::Result<Periodic> {
    Periodic::start("memory", PERIOD, move || match resident() {
        Some(bytes) => {
            engine.fit_cache(bytes);
            true
        }
        None => {
            log::warn!("cannot read /proc/self/statm: the cache keeps its whole budget");
            false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_reads_its_options_and_resident_memory_is_measured() {
        // jemalloc took the options (a misspelt symbol would leave its defaults).
        assert!(tikv_jemalloc_ctl::opt::background_thread::read().expect("mallctl"));
        let decay: isize =
            unsafe { tikv_jemalloc_ctl::raw::read(b"opt.dirty_decay_ms\0") }.expect("mallctl");
        assert_eq!(decay, 1000);
        let arenas: u32 =
            unsafe { tikv_jemalloc_ctl::raw::read(b"opt.narenas\0") }.expect("mallctl");
        assert_eq!(arenas, 1);
        // Other tests allocate and free beside this one, so the process's figure is only
        // compared with the kernel's own (VmRSS), read right after, and with what this
        // test holds: a wrong field of statm (the mapped size) would be gigabytes off.
        let block = vec![1u8; 64 << 20];
        let ours = resident().expect("statm");
        let kernel = crate::regions::observatory::process().rss_bytes as usize;
        assert!(
            ours >= block.len(),
            "{ours} resident with {} bytes touched",
            block.len()
        );
        assert!(
            ours.abs_diff(kernel) < 16 << 20,
            "statm {ours}, VmRSS {kernel}"
        );
    }
}
