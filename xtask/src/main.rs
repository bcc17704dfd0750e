//! Project automation in Rust instead of shell scripts (the cargo-xtask pattern): `cargo xtask ci`
//! is the one command CI runs, and if it passes locally CI passes too.
//!
//! Every step runs even when an earlier one failed, and all failures are listed at the end, so
//! one broken lint does not hide a broken test.

mod firmware;
mod tidy;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
cargo xtask <task>

Tasks:
  ci           everything CI checks: format, lints, tidy, tests and snapshots, the live page in
               headless Chromium, a bench run on virtual twins, the no_std build, the Windows
               and macOS builds
  tidy         repository rules: module docs, trailing whitespace, profile sources, references
               to files and headings that exist, no private notes cited
  no-std       build p1sim-core for thumbv6m-none-eabi (installs the target when missing)
  systems      check (clippy) p1sim for x86_64-pc-windows-gnu and x86_64-apple-darwin
  firmware     build the RP2040 rig firmware, ELF and UF2 under target/rig-firmware/, with its
               flash and RAM use; --profile NAME [--seed N] [--key HEX] builds the standalone
               pocket meter sending that profile
  firmware-test  lint (clippy) and build both firmware variants and run them in the rp2040js
               emulator harness
  bench        p1sim bench's standard plan on the virtual twins of a working and a broken board
  conformance  run the conformance suite against the reference decoder; other arguments go to
               `p1sim conformance`. `--matrix` alone re-runs every decoder this machine has
               (reference, dsmr_parser from PyPI, dsmr5 from crates.io, and ESPHome's and Homey's
               parsers when ESPHOME_DSMR_SOURCE and NODE_DSMR_PARSER name source checkouts),
               records their columns in conformance/results/ and renders docs/compatibility.md
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let mut run = Run::default();
    match task {
        "ci" => ci(&mut run),
        "tidy" => run.step("tidy", tidy::check),
        "no-std" => run.step("no_std build", no_std),
        "systems" => run.step("Windows and macOS builds", other_systems),
        "firmware" => match firmware::Options::parse(&args[1..]) {
            Ok(opts) => run.step("rig firmware", || firmware::build(&opts).map(drop)),
            Err(e) => {
                eprintln!("xtask: {e}");
                return ExitCode::from(2);
            }
        },
        "firmware-test" => run.step("rig firmware in the emulator", firmware::test),
        "conformance" => run.step("conformance suite", || conformance(&args[1..])),
        "bench" => run.step("bench on virtual twins", bench_twins),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprint!("unknown task {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    run.finish()
}

fn ci(run: &mut Run) {
    run.step("rustfmt", || cargo(&["fmt", "--all", "--check"]));
    run.step("clippy", || cargo(&["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]));
    run.step("tidy", tidy::check);
    run.step("tests and snapshots", tests);
    run.step("live page in Chromium", browser);
    run.step("bench on virtual twins", bench_twins);
    run.step("no_std build", no_std);
    run.step("Windows and macOS builds", other_systems);
    run.step("rig firmware in the emulator", firmware::test);
    run.step("conformance suite", || conformance(&["--junit".into(), "target/conformance/reference.xml".into()]));
    run.step("peer decoders against their recorded columns", peers_unchanged);
}

/// The decoders CI can install from registries, with how each is run: their columns in
/// `conformance/results/` (and so docs/compatibility.md) must stay true.
const PEERS: [(&str, &[&str]); 2] = [("dsmr5", &[]), ("dsmr_parser", &["--persistent"])];

/// Runs each registry-installable peer decoder over the whole suite against its recorded column
/// as the known-failures baseline: a change to the suite that changes what a peer passes fails
/// here until the column is re-recorded (`cargo xtask conformance --matrix`).
fn peers_unchanged() -> Result<(), String> {
    cargo(&["build", "--locked", "-p", "p1sim", "-p", "p1sim-adapter-dsmr5"])?;
    for (dut, extra) in PEERS {
        let column = format!("conformance/results/{dut}.json");
        let mut args: Vec<String> = ["--dut", dut, "--known-failures", &column].iter().map(|a| a.to_string()).collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        conformance(&args).map_err(|e| {
            format!("{dut}: {e}; if the suite changed on purpose, re-record with `cargo xtask conformance --matrix`")
        })?;
    }
    Ok(())
}

/// `p1sim bench` with the standard plan against two virtual twins, as a board maker's CI would
/// run it on a design: a working board passes, a board without an inverter fails as `inverted`.
/// The records and JUnit land in target/bench/.
fn bench_twins() -> Result<(), String> {
    let out = root().join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for (board, want_code, want_cause) in
        [("transistor-inverter-bc847", 0, "ok"), ("direct-no-inverter", 1, "inverted")]
    {
        let json = out.join(format!("{board}.json"));
        let status = Command::new(cargo_bin())
            .args(["run", "--quiet", "--locked", "-p", "p1sim", "--", "bench", "--quiet", "--board", board])
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(out.join(format!("{board}.xml")))
            .current_dir(root())
            .status()
            .map_err(|e| format!("cannot run p1sim bench: {e}"))?;
        if status.code() != Some(want_code) {
            return Err(format!("p1sim bench --board {board} exited with {status}, expected {want_code}"));
        }
        let record = std::fs::read_to_string(&json).map_err(|e| format!("no record {}: {e}", json.display()))?;
        if !record.contains(&format!("\"cause\": \"{want_cause}\"")) {
            return Err(format!("p1sim bench --board {board}: the record does not name the cause {want_cause}"));
        }
    }
    Ok(())
}

/// `p1sim conformance ARGS` from the workspace root (reference decoder unless `--dut` says
/// otherwise). `--matrix` alone re-records every decoder this machine can run and renders
/// docs/compatibility.md from all recorded columns.
fn conformance(args: &[String]) -> Result<(), String> {
    if args.len() == 1 && args[0] == "--matrix" {
        return matrix();
    }
    p1sim_conformance(args)
}

/// The decoders `--matrix` re-runs, with how each is run.
const MATRIX_RUNS: [&[&str]; 3] =
    [&["--dut", "reference"], &["--dut", "dsmr5"], &["--dut", "dsmr_parser", "--persistent"]];

/// ESPHome's and Homey's parsers are on no registry: `--matrix` re-runs them when the variable
/// names a source checkout (conformance/adapters/README.md), else keeps their recorded columns.
const CHECKOUT_RUNS: [(&str, &[&str]); 2] =
    [("ESPHOME_DSMR_SOURCE", &["--dut", "esphome"]), ("NODE_DSMR_PARSER", &["--dut", "node-dsmr-parser"])];

fn matrix() -> Result<(), String> {
    cargo(&["build", "--locked", "-p", "p1sim", "-p", "p1sim-adapter-dsmr5"])?;
    let from_checkouts = CHECKOUT_RUNS.iter().filter_map(|(var, run)| {
        let named = std::env::var_os(var).is_some_and(|v| !v.is_empty());
        if !named {
            eprintln!("{}: {var} names no source checkout, so its recorded column is kept", run[1]);
        }
        named.then_some(*run)
    });
    for run in MATRIX_RUNS.into_iter().chain(from_checkouts) {
        let mut args: Vec<String> = run.iter().map(|a| a.to_string()).collect();
        args.extend(["--record".to_string(), "conformance/results".to_string()]);
        p1sim_conformance(&args)?;
    }
    p1sim_conformance(&["matrix".to_string()])
}

fn p1sim_conformance(args: &[String]) -> Result<(), String> {
    let status = Command::new(cargo_bin())
        .args(["run", "--quiet", "--locked", "-p", "p1sim", "--", "conformance"])
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo run -p p1sim: {e}"))?;
    let records = args.iter().any(|a| a == "--matrix" || a == "--record" || a == "--write-known-failures");
    match status.code() {
        Some(0) => Ok(()),
        // A recorded column says what a decoder fails; failing cases are its content, not an error.
        Some(1) if records => Ok(()),
        Some(1) => Err("the conformance suite failed: see the failing cases above".into()),
        _ => Err(format!("`p1sim conformance {}` could not run: see its error above", args.join(" "))),
    }
}

/// All workspace tests. insta fails on a changed or new snapshot instead of writing it, and
/// pending `.snap.new` files left behind count as failures.
fn tests() -> Result<(), String> {
    let status = Command::new(cargo_bin())
        // Every test binary runs even after one fails, so one CI run shows every failure.
        .args(["test", "--workspace", "--locked", "--no-fail-fast"])
        .env("INSTA_UPDATE", "no")
        .env("CI", "true")
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    if !status.success() {
        return Err("cargo test failed".into());
    }
    let pending = tidy::files(&root(), &|p: &Path| p.to_string_lossy().ends_with(".snap.new"));
    if !pending.is_empty() {
        return Err(format!("pending snapshots (review with `cargo insta review`): {pending:?}"));
    }
    Ok(())
}

/// The live page's test in headless Chromium (Debian's `chromium` and `chromium-driver`, which
/// `.ci/run` installs): ignored by a plain `cargo test`, run here.
fn browser() -> Result<(), String> {
    // `--workspace`, as the test step builds: the same features, so nothing is rebuilt.
    cargo(&["test", "--workspace", "--test", "browser", "--locked", "--", "--ignored"])
}

/// The shared core must build for the RP2040 without std, with and without an allocator.
fn no_std() -> Result<(), String> {
    ensure_target("thumbv6m-none-eabi")?;
    for features in ["", "alloc"] {
        let mut args =
            vec!["build", "-p", "p1sim-core", "--no-default-features", "--target", "thumbv6m-none-eabi", "--locked"];
        if !features.is_empty() {
            args.extend(["--features", features]);
        }
        cargo(&args)?;
    }
    Ok(())
}

/// p1sim builds for Windows and macOS too (serial, TCP and files work there; the PTY output and
/// transport are Unix only). Checked, not linked: no cross linker is needed.
fn other_systems() -> Result<(), String> {
    for target in ["x86_64-pc-windows-gnu", "x86_64-apple-darwin"] {
        // A machine that cannot fetch the target's standard library cannot check it; that says
        // nothing about p1sim, so the check is skipped there, loudly.
        if let Err(e) = ensure_target(target) {
            eprintln!("xtask: SKIPPED the {target} check: {e}");
            continue;
        }
        cargo(&["clippy", "-p", "p1sim", "--target", target, "--locked", "--", "-D", "warnings"])?;
    }
    Ok(())
}

/// Installs a rustup target when it is missing.
pub fn ensure_target(target: &str) -> Result<(), String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup to check for {target}: {e}"))?;
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == target) {
        return Ok(());
    }
    eprintln!("xtask: installing the {target} target");
    let status = Command::new("rustup").args(["target", "add", target]).status().map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err(format!("rustup target add {target} failed")) }
}

fn cargo_bin() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs cargo at the workspace root.
pub fn cargo(args: &[&str]) -> Result<(), String> {
    let status = Command::new(cargo_bin())
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo {}: {e}", args.join(" ")))?;
    if status.success() { Ok(()) } else { Err(format!("`cargo {}` failed", args.join(" "))) }
}

/// The workspace root: the parent of this crate's directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root").to_path_buf()
}

/// Runs steps, timing each, and remembers failures for the summary.
#[derive(Default)]
struct Run {
    failures: Vec<(String, String)>,
    timings: Vec<(String, f64)>,
}

impl Run {
    fn step(&mut self, name: &str, f: impl FnOnce() -> Result<(), String>) {
        eprintln!("xtask: == {name}");
        let t = Instant::now();
        let result = f();
        self.timings.push((name.to_string(), t.elapsed().as_secs_f64()));
        if let Err(e) = result {
            eprintln!("xtask: {name} FAILED: {e}");
            self.failures.push((name.to_string(), e));
        }
    }

    fn finish(self) -> ExitCode {
        eprintln!("xtask: summary");
        for (name, secs) in &self.timings {
            let failed = self.failures.iter().any(|(n, _)| n == name);
            eprintln!("  {:<24} {:>7.1}s  {}", name, secs, if failed { "FAILED" } else { "ok" });
        }
        if self.failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            for (name, e) in &self.failures {
                eprintln!("xtask: {name}: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
