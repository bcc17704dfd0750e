//! The conformance runner: picks cases (filter, partition), runs the decoder under test on each
//! with a deadline, in parallel, and judges what it reported.
//!
//! A decoder that crashes or hangs fails that case and the run goes on; only what stops every
//! case from running (the command cannot start, the run is interrupted) ends it early, as a
//! [`SetupError`].

use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::case::{Case, Class};
use crate::dut::Dut;
use crate::process::{End, Outcome, Persistent, Status, Transport, run_once};
use crate::schema::{Reported, parse_output_at_most};
use crate::verdict::judge;
use crate::{SetupError, reference};

/// Reported telegrams judged per telegram of a case; a decoder reporting more fails the case.
const MAX_REPORTED_PER_TELEGRAM: usize = 4;

/// How to run the decoder.
#[derive(Clone, Debug)]
pub struct Options {
    pub transport: Transport,
    /// One decoder process for all cases (stdin only).
    pub persistent: bool,
    /// Cases run at the same time.
    pub jobs: usize,
    /// Per case, from start to exit.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            transport: Transport::Stdin,
            persistent: false,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub class: Class,
    pub passed: bool,
    /// The verdict's problems, preceded by what went wrong with the process, if anything.
    pub problems: Vec<String>,
    pub duration: Duration,
    /// What the decoder reported (for the expected-versus-got diff).
    pub reported: Vec<Reported>,
    /// The end of the decoder's standard error, kept for failures.
    pub stderr: String,
}

/// `--partition K/N`: the K-th of N deterministic slices (1-based, as CI systems number jobs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub k: usize,
    pub n: usize,
}

impl FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid partition {s:?}: expected K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Partition { k, n })
    }
}

