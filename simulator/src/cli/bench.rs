//! `p1sim bench`: test an assembled P1 interface board on a rig, or its virtual twin, against
//! a test plan, and give the verdict: a record per board, JUnit, and the diagnosis in words.
//!
//! Exit codes: 0 the board passed, 1 it failed, 2 the station could not test it (no rig, the
//! wrong firmware, an unreadable plan, a phase that could not run).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use p1sim_core::wire::board::Board;

use super::Outcome;
use crate::bench::measure::Outcome as Verdict;
use crate::bench::operator::{Tally, next_serial};
use crate::bench::plan::Plan;
use crate::bench::readback::RequestVia;
use crate::bench::record::{Record, write_atomically};
use crate::bench::station::{Options, Readback, Station};
use crate::bench::{Progress, RunInfo, report};

/// Test an interface board: a real one on the rig, or the virtual twin of a board model.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim bench --board transistor-inverter-bc847                      # the virtual twin of a board model\n  \
    p1sim bench --board ./my-board.toml --legacy --json record.json    # your own model, DSMR 2.2/3 too\n  \
    p1sim bench --rig /dev/ttyACM0 --serial-number SN-0042 --report-dir records/\n  \
    p1sim bench --rig /dev/ttyACM0 --read /dev/ttyUSB0 --request-via rts   # read back through the board's own USB-UART\n  \
    p1sim bench --rig /dev/ttyACM0 --loop --report-dir records/             # board after board, all day\n\n\
    Exit status: 0 the board passed, 1 it failed, 2 the station could not test it.\n\
    The standard plan, its phases and the record are described in docs/bench.md.")]
pub struct Args {
    /// The rig's serial device (the board under test plugs into the rig's RJ12 socket).
    #[arg(long, value_name = "DEV", conflicts_with = "board", required_unless_present = "board")]
    rig: Option<String>,
    /// Test the virtual twin of a board model instead: a name from `p1sim boards`, or a board
    /// file, with optional cable=METRES, pullup=OHMS|none.
    #[arg(long, value_name = "BOARD|FILE[,OPTIONS]")]
    board: Option<String>,
    /// Read the board's output from the USB-UART it feeds (its own reader), not the rig's capture
    /// input.
    #[arg(long, value_name = "PORT", requires = "rig")]
    read: Option<String>,
    /// The reader's modem line that drives the board's Request (asserted = Request high).
    #[arg(long, value_enum, value_name = "LINE", requires = "read")]
    request_via: Option<RequestVia>,
    /// A test plan file instead of the built-in standard plan (`profiles/plans/standard.toml`).
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// The board serves DSMR 2.2/3 meters too: run the plan's legacy phase (9600 7E1).
    #[arg(long)]
    legacy: bool,
    /// The board's serial number, for the record (with --loop --replug, the prefix of numbered
    /// boards).
    #[arg(long, value_name = "SN")]
    serial_number: Option<String>,
    /// This station's name in the record (default: the host name).
    #[arg(long, value_name = "ID")]
    station_id: Option<String>,
    /// Write each record to DIR as SERIAL-START.json.
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Write the record to FILE (the last board's, with --loop).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write JUnit XML to FILE, one test case per phase (the last board's, with --loop).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Test board after board: each starts when a serial number is typed or scanned on standard
    /// input; an empty line ends the session. A tally of the day is kept.
    #[arg(long = "loop")]
    production: bool,
    /// With --loop: start each board when it is plugged in (Request rising after the previous
    /// board was unplugged) instead of on a serial number; boards are numbered.
    #[arg(long, requires = "production")]
    replug: bool,
    /// Multiply every wait by this factor, for rigs slower than real time (the emulator).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    patience: f64,
    /// Print only the verdict, not a line per phase.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: Args) -> Result<Outcome> {
    let mut plan = match &args.plan {
        Some(path) => Plan::load(path).context("--plan")?,
        None => Plan::standard(),
    };
    plan.legacy |= args.legacy;
    if !(args.patience.is_finite() && (1.0..=1000.0).contains(&args.patience)) {
        bail!("--patience {}: give a factor from 1 to 1000", args.patience);
    }
    let options = Options {
        readback: args.read.clone().map_or(Readback::Capture, Readback::Port),
        request_via: args.request_via,
        patience: args.patience,
    };
    let mut station = match (&args.rig, &args.board) {
        (Some(dev), _) => Station::rig(dev, options)?,
        (None, Some(spec)) => Station::twin(Board::parse_spec(spec).context("--board")?, options)?,
        (None, None) => bail!("give --rig DEV for a real board, or --board NAME for a virtual twin"),
    };
    let station_id = args.station_id.clone().unwrap_or_else(host_name);
    if !args.production {
        let serial = args.serial_number.clone().unwrap_or_else(|| "unnamed".into());
        let record = test_one(&mut station, &plan, &args, RunInfo { serial_number: serial, station_id })?;
        return Ok(match record.outcome {
            Verdict::Pass | Verdict::Skip => Outcome::Ok,
            Verdict::Fail => Outcome::Problems,
            Verdict::Error => bail!("the station could not test the board: see the phase that could not run above"),
        });
    }
    let mut tally = Tally::default();
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut n = 0u64;
    loop {
        let serial = if args.replug {
            n += 1;
            if n > 1 && !wait_replug(&mut station)? {
                break;
            }
            format!("{}{n}", args.serial_number.as_deref().unwrap_or("board-"))
        } else {
            match next_serial(&mut input, &mut |s| {
                print!("{s}");
                let _ = io::stdout().flush();
            })? {
                Some(s) => s,
                None => break,
            }
        };
        let record =
            test_one(&mut station, &plan, &args, RunInfo { serial_number: serial, station_id: station_id.clone() })?;
        tally.add(&record);
        println!("Tally: {tally}\n");
    }
    println!("Session: {tally}");
    Ok(if tally.passed == tally.tested { Outcome::Ok } else { Outcome::Problems })
}

