//! The wire model run forward for every way a reader can be wired and set wrong: what each
//! candidate delivers at the reader's setting, to hold against what the reader captured.
//!
//! A candidate is a meter line (the lines the shipped profiles send, and 115200 7E1, which some
//! DSMR 4 meters are reported to use), a wiring (each shipped interface board, in front of a
//! reader input that inverts or not) and the way the reader's driver hands over characters with
//! framing or parity errors ([`ErrorChars`]). Each is fed one telegram of every shipped profile
//! on that line through the same [`Pipeline`] that `p1sim emit --through` uses, and what the
//! reader gets is counted per profile. A candidate's [`Verdict`] is the set of causes it stands
//! for, read off the model itself: no bytes arrive, the UART sees the line's polarity, the baud
//! rates or framings differ.
//!
//! Building a model runs about a megabyte of characters through the wire model; it is done once
//! per reader setting and kept ([`model`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use p1sim_core::generator::Generator;
use p1sim_core::spec::{Framing, LineSettings, Parity};
use p1sim_core::wire::board::Board;
use p1sim_core::wire::{ErrorChars, FaultPlan, PS_PER_S, Polarity, ReceiverConfig};

use super::cause::Cause;
use crate::wire::{Pipeline, Setup, char_ps};

/// One telegram of a shipped profile, as its meter puts it on the wire.
#[derive(Debug, Clone)]
pub struct Sample {
    pub profile: String,
    pub line: LineSettings,
    /// Sent in encrypted frames.
    pub encrypted: bool,
    pub bytes: Vec<u8>,
}

/// The key the encrypted profiles' samples are made with: any key gives ciphertext alike.
pub const SAMPLE_KEY: [u8; 16] = [0x5A; 16];

/// The start of the samples' meters: a winter weekday late morning, the emit default.
const SAMPLE_START: i64 = 1_768_474_800;

/// One telegram of every shipped profile (encrypted ones as frames).
pub fn samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let profiles = p1sim_core::builtin::all().expect("the shipped profiles load (checked by their own tests)");
        profiles
            .into_iter()
            .filter_map(|p| {
                let encrypted = p.is_encrypted();
                let key = encrypted.then_some(SAMPLE_KEY);
                let line = p.line;
                let name = p.name.clone();
                let household = p.household.clone();
                let mut g = Generator::new(p, household, 1, SAMPLE_START, key).ok()?;
                let mut bytes = Vec::with_capacity(2048);
                g.next_into(&mut bytes);
                Some(Sample { profile: name, line, encrypted, bytes })
            })
            .collect()
    })
}

/// The meter lines candidates send at: every line a shipped profile uses, and 115200 7E1.
pub fn meter_lines() -> Vec<LineSettings> {
    let mut lines: Vec<LineSettings> = samples().iter().map(|s| s.line).collect();
    lines.push(SEVEN_E1_115200);
    lines.sort_by_key(|l| (std::cmp::Reverse(l.baud), std::cmp::Reverse(l.framing.data_bits)));
    lines.dedup();
    lines
}

const SEVEN_E1_115200: LineSettings = LineSettings { baud: 115_200, framing: Framing::SEVEN_E1 };

/// How the meter's data pin reaches the reader's UART.
#[derive(Debug, Clone, PartialEq)]
pub struct Wiring {
    /// A shipped board's model, or `None` for a perfect interface (pull-up and one inverter).
    pub board: Option<Board>,
    /// The reader's input inverts (an FTDI with RXD inverted, an ESP's `inverted: true`).
    pub reader_inverts: bool,
}

impl Wiring {
    /// Inversions between the data pin and the UART's logic.
    pub fn inversions(&self) -> u8 {
        self.board.as_ref().map_or(1, |b| b.inversions) + u8::from(self.reader_inverts)
    }

    /// The board, as the report names it: `the transistor-inverter board (NPN inverter ...)`.
    pub fn describe(&self) -> String {
        match &self.board {
            Some(b) => format!("the {} board ({})", b.name, b.summary),
            None => "a working interface (pull-up and one inverter)".to_string(),
        }
    }
}

/// The wirings candidates try: every shipped board and a perfect interface, each in front of a
/// plain and an inverting reader input.
pub fn wirings() -> Vec<Wiring> {
    let boards = p1sim_core::builtin::boards().expect("the shipped boards load (checked by their own tests)");
    let mut v = Vec::new();
    for reader_inverts in [false, true] {
        v.push(Wiring { board: None, reader_inverts });
        for b in &boards {
            v.push(Wiring { board: Some(b.clone()), reader_inverts });
        }
    }
    v
}

/// The causes a candidate stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verdict(pub Vec<Cause>);

