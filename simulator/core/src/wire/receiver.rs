//! A UART receiver as hardware builds it (the 16550 family and most microcontroller UARTs): a
//! free-running sample clock at 16× the baud rate, a start bit found on the first space sample
//! and confirmed at mid-bit, each bit decided by a majority vote of its three middle samples
//! (7, 8 and 9 of 16), parity and framing checked, breaks detected.
//!
//! It is the ground truth for "what does a reader see": fed a clean line it returns the bytes,
//! fed an inverted P1 line it returns the garbage a reader without an inverter shows, fed 9600
//! 7E1 while set to 8N1 it returns the characters with their parity bit in bit 7.
//!
//! It works on [`Run`]s and computes where its sample points fall in each run, so a bit costs a
//! few additions instead of sixteen samples.
//!
//! The three voting samples are 7, 8 and 9 of 16 ([`Vote::Adjacent`], the 16550's) by default;
//! [`Vote::Spread`] takes 6, 8 and 10, 1/8 bit apart, as an 8x UART does (samples 3, 4 and 5 of
//! 8) and as the rig's capture receiver does, so a glitch of 1/16 bit changes one vote at most.
//!
//! What a program reading the port gets for a flagged character is the driver's and the
//! adapter's business, not the UART's, and it comes in two kinds ([`ErrorChars`]): the data bits
//! as read (a CH341 adapter, Linux without input parity checking), or a NUL in the character's
//! place (an FTDI adapter's usual delivery, Linux with `INPCK`). A break is a NUL either way.
//!
//! # Timing model
//!
//! Sample `n` is taken at `phase + floor(n * 1e12 / (16 * baud))` picoseconds and reads the
//! level of the run covering that instant. When armed, the receiver starts a character at the
//! first space sample (sample 0 of the frame, at most 1/16 bit after the edge), votes bit `k`
//! from samples `16k + 7`, `16k + 8` and `16k + 9`, abandons the character if the start bit
//! votes mark (a glitch), and checks only the first stop bit. It is armed again from the sample
//! after the last stop-bit sample, so a start bit that began earlier is caught late, as on real
//! UARTs. After a break it waits for a mark sample first.
//!
//! # Skew tolerance
//!
//! With `m` the index of the first stop bit (9 for 8N1 and 7E1) and the start edge seen at most
//! 1/16 bit late, a transmitter running slow by `s` moves the stop-bit sample `16m + 8` into
//! the previous bit once `(m + 1/2) < m (1 + |s|)`; running fast, back to back, the receiver is
//! armed only `16m + 10` samples after the start edge, so each next start edge must come later:
//! `16m + 10 <= 16 (m + stop_bits) / (1 + s)`, and the last data bit must not be sampled inside
//! the stop bit. [`ReceiverConfig::skew_tolerance_ppm`] gives the bounds: -5.26 % to +3.90 %
//! for 8N1 and 7E1.

use core::fmt;
use core::str::FromStr;

use crate::spec::{Framing, LineSettings, Parity};
use crate::wire::coding::{parity_bit, stop_index};
use crate::wire::{PS_PER_S, Polarity, Run, Symbol, WireError, check_line};

/// Samples per bit.
const OVERSAMPLE: u64 = 16;

/// Sample points per frame at most: 3 for each of start, 8 data, parity and the first stop bit.
const MAX_POINTS: usize = 3 * 11;

/// Where the three samples that vote each bit fall, in sixteenths of the bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Vote {
    /// Samples 7, 8 and 9: a 16x UART (the 16550 family, most microcontrollers).
    #[default]
    Adjacent,
    /// Samples 6, 8 and 10, 1/8 bit apart: an 8x UART's 3, 4 and 5 of 8, and the rig's capture.
    Spread,
}

impl Vote {
    /// The first sample and the spacing, in sixteenths of a bit.
    const fn layout(self) -> (u64, u64) {
        match self {
            Vote::Adjacent => (7, 1),
            Vote::Spread => (6, 2),
        }
    }

    /// The last voting sample of a bit, in sixteenths.
    const fn last(self) -> u64 {
        let (first, step) = self.layout();
        first + 2 * step
    }
}

