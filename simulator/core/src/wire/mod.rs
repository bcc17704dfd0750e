//! The bit-level wire model: characters to timed line levels and back, with the faults real
//! links suffer, the RP2040 rig's oversampled slot encoder, a hardware-style UART receiver and
//! (with `alloc`) models of the interface boards between a meter and a reader.
//!
//! # Logical and electrical levels
//!
//! UART framing speaks of [`Symbol`]s: the line idles in *mark* (logical 1), a character begins
//! with a *space* (logical 0) start bit and ends with mark stop bits. The P1 port sends those
//! symbols inverted and open collector (DSMR 5.0.2 §5.7.2, §5.8; docs/wiring.md#data-pin-5): SPACE
//! "0" is above 4 V and MARK "1" below 1 V, so the data line idles LOW, and the meter can only pull
//! the line low; the high level comes from the reader's pull-up, or never comes when there is none.
//! A [`Polarity`] maps symbols to electrical [`Level`]s: [`Polarity::Inverted`] is the P1 port,
//! [`Polarity::Normal`] is a TTL UART pin. For an open-collector output [`Level::High`] means
//! "released".
//!
//! # Time
//!
//! A line is a sequence of [`Run`]s: a level held for a whole number of picoseconds. Runs
//! rather than samples keep a telegram to a few thousand values, and let the receiver compute
//! where its sample points fall instead of stepping through every sample. Positions inside a
//! character (fault offsets, glitch widths) are [`BitSpan`]s, 1/256 of a bit, so a fault plan
//! means the same thing at every baud rate and transmitter skew.
//!
//! # Pieces
//!
//! - [`coding`]: the bits of one character frame (start, data LSB first, parity, stop).
//! - [`fault`]: [`FaultPlan`] and [`BitFault`], the faults applied while encoding.
//! - [`encode`]: [`LineEncoder`], bytes to runs in picoseconds.
//! - [`slots`]: [`SlotEncoder`], bytes to the rig's oversampled PIO words.
//! - [`receiver`]: [`Receiver`], a 16× oversampling UART receiver: runs back to characters.
//! - `board` (with `alloc`): interface boards with pull-ups, inverters and cable RC.
//!
//! The encoders and the receiver need no allocator: the RP2040 firmware uses them.

pub mod coding;
pub mod encode;
pub mod fault;
mod framer;
pub mod receiver;
pub mod slots;

#[cfg(feature = "alloc")]
pub mod board;

use core::fmt;

use crate::spec::{Framing, LineSettings};

pub use encode::LineEncoder;
pub use fault::{BitFault, BitSpan, FaultPlan};
pub use receiver::{ErrorChars, Receiver, ReceiverConfig, RxChar, Vote};
pub use slots::{SlotConfig, SlotEncoder};

/// Picoseconds in a second: the unit of [`Run`] durations.
pub const PS_PER_S: u64 = 1_000_000_000_000;

/// The logical state of a UART line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Symbol {
    /// Logical 1: idle, stop bits, data 1s.
    Mark,
    /// Logical 0: start bit, data 0s, break.
    Space,
}

impl Symbol {
    /// The other symbol.
    #[inline]
    pub const fn flip(self) -> Symbol {
        match self {
            Symbol::Mark => Symbol::Space,
            Symbol::Space => Symbol::Mark,
        }
    }

    /// `Mark` for a 1 bit.
    #[inline]
    pub const fn from_bit(bit: bool) -> Symbol {
        if bit { Symbol::Mark } else { Symbol::Space }
    }
}

/// An electrical level at one point of the wire. For an open-collector output `High` is
/// "released": the voltage then depends on whatever pulls the line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Low,
    High,
}

impl Level {
    /// The other level.
    #[inline]
    pub const fn flip(self) -> Level {
        match self {
            Level::Low => Level::High,
            Level::High => Level::Low,
        }
    }

    /// `true` for `High`, as a VCD or a PIO slot writes it.
    #[inline]
    pub const fn is_high(self) -> bool {
        matches!(self, Level::High)
    }
}

/// How symbols map to levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Polarity {
    /// Mark is high: a TTL UART pin, and what a reader's UART expects after its interface.
    #[default]
    Normal,
    /// Mark is low, so the line idles low: the P1 data line (SPACE > 4 V, MARK < 1 V).
    Inverted,
}