/// Whether a case name matches `--filter`: a glob when the pattern has `*` (matching any
/// characters, `/` included, over the whole name), else a substring.
pub fn matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains('*') {
        return name.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// The cases to run: those matching `filter`, then every N-th of them starting at the K-th, so
/// partitions are balanced across classes and together cover each case exactly once.
pub fn select(cases: Vec<Case>, filter: Option<&str>, partition: Option<Partition>) -> Vec<Case> {
    cases
        .into_iter()
        .filter(|c| filter.is_none_or(|f| matches(f, &c.name)))
        .enumerate()
        .filter(|(i, _)| partition.is_none_or(|p| i % p.n == p.k - 1))
        .map(|(_, c)| c)
        .collect()
}

/// Runs `dut` over `cases`; `progress` is called as each case finishes (from worker threads).
/// Results come back in the order of `cases`. Setting `cancel` stops the run: running decoders
/// are killed and the result is an "interrupted" error.
pub fn run(
    cases: &[Case],
    dut: &Dut,
    opts: &Options,
    cancel: &AtomicBool,
    progress: &(dyn Fn(&CaseResult) + Sync),
) -> Result<Vec<CaseResult>, SetupError> {
    if opts.persistent && opts.transport != Transport::Stdin {
        return Err(SetupError::new("--persistent works over stdin only: drop --transport or use --transport stdin"));
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; cases.len()]);
    let failure: Mutex<Option<SetupError>> = Mutex::new(None);
    let jobs = opts.jobs.clamp(1, cases.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let mut persistent = match dut {
                    Dut::Command { command, .. } if opts.persistent => Some(Persistent::new(command.clone())),
                    _ => None,
                };
                loop {
                    if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    match run_case(case, dut, opts, persistent.as_mut(), cancel) {
                        Ok(r) => {
                            progress(&r);
                            results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                        }
                        Err(e) => {
                            failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(SetupError::new("interrupted"));
    }
    Ok(results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect())
}

fn run_case(
    case: &Case,
    dut: &Dut,
    opts: &Options,
    persistent: Option<&mut Persistent>,
    cancel: &AtomicBool,
) -> Result<CaseResult, SetupError> {
    let t = Instant::now();
    let command = match dut {
        Dut::Reference => {
            let reported = reference::decode(case);
            let v = judge(case, &reported);
            return Ok(CaseResult {
                name: case.name.clone(),
                class: case.class,
                passed: v.passed,
                problems: v.problems,
                duration: t.elapsed(),
                reported,
                stderr: String::new(),
            });
        }
        Dut::Command { command, .. } => command,
    };
    let outcome = match persistent {
        Some(p) => p.run(case, opts.timeout, cancel),
        None => run_once(command, case, opts.transport, opts.timeout, cancel),
    };
    let mut result = assess(case, outcome, opts.timeout)?;
    result.duration = t.elapsed();
    Ok(result)
}

/// Turns what the decoder did into a case result; a decoder that cannot be started at all is a
/// setup error, not a failed case.
pub fn assess(case: &Case, outcome: Outcome, timeout: Duration) -> Result<CaseResult, SetupError> {
    let Outcome { stdout, stderr, end, note } = outcome;
    let stderr_hint = || match stderr.lines().last() {
        Some(l) => format!("; its last error line: {}", l.trim()),
        None => String::new(),
    };
    let mut problems = Vec::new();
    match &end {
        End::Unstartable(why) => return Err(SetupError::new(why.clone())),
        End::Cancelled => return Err(SetupError::new("interrupted")),
        // What `sh` says when the command is not there or not executable.
        End::Exited(s @ (Status::Code(126) | Status::Code(127))) => {
            return Err(SetupError::new(format!(
                "the decoder command cannot be started ({s}){}; check that the command exists and is \
                 executable, e.g. run it by hand with P1SIM_TRANSPORT=stdin",
                stderr_hint()
            )));
        }
        End::Exited(s) if !s.success() => problems.push(format!("the decoder failed: {s}{}", stderr_hint())),
        End::Exited(_) => {}
        End::TimedOut => problems.push(format!(
            "the decoder did not finish within {} s: it and its process group were killed",
            timeout.as_secs_f64()
        )),
    }
    if let Some(n) = note {
        problems.push(n);
    }
    // A decoder that reports far more telegrams than the case holds fails, and only the first
    // ones are parsed and judged: a million of them would take gigabytes and hours.
    let most = MAX_REPORTED_PER_TELEGRAM * case.telegrams.len().max(1);
    let reported = match parse_output_at_most(&String::from_utf8_lossy(&stdout), most) {
        Ok((r, total)) => {
            if total > most {
                problems.push(format!(
                    "the decoder reported {total} telegrams for a case of {}; only the first {most} are judged",
                    case.telegrams.len()
                ));
            }
            r
        }
        Err(e) => {
            problems.push(format!("the output does not follow the schema: {e}"));
            Vec::new()
        }
    };
    let verdict = judge(case, &reported);
    problems.extend(verdict.problems);
    Ok(CaseResult {
        name: case.name.clone(),
        class: case.class,
        passed: problems.is_empty(),
        problems,
        duration: Duration::ZERO,
        reported,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_substrings_or_globs() {
        let name = "crc-check/iskra-am550/wrong-crc/s1";
        assert!(matches("wrong-crc", name));
        assert!(matches("crc-check/*", name));
        assert!(matches("*/s1", name));
        assert!(matches("crc*iskra*s1", name));
        assert!(matches("*", name));
        assert!(!matches("crc-check/*/s2", name));
        assert!(!matches("iskra*", name), "a glob matches the whole name");
        assert!(!matches("crc-check/iskra-am550/wrong-crc/s1*x", name));
        assert!(!matches("*am550*am550*", name));
    }

    #[test]
    fn partitions_parse_and_cover_every_case_once() {
        assert_eq!("2/4".parse::<Partition>(), Ok(Partition { k: 2, n: 4 }));
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "1/2/3"] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
        let all = crate::suite::cases();
        let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
        for n in [1, 3, 7] {
            let mut seen: Vec<String> =
                (1..=n).flat_map(|k| select(all.clone(), None, Some(Partition { k, n }))).map(|c| c.name).collect();
            // Balanced: no slice is more than one case larger than another.
            let sizes: Vec<usize> =
                (1..=n).map(|k| select(all.clone(), None, Some(Partition { k, n })).len()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
            seen.sort();
            let mut want = names.clone();
            want.sort();
            assert_eq!(seen, want, "{n} partitions");
        }
        // A filter applies before partitioning, so filtered partitions also cover the filter.
        let crc = select(all.clone(), Some("crc-check/"), None).len();
        let parts: usize =
            (1..=2).map(|k| select(all.clone(), Some("crc-check/"), Some(Partition { k, n: 2 })).len()).sum();
        assert!(crc > 0);
        assert_eq!(parts, crc);
    }

    #[test]
    fn crashes_timeouts_and_garbage_fail_the_case_while_unstartable_commands_stop_the_run() {
        let case = &crate::suite::cases()[0];
        let good = crate::reference::decode(case);
        let json: String = good
            .iter()
            .map(|r| {
                let objects: Vec<serde_json::Value> = r
                    .objects
                    .iter()
                    .map(|o| {
                        let values: Vec<serde_json::Value> =
                            o.values.iter().map(|v| serde_json::json!({"value": v.value, "unit": v.unit})).collect();
                        serde_json::json!({"obis": o.obis, "values": values})
                    })
                    .collect();
                serde_json::json!({"header": r.header, "objects": objects}).to_string() + "\n"
            })
            .collect();
        let outcome = |stdout: &str, end: End| Outcome {
            stdout: stdout.as_bytes().to_vec(),
            stderr: "boom\n".into(),
            end,
            note: None,
        };
        let t = Duration::from_secs(10);
        assert!(assess(case, outcome(&json, End::Exited(Status::Code(0))), t).unwrap().passed);
        let crashed = assess(case, outcome(&json, End::Exited(Status::Signal(11))), t).unwrap();
        assert!(!crashed.passed);
        assert!(
            crashed.problems[0].contains("SIGSEGV") && crashed.problems[0].contains("boom"),
            "{:?}",
            crashed.problems
        );
        let hung = assess(case, outcome("", End::TimedOut), t).unwrap();
        assert!(!hung.passed && hung.problems[0].contains("did not finish within 10 s"), "{:?}", hung.problems);
        let garbage = assess(case, outcome("not json\n", End::Exited(Status::Code(0))), t).unwrap();
        assert!(garbage.problems[0].contains("does not follow the schema"), "{:?}", garbage.problems);
        let missing = assess(case, outcome("", End::Exited(Status::Code(127))), t).unwrap_err();
        assert!(missing.message.contains("cannot be started"), "{missing}");
    }
}
