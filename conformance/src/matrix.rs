//! The compatibility matrix: decoders side by side, one row per quirk class, one column per
//! decoder, required and recommended results apart, each failure linked to its evidence.
//!
//! A run records its column with `--record DIR` as a small JSON [`Entry`] (the class counts and
//! the failing cases). `p1sim conformance matrix` renders every entry of a directory into one
//! Markdown document; `cargo xtask conformance --matrix` re-runs the decoders available on the
//! machine first. Entries of decoders that cannot run everywhere (ESPHome's C++ parser, Homey's
//! TypeScript one) are recorded on a developer's machine and committed with how they were run.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SetupError;
use crate::case::{Class, Level};
use crate::report::{RunInfo, by_class};
use crate::runner::CaseResult;

/// The layout version of an entry.
pub const ENTRY_SCHEMA_VERSION: u32 = 1;
/// Entry files beyond this are refused.
const MAX_ENTRY_BYTES: u64 = 8 << 20;
/// Entries read from one directory at most.
const MAX_ENTRIES: usize = 64;
/// Failing cases listed per decoder and class.
const LISTED_PER_CLASS: usize = 3;

/// One decoder's column: how it was run and what it passed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub schema_version: u32,
    pub dut: String,
    pub dut_version: Option<String>,
    /// How the decoder was built and run.
    pub dut_note: Option<String>,
    pub transport: String,
    pub started: String,
    pub command: String,
    pub p1sim_version: String,
    /// Cases in the suite the run drew from, and how many it ran.
    pub suite_size: usize,
    pub selected: usize,
    pub classes: Vec<EntryClass>,
    /// The cases that did not pass every expectation; the first few of each class with their
    /// problems, the rest by name (the names make the entry a known-failures baseline).
    pub failing: Vec<EntryCase>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryClass {
    pub class: String,
    pub total: usize,
    pub required_passed: usize,
    pub recommended_total: usize,
    pub recommended_passed: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryCase {
    pub name: String,
    pub class: String,
    pub conformant: bool,
    /// The first few problems.
    pub problems: Vec<EntryProblem>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryProblem {
    pub level: Level,
    pub evidence: Option<String>,
    pub text: String,
}

impl Entry {
    /// The entry of a finished run.
    pub fn of(results: &[CaseResult], info: &RunInfo) -> Entry {
        Entry {
            schema_version: ENTRY_SCHEMA_VERSION,
            dut: info.dut.clone(),
            dut_version: info.dut_version.clone(),
            dut_note: info.dut_note.clone(),
            transport: if info.persistent {
                format!("{} (persistent)", info.transport)
            } else {
                info.transport.clone()
            },
            started: info.started.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            command: info.command_line.clone(),
            p1sim_version: env!("CARGO_PKG_VERSION").to_string(),
            suite_size: info.suite_size,
            selected: results.len(),
            classes: by_class(results)
                .into_iter()
                .map(|c| EntryClass {
                    class: c.class.name().to_string(),
                    total: c.total,
                    required_passed: c.required_passed,
                    recommended_total: c.recommended_total,
                    recommended_passed: c.recommended_passed,
                })
                .collect(),
            failing: failing_cases(results),
        }
    }

    /// The file name an entry is recorded under: the decoder's name made safe for a path.
    pub fn file_name(&self) -> String {
        let safe: String =
            self.dut.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
        format!("{}.json", safe.trim_matches('-'))
    }

    /// Writes the entry into `dir` under [`Entry::file_name`]; returns the path.
    pub fn record(&self, dir: &Path) -> Result<PathBuf, SetupError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SetupError::new(format!("cannot create the results directory {}: {e}", dir.display())))?;
        let path = dir.join(self.file_name());
        let mut text = serde_json::to_string_pretty(self).expect("entries serialize");
        text.push('\n');
        std::fs::write(&path, text).map_err(|e| SetupError::new(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    }

    /// Reads an entry; errors name the file.
    pub fn read(path: &Path) -> Result<Entry, SetupError> {
        let bad = |what: String| SetupError::new(format!("{}: {what}", path.display()));
        let limit = p1sim_core::input::Limit::new("matrix entry", MAX_ENTRY_BYTES);
        let text = p1sim_core::input::read_bounded_text(path, limit).map_err(|e| bad(format!("cannot read: {e}")))?;
        let entry: Entry = serde_json::from_str(&text).map_err(|e| bad(format!("not a matrix entry: {e}")))?;
        if entry.schema_version != ENTRY_SCHEMA_VERSION {
            return Err(bad(format!(
                "entry layout version {}, this p1sim reads {ENTRY_SCHEMA_VERSION}: re-record it",
                entry.schema_version
            )));
        }
        Ok(entry)
    }

    fn label(&self) -> String {
        match &self.dut_version {
            Some(v) => format!("{} {v}", self.dut),
            None => self.dut.clone(),
        }
    }

    fn class(&self, class: Class) -> Option<&EntryClass> {
        self.classes.iter().find(|c| c.class == class.name())
    }

    fn conformant_cases(&self) -> (usize, usize) {
        let failing = self.failing.iter().filter(|c| !c.conformant).count();
        (self.selected - failing, self.selected)
    }
}

/// The failing cases of a run, the first [`LISTED_PER_CLASS`] of each class with their first
/// problems (what the document lists), the others by name only.
fn failing_cases(results: &[CaseResult]) -> Vec<EntryCase> {
    let mut listed: std::collections::HashMap<Class, usize> = std::collections::HashMap::new();
    results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| {
            let n = listed.entry(r.class).or_default();
            *n += 1;
            let problems = if *n <= LISTED_PER_CLASS { 3 } else { 0 };
            EntryCase {
                name: r.name.clone(),
                class: r.class.name().to_string(),
                conformant: r.conformant(),
                problems: r
                    .problems
                    .iter()
                    .take(problems)
                    .map(|p| EntryProblem {
                        level: p.level,
                        evidence: p.evidence.map(str::to_string),
                        text: shorten(&p.text, 400),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Every entry (`*.json`) of `dir`, in the matrix's column order: p1sim's reference decoder,
/// then the others by name.
pub fn read_dir(dir: &Path) -> Result<Vec<Entry>, SetupError> {
    let paths = crate::json_files(dir, MAX_ENTRIES, "the results directory")?;
    let mut entries = paths.iter().map(|p| Entry::read(p)).collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| (e.dut != "reference", e.dut.to_ascii_lowercase()));
    Ok(entries)
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut t: String = text.chars().take(max).collect();
    t.push_str(" ...");
    t
}

fn md(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `30/42` with a check mark when complete, `-` when the class has none.
fn cell(passed: usize, total: usize) -> String {
    match total {
        0 => "-".into(),
        t if passed == t => format!("{passed}/{t} ✓"),
        t => format!("{passed}/{t}"),
    }
}

/// Renders the side-by-side document. `evidence` is the path of EVIDENCE.md relative to where
/// the document is written; `findings` is Markdown included as the list of decoder bugs.
pub fn render(entries: &[Entry], suite_size: usize, evidence: &str, findings: Option<&str>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Decoder compatibility");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "How popular P1 decoders handle the p1sim conformance suite ({suite_size} cases), side by side. Generated \
         by `cargo xtask conformance --matrix` from the runs recorded in `conformance/results/`; do not edit by hand."
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Each expectation is *required* (the specification says so, or real meters do it), *recommended* \
         (robustness the field needs beyond the letter of the specification) or *either* (both answers are right); \
         [EVIDENCE.md]({evidence}) gives the public sources for each. A cell reads `required · recommended`: the \
         cases of the class meeting every required expectation, then, of the cases with recommended expectations, \
         those meeting them. A decoder that meets every required expectation is **conformant**."
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "## The decoders");
    let _ = writeln!(s);
    let _ = writeln!(s, "| decoder | used by | how it was run | recorded |");
    let _ = writeln!(s, "|---|---|---|---|");
    for e in entries {
        let stale = if e.suite_size != suite_size {
            format!("; against a suite of {} cases, re-record it", e.suite_size)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {}, {} of {} cases, {}, p1sim {}{stale} |",
            md(&e.label()),
            used_by(&e.dut),
            md(e.dut_note.as_deref().unwrap_or("")),
            e.started,
            e.selected,
            e.suite_size,
            e.transport,
            e.p1sim_version
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "## By quirk class");
    let _ = writeln!(s);
    let mut head = String::from("| class | what it checks |");
    let mut rule = String::from("|---|---|");
    for e in entries {
        let _ = write!(head, " {} |", md(&e.dut));
        rule.push_str("---|");
    }
    let _ = writeln!(s, "{head}");
    let _ = writeln!(s, "{rule}");
    for class in Class::ALL {
        if !entries.iter().any(|e| e.class(class).is_some()) {
            continue;
        }
        let mut row = format!("| [{}]({evidence}#class-{}) | {} |", class.name(), class.name(), md(class.about()));
        for e in entries {
            match e.class(class) {
                Some(c) => {
                    let _ = write!(
                        row,
                        " {} · {} |",
                        cell(c.required_passed, c.total),
                        cell(c.recommended_passed, c.recommended_total)
                    );
                }
                None => row.push_str(" not run |"),
            }
        }
        let _ = writeln!(s, "{row}");
    }
    let mut total = String::from("| **conformant cases** | |");
    for e in entries {
        let (ok, all) = e.conformant_cases();
        let _ = write!(total, " **{ok}/{all}**{} |", if ok == all { " ✓" } else { "" });
    }
    let _ = writeln!(s, "{total}");
    if let Some(f) = findings {
        let _ = writeln!(s);
        s.push_str(f.trim_end());
        let _ = writeln!(s);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "## Failures");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Up to {LISTED_PER_CLASS} failing cases per decoder and class, each with what the suite expected, what the \
         decoder did, and the evidence behind the expectation. `p1sim conformance --dut ... --filter NAME` shows \
         one in full."
    );
    for e in entries {
        if e.failing.is_empty() {
            continue;
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "### {}", md(&e.label()));
        for class in Class::ALL {
            let failing: Vec<&EntryCase> = e.failing.iter().filter(|c| c.class == class.name()).collect();
            if failing.is_empty() {
                continue;
            }
            let c = e.class(class);
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "**{}** (required {}, recommended {})",
                class.name(),
                c.map_or("-".into(), |c| cell(c.required_passed, c.total)),
                c.map_or("-".into(), |c| cell(c.recommended_passed, c.recommended_total))
            );
            let _ = writeln!(s);
            for f in failing.iter().take(LISTED_PER_CLASS) {
                let Some(p) = f.problems.first() else { continue };
                let link = p.evidence.as_deref().map(|k| format!(" ([evidence]({evidence}#{k}))")).unwrap_or_default();
                let more =
                    if f.problems.len() > 1 { format!(" (+{} more)", f.problems.len() - 1) } else { String::new() };
                let _ = writeln!(s, "- `{}` {}: {}{more}{link}", f.name, p.level.name(), md(&shorten(&p.text, 300)));
            }
            if failing.len() > LISTED_PER_CLASS {
                let _ = writeln!(s, "- and {} more", failing.len() - LISTED_PER_CLASS);
            }
        }
    }
    s
}

/// Who relies on a decoder, for the table; empty for others.
fn used_by(dut: &str) -> &'static str {
    match dut {
        "reference" => "p1sim itself",
        "dsmr_parser" => "Home Assistant, dsmr-reader",
        "dsmr5" => "Rust `no_std` firmware",
        d if d.starts_with("esphome") => "ESPHome",
        d if d.contains("node-dsmr-parser") || d.contains("athombv") => "Homey Energy Dongle",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::in_process_case;
    use crate::suite::cases;
    use crate::verdict::Problem;

    #[test]
    fn entries_round_trip_and_render_side_by_side() {
        let all = cases();
        let picked: Vec<_> = all.iter().filter(|c| c.name.starts_with("crc-")).collect();
        let good: Vec<CaseResult> = picked.iter().map(|c| in_process_case(c, crate::reference::decode(c))).collect();
        let mut bad = good.clone();
        bad[0].problems.push(Problem { evidence: Some("crc"), ..Problem::process("must be rejected | but was not") });
        let info =
            |dut: &str| RunInfo { dut_note: Some(format!("{dut} as tested")), ..RunInfo::in_process(dut, all.len()) };
        let a = Entry::of(&good, &info("reference"));
        let b = Entry::of(&bad, &info("some decoder"));
        let dir = std::env::temp_dir().join(format!("p1sim-matrix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(b.record(&dir).unwrap().file_name().unwrap(), "some-decoder.json");
        a.record(&dir).unwrap();
        let read = read_dir(&dir).unwrap();
        assert_eq!(read, [a.clone(), b.clone()], "the reference decoder comes first");
        let doc = render(&read, all.len(), "../conformance/EVIDENCE.md", Some("## Bugs the suite found\n\n- one\n"));
        assert!(doc.contains("| class | what it checks | reference | some decoder |"), "{doc}");
        let crc_check = all.iter().filter(|c| c.name.starts_with("crc-check/")).count();
        let row = format!(
            "| [crc-check](../conformance/EVIDENCE.md#class-crc-check) | {} | {crc_check}/{crc_check} ✓ · - | {}/{crc_check} · - |",
            md(Class::CrcCheck.about()),
            crc_check - 1
        );
        assert!(doc.contains(&row), "{row}\n{doc}");
        assert!(doc.contains("must be rejected \\| but was not ([evidence](../conformance/EVIDENCE.md#crc))"), "{doc}");
        assert!(doc.contains("## Bugs the suite found"), "{doc}");
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        assert!(read_dir(&dir).unwrap_err().message.contains("broken.json"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
