//! The suite: every case, generated from profiles x faults x seeds, with expectations taken from
//! what the simulator knows it generated (never from running a decoder), and levelled by the
//! evidence behind them ([`crate::levels`]).
//!
//! Each case is a short stream, usually three telegrams with the fault on the middle one, so a
//! decoder is also checked for picking up the telegram after the damage.

use p1sim_core::builtin;
use p1sim_core::fault::{CrcMode, Expect, Fault, Placeholder, Position, RandomWord};
use p1sim_core::generator::Generator;
use p1sim_core::profile::{EmptyLog, Kind, Profile};
use p1sim_core::smarty;
use p1sim_core::spec::{Framing, LineSettings};
use p1sim_core::telegram::Telegram;

use crate::case::{Case, Class, ExpectedTelegram};
use crate::levels;

mod dialects;

/// The key every encrypted case uses (the decoder under test is given it).
pub const KEY: [u8; 16] =
    [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F];

/// Profiles every fault is tried on: each generation, country, and the quirky layouts.
const REPRESENTATIVE: [&str; 10] = [
    "iskra-am550",
    "sagemcom-t210d",
    "kaifa-ma304",
    "landis-gyr-e350",
    "sagemcom-t211-be",
    "sagemcom-s211-be",
    "sagemcom-t211-se",
    "kamstrup-162",
    "iskra-mt382",
    "sagemcom-t210d-lu",
];

/// A base instant per seed: different days and seasons, same every run.
fn start_for(seed: u64) -> i64 {
    1_768_474_800 + (seed as i64 % 23) * 86_400 * 17 + (seed as i64 % 7) * 3_797
}

/// Builds the stream of `n` telegrams of a profile, with `faults(i)` applied to telegram i.
fn stream(
    profile: &Profile,
    seed: u64,
    start: i64,
    n: usize,
    key: Option<[u8; 16]>,
    faults: &dyn Fn(usize) -> Vec<Fault>,
) -> (Vec<u8>, Vec<ExpectedTelegram>) {
    let key = key.or(profile.is_encrypted().then_some(KEY));
    let mut g = Generator::new(profile.clone(), profile.household.clone(), seed, start, key).expect("a key is given");
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for i in 0..n {
        g.advance();
        let f = faults(i);
        if f.is_empty() {
            let model = g.current_model().1;
            g.render_current(&mut input);
            expected.push(ExpectedTelegram::clean(model));
        } else {
            let out = g.faulted_current(&f, seed, i as u64);
            input.extend_from_slice(&out.bytes);
            expected.push(ExpectedTelegram {
                expect: out.expect(),
                faults: out.applied.iter().map(|a| format!("{}: {}", a.kind, a.detail)).collect(),
                ..ExpectedTelegram::clean(out.model.clone())
            });
        }
    }
    (input, expected)
}

fn case(
    class: Class,
    profile: &Profile,
    variant: &str,
    seed: u64,
    description: &str,
    input: Vec<u8>,
    telegrams: Vec<ExpectedTelegram>,
) -> Case {
    let mut case = Case {
        name: format!("{}/{}/{}/s{}", class.name(), profile.name, variant, seed),
        class,
        description: description.to_string(),
        profile: profile.name.clone(),
        spec: profile.spec,
        line: profile.line,
        key: profile.is_encrypted().then_some(KEY),
        auth_key: profile.encryption.as_ref().map(|e| e.auth_key).filter(|k| *k != p1sim_core::smarty::AUTH_KEY),
        input,
        telegrams,
    };
    levels::assign(&mut case, variant);
    case
}

/// A case of three telegrams with `fault` on the middle one.
fn middle(class: Class, profile: &Profile, variant: &str, seed: u64, description: &str, fault: Fault) -> Case {
    let (input, telegrams) =
        stream(profile, seed, start_for(seed), 3, None, &|i| if i == 1 { vec![fault.clone()] } else { vec![] });
    case(class, profile, variant, seed, description, input, telegrams)
}

fn profile(name: &str) -> Profile {
    builtin::get(name).expect("a shipped profile").expect("shipped profiles load")
}

/// The whole suite, in a stable order.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    clean(&mut out);
    faults(&mut out);
    quirks(&mut out);
    tampering(&mut out);
    time(&mut out);
    dialects::cases(&mut out);
    out
}

