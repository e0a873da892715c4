//! `spacetime/<tier>/quantum_indices/`: records read together, remembered. Every open of a
//! record for reading is told to this region (`Region::observe`), which only notes it
//! and asks for the record's entangled partners: they are brought into the cache on the
//! read-ahead worker, so that the reads that usually follow hit it. What was noted is
//! learnt off the request's path, each tick (and before the pairs are shown): records
//! opened within a short window of each other become partners (`links`). `relationships.json` shows the pairs of the tier's records;
//! `entangled_keys.erl` keeps them across restarts. The rules are
//! `configuration/entanglement_rules.json` (`settings`).

mod keys_file;
mod links;
pub mod settings;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::engine::codec::Tier;
use crate::regions::config::Watched;
use crate::regions::temporal::time;
use crate::regions::{Cx, Dir, Event, Generated, Region, Tag, pretty, records};

use self::links::{Link, Links, Millis, Pair};
use self::settings::Settings;

pub const TAG: Tag = 7;
pub const RELATIONSHIPS: &str = "relationships.json";
pub use self::keys_file::FILE as KEYS_FILE;
/// Pairs are written out at most this often while they change (and at unmount).
const SAVE_EVERY: Duration = Duration::from_secs(30);
/// Records `relationships.json` lists (the most strongly entangled first).
const LISTED: usize = 1000;

pub struct Entanglement {
    links: RwLock<Links>,
    /// Opens noted and not learnt from yet, oldest first.
    pending: Mutex<Vec<(u64, Millis)>>,
    persisted: Mutex<Persisted>,
    file: Watched<Settings>,
    /// The rules as last read (each tick): opens use them without reading the file.
    rules: RwLock<Settings>,
    prefetches_asked: AtomicU64,
    /// Opens not noted because too many waited to be learnt from.
    dropped: AtomicU64,
}

/// Opens that may wait to be learnt from (16 bytes each); more are not noted.
const PENDING_MAX: usize = 1 << 16;
/// Opens learnt from per hold of the lock (opens asking for partners wait on it).
const LEARN_STEP: usize = 1024;

#[derive(Default)]
struct Persisted {
    /// Pairs changed since they were written out, and when that was.
    dirty: bool,
    saved: Option<Instant>,
}

fn now_ms() -> Millis {
    time::now() / 1000
}

/// The tier whose `quantum_indices/` `dir` is.
fn indices_of(dir: &Dir) -> Option<Tier> {
    let path = dir.seed?.path.strip_prefix("spacetime/")?;
    Tier::from_dir_name(path.strip_suffix("/quantum_indices")?.as_bytes())
}

