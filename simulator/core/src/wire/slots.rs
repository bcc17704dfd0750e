//! The rig's oversampled slot encoder: bytes to the 32-bit words a PIO state machine shifts
//! out one slot per cycle, with every bit, glitch and skew decided by the CPU.
//!
//! # The PIO side
//!
//! The firmware runs a one-instruction program on a state machine whose OUT pin is the P1 data
//! line (directly, or through the rig's open-collector stage):
//!
//! ```text
//! .wrap_target
//!     out pins, 1        ; one slot per PIO cycle
//! .wrap
//! ```
//!
//! configured with autopull at 32 bits, OUT shift direction **right** (so bit 0 of each word is
//! the first slot), the TX FIFO joined, and a clock divider of `clk_sys / (baud * oversample)`
//! ([`SlotEncoder::clock_divider`] computes it). With 8 slots per bit (the default) a glitch or
//! an edge can be placed at 1/8-bit resolution, and a flipped stop bit, a 7E1 frame or a +3 %
//! baud skew are just different slot patterns: no other PIO program is needed.
//!
//! Each bit of a word is the *electrical* level of the pin in that slot: 1 is high. With
//! [`Polarity::Inverted`] (the P1 port) the idle line is 0, so [`SlotEncoder::idle_word`] is
//! `0x0000_0000`. When the TX FIFO runs empty the state machine stalls on the autopull and the
//! pin keeps the level of the last slot, which is why the encoder always leaves the line idle
//! when its source runs dry.
//!
//! # The CPU side
//!
//! ```
//! use p1sim_core::spec::{Framing, LineSettings};
//! use p1sim_core::wire::{BitFault, FaultPlan, SlotConfig, SlotEncoder};
//!
//! // A DSMR 5 meter: 115200 8N1, P1 polarity, 8 slots per bit; flip the stop bit of byte 3.
//! let faults = [BitFault::Flip { char: 3, bit: 9 }];
//! let plan = FaultPlan { faults: &faults[..], ..FaultPlan::CLEAN };
//! let cfg = SlotConfig::p1(LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 });
//! let mut enc = SlotEncoder::new(cfg, plan).unwrap();
//!
//! let div = enc.clock_divider(125_000_000); // 135 + 162/256 at 125 MHz
//! assert_eq!((div.int, div.frac), (135, 162));
//!
//! let mut telegram = b"/ISK5\\2M550T-1012\r\n".iter().copied();
//! let mut words = [0u32; 64];
//! let filled = enc.fill(&mut words, &mut telegram);
//! assert!(filled.drained);                    // all bytes framed, the line left idle
//! // 19 bytes * 10 bits * 8 slots = 1520 slots = 47.5 words, padded to 48 with idle slots.
//! assert_eq!(filled.words, 48);
//! assert_eq!(words[47] >> 16, 0, "idle is low on the P1 line");
//! // On the rig: for w in &words[..filled.words] { sm_tx.write(*w) } (or hand them to DMA).
//! ```
//!
//! `fill` never allocates, keeps its place when `words` is full in the middle of a character,
//! and costs little per character on a Cortex-M0+: no division, and without faults or gap no
//! multiplication either (segment ends of whole bits come from a table).

use crate::spec::LineSettings;
use crate::wire::fault::{BitFault, FaultPlan, SUB};
use crate::wire::framer::{Framer, Slot, Timebase};
use crate::wire::{Level, PS_PER_S, Polarity, Run, Symbol, WireError};

/// Four bits at 8 slots per bit: bit `i` of the index set makes slots `8i..8i+8` high.
const EXPAND8: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut b = 0;
        while b < 4 {
            if i >> b & 1 == 1 {
                t[i] |= 0xFF << (8 * b);
            }
            b += 1;
        }
        i += 1;
    }
    t
};

/// How the rig puts slots on the pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotConfig {
    pub line: LineSettings,
    /// Slots per bit, 1 to 32. The rig uses 8.
    pub oversample: u8,
    /// [`Polarity::Inverted`] for a P1 line, [`Polarity::Normal`] for a TTL UART.
    pub polarity: Polarity,
}

