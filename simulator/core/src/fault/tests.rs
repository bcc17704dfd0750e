//! Each fault's exact effect on a known telegram, and determinism of composition and seeding.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::decode::decode_all;

/// The arduino-dsmr README vector plus a gas reading: small enough to state effects exactly.
fn telegram() -> Telegram {
    Telegram::new(
        "KFM5KAIFA-METER",
        vec![
            Line::from_rendered("1-0:1.8.1".into(), "(000671.578*kWh)"),
            Line::from_rendered("1-0:1.7.0".into(), "(00.318*kW)"),
            Line::from_rendered("0-1:24.2.1".into(), "(150117180000W)(00473.789*m3)"),
        ],
        Checksum::Computed,
    )
}

fn clean() -> Vec<u8> {
    telegram().to_bytes()
}

fn one(f: Fault) -> Faulted {
    apply(&telegram(), &[f], 7, 0)
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether the reference decoder accepts the bytes as exactly one valid telegram.
fn accepted(bytes: &[u8]) -> bool {
    let d = decode_all(bytes, None);
    d.len() == 1 && d[0].1
}

#[test]
fn wrong_crc_changes_only_the_digits() {
    let f = one(Fault::WrongCrc);
    let c = clean();
    assert_eq!(f.bytes.len(), c.len());
    assert_eq!(f.bytes[..c.len() - 6], c[..c.len() - 6]);
    assert_ne!(f.bytes[c.len() - 6..c.len() - 2], c[c.len() - 6..c.len() - 2]);
    assert_eq!(f.expect(), Expect::Reject);
    assert!(!accepted(&f.bytes));
}

#[test]
fn lowercase_and_unpadded_crc_keep_the_value() {
    let c = s(&clean());
    let crc = &c[c.len() - 6..c.len() - 2];
    let f = one(Fault::LowercaseCrc);
    assert_eq!(s(&f.bytes), c.replace(crc, &crc.to_lowercase()));
    let f = one(Fault::UnpaddedCrc);
    assert_eq!(s(&f.bytes), c.replace(&format!("!{crc}"), &format!("!{}", crc.trim_start_matches('0'))));
}

#[test]
fn unpadded_crc_drops_exactly_the_leading_zeros() {
    let mut bytes = b"/X5\r\n\r\n!0B9F\r\n".to_vec();
    let rec = apply_bytes(&Fault::UnpaddedCrc, &mut bytes, &mut Draws::new(0, 0, 0), false);
    assert_eq!(bytes, b"/X5\r\n\r\n!B9F\r\n");
    assert_eq!(rec.expect, Expect::AcceptLenient);
}

#[test]
fn missing_crc_leaves_a_bare_bang() {
    let f = one(Fault::MissingCrc);
    assert!(s(&f.bytes).ends_with("m3)\r\n!\r\n"));
    assert_eq!(f.expect(), Expect::Reject);
    let mut modern = telegram();
    modern.lines.insert(0, Line::from_rendered("1-3:0.2.8".into(), "(50)"));
    let f = apply(&modern, &[Fault::MissingCrc], 7, 0);
    assert!(!accepted(&f.bytes), "a telegram with a DSMR 4+ version line but no CRC is not valid");
}

#[test]
fn truncation_cuts_at_the_position() {
    let f = one(Fault::Truncate { at: Position::At(30) });
    assert_eq!(f.bytes, clean()[..30]);
    let f = one(Fault::Truncate { at: Position::Random(RandomWord::Random) });
    assert!(f.bytes.len() < clean().len() && clean().starts_with(&f.bytes));
    assert_eq!(f.expect(), Expect::Reject);
}

#[test]
fn garbage_goes_before_or_after_and_never_holds_a_slash() {
    let f = one(Fault::GarbageBefore { bytes: 40 });
    assert_eq!(f.bytes.len(), clean().len() + 40);
    assert!(f.bytes.ends_with(&clean()));
    assert!(!f.bytes[..40].contains(&b'/'));
    assert!(accepted(&f.bytes));
    let f = one(Fault::GarbageAfter { bytes: 40 });
    assert!(f.bytes.starts_with(&clean()));
    assert!(!f.bytes[clean().len()..].contains(&b'/'));
}

#[test]
fn slash_inside_is_covered_by_the_crc_unless_kept() {
    let f = one(Fault::SlashInside { crc: CrcMode::Auto });
    assert_eq!(f.bytes.iter().filter(|&&b| b == b'/').count(), 2);
    assert_eq!(f.expect(), Expect::AcceptLenient);
    assert!(accepted(&f.bytes), "the reference decoder keeps a telegram whose CRC covers an inner `/`");
    let f = one(Fault::SlashInside { crc: CrcMode::Keep });
    assert_eq!(f.expect(), Expect::Reject);
    assert!(!accepted(&f.bytes));
}

#[test]
fn nul_goes_right_after_the_crc() {
    let f = one(Fault::NulAfterCrc);
    let c = clean();
    assert_eq!(f.bytes[..c.len() - 2], c[..c.len() - 2]);
    assert_eq!(&f.bytes[c.len() - 2..], b"\0\r\n");
    assert!(accepted(&f.bytes));
}

#[test]
fn ff_padding_follows_the_telegram() {
    let f = one(Fault::FfPadding { bytes: 5 });
    assert_eq!(f.bytes, [clean(), vec![0xFF; 5]].concat());
}

#[test]
fn dropped_and_duplicated_lines_keep_the_meters_crc() {
    let f = one(Fault::DropLine { line: Some(1), crc: CrcMode::Auto });
    let c = s(&clean());
    assert_eq!(s(&f.bytes), c.replace("1-0:1.7.0(00.318*kW)\r\n", ""));
    assert_eq!(f.model.lines.len(), 2);
    assert_eq!(f.expect(), Expect::Reject);
    let f = one(Fault::DuplicateLine { line: Some(0), crc: CrcMode::Auto });
    assert_eq!(
        s(&f.bytes),
        c.replace("1-0:1.8.1(000671.578*kWh)\r\n", "1-0:1.8.1(000671.578*kWh)\r\n1-0:1.8.1(000671.578*kWh)\r\n")
    );
    let f = one(Fault::DropLine { line: Some(1), crc: CrcMode::Recompute });
    assert_eq!(f.expect(), Expect::AcceptLenient);
    assert!(accepted(&f.bytes));
}

#[test]
fn lf_only_removes_every_cr_and_recomputes() {
    let f = one(Fault::LfOnly { crc: CrcMode::Auto });
    assert!(!f.bytes.contains(&b'\r'));
    assert_eq!(f.bytes.iter().filter(|&&b| b == b'\n').count(), 6);
    assert!(accepted(&f.bytes), "the CRC was computed over the LF text");
    let f = one(Fault::LfOnly { crc: CrcMode::Keep });
    assert!(!accepted(&f.bytes));
}

#[test]
fn oversize_puts_2048_hex_digits_in_the_text_message() {
    let f = one(Fault::Oversize { chars: 1024 });
    let line = f.model.line("0-0:96.13.0").unwrap();
    assert_eq!(line.values[0].text.len(), 2048);
    assert!(f.bytes.len() > 2048 + clean().len());
    assert!(accepted(&f.bytes));
}

#[test]
fn bit_flips_at_exact_positions() {
    let f = one(Fault::BitFlip { ber: 0.0, positions: vec![(20, 0), (21, 7)] });
    let c = clean();
    let diff: Vec<usize> = (0..c.len()).filter(|&i| c[i] != f.bytes[i]).collect();
    assert_eq!(diff, [20, 21]);
    assert_eq!(f.bytes[20] ^ c[20], 1);
    assert_eq!(f.bytes[21] ^ c[21], 0x80);
    assert_eq!(f.expect(), Expect::Reject);
}

#[test]
fn bit_flip_rate_is_roughly_the_ber() {
    let long = Telegram { lines: (0..200).map(|_| telegram().lines[0].clone()).collect(), ..telegram() };
    let bits = long.to_bytes().len() * 8;
    let total: usize = (0..50)
        .map(|i| {
            let f = apply(&long, &[Fault::BitFlip { ber: 1e-3, positions: vec![] }], 1, i);
            f.bytes.iter().zip(long.to_bytes()).map(|(a, b)| (a ^ b).count_ones() as usize).sum::<usize>()
        })
        .sum();
    let expected = bits as f64 * 50.0 * 1e-3;
    assert!((total as f64 / expected - 1.0).abs() < 0.15, "{total} flips, expected about {expected}");
}

#[test]
fn placeholders() {
    let f = one(Fault::Placeholder { value: Placeholder::ClockNotSet });
    assert!(s(&f.bytes).contains("0-1:24.2.1(000101010000W)(00473.789*m3)"));
    assert!(accepted(&f.bytes));
    let f = one(Fault::Placeholder { value: Placeholder::NoData });
    assert!(s(&f.bytes).contains("0-1:24.2.1(632525252525W)"));
    let f = one(Fault::Placeholder { value: Placeholder::GhostMbus });
    let text = s(&f.bytes);
    assert!(
        text.contains(
            "0-1:24.1.0(003)\r\n0-1:96.1.0()\r\n0-1:24.2.1(700101010000W)(00000000)\r\n0-2:24.2.1(150117180000W)"
        ),
        "{text}"
    );
    assert!(accepted(&f.bytes));
}

#[test]
fn lowercase_units_and_space_after_obis() {
    let f = one(Fault::LowercaseUnits);
    let text = s(&f.bytes);
    assert!(text.contains("*kwh)") && text.contains("*kw)") && text.contains("*m3)"));
    assert_eq!(f.expect(), Expect::AcceptLenient);
    assert!(accepted(&f.bytes));
    let f = one(Fault::SpaceAfterObis);
    assert_eq!(f.bytes.windows(2).filter(|w| w == b" (").count(), 1);
    assert_eq!(f.expect(), Expect::AcceptLenient);
    assert!(accepted(&f.bytes), "whitespace after the OBIS code is tolerated");
}

#[test]
fn legacy_telegrams_without_crc_cannot_detect_damage() {
    let legacy = Telegram { checksum: Checksum::None, ..telegram() };
    let f = apply(&legacy, &[Fault::BitFlip { ber: 0.0, positions: vec![(30, 1)] }], 1, 0);
    assert_eq!(f.expect(), Expect::Unspecified);
    let f = apply(&legacy, &[Fault::DropLine { line: Some(0), crc: CrcMode::Auto }], 1, 0);
    assert_eq!(f.expect(), Expect::Unspecified);
}

#[test]
fn composition_is_ordered_and_deterministic() {
    let faults = [
        Fault::LowercaseUnits,
        Fault::BitFlip { ber: 5e-3, positions: vec![] },
        Fault::GarbageBefore { bytes: 8 },
        Fault::Truncate { at: Position::Random(RandomWord::Random) },
    ];
    let a = apply(&telegram(), &faults, 99, 5);
    let b = apply(&telegram(), &faults, 99, 5);
    assert_eq!(a, b);
    assert_eq!(
        a.applied.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["lowercase-units", "bit-flip", "garbage-before", "truncate"]
    );
    let c = apply(&telegram(), &faults, 100, 5);
    assert_ne!(a.bytes, c.bytes, "another seed, other bytes");
    let d = apply(&telegram(), &faults, 99, 6);
    assert_ne!(a.bytes, d.bytes, "another telegram, other bytes");
}

#[test]
fn a_telegram_without_crc_cut_at_a_line_end_may_be_taken_for_a_whole_one() {
    let legacy = Telegram::new(
        "ISk5\\2MT382-1003",
        vec![
            Line::from_rendered("1-0:1.8.1".into(), "(39837.604*kWh)"),
            Line::from_rendered("0-1:24.3.0".into(), "(250423090000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(13032.850)"),
            Line::from_rendered("0-1:24.4.0".into(), "(1)"),
        ],
        Checksum::None,
    );
    let bytes = legacy.to_bytes();
    let expect_at = |cut: &[u8]| {
        let n = bytes.windows(cut.len()).position(|w| w == cut).unwrap() + cut.len();
        apply(&legacy, &[Fault::Truncate { at: Position::At(n) }], 1, 0).expect()
    };
    assert_eq!(expect_at(b"kWh)\r\n"), Expect::Unspecified, "after a whole line");
    assert_eq!(expect_at(b"(39837"), Expect::Reject, "a line cut mid-way");
    assert_eq!(expect_at(b"(m3)\r\n"), Expect::Reject, "a gas record without its value line");
    assert_eq!(expect_at(b"003\r\n\r\n"), Expect::Reject, "no data line yet");
    assert_eq!(
        apply(&telegram(), &[Fault::Truncate { at: Position::At(40) }], 1, 0).expect(),
        Expect::Reject,
        "with a CRC, a cut is always detectable"
    );
    let full = clean().len();
    let after_crc = apply(&telegram(), &[Fault::Truncate { at: Position::At(full - 2) }], 1, 0);
    assert_eq!(after_crc.expect(), Expect::AcceptLenient, "whole, but its last line unended");
    assert_eq!(after_crc.bytes, &clean()[..full - 2]);
}
