//! Bit-level faults, applied while a character stream is put on the line: flipped bits (parity
//! and framing errors), glitches at sub-bit resolution, transmitter baud skew, extra idle
//! between characters and breaks.
//!
//! A plan borrows its faults as a slice, so the firmware can keep one in a `static` or on the
//! stack; on the host a `FaultPlan<Vec<BitFault>>` deserializes from a scenario file. Faults
//! name characters by their index in the stream (0 = the first byte the encoder takes), and
//! must be listed in character order so the encoders can walk them with a cursor.
//!
//! In TOML, with offsets and lengths in bits (fractions allowed, resolution 1/256 bit):
//!
//! ```toml
//! skew_ppm = 30000          # the meter's clock runs 3 % fast
//! gap = 0.5                 # half a bit of extra idle after every character
//! faults = [
//!   { flip = { char = 3, bit = 9 } },                                   # 8N1 stop bit: framing error
//!   { glitch = { char = 5, at = 3.5, width = 0.25, level = "mark" } },  # a quarter-bit spike
//!   { idle = { after = 7, length = 20 } },
//!   { break = { after = 9, length = 30 } },
//! ]
//! ```

use core::fmt;

use crate::spec::Framing;
use crate::wire::coding::CharFrame;
use crate::wire::{Symbol, WireError};

/// Sub-bit resolution of fault positions: 1/256 of a bit.
pub const SUB: u32 = 256;

/// Glitches one character may carry.
pub const MAX_GLITCHES: usize = 4;

/// Idle and break faults that may follow one character.
pub const MAX_EXTRAS: usize = 4;

/// Skew limit: a transmitter off by more than half its rate is not a UART any more.
pub const MAX_SKEW_PPM: i32 = 500_000;

/// A length or offset in bits, in steps of 1/256 bit. Written as a number of bits in scenario
/// files (`3.5`); fractions finer than 1/256 round to the nearest step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BitSpan(pub u32);

impl BitSpan {
    pub const ZERO: BitSpan = BitSpan(0);

    /// Whole bits.
    pub const fn bits(n: u32) -> BitSpan {
        BitSpan(n.saturating_mul(SUB))
    }

    /// In 1/256 bit.
    pub const fn sub(n: u32) -> BitSpan {
        BitSpan(n)
    }

    /// Length in bits as a float (for display).
    pub fn as_bits(self) -> f64 {
        f64::from(self.0) / f64::from(SUB)
    }

    /// From a number of bits; `None` for negative, NaN or absurdly long (over 16 million bits).
    pub fn from_bits_f64(bits: f64) -> Option<BitSpan> {
        let sub = bits * f64::from(SUB);
        if !(0.0..=f64::from(u32::MAX)).contains(&sub) {
            return None;
        }
        // Round half up without `f64::round`, which core lacks.
        Some(BitSpan((sub + 0.5) as u32))
    }
}

impl fmt::Display for BitSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / SUB;
        let frac = self.0 % SUB;
        if frac == 0 { write!(f, "{whole}") } else { write!(f, "{}", self.as_bits()) }
    }
}

impl serde::Serialize for BitSpan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(SUB) { s.serialize_u32(self.0 / SUB) } else { s.serialize_f64(self.as_bits()) }
    }
}

