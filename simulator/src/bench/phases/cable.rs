//! The longest cable the board passes on, found on its model: the cable is lengthened until a
//! telegram no longer arrives cleanly at the nominal bit rate and at the timing limits. Only a
//! virtual twin can do this; a real board has the cable it has.

use anyhow::Result;
use p1sim_core::spec::LineSettings;
use p1sim_core::wire::board::Board;
use p1sim_core::wire::{FaultPlan, ReceiverConfig};

use super::{Ctx, Found, Telegrams};
use crate::bench::diagnose::{Limited, Seen};
use crate::bench::measure::{MeasOutcome, Measurement, show};
use crate::bench::plan::Kind;
use crate::bench::station::P1_LINE;
use crate::wire::{Pipeline, Setup, char_ps};

/// Longest cable tried, and the resolution of the answer.
const MAX_M: f64 = 1000.0;
const RESOLUTION_M: f64 = 0.5;

pub fn run(ctx: &mut Ctx<'_>, name: &str, min_m: f64, marginal_m: Option<f64>) -> Result<Found> {
    let Some(board) = ctx.station.twin_board().cloned() else {
        return Ok(Found::skip("only a virtual twin's cable can be lengthened; a real board has the cable it has"));
    };
    let limit = ctx
        .plan
        .phases
        .iter()
        .find_map(|p| match p.kind {
            Kind::Timing { limit_percent, .. } => Some(limit_percent),
            _ => None,
        })
        .unwrap_or(2.5);
    let t = Telegrams::new(&ctx.plan.profiles, ctx.plan.seed)?.next_telegram();
    let passes = |m: f64| -> Result<bool> {
        let b = Board { cable_m: m, ..board.clone() };
        for skew in [0.0, -limit, limit] {
            if !clean(&b, &t, (skew * 10_000.0).round() as i32)? {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let longest = if !passes(0.0)? {
        0.0
    } else {
        // Double until it fails, then halve the gap.
        let (mut good, mut bad) = (0.0, 1.0);
        while bad <= MAX_M && passes(bad)? {
            good = bad;
            bad *= 2.0;
        }
        if bad > MAX_M {
            good = MAX_M;
        } else {
            while bad - good > RESOLUTION_M {
                let mid = (good + bad) / 2.0;
                if passes(mid)? { good = mid } else { bad = mid }
            }
        }
        good
    };
    let mut found = Found::default();
    found
        .measurements
        .push(Measurement::limited("max-cable-m", longest, Some("m"), Some(min_m), None).marginal(marginal_m, None));
    found.evidence.push(format!(
        "on its model the board passes up to {} m of cable at {P1_LINE} (nominal and ±{}% bit rate)",
        show(longest),
        show(limit)
    ));
    let passed = found.measurements.iter().all(|m| m.outcome != MeasOutcome::Fail);
    ctx.facts.cable = Some(Seen { phase: name.to_string(), passed, value: Limited { value: longest, limit: min_m } });
    Ok(found)
}

/// One telegram through `board` at `skew_ppm` arrives exactly, without a flag.
fn clean(board: &Board, telegram: &[u8], skew_ppm: i32) -> Result<bool> {
    let line: LineSettings = P1_LINE;
    let plan = FaultPlan { skew_ppm, ..FaultPlan::CLEAN };
    let setup = Setup { line, plan, board: Some(board.clone()), receiver: ReceiverConfig::new(line) };
    let mut pipe = Pipeline::new(setup, false)?;
    let mut got = Vec::with_capacity(telegram.len());
    let mut flagged = false;
    let mut take = |c: p1sim_core::wire::RxChar| {
        flagged |= !c.is_clean();
        got.push(c.byte);
    };
    pipe.send_at(10 * char_ps(line), telegram, &mut take);
    pipe.finish(10 * char_ps(line), &mut take);
    Ok(!flagged && got == telegram)
}
