//! The p1sim conformance suite: a shared, versioned, golden corpus of P1 inputs with the outcome
//! a correct decoder must produce, and the runner that drives any decoder through an adapter.
//!
//! - [`suite::cases`] generates the cases from profiles, faults and seeds, [`levels`] says how
//!   firmly each expectation is held and on what evidence, [`corpus`] adds a user's captures;
//! - [`expectation::render`] writes a case's expectation for humans (the golden snapshots);
//! - [`schema`] is the decoder output schema and its comparison rules;
//! - [`verdict::judge`] decides a case from a decoder's output;
//! - [`runner`] runs a decoder under test over the suite (through [`dut`] adapters and the
//!   transports in [`process`]), [`report`] writes the results, [`known`] keeps a baseline of
//!   known failures, [`matrix`] renders the side-by-side compatibility matrix, [`export`] writes
//!   the cases as files for other test frameworks;
//! - [`python`] keeps the virtualenvs of Python decoders, [`checkout`] builds the peer decoders
//!   that are on no registry from a source checkout.
//!
//! Rust decoders can run the suite in-process with [`Suite`]: see its example.

pub mod case;
pub mod checkout;
pub mod corpus;
pub mod dut;
pub mod expectation;
pub mod export;
pub mod known;
pub mod levels;
pub mod matrix;
pub mod process;
pub mod python;
pub mod reference;
pub mod report;
pub mod runner;
pub mod schema;
pub mod suite;
pub mod verdict;

pub use case::{Case, Class, ExpectedTelegram, Level};
pub use runner::{Gate, Run};
pub use schema::{Reported, ReportedObject, ReportedValue};
pub use suite::Suite;
pub use verdict::{Problem, Verdict, judge};

/// A run could not start or had to stop: the decoder command cannot be started, Python is
/// missing, a report cannot be written. The message names what failed and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupError {
    pub message: String,
}

impl SetupError {
    pub fn new(message: impl Into<String>) -> Self {
        SetupError { message: message.into() }
    }
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SetupError {}

/// The `*.json` files of `dir`, sorted by name; `what` names the directory in errors ("--corpus
/// DIR", "the results directory DIR"). More than `max` is refused: the directory is not ours.
pub(crate) fn json_files(dir: &std::path::Path, max: usize, what: &str) -> Result<Vec<std::path::PathBuf>, SetupError> {
    let listing = std::fs::read_dir(dir)
        .map_err(|e| SetupError::new(format!("{what} {}: cannot read it: {e}", dir.display())))?;
    let mut paths: Vec<std::path::PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    if paths.len() > max {
        return Err(SetupError::new(format!("{what} {}: more than {max} files", dir.display())));
    }
    paths.sort();
    Ok(paths)
}
