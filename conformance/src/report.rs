//! What a run reports: failures as readable expected-versus-got diffs and a summary table by
//! quirk class for people, JUnit XML for CI (Jenkins, GitLab), a versioned JSON document for
//! tools, and the compatibility matrix (Markdown) for the documentation.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use p1sim_core::fault::Expect;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::SetupError;
use crate::case::{Case, Class};
use crate::runner::CaseResult;
use crate::schema::{Reported, ReportedObject, compare_telegram, is_acceptance, show};

/// The version of the JSON report's layout; bumped on any incompatible change.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// What was run, how and when: the header of every report.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// `reference`, `dsmr_parser` or the command.
    pub dut: String,
    pub dut_version: Option<String>,
    /// One sentence on how the decoder is run, for the matrix (e.g. what the adapter mimics).
    pub dut_note: Option<String>,
    /// `stdin`, `pty`, `tcp`, or `in-process` for the reference decoder.
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
}

impl RunInfo {
    fn dut_label(&self) -> String {
        match &self.dut_version {
            Some(v) => format!("{} {v}", self.dut),
            None => self.dut.clone(),
        }
    }
}

/// Passed and total cases of one quirk class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassSummary {
    pub class: Class,
    pub passed: usize,
    pub total: usize,
}

impl ClassSummary {
    /// `yes`, `partly` or `no`: the matrix's verdict on a class.
    pub fn handled(&self) -> &'static str {
        match self.passed {
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
            ClassSummary { class, passed: of.iter().filter(|r| r.passed).count(), total: of.len() }
        })
        .filter(|s| s.total > 0)
        .collect()
}

fn verdict_word(e: Expect) -> &'static str {
    match e {
        Expect::Accept => "accept",
        Expect::AcceptLenient => "accept (lenient)",
        Expect::Reject => "reject",
        Expect::Unspecified => "either",
    }
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

/// The object-level diff of an expected telegram against the reported telegram closest to it:
/// one `expected`/`got` pair per differing OBIS code.
pub fn object_diff(expected: &p1sim_core::telegram::Telegram, reported: &[Reported]) -> Vec<String> {
    let Some((r, diffs)) = reported
        .iter()
        .filter(|r| is_acceptance(r))
        .map(|r| (r, compare_telegram(expected, r)))
        .min_by_key(|(_, d)| d.len())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for d in &diffs {
        let Some((obis, _)) = d.split_once(": ") else { continue };
        if obis.starts_with("header") || seen.contains(&obis) {
            continue;
        }
        seen.push(obis);
        out.push(obis.to_string());
        let want = expected.lines.iter().find(|l| l.obis.trim() == obis.trim());
        let got = r.objects.iter().find(|o| o.obis.trim() == obis.trim());
        out.push(format!("  expected {}", want.map_or("nothing (no such object)".into(), show)));
        out.push(format!("  got      {}", got.map_or("nothing".into(), show_reported)));
    }
    out
}

/// One failing case for people: its name, what it is, what was expected, each problem, the
/// object diffs, and the end of the decoder's standard error.
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
    let expected: Vec<&str> = case.telegrams.iter().map(|t| verdict_word(t.expect)).collect();
    let accepted = r.reported.iter().filter(|x| is_acceptance(x)).count();
    let _ = writeln!(s, "  expected: {}; the decoder accepted {accepted}", expected.join(", "));
    const MAX_PROBLEMS: usize = 12;
    for p in r.problems.iter().take(MAX_PROBLEMS) {
        let _ = writeln!(s, "  - {p}");
        if p.contains("reported with differences") {
            let k = p
                .strip_prefix("telegram ")
                .and_then(|t| t.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_sub(1));
            if let Some(t) = k.and_then(|k| case.telegrams.get(k)) {
                for line in object_diff(&t.model, &r.reported) {
                    let _ = writeln!(s, "      {line}");
                }
            }
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

/// Every failure, in suite order.
pub fn failures(cases: &[Case], results: &[CaseResult]) -> String {
    let by_name: HashMap<&str, &Case> = cases.iter().map(|c| (c.name.as_str(), c)).collect();
    results
        .iter()
        .filter(|r| !r.passed)
        .filter_map(|r| by_name.get(r.name.as_str()).map(|c| failure(c, r)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The summary table by quirk class and the total line.
pub fn summary(results: &[CaseResult], info: &RunInfo) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<18} {:>9}  what it checks", "class", "passed");
    for c in by_class(results) {
        let _ = writeln!(s, "{:<18} {:>9}  {}", c.class.name(), format!("{}/{}", c.passed, c.total), c.class.about());
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let verdict =
        if passed == results.len() { "all passed".to_string() } else { format!("{} failed", results.len() - passed) };
    let _ = writeln!(
        s,
        "{:<18} {:>9}  {verdict} in {:.1} s ({}, {}{}, {} job{})",
        "total",
        format!("{passed}/{}", results.len()),
        info.elapsed.as_secs_f64(),
        info.dut_label(),
        info.transport,
        if info.persistent { ", persistent" } else { "" },
        info.jobs,
        if info.jobs == 1 { "" } else { "s" }
    );
    s
}

/// JUnit XML as Jenkins and GitLab read it: one `<testsuite>` per quirk class, one `<testcase>`
/// per case, a `<failure>` carrying the problems and diffs, the decoder's stderr as system-err.
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
            Property::new("p1sim_version", env!("CARGO_PKG_VERSION")),
        ]);
        let mut time = Duration::ZERO;
        for r in results.iter().filter(|r| r.class == class) {
            time += r.duration;
            let status = if r.passed {
                TestCaseStatus::success()
            } else {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(r.problems.first().map(String::as_str).unwrap_or("failed"));
                st.set_type("conformance");
                let text = match by_name.get(r.name.as_str()) {
                    Some(c) => failure(c, r),
                    None => r.problems.join("\n"),
                };
                st.set_description(text);
                st
            };
            let mut tc = TestCase::new(r.name.as_str(), status);
            tc.set_classname(format!("conformance.{}", class.name()));
            tc.set_time(r.duration);
            if !r.passed && !r.stderr.is_empty() {
                tc.set_system_err(r.stderr.as_str());
            }
            suite.add_test_case(tc);
        }
        suite.set_time(time);
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| SetupError::new(format!("cannot write the JUnit report: {e}")))
}

