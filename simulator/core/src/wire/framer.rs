//! The shared first stage of both encoders: one character, with its faults applied, as symbol
//! segments in nominal time (1/256 bit from its start edge), and the map from nominal time to
//! output units (picoseconds or PIO slots) that applies the transmitter skew.
//!
//! Keeping faults in nominal bit time and mapping at the end is what makes the slot encoder and
//! the picosecond encoder agree: the same plan gives the same waveform, only quantised
//! differently.

use crate::spec::Framing;
use crate::wire::coding::CharFrame;
use crate::wire::fault::{BitFault, FaultPlan, SUB};
use crate::wire::{Symbol, WireError, check_line};

/// Segments one character slot can hold: 12 bit times + gap + 4 extras × 2 + 4 glitches × 2 = 29.
const CAP: usize = 32;

/// One character's slot: the frame, the plan's gap, any idle or break faults after it, with
/// glitches painted over, as maximal segments of one symbol. Ends are relative to the start edge.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    ends: [u64; CAP],
    syms: [Symbol; CAP],
    len: usize,
}

impl Slot {
    pub(crate) const fn new() -> Slot {
        Slot { ends: [0; CAP], syms: [Symbol::Mark; CAP], len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Segment `i`: its symbol and its end.
    #[inline]
    pub(crate) fn segment(&self, i: usize) -> (Symbol, u64) {
        (self.syms[i], self.ends[i])
    }

    /// Length of the whole slot.
    pub(crate) fn total(&self) -> u64 {
        if self.len == 0 { 0 } else { self.ends[self.len - 1] }
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `len` of `sym`, merging with the last segment when it has the same symbol.
    #[inline]
    fn push(&mut self, sym: Symbol, len: u64) {
        if len == 0 {
            return;
        }
        let end = self.total().saturating_add(len);
        if self.len > 0 && self.syms[self.len - 1] == sym {
            self.ends[self.len - 1] = end;
        } else if self.len < CAP {
            self.ends[self.len] = end;
            self.syms[self.len] = sym;
            self.len += 1;
        } else {
            // Unreachable with the per-character limits `FaultPlan::check` enforces; stretching
            // the last segment keeps the timing right rather than panicking.
            self.ends[self.len - 1] = end;
        }
    }

    /// Appends the part of `old` between `a` and `b`.
    fn push_range(&mut self, old: &Slot, a: u64, b: u64) {
        let mut start = 0;
        for i in 0..old.len {
            let end = old.ends[i];
            let (s, e) = (start.max(a), end.min(b));
            if s < e {
                self.push(old.syms[i], e - s);
            }
            start = end;
        }
    }

    /// Forces `[from, to)` to `sym`, clipped to the slot.
    fn paint(&mut self, from: u64, to: u64, sym: Symbol) {
        let total = self.total();
        let to = to.min(total);
        if from >= to {
            return;
        }
        let old = *self;
        self.clear();
        self.push_range(&old, 0, from);
        self.push(sym, to - from);
        self.push_range(&old, to, total);
    }
}

/// Turns bytes into character slots, walking a sorted fault list with a cursor.
#[derive(Clone, Debug)]
pub(crate) struct Framer<'p> {
    framing: Framing,
    gap: u64,
    faults: &'p [BitFault],
    cursor: usize,
    next: u64,
}

impl<'p> Framer<'p> {
    pub(crate) fn new(line: crate::spec::LineSettings, plan: FaultPlan<&'p [BitFault]>) -> Result<Self, WireError> {
        check_line(line)?;
        plan.check(line.framing)?;
        Ok(Framer { framing: line.framing, gap: u64::from(plan.gap.0), faults: plan.faults, cursor: 0, next: 0 })
    }

    /// Characters framed so far (the index the next byte gets).
    pub(crate) fn chars(&self) -> u64 {
        self.next
    }

    /// The plan's extra idle after every character, in 1/256 bit.
    pub(crate) fn gap(&self) -> u64 {
        self.gap
    }

    /// Whether the next character carries no fault of its own (flip, glitch, idle or break):
    /// then its slot is just its frame bits followed by the plan's gap, and
    /// [`Framer::take_clean`] may stand in for [`Framer::frame`].
    #[inline]
    pub(crate) fn next_is_clean(&self) -> bool {
        // Faults are sorted and every character passes through here or `frame`, so the fault
        // under the cursor never names an earlier character.
        self.faults.get(self.cursor).is_none_or(|f| u64::from(f.char()) > self.next)
    }

    /// Takes the next character, which [`Framer::next_is_clean`] said has no faults, as its
    /// bare frame.
    #[inline]
    pub(crate) fn take_clean(&mut self, byte: u8) -> CharFrame {
        self.next += 1;
        CharFrame::new(byte, self.framing)
    }

    /// Bit times in one character frame.
    pub(crate) fn frame_len(&self) -> u32 {
        self.framing.bits_per_char()
    }

    /// Builds the slot of the next character into `slot`.
    pub(crate) fn frame(&mut self, byte: u8, slot: &mut Slot) {
        let index = self.next;
        self.next += 1;
        let mut frame = CharFrame::new(byte, self.framing);
        let first = self.cursor;
        while self.cursor < self.faults.len() && u64::from(self.faults[self.cursor].char()) <= index {
            self.cursor += 1;
        }
        let mine = &self.faults[first..self.cursor];
        for f in mine {
            if let BitFault::Flip { bit, .. } = *f {
                frame = frame.flipped(bit);
            }
        }
        slot.clear();
        let sub = u64::from(SUB);
        for i in 0..frame.len {
            slot.push(frame.symbol(i), sub);
        }
        slot.push(Symbol::Mark, self.gap);
        for f in mine {
            match *f {
                BitFault::Idle { length, .. } => slot.push(Symbol::Mark, u64::from(length.0)),
                BitFault::Break { length, .. } => {
                    slot.push(Symbol::Space, u64::from(length.0));
                    slot.push(Symbol::Mark, sub);
                }
                _ => {}
            }
        }
        for f in mine {
            if let BitFault::Glitch { at, width, level, .. } = *f {
                let from = u64::from(at.0);
                slot.paint(from, from + u64::from(width.0), level);
            }
        }
    }
}

/// The linear map from nominal time (1/256 bit) to output units, rounding to the nearest unit,
/// anchored at a point so it can be restarted after idle the caller inserts in output units.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timebase {
    /// Output units per 1/256 bit, 32.32 fixed point.
    scale: u64,
    nom0: u64,
    out0: u64,
}

impl Timebase {
    /// `units_per_bit` output units per bit at zero skew (e.g. 1e12 / baud picoseconds, or the
    /// oversampling factor), as the fraction `num / den`, slowed or sped up by `skew_ppm`.
    pub(crate) fn new(num: u128, den: u128, skew_ppm: i32) -> Timebase {
        // units per sub-bit = num / (den * 256 * (1 + skew)), scaled by 2^32 and rounded.
        let n = (num * 1_000_000) << 32;
        let d = den * u128::from(SUB) * (1_000_000i64 + i64::from(skew_ppm)) as u128;
        let scale = ((n + d / 2) / d).min(u128::from(u64::MAX)) as u64;
        Timebase { scale, nom0: 0, out0: 0 }
    }

