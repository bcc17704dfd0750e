//! The rig client and the `run --rig` output against the simulated rig of [`super::fake`]: the
//! handshake and its failures, chunking, events, a malformed frame, and reconnection.
//!
//! Waits are for events, with generous limits that only a hang reaches; nothing here measures
//! time.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use p1sim_core::rig::{ErrorCode, FaultPlan, MAX_CHUNK, MeasureRequest, PROTOCOL_VERSION, Quantity, RequestMode};
use p1sim_core::spec::{Framing, LineSettings};
use p1sim_core::wire::{self, BitFault, BitSpan, Symbol};

use super::client::{Rig, RigEvent, Settings, protocol_plan};
use super::fake::{Behaviour, FakeRig};
use super::output::{RigOutput, RigPlan};
use crate::live::pacer::{Msg, Outgoing};

const LIMIT: Duration = Duration::from_secs(10);

fn settings() -> Settings {
    let mut s = Settings::p1(LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 });
    // Reconnection attempts come quickly so the test does not sit idle; nothing depends on it.
    s.retry = Duration::from_millis(20);
    s
}

/// The first event `pick` accepts, skipping others; panics after [`LIMIT`].
fn wait_for<T>(rx: &Receiver<RigEvent>, what: &str, mut pick: impl FnMut(&RigEvent) -> Option<T>) -> T {
    let end = Instant::now() + LIMIT;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) => {
                if let Some(v) = pick(&e) {
                    return v;
                }
            }
            Err(_) => panic!("no {what} event"),
        }
    }
}

fn telegram(n: usize) -> Arc<[u8]> {
    (0..n).map(|i| b'0' + (i % 64) as u8).collect::<Vec<u8>>().into()
}

#[test]
fn hello_checks_the_rig_and_configures_it() {
    let fake = FakeRig::new(Behaviour::default());
    let s = settings();
    let (rig, _events) = Rig::connect(fake.connector("/dev/rig-test"), s).unwrap();
    let info = rig.info();
    assert_eq!(info.firmware, "0.1.0-fake");
    assert_eq!(info.protocol, PROTOCOL_VERSION);
    assert_eq!(info.status.line, s.line, "the status after configuring");
    assert_eq!(info.capability_names(), ["send", "capture", "request", "open-drain"]);
    fake.seen(|seen| {
        assert_eq!(seen.hellos, 1);
        assert_eq!(seen.lines, [s.line]);
        assert_eq!(seen.modes, [RequestMode::Honour]);
        assert_eq!(seen.captures, [s.capture]);
        assert_eq!(seen.refused, 0, "the leading zero is an empty frame, not an error");
    });
}

#[test]
fn another_protocol_version_names_both_and_how_to_reflash() {
    let fake = FakeRig::new(Behaviour { protocol: PROTOCOL_VERSION + 1, ..Behaviour::default() });
    let err = Rig::connect(fake.connector("/dev/rig-new"), settings()).unwrap_err().to_string();
    assert!(err.contains(&format!("protocol version {}", PROTOCOL_VERSION + 1)), "{err}");
    assert!(err.contains(&format!("speaks versions 1 to {PROTOCOL_VERSION}")), "{err}");
    assert!(
        err.contains("update p1sim") && err.contains("cargo xtask firmware") && err.contains("p1sim-rig.uf2"),
        "{err}"
    );
    assert!(err.contains("/dev/rig-new"), "{err}");
}

#[test]
fn a_version_1_firmware_works_for_everything_but_measurements() {
    let fake = FakeRig::new(Behaviour { protocol: 1, loopback: true, ..Behaviour::default() });
    let (rig, events) = Rig::connect(fake.connector("/dev/rig-old"), settings()).unwrap();
    assert_eq!(rig.info().protocol, 1);
    let t = telegram(700);
    let id = rig.send(Arc::clone(&t), FaultPlan::default());
    wait_for(&events, "SendComplete", |e| matches!(e, RigEvent::SendComplete { id: i, .. } if *i == id).then_some(()));
    let err = rig.measure(MeasureRequest { supply_window_ms: 100 }).unwrap_err().to_string();
    assert!(err.contains("rig protocol 1") && err.contains("no electrical measurements"), "{err}");
    assert!(err.contains("cargo xtask firmware") && err.contains("everything else works"), "{err}");
    fake.seen(|s| assert_eq!(s.measures, 0, "nothing was asked of it"));
}

