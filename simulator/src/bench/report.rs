//! The record for people and for CI: a progress line per phase, the large verdict with the
//! failing measurements and the diagnosis, and JUnit XML with one test case per phase (the
//! measurements and their limits in system-out, as OpenHTF's JUnit output has them).

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::measure::{MeasOutcome, Outcome};
use super::record::{PhaseRecord, Record};

/// The line printed when a phase ends: `[2/9] data            PASS   20.1 s  <evidence>`.
pub fn phase_line(index: usize, total: usize, p: &PhaseRecord) -> String {
    let detail = match p.outcome {
        Outcome::Skip | Outcome::Error => p.note.clone().unwrap_or_default(),
        _ => p.evidence.first().cloned().unwrap_or_default(),
    };
    // The counter keeps its width, so the names line up past phase 9.
    let counter = format!("[{:>width$}/{total}]", index + 1, width = total.to_string().len());
    let mut line = format!("{counter} {:<14} {:<5} {:>6.2} s  {}", p.name, p.outcome.label(), p.duration_s, detail);
    if line.chars().count() > 160 {
        line = line.chars().take(157).collect::<String>() + "...";
    }
    line
}

/// Block letters for the verdict, five rows high.
fn banner(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => {
            "  ####    ###    ####   ####\n  #   #  #   #  #      #\n  ####   #####   ###    ###\n  #      #   #      #      #\n  #      #   #  ####   ####\n"
        }
        Outcome::Fail => {
            "  #####   ###   #####  #\n  #      #   #    #    #\n  ####   #####    #    #\n  #      #   #    #    #\n  #      #   #  #####  #####\n"
        }
        _ => {
            "  #####  ####   ####    ###   ####\n  #      #   #  #   #  #   #  #   #\n  ####   ####   ####   #   #  ####\n  #      #  #   #  #   #   #  #  #\n  #####  #   #  #   #   ###   #   #\n"
        }
    }
}

/// The verdict after the run: the banner, what failed against which limits, and the diagnosis.
pub fn summary(r: &Record) -> String {
    let mut s = String::new();
    let _ = writeln!(s);
    s.push_str(banner(r.outcome));
    let _ = writeln!(
        s,
        "\n{} {}  board {}  plan {}  {:.1} s{}",
        r.outcome.label(),
        if r.marginal && r.outcome == Outcome::Pass { "(marginal)" } else { "" },
        r.serial_number,
        r.plan.name,
        r.duration_s,
        r.dut.board.as_ref().map(|b| format!("  virtual twin of {b}")).unwrap_or_default()
    );
    let failures: Vec<_> = r.failures().collect();
    if !failures.is_empty() {
        let _ = writeln!(s, "\nFailing measurements:");
        for (p, m) in failures {
            let _ = writeln!(s, "  {:<12} {:<24} {:<14} limit {}", p.name, m.name, m.value_text(), m.limits_text());
        }
    }
    for p in r.phases.iter().filter(|p| p.outcome == Outcome::Error) {
        let _ = writeln!(s, "\nPhase {} could not run: {}", p.name, p.note.as_deref().unwrap_or("no reason given"));
    }
    let marginal: Vec<_> =
        r.phases.iter().flat_map(|p| p.measurements.iter().map(move |m| (p, m))).filter(|(_, m)| m.marginal).collect();
    if !marginal.is_empty() {
        let _ = writeln!(s, "\nMarginal (inside the limits, close to them):");
        for (p, m) in marginal {
            let _ = writeln!(s, "  {:<12} {:<24} {:<14} limit {}", p.name, m.name, m.value_text(), m.limits_text());
        }
    }
    let d = &r.diagnosis;
    if r.outcome != Outcome::Pass {
        let _ = writeln!(s, "\nDiagnosis: {}", d.cause.code());
        let _ = writeln!(s, "  Seen: {}", d.evidence);
        let _ = writeln!(s, "  Fix:  {}", d.fix);
    }
    s
}

/// JUnit XML: one test suite for the run, one test case per phase; SKIP is skipped, FAIL a
/// failure, ERROR an error; every measurement with its limits and outcome in system-out.
pub fn junit(r: &Record) -> Result<String, String> {
    let mut report = Report::new("p1sim bench");
    let mut suite = TestSuite::new(format!("bench.{}", r.plan.name));
    suite.add_properties([
        Property::new("serial_number", r.serial_number.as_str()),
        Property::new("station_id", r.station_id.as_str()),
        Property::new("dut", r.dut.board.as_deref().or(r.dut.device.as_deref()).unwrap_or("")),
        Property::new("rig_firmware", r.rig_firmware.as_str()),
        Property::new("p1sim_version", r.p1sim_version.as_str()),
        Property::new("outcome", r.outcome.label()),
        Property::new("cause", r.diagnosis.cause.code()),
    ]);
    let mut total = Duration::ZERO;
    for p in &r.phases {
        let status = match p.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Skip => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(p.note.as_deref().unwrap_or("skipped"));
                st
            }
            Outcome::Fail | Outcome::Error => {
                let kind = if p.outcome == Outcome::Fail { NonSuccessKind::Failure } else { NonSuccessKind::Error };
                let mut st = TestCaseStatus::non_success(kind);
                let failing: Vec<String> = p
                    .measurements
                    .iter()
                    .filter(|m| m.outcome == MeasOutcome::Fail)
                    .map(|m| format!("{} = {} (limit {})", m.name, m.value_text(), m.limits_text()))
                    .collect();
                let message = if failing.is_empty() { p.note.clone().unwrap_or_default() } else { failing.join("; ") };
                st.set_message(message);
                st.set_type(if p.outcome == Outcome::Fail { "measurement" } else { "error" });
                st
            }
        };
        let mut tc = TestCase::new(p.name.as_str(), status);
        tc.set_classname(format!("bench.{}.{}", r.plan.name, p.kind));
        let time = Duration::from_secs_f64(p.duration_s.max(0.0));
        tc.set_time(time);
        total += time;
        let mut out = String::new();
        for m in &p.measurements {
            let _ = writeln!(
                out,
                "{}: {} [{}] {}{}",
                m.name,
                m.value_text(),
                m.limits_text(),
                match m.outcome {
                    MeasOutcome::Pass => "PASS",
                    MeasOutcome::Fail => "FAIL",
                    MeasOutcome::Unset => "UNSET",
                },
                if m.marginal { " (marginal)" } else { "" }
            );
        }
        for e in &p.evidence {
            let _ = writeln!(out, "{e}");
        }
        if !out.is_empty() {
            tc.set_system_out(out);
        }
        suite.add_test_case(tc);
    }
    suite.set_time(total);
    report.add_test_suite(suite);
    report.to_string().map_err(|e| format!("cannot write the JUnit report: {e}"))
}
