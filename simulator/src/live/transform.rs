//! The per-telegram transform stage between rendering and the outputs: where faults are applied,
//! and where a replay puts the recorded telegrams in place of the rendered ones.
//!
//! The meter task renders a telegram, hands the bytes (and the generator, for faults that edit the
//! owned telegram model) to its transform, then to the lines. `--faults FILE|NAME` applies a
//! fault scenario to the telegrams it selects; the control API's `/fault` injects one fault into
//! the next telegram only. A transform that leaves the bytes empty sends nothing for that
//! boundary (a replay waiting for a telegram's recorded time).

use p1sim_core::fault::{self, Fault, scenario::Scenario};
use p1sim_core::generator::Generator;
use p1sim_core::telegram::Telegram;
use serde_json::{Value, json};

use crate::replay::Replay;

/// A change made to each telegram on its way out.
pub trait Transform: Send + Sync {
    /// Changes the telegram number `seq` (0-based in this run) generated for instant `at`;
    /// returns the names of the faults applied.
    fn apply(&mut self, generator: &mut Generator, seq: u64, at: i64, bytes: &mut Vec<u8>) -> Vec<&'static str>;
    /// Queues a one-off change for the next telegram, described as JSON by the control API.
    fn inject(&mut self, spec: Value) -> Result<Value, String>;
    /// Whether the stream is over (a replay that sent its last telegram and does not loop).
    fn finished(&self) -> bool {
        false
    }
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

    /// The faults due for telegram `seq` at `at`: the scenario's and the one-off injections.
    fn due(&mut self, seq: u64, at: i64) -> Vec<Fault> {
        let mut faults = self.scenario.as_ref().map(|s| s.selected(self.seed, seq, at)).unwrap_or_default();
        faults.append(&mut self.once);
        self.applied += faults.len() as u64;
        faults
    }

    /// Applies `faults` to telegram `seq`'s `bytes`, whose model is `model` (`None` for an
    /// encrypted frame: only byte faults make sense on ciphertext).
    fn apply_faults(&self, faults: &[Fault], model: Option<&Telegram>, seq: u64, bytes: &mut Vec<u8>) {
        match model {
            Some(m) => *bytes = fault::apply(m, faults, self.seed, seq).bytes,
            None => {
                fault::apply_to_bytes(bytes, faults, self.seed, seq, false);
            }
        }
    }
}

impl Transform for FaultStage {
    fn apply(&mut self, generator: &mut Generator, seq: u64, at: i64, bytes: &mut Vec<u8>) -> Vec<&'static str> {
        let faults = self.due(seq, at);
        // Most telegrams have no fault: the model is built only for those that do.
        if faults.is_empty() {
            return Vec::new();
        }
        let names = faults.iter().map(Fault::name).collect();
        if generator.profile().is_encrypted() {
            self.apply_faults(&faults, None, seq, bytes);
            return names;
        }
        // The model of the telegram just rendered (the meter has not moved since).
        let (_, model) = generator.current_model();
        self.apply_faults(&faults, Some(&model), seq, bytes);
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

/// A replay in place of the meter's own telegrams: the recorded one due at each boundary (or
/// nothing), with the run's faults applied as to any telegram.
#[derive(Debug)]
pub struct ReplayStage {
    replay: Replay,
    faults: FaultStage,
}

impl ReplayStage {
    pub fn new(replay: Replay, faults: FaultStage) -> ReplayStage {
        ReplayStage { replay, faults }
    }
}

impl Transform for ReplayStage {
    fn apply(&mut self, _generator: &mut Generator, seq: u64, at: i64, bytes: &mut Vec<u8>) -> Vec<&'static str> {
        bytes.clear();
        let Some(due) = self.replay.due(at) else { return Vec::new() };
        *bytes = due.bytes;
        let faults = self.faults.due(seq, at);
        if !faults.is_empty() {
            let model = (!due.encrypted).then_some(&due.model);
            self.faults.apply_faults(&faults, model, seq, bytes);
        }
        faults.iter().map(Fault::name).collect()
    }

    fn inject(&mut self, spec: Value) -> Result<Value, String> {
        self.faults.inject(spec)
    }

    fn finished(&self) -> bool {
        self.replay.finished()
    }
}