#[test]
fn a_twin_answers_measurements_over_the_protocol() {
    let board = p1sim_core::wire::board::Board::named("transistor-inverter-bc847").unwrap();
    let fake = FakeRig::new(Behaviour { board: Some(board), ..Behaviour::default() });
    let (rig, events) = Rig::connect(fake.connector("/dev/rig"), settings()).unwrap();
    assert!(rig.info().capability_names().contains(&"sense-line"));
    rig.measure(MeasureRequest { supply_window_ms: 100 }).unwrap();
    let m = wait_for(&events, "Measured", |e| match e {
        RigEvent::Measured(m) => Some(m.clone()),
        _ => None,
    });
    assert_eq!(m.circuit, p1sim_core::rig::sense::RIG_CIRCUIT);
    // The BC847's base holds the released line at 0.75 V.
    let open = m.get(Quantity::LineOpen).and_then(|r| r.value).unwrap();
    assert!((open - 750).abs() <= 2, "{open}");
    assert_eq!(m.get(Quantity::SupplyAverage).and_then(|r| r.value), Some(1_100));
    // A rig without sensors says so before asking.
    let plain = FakeRig::new(Behaviour::default());
    let (rig, _) = Rig::connect(plain.connector("/dev/plain"), settings()).unwrap();
    assert!(rig.measure(MeasureRequest { supply_window_ms: 1 }).unwrap_err().to_string().contains("no sensors"));
}

#[test]
fn a_silent_device_is_not_taken_for_a_rig() {
    let fake = FakeRig::new(Behaviour { silent: true, ..Behaviour::default() });
    let mut s = settings();
    s.answer_timeout = Duration::from_millis(200);
    let err = Rig::connect(fake.connector("/dev/ttyUSB7"), s).unwrap_err().to_string();
    assert!(err.contains("/dev/ttyUSB7") && err.contains("is it a p1sim rig"), "{err}");
}

#[test]
fn refused_settings_are_an_error_at_once() {
    let fake = FakeRig::new(Behaviour::default());
    let mut s = settings();
    s.line.baud = 10;
    let err = Rig::connect(fake.connector("/dev/rig"), s).unwrap_err().to_string();
    assert!(err.contains("refused the settings") && err.contains("baud rate"), "{err}");
}

#[test]
fn telegrams_go_in_chunks_with_the_plan_on_the_first() {
    let fake = FakeRig::new(Behaviour { loopback: true, ..Behaviour::default() });
    let (rig, events) = Rig::connect(fake.connector("/dev/rig"), settings()).unwrap();
    let t = telegram(2 * MAX_CHUNK + 276);
    let wire_plan = wire::FaultPlan {
        faults: vec![BitFault::Flip { char: 3, bit: 9 }, BitFault::Break { after: 900, length: BitSpan::bits(20) }],
        skew_ppm: 20_000,
        gap: BitSpan(64),
    };
    let plan = protocol_plan(&wire_plan).unwrap();
    let id = rig.send(Arc::clone(&t), plan.clone());
    // The simulated board passes the telegram through: capture events carry it back.
    let mut captured = Vec::new();
    let bytes = wait_for(&events, "SendComplete", |e| match e {
        RigEvent::SendComplete { id: i, bytes } if *i == id => Some(*bytes),
        RigEvent::Captured(c) => {
            captured.extend(c.iter().map(|c| c.byte));
            None
        }
        _ => None,
    });
    assert_eq!(bytes as usize, t.len());
    assert_eq!(captured, t.to_vec());
    fake.seen(|seen| {
        let shape: Vec<_> = seen.chunks.iter().map(|c| (c.offset, c.len, c.last)).collect();
        assert_eq!(shape, [(0, MAX_CHUNK, false), (512, MAX_CHUNK, false), (1024, 276, true)]);
        assert_eq!(seen.chunks[0].plan, plan);
        assert!(seen.chunks[1..].iter().all(|c| c.plan == FaultPlan::default()));
        assert_eq!(seen.telegrams, [(id, t.to_vec())]);
    });
}

