//! Interop: every profile's output is accepted by dsmr_parser from PyPI (the decoder behind Home
//! Assistant's DSMR integration) with the specification `p1sim run` tells users to pick, with
//! valid CRCs and the same values p1sim's own decoder reports. Encrypted profiles are decrypted
//! with the key (and the meter's authentication key), tag checked.

mod support;

use std::path::Path;
use std::process::Command;

use p1sim::live::hints;
use p1sim_core::builtin;
use support::{p1sim, python_with, temp_dir};

const KEY: &str = "000102030405060708090A0B0C0D0E0F";

/// A decimal text as (digits, scale), so "004574.398" and "4574.398" compare equal.
fn decimal(text: &str) -> Option<(i128, usize)> {
    let neg = text.starts_with('-');
    let t = text.trim_start_matches('-');
    let (i, f) = t.split_once('.').unwrap_or((t, ""));
    if i.is_empty() && f.is_empty() || !i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let f = f.trim_end_matches('0');
    let v: i128 = format!("{i}{f}").parse().ok()?;
    Some((if neg { -v } else { v }, f.len()))
}

/// The instant of a p1sim TST, read as dsmr_parser reads it: `YYMMDDhhmmssX` with the S/W
/// offset, or a 12-digit DSMR 2.2 TST as Dutch local time. Two-digit years pivot as Python's %y
/// does: 69-99 are 19xx (Iskra's empty channel says 1970).
fn instant_of_tst(tst: &str) -> jiff::Timestamp {
    let n = |r: std::ops::Range<usize>| tst[r].parse::<i16>().unwrap();
    let year = if n(0..2) >= 69 { 1900 + n(0..2) } else { 2000 + n(0..2) };
    let dt =
        jiff::civil::datetime(year, n(2..4) as i8, n(4..6) as i8, n(6..8) as i8, n(8..10) as i8, n(10..12) as i8, 0);
    match tst.as_bytes().get(12) {
        Some(flag) => {
            let offset = jiff::tz::offset(if *flag == b'S' { 2 } else { 1 });
            offset.to_timestamp(dt).unwrap()
        }
        None => p1sim_core::clock::Zone::Amsterdam.tz().to_ambiguous_zoned(dt).compatible().unwrap().timestamp(),
    }
}

fn check_profile(python: &Path, dir: &Path, name: &str) {
    let profile = builtin::get(name).unwrap().unwrap();
    let file = dir.join(format!("{name}.p1"));
    let mut emit = p1sim();
    emit.args(["emit", "--profile", name, "--count", "5", "--seed", "11", "-o"]).arg(&file);
    if profile.is_encrypted() {
        emit.args(["--key", KEY]);
    }
    assert!(emit.status().unwrap().success());
    // Our own decoding of the same bytes is the reference for the comparison.
    let bytes = std::fs::read(&file).unwrap();
    let mut decoder = p1sim_core::decode::Decoder::new();
    if let Some(enc) = &profile.encryption {
        decoder = decoder.with_key(p1sim_core::smarty::parse_key(KEY).unwrap()).with_auth_key(enc.auth_key);
    }
    let mut ours = Vec::new();
    let mut push = |ev: p1sim_core::decode::Event<'_>| {
        if let p1sim_core::decode::Event::Telegram(f) = ev {
            ours.push((f.to_telegram(), f.is_valid()));
        }
    };
    decoder.feed(&bytes, &mut push);
    decoder.finish(&mut push);
    assert_eq!(ours.len(), 5);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dsmr_parser_parse.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(hints::reader(&profile).spec).arg(&file);
    if let Some(enc) = &profile.encryption {
        let auth: String = enc.auth_key.iter().map(|b| format!("{b:02X}")).collect();
        cmd.arg(KEY).arg(auth);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{name}: the dsmr_parser script failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    if !profile.end_marker {
        // What `p1sim run` tells users: dsmr_parser's TelegramBuffer needs the `!` this meter
        // never sends, so it frames nothing at all.
        assert!(theirs.is_empty(), "{name}: dsmr_parser framed {} telegrams without `!`", theirs.len());
        assert!(hints::reader(&profile).unreadable.is_some(), "{name}: the hint must say so");
        return;
    }
    assert_eq!(theirs.len(), 5, "{name}: dsmr_parser framed {} telegrams", theirs.len());
    for (i, (t, (ours, valid))) in theirs.iter().zip(&ours).enumerate() {
        assert!(valid, "{name} #{i}: p1sim's own decoder rejects it");
        assert_eq!(t["ok"], true, "{name} #{i}: dsmr_parser refused the telegram: {}", t["error"]);
        let lines = t["lines"].as_array().unwrap();
        let mut registers = 0;
        for line in lines {
            let obis = line["obis"].as_str().unwrap();
            let mine = ours.line(obis).unwrap_or_else(|| panic!("{name} #{i}: dsmr_parser saw {obis}, p1sim did not"));
            // Energy registers, and a heat meter's reading (the NWA Warmtelink has nothing else).
            if obis.contains(":1.8.") || obis.contains(":2.8.") || obis.contains(":24.2.1") {
                registers += 1;
            }
            let values = line["values"].as_array().unwrap();
            // dsmr_parser drops the header values of profile-generic and M-Bus records in places;
            // compare its values against ours aligned from the end, where the readings are.
            let offset = mine.values.len().saturating_sub(values.len());
            for (k, v) in values.iter().enumerate() {
                let our = &mine.values[offset + k];
                let their = v["value"].as_str().unwrap();
                let ctx = format!("{name} #{i} {obis} value {k}: dsmr_parser {their:?}, p1sim {:?}", our.text);
                match v["type"].as_str().unwrap() {
                    "decimal" | "int" => assert_eq!(decimal(their), decimal(&our.text), "{ctx}"),
                    // dsmr_parser turns the "no data" placeholder timestamp into None.
                    _ if our.text.starts_with("632525252525") => assert_eq!(their, "", "{ctx}"),
                    "datetime" => {
                        let theirs = their.parse::<jiff::Timestamp>().unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        assert_eq!(theirs, instant_of_tst(&our.text), "{ctx}");
                    }
                    _ => assert_eq!(their, our.text, "{ctx}"),
                }
                if let Some(unit) = v["unit"].as_str() {
                    assert_eq!(Some(unit), our.unit.as_deref(), "{ctx}: unit");
                }
            }
        }
        let expected = if profile.objects.iter().any(|o| o.obis.c == 1 && o.obis.d == 8) { 2 } else { 1 };
        assert!(registers >= expected, "{name} #{i}: dsmr_parser found only {registers} energy registers");
    }
}

#[test]
fn every_profile_parses_with_dsmr_parser() {
    let python = python_with("dsmr-parser", "1.11.2");
    let dir = temp_dir("interop-profiles");
    let names: Vec<&str> = builtin::names().collect();
    assert_eq!(names.len(), 26);
    for name in names {
        check_profile(&python, &dir, name);
    }
}
