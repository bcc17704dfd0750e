//! Judging a decoder's output for one case: which expected telegrams it reported, which it
//! should not have, and how what it reported differs.

use p1sim_core::fault::Expect;

use crate::case::Case;
use crate::schema::{Reported, compare_telegram, is_acceptance};

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub passed: bool,
    /// One readable line per problem: what was expected, what the decoder said.
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn error(problem: String) -> Verdict {
        Verdict { passed: false, problems: vec![problem] }
    }
}

/// Walks the expected telegrams in order against the telegrams the decoder accepted.
///
/// - an `Accept`/`AcceptLenient` telegram must be the next one reported, with matching content;
/// - a `Reject` telegram must not be reported: a report that does not match the next telegram
///   to accept counts as accepting it;
/// - an `Unspecified` telegram (undetectable damage) may be reported or not;
/// - nothing may be reported beyond the expected telegrams.
pub fn judge(case: &Case, output: &[Reported]) -> Verdict {
    let accepted: Vec<&Reported> = output.iter().filter(|r| is_acceptance(r)).collect();
    let mut problems = Vec::new();
    let mut next = 0;
    let matches = |k: usize, r: &Reported| compare_telegram(&case.telegrams[k].model, r).is_empty();
    // The index of the next telegram that must be accepted, after `k`.
    let next_accept = |k: usize| {
        (k + 1..case.telegrams.len())
            .find(|&j| matches!(case.telegrams[j].expect, Expect::Accept | Expect::AcceptLenient))
    };
    for (k, t) in case.telegrams.iter().enumerate() {
        let label = |what: &str| {
            let faults = if t.faults.is_empty() { String::new() } else { format!(" [{}]", t.faults.join("; ")) };
            format!("telegram {} of {}{faults}: {what}", k + 1, case.telegrams.len())
        };
        match t.expect {
            Expect::Accept | Expect::AcceptLenient => match accepted.get(next) {
                Some(r) => {
                    let diffs = compare_telegram(&t.model, r);
                    if diffs.is_empty() {
                        next += 1;
                    } else if next_accept(k).is_some_and(|j| matches(j, r)) {
                        problems.push(label("expected it, but the decoder skipped it"));
                    } else {
                        problems.push(label(&format!("reported with differences: {}", diffs.join("; "))));
                        next += 1;
                    }
                }
                None => problems.push(label("expected it, but the decoder reported nothing more")),
            },
            Expect::Reject => {
                if let Some(r) = accepted.get(next) {
                    let is_next = next_accept(k).is_some_and(|j| matches(j, r));
                    if !is_next {
                        problems.push(label("must be rejected, but the decoder accepted it"));
                        next += 1;
                    }
                }
            }
            Expect::Unspecified => {
                if let Some(r) = accepted.get(next)
                    && !next_accept(k).is_some_and(|j| matches(j, r))
                {
                    next += 1;
                }
            }
        }
    }
    if next < accepted.len() {
        problems.push(format!(
            "{} telegram(s) reported beyond the {} expected",
            accepted.len() - next,
            case.accepted()
        ));
    }
    Verdict { passed: problems.is_empty(), problems }
}
