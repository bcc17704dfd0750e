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
        let lines = wrap(&what_it_reproduces(text), 76);
        for (i, line) in lines.iter().enumerate() {
            let label = if i == 0 { *name } else { "" };
            writeln!(out, "  {label:<20} {line}")?;
        }
    }
    Ok(Outcome::Ok)
}

/// The first sentence of a scenario's opening comment (`# Reproduces: ...`, over as many lines
/// as it takes): which field problem it reproduces.
fn what_it_reproduces(text: &str) -> String {
    let comment: Vec<&str> =
        text.lines().map_while(|l| l.strip_prefix('#')).map(str::trim).take_while(|l| !l.is_empty()).collect();
    let joined = comment.join(" ");
    let about = joined.strip_prefix("Reproduces:").unwrap_or(&joined).trim();
    // The sentence ends at a full stop followed by a space (not the one in "e.g." or "3.5").
    let end = about
        .match_indices(". ")
        .map(|(i, _)| i)
        .find(|&i| !about[..i].ends_with("e.g") && !about[..i].ends_with("i.e"))
        .map_or(about.len(), |i| i + 1);
    about[..end].to_string()
}

/// Words into lines of at most `width` characters (a longer word gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_says_in_a_whole_sentence_what_it_reproduces() {
        for (name, text) in SCENARIOS {
            let about = what_it_reproduces(text);
            assert!(about.len() > 20 && about.ends_with(['.', ')']), "{name}: {about:?}");
            assert!(wrap(&about, 76).iter().all(|l| l.chars().count() <= 76 || !l.contains(' ')), "{name}");
        }
        let text = "# Reproduces: a reader that drops the line. The meter stops at\n# once.\n[[fault]]\n";
        assert_eq!(what_it_reproduces(text), "a reader that drops the line.");
    }
}
