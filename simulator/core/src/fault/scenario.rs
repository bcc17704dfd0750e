//! Fault scenarios: a TOML file listing faults with their parameters and when they apply.
//!
//! ```toml
//! # Reproduces: ...
//! [[fault]]
//! kind = "truncate"
//! at = "random"
//! when = { every = 5 }          # every 5th telegram; or { probability = 0.1 }, { at = "2026-..Z" },
//!                               # { from = "..Z", until = "..Z" }; every telegram when absent
//!
//! [wire]                        # optional: bit-level faults on the line (see crate::wire::fault)
//! skew_ppm = 30000
//! faults = [{ flip = { char = 3, bit = 9 } }]
//! ```
//!
//! The `[wire]` plan applies wherever telegrams become line levels: `emit --through`, `wave`
//! and the rig. Its character numbers count bytes from the start of the stream.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{Fault, Faulted, apply};
use crate::input::{LocatedTable, TableAt};
use crate::noise;
use crate::profile::load::ProfileError;
use crate::telegram::Telegram;
use crate::wire::fault::sort_faults;
use crate::wire::{BitFault, FaultPlan};

/// When a fault applies.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum When {
    #[default]
    Always,
    /// Every n-th telegram (the n-th, 2n-th, ...), counting from 1.
    Every(u64),
    /// Each telegram independently with this probability (seeded).
    Probability(f64),
    /// The telegram generated for exactly this instant (Unix seconds).
    At(i64),
    /// Telegrams within [from, until).
    Between(i64, i64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub fault: Fault,
    pub when: When,
}

/// A list of faults, applied in order to each telegram they select, and a plan of bit-level
/// faults for the line.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scenario {
    pub name: String,
    pub entries: Vec<Entry>,
    pub wire: Option<FaultPlan<Vec<BitFault>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    fault: Vec<Spanned<LocatedTable>>,
    wire: Option<Spanned<FaultPlan<Vec<BitFault>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhenTable {
    every: Option<u64>,
    probability: Option<f64>,
    at: Option<String>,
    from: Option<String>,
    until: Option<String>,
}

/// The most `[[fault]]` tables in one scenario.
pub const MAX_ENTRIES: usize = 256;
/// The most bit-level faults in a `[wire]` plan.
pub const MAX_WIRE_FAULTS: usize = 65_536;

impl Scenario {
    /// Parses scenario text; `file` names it in errors, which point at the offending key.
    pub fn parse(name: &str, file: &str, text: &str) -> Result<Scenario, ProfileError> {
        let raw: File = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            ProfileError::at(file, text, e.span().map_or(0, |s| s.start), None, message)
        })?;
        if raw.fault.len() > MAX_ENTRIES {
            let at = raw.fault[MAX_ENTRIES].span().start;
            return Err(ProfileError::at(
                file,
                text,
                at,
                Some("fault"),
                format!("{} [[fault]] tables; a scenario has at most {MAX_ENTRIES}", raw.fault.len()),
            ));
        }
        let mut entries = Vec::with_capacity(raw.fault.len());
        for (i, table) in raw.fault.iter().enumerate() {
            let at = TableAt { file, text, span: table.span(), table: table.get_ref() };
            let context = format!("fault #{}", i + 1);
            let when = match at.get("when") {
                None => When::Always,
                Some(v) => {
                    let w: WhenTable =
                        v.get_ref().clone().try_into().map_err(|e: toml::de::Error| {
                            at.error("when", format!("{context}: {}", e.message().trim()))
                        })?;
                    parse_when(w).map_err(|m| at.error("when", format!("{context}: {m}")))?
                }
            };
            if at.get("kind").is_none() {
                return Err(at.error_at_table("kind", format!("{context} needs a kind (`p1sim faults` lists them)")));
            }
            let fault: Fault = at.parse(&["when"], "kind", &context)?;
            fault.check().map_err(|(key, m)| at.error(key, format!("{context}: {m}")))?;
            entries.push(Entry { fault, when });
        }
        let wire = match raw.wire {
            Some(plan) => {
                let span = plan.span();
                let mut plan = plan.into_inner();
                if plan.faults.len() > MAX_WIRE_FAULTS {
                    return Err(ProfileError::at(
                        file,
                        text,
                        span.start,
                        Some("faults"),
                        format!("{} bit-level faults; a [wire] plan has at most {MAX_WIRE_FAULTS}", plan.faults.len()),
                    ));
                }
                sort_faults(&mut plan.faults);
                Some(plan)
            }
            None => None,
        };
        if entries.is_empty() && wire.is_none() {
            return Err(ProfileError::at(file, text, 0, None, "the scenario lists no [[fault]] and no [wire] plan"));
        }
        Ok(Scenario { name: name.to_string(), entries, wire })
    }

    pub fn load(path: &Path) -> Result<Scenario, ProfileError> {
        let text = ProfileError::read(path, "scenario")?;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("scenario");
        Scenario::parse(name, &path.display().to_string(), &text)
    }

    /// A scenario of one fault applied to every telegram.
    pub fn single(fault: Fault) -> Scenario {
        Scenario { name: fault.name().to_string(), entries: vec![Entry { fault, when: When::Always }], wire: None }
    }

    /// The faults that apply to telegram number `index` (0-based) generated for instant `at`.
    pub fn selected(&self, seed: u64, index: u64, at: i64) -> Vec<Fault> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, e)| match e.when {
                When::Always => true,
                When::Every(n) => n > 0 && (index + 1).is_multiple_of(n),
                When::Probability(p) => noise::unit(noise::key(seed, 0x5CE7_0000 + *i as u64, index as i64)) < p,
                When::At(t) => at == t,
                When::Between(from, until) => (from..until).contains(&at),
            })
            .map(|(_, e)| e.fault.clone())
            .collect()
    }

    /// Applies the selected faults to one telegram; `None` when none applies.
    pub fn apply(&self, telegram: &Telegram, seed: u64, index: u64, at: i64) -> Option<Faulted> {
        let faults = self.selected(seed, index, at);
        (!faults.is_empty()).then(|| apply(telegram, &faults, seed, index))
    }
}

