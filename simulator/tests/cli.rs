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
fn decode_fails_when_nothing_valid_was_decoded() {
    // A check in a script: `p1sim decode capture && echo OK` must not say OK for these.
    let empty = p1sim_stdin(&["decode"], b"");
    assert_eq!(empty.status.code(), Some(1), "{}", stderr(&empty));
    assert!(
        stderr(&empty).contains("0 valid telegram(s)") && stderr(&empty).contains("was empty"),
        "{}",
        stderr(&empty)
    );
    // A DSMR 5 meter read at 9600 baud: what a UART at the wrong rate delivers is noise.
    let emitted = p1sim(&["emit", "--profile", "iskra-am550", "--count", "2"]);
    let wrong_baud = p1sim(&[
        "emit",
        "--profile",
        "iskra-am550",
        "--count",
        "2",
        "--through",
        "ftdi-inverted",
        "--receiver",
        "9600-8N1",
    ]);
    assert!(!wrong_baud.stdout.is_empty(), "{}", stderr(&wrong_baud));
    let decoded = p1sim_stdin(&["decode"], &wrong_baud.stdout);
    assert_eq!(decoded.status.code(), Some(1), "{}", stderr(&decoded));
    assert!(stderr(&decoded).contains("no valid telegram in standard input"), "{}", stderr(&decoded));
    assert!(stderr(&decoded).contains("p1sim doctor - --as"), "{}", stderr(&decoded));
    // Valid telegrams: exit 0 and a summary that counts them.
    let decoded = p1sim_stdin(&["decode"], &emitted.stdout);
    assert_eq!(decoded.status.code(), Some(0), "{}", stderr(&decoded));
    assert!(stderr(&decoded).contains("2 valid telegram(s), 0 invalid, 0 byte(s) skipped"), "{}", stderr(&decoded));
}