fn indices(cx: &Cx<'_>, tier: Tier) -> Option<Dir> {
    cx.seed_dir(&format!("spacetime/{}/quantum_indices", tier.dir_name()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Entanglement {
    fn default() -> Self {
        Entanglement {
            links: RwLock::default(),
            pending: Mutex::default(),
            persisted: Mutex::default(),
            file: Watched::new(settings::FILE, Settings::parse),
            rules: RwLock::default(),
            prefetches_asked: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

impl Entanglement {
    fn links(&self) -> RwLockReadGuard<'_, Links> {
        self.links.read().unwrap_or_else(|e| e.into_inner())
    }

    fn links_mut(&self) -> RwLockWriteGuard<'_, Links> {
        self.links.write().unwrap_or_else(|e| e.into_inner())
    }

    fn rules(&self) -> Settings {
        *self.rules.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Learns from the opens noted so far.
    fn learn(&self) {
        let noted = std::mem::take(&mut *lock(&self.pending));
        let rules = self.rules();
        let mut changed = 0;
        for step in noted.chunks(LEARN_STEP) {
            let mut links = self.links_mut();
            for &(ino, at) in step {
                changed += links.read(ino, at, &rules);
            }
        }
        if changed > 0 {
            lock(&self.persisted).dirty = true;
        }
    }

    /// Writes each tier's pairs to its `entangled_keys.erl`.
    fn save(&self, cx: &Cx<'_>) {
        let pairs = {
            let mut p = lock(&self.persisted);
            p.dirty = false;
            p.saved = Some(Instant::now());
            self.links().all_pairs()
        };
        let mut per_tier: [Vec<Pair>; 3] = Default::default();
        let mut gone = Vec::new();
        for p in pairs {
            match (cx.store.getattr(p.a), cx.store.getattr(p.b)) {
                (Ok(a), Ok(_)) => per_tier[a.tier as usize].push(p),
                (a, b) => {
                    gone.extend(a.is_err().then_some(p.a));
                    gone.extend(b.is_err().then_some(p.b));
                }
            }
        }
        // A record removed since takes its pairs with it.
        if !gone.is_empty() {
            let mut links = self.links_mut();
            for ino in gone {
                links.forget(ino);
            }
        }
        for tier in Tier::ALL {
            let Some(dir) = indices(cx, tier) else {
                continue;
            };
            let pairs = &per_tier[tier as usize];
            let bytes = (!pairs.is_empty()).then(|| keys_file::encode(pairs));
            if let Err(e) = super::keep_file(cx, dir.ino, KEYS_FILE, bytes.as_deref()) {
                log::warn!("{}/{KEYS_FILE}: {e}", tier.dir_name());
            }
        }
    }

    fn relationships(&self, cx: &Cx<'_>, tier: Tier) -> Vec<u8> {
        self.learn();
        let rules = self.rules();
        let now = now_ms();
        let strongest = |links: &[Link]| {
            links
                .iter()
                .map(|l| l.effective(now, &rules))
                .fold(0.0, f64::max)
        };
        // The lock is held only to copy what is needed: learning waits on it.
        let (mut ranked, pairs, records, reads, co) = {
            let links = self.links();
            let ranked: Vec<(u64, f64)> = links
                .records()
                .map(|k| (k, strongest(links.links_of(k))))
                .collect();
            (
                ranked,
                links.pairs(),
                links.keys(),
                links.reads,
                links.co_accesses,
            )
        };
        ranked.retain(|&(k, _)| cx.store.getattr(k).is_ok_and(|a| a.tier == tier));
        let in_tier = ranked.len();
        ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
        ranked.truncate(LISTED);
        let path = |ino| crate::namespace::join(&cx.store.path_of(ino));
        let listed: Vec<serde_json::Value> = ranked
            .iter()
            .map(|&(k, _)| {
                let mut links = self.links().links_of(k).to_vec();
                links.sort_by(|x, y| {
                    y.effective(now, &rules)
                        .total_cmp(&x.effective(now, &rules))
                });
                let partners: Vec<serde_json::Value> = links
                    .iter()
                    .map(|l| {
                        let e = l.effective(now, &rules);
                        json!({
                            "key": path(l.partner),
                            "strength": (e * 1000.0).round() / 1000.0,
                            "entangled": e >= rules.min_strength,
                            "last_read_together": time::format_rfc3339(l.at * 1000),
                        })
                    })
                    .collect();
                json!({ "key": path(k), "partners": partners })
            })
            .collect();
        pretty(&json!({
            "tier": tier.dir_name(),
            "rules": {
                "window_ms": rules.window_ms,
                "half_life_secs": rules.half_life_secs,
                "min_strength": rules.min_strength,
                "prefetch_partners": rules.prefetch_partners,
            },
            "since_mount": {
                "reads_observed": reads,
                "read_together": co,
                "reads_not_noted": self.dropped.load(Ordering::Relaxed),
                "prefetches_asked": self.prefetches_asked.load(Ordering::Relaxed),
                "prefetched_into_cache": cx.store.counters().prefetched,
            },
            "universe": {
                "pairs": pairs,
                "records_with_partners": records,
                "max_pairs": rules.max_pairs,
                "partners_per_key": rules.partners_per_key,
            },
            "records_in_tier": in_tier,
            "listed": listed.len(),
            "records": listed,
        }))
    }
}

impl Region for Entanglement {
    fn name(&self) -> &'static str {
        "entanglement"
    }

    fn tag(&self) -> Tag {
        TAG
    }

    fn views(&self, _cx: &Cx<'_>, dir: &Dir) -> Vec<String> {
        match indices_of(dir) {
            Some(_) => vec![RELATIONSHIPS.to_string()],
            None => Vec::new(),
        }
    }

    fn generate(&self, cx: &Cx<'_>, dir: &Dir, name: &str) -> Option<Generated> {
        let tier = indices_of(dir).filter(|_| name == RELATIONSHIPS)?;
        // Strengths fade and reads add to them without the engine's state moving.
        Some(Generated::Fresh(self.relationships(cx, tier)))
    }

    fn observe(&self, cx: &Cx<'_>, event: &Event<'_>) {
        let Event::Read { ino, tag, .. } = *event else {
            return;
        };
        if tag != records::TAG {
            return;
        }
        let now = now_ms();
        {
            let mut pending = lock(&self.pending);
            if pending.len() < PENDING_MAX {
                pending.push((ino, now));
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let rules = self.rules();
        if rules.prefetch_partners == 0 {
            return;
        }
        let mut partners = self.links().entangled(ino, now, &rules);
        partners.truncate(rules.prefetch_partners);
        for &(p, _) in &partners {
            cx.store.prefetch(p);
        }
        self.prefetches_asked
            .fetch_add(partners.len() as u64, Ordering::Relaxed);
    }

    /// Reads the pairs kept at the last save.
    fn start(&self, cx: &Cx<'_>) -> crate::error::Result<()> {
        let rules = self.file.get(cx);
        let mut kept = Vec::new();
        for tier in Tier::ALL {
            let Some(dir) = indices(cx, tier) else {
                continue;
            };
            match super::read_own(cx, dir.ino, KEYS_FILE)
                .and_then(|b| b.map(|b| keys_file::decode(&b)).transpose())
            {
                Ok(pairs) => kept.extend(pairs.into_iter().flatten()),
                Err(e) => log::warn!(
                    "{}/{KEYS_FILE}: {e}; its pairs are learnt again",
                    tier.dir_name()
                ),
            }
        }
        kept.retain(|p| cx.store.getattr(p.a).is_ok() && cx.store.getattr(p.b).is_ok());
        self.links_mut().restore(kept, &rules);
        lock(&self.persisted).saved = Some(Instant::now());
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = rules;
        Ok(())
    }

    fn tick(&self, cx: &Cx<'_>) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = self.file.get(cx);
        self.learn();
        let due = {
            let p = lock(&self.persisted);
            p.dirty && p.saved.is_none_or(|t| t.elapsed() >= SAVE_EVERY)
        };
        if due {
            self.save(cx);
        }
    }

    fn stop(&self, cx: &Cx<'_>) {
        self.learn();
        if lock(&self.persisted).dirty {
            self.save(cx);
        }
    }
}
