//! The conformance runner: picks cases (filters, excludes, partition), runs the decoder under
//! test on each with a deadline, in parallel, and judges what it reported.
//!
//! A decoder that crashes or hangs fails that case and the run goes on; only what stops every
//! case from running ends it early, as a [`SetupError`]: the command cannot start, the run is
//! interrupted, or the first cases all fail the same way before the decoder reports anything
//! (an adapter that cannot import its decoder would otherwise fail every case identically).

use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::case::{Case, Class, Level};
use crate::dut::Dut;
use crate::process::{End, Outcome, Persistent, Status, Transport, run_once};
use crate::schema::{Reported, parse_output_at_most};
use crate::verdict::{Problem, judge};
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

/// Which expectations decide whether a case, and the run, passes (`--level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gate {
    /// Required and recommended expectations.
    #[default]
    All,
    /// Required expectations only: conformance.
    Required,
}

impl FromStr for Gate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Gate::All),
            "required" => Ok(Gate::Required),
            _ => Err(format!("unknown level {s:?}: expected required or all")),
        }
    }
}

impl Gate {
    pub fn name(self) -> &'static str {
        match self {
            Gate::All => "all",
            Gate::Required => "required",
        }
    }
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub class: Class,
    /// What went wrong with the process, if anything, then the verdict's problems.
    pub problems: Vec<Problem>,
    pub duration: Duration,
    /// What the decoder reported (for the expected-versus-got diff).
    pub reported: Vec<Reported>,
    /// The end of the decoder's standard error, kept for failures.
    pub stderr: String,
    /// Whether the case has recommended expectations at all.
    pub has_recommended: bool,
    /// Set when the decoder exited with an error before reporting anything: how it failed, so
    /// that a run can stop when every case fails the same way.
    pub startup_failure: Option<String>,
}

impl CaseResult {
    /// Every expectation met.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every required expectation met.
    pub fn conformant(&self) -> bool {
        self.problems.iter().all(|p| p.level != Level::Required)
    }

    /// Every recommended expectation met.
    pub fn robust(&self) -> bool {
        self.problems.iter().all(|p| p.level != Level::Recommended)
    }

    /// Whether the case passes at `gate`.
    pub fn passes(&self, gate: Gate) -> bool {
        match gate {
            Gate::All => self.passed(),
            Gate::Required => self.conformant(),
        }
    }

    /// The problems that count at `gate`.
    pub fn problems_at(&self, gate: Gate) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(move |p| gate == Gate::All || p.level == Level::Required)
    }
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

/// Whether a case name matches a pattern of `--filter` or `--exclude`: a glob when the pattern
/// has `*` (matching any characters, `/` included, over the whole name), else a substring.
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

/// Which cases to run: `--filter` (any may match; none given means all), `--exclude` (none may
/// match), then `--partition`.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub filters: Vec<String>,
    pub excludes: Vec<String>,
    pub partition: Option<Partition>,
}

impl Selection {
    /// Whether a case name passes the filters and excludes (partitions aside).
    pub fn admits(&self, name: &str) -> bool {
        (self.filters.is_empty() || self.filters.iter().any(|f| matches(f, name)))
            && !self.excludes.iter().any(|x| matches(x, name))
    }

    /// The selected cases: those the filters admit, then every N-th of them starting at the
    /// K-th, so partitions are balanced across classes and together cover each case once.
    pub fn apply(&self, cases: Vec<Case>) -> Vec<Case> {
        cases
            .into_iter()
            .filter(|c| self.admits(&c.name))
            .enumerate()
            .filter(|(i, _)| self.partition.is_none_or(|p| i % p.n == p.k - 1))
            .map(|(_, c)| c)
            .collect()
    }

    /// The selection in words, for messages: `--filter crc- --exclude */s2`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        parts.extend(self.filters.iter().map(|f| format!("--filter {f:?}")));
        parts.extend(self.excludes.iter().map(|x| format!("--exclude {x:?}")));
        if let Some(p) = self.partition {
            parts.push(format!("--partition {}/{}", p.k, p.n));
        }
        parts.join(" ")
    }
}

/// `select(cases, Some("crc-"), None)`: one filter and a partition.
pub fn select(cases: Vec<Case>, filter: Option<&str>, partition: Option<Partition>) -> Vec<Case> {
    Selection { filters: filter.map(str::to_string).into_iter().collect(), excludes: Vec::new(), partition }
        .apply(cases)
}

