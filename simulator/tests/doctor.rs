//! `p1sim doctor` end to end: captures made by the wire model (the path `p1sim emit --through
//! BOARD --receiver SETTING` takes) diagnosed for every failing board and reader setting on a
//! dozen profiles, and the real binary reading them from a file, standard input, a
//! pseudo-terminal and a TCP bridge, and from `p1sim run` as the meter on a PTY.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use p1sim::doctor::cause::Cause;
use p1sim::doctor::{Capture, diagnose};
use p1sim::wire::{Setup, Through};
use p1sim_core::generator::Generator;
use p1sim_core::profile::Profile;
use p1sim_core::spec::{Framing, LineSettings};
use p1sim_core::wire::board::Board;
use p1sim_core::wire::{FaultPlan, ReceiverConfig};
use serde_json::Value;
use support::{Running, p1sim, temp_dir, wait_bounded};

/// Profiles of every line, header style and dialect: DSMR 2.2, 3.0, 4.0, 4.2 and 5.0, e-MUCS,
/// Swedish, Hungarian, Luxembourg's plaintext Smarty, a heat meter and a German 7E1 meter.
const PROFILES: [&str; 14] = [
    "iskra-am550",
    "iskra-mt382",
    "iskra-mt382-no-end-marker",
    "kamstrup-162",
    "kaifa-ma105",
    "kaifa-ma304",
    "landis-gyr-e350",
    "sagemcom-t210d",
    "sagemcom-s211-be",
    "iskra-ie5t-be",
    "kamstrup-omnipower-se",
    "sagemcom-eon-hu",
    "sagemcom-t210d-lu-plaintext",
    "easymeter-q3d",
];

/// The boards the matrix puts between meter and reader: `None` is a working interface (pull-up
/// and one inverter).
const BOARDS: [Option<&str>; 6] = [
    None,
    Some("transistor-inverter"),
    Some("direct-no-inverter"),
    Some("ftdi-not-inverted"),
    Some("double-inverter"),
    Some("direct-no-pullup"),
];

/// Reader settings: right and wrong rates and framings, an inverting input, and both ways a
/// driver hands over characters with framing or parity errors.
const RECEIVERS: [&str; 8] = [
    "115200-8N1",
    "115200-8N1-nul",
    "115200-8N1-inv",
    "9600-7E1",
    "9600-7E1-inv-nul",
    "9600-8N1",
    "115200-7E1-nul",
    "115200-7E1",
];

/// Not the samples the doctor's model is built from: another household, another day.
const SEED: u64 = 7;
const START: i64 = 1_780_000_000;

fn profile(name: &str) -> Profile {
    p1sim_core::builtin::get(name).unwrap().unwrap()
}

fn board(name: &str) -> Board {
    p1sim_core::builtin::board(name).unwrap().unwrap()
}

/// What a reader at `rx` captures of `count` telegrams of `p` through `board`: the bytes `p1sim
/// emit --through BOARD --receiver RX` writes.
fn capture(p: &Profile, board: Option<&Board>, rx: ReceiverConfig, count: usize) -> Vec<u8> {
    let mut g = Generator::new(p.clone(), p.household.clone(), SEED, START, None).unwrap();
    let setup = Setup { line: p.line, plan: FaultPlan::CLEAN, board: board.cloned(), receiver: rx };
    let mut through = Through::new(setup, p.interval_s, Vec::new()).unwrap();
    for _ in 0..count {
        let mut telegram = Vec::new();
        g.next_into(&mut telegram);
        through.write_all(&telegram).unwrap();
    }
    through.finish().unwrap().0
}

/// The causes a meter at `meter` through `board` into a reader `rx` has, from first principles:
/// no pull-up is no signal; an even number of inversions is an inverted signal; then the rate and
/// the framing.
fn expected(meter: LineSettings, board: Option<&Board>, rx: ReceiverConfig) -> Vec<Cause> {
    if board.is_some_and(|b| b.pull_up.is_none()) {
        return vec![Cause::NoSignal];
    }
    let inversions = board.map_or(1, |b| b.inversions) + u8::from(rx.input == p1sim_core::wire::Polarity::Inverted);
    let mut causes = Vec::new();
    if inversions.is_multiple_of(2) {
        causes.push(Cause::Inverted);
    }
    let seven_e1 = |l: LineSettings| l.framing == Framing::SEVEN_E1;
    if meter.baud != rx.line.baud {
        causes.push(Cause::WrongBaud);
    } else if seven_e1(meter) && rx.line.framing == Framing::EIGHT_N1 {
        causes.push(Cause::ParityAsData);
    } else if !seven_e1(meter) && seven_e1(rx.line) && rx.errors == p1sim_core::wire::ErrorChars::Nul {
        causes.push(Cause::WrongFraming);
    }
    if causes.is_empty() {
        causes.push(Cause::Ok);
    }
    causes
}