fn clean(out: &mut Vec<Case>) {
    for p in builtin::all().expect("shipped profiles load") {
        for seed in 1..=6 {
            let (input, telegrams) = stream(&p, seed, start_for(seed), 3, None, &|_| vec![]);
            let class = match p.spec {
                p1sim_core::spec::Spec::D0 => Class::D0Gateway,
                p1sim_core::spec::Spec::Steiermark => Class::UnitScaling,
                p1sim_core::spec::Spec::EonHu => Class::FourTariffs,
                _ if p.is_encrypted() => Class::Encrypted,
                s if s.is_legacy() => Class::Legacy,
                p1sim_core::spec::Spec::EMucs | p1sim_core::spec::Spec::IskraIe => Class::Belgian,
                p1sim_core::spec::Spec::SeHan => Class::Swedish,
                _ => Class::Clean,
            };
            out.push(case(class, &p, "clean", seed, "three consecutive telegrams, unmodified", input, telegrams));
        }
    }
}

/// Every catalogue fault on the representative profiles.
fn faults(out: &mut Vec<Case>) {
    let random = Position::Random(RandomWord::Random);
    for name in REPRESENTATIVE {
        let p = profile(name);
        let crc = p.crc;
        for seed in 1..=2 {
            let mut add = |class: Class, variant: &str, description: &str, fault: Fault| {
                out.push(middle(class, &p, variant, seed, description, fault));
            };
            if crc {
                add(Class::CrcCheck, "wrong-crc", "the middle telegram carries a wrong CRC", Fault::WrongCrc);
                add(Class::CrcCheck, "missing-crc", "the middle telegram has nothing after its `!`", Fault::MissingCrc);
                add(
                    Class::CrcFormat,
                    "lowercase-crc",
                    "the middle telegram's CRC is lowercase hex",
                    Fault::LowercaseCrc,
                );
                add(Class::Garbage, "nul-after-crc", "a NUL after the middle telegram's CRC", Fault::NulAfterCrc);
            }
            add(
                Class::TruncationResync,
                "truncate",
                "the middle telegram is cut off at a random point",
                Fault::Truncate { at: random },
            );
            add(
                Class::TruncationResync,
                "truncate-early",
                "the middle telegram is cut off in its header",
                Fault::Truncate { at: Position::At(8) },
            );
            add(
                Class::Garbage,
                "garbage-before",
                "noise before the middle telegram",
                Fault::GarbageBefore { bytes: 40 },
            );
            add(Class::Garbage, "garbage-after", "noise after the middle telegram", Fault::GarbageAfter { bytes: 40 });
            add(
                Class::Garbage,
                "ff-padding",
                "0xFF padding after the middle telegram",
                Fault::FfPadding { bytes: 128 },
            );
            add(
                Class::SlashInside,
                "slash-covered",
                "a `/` inside the middle telegram, covered by its CRC",
                Fault::SlashInside { crc: CrcMode::Recompute },
            );
            add(
                Class::SlashInside,
                "slash-corrupt",
                "a `/` inside the middle telegram, its CRC not matching",
                Fault::SlashInside { crc: CrcMode::Keep },
            );
            add(
                Class::LineDamage,
                "drop-line",
                "a line of the middle telegram is lost",
                Fault::DropLine { line: None, crc: CrcMode::Auto },
            );
            add(
                Class::LineDamage,
                "duplicate-line",
                "a line of the middle telegram arrives twice",
                Fault::DuplicateLine { line: None, crc: CrcMode::Auto },
            );
            add(
                Class::LineDamage,
                "bit-flip",
                "one bit of the middle telegram is flipped",
                Fault::BitFlip { ber: 0.0, positions: vec![(40 + seed as usize * 97, (seed % 7) as u8)] },
            );
            add(
                Class::LineDamage,
                "noise",
                "the middle telegram crossed a noisy cable (BER 1e-3)",
                Fault::BitFlip { ber: 1e-3, positions: vec![] },
            );
            add(
                Class::LineEndings,
                "lf-only",
                "the middle telegram's lines end in LF only",
                Fault::LfOnly { crc: CrcMode::Auto },
            );
            add(
                Class::Oversize,
                "oversize",
                "a 1024-character text message in the middle telegram",
                Fault::Oversize { chars: 1024 },
            );
            add(
                Class::Placeholders,
                "clock-not-set",
                "the middle telegram's clock was never set",
                Fault::Placeholder { value: Placeholder::ClockNotSet },
            );
            if !p.mbus.is_empty() {
                add(
                    Class::Placeholders,
                    "no-data",
                    "the middle telegram's M-Bus timestamps read 632525252525W",
                    Fault::Placeholder { value: Placeholder::NoData },
                );
            }
            // Iskra's empty channel 1 is DSMR 4/5 behaviour: a `24.2.1` reading has no place
            // in a DSMR 2.2/3 telegram, whose readings are `24.3.0` records. Belgian meters
            // write channels with 96.1.1 and 24.2.3, so the Dutch ghost lines do not belong there.
            if !p.mbus.is_empty() && !p.spec.is_legacy() && p.country != p1sim_core::spec::Country::BE {
                add(
                    Class::Placeholders,
                    "ghost-mbus",
                    "an empty M-Bus channel 1 with the devices moved up",
                    Fault::Placeholder { value: Placeholder::GhostMbus },
                );
            }
            add(
                Class::UnitsWhitespace,
                "lowercase-units",
                "the middle telegram's units are lowercase",
                Fault::LowercaseUnits,
            );
            add(
                Class::UnitsWhitespace,
                "space-after-obis",
                "a space after an OBIS code in the middle telegram",
                Fault::SpaceAfterObis,
            );
            add(
                Class::OptionalLines,
                "line-omitted",
                "the meter leaves a line out of the middle telegram",
                Fault::DropLine { line: None, crc: CrcMode::Recompute },
            );
        }
        // Unpadded CRCs only exist below 0x1000: pick seeds whose middle telegram has one.
        if crc {
            let mut found = 0;
            for seed in 1..400 {
                let c = middle(
                    Class::CrcFormat,
                    &p,
                    "unpadded-crc",
                    seed,
                    "the middle telegram's CRC lacks its leading zero, as a heat meter's does",
                    Fault::UnpaddedCrc,
                );
                if c.telegrams[1].expect == Expect::AcceptLenient {
                    out.push(c);
                    found += 1;
                    if found == 2 {
                        break;
                    }
                }
            }
        }
    }
}