impl SlotConfig {
    /// The rig's default: 8 slots per bit, P1 polarity.
    pub const fn p1(line: LineSettings) -> SlotConfig {
        SlotConfig { line, oversample: 8, polarity: Polarity::Inverted }
    }
}

/// A PIO clock divider in the hardware's 16.8 fixed-point format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockDivider {
    pub int: u16,
    pub frac: u8,
}

impl ClockDivider {
    /// The slot rate this divider gives at `clk_sys_hz`, in hertz times 256 (for exactness).
    pub fn slot_hz_x256(self, clk_sys_hz: u32) -> u64 {
        let div256 = u64::from(self.int) * 256 + u64::from(self.frac);
        u64::from(clk_sys_hz) * 65_536 / div256.max(1)
    }
}

/// What one [`SlotEncoder::fill`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filled {
    /// Words written at the start of the buffer.
    pub words: usize,
    /// The source ran dry: every byte taken is fully in the written words, and the last slot
    /// is idle. `false` means the buffer filled first; call again to continue.
    pub drained: bool,
}

/// Turns a byte source into oversampled PIO words, applying a fault plan. See the module docs.
#[derive(Clone, Debug)]
pub struct SlotEncoder<'p> {
    framer: Framer<'p>,
    cfg: SlotConfig,
    /// Slots per 1/256 bit, 32.32 fixed point, skew applied (under 2^31: at most 32 slots per
    /// bit at -50 % skew).
    scale: u64,
    /// `scale` times 0 to 12 whole bits: the segment ends of a character without faults, looked
    /// up instead of multiplied (the M0+ has no 64-bit multiply).
    per_bit: [u64; 13],
    /// `scale` times the plan's gap, for the fast path of characters without faults; `None`
    /// for gaps so long (over 65,536 bits) that only the general path computes them exactly.
    gap_q32: Option<u64>,
    /// Slots per bit when that is a whole number up to 32 (no skew, or a skew that divides
    /// evenly), else 0: then characters starting on a slot edge are whole-bit slot patterns.
    whole_bit: u32,
    /// The current character's start edge in slots: whole slots, and the fraction in 1/2^32.
    /// Carried exactly from character to character, so rounding never accumulates.
    start: u64,
    frac: u32,
    /// Whether mark is a high pin.
    mark_high: bool,
    /// Slots written so far (including those still in `acc`).
    slots: u64,
    slot: Slot,
    /// Next segment of `slot` to write; `slot.len()` when no character is in progress.
    seg: usize,
    acc: u32,
    nacc: u32,
    last_high: bool,
}

impl<'p> SlotEncoder<'p> {
    /// An encoder for `cfg` applying `plan`. Fails on settings the model cannot send, and on
    /// glitches narrower than one slot, which would silently vanish.
    pub fn new(cfg: SlotConfig, plan: FaultPlan<&'p [BitFault]>) -> Result<Self, WireError> {
        if !(1..=32).contains(&cfg.oversample) {
            return Err(WireError::Oversample(cfg.oversample));
        }
        let framer = Framer::new(cfg.line, plan)?;
        for (index, f) in plan.faults.iter().enumerate() {
            if let BitFault::Glitch { width, .. } = f
                && width.0 * u32::from(cfg.oversample) < SUB
            {
                return Err(WireError::GlitchTooNarrow { index, oversample: cfg.oversample });
            }
        }
        let scale = Timebase::new(u128::from(cfg.oversample), 1, plan.skew_ppm).scale();
        let mut per_bit = [0u64; 13];
        for (k, p) in per_bit.iter_mut().enumerate() {
            *p = k as u64 * u64::from(SUB) * scale;
        }
        // Below 2^24 the product is exact and equals `offset_q32` of any whole-bit offset plus
        // the gap, which is what the general path computes for the same segment end.
        let gap_q32 = (framer.gap() < 1 << 24).then(|| framer.gap() * scale);
        // Up to a word per bit: the fast path ORs one bit's slots into at most two words.
        let whole_bit = match (per_bit[1] >> 32, per_bit[1] as u32) {
            (n @ 1..=32, 0) => n as u32,
            _ => 0,
        };
        let slot = Slot::new();
        let mark_high = cfg.polarity.level(Symbol::Mark).is_high();
        Ok(SlotEncoder {
            framer,
            cfg,
            scale,
            per_bit,
            gap_q32,
            whole_bit,
            start: 0,
            frac: 0,
            mark_high,
            slots: 0,
            seg: slot.len(),
            slot,
            acc: 0,
            nacc: 0,
            last_high: mark_high,
        })
    }