/// The JSON report, `"schema_version": 1`.
pub fn json(results: &[CaseResult], info: &RunInfo) -> String {
    let classes: Vec<serde_json::Value> = by_class(results)
        .iter()
        .map(|c| {
            serde_json::json!({
                "class": c.class.name(), "about": c.class.about(), "passed": c.passed, "total": c.total,
                "handled": c.handled(),
            })
        })
        .collect();
    let cases: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name, "class": r.class.name(), "passed": r.passed, "problems": r.problems,
                "duration_ms": r.duration.as_millis() as u64,
            })
        })
        .collect();
    let passed = results.iter().filter(|r| r.passed).count();
    let doc = serde_json::json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": "p1sim conformance",
        "p1sim_version": env!("CARGO_PKG_VERSION"),
        "dut": info.dut,
        "dut_version": info.dut_version,
        "transport": info.transport,
        "persistent": info.persistent,
        "jobs": info.jobs,
        "timeout_s": info.timeout.as_secs_f64(),
        "started": info.started.to_string(),
        "duration_ms": info.elapsed.as_millis() as u64,
        "command": info.command_line,
        "suite_size": info.suite_size,
        "selected": results.len(),
        "passed": passed,
        "failed": results.len() - passed,
        "classes": classes,
        "cases": cases,
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    text.push('\n');
    text
}

