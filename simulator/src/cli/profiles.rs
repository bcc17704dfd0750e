//! `p1sim profiles`: the shipped meter profiles, as a table or as JSON.

use std::io::{self, Write};

use anyhow::Result;
use p1sim_core::builtin;
use p1sim_core::profile::Profile;
use serde::Serialize;

use super::Outcome;

/// List the shipped meter profiles.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  p1sim profiles\n  p1sim profiles --json | jq '.[] | select(.country == \"BE\")'")]
pub struct Args {
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    json: bool,
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