/// What a reader gets for a character its UART flagged with a framing or parity error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ErrorChars {
    /// The data bits as read, as if nothing had happened (CH341-style adapters; Linux with input
    /// parity checking off, as `cfmakeraw` leaves it).
    #[default]
    AsRead,
    /// A NUL (0x00) in the character's place (FTDI-style adapters; Linux with `INPCK` set).
    Nul,
}

/// How a receiver is set up: what `stty` or a UART driver would be told, plus the input stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverConfig {
    pub line: LineSettings,
    /// [`Polarity::Normal`] for an ordinary UART input; [`Polarity::Inverted`] for an inverting
    /// one (an FTDI with RXD inverted, an ESP with `inverted: true`).
    pub input: Polarity,
    /// Phase of the sample clock against time 0, in 1/256 of a sample period. Real receivers
    /// start sampling at an arbitrary moment; tests sweep it.
    pub phase: u8,
    /// Where each bit's three voting samples fall.
    pub vote: Vote,
    /// What the reader gets for a flagged character ([`ReceiverConfig::delivered`]).
    pub errors: ErrorChars,
}

impl ReceiverConfig {
    /// A non-inverting 16x receiver at `line`.
    pub const fn new(line: LineSettings) -> ReceiverConfig {
        ReceiverConfig { line, input: Polarity::Normal, phase: 0, vote: Vote::Adjacent, errors: ErrorChars::AsRead }
    }

    /// The byte a program reading the port gets for `c`: its data bits, or a NUL for a break
    /// and, with [`ErrorChars::Nul`], for a framing or parity error.
    #[inline]
    pub fn delivered(&self, c: &RxChar) -> u8 {
        match self.errors {
            ErrorChars::Nul if c.framing_error || c.parity_error => 0,
            _ => c.byte,
        }
    }

    /// The range of transmitter skew, in ppm, that decodes any back-to-back stream for every
    /// sample phase (see the module docs for the derivation). Positive skew is a fast
    /// transmitter.
    pub fn skew_tolerance_ppm(&self) -> (i32, i32) {
        let m = i64::from(stop_index(self.line.framing));
        let stop = i64::from(self.line.framing.stop_bits);
        // Slow: the first stop bit's middle sample, up to 1/16 bit late, stays in the stop bit.
        let slow = -(1_000_000 / (2 * m + 1));
        // Fast: re-armed before the next start edge (16m + 10 samples in, one past the stop bit's
        // last vote), and the last data bit's middle sample (16(m-1) + 8, plus up to one sample of
        // start detection) stays in it; with one stop bit the stop sample itself must also miss
        // the next start bit, which the first condition already implies.
        let after = self.vote.last() as i64 + 1;
        let rearm = 1_000_000 * (16 * stop - after) / (16 * m + after);
        let last_data = 1_000_000 * 7 / (16 * m - 7);
        (slow as i32, rearm.min(last_data) as i32)
    }
}

impl fmt::Display for ReceiverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.line.baud, self.line.framing)?;
        if self.input == Polarity::Inverted {
            f.write_str("-inv")?;
        }
        if self.errors == ErrorChars::Nul {
            f.write_str("-nul")?;
        }
        Ok(())
    }
}

/// Why a receiver specification does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadReceiverSpec;

impl fmt::Display for BadReceiverSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "expected BAUD-FRAMING with an optional -inv for an inverting input and -nul for a driver that hands \
             over flagged characters as NUL, e.g. 115200-8N1, 9600-7E1, 115200-8N1-inv or 9600-8N1-inv-nul",
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BadReceiverSpec {}

impl FromStr for ReceiverConfig {
    type Err = BadReceiverSpec;

