//! The Request phase: does the board raise Request (RJ12 pin 2), hold it while reading, and,
//! where the reader's line drives it, follow that line?

use std::time::Duration;

use anyhow::Result;

use super::{Ctx, Found};
use crate::bench::measure::Measurement;

pub fn run(ctx: &mut Ctx<'_>, name: &str, settle_ms: u64, hold_ms: u64) -> Result<Found> {
    let settle = Duration::from_millis(settle_ms);
    let st = &mut *ctx.station;
    let mut found = Found::default();
    ctx.facts.request_phase = Some(name.to_string());
    if st.can_drive_request() {
        // The reader's line low, then high: Request must follow both ways.
        st.drive_request(false)?;
        let fell = st.wait_request(false, settle);
        st.drive_request(true)?;
        let rose = st.wait_request(true, settle);
        found.measurements.push(Measurement::flag("request-follows-reader", fell && rose, true));
        found.evidence.push(format!(
            "the reader's line went low then high; Request {} and {}",
            if fell { "fell" } else { "did not fall" },
            if rose { "rose" } else { "did not rise" }
        ));
    }
    let raised = st.wait_request(true, settle);
    found.measurements.push(Measurement::flag("request-raised", raised, true));
    if raised && !st.can_drive_request() {
        found.evidence.push("Request is high: the board holds it (tied to +5 V, or driven by its own reader)".into());
    }
    ctx.facts.request_raised = Some(raised);
    if !raised {
        found.evidence.push(format!("Request was still low {settle_ms} ms after the bench was ready"));
        return Ok(found);
    }
    let (_, edges) = st.listen(Duration::from_millis(hold_ms));
    let drops = edges.iter().filter(|high| !**high).count() as u64;
    let held = drops == 0 && st.request_high();
    found.measurements.push(Measurement::flag("request-held", held, true).with_note(format!("over {hold_ms} ms")));
    if held {
        found.evidence.push(format!("Request stayed high for {hold_ms} ms"));
    } else {
        ctx.facts.request_drops += drops.max(1);
        found.evidence.push(format!("Request dropped {} times within {hold_ms} ms", drops.max(1)));
    }
    Ok(found)
}
