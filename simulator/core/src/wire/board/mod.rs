//! Virtual interface boards: what lies between the meter's open-collector data output and the
//! reader's UART. A board is data: a pull-up (or none), a load, a transistor's base clamp, the
//! capacitance of board and cable, the switching thresholds of its first stage, how many times
//! the signal is inverted before the UART, and whether it drives the Request line.
//!
//! The line node is a first-order RC: while the meter sinks, the node discharges through its
//! output transistor; while it is released, the pull-up charges the node's capacitance. The
//! first stage switches when the node crosses its thresholds, so a long cable or a weak pull-up
//! delays rising edges: space bits shrink and short ones vanish. Without a pull-up the node
//! never rises.
//!
//! The shipped boards are TOML files in `profiles/boards/` (loaded by [`file`] with the `std`
//! feature); each opens with what the board is and where its values come from, and says which
//! values are assumed. `docs/boards.md` describes the format.

#[cfg(feature = "std")]
pub mod file;

use alloc::string::String;
use alloc::vec::Vec;

use crate::wire::{Level, PS_PER_S, Run, RunMerger};

/// Capacitance of P1 cable per metre (flat telephone cable, assumed: about 50 pF/m).
pub const CABLE_PF_PER_M: f64 = 50.0;

/// Noise a P1 cable picks up, per metre, as the standard deviation of the voltage at the first
/// stage (assumed: an unshielded flat cable beside mains wiring). It makes the first stage's
/// crossings jitter, more the slower the edge, so as a cable grows a few characters with short
/// space bits fail before all do, instead of every character failing at one length.
pub const PICKUP_MV_PER_M: f64 = 1.5;

/// The fixed seed of the pickup noise: the same board and input give the same output.
const PICKUP_SEED: u64 = 0x5049_434B_5550;

/// The meter's output transistor when it sinks: Vol ≤ 1 V at up to 30 mA (DSMR P1 Companion
/// Standard 5.0.2 §5.7.2; the Luxembourg Smarty P1 specification §3.1.9 says the same) is at most
/// 33 Ω; 25 Ω is used.
pub const METER_SINK_OHMS: f64 = 25.0;

/// How a board treats the Request line (pin 2). The meter sends only while it is high (DSMR P1
/// Companion Standard 5.0.2 §5.7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Tied to +5 V: the meter sends whenever it is powered.
    Tied,
    /// Driven by the reader (a GPIO or RTS).
    Driven,
    /// Not connected: the meter stays silent.
    Open,
}

impl Request {
    /// The spelling in board files.
    pub const fn name(self) -> &'static str {
        match self {
            Request::Tied => "tied",
            Request::Driven => "driven",
            Request::Open => "open",
        }
    }
}

/// A resistor to a supply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PullUp {
    pub volts: f64,
    pub ohms: f64,
}

/// An interface board model.
#[derive(Clone, Debug, PartialEq)]
pub struct Board {
    /// Short name for `--through` and `--board`.
    pub name: String,
    pub summary: String,
    /// The public facts the values come from.
    pub sources: Vec<String>,
    /// Pull-up of the data line; `None` leaves it floating while the meter is released.
    pub pull_up: Option<PullUp>,
    /// Resistance from the data line to ground at the receiving input (an RS-232 receiver's).
    pub load_ohms: Option<f64>,
    /// A transistor base on the line holds it at about this voltage once it conducts.
    pub clamp_volts: Option<f64>,
    /// Capacitance of the board's input, added to the cable's.
    pub input_pf: f64,
    /// Cable length between meter and board.
    pub cable_m: f64,
    /// The first stage switches high above this voltage...
    pub rising_volts: f64,
    /// ...and low again below this one.
    pub falling_volts: f64,
    /// Inversions between the line and the UART's input: 0, 1 or 2.
    pub inversions: u8,
    pub request: Request,
    /// The level the board drives Request (pin 2) to while it reads, under a meter's load (a
    /// meter's optocoupler draws 4-10 mA): 5 V when tied to the port's +5 V, 3.3 V from a 3.3 V
    /// GPIO.
    pub request_volts: f64,
    /// The current the board draws from the port's +5 V (pin 1), on average and at its peak, in
    /// milliamperes (a Wi-Fi module's transmit bursts are its peak).
    pub supply_ma: f64,
    pub supply_peak_ma: f64,
    /// The high level of the board's own TTL output, for the reader it feeds; `None` when the
    /// reader is built in (a USB adapter is its own reader).
    pub output_high_volts: Option<f64>,
}