/// Named cases for real-world quirks; `conformance/EVIDENCE.md` has their sources.
fn quirks(out: &mut Vec<Case>) {
    // The status byte of the two-line gas record as hex (2C on Iskra), which once crashed
    // dsmr_parser (ndokter/dsmr_parser#60).
    let mut iskra = profile("iskra-mt382");
    for o in &mut iskra.objects {
        if let Kind::MBusLegacy { status, .. } = &mut o.kind {
            *status = "2C".into();
        }
    }
    iskra.name = "iskra-mt382-status-2c".into();
    for seed in 1..=2 {
        let (input, telegrams) = stream(&iskra, seed, start_for(seed), 3, None, &|_| vec![]);
        out.push(case(
            Class::Legacy,
            &iskra,
            "status-2c",
            seed,
            "gas record status 2C, as an Iskra sends",
            input,
            telegrams,
        ));
    }
    // Gas on channel 2 of a DSMR 2.2 meter (a real Iskra MT382-1003, nielsbasjes/dsmr-tools#54).
    let mut ch2 = profile("iskra-mt382");
    ch2.name = "iskra-mt382-gas-ch2".into();
    for d in &mut ch2.mbus {
        d.channel = 2;
    }
    for o in &mut ch2.objects {
        if o.obis.b == 1 {
            o.obis.b = 2;
        }
        match &mut o.kind {
            Kind::MBusType { channel, .. } | Kind::MBusId { channel } | Kind::MBusReading { channel, .. } => {
                *channel = 2
            }
            Kind::MBusLegacy { channel, capture, .. } => {
                *channel = 2;
                capture.b = 2;
            }
            _ => {}
        }
    }
    for seed in 1..=2 {
        let (input, telegrams) = stream(&ch2, seed, start_for(seed), 3, None, &|_| vec![]);
        out.push(case(Class::Legacy, &ch2, "gas-on-channel-2", seed, "gas on M-Bus channel 2", input, telegrams));
    }
    // An empty failure log written `()`, as one Iskra AM550 did (ndokter/dsmr_parser#67).
    let mut empty_log = profile("iskra-am550");
    empty_log.name = "iskra-am550-empty-log".into();
    empty_log.failure_log.empty = EmptyLog::EmptyBrackets;
    empty_log.household.start_import_kwh = Some(10.0);
    for seed in 1..=2 {
        let (input, mut telegrams) = stream(&empty_log, seed, start_for(seed), 3, None, &|_| vec![]);
        let has_empty = telegrams.iter().all(|t| t.model.line("1-0:99.97.0").is_some_and(|l| l.values.len() == 1));
        if has_empty {
            telegrams.iter_mut().for_each(|t| t.expect = Expect::AcceptLenient);
            out.push(case(
                Class::Placeholders,
                &empty_log,
                "empty-log",
                seed,
                "an empty failure log written 1-0:99.97.0()",
                input,
                telegrams,
            ));
        }
    }
    // A second `/` inside the header (Holley /HLY5/D545-METER, ndokter/dsmr_parser#91), covered
    // by the CRC.
    let mut holley = profile("sagemcom-t210d");
    holley.name = "holley-dtsd545".into();
    holley.header = "HLY5/D545-METER".into();
    for seed in 1..=2 {
        let (input, mut telegrams) = stream(&holley, seed, start_for(seed), 3, None, &|_| vec![]);
        telegrams.iter_mut().for_each(|t| t.expect = Expect::AcceptLenient);
        out.push(case(
            Class::SlashInside,
            &holley,
            "slash-in-header",
            seed,
            "a `/` in the identification, as a Holley DTSD545 sends",
            input,
            telegrams,
        ));
    }
    // A real telegram carrying the DSMR 5.0.2 spec example's printed CRC EF2F, which is wrong.
    let p = profile("sagemcom-t210d");
    let (mut input, mut telegrams) = stream(&p, 1, start_for(1), 1, None, &|_| vec![]);
    let bang = input.iter().rposition(|&b| b == b'!').expect("a telegram");
    input.splice(bang + 1..bang + 5, *b"EF2F");
    telegrams[0].expect =
        if &telegrams[0].model.to_bytes()[bang + 1..bang + 5] == b"EF2F" { Expect::Accept } else { Expect::Reject };
    telegrams[0].faults.push("CRC replaced by the spec example's EF2F".into());
    out.push(case(
        Class::CrcCheck,
        &p,
        "spec-example-crc",
        1,
        "the DSMR 5.0.2 example's printed CRC EF2F on a real telegram",
        input,
        telegrams,
    ));
    // Iskra IE5T's 1.6.0 with the value before a 12-digit timestamp (mhendriks/P1-Dongel-ESP32#87).
    let p = profile("sagemcom-s211-be");
    for seed in 1..=2 {
        let (_, telegrams) = stream(&p, seed, start_for(seed), 3, None, &|_| vec![]);
        let edited: Vec<Telegram> = telegrams
            .iter()
            .map(|t| {
                let mut m = t.model.clone();
                if let Some(l) = m.lines.iter_mut().find(|l| l.obis == "1-0:1.6.0") {
                    l.values.swap(0, 1);
                    l.values[1].text.truncate(12);
                }
                m
            })
            .collect();
        let input: Vec<u8> = edited.iter().flat_map(|m| m.to_bytes()).collect();
        let telegrams = edited
            .into_iter()
            .map(|model| ExpectedTelegram {
                expect: Expect::AcceptLenient,
                faults: vec!["1.6.0 value before its timestamp".into()],
                ..ExpectedTelegram::clean(model)
            })
            .collect();
        out.push(case(
            Class::Belgian,
            &p,
            "value-before-timestamp",
            seed,
            "1-0:1.6.0(08.796*kW)(260102010000), as an Iskra IE5T sends",
            input,
            telegrams,
        ));
    }
    // A Smarty frame encrypted with another key than the one the decoder has.
    let p = profile("sagemcom-t210d-lu");
    for seed in 1..=2 {
        let (input, telegrams) = stream(&p, seed, start_for(seed), 2, Some([0x5A; 16]), &|_| vec![]);
        let telegrams = telegrams
            .into_iter()
            .map(|t| ExpectedTelegram {
                expect: Expect::Reject,
                faults: vec!["encrypted with another key".into()],
                ..t
            })
            .collect();
        out.push(case(
            Class::Encrypted,
            &p,
            "wrong-key",
            seed,
            "frames encrypted with a key the decoder does not have",
            input,
            telegrams,
        ));
    }
    // The 9600 7E1 line of DSMR 2.2/3 meters (the bytes are 7-bit; transports set the framing).
    for name in ["kamstrup-162", "iskra-mt382"] {
        let p = profile(name);
        for seed in 1..=3 {
            let (input, telegrams) = stream(&p, seed, start_for(seed), 3, None, &|_| vec![]);
            let mut c = case(Class::Framing7e1, &p, "9600-7e1", seed, "a 9600 7E1 line", input, telegrams);
            c.line = LineSettings { baud: 9600, framing: Framing::SEVEN_E1 };
            out.push(c);
        }
    }
    // The raw inverted P1 signal on a UART input without an inverter (a DIY cable with a pull-up
    // but no transistor): what the reader's UART delivers, per the wire model. And a 9600 7E1
    // meter read by a UART set to 8N1 (the parity bit lands in bit 7).
    for (name, variant, board, reader) in [
        ("iskra-am550", "inverted-signal", "direct-no-inverter", None),
        ("kaifa-ma304", "inverted-signal", "direct-no-inverter", None),
        ("kamstrup-162", "7e1-read-as-8n1", "transistor-inverter", Some(Framing::EIGHT_N1)),
        ("iskra-mt382", "7e1-read-as-8n1", "transistor-inverter", Some(Framing::EIGHT_N1)),
    ] {
        let p = profile(name);
        for seed in 1..=2 {
            let (clean, telegrams) = stream(&p, seed, start_for(seed), 2, None, &|_| vec![]);
            let line = LineSettings { baud: p.line.baud, framing: reader.unwrap_or(p.line.framing) };
            let input = through_board(&p, &clean, board, line);
            // Garbage from an inverted line must not pass for a telegram. A 7E1 line read as 8N1
            // is different: masking bit 7 recovers it (the usual workaround), so a decoder may
            // recover the telegrams or not.
            let expect = if reader.is_some() { Expect::Unspecified } else { Expect::Reject };
            let telegrams = telegrams
                .into_iter()
                .map(|t| ExpectedTelegram {
                    expect,
                    faults: vec![format!("sent through {board}, read by a {line} UART")],
                    ..t
                })
                .collect();
            let class = if reader.is_some() { Class::Framing7e1 } else { Class::LineDamage };
            let description = if reader.is_some() {
                "a 9600 7E1 line read by a UART set to 8N1: what it delivers"
            } else {
                "the inverted P1 signal into a UART without an inverter: what it delivers"
            };
            let mut c = case(class, &p, variant, seed, description, input, telegrams);
            c.line = line;
            out.push(c);
        }
    }
    // Integer Wh units as the Austrian Sagemcom T210-D-r sends.
    let mut wh = profile("sagemcom-t210d");
    wh.name = "sagemcom-t210d-wh-units".into();
    for o in &mut wh.objects {
        if let Kind::Energy { num, .. } | Kind::Power { num, .. } = &mut o.kind {
            num.format = p1sim_core::format::NumFormat::new(9, 0);
            num.unit = num.unit.as_deref().map(|u| u.trim_start_matches('k').to_string());
        }
    }
    for seed in 1..=2 {
        let (input, mut telegrams) = stream(&wh, seed, start_for(seed), 3, None, &|_| vec![]);
        telegrams.iter_mut().for_each(|t| t.expect = Expect::AcceptLenient);
        out.push(case(
            Class::UnitsWhitespace,
            &wh,
            "wh-units",
            seed,
            "integer Wh and W units, as the Austrian Sagemcom T210-D-r sends",
            input,
            telegrams,
        ));
    }
    // A stream that starts mid-telegram, with noise, then clean telegrams.
    for name in ["iskra-am550", "sagemcom-t211-be", "kaifa-ma304"] {
        let p = profile(name);
        for seed in 1..=2 {
            let (full, telegrams) = stream(&p, seed, start_for(seed), 4, None, &|i| {
                if i == 2 { vec![Fault::GarbageBefore { bytes: 33 }] } else { vec![] }
            });
            // Drop the start of the first telegram, as when a reader opens the port mid-telegram.
            let first_len = telegrams[0].model.to_bytes().len();
            let input = full[first_len / 2..].to_vec();
            let mut telegrams = telegrams;
            telegrams[0].expect = Expect::Reject;
            telegrams[0].faults.push("the reader started mid-telegram".into());
            out.push(case(
                Class::TruncationResync,
                &p,
                "opened-mid-telegram",
                seed,
                "the port opened mid-telegram, noise later",
                input,
                telegrams,
            ));
        }
    }
}

