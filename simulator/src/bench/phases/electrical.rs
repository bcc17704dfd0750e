//! The electrical phases, from the rig's measurements (a twin's come from its board model through
//! the same protocol): the data line's pull-up and rise time, the Request level, the supply
//! current and the board's output level, each against the limits of the P1 port.

use anyhow::Result;
use p1sim_core::rig::{Measured, Quantity};
use p1sim_core::wire::board::{LineSense, SenseCircuit};

use super::{Ctx, Found};
use crate::bench::diagnose::{Limited, PullUpFacts, Seen, SupplyFacts};
use crate::bench::measure::{MeasOutcome, Measurement, show};
use crate::bench::station::{P1_LINE, Readback, line_sense};

/// The rig's measurements, or why there are none (the phase is then skipped).
fn measured(ctx: &mut Ctx<'_>) -> Result<std::result::Result<Measured, Found>> {
    let window = ctx.plan.supply_window_ms();
    Ok(ctx.station.measured(window)?.map_err(Found::skip))
}

fn value(m: &Measured, q: Quantity) -> Option<f64> {
    m.get(q).and_then(|r| r.value).map(f64::from)
}

fn clamp_note(s: &LineSense) -> String {
    format!(
        "the released line sits at {} V, a transistor input's base level: the pull-up behind it cannot be measured \
         through the line",
        show(s.open_volts)
    )
}

fn passed(found: &Found) -> bool {
    found.measurements.iter().all(|m| m.outcome != MeasOutcome::Fail)
}

pub fn pull_up(ctx: &mut Ctx<'_>, name: &str, volts: (f64, f64), ohms: (f64, f64)) -> Result<Found> {
    let m = match measured(ctx)? {
        Ok(m) => m,
        Err(skip) => return Ok(skip),
    };
    let Some(s) = line_sense(&m) else { return Ok(Found::skip("the rig did not measure the data line")) };
    let circuit = SenseCircuit::from(m.circuit);
    let mut found = Found::default();
    let present = s.pulled_up();
    found.measurements.push(Measurement::flag("pull-up-present", present, true));
    let measured = s.pull_up_ohms(&circuit);
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
        show(circuit.known_load_ohms)
    ));
    let passed = passed(&found);
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
    let m = match measured(ctx)? {
        Ok(m) => m,
        Err(skip) => return Ok(skip),
    };
    let Some(s) = line_sense(&m) else { return Ok(Found::skip("the rig did not measure the data line")) };
    let threshold = f64::from(m.circuit.threshold_mv) / 1000.0;
    let bit_s = 1.0 / f64::from(P1_LINE.baud);
    let mut found = Found::default();
    let bits = s.rise_s.map(|r| r / bit_s);
    match s.rise_s {
        Some(r) => {
            found.measurements.push(
                Measurement::limited("rise-time-bits", r / bit_s, Some("bit"), None, Some(max_bits))
                    .marginal(None, marginal_bits)
                    .with_note(format!("release to {} V at {P1_LINE}", show(threshold))),
            );
            found.measurements.push(Measurement::info("rise-time-us", r * 1e6, Some("µs")));
            if let Some(fall) = value(&m, Quantity::Fall) {
                found.measurements.push(Measurement::info("fall-time-us", fall / 1000.0, Some("µs")));
            }
            found.evidence.push(format!(
                "the released line crosses {} V {} µs after the meter lets go: {} of a bit at {P1_LINE}",
                show(threshold),
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
                format!("the line rises to {} V, never to the {} V threshold", show(s.open_volts), show(threshold))
            };
            found.measurements.push(Measurement::unset("rise-time-bits", Some("bit"), why.clone()));
            found.note = Some(why);
        }
    }
    let passed = passed(&found);
    ctx.facts.rise = Some(Seen { phase: name.to_string(), passed, value: Limited { value: bits, limit: max_bits } });
    Ok(found)
}