impl Board {
    /// Whether the meter sends at all: the board must hold Request high.
    pub fn drives_request(&self) -> bool {
        self.request != Request::Open
    }

    /// Capacitance of the line node: cable plus board input, in farads.
    pub fn capacitance_f(&self) -> f64 {
        (self.cable_m * CABLE_PF_PER_M + self.input_pf) * 1e-12
    }

    /// A simulator for this board whose meter output starts in state `first`.
    pub fn simulate(&self, first: Level) -> BoardSim {
        BoardSim::new(self.clone(), first)
    }

    /// The voltage the data line settles at while the meter releases it (0 without a pull-up):
    /// the pull-up against the load, held down by the transistor clamp.
    pub fn released_volts(&self) -> f64 {
        match drive_of(self, self.capacitance_f(), Level::High) {
            Some(d) => self.clamp_volts.map_or(d.target, |c| d.target.min(c)),
            None => 0.0,
        }
    }

    /// The voltage the line sits at while the meter sinks.
    pub fn sunk_volts(&self) -> f64 {
        drive_of(self, self.capacitance_f(), Level::Low).map_or(0.0, |d| d.target)
    }

    /// The current the meter's output sinks while it holds the line low, in amperes: what the
    /// pull-up (against the load) pushes into it. The meter must sink up to 30 mA, and a reader
    /// must not make more than 5 mA flow into the data line (DSMR 5.0.2 §5.7.2).
    pub fn sink_amps(&self) -> f64 {
        (self.sunk_volts() / METER_SINK_OHMS).max(0.0)
    }

    /// The time from the meter releasing the line to the line reaching 90 % of its released level
    /// from 10 %, in seconds: the 10-90 % rise time a scope shows. `None` without a pull-up.
    pub fn rise_time_s(&self) -> Option<f64> {
        let c = self.capacitance_f();
        let d = drive_of(self, c, Level::High)?;
        let start = self.sunk_volts();
        let top = self.released_volts();
        if top <= start {
            return None;
        }
        let at = |v: f64| d.tau * libm::log((start - d.target) / (v - d.target));
        let lo = start + 0.1 * (top - start);
        let hi = start + 0.9 * (top - start);
        Some(at(hi) - at(lo))
    }

    /// The time from the meter releasing the line to the board's first stage switching, in
    /// seconds: how much every space bit shrinks. `None` when it never switches.
    pub fn switch_delay_s(&self) -> Option<f64> {
        let c = self.capacitance_f();
        let d = drive_of(self, c, Level::High)?;
        let start = self.sunk_volts();
        if self.released_volts() <= self.rising_volts {
            return None;
        }
        Some(if start >= self.rising_volts {
            0.0
        } else {
            d.tau * libm::log((start - d.target) / (self.rising_volts - d.target))
        })
    }
}

/// An instrument on the data line, as the rig's sense input is: its own load on the line (a
/// resistive divider to an ADC and a GPIO), a known load it can switch in, and the line voltage
/// at which its GPIO reads high. The board model computes what such an instrument reads, so a
/// virtual twin reports the same quantities as the rig.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SenseCircuit {
    pub input_ohms: f64,
    pub known_load_ohms: f64,
    pub threshold_volts: f64,
}

impl From<crate::rig::Circuit> for SenseCircuit {
    fn from(c: crate::rig::Circuit) -> SenseCircuit {
        SenseCircuit {
            input_ohms: f64::from(c.sense_input_ohms),
            known_load_ohms: f64::from(c.known_load_ohms),
            threshold_volts: f64::from(c.threshold_mv) / 1000.0,
        }
    }
}

/// What a [`SenseCircuit`] reads on a board's data line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LineSense {
    /// The released line's level with only the sense input on it.
    pub open_volts: f64,
    /// The released line's level with the known load switched in as well.
    pub loaded_volts: f64,
    /// From the meter releasing the line to the line crossing the sense threshold, in seconds;
    /// `None` when it never gets there.
    pub rise_s: Option<f64>,
}