/// The bytes a reader's UART with `reader` settings delivers when the meter's bytes go through
/// an interface board (the bit-level wire model: encoder, board, 16x receiver).
fn through_board(p: &Profile, bytes: &[u8], board: &str, reader: LineSettings) -> Vec<u8> {
    use p1sim_core::wire::board::{Board, through};
    use p1sim_core::wire::encode::encode_to_vec;
    use p1sim_core::wire::{FaultPlan, Polarity, Receiver, ReceiverConfig};
    let board = Board::named(board).expect("a built-in board");
    let bit_ps = p1sim_core::wire::PS_PER_S / u64::from(p.line.baud);
    let meter = encode_to_vec(p.line, Polarity::Inverted, FaultPlan::CLEAN, bytes, 20 * bit_ps, 20 * bit_ps)
        .expect("the profile's line settings are valid");
    let mut rx = Receiver::new(ReceiverConfig::new(reader)).expect("valid receiver settings");
    let mut out = Vec::new();
    let mut take = |c: p1sim_core::wire::RxChar| out.push(c.byte);
    for run in through(&board, &meter) {
        rx.push(run, &mut take);
    }
    rx.finish(&mut take);
    out
}

/// Smarty frames tampered with on the way: only the GCM tag reveals it, so a decoder that skips
/// the tag check (decrypting with the key alone, as AES-CTR) accepts them.
fn tampering(out: &mut Vec<Case>) {
    let p = profile("sagemcom-t210d-lu");
    for seed in 1..=2 {
        let (input, telegrams) = stream(&p, seed, start_for(seed), 3, None, &|_| vec![]);
        // The middle frame's bounds: frames follow each other, each as long as its header says.
        let first = smarty_frame_len(&input);
        let middle = first..first + smarty_frame_len(&input[first..]);
        for (variant, description) in [
            ("gcm-tag-flipped", "one bit of the middle frame's GCM tag flipped"),
            (
                "ciphertext-tampered",
                "the middle frame's ciphertext changed so a register reads differently, its plaintext CRC \
                 fixed up: only the GCM tag shows it",
            ),
        ] {
            let mut bytes = input.clone();
            let frame = &mut bytes[middle.clone()];
            let mut telegrams = telegrams.clone();
            let fault = if variant == "gcm-tag-flipped" {
                let last = frame.len() - 1;
                frame[last - (seed as usize % smarty::TAG_LEN)] ^= 1 << (seed % 8);
                "GCM tag: one bit flipped".to_string()
            } else {
                tamper_register(frame, &mut telegrams[1].model)
            };
            telegrams[1].expect = Expect::Reject;
            telegrams[1].faults.push(fault);
            out.push(case(Class::Encrypted, &p, variant, seed, description, bytes, telegrams));
        }
    }
}

