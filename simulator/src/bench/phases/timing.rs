//! The timing margin: the meter's bit rate is swept away from nominal in both directions,
//! one telegram per step, until the board and the reader's UART stop receiving cleanly. The
//! window in between must cover the plan's limit: a meter's clock tolerance plus a reader's.

use anyhow::Result;
use p1sim_core::rig::FaultPlan;

use super::{Ctx, Found, Telegrams, request_low_skip};
use crate::bench::compare::compare;
use crate::bench::diagnose::{Limited, Seen};
use crate::bench::measure::{MeasOutcome, Measurement, show};
use crate::bench::station::P1_LINE;

/// The sweep a timing phase makes, in percent of the nominal bit rate.
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    pub from: f64,
    pub to: f64,
    pub step: f64,
    pub limit: f64,
    pub marginal: Option<f64>,
}

pub fn run(ctx: &mut Ctx<'_>, name: &str, sweep: Sweep) -> Result<Found> {
    let st = &mut *ctx.station;
    // 16 slots per bit: the rig places each edge within 1/16 bit of where the skewed clock puts
    // it, finer than the 1/8 that would blur the window's edges.
    st.configure(P1_LINE, 16)?;
    if !st.request_high() {
        return Ok(request_low_skip());
    }
    let mut source = Telegrams::new(&ctx.plan.profiles, ctx.plan.seed)?;
    let mut points: Vec<(f64, bool, u64)> = Vec::new();
    let mut probe = |percent: f64| -> Result<bool> {
        let t = source.next_telegram();
        let plan = FaultPlan { skew_ppm: (percent * 10_000.0).round() as i32, ..FaultPlan::default() };
        let ex = st.exchange(&t, plan, None)?;
        let c = compare(&t, &ex.got);
        let clean = c.intact() && ex.sent == t.len();
        points.push((percent, clean, c.byte_errors.max(c.flags())));
        Ok(clean)
    };
    // Outwards from nominal, each way until the first failure: the window is what is clean
    // without a gap around 0.
    let mut window = None;
    if probe(0.0)? {
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        let mut k = 1.0;
        while -k * sweep.step >= sweep.from - 1e-9 {
            if !probe(-k * sweep.step)? {
                break;
            }
            lo = -k * sweep.step;
            k += 1.0;
        }
        k = 1.0;
        while k * sweep.step <= sweep.to + 1e-9 {
            if !probe(k * sweep.step)? {
                break;
            }
            hi = k * sweep.step;
            k += 1.0;
        }
        window = Some((lo, hi));
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut found = Found::default();
    let (lo, hi) = window.unwrap_or((f64::NAN, f64::NAN));
    let m = &mut found.measurements;
    m.push(
        Measurement::limited("window-low-percent", lo, Some("%"), None, Some(-sweep.limit))
            .marginal(None, sweep.marginal.map(|x| -x)),
    );
    m.push(
        Measurement::limited("window-high-percent", hi, Some("%"), Some(sweep.limit), None)
            .marginal(sweep.marginal, None),
    );
    if window.is_some() {
        m.push(Measurement::info("window-width-percent", hi - lo, Some("%")));
    }
    found.evidence.push(format!(
        "bit-rate sweep at {P1_LINE}: {}",
        points
            .iter()
            .map(|(p, clean, e)| if *clean {
                format!("{}% clean", show(*p))
            } else {
                format!("{}% {e} errors", show(*p))
            })
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let passed = found.measurements.iter().all(|m| m.outcome != MeasOutcome::Fail);
    ctx.facts.timing =
        Some(Seen { phase: name.to_string(), passed, value: Limited { value: window, limit: sweep.limit } });
    Ok(found)
}
