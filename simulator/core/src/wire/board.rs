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
//! Values the seeds give are used as given; where a seed leaves one open (a pull-up "between
//! VCC and RxD" of unstated value, an input threshold) the comment says what is assumed.

use alloc::string::String;
use core::fmt;

use crate::wire::{Level, PS_PER_S, Run, RunMerger};

/// Capacitance of P1 cable per metre (flat telephone cable, assumed: about 50 pF/m).
pub const CABLE_PF_PER_M: f64 = 50.0;

/// The meter's output transistor when it sinks: Vol ≤ 1 V at up to 30 mA (dsmr-facts.md A11,
/// SMARTY §3.1.9) is at most 33 Ω; 25 Ω is used.
pub const METER_SINK_OHMS: f64 = 25.0;

/// How a board treats the Request line (pin 2). The meter sends only while it is high
/// (dsmr-facts.md A11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Tied to +5 V: the meter sends whenever it is powered.
    Tied,
    /// Driven by the reader (a GPIO or RTS).
    Driven,
    /// Not connected: the meter stays silent.
    Open,
}

/// A resistor to a supply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PullUp {
    pub volts: f64,
    pub ohms: f64,
}

/// An interface board model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Board {
    /// Short name for `--through`.
    pub name: &'static str,
    pub summary: &'static str,
    /// The seed the model follows.
    pub source: &'static str,
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
}

/// Seed 003's NPN stage, shared by the boards built from it.
const SEED_003: Board = Board {
    name: "transistor-inverter",
    summary: "NPN inverter for a Raspberry Pi: 6.8k pull-up to 3.3 V, 1k into a BC237 base, 10k collector pull-up",
    // seed 003_ca5651612dc486e5.txt: R2 = 6.8K from +3.3 V to the data line, R3 = 1K from the
    // data line to the base of T1 = BC237 ("or nearly any NPN"), R1 = 10K from +3.3 V to the
    // collector, which goes to the Pi's serial input; Request from GPIO4. The base holds the
    // released line near 0.8 V and the transistor conducts from about 0.6 V. The author's 15 m
    // cable "worked" with "occasionally reading issues".
    source: "seed 003_ca5651612dc486e5.txt",
    pull_up: Some(PullUp { volts: 3.3, ohms: 6_800.0 }),
    load_ohms: None,
    clamp_volts: Some(0.8),
    input_pf: 20.0,
    cable_m: 2.0,
    rising_volts: 0.65,
    falling_volts: 0.55,
    inversions: 1,
    request: Request::Driven,
};

/// Seed 004's FTDI adapter.
const SEED_004: Board = Board {
    name: "ftdi-inverted",
    summary: "FTDI 5 V TTL adapter with RXD inverted in its EEPROM (FT_Prog) and a pull-up from VCC to RxD",
    // seed 004_8d51b494003fb61a.txt: SparkFun FTDI Basic 5V; "add a pull-up resistor between
    // VCC and RxD ... this smart-meter is an open collector connection" (value not given: 10 kΩ
    // assumed); the inversion "in the SparkFun FTDI itself" with FT_Prog; P1 RTS to FTDI VCC.
    // Thresholds of a 5 V TTL-compatible Schmitt input (assumed): 1.6 V up, 1.2 V down.
    source: "seed 004_8d51b494003fb61a.txt",
    pull_up: Some(PullUp { volts: 5.0, ohms: 10_000.0 }),
    load_ohms: None,
    clamp_volts: None,
    input_pf: 15.0,
    cable_m: 2.0,
    rising_volts: 1.6,
    falling_volts: 1.2,
    inversions: 1,
    request: Request::Tied,
};

/// Seed 002's RS-232 adapters.
const SEED_002_RS232: Board = Board {
    name: "rs232-adapter",
    summary: "USB-RS232 adapter (HL-340, PL-2303): data on DB9 pin 2 with a pull-up to 5 V; its RS-232 receiver inverts",
    // seed 002_04c1ef93629ca74d.txt: Cletus (PL-2303) and D'rMorris (HL-340) solder the data line
    // to DB9 pin 2 (RD), D'rMorris with "a 5K resistor between +5V and RD": "no more inverting
    // the data". An RS-232 receiver reads a low input as mark, so it is the inverter. Its input
    // is about 5 kΩ to ground with a threshold near 1.3 V (typical of RS-232 receivers,
    // assumed), so the released line sits at 2.5 V.
    source: "seed 002_04c1ef93629ca74d.txt",
    pull_up: Some(PullUp { volts: 5.0, ohms: 5_000.0 }),
    load_ohms: Some(5_000.0),
    clamp_volts: None,
    input_pf: 20.0,
    cable_m: 2.0,
    rising_volts: 1.6,
    falling_volts: 1.0,
    inversions: 1,
    request: Request::Tied,
};

