//! `p1sim bench` as a board maker runs it: every shipped board's virtual twin through the
//! standard plan (the working ones pass, the broken ones fail in the right phase with the right
//! cause), a board file of a weak pull-up on a long cable, the simulated rig reached through a
//! serial port with the board's output read back on its capture input or on a second port,
//! Request dropped mid-telegram, the production loop, and records checked against their JSON
//! Schema.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use p1sim::rig::fake::Behaviour;
use p1sim_core::wire::board::Board;
use serde_json::Value;
use support::rig_pty::{pty, rig_on_pty};
use support::{TempDir, p1sim, temp_dir};

const PASSING: [&str; 3] = ["transistor-inverter-bc847", "ftdi-inverted", "rs232-adapter"];

/// (board, the phase the diagnosis points at, the cause). The Raspberry Pi inverter receives
/// every byte, but drives Request from a 3.3 V GPIO.
const FAILING: [(&str, &str, &str); 5] = [
    ("direct-no-inverter", "data", "inverted"),
    ("direct-no-pullup", "data", "no-pull-up"),
    ("ftdi-not-inverted", "data", "inverted"),
    ("double-inverter", "data", "inverted"),
    ("transistor-inverter", "request-level", "request-level"),
];

/// A plan that runs in a fraction of a second: the phases a rig without sensors runs, small.
const SMALL_PLAN: &str = r#"
[plan]
name = "small"
profiles = ["iskra-am550", "sagemcom-t210d-lu"]

[[phase]]
kind = "request"
settle_ms = 300
hold_ms = 50

[[phase]]
kind = "data"
bytes = 8000

[[phase]]
kind = "timing"
from_percent = -3.0
to_percent = 3.0
step_percent = 1.0
limit_percent = 2.0

[[phase]]
kind = "gating"
"#;

fn bench(args: &[&str]) -> (Output, Option<Value>, TempDir) {
    let dir = temp_dir(&format!("bench-{}", args.join("-").replace(['/', '.', ','], "_")));
    let json = dir.join("record.json");
    let out = p1sim().arg("bench").args(args).arg("--json").arg(&json).stdin(Stdio::null()).output().unwrap();
    let record = std::fs::read_to_string(&json).ok().map(|s| serde_json::from_str(&s).unwrap());
    (out, record, dir)
}

fn phase<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no phase {name}"))
}

fn measurement<'a>(record: &'a Value, phase_name: &str, m: &str) -> &'a Value {
    phase(record, phase_name)["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == m)
        .unwrap_or_else(|| panic!("no measurement {m} in {phase_name}"))
}