impl<'de> serde::Deserialize<'de> for BitSpan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = BitSpan;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative number of bits, e.g. 3 or 0.25")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<BitSpan, E> {
                u32::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(SUB))
                    .map(BitSpan)
                    .ok_or_else(|| E::custom("a bit count over 16 million bits"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<BitSpan, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom("a negative number of bits; lengths and offsets are 0 or more")),
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<BitSpan, E> {
                BitSpan::from_bits_f64(v).ok_or_else(|| E::custom("a negative, huge or NaN number of bits"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One bit-level fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum BitFault {
    /// Inverts bit time `bit` of character `char`: 0 is the start bit, 1 to `data_bits` the
    /// data bits LSB first, then the parity bit, then the stop bits (see [`crate::wire::coding`]).
    /// A flipped stop bit is a framing error, a flipped parity bit a parity error, a flipped
    /// start bit makes the receiver start on a later edge.
    Flip { char: u32, bit: u8 },
    /// Forces the line to `level` for `width`, starting `at` after the start edge of character
    /// `char`. The glitch may reach into the idle after the character but ends where the next
    /// character's start bit begins.
    Glitch { char: u32, at: BitSpan, width: BitSpan, level: Symbol },
    /// Extra idle (mark) of `length` after character `after` (after its stop bits and the plan's
    /// `gap`).
    Idle { after: u32, length: BitSpan },
    /// A break after character `after`: space for `length`, then one bit time of mark so the
    /// next start bit has an edge.
    Break { after: u32, length: BitSpan },
}

impl BitFault {
    /// The character the fault belongs to; plans list faults in this order.
    pub const fn char(&self) -> u32 {
        match *self {
            BitFault::Flip { char, .. } | BitFault::Glitch { char, .. } => char,
            BitFault::Idle { after, .. } | BitFault::Break { after, .. } => after,
        }
    }
}

/// Orders faults by character, keeping the listed order among faults of the same character
/// (an insertion sort: stable without an allocator, and linear for nearly sorted lists).
pub fn sort_faults(faults: &mut [BitFault]) {
    for i in 1..faults.len() {
        let mut j = i;
        while j > 0 && faults[j - 1].char() > faults[j].char() {
            faults.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// What to do to a character stream on its way to the line.
///
/// `F` holds the faults: `&[BitFault]` without an allocator, `Vec<BitFault>` when deserialized
/// from a scenario, `[BitFault; N]` for a fixed plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan<F> {
    /// Faults in character order.
    #[serde(default)]
    pub faults: F,
    /// Transmitter clock error in parts per million: +30000 sends 3 % fast (shorter bits). It
    /// scales every time on the line, idle included.
    #[serde(default)]
    pub skew_ppm: i32,
    /// Extra idle after every character.
    #[serde(default)]
    pub gap: BitSpan,
}

impl FaultPlan<&'static [BitFault]> {
    /// No faults: the line as a perfect transmitter sends it.
    pub const CLEAN: FaultPlan<&'static [BitFault]> = FaultPlan { faults: &[], skew_ppm: 0, gap: BitSpan::ZERO };
}

impl<F: AsRef<[BitFault]>> FaultPlan<F> {
    /// The same plan borrowing its faults, as the encoders take it.
    pub fn as_ref(&self) -> FaultPlan<&[BitFault]> {
        FaultPlan { faults: self.faults.as_ref(), skew_ppm: self.skew_ppm, gap: self.gap }
    }

    /// Checks the plan against a framing: faults in order, flips inside the frame, skew within
    /// ±50 %, per-character limits kept.
    pub fn check(&self, framing: Framing) -> Result<(), WireError> {
        let faults = self.faults.as_ref();
        if !(-MAX_SKEW_PPM..=MAX_SKEW_PPM).contains(&self.skew_ppm) {
            return Err(WireError::Skew(self.skew_ppm));
        }
        let frame_len = CharFrame::new(0, framing).len;
        let mut i = 0;
        while i < faults.len() {
            let c = faults[i].char();
            if i > 0 && faults[i - 1].char() > c {
                return Err(WireError::Unsorted { index: i });
            }
            let (mut glitches, mut extras) = (0, 0);
            let mut j = i;
            while j < faults.len() && faults[j].char() == c {
                match faults[j] {
                    BitFault::Flip { bit, .. } if bit >= frame_len => {
                        return Err(WireError::FlipBit { index: j, bit, last: frame_len - 1 });
                    }
                    BitFault::Flip { .. } => {}
                    BitFault::Glitch { .. } => glitches += 1,
                    BitFault::Idle { .. } | BitFault::Break { .. } => extras += 1,
                }
                j += 1;
            }
            if glitches > MAX_GLITCHES {
                return Err(WireError::TooManyGlitches { char: c });
            }
            if extras > MAX_EXTRAS {
                return Err(WireError::TooManyExtras { char: c });
            }
            i = j;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Parity;

    #[test]
    fn spans_read_whole_and_fractional_bits() {
        assert_eq!(BitSpan::bits(3), BitSpan(768));
        assert_eq!(BitSpan::from_bits_f64(0.25), Some(BitSpan(64)));
        assert_eq!(BitSpan::from_bits_f64(-1.0), None);
        assert_eq!(BitSpan::from_bits_f64(f64::NAN), None);
        assert_eq!(BitSpan(64).to_string(), "0.25");
        assert_eq!(BitSpan::bits(20).to_string(), "20");
    }

    #[cfg(feature = "std")]
    #[test]
    fn plans_read_from_toml_as_the_module_doc_writes_them() {
        let text = r#"
            skew_ppm = 30000
            gap = 0.5
            faults = [
              { flip = { char = 3, bit = 9 } },
              { glitch = { char = 5, at = 3.5, width = 0.25, level = "mark" } },
              { idle = { after = 7, length = 20 } },
              { break = { after = 9, length = 30 } },
            ]
        "#;
        let plan: FaultPlan<Vec<BitFault>> = toml::from_str(text).unwrap();
        let expected = FaultPlan {
            faults: vec![
                BitFault::Flip { char: 3, bit: 9 },
                BitFault::Glitch { char: 5, at: BitSpan(896), width: BitSpan(64), level: Symbol::Mark },
                BitFault::Idle { after: 7, length: BitSpan::bits(20) },
                BitFault::Break { after: 9, length: BitSpan::bits(30) },
            ],
            skew_ppm: 30_000,
            gap: BitSpan(128),
        };
        assert_eq!(plan, expected);
        let again: FaultPlan<Vec<BitFault>> = toml::from_str(&toml::to_string(&plan).unwrap()).unwrap();
        assert_eq!(again, plan);
        let empty: FaultPlan<Vec<BitFault>> = toml::from_str("").unwrap();
        assert_eq!(empty.as_ref(), FaultPlan::CLEAN);
        let negative = toml::from_str::<FaultPlan<Vec<BitFault>>>("gap = -1").unwrap_err();
        assert!(negative.to_string().contains("negative"), "{negative}");
    }

    #[test]
    fn checks_name_the_offending_fault() {
        let f = Framing::EIGHT_N1;
        fn plan(faults: &[BitFault]) -> FaultPlan<&[BitFault]> {
            FaultPlan { faults, skew_ppm: 0, gap: BitSpan::ZERO }
        }
        assert_eq!(plan(&[BitFault::Flip { char: 0, bit: 9 }]).check(f), Ok(()));
        assert_eq!(
            plan(&[BitFault::Flip { char: 0, bit: 10 }]).check(f),
            Err(WireError::FlipBit { index: 0, bit: 10, last: 9 })
        );
        let seven_o2 = Framing { data_bits: 7, parity: Parity::Odd, stop_bits: 2 };
        assert_eq!(plan(&[BitFault::Flip { char: 0, bit: 10 }]).check(seven_o2), Ok(()));
        assert_eq!(
            plan(&[BitFault::Flip { char: 2, bit: 0 }, BitFault::Flip { char: 1, bit: 0 }]).check(f),
            Err(WireError::Unsorted { index: 1 })
        );
        let g = BitFault::Glitch { char: 1, at: BitSpan::ZERO, width: BitSpan(1), level: Symbol::Space };
        assert_eq!(plan(&[g, g, g, g]).check(f), Ok(()));
        assert_eq!(plan(&[g, g, g, g, g]).check(f), Err(WireError::TooManyGlitches { char: 1 }));
        let skewed = FaultPlan { skew_ppm: 600_000, ..FaultPlan::CLEAN };
        assert_eq!(skewed.check(f), Err(WireError::Skew(600_000)));
    }

    #[test]
    fn sorting_is_stable() {
        let mut faults = [
            BitFault::Idle { after: 4, length: BitSpan::bits(1) },
            BitFault::Flip { char: 1, bit: 0 },
            BitFault::Break { after: 4, length: BitSpan::bits(2) },
            BitFault::Flip { char: 0, bit: 3 },
        ];
        sort_faults(&mut faults);
        assert_eq!(
            faults,
            [
                BitFault::Flip { char: 0, bit: 3 },
                BitFault::Flip { char: 1, bit: 0 },
                BitFault::Idle { after: 4, length: BitSpan::bits(1) },
                BitFault::Break { after: 4, length: BitSpan::bits(2) },
            ]
        );
    }
}