/// The built-in boards, by name.
pub static BOARDS: &[Board] = &[
    SEED_003,
    Board {
        name: "transistor-inverter-bc847",
        summary: "vscp HAN P1 interface: BC847 inverter, 4.7k pull-up to 5 V, 10k collector pull-up",
        // seed 000_f00f568d81b2de75.txt lists only the BOM (R1 4.7K, R2 10K, T1 BC847; the
        // schematic is an image): read here as R1 pulling the data line up to the port's +5 V,
        // T1's base on the line, R2 the collector pull-up to the adapter's 3.3 or 5 V.
        source: "seed 000_f00f568d81b2de75.txt",
        pull_up: Some(PullUp { volts: 5.0, ohms: 4_700.0 }),
        clamp_volts: Some(0.75),
        request: Request::Tied,
        ..SEED_003
    },
    SEED_004,
    Board {
        name: "ftdi-not-inverted",
        summary: "the FTDI adapter with its RXD inversion not set (a fake FT232RL ignores FT_Prog)",
        // seed 002_04c1ef93629ca74d.txt (D'rMorris): "FTprog even notified me: Programming
        // succeeded! However ... the RxD invert was disabled again"; "I only got jibberish".
        source: "seed 002_04c1ef93629ca74d.txt",
        inversions: 0,
        ..SEED_004
    },
    Board {
        name: "direct-no-inverter",
        summary: "TTL USB-serial adapter on the data line with a 2.2k pull-up and no inverter",
        // seed 002_04c1ef93629ca74d.txt: DIY cables that "tried a resistor of 1000 and 2200 ohm"
        // and got "scrambled messages" and "gibberish"; seed 001_89bebe4ed72e074e.txt: "The data
        // signal of a p1 port is inverted and standaard ttl serial won't understand the p1
        // signal."
        source: "seed 002_04c1ef93629ca74d.txt",
        pull_up: Some(PullUp { volts: 5.0, ohms: 2_200.0 }),
        inversions: 0,
        ..SEED_004
    },
    Board {
        name: "direct-no-pullup",
        summary: "data line straight into an inverting TTL input with no pull-up: the line never rises",
        // seed 002_04c1ef93629ca74d.txt (hendrik6073): "only pin 2 and 5v and ground direct to
        // USB cables gives me no data"; seed 004_8d51b494003fb61a.txt, note 1: the pull-up is
        // needed "because the electronic of this smart-meter is an open collector connection".
        source: "seed 002_04c1ef93629ca74d.txt",
        pull_up: None,
        ..SEED_004
    },
    SEED_002_RS232,
    Board {
        name: "double-inverter",
        summary: "seed 003's transistor inverter in front of an RS-232 adapter: inverted twice",
        // seed 002_04c1ef93629ca74d.txt (niwreg): "with transistor inverter first but then i got
        // all giberisch, so it is basic to rs232 usb converter".
        source: "seed 002_04c1ef93629ca74d.txt",
        inversions: 2,
        ..SEED_003
    },
];

/// Why a `--through` value names no board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadBoard(pub String);

impl fmt::Display for BadBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BadBoard {}

impl Board {
    /// A built-in board by name.
    pub fn named(name: &str) -> Option<Board> {
        BOARDS.iter().find(|b| b.name == name).copied()
    }

    /// Parses `NAME[,cable=METRES][,pullup=OHMS|none][,request=on|off]`, e.g.
    /// `transistor-inverter,cable=30`, `ftdi-inverted,pullup=47k`, `rs232-adapter,request=off`.
    pub fn parse_spec(spec: &str) -> Result<Board, BadBoard> {
        use alloc::format;
        let mut parts = spec.split(',');
        let name = parts.next().unwrap_or("").trim();
        let mut board = Board::named(name).ok_or_else(|| {
            let names: alloc::vec::Vec<&str> = BOARDS.iter().map(|b| b.name).collect();
            BadBoard(format!("no board named {name:?}; choose one of {}", names.join(", ")))
        })?;
        for opt in parts {
            let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
            let value = value.trim();
            match key.trim() {
                "cable" => {
                    let m = value
                        .strip_suffix('m')
                        .unwrap_or(value)
                        .parse::<f64>()
                        .ok()
                        .filter(|m| (0.0..=10_000.0).contains(m));
                    board.cable_m = m.ok_or_else(|| {
                        BadBoard(format!("cable={value}: give metres from 0 to 10000, e.g. cable=30"))
                    })?;
                }
                "pullup" if value == "none" => board.pull_up = None,
                "pullup" => {
                    let ohms = parse_ohms(value)
                        .ok_or_else(|| BadBoard(format!("pullup={value}: give ohms (e.g. 4700, 4.7k, 47k) or none")))?;
                    let volts = board.pull_up.map_or(5.0, |p| p.volts);
                    board.pull_up = Some(PullUp { volts, ohms });
                }
                "request" => {
                    board.request = match value {
                        "on" => Request::Driven,
                        "off" => Request::Open,
                        _ => return Err(BadBoard(format!("request={value}: give request=on or request=off"))),
                    }
                }
                other => {
                    return Err(BadBoard(format!(
                        "unknown board option {other:?} in {spec:?}; options are cable=METRES, pullup=OHMS|none, request=on|off"
                    )));
                }
            }
        }
        Ok(board)
    }

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
        BoardSim::new(*self, first)
    }
}

