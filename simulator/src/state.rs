//! Meter state files: resume a meter where the last run stopped, saved so that a crash (kill -9
//! included) loses at most the last interval.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use p1sim_core::meter::MeterState;

/// Reads a state file written by [`save`]; `Ok(None)` when it does not exist yet. A state from
/// another profile or seed is refused, since resuming it would splice two different meters.
pub fn load(path: &Path, profile: &str, seed: u64) -> Result<Option<MeterState>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read the state file {}", path.display())),
    };
    let state: MeterState = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a p1sim meter state file (delete it to start afresh)", path.display()))?;
    if state.profile != profile || state.seed != seed {
        bail!(
            "{} holds the meter of profile {:?} with seed {}, not {profile:?} with seed {seed}; \
             use another --state file or the same profile and seed",
            path.display(),
            state.profile,
            state.seed
        );
    }
    Ok(Some(state))
}

/// Writes the state atomically: a temporary file beside it, flushed to disk, renamed over the
/// old one, and the directory synced so the rename itself survives a power cut.
pub fn save(path: &Path, state: &MeterState) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().context("the state path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let json = serde_json::to_vec_pretty(state)?;
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("cannot save the meter state to {}", path.display()))
}
