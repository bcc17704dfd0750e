//! What a run reports: failures as readable expected-versus-got diffs and a summary table by
//! quirk class for people, JUnit XML for CI (Jenkins, GitLab), and a versioned JSON document for
//! tools and for the side-by-side compatibility matrix ([`crate::matrix`]).
//!
//! Required and recommended expectations are counted apart everywhere: a decoder that meets
//! every required one is conformant, whatever it does with the recommended ones.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::SetupError;
use crate::case::{Case, Class};
use crate::runner::{CaseResult, Gate};
use crate::schema::{Reported, ReportedObject, compare_telegram, is_acceptance, show};

/// The version of the JSON report's layout; bumped on any incompatible change. Version 2 added
/// levels: per-case `conformant`, per-problem `level` and `evidence`, per-class `required` and
/// `recommended` counts.
pub const JSON_SCHEMA_VERSION: u32 = 2;

/// What was run, how and when: the header of every report.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// `reference`, `dsmr_parser` or the command.
    pub dut: String,
    pub dut_version: Option<String>,
    /// One sentence on how the decoder is run, for the matrix (e.g. what the adapter mimics).
    pub dut_note: Option<String>,
    /// `stdin`, `pty`, `tcp`, or `in-process`.
    pub transport: String,
    pub persistent: bool,
    pub jobs: usize,
    pub timeout: Duration,
    pub started: jiff::Timestamp,
    pub elapsed: Duration,
    /// The command line that produced the run.
    pub command_line: String,
    /// Cases in the whole suite, before `--filter` and `--partition`.
    pub suite_size: usize,
    /// Which expectations decide pass and fail (`--level`).
    pub gate: Gate,
}

impl RunInfo {
    /// The header of a run of a decoder called in-process (no transport, one job).
    pub fn in_process(dut: &str, suite_size: usize) -> RunInfo {
        RunInfo {
            dut: dut.to_string(),
            dut_version: None,
            dut_note: None,
            transport: "in-process".into(),
            persistent: false,
            jobs: 1,
            timeout: Duration::ZERO,
            started: jiff::Timestamp::now(),
            elapsed: Duration::ZERO,
            command_line: String::new(),
            suite_size,
            gate: Gate::All,
        }
    }

    pub fn dut_label(&self) -> String {
        match &self.dut_version {
            Some(v) => format!("{} {v}", self.dut),
            None => self.dut.clone(),
        }
    }
}

/// One quirk class's counts: cases meeting every required expectation, and of the cases with
/// recommended expectations those meeting them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassSummary {
    pub class: Class,
    pub total: usize,
    pub required_passed: usize,
    pub recommended_total: usize,
    pub recommended_passed: usize,
}

impl ClassSummary {
    /// `yes`, `partly` or `no`: whether the class's required expectations are met.
    pub fn handled(&self) -> &'static str {
        match self.required_passed {
            p if p == self.total => "yes",
            0 => "no",
            _ => "partly",
        }
    }
}

/// The classes that have cases in `results`, in the suite's order.
pub fn by_class(results: &[CaseResult]) -> Vec<ClassSummary> {
    Class::ALL
        .iter()
        .map(|&class| {
            let of: Vec<&CaseResult> = results.iter().filter(|r| r.class == class).collect();
            let rec: Vec<&&CaseResult> = of.iter().filter(|r| r.has_recommended).collect();
            ClassSummary {
                class,
                total: of.len(),
                required_passed: of.iter().filter(|r| r.conformant()).count(),
                recommended_total: rec.len(),
                recommended_passed: rec.iter().filter(|r| r.robust()).count(),
            }
        })
        .filter(|s| s.total > 0)
        .collect()
}

/// `(text*unit)` of what a decoder reported for one object.
fn show_reported(o: &ReportedObject) -> String {
    o.values
        .iter()
        .map(|v| match &v.unit {
            Some(u) => format!("({}*{u})", v.text()),
            None => format!("({})", v.text()),
        })
        .collect()
}

