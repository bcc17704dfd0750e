//! `p1sim profiles`: the shipped meter profiles, as a table or as JSON; `p1sim profiles learn`
//! writes a profile learned from a captured telegram.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use p1sim_core::builtin;
use p1sim_core::profile::Profile;
use serde::Serialize;

use super::Outcome;
use crate::capture;

/// List the shipped meter profiles, or learn one from a capture.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  p1sim profiles\n  p1sim profiles --json | jq '.[] | select(.country == \"BE\")'\n  \
                  p1sim profiles learn my-meter.txt -o my-meter.toml"
)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    Learn(LearnArgs),
}

/// Learn a profile from a captured telegram: your own meter, simulated.
///
/// CAPTURE is what you have of your meter: raw bytes from the port (`cat /dev/ttyUSB0 >
/// my-meter.txt`), a telegram pasted from a forum post or bug report, or a log with telegrams
/// (LF-only lines are fine; give --strip-prefix when every line starts with a timestamp). The
/// profile reproduces the first telegram byte for byte: header, spec, objects in order, every
/// value's widths and unit spelling, M-Bus channels, the failure log; its [start] holds the
/// values the meter showed, so a run continues from them. Objects p1sim has no meaning for are
/// kept as fixed text and listed at the top of the file.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim profiles learn my-meter.txt -o my-meter.toml && p1sim emit --profile my-meter.toml --count 3\n  \
    p1sim profiles learn dsmr.log --strip-prefix '^\\S+ \\S+ DEBUG ' -o my-meter.toml\n  \
    p1sim profiles learn smarty.bin --key 000102030405060708090A0B0C0D0E0F -o smarty.toml")]
struct LearnArgs {
    /// The capture: raw port bytes, a pasted telegram, or a log of telegrams.
    #[arg(value_name = "CAPTURE")]
    capture: PathBuf,
    /// Write the profile here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The profile's name [default: the output's file stem, or the capture's].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    reading: super::CaptureArgs,
}

/// One row of `profiles --json`.
#[derive(Debug, Serialize)]
pub struct ProfileSummary {
    pub name: String,
    pub country: &'static str,
    pub spec: &'static str,
    pub baud: u32,
    pub framing: String,
    pub interval_s: u32,
    pub crc: bool,
    pub encrypted: bool,
    pub phases: u8,
    pub header: String,
    pub description: String,
    pub sources: Vec<String>,
    /// How dsmr_parser reads the profile: its specification and its readers' version.
    pub dsmr_parser: DsmrParser,
    /// Home Assistant's "DSMR version" for it; null where the integration has none.
    pub home_assistant: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct DsmrParser {
    pub spec: &'static str,
    pub version: &'static str,
    /// Why dsmr_parser cannot read this meter even so, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<&'static str>,
}

impl ProfileSummary {
    pub fn of(p: &Profile) -> Self {
        let hint = crate::live::hints::reader(p);
        Self {
            name: p.name.clone(),
            country: p.country.code(),
            spec: p.spec.name(),
            baud: p.line.baud,
            framing: p.line.framing.to_string(),
            interval_s: p.interval_s,
            crc: p.crc,
            encrypted: p.is_encrypted(),
            phases: p.phases,
            header: p.header.clone(),
            description: p.description.clone(),
            sources: p.sources.clone(),
            dsmr_parser: DsmrParser { spec: hint.spec, version: hint.version, unreadable: hint.unreadable },
            home_assistant: hint.home_assistant,
        }
    }
}

pub fn run(args: Args) -> Result<Outcome> {
    if let Some(Action::Learn(l)) = args.action {
        return learn(l);
    }
    let profiles = builtin::all()?;
    let rows: Vec<_> = profiles.iter().map(ProfileSummary::of).collect();
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(Outcome::Ok);
    }
    writeln!(
        out,
        "{:<28} {:<3} {:<10} {:>6} {:<4} {:>4} {:<4} {:<3} {:<17} header",
        "name", "cc", "spec", "baud", "fmt", "int", "crc", "enc", "reader"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<28} {:<3} {:<10} {:>6} {:<4} {:>3}s {:<4} {:<3} {:<17} /{}",
            r.name,
            r.country,
            r.spec,
            r.baud,
            r.framing,
            r.interval_s,
            if r.crc { "yes" } else { "no" },
            if r.encrypted { "yes" } else { "no" },
            r.dsmr_parser.version,
            r.header
        )?;
    }
    Ok(Outcome::Ok)
}

fn learn(args: LearnArgs) -> Result<Outcome> {
    let opts = args.reading.options();
    let capture = capture::read(&args.capture, &opts)?;
    let stem = |p: &PathBuf| p.file_stem().and_then(|s| s.to_str()).map(str::to_string);
    let name = args.name.clone().or_else(|| args.output.as_ref().and_then(stem)).or_else(|| stem(&args.capture));
    let learned = crate::learn::learn(&capture, name.as_deref().unwrap_or("my-meter"))?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &learned.toml).with_context(|| format!("cannot write {}", path.display()))?;
            let p = &learned.profile;
            eprintln!(
                "{}: /{} ({} {}, {} objects, {} kept as fixed text); check it with `p1sim emit --profile {} --count 1`",
                path.display(),
                p.header,
                p.spec,
                p.country,
                p.objects.len(),
                learned.fixed.len(),
                path.display()
            );
        }
        None => io::stdout().lock().write_all(learned.toml.as_bytes())?,
    }
    Ok(Outcome::Ok)
}