impl Polarity {
    /// The level that carries `s`.
    #[inline]
    pub const fn level(self, s: Symbol) -> Level {
        match (self, s) {
            (Polarity::Normal, Symbol::Mark) | (Polarity::Inverted, Symbol::Space) => Level::High,
            _ => Level::Low,
        }
    }

    /// The symbol `l` carries.
    #[inline]
    pub const fn symbol(self, l: Level) -> Symbol {
        match (self, l) {
            (Polarity::Normal, Level::High) | (Polarity::Inverted, Level::Low) => Symbol::Mark,
            _ => Symbol::Space,
        }
    }

    /// The polarity seen through one inverter.
    #[inline]
    pub const fn flip(self) -> Polarity {
        match self {
            Polarity::Normal => Polarity::Inverted,
            Polarity::Inverted => Polarity::Normal,
        }
    }
}

/// A level held for `ps` picoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Run {
    pub level: Level,
    pub ps: u64,
}

impl Run {
    pub const fn new(level: Level, ps: u64) -> Run {
        Run { level, ps }
    }
}

/// Holds back the last run so that consecutive runs at one level leave as a single run: both the
/// transmitter and the board model emit many short pieces of what is, on the wire, one level.
#[derive(Clone, Debug, Default)]
pub struct RunMerger {
    pending: Option<Run>,
}

impl RunMerger {
    pub const fn new() -> RunMerger {
        RunMerger { pending: None }
    }

    /// Adds `ps` at `level`, emitting the held run when the level changes. Empty runs vanish.
    pub fn put(&mut self, level: Level, ps: u64, sink: &mut impl FnMut(Run)) {
        if ps == 0 {
            return;
        }
        match &mut self.pending {
            Some(r) if r.level == level => r.ps = r.ps.saturating_add(ps),
            _ => {
                if let Some(r) = self.pending.replace(Run::new(level, ps)) {
                    sink(r);
                }
            }
        }
    }

    /// Emits the held run, if any.
    pub fn flush(&mut self, sink: &mut impl FnMut(Run)) {
        if let Some(r) = self.pending.take() {
            sink(r);
        }
    }
}

/// The absolute times at which `runs` change level, with the new level, starting from time 0
/// (the first run's level is the initial level and is not an edge).
pub fn edges(runs: &[Run]) -> impl Iterator<Item = (u64, Level)> + '_ {
    let mut t = 0u64;
    let mut prev: Option<Level> = None;
    runs.iter().filter_map(move |r| {
        let at = t;
        t = t.saturating_add(r.ps);
        if r.ps == 0 {
            return None;
        }
        let changed = prev.is_some_and(|p| p != r.level);
        prev = Some(r.level);
        changed.then_some((at, r.level))
    })
}

/// Total duration of `runs` in picoseconds.
pub fn duration(runs: &[Run]) -> u64 {
    runs.iter().fold(0u64, |t, r| t.saturating_add(r.ps))
}

/// Baud rates the model accepts: below 50 nothing P1-like exists, above 5 Mbaud the 1/256-bit
/// resolution of fault offsets drops under a nanosecond and the rig's PIO cannot follow anyway.
pub const BAUD_RANGE: core::ops::RangeInclusive<u32> = 50..=5_000_000;

