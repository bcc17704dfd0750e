//! Meter state files: resume a meter where the last run stopped, saved so that a crash (kill -9
//! included) loses at most the last interval, and locked so that two runs never share one.
//!
//! A state file is read through the input size cap and checked in full against the profile
//! before anything resumes from it ([`p1sim_core::meter::MeterState::check`]). While a run or an
//! `emit` uses it, an advisory lock on a lock file beside it (`.NAME.lock`, holding the PID)
//! keeps every other p1sim off it: the state is replaced by rename on every save, so the lock
//! cannot sit on the state file itself.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use p1sim_core::input::{Limit, read_bounded};
use p1sim_core::meter::MeterState;
use p1sim_core::profile::Profile;

/// Reads a state file written by [`save`]; `Ok(None)` when it does not exist yet. A state from
/// another profile or seed is refused, since resuming it would splice two different meters, and
/// so is one that fails the checks of the meter model.
pub fn load(path: &Path, profile: &Profile, seed: u64) -> Result<Option<MeterState>> {
    let bytes = match read_bounded(path, Limit::new("state file", Limit::STATE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read the state file {}", path.display())),
    };
    let state: MeterState = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a p1sim meter state file (delete it to start afresh)", path.display()))?;
    if state.profile != profile.name || state.seed != seed {
        bail!(
            "{} holds the meter of profile {:?} with seed {}, not {:?} with seed {seed}; \
             use another --state file or the same profile and seed",
            path.display(),
            state.profile,
            state.seed,
            profile.name
        );
    }
    state.check(profile).with_context(|| {
        format!("{} cannot be resumed (delete it to start afresh, or restore a backup)", path.display())
    })?;
    Ok(Some(state))
}

/// Writes the state atomically: a temporary file beside it, flushed to disk, renamed over the
/// old one, and the directory synced so the rename itself survives a power cut. On failure the
/// old file is untouched and the temporary one removed.
pub fn save(path: &Path, state: &MeterState) -> Result<()> {
    let dir = parent(path);
    let tmp = sidecar(path, "tmp")?;
    let json = serde_json::to_vec_pretty(state)?;
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write()
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
        .with_context(|| format!("cannot save the meter state to {}", path.display()))
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `dir/.NAME.EXT` beside `dir/NAME`.
fn sidecar(path: &Path, ext: &str) -> Result<PathBuf> {
    let name = path.file_name().context("the state path has no file name")?.to_string_lossy();
    Ok(parent(path).join(format!(".{name}.{ext}")))
}

/// The exclusive hold of one state file, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock of the state file at `path`, or says which process holds it.
    pub fn acquire(path: &Path) -> Result<StateLock> {
        if let Ok(m) = fs::metadata(path)
            && !m.is_file()
        {
            bail!(
                "{} is not a regular file; a state file is one p1sim writes (give a new path to start afresh)",
                path.display()
            );
        }
        let lock_path = sidecar(path, "lock")?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot create the lock file {} for the state", lock_path.display()))?;
        if let Err(e) = file.try_lock() {
            if let TryLockError::WouldBlock = e {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() { "another process".to_string() } else { format!("PID {holder}") };
                bail!(
                    "{} is in use by {who} (another p1sim run or emit on the same meter); \
                     two runs on one state file would send the meter's counters back and forth. \
                     Stop it, or give this run another --state file",
                    path.display()
                );
            }
            return Err(std::io::Error::from(e)).with_context(|| format!("cannot lock {}", lock_path.display()));
        }
        // Ours now: say who holds it, for the next one who tries.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(StateLock { _file: file, path: path.to_path_buf() })
    }

    /// The state file this lock holds.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use p1sim_core::meter::Meter;

    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("p1sim-state-unit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_second_holder_is_refused_with_the_pid_of_the_first() {
        let d = dir("lock");
        let path = d.join("meter.json");
        let first = StateLock::acquire(&path).unwrap();
        let e = format!("{:#}", StateLock::acquire(&path).unwrap_err());
        assert!(e.contains(&format!("PID {}", std::process::id())) && e.contains("meter.json"), "{e}");
        drop(first);
        StateLock::acquire(&path).expect("free again once the holder is gone");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failed_save_leaves_the_old_state_and_no_temporary_file() {
        let d = dir("failed-save");
        let path = d.join("meter.json");
        let profile = p1sim_core::builtin::lookup("iskra-am550").unwrap();
        let meter = Meter::new(&profile, profile.household.clone(), 1, 1_770_000_000);
        save(&path, meter.state()).unwrap();
        // Make the temporary file's name a directory: the save fails before the rename.
        let tmp = sidecar(&path, "tmp").unwrap();
        fs::create_dir_all(tmp.join("blocker")).unwrap();
        let mut later = meter.state().clone();
        later.now += 10;
        assert!(save(&path, &later).is_err());
        assert_eq!(load(&path, &profile, 1).unwrap().unwrap().now, meter.state().now);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn states_that_would_panic_or_hang_the_meter_are_refused_by_field() {
        let d = dir("checks");
        let path = d.join("meter.json");
        let profile = p1sim_core::builtin::lookup("iskra-am550").unwrap();
        let meter = Meter::new(&profile, profile.household.clone(), 1, 1_770_000_000);
        let good = serde_json::to_value(meter.state()).unwrap();
        let cases: [(&str, serde_json::Value, &str); 6] = [
            ("/mbus", serde_json::json!([]), "mbus"),
            ("/overrides/tariff", serde_json::json!(9), "overrides.tariff"),
            ("/version", serde_json::json!(3), "version"),
            ("/outage_until", serde_json::json!(i64::MAX), "outage_until"),
            ("/overrides/load_w", serde_json::json!(u32::MAX), "overrides.load_w"),
            ("/text_message", serde_json::json!("x".repeat(2000)), "text_message"),
        ];
        for (pointer, value, field) in cases {
            let mut bad = good.clone();
            *bad.pointer_mut(pointer).unwrap() = value;
            if pointer == "/outage_until" {
                bad["outage_since"] = serde_json::json!(1_770_000_000);
            }
            fs::write(&path, serde_json::to_vec(&bad).unwrap()).unwrap();
            let e = format!("{:#}", load(&path, &profile, 1).unwrap_err());
            assert!(e.contains(&format!("field `{field}`")), "{pointer}: {e}");
        }
        let _ = fs::remove_dir_all(&d);
    }
}