    /// `offset` (1/256 bit) in slots, 32.32 fixed point.
    #[inline]
    fn offset_q32(&self, offset: u64) -> u64 {
        let bits = (offset >> 8) as usize;
        if offset & 0xFF == 0 && bits < self.per_bit.len() {
            self.per_bit[bits]
        } else if offset <= u64::from(u32::MAX) {
            // Both factors under 2^32 and `scale` under 2^31: no overflow.
            offset * self.scale
        } else {
            // Idle and breaks of millions of bits; capped far beyond any real stream.
            (u128::from(offset) * u128::from(self.scale)).min(1 << 62) as u64
        }
    }

    /// The slot at which the current character's segment ending at `offset` ends (rounded to
    /// the nearest slot).
    #[inline]
    fn end_slot(&self, offset: u64) -> u64 {
        self.start + ((u64::from(self.frac) + self.offset_q32(offset) + (1 << 31)) >> 32)
    }

    pub fn config(&self) -> SlotConfig {
        self.cfg
    }

    /// Characters taken from sources so far: the index the next byte has in the fault plan.
    pub fn chars(&self) -> u64 {
        self.framer.chars()
    }

    /// Slots produced so far, including up to 31 not yet in a returned word.
    pub fn slots(&self) -> u64 {
        self.slots
    }

    /// A word of idle slots, for keeping the FIFO or a DMA ring busy while there is nothing to
    /// send: `0` on a P1 line, `0xFFFF_FFFF` on a TTL line.
    pub fn idle_word(&self) -> u32 {
        if self.cfg.polarity.level(Symbol::Mark).is_high() { u32::MAX } else { 0 }
    }

    /// The PIO clock divider for this baud rate and oversampling at `clk_sys_hz`, rounded to
    /// the nearest 1/256 and kept within the hardware's 1.0 to 65535.996.
    pub fn clock_divider(&self, clk_sys_hz: u32) -> ClockDivider {
        let rate = u64::from(self.cfg.line.baud) * u64::from(self.cfg.oversample);
        let div256 = (u64::from(clk_sys_hz) * 256 + rate / 2) / rate;
        let div256 = div256.clamp(256, 65_535 * 256 + 255);
        ClockDivider { int: (div256 >> 8) as u16, frac: (div256 & 0xFF) as u8 }
    }

    /// Fills `words` from the start with slots for bytes pulled from `src`, one character at a
    /// time, and returns how many words were written.
    ///
    /// - When `words` is full in the middle of a character, the encoder remembers where it was;
    ///   the next call continues with the same character before pulling another byte.
    /// - When `src` returns `None` between characters, the encoder completes the current word
    ///   with idle slots (adding a whole idle word if the last slot was not idle, e.g. after a
    ///   flipped final stop bit), so the pin rests idle when the state machine stalls, and
    ///   returns with `drained` set. Idle padding is up to 31 slots (under 4 bits at 8×) of extra
    ///   gap; the next character starts at the next slot after it.
    /// - Fault-plan character indices count every byte pulled, across calls.
    pub fn fill(&mut self, words: &mut [u32], src: &mut impl Iterator<Item = u8>) -> Filled {
        self.fill_marked(words, src, &mut |_| {})
    }