#[test]
fn an_empty_telegram_is_one_last_chunk() {
    let fake = FakeRig::new(Behaviour::default());
    let (rig, events) = Rig::connect(fake.connector("/dev/rig"), settings()).unwrap();
    let id = rig.send(Arc::from(&b""[..]), FaultPlan::default());
    wait_for(&events, "SendComplete", |e| {
        matches!(e, RigEvent::SendComplete { id: i, bytes: 0 } if *i == id).then_some(())
    });
    fake.seen(|seen| assert_eq!(seen.chunks.iter().map(|c| (c.len, c.last)).collect::<Vec<_>>(), [(0, true)]));
}

#[test]
fn a_malformed_frame_is_reported_and_reading_goes_on() {
    let fake = FakeRig::new(Behaviour::default());
    let (_rig, events) = Rig::connect(fake.connector("/dev/rig"), settings()).unwrap();
    fake.send_raw(&[0x05, 0x12, 0x34, 0x56, 0x78, 0x00]);
    let what = wait_for(&events, "Malformed", |e| match e {
        RigEvent::Malformed(m) => Some(m.clone()),
        _ => None,
    });
    assert!(what.contains("CRC") || what.contains("COBS") || what.contains("message"), "{what}");
    fake.set_request(false);
    let high = wait_for(&events, "Request", |e| match *e {
        RigEvent::Request { high, .. } => Some(high),
        _ => None,
    });
    assert!(!high);
    fake.send_message(&p1sim_core::rig::DeviceMsg::Error { code: ErrorCode::Sequence, arg: 512 });
    wait_for(&events, "DeviceError", |e| {
        matches!(e, RigEvent::DeviceError { code: ErrorCode::Sequence, arg: 512 }).then_some(())
    });
}

#[test]
fn an_unplugged_rig_is_found_again_and_configured() {
    let fake = FakeRig::new(Behaviour::default());
    let (rig, events) = Rig::connect(fake.connector("/dev/rig"), settings()).unwrap();
    fake.unplug();
    wait_for(&events, "Disconnected", |e| matches!(e, RigEvent::Disconnected(_)).then_some(()));
    // Handed over while the rig is away: reported, not lost silently.
    let id = rig.send(telegram(10), FaultPlan::default());
    wait_for(&events, "Unsent", |e| matches!(e, RigEvent::Unsent { id: i } if *i == id).then_some(()));
    fake.plug();
    let info = wait_for(&events, "Reconnected", |e| match e {
        RigEvent::Reconnected(i) => Some(i.clone()),
        _ => None,
    });
    assert_eq!(info.firmware, "0.1.0-fake");
    fake.seen(|seen| {
        assert_eq!(seen.hellos, 2);
        assert_eq!(seen.lines.len(), 2, "the line is configured again");
        assert_eq!(seen.captures.len(), 2, "and the capture");
    });
    let id = rig.send(telegram(700), FaultPlan::default());
    wait_for(&events, "SendComplete", |e| matches!(e, RigEvent::SendComplete { id: i, .. } if *i == id).then_some(()));
}

#[test]
fn plans_beyond_the_protocols_limit_are_refused() {
    let faults =
        (0..17).map(|c| BitFault::Glitch { char: c, at: BitSpan(10), width: BitSpan(64), level: Symbol::Mark });
    let plan = wire::FaultPlan { faults: faults.collect(), skew_ppm: 0, gap: BitSpan::ZERO };
    let err = protocol_plan(&plan).unwrap_err().to_string();
    assert!(err.contains("at most 16") && err.contains("17"), "{err}");
}

/// A telegram of the live meter, due now.
fn outgoing(seq: u64, bytes: Arc<[u8]>) -> Arc<Outgoing> {
    Arc::new(Outgoing { meter: 0, seq, at: 1_767_225_600 + seq as i64, due: Instant::now(), bytes })
}

