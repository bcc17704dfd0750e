//! Known failures: a baseline a decoder project keeps so it can adopt the suite step by step.
//! `--write-known-failures FILE` records the cases failing now; `--known-failures FILE` then
//! lets those fail without failing the run, fails it on any new failure, and reports the cases
//! that have been fixed since.
//!
//! The file is text: one case name per line, `#` starts a comment (the writer puts the first
//! problem of each case there, so a review of the baseline reads like a to-do list).

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

use crate::SetupError;
use crate::runner::{CaseResult, Gate};

/// Entries beyond this are refused: no suite has that many cases.
const MAX_ENTRIES: usize = 100_000;
/// Files beyond this are refused before reading.
const MAX_BYTES: u64 = 16 << 20;

/// A baseline: the names of cases known to fail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baseline {
    pub names: BTreeSet<String>,
}

/// How a run compares with its baseline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Failing and listed: tolerated.
    pub known: Vec<String>,
    /// Failing and not listed: these fail the run.
    pub new: Vec<String>,
    /// Listed but passing now: remove them from the baseline.
    pub fixed: Vec<String>,
    /// Listed but not part of this run's selection (another partition, a renamed case).
    pub not_run: Vec<String>,
}

impl Baseline {
    /// Reads a baseline: a known-failures file, or a compatibility-matrix entry (its failing
    /// cases at `gate`), so a recorded column doubles as the baseline that keeps it true.
    /// Errors name the file and line.
    pub fn read(path: &Path, gate: Gate) -> Result<Baseline, SetupError> {
        let bad = |what: String| SetupError::new(format!("{}: {what}", path.display()));
        let limit = p1sim_core::input::Limit::new("known-failures file", MAX_BYTES);
        let text = p1sim_core::input::read_bounded_text(path, limit)
            .map_err(|e| bad(format!("cannot read the known-failures file: {e}")))?;
        if text.trim_start().starts_with('{') {
            let entry = crate::matrix::Entry::read(path)?;
            let names =
                entry.failing.into_iter().filter(|c| gate == Gate::All || !c.conformant).map(|c| c.name).collect();
            return Ok(Baseline { names });
        }
        Baseline::parse(&text).map_err(|(line, what)| bad(format!("line {line}: {what}")))
    }

    /// Parses baseline text; the error is (line, what).
    pub fn parse(text: &str) -> Result<Baseline, (usize, String)> {
        let mut names = BTreeSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.contains(char::is_whitespace) {
                return Err((i + 1, format!("expected one case name per line, got {line:?}")));
            }
            if names.len() >= MAX_ENTRIES {
                return Err((i + 1, format!("more than {MAX_ENTRIES} entries")));
            }
            names.insert(line.to_string());
        }
        Ok(Baseline { names })
    }

    /// The cases of `results` failing at `gate`, each with its first problem as a comment.
    pub fn render(results: &[CaseResult], gate: Gate, header: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# p1sim conformance known failures ({header}, level {})", gate.name());
        let _ = writeln!(s, "# One case name per line; run with --known-failures FILE to fail on new failures only.");
        for r in results.iter().filter(|r| !r.passes(gate)) {
            let first = r.problems_at(gate).next().map(|p| p.to_string()).unwrap_or_default();
            let first: String = first.chars().take(160).collect();
            let _ = writeln!(s, "{}  # {}", r.name, first.replace('\n', " "));
        }
        s
    }

    /// Compares a run with the baseline at `gate`.
    pub fn compare(&self, results: &[CaseResult], gate: Gate) -> Comparison {
        let mut c = Comparison::default();
        for r in results {
            let listed = self.names.contains(&r.name);
            match (r.passes(gate), listed) {
                (false, true) => c.known.push(r.name.clone()),
                (false, false) => c.new.push(r.name.clone()),
                (true, true) => c.fixed.push(r.name.clone()),
                (true, false) => {}
            }
        }
        c.not_run = self.names.iter().filter(|n| !results.iter().any(|r| &r.name == *n)).cloned().collect();
        c
    }
}

impl Comparison {
    /// The lines a run prints about its baseline.
    pub fn describe(&self, file: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "known failures ({}): {} still failing, {} new, {} fixed",
            file.display(),
            self.known.len(),
            self.new.len(),
            self.fixed.len()
        );
        for n in &self.new {
            let _ = writeln!(s, "  new failure: {n}");
        }
        for n in &self.fixed {
            let _ = writeln!(s, "  fixed: {n}");
        }
        if !self.fixed.is_empty() {
            let _ =
                writeln!(s, "  remove the fixed cases from the baseline, or rewrite it with --write-known-failures");
        }
        if !self.not_run.is_empty() {
            let _ = writeln!(
                s,
                "  {} listed case(s) were not run (another partition or filter, or renamed): e.g. {}",
                self.not_run.len(),
                self.not_run[0]
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::in_process_case;
    use crate::suite::cases;
    use crate::verdict::Problem;

    #[test]
    fn baselines_parse_with_comments_and_refuse_what_is_not_a_name() {
        let b = Baseline::parse("# header\ncrc-format/a/b/s1  # why\n\n  clean/x/y/s2\n").unwrap();
        assert_eq!(b.names.len(), 2);
        assert!(b.names.contains("clean/x/y/s2"));
        assert_eq!(Baseline::parse("ok/1\ntwo words\n").unwrap_err().0, 2);
    }

    #[test]
    fn known_failures_pass_new_ones_fail_fixed_ones_are_reported() {
        let all = cases();
        let ok = |i: usize| in_process_case(&all[i], crate::reference::decode(&all[i]));
        let failing = |i: usize| {
            let mut r = ok(i);
            r.problems.push(Problem::process("broken"));
            r
        };
        let results = vec![failing(0), failing(1), ok(2), ok(3)];
        let written = Baseline::render(&results, Gate::All, "test 1.0");
        assert!(written.contains(&format!("{}  # broken", all[0].name)), "{written}");
        let mut baseline = Baseline::parse(&written).unwrap();
        assert_eq!(
            baseline.compare(&results, Gate::All),
            Comparison { known: vec![all[0].name.clone(), all[1].name.clone()], ..Comparison::default() }
        );
        baseline.names.remove(&all[1].name);
        baseline.names.insert(all[2].name.clone());
        baseline.names.insert("gone/case/x/s9".into());
        let c = baseline.compare(&results, Gate::All);
        assert_eq!(c.new, [all[1].name.clone()]);
        assert_eq!(c.fixed, [all[2].name.clone()]);
        assert_eq!(c.not_run, ["gone/case/x/s9"]);
        assert!(c.describe(Path::new("k.txt")).contains("1 new, 1 fixed"));
    }
}