    /// [`SlotEncoder::fill`], also calling `frame_end` once for every byte pulled from `src`,
    /// with the slot (counted as [`SlotEncoder::slots`] counts) at which that character's frame
    /// ends: the end of its last stop bit, before any gap, idle or break. A state machine that
    /// counts the slots it shifted out can then tell exactly which characters went out whole.
    pub fn fill_marked(
        &mut self,
        words: &mut [u32],
        src: &mut impl Iterator<Item = u8>,
        frame_end: &mut impl FnMut(u64),
    ) -> Filled {
        let mut w = 0;
        loop {
            while self.seg < self.slot.len() {
                let (sym, end) = self.slot.segment(self.seg);
                let end_slot = self.end_slot(end);
                let high = (sym == Symbol::Mark) == self.mark_high;
                if !self.put(high, end_slot.saturating_sub(self.slots), words, &mut w) {
                    return Filled { words: w, drained: false };
                }
                self.seg += 1;
                if self.seg == self.slot.len() {
                    // The next character starts where this one's slot ends, fraction kept.
                    let q = u64::from(self.frac) + self.offset_q32(self.slot.total());
                    self.start += q >> 32;
                    self.frac = q as u32;
                }
            }
            if w == words.len() {
                return Filled { words: w, drained: false };
            }
            match src.next() {
                Some(b) => {
                    if !self.clean_char(b, words, &mut w, frame_end) {
                        self.framer.frame(b, &mut self.slot);
                        self.seg = 0;
                        frame_end(self.end_slot(u64::from(self.framer.frame_len()) * u64::from(SUB)));
                    }
                }
                None => {
                    let idle = self.mark_high;
                    let pad = if self.nacc > 0 {
                        32 - self.nacc
                    } else if self.last_high != idle {
                        32
                    } else {
                        0
                    };
                    // Room is guaranteed: `w < words.len()` here, and `acc` holds under 32 slots.
                    self.put(idle, u64::from(pad), words, &mut w);
                    // The next character starts on the slot after the padding.
                    self.start = self.slots;
                    self.frac = 0;
                    return Filled { words: w, drained: true };
                }
            }
        }
    }

    /// The fast path: writes a character without faults bit by bit straight into `words`, with
    /// every bit's end looked up rather than multiplied and no segment list built. Returns
    /// `false` (having taken nothing) when the character has faults of its own, the gap is too
    /// long for it, or `words` lacks room for the whole character; the general path then
    /// frames it and can stop mid-character. Bit ends are rounded exactly as the general
    /// path rounds its segment ends, which are a subset of them, so the slots are the same.
    #[inline]
    fn clean_char(&mut self, byte: u8, words: &mut [u32], w: &mut usize, frame_end: &mut impl FnMut(u64)) -> bool {
        let Some(gap_q32) = self.gap_q32 else { return false };
        if !self.framer.next_is_clean() {
            return false;
        }
        let len = self.framer.frame_len() as usize;
        // Rounding to the nearest slot: the fraction, plus one half.
        let base = u64::from(self.frac) + (1 << 31);
        let total = self.per_bit[len] + gap_q32;
        let end = self.start + ((base + total) >> 32);
        let room = (words.len() - *w) as u64 * 32 - u64::from(self.nacc);
        if end.saturating_sub(self.slots) > room {
            return false;
        }
        // Within the character everything is a small count of slots from its start edge, kept
        // in 32-bit locals: the M0+ has eight low registers and no 64-bit arithmetic to spare.
        // Ends are `start + (base + scale * offset) >> 32`, the general path's rounding.
        let Some(pos) = self.slots.checked_sub(self.start).and_then(|p| u32::try_from(p).ok()) else {
            return false;
        };
        let frame = self.framer.take_clean(byte);
        frame_end(self.start + ((base + self.per_bit[len]) >> 32));
        let rel = |q: u64| ((base + q) >> 32) as u32;
        let (mut acc, mut nacc, mut pos, mut at) = (self.acc, self.nacc, pos, *w);
        let mut last_high = self.last_high;
        let n = self.whole_bit;
        let mut first = 0;
        if n > 0 && self.frac == 0 && pos == 0 {
            // Every bit is exactly `n` slots from a slot edge (the common case: no skew, as
            // the rig runs): each bit ORs `n` ones or zeros into the word, and the rounding
            // of ends is moot. The stop bits' mark is followed by the gap's (below).
            let ones = if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
            let bits = if self.mark_high { frame.bits } else { !frame.bits };
            let mut k = 0;
            if n == 8 {
                // The rig's 8 slots per bit: four bits make a whole word, looked up.
                while k + 4 <= len {
                    let x = EXPAND8[usize::from((bits >> k) & 0xF)];
                    acc |= x << nacc;
                    if let Some(slot) = words.get_mut(at) {
                        *slot = acc;
                    }
                    at += 1;
                    acc = if nacc == 0 { 0 } else { x >> (32 - nacc) };
                    k += 4;
                }
            }
            while k < len {
                let fill = if (bits >> k) & 1 == 1 { ones } else { 0 };
                acc |= fill << nacc;
                let next = nacc + n;
                if next < 32 {
                    nacc = next;
                    k += 1;
                    continue;
                }
                if let Some(slot) = words.get_mut(at) {
                    *slot = acc;
                }
                at += 1;
                // What did not fit: nacc > 0 here unless n == 32, when nothing is left over.
                acc = if next == 32 { 0 } else { fill >> (32 - nacc) };
                nacc = next - 32;
                k += 1;
            }
            pos = len as u32 * n;
            last_high = self.mark_high;
            // Only the gap after the last stop bit is left, for the loop below.
            first = len - 1;
        }
        for k in first..len {
            let high = ((frame.bits >> k) & 1 == 1) == self.mark_high;
            // The stop bits and the gap are all mark: the last bit runs to the gap's end.
            let end = rel(if k + 1 == len { total } else { self.per_bit[k + 1] });
            let Some(mut count) = end.checked_sub(pos).filter(|&c| c > 0) else { continue };
            pos = end;
            last_high = high;
            let fill = if high { u32::MAX } else { 0 };
            loop {
                let free = 32 - nacc;
                if count < free {
                    // count < 32 here, so the shift is in range.
                    acc |= (fill & ((1u32 << count) - 1)) << nacc;
                    nacc += count;
                    break;
                }
                acc |= fill << nacc;
                if let Some(slot) = words.get_mut(at) {
                    *slot = acc;
                }
                at += 1;
                acc = 0;
                nacc = 0;
                count -= free;
            }
        }
        self.slots = self.start + u64::from(pos);
        (self.acc, self.nacc, self.last_high, *w) = (acc, nacc, last_high, at);
        let q = u64::from(self.frac) + total;
        self.start += q >> 32;
        self.frac = q as u32;
        true
    }

