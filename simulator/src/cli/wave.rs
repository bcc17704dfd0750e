//! `p1sim wave`: a meter's telegrams as the bit-level waveform of the P1 data and Request
//! lines (and, through a board, the reader's UART input), as a VCD file and an SVG picture.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use p1sim_core::fault::scenario::Scenario;
use p1sim_core::generator::Generator;
use p1sim_core::input::{Limit, read_bounded};
use p1sim_core::profile::Profile;
use p1sim_core::wire::{Level, PS_PER_S, Run};

use super::Outcome;
use super::line::LineArgs;
use crate::start::{DEFAULT_START, parse_start};
use crate::wire::svg::{self, Row, char_label};
use crate::wire::vcd::{self, Signal};
use crate::wire::{Burst, Pipeline, Recording, Setup, char_ps};

/// When the reader raises Request (pin 2), from the start of the recording.
const REQUEST_AT_PS: u64 = 500 * 1_000_000;
/// When the first telegram starts: meters answer "immediately" (DSMR 5.0.2 §6.2); half a
/// millisecond keeps the two edges apart in a picture.
const FIRST_AT_PS: u64 = 1_000 * 1_000_000;

/// Write the bit-level waveform of a meter's telegrams as a VCD file (and an SVG picture).
///
/// The VCD holds the P1 Request line, the P1 data line as the meter drives it (low = sinking,
/// high = released; the line idles low because P1 is inverted) and, with --through, the UART
/// input after the board. GTKWave opens it; so does PulseView, with the UART decoder on
/// p1.data (invert RX: yes) or on reader.rx (invert RX: no). Request rises at 0.5 ms and the
/// first telegram starts at 1 ms; later ones follow at the profile's interval.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim wave --profile kamstrup-162 --vcd kamstrup.vcd --svg kamstrup.svg\n  \
    p1sim wave --profile iskra-am550 --through transistor-inverter,cable=30 --vcd am550.vcd\n  \
    p1sim wave --profile iskra-am550 --through direct-no-inverter --vcd garbage.vcd --svg garbage.svg --ms 2\n  \
    p1sim wave --profile kaifa-ma304 --flip 0:9 --glitch 3:4.5:0.25 --skew 3 --vcd faults.vcd\n  \
    p1sim emit --profile iskra-am550 --faults request-toggling -o t.txt && p1sim wave --profile iskra-am550 --input t.txt --vcd t.vcd")]
pub struct Args {
    /// A shipped profile name (see `p1sim profiles`) or a profile TOML file: the meter and its line
    /// settings.
    #[arg(long, short = 'p', value_name = "NAME|PATH")]
    profile: String,
    /// Number of telegrams.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 1)]
    count: u64,
    /// Seed of the simulated household.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instant of the first telegram: RFC 3339, a local date or time of the meter, or `now`.
    #[arg(long, value_name = "TIME", default_value = DEFAULT_START)]
    start: String,
    /// Smarty decryption key, 32 hex digits (needed by encrypted profiles).
    #[arg(long, value_name = "HEX", value_parser = super::parse_key)]
    key: Option<[u8; 16]>,
    /// Send the bytes of this file (e.g. the output of `p1sim emit --faults ...`) as one burst
    /// instead of generating telegrams; `-` reads standard input.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["count", "seed", "start", "key"])]
    input: Option<PathBuf>,
    /// Apply a fault scenario: its byte faults to the telegrams, its `[wire]` plan to the line.
    #[arg(long, value_name = "NAME|FILE")]
    faults: Option<String>,
    /// Write the waveform here.
    #[arg(long, value_name = "OUT.vcd")]
    vcd: PathBuf,
    /// Also draw the first milliseconds as an SVG picture.
    #[arg(long, value_name = "OUT.svg")]
    svg: Option<PathBuf>,
    /// Milliseconds the SVG shows.
    #[arg(long, value_name = "N", default_value_t = 5.0)]
    ms: f64,
    #[command(flatten)]
    line: LineArgs,
}

