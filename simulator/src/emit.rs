//! Offline emission: a meter's telegrams for a count or a span of simulated time, into a writer.

use std::io::Write;

use anyhow::{Context, Result};
use p1sim_core::fault::scenario::Scenario;
use p1sim_core::fault::{Applied, Expect};
use p1sim_core::generator::Generator;
use p1sim_core::household::HouseholdConfig;
use p1sim_core::meter::{Command, Meter, MeterState};
use p1sim_core::profile::Profile;

/// When to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// After this many telegrams.
    Count(u64),
    /// After every telegram due within this many seconds from the first.
    Span(u64),
}

/// Everything that determines the output; equal plans give equal bytes.
#[derive(Debug, Clone)]
pub struct EmitPlan {
    pub profile: Profile,
    pub household: HouseholdConfig,
    pub seed: u64,
    pub start: i64,
    pub key: Option<[u8; 16]>,
    pub until: Until,
    /// Faults applied between rendering and output.
    pub faults: Option<Scenario>,
    /// Scripted household events (instant, command).
    pub events: Vec<(i64, Command)>,
    /// Continue this saved meter instead of starting a new one at `start`.
    pub resume: Option<MeterState>,
}

/// The result of an emission: how many telegrams, and the meter's state after the last one.
#[derive(Debug, Clone)]
pub struct Emission {
    pub count: u64,
    pub state: MeterState,
}

/// What the faults did to one telegram, for `--fault-log`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultRecord {
    pub index: u64,
    pub at: i64,
    pub expect: Expect,
    pub applied: Vec<Applied>,
}

/// Writes the plan's telegrams; returns how many were written. `on_fault` hears about every
/// telegram the scenario touched.
pub fn emit(plan: &EmitPlan, w: &mut impl Write, mut on_fault: impl FnMut(FaultRecord)) -> Result<Emission> {
    let mut generator = match &plan.resume {
        Some(state) => {
            let meter = Meter::resume(&plan.profile, plan.household.clone(), state.clone());
            let mut g = Generator::from_meter(plan.profile.clone(), meter, plan.key, state.now)?;
            // The saved instant had its telegram already: continue with the next boundary.
            g.skip_to(state.now + 1);
            g
        }
        None => Generator::new(plan.profile.clone(), plan.household.clone(), plan.seed, plan.start, plan.key)?,
    };
    generator.meter_mut().script(plan.events.clone());
    let first = generator.next_at();
    let mut buf = Vec::with_capacity(4096);
    let mut written = 0;
    loop {
        if let Until::Count(n) = plan.until {
            if written >= n {
                break;
            }
        }
        let at = generator.advance();
        // A power failure can swallow telegrams; a span ends at its end regardless.
        if let Until::Span(s) = plan.until {
            if at >= first + s as i64 {
                break;
            }
        }
        let faults = plan.faults.as_ref().map(|s| s.selected(plan.seed, written, at)).unwrap_or_default();
        buf.clear();
        if faults.is_empty() {
            generator.render_current(&mut buf);
        } else {
            let f = generator.faulted_current(&faults, plan.seed, written);
            on_fault(FaultRecord { index: written, at, expect: f.expect(), applied: f.applied.clone() });
            buf = f.bytes;
        }
        w.write_all(&buf).context("cannot write the telegrams")?;
        written += 1;
    }
    Ok(Emission { count: written, state: generator.meter().state().clone() })
}
