//! Offline emission: a meter's telegrams for a count or a span of simulated time, into a writer.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use p1sim_core::decode::DEFAULT_MAX_LEN;
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
    /// Set (by a signal handler) to stop after the telegram being written.
    pub stop: Option<Arc<AtomicBool>>,
}

/// The result of an emission: how many telegrams, the meter's state after the last one rendered,
/// and why it ended. Whatever the end, `state` is at or after every telegram written, so saving
/// it never sends a counter back.
#[derive(Debug)]
pub struct Emission {
    pub count: u64,
    pub state: MeterState,
    pub end: End,
}

/// Why an emission ended.
#[derive(Debug)]
pub enum End {
    /// The count or span is done.
    Done,
    /// Stopped by [`EmitPlan::stop`].
    Interrupted,
    /// The writer failed (a closed pipe, a full disk) before telegram `count`.
    WriteFailed(std::io::Error),
    /// The Smarty frame counter is used up: another frame would reuse an AES-GCM nonce.
    FrameCounterExhausted,
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
            let meter = Meter::resume(&plan.profile, plan.household.clone(), state.clone())?;
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
    let mut oversize = 0u64;
    let end = loop {
        if let Until::Count(n) = plan.until
            && written >= n
        {
            break End::Done;
        }
        if plan.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            break End::Interrupted;
        }
        if generator.frame_counter_exhausted() {
            break End::FrameCounterExhausted;
        }
        let at = generator.advance();
        // A power failure can swallow telegrams; a span ends at its end regardless.
        if let Until::Span(s) = plan.until
            && at >= first.saturating_add_unsigned(s)
        {
            break End::Done;
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
        if buf.len() > DEFAULT_MAX_LEN {
            if oversize == 0 {
                eprintln!(
                    "p1sim emit: warning: telegram {} is {} bytes, over the 64 KiB a decoder buffers (p1sim's own \
                     included): readers drop it",
                    written + 1,
                    buf.len()
                );
            }
            oversize += 1;
        }
        if let Err(e) = w.write_all(&buf) {
            // The state includes the telegram that failed: saving it moves the counters on,
            // never back, whatever part of it the reader got.
            return Ok(Emission { count: written, state: generator.meter().state().clone(), end: End::WriteFailed(e) });
        }
        written += 1;
    };
    if oversize > 1 {
        eprintln!("p1sim emit: warning: {oversize} telegrams were over the 64 KiB decoder limit");
    }
    Ok(Emission { count: written, state: generator.meter().state().clone(), end })
}