/// The length of the Smarty frame at the start of `bytes`.
fn smarty_frame_len(bytes: &[u8]) -> usize {
    smarty::parse_header(bytes).ok().flatten().expect("a Smarty frame").frame_len
}

/// Flips ciphertext bits of `frame` so that the first digit of `1-0:1.8.0` that is not 9 reads
/// one higher in the plaintext, and the plaintext CRC is recomputed to match: AES-GCM's counter
/// mode lets anyone who knows the plaintext layout do that without the key. `model` becomes the
/// tampered telegram (what a tag-blind decoder reports).
fn tamper_register(frame: &mut [u8], model: &mut Telegram) -> String {
    let mut plain = frame.to_vec();
    let original =
        smarty::decrypt_in_place(&KEY, &smarty::AUTH_KEY, &mut plain).expect("the suite's own frame").to_vec();
    let mut text = String::from_utf8(original.clone()).expect("ASCII telegrams");
    let line_at = text.find("1-0:1.8.0(").expect("Smarty sends 1.8.0") + "1-0:1.8.0(".len();
    let digit_at = line_at + text[line_at..].find(|c: char| c.is_ascii_digit() && c != '9').expect("a digit");
    let digit = text.as_bytes()[digit_at];
    text.replace_range(digit_at..=digit_at, &char::from(digit + 1).to_string());
    let bang = text.rfind('!').expect("a CRC");
    let crc = p1sim_core::crc::crc_hex(p1sim_core::crc::crc16(&text.as_bytes()[..=bang]));
    text.replace_range(bang + 1..bang + 5, std::str::from_utf8(&crc).expect("hex"));
    for (i, (a, b)) in original.iter().zip(text.as_bytes()).enumerate() {
        frame[smarty::HEADER_LEN + i] ^= a ^ b;
    }
    let tampered = p1sim_core::decode::decode_all(text.as_bytes(), None);
    *model = tampered.into_iter().next().expect("the tampered telegram parses").0;
    format!(
        "ciphertext: 1-0:1.8.0 changed at offset {}, CRC fixed up to {}",
        digit_at - line_at,
        String::from_utf8_lossy(&crc)
    )
}