#[test]
fn inputs_as_users_write_them_are_taken_or_refused_by_name() {
    // A key for a meter that encrypts nothing is refused, not ignored.
    let out = p1sim(&["emit", "-p", "iskra-am550", "--count", "1", "--key", "000102030405060708090A0B0C0D0E0F"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--key: profile iskra-am550 sends no encrypted frames"), "{}", stderr(&out));
    // A date alone is the meter's local midnight.
    let out = p1sim(&["emit", "-p", "iskra-am550", "--count", "1", "--start", "2026-01-15"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0-0:1.0.0(260115000000W)"));
    // A household value of the wrong kind names the key and the form it takes.
    let out = p1sim(&["emit", "-p", "iskra-am550", "--count", "1", "--household", "solar_kwp=lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("solar_kwp=lots: expected a number (kWp of panels), e.g. solar_kwp=4.5"),
        "{}",
        stderr(&out)
    );
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
fn profiles_json_lists_every_profile_with_the_documented_fields() {
    let out = p1sim(&["profiles", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 26);
    for p in list {
        for key in [
            "name",
            "country",
            "spec",
            "baud",
            "framing",
            "interval_s",
            "crc",
            "encrypted",
            "dsmr_parser",
            "home_assistant",
        ] {
            assert!(p.get(key).is_some(), "{key} missing in {p}");
        }
        assert!(["NL", "BE", "LU", "SE", "DE", "HU", "AT"].contains(&p["country"].as_str().unwrap()));
    }
    // One profile for each dialect Home Assistant's DSMR integration (dsmr_parser) reads.
    for spec in
        ["V2_2", "V3", "V4", "V5", "BELGIUM_FLUVIUS", "SWEDEN", "MSN", "LUXEMBOURG_SMARTY", "Q3D", "EON_HUNGARY"]
            .into_iter()
            .chain(["SAGEMCOM_T210_D_R", "ISKRA_IE"])
    {
        assert!(list.iter().any(|p| p["dsmr_parser"]["spec"] == spec), "no profile for {spec}");
    }
    let heat = list.iter().find(|p| p["name"] == "nwa-warmtelink").unwrap();
    assert_eq!(heat["dsmr_parser"]["version"], "5");
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

/// One JSON object per line of `decode --json` output.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/node-dsmr-parser").join(name)
}

#[test]
fn decode_reads_node_dsmr_parsers_mt382_telegrams_without_end_marker() {
    let files = ["iskra-mt-382-no-crc.txt", "iskra-mt-382-no-crc-with-text-message.txt"];
    for f in files {
        let path = corpus(f);
        let out = p1sim(&["decode", "--json", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{f}: {}", stderr(&out));
        let t = json_lines(&out);
        assert_eq!(t.len(), 1, "{f}");
        assert_eq!(t[0]["header"], "ISk5\\2MT382-1003");
        assert_eq!(t[0]["objects"].as_array().unwrap().len(), 16, "{f}");
        assert_eq!(t[0]["end"], "end-of-input", "{f}");
        assert_eq!(t[0]["crc"], serde_json::Value::Null);
    }
    // Back to back, the second telegram's `/` ends the first; the text message's `/` does not.
    let both: Vec<u8> = files.iter().rev().flat_map(|f| std::fs::read(corpus(f)).unwrap()).collect();
    let out = p1sim_stdin(&["decode", "--json"], &both);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = json_lines(&out);
    assert_eq!(t.iter().map(|t| t["end"].as_str().unwrap()).collect::<Vec<_>>(), ["next-header", "end-of-input"]);
    let text = t[0]["objects"].as_array().unwrap().iter().find(|o| o["obis"] == "0-0:96.13.0").unwrap();
    assert_eq!(text["values"][0]["value"], "test-/-test");
    // Cut mid-line, it is not a telegram.
    let cut = &both[..both.len() / 2 - 7];
    let out = p1sim_stdin(&["decode", "--json"], cut);
    assert_eq!(out.status.code(), Some(1));
    assert!(json_lines(&out).is_empty());
    assert!(stderr(&out).contains("incomplete"), "{}", stderr(&out));
}

#[test]
fn a_meter_without_end_marker_is_emitted_and_decoded() {
    let out = p1sim(&["emit", "--profile", "iskra-mt382-no-end-marker", "--count", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.contains(&b'!'), "no end marker at all");
    let decoded = p1sim_stdin(&["decode", "--json"], &out.stdout);
    assert_eq!(decoded.status.code(), Some(0), "{}", stderr(&decoded));
    let ends: Vec<String> = json_lines(&decoded).iter().map(|t| t["end"].as_str().unwrap().to_string()).collect();
    assert_eq!(ends, ["next-header", "next-header", "end-of-input"]);
}

#[test]
fn decode_ends_a_telegram_without_end_marker_after_a_silence() {
    let telegram = std::fs::read(corpus("iskra-mt-382-no-crc.txt")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_p1sim"))
        .args(["decode", "--json", "--silence", "200"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    stdin.write_all(&telegram).unwrap();
    stdin.flush().unwrap();
    // The input stays open: only the pause can end the telegram.
    let line = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("a telegram after the silence");
    let t: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(t["end"], "silence");
    assert_eq!(t["objects"].as_array().unwrap().len(), 16);
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_smarty_meter_with_its_own_authentication_key() {
    let key = "000102030405060708090A0B0C0D0E0F";
    let auth = "5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A";
    let frames = p1sim(&["emit", "--profile", "sagemcom-t210d-lu", "--key", key, "--auth-key", auth, "--count", "2"]);
    assert!(frames.status.success(), "{}", stderr(&frames));
    let published = p1sim_stdin(&["decode", "--key", key], &frames.stdout);
    assert_eq!(published.status.code(), Some(1), "the published key does not authenticate these frames");
    assert!(stderr(&published).contains("--auth-key"), "{}", stderr(&published));
    let own = p1sim_stdin(&["decode", "--key", key, "--auth-key", auth, "--json"], &frames.stdout);
    assert_eq!(own.status.code(), Some(0), "{}", stderr(&own));
    assert!(json_lines(&own).iter().all(|t| t["tag"] == "verified" && t["crc_ok"] == true));
    assert_eq!(json_lines(&own).len(), 2);
    let unchecked = p1sim_stdin(&["decode", "--key", key, "--no-tag-check", "--json"], &frames.stdout);
    assert_eq!(unchecked.status.code(), Some(0), "{}", stderr(&unchecked));
    let t = json_lines(&unchecked);
    assert_eq!(t.len(), 2);
    assert!(t.iter().all(|t| t["tag"] == "unchecked"), "the output says the tag was not checked");
    // Without the tag only the CRC vouches for the key: another key gives no telegram.
    let wrong = p1sim_stdin(
        &["decode", "--key", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "--no-tag-check", "--json"],
        &frames.stdout,
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(json_lines(&wrong).is_empty());
    let bad = p1sim(&["emit", "--profile", "iskra-am550", "--auth-key", auth]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("sends no encrypted frames"), "{}", stderr(&bad));
}

#[test]
fn an_austrian_meter_needs_its_authentication_key() {
    let key = "000102030405060708090A0B0C0D0E0F";
    let frames = p1sim(&["emit", "--profile", "sagemcom-t210d-r-at", "--key", key, "--count", "2"]);
    assert!(frames.status.success(), "{}", stderr(&frames));
    assert_eq!(frames.stdout.len(), 2 * 511, "two frames of 511 bytes, as the real meter sends");
    let own = p1sim_stdin(&["decode", "--key", key, "--auth-key", &"BB".repeat(16), "--json"], &frames.stdout);
    assert_eq!(own.status.code(), Some(0), "{}", stderr(&own));
    let t = json_lines(&own);
    let wh = t[0]["objects"].as_array().unwrap().iter().find(|o| o["obis"] == "1-0:1.8.0").unwrap();
    assert_eq!(wh["values"][0]["unit"], "Wh");
}

#[test]
fn plaintext_smarty_is_what_a_decrypting_proxy_passes_on() {
    let plain = p1sim(&["emit", "--profile", "sagemcom-t210d-lu", "--plaintext", "--count", "2"]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert!(plain.stdout.starts_with(b"/Lux5"), "no key needed, no frame");
    let variant = p1sim(&["emit", "--profile", "sagemcom-t210d-lu-plaintext", "--count", "2"]);
    assert_eq!(variant.stdout, plain.stdout, "the shipped variant is the same meter");
    let decoded = p1sim_stdin(&["decode", "--json"], &plain.stdout);
    assert_eq!(decoded.status.code(), Some(0), "{}", stderr(&decoded));
}

fn equipment_id(out: &Output, obis: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.starts_with(obis)).unwrap_or_else(|| panic!("no {obis} in {text}"));
    line[obis.len() + 1..line.len() - 1].to_string()
}

#[test]
fn every_seed_is_a_meter_of_its_own() {
    for (profile, obis) in
        [("iskra-am550", "0-0:96.1.1"), ("sagemcom-t211-be", "0-0:96.1.1"), ("easymeter-q3d", "1-0:0.0.0*255")]
    {
        let ids: Vec<String> = (1..=3)
            .map(|seed| equipment_id(&p1sim(&["emit", "-p", profile, "--seed", &seed.to_string()]), obis))
            .collect();
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{profile}: {ids:?}");
        assert!(ids.iter().all(|i| i.len() == ids[0].len()), "{profile}: the format stays: {ids:?}");
    }
    // A profile's own ids are seed 0's.
    assert_eq!(
        equipment_id(&p1sim(&["emit", "-p", "iskra-am550", "--seed", "0"]), "0-0:96.1.1"),
        "4530303434303037333832323436303139"
    );
    let fixed = p1sim(&["emit", "-p", "iskra-am550", "--seed", "9", "--household", "equipment_id=E0044000000000119"]);
    assert_eq!(equipment_id(&fixed, "0-0:96.1.1"), "4530303434303030303030303030313139");
}

#[test]
fn a_state_file_from_before_derived_ids_keeps_its_ids() {
    let path = tmp("old-state.json");
    let _ = std::fs::remove_file(&path);
    let first = p1sim(&["emit", "-p", "iskra-am550", "--seed", "4", "-n", "1", "--state", path.to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    // What p1sim wrote before meters had their own ids: version 1, two tariff registers, no ids.
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let m = state.as_object_mut().unwrap();
    assert_eq!(m["version"], 2);
    for key in ["identity", "q_tariff", "q_quadrant", "billing", "peaks"] {
        m.remove(key);
    }
    m.insert("version".into(), 1.into());
    for key in ["import_j", "export_j"] {
        let two: Vec<serde_json::Value> = m[key].as_array().unwrap()[..2].to_vec();
        m.insert(key.into(), two.into());
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    let resumed = p1sim(&["emit", "-p", "iskra-am550", "--seed", "4", "-n", "1", "--state", path.to_str().unwrap()]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(
        equipment_id(&resumed, "0-0:96.1.1"),
        "4530303434303037333832323436303139",
        "the profile's id, as before"
    );
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved["version"], 2);
    assert_eq!(saved["identity"]["objects"][0][1], "E0044007382246019", "the id is kept from now on");
}
