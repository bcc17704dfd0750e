//! The record of one board's run, the product of the bench: who and what was tested where and
//! when, every phase with its measurements and limits, the outcome and the diagnosis. Written as
//! JSON (`schema_version` 1, described by `docs/bench-record.schema.json`), one file per run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::diagnose::Diagnosis;
use super::measure::{Measurement, Outcome};

/// Bumped on any incompatible change to the record's layout.
pub const SCHEMA_VERSION: u32 = 1;

/// One run of a plan against one board.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub schema_version: u32,
    pub serial_number: String,
    pub station_id: String,
    pub plan: PlanInfo,
    pub dut: DutInfo,
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    pub p1sim_version: String,
    /// The rig's firmware version, or "virtual" for a twin.
    pub rig_firmware: String,
    pub outcome: Outcome,
    /// Some measurement passed inside its marginal band.
    pub marginal: bool,
    pub phases: Vec<PhaseRecord>,
    pub diagnosis: Diagnosis,
}

/// The plan a run followed.
#[derive(Debug, Clone, Serialize)]
pub struct PlanInfo {
    pub name: String,
    pub description: String,
    /// Whether the legacy (DSMR 2.2/3, 9600 7E1) phase was part of it.
    pub legacy: bool,
}

/// What was under test and how it was wired.
#[derive(Debug, Clone, Serialize)]
pub struct DutInfo {
    /// "rig" for a real board, "twin" for a virtual one.
    pub kind: &'static str,
    /// The rig's serial device (real boards).
    pub device: Option<String>,
    /// The board model (twins).
    pub board: Option<String>,
    /// Where the board's output was read: "capture" (the rig's input) or the USB-UART's path.
    pub readback: String,
    /// The reader's modem line driving Request, if any ("rts", "dtr").
    pub request_via: Option<String>,
}

/// One phase as it ran.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseRecord {
    pub name: String,
    pub kind: &'static str,
    pub outcome: Outcome,
    pub duration_s: f64,
    pub measurements: Vec<Measurement>,
    /// Why it was skipped or could not run, or what it did.
    pub note: Option<String>,
    /// What was seen, in words, for the diagnosis and the operator.
    pub evidence: Vec<String>,
}

impl Record {
    /// The record as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("the record serializes");
        s.push('\n');
        s
    }

    /// Writes the record into `dir` as `SERIAL-START.json` (the start as `20261206T153000Z`),
    /// creating the directory; returns the path.
    pub fn write_into(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the report directory {}", dir.display()))?;
        let path = dir.join(format!("{}-{}.json", file_safe(&self.serial_number), compact_time(&self.start)));
        write_atomically(&path, self.to_json().as_bytes())?;
        Ok(path)
    }

    /// Measurements that failed, with their phase.
    pub fn failures(&self) -> impl Iterator<Item = (&PhaseRecord, &Measurement)> {
        self.phases.iter().flat_map(|p| {
            p.measurements.iter().filter(|m| m.outcome == super::measure::MeasOutcome::Fail).map(move |m| (p, m))
        })
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a record is whole or
/// absent, never half written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// A serial number as a file name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
pub fn file_safe(serial: &str) -> String {
    let s: String = serial
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with('.') { format!("_{s}") } else { s }
}

/// `2026-12-06T15:30:00.123Z` as `20261206T153000Z`.
fn compact_time(rfc3339: &str) -> String {
    let digits_and_t: String = rfc3339.chars().take(19).filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    format!("{digits_and_t}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_sortable() {
        assert_eq!(file_safe("SN-0042"), "SN-0042");
        assert_eq!(file_safe("../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_safe("a b/c"), "a_b_c");
        assert_eq!(file_safe(""), "_");
        assert_eq!(compact_time("2026-12-06T15:30:00.123Z"), "20261206T153000Z");
    }
}