    /// `BAUD-FRAMING[-inv][-nul]`, e.g. `115200-8N1`, `9600-7E1-inv`, `115200-8N1-nul`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('-');
        let baud = parts.next().and_then(|b| b.parse::<u32>().ok()).ok_or(BadReceiverSpec)?;
        let framing = parts.next().and_then(|f| f.parse::<Framing>().ok()).ok_or(BadReceiverSpec)?;
        let mut cfg = ReceiverConfig::new(LineSettings { baud, framing });
        let mut next = parts.next();
        if next.is_some_and(|x| x.eq_ignore_ascii_case("inv")) {
            cfg.input = Polarity::Inverted;
            next = parts.next();
        }
        if next.is_some_and(|x| x.eq_ignore_ascii_case("nul")) {
            cfg.errors = ErrorChars::Nul;
            next = parts.next();
        }
        if next.is_some() {
            return Err(BadReceiverSpec);
        }
        Ok(cfg)
    }
}

/// One received character and what the UART flagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RxChar {
    /// The data bits (the low `data_bits` bits).
    pub byte: u8,
    /// The first stop bit was sampled as space.
    pub framing_error: bool,
    /// The parity bit did not match.
    pub parity_error: bool,
    /// Every sample of the frame was space: a break (reported as a NUL with neither error flag,
    /// as Linux reports it).
    pub brk: bool,
    /// When the start bit was detected, in picoseconds.
    pub at: u64,
}

impl RxChar {
    /// Received without any flag.
    pub fn is_clean(&self) -> bool {
        !(self.framing_error || self.parity_error || self.brk)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Armed: the first space sample at or after sample `from` starts a character.
    Hunt { from: u64 },
    /// After a break: a mark sample at or after `from` re-arms the receiver.
    WaitMark { from: u64 },
    /// Sampling a character.
    Frame,
}

/// The receiver. Push runs in time order; characters come out through a callback.
#[derive(Clone, Debug)]
pub struct Receiver {
    cfg: ReceiverConfig,
    /// Samples per second.
    rate: u64,
    phase_ps: u64,
    /// `(j * 1e12) / rate` and its remainder for each sample point's offset `j` in a frame.
    points: [(u64, u64); MAX_POINTS],
    npoints: usize,
    /// Bit index of the first stop bit.
    stop: u8,
    /// Time at which the next pushed run starts.
    t: u64,
    last: Option<Symbol>,
    mode: Mode,
    n0: u64,
    q0: u64,
    r0: u64,
    i: usize,
    marks: u8,
    bits: u16,
}

impl Receiver {
    pub fn new(cfg: ReceiverConfig) -> Result<Receiver, WireError> {
        check_line(cfg.line)?;
        let rate = OVERSAMPLE * u64::from(cfg.line.baud);
        let stop = stop_index(cfg.line.framing);
        let mut points = [(0, 0); MAX_POINTS];
        let npoints = 3 * (usize::from(stop) + 1);
        let (first, step) = cfg.vote.layout();
        for (i, p) in points.iter_mut().take(npoints).enumerate() {
            let j = OVERSAMPLE * (i as u64 / 3) + first + step * (i as u64 % 3);
            *p = (j * PS_PER_S / rate, j * PS_PER_S % rate);
        }
        let phase_ps = u64::from(cfg.phase) * PS_PER_S / (rate * 256);
        Ok(Receiver {
            cfg,
            rate,
            phase_ps,
            points,
            npoints,
            stop,
            t: 0,
            last: None,
            mode: Mode::Hunt { from: 0 },
            n0: 0,
            q0: 0,
            r0: 0,
            i: 0,
            marks: 0,
            bits: 0,
        })
    }

    pub fn config(&self) -> ReceiverConfig {
        self.cfg
    }

    /// Picoseconds of line pushed so far.
    pub fn now(&self) -> u64 {
        self.t
    }

    /// Time of sample `n`.
    #[inline]
    fn sample_time(&self, n: u64) -> u64 {
        let q = u128::from(n) * u128::from(PS_PER_S) / u128::from(self.rate);
        self.phase_ps.saturating_add(q.min(u128::from(u64::MAX)) as u64)
    }

    /// The first sample at or after time `t`.
    #[inline]
    fn first_sample(&self, t: u64) -> u64 {
        let d = u128::from(t.saturating_sub(self.phase_ps)) * u128::from(self.rate);
        d.div_ceil(u128::from(PS_PER_S)).min(u128::from(u64::MAX)) as u64
    }

