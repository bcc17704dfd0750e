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
    /// Changes the telegram number `seq` (0-based in this run) generated for instant `at`.
    fn apply(&mut self, generator: &mut Generator, seq: u64, at: i64, bytes: &mut Vec<u8>);
    /// Queues a one-off change for the next telegram, described as JSON by the control API.
    fn inject(&mut self, spec: Value) -> Result<Value, String>;
    /// Whether the stream is over (a replay that sent its last telegram and does not loop).
    fn finished(&self) -> bool {
        false
    }
}

/// Faults from the catalogue: a scenario for every telegram it selects, plus one-off injections.
#[derive(Debug, Default)]
pub struct FaultStage {
    scenario: Option<Scenario>,
    once: Vec<Fault>,
    seed: u64,
    /// Faults applied so far, for the control API.
    applied: u64,
}

impl FaultStage {
    pub fn new(scenario: Option<Scenario>, seed: u64) -> FaultStage {
        FaultStage { scenario, once: Vec::new(), seed, applied: 0 }
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
    fn apply(&mut self, generator: &mut Generator, seq: u64, at: i64, bytes: &mut Vec<u8>) {
        let faults = self.due(seq, at);
        // Most telegrams have no fault: the model is built only for those that do.
        if faults.is_empty() {
            return;
        }
        if generator.profile().is_encrypted() {
            self.apply_faults(&faults, None, seq, bytes);
            return;
        }
        // The model of the telegram just rendered (the meter has not moved since).
        let (_, model) = generator.current_model();
        self.apply_faults(&faults, Some(&model), seq, bytes);
    }

    fn inject(&mut self, spec: Value) -> Result<Value, String> {
        let fault: Fault = serde_json::from_value(spec).map_err(|e| {
            format!("{e}; give one fault as JSON with its kind, e.g. {{\"kind\": \"wrong-crc\"}} or {{\"kind\": \"truncate\", \"at\": 100}} (`p1sim faults` lists them)")
        })?;
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
    fn apply(&mut self, _generator: &mut Generator, seq: u64, at: i64, bytes: &mut Vec<u8>) {
        bytes.clear();
        let Some(due) = self.replay.due(at) else { return };
        *bytes = due.bytes;
        let faults = self.faults.due(seq, at);
        if !faults.is_empty() {
            let model = (!due.encrypted).then_some(&due.model);
            self.faults.apply_faults(&faults, model, seq, bytes);
        }
    }

    fn inject(&mut self, spec: Value) -> Result<Value, String> {
        self.faults.inject(spec)
    }

    fn finished(&self) -> bool {
        self.replay.finished()
    }
}
