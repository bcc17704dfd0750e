//! The bench station (`p1sim bench`): a test plan run against a P1 interface board, on a rig or
//! as a virtual twin, giving a record with measurements against limits, an outcome and a
//! diagnosis.
//!
//! ```text
//!  Plan (phases) ──► phases::run ──► Station ──► Rig client ──► rig (USB) or in-memory rig + board model
//!        │                │                         ▲
//!        │                ▼                         └─ readback: capture input, or --read PORT
//!        │            Facts ──► diagnose ──► Diagnosis
//!        └──────────────────────────────────────────► Record ──► JSON, JUnit, terminal
//! ```
//!
//! - [`plan`]: plans in TOML and the built-in standard plan.
//! - [`station`]: the board under test as the phases drive it; [`readback`]: a USB-UART the
//!   board feeds, and Request from its modem line.
//! - [`phases`]: one module per phase kind.
//! - [`measure`], [`compare`], [`stats`]: measurements with limits, byte errors, the bit error
//!   rate bound.
//! - [`diagnose`]: the likely cause, its evidence and the fix.
//! - [`record`], [`report`]: the record as JSON, JUnit and text; [`operator`]: the production
//!   loop and its tally.

pub mod compare;
pub mod diagnose;
pub mod measure;
pub mod operator;
pub mod phases;
pub mod plan;
pub mod readback;
pub mod record;
pub mod report;
pub mod station;
pub mod stats;

use std::time::Instant;

use diagnose::{Facts, diagnose};
use measure::Outcome;
use plan::Plan;
use record::{DutInfo, PhaseRecord, PlanInfo, Record, SCHEMA_VERSION};
use station::{Dut, Readback, Station};

/// Who is testing what, besides the plan.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub serial_number: String,
    pub station_id: String,
}

/// Runs every phase of `plan` against the station, telling `progress` as phases start and end,
/// and returns the record.
pub fn run(station: &mut Station, plan: &Plan, info: &RunInfo, progress: &mut dyn FnMut(Progress<'_>)) -> Record {
    let start = jiff::Timestamp::now();
    let started = Instant::now();
    station.begin_run();
    let mut facts = Facts { readback_port: matches!(station.readback(), Readback::Port(_)), ..Facts::default() };
    let mut phases = Vec::with_capacity(plan.phases.len());
    for (i, phase) in plan.phases.iter().enumerate() {
        progress(Progress::Started { index: i, total: plan.phases.len(), name: &phase.name });
        let mut ctx = phases::Ctx { station: &mut *station, plan, facts: &mut facts };
        let done = phases::run(&mut ctx, phase);
        progress(Progress::Done { index: i, total: plan.phases.len(), phase: &done });
        phases.push(done);
    }
    // Leave the line idle for whatever comes next.
    station.cancel();
    let outcome = run_outcome(&phases);
    let diagnosis = diagnose(&facts, outcome == Outcome::Pass);
    let end = jiff::Timestamp::now();
    let dut = match station.dut() {
        Dut::Rig { device, .. } => DutInfo {
            kind: "rig",
            device: Some(device.clone()),
            board: None,
            readback: readback_name(station.readback()),
            request_via: None,
        },
        Dut::Twin { board } => DutInfo {
            kind: "twin",
            device: None,
            board: Some(board.name.clone()),
            readback: readback_name(station.readback()),
            request_via: None,
        },
    };
    Record {
        schema_version: SCHEMA_VERSION,
        serial_number: info.serial_number.clone(),
        station_id: info.station_id.clone(),
        plan: PlanInfo { name: plan.name.clone(), description: plan.description.clone(), legacy: plan.legacy },
        dut: DutInfo { request_via: station.request_via().map(|v| v.name().to_lowercase()), ..dut },
        start: start.to_string(),
        end: end.to_string(),
        duration_s: started.elapsed().as_secs_f64(),
        p1sim_version: env!("CARGO_PKG_VERSION").to_string(),
        rig_firmware: station.firmware(),
        outcome,
        marginal: phases.iter().flat_map(|p| &p.measurements).any(|m| m.marginal),
        phases,
        diagnosis,
    }
}

/// A run's outcome: ERROR if a phase could not be carried out, FAIL if one failed, else PASS.
fn run_outcome(phases: &[PhaseRecord]) -> Outcome {
    if phases.iter().any(|p| p.outcome == Outcome::Error) {
        Outcome::Error
    } else if phases.iter().any(|p| p.outcome == Outcome::Fail) {
        Outcome::Fail
    } else {
        Outcome::Pass
    }
}

fn readback_name(r: &Readback) -> String {
    match r {
        Readback::Capture => "capture".into(),
        Readback::Port(p) => p.clone(),
    }
}

/// What a run reports while it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    Started { index: usize, total: usize, name: &'a str },
    Done { index: usize, total: usize, phase: &'a PhaseRecord },
}
