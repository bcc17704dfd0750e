//! `--state FILE` for live runs: the meter's state saved at every telegram, in the same file
//! format as `p1sim emit --state` (see [`crate::state`]), so a meter can move between the two.
//!
//! The save is write-ahead: the state after rendering a telegram (registers, frame counter) is on
//! disk before that telegram's first byte leaves, and a telegram whose state could not be saved
//! (a full disk, no file descriptors left, the directory gone) is not sent at all: the meter
//! goes quiet, says so on stderr and in `/status`, and tries again at the next telegram. A run
//! killed at any moment, `kill -9` included, therefore resumes at or after everything it sent:
//! counters never go back, and a Smarty frame counter is never used twice. The file is locked
//! for the whole run, so a second run on it is refused instead of racing this one.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use p1sim_core::meter::MeterState;
use p1sim_core::profile::Profile;
use serde_json::{Value, json};

use crate::state::StateLock;

/// Where and for which meter a run saves its state, holding the file's lock.
#[derive(Debug, Clone)]
pub struct StateFile {
    lock: Arc<StateLock>,
    profile: Profile,
    seed: u64,
    pub stats: Arc<SaveStats>,
}

/// How saving goes, for `/status` and the log.
#[derive(Debug, Default)]
pub struct SaveStats {
    pub saves: AtomicU64,
    pub failures: AtomicU64,
    /// Failures since the last save that worked.
    pub failing: AtomicU64,
    /// Telegrams not sent because their state could not be saved.
    pub withheld: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl SaveStats {
    pub fn to_json(&self, path: &Path) -> Value {
        json!({
            "path": path.display().to_string(),
            "saves": self.saves.load(Relaxed),
            "failed_saves": self.failures.load(Relaxed),
            "failing": self.failing.load(Relaxed) > 0,
            "withheld_telegrams": self.withheld.load(Relaxed),
            "last_error": *self.last_error.lock().unwrap_or_else(|e| e.into_inner()),
        })
    }
}

impl StateFile {
    /// Locks the state file at `path` for this run; refused when another p1sim holds it.
    pub fn open(path: &Path, profile: &Profile, seed: u64) -> Result<StateFile> {
        Ok(StateFile {
            lock: Arc::new(StateLock::acquire(path)?),
            profile: profile.clone(),
            seed,
            stats: Arc::new(SaveStats::default()),
        })
    }

    pub fn path(&self) -> &Path {
        self.lock.path()
    }

    /// The saved state, `None` when the file does not exist yet; a file of another profile or
    /// seed, or one that fails the meter's checks, is refused.
    pub fn load(&self) -> Result<Option<MeterState>> {
        crate::state::load(self.path(), &self.profile, self.seed)
    }

    /// Saves atomically and durably (temporary file, fsync, rename, fsync of the directory),
    /// and counts the outcome.
    pub fn save(&self, state: &MeterState) -> Result<()> {
        let r = crate::state::save(self.path(), state);
        let s = &self.stats;
        match &r {
            Ok(()) => {
                s.saves.fetch_add(1, Relaxed);
                let failed = s.failing.swap(0, Relaxed);
                if failed > 0 {
                    eprintln!(
                        "p1sim run: the state is saved again after {failed} failed save(s); sending resumes \
                         ({} telegram(s) withheld in all)",
                        s.withheld.load(Relaxed)
                    );
                }
            }
            Err(e) => {
                s.failures.fetch_add(1, Relaxed);
                let n = s.failing.fetch_add(1, Relaxed) + 1;
                let text = format!("{e:#}");
                // The first failure and then one in a hundred: a full disk must not flood the log.
                if n == 1 || n.is_multiple_of(100) {
                    eprintln!(
                        "p1sim run: {text}; telegrams are withheld until the state can be saved, so that no \
                         register goes back after a restart (failure {n}, retrying at every telegram)"
                    );
                }
                *s.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use p1sim_core::meter::Meter;

    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = std::env::temp_dir().join(format!("p1sim-live-state-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("meter.json");
        let profile = p1sim_core::builtin::lookup("iskra-am550").unwrap();
        let file = StateFile::open(&path, &profile, 7).unwrap();
        assert!(file.load().unwrap().is_none());
        let meter = Meter::new(&profile, profile.household.clone(), 7, 1_770_000_000);
        file.save(meter.state()).unwrap();
        assert_eq!(file.load().unwrap().as_ref(), Some(meter.state()));
        assert_eq!(file.stats.saves.load(Relaxed), 1);
        let locked = format!("{:#}", StateFile::open(&path, &profile, 7).unwrap_err());
        assert!(locked.contains("in use by PID"), "{locked}");
        drop(file);
        let other_seed = format!("{:#}", StateFile::open(&path, &profile, 8).unwrap().load().unwrap_err());
        assert!(other_seed.contains("seed 7"), "{other_seed}");
        let be = p1sim_core::builtin::lookup("sagemcom-t211-be").unwrap();
        let other_profile = format!("{:#}", StateFile::open(&path, &be, 7).unwrap().load().unwrap_err());
        assert!(other_profile.contains("iskra-am550"), "{other_profile}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
