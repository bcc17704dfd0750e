//! Signal integrity: glitches of a set width on the line, spread over each telegram and placed
//! at a seeded position inside each character's frame, alternately pulling the line to mark and
//! letting it to space. A board with the reference receiver (the rig's capture input, or the
//! twin's model of it) must not turn them into errors: it takes each bit's majority of three
//! samples 1/8 bit apart, so a glitch of 1/16 bit changes one sample at most, unless the board
//! stretches it.

use anyhow::Result;
use p1sim_core::rig::{Fault, FaultPlan};
use p1sim_core::wire::BitSpan;

use super::{Ctx, Found, Telegrams, request_low_skip};
use crate::bench::compare::{Compared, compare};
use crate::bench::diagnose::Seen;
use crate::bench::measure::{MeasOutcome, Measurement, show};
use crate::bench::station::P1_LINE;

/// Slots per bit the rig needs to place glitches of the plan's width: one slot is the shortest
/// glitch it makes, and it takes at most 16 slots per bit.
fn oversampling_for(glitch_bits: f64) -> u8 {
    let slots = (1.0 / glitch_bits.max(1.0 / 16.0)).ceil() as u8;
    slots.clamp(8, p1sim_core::rig::MAX_OVERSAMPLING)
}

pub fn run(ctx: &mut Ctx<'_>, name: &str, telegrams: u32, glitches: u32, glitch_bits: f64) -> Result<Found> {
    let st = &mut *ctx.station;
    st.configure(P1_LINE, oversampling_for(glitch_bits))?;
    if !st.request_high() {
        return Ok(request_low_skip());
    }
    let mut source = Telegrams::new(&ctx.plan.profiles, ctx.plan.seed)?;
    let width = BitSpan::from_bits_f64(glitch_bits).unwrap_or(BitSpan(16));
    let frame_bits = P1_LINE.framing.bits_per_char();
    let mut rng = ctx.plan.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut total = Compared::default();
    let mut placed = 0u64;
    for _ in 0..telegrams {
        let t = source.next_telegram();
        let n = glitches.min(t.len() as u32).max(1);
        let mut plan = FaultPlan::default();
        for j in 0..n {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let char = ((u64::from(j) * 2 + 1) * t.len() as u64 / (2 * u64::from(n))) as u32;
            // Anywhere in the frame that leaves the whole glitch inside it.
            let room = (frame_bits * 256).saturating_sub(width.0).max(1);
            let at = (rng % u64::from(room)) as u32;
            let mark = j % 2 == 0;
            if plan.faults.push(Fault::Glitch { char, at, width: width.0, mark }).is_err() {
                break;
            }
            placed += 1;
        }
        let ex = st.exchange(&t, plan, None)?;
        total.add(compare(&t, &ex.got));
    }
    let mut found = Found::default();
    found.measurements.push(Measurement::info("glitches", placed as f64, None));
    found.measurements.push(Measurement::limited("byte-errors", total.byte_errors as f64, None, Some(0.0), Some(0.0)));
    found.measurements.push(Measurement::limited(
        "flagged-characters",
        total.flags() as f64,
        None,
        Some(0.0),
        Some(0.0),
    ));
    found.evidence.push(format!(
        "{placed} glitches of {} bit in {telegrams} telegrams at {P1_LINE}: {} byte errors, {} flagged characters",
        show(glitch_bits),
        total.byte_errors,
        total.flags()
    ));
    let passed = found.measurements.iter().all(|m| m.outcome != MeasOutcome::Fail);
    ctx.facts.integrity = Some(Seen { phase: name.to_string(), passed, value: total.byte_errors.max(total.flags()) });
    Ok(found)
}