/// Runs across DST changes and month ends.
fn time(out: &mut Vec<Case>) {
    // 2026-03-29 and 2026-10-25 01:00:00 UTC: the EU switches. Seed 1 straddles the switch; seed
    // 2 sits later in the hour after it, where (in autumn) the same wall-clock times recur with W:
    // a decoder that reads the wall clock without the flag is an hour off there.
    let switches = [("spring", 1_774_746_000i64), ("autumn", 1_792_890_000)];
    // 2026-01-31 23:00 UTC is midnight in NL/BE/LU; 2026-12-31 23:00 UTC starts 2027.
    let month_ends = [("month-end", 1_769_900_400i64), ("year-end", 1_798_758_000)];
    for name in [
        "iskra-am550",
        "sagemcom-t210d",
        "kaifa-ma304",
        "sagemcom-t211-be",
        "sagemcom-s211-be",
        "kamstrup-162",
        "kamstrup-omnipower-se",
    ] {
        let p = profile(name);
        let step = i64::from(p.interval_s);
        for (label, at) in switches {
            for (seed, offset) in [(1u64, -2 * step), (2, 1_800 - 2 * step)] {
                let (input, telegrams) = stream(&p, seed, at + offset, 5, None, &|_| vec![]);
                let description = if seed == 1 {
                    "telegrams across a DST change"
                } else {
                    "telegrams half an hour after a DST change"
                };
                out.push(case(Class::Dst, &p, &format!("dst-{label}"), seed, description, input, telegrams));
            }
        }
        for (label, at) in month_ends {
            let (input, telegrams) = stream(&p, 1, at - 2 * step, 5, None, &|_| vec![]);
            out.push(case(Class::MonthEnd, &p, label, 1, "telegrams across a month or year end", input, telegrams));
        }
    }
}