    /// Time of sample point `i` of the current frame.
    #[inline]
    fn point_time(&self, i: usize) -> u64 {
        let (q, r) = self.points[i];
        let carry = u64::from(self.r0 + r >= self.rate);
        self.phase_ps.saturating_add(self.q0 + q + carry)
    }

    /// Feeds the next stretch of line; complete characters go to `out`.
    pub fn push(&mut self, run: Run, out: &mut impl FnMut(RxChar)) {
        if run.ps == 0 {
            return;
        }
        let a = self.t;
        let b = a.saturating_add(run.ps);
        self.t = b;
        let sym = self.cfg.input.symbol(run.level);
        self.last = Some(sym);
        loop {
            match self.mode {
                Mode::WaitMark { from } => {
                    if sym == Symbol::Mark {
                        let n = from.max(self.first_sample(a));
                        if self.sample_time(n) < b {
                            self.mode = Mode::Hunt { from: n + 1 };
                        }
                    }
                    return;
                }
                Mode::Hunt { from } => {
                    if sym == Symbol::Space {
                        let n = from.max(self.first_sample(a));
                        if self.sample_time(n) < b {
                            self.start(n);
                            continue;
                        }
                    }
                    return;
                }
                Mode::Frame => {
                    while self.i < self.npoints {
                        if self.point_time(self.i) >= b {
                            return;
                        }
                        self.marks += u8::from(sym == Symbol::Mark);
                        self.i += 1;
                        if self.i.is_multiple_of(3) {
                            let k = self.i / 3 - 1;
                            let bit = self.marks >= 2;
                            self.marks = 0;
                            self.bits |= u16::from(bit) << k;
                            if k == 0 && bit {
                                // A glitch, not a start bit: armed again after its last sample.
                                self.mode = Mode::Hunt { from: self.n0 + self.cfg.vote.last() + 1 };
                                break;
                            }
                        }
                    }
                    if self.mode == Mode::Frame {
                        self.complete(out);
                    }
                }
            }
        }
    }

    /// Ends the input: the line keeps its last level for one more frame, so a character in
    /// progress is completed.
    pub fn finish(&mut self, out: &mut impl FnMut(RxChar)) {
        if let Some(sym) = self.last {
            let bit_ps = PS_PER_S / u64::from(self.cfg.line.baud) + 1;
            let hold = (u64::from(self.stop) + 2) * bit_ps;
            self.push(Run::new(self.cfg.input.level(sym), hold), out);
        }
    }

    fn start(&mut self, n: u64) {
        let x = u128::from(n) * u128::from(PS_PER_S);
        let rate = u128::from(self.rate);
        self.n0 = n;
        self.q0 = (x / rate) as u64;
        self.r0 = (x % rate) as u64;
        self.i = 0;
        self.marks = 0;
        self.bits = 0;
        self.mode = Mode::Frame;
    }