fn parse_when(w: WhenTable) -> Result<When, String> {
    let instant = |s: &str| -> Result<i64, String> {
        s.parse::<jiff::Timestamp>()
            .map(|t| t.as_second())
            .map_err(|e| format!("{s:?} is not an RFC 3339 instant: {e}"))
    };
    match (w.every, w.probability, w.at, w.from, w.until) {
        (Some(n), None, None, None, None) if n > 0 => Ok(When::Every(n)),
        (None, Some(p), None, None, None) if (0.0..=1.0).contains(&p) => Ok(When::Probability(p)),
        (None, None, None, Some(f), Some(u)) if instant(&f)? >= instant(&u)? => {
            Err(format!("from {f:?} is not before until {u:?}: the window selects no telegram"))
        }
        (None, None, Some(t), None, None) => Ok(When::At(instant(&t)?)),
        (None, None, None, Some(f), Some(u)) => Ok(When::Between(instant(&f)?, instant(&u)?)),
        _ => Err(
            "give one of { every = N > 0 }, { probability = 0..1 }, { at = \"RFC3339\" } or { from = .., until = .. }"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::BitSpan;

    #[test]
    fn a_wire_plan_rides_along_with_byte_faults() {
        let text = "[[fault]]\nkind = \"wrong-crc\"\nwhen = { every = 2 }\n\n[wire]\nskew_ppm = 30000\nfaults = [{ break = { after = 9, length = 30 } }, { flip = { char = 3, bit = 9 } }]\n";
        let s = Scenario::parse("t", "t.toml", text).unwrap();
        assert_eq!(s.entries.len(), 1);
        let wire = s.wire.unwrap();
        assert_eq!(wire.skew_ppm, 30_000);
        assert_eq!(
            wire.faults,
            [BitFault::Flip { char: 3, bit: 9 }, BitFault::Break { after: 9, length: BitSpan::bits(30) }],
            "sorted by character"
        );
    }

    #[test]
    fn sizes_rates_and_bits_are_bounded_and_errors_name_line_and_key() {
        let second = |body: &str| {
            Scenario::parse("t", "t.toml", &format!("[[fault]]\nkind = \"wrong-crc\"\n\n[[fault]]\n{body}"))
                .unwrap_err()
        };
        let e = second("kind = \"garbage-before\"\nbytes = 1000000000000\n");
        assert_eq!((e.line, e.key.as_deref()), (6, Some("bytes")), "{e}");
        assert!(e.message.contains("fault #2") && e.message.contains("32768"), "{e}");
        let e = second("kind = \"oversize\"\nchars = 100000000\n");
        assert_eq!((e.line, e.key.as_deref()), (6, Some("chars")), "{e}");
        for ber in ["nan", "-1.0", "2.0"] {
            let e = second(&format!("kind = \"bit-flip\"\nber = {ber}\n"));
            assert_eq!((e.line, e.key.as_deref()), (6, Some("ber")), "{ber}: {e}");
        }
        let e = second("kind = \"bit-flip\"\npositions = [[3, 99]]\n");
        assert_eq!((e.line, e.key.as_deref()), (6, Some("positions")), "{e}");
        // Unknown keys are refused, also on faults without parameters.
        let e = second("kind = \"wrong-crc\"\nbites = 5\n");
        assert_eq!((e.line, e.key.as_deref()), (6, Some("bites")), "{e}");
        let e = second("kind = \"truncate\"\nat = \"somewhere\"\n");
        assert_eq!((e.line, e.key.as_deref()), (6, Some("at")), "{e}");
        let e = second("kind = \"explode\"\n");
        assert_eq!((e.line, e.key.as_deref()), (5, Some("kind")), "{e}");
        let e = second("kind = \"wrong-crc\"\nwhen = { every = 0 }\n");
        assert_eq!((e.line, e.key.as_deref()), (6, Some("when")), "{e}");
    }

    #[test]
    fn an_empty_scenario_is_refused() {
        assert!(Scenario::parse("t", "t.toml", "").unwrap_err().message.contains("no [[fault]]"));
        let e = Scenario::parse("t", "t.toml", "[wire]\nspeed = 3\n").unwrap_err();
        assert!(e.message.contains("speed"), "{e}");
    }
}