/// How many of the first finished cases must fail the same way, before the decoder reported
/// anything, for the run to stop as unstartable.
pub const EARLY_STOP_AFTER: usize = 5;

/// Watches the first finished cases for a decoder that cannot get going.
#[derive(Debug, Default)]
struct StartupWatch {
    first: Vec<Option<String>>,
}

impl StartupWatch {
    /// Records a finished case; returns the shared failure once the first
    /// [`EARLY_STOP_AFTER`] cases all failed with it.
    fn record(&mut self, r: &CaseResult, total: usize) -> Option<String> {
        if total < EARLY_STOP_AFTER || self.first.len() >= EARLY_STOP_AFTER {
            return None;
        }
        self.first.push(r.startup_failure.clone());
        if self.first.len() < EARLY_STOP_AFTER {
            return None;
        }
        let first = self.first[0].clone()?;
        self.first.iter().all(|f| f.as_ref() == Some(&first)).then_some(first)
    }
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
    let watch = Mutex::new(StartupWatch::default());
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
                            let same = watch.lock().unwrap_or_else(|e| e.into_inner()).record(&r, cases.len());
                            if let Some(how) = same {
                                failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(SetupError::new(
                                    format!(
                                        "the decoder failed the same way on the first {EARLY_STOP_AFTER} cases before \
                                     reporting anything ({how}); the run stopped. Run the adapter by hand to see \
                                     why, e.g. `p1sim conformance --export cases/` then \
                                     `P1SIM_TRANSPORT=stdin COMMAND < cases/{}.bin`",
                                        case.name
                                    ),
                                ));
                                stop.store(true, Ordering::Relaxed);
                            }
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
            let mut r = in_process_case(case, reference::decode(case));
            r.duration = t.elapsed();
            return Ok(r);
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

/// A finished run of a decoder called in-process ([`crate::Suite::run`]): the results and the
/// reports, at [`Gate::All`] unless changed.
#[derive(Clone, Debug)]
pub struct Run<'a> {
    pub cases: &'a [Case],
    pub results: Vec<CaseResult>,
    pub info: crate::report::RunInfo,
}

impl Run<'_> {
    /// Every expectation met, required and recommended.
    pub fn passed(&self) -> bool {
        self.results.iter().all(CaseResult::passed)
    }

    /// Every required expectation met.
    pub fn conformant(&self) -> bool {
        self.results.iter().all(CaseResult::conformant)
    }

    /// The failing cases as readable diffs (at the run's gate).
    pub fn failures(&self) -> String {
        crate::report::failures(self.cases, &self.results, self.info.gate)
    }

    /// The per-class table.
    pub fn summary(&self) -> String {
        crate::report::summary(&self.results, &self.info)
    }

    pub fn junit(&self) -> Result<String, SetupError> {
        crate::report::junit(self.cases, &self.results, &self.info)
    }

    pub fn json(&self) -> String {
        crate::report::json(&self.results, &self.info)
    }

    /// Judges only the required expectations from now on (as `--level required`).
    pub fn required_only(mut self) -> Self {
        self.info.gate = Gate::Required;
        self
    }
}

/// The result of a case whose reports came from a decoder called in-process.
pub fn in_process_case(case: &Case, reported: Vec<Reported>) -> CaseResult {
    let v = judge(case, &reported);
    CaseResult {
        name: case.name.clone(),
        class: case.class,
        problems: v.problems,
        duration: Duration::ZERO,
        reported,
        stderr: String::new(),
        has_recommended: case.has_recommended(),
        startup_failure: None,
    }
}