/// Why a wire-model part cannot be built from its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The baud rate is outside [`BAUD_RANGE`].
    Baud(u32),
    /// Data bits outside 5-8 or stop bits outside 1-2.
    Framing(Framing),
    /// Slots per bit outside 1-32.
    Oversample(u8),
    /// A transmitter skew beyond ±50 % (in ppm).
    Skew(i32),
    /// Fault `index` names a character before the fault listed ahead of it.
    Unsorted { index: usize },
    /// Fault `index` flips bit `bit`, but the frame has bits 0 to `last` only.
    FlipBit { index: usize, bit: u8, last: u8 },
    /// Character `char` carries more than [`fault::MAX_GLITCHES`] glitches.
    TooManyGlitches { char: u32 },
    /// More than [`fault::MAX_EXTRAS`] idle or break faults follow character `char`.
    TooManyExtras { char: u32 },
    /// Fault `index` is a glitch narrower than one slot of the slot encoder.
    GlitchTooNarrow { index: usize, oversample: u8 },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::Baud(b) => write!(
                f,
                "baud rate {b} is outside {}..={}; give the meter's rate, e.g. 115200 or 9600",
                BAUD_RANGE.start(),
                BAUD_RANGE.end()
            ),
            WireError::Framing(fr) => write!(
                f,
                "framing {}/{}/{} is not a UART character: data bits must be 5-8 and stop bits 1-2, e.g. 8N1 or 7E1",
                fr.data_bits,
                match fr.parity {
                    crate::spec::Parity::None => "N",
                    crate::spec::Parity::Even => "E",
                    crate::spec::Parity::Odd => "O",
                },
                fr.stop_bits
            ),
            WireError::Oversample(n) => {
                write!(f, "{n} slots per bit is outside 1-32; the rig uses 8 (clkdiv = clk_sys / (baud * 8))")
            }
            WireError::Skew(ppm) => write!(
                f,
                "a transmitter skew of {ppm} ppm is beyond ±500000 ppm (±50 %); give a few percent, e.g. 30000 for +3 %"
            ),
            WireError::Unsorted { index } => write!(
                f,
                "bit fault {index} names an earlier character than the fault before it; list faults in character order (wire::fault::sort_faults does it)"
            ),
            WireError::FlipBit { index, bit, last } => write!(
                f,
                "bit fault {index} flips bit {bit}, but this framing has bits 0 (start) to {last} (last stop bit)"
            ),
            WireError::TooManyGlitches { char } => write!(
                f,
                "character {char} carries more than {} glitches; merge overlapping glitches or spread them over characters",
                fault::MAX_GLITCHES
            ),
            WireError::TooManyExtras { char } => write!(
                f,
                "more than {} idle or break faults follow character {char}; combine them into one longer fault",
                fault::MAX_EXTRAS
            ),
            WireError::GlitchTooNarrow { index, oversample } => write!(
                f,
                "bit fault {index} is a glitch shorter than one slot (1/{oversample} bit) and would vanish; widen it or raise the oversampling"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WireError {}

/// Checks the settings every wire part shares.
pub(crate) fn check_line(line: LineSettings) -> Result<(), WireError> {
    if !BAUD_RANGE.contains(&line.baud) {
        return Err(WireError::Baud(line.baud));
    }
    let fr = line.framing;
    if !(5..=8).contains(&fr.data_bits) || !(1..=2).contains(&fr.stop_bits) {
        return Err(WireError::Framing(fr));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p1_polarity_idles_low() {
        // DSMR 5.0.2 §5.8: MARK "1" < 1 V, so the idle (mark) line is low.
        assert_eq!(Polarity::Inverted.level(Symbol::Mark), Level::Low);
        assert_eq!(Polarity::Inverted.level(Symbol::Space), Level::High);
        assert_eq!(Polarity::Normal.level(Symbol::Mark), Level::High);
        for p in [Polarity::Normal, Polarity::Inverted] {
            for s in [Symbol::Mark, Symbol::Space] {
                assert_eq!(p.symbol(p.level(s)), s);
                assert_eq!(p.flip().symbol(p.level(s)), s.flip());
            }
        }
    }

    #[test]
    fn edges_skip_empty_runs_and_merge_nothing_else() {
        let runs = [
            Run::new(Level::Low, 10),
            Run::new(Level::High, 0),
            Run::new(Level::High, 5),
            Run::new(Level::High, 5),
            Run::new(Level::Low, 1),
        ];
        let e: Vec<_> = edges(&runs).collect();
        assert_eq!(e, [(10, Level::High), (20, Level::Low)]);
        assert_eq!(duration(&runs), 21);
    }

    #[test]
    fn line_checks_name_the_problem() {
        let ok = LineSettings { baud: 9600, framing: Framing::SEVEN_E1 };
        assert_eq!(check_line(ok), Ok(()));
        assert_eq!(check_line(LineSettings { baud: 0, ..ok }), Err(WireError::Baud(0)));
        let nine = Framing { data_bits: 9, ..Framing::EIGHT_N1 };
        assert_eq!(check_line(LineSettings { framing: nine, ..ok }), Err(WireError::Framing(nine)));
        assert!(WireError::Baud(0).to_string().contains("115200"));
    }
}