/// The suite as a value: the standard cases (and any a user adds), for decoders written in Rust
/// that run it in-process, from `cargo test` or their own `cargo xtask`, with no adapter.
///
/// ```
/// use p1sim_conformance::{Reported, ReportedObject, ReportedValue, Suite};
///
/// // A decoder under test: here a few lines around p1sim's own, reporting the energy registers
/// // and the timestamp of every telegram whose CRC checks out.
/// fn my_decoder(bytes: &[u8], key: Option<[u8; 16]>) -> Vec<Reported> {
///     p1sim_core::decode::decode_all(bytes, key)
///         .into_iter()
///         .filter(|(_, valid)| *valid)
///         .map(|(t, _)| {
///             let objects = t
///                 .lines
///                 .iter()
///                 .map(|l| {
///                     let values = l.values.iter().map(|v| ReportedValue::new(v.text.as_str(), v.unit.as_deref()));
///                     ReportedObject::new(&l.obis, values.collect())
///                 })
///                 .collect();
///             Reported::new(Some(&t.header), objects)
///         })
///         .collect()
/// }
///
/// let suite = Suite::standard().only(&["crc-check/*", "clean/iskra-am550/*"]);
/// let run = suite.run("my-decoder", |case| my_decoder(&case.input, case.key));
/// assert!(run.conformant(), "{}", run.failures());
/// let junit = run.junit().expect("JUnit XML"); // for the CI's test report
/// assert!(junit.contains("<testsuite name=\"crc-check\""));
/// ```
#[derive(Clone, Debug)]
pub struct Suite {
    cases: Vec<Case>,
    size: usize,
}

