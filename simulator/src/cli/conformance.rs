//! `p1sim conformance`: runs the golden conformance suite against a decoder under test and
//! reports per case and per quirk class, on the terminal and as JUnit, JSON, a Markdown matrix
//! and a matrix entry; keeps a baseline of known failures; exports the cases as files; and
//! (`p1sim conformance matrix`) renders the side-by-side compatibility matrix.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use p1sim_conformance::dut::{self, Dut};
use p1sim_conformance::known::Baseline;
use p1sim_conformance::matrix::{self, Entry};
use p1sim_conformance::process::Transport;
use p1sim_conformance::report::{self, RunInfo};
use p1sim_conformance::runner::{self, CaseResult, Gate, Options, Partition, Selection};
use p1sim_conformance::{Suite, export};

use super::Outcome;

/// Where EVIDENCE.md is for documents written outside the repository.
const EVIDENCE_URL: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/conformance/EVIDENCE.md");

/// Run the conformance suite against a decoder.
///
/// Every case is a short stream of telegrams (clean, damaged, or quirky the way real meters
/// are) with what a correct decoder must report for each, and how firmly: required (the
/// specification or real meters), recommended (robustness), or either. The decoder under test
/// is p1sim's reference decoder, dsmr_parser (set up from PyPI on first use), dsmr5 (the adapter
/// built beside p1sim), ESPHome's or Homey's parser (built from a source checkout, --source), or
/// any command that speaks the decoder interface described in
/// conformance/adapters/README.md: the case in P1SIM_* environment variables, its bytes on
/// stdin, a PTY or TCP, one JSON line per accepted telegram. Exit status: 0 when every case
/// passes (at --level; with --known-failures, when no case fails that is not listed), 1 when
/// any fails, 2 on usage or setup errors (the command cannot start, fails the same way on the
/// first cases, Python is missing).
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  \
    p1sim conformance\n  \
    p1sim conformance --dut dsmr_parser --junit conformance.xml\n  \
    p1sim conformance --dut esphome --source ~/src/dsmr_parser\n  \
    p1sim conformance --dut 'python3 my_adapter.py' --transport pty --filter 'crc-*'\n  \
    p1sim conformance --dut ./my-adapter --level required --known-failures known.txt\n  \
    p1sim conformance --dut ./my-adapter --write-known-failures known.txt\n  \
    p1sim conformance --dut conformance/adapters/reference.sh --persistent\n  \
    p1sim conformance --partition 2/4 --exclude 'encrypted/*' --json part2.json\n  \
    p1sim conformance --export cases/\n  \
    p1sim conformance --list --filter legacy-dsmr2\n  \
    p1sim conformance --corpus my-cases/ --filter 'corpus/*' --dut ./my-adapter\n  \
    p1sim conformance corpus add my-meter.txt --name my-meter --corpus my-cases/\n  \
    p1sim conformance matrix"
)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    Matrix(MatrixArgs),
    #[command(subcommand)]
    Corpus(CorpusAction),
}

/// Your own cases: captured telegrams with what a correct decoder reports.
#[derive(Debug, clap::Subcommand)]
enum CorpusAction {
    Add(CorpusAddArgs),
}

/// Turn a captured telegram into a conformance case: NAME.txt (the bytes) and NAME.json (what a
/// correct decoder reports, read by p1sim's reference decoder). Review the JSON: it is what every
/// decoder run with `--corpus DIR` will be held to.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim conformance corpus add my-meter.txt --name my-meter\n  \
    p1sim conformance corpus add issue-123.txt --name issue-123 --corpus tests/p1-cases --spec 'DSMR 4.2'\n  \
    p1sim conformance --corpus tests/p1-cases --dut ./my_adapter")]