impl LineSense {
    /// A released line no higher than this is held by a transistor's base (or not pulled up at
    /// all): no resistive pull-up can be told from it.
    pub const CLAMP_MAX_VOLTS: f64 = 1.2;

    /// Whether the line is pulled up at all.
    pub fn pulled_up(&self) -> bool {
        self.open_volts >= 0.3
    }

    /// Whether the released line sits at a transistor input's base level, which a load barely
    /// moves: then its pull-up cannot be measured through the line.
    pub fn clamped(&self) -> bool {
        self.pulled_up() && self.open_volts <= Self::CLAMP_MAX_VOLTS
    }

    /// The board's pull-up as a Thevenin resistance, from the two readings: the sense input and
    /// the known load divide the board's source, so `R = (Vo - Vl) / (Vl / Rp - Vo / Rs)` with
    /// `Rp` the sense input and the load in parallel (without the sense input's own load this is
    /// the familiar `R = Rload (Vo / Vl - 1)`). `None` when the line is not pulled up or clamped.
    pub fn pull_up_ohms(&self, circuit: &SenseCircuit) -> Option<f64> {
        if !self.pulled_up() || self.clamped() || self.loaded_volts <= 0.0 {
            return None;
        }
        let rs = circuit.input_ohms;
        let rp = 1.0 / (1.0 / rs + 1.0 / circuit.known_load_ohms);
        let den = self.loaded_volts / rp - self.open_volts / rs;
        (den > 0.0).then(|| (self.open_volts - self.loaded_volts) / den).filter(|r| r.is_finite() && *r > 0.0)
    }
}

impl Board {
    /// What `circuit` reads on this board's data line: the levels with and without its known
    /// load, and the rise from the meter's release to its threshold.
    pub fn sense(&self, circuit: &SenseCircuit) -> LineSense {
        let level = |extra_g: f64, meter: Level| {
            let (g, i) = conductance(self, meter);
            let g = g + extra_g;
            if g <= 0.0 {
                return (0.0, f64::INFINITY);
            }
            let c = self.capacitance_f();
            let target = i / g;
            (self.clamp_volts.map_or(target, |cl| target.min(cl)), c / g)
        };
        let sense_g = 1.0 / circuit.input_ohms;
        let (open_volts, tau) = level(sense_g, Level::High);
        let (loaded_volts, _) = level(sense_g + 1.0 / circuit.known_load_ohms, Level::High);
        let (sunk, _) = level(sense_g, Level::Low);
        let (g, i) = conductance(self, Level::High);
        let target = i / (g + sense_g);
        let rise_s = (open_volts > circuit.threshold_volts && self.pull_up.is_some()).then(|| {
            if sunk >= circuit.threshold_volts {
                0.0
            } else {
                tau * libm::log((sunk - target) / (circuit.threshold_volts - target))
            }
        });
        LineSense { open_volts, loaded_volts, rise_s }
    }
}

