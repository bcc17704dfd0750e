//! The data line's electrical phases, from what the rig's sense input reads (or, for a virtual
//! twin, what the board model says it would read): whether a pull-up lifts the released line,
//! to what level and through what resistance, and how fast it rises.

use anyhow::Result;
use p1sim_core::wire::board::LineSense;

use super::{Ctx, Found};
use crate::bench::diagnose::{Limited, PullUpFacts, Seen};
use crate::bench::measure::{MeasOutcome, Measurement, show};
use crate::bench::station::{P1_LINE, RIG_SENSE};

fn no_sense() -> Found {
    Found::skip(
        "this rig has no data-line sense input; one with it (rig-firmware/README.md) measures this, and so does the \
         virtual twin",
    )
}

fn clamp_note(s: &LineSense) -> String {
    format!(
        "the released line sits at {} V, a transistor input's base level: the pull-up behind it cannot be measured \
         through the line",
        show(s.open_volts)
    )
}

pub fn pull_up(ctx: &mut Ctx<'_>, name: &str, volts: (f64, f64), ohms: (f64, f64)) -> Result<Found> {
    let Some(s) = ctx.station.sense() else { return Ok(no_sense()) };
    let mut found = Found::default();
    let present = s.pulled_up();
    found.measurements.push(Measurement::flag("pull-up-present", present, true));
    let measured = s.pull_up_ohms(&RIG_SENSE);
    if present {
        found.measurements.push(Measurement::limited(
            "line-high-volts",
            s.open_volts,
            Some("V"),
            Some(volts.0),
            Some(volts.1),
        ));
        found.measurements.push(match measured {
            Some(r) => Measurement::limited("pull-up-ohms", r, Some("Ω"), Some(ohms.0), Some(ohms.1)),
            None => Measurement::unset("pull-up-ohms", Some("Ω"), clamp_note(&s)),
        });
    } else {
        found.measurements.push(Measurement::unset("line-high-volts", Some("V"), "the line is not pulled up"));
        found.measurements.push(Measurement::unset("pull-up-ohms", Some("Ω"), "the line is not pulled up"));
    }
    found.evidence.push(format!(
        "released line: {} V open, {} V with {} Ω switched in",
        show(s.open_volts),
        show(s.loaded_volts),
        show(RIG_SENSE.known_load_ohms)
    ));
    let passed = found.measurements.iter().all(|m| m.outcome != MeasOutcome::Fail);
    ctx.facts.pull_up = Some(PullUpFacts {
        phase: name.to_string(),
        present,
        open_volts: s.open_volts,
        ohms: measured,
        min_ohms: ohms.0,
        max_ohms: ohms.1,
        passed,
    });
    Ok(found)
}

pub fn rise_time(ctx: &mut Ctx<'_>, name: &str, max_bits: f64, marginal_bits: Option<f64>) -> Result<Found> {
    let Some(s) = ctx.station.sense() else { return Ok(no_sense()) };
    let bit_s = 1.0 / f64::from(P1_LINE.baud);
    let mut found = Found::default();
    let bits = s.rise_s.map(|r| r / bit_s);
    match s.rise_s {
        Some(r) => {
            found.measurements.push(
                Measurement::limited("rise-time-bits", r / bit_s, Some("bit"), None, Some(max_bits))
                    .marginal(None, marginal_bits)
                    .with_note(format!("release to {} V at {P1_LINE}", show(RIG_SENSE.threshold_volts))),
            );
            found.measurements.push(Measurement::info("rise-time-us", r * 1e6, Some("µs")));
            found.evidence.push(format!(
                "the released line crosses {} V {} µs after the meter lets go: {} of a bit at {P1_LINE}",
                show(RIG_SENSE.threshold_volts),
                show(r * 1e6),
                show(r / bit_s)
            ));
        }
        None => {
            let why = if !s.pulled_up() {
                "the line is not pulled up: it never rises".to_string()
            } else if s.clamped() {
                clamp_note(&s)
            } else {
                format!(
                    "the line rises to {} V, never to the {} V threshold",
                    show(s.open_volts),
                    show(RIG_SENSE.threshold_volts)
                )
            };
            found.measurements.push(Measurement::unset("rise-time-bits", Some("bit"), why.clone()));
            found.note = Some(why);
        }
    }
    let passed = found.measurements.iter().all(|m| m.outcome != MeasOutcome::Fail);
    ctx.facts.rise = Some(Seen { phase: name.to_string(), passed, value: Limited { value: bits, limit: max_bits } });
    Ok(found)
}