struct CorpusAddArgs {
    /// The capture: raw port bytes, a pasted telegram, or a log of telegrams.
    #[arg(value_name = "CAPTURE")]
    capture: PathBuf,
    /// The case's name: NAME.txt and NAME.json, run as corpus/NAME.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The corpus directory.
    #[arg(long, value_name = "DIR", default_value = "corpus")]
    corpus: PathBuf,
    /// The spec the decoder is told [default: what the capture shows].
    #[arg(long, value_name = "SPEC")]
    spec: Option<String>,
    #[command(flatten)]
    reading: super::CaptureArgs,
    /// Replace a case of the same name.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The decoder under test: `reference` (p1sim's own, in-process), `dsmr_parser` (PyPI
    /// dsmr-parser 1.11.2 as Home Assistant runs it), `dsmr5` (crates.io dsmr5 0.4.0 through its
    /// adapter crate), `esphome` (ESPHome's esphome-libs/dsmr_parser) or `node-dsmr-parser`
    /// (Homey's @athombv/dsmr-parser), both built from a checkout given by --source, or a shell
    /// command that speaks the decoder interface.
    #[arg(
        long,
        default_value = "reference",
        value_name = "reference|dsmr_parser|dsmr5|esphome|node-dsmr-parser|'COMMAND'"
    )]
    dut: String,
    /// The source checkout `--dut esphome` or `--dut node-dsmr-parser` is built from (they are on
    /// no package registry) [default: $ESPHOME_DSMR_SOURCE or $NODE_DSMR_PARSER].
    #[arg(long, value_name = "DIR")]
    source: Option<PathBuf>,
    /// The decoder's name in reports, instead of the command text.
    #[arg(long, value_name = "NAME")]
    dut_name: Option<String>,
    /// The decoder's version (or commit) for reports.
    #[arg(long, value_name = "VERSION")]
    dut_version: Option<String>,
    /// One sentence on how the decoder was built and run, for the matrix.
    #[arg(long, value_name = "TEXT")]
    dut_note: Option<String>,
    /// How the bytes reach a command: on stdin, on a pseudo-terminal (P1SIM_PTY) or over TCP
    /// (P1SIM_TCP) [default: stdin].
    #[arg(long, value_name = "stdin|pty|tcp")]
    transport: Option<Transport>,
    /// One decoder process for all cases (stdin only), for decoders with a slow start-up.
    #[arg(long)]
    persistent: bool,
    /// Only cases whose name contains PATTERN, or matches it as a glob when it has `*`
    /// (`crc-*`, `*/iskra-am550/*`); repeat for several.
    #[arg(long, value_name = "PATTERN")]
    filter: Vec<String>,
    /// Leave out cases whose name matches PATTERN (as --filter); repeat for several.
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// The K-th of N deterministic slices of the cases, for parallel CI jobs (1-based).
    #[arg(long, value_name = "K/N")]
    partition: Option<Partition>,
    /// Which expectations decide pass and fail: `required` (conformance) or `all` (required and
    /// recommended).
    #[arg(long, value_name = "required|all", default_value = "all")]
    level: Gate,
    /// A baseline of known failures (one case name per line, or a matrix entry): listed cases
    /// may fail; new failures fail the run; fixed ones are reported.
    #[arg(long, value_name = "FILE")]
    known_failures: Option<PathBuf>,
    /// Write the cases failing now (at --level) as a known-failures baseline.
    #[arg(long, value_name = "FILE")]
    write_known_failures: Option<PathBuf>,
    /// Cases run at the same time [default: the available parallelism].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    /// Write a JUnit XML report (one testsuite per quirk class) for CI.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report ("schema_version": 2) with every case and the per-class summary.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Seconds a decoder may take per case before it is killed and the case fails.
    #[arg(long, value_name = "S", default_value = "10", value_parser = parse_timeout)]
    timeout: Duration,
    /// Write this decoder's compatibility matrix (Markdown): the quirk classes it handles.
    #[arg(long, value_name = "FILE")]
    matrix: Option<PathBuf>,
    /// Record this run as a column of the side-by-side matrix: DIR/NAME.json.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Write every selected case as NAME.bin and NAME.json under DIR (with a README of the
    /// format), for a decoder's own test framework, instead of running them.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Print the selected cases (name and class) instead of running them.
    #[arg(long)]
    list: bool,
    /// Add the cases of this directory (NAME.txt with NAME.json, see `p1sim conformance corpus
    /// add`) to the suite, as class `corpus`.
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
}

/// Render the side-by-side compatibility matrix from recorded runs (`--record`).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim conformance matrix\n  \
    p1sim conformance matrix --results conformance/results -o docs/compatibility.md")]
struct MatrixArgs {
    /// The directory of recorded runs, one JSON entry per decoder.
    #[arg(long, value_name = "DIR", default_value = "conformance/results")]
    results: PathBuf,
    /// Where to write the Markdown document.
    #[arg(short, long, value_name = "FILE", default_value = "docs/compatibility.md")]
    output: PathBuf,
    /// Markdown included as the list of decoder bugs [default: RESULTS/FINDINGS.md if present].
    #[arg(long, value_name = "FILE")]
    findings: Option<PathBuf>,
    /// How the document links to EVIDENCE.md.
    #[arg(long, value_name = "LINK", default_value = "../conformance/EVIDENCE.md")]
    evidence: String,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("expected seconds greater than 0 (at most a day), e.g. 10 or 2.5, got {s:?}")),
    }
}

pub fn run(args: Args) -> Result<Outcome> {
    match args.action {
        Some(Action::Matrix(m)) => render_matrix(&m),
        Some(Action::Corpus(CorpusAction::Add(a))) => corpus_add(&a),
        None => run_suite(args.run),
    }
}

fn corpus_add(args: &CorpusAddArgs) -> Result<Outcome> {
    let opts = args.reading.options();
    let capture = crate::capture::read(&args.capture, &opts)?;
    let spec = match &args.spec {
        Some(s) => s.parse().map_err(|e| anyhow::anyhow!("--spec {s:?}: {e}"))?,
        None => crate::learn::spec_of(&capture),
    };
    let input: Vec<u8> =
        capture.telegrams.iter().flat_map(|t| t.frame.clone().unwrap_or_else(|| t.bytes.clone())).collect();
    let description = format!("captured telegrams of {}", args.capture.display());
    let case = p1sim_conformance::corpus::from_capture(
        &args.name,
        input,
        spec,
        spec.default_line(),
        (args.reading.key, args.reading.auth_key),
        &description,
    );
    let (txt, json) = p1sim_conformance::corpus::write(&args.corpus, &args.name, &case, args.force)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} and {}: review what every decoder will be held to:\n", txt.display(), json.display())?;
    write!(out, "{}", p1sim_conformance::expectation::render(&case))?;
    writeln!(
        out,
        "\nrun it with: p1sim conformance --corpus {} --filter corpus/{} --dut ...",
        args.corpus.display(),
        args.name
    )?;
    Ok(Outcome::Ok)
}