/// The compatibility matrix: which quirk classes the decoder handles, from this run, with up to
/// three failing cases per class as evidence.
pub fn matrix(results: &[CaseResult], info: &RunInfo) -> String {
    let md = |t: &str| t.replace('|', "\\|");
    let mut s = String::new();
    let _ = writeln!(s, "# Decoder compatibility: {}", info.dut_label());
    let _ = writeln!(s);
    let _ = writeln!(s, "Which quirk classes of the p1sim conformance suite {} handles.", info.dut);
    let _ = writeln!(s, "Generated from a real run by the command below; do not edit by hand.");
    let _ = writeln!(s);
    let _ = writeln!(s, "- decoder: {}", info.dut_label());
    if let Some(n) = &info.dut_note {
        let _ = writeln!(s, "- how it runs: {n}");
    }
    let _ = writeln!(
        s,
        "- run: {} UTC, {} of the suite's {} cases over {}{}, p1sim {}",
        info.started.strftime("%Y-%m-%d %H:%M"),
        results.len(),
        info.suite_size,
        info.transport,
        if info.persistent { " (persistent)" } else { "" },
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(s, "- command: `{}`", info.command_line);
    let _ = writeln!(s, "- handled: yes when every case of the class passes, partly when some do, no when none does");
    let _ = writeln!(s);
    let _ = writeln!(s, "| class | what it checks | passed/total | handled |");
    let _ = writeln!(s, "|---|---|---|---|");
    for c in by_class(results) {
        let _ = writeln!(
            s,
            "| {} | {} | {}/{} | {} |",
            c.class.name(),
            md(c.class.about()),
            c.passed,
            c.total,
            c.handled()
        );
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let _ = writeln!(s, "| **total** | | **{passed}/{}** | |", results.len());
    let failing: Vec<ClassSummary> = by_class(results).into_iter().filter(|c| c.passed < c.total).collect();
    if !failing.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "## Failures by class");
        let _ = writeln!(s);
        let _ =
            writeln!(s, "Up to three failing cases per class, with what the suite expected and what the decoder did.");
        for c in failing {
            let _ = writeln!(s);
            let _ = writeln!(s, "### {} ({}/{} passed)", c.class.name(), c.passed, c.total);
            let _ = writeln!(s);
            let failed: Vec<&CaseResult> = results.iter().filter(|r| r.class == c.class && !r.passed).collect();
            for r in failed.iter().take(3) {
                let first = r.problems.first().map(String::as_str).unwrap_or("failed");
                let more =
                    if r.problems.len() > 1 { format!(" (+{} more)", r.problems.len() - 1) } else { String::new() };
                let _ = writeln!(s, "- `{}`: {}{more}", r.name, md(&shorten(first, 300)));
            }
            if failed.len() > 3 {
                let _ = writeln!(s, "- and {} more", failed.len() - 3);
            }
        }
    }
    s
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut t: String = text.chars().take(max).collect();
    t.push_str(" ...");
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::cases;

    fn info() -> RunInfo {
        RunInfo {
            dut: "test".into(),
            dut_version: Some("1.0".into()),
            dut_note: None,
            transport: "stdin".into(),
            persistent: false,
            jobs: 2,
            timeout: Duration::from_secs(10),
            started: jiff::Timestamp::from_second(1_768_474_800).unwrap(),
            elapsed: Duration::from_millis(1500),
            command_line: "p1sim conformance --dut test".into(),
            suite_size: 619,
        }
    }

    fn result(case: &Case, passed: bool, problems: &[&str], reported: Vec<Reported>) -> CaseResult {
        CaseResult {
            name: case.name.clone(),
            class: case.class,
            passed,
            problems: problems.iter().map(|p| p.to_string()).collect(),
            duration: Duration::from_millis(3),
            reported,
            stderr: String::new(),
        }
    }

    #[test]
    fn a_changed_value_shows_as_expected_versus_got() {
        let all = cases();
        let case = all.iter().find(|c| c.name.starts_with("clean/iskra-am550/")).expect("a clean case");
        let mut reported = crate::reference::decode(case);
        let obis = reported[0].objects.iter().position(|o| o.obis == "1-0:1.8.1").expect("a register");
        reported[0].objects[obis].values[0].value = Some("999.999".into());
        let v = crate::verdict::judge(case, &reported);
        assert!(!v.passed);
        let problems: Vec<&str> = v.problems.iter().map(String::as_str).collect();
        let text = failure(case, &result(case, false, &problems, reported));
        assert!(text.starts_with(&format!("FAIL {}\n", case.name)), "{text}");
        assert!(text.contains("      1-0:1.8.1\n"), "{text}");
        assert!(text.contains("        got      (999.999*kWh)"), "{text}");
        let want = show(case.telegrams[0].model.line("1-0:1.8.1").unwrap());
        assert!(text.contains(&format!("        expected {want}")), "{text}");
    }

    #[test]
    fn summary_and_matrix_count_by_class() {
        let all = cases();
        let picked: Vec<&Case> = all.iter().filter(|c| c.class == Class::CrcCheck).take(3).collect();
        let results = vec![
            result(picked[0], true, &[], vec![]),
            result(picked[1], false, &["telegram 2 of 3: must be rejected | really"], vec![]),
            result(picked[2], true, &[], vec![]),
        ];
        assert_eq!(by_class(&results), vec![ClassSummary { class: Class::CrcCheck, passed: 2, total: 3 }]);
        let text = summary(&results, &info());
        assert!(text.contains("crc-check                2/3  wrong and missing CRCs"), "{text}");
        assert!(text.contains("1 failed in 1.5 s (test 1.0, stdin, 2 jobs)"), "{text}");
        let m = matrix(&results, &info());
        assert!(m.contains("| crc-check | wrong and missing CRCs are rejected (Q4, Q7, Q17) | 2/3 | partly |"), "{m}");
        assert!(m.contains("must be rejected \\| really"), "pipes are escaped in tables: {m}");
        let j: serde_json::Value = serde_json::from_str(&json(&results, &info())).unwrap();
        assert_eq!(j["schema_version"], 1);
        assert_eq!(j["classes"][0]["handled"], "partly");
        assert_eq!(j["cases"][1]["passed"], false);
        assert_eq!(j["cases"].as_array().unwrap().len(), 3);
    }
}
