//! The per-telegram transform stage between rendering and the outputs: where faults are applied.
//!
//! The meter task renders a telegram, hands the bytes (and the generator, for faults that edit the
//! owned telegram model) to its transform, then to the lines. `--faults FILE|NAME` applies a
//! fault scenario to the telegrams it selects; the control API's `/fault` injects one fault into
//! the next telegram only.

use p1sim_core::fault::{self, Fault, scenario::Scenario};
use p1sim_core::generator::Generator;
use serde_json::{Value, json};

/// A change made to each telegram on its way out.
pub trait Transform: Send + Sync {
    /// Changes the telegram number `seq` (0-based in this run) generated for instant `at`;
    /// returns the names of the faults applied.
    fn apply(&mut self, generator: &mut Generator, seq: u64, at: i64, bytes: &mut Vec<u8>) -> Vec<&'static str>;
    /// Queues a one-off change for the next telegram, described as JSON by the control API.
    fn inject(&mut self, spec: Value) -> Result<Value, String>;
}

/// One-off faults waiting for the next telegram, at most.
pub const MAX_QUEUED: usize = 16;

/// Faults from the catalogue: a scenario for every telegram it selects, plus one-off injections.
#[derive(Debug, Default)]
pub struct FaultStage {
    scenario: Option<Scenario>,
    once: Vec<Fault>,
    seed: u64,
    /// Faults applied so far, for the control API.
    applied: u64,
    /// The most bytes one fault may add here (see [`line_budget`]).
    budget: usize,
}

/// The most bytes one fault may add on a line of `char_ns` per character with an interval of
/// `interval_s`: the catalogue's limit, and no more than the line carries in one interval, so an
/// injected fault cannot hold the line for longer than a telegram's slot. `None` for lines
/// written in bursts, which take no line time.
pub fn line_budget(char_ns: Option<u64>, interval_s: u32) -> usize {
    match char_ns {
        Some(ns) => {
            let per_interval = u64::from(interval_s.max(1)) * 1_000_000_000 / ns.max(1);
            fault::MAX_ADDED_BYTES.min(usize::try_from(per_interval).unwrap_or(usize::MAX))
        }
        None => fault::MAX_ADDED_BYTES,
    }
}

/// Checks a fault for a line with `budget` bytes to spare; the error names the parameter.
pub fn check_fault(f: &Fault, budget: usize) -> Result<(), String> {
    f.check().map_err(|(key, m)| format!("{}: `{key}`: {m}", f.name()))?;
    let added = f.added_bytes();
    if added > budget {
        return Err(format!(
            "{} adds {added} bytes, more than this line carries in one interval ({budget}); use a smaller size",
            f.name()
        ));
    }
    Ok(())
}

impl FaultStage {
    /// Refuses a scenario with a fault too large for the line.
    pub fn new(scenario: Option<Scenario>, seed: u64, budget: usize) -> Result<FaultStage, String> {
        for e in scenario.iter().flat_map(|s| &s.entries) {
            check_fault(&e.fault, budget)
                .map_err(|m| format!("--faults {}: {m}", scenario.as_ref().map_or("", |s| s.name.as_str())))?;
        }
        Ok(FaultStage { scenario, once: Vec::new(), seed, applied: 0, budget })
    }

    /// Parses a fault the control API was sent, within this stage's budget. Keys the fault does
    /// not have are refused, also for faults without parameters, where serde would ignore them.
    pub fn parse(&self, spec: Value) -> Result<Fault, String> {
        let given: Vec<String> = spec.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        let fault: Fault = serde_json::from_value(spec).map_err(|e| {
            format!("{e}; give one fault as JSON with its kind, e.g. {{\"kind\": \"wrong-crc\"}} or {{\"kind\": \"truncate\", \"at\": 100}} (`p1sim faults` lists them)")
        })?;
        let back = serde_json::to_value(&fault).unwrap_or(Value::Null);
        if let Some(unknown) = given.iter().find(|k| back.get(k.as_str()).is_none()) {
            return Err(format!("{}: unknown key `{unknown}` (`p1sim faults` lists each fault's keys)", fault.name()));
        }
        check_fault(&fault, self.budget)?;
        Ok(fault)
    }
}

impl Transform for FaultStage {
    fn apply(&mut self, generator: &mut Generator, seq: u64, at: i64, bytes: &mut Vec<u8>) -> Vec<&'static str> {
        let mut faults = self.scenario.as_ref().map(|s| s.selected(self.seed, seq, at)).unwrap_or_default();
        faults.append(&mut self.once);
        if faults.is_empty() {
            return Vec::new();
        }
        self.applied += faults.len() as u64;
        let names = faults.iter().map(Fault::name).collect();
        if generator.profile().is_encrypted() {
            // The frame is ciphertext: only byte faults make sense on it.
            fault::apply_to_bytes(bytes, &faults, self.seed, seq, false);
            return names;
        }
        // The model of the telegram just rendered (the meter has not moved since).
        let (_, model) = generator.current_model();
        *bytes = fault::apply(&model, &faults, self.seed, seq).bytes;
        names
    }

    fn inject(&mut self, spec: Value) -> Result<Value, String> {
        let fault = self.parse(spec)?;
        if self.once.len() >= MAX_QUEUED {
            return Err(format!("{MAX_QUEUED} faults already wait for the next telegram; try again after it"));
        }
        let name = fault.name();
        self.once.push(fault);
        Ok(json!({ "ok": true, "fault": name, "shows_in": "the next telegram", "queued": self.once.len() }))
    }
}
