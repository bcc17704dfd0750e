//! Every profile's telegrams decode back to exactly the values the meter model holds: the
//! rendered bytes, the owned model and the readings agree for many seeds and instants.

use p1sim_core::builtin;
use p1sim_core::decode::{Decoder, Discard, Event};
use p1sim_core::format::{LocalTime, Rounding, rescale};
use p1sim_core::generator::Generator;
use p1sim_core::profile::{Direction, Energy, Kind, Num, Profile, Register};
use p1sim_core::readings::Readings;
use p1sim_core::telegram::{Checksum, Telegram};
use proptest::prelude::*;

const KEY: [u8; 16] = *b"p1sim-test-key!!";

/// Decodes exactly one telegram, asserting it is valid. A gateway's trailer is the only thing
/// that may be skipped.
fn decode_one(bytes: &[u8], p: &Profile) -> Telegram {
    let mut d = Decoder::new();
    if let Some(enc) = &p.encryption {
        d = d.with_key(KEY).with_auth_key(enc.auth_key);
    }
    let mut out = Vec::new();
    let mut push = |ev: Event<'_>| match ev {
        Event::Telegram(f) => {
            assert!(f.is_valid(), "invalid telegram: {}", String::from_utf8_lossy(f.raw));
            assert_ne!(f.crc_ok(), Some(false));
            out.push(f.to_telegram());
        }
        Event::Discarded { reason: Discard::Garbage, .. } => {}
        Event::Discarded { reason, bytes } => panic!("discarded {bytes} bytes: {reason:?}"),
    };
    d.feed(bytes, &mut push);
    d.finish(&mut push);
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

/// The digits of a fixed-point text as an integer: "003432.829" -> 3432829.
fn digits(text: &str) -> u64 {
    assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'), "not a number: {text:?}");
    text.bytes().filter(u8::is_ascii_digit).fold(0, |v, b| v * 10 + u64::from(b - b'0'))
}

fn tst(t: &LocalTime) -> String {
    let mut v = Vec::new();
    t.write_tst(&mut v);
    String::from_utf8(v).unwrap()
}

fn unit_scale(num: &Num) -> u8 {
    if num.unit.as_deref().is_some_and(|u| u.starts_with(['k', 'K'])) { 3 } else { 0 }
}

/// Asserts that a decoded value shows `value * 10^-scale` in the profile's format.
fn check_num(ctx: &str, text: &str, unit: Option<&str>, value: u64, scale: u8, num: &Num, rounding: Rounding) {
    let modulus = 10u64.pow(u32::from(num.format.int + num.format.dec));
    let expected = rescale(value, scale, num.format.dec, rounding) % modulus;
    assert_eq!(text.len(), num.format.width(), "{ctx}: width of {text:?}");
    assert_eq!(digits(text), expected, "{ctx}: {text:?}");
    assert_eq!(unit, num.unit.as_deref(), "{ctx}: unit");
}