/// The object-level diff of an expected telegram against a report: one `expected`/`got` pair
/// per differing OBIS code.
pub fn object_diff(expected: &p1sim_core::telegram::Telegram, r: &Reported) -> Vec<String> {
    let diffs = compare_telegram(expected, r);
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for d in &diffs {
        let Some((obis, _)) = d.split_once(": ") else { continue };
        if obis.starts_with("header") || seen.contains(&obis) {
            continue;
        }
        seen.push(obis);
        out.push(obis.to_string());
        let want = expected.lines.iter().find(|l| crate::schema::same_obis(&l.obis, obis));
        let got = r.objects.iter().find(|o| crate::schema::same_obis(&o.obis, obis));
        out.push(format!("  expected {}", want.map_or("nothing (no such object)".into(), show)));
        out.push(format!("  got      {}", got.map_or("nothing".into(), show_reported)));
    }
    out
}

/// One failing case for people: its name, what it is, what was expected, each problem with its
/// evidence, the object diffs, and the end of the decoder's standard error.
pub fn failure(case: &Case, r: &CaseResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "FAIL {}", r.name);
    let _ = writeln!(
        s,
        "  {} ({}, {}{})",
        case.description,
        case.spec,
        case.line,
        if case.key.is_some() { ", encrypted" } else { "" }
    );
    let expected: Vec<String> = case.telegrams.iter().map(|t| t.verdict_word()).collect();
    let accepted: Vec<&Reported> = r.reported.iter().filter(|x| is_acceptance(x)).collect();
    let _ = writeln!(s, "  expected: {}; the decoder accepted {}", expected.join(", "), accepted.len());
    const MAX_PROBLEMS: usize = 12;
    for p in r.problems.iter().take(MAX_PROBLEMS) {
        let _ = writeln!(s, "  - {p}");
        if let (Some(k), Some(j)) = (p.telegram, p.report)
            && let (Some(t), Some(rep)) = (case.telegrams.get(k), accepted.get(j))
        {
            for line in object_diff(&t.model, rep) {
                let _ = writeln!(s, "      {line}");
            }
        }
        if let Some(e) = p.evidence {
            let _ = writeln!(s, "    evidence: conformance/EVIDENCE.md#{e}");
        }
    }
    if r.problems.len() > MAX_PROBLEMS {
        let _ = writeln!(s, "  ... and {} more", r.problems.len() - MAX_PROBLEMS);
    }
    if !r.stderr.trim().is_empty() {
        let lines: Vec<&str> = r.stderr.lines().collect();
        let _ = writeln!(s, "  decoder stderr (last lines):");
        for l in &lines[lines.len().saturating_sub(6)..] {
            let _ = writeln!(s, "    | {l}");
        }
    }
    s
}