impl Verdict {
    /// The causes of a meter at `meter` wired by `wiring` into a reader at `reader` whose driver
    /// delivers flagged characters as `errors`, given that the model delivered `received`
    /// characters for `sent`.
    pub fn of(meter: LineSettings, wiring: &Wiring, reader: LineSettings, errors: ErrorChars, silent: bool) -> Verdict {
        if silent {
            return Verdict(vec![Cause::NoSignal]);
        }
        let mut v = Vec::new();
        if wiring.inversions().is_multiple_of(2) {
            v.push(Cause::Inverted);
        }
        if meter.baud != reader.baud {
            v.push(Cause::WrongBaud);
        } else if seven_bit_with_parity(meter.framing) && reader.framing == Framing::EIGHT_N1 {
            v.push(Cause::ParityAsData);
        } else if meter.framing == Framing::EIGHT_N1
            && seven_bit_with_parity(reader.framing)
            && errors == ErrorChars::Nul
        {
            v.push(Cause::WrongFraming);
        }
        Verdict(v)
    }

    /// How many faults it takes: more faults explain more, so ties go to fewer.
    pub fn faults(&self) -> usize {
        self.0.len()
    }
}

fn seven_bit_with_parity(f: Framing) -> bool {
    f.data_bits == 7 && f.parity != Parity::None
}

/// One candidate's prediction for one profile's telegram.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub meter: LineSettings,
    /// Index into [`Model::wirings`].
    pub wiring: usize,
    pub errors: ErrorChars,
    /// Index into [`samples`].
    pub sample: usize,
    pub verdict: Verdict,
    /// How often the reader got each byte value.
    pub histogram: Box<[u32; 256]>,
    /// Characters the reader got, and bytes the meter sent.
    pub received: u32,
    pub sent: u32,
}

/// Every candidate's predictions at one reader setting.
#[derive(Debug)]
pub struct Model {
    pub reader: LineSettings,
    pub wirings: Vec<Wiring>,
    pub predictions: Vec<Prediction>,
}

/// Telegrams of different profiles run per meter line and wiring: the byte distributions of
/// one line's faults differ little from profile to profile, and the model is built on every
/// capture no telegram decodes in, so it must take well under a second.
const SAMPLES_PER_LINE: usize = 8;

/// Idle between the samples on one simulated line: long enough that no candidate's characters
/// spill into the next sample's window (a 9600 baud telegram lasts about a second).
const GAP_S: u64 = 3;

impl Model {
    /// Runs every candidate at `reader`.
    pub fn build(reader: LineSettings) -> Result<Model> {
        let wirings = wirings();
        let mut predictions = Vec::new();
        for meter in meter_lines() {
            // The 115200 7E1 meter sends the 115200 8N1 profiles' text telegrams.
            let variant = meter == SEVEN_E1_115200;
            let content = if variant { Framing::EIGHT_N1 } else { meter.framing };
            let on_line: Vec<usize> = (0..samples().len())
                .filter(|&i| {
                    let s = &samples()[i];
                    s.line.baud == meter.baud && s.line.framing == content && !(variant && s.encrypted)
                })
                .collect();
            // Spread over the line's profiles (they are in name order, so manufacturers and
            // dialects alternate).
            let step = on_line.len().div_ceil(SAMPLES_PER_LINE).max(1);
            let chosen: Vec<usize> = on_line.into_iter().step_by(step).collect();
            // Wirings are independent: one thread per core, each taking every n-th wiring.
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(wirings.len());
            let parts: Vec<Result<Vec<Prediction>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (wirings, chosen) = (&wirings, &chosen);
                        scope.spawn(move || {
                            let mut mine = Vec::new();
                            for (w, wiring) in wirings.iter().enumerate().skip(t).step_by(threads) {
                                mine.extend(run(reader, meter, wiring, w, chosen)?);
                            }
                            Ok(mine)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
            });
            for part in parts {
                predictions.extend(part?);
            }
        }
        Ok(Model { reader, wirings, predictions })
    }
}

/// Sends the samples `chosen` one after the other through one wiring, counting what the reader
/// gets for each (both ways its driver may deliver flagged characters).
fn run(
    reader: LineSettings,
    meter: LineSettings,
    wiring: &Wiring,
    w: usize,
    chosen: &[usize],
) -> Result<Vec<Prediction>> {
    let receiver = ReceiverConfig {
        input: if wiring.reader_inverts { Polarity::Inverted } else { Polarity::Normal },
        ..ReceiverConfig::new(reader)
    };
    let nul = ReceiverConfig { errors: ErrorChars::Nul, ..receiver };
    let setup = Setup { line: meter, plan: FaultPlan::CLEAN, board: wiring.board.clone(), receiver };
    let mut pipe = Pipeline::new(setup, false).with_context(|| format!("the wire model at {reader}"))?;
    let gap = GAP_S * PS_PER_S;
    let mut hist = vec![([0u32; 256], [0u32; 256], 0u32); chosen.len()];
    // Sample k goes out at (k + 1) gaps; what arrives from just before it until the next one
    // is its: its characters and the idle after it, as a capture holds them.
    let window = |at: u64| (at + gap / 2) / gap;
    let mut count = |c: p1sim_core::wire::RxChar| {
        let k = window(c.at) as usize;
        if (1..=chosen.len()).contains(&k) {
            let (read, nulled, n) = &mut hist[k - 1];
            read[usize::from(receiver.delivered(&c))] += 1;
            nulled[usize::from(nul.delivered(&c))] += 1;
            *n += 1;
        }
    };
    for (k, &i) in chosen.iter().enumerate() {
        pipe.send_at((k as u64 + 1) * gap, &samples()[i].bytes, &mut count);
    }
    pipe.finish(20 * char_ps(meter), &mut count);
    let mut out = Vec::with_capacity(2 * chosen.len());
    for (k, &i) in chosen.iter().enumerate() {
        let (read, nulled, received) = hist[k];
        let sent = samples()[i].bytes.len() as u32;
        // Nothing but the break of a line held low is no signal.
        let silent = received <= 2 && read[1..].iter().all(|&n| n == 0);
        for (errors, histogram) in [(ErrorChars::AsRead, read), (ErrorChars::Nul, nulled)] {
            out.push(Prediction {
                meter,
                wiring: w,
                errors,
                sample: i,
                verdict: Verdict::of(meter, wiring, reader, errors, silent),
                histogram: Box::new(histogram),
                received,
                sent,
            });
        }
    }
    Ok(out)
}

