//! Bytes to a timed line: [`LineEncoder`] turns characters into [`Run`]s in picoseconds, with
//! a fault plan applied, at any baud, framing and polarity. No allocation: runs go to a sink.
//!
//! ```
//! use p1sim_core::spec::{Framing, LineSettings};
//! use p1sim_core::wire::{FaultPlan, LineEncoder, Level, Polarity, Run};
//!
//! let line = LineSettings { baud: 9600, framing: Framing::SEVEN_E1 };
//! let mut enc = LineEncoder::new(line, Polarity::Inverted, FaultPlan::CLEAN).unwrap();
//! let mut runs = Vec::new();
//! enc.idle(1_000_000_000, &mut |r| runs.push(r)); // 1 ms of idle first
//! enc.encode(b"/KMP5", &mut |r| runs.push(r));
//! enc.idle(1_000_000_000, &mut |r| runs.push(r));
//! enc.flush(&mut |r| runs.push(r));
//! // The P1 line idles low; the start bit of '/' releases it (space is high).
//! assert_eq!(runs[0], Run::new(Level::Low, 1_000_000_000));
//! assert_eq!(runs[1].level, Level::High);
//! ```

use crate::spec::LineSettings;
use crate::wire::fault::{BitFault, FaultPlan};
use crate::wire::framer::{Framer, Slot, Timebase};
use crate::wire::{Level, PS_PER_S, Polarity, Run, RunMerger, Symbol, WireError};

/// A UART transmitter that writes runs of electrical levels, in picoseconds.
///
/// Adjacent runs of the same level are merged, so a sink sees alternating levels; the last run
/// is held back until a different level follows or [`LineEncoder::flush`] is called.
#[derive(Clone, Debug)]
pub struct LineEncoder<'p> {
    framer: Framer<'p>,
    polarity: Polarity,
    line: LineSettings,
    tb: Timebase,
    /// Nominal position (1/256 bit) of the next character's start edge.
    nom: u64,
    /// Picoseconds written so far, pending run included.
    now: u64,
    /// Output, coalesced by level.
    runs: RunMerger,
    slot: Slot,
}

impl<'p> LineEncoder<'p> {
    /// A transmitter for `line` sending with `polarity` ([`Polarity::Inverted`] for a meter's P1
    /// port), applying `plan`. Fails on a baud rate, framing or plan the model cannot send.
    pub fn new(line: LineSettings, polarity: Polarity, plan: FaultPlan<&'p [BitFault]>) -> Result<Self, WireError> {
        let framer = Framer::new(line, plan)?;
        let tb = Timebase::new(u128::from(PS_PER_S), u128::from(line.baud), plan.skew_ppm);
        Ok(LineEncoder { framer, polarity, line, tb, nom: 0, now: 0, runs: RunMerger::new(), slot: Slot::new() })
    }

    pub fn line(&self) -> LineSettings {
        self.line
    }

    pub fn polarity(&self) -> Polarity {
        self.polarity
    }

    /// Picoseconds on the line so far.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Characters sent so far: the index the next byte has in the fault plan.
    pub fn chars(&self) -> u64 {
        self.framer.chars()
    }

    /// Sends one character; returns the time of its start edge.
    pub fn encode_byte(&mut self, byte: u8, sink: &mut impl FnMut(Run)) -> u64 {
        let start = self.now;
        self.framer.frame(byte, &mut self.slot);
        for i in 0..self.slot.len() {
            let (sym, end) = self.slot.segment(i);
            let t = self.tb.map(self.nom + end);
            let level = self.polarity.level(sym);
            self.put(level, t - self.now, sink);
        }
        self.nom += self.slot.total();
        start
    }

    /// Sends characters back to back (plus the plan's gap and faults).
    pub fn encode(&mut self, bytes: &[u8], sink: &mut impl FnMut(Run)) {
        for &b in bytes {
            self.encode_byte(b, sink);
        }
    }

    /// Holds the line idle (mark) for `ps` picoseconds, exactly: idle between telegrams is
    /// timed by the meter's software, not by bit times.
    pub fn idle(&mut self, ps: u64, sink: &mut impl FnMut(Run)) {
        self.put(self.polarity.level(Symbol::Mark), ps, sink);
        self.tb.anchor(self.nom, self.now);
    }

    /// Emits the run held back for merging.
    pub fn flush(&mut self, sink: &mut impl FnMut(Run)) {
        self.runs.flush(sink);
    }