/// Every failure at `gate`, in suite order.
pub fn failures(cases: &[Case], results: &[CaseResult], gate: Gate) -> String {
    let by_name: HashMap<&str, &Case> = cases.iter().map(|c| (c.name.as_str(), c)).collect();
    results
        .iter()
        .filter(|r| !r.passes(gate))
        .filter_map(|r| by_name.get(r.name.as_str()).map(|c| failure(c, r)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `12/14` or `-` when there is nothing to count.
fn ratio(passed: usize, total: usize) -> String {
    if total == 0 { "-".into() } else { format!("{passed}/{total}") }
}

/// The summary table by quirk class and the total line.
pub fn summary(results: &[CaseResult], info: &RunInfo) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<18} {:>9} {:>11}  what it checks", "class", "required", "recommended");
    for c in by_class(results) {
        let _ = writeln!(
            s,
            "{:<18} {:>9} {:>11}  {}",
            c.class.name(),
            ratio(c.required_passed, c.total),
            ratio(c.recommended_passed, c.recommended_total),
            c.class.about()
        );
    }
    let conformant = results.iter().filter(|r| r.conformant()).count();
    let with_rec = results.iter().filter(|r| r.has_recommended).count();
    let robust = results.iter().filter(|r| r.has_recommended && r.robust()).count();
    let failing = results.iter().filter(|r| !r.passes(info.gate)).count();
    let verdict = match (failing, info.gate) {
        (0, Gate::All) => "all passed".to_string(),
        (0, Gate::Required) => "conformant: every required expectation met".to_string(),
        (n, Gate::All) => format!("{n} failed"),
        (n, Gate::Required) => format!("{n} failed a required expectation"),
    };
    let _ = writeln!(
        s,
        "{:<18} {:>9} {:>11}  {verdict} in {:.1} s ({}, {}{}, {} job{})",
        "total",
        format!("{conformant}/{}", results.len()),
        ratio(robust, with_rec),
        info.elapsed.as_secs_f64(),
        info.dut_label(),
        info.transport,
        if info.persistent { ", persistent" } else { "" },
        info.jobs,
        if info.jobs == 1 { "" } else { "s" }
    );
    let _ =
        writeln!(s, "sources for each class: conformance/EVIDENCE.md#class-NAME; the field problems: docs/quirks.md");
    s
}

/// JUnit XML as Jenkins and GitLab read it: one `<testsuite>` per quirk class, one `<testcase>`
/// per case, a `<failure>` carrying the problems and diffs, the decoder's stderr as system-err.
/// At `--level required`, recommended problems are listed in the test case's system-out and do
/// not fail it.
pub fn junit(cases: &[Case], results: &[CaseResult], info: &RunInfo) -> Result<String, SetupError> {
    let by_name: HashMap<&str, &Case> = cases.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut report = Report::new("p1sim conformance");
    report.set_time(info.elapsed);
    for summary in by_class(results) {
        let class = summary.class;
        let mut suite = TestSuite::new(class.name());
        suite.add_properties([
            Property::new("about", class.about()),
            Property::new("dut", info.dut.as_str()),
            Property::new("dut_version", info.dut_version.as_deref().unwrap_or("unknown")),
            Property::new("transport", info.transport.as_str()),
            Property::new("level", info.gate.name()),
            Property::new("p1sim_version", env!("CARGO_PKG_VERSION")),
        ]);
        let mut time = Duration::ZERO;
        for r in results.iter().filter(|r| r.class == class) {
            time += r.duration;
            let status = if r.passes(info.gate) {
                TestCaseStatus::success()
            } else {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let first = r.problems_at(info.gate).next().map(ToString::to_string);
                st.set_message(first.as_deref().unwrap_or("failed"));
                st.set_type("conformance");
                let text = match by_name.get(r.name.as_str()) {
                    Some(c) => failure(c, r),
                    None => r.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
                };
                st.set_description(text);
                st
            };
            let mut tc = TestCase::new(r.name.as_str(), status);
            tc.set_classname(format!("conformance.{}", class.name()));
            tc.set_time(r.duration);
            if r.passes(info.gate) && !r.passed() {
                let text: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
                tc.set_system_out(format!("recommended expectations not met:\n{}", text.join("\n")));
            }
            if !r.passed() && !r.stderr.is_empty() {
                tc.set_system_err(r.stderr.as_str());
            }
            suite.add_test_case(tc);
        }
        suite.set_time(time);
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| SetupError::new(format!("cannot write the JUnit report: {e}")))
}

/// The JSON report, `"schema_version": 2`: the run's header, per-class counts, and every case
/// with its problems (level, evidence, text).
pub fn json(results: &[CaseResult], info: &RunInfo) -> String {
    let classes: Vec<serde_json::Value> = by_class(results)
        .iter()
        .map(|c| {
            serde_json::json!({
                "class": c.class.name(), "about": c.class.about(), "total": c.total,
                "required": {"passed": c.required_passed, "total": c.total},
                "recommended": {"passed": c.recommended_passed, "total": c.recommended_total},
                "handled": c.handled(),
            })
        })
        .collect();
    let cases: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name, "class": r.class.name(), "passed": r.passed(), "conformant": r.conformant(),
                "problems": r.problems, "duration_ms": r.duration.as_millis() as u64,
            })
        })
        .collect();
    let passed = results.iter().filter(|r| r.passed()).count();
    let conformant = results.iter().filter(|r| r.conformant()).count();
    let doc = serde_json::json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": "p1sim conformance",
        "p1sim_version": env!("CARGO_PKG_VERSION"),
        "dut": info.dut,
        "dut_version": info.dut_version,
        "dut_note": info.dut_note,
        "transport": info.transport,
        "persistent": info.persistent,
        "jobs": info.jobs,
        "timeout_s": info.timeout.as_secs_f64(),
        "level": info.gate.name(),
        "started": info.started.to_string(),
        "duration_ms": info.elapsed.as_millis() as u64,
        "command": info.command_line,
        "suite_size": info.suite_size,
        "selected": results.len(),
        "passed": passed,
        "conformant": conformant,
        "failed": results.len() - passed,
        "classes": classes,
        "cases": cases,
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Level;
    use crate::runner::in_process_case;
    use crate::suite::cases;
    use crate::verdict::Problem;

    pub(crate) fn info() -> RunInfo {
        RunInfo {
            dut: "test".into(),
            dut_version: Some("1.0".into()),
            jobs: 2,
            transport: "stdin".into(),
            timeout: Duration::from_secs(10),
            started: jiff::Timestamp::from_second(1_768_474_800).unwrap(),
            elapsed: Duration::from_millis(1500),
            command_line: "p1sim conformance --dut test".into(),
            ..RunInfo::in_process("test", 619)
        }
    }

    fn result(case: &Case, problems: &[(Level, &str)]) -> CaseResult {
        let mut r = in_process_case(case, crate::reference::decode(case));
        r.problems =
            problems.iter().map(|(level, text)| Problem { level: *level, ..Problem::process(*text) }).collect();
        r
    }

    #[test]
    fn a_changed_value_shows_as_expected_versus_got() {
        let all = cases();
        let case = all.iter().find(|c| c.name.starts_with("clean/iskra-am550/")).expect("a clean case");
        let mut reported = crate::reference::decode(case);
        let obis = reported[0].objects.iter().position(|o| o.obis == "1-0:1.8.1").expect("a register");
        reported[0].objects[obis].values[0].value = Some("999.999".into());
        let r = in_process_case(case, reported);
        assert!(!r.passed());
        let text = failure(case, &r);
        assert!(text.starts_with(&format!("FAIL {}\n", case.name)), "{text}");
        assert!(text.contains("      1-0:1.8.1\n"), "{text}");
        assert!(text.contains("        got      (999.999*kWh)"), "{text}");
        let want = show(case.telegrams[0].model.line("1-0:1.8.1").unwrap());
        assert!(text.contains(&format!("        expected {want}")), "{text}");
        assert!(text.contains("    evidence: conformance/EVIDENCE.md#telegram-format"), "{text}");
    }

    #[test]
    fn summary_and_json_count_required_and_recommended_apart() {
        let all = cases();
        let picked: Vec<&Case> =
            all.iter().filter(|c| c.class == Class::Garbage && c.has_recommended()).take(3).collect();
        let results = vec![
            result(picked[0], &[]),
            result(picked[1], &[(Level::Recommended, "telegram 2 of 3: skipped | really")]),
            result(picked[2], &[(Level::Required, "telegram 3 of 3: skipped")]),
        ];
        let s = by_class(&results);
        assert_eq!(
            s,
            vec![ClassSummary {
                class: Class::Garbage,
                total: 3,
                required_passed: 2,
                recommended_total: 3,
                recommended_passed: 2
            }]
        );
        let text = summary(&results, &info());
        assert!(text.contains("garbage                  2/3         2/3  noise"), "{text}");
        assert!(text.contains("2 failed in 1.5 s (test 1.0, stdin, 2 jobs)"), "{text}");
        let required = RunInfo { gate: Gate::Required, ..info() };
        assert!(summary(&results, &required).contains("1 failed a required expectation"));
        let j: serde_json::Value = serde_json::from_str(&json(&results, &info())).unwrap();
        assert_eq!(j["schema_version"], 2);
        assert_eq!(j["classes"][0]["required"]["passed"], 2);
        assert_eq!(j["classes"][0]["recommended"]["total"], 3);
        assert_eq!(j["cases"][1]["passed"], false);
        assert_eq!(j["cases"][1]["conformant"], true);
        assert_eq!(j["cases"][1]["problems"][0]["level"], "recommended");
        assert_eq!(j["cases"].as_array().unwrap().len(), 3);
    }
}
