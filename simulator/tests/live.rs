//! `p1sim run` end to end: the real binary with real readers on a pseudo-terminal, TCP sockets
//! and a serial port (a PTY standing in for the hardware), and the control API over HTTP.
//!
//! Nothing here asserts timing: telegrams are checked by content (valid CRC, consecutive
//! timestamps one interval apart), and waits are only upper bounds.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use serialport::SerialPort;
use support::{Received, Running, collect, http, p1sim_fails, temp_dir};

const SMARTY_KEY: &str = "000102030405060708090A0B0C0D0E0F";

fn tcp(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    s
}

/// Seconds of the telegram timestamp `YYMMDDhhmmssX` (local time; fine for differences within a
/// day that crosses no DST change).
fn tst_seconds(r: &Received) -> i64 {
    let v = r.value("0-0:1.0.0").unwrap_or_else(|| panic!("no timestamp in {}", r.text()));
    let n = |i: usize| v[i..i + 2].parse::<i64>().unwrap();
    ((n(4) * 24 + n(6)) * 60 + n(8)) * 60 + n(10)
}

fn assert_consecutive(telegrams: &[Received], interval: i64) {
    for w in telegrams.windows(2) {
        let step = tst_seconds(&w[1]) - tst_seconds(&w[0]);
        assert_eq!(step, interval, "telegrams one interval apart:\n{}\n{}", w[0].text(), w[1].text());
    }
}

#[test]
fn a_reader_on_the_pty_gets_valid_telegrams_at_the_interval() {
    let dir = temp_dir("pty");
    let link = dir.join("meter");
    let run = Running::start(&["--profile", "iskra-am550", "--pty", link.to_str().unwrap()]);
    assert_eq!(std::fs::read_link(&link).unwrap().to_str().unwrap(), run.field("pty"));
    // Open it as a reader would: a serial port at the meter's settings.
    let mut port = serialport::new(link.to_str().unwrap(), 115_200).timeout(Duration::from_millis(200)).open().unwrap();
    let (got, _) = collect(&mut port, 3, Duration::from_secs(20), None);
    assert_eq!(got.len(), 3, "three telegrams in 20 s from a 1 s meter");
    assert!(got.iter().all(|t| t.valid), "{got:?}");
    assert_consecutive(&got, 1);
    // A reader that closes and reopens just gets the next telegram.
    drop(port);
    let mut port = serialport::new(link.to_str().unwrap(), 115_200).timeout(Duration::from_millis(200)).open().unwrap();
    let (again, _) = collect(&mut port, 2, Duration::from_secs(20), None);
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|t| t.valid));
    assert!(tst_seconds(&again[0]) > tst_seconds(&got[2]));
    let mut run = run;
    assert!(run.signal("TERM").success());
    assert!(std::fs::symlink_metadata(&link).is_err(), "the link is removed when the run ends");
}

#[test]
fn a_7e1_meter_is_7_bit_text_on_the_pty_and_parity_garbage_for_an_8n1_reader() {
    let dir = temp_dir("pty-7e1");
    for (as_seen_by, expect_high_bits) in [(None, false), (Some("8N1"), true)] {
        let link = dir.join(format!("meter-{expect_high_bits}"));
        let mut args = vec!["--profile", "kamstrup-162", "--pty", link.to_str().unwrap(), "--speed", "10"];
        if let Some(f) = as_seen_by {
            args.extend(["--as-seen-by", f]);
        }
        let _run = Running::start(&args);
        let mut port =
            serialport::new(link.to_str().unwrap(), 9600).timeout(Duration::from_millis(200)).open().unwrap();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 512];
        // The first telegram is at most 1 s away at 10x speed, and lasts about 0.5 s at 9600.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while bytes.len() < 200 && std::time::Instant::now() < deadline {
            if let Ok(n) = port.read(&mut buf) {
                bytes.extend_from_slice(&buf[..n]);
            }
        }
        assert!(bytes.len() >= 200, "got {} bytes", bytes.len());
        let high = bytes.iter().filter(|b| **b & 0x80 != 0).count();
        if expect_high_bits {
            // '/' (0x2F, five ones) carries its even-parity bit in bit 7.
            assert!(bytes.contains(&0xAF), "{bytes:x?}");
            assert!(high > 0);
            assert!(bytes.iter().all(|b| b.count_ones() % 2 == 0), "every byte has even parity");
        } else {
            assert_eq!(high, 0, "a 7E1 reader sees 7-bit characters");
            assert!(bytes.contains(&b'/'));
        }
    }
}