fn render_matrix(args: &MatrixArgs) -> Result<Outcome> {
    let entries = matrix::read_dir(&args.results)?;
    if entries.is_empty() {
        bail!(
            "{} holds no recorded runs: record one with `p1sim conformance --dut ... --record {}`",
            args.results.display(),
            args.results.display()
        );
    }
    let findings_path = args.findings.clone().unwrap_or_else(|| args.results.join("FINDINGS.md"));
    let findings = match fs::read_to_string(&findings_path) {
        Ok(t) => Some(t),
        Err(_) if args.findings.is_none() => None,
        Err(e) => bail!("cannot read {}: {e}", findings_path.display()),
    };
    let doc = matrix::render(&entries, Suite::standard().size(), &args.evidence, findings.as_deref());
    write_report(&args.output, &doc)?;
    println!("{}: {} decoder(s) side by side", args.output.display(), entries.len());
    Ok(Outcome::Ok)
}

fn run_suite(args: RunArgs) -> Result<Outcome> {
    let mut suite = Suite::standard();
    if let Some(dir) = &args.corpus {
        suite = suite.with(p1sim_conformance::corpus::load(dir)?);
    }
    let suite_size = suite.size();
    // A peer built from a checkout leaves out the cases it cannot be run on (its note says why).
    let mut excludes = args.exclude.clone();
    if let Some(peer) = p1sim_conformance::checkout::Peer::from_dut(args.dut.trim()) {
        excludes.extend(peer.not_run().iter().map(|p| p.to_string()));
    }
    let selection = Selection { filters: args.filter.clone(), excludes, partition: args.partition };
    let cases = suite.select(&selection).into_cases();
    if cases.is_empty() {
        bail!(
            "no case matches {}: list the cases with `p1sim conformance --list`",
            if selection.describe().is_empty() { "the selection".to_string() } else { selection.describe() }
        );
    }
    if let Some(dir) = &args.export {
        let n = export::write(dir, &cases)?;
        println!("{n} case(s) written to {} (the format: {})", dir.display(), dir.join("README.md").display());
        return Ok(Outcome::Ok);
    }
    if args.list {
        let mut out = std::io::stdout().lock();
        for c in &cases {
            writeln!(out, "{}\t{}", c.name, c.class.name())?;
        }
        return Ok(Outcome::Ok);
    }
    let baseline = match &args.known_failures {
        Some(path) => Some(Baseline::read(path, args.level)?),
        None => None,
    };
    let exe = std::env::current_exe().ok();
    let mut dut = dut::resolve(&args.dut, exe.as_deref(), args.source.as_deref())?;
    if let Dut::Command { name, version, .. } = &mut dut {
        if let Some(n) = &args.dut_name {
            name.clone_from(n);
        }
        if args.dut_version.is_some() {
            version.clone_from(&args.dut_version);
        }
    }
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
        "p1sim conformance: {} of {suite_size} cases against {} ({transport_name}{}, {} job{}, level {})\n",
        cases.len(),
        dut.label(),
        if opts.persistent { ", persistent" } else { "" },
        opts.jobs,
        if opts.jobs == 1 { "" } else { "s" },
        args.level.name()
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
    let gate = args.level;
    let progress = |r: &CaseResult| {
        if !r.passes(gate) {
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
        dut_note: args.dut_note.clone().or_else(|| dut.note()),
        transport: transport_name,
        persistent: opts.persistent,
        jobs: opts.jobs,
        timeout: opts.timeout,
        started,
        elapsed: t.elapsed(),
        command_line: command_line(),
        suite_size,
        gate,
    };
    let failures = report::failures(&cases, &results, gate);
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
    let entry = Entry::of(&results, &info);
    if let Some(path) = &args.matrix {
        write_report(path, &matrix::render(std::slice::from_ref(&entry), suite_size, EVIDENCE_URL, None))?;
    }
    if let Some(dir) = &args.record {
        let path = entry.record(dir)?;
        writeln!(out, "recorded {}", path.display())?;
    }
    if let Some(path) = &args.write_known_failures {
        write_report(path, &Baseline::render(&results, gate, &info.dut_label()))?;
        writeln!(out, "known failures written to {}", path.display())?;
    }
    let passed = match (&baseline, &args.known_failures) {
        (Some(b), Some(path)) => {
            let c = b.compare(&results, gate);
            write!(out, "{}", c.describe(path))?;
            c.new.is_empty()
        }
        _ => results.iter().all(|r| r.passes(gate)),
    };
    Ok(if passed { Outcome::Ok } else { Outcome::Problems })
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