fn parse_ohms(s: &str) -> Option<f64> {
    let (num, mult) = match s.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1e3),
        None => (s, 1.0),
    };
    num.parse::<f64>().ok().map(|v| v * mult).filter(|v| *v >= 1.0 && *v <= 1e8)
}

/// The node's pull toward a voltage: `target` reached with time constant `tau` (seconds), or
/// no pull at all (a floating node keeps its charge).
#[derive(Clone, Copy, Debug)]
struct Drive {
    target: f64,
    tau: f64,
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
}

impl BoardSim {
    fn new(board: Board, first: Level) -> BoardSim {
        let c = board.capacitance_f();
        // Start settled in the first state, as a line that has been in it for a while.
        let volts = match Self::drive_of(&board, c, first) {
            Some(d) => board.clamp_volts.map_or(d.target, |cl| d.target.min(cl)),
            None => 0.0,
        };
        let high = volts >= board.rising_volts;
        BoardSim { board, c, volts, high, runs: RunMerger::new() }
    }

    pub fn board(&self) -> &Board {
        &self.board
    }

    /// The node voltage now.
    pub fn volts(&self) -> f64 {
        self.volts
    }

    fn drive_of(board: &Board, c: f64, meter: Level) -> Option<Drive> {
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
        (g > 0.0).then(|| Drive { target: i / g, tau: c / g })
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
        let Some(d) = Self::drive_of(&self.board, self.c, run.level) else {
            // Floating: nothing moves the node.
            let out = self.out_level();
            self.put(out, run.ps, sink);
            return;
        };
        let secs = run.ps as f64 / PS_PER_S as f64;
        let clamp = self.board.clamp_volts.unwrap_or(f64::INFINITY);
        let ceiling = d.target.min(clamp);
        // The one threshold that can change the stage's state, if the node heads past it.
        let threshold = if self.high { self.board.falling_volts } else { self.board.rising_volts };
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

    #[test]
    fn names_are_unique_and_cite_a_seed() {
        for (i, b) in BOARDS.iter().enumerate() {
            assert!(BOARDS[i + 1..].iter().all(|o| o.name != b.name), "{} twice", b.name);
            assert!(b.source.starts_with("seed 00"), "{}", b.name);
            assert!(b.rising_volts > b.falling_volts, "{}: hysteresis", b.name);
        }
        for n in ["transistor-inverter", "ftdi-inverted", "direct-no-inverter", "direct-no-pullup", "rs232-adapter"] {
            assert!(Board::named(n).is_some(), "{n}");
        }
    }

    #[test]
    fn specs_adjust_a_board_and_errors_list_the_choices() {
        let b = Board::parse_spec("transistor-inverter,cable=30m,pullup=4.7k,request=off").unwrap();
        assert_eq!(b.cable_m, 30.0);
        assert_eq!(b.pull_up, Some(PullUp { volts: 3.3, ohms: 4_700.0 }));
        assert!(!b.drives_request());
        assert_eq!(Board::parse_spec("ftdi-inverted,pullup=none").unwrap().pull_up, None);
        let e = Board::parse_spec("ftdi").unwrap_err().to_string();
        assert!(e.contains("ftdi-inverted") && e.contains("rs232-adapter"), "{e}");
        assert!(Board::parse_spec("ftdi-inverted,cable=-1").unwrap_err().to_string().contains("metres"));
        assert!(Board::parse_spec("ftdi-inverted,colour=red").unwrap_err().to_string().contains("pullup="));
    }

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
        assert!(out[0].ps.abs_diff(100 * US + delay) <= 2, "{out:?} vs {delay}");
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
        // 30 us released: seen, about 19.4 us shorter.
        let seen = pulse(30);
        assert_eq!(seen.len(), 3);
        assert!((10 * US..11 * US).contains(&seen[1].ps), "{:?}", seen[1]);
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
    fn the_transistor_clamp_keeps_recovery_fast() {
        let b = Board::named("transistor-inverter").unwrap();
        let mut sim = b.simulate(Level::High);
        assert!((sim.volts() - 0.8).abs() < 1e-9, "the base holds the released line at the clamp");
        sim.push(Run::new(Level::Low, US), &mut |_| {});
        assert!(sim.volts() < 0.1);
    }
}