    fn complete(&mut self, out: &mut impl FnMut(RxChar)) {
        let framing = self.cfg.line.framing;
        let d = framing.data_bits;
        let byte = ((self.bits >> 1) & ((1 << d) - 1)) as u8;
        let brk = self.bits == 0;
        let parity_error = match framing.parity {
            Parity::None => false,
            _ => parity_bit(byte, framing) != Some((self.bits >> (1 + d)) & 1 == 1),
        };
        let framing_error = (self.bits >> self.stop) & 1 == 0;
        let next = self.n0 + OVERSAMPLE * u64::from(self.stop) + self.cfg.vote.last() + 1;
        self.mode = if brk { Mode::WaitMark { from: next } } else { Mode::Hunt { from: next } };
        out(RxChar {
            byte,
            framing_error: framing_error && !brk,
            parity_error: parity_error && !brk,
            brk,
            at: self.sample_time(self.n0),
        });
    }
}

/// Receives a whole line (alloc): every character, flags included.
#[cfg(feature = "alloc")]
pub fn receive(cfg: ReceiverConfig, runs: &[Run]) -> Result<alloc::vec::Vec<RxChar>, WireError> {
    let mut rx = Receiver::new(cfg)?;
    let mut chars = alloc::vec::Vec::with_capacity(runs.len() / 3 + 1);
    let mut sink = |c| chars.push(c);
    for &r in runs {
        rx.push(r, &mut sink);
    }
    rx.finish(&mut sink);
    Ok(chars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode::encode_to_vec;
    use crate::wire::{FaultPlan, Level};

    const BIT: u64 = 8_680_556;

    fn line(s: &str) -> LineSettings {
        let cfg: ReceiverConfig = s.parse().unwrap();
        cfg.line
    }

    #[test]
    fn specs_parse_and_print() {
        for s in ["115200-8N1", "9600-7E1", "9600-7E1-inv", "300-5O2", "115200-8N1-nul", "9600-8N1-inv-nul"] {
            assert_eq!(s.parse::<ReceiverConfig>().unwrap().to_string(), s);
        }
        assert_eq!("115200-8N1-INV".parse::<ReceiverConfig>().unwrap().input, Polarity::Inverted);
        assert_eq!("115200-8N1-Nul".parse::<ReceiverConfig>().unwrap().errors, ErrorChars::Nul);
        for s in
            ["115200", "8N1", "115200-8N1-x", "115200-8N1-inv-inv", "115200-8N1-nul-inv", "fast-8N1", "115200-9N1", ""]
        {
            assert_eq!(s.parse::<ReceiverConfig>(), Err(BadReceiverSpec), "{s}");
        }
        assert!(BadReceiverSpec.to_string().contains("9600-7E1"));
    }

    #[test]
    fn flagged_characters_reach_the_reader_as_read_or_as_nul() {
        let c = |byte, framing_error, parity_error, brk| RxChar { byte, framing_error, parity_error, brk, at: 0 };
        let as_read = ReceiverConfig::new(line("9600-7E1"));
        let nul = ReceiverConfig { errors: ErrorChars::Nul, ..as_read };
        for (ch, read, nulled) in [
            (c(b'A', false, false, false), b'A', b'A'),
            (c(b'A', true, false, false), b'A', 0),
            (c(b'A', false, true, false), b'A', 0),
            (c(0, false, false, true), 0, 0),
        ] {
            assert_eq!((as_read.delivered(&ch), nul.delivered(&ch)), (read, nulled), "{ch:?}");
        }
    }

    #[test]
    fn tolerance_is_derived_from_the_frame() {
        let tol = |s: &str| ReceiverConfig::new(line(s)).skew_tolerance_ppm();
        // m = 9: slow 1/19, fast 6/154.
        assert_eq!(tol("115200-8N1"), (-52_631, 38_961));
        assert_eq!(tol("9600-7E1"), (-52_631, 38_961));
        // Samples 6, 8 and 10: re-armed one sample later, 5/155.
        let spread = ReceiverConfig { vote: Vote::Spread, ..ReceiverConfig::new(line("115200-8N1")) };
        assert_eq!(spread.skew_tolerance_ppm(), (-52_631, 32_258));
        // 8E1, m = 10: slow 1/21, fast 6/170.
        assert_eq!(tol("115200-8E1"), (-47_619, 35_294));
        // Two stop bits: re-arming is easy, the last data bit limits: 7/137.
        assert_eq!(tol("115200-8N2"), (-52_631, 51_094));
    }

    #[test]
    fn a_clean_line_decodes_with_times() {
        let l = line("115200-8N1");
        let runs = encode_to_vec(l, Polarity::Normal, FaultPlan::CLEAN, b"Hi!", BIT, BIT).unwrap();
        let got = receive(ReceiverConfig::new(l), &runs).unwrap();
        let bytes: Vec<u8> = got.iter().map(|c| c.byte).collect();
        assert_eq!(bytes, b"Hi!");
        assert!(got.iter().all(RxChar::is_clean));
        // Detected on the first sample at or after each start edge: 0 to 1/16 bit late.
        // The edge is at 8680556 ps; sample 16 (8680555 ps) misses it by a picosecond, so sample 17
        // (9223090 ps) detects it.
        assert_eq!(got[0].at, 9_223_090);
        assert!(got[1].at >= 11 * BIT && got[1].at < 11 * BIT + BIT / 16);
    }

    #[test]
    fn a_line_held_low_is_one_break_then_silence() {
        let l = line("115200-8N1");
        let runs = [Run::new(Level::Low, 100 * BIT)];
        let got = receive(ReceiverConfig::new(l), &runs).unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].brk && got[0].byte == 0 && !got[0].framing_error);
        // The same line into an inverting input is idle: nothing at all.
        let inv = ReceiverConfig { input: Polarity::Inverted, ..ReceiverConfig::new(l) };
        assert_eq!(receive(inv, &runs).unwrap(), []);
    }

