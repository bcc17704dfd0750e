//! A case's expectation, written for humans: the golden snapshots reviewed with
//! `cargo insta review` when a profile or the model changes.

use std::fmt::Write;

use crate::case::Case;
use crate::schema::show;

/// FNV-1a, to fingerprint input bytes in snapshots without printing them.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The expectation of one case.
pub fn render(case: &Case) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "== {}", case.name);
    let _ = writeln!(
        s,
        "{} ({}, {}, {})",
        case.description,
        case.spec,
        case.line,
        if case.key.is_some() { "encrypted" } else { "plain" }
    );
    let _ = writeln!(s, "input: {} bytes, fnv {:016x}", case.input.len(), fingerprint(&case.input));
    for (k, t) in case.telegrams.iter().enumerate() {
        let _ = writeln!(s, "telegram {}: {} /{} [evidence: {}]", k + 1, t.verdict_word(), t.model.header, t.evidence);
        for f in &t.faults {
            let _ = writeln!(s, "  fault: {f}");
        }
        if t.is_accepted() {
            for line in &t.model.lines {
                let _ = writeln!(s, "  {} {}", line.obis, show(line));
            }
        }
    }
    s
}
