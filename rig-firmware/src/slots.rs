//! The line task's view of the shared core's slot encoder (`p1sim_core::wire::SlotEncoder`):
//! the protocol's fault plan turned into the wire model's, words encoded in bursts with the
//! drive mode applied, and a record of where every character's frame ends, so a telegram cut
//! off by Request is reported to the exact character.
//!
//! The encoder pads with idle whenever its byte source runs dry, which would leave a gap
//! between two chunks of one telegram. So for a chunk that is not the telegram's last, a burst
//! asks for no more words than the bytes left are sure to fill; the few bytes that cannot fill
//! a word are carried in front of the next chunk, and the encoder never sees the end of its
//! source until the telegram really ends: a streamed telegram keeps the line 100 % busy.

use heapless::Vec;
use p1sim_core::rig::{self, Drive, LineConfig, MAX_FAULTS};
use p1sim_core::spec::LineSettings;
use p1sim_core::wire::{BitFault, BitSpan, FaultPlan, SlotConfig, SlotEncoder, WireError};

/// Words per encoder call. A character that does not fit whole in what is left of a burst
/// takes the encoder's general path (about ten times the cost of its fast path), so bursts
/// are long: at 8 slots per bit, one character in thirteen.
pub const BURST: usize = 32;

/// Most bytes carried from one chunk to the next: a burst of one word needs at most this many
/// characters plus one (the shortest frame is 7 bits at one slot per bit and +50 % skew, 4.7
/// slots), so with more left a word can always be filled.
pub const KEEP: usize = 12;

/// Frame ends remembered: every character not yet fully on the line must be here, which
/// [`TxEncoder::max_queued`] sees to.
const FRAME_ENDS: usize = 1024;

/// The faults of a protocol plan in the wire model's form, sorted by character.
pub fn wire_faults(plan: &rig::FaultPlan, out: &mut [BitFault; MAX_FAULTS]) -> usize {
    let mut n = 0;
    for f in plan.faults.iter() {
        out[n] = BitFault::from(*f);
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
    /// Fewest slots any character of this telegram takes (faults only lengthen characters).
    min_char_slots: u32,
    /// Slot at which the frame of character `i` ends, at `i % FRAME_ENDS`.
    ends: [u32; FRAME_ENDS],
    taken: u32,
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
        // Nominal slots per character at this skew, less one for rounding at either end.
        let nominal = u64::from(cfg.framing.bits_per_char()) * u64::from(cfg.oversampling) * 1_000_000
            / (1_000_000 + i64::from(plan.skew_ppm)).max(1) as u64;
        let min_char_slots = (nominal as u32).saturating_sub(1).max(1);
        Ok(TxEncoder { enc, xor, min_char_slots, ends: [0; FRAME_ENDS], taken: 0 })
    }

    /// Most words to keep queued ahead of the pin (ring and burst), so that the characters in
    /// them, the FIFO and the shift register never outnumber the frame-end record: the whole
    /// ring for the P1 line (79 slots a character), less for one-slot-per-bit extremes.
    pub fn max_queued(&self) -> usize {
        let words = FRAME_ENDS * self.min_char_slots as usize / 32;
        // The burst being encoded, the FIFO (4), the shift register and the partial words at
        // either end.
        words.saturating_sub(BURST + 8).clamp(BURST, crate::feed::TX_WORDS)
    }

    /// A word of idle slots, as the state machine takes it.
    pub fn idle_word(&self) -> u32 {
        self.enc.idle_word() ^ self.xor
    }

    /// Encodes the next words from `src` into `out`: how many, and whether the telegram ended
    /// with them (the source ran dry and the line was left idle). Unless `last`, only as many
    /// words as the bytes left are sure to fill: `(0, false)` means the rest waits for the next
    /// chunk.
    pub fn next_words(&mut self, src: &mut Src<'_>, out: &mut [u32], last: bool) -> (usize, bool) {
        let limit = if last {
            out.len()
        } else {
            // All but one of the bytes left, whole: at least this many slots.
            let sure = (src.remaining().saturating_sub(1) as u64 * u64::from(self.min_char_slots)).saturating_sub(1);
            out.len().min((sure / 32) as usize)
        };
        if limit == 0 {
            return (0, false);
        }
        let TxEncoder { enc, ends, taken, .. } = self;
        let filled = enc.fill_marked(&mut out[..limit], src, &mut |end| {
            ends[*taken as usize % FRAME_ENDS] = end.min(u64::from(u32::MAX)) as u32;
            *taken = taken.wrapping_add(1);
        });
        for w in &mut out[..filled.words] {
            *w ^= self.xor;
        }
        (filled.words, filled.drained)
    }

    /// Characters whose whole frame lies within the first `slots` slots of this telegram.
    pub fn chars_within(&self, slots: u32) -> u32 {
        let kept = self.taken.min(FRAME_ENDS as u32);
        let later = (0..kept)
            .map(|back| self.ends[(self.taken - 1 - back) as usize % FRAME_ENDS])
            .take_while(|&end| end > slots)
            .count() as u32;
        self.taken - later
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
