//! The phases of a plan: each drives the station, measures, and records what it saw for the
//! diagnosis. One module per kind; [`run`] dispatches and turns an error into an ERROR phase.

mod cable;
mod data;
mod electrical;
mod gating;
mod integrity;
mod request;
mod timing;

use std::time::Instant;

use anyhow::{Context, Result};
use p1sim_core::generator::Generator;
use p1sim_core::profile::Profile;

use super::diagnose::Facts;
use super::measure::{Measurement, Outcome, phase_outcome};
use super::plan::{Kind, Phase, Plan};
use super::record::PhaseRecord;
use super::station::Station;

/// The key the bench encrypts Smarty telegrams with (any key does: the board carries bytes).
pub const BENCH_KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// The simulated clock's start for the bench's telegrams: 2026-01-15T11:00:00Z, so a plan sends
/// the same bytes every run.
const START: i64 = 1_768_474_800;

/// What a phase works with.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub station: &'a mut Station,
    pub plan: &'a Plan,
    pub facts: &'a mut Facts,
}

/// What a phase found.
#[derive(Debug, Default)]
pub struct Found {
    pub measurements: Vec<Measurement>,
    /// Set to skip the phase (the note says why) or to override the outcome.
    pub outcome: Option<Outcome>,
    pub note: Option<String>,
    pub evidence: Vec<String>,
}

impl Found {
    fn skip(why: impl Into<String>) -> Found {
        Found { outcome: Some(Outcome::Skip), note: Some(why.into()), ..Found::default() }
    }
}

/// Runs one phase of the plan.
pub fn run(ctx: &mut Ctx<'_>, phase: &Phase) -> PhaseRecord {
    let started = Instant::now();
    let result = match &phase.kind {
        Kind::Request { settle_ms, hold_ms } => request::run(ctx, &phase.name, *settle_ms, *hold_ms),
        Kind::Data { bytes, max_byte_errors, max_ber } => {
            data::run(ctx, &phase.name, data::Which::Data, *bytes, *max_byte_errors, *max_ber)
        }
        Kind::Legacy { bytes, max_byte_errors } => {
            data::run(ctx, &phase.name, data::Which::Legacy, *bytes, *max_byte_errors, None)
        }
        Kind::Timing { from_percent, to_percent, step_percent, limit_percent, marginal_percent } => {
            let sweep = timing::Sweep {
                from: *from_percent,
                to: *to_percent,
                step: *step_percent,
                limit: *limit_percent,
                marginal: *marginal_percent,
            };
            timing::run(ctx, &phase.name, sweep)
        }
        Kind::Integrity { telegrams, glitches, glitch_bits } => {
            integrity::run(ctx, &phase.name, *telegrams, *glitches, *glitch_bits)
        }
        Kind::Gating { cut_fraction } => gating::run(ctx, &phase.name, *cut_fraction),
        Kind::PullUp { min_volts, max_volts, min_ohms, max_ohms } => {
            electrical::pull_up(ctx, &phase.name, (*min_volts, *max_volts), (*min_ohms, *max_ohms))
        }
        Kind::RiseTime { max_bits, marginal_bits } => {
            electrical::rise_time(ctx, &phase.name, *max_bits, *marginal_bits)
        }
        Kind::RequestLevel { min_volts, max_volts } => {
            electrical::request_level(ctx, &phase.name, *min_volts, *max_volts)
        }
        Kind::Supply { max_average_ma, max_peak_ma, .. } => {
            electrical::supply(ctx, &phase.name, *max_average_ma, *max_peak_ma)
        }
        Kind::OutputLevel { reader_volts } => electrical::output_level(ctx, &phase.name, *reader_volts),
        Kind::Cable { min_m, marginal_m } => cable::run(ctx, &phase.name, *min_m, *marginal_m),
    };
    let (outcome, found) = match result {
        // Nothing measured at all: the phase did not happen, whatever it was meant to show.
        Ok(f)
            if f.outcome.is_none()
                && !f.measurements.is_empty()
                && f.measurements.iter().all(|m| m.outcome == super::measure::MeasOutcome::Unset) =>
        {
            (Outcome::Skip, f)
        }
        Ok(f) => (f.outcome.unwrap_or_else(|| phase_outcome(&f.measurements)), f),
        Err(e) => (Outcome::Error, Found { note: Some(format!("{e:#}")), ..Found::default() }),
    };
    PhaseRecord {
        name: phase.name.clone(),
        kind: phase.kind.name(),
        outcome,
        duration_s: started.elapsed().as_secs_f64(),
        measurements: found.measurements,
        note: found.note,
        evidence: found.evidence,
    }
}

/// Telegrams of a plan's meters, round robin, each meter stepping through its own intervals.
#[derive(Debug)]
pub struct Telegrams {
    meters: Vec<Generator>,
    next: usize,
}

impl Telegrams {
    pub fn new(profiles: &[Profile], seed: u64) -> Result<Telegrams> {
        let meters = profiles
            .iter()
            .map(|p| {
                Generator::new(p.clone(), p.household.clone(), seed, START, Some(BENCH_KEY))
                    .with_context(|| format!("profile {}", p.name))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Telegrams { meters, next: 0 })
    }

    /// The next telegram, as its meter puts it on the wire.
    pub fn next_telegram(&mut self) -> Vec<u8> {
        let i = self.next % self.meters.len();
        self.next += 1;
        let mut out = Vec::with_capacity(2048);
        self.meters[i].next_into(&mut out);
        out
    }
}

/// "Request is low" as a reason to skip a phase that needs the meter to send.
fn request_low_skip() -> Found {
    Found::skip("Request is low, so a meter sends nothing: see the request phase")
}