    #[test]
    fn a_short_glitch_in_idle_is_not_a_start_bit() {
        let l = line("115200-8N1");
        // A low pulse of 1/4 bit: the start bit votes mark at mid-bit and the receiver re-arms.
        let runs = [Run::new(Level::High, BIT), Run::new(Level::Low, BIT / 4), Run::new(Level::High, 20 * BIT)];
        assert_eq!(receive(ReceiverConfig::new(l), &runs).unwrap(), []);
        // One full bit low: a valid start bit followed by all-mark data: 0xFF.
        let runs = [Run::new(Level::High, BIT), Run::new(Level::Low, BIT), Run::new(Level::High, 20 * BIT)];
        let got = receive(ReceiverConfig::new(l), &runs).unwrap();
        assert_eq!(got.iter().map(|c| (c.byte, c.is_clean())).collect::<Vec<_>>(), [(0xFF, true)]);
    }

    #[test]
    fn spread_votes_outvote_a_glitch_of_one_sample() {
        let l = line("115200-8N1");
        // 'U' (0x55: 1 0 1 0 1 0 1 0) on a TTL line, its start edge one bit in, so the receiver
        // starts at sample 17 and votes data bit 1 (a 0) from samples 56, 57 and 58 (adjacent) or
        // 55, 57 and 59 (spread). A high glitch a hair over 1/16 bit wide covers 56 and 57.
        let sample = |n: u64| n * PS_PER_S / (16 * 115_200);
        let (g0, g1) = (sample(56) - 100, sample(57) + 100);
        let mut edges = vec![(0, Level::High), (BIT, Level::Low)];
        for k in 0..8u64 {
            edges.push(((2 + k) * BIT, if k % 2 == 0 { Level::High } else { Level::Low }));
            if k == 1 {
                edges.push((g0, Level::High));
                edges.push((g1, Level::Low));
            }
        }
        edges.push((10 * BIT, Level::High));
        edges.push((22 * BIT, Level::High));
        let runs: Vec<Run> = edges.windows(2).map(|w| Run::new(w[0].1, w[1].0 - w[0].0)).collect();
        let adjacent = receive(ReceiverConfig::new(l), &runs).unwrap();
        let spread = receive(ReceiverConfig { vote: Vote::Spread, ..ReceiverConfig::new(l) }, &runs).unwrap();
        assert_eq!(spread.iter().map(|c| (c.byte, c.is_clean())).collect::<Vec<_>>(), [(0x55, true)]);
        assert_eq!(adjacent.iter().map(|c| c.byte).collect::<Vec<_>>(), [0x57], "bit 1 flipped by the glitch");
    }

    #[test]
    fn pushing_in_pieces_changes_nothing() {
        let l = line("9600-7E1");
        let runs = encode_to_vec(l, Polarity::Normal, FaultPlan::CLEAN, b"/KMP5 KA6U\r\n", 10_000, 10_000).unwrap();
        let whole = receive(ReceiverConfig::new(l), &runs).unwrap();
        let mut split = Vec::new();
        for r in &runs {
            split.push(Run::new(r.level, r.ps / 3));
            split.push(Run::new(r.level, r.ps - r.ps / 3));
        }
        assert_eq!(receive(ReceiverConfig::new(l), &split).unwrap(), whole);
        assert_eq!(whole.iter().map(|c| c.byte).collect::<Vec<_>>(), b"/KMP5 KA6U\r\n");
    }
}