    /// Appends `count` slots at `high`; `false` if `words` filled up before all were written.
    #[inline]
    fn put(&mut self, high: bool, mut count: u64, words: &mut [u32], w: &mut usize) -> bool {
        while count > 0 {
            if *w == words.len() {
                return false;
            }
            let m = count.min(u64::from(32 - self.nacc)) as u32;
            if high {
                let mask = if m == 32 { u32::MAX } else { (1u32 << m) - 1 };
                self.acc |= mask << self.nacc;
            }
            self.nacc += m;
            count -= u64::from(m);
            self.slots += u64::from(m);
            self.last_high = high;
            if self.nacc == 32 {
                words[*w] = self.acc;
                *w += 1;
                self.acc = 0;
                self.nacc = 0;
            }
        }
        true
    }
}

/// The runs a pin driven by `slots` slots of `words` shows, at `baud` with `oversample` slots
/// per bit: the host-side view of what the rig puts on the line, for checking a slot stream
/// with the [`Receiver`](crate::wire::Receiver). Slot `k` starts at `floor(k * 1e12 / (baud *
/// oversample))` picoseconds, so long streams do not drift.
pub fn slots_to_runs(words: &[u32], slots: u64, baud: u32, oversample: u8, sink: &mut impl FnMut(Run)) {
    let rate = u128::from(baud) * u128::from(oversample.max(1));
    let at = |k: u64| (u128::from(k) * u128::from(PS_PER_S) / rate) as u64;
    let slots = slots.min(words.len() as u64 * 32);
    let mut start = 0u64;
    let mut k = 0u64;
    while k < slots {
        let bit = |k: u64| (words[(k / 32) as usize] >> (k % 32)) & 1 == 1;
        let high = bit(k);
        let mut end = k + 1;
        // Skip whole words of the same level at once: idle and breaks are long.
        while end < slots {
            if end.is_multiple_of(32) && end + 32 <= slots {
                let word = words[(end / 32) as usize];
                if word == if high { u32::MAX } else { 0 } {
                    end += 32;
                    continue;
                }
            }
            if bit(end) != high {
                break;
            }
            end += 1;
        }
        let t = at(end);
        sink(Run::new(if high { Level::High } else { Level::Low }, t - start));
        start = t;
        k = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Framing;
    use crate::wire::BitSpan;

    const LINE: LineSettings = LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 };

    fn ttl(oversample: u8) -> SlotConfig {
        SlotConfig { line: LINE, oversample, polarity: Polarity::Normal }
    }

    fn encode(cfg: SlotConfig, plan: FaultPlan<&[BitFault]>, bytes: &[u8]) -> (Vec<u32>, Filled) {
        let mut enc = SlotEncoder::new(cfg, plan).unwrap();
        let mut words = vec![0u32; 256];
        let filled = enc.fill(&mut words, &mut bytes.iter().copied());
        words.truncate(filled.words);
        (words, filled)
    }

    #[test]
    fn one_character_at_8x_is_80_slots_lsb_first() {
        let (words, filled) = encode(ttl(8), FaultPlan::CLEAN, &[0x01]);
        assert!(filled.drained);
        assert_eq!(filled.words, 3);
        // Slots 0-7 start (low), 8-15 data bit 0 (high), 16-71 data bits 1-7 (low),
        // 72-79 stop (high), 80-95 idle padding (high).
        assert_eq!(words, [0x0000_FF00, 0x0000_0000, 0xFFFF_FF00]);
    }

    #[test]
    fn p1_polarity_idles_low() {
        let (words, _) = encode(SlotConfig::p1(LINE), FaultPlan::CLEAN, &[0x01]);
        assert_eq!(words, [0xFFFF_00FF, 0xFFFF_FFFF, 0x0000_00FF]);
    }

    #[test]
    fn a_flipped_last_stop_bit_is_followed_by_an_idle_word() {
        // 4 characters = 320 slots = exactly 10 words; the flip leaves slots 312-319 low.
        let faults = [BitFault::Flip { char: 3, bit: 9 }];
        let plan = FaultPlan { faults: &faults[..], ..FaultPlan::CLEAN };
        let (words, filled) = encode(ttl(8), plan, &[0xFF; 4]);
        assert_eq!(filled.words, 11);
        assert_eq!(words[9] >> 24, 0x00, "the flipped stop bit");
        assert_eq!(words[10], u32::MAX, "one idle word so the stalled pin rests idle");
        let (clean, filled) = encode(ttl(8), FaultPlan::CLEAN, &[0xFF; 4]);
        assert_eq!((filled.words, clean[9] >> 24), (10, 0xFF), "a clean stream needs no padding");
    }

    #[test]
    fn a_full_buffer_resumes_mid_character() {
        let bytes = b"/KFM5KAIFA-METER\r\n\r\n1-0:1.8.1(001234.567*kWh)\r\n!";
        let (all, _) = encode(ttl(8), FaultPlan::CLEAN, bytes);
        let mut enc = SlotEncoder::new(ttl(8), FaultPlan::CLEAN).unwrap();
        let mut src = bytes.iter().copied();
        let mut pieces = Vec::new();
        loop {
            let mut buf = [0u32; 3];
            let f = enc.fill(&mut buf, &mut src);
            pieces.extend_from_slice(&buf[..f.words]);
            if f.drained {
                break;
            }
        }
        assert_eq!(pieces, all);
        assert_eq!(enc.chars(), bytes.len() as u64);
    }

    #[test]
    fn skew_stretches_slots_and_glitches_land_on_slots() {
        // -20 %: every bit is 10 slots instead of 8.
        let plan = FaultPlan { skew_ppm: -200_000, ..FaultPlan::CLEAN };
        let (words, _) = encode(ttl(8), plan, &[0x00]);
        assert_eq!(words[0], 0, "start + data bits 0-2 low");
        assert_eq!(words[2] & 0xFFFF, 0, "slots 64-79: data bit 6 and 7 low");
        assert_eq!(words[2] >> 26, 0x3F, "stop bit from slot 90, idle after");
        assert_eq!((words[2] >> 16) & 0x3FF, 0, "data bit 7 ends at slot 90");
        // A half-bit high glitch in the middle of the start bit: slots 2-5.
        let faults = [BitFault::Glitch { char: 0, at: BitSpan(64), width: BitSpan(128), level: Symbol::Mark }];
        let plan = FaultPlan { faults: &faults[..], ..FaultPlan::CLEAN };
        let (words, _) = encode(ttl(8), plan, &[0x00]);
        assert_eq!(words[0], 0b0011_1100);
    }

    #[test]
    fn bad_settings_are_refused() {
        let narrow = [BitFault::Glitch { char: 0, at: BitSpan(0), width: BitSpan(31), level: Symbol::Mark }];
        let plan = FaultPlan { faults: &narrow[..], ..FaultPlan::CLEAN };
        assert_eq!(SlotEncoder::new(ttl(8), plan).unwrap_err(), WireError::GlitchTooNarrow { index: 0, oversample: 8 });
        assert_eq!(SlotEncoder::new(ttl(0), FaultPlan::CLEAN).unwrap_err(), WireError::Oversample(0));
        assert_eq!(SlotEncoder::new(ttl(33), FaultPlan::CLEAN).unwrap_err(), WireError::Oversample(33));
    }

    #[test]
    fn clock_dividers_follow_the_system_clock() {
        let enc = SlotEncoder::new(SlotConfig::p1(LINE), FaultPlan::CLEAN).unwrap();
        // 125 MHz / 115200 = 1085.07: 1 slot per bit at 115200 is 1085 + 18/256.
        let one = SlotEncoder::new(ttl(1), FaultPlan::CLEAN).unwrap();
        assert_eq!(one.clock_divider(125_000_000), ClockDivider { int: 1085, frac: 18 });
        let div = enc.clock_divider(125_000_000);
        // 125 MHz / 135.6328 = 921,605 slots/s: 115,200.7 baud.
        assert_eq!(div.slot_hz_x256(125_000_000) / 256, 921_605);
        assert_eq!(enc.idle_word(), 0);
    }

    #[test]
    fn slot_runs_are_the_pin_waveform() {
        let (words, _) = encode(ttl(8), FaultPlan::CLEAN, &[0x01]);
        let mut runs = Vec::new();
        slots_to_runs(&words, 96, 115_200, 8, &mut |r| runs.push(r));
        let bit = 8_680_555; // 8 slots of 1,085,069.4 ps, floored at the end
        assert_eq!(
            runs,
            [
                Run::new(Level::Low, bit),
                Run::new(Level::High, 17_361_111 - bit),
                Run::new(Level::Low, 78_125_000 - 17_361_111),
                Run::new(Level::High, 104_166_666 - 78_125_000),
            ]
        );
    }

    #[test]
    fn frame_ends_mark_the_last_stop_bit() {
        // 8N1 at 8x: every frame is 80 slots; the gap of half a bit (4 slots) is not part of it.
        let plan = FaultPlan { gap: BitSpan(128), ..FaultPlan::CLEAN };
        let mut enc = SlotEncoder::new(ttl(8), plan).unwrap();
        let mut ends = Vec::new();
        let mut words = [0u32; 64];
        enc.fill_marked(&mut words, &mut [0x55u8, 0xAA, 0x00].into_iter(), &mut |e| ends.push(e));
        assert_eq!(ends, [80, 164, 248]);
        // A break after the first character delays the next frame but not the first's end.
        let faults = [BitFault::Break { after: 0, length: BitSpan::bits(5) }];
        let mut enc = SlotEncoder::new(ttl(8), FaultPlan { faults: &faults[..], ..FaultPlan::CLEAN }).unwrap();
        let mut ends = Vec::new();
        enc.fill_marked(&mut words, &mut [0x55u8, 0xAA].into_iter(), &mut |e| ends.push(e));
        assert_eq!(ends, [80, 80 + 48 + 80]);
    }

    mod props {
        use super::*;
        use crate::spec::Parity;
        use proptest::prelude::*;

        /// A fault on one of the first 64 characters; bits and widths are fitted to the framing
        /// and oversampling in the test.
        fn fault() -> impl Strategy<Value = BitFault> {
            prop_oneof![
                (0u32..64, any::<u8>()).prop_map(|(char, bit)| BitFault::Flip { char, bit }),
                (0u32..64, 0u32..3500, 0u32..600, any::<bool>()).prop_map(|(char, at, width, mark)| {
                    BitFault::Glitch {
                        char,
                        at: BitSpan(at),
                        width: BitSpan(width),
                        level: if mark { Symbol::Mark } else { Symbol::Space },
                    }
                }),
                (0u32..64, 0u32..4000).prop_map(|(after, l)| BitFault::Idle { after, length: BitSpan(l) }),
                (0u32..64, 0u32..4000).prop_map(|(after, l)| BitFault::Break { after, length: BitSpan(l) }),
            ]
        }

        /// Everything one encoder produced: words and `Filled`s of every call, frame ends.
        fn run(mut enc: SlotEncoder<'_>, bytes: &[u8], buf: usize) -> (Vec<u32>, Vec<Filled>, Vec<u64>, u64, u64) {
            let (mut words, mut filled, mut ends) = (Vec::new(), Vec::new(), Vec::new());
            // Two bursts with the source running dry between them.
            for part in [&bytes[..bytes.len() / 2], &bytes[bytes.len() / 2..]] {
                let mut src = part.iter().copied();
                loop {
                    let mut b = vec![0u32; buf];
                    let f = enc.fill_marked(&mut b, &mut src, &mut |e| ends.push(e));
                    words.extend_from_slice(&b[..f.words]);
                    filled.push(f);
                    if f.drained {
                        break;
                    }
                }
            }
            (words, filled, ends, enc.slots(), enc.chars())
        }

        proptest! {
            /// The fast path for characters without faults writes exactly the slots the general
            /// path (segments of a framed slot) writes, whatever the buffer size, framing,
            /// oversampling, skew, gap and the faults on other characters.
            #[test]
            fn the_fast_path_matches_the_general_path(
                data_bits in 5u8..=8, parity in 0usize..3, stop_bits in 1u8..=2,
                oversample in prop_oneof![Just(8u8), 1u8..=32],
                skew in prop_oneof![Just(0i32), Just(-500_000), Just(-250_000), -500_000i32..=500_000],
                gap in prop_oneof![Just(0u32), 0u32..2048], inverted in any::<bool>(), buf in 1usize..40,
                bytes in proptest::collection::vec(any::<u8>(), 1..64),
                faults in proptest::collection::vec(fault(), 0..5),
            ) {
                let framing = Framing {
                    data_bits, parity: [Parity::None, Parity::Even, Parity::Odd][parity], stop_bits,
                };
                let frame_len = framing.bits_per_char() as u8;
                let min_width = SUB.div_ceil(u32::from(oversample));
                let mut faults: Vec<BitFault> = faults
                    .into_iter()
                    .map(|f| match f {
                        BitFault::Flip { char, bit } => BitFault::Flip { char, bit: bit % frame_len },
                        BitFault::Glitch { char, at, width, level } => {
                            BitFault::Glitch { char, at, width: BitSpan(width.0.max(min_width)), level }
                        }
                        other => other,
                    })
                    .collect();
                crate::wire::fault::sort_faults(&mut faults);
                let cfg = SlotConfig {
                    line: LineSettings { baud: 115_200, framing },
                    oversample,
                    polarity: if inverted { Polarity::Inverted } else { Polarity::Normal },
                };
                let plan = FaultPlan { faults: &faults[..], skew_ppm: skew, gap: BitSpan(gap) };
                let Ok(fast) = SlotEncoder::new(cfg, plan) else { return Ok(()) };
                let mut general = fast.clone();
                general.gap_q32 = None;
                prop_assert_eq!(run(fast, &bytes, buf), run(general, &bytes, buf));
            }
        }
    }
}