/// Parses `4700`, `4.7k`, `47K`, `1M` as ohms (1 Ω to 100 MΩ).
pub fn parse_ohms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix(['k', 'K']) {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('M') {
        (n, 1e6)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().ok().map(|v| v * mult).filter(|v| (1.0..=1e8).contains(v))
}

/// The node's pull toward a voltage: `target` reached with time constant `tau` (seconds), or
/// no pull at all (a floating node keeps its charge).
#[derive(Clone, Copy, Debug)]
struct Drive {
    target: f64,
    tau: f64,
}

/// How the node is pulled while the meter's output is at `meter`, with capacitance `c`.
fn drive_of(board: &Board, c: f64, meter: Level) -> Option<Drive> {
    let (g, i) = conductance(board, meter);
    (g > 0.0).then(|| Drive { target: i / g, tau: c / g })
}

/// The conductance from the line node to ground and the current into it with the node at 0 V
/// (the Norton form of pull-up, load and the meter's output).
fn conductance(board: &Board, meter: Level) -> (f64, f64) {
    let mut g = 0.0;
    let mut i = 0.0;
    if let Some(p) = board.pull_up {
        g += 1.0 / p.ohms;
        i += p.volts / p.ohms;
    }
    if let Some(r) = board.load_ohms {
        g += 1.0 / r;
    }
    if meter == Level::Low {
        g += 1.0 / METER_SINK_OHMS;
    }
    (g, i)
}

/// A board in operation: meter pin runs in, UART input runs out, in time order.
///
/// Input levels are the meter's output transistor: [`Level::Low`] sinks, [`Level::High`] is
/// released. Output levels are what the UART's input pin sees after the board's inversions.
#[derive(Clone, Debug)]
pub struct BoardSim {
    board: Board,
    c: f64,
    volts: f64,
    /// The first stage's state: the node above its threshold.
    high: bool,
    /// Output, coalesced by level.
    runs: RunMerger,
    /// The pickup noise's standard deviation, volts.
    noise_volts: f64,
    /// Noise draws so far (the index of the next).
    draws: u64,
}

impl BoardSim {
    fn new(board: Board, first: Level) -> BoardSim {
        let c = board.capacitance_f();
        // Start settled in the first state, as a line that has been in it for a while.
        let volts = match drive_of(&board, c, first) {
            Some(d) => board.clamp_volts.map_or(d.target, |cl| d.target.min(cl)),
            None => 0.0,
        };
        let high = volts >= board.rising_volts;
        let noise_volts = PICKUP_MV_PER_M * board.cable_m.max(0.0) / 1000.0;
        BoardSim { board, c, volts, high, runs: RunMerger::new(), noise_volts, draws: 0 }
    }

    /// The pickup noise at the first stage for the next stretch of line: a seeded normal draw.
    fn noise(&mut self) -> f64 {
        if self.noise_volts == 0.0 {
            return 0.0;
        }
        let k = self.draws as i64;
        self.draws += 1;
        let u1 = crate::noise::unit(crate::noise::key(PICKUP_SEED, 1, k)).max(1e-12);
        let u2 = crate::noise::unit(crate::noise::key(PICKUP_SEED, 2, k));
        self.noise_volts * libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2)
    }

    pub fn board(&self) -> &Board {
        &self.board
    }

    /// The node voltage now.
    pub fn volts(&self) -> f64 {
        self.volts
    }

    fn out_level(&self) -> Level {
        let logic = if self.high { Level::High } else { Level::Low };
        if self.board.inversions % 2 == 1 { logic.flip() } else { logic }
    }

    /// Feeds the meter's output for the next `run.ps` picoseconds.
    pub fn push(&mut self, run: Run, sink: &mut impl FnMut(Run)) {
        if run.ps == 0 {
            return;
        }
        let Some(d) = drive_of(&self.board, self.c, run.level) else {
            // Floating: nothing moves the node.
            let out = self.out_level();
            self.put(out, run.ps, sink);
            return;
        };
        let secs = run.ps as f64 / PS_PER_S as f64;
        let clamp = self.board.clamp_volts.unwrap_or(f64::INFINITY);
        let ceiling = d.target.min(clamp);
        // The one threshold that can change the stage's state, if the node heads past it,
        // shifted by the noise the cable picks up (which the node itself does not integrate).
        let threshold = if self.high { self.board.falling_volts } else { self.board.rising_volts } - self.noise();
        let crosses = if self.high { d.target < threshold } else { ceiling > threshold };
        let mut switch_ps = None;
        if crosses {
            let t = if (self.high && self.volts < threshold) || (!self.high && self.volts > threshold) {
                0.0
            } else {
                d.tau * libm::log((self.volts - d.target) / (threshold - d.target))
            };
            if t < secs {
                switch_ps = Some(((t * PS_PER_S as f64) as u64).min(run.ps));
            }
        }
        self.volts = (d.target + (self.volts - d.target) * libm::exp(-secs / d.tau)).min(clamp);
        let before = self.out_level();
        match switch_ps {
            Some(at) => {
                self.put(before, at, sink);
                self.high = !self.high;
                let after = self.out_level();
                self.put(after, run.ps - at, sink);
            }
            None => self.put(before, run.ps, sink),
        }
    }

    /// Emits the run held back for merging.
    pub fn flush(&mut self, sink: &mut impl FnMut(Run)) {
        self.runs.flush(sink);
    }

    fn put(&mut self, level: Level, ps: u64, sink: &mut impl FnMut(Run)) {
        self.runs.put(level, ps, sink);
    }
}

