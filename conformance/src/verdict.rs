//! Judging a decoder's output for one case: which expected telegram each report stands for,
//! which telegrams it should not have reported, and how what it reported differs.
//!
//! Reports are first attributed to the expected telegram they resemble most (the same message
//! timestamp, then the most equal core objects), keeping their order; only then is each expected
//! telegram judged. So a decoder that rejected telegram 2 and got one value of telegram 3 wrong
//! hears exactly that, not "telegram 2 accepted, telegram 3 missing".

use p1sim_core::fault::Expect;

use crate::case::{Case, ExpectedTelegram, Level};
use crate::schema::{Reported, compare_telegram, equal_core_objects, is_acceptance, reported_time, telegram_time};

/// One thing the decoder got wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// `Required` or `Recommended` (never `Either`): which gate it fails.
    pub level: Level,
    /// The expected telegram it concerns (0-based), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram: Option<usize>,
    /// The accepted report it concerns (0-based among accepted reports), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<usize>,
    /// The section of `conformance/EVIDENCE.md` behind the expectation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<&'static str>,
    /// What was expected and what the decoder did, in one readable line.
    pub text: String,
}

impl Problem {
    /// A problem with the decoder process or its output as a whole (a crash, a timeout, output
    /// that does not follow the schema): always required.
    pub fn process(text: impl Into<String>) -> Problem {
        Problem { level: Level::Required, telegram: None, report: None, evidence: None, text: text.into() }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.level {
            Level::Required => f.write_str(&self.text),
            level => write!(f, "{} [{}]", self.text, level.name()),
        }
    }
}

/// The outcome of one case.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub problems: Vec<Problem>,
}

impl Verdict {
    /// Every expectation met, required and recommended.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every required expectation met: the decoder is conformant on this case.
    pub fn conformant(&self) -> bool {
        self.problems.iter().all(|p| p.level != Level::Required)
    }
}

/// Reports beyond this many are not attributed one by one (a decoder that prints without end).
const MAX_ATTRIBUTED: usize = 1000;

/// Judges what a decoder reported for `case` (all its output lines, in order).
///
/// - an accepted telegram must be reported, with matching content; a rejected one must not be;
/// - `Either` telegrams may be reported or not, but what is reported must match;
/// - `Expect::Unspecified` telegrams (damage no CRC can reveal) may be reported in any form;
/// - a report that resembles no expected telegram is a telegram the input does not contain.
pub fn judge(case: &Case, output: &[Reported]) -> Verdict {
    let accepted: Vec<&Reported> = output.iter().filter(|r| is_acceptance(r)).collect();
    let considered = &accepted[..accepted.len().min(MAX_ATTRIBUTED)];
    let pairs = attribute(&case.telegrams, considered);
    let mut problems = Vec::new();
    let n = case.telegrams.len();
    let last_report = pairs.iter().map(|&(_, j)| j).max();
    for (k, t) in case.telegrams.iter().enumerate() {
        let label = |what: &str| {
            let faults = if t.faults.is_empty() { String::new() } else { format!(" [{}]", t.faults.join("; ")) };
            format!("telegram {} of {n}{faults}: {what}", k + 1)
        };
        let problem = |level: Level, report: Option<usize>, what: &str| Problem {
            level,
            telegram: Some(k),
            report,
            evidence: Some(t.evidence),
            text: label(what),
        };
        let report = pairs.iter().find(|&&(i, _)| i == k).map(|&(_, j)| j);
        match (report, t.expect) {
            (_, Expect::Unspecified) => {}
            (Some(j), _) => {
                let diffs = compare_telegram(&t.model, considered[j]);
                let rejected = matches!(t.expect, Expect::Reject);
                if rejected && t.level != Level::Either {
                    let what = if diffs.is_empty() {
                        "must be rejected, but the decoder accepted it".to_string()
                    } else {
                        format!("must be rejected, but the decoder accepted it, with differences: {}", diffs.join("; "))
                    };
                    problems.push(problem(t.level, Some(j), &what));
                } else if !diffs.is_empty() {
                    // Wrong content is never a matter of taste: whatever a decoder reports must be true.
                    let what = format!("reported with differences: {}", diffs.join("; "));
                    problems.push(problem(Level::Required, Some(j), &what));
                }
            }
            (None, Expect::Accept | Expect::AcceptLenient) if t.level != Level::Either => {
                let later = last_report.is_some_and(|j| pairs.iter().any(|&(i, jj)| jj == j && i > k));
                let what = if later || accepted.len() > pairs.len() {
                    "expected it, but the decoder skipped it"
                } else {
                    "expected it, but the decoder reported nothing more"
                };
                problems.push(problem(t.level, None, what));
            }
            (None, _) => {}
        }
    }
    // Reports between the neighbours of a telegram whose damage cannot be seen belong to it: a
    // decoder may split it at an inner `/` into pieces.
    let in_unspecified = |j: usize| {
        let before = pairs.iter().filter(|&&(_, jj)| jj < j).map(|&(i, _)| i).max();
        let after = pairs.iter().filter(|&&(_, jj)| jj > j).map(|&(i, _)| i).min().unwrap_or(n);
        let from = before.map_or(0, |i| i + 1);
        (from..after).any(|i| case.telegrams[i].expect == Expect::Unspecified)
    };
    let stray: Vec<usize> = (0..considered.len())
        .filter(|j| !pairs.iter().any(|&(_, jj)| jj == *j) && !in_unspecified(*j))
        .chain(considered.len()..accepted.len())
        .collect();
    if !stray.is_empty() {
        let after_all = stray.iter().all(|&j| last_report.is_none_or(|l| j > l));
        let text = if after_all {
            format!("{} telegram(s) reported beyond the {} expected", stray.len(), case.accepted())
        } else {
            let which: Vec<String> = stray.iter().take(5).map(|j| (j + 1).to_string()).collect();
            format!(
                "{} reported telegram(s) resemble no telegram of the input (report {})",
                stray.len(),
                which.join(", ")
            )
        };
        problems.push(Problem {
            level: Level::Required,
            telegram: None,
            report: stray.first().copied(),
            evidence: None,
            text,
        });
    }
    Verdict { problems }
}

