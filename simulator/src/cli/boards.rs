//! `p1sim boards`: the shipped interface boards (for `bench --board` and `emit --through`), as a
//! table or JSON, and the file of one, to start a board file of your own from.

use std::io::{self, Write};

use anyhow::{Result, bail};
use p1sim_core::builtin;
use p1sim_core::wire::board::Board;
use serde::Serialize;

use super::Outcome;

/// List the interface boards of the wire model and the bench's virtual twins.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim boards\n  \
    p1sim boards --json\n  \
    p1sim boards --show ftdi-inverted > my-board.toml   # a board file to edit\n  \
    p1sim bench --board ./my-board.toml")]
pub struct Args {
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    json: bool,
    /// Print the board file of one shipped board.
    #[arg(long, value_name = "NAME", conflicts_with = "json")]
    show: Option<String>,
}

/// One row of `boards --json`: the keys of a board file.
#[derive(Debug, Serialize)]
struct BoardSummary<'a> {
    name: &'a str,
    summary: &'a str,
    pull_up_ohms: Option<f64>,
    pull_up_volts: Option<f64>,
    load_ohms: Option<f64>,
    clamp_volts: Option<f64>,
    input_pf: f64,
    cable_m: f64,
    rising_volts: f64,
    falling_volts: f64,
    inversions: u8,
    request: &'static str,
    sources: &'a [String],
}

impl<'a> BoardSummary<'a> {
    fn of(b: &'a Board) -> Self {
        BoardSummary {
            name: &b.name,
            summary: &b.summary,
            pull_up_ohms: b.pull_up.map(|p| p.ohms),
            pull_up_volts: b.pull_up.map(|p| p.volts),
            load_ohms: b.load_ohms,
            clamp_volts: b.clamp_volts,
            input_pf: b.input_pf,
            cable_m: b.cable_m,
            rising_volts: b.rising_volts,
            falling_volts: b.falling_volts,
            inversions: b.inversions,
            request: b.request.name(),
            sources: &b.sources,
        }
    }
}

pub fn run(args: Args) -> Result<Outcome> {
    let mut out = io::stdout().lock();
    if let Some(name) = args.show {
        let Some((_, text)) = builtin::BOARDS.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = builtin::board_names().collect();
            bail!("no board named {name:?}; choose one of {}", names.join(", "));
        };
        out.write_all(text.as_bytes())?;
        return Ok(Outcome::Ok);
    }
    let boards = builtin::boards()?;
    if args.json {
        let rows: Vec<_> = boards.iter().map(BoardSummary::of).collect();
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(Outcome::Ok);
    }
    writeln!(out, "{:<26} {:>4} {:>9} {:<7} summary", "name", "inv", "pull-up", "request")?;
    for b in &boards {
        let pull_up = match b.pull_up {
            Some(p) => format!("{}k/{}V", p.ohms / 1000.0, p.volts),
            None => "none".into(),
        };
        writeln!(out, "{:<26} {:>4} {:>9} {:<7} {}", b.name, b.inversions, pull_up, b.request.name(), b.summary)?;
    }
    writeln!(out, "\nA board file of your own: `p1sim boards --show NAME` prints one to start from (docs/boards.md).")?;
    Ok(Outcome::Ok)
}