/// Runs the meter's output `runs` through `board` (alloc convenience).
pub fn through(board: &Board, runs: &[Run]) -> alloc::vec::Vec<Run> {
    let first = runs.iter().find(|r| r.ps > 0).map_or(Level::Low, |r| r.level);
    let mut sim = board.simulate(first);
    let mut out = alloc::vec::Vec::with_capacity(runs.len() + 1);
    for &r in runs {
        sim.push(r, &mut |o| out.push(o));
    }
    sim.flush(&mut |o| out.push(o));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000_000;

    /// The node's rising edge is delayed by the RC; the falling edge through the sinking meter
    /// is nearly instant.
    #[test]
    fn a_released_line_rises_with_the_rc_time_constant() {
        let b = Board { cable_m: 100.0, ..Board::named("ftdi-inverted").unwrap() };
        // C = 5015 pF, tau = 10k * C = 50.15 us; 1.6 V of 5 V is reached after about tau * ln(5/3.4).
        let out = through(&b, &[Run::new(Level::Low, 100 * US), Run::new(Level::High, 100 * US)]);
        // The sinking meter held the node at 5 V * 25 / (10k + 25).
        let v0 = 5.0 * 25.0 / 10_025.0;
        let delay = (10_000.0 * 5015e-12 * libm::log((5.0 - v0) / 3.4) * 1e12) as u64;
        assert!((19 * US..20 * US).contains(&delay), "{delay}");
        // Inverted for the UART: released (high) reads low, late by the delay.
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].level, out[1].level), (Level::High, Level::Low));
        // The pickup noise of 100 m of cable (0.15 V) moves the crossing by a fraction of a µs.
        assert!(out[0].ps.abs_diff(100 * US + delay) <= US, "{out:?} vs {delay}");
        assert_eq!(out[0].ps + out[1].ps, 200 * US);
    }

    #[test]
    fn short_pulses_shrink_then_vanish_on_a_slow_line() {
        let b = Board { cable_m: 100.0, ..Board::named("ftdi-inverted").unwrap() };
        let pulse = |us: u64| {
            through(
                &b,
                &[Run::new(Level::Low, 200 * US), Run::new(Level::High, us * US), Run::new(Level::Low, 200 * US)],
            )
        };
        // 30 us released: seen, about 19.4 us shorter (give or take the cable's pickup noise).
        let seen = pulse(30);
        assert_eq!(seen.len(), 3);
        assert!((10 * US..12 * US).contains(&seen[1].ps), "{:?}", seen[1]);
        // 15 us released: the node never reaches 1.6 V.
        assert_eq!(pulse(15), [Run::new(Level::High, 415 * US)]);
    }

    #[test]
    fn without_a_pull_up_nothing_rises() {
        let b = Board::named("direct-no-pullup").unwrap();
        let out = through(&b, &[Run::new(Level::Low, 10 * US), Run::new(Level::High, 1000 * US)]);
        assert_eq!(out, [Run::new(Level::High, 1010 * US)], "inverting input: a steady mark");
    }

    #[test]
    fn derived_quantities_follow_the_circuit() {
        let ftdi = Board::named("ftdi-inverted").unwrap();
        // 10k to 5 V on 2 m of cable (100 pF) and a 15 pF input: tau = 1.15 us, 10-90 % = 2.2 tau.
        let rise = ftdi.rise_time_s().unwrap();
        assert!((rise - 1.15e-6 * libm::log(9.0)).abs() < 2e-9, "{rise}");
        assert!((ftdi.released_volts() - 5.0).abs() < 1e-9);
        // 0.5 mA through the meter's output while it sinks, well under the 5 mA a reader may cause.
        assert!((ftdi.sink_amps() - 5.0 / 10_025.0).abs() < 1e-6, "{}", ftdi.sink_amps());
        // The switch delay is tau * ln((5 - v0) / 3.4).
        let delay = ftdi.switch_delay_s().unwrap();
        assert!((delay - 1.15e-6 * libm::log((5.0 - 5.0 * 25.0 / 10_025.0) / 3.4)).abs() < 1e-9, "{delay}");
        // The RS-232 receiver's load halves the released level.
        assert!((Board::named("rs232-adapter").unwrap().released_volts() - 2.5).abs() < 1e-9);
        // The transistor's base holds the line at the clamp.
        assert!((Board::named("transistor-inverter").unwrap().released_volts() - 0.8).abs() < 1e-9);
        let none = Board::named("direct-no-pullup").unwrap();
        assert_eq!((none.released_volts(), none.rise_time_s(), none.switch_delay_s()), (0.0, None, None));
        for (s, ohms) in [("4700", 4700.0), ("4.7k", 4700.0), ("47K", 47_000.0), ("1M", 1e6)] {
            assert_eq!(parse_ohms(s), Some(ohms), "{s}");
        }
        assert_eq!(parse_ohms("0"), None);
        assert_eq!(parse_ohms("k"), None);
    }

    const RIG: SenseCircuit = SenseCircuit { input_ohms: 300_000.0, known_load_ohms: 10_000.0, threshold_volts: 2.4 };

    #[test]
    fn a_sense_input_reads_the_pull_up_back() {
        for ohms in [1_000.0, 4_700.0, 10_000.0, 47_000.0] {
            let mut b = Board::named("ftdi-inverted").unwrap();
            b.pull_up = Some(PullUp { volts: 5.0, ohms });
            let s = b.sense(&RIG);
            let r = s.pull_up_ohms(&RIG).unwrap();
            assert!((r - ohms).abs() < 1e-6 * ohms, "{ohms}: {r}");
            assert!(s.open_volts > s.loaded_volts && !s.clamped());
        }
        // The RS-232 receiver's 5k load is part of what the line looks like: 5k || 5k.
        let rs232 = Board::named("rs232-adapter").unwrap().sense(&RIG);
        assert!((rs232.pull_up_ohms(&RIG).unwrap() - 2_500.0).abs() < 1e-6);
        // A transistor base holds the line at 0.8 V with or without the load: no reading.
        let clamped = Board::named("transistor-inverter").unwrap().sense(&RIG);
        assert!(clamped.clamped() && clamped.pull_up_ohms(&RIG).is_none(), "{clamped:?}");
        assert_eq!(clamped.rise_s, None, "0.8 V never reaches the 2.4 V threshold");
        let none = Board::named("direct-no-pullup").unwrap().sense(&RIG);
        assert!(!none.pulled_up() && none.rise_s.is_none() && none.pull_up_ohms(&RIG).is_none());
    }

    #[test]
    fn the_rise_to_the_threshold_follows_the_rc() {
        // 47k on 2 m: tau = 47k || 300k times 115 pF; 2.4 V of the 4.32 V the divider leaves.
        let mut b = Board::named("ftdi-inverted").unwrap();
        b.pull_up = Some(PullUp { volts: 5.0, ohms: 47_000.0 });
        let s = b.sense(&RIG);
        let r = 1.0 / (1.0 / 47_000.0 + 1.0 / 300_000.0);
        let target = 5.0 * r / 47_000.0;
        let sunk = 5.0 / 47_000.0 / (1.0 / 47_000.0 + 1.0 / 300_000.0 + 1.0 / METER_SINK_OHMS);
        let expect = r * 115e-12 * libm::log((target - sunk) / (target - 2.4));
        assert!((s.rise_s.unwrap() - expect).abs() < 1e-12, "{:?} vs {expect}", s.rise_s);
        assert!((3e-6..4e-6).contains(&expect));
    }

    #[test]
    fn the_transistor_clamp_keeps_recovery_fast() {
        let b = Board::named("transistor-inverter").unwrap();
        let mut sim = b.simulate(Level::High);
        assert!((sim.volts() - 0.8).abs() < 1e-9, "the base holds the released line at the clamp");
        sim.push(Run::new(Level::Low, US), &mut |_| {});
        assert!(sim.volts() < 0.1);
    }
}