pub fn request_level(ctx: &mut Ctx<'_>, name: &str, min_volts: f64, max_volts: f64) -> Result<Found> {
    let m = match measured(ctx)? {
        Ok(m) => m,
        Err(skip) => return Ok(skip),
    };
    let Some(mv) = value(&m, Quantity::Request) else { return Ok(Found::skip("the rig did not measure Request")) };
    let volts = mv / 1000.0;
    let mut found = Found::default();
    found.measurements.push(
        Measurement::limited("request-volts", volts, Some("V"), Some(min_volts), Some(max_volts))
            .with_note("under the rig's meter-like load (about 1 kΩ)"),
    );
    found.evidence.push(format!("Request (RJ12 pin 2) at {} V while the board reads", show(volts)));
    let passed = passed(&found);
    ctx.facts.request_level =
        Some(Seen { phase: name.to_string(), passed, value: Limited { value: volts, limit: min_volts } });
    Ok(found)
}

pub fn supply(ctx: &mut Ctx<'_>, name: &str, max_average_ma: f64, max_peak_ma: f64) -> Result<Found> {
    let m = match measured(ctx)? {
        Ok(m) => m,
        Err(skip) => return Ok(skip),
    };
    let (Some(avg), Some(peak)) = (value(&m, Quantity::SupplyAverage), value(&m, Quantity::SupplyPeak)) else {
        return Ok(Found::skip(
            "the rig has no current monitor on +5 V (an INA219 on its I2C bus measures this; see rig-firmware/README.md)",
        ));
    };
    let (avg, peak) = (avg / 1000.0, peak / 1000.0);
    let mut found = Found::default();
    found.measurements.push(Measurement::limited("supply-average-ma", avg, Some("mA"), None, Some(max_average_ma)));
    found.measurements.push(Measurement::limited("supply-peak-ma", peak, Some("mA"), None, Some(max_peak_ma)));
    if let Some(mv) = value(&m, Quantity::SupplyVoltage) {
        found.measurements.push(Measurement::info("supply-volts", mv / 1000.0, Some("V")));
    }
    found.evidence.push(format!(
        "the board draws {} mA on average, {} mA at its peak, from the port's +5 V (pin 1)",
        show(avg),
        show(peak)
    ));
    let passed = passed(&found);
    ctx.facts.supply = Some(Seen {
        phase: name.to_string(),
        passed,
        value: SupplyFacts { average_ma: avg, peak_ma: peak, max_average_ma, max_peak_ma },
    });
    Ok(found)
}

/// A 3.3 V CMOS input reads high from 0.7 x its supply; nothing may drive it above its supply
/// plus 0.3 V.
const VIH_FRACTION: f64 = 0.7;
const ABOVE_SUPPLY: f64 = 0.3;

/// Below this the rig's output sense reads nothing connected.
const NOTHING_VOLTS: f64 = 0.5;

pub fn output_level(ctx: &mut Ctx<'_>, name: &str, reader_volts: f64) -> Result<Found> {
    if let Readback::Port(path) = ctx.station.readback() {
        return Ok(Found::skip(format!(
            "the board's output is read back through {path}: its level is that adapter's to judge, not the rig's"
        )));
    }
    let m = match measured(ctx)? {
        Ok(m) => m,
        Err(skip) => return Ok(skip),
    };
    let Some(mv) = value(&m, Quantity::OutputHigh) else {
        return Ok(Found::skip("the rig did not measure the board's output"));
    };
    let volts = mv / 1000.0;
    if volts < NOTHING_VOLTS {
        return Ok(Found::skip(format!(
            "nothing drives the capture input ({} V): the board has no TTL output of its own (an adapter is its own \
             reader)",
            show(volts)
        )));
    }
    let (low, high) = (VIH_FRACTION * reader_volts, reader_volts + ABOVE_SUPPLY);
    let mut found = Found::default();
    found.measurements.push(
        Measurement::limited("output-high-volts", volts, Some("V"), Some(low), Some(high))
            .with_note(format!("for a {} V reader", show(reader_volts))),
    );
    found.evidence.push(format!(
        "the board's TTL output idles at {} V; a {} V reader takes {} to {} V",
        show(volts),
        show(reader_volts),
        show(low),
        show(high)
    ));
    let passed = passed(&found);
    ctx.facts.output_level =
        Some(Seen { phase: name.to_string(), passed, value: Limited { value: volts, limit: reader_volts } });
    Ok(found)
}