/// Checks every decoded line against the readings it was rendered from.
fn check_against_readings(p: &Profile, r: &Readings, t: &Telegram) {
    assert_eq!(t.lines.len(), p.objects.len(), "{}: object count", p.name);
    for (obj, line) in p.objects.iter().zip(&t.lines) {
        let ctx = format!("{} {}", p.name, obj.obis);
        let f = p.obis_f.map_or(String::new(), |f| format!("*{f}"));
        assert_eq!(line.obis, format!("{}{f}", obj.obis), "{ctx}: order");
        let v = |i: usize| (line.values[i].text.as_str(), line.values[i].unit.as_deref());
        match &obj.kind {
            Kind::Clock => assert_eq!(v(0).0, tst(&r.time), "{ctx}"),
            Kind::Energy { register, num } => {
                let (text, unit) = v(0);
                check_num(&ctx, text, unit, r.registers.get(*register), unit_scale(num), num, Rounding::Truncate);
            }
            Kind::Power { quantity, num } => {
                let (text, unit) = v(0);
                check_num(&ctx, text, unit, r.power(*quantity), unit_scale(num), num, Rounding::Nearest);
            }
            Kind::Voltage { phase, num } => {
                let (text, unit) = v(0);
                check_num(
                    &ctx,
                    text,
                    unit,
                    u64::from(r.phases[*phase as usize - 1].voltage_dv),
                    1,
                    num,
                    Rounding::Nearest,
                );
            }
            Kind::Current { phase, num } => {
                let (text, unit) = v(0);
                check_num(
                    &ctx,
                    text,
                    unit,
                    u64::from(r.phases[*phase as usize - 1].current_ma),
                    3,
                    num,
                    Rounding::Nearest,
                );
            }
            Kind::Tariff { .. } => assert_eq!(digits(v(0).0), u64::from(r.tariff), "{ctx}"),
            Kind::Failures { long, .. } => {
                let n = if *long { r.long_power_failures } else { r.power_failures };
                assert_eq!(digits(v(0).0), u64::from(n) % 100_000, "{ctx}");
            }
            Kind::Sags { phase, .. } => assert_eq!(digits(v(0).0), u64::from(r.sags[*phase as usize - 1]), "{ctx}"),
            Kind::Swells { phase, .. } => assert_eq!(digits(v(0).0), u64::from(r.swells[*phase as usize - 1]), "{ctx}"),
            Kind::FailureLog { .. } => {
                let count = digits(v(0).0) as usize;
                if count > 0 {
                    assert_eq!(line.values.len(), 2 + 2 * count, "{ctx}: entries");
                    assert_eq!(v(1).0, "0-0:96.7.19", "{ctx}");
                }
                let dummy = usize::from(p.failure_log.dummy.is_some());
                assert_eq!(
                    count,
                    r.failure_log.len().min(usize::from(p.failure_log.max_entries) - dummy) + dummy,
                    "{ctx}"
                );
            }
            Kind::MBusReading { channel, num } => {
                let device = p.mbus_device(*channel).unwrap();
                if let Some((time, value)) = &device.placeholder {
                    assert_eq!((v(0).0, v(1).0), (time.as_str(), value.as_str()), "{ctx}");
                } else {
                    let m = r.mbus_value(*channel).expect("a captured value");
                    assert_eq!(v(0).0, tst(&m.captured), "{ctx}: capture time");
                    let (text, unit) = v(1);
                    check_num(&ctx, text, unit, m.milli, 3, num, Rounding::Truncate);
                }
            }
            Kind::MBusLegacy { channel, num, .. } => {
                let m = r.mbus_value(*channel).expect("a captured value");
                assert_eq!(line.values.len(), 7, "{ctx}");
                assert_eq!(line.break_before, Some(6), "{ctx}: the value is on its own line");
                assert_eq!(v(0).0, &tst(&m.captured)[..12], "{ctx}: 12-digit capture time");
                let (text, _) = v(6);
                check_num(&ctx, text, None, m.milli, 3, &Num { format: num.format, unit: None }, Rounding::Truncate);
            }
            Kind::Demand { num } => {
                let (text, unit) = v(0);
                check_num(&ctx, text, unit, u64::from(r.demand.current_avg_w), 3, num, Rounding::Nearest);
            }
            Kind::DemandHistory { .. } => {
                assert_eq!(digits(v(0).0) as usize, r.demand.history.len(), "{ctx}");
                assert_eq!(line.values.len(), 3 + 3 * r.demand.history.len(), "{ctx}");
            }
            Kind::Billing { num } => {
                let b = r.billing.expect("a billing snapshot");
                assert_eq!(v(0).0, tst(&b.period_end), "{ctx}: the month's end");
                assert_eq!(line.values.len(), 1 + 13 + 6, "{ctx}: no count header");
                let import = Register { direction: Direction::Import, energy: Energy::Active, tariff: None };
                let (text, unit) = v(1);
                check_num(&ctx, text, unit, b.registers.get(import), unit_scale(num), num, Rounding::Truncate);
                let peak = Num { format: "2.3".parse().unwrap(), unit: Some("kW".into()) };
                let (text, unit) = v(14);
                check_num(&ctx, text, unit, u64::from(b.peaks_w[0]), 3, &peak, Rounding::Nearest);
            }
            Kind::PowerFactor { phase, format } => {
                let pf = Num { format: *format, unit: None };
                let (text, unit) = v(0);
                check_num(&ctx, text, unit, r.power_factor_milli(*phase), 3, &pf, Rounding::Nearest);
                assert!(digits(text) <= 1000, "{ctx}: cos(phi) {text}");
            }
            Kind::Frequency { num } => {
                let (text, unit) = v(0);
                check_num(&ctx, text, unit, u64::from(r.frequency_mhz), 3, num, Rounding::Nearest);
                assert!((49_900..=50_100).contains(&r.frequency_mhz), "{ctx}: {text}");
            }
            Kind::Text(s) => {
                let (text, unit) = v(0);
                let joined = unit.map_or(text.to_string(), |u| format!("{text}*{u}"));
                assert_eq!(&joined, s, "{ctx}");
            }
            Kind::Hex(s) => assert_eq!(v(0).0, hex(s.as_bytes()), "{ctx}"),
            Kind::TextMessage => assert_eq!(v(0).0, hex(r.text_message.as_bytes()), "{ctx}"),
            Kind::TextCode => assert_eq!(v(0).0, hex(r.text_code.as_bytes()), "{ctx}"),
            Kind::MBusId { channel } => {
                let d = p.mbus_device(*channel).unwrap();
                let sent = if d.raw_id { d.id.clone() } else { hex(d.id.as_bytes()) };
                assert_eq!(v(0).0, sent, "{ctx}")
            }
            Kind::MBusType { channel, .. } => {
                assert_eq!(digits(v(0).0), u64::from(p.mbus_device(*channel).unwrap().device_type), "{ctx}")
            }
            Kind::DemandMax { .. } | Kind::Raw(_) => {}
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Renders one telegram and checks bytes, model and readings against each other.
fn round_trip(p: &Profile, seed: u64, start: i64) {
    let key = p.is_encrypted().then_some(KEY);
    let mut g = Generator::new(p.clone(), p.household.clone(), seed, start, key).unwrap();
    let mut bytes = Vec::new();
    g.next_into(&mut bytes);
    let (readings, model) = g.current_model();
    let plaintext = if p.is_encrypted() { g.last_plaintext().to_vec() } else { bytes.clone() };
    assert_eq!(model.to_bytes(), plaintext, "{}: the model renders to the same bytes", p.name);
    let decoded = decode_one(&bytes, p);
    assert_eq!(decoded.header, model.header, "{}", p.name);
    assert_eq!(decoded.lines, model.lines, "{}", p.name);
    assert_eq!(decoded.end_marker, p.end_marker, "{}", p.name);
    match (&model.checksum, &decoded.checksum) {
        (Checksum::Computed, Checksum::Text(t)) => assert_eq!(t.len(), 4, "{}", p.name),
        (Checksum::ComputedUnpadded, Checksum::Text(t)) => assert!(!t.starts_with('0') || t == "0", "{}", p.name),
        (Checksum::None, Checksum::None) => {}
        other => panic!("{}: checksum {other:?}", p.name),
    }
    // The telegrams carry the meter's own ids, not the profile file's.
    check_against_readings(g.profile(), &readings, &decoded);
}

#[test]
fn every_profile_round_trips_at_a_fixed_seed() {
    let profiles = builtin::all().unwrap();
    assert_eq!(profiles.len(), 26);
    for p in &profiles {
        round_trip(p, 1, 1_768_474_800);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_profile_round_trips_for_any_seed_and_instant(seed in any::<u64>(), start in 946_684_800i64..4_102_444_800) {
        for p in builtin::all().unwrap() {
            round_trip(&p, seed, start);
        }
    }
}

#[test]
fn one_telegram_per_profile_snapshot() {
    for p in builtin::all().unwrap() {
        let key = p.is_encrypted().then_some(KEY);
        let mut g = Generator::new(p.clone(), p.household.clone(), 42, 1_768_474_800, key).unwrap();
        let mut bytes = Vec::new();
        g.next_into(&mut bytes);
        let text = if p.is_encrypted() {
            let plain = String::from_utf8(g.last_plaintext().to_vec()).unwrap();
            format!("frame: {} bytes, header {}\n{plain}", bytes.len(), hex(&bytes[..18]))
        } else {
            // A gateway's 0xFF padding is not text: written \xFF.
            bytes
                .iter()
                .map(|&b| if b.is_ascii() { char::from(b).to_string() } else { format!("\\x{b:02X}") })
                .collect()
        };
        insta::assert_snapshot!(p.name.clone(), text.replace("\r\n", "\u{23CE}\n"));
    }
}
