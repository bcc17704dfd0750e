//! `p1sim conformance` end to end with the real binary: every transport carries the suite to an
//! external decoder (the reference.sh adapter around `p1sim decode`), hanging and crashing
//! decoders fail their cases without leaving processes behind, the exit-code contract, the
//! reports, partitions, the minimal example adapter of conformance/adapters/README.md, and how
//! the peers built from a source checkout (ESPHome's, Homey's) fail when it is missing.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::{p1sim, temp_dir, wait_bounded};

/// The workspace root: adapters are referred to relative to it, as the README does.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `p1sim conformance ARGS` from the workspace root, bounded to ten minutes.
fn conformance(args: &[&str]) -> Run {
    let mut child = p1sim()
        .arg("conformance")
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("p1sim starts");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let status = wait_bounded(&mut child, Duration::from_secs(600));
    Run { code: status.code().unwrap_or(-1), stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

fn reference_sh() -> String {
    root().join("conformance/adapters/reference.sh").display().to_string()
}

/// The summary's total line: `total  641/641  82/82  all passed in ...`.
fn total_line(run: &Run) -> &str {
    run.stdout.lines().find(|l| l.starts_with("total ")).unwrap_or_else(|| panic!("no total line: {}", run.stdout))
}

fn assert_all_pass(run: &Run, cases: usize) {
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let total = total_line(run);
    assert!(total.contains(&format!(" {cases}/{cases} ")) && total.contains("all passed"), "{}", run.stdout);
}

fn suite_size() -> usize {
    p1sim_conformance::suite::cases().len()
}

#[test]
fn the_reference_adapter_passes_every_case_over_stdin() {
    assert_all_pass(&conformance(&["--dut", &reference_sh(), "--transport", "stdin"]), suite_size());
}

#[test]
fn the_reference_adapter_passes_every_case_over_tcp() {
    assert_all_pass(&conformance(&["--dut", &reference_sh(), "--transport", "tcp"]), suite_size());
}

#[test]
fn the_reference_adapter_passes_every_case_in_one_persistent_process() {
    assert_all_pass(&conformance(&["--dut", &reference_sh(), "--persistent"]), suite_size());
}

#[test]
fn the_reference_adapter_passes_a_third_of_the_suite_over_a_pty() {
    // A PTY case waits for the decoder to open the port and settle; a third of the suite (every
    // class) keeps the test short.
    let third = p1sim_conformance::runner::select(
        p1sim_conformance::suite::cases(),
        None,
        Some(p1sim_conformance::runner::Partition { k: 1, n: 3 }),
    );
    let run = conformance(&["--dut", &reference_sh(), "--transport", "pty", "--partition", "1/3"]);
    assert_all_pass(&run, third.len());
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) && !cmd.contains("conformance") {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn a_hanging_decoder_times_out_fails_and_leaves_no_process() {
    // The check below can see a leftover: a sleep of our own shows up until it is killed.
    let mut own = std::process::Command::new("sleep").arg("97.1230").spawn().unwrap();
    // Its command line shows once exec has finished setting it up, a moment after spawn returns.
    let seen = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        processes_with("sleep 97.1230").len() == 1
    });
    assert!(seen, "a running sleep is visible in /proc");
    let _ = own.kill();
    let _ = own.wait();
    assert!(processes_with("sleep 97.1230").is_empty());
    for transport in ["stdin", "pty", "tcp"] {
        // A decoder that never answers, with a child of its own in the background: the runner
        // must kill the whole process group. Each transport gets its own sleep length to look for.
        let secs = match transport {
            "stdin" => "97.1231",
            "pty" => "97.1232",
            _ => "97.1233",
        };
        let dut = format!("sleep {secs} & sleep {secs}");
        let run = conformance(&[
            "--dut",
            &dut,
            "--transport",
            transport,
            "--timeout",
            "1",
            "--filter",
            "clean/iskra-am550/clean/s",
            "--jobs",
            "2",
        ]);
        assert_eq!(run.code, 1, "{transport}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("did not finish within 1 s"), "{transport}: {}", run.stdout);
        let total = total_line(&run);
        assert!(
            total.contains(" 0/6 ") && total.contains("6 failed"),
            "{transport}: every case ran and failed: {}",
            run.stdout
        );
        if transport == "pty" {
            assert!(run.stdout.contains("the decoder never opened P1SIM_PTY"), "{}", run.stdout);
        }
        if transport == "tcp" {
            assert!(run.stdout.contains("the decoder never connected to P1SIM_TCP"), "{}", run.stdout);
        }
        let left = processes_with(&format!("sleep {secs}"));
        assert!(left.is_empty(), "{transport}: processes left behind: {left:?}");
    }
}

/// A decoder that crashes on the odd seeds and reports nothing on the even ones: failures that
/// differ, so the run goes on.
const CRASH_ON_ODD_SEEDS: &str = "case $P1SIM_CASE in */s1|*/s3|*/s5) kill -SEGV $$;; esac; cat >/dev/null";

#[test]
fn a_crashing_decoder_fails_its_cases_and_the_run_goes_on() {
    let run = conformance(&["--dut", CRASH_ON_ODD_SEEDS, "--filter", "clean/iskra-am550/clean/s"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.matches("killed by signal 11 (SIGSEGV)").count(), 3, "{}", run.stdout);
    assert_eq!(run.stdout.matches("FAIL ").count(), 6, "{}", run.stdout);
    let run = conformance(&["--dut", "echo 'decoder broke' >&2; exit 3", "--filter", "clean/iskra-am550/clean/s1"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("the decoder failed: exit status 3; its last error line: decoder broke"),
        "{}",
        run.stdout
    );
    // A persistent decoder that dies is restarted for the next case.
    let persistent = r#"while IFS="$(printf '\t')" read -r tag name size rest; do
        dd bs=1 count="$size" of=/dev/null 2>/dev/null
        case $name in */s1|*/s3|*/s5) kill -SEGV $$;; esac
        printf 'P1SIM-END\t%s\n' "$name"
    done"#;
    let run = conformance(&["--dut", persistent, "--persistent", "--filter", "clean/iskra-am550/clean/s"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.matches("FAIL ").count(), 6, "{}", run.stdout);
    assert_eq!(run.stdout.matches("SIGSEGV").count(), 3, "{}", run.stdout);
}

#[test]
fn an_adapter_that_fails_the_same_way_on_the_first_cases_stops_the_run() {
    // What a Python adapter whose decoder is not installed does on every case.
    let dut = "echo 'ModuleNotFoundError: No module named my_decoder' >&2; exit 1";
    let started = std::time::Instant::now();
    let run = conformance(&["--dut", dut, "--jobs", "1"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("failed the same way on the first 5 cases"), "{}", run.stderr);
    assert!(run.stderr.contains("ModuleNotFoundError: No module named my_decoder"), "{}", run.stderr);
    assert!(!run.stdout.contains("FAIL "), "no pile of identical failures: {}", run.stdout);
    assert!(started.elapsed() < Duration::from_secs(60), "it stopped early");
}

#[test]
fn exit_codes_follow_the_contract() {
    let ok = conformance(&["--filter", "crc-check/"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    // Prints nothing: every telegram it should have accepted is missing.
    let failing = conformance(&["--dut", "true", "--filter", "clean/iskra-am550/clean/s1"]);
    assert_eq!(failing.code, 1);
    assert!(failing.stdout.contains("FAIL clean/iskra-am550/clean/s1"), "{}", failing.stdout);
    assert!(failing.stdout.contains("expected it, but the decoder reported nothing more"), "{}", failing.stdout);
    for (args, says) in [
        (&["--partition", "0/2"][..], "invalid partition"),
        (&["--level", "some"], "expected required or all"),
        (&["--known-failures", "/no/such/baseline.txt"], "/no/such/baseline.txt"),
        (&["--timeout", "0"], "greater than 0"),
        (&["--transport", "serial"], "expected stdin, pty or tcp"),
        (&["--filter", "no-such-case"], "no case matches"),
        (&["--transport", "tcp"], "runs in-process"),
        (&["--dut", "true", "--persistent", "--transport", "pty"], "stdin only"),
        (&["--dut", "p1sim-no-such-decoder", "--filter", "clean/"], "cannot be started"),
        (&["--jobs", "0"], "--jobs"),
    ] {
        let run = conformance(args);
        assert_eq!(run.code, 2, "{args:?}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn partitions_list_every_case_exactly_once() {
    let names = |args: &[&str]| -> Vec<String> {
        let run = conformance(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.lines().map(|l| l.split('\t').next().unwrap().to_string()).collect()
    };
    let mut all = names(&["--list"]);
    assert_eq!(all.len(), suite_size());
    let mut parts: Vec<String> = (1..=3).flat_map(|k| names(&["--list", "--partition", &format!("{k}/3")])).collect();
    all.sort();
    parts.sort();
    assert_eq!(parts, all);
    let globbed = names(&["--list", "--filter", "legacy-dsmr2/*/s1"]);
    assert!(!globbed.is_empty() && globbed.iter().all(|n| n.starts_with("legacy-dsmr2/") && n.ends_with("/s1")));
}

#[test]
fn reports_are_written_for_ci_and_tools() {
    let dir = temp_dir("conformance-reports");
    let (json, junit, matrix) = (dir.join("r.json"), dir.join("r.xml"), dir.join("reports/matrix.md"));
    let run = conformance(&[
        "--dut",
        "true",
        "--filter",
        "crc-check/iskra-am550/",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--matrix",
        matrix.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["dut"], "true");
    assert_eq!(doc["transport"], "stdin");
    let cases = doc["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        assert_eq!(c["class"], "crc-check");
        assert!(c["name"].as_str().unwrap().starts_with("crc-check/iskra-am550/"));
        assert!(c["duration_ms"].is_u64());
        // A decoder that reports nothing passes only the cases where nothing is to be accepted.
        assert_eq!(c["passed"], c["problems"].as_array().unwrap().is_empty());
        for p in c["problems"].as_array().unwrap() {
            assert!(p["level"] == "required" || p["level"] == "recommended", "{p}");
        }
    }
    assert_eq!(doc["classes"][0]["total"], cases.len());
    assert_eq!(doc["classes"][0]["required"]["total"], cases.len());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"crc-check\""), "{xml}");
    let md = std::fs::read_to_string(&matrix).unwrap();
    assert!(md.contains("| class | what it checks | true |"), "{md}");
    assert!(
        md.contains("[crc-check](https://github.com/p1sim/p1sim/blob/main/conformance/EVIDENCE.md#class-crc-check)"),
        "{md}"
    );
}

#[test]
fn known_failures_let_a_decoder_adopt_the_suite_step_by_step() {
    let dir = temp_dir("conformance-known");
    let known = dir.join("known.txt");
    // A decoder that reports nothing for the unpadded-CRC cases fails them.
    let dut = format!("case $P1SIM_CASE in */unpadded-crc/*) cat >/dev/null;; *) {};; esac", reference_sh());
    let filter = ["--filter", "crc-format/", "--filter", "crc-check/iskra-am550/"];
    let first =
        conformance(&[&["--dut", &dut, "--write-known-failures", known.to_str().unwrap()][..], &filter].concat());
    assert_eq!(first.code, 1, "{}", first.stdout);
    let listed = std::fs::read_to_string(&known).unwrap();
    let names: Vec<&str> = listed.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!names.is_empty() && names.iter().all(|l| l.contains("/unpadded-crc/")), "{listed}");
    // With the baseline the same run passes; a case taken out of it fails it again.
    let args = [&["--dut", &dut, "--known-failures", known.to_str().unwrap()][..], &filter].concat();
    let again = conformance(&args);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(again.stdout.contains(&format!("{} still failing, 0 new, 0 fixed", names.len())), "{}", again.stdout);
    std::fs::write(&known, names[1..].join("\n")).unwrap();
    let new = conformance(&args);
    assert_eq!(new.code, 1, "{}", new.stdout);
    assert!(
        new.stdout.contains(&format!("new failure: {}", names[0].split_whitespace().next().unwrap())),
        "{}",
        new.stdout
    );
    // The reference decoder passes them: every listed case is reported fixed.
    std::fs::write(&known, &listed).unwrap();
    let fixed = conformance(&["--known-failures", known.to_str().unwrap(), "--filter", "crc-format/"]);
    assert_eq!(fixed.code, 0, "{}", fixed.stdout);
    assert!(fixed.stdout.contains(&format!("0 still failing, 0 new, {} fixed", names.len())), "{}", fixed.stdout);
}

#[test]
fn level_required_gates_on_required_expectations_only() {
    // Reading the telegram that noise ran into is recommended, not required: a decoder that
    // drops the middle telegram of these cases is still conformant.
    let dut = format!("{} | sed 2d", reference_sh());
    let filter = "garbage/iskra-am550/garbage-before/";
    let all = conformance(&["--dut", &dut, "--filter", filter]);
    assert_eq!(all.code, 1, "{}", all.stdout);
    assert!(all.stdout.contains("expected it, but the decoder skipped it [recommended]"), "{}", all.stdout);
    let required = conformance(&["--dut", &dut, "--filter", filter, "--level", "required"]);
    assert_eq!(required.code, 0, "{}", required.stdout);
    assert!(total_line(&required).contains("conformant: every required expectation met"), "{}", required.stdout);
    // Excludes and several filters: the run covers exactly what is selected.
    let listed = conformance(&["--list", "--filter", "crc-check/", "--filter", "dst/", "--exclude", "*/s2"]);
    assert_eq!(listed.code, 0);
    assert!(
        listed.stdout.lines().all(|l| (l.starts_with("crc-check/") || l.starts_with("dst/")) && !l.contains("/s2\t"))
    );
    assert!(listed.stdout.lines().any(|l| l.starts_with("dst/")));
}

#[test]
fn export_writes_every_case_for_other_test_frameworks() {
    let dir = temp_dir("conformance-export");
    let run = conformance(&["--export", dir.to_str().unwrap(), "--filter", "legacy-dsmr2/"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cases = p1sim_conformance::runner::select(p1sim_conformance::suite::cases(), Some("legacy-dsmr2/"), None);
    for c in &cases {
        assert_eq!(std::fs::read(dir.join(format!("{}.bin", c.name))).unwrap(), c.input, "{}", c.name);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{}.json", c.name))).unwrap()).unwrap();
        assert_eq!(json["spec"], c.spec.to_string());
        assert_eq!(json["telegrams"][0]["level"], "required");
    }
    assert!(dir.join("README.md").is_file());
}

#[test]
fn the_minimal_example_adapter_runs_as_the_readme_says() {
    let dir = temp_dir("conformance-minimal");
    let json = dir.join("minimal.json");
    let run = conformance(&[
        "--dut",
        "python3 conformance/adapters/minimal.py",
        "--filter",
        "*/clean/s1",
        "--json",
        json.to_str().unwrap(),
    ]);
    // The toy decoder has no AES and frames telegrams up to their `!`: it passes every clean
    // telegram except the encrypted ones and those of the Iskra MT382 that sends no `!`.
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for c in doc["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let unreadable = ["encrypted/", "unit-scaling/sagemcom-t210d-r-at/", "legacy-dsmr2/iskra-mt382-no-end-marker/"]
            .iter()
            .any(|p| name.starts_with(p));
        assert_eq!(c["passed"], !unreadable, "{c}");
    }
}

/// `p1sim conformance --dut NAME` for a peer built from a source checkout, with neither the
/// variable naming a checkout nor any other environment that could point at one.
fn conformance_without_checkouts(args: &[&str]) -> Run {
    let out = p1sim()
        .arg("conformance")
        .args(args)
        .env_remove("ESPHOME_DSMR_SOURCE")
        .env_remove("NODE_DSMR_PARSER")
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("p1sim runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn peers_built_from_a_checkout_say_how_to_get_their_source() {
    let empty = temp_dir("no-checkout");
    let not_a_checkout = empty.display().to_string();
    for (dut, clone, var, wrong) in [
        (
            "esphome",
            "git clone https://github.com/esphome-libs/dsmr_parser",
            "ESPHOME_DSMR_SOURCE",
            "holds no src/dsmr_parser/parser.h",
        ),
        (
            "node-dsmr-parser",
            "git clone https://github.com/athombv/node-dsmr-parser",
            "NODE_DSMR_PARSER",
            "does not name @athombv/dsmr-parser",
        ),
    ] {
        let missing = conformance_without_checkouts(&["--dut", dut]);
        assert_eq!(missing.code, 2, "{dut}: {}\n{}", missing.stdout, missing.stderr);
        for says in [clone, var, "--source DIR", "on no package registry"] {
            assert!(missing.stderr.contains(says), "{dut}: {says:?} in {}", missing.stderr);
        }
        let run = conformance_without_checkouts(&["--dut", dut, "--source", &not_a_checkout]);
        assert_eq!(run.code, 2, "{dut}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(wrong) && run.stderr.contains(clone), "{dut}: {}", run.stderr);
        let gone = conformance_without_checkouts(&["--dut", dut, "--source", "/no/such/checkout"]);
        assert_eq!(gone.code, 2);
        assert!(gone.stderr.contains("/no/such/checkout is not a directory"), "{dut}: {}", gone.stderr);
    }
    let elsewhere = conformance_without_checkouts(&["--dut", "reference", "--source", &not_a_checkout]);
    assert_eq!(elsewhere.code, 2);
    assert!(elsewhere.stderr.contains("applies to the decoders built from a source checkout"), "{}", elsewhere.stderr);
    let _ = std::fs::remove_dir_all(&*empty);
}

#[test]
fn the_peer_build_scripts_handle_their_arguments() {
    let sh = |script: &str, args: &[&str]| {
        std::process::Command::new("sh")
            .arg(root().join("conformance/adapters").join(script).join("build.sh"))
            .args(args)
            .env_remove("ESPHOME_DSMR_SOURCE")
            .env_remove("NODE_DSMR_PARSER")
            .stdin(Stdio::null())
            .output()
            .expect("sh runs")
    };
    for (script, var, clone) in [
        ("esphome", "ESPHOME_DSMR_SOURCE", "git clone https://github.com/esphome-libs/dsmr_parser"),
        ("node-dsmr-parser", "NODE_DSMR_PARSER", "git clone https://github.com/athombv/node-dsmr-parser"),
    ] {
        let help = sh(script, &["--help"]);
        assert!(help.status.success(), "{script} --help");
        let usage = String::from_utf8_lossy(&help.stdout);
        assert!(usage.contains("--source DIR") && usage.contains(var), "{script}: {usage}");
        for (args, says) in [
            (&[][..], format!("give --source DIR or set {var}; get it with `{clone}`")),
            (&["--source"], "--source needs a directory".to_string()),
            (&["--source=/no/such/checkout"], "/no/such/checkout is not a directory".to_string()),
            (&["--source", "/tmp", "--fast"], "unknown argument '--fast'".to_string()),
        ] {
            let out = sh(script, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{script} {args:?}: {err}");
            assert!(err.contains(&says), "{script} {args:?}: {says:?} in {err}");
            assert!(out.stdout.is_empty(), "{script} {args:?} prints no path it did not build");
        }
    }
}