/// How much report `r` resembles expected telegram `t`: exact match first, then the same
/// message timestamp, then the number of equal core objects, then (1) merely its position.
/// `times` are the two message timestamps, worked out once per telegram and report.
fn resemblance(t: &ExpectedTelegram, r: &Reported, times: (Option<jiff::Timestamp>, Option<jiff::Timestamp>)) -> u64 {
    let same_time = match times {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    // Different timestamps are a difference already: the full comparison is for the rest.
    if same_time != Some(false) && compare_telegram(&t.model, r).is_empty() {
        return 1 << 40;
    }
    let core = equal_core_objects(&t.model, r) as u64;
    u64::from(same_time == Some(true)) << 20 | core << 1 | 1
}

/// The order-keeping attribution of reports to expected telegrams with the greatest total
/// resemblance: pairs `(expected, report)`, increasing in both. Between attributions that
/// resemble equally well, the one giving more reports to telegrams a decoder must accept wins:
/// a meter without timestamps (DSMR 2.2) sends identical telegrams, and a report after a
/// dropped one belongs to the telegram that followed it.
fn attribute(expected: &[ExpectedTelegram], reports: &[&Reported]) -> Vec<(usize, usize)> {
    let (n, m) = (expected.len(), reports.len());
    let sent: Vec<_> = expected.iter().map(|t| telegram_time(&t.model)).collect();
    let told: Vec<_> = reports.iter().map(|r| reported_time(r)).collect();
    // Resemblance in the high bits, the tie-break (at most one per pair) in the low 32.
    let score: Vec<Vec<u128>> = expected
        .iter()
        .zip(&sent)
        .map(|(t, &a)| {
            let wanted = u128::from(matches!(t.expect, Expect::Accept | Expect::AcceptLenient));
            reports.iter().zip(&told).map(|(r, &b)| u128::from(resemblance(t, r, (a, b))) << 32 | wanted).collect()
        })
        .collect();
    // best[i][j]: the best total for expected[i..] and reports[j..].
    let mut best = vec![vec![0u128; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let skip = best[i + 1][j].max(best[i][j + 1]);
            let take = score[i][j] + best[i + 1][j + 1];
            best[i][j] = skip.max(take);
        }
    }
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if best[i][j] == score[i][j] + best[i + 1][j + 1] {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if best[i][j] == best[i + 1][j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::suite::cases;

    fn problems(v: &Verdict) -> Vec<String> {
        v.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_changed_later_telegram_is_named_as_such_after_a_rejected_one() {
        let all = cases();
        let case = all.iter().find(|c| c.name.starts_with("crc-check/iskra-am550/wrong-crc/")).unwrap();
        let mut reported = reference::decode(case);
        assert_eq!(reported.len(), 2, "telegrams 1 and 3");
        let obis = reported[1].objects.iter().position(|o| o.obis == "1-0:1.7.0").unwrap();
        reported[1].objects[obis].values[0].value = Some("77.777".into());
        let v = judge(case, &reported);
        let p = problems(&v);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("telegram 3 of 3: reported with differences: 1-0:1.7.0"), "{p:?}");
        assert_eq!(v.problems[0].telegram, Some(2));
    }

    #[test]
    fn skipped_accepted_and_extra_telegrams_are_told_apart() {
        let all = cases();
        let case = all.iter().find(|c| c.name == "clean/iskra-am550/clean/s1").unwrap();
        let good = reference::decode(case);
        assert!(judge(case, &good).passed());
        let skipped = judge(case, &[good[0].clone(), good[2].clone()]);
        assert_eq!(problems(&skipped), ["telegram 2 of 3: expected it, but the decoder skipped it"]);
        let ended = judge(case, &good[..2]);
        assert_eq!(problems(&ended), ["telegram 3 of 3: expected it, but the decoder reported nothing more"]);
        let twice = judge(case, &[good.clone(), good[2..].to_vec()].concat());
        assert_eq!(problems(&twice), ["1 telegram(s) reported beyond the 3 expected"]);
        let wrong = judge(case, &[good.clone(), vec![Reported::new(Some("X"), vec![])]].concat());
        assert_eq!(problems(&wrong), ["1 telegram(s) reported beyond the 3 expected"]);
        // An empty report where telegram 2 belongs is telegram 2, reported wrong.
        let empty = judge(case, &[good[0].clone(), Reported::new(None, vec![]), good[2].clone()]);
        let p = problems(&empty);
        assert!(
            p.len() == 1 && p[0].starts_with("telegram 2 of 3: reported with differences: 0-0:1.0.0: missing"),
            "{p:?}"
        );
        // A report between telegrams 1 and 2 that is neither: not in the input.
        let inserted = judge(case, &[good[0].clone(), Reported::new(None, vec![]), good[1].clone(), good[2].clone()]);
        assert_eq!(problems(&inserted), ["1 reported telegram(s) resemble no telegram of the input (report 2)"]);
        let rejected = judge(
            case,
            &good
                .iter()
                .cloned()
                .map(|mut r| {
                    r.crc_ok = Some(false);
                    r
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(rejected.problems.len(), 3, "a report with crc_ok false is a rejection");
    }

    #[test]
    fn recommended_failures_keep_a_case_conformant() {
        let all = cases();
        let case = all.iter().find(|c| c.name.starts_with("garbage/iskra-am550/garbage-before/")).unwrap();
        assert_eq!(case.telegrams[1].level, Level::Recommended);
        let good = reference::decode(case);
        let v = judge(case, &[good[0].clone(), good[2].clone()]);
        assert!(!v.passed() && v.conformant(), "{:?}", v.problems);
        assert!(problems(&v)[0].ends_with("[recommended]"), "{:?}", problems(&v));
    }

    #[test]
    fn either_telegrams_may_be_dropped_but_not_misreported() {
        let all = cases();
        let case = all.iter().find(|c| c.name.starts_with("line-endings/iskra-am550/lf-only/")).unwrap();
        assert_eq!(case.telegrams[1].level, Level::Either);
        let good = reference::decode(case);
        assert_eq!(good.len(), 3);
        assert!(judge(case, &good).passed());
        assert!(judge(case, &[good[0].clone(), good[2].clone()]).passed());
        let mut bad = good.clone();
        let obis = bad[1].objects.iter().position(|o| o.obis == "1-0:1.8.1").unwrap();
        bad[1].objects[obis].values[0].value = Some("1".into());
        assert!(!judge(case, &bad).conformant());
    }

    #[test]
    fn identical_telegrams_around_a_dropped_one_are_attributed_to_the_accepted_ones() {
        let all = cases();
        let case = all.iter().find(|c| c.name == "legacy-dsmr2/iskra-mt382-no-end-marker/no-end-truncate/s3").unwrap();
        assert_eq!(case.telegrams[0].model, case.telegrams[2].model, "DSMR 2.2 has no timestamp");
        let good = reference::decode(case);
        assert_eq!(good.len(), 2);
        assert!(judge(case, &good).passed(), "{:?}", problems(&judge(case, &good)));
        let p = problems(&judge(case, &good[..1]));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("telegram 3 of 3: expected it"), "{p:?}");
    }
}
