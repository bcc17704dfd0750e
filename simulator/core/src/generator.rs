//! A stream of telegrams from one simulated meter: the meter model, the compiled template and,
//! for encrypted meters, the frames, stepping from one interval boundary to the next. The
//! telegrams carry the meter's own ids (`identity`), not the ones the profile file writes.
//!
//! This is what every output drives: `emit` writes its telegrams to a file, `run` paces them onto
//! a line, the conformance suite turns them into cases, the pocket-meter firmware sends them.

use alloc::vec::Vec;

use crate::fault::{self, Fault, Faulted};
use crate::household::HouseholdConfig;
use crate::meter::Meter;
use crate::profile::Profile;
use crate::readings::Readings;
use crate::render::{Template, build_telegram};
use crate::smarty;
use crate::telegram::Telegram;

/// A meter that renders telegrams at its profile's interval.
#[derive(Debug, Clone)]
pub struct Generator {
    profile: Profile,
    template: Template,
    meter: Meter,
    key: Option<[u8; 16]>,
    next_at: i64,
    plain: Vec<u8>,
}

/// Why a generator cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorError {
    /// The profile encrypts (Smarty) and no key was given.
    KeyRequired,
}

impl core::fmt::Display for GeneratorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(
            "this profile encrypts its telegrams (DLMS general-glo-ciphering); give the 16-byte key as 32 hex \
             digits with --key, or send them unencrypted with --plaintext",
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for GeneratorError {}

/// One telegram as it leaves the meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// The instant (Unix seconds) the telegram was generated for.
    pub at: i64,
    /// Smarty frame counter, for encrypted profiles.
    pub frame_counter: Option<u32>,
}

impl Generator {
    /// A meter whose first telegram is at the first interval boundary at or after `start`.
    pub fn new(
        profile: Profile,
        household: HouseholdConfig,
        seed: u64,
        start: i64,
        key: Option<[u8; 16]>,
    ) -> Result<Generator, GeneratorError> {
        if profile.is_encrypted() && key.is_none() {
            return Err(GeneratorError::KeyRequired);
        }
        let interval = i64::from(profile.interval_s.max(1));
        let first = start + (interval - start.rem_euclid(interval)) % interval;
        let meter = Meter::new(&profile, household, seed, first);
        Self::from_meter(profile, meter, key, first)
    }

    /// Continues from an existing meter (e.g. one resumed from saved state); the next telegram
    /// is due at `next_at`. The telegrams carry the meter's ids.
    pub fn from_meter(
        mut profile: Profile,
        meter: Meter,
        key: Option<[u8; 16]>,
        next_at: i64,
    ) -> Result<Generator, GeneratorError> {
        if profile.is_encrypted() && key.is_none() {
            return Err(GeneratorError::KeyRequired);
        }
        if let Some(id) = meter.identity() {
            id.apply(&mut profile);
        }
        let template = Template::compile(&profile);
        Ok(Generator { profile, template, meter, key, next_at, plain: Vec::with_capacity(2048) })
    }

