//! Access by region: who may read, change and remove what, by the roles of
//! `configuration/cosmic_security.json` (`policy`). Asked by the filesystem before each
//! operation a user makes; without the file, everything is as modes and owners say.
//! The file is read again whenever it is committed (the configuration region says so).

pub mod policy;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::error::Result;
use crate::regions::Cx;
use crate::vfs::Caller;

pub use policy::Verb;

#[derive(Default)]
pub struct Access {
    /// The rules in force; `None` without a security file.
    rules: RwLock<Option<Arc<policy::Rules>>>,
    /// Whether `rules` holds any: asked on every open, without taking the lock.
    active: AtomicBool,
}

impl Access {
    /// Reads the security file (at start, and when it was committed). A stored file that
    /// does not resolve (a user it names was removed from the machine since) keeps the
    /// rules that were in force, or at a mount locks every place to all but root, loudly:
    /// access must not open up by accident.
    pub fn reload(&self, cx: &Cx<'_>) {
        let Some(dir) = cx.seed_dir("configuration") else {
            return;
        };
        let parsed = match crate::regions::read_own(cx, dir.ino, policy::FILE) {
            Ok(Some(bytes)) => policy::Rules::parse(&bytes),
            Ok(None) => return,
            Err(e) => Err(e),
        };
        match parsed {
            Ok(r) => {
                self.enforce(r);
                log::info!("{}: access rules in force", policy::FILE);
            }
            Err(e) if self.active() => {
                log::error!("{}: {e}; the rules in force stay", policy::FILE)
            }
            Err(e) => {
                self.enforce(policy::Rules::locked());
                log::error!(
                    "{}: {e}; until it is mended, only root may use the places it can name",
                    policy::FILE
                );
            }
        }
    }

    fn enforce(&self, rules: policy::Rules) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(rules));
        self.active.store(true, Ordering::Release);
    }

    /// Whether any rules are in force (without them nothing is checked).
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    fn current(&self) -> Option<Arc<policy::Rules>> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `who` may do `verb` to the entry at `parts` (its path's names).
    pub fn check(&self, who: &Caller, parts: &[&[u8]], verb: Verb) -> Result<()> {
        match self.current() {
            Some(rules) => rules.decide(
                who.uid,
                || crate::identity::groups(who.pid, who.gid),
                parts,
                verb,
            ),
            None => Ok(()),
        }
    }
}