/// The model at `reader`, built on first use and kept for the life of the process.
pub fn model(reader: LineSettings) -> Result<Arc<Model>> {
    static MODELS: OnceLock<Mutex<HashMap<LineSettings, Arc<Model>>>> = OnceLock::new();
    let models = MODELS.get_or_init(Default::default);
    if let Some(m) = models.lock().unwrap_or_else(|e| e.into_inner()).get(&reader) {
        return Ok(Arc::clone(m));
    }
    // Built outside the lock: another setting's model may be built meanwhile.
    let m = Arc::new(Model::build(reader)?);
    models.lock().unwrap_or_else(|e| e.into_inner()).entry(reader).or_insert_with(|| Arc::clone(&m));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const N81: LineSettings = LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 };
    const E71: LineSettings = LineSettings { baud: 9600, framing: Framing::SEVEN_E1 };

    #[test]
    fn every_profile_has_a_sample_and_the_lines_include_7e1_at_115200() {
        assert_eq!(samples().len(), p1sim_core::builtin::names().count());
        assert!(samples().iter().all(|s| s.bytes.len() > 100));
        assert_eq!(meter_lines(), [N81, SEVEN_E1_115200, E71]);
    }

    #[test]
    fn verdicts_follow_the_wiring_and_the_settings() {
        let perfect = Wiring { board: None, reader_inverts: false };
        let inverting = Wiring { board: None, reader_inverts: true };
        let v = |m, w: &Wiring, r, e| Verdict::of(m, w, r, e, false).0;
        assert_eq!(v(N81, &perfect, N81, ErrorChars::AsRead), []);
        assert_eq!(v(N81, &inverting, N81, ErrorChars::AsRead), [Cause::Inverted]);
        assert_eq!(v(E71, &inverting, N81, ErrorChars::Nul), [Cause::Inverted, Cause::WrongBaud]);
        let n81_9600 = LineSettings { baud: 9600, framing: Framing::EIGHT_N1 };
        assert_eq!(v(E71, &perfect, n81_9600, ErrorChars::AsRead), [Cause::ParityAsData]);
        assert_eq!(v(N81, &perfect, SEVEN_E1_115200, ErrorChars::AsRead), []);
        assert_eq!(v(N81, &perfect, SEVEN_E1_115200, ErrorChars::Nul), [Cause::WrongFraming]);
        assert_eq!(Verdict::of(N81, &inverting, N81, ErrorChars::Nul, true).0, [Cause::NoSignal]);
    }

    #[test]
    fn the_model_predicts_clean_bytes_through_a_good_board_and_none_without_a_pull_up() {
        let m = Model::build(N81).unwrap();
        let named = |name: &str| {
            m.wirings
                .iter()
                .position(|w| !w.reader_inverts && w.board.as_ref().is_some_and(|b| b.name == name))
                .unwrap()
        };
        let am550 = samples().iter().position(|s| s.profile == "iskra-am550").unwrap();
        let find = |w, errors| {
            m.predictions
                .iter()
                .find(|p| p.wiring == w && p.sample == am550 && p.meter == N81 && p.errors == errors)
                .unwrap()
        };
        let good = find(named("transistor-inverter"), ErrorChars::AsRead);
        assert_eq!(good.verdict.0, []);
        assert_eq!(good.received, good.sent, "one character per byte sent");
        let mut expect = [0u32; 256];
        for &b in &samples()[am550].bytes {
            expect[usize::from(b)] += 1;
        }
        assert_eq!(*good.histogram, expect);
        let none = find(named("direct-no-pullup"), ErrorChars::AsRead);
        assert_eq!((none.received, none.verdict.0.as_slice()), (0, &[Cause::NoSignal][..]));
        let inverted = find(named("direct-no-inverter"), ErrorChars::Nul);
        assert_eq!(inverted.verdict.0, [Cause::Inverted]);
        // The UART takes each inverted stop bit for a start bit: the text turns into bytes with
        // bit 7 set.
        let high: u32 = inverted.histogram[0x80..].iter().sum();
        assert!(high > inverted.received / 2, "{high} of {} bytes with bit 7 set", inverted.received);
    }
}