/// Runs the plan on one board, shows the verdict and writes the record where asked.
fn test_one(station: &mut Station, plan: &Plan, args: &Args, info: RunInfo) -> Result<Record> {
    let live = io::stdout().is_terminal();
    let quiet = args.quiet;
    let mut progress = |p: Progress<'_>| match p {
        Progress::Started { index, total, name } if live && !quiet => {
            print!("[{}/{}] {name} ...", index + 1, total);
            let _ = io::stdout().flush();
        }
        Progress::Done { index, total, phase } if !quiet => {
            if live {
                print!("\r\x1b[2K");
            }
            println!("{}", report::phase_line(index, total, phase));
        }
        _ => {}
    };
    if !quiet {
        println!(
            "Testing {} with plan {} ({} phases){}",
            info.serial_number,
            plan.name,
            plan.phases.len(),
            station.twin_board().map(|b| format!(" on the virtual twin of {}", b.name)).unwrap_or_default()
        );
    }
    let record = crate::bench::run(station, plan, &info, &mut progress);
    print!("{}", report::summary(&record));
    if let Some(dir) = &args.report_dir {
        let path = record.write_into(dir)?;
        println!("Record: {}", path.display());
    }
    if let Some(path) = &args.json {
        write_atomically(path, record.to_json().as_bytes())?;
    }
    if let Some(path) = &args.junit {
        let xml = report::junit(&record).map_err(anyhow::Error::msg)?;
        write_atomically(path, xml.as_bytes())?;
    }
    Ok(record)
}

/// Waits for the tested board to be unplugged and the next one plugged in: Request low, then
/// high. False when the operator gives up (ten minutes with no board).
fn wait_replug(station: &mut Station) -> Result<bool> {
    println!("Unplug the board and plug in the next one.");
    if !station.wait_request(false, Duration::from_secs(600)) {
        return Ok(false);
    }
    Ok(station.wait_request(true, Duration::from_secs(600)))
}

/// The station's default name: the machine's host name.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().chars().take(64).collect::<String>())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bench".into())
}
