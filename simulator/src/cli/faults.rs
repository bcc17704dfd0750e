//! `p1sim faults`: the fault catalogue and the shipped scenarios.

use std::io::{self, Write};

use anyhow::Result;
use p1sim_core::builtin::SCENARIOS;
use p1sim_core::fault::catalogue::CATALOGUE;

use super::Outcome;

/// List the fault catalogue and the shipped fault scenarios.
///
/// A scenario file lists `[[fault]]` tables, each with a `kind` from the catalogue, its
/// parameters, and optionally `when = { every = N }`, `{ probability = P }`, `{ at = "RFC3339" }`
/// or `{ from = "...", until = "..." }`. A `[wire]` table adds bit-level faults on the line
/// (`skew_ppm`, `gap`, `faults = [{ flip = { char, bit } }, { glitch = {..} }, { idle = {..} },
/// { break = {..} }]`), used by `emit --through`, `wave` and the rig. Use a scenario with
/// `emit --faults NAME|FILE`, `run --faults` or `wave --faults`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim faults\n  \
    p1sim emit --profile iskra-am550 --count 20 --faults request-toggling | p1sim decode\n  \
    p1sim emit --profile kaifa-ma304 --count 5 --faults ./my-scenario.toml --fault-log faults.jsonl")]
pub struct Args {}

pub fn run(_: Args) -> Result<Outcome> {
    let mut out = io::stdout().lock();
    writeln!(out, "Faults (kind = ...):\n")?;
    for e in CATALOGUE {
        writeln!(out, "  {:<17} {}", e.name, e.description)?;
        writeln!(out, "  {:<17} seen: {}", "", e.seen)?;
        for (i, line) in e.example.lines().enumerate() {
            writeln!(out, "  {:<17} {} {line}", "", if i == 0 { "example:" } else { "        " })?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Bit-level faults on the line go in a scenario's [wire] table:\n")?;
    writeln!(out, "  skew_ppm = 30000                       # the transmitter 3 % fast")?;
    writeln!(out, "  gap = 0.5                              # extra idle after every character, in bits")?;
    writeln!(out, "  faults = [{{ flip = {{ char = 3, bit = 9 }} }},          # a stop bit: framing error")?;
    writeln!(out, "            {{ glitch = {{ char = 5, at = 3.5, width = 0.25, level = \"mark\" }} }},")?;
    writeln!(
        out,
        "            {{ idle = {{ after = 7, length = 20 }} }}, {{ break = {{ after = 9, length = 30 }} }}]\n"
    )?;
    writeln!(out, "Shipped scenarios (--faults NAME):\n")?;
    for (name, text) in SCENARIOS {
        // The first comment line says which field problem the scenario reproduces.
        let about = text.lines().next().unwrap_or("").trim_start_matches('#').trim();
        writeln!(out, "  {name:<20} {about}")?;
    }
    Ok(Outcome::Ok)
}
