//! The data path: telegrams of the plan's meters back to back through the board, at the meters'
//! own line settings (115200 8N1), or at 9600 7E1 for DSMR 2.2/3 meters (the legacy phase).
//! Byte errors, receiver flags and lost telegrams are counted, and the bit error rate bounded.

use anyhow::Result;
use p1sim_core::rig::FaultPlan;
use p1sim_core::{Framing, LineSettings};

use super::{Ctx, Found, Telegrams, request_low_skip};
use crate::bench::compare::{Compared, compare};
use crate::bench::diagnose::LineFacts;
use crate::bench::measure::{Measurement, show};
use crate::bench::station::P1_LINE;
use crate::bench::stats::{CONFIDENCE, ber_upper};

/// Which data phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Data,
    Legacy,
}

/// Telegrams all lost at the start after which a phase gives up: a board that loses the first
/// five loses the rest, and a real rig would otherwise spend the whole byte budget proving it.
const GIVE_UP_AFTER: u64 = 5;

pub fn run(
    ctx: &mut Ctx<'_>,
    name: &str,
    which: Which,
    budget: u64,
    max_byte_errors: u64,
    max_ber: Option<f64>,
) -> Result<Found> {
    let (line, profiles) = match which {
        Which::Data => (P1_LINE, &ctx.plan.profiles),
        Which::Legacy => {
            if !ctx.plan.legacy {
                return Ok(Found::skip(
                    "the plan does not cover DSMR 2.2/3 meters (9600 7E1); give --legacy or set legacy = true",
                ));
            }
            (LineSettings { baud: 9600, framing: Framing::SEVEN_E1 }, &ctx.plan.legacy_profiles)
        }
    };
    let st = &mut *ctx.station;
    st.configure(line, 8)?;
    if !st.request_high() {
        return Ok(request_low_skip());
    }
    let mut source = Telegrams::new(profiles, ctx.plan.seed)?;
    let mut total = Compared::default();
    let (mut telegrams, mut lost, mut bytes, mut chars_got, mut drops) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut gave_up = false;
    while bytes < budget {
        let t = source.next_telegram();
        let ex = st.exchange(&t, FaultPlan::default(), None)?;
        let c = compare(&t[..ex.sent.min(t.len())], &ex.got);
        telegrams += 1;
        bytes += ex.sent as u64;
        chars_got += ex.got.len() as u64;
        drops += ex.request_edges.iter().filter(|h| !**h).count() as u64;
        if !c.intact() || ex.sent < t.len() {
            lost += 1;
        }
        total.add(c);
        if lost == telegrams && telegrams >= GIVE_UP_AFTER {
            gave_up = true;
            break;
        }
    }
    let bits = bytes * u64::from(line.framing.bits_per_char());
    let errors = total.byte_errors.max(total.flags());
    let mut found = Found::default();
    let m = &mut found.measurements;
    m.push(Measurement::info("telegrams", telegrams as f64, None));
    m.push(Measurement::info("bytes", bytes as f64, Some("B")));
    m.push(Measurement::info("telegrams-lost", lost as f64, None));
    let limit = Some(max_byte_errors as f64);
    m.push(Measurement::limited("byte-errors", total.byte_errors as f64, None, Some(0.0), limit));
    m.push(Measurement::limited("framing-errors", total.framing as f64, None, Some(0.0), limit));
    m.push(Measurement::limited("parity-errors", total.parity as f64, None, Some(0.0), limit));
    m.push(Measurement::limited("breaks", total.breaks as f64, None, Some(0.0), limit));
    m.push(Measurement::limited("request-drops", drops as f64, None, Some(0.0), Some(0.0)));
    let ber = if bits == 0 { 1.0 } else { errors as f64 / bits as f64 };
    m.push(Measurement::info("ber", ber, None));
    let upper = ber_upper(errors, bits, CONFIDENCE);
    match max_ber {
        Some(max) => m.push(
            Measurement::limited("ber-upper-95", upper, None, None, Some(max))
                .with_note(format!("bit error rate bound at {:.0} % confidence over {bits} bits", CONFIDENCE * 100.0)),
        ),
        None => m.push(Measurement::info("ber-upper-95", upper, None)),
    }
    if st.capture_lost > 0 {
        anyhow::bail!(
            "the rig lost {} captured characters (its capture queue overflowed): the counts are not the board's",
            st.capture_lost
        );
    }
    found.evidence.push(format!(
        "{telegrams} telegrams ({bytes} bytes) at {line}: {lost} lost, {} byte errors, {} framing, {} parity, {} breaks; \
         bit error rate below {} at 95 % confidence",
        total.byte_errors,
        total.framing,
        total.parity,
        total.breaks,
        show(upper)
    ));
    if gave_up {
        found.note = Some(format!("stopped after the first {GIVE_UP_AFTER} telegrams were all lost"));
    }
    ctx.facts.request_drops += drops;
    let passed = found.measurements.iter().all(|m| m.outcome != crate::bench::measure::MeasOutcome::Fail);
    let facts = LineFacts {
        phase: name.to_string(),
        line: line.to_string(),
        telegrams,
        lost,
        bytes_sent: bytes,
        chars_got,
        byte_errors: total.byte_errors,
        framing: total.framing,
        parity: total.parity,
        breaks: total.breaks,
        passed,
    };
    match which {
        Which::Data => ctx.facts.data = Some(facts),
        Which::Legacy => ctx.facts.legacy = Some(facts),
    }
    Ok(found)
}