#[test]
fn a_stalled_tcp_client_misses_whole_telegrams_and_never_slows_the_other() {
    let run = Running::start(&[
        "--profile",
        "iskra-am550",
        "--tcp",
        "0",
        "--control",
        "127.0.0.1:0",
        "--speed",
        "50",
        "--pace",
        "burst",
        "--client-queue",
        "4",
    ]);
    let addr = run.field("tcp");
    let control = run.control();
    // Connects and never reads.
    let _stalled = TcpStream::connect(&addr).unwrap();
    let mut healthy = tcp(&addr);
    let mut received = Vec::new();
    let mut stalled_dropped = 0;
    // 50 telegrams per second: the stalled client's socket buffers fill within seconds.
    for _ in 0..60 {
        let (got, _) = collect(&mut healthy, 50, Duration::from_secs(5), None);
        received.extend(got);
        let (_, status) = http(&control, "GET", "/status", None);
        let clients = status["outputs"][0]["clients"].as_array().cloned().unwrap_or_default();
        assert_eq!(clients.len(), 2, "{status}");
        for c in &clients {
            assert!(c["queued_telegrams"].as_u64().unwrap() <= 4, "bounded queue: {c}");
            assert!(c["queue_high_water"].as_u64().unwrap() <= 4, "bounded queue: {c}");
        }
        let dropped: Vec<u64> = clients.iter().map(|c| c["dropped_telegrams"].as_u64().unwrap()).collect();
        stalled_dropped = dropped.iter().copied().max().unwrap();
        assert!(dropped.iter().filter(|d| **d > 0).count() <= 1, "only the stalled client misses: {status}");
        assert!(dropped.contains(&0), "the healthy client misses nothing: {status}");
        if stalled_dropped >= 20 && received.len() >= 200 {
            break;
        }
    }
    assert!(stalled_dropped >= 20, "the stalled client kept missing telegrams ({stalled_dropped})");
    assert!(received.len() >= 200);
    assert!(received.iter().all(|t| t.valid));
    // Nothing missing or repeated for the client that reads.
    assert_consecutive(&received, 1);
}

/// Appends whatever arrives within `span` (an upper bound for waiting, never a timing check).
fn read_for(r: &mut dyn Read, span: Duration, into: &mut Vec<u8>) {
    let deadline = std::time::Instant::now() + span;
    let mut buf = [0u8; 256];
    while std::time::Instant::now() < deadline {
        if let Ok(n) = r.read(&mut buf) {
            into.extend_from_slice(&buf[..n]);
        }
    }
}

