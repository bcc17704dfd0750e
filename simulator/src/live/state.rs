//! `--state FILE` for live runs: the meter's state saved at every telegram, in the same file
//! format as `p1sim emit --state` (see [`crate::state`]), so a meter can move between the two.
//!
//! The save is write-ahead: the state after rendering a telegram (registers, frame counter) is on
//! disk before that telegram's first byte leaves. A run killed at any moment, `kill -9` included,
//! therefore resumes at or after everything it sent: counters never go back, and a Smarty frame
//! counter is never used twice. At most the telegram being sent at the kill is lost.

use std::path::{Path, PathBuf};

use anyhow::Result;
use p1sim_core::meter::MeterState;
use p1sim_core::profile::Profile;

/// Where and for which meter a run saves its state.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
    profile: String,
    seed: u64,
}

impl StateFile {
    pub fn new(path: &Path, profile: &Profile, seed: u64) -> StateFile {
        StateFile { path: path.to_path_buf(), profile: profile.name.clone(), seed }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, `None` when the file does not exist yet; a file of another profile or
    /// seed is refused.
    pub fn load(&self) -> Result<Option<MeterState>> {
        crate::state::load(&self.path, &self.profile, self.seed)
    }

    /// Saves atomically and durably (temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, state: &MeterState) -> Result<()> {
        crate::state::save(&self.path, state)
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
        let file = StateFile::new(&path, &profile, 7);
        assert!(file.load().unwrap().is_none());
        let meter = Meter::new(&profile, profile.household.clone(), 7, 1_770_000_000);
        file.save(meter.state()).unwrap();
        assert_eq!(file.load().unwrap().as_ref(), Some(meter.state()));
        let other_seed = format!("{:#}", StateFile::new(&path, &profile, 8).load().unwrap_err());
        assert!(other_seed.contains("seed 7"), "{other_seed}");
        let be = p1sim_core::builtin::lookup("sagemcom-t211-be").unwrap();
        let other_profile = format!("{:#}", StateFile::new(&path, &be, 7).load().unwrap_err());
        assert!(other_profile.contains("iskra-am550"), "{other_profile}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