/// Turns what the decoder did into a case result; a decoder that cannot be started at all is a
/// setup error, not a failed case.
pub fn assess(case: &Case, outcome: Outcome, timeout: Duration) -> Result<CaseResult, SetupError> {
    let Outcome { stdout, stderr, end, note } = outcome;
    let last_line = stderr.lines().rev().find(|l| !l.trim().is_empty()).map(str::trim);
    let stderr_hint = || match last_line {
        Some(l) => format!("; its last error line: {l}"),
        None => String::new(),
    };
    let mut problems = Vec::new();
    let mut startup_failure = None;
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
        End::Exited(s) if !s.success() => {
            let how = format!("{s}{}", stderr_hint());
            if stdout.iter().all(u8::is_ascii_whitespace) {
                startup_failure = Some(how.clone());
            }
            problems.push(Problem::process(format!("the decoder failed: {how}")));
        }
        End::Exited(_) => {}
        End::TimedOut => problems.push(Problem::process(format!(
            "the decoder did not finish within {} s: it and its process group were killed",
            timeout.as_secs_f64()
        ))),
    }
    if let Some(n) = note {
        problems.push(Problem::process(n));
    }
    // A decoder that reports far more telegrams than the case holds fails, and only the first
    // ones are parsed and judged: a million of them would take gigabytes and hours.
    let most = MAX_REPORTED_PER_TELEGRAM * case.telegrams.len().max(1);
    let reported = match parse_output_at_most(&String::from_utf8_lossy(&stdout), most) {
        Ok((r, total)) => {
            if total > most {
                problems.push(Problem::process(format!(
                    "the decoder reported {total} telegrams for a case of {}; only the first {most} are judged",
                    case.telegrams.len()
                )));
            }
            r
        }
        Err(e) => {
            problems.push(Problem::process(format!("the output does not follow the schema: {e}")));
            Vec::new()
        }
    };
    let verdict = judge(case, &reported);
    problems.extend(verdict.problems);
    Ok(CaseResult {
        name: case.name.clone(),
        class: case.class,
        problems,
        duration: Duration::ZERO,
        reported,
        stderr,
        has_recommended: case.has_recommended(),
        startup_failure,
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
        assert!(assess(case, outcome(&json, End::Exited(Status::Code(0))), t).unwrap().passed());
        let crashed = assess(case, outcome(&json, End::Exited(Status::Signal(11))), t).unwrap();
        assert!(!crashed.passed());
        let first = &crashed.problems[0].text;
        assert!(first.contains("SIGSEGV") && first.contains("boom"), "{:?}", crashed.problems);
        assert_eq!(crashed.startup_failure, None, "it reported telegrams before crashing");
        let hung = assess(case, outcome("", End::TimedOut), t).unwrap();
        assert!(!hung.passed() && hung.problems[0].text.contains("did not finish within 10 s"), "{:?}", hung.problems);
        let garbage = assess(case, outcome("not json\n", End::Exited(Status::Code(0))), t).unwrap();
        assert!(garbage.problems[0].text.contains("does not follow the schema"), "{:?}", garbage.problems);
        let missing = assess(case, outcome("", End::Exited(Status::Code(127))), t).unwrap_err();
        assert!(missing.message.contains("cannot be started"), "{missing}");
        let broken = assess(case, outcome("", End::Exited(Status::Code(1))), t).unwrap();
        assert_eq!(broken.startup_failure.as_deref(), Some("exit status 1; its last error line: boom"));
    }

    #[test]
    fn the_run_stops_when_the_first_cases_all_fail_the_same_way() {
        let all = crate::suite::cases();
        let failing =
            |how: &str| CaseResult { startup_failure: Some(how.to_string()), ..in_process_case(&all[0], Vec::new()) };
        let mut watch = StartupWatch::default();
        for _ in 0..EARLY_STOP_AFTER - 1 {
            assert_eq!(watch.record(&failing("exit status 1; ImportError"), 100), None);
        }
        assert_eq!(
            watch.record(&failing("exit status 1; ImportError"), 100).as_deref(),
            Some("exit status 1; ImportError")
        );
        let mut mixed = StartupWatch::default();
        for k in 0..EARLY_STOP_AFTER {
            let r = if k == 2 { in_process_case(&all[0], Vec::new()) } else { failing("exit status 1; x") };
            assert_eq!(mixed.record(&r, 100), None);
        }
        let mut few = StartupWatch::default();
        for _ in 0..EARLY_STOP_AFTER {
            assert_eq!(few.record(&failing("x"), EARLY_STOP_AFTER - 1), None, "small runs run to the end");
        }
    }

    #[test]
    fn excludes_and_several_filters_combine() {
        let sel = Selection {
            filters: vec!["crc-check/".into(), "crc-format/".into()],
            excludes: vec!["*/s2".into(), "unpadded".into()],
            partition: None,
        };
        let picked = sel.apply(crate::suite::cases());
        assert!(!picked.is_empty());
        assert!(picked.iter().all(|c| c.name.starts_with("crc-") && !c.name.ends_with("/s2")));
        assert!(!picked.iter().any(|c| c.name.contains("unpadded")));
        assert!(picked.iter().any(|c| c.name.starts_with("crc-format/")));
        assert_eq!(
            sel.describe(),
            r#"--filter "crc-check/" --filter "crc-format/" --exclude "*/s2" --exclude "unpadded""#
        );
    }
}