/// Checks a record against docs/bench-record.schema.json.
fn assert_schema(record: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench-record.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> =
        validator.iter_errors(record).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "the record does not match its schema: {errors:#?}");
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn working_boards_pass_the_standard_plan() {
    for name in PASSING {
        let (out, record, dir) = bench(&["--board", name, "--serial-number", "SN-1"]);
        let record = record.unwrap_or_else(|| panic!("{name}: no record\n{}", text(&out)));
        assert_eq!(out.status.code(), Some(0), "{name}:\n{}", text(&out));
        assert_eq!(record["outcome"], "PASS", "{name}");
        assert_eq!(record["diagnosis"]["cause"], "ok", "{name}");
        assert_eq!(record["dut"]["kind"], "twin");
        assert_eq!(record["rig_firmware"], "virtual");
        assert_eq!(record["serial_number"], "SN-1");
        // The electrical phases run on the twin; the legacy phase is not part of the plan.
        assert_eq!(phase(&record, "legacy")["outcome"], "SKIP");
        assert_eq!(phase(&record, "pull-up")["outcome"], "PASS", "{name}");
        assert_eq!(phase(&record, "cable")["outcome"], "PASS", "{name}");
        assert!(measurement(&record, "data", "ber-upper-95")["value"].as_f64().unwrap() < 1.5e-6, "{name}");
        assert!(text(&out).contains("PASS"), "{name}");
        assert_schema(&record);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn broken_boards_fail_in_the_right_phase_with_the_right_cause() {
    for (name, failing_phase, cause) in FAILING {
        let (out, record, dir) = bench(&["--board", name]);
        let record = record.unwrap_or_else(|| panic!("{name}: no record\n{}", text(&out)));
        assert_eq!(out.status.code(), Some(1), "{name}:\n{}", text(&out));
        assert_eq!(record["outcome"], "FAIL", "{name}");
        assert_eq!(record["diagnosis"]["cause"], cause, "{name}: {}", record["diagnosis"]);
        assert_eq!(record["diagnosis"]["phase"], failing_phase, "{name}");
        assert_eq!(phase(&record, failing_phase)["outcome"], "FAIL", "{name}");
        assert_eq!(phase(&record, "request")["outcome"], "PASS", "{name}: Request is raised");
        let shown = text(&out);
        assert!(shown.contains(&format!("Diagnosis: {cause}")) && shown.contains("Fix:"), "{name}:\n{shown}");
        assert_schema(&record);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_board_that_leaves_request_open_is_named() {
    let (out, record, _) = bench(&["--board", "ftdi-inverted,request=off", "--plan", &small_plan()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let record = record.unwrap();
    assert_eq!(record["diagnosis"]["cause"], "request-not-raised");
    assert_eq!(phase(&record, "request")["outcome"], "FAIL");
    // Nothing that needs the meter to send can run.
    assert_eq!(phase(&record, "data")["outcome"], "SKIP");
}

#[test]
fn a_weak_pull_up_on_a_long_cable_fails_at_115200_and_passes_at_9600() {
    let dir = temp_dir("bench-weak");
    let file = dir.join("weak.toml");
    std::fs::write(
        &file,
        "[board]\nname = \"weak\"\nsummary = \"BC847 board with a 22k pull-up\"\npull_up_ohms = 22000\ncable_m = 10\n\
         inversions = 1\nrequest = \"tied\"\n",
    )
    .unwrap();
    let (out, record, _) = bench(&["--board", file.to_str().unwrap(), "--legacy"]);
    let record = record.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(phase(&record, "timing")["outcome"], "FAIL");
    assert_eq!(phase(&record, "legacy")["outcome"], "PASS");
    assert_eq!(measurement(&record, "legacy", "byte-errors")["value"], 0.0);
    assert_eq!(record["diagnosis"]["cause"], "slow-edges");
    assert_eq!(record["plan"]["legacy"], true);
    let ohms = measurement(&record, "pull-up", "pull-up-ohms")["value"].as_f64().unwrap();
    assert!((ohms - 22_000.0).abs() < 220.0, "read through the rig's ADC steps: {ohms}");
    assert_schema(&record);
    let _ = std::fs::remove_dir_all(dir);
}

/// A board file in a temporary directory: a pull-up of `ohms` into a 5 V Schmitt input behind
/// one inversion, Request tied high, and `extra` keys.
fn board_file(dir: &Path, name: &str, ohms: u32, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!("[board]\nname = \"{name}\"\npull_up_ohms = {ohms}\ninversions = 1\nrequest = \"tied\"\n{extra}"),
    )
    .unwrap();
    path
}

#[test]
fn a_47k_pull_up_fails_the_pull_up_phase_and_is_named() {
    let dir = temp_dir("bench-47k");
    let file = board_file(&dir, "weak-47k", 47_000, "");
    let (out, record, _) = bench(&["--board", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let record = record.unwrap();
    assert_eq!(phase(&record, "pull-up")["outcome"], "FAIL");
    assert_eq!(record["diagnosis"]["cause"], "slow-edges");
    assert_eq!(record["diagnosis"]["phase"], "pull-up");
    let evidence = record["diagnosis"]["evidence"].as_str().unwrap();
    assert!(evidence.contains("pull-up measures 47") && evidence.contains("Ω"), "{evidence}");
    assert_eq!(phase(&record, "rise-time")["outcome"], "FAIL", "a 47k pull-up is slow too");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_board_drawing_300_ma_fails_the_supply_phase() {
    let dir = temp_dir("bench-300ma");
    let file = board_file(&dir, "esp-board", 4_700, "supply_ma = 300\nsupply_peak_ma = 420\noutput_high_volts = 3.3\n");
    let (out, record, _) = bench(&["--board", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let record = record.unwrap();
    assert_eq!(phase(&record, "supply")["outcome"], "FAIL");
    assert_eq!(measurement(&record, "supply", "supply-average-ma")["value"], 300.0);
    assert_eq!(record["diagnosis"]["cause"], "supply-current");
    assert!(text(&out).contains("Diagnosis: supply-current"), "{}", text(&out));
    // A board whose output stage is pulled up to 5 V, for the standard plan's 3.3 V reader.
    let loud = board_file(&dir, "loud", 4_700, "output_high_volts = 5.0\n");
    let (_, record, _) = bench(&["--board", loud.to_str().unwrap()]);
    let record = record.unwrap();
    assert_eq!(phase(&record, "output-level")["outcome"], "FAIL");
    assert_eq!(record["diagnosis"]["cause"], "output-level");
    assert_schema(&record);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rig_measure_shows_every_quantity_of_a_rig_with_sensors() {
    let board = Board::named("ftdi-inverted").unwrap();
    let (_fake, p) = rig_on_pty(Behaviour { board: Some(board), ..Behaviour::default() });
    let out = p1sim().args(["rig", "measure"]).arg(&p.path).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = m["readings"].as_array().unwrap().iter().map(|r| r["quantity"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "line-open",
            "line-loaded",
            "rise",
            "fall",
            "request",
            "output-high",
            "supply-average",
            "supply-peak",
            "supply-voltage"
        ]
    );
    let ohms = m["pull_up_ohms"].as_f64().unwrap();
    assert!((ohms - 10_000.0).abs() < 100.0, "{ohms}");
    assert_eq!(m["circuit"]["threshold_mv"], 3200);
    let out = p1sim().args(["rig", "measure"]).arg(&p.path).output().unwrap();
    let shown = text(&out);
    assert!(shown.contains("data line released") && shown.contains("pull-up") && shown.contains("mV"), "{shown}");
    // A version-1 firmware is refused for measurements with the command to update it.
    let (_old, p) = rig_on_pty(Behaviour { protocol: 1, ..Behaviour::default() });
    let out = p1sim().args(["rig", "measure"]).arg(&p.path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no electrical measurements") && text(&out).contains("cargo xtask firmware"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_rig_without_its_current_monitor_measures_the_rest_and_says_what_is_missing() {
    use p1sim_core::rig::caps;
    let board = Board::named("ftdi-inverted").unwrap();
    let sensors = caps::SENSORS & !caps::SENSE_SUPPLY;
    let (_fake, p) = rig_on_pty(Behaviour { board: Some(board.clone()), sensors, ..Behaviour::default() });
    let out = p1sim().args(["rig", "measure"]).arg(&p.path).output().unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("data line released") && !shown.contains("supply current, average"), "{shown}");
    assert!(shown.contains("supply current") && shown.contains("not fitted") && shown.contains("INA219"), "{shown}");
    // The bench runs the electrical phases it can and skips the supply phase, naming the part.
    let (_fake, p) = rig_on_pty(Behaviour { board: Some(board), sensors, ..Behaviour::default() });
    let dir = temp_dir("bench-no-ina");
    let plan = dir.join("plan.toml");
    std::fs::write(
        &plan,
        "[plan]\nname = \"electrical\"\n[[phase]]\nkind = \"pull-up\"\n[[phase]]\nkind = \"supply\"\n",
    )
    .unwrap();
    let (out, record, _) = bench(&["--rig", p.path.to_str().unwrap(), "--plan", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let record = record.unwrap();
    assert_eq!(phase(&record, "pull-up")["outcome"], "PASS");
    let supply = phase(&record, "supply");
    assert_eq!(supply["outcome"], "SKIP");
    assert!(supply["note"].as_str().unwrap().contains("INA219"), "{supply}");
}

#[test]
fn request_drops_mid_telegram_on_a_board_the_reader_drives() {
    // The Raspberry Pi inverter takes Request from a GPIO: the twin's reader raises and drops it.
    let (out, record, _) = bench(&["--board", "transistor-inverter", "--plan", &small_plan()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let record = record.unwrap();
    assert_eq!(measurement(&record, "request", "request-follows-reader")["value"], true);
    for m in ["telegram-cut", "cut-part-intact", "silent-while-low", "fresh-telegram-intact"] {
        assert_eq!(measurement(&record, "gating", m)["value"], true, "{m}");
    }
    assert!(measurement(&record, "gating", "characters-after-cut")["value"].as_f64().unwrap() <= 1.0);
}

#[test]
fn a_rig_on_a_serial_port_with_the_board_read_back_on_its_capture_input() {
    let board = Board::named("transistor-inverter-bc847").unwrap();
    let (fake, p) = rig_on_pty(Behaviour { board: Some(board), ..Behaviour::default() });
    let (out, record, _) =
        bench(&["--rig", p.path.to_str().unwrap(), "--plan", &small_plan(), "--serial-number", "R-7"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let record = record.unwrap();
    assert_eq!((record["dut"]["kind"].as_str(), record["dut"]["readback"].as_str()), (Some("rig"), Some("capture")));
    assert_eq!(record["rig_firmware"], "0.1.0-fake");
    assert!(fake.seen(|s| s.telegrams.len()) >= 8, "the rig carried the plan's telegrams");
    assert_schema(&record);
}

#[test]
fn a_rig_with_the_board_read_back_through_its_own_usb_uart() {
    let board = Board::named("ftdi-inverted").unwrap();
    let (fake, rig) = rig_on_pty(Behaviour { board: Some(board), ..Behaviour::default() });
    let uart = pty();
    fake.feed_output(Box::new(uart.master.try_clone().unwrap()));
    let (out, record, _) =
        bench(&["--rig", rig.path.to_str().unwrap(), "--read", uart.path.to_str().unwrap(), "--plan", &small_plan()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let record = record.unwrap();
    assert_eq!(record["dut"]["readback"], uart.path.to_str().unwrap());
    assert_eq!(measurement(&record, "data", "byte-errors")["value"], 0.0);
    // A pseudo-terminal has no modem lines: asking to drive Request from one says so.
    let (out, _, _) = bench(&[
        "--rig",
        rig.path.to_str().unwrap(),
        "--read",
        uart.path.to_str().unwrap(),
        "--request-via",
        "rts",
        "--plan",
        &small_plan(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("RTS") && text(&out).contains("--request-via dtr"), "{}", text(&out));
}

#[test]
fn junit_has_a_case_per_phase_with_the_limits() {
    let dir = temp_dir("bench-junit");
    let xml = dir.join("bench.xml");
    let out = p1sim()
        .args(["bench", "--board", "direct-no-pullup", "--junit"])
        .arg(&xml)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&xml).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 12, "{xml}");
    assert!(xml.contains("<skipped") && xml.contains("<failure"), "{xml}");
    assert!(xml.contains("pull-up-present: no [x == true] FAIL"), "{xml}");
    assert!(xml.contains(r#"name="cause" value="no-pull-up""#), "{xml}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_production_loop_records_each_board_and_keeps_a_tally() {
    let dir = temp_dir("bench-loop");
    let mut child = p1sim()
        .args(["bench", "--board", "direct-no-inverter", "--plan", &small_plan(), "--loop", "--report-dir"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"SN-100\nSN-101\n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("Tally: tested 1, passed 0, failed 1 (inverted 1)"), "{shown}");
    assert!(shown.contains("Session: tested 2, passed 0, failed 2 (inverted 2)"), "{shown}");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("SN-100-") && names[0].ends_with("Z.json"), "{names:?}");
    assert!(names[1].starts_with("SN-101-"), "{names:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn setup_errors_exit_2_and_say_what_to_do() {
    let out = p1sim().args(["bench", "--rig", "/dev/p1sim-no-such-rig"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("/dev/p1sim-no-such-rig") && text(&out).contains("Is the Pico plugged in"),
        "{}",
        text(&out)
    );
    let dir = temp_dir("bench-bad-plan");
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, SMALL_PLAN.replace("bytes = 8000", "bytes = -1")).unwrap();
    let out = p1sim().args(["bench", "--board", "ftdi-inverted", "--plan"]).arg(&plan).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("plan.toml:13:1: key `bytes`"), "{}", text(&out));
    let out = p1sim().args(["bench", "--board", "no-such-board"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("p1sim boards"), "{}", text(&out));
    let out = p1sim().args(["bench", "--board", "ftdi-inverted", "--request-via", "rts"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--request-via needs --read");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn boards_lists_and_shows_the_shipped_boards() {
    let out = p1sim().args(["boards", "--json"]).output().unwrap();
    assert!(out.status.success());
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 8);
    let out = p1sim().args(["boards", "--show", "ftdi-inverted"]).output().unwrap();
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("[board]") && shown.contains("name = \"ftdi-inverted\""), "{shown}");
}

/// The small plan, written once per test process.
fn small_plan() -> String {
    let path = std::env::temp_dir().join(format!("p1sim-it-{}-small-plan.toml", std::process::id()));
    if !path.exists() {
        std::fs::write(&path, SMALL_PLAN).unwrap();
    }
    path.to_string_lossy().into_owned()
}
