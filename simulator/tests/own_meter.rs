//! Your own meter: `p1sim profiles learn` reproduces every shipped profile's telegram and every
//! real telegram of the corpus byte for byte, and the learned profile's next `emit` telegram has
//! the capture's shape; a learned profile runs live and dsmr_parser reads it; `run --replay`
//! serves a capture byte for byte over TCP, and with `--retime` moves its clock with valid CRCs;
//! captures become conformance cases in one command; bad captures get clear errors.

mod support;

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use p1sim::capture::{self, ReadOptions};
use p1sim_core::render::Template;
use p1sim_core::telegram::Telegram;
use support::{Running, collect, dsmr_parser_reads_tcp, p1sim, p1sim_fails, temp_dir, wait_bounded};

const KEY: &str = "000102030405060708090A0B0C0D0E0F";

/// The real telegrams p1sim tests against (docs/real-telegrams.md lists their origins).
fn real_telegrams() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("core/tests/data/real-telegrams");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 33);
    files
}

fn run(args: &[&str]) -> String {
    let out = p1sim().args(args).output().unwrap();
    assert!(out.status.success(), "p1sim {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a telegram looks like apart from its values: header, and per line the OBIS code, then
/// per value its width, decimal point and unit.
fn shape(t: &Telegram) -> Vec<String> {
    let mut s = vec![t.header.clone()];
    for l in &t.lines {
        let values: Vec<String> =
            l.values.iter().map(|v| format!("{}:{:?}:{:?}", v.text.len(), v.text.find('.'), v.unit)).collect();
        s.push(format!("{} {}", l.obis, values.join(" ")));
    }
    s
}

/// Learns from `capture`, checks the learned profile against the capture, and returns its path.
fn learn_and_check(capture_path: &Path, dir: &Path, key: Option<&str>) -> PathBuf {
    learn_and_check_with(capture_path, dir, key, None)
}

/// As [`learn_and_check`], for a Smarty meter with its own authentication key (`auth`).
fn learn_and_check_with(capture_path: &Path, dir: &Path, key: Option<&str>, auth: Option<&str>) -> PathBuf {
    let name = capture_path.file_stem().unwrap().to_str().unwrap();
    let toml = dir.join(format!("{name}.toml"));
    let mut args = vec!["profiles", "learn", capture_path.to_str().unwrap(), "-o", toml.to_str().unwrap()];
    if let Some(k) = key {
        args.extend(["--key", k]);
    }
    if let Some(a) = auth {
        args.extend(["--auth-key", a]);
    }
    run(&args);
    // Byte for byte: the learned profile rendered with the captured values is the capture.
    let key_bytes = key.map(|k| p1sim_core::smarty::parse_key(k).unwrap());
    let auth_bytes = auth.map(|k| p1sim_core::smarty::parse_key(k).unwrap());
    let opts = ReadOptions { key: key_bytes, auth_key: auth_bytes, ..ReadOptions::default() };
    let c = capture::read(capture_path, &opts).unwrap();
    let learned = p1sim::learn::learn(&c, name).unwrap();
    let profile = p1sim_core::profile::load::load_file(&toml).unwrap();
    assert_eq!(profile.objects, learned.profile.objects, "{name}: the file is the profile learned");
    let mut bytes = Vec::new();
    Template::compile(&profile).render(&profile, &learned.readings, &mut bytes);
    assert_eq!(String::from_utf8_lossy(&bytes), String::from_utf8_lossy(&c.telegrams[0].bytes), "{name}");
    // The next telegram p1sim emits for it has the capture's shape, line for line.
    let emitted = dir.join(format!("{name}.emitted"));
    let mut args = vec!["emit", "--profile", toml.to_str().unwrap(), "--count", "1", "-o", emitted.to_str().unwrap()];
    if let Some(k) = key {
        args.extend(["--key", k]);
    }
    run(&args);
    // The learned profile carries the meter's own authentication key: emit needs only --key.
    let e = capture::read(&emitted, &opts).unwrap();
    assert_eq!(shape(&e.telegrams[0].model()), shape(&c.telegrams[0].model()), "{name}: the emitted shape");
    toml
}

#[test]
fn learning_reproduces_every_shipped_profiles_telegram() {
    let dir = temp_dir("learn-shipped");
    for p in p1sim_core::builtin::all().unwrap() {
        let capture = dir.join(format!("{}.txt", p.name));
        let key = p.is_encrypted().then_some(KEY);
        let mut args = vec!["emit", "--profile", &p.name, "--count", "1", "-o", capture.to_str().unwrap()];
        if let Some(k) = key {
            args.extend(["--key", k]);
        }
        run(&args);
        // Austrian meters authenticate with a key of their own (the profile's).
        let auth: Option<String> = p
            .encryption
            .as_ref()
            .filter(|e| e.auth_key != p1sim_core::smarty::AUTH_KEY)
            .map(|e| e.auth_key.iter().map(|b| format!("{b:02X}")).collect());
        learn_and_check_with(&capture, &dir, key, auth.as_deref());
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn learning_reproduces_every_real_telegram() {
    let dir = temp_dir("learn-real");
    for file in real_telegrams() {
        learn_and_check(&file, &dir, None);
    }
    // The Iskra MT382 that sends no `!` (node-dsmr-parser's corpus): the learned profile has none.
    let no_end = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/node-dsmr-parser");
    for name in ["iskra-mt-382-no-crc.txt", "iskra-mt-382-no-crc-with-text-message.txt"] {
        let toml = learn_and_check(&no_end.join(name), &dir, None);
        assert!(fs::read_to_string(&toml).unwrap().contains("\nend_marker = false\n"), "{name}");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_learned_profile_runs_live_and_dsmr_parser_reads_it() {
    let dir = temp_dir("learn-live");
    let capture = real_telegrams().into_iter().find(|p| p.to_string_lossy().contains("t210-d-esmr-5-0-nl")).unwrap();
    let toml = learn_and_check(&capture, &dir, None);
    let live = Running::start(&["--profile", toml.to_str().unwrap(), "--tcp", "127.0.0.1:0"]);
    let addr: std::net::SocketAddr = live.field("tcp").parse().unwrap();
    for read in dsmr_parser_reads_tcp(addr, "5", 3) {
        // The meter's real register, counting on from the captured 9774.917 kWh.
        assert!((9774.917..9775.917).contains(&read.tariff1_kwh), "{read:?}");
        assert_eq!(read.equipment, "4530303438303030303238353430383138", "the captured equipment id");
    }
}

/// Three telegrams in a row from a live replay, starting at a telegram boundary.
fn three_from(addr: &str, key: Option<[u8; 16]>) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    // The first telegram may arrive partly (the connection came mid-telegram): take four.
    let (got, _) = collect(&mut s as &mut dyn Read, 4, Duration::from_secs(30), key);
    assert!(got.len() >= 4, "{got:?}");
    got[got.len() - 3..].iter().map(|r| [r.raw.clone(), b"\r\n".to_vec()].concat()).collect()
}

#[test]
fn a_replay_over_tcp_is_the_capture_and_retimed_it_is_live() {
    let dir = temp_dir("replay");
    let capture = dir.join("three.txt");
    run(&[
        "emit",
        "--profile",
        "iskra-am550",
        "--count",
        "3",
        "--start",
        "2026-01-15T12:00:00Z",
        "-o",
        capture.to_str().unwrap(),
    ]);
    let recorded = capture::read(&capture, &ReadOptions::default()).unwrap();
    let originals: Vec<Vec<u8>> = recorded.telegrams.iter().map(|t| t.bytes.clone()).collect();
    // Byte for byte, in a loop: any three in a row are the capture, rotated.
    let live = Running::start(&["--replay", capture.to_str().unwrap(), "--loop", "--tcp", "127.0.0.1:0"]);
    let got = three_from(&live.field("tcp"), None);
    let k = originals
        .iter()
        .position(|o| *o == got[0])
        .unwrap_or_else(|| panic!("not a captured telegram: {:?}", String::from_utf8_lossy(&got[0])));
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g, &originals[(k + i) % 3], "telegram {i}");
    }
    drop(live);
    // Retimed: the clock is the simulated one (now), CRCs still verify, timestamps move on.
    let live = Running::start(&["--replay", capture.to_str().unwrap(), "--loop", "--retime", "--tcp", "127.0.0.1:0"]);
    let got = three_from(&live.field("tcp"), None);
    let stamps: Vec<String> = got
        .iter()
        .map(|g| {
            let (t, valid) = p1sim_core::decode::decode_all(g, None).remove(0);
            assert!(valid, "the recomputed CRC verifies: {}", String::from_utf8_lossy(g));
            t.line("0-0:1.0.0").unwrap().values[0].text.clone()
        })
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    assert!(stamps.iter().all(|s| !s.starts_with("260115")), "moved off the captured day: {stamps:?}");
    // Once, not looped: the run ends by itself after the last telegram.
    let out = Command::new(env!("CARGO_BIN_EXE_p1sim"))
        .args(["run", "--replay", capture.to_str().unwrap(), "--tcp", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = out;
    let status = wait_bounded(&mut out, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

#[test]
fn captures_become_conformance_cases_that_dsmr_parser_runs() {
    let dir = temp_dir("corpus");
    let corpus = dir.join("cases");
    let pick = |part: &str| real_telegrams().into_iter().find(|p| p.to_string_lossy().contains(part)).unwrap();
    for (file, name) in [
        (pick("04-iskra-am550"), "iskra-am550-two-channels"),
        (pick("14-landis-gyr-e350"), "landis-gyr-e350"),
        (pick("11-kamstrup-162"), "kamstrup-162"),
    ] {
        let out = p1sim()
            .args([
                "conformance",
                "corpus",
                "add",
                file.to_str().unwrap(),
                "--name",
                name,
                "--corpus",
                corpus.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            stdout.contains(&format!("== corpus/{name}")),
            "the expectation, as the golden snapshots show it: {stdout}"
        );
        assert!(corpus.join(format!("{name}.txt")).is_file() && corpus.join(format!("{name}.json")).is_file());
    }
    let out = p1sim()
        .args(["conformance", "--corpus", corpus.to_str().unwrap(), "--filter", "corpus/*", "--dut", "dsmr_parser"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let total = stdout.lines().find(|l| l.starts_with("total ")).unwrap();
    assert!(total.contains(" 3/3 ") && total.contains("all passed"), "{stdout}");
    assert!(stdout.contains("corpus                   3/3"), "in their own class: {stdout}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_smarty_meter_with_its_own_authentication_key_is_learned_and_becomes_a_case() {
    const AUTH: &str = "5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A";
    let dir = temp_dir("own-auth-key");
    let capture = dir.join("own-auth.bin");
    let c = capture.to_str().unwrap();
    run(&["emit", "--profile", "sagemcom-t210d-lu", "--key", KEY, "--auth-key", AUTH, "--count", "3", "-o", c]);
    // The published authentication key does not open these frames: the error names --auth-key.
    let (code, stderr) = p1sim_fails(&["profiles", "learn", c, "--key", KEY]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--auth-key"), "{stderr}");
    let (code, stderr) = p1sim_fails(&["profiles", "learn", c, "--auth-key", AUTH]);
    assert_eq!(code, 2, "--auth-key without --key: {stderr}");
    // With it, the learned profile keeps the meter's key and reproduces the capture.
    let toml = learn_and_check_with(&capture, &dir, Some(KEY), Some(AUTH));
    let text = fs::read_to_string(&toml).unwrap();
    assert!(text.contains(&format!("auth_key = \"{AUTH}\"")), "{text}");
    // As a conformance case: the case carries the key, and the reference decoder passes it.
    let corpus = dir.join("cases");
    let corpus_str = corpus.to_str().unwrap();
    let (code, stderr) =
        p1sim_fails(&["conformance", "corpus", "add", c, "--name", "own-auth", "--corpus", corpus_str, "--key", KEY]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--auth-key"), "{stderr}");
    let args = ["conformance", "corpus", "add", c, "--name", "own-auth", "--corpus", corpus_str, "--key", KEY];
    run(&[&args[..], &["--auth-key", AUTH]].concat());
    let json = fs::read_to_string(corpus.join("own-auth.json")).unwrap();
    assert!(json.contains(&format!("\"auth_key\": \"{AUTH}\"")), "{json}");
    let out = p1sim().args(["conformance", "--corpus", corpus_str, "--filter", "corpus/*"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l.starts_with("total ") && l.contains(" 1/1 ")), "{stdout}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn bad_captures_get_clear_errors() {
    let dir = temp_dir("bad-captures");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let real = fs::read(&real_telegrams()[3]).unwrap();
    let logged: String =
        String::from_utf8_lossy(&real).lines().map(|l| format!("2024-03-01 10:00:00 INFO {l}\n")).collect();
    for (file, says) in [
        (write("empty.txt", b""), "the capture is empty"),
        (write("binary.bin", &binary), "binary data"),
        (write("words.txt", b"my meter shows 1234 kWh\n"), "no telegram found"),
        (write("cut.txt", &real[..real.len() / 2]), "cut off or failed their CRC"),
        (write("logged.txt", logged.as_bytes()), "--strip-prefix"),
        (dir.join("missing.txt").to_str().unwrap().to_string(), "cannot read the capture"),
    ] {
        let (code, stderr) = p1sim_fails(&["profiles", "learn", &file]);
        assert_eq!(code, 2, "{file}: {stderr}");
        assert!(stderr.contains(says), "{file}: {stderr}");
    }
    // With the prefix named, the log reads.
    let logged = dir.join("logged.txt");
    run(&[
        "profiles",
        "learn",
        logged.to_str().unwrap(),
        "--strip-prefix",
        r"^\S+ \S+ INFO ",
        "-o",
        dir.join("l.toml").to_str().unwrap(),
    ]);
}

#[test]
fn a_replay_takes_faults_request_and_the_control_api_like_a_live_meter() {
    let dir = temp_dir("replay-control");
    let capture = dir.join("three.txt");
    run(&["emit", "--profile", "iskra-am550", "--count", "3", "-o", capture.to_str().unwrap()]);
    let scenario = dir.join("every-crc.toml");
    fs::write(&scenario, "[[fault]]\nkind = \"lowercase-crc\"\n").unwrap();
    let live = Running::start(&[
        "--replay",
        capture.to_str().unwrap(),
        "--loop",
        "--faults",
        scenario.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
        "--control",
        "127.0.0.1:0",
    ]);
    let control = live.control();
    let mut s = TcpStream::connect(live.field("tcp")).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let (got, _) = collect(&mut s, 3, Duration::from_secs(30), None);
    // The scenario's fault on every recorded telegram: lowercase CRC digits.
    let crc =
        |raw: &[u8]| String::from_utf8_lossy(&raw[raw.iter().rposition(|&b| b == b'!').unwrap() + 1..]).into_owned();
    assert!(got[1..].iter().all(|r| crc(&r.raw).chars().all(|c| !c.is_ascii_uppercase())), "{got:?}");
    // A fault injected through the control API lands on the next recorded telegram.
    let (code, _) = support::http(&control, "POST", "/fault", Some(r#"{"kind": "wrong-crc"}"#));
    assert_eq!(code, 200);
    let (more, _) = collect(&mut s, 3, Duration::from_secs(30), None);
    assert!(more.iter().any(|r| !r.valid), "the injected wrong CRC: {more:?}");
    // Request low: nothing is sent.
    let (code, _) = support::http(&control, "POST", "/request", Some(r#"{"raised": false}"#));
    assert_eq!(code, 200);
    std::thread::sleep(Duration::from_millis(1500));
    let mut drain = [0u8; 65536];
    while s.read(&mut drain).is_ok_and(|n| n > 0) {}
    let (quiet, bytes) = collect(&mut s, 1, Duration::from_secs(2), None);
    assert!(quiet.is_empty() && bytes.is_empty(), "{quiet:?}");
}