    /// Output units per 1/256 bit, 32.32 fixed point.
    pub(crate) fn scale(&self) -> u64 {
        self.scale
    }

    /// The output time of nominal time `nom` (at or after the anchor).
    #[inline]
    pub(crate) fn map(&self, nom: u64) -> u64 {
        let x = u128::from(nom.saturating_sub(self.nom0)) * u128::from(self.scale) + (1 << 31);
        self.out0.saturating_add((x >> 32).min(u128::from(u64::MAX)) as u64)
    }

    /// Makes `nom` map to `out` from now on.
    pub(crate) fn anchor(&mut self, nom: u64, out: u64) {
        self.nom0 = nom;
        self.out0 = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LineSettings;
    use crate::wire::BitSpan;

    fn segments(slot: &Slot) -> Vec<(Symbol, u64)> {
        (0..slot.len()).map(|i| slot.segment(i)).collect()
    }

    const LINE: LineSettings = LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 };

    #[test]
    fn a_clean_character_is_its_bits_merged() {
        let mut f = Framer::new(LINE, FaultPlan::CLEAN).unwrap();
        let mut slot = Slot::new();
        // 'A': start 0, data 1 0 0 0 0 0 1 0, stop 1.
        f.frame(b'A', &mut slot);
        use Symbol::*;
        assert_eq!(
            segments(&slot),
            [(Space, 256), (Mark, 512), (Space, 1792), (Mark, 2048), (Space, 2304), (Mark, 2560)]
        );
        assert_eq!(f.chars(), 1);
    }

    #[test]
    fn faults_apply_to_their_character_only() {
        let faults = [
            BitFault::Flip { char: 1, bit: 9 },
            BitFault::Break { after: 1, length: BitSpan::bits(3) },
            BitFault::Glitch { char: 1, at: BitSpan(100), width: BitSpan(10), level: Symbol::Mark },
        ];
        let plan = FaultPlan { faults: &faults[..], skew_ppm: 0, gap: BitSpan(128) };
        let mut f = Framer::new(LINE, plan).unwrap();
        let mut slot = Slot::new();
        f.frame(0xFF, &mut slot);
        use Symbol::*;
        assert_eq!(segments(&slot), [(Space, 256), (Mark, 2560 + 128)]);
        f.frame(0xFF, &mut slot);
        // The glitch, the stop bit flipped to space, the gap, then the break and its bit of mark.
        assert_eq!(
            segments(&slot),
            [
                (Space, 100),
                (Mark, 110),
                (Space, 256),
                (Mark, 2304),
                (Space, 2560),
                (Mark, 2560 + 128),
                (Space, 2688 + 768),
                (Mark, 2688 + 768 + 256)
            ]
        );
    }

    #[test]
    fn glitches_are_clipped_to_their_slot() {
        let faults = [BitFault::Glitch { char: 0, at: BitSpan(2500), width: BitSpan(1000), level: Symbol::Space }];
        let mut f = Framer::new(LINE, FaultPlan { faults: &faults[..], ..FaultPlan::CLEAN }).unwrap();
        let mut slot = Slot::new();
        f.frame(0xFF, &mut slot);
        use Symbol::*;
        assert_eq!(segments(&slot), [(Space, 256), (Mark, 2500), (Space, 2560)]);
    }

    #[test]
    fn the_timebase_scales_and_skews() {
        // 8 slots per bit: one sub-bit is 1/32 slot.
        let tb = Timebase::new(8, 1, 0);
        assert_eq!(tb.map(256), 8);
        assert_eq!(tb.map(256 * 1000), 8000);
        // 3 % fast: 1000 bits take 1000 / 1.03 bit times.
        let fast = Timebase::new(8, 1, 30_000);
        assert_eq!(fast.map(256 * 1000), 7767);
        let mut ps = Timebase::new(1_000_000_000_000, 115_200, 0);
        assert_eq!(ps.map(256), 8_680_556);
        assert_eq!(ps.map(256 * 115_200), 1_000_000_000_000);
        ps.anchor(256, 5);
        assert_eq!(ps.map(512), 8_680_561);
    }
}