/// Every failing board and reader combination on fourteen profiles names a cause the fault has
/// first (with two faults, either), and names the other one too; clean captures are `ok` with the
/// meter's own profile guessed.
#[test]
fn every_board_and_reader_combination_gets_its_cause() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for name in PROFILES {
        let p = profile(name);
        for b in BOARDS {
            let board = b.map(board);
            for rx in RECEIVERS {
                let rx: ReceiverConfig = rx.parse().unwrap();
                let bytes = capture(&p, board.as_ref(), rx, 2);
                let want = expected(p.line, board.as_ref(), rx);
                let capture = Capture { bytes, read_as: Some(rx.line), ..Capture::default() };
                let d = diagnose(&capture, None).unwrap();
                let named: Vec<Cause> = d.causes.iter().map(|f| f.cause).collect();
                let case = format!("{name} through {} into {rx}", b.unwrap_or("a working interface"));
                checked += 1;
                if !want.contains(&d.first()) || !want.iter().all(|c| named.contains(c)) {
                    failures.push(format!("{case}: expected {want:?}, got {named:?}"));
                } else if want == [Cause::Ok] && d.meter.profile.as_deref() != Some(name) {
                    failures.push(format!("{case}: ok, but the profile guessed is {:?}", d.meter.profile));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} combinations wrong:\n{}", failures.len(), failures.join("\n"));
}

/// `p1sim doctor ARGS` with `input` on standard input: exit code and the JSON verdict.
fn doctor(args: &[&str], input: &[u8]) -> (i32, Value) {
    let mut child = p1sim().arg("doctor").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor {args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap_or(-1), json)
}

fn first_cause(v: &Value) -> &str {
    v["causes"][0]["cause"].as_str().unwrap()
}

/// The captures the source tests feed: (profile, board, reader, the first cause).
const CASES: [(&str, Option<&str>, &str, &str); 4] = [
    ("iskra-am550", Some("transistor-inverter"), "115200-8N1", "ok"),
    ("iskra-am550", Some("ftdi-not-inverted"), "115200-8N1", "inverted"),
    ("kamstrup-162", None, "115200-8N1", "wrong-baud"),
    ("kamstrup-162", Some("rs232-adapter"), "9600-8N1", "parity-as-data"),
];

fn case_bytes(profile_name: &str, board_name: Option<&str>, rx: &str) -> Vec<u8> {
    capture(&profile(profile_name), board_name.map(board).as_ref(), rx.parse().unwrap(), 2)
}

fn check(v: &Value, code: i32, want: &str, rx: &str, how: &str) {
    assert_eq!(first_cause(v), want, "{how}: {v:#}");
    assert_eq!(code, if want == "ok" { 0 } else { 1 }, "{how}: exit code");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["as"], rx);
    for f in v["causes"].as_array().unwrap() {
        let c = f["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c) && !f["evidence"].as_str().unwrap().is_empty(), "{f}");
        assert!(!f["fix"].as_str().unwrap().is_empty(), "{f}");
    }
}

#[test]
fn captures_from_a_file_and_standard_input() {
    let dir = temp_dir("doctor-file");
    for (p, b, rx, want) in CASES {
        let bytes = case_bytes(p, b, rx);
        let file = dir.join("capture.bin");
        std::fs::write(&file, &bytes).unwrap();
        let (code, v) = doctor(&["--file", file.to_str().unwrap(), "--as", rx, "--json"], b"");
        check(&v, code, want, rx, &format!("--file: {p} {b:?} {rx}"));
        assert_eq!(v["bytes"], bytes.len() as u64);
        let (code, v) = doctor(&["-", "--as", rx, "--json"], &bytes);
        check(&v, code, want, rx, &format!("stdin: {p} {b:?} {rx}"));
    }
    let clean = case_bytes("iskra-am550", None, "115200-8N1");
    std::fs::write(dir.join("clean.bin"), &clean).unwrap();
    let (code, v) = doctor(&["--file", dir.join("clean.bin").to_str().unwrap(), "--json"], b"");
    assert_eq!((code, first_cause(&v)), (0, "ok"));
    assert_eq!((v["telegrams"].as_u64(), v["crc_ok"].as_u64()), (Some(2), Some(2)));
    assert_eq!(v["meter"]["profile"], "iskra-am550");
    assert_eq!(v["meter"]["header"], "ISK5\\2M550T-1012");
    assert_eq!(v["meter"]["spec"], "DSMR 5.0");
    assert_eq!(v["meter"]["interval_s"], 1);
    assert_eq!(v["meter"]["crc_pass_rate"], 1.0);
    // Without --as, the setting is an assumption the report states.
    assert!(v["notes"].to_string().contains("assumed"), "{v}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Empty input, random bytes, DLMS/COSEM HDLC frames, Smarty frames without their key, and bit
/// errors at several rates.
#[test]
fn empty_random_hdlc_encrypted_and_noisy_captures() {
    let (code, v) = doctor(&["-", "--as", "115200-8N1", "--json"], b"");
    assert_eq!((code, first_cause(&v)), (1, "no-signal"), "{v:#}");

    let mut x = 0x9E37_79B9u32;
    let random: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 11) as u8
        })
        .collect();
    let (code, v) = doctor(&["-", "--as", "115200-8N1", "--json"], &random);
    assert_eq!((code, first_cause(&v)), (1, "not-dsmr"), "{v:#}");

    let hdlc: Vec<u8> = (0..5).flat_map(hdlc_push).collect();
    let (code, v) = doctor(&["-", "--as", "2400-8N1", "--json"], &hdlc);
    assert_eq!((code, first_cause(&v)), (1, "not-dsmr"), "{v:#}");
    assert!(v["causes"][0]["evidence"].as_str().unwrap().contains("HDLC"), "{v:#}");

    let key = "000102030405060708090A0B0C0D0E0F";
    let smarty = p1sim().args(["emit", "-p", "sagemcom-t210d-lu", "-n", "2", "--key", key]).output().unwrap().stdout;
    let (code, v) = doctor(&["-", "--as", "115200-8N1", "--json"], &smarty);
    assert_eq!((code, first_cause(&v)), (1, "encrypted"), "{v:#}");
    let (code, v) = doctor(&["-", "--as", "115200-8N1", "--key", key, "--json"], &smarty);
    assert_eq!((code, first_cause(&v)), (0, "ok"), "{v:#}");
    assert_eq!(v["meter"]["profile"], "sagemcom-t210d-lu");

    let dir = temp_dir("doctor-noise");
    for ber in ["1e-5", "1e-4", "1e-3"] {
        let scenario = dir.join("noise.toml");
        std::fs::write(&scenario, format!("[[fault]]\nkind = \"bit-flip\"\nber = {ber}\n")).unwrap();
        let noisy = p1sim()
            .args(["emit", "-p", "iskra-am550", "-n", "20", "--faults", scenario.to_str().unwrap()])
            .output()
            .unwrap()
            .stdout;
        let (code, v) = doctor(&["-", "--as", "115200-8N1", "--json"], &noisy);
        assert_eq!((code, first_cause(&v)), (1, "bit-errors"), "ber {ber}: {v:#}");
        assert!(v["crc_ok"].as_u64() < v["telegrams"].as_u64(), "ber {ber}: {v:#}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A DLMS/COSEM push in an HDLC frame, as HAN meters send them: flag, format type 0xA and
/// length, addresses, control, header check, LLC header, a data-notification, frame check, flag.
fn hdlc_push(n: u8) -> Vec<u8> {
    let info = [0xE6, 0xE7, 0x00, 0x0F, 0x40, 0x00, 0x00, n, 0x00, 0x02, 0x01, 0x06, 0x00, 0x00, 0x04, 0xD2];
    let length = 2 + 3 + 1 + 2 + info.len() + 2;
    let mut body = vec![0xA0 | (length >> 8) as u8, length as u8, 0x41, 0x08, 0x83, 0x13];
    body.extend_from_slice(&p1sim_core::crc::crc16_hdlc(&body).to_le_bytes());
    body.extend_from_slice(&info);
    body.extend_from_slice(&p1sim_core::crc::crc16_hdlc(&body).to_le_bytes());
    [&[0x7E][..], &body, &[0x7E]].concat()
}

/// The same captures through a serial port (a pseudo-terminal standing in for the USB adapter):
/// the doctor opens the device and listens until the burst of bytes has ended.
#[test]
fn captures_from_a_serial_port() {
    use serialport::SerialPort;
    for (p, b, rx, want) in CASES {
        let bytes = case_bytes(p, b, rx);
        let (mut master, slave) = serialport::TTYPort::pair().expect("a pty pair");
        let device = slave.name().unwrap();
        let mut child = p1sim()
            .args(["doctor", &device, "--as", rx, "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The doctor starts listening, then the meter's burst arrives.
        std::thread::sleep(Duration::from_millis(800));
        master.write_all(&bytes).unwrap();
        master.flush().unwrap();
        let status = wait_bounded(&mut child, Duration::from_secs(30));
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        check(&v, status.code().unwrap_or(-1), want, rx, &format!("serial: {p} {b:?} {rx}"));
        drop(slave);
        let _ = master.clear(serialport::ClearBuffer::All);
    }
}

/// The same captures through a TCP serial bridge (ser2net, an ESP) that hangs up afterwards.
#[test]
fn captures_from_a_tcp_bridge() {
    for (p, b, rx, want) in CASES {
        let bytes = case_bytes(p, b, rx);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let bridge = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            s.write_all(&bytes).unwrap();
        });
        let (code, v) = doctor(&[&format!("tcp://{addr}"), "--as", rx, "--json"], b"");
        bridge.join().unwrap();
        check(&v, code, want, rx, &format!("tcp: {p} {b:?} {rx}"));
    }
}

/// Sources that cannot be opened exit with 2 and say why and what to do.
#[test]
fn sources_that_cannot_be_opened_exit_with_2() {
    let (code, err) = support::p1sim_fails(&["doctor", "--file", "/nonexistent/capture.bin"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/capture.bin"), "{err}");
    let (code, err) = support::p1sim_fails(&["doctor", "/dev/ttyUSB-p1sim-absent"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/ttyUSB-p1sim-absent") && err.contains("plugged in"), "{err}");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (code, err) = support::p1sim_fails(&["doctor", &format!("tcp://{closed}")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot connect") && err.contains("ser2net"), "{err}");
    // A pseudo-terminal has no modem lines to raise as Request.
    let (_master, slave) = serialport::TTYPort::pair().expect("a pty pair");
    let device = serialport::SerialPort::name(&slave).unwrap();
    let (code, err) = support::p1sim_fails(&["doctor", &device, "--request", "rts", "--as", "115200-8N1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--request dtr"), "{err}");
    let (code, err) = support::p1sim_fails(&["doctor", "-", "--request", "rts"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--request"), "{err}");
}

/// `p1sim run` as the meter on a PTY, and the doctor on the PTY's path, probing from 115200 8N1:
/// the live line is ok, with the meter's profile.
#[test]
fn a_live_meter_on_a_pty_is_ok() {
    let dir = temp_dir("doctor-live");
    let link = dir.join("p1");
    let run = Running::start(&["--profile", "iskra-am550", "--pty", link.to_str().unwrap()]);
    let mut child = p1sim()
        .args(["doctor", link.to_str().unwrap(), "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    drop(run);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!((status.code(), first_cause(&v)), (Some(0), "ok"), "{v:#}");
    assert_eq!(v["as"], "115200-8N1");
    assert_eq!(v["meter"]["profile"], "iskra-am550");
    assert!(v["crc_ok"].as_u64().unwrap() >= 1, "{v:#}");

    // A DSMR 3 meter as an 8N1 reader sees it (10 times faster, so each setting waits 1 s): the
    // doctor finds parity in bit 7 at 115200 8N1, tries 9600 7E1, and finds the line ok there.
    let link = dir.join("p1-7e1");
    let run = Running::start(&[
        "--profile",
        "kamstrup-162",
        "--pty",
        link.to_str().unwrap(),
        "--as-seen-by",
        "8N1",
        "--speed",
        "10",
    ]);
    let out = p1sim().args(["doctor", link.to_str().unwrap(), "--json"]).stdin(Stdio::null()).output().unwrap();
    drop(run);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((out.status.code(), first_cause(&v), v["as"].as_str()), (Some(0), "ok", Some("9600-7E1")), "{v:#}");
    assert!(v["notes"].to_string().contains("115200-8N1: parity-as-data; 9600-7E1: ok"), "{v:#}");
    assert_eq!(v["meter"]["profile"], "kamstrup-162");
    std::fs::remove_dir_all(&dir).unwrap();
}
