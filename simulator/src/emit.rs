//! Offline emission: a meter's telegrams for a count or a span of simulated time, into a writer.

use std::io::Write;

use anyhow::{Context, Result};
use p1sim_core::generator::Generator;
use p1sim_core::household::HouseholdConfig;
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
}

/// Writes the plan's telegrams; returns how many were written.
pub fn emit(plan: &EmitPlan, w: &mut impl Write) -> Result<u64> {
    let mut generator = Generator::new(plan.profile.clone(), plan.household.clone(), plan.seed, plan.start, plan.key)?;
    let first = generator.next_at();
    let mut buf = Vec::with_capacity(4096);
    let mut written = 0;
    loop {
        let due = generator.next_at();
        let done = match plan.until {
            Until::Count(n) => written >= n,
            Until::Span(s) => due >= first + s as i64,
        };
        if done {
            break;
        }
        buf.clear();
        let e = generator.next_into(&mut buf);
        // A power failure can swallow telegrams; a span ends at its end regardless.
        if let Until::Span(s) = plan.until {
            if e.at >= first + s as i64 {
                break;
            }
        }
        w.write_all(&buf).context("cannot write the telegrams")?;
        written += 1;
    }
    Ok(written)
}