/// Writes a copy of kamstrup-162 at 1200 baud: a telegram lasts seconds, so the test can drop
/// Request in the middle of one without racing it.
fn slow_profile(dir: &std::path::Path) -> std::path::PathBuf {
    let text = p1sim_core::builtin::PROFILES.iter().find(|(n, _)| *n == "kamstrup-162").unwrap().1;
    let text = text.replacen("[meter]\n", "[meter]\nbaud = 1200\n", 1);
    let path = dir.join("kamstrup-162-slow.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_activity_log_shows_telegrams_clients_faults_and_request() {
    let dir = temp_dir("activity");
    let scenario = dir.join("crc.toml");
    std::fs::write(&scenario, "[[fault]]\nkind = \"wrong-crc\"\nwhen = { every = 2 }\n").unwrap();
    let run = Running::start(&[
        "--profile",
        "iskra-am550",
        "--tcp",
        "127.0.0.1:0",
        "--control",
        "127.0.0.1:0",
        "--request-low",
        "--faults",
        scenario.to_str().unwrap(),
        "-v",
    ]);
    // The banner says what the run is doing before it does it.
    let said = |start: &str| run.banner.iter().find(|l| l.trim_start().starts_with(start)).cloned().unwrap_or_default();
    assert!(said("Request:").contains("LOW") && said("Request:").contains("/request"), "{:?}", run.banner);
    assert!(said("faults:").contains("wrong-crc"), "{:?}", run.banner);
    let held = run.output_line("held: Request is low", Duration::from_secs(10));
    assert!(held.is_some_and(|l| l.contains("telegram") && l.contains("bytes to tcp")), "a held telegram is logged");
    let control = run.control();
    let (code, _) = http(&control, "POST", "/request", Some(r#"{"raised": true}"#));
    assert_eq!(code, 200);
    assert!(run.output_line("control: Request raised", Duration::from_secs(5)).is_some());
    let client = tcp(&run.field("tcp"));
    assert!(run.output_line("connected (1 client(s))", Duration::from_secs(5)).is_some());
    let sent = run.output_line("(1 client)", Duration::from_secs(10)).expect("a telegram line naming the client");
    assert!(!sent.contains("held"), "{sent}");
    assert!(run.output_line("faults: wrong-crc", Duration::from_secs(10)).is_some(), "every second telegram");
    let (code, _) = http(&control, "POST", "/load", Some(r#"{"watts": 2500}"#));
    assert_eq!(code, 200);
    assert!(run.output_line("control: household load 2500 W", Duration::from_secs(5)).is_some());
    drop(client);
    assert!(run.output_line("disconnected (0 client(s))", Duration::from_secs(5)).is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_terminal_or_v_the_run_prints_only_its_banner() {
    let run = Running::start(&["--profile", "iskra-am550", "--tcp", "127.0.0.1:0"]);
    let _client = tcp(&run.field("tcp"));
    assert_eq!(run.output_line("telegram", Duration::from_secs(3)), None, "quiet behind a pipe");
}

#[test]
fn dropping_request_stops_mid_telegram_and_raising_it_starts_a_fresh_one() {
    let dir = temp_dir("request");
    let profile = slow_profile(&dir);
    let link = dir.join("meter");
    let run = Running::start(&[
        "--profile",
        profile.to_str().unwrap(),
        "--pty",
        link.to_str().unwrap(),
        "--control",
        "127.0.0.1:0",
        "--speed",
        "2",
    ]);
    let control = run.control();
    let mut port = serialport::new(link.to_str().unwrap(), 1200).timeout(Duration::from_millis(100)).open().unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 256];
    // Wait for a telegram to start (at most one 5 s interval), then let 20 bytes through.
    for _ in 0..200 {
        if let Ok(n) = port.read(&mut buf) {
            bytes.extend_from_slice(&buf[..n]);
        }
        if bytes.iter().position(|&b| b == b'/').is_some_and(|i| bytes.len() - i >= 20) {
            break;
        }
    }
    let start = bytes.iter().position(|&b| b == b'/').expect("a telegram started");
    let (code, _) = http(&control, "POST", "/request", Some(r#"{"raised": false}"#));
    assert_eq!(code, 200);
    // Whatever was on its way arrives; then silence.
    read_for(&mut port, Duration::from_secs(1), &mut bytes);
    let cut = &bytes[start..];
    assert!(!cut.contains(&b'!'), "the telegram was cut before its end: {}", String::from_utf8_lossy(cut));
    let (_, status) = http(&control, "GET", "/status", None);
    assert_eq!(status["outputs"][0]["line"]["cut_by_request"], 1, "{status}");
    assert_eq!(status["request"], false);
    let before = bytes.len();
    read_for(&mut port, Duration::from_secs(2), &mut bytes);
    assert_eq!(bytes.len(), before, "nothing is sent while Request is low");
    let (code, _) = http(&control, "POST", "/request", Some(r#"{"raised": true}"#));
    assert_eq!(code, 200);
    let (got, rest) = collect(&mut port, 1, Duration::from_secs(15), None);
    assert_eq!(got.len(), 1, "a complete telegram after Request rises: {}", String::from_utf8_lossy(&rest));
    assert!(got[0].valid);
    assert!(got[0].raw.starts_with(b"/KMP5"));
}

#[test]
fn state_survives_restarts_and_kill_9_without_counters_going_back() {
    let dir = temp_dir("state");
    let state = dir.join("meter.json");
    let args = [
        "--profile",
        "sagemcom-t210d-lu",
        "--key",
        SMARTY_KEY,
        "--tcp",
        "0",
        "--speed",
        "10",
        "--pace",
        "burst",
        "--state",
        state.to_str().unwrap(),
    ];
    let key = p1sim_core::smarty::parse_key(SMARTY_KEY);
    let mut last: Option<Received> = None;
    for (round, signal) in ["TERM", "KILL", "TERM"].into_iter().enumerate() {
        let mut run = Running::start(&args);
        if round > 0 {
            assert!(run.banner.iter().any(|l| l.contains("resumed from")), "{:?}", run.banner);
        }
        let mut s = tcp(&run.field("tcp"));
        let (got, _) = collect(&mut s, 3, Duration::from_secs(20), key);
        assert_eq!(got.len(), 3, "round {round}");
        assert!(got.iter().all(|t| t.valid));
        let mut all: Vec<Received> = last.iter().cloned().collect();
        all.extend(got.iter().cloned());
        for w in all.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            assert!(tst_seconds(b) > tst_seconds(a), "time goes on");
            for obis in ["1-0:1.8.0", "1-0:2.8.0", "1-0:3.8.0", "1-0:4.8.0"] {
                assert!(b.wh(obis) >= a.wh(obis), "{obis} never goes back:\n{}\n{}", a.text(), b.text());
            }
            assert!(b.frame_counter > a.frame_counter, "frame counters are never reused");
        }
        last = got.last().cloned();
        let status = run.signal(signal);
        if signal == "TERM" {
            assert!(status.success(), "SIGTERM ends the run cleanly: {status:?}\n{}", run.stderr());
        }
    }
    let other = p1sim_fails(&["run", "--profile", "iskra-am550", "--tcp", "0", "--state", state.to_str().unwrap()]);
    assert_eq!(other.0, 2, "{}", other.1);
    assert!(other.1.contains("sagemcom-t210d-lu") && other.1.contains(state.to_str().unwrap()), "{}", other.1);
}

#[test]
fn the_serial_output_works_on_a_pty_slave_and_names_devices_it_cannot_use() {
    let (mut master, slave) = serialport::TTYPort::pair().expect("a pty pair");
    let device = slave.name().unwrap();
    let run = Running::start(&["--profile", "kamstrup-162", "--serial", &device, "--speed", "10"]);
    assert!(run.banner.iter().any(|l| l.contains(&format!("serial: {device}"))), "{:?}", run.banner);
    master.set_timeout(Duration::from_millis(200)).unwrap();
    let (got, _) = collect(&mut master, 2, Duration::from_secs(20), None);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|t| t.valid && t.raw.starts_with(b"/KMP5")));
    drop(run);

    // A PTY has no modem lines, so a Request wired to CTS cannot be read there.
    let (code, err) = p1sim_fails(&["run", "--profile", "kamstrup-162", "--serial", &device, "--request", "cts"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&device) && err.contains("CTS") && err.contains("--request none"), "{err}");
    let (code, err) = p1sim_fails(&["run", "--profile", "iskra-am550", "--serial", "/dev/ttyUSB-p1sim-absent"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/ttyUSB-p1sim-absent") && err.contains("plugged in"), "{err}");
    drop(slave);
}

#[test]
fn the_control_api_changes_what_the_next_telegram_says() {
    let run = Running::start(&["--profile", "iskra-am550", "--tcp", "0", "--control", "127.0.0.1:0", "--speed", "5"]);
    let control = run.control();
    let (code, body) = http(&control, "POST", "/load", Some(r#"{"watts": 4321}"#));
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(&control, "POST", "/message", Some(r#"{"text": "Hello P1"}"#));
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(&control, "POST", "/tariff", Some(r#"{"tariff": 3}"#));
    assert_eq!(code, 400, "{body}");
    let (code, body) = http(&control, "POST", "/load", Some("not json"));
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("watts"), "{body}");
    let mut s = tcp(&run.field("tcp"));
    let (got, _) = collect(&mut s, 3, Duration::from_secs(20), None);
    let t = got.last().expect("telegrams");
    // 4321 W spread over the phases, a little less or more with the meter's own rounding.
    let kw: f64 = t.value("1-0:1.7.0").unwrap().trim_end_matches("*kW").parse().unwrap();
    assert!((4.2..=4.4).contains(&kw), "{}", t.text());
    assert_eq!(t.value("0-0:96.13.0").unwrap(), "48656C6C6F205031", "the message, hex encoded");
    let (code, readings) = http(&control, "GET", "/readings", None);
    assert_eq!(code, 200);
    assert_eq!(readings["overrides"]["load_w"], 4321);
    assert_eq!(readings["readings"]["text_message"], "Hello P1");
    let (code, body) = http(&control, "POST", "/fault", Some(r#"{"kind": "wrong-crc"}"#));
    assert_eq!(code, 200, "{body}");
    let (got, _) = collect(&mut s, 3, Duration::from_secs(20), None);
    assert_eq!(got.iter().filter(|t| !t.valid).count(), 1, "exactly one telegram with the injected fault");
}

#[test]
fn a_four_tariff_meter_takes_tariffs_three_and_four() {
    let run =
        Running::start(&["--profile", "sagemcom-eon-hu", "--tcp", "0", "--control", "127.0.0.1:0", "--speed", "10"]);
    let control = run.control();
    let (code, body) = http(&control, "POST", "/tariff", Some(r#"{"tariff": 4}"#));
    assert_eq!(code, 200, "{body}");
    // 5 kW: 14 Wh a telegram apart, so the register visibly moves.
    let (code, body) = http(&control, "POST", "/load", Some(r#"{"watts": 5000}"#));
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(&control, "POST", "/tariff", Some(r#"{"tariff": 5}"#));
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("tariffs 1 to 4"), "{body}");
    let mut s = tcp(&run.field("tcp"));
    let (got, _) = collect(&mut s, 3, Duration::from_secs(30), None);
    let (first, last) = (got.first().expect("telegrams"), got.last().unwrap());
    assert!(got.iter().all(|t| t.valid && t.value("0-0:96.14.0").as_deref() == Some("0004")), "{}", last.text());
    assert!(last.wh("1-0:1.8.4") > first.wh("1-0:1.8.4"), "tariff 4 books");
    assert_eq!(last.wh("1-0:1.8.3"), first.wh("1-0:1.8.3"));
}

#[test]
fn a_fleet_serves_each_meter_on_its_own_port() {
    // Find three free consecutive ports: p1sim exits with 2 when one is taken; try another base.
    for attempt in 0..20u32 {
        let base = 21_000 + ((std::process::id() * 7 + attempt * 997) % 9_000) as u16;
        let addr = format!("127.0.0.1:{base}");
        let mut child = support::p1sim()
            .args(["run", "--profile", "iskra-am550", "--fleet", "3", "--tcp", &addr, "--speed", "5"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut headers = Vec::new();
        for i in 0..3u16 {
            let Ok(mut s) = connect_retry(&format!("127.0.0.1:{}", base + i)) else { break };
            let (got, _) = collect(&mut s, 1, Duration::from_secs(20), None);
            if let Some(t) = got.first() {
                assert!(t.valid);
                headers.push((t.wh("1-0:1.8.1"), t.value("0-0:96.1.1").unwrap()));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        if headers.len() == 3 {
            // Different seeds, different households: no two meters read the same, and each is a
            // meter of its own to a backend keyed on the equipment id.
            assert_ne!(headers[0].0, headers[1].0);
            assert_ne!(headers[1].0, headers[2].0);
            assert!(headers[0].1 != headers[1].1 && headers[1].1 != headers[2].1 && headers[0].1 != headers[2].1);
            return;
        }
    }
    panic!("no free ports for a fleet of 3");
}

fn connect_retry(addr: &str) -> std::io::Result<TcpStream> {
    let mut last = None;
    for _ in 0..50 {
        match TcpStream::connect(addr) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_millis(200)))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last.unwrap())
}