    /// The profile as this meter sends it: with its own ids.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    pub fn meter_mut(&mut self) -> &mut Meter {
        &mut self.meter
    }

    /// When the next telegram is due.
    pub fn next_at(&self) -> i64 {
        self.next_at
    }

    /// Moves the schedule: the next telegram is due at the first boundary at or after `t`.
    pub fn skip_to(&mut self, t: i64) {
        let interval = i64::from(self.profile.interval_s.max(1));
        self.next_at = t + (interval - t.rem_euclid(interval)) % interval;
    }

    /// Whether this meter encrypts and its frame counter is used up: it cannot send again
    /// without reusing a nonce.
    pub fn frame_counter_exhausted(&self) -> bool {
        self.profile.is_encrypted() && self.meter.frame_counter_exhausted()
    }

    /// Advances to the next interval boundary at which the meter has power, and appends the
    /// telegram's bytes (the frame, for Smarty) to `out`.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Emitted {
        let at = self.advance();
        let frame_counter = self.render_current(out);
        Emitted { at, frame_counter }
    }

    /// Steps the meter to the next interval boundary at which it has power (a meter without
    /// mains sends nothing); returns that instant.
    ///
    /// While the mains is down the schedule moves straight to the first boundary at or after
    /// power returns, so a long failure costs a few steps, not one per interval.
    pub fn advance(&mut self) -> i64 {
        loop {
            if let Some(at) = self.step() {
                return at;
            }
            if let Some(back) = self.meter.power_returns_at()
                && back > self.next_at
            {
                self.skip_to(back);
            }
        }
    }

    /// Steps the meter to the next interval boundary, one boundary only: `Some(instant)` when
    /// the meter has power there and a telegram is due, `None` when the mains is down. A live
    /// output calls this once per boundary so it never runs ahead of the clock.
    pub fn step(&mut self) -> Option<i64> {
        let at = self.next_at;
        self.next_at += i64::from(self.profile.interval_s.max(1));
        self.meter.advance_to(at);
        self.meter.is_powered().then_some(at)
    }

    /// The telegram for the meter's current instant with `faults` applied. For Smarty, damage on
    /// the wire (truncation, bit flips, garbage, padding) hits the encrypted frame; everything
    /// else is the meter's doing and hits the plaintext before encryption.
    pub fn faulted_current(&mut self, faults: &[Fault], seed: u64, index: u64) -> Faulted {
        let (_, model) = self.current_model();
        let (Some(enc), Some(key)) = (self.profile.encryption.clone(), self.key) else {
            return fault::apply(&model, faults, seed, index);
        };
        let (wire, plain): (Vec<Fault>, Vec<Fault>) = faults.iter().cloned().partition(Fault::on_wire);
        let mut f = fault::apply(&model, &plain, seed, index);
        let mut frame = Vec::with_capacity(f.bytes.len() + smarty::OVERHEAD);
        // A used-up frame counter sends nothing rather than reuse a nonce.
        if let Some(fc) = self.meter.next_frame_counter() {
            let _ = smarty::encrypt(&key, &enc.auth_key, &enc.system_title, fc, &f.bytes, &mut frame);
        }
        self.plain = core::mem::replace(&mut f.bytes, frame);
        let applied = fault::apply_to_bytes(&mut f.bytes, &wire, seed, index, false);
        f.applied.extend(applied);
        f
    }

    /// Renders the telegram for the meter's current instant without advancing.
    ///
    /// A Smarty meter whose frame counter is used up writes nothing: sending would reuse an
    /// AES-GCM nonce under the same key. Outputs check [`Generator::frame_counter_exhausted`]
    /// first and say so.
    pub fn render_current(&mut self, out: &mut Vec<u8>) -> Option<u32> {
        match (&self.profile.encryption, self.key) {
            (Some(enc), Some(key)) => {
                self.plain.clear();
                let readings = self.meter.readings();
                self.template.render(&self.profile, readings, &mut self.plain);
                let fc = self.meter.next_frame_counter()?;
                // A telegram fits the two-byte length field by a wide margin (real telegrams stay
                // under 4 kB).
                let _ = smarty::encrypt(&key, &enc.auth_key, &enc.system_title, fc, &self.plain, out);
                Some(fc)
            }
            _ => {
                let readings = self.meter.readings();
                self.template.render(&self.profile, readings, out);
                None
            }
        }
    }

    /// The current readings and the owned model of the telegram they give (plaintext).
    pub fn current_model(&mut self) -> (Readings, Telegram) {
        let readings = self.meter.readings().clone();
        let telegram = build_telegram(&self.profile, &readings);
        (readings, telegram)
    }

    /// The plaintext of the last encrypted telegram (empty for unencrypted profiles).
    pub fn last_plaintext(&self) -> &[u8] {
        &self.plain
    }
}