pub fn run(args: Args) -> Result<Outcome> {
    let profile = p1sim_core::builtin::lookup(&args.profile)?;
    super::refuse_needless_key(args.key, &profile)?;
    if args.count == 0 {
        bail!("--count 0 draws nothing; give at least 1");
    }
    if !(args.ms.is_finite() && args.ms > 0.0 && args.ms <= 60_000.0) {
        bail!("--ms {}: give the milliseconds to draw, more than 0 and at most 60000", args.ms);
    }
    let scenario = args.faults.as_deref().map(p1sim_core::builtin::scenario).transpose()?;
    let bursts = match &args.input {
        Some(path) => vec![Burst { at_ps: FIRST_AT_PS, bytes: read_input(path)? }],
        None => telegrams(&profile, &args, scenario.as_ref())?,
    };
    let plan = args.line.plan_with(profile.line, scenario.as_ref().and_then(|s| s.wire.as_ref()))?;
    let board = args.line.board()?;
    let setup = Setup {
        line: profile.line,
        plan: plan.as_ref(),
        board: board.clone(),
        receiver: args.line.receiver(profile.line),
    };
    let meter_sends = setup.meter_sends();
    let has_board = board.is_some();
    let rec = record(setup, &bursts)?;
    let request = request_runs(meter_sends, p1sim_core::wire::duration(&rec.meter));

    let mut signals = vec![
        Signal { scope: "p1", name: "request", runs: &request },
        Signal { scope: "p1", name: "data", runs: &rec.meter },
    ];
    if has_board {
        signals.push(Signal { scope: "reader", name: "rx", runs: &rec.reader });
    }
    let comment = format!(
        "p1sim wave: {} ({}), {}. p1.data is the meter's open-collector output (0 = sinking, 1 = released): P1 is inverted, decode with invert RX.{}",
        profile.name,
        profile.line,
        match &board {
            Some(b) => format!("through {} ({})", b.name, b.summary),
            None => "no board".to_string(),
        },
        if has_board { " reader.rx is the UART input after the board." } else { "" }
    );
    let file = File::create(&args.vcd).with_context(|| format!("cannot create {}", args.vcd.display()))?;
    vcd::write(BufWriter::new(file), &signals, vcd::unit_ps(profile.line.baud), &comment)
        .with_context(|| format!("cannot write {}", args.vcd.display()))?;

    if let Some(path) = &args.svg {
        let sent = rec.sent.iter().map(|(t, b)| (*t, char_label(*b))).collect();
        let mut rows = vec![
            Row { label: "P1 request", runs: &request, chars: Vec::new() },
            Row { label: "P1 data", runs: &rec.meter, chars: sent },
        ];
        if let Some(b) = &board {
            let got = rec
                .received
                .iter()
                .map(|c| (c.at, if c.brk { "BRK".to_string() } else { char_label(c.byte) }))
                .collect();
            rows.push(Row { label: &b.name, runs: &rec.reader, chars: got });
        }
        let title = format!(
            "{} at {}{}",
            profile.name,
            profile.line,
            board.as_ref().map(|b| format!(" through {}", b.name)).unwrap_or_default()
        );
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = BufWriter::new(file);
        svg::write(&mut w, &title, &rows, (args.ms * 1e9) as u64)
            .and_then(|_| w.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Outcome::Ok)
}

/// The profile's telegrams, one interval apart from `FIRST_AT_PS`.
fn telegrams(profile: &Profile, args: &Args, scenario: Option<&Scenario>) -> Result<Vec<Burst>> {
    let start = parse_start(&args.start, profile.clock.zone.tz())?;
    let mut generator = Generator::new(profile.clone(), profile.household.clone(), args.seed, start, args.key)?;
    let first = generator.next_at();
    let mut bursts = Vec::new();
    for index in 0..args.count {
        let at = generator.advance();
        let faults = scenario.map(|s| s.selected(args.seed, index, at)).unwrap_or_default();
        let bytes = if faults.is_empty() {
            let mut bytes = Vec::with_capacity(2048);
            generator.render_current(&mut bytes);
            bytes
        } else {
            generator.faulted_current(&faults, args.seed, index).bytes
        };
        let offset = u64::try_from(at - first).unwrap_or(0) * PS_PER_S;
        bursts.push(Burst { at_ps: FIRST_AT_PS + offset, bytes });
    }
    Ok(bursts)
}

/// The most bytes `wave` draws: every bit becomes waveform runs held in memory, and a megabyte is
/// about a thousand telegrams.
const WAVE_INPUT: Limit = Limit::new("wave input", 1 << 20);

fn read_input(path: &std::path::Path) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin().lock(), WAVE_INPUT.bytes + 1), &mut bytes)
            .context("cannot read standard input")?;
        if bytes.len() as u64 > WAVE_INPUT.bytes {
            anyhow::bail!("standard input is larger than {WAVE_INPUT}");
        }
        return Ok(bytes);
    }
    read_bounded(path, WAVE_INPUT).with_context(|| format!("cannot read {}", path.display()))
}

/// Runs the bursts through the pipeline, keeping every waveform.
pub fn record(setup: Setup<'_>, bursts: &[Burst]) -> Result<Recording> {
    let tail = 10 * char_ps(setup.line);
    let mut pipe = Pipeline::new(setup, true)?;
    for b in bursts {
        pipe.send_at(b.at_ps, &b.bytes, &mut |_| {});
    }
    pipe.finish(tail, &mut |_| {});
    Ok(pipe.into_recording().unwrap_or_default())
}

/// Request: low until `REQUEST_AT_PS`, then high if the board drives it.
fn request_runs(driven: bool, total_ps: u64) -> Vec<Run> {
    let total = total_ps.max(FIRST_AT_PS);
    if driven {
        vec![Run::new(Level::Low, REQUEST_AT_PS), Run::new(Level::High, total - REQUEST_AT_PS)]
    } else {
        vec![Run::new(Level::Low, total)]
    }
}
