//! The mutation check: the suite, run through the real runner with deliberately broken decoders
//! as command DUTs, fails each of them in the quirk class that names the defect, while the same
//! binary without a defect and the reference decoder pass every case. A suite that cannot fail
//! a broken decoder would prove nothing about a real one.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use p1sim_conformance::dut::{self, Dut};
use p1sim_conformance::runner::{self, CaseResult, Options};
use p1sim_conformance::{Class, suite};

fn run(dut: &Dut) -> Vec<CaseResult> {
    let cases = suite::cases();
    // Generous: the point is what the decoders report, and CI machines are shared.
    let opts = Options { timeout: Duration::from_secs(60), ..Options::default() };
    let results = runner::run(&cases, dut, &opts, &AtomicBool::new(false), &|_| {}).expect("the run completes");
    assert_eq!(results.len(), cases.len(), "every case ran");
    results
}

fn broken(defect: &str) -> Dut {
    let exe = env!("CARGO_BIN_EXE_p1sim-broken-decoder");
    dut::resolve(&format!("'{exe}' {defect}"), None, None).expect("a command DUT")
}

/// The cases failing a required expectation, by class: what makes a decoder non-conformant.
fn failing_by_class(results: &[CaseResult]) -> BTreeMap<&'static str, Vec<&CaseResult>> {
    let mut by = BTreeMap::new();
    for r in results.iter().filter(|r| !r.conformant()) {
        by.entry(r.class.name()).or_insert_with(Vec::new).push(r);
    }
    by
}

#[test]
fn the_reference_decoder_and_the_control_pass_everything() {
    for dut in [Dut::Reference, broken("none")] {
        let results = run(&dut);
        let failing: Vec<String> = results
            .iter()
            .filter(|r| !r.passed())
            .map(|r| {
                format!("{}: {}", r.name, r.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "))
            })
            .collect();
        assert!(failing.is_empty(), "{} fails:\n{}", dut.name(), failing.join("\n"));
    }
}

#[test]
fn a_decoder_refusing_what_no_meter_sends_is_still_conformant() {
    // Lowercase CRC hex: the specification does not say, no meter sends it, so rejecting it is
    // as right as accepting it.
    let results = run(&broken("uppercase-crc-only"));
    let failing: Vec<&CaseResult> = results.iter().filter(|r| !r.conformant()).collect();
    assert!(failing.is_empty(), "{:?}", failing.iter().map(|r| &r.name).collect::<Vec<_>>());
}

#[test]
fn every_broken_decoder_fails_in_the_class_that_names_its_defect() {
    // Defect, the class that must catch it, and what the failures there must say.
    let defects = [
        ("ignore-crc", Class::CrcCheck, "must be rejected, but the decoder accepted it"),
        ("buffer-1024", Class::Oversize, "expected it, but the decoder"),
        ("no-resync", Class::TruncationResync, "expected it, but the decoder"),
        ("drops-gas-record", Class::Legacy, "reported with differences"),
        ("padded-crc-only", Class::CrcFormat, "[unpadded-crc: "),
        ("no-gcm-tag", Class::Encrypted, "[GCM tag: one bit flipped]: must be rejected"),
        ("no-gcm-tag", Class::Encrypted, "[ciphertext: 1-0:1.8.0 changed"),
        ("no-units", Class::Clean, "unit missing"),
        ("naive-dst", Class::Dst, "0-0:1.0.0: value"),
    ];
    let mut report = Vec::new();
    for (defect, class, says) in defects {
        let results = run(&broken(defect));
        let by = failing_by_class(&results);
        let summary: Vec<String> = by.iter().map(|(c, v)| format!("{c} {}", v.len())).collect();
        report.push(format!("{defect}: {}", summary.join(", ")));
        let caught = by
            .get(class.name())
            .unwrap_or_else(|| panic!("{defect} passed every {} case; failures elsewhere: {summary:?}", class.name()));
        assert!(
            caught.iter().any(|r| r.problems.iter().any(|p| p.text.contains(says))),
            "{defect}: the {} failures do not say {says:?}: {:?}",
            class.name(),
            caught.iter().map(|r| &r.problems).collect::<Vec<_>>()
        );
        // A defect must not break a class unrelated to it: the clean telegrams of every
        // profile still pass unless the defect is about what they contain.
        if !matches!(defect, "buffer-1024" | "no-units" | "naive-dst") {
            // The NWA Warmtelink heat meter writes its CRC unpadded: its clean telegrams are
            // what a padded-only decoder gets wrong.
            let unrelated: Vec<&str> = by
                .get(Class::Clean.name())
                .into_iter()
                .flatten()
                .map(|r| r.name.as_str())
                .filter(|name| !(defect == "padded-crc-only" && name.starts_with("clean/nwa-warmtelink/")))
                .collect();
            assert!(unrelated.is_empty(), "{defect} fails clean cases: {unrelated:?}");
        }
    }
    eprintln!("{}", report.join("\n"));
}
