//! `p1sim conformance`: runs the golden conformance suite against a decoder under test and
//! reports per case and per quirk class, on the terminal and as JUnit, JSON and a Markdown matrix.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use p1sim_conformance::dut::{self, Dut};
use p1sim_conformance::process::Transport;
use p1sim_conformance::report::{self, RunInfo};
use p1sim_conformance::runner::{self, CaseResult, Options, Partition};
use p1sim_conformance::suite;

use super::Outcome;

/// Run the conformance suite against a decoder.
///
/// Every case is a short stream of telegrams (clean, damaged, or quirky the way real meters
/// are) with what a correct decoder must report for each. The decoder under test is p1sim's
/// reference decoder, dsmr_parser (set up from PyPI on first use), or any command that speaks
/// the decoder interface described in conformance/adapters/README.md: the case in P1SIM_*
/// environment variables, its bytes on stdin, a PTY or TCP, one JSON line per accepted
/// telegram. Exit status: 0 when every case passes, 1 when any fails, 2 on usage or setup
/// errors (the command cannot start, Python is missing).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim conformance\n  \
    p1sim conformance --dut dsmr_parser --junit conformance.xml\n  \
    p1sim conformance --dut 'python3 my_adapter.py' --transport pty --filter 'crc-*'\n  \
    p1sim conformance --dut conformance/adapters/reference.sh --persistent\n  \
    p1sim conformance --partition 2/4 --json part2.json\n  \
    p1sim conformance --list --filter legacy-dsmr2")]
pub struct Args {
    /// The decoder under test: `reference` (p1sim's own, in-process), `dsmr_parser` (PyPI
    /// dsmr-parser 1.11.2 as Home Assistant runs it), or a shell command that speaks the decoder
    /// interface.
    #[arg(long, default_value = "reference", value_name = "reference|dsmr_parser|'COMMAND'")]
    dut: String,
    /// How the bytes reach a command: on stdin, on a pseudo-terminal (P1SIM_PTY) or over TCP
    /// (P1SIM_TCP) [default: stdin].
    #[arg(long, value_name = "stdin|pty|tcp")]
    transport: Option<Transport>,
    /// One decoder process for all cases (stdin only), for decoders with a slow start-up.
    #[arg(long)]
    persistent: bool,
    /// Only cases whose name contains PATTERN, or matches it as a glob when it has `*`
    /// (`crc-*`, `*/iskra-am550/*`).
    #[arg(long, value_name = "PATTERN")]
    filter: Option<String>,
    /// The K-th of N deterministic slices of the cases, for parallel CI jobs (1-based).
    #[arg(long, value_name = "K/N")]
    partition: Option<Partition>,
    /// Cases run at the same time [default: the available parallelism].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    /// Write a JUnit XML report (one testsuite per quirk class) for CI.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report ("schema_version": 1) with every case and the per-class summary.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Seconds a decoder may take per case before it is killed and the case fails.
    #[arg(long, value_name = "S", default_value = "10", value_parser = parse_timeout)]
    timeout: Duration,
    /// Write the compatibility matrix (Markdown): which quirk classes the decoder handles.
    #[arg(long, value_name = "FILE")]
    matrix: Option<PathBuf>,
    /// Print the selected cases (name and class) instead of running them.
    #[arg(long)]
    list: bool,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("expected seconds greater than 0 (at most a day), e.g. 10 or 2.5, got {s:?}")),
    }
}

pub fn run(args: Args) -> Result<Outcome> {
    let all = suite::cases();
    let suite_size = all.len();
    let cases = runner::select(all, args.filter.as_deref(), args.partition);
    if cases.is_empty() {
        bail!(
            "no case matches --filter {:?}{}: list the cases with `p1sim conformance --list`",
            args.filter.as_deref().unwrap_or(""),
            args.partition.map(|p| format!(" in partition {}/{}", p.k, p.n)).unwrap_or_default()
        );
    }
    if args.list {
        let mut out = std::io::stdout().lock();
        for c in &cases {
            writeln!(out, "{}\t{}", c.name, c.class.name())?;
        }
        return Ok(Outcome::Ok);
    }
    let exe = std::env::current_exe().ok();
    let dut = dut::resolve(&args.dut, exe.as_deref())?;
    if matches!(dut, Dut::Reference) && (args.transport.is_some() || args.persistent) {
        bail!(
            "the reference decoder runs in-process, so --transport and --persistent do not apply; to test \
             them with p1sim's decoder as a command use --dut conformance/adapters/reference.sh"
        );
    }
    let transport = args.transport.unwrap_or(Transport::Stdin);
    if args.persistent && transport != Transport::Stdin {
        bail!("--persistent works over stdin only: drop --transport {transport}");
    }
    let opts = Options {
        transport,
        persistent: args.persistent,
        jobs: args.jobs.map_or_else(|| Options::default().jobs, |j| j as usize),
        timeout: args.timeout,
    };
    let transport_name = match dut {
        Dut::Reference => "in-process".to_string(),
        _ => transport.name().to_string(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "p1sim conformance: {} of {suite_size} cases against {} ({transport_name}{}, {} job{})\n",
        cases.len(),
        dut.label(),
        if opts.persistent { ", persistent" } else { "" },
        opts.jobs,
        if opts.jobs == 1 { "" } else { "s" }
    )?;
    out.flush()?;

    // Ctrl-C (or SIGTERM) stops the run cleanly: running decoders are killed with their process
    // groups (they sit in their own groups, so the terminal's SIGINT does not reach them).
    let cancel = crate::signals::flag_on_stop(None).context("cannot watch for Ctrl-C")?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(cases.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let failed = AtomicUsize::new(0);
    let progress = |r: &CaseResult| {
        if !r.passed {
            let n = failed.fetch_add(1, Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} failed"));
        }
        bar.inc(1);
    };
    let started = jiff::Timestamp::now();
    let t = Instant::now();
    let result = runner::run(&cases, &dut, &opts, &cancel, &progress);
    bar.finish_and_clear();
    let results = result?;
    let info = RunInfo {
        dut: dut.name().to_string(),
        dut_version: dut.version().map(str::to_string),
        dut_note: dut.note(),
        transport: transport_name,
        persistent: opts.persistent,
        jobs: opts.jobs,
        timeout: opts.timeout,
        started,
        elapsed: t.elapsed(),
        command_line: command_line(),
        suite_size,
    };
    let failures = report::failures(&cases, &results);
    if !failures.is_empty() {
        writeln!(out, "{failures}")?;
    }
    write!(out, "{}", report::summary(&results, &info))?;
    out.flush()?;
    if let Some(path) = &args.junit {
        write_report(path, &report::junit(&cases, &results, &info)?)?;
    }
    if let Some(path) = &args.json {
        write_report(path, &report::json(&results, &info))?;
    }
    if let Some(path) = &args.matrix {
        write_report(path, &report::matrix(&results, &info))?;
    }
    Ok(if results.iter().all(|r| r.passed) { Outcome::Ok } else { Outcome::Problems })
}

fn write_report(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// How this run was started, for report headers: `p1sim conformance --dut dsmr_parser ...`.
fn command_line() -> String {
    let quote = |a: String| {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`*?;&|<>()".contains(c)) {
            format!("'{}'", a.replace('\'', r"'\''"))
        } else {
            a
        }
    };
    std::iter::once("p1sim".to_string()).chain(std::env::args().skip(1).map(quote)).collect::<Vec<_>>().join(" ")
}
