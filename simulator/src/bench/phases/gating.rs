//! Request gating: the meter stops mid-telegram when Request drops, and starts a fresh
//! telegram when it rises again (DSMR P1 Companion Standard 5.0.2 §5.7.1). The board must pass
//! that on: its output stops within one character of the line, nothing comes while Request is
//! low, and the next telegram arrives whole.
//!
//! Where the bench drives Request (the reader's modem line, or the twin's reader) it drops it
//! for real. Where the board ties Request high nothing can drop it, so the meter's stop is sent
//! as what it leaves on the line: the telegram's first part, then idle.

use std::time::Duration;

use anyhow::Result;
use p1sim_core::rig::FaultPlan;

use super::{Ctx, Found, Telegrams, request_low_skip};
use crate::bench::compare::compare;
use crate::bench::diagnose::Seen;
use crate::bench::measure::{MeasOutcome, Measurement};
use crate::bench::station::P1_LINE;

pub fn run(ctx: &mut Ctx<'_>, name: &str, cut_fraction: f64) -> Result<Found> {
    let st = &mut *ctx.station;
    st.configure(P1_LINE, 8)?;
    let drives = st.can_drive_request();
    if drives {
        st.drive_request(true)?;
        st.wait_request(true, Duration::from_millis(500));
    }
    if !st.request_high() {
        return Ok(request_low_skip());
    }
    // The longest of a few telegrams, so the cut falls well inside one.
    let mut source = Telegrams::new(&ctx.plan.profiles, ctx.plan.seed)?;
    let t = (0..ctx.plan.profiles.len()).map(|_| source.next_telegram()).max_by_key(Vec::len).unwrap_or_default();
    let cut = ((t.len() as f64 * cut_fraction) as usize).clamp(1, t.len().saturating_sub(1).max(1));
    let mut found = Found::default();
    let (sent, got) = if drives {
        let ex = st.exchange(&t, FaultPlan::default(), Some(cut as u32))?;
        found.evidence.push(format!(
            "Request dropped by the reader {} characters into a {}-byte telegram; the rig reported {} sent{}",
            cut,
            t.len(),
            ex.sent,
            if ex.cut { "" } else { " and no cut" }
        ));
        found.measurements.push(Measurement::flag("telegram-cut", ex.cut && ex.sent < t.len(), true));
        (ex.sent, ex.got)
    } else {
        let ex = st.exchange(&t[..cut], FaultPlan::default(), None)?;
        found.note = Some(
            "Request is tied high on this board (or driven by nothing the bench controls): the meter's stop is sent as \
             the first part of a telegram, then idle"
                .into(),
        );
        (ex.sent, ex.got)
    };
    // What arrived is the part sent, give or take the character the cut split.
    let prefix = compare(&t[..sent.min(t.len())], &got[..got.len().min(sent)]);
    let extra = got.len().saturating_sub(sent) as u64;
    found.measurements.push(Measurement::flag("cut-part-intact", prefix.intact(), true));
    found.measurements.push(
        Measurement::limited("characters-after-cut", extra as f64, None, Some(0.0), Some(1.0))
            .with_note("output must stop within one character of the meter's stop"),
    );
    if drives {
        // Request is low now: a telegram waits, and nothing may come out meanwhile.
        let id = st.queue(&t);
        let quiet = st.char_time().mul_f64(t.len() as f64) + Duration::from_millis(20);
        let (stray, _) = st.listen(quiet);
        found.measurements.push(Measurement::flag("silent-while-low", stray.is_empty(), true));
        st.drive_request(true)?;
        let ex = st.finish(id, st.char_time().mul_f64(t.len() as f64 * 2.0) + Duration::from_secs(2))?;
        let fresh = compare(&t, &ex.got).intact() && ex.sent == t.len();
        found.measurements.push(Measurement::flag("fresh-telegram-intact", fresh, true));
    } else {
        let ex = st.exchange(&t, FaultPlan::default(), None)?;
        let fresh = compare(&t, &ex.got).intact() && ex.sent == t.len();
        found.measurements.push(Measurement::flag("fresh-telegram-intact", fresh, true));
    }
    found.evidence.push(format!(
        "cut after {sent} of {} characters: {} characters came out after the cut",
        t.len(),
        extra
    ));
    let passed = found.measurements.iter().all(|m| m.outcome != MeasOutcome::Fail);
    ctx.facts.gating = Some(Seen { phase: name.to_string(), passed, value: extra });
    Ok(found)
}