    fn put(&mut self, level: Level, ps: u64, sink: &mut impl FnMut(Run)) {
        self.now = self.now.saturating_add(ps);
        self.runs.put(level, ps, sink);
    }
}

/// Encodes `bytes` between `lead` and `tail` picoseconds of idle into a vector.
#[cfg(feature = "alloc")]
pub fn encode_to_vec(
    line: LineSettings,
    polarity: Polarity,
    plan: FaultPlan<&[BitFault]>,
    bytes: &[u8],
    lead: u64,
    tail: u64,
) -> Result<alloc::vec::Vec<Run>, WireError> {
    let mut enc = LineEncoder::new(line, polarity, plan)?;
    let mut runs = alloc::vec::Vec::with_capacity(bytes.len() * 6 + 2);
    let mut sink = |r| runs.push(r);
    enc.idle(lead, &mut sink);
    enc.encode(bytes, &mut sink);
    enc.idle(tail, &mut sink);
    enc.flush(&mut sink);
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Framing;
    use crate::wire::BitSpan;

    const BIT: u64 = 8_680_556; // one bit at 115200, rounded
    const LINE: LineSettings = LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 };

    fn levels(runs: &[Run]) -> Vec<(Level, u64)> {
        runs.iter().map(|r| (r.level, r.ps)).collect()
    }

    #[test]
    fn a_character_on_a_ttl_line() {
        let runs = encode_to_vec(LINE, Polarity::Normal, FaultPlan::CLEAN, b"U", BIT, BIT).unwrap();
        // 'U' = 0x55: start 0, then 1 0 1 0 1 0 1 0, stop 1 merging with the tail.
        use Level::*;
        let got = levels(&runs);
        assert_eq!(got.len(), 11);
        assert_eq!(got[0], (High, BIT));
        for (i, (l, _)) in got[1..10].iter().enumerate() {
            assert_eq!(*l, if i % 2 == 0 { Low } else { High }, "run {i}");
        }
        assert_eq!(got[10].0, High, "the stop bit merges with the tail");
        // Edges land on exact multiples of the bit time, rounded to the picosecond.
        let ends: Vec<u64> = runs.iter().scan(0, |t, r| Some(*t + r.ps).inspect(|v| *t = *v)).collect();
        assert_eq!(ends[1], BIT + 8_680_556);
        assert_eq!(ends[5], BIT + 43_402_778, "5 bits are 43402777.8 ps");
        assert_eq!(crate::wire::duration(&runs), 2 * BIT + 86_805_556);
    }

    #[test]
    fn p1_polarity_inverts_every_run() {
        let ttl = encode_to_vec(LINE, Polarity::Normal, FaultPlan::CLEAN, b"/X", BIT, BIT).unwrap();
        let p1 = encode_to_vec(LINE, Polarity::Inverted, FaultPlan::CLEAN, b"/X", BIT, BIT).unwrap();
        assert_eq!(ttl.len(), p1.len());
        for (a, b) in ttl.iter().zip(&p1) {
            assert_eq!((a.level.flip(), a.ps), (b.level, b.ps));
        }
        assert_eq!(p1[0].level, Level::Low, "the P1 line idles low");
    }

    #[test]
    fn skew_shortens_every_bit() {
        let plan = FaultPlan { skew_ppm: 30_000, ..FaultPlan::CLEAN };
        let runs = encode_to_vec(LINE, Polarity::Normal, plan, &[0x00], 0, 0).unwrap();
        // 0x00: nine bit times of space (start + data), then the stop bit.
        assert_eq!(runs[0], Run::new(Level::Low, 75_849_515), "9 bits at 115200 * 1.03");
        assert_eq!(runs[1], Run::new(Level::High, 84_277_238 - 75_849_515));
    }

    #[test]
    fn the_gap_and_idle_separate_characters() {
        let plan = FaultPlan { gap: BitSpan::bits(2), ..FaultPlan::CLEAN };
        let mut enc = LineEncoder::new(LINE, Polarity::Normal, plan).unwrap();
        let mut runs = Vec::new();
        let mut sink = |r| runs.push(r);
        assert_eq!(enc.encode_byte(0xFF, &mut sink), 0);
        assert_eq!(enc.encode_byte(0xFF, &mut sink), 104_166_667, "10 bits + 2 bits of gap");
        enc.idle(1000, &mut sink);
        assert_eq!(enc.encode_byte(0xFF, &mut sink), 208_333_333 + 1000);
        enc.flush(&mut sink);
        assert_eq!(enc.chars(), 3);
        assert_eq!(runs[0], Run::new(Level::Low, BIT));
    }
}
