//! The `p1sim` binary as users run it: exit codes, determinism, the documented JSON shapes and
//! the error messages for bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn p1sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p1sim")).args(args).output().expect("run p1sim")
}

fn p1sim_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_p1sim"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run p1sim");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_readme_main_command_emits_three_valid_telegrams() {
    let out = p1sim(&["emit", "--profile", "iskra-am550", "--count", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.matches("/ISK5\\2M550T-1012\r\n\r\n").count(), 3);
    let decoded = p1sim_stdin(&["decode"], &out.stdout);
    assert_eq!(decoded.status.code(), Some(0), "{}", stderr(&decoded));
}

#[test]
fn same_arguments_give_identical_bytes() {
    let args = ["emit", "--profile", "kaifa-ma304", "--count", "20", "--seed", "5", "--start", "2026-03-29T00:59:00Z"];
    let a = p1sim(&args);
    let b = p1sim(&args);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let c =
        p1sim(&["emit", "--profile", "kaifa-ma304", "--count", "20", "--seed", "6", "--start", "2026-03-29T00:59:00Z"]);
    assert_ne!(a.stdout, c.stdout, "another seed, another household");
}

#[test]
fn the_autumn_change_shows_at_the_right_telegram() {
    // The acceptance command of the household issue: S until 02:59:59 local, then 02:00:00 W.
    let out = p1sim(&["emit", "--profile", "sagemcom-t210d", "--start", "2026-10-25T00:30:00Z", "--duration", "2h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let stamps: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("0-0:1.0.0(")).map(|s| &s[..13]).collect();
    assert_eq!(stamps.len(), 7200);
    let switch = stamps.iter().position(|s| s.ends_with('W')).unwrap();
    assert_eq!(switch, 1800, "01:00:00 UTC is the 1801st telegram after 00:30:00 UTC");
    assert_eq!(stamps[switch - 1], "261025025959S");
    assert_eq!(stamps[switch], "261025020000W");
    assert!(stamps[..switch].iter().all(|s| s.ends_with('S')) && stamps[switch..].iter().all(|s| s.ends_with('W')));
}

#[test]
fn decode_json_has_the_documented_shape() {
    let t = p1sim(&["emit", "--profile", "kamstrup-162", "--count", "1"]);
    let out = p1sim_stdin(&["decode", "--json"], &t.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["crc", "crc_ok", "header", "objects"]);
    assert_eq!(v["header"], "KMP5 KA6U001551500611");
    assert!(v["crc"].is_null() && v["crc_ok"].is_null(), "DSMR 3.0 carries no CRC");
    let gas = v["objects"].as_array().unwrap().iter().find(|o| o["obis"] == "0-1:24.3.0").unwrap();
    assert_eq!(gas["values"].as_array().unwrap().len(), 7, "the two-line record is joined");
    assert_eq!(gas["values"][5], serde_json::json!({"value": "m3", "unit": null}));
    assert!(line.starts_with("{\"header\": \"KMP5 KA6U001551500611\", \"crc\": null, \"crc_ok\": null, \"objects\": [{\"obis\": \"0-0:96.1.1\", \"values\": [{\"value\": \"204B4136"));
}

#[test]
fn decode_exit_codes() {
    let t = p1sim(&["emit", "--profile", "iskra-am550", "--count", "2"]).stdout;
    let mut bad = t.clone();
    let bang = bad.iter().position(|&b| b == b'!').unwrap();
    bad[bang + 1] = if bad[bang + 1] == b'0' { b'1' } else { b'0' };
    let out = p1sim_stdin(&["decode"], &bad);
    assert_eq!(out.status.code(), Some(1), "a bad CRC is exit 1");
    assert!(stderr(&out).contains("telegram 1 is invalid: CRC"), "{}", stderr(&out));
    let out = p1sim_stdin(&["decode"], &t[..t.len() - 100]);
    assert_eq!(out.status.code(), Some(1), "a cut-off telegram is exit 1");
    let out = p1sim(&["decode", "/no/such/file"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot open /no/such/file"), "{}", stderr(&out));
    let out = p1sim_stdin(&["decode", "--valid-only", "--json"], &[bad.clone(), t.clone()].concat());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3, "only the valid telegrams are printed");
}

#[test]
fn profiles_json_lists_all_nineteen_with_the_documented_fields() {
    let out = p1sim(&["profiles", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 19);
    for p in list {
        for key in ["name", "country", "spec", "baud", "framing", "interval_s", "crc", "encrypted"] {
            assert!(p.get(key).is_some(), "{key} missing in {p}");
        }
        assert!(["NL", "BE", "LU", "SE"].contains(&p["country"].as_str().unwrap()));
        assert!(
            ["DSMR 2.2", "DSMR 3.0", "DSMR 4.0", "DSMR 4.2", "DSMR 5.0", "e-MUCS", "SE-HAN", "Smarty"]
                .contains(&p["spec"].as_str().unwrap())
        );
    }
    let kamstrup = list.iter().find(|p| p["name"] == "kamstrup-162").unwrap();
    assert_eq!(
        (kamstrup["baud"].as_u64(), kamstrup["framing"].as_str(), kamstrup["crc"].as_bool()),
        (Some(9600), Some("7E1"), Some(false))
    );
    let lu = list.iter().find(|p| p["name"] == "sagemcom-t210d-lu").unwrap();
    assert_eq!(lu["encrypted"], true);
}

#[test]
fn a_bad_profile_file_is_named_with_line_column_and_key() {
    let path = tmp("bad.toml");
    std::fs::write(&path, "[meter]\ndescription = \"x\"\ncountry = \"NL\"\nspec = \"DSMR 5.0\"\nheader = \"X5\"\nphases = 1\n\n[telegram]\nobjects = [\n  { obis = \"1-0:1.8.1\", format = \"6.x\", unit = \"kWh\" },\n]\n").unwrap();
    let out = p1sim(&["emit", "--profile", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains(&format!("{}:10:", path.display())) && e.contains("key `format`") && e.contains("\"6.x\""),
        "{e}"
    );
}

#[test]
fn smarty_needs_a_key_and_decrypts_with_it() {
    let out = p1sim(&["emit", "--profile", "sagemcom-t210d-lu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--key"), "{}", stderr(&out));
    let key = "000102030405060708090A0B0C0D0E0F";
    let frames = p1sim(&["emit", "--profile", "sagemcom-t210d-lu", "--key", key, "--count", "2"]);
    assert!(frames.status.success());
    assert_eq!(frames.stdout[0], 0xDB);
    let ok = p1sim_stdin(&["decode", "--key", key, "--json"], &frames.stdout);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(String::from_utf8(ok.stdout).unwrap().lines().count(), 2);
    let wrong = p1sim_stdin(&["decode", "--key", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"], &frames.stdout);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("authentication tag mismatch"), "{}", stderr(&wrong));
}

#[test]
fn state_files_continue_the_meter_and_refuse_another() {
    let path = tmp("state.json");
    let _ = std::fs::remove_file(&path);
    let whole = p1sim(&["emit", "-p", "landis-gyr-e360", "-n", "8"]).stdout;
    let mut parts = p1sim(&["emit", "-p", "landis-gyr-e360", "-n", "3", "--state", path.to_str().unwrap()]).stdout;
    parts.extend(p1sim(&["emit", "-p", "landis-gyr-e360", "-n", "5", "--state", path.to_str().unwrap()]).stdout);
    assert_eq!(parts, whole, "a resumed meter continues exactly where it stopped");
    let other = p1sim(&["emit", "-p", "iskra-am550", "--state", path.to_str().unwrap()]);
    assert_eq!(other.status.code(), Some(2));
    assert!(stderr(&other).contains("holds the meter of profile \"landis-gyr-e360\""), "{}", stderr(&other));
}

#[test]
fn unknown_names_get_a_suggestion() {
    let out = p1sim(&["emit", "--profile", "sagemcom-t210"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("did you mean \"sagemcom-t210d\""), "{}", stderr(&out));
    let out = p1sim(&["emit", "--profile", "iskra-am550", "--faults", "noisy-cabel"]);
    assert!(stderr(&out).contains("did you mean \"noisy-cable\""), "{}", stderr(&out));
}

#[test]
fn household_overrides_and_events_change_the_telegrams() {
    let events = tmp("events.toml");
    std::fs::write(&events, "[[events]]\nat = \"2026-01-15T11:00:05Z\"\naction = \"set-load\"\nwatts = 8765\n")
        .unwrap();
    let out = p1sim(&["emit", "-p", "sagemcom-xs210", "-n", "10", "--events", events.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let powers: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("1-0:1.7.0(")).collect();
    assert!(powers[..5].iter().all(|p| *p != "08.765*kW)"));
    assert!(powers[5..].iter().all(|p| *p == "08.765*kW)"), "{powers:?}");
    let bad = p1sim(&["emit", "-p", "sagemcom-xs210", "--household", "solar=4"]);
    assert_eq!(bad.status.code(), Some(2));
}