impl Suite {
    /// Every case of this version of p1sim, in a stable order.
    pub fn standard() -> Suite {
        Suite::from_cases(cases())
    }

    pub fn from_cases(cases: Vec<Case>) -> Suite {
        let size = cases.len();
        Suite { cases, size }
    }

    /// The cases whose names match any of `patterns` (globs with `*`, else substrings).
    pub fn only(self, patterns: &[&str]) -> Suite {
        let selection = crate::runner::Selection {
            filters: patterns.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        };
        self.select(&selection)
    }

    /// The cases a `--filter`/`--exclude`/`--partition` selection picks.
    pub fn select(self, selection: &crate::runner::Selection) -> Suite {
        Suite { cases: selection.apply(self.cases), size: self.size }
    }

    /// Adds cases (a user's corpus) after the standard ones.
    pub fn with(mut self, more: Vec<Case>) -> Suite {
        self.size += more.len();
        self.cases.extend(more);
        self
    }

    pub fn cases(&self) -> &[Case] {
        &self.cases
    }

    pub fn into_cases(self) -> Vec<Case> {
        self.cases
    }

    /// How many cases the suite had before any selection.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `decode` on every case's bytes and judges what it returns: the accepted telegrams,
    /// in order. `decoder` names it in reports.
    pub fn run(
        &self,
        decoder: &str,
        mut decode: impl FnMut(&Case) -> Vec<crate::schema::Reported>,
    ) -> crate::runner::Run<'_> {
        let t = std::time::Instant::now();
        let mut info = crate::report::RunInfo::in_process(decoder, self.size);
        let results = self
            .cases
            .iter()
            .map(|c| {
                let start = std::time::Instant::now();
                let mut r = crate::runner::in_process_case(c, decode(c));
                r.duration = start.elapsed();
                r
            })
            .collect();
        info.elapsed = t.elapsed();
        crate::runner::Run { cases: &self.cases, results, info }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_has_at_least_500_uniquely_named_cases() {
        let all = cases();
        assert!(all.len() >= 500, "{} cases", all.len());
        let mut names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "case names are unique");
        for class in Class::ALL.into_iter().filter(|c| *c != Class::Corpus) {
            assert!(all.iter().any(|c| c.class == class), "no case in class {}", class.name());
        }
    }

    #[test]
    fn the_whole_suite_runs_in_process_over_the_reference_decoder() {
        let suite = Suite::standard();
        let run = suite.run("reference", crate::reference::decode);
        assert_eq!(run.results.len(), suite.cases().len());
        assert!(run.passed(), "{}", run.failures());
        let json: serde_json::Value = serde_json::from_str(&run.json()).unwrap();
        assert_eq!(json["passed"], suite.cases().len());
        assert_eq!(json["transport"], "in-process");
    }

    #[test]
    fn smarty_tampering_changes_only_what_the_tag_protects() {
        let all = cases();
        let tampered = all.iter().find(|c| c.name == "encrypted/sagemcom-t210d-lu/ciphertext-tampered/s1").unwrap();
        let clean = all.iter().find(|c| c.name == "encrypted/sagemcom-t210d-lu/clean/s1").unwrap();
        assert_eq!(tampered.input.len(), clean.input.len());
        let differing = tampered.input.iter().zip(&clean.input).filter(|(a, b)| a != b).count();
        assert!((1..=5).contains(&differing), "one digit and the CRC: {differing} bytes");
        // The tag catches it: p1sim's decoder reports telegrams 1 and 3 only.
        assert_eq!(crate::reference::decode(tampered).len(), 2);
        let model = &tampered.telegrams[1].model;
        assert_ne!(model.line("1-0:1.8.0"), clean.telegrams[1].model.line("1-0:1.8.0"));
    }

    #[test]
    fn generation_is_deterministic() {
        let a = cases();
        let b = cases();
        assert!(a.iter().zip(&b).all(|(x, y)| x.name == y.name && x.input == y.input && x.telegrams == y.telegrams));
    }
}