/// Waits until `check` holds on what the simulated rig has seen; panics after [`LIMIT`].
fn until(fake: &FakeRig, what: &str, check: impl Fn(&super::fake::Seen) -> bool) {
    let end = Instant::now() + LIMIT;
    while !fake.seen(&check) {
        assert!(Instant::now() < end, "the simulated rig never saw {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_run_output_follows_request_and_captures_the_board() {
    let fake = FakeRig::new(Behaviour { loopback: true, ..Behaviour::default() });
    let dir = std::env::temp_dir().join(format!("p1sim-rig-output-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join("board.bin");
    let profile = p1sim_core::builtin::lookup("iskra-am550").unwrap();
    let plan = RigPlan { device: "/dev/rig".into(), request: RequestMode::Honour, capture: Some(capture.clone()) };
    let out = RigOutput::start_with(fake.connector("/dev/rig"), &plan, &profile, None).unwrap();
    let tx = out.sender();
    let first = telegram(600);
    tx.send(Msg::Telegram(outgoing(0, Arc::clone(&first)))).unwrap();
    until(&fake, "the first telegram", |s| s.telegrams.len() == 1);
    // Request drops: the next telegram is withheld, and the rise starts it at once.
    fake.set_request(false);
    until(&fake, "a cancel after the drop", |s| s.cancels == 1);
    let second = telegram(300);
    tx.send(Msg::Telegram(outgoing(1, Arc::clone(&second)))).unwrap();
    let end = Instant::now() + LIMIT;
    while out.line.withheld.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(Instant::now() < end, "the telegram was not withheld");
        std::thread::sleep(Duration::from_millis(5));
    }
    fake.seen(|s| assert_eq!(s.telegrams.len(), 1, "nothing sent while Request is low"));
    fake.set_request(true);
    until(&fake, "the newest telegram after the rise", |s| s.telegrams.len() == 2);
    fake.seen(|s| assert_eq!(s.telegrams[1].1, second.to_vec()));
    let summary = out.stop();
    assert!(summary.contains("2 telegrams started") && summary.contains("0 errors"), "{summary}");
    let mut expected = first.to_vec();
    expected.extend_from_slice(&second);
    assert_eq!(std::fs::read(&capture).unwrap(), expected, "the board's output, byte for byte");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_pocket_meter_build_is_refused_for_run() {
    let fake = FakeRig::new(Behaviour { standalone: true, ..Behaviour::default() });
    let profile = p1sim_core::builtin::lookup("iskra-am550").unwrap();
    let plan = RigPlan { device: "/dev/rig".into(), request: RequestMode::Honour, capture: None };
    let err = RigOutput::start_with(fake.connector("/dev/rig"), &plan, &profile, None).unwrap_err().to_string();
    assert!(
        err.contains("standalone pocket-meter firmware (iskra-am550)") && err.contains("cargo xtask firmware"),
        "{err}"
    );
}

#[test]
fn a_plan_the_rig_cannot_carry_is_refused_before_connecting() {
    let fake = FakeRig::new(Behaviour::default());
    let profile = p1sim_core::builtin::lookup("iskra-am550").unwrap();
    let plan = RigPlan { device: "/dev/rig".into(), request: RequestMode::Ignore, capture: None };
    let faults: Vec<BitFault> = (0..20).map(|c| BitFault::Flip { char: c, bit: 9 }).collect();
    let scenario = p1sim_core::fault::scenario::Scenario {
        name: "many".into(),
        entries: Vec::new(),
        wire: Some(wire::FaultPlan { faults, skew_ppm: 0, gap: BitSpan::ZERO }),
    };
    let err = RigOutput::start_with(fake.connector("/dev/rig"), &plan, &profile, Some(&scenario)).unwrap_err();
    assert!(format!("{err:#}").contains("at most 16"), "{err:#}");
    fake.seen(|s| assert_eq!(s.hellos, 0, "refused before connecting"));
}
