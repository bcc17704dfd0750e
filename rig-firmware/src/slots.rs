//! The line task's view of the shared core's slot encoder (`p1sim_core::wire::SlotEncoder`):
//! the protocol's fault plan turned into the wire model's, one PIO word at a time, the drive
//! mode applied, and a record of which characters each word completes.
//!
//! The encoder pads with idle whenever its byte source runs dry, which would leave a gap
//! between two chunks of one telegram. So a chunk that is not the telegram's last keeps its
//! final bytes back (`KEEP`) and they are sent in front of the next chunk: the encoder never
//! sees the end of its source until the telegram really ends, and a streamed telegram keeps
//! the line 100 % busy.

use heapless::Vec;
use p1sim_core::rig::{self, Drive, Fault, LineConfig, MAX_FAULTS};
use p1sim_core::spec::LineSettings;
use p1sim_core::wire::{BitFault, BitSpan, FaultPlan, SlotConfig, SlotEncoder, Symbol, WireError};

/// Bytes a non-final chunk keeps back. One burst of 32-slot words never takes more than 22 characters
/// (7-bit frames, 1 slot per bit, +50 % skew), so with more than this left the encoder cannot
/// run dry in the middle of a word.
pub const KEEP: usize = 24;

/// Words remembered for counting what went out when a telegram is cut: the FIFO (4) plus the
/// word in the shift register plus the one being pushed, with room to spare.
const HISTORY: usize = 16;

/// Words per encoder call: fewer calls cost less per character; the count of characters sent
/// when a telegram is cut is exact to this many words.
pub const BURST: usize = 2;

/// The faults of a protocol plan in the wire model's form, sorted by character.
pub fn wire_faults(plan: &rig::FaultPlan, out: &mut [BitFault; MAX_FAULTS]) -> usize {
    let mut n = 0;
    for f in plan.faults.iter() {
        out[n] = match *f {
            Fault::Flip { char, bit } => BitFault::Flip { char, bit },
            Fault::Glitch { char, at, width, mark } => BitFault::Glitch {
                char,
                at: BitSpan(at),
                width: BitSpan(width),
                level: if mark { Symbol::Mark } else { Symbol::Space },
            },
            Fault::Idle { after, length } => BitFault::Idle { after, length: BitSpan(length) },
            Fault::Break { after, length } => BitFault::Break { after, length: BitSpan(length) },
        };
        n += 1;
    }
    p1sim_core::wire::fault::sort_faults(&mut out[..n]);
    n
}

/// Bytes to slot words for one telegram.
pub struct TxEncoder<'p> {
    enc: SlotEncoder<'p>,
    /// XORed into every word: open drain drives the pin direction, which is the inverse of
    /// the level (direction 1 = driven low).
    xor: u32,
    /// (words produced, characters complete) after each of the last words.
    history: [(u32, u32); HISTORY],
    words: u32,
}

impl<'p> TxEncoder<'p> {
    pub fn new(cfg: &LineConfig, plan: &rig::FaultPlan, faults: &'p [BitFault]) -> Result<TxEncoder<'p>, WireError> {
        let slot_cfg = SlotConfig {
            line: LineSettings { baud: cfg.baud, framing: cfg.framing },
            oversample: cfg.oversampling,
            polarity: cfg.polarity,
        };
        let wire_plan = FaultPlan { faults, skew_ppm: plan.skew_ppm, gap: BitSpan(plan.gap) };
        let enc = SlotEncoder::new(slot_cfg, wire_plan)?;
        let xor = if cfg.drive == Drive::OpenDrain { u32::MAX } else { 0 };
        Ok(TxEncoder { enc, xor, history: [(0, 0); HISTORY], words: 0 })
    }

    /// A word of idle slots, as the state machine takes it.
    pub fn idle_word(&self) -> u32 {
        self.enc.idle_word() ^ self.xor
    }

    /// The next words from `src` into `out`: how many, and whether the telegram ended with
    /// them (the source ran dry and the line was left idle). `None` when the source was dry.
    pub fn next_words(&mut self, src: &mut Src<'_>, out: &mut [u32]) -> Option<(usize, bool)> {
        let filled = self.enc.fill(out, src);
        if filled.words == 0 {
            return None;
        }
        for w in &mut out[..filled.words] {
            *w ^= self.xor;
        }
        self.words += filled.words as u32;
        // The character last taken may still be in progress, so only those before it are
        // certainly complete at the end of this word; all are when the source ran dry.
        let taken = self.enc.chars() as u32;
        let done = if filled.drained { taken } else { taken.saturating_sub(1) };
        self.history[self.words as usize % HISTORY] = (self.words, done);
        Some((filled.words, filled.drained))
    }

    /// Characters certainly complete within the first `slots` slots of this telegram's words
    /// (exact to one 32-slot word; never more than went out).
    pub fn chars_within(&self, slots: u32) -> u32 {
        let whole = slots / 32;
        self.history.iter().filter(|(w, _)| *w != 0 && *w <= whole).map(|(_, c)| *c).max().unwrap_or(0)
    }
}

/// A telegram's bytes as the encoder pulls them: the bytes kept back from the previous chunk,
/// then this chunk's.
pub struct Src<'a> {
    carry: &'a [u8],
    data: &'a [u8],
}

impl<'a> Src<'a> {
    pub fn new(carry: &'a [u8], data: &'a [u8]) -> Src<'a> {
        Src { carry, data }
    }

    pub fn remaining(&self) -> usize {
        self.carry.len() + self.data.len()
    }

    /// What is left, to be kept back for the next chunk.
    pub fn rest(&self) -> Vec<u8, KEEP> {
        let mut v = Vec::new();
        for &b in self.carry.iter().chain(self.data.iter()).take(KEEP) {
            let _ = v.push(b);
        }
        v
    }
}

impl Iterator for Src<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if let Some((&b, rest)) = self.carry.split_first() {
            self.carry = rest;
            return Some(b);
        }
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
}
