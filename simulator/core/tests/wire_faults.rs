//! The exact effect of every bit-level fault, and of the classic misconfigurations, on what a
//! 16× UART receiver delivers: each test states the characters and flags it expects.

use p1sim_core::spec::{Framing, LineSettings, Parity};
use p1sim_core::wire::encode::encode_to_vec;
use p1sim_core::wire::receiver::receive;
use p1sim_core::wire::{BitFault, BitSpan, FaultPlan, Polarity, ReceiverConfig, RxChar, Symbol};

const N81: LineSettings = LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 };
const E71: LineSettings = LineSettings { baud: 9600, framing: Framing::SEVEN_E1 };

/// One bit time at `line`, in picoseconds (rounded up).
fn bit(line: LineSettings) -> u64 {
    1_000_000_000_000 / u64::from(line.baud) + 1
}

/// `(byte, framing error, parity error, break)` of every character received.
type Got = Vec<(u8, bool, bool, bool)>;

/// Sends `bytes` with `faults` between 20 bit times of idle into a receiver with `cfg`, at
/// several sample-clock phases; every phase must give the same characters.
fn send_with(
    line: LineSettings,
    polarity: Polarity,
    plan: FaultPlan<&[BitFault]>,
    bytes: &[u8],
    cfg: ReceiverConfig,
) -> Got {
    let runs = encode_to_vec(line, polarity, plan, bytes, 20 * bit(line), 20 * bit(line)).unwrap();
    let mut first: Option<Got> = None;
    for phase in [0u8, 37, 128, 201, 255] {
        let got: Got = receive(ReceiverConfig { phase, ..cfg }, &runs)
            .unwrap()
            .iter()
            .map(|c: &RxChar| (c.byte, c.framing_error, c.parity_error, c.brk))
            .collect();
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f, "phase {phase} differs"),
        }
    }
    first.unwrap()
}

fn send(line: LineSettings, faults: &[BitFault], bytes: &[u8]) -> Got {
    let plan = FaultPlan { faults, ..FaultPlan::CLEAN };
    send_with(line, Polarity::Normal, plan, bytes, ReceiverConfig::new(line))
}

fn clean(bytes: &[u8]) -> Got {
    bytes.iter().map(|&b| (b, false, false, false)).collect()
}

#[test]
fn no_fault_no_change() {
    assert_eq!(send(N81, &[], b"/ISK5\\2M550T-1012\r\n"), clean(b"/ISK5\\2M550T-1012\r\n"));
    assert_eq!(send(E71, &[], b"/KMP5 KA6U001551500611\r\n"), clean(b"/KMP5 KA6U001551500611\r\n"));
}

#[test]
fn a_flipped_stop_bit_is_one_framing_error_and_the_next_character_survives() {
    // The receiver takes the low stop bit as the next start bit, 3/8 bit early, and still
    // samples every bit of 'B' inside it (the 16550 resynchronisation).
    let got = send(N81, &[BitFault::Flip { char: 0, bit: 9 }], b"ABC");
    assert_eq!(got, [(b'A', true, false, false), (b'B', false, false, false), (b'C', false, false, false)]);
}

#[test]
fn a_flipped_stop_bit_on_a_nul_is_a_break_that_swallows_the_next_character() {
    // NUL with its stop bit flipped is ten bit times of space: a break. The receiver then waits
    // for mark, which the next NUL only shows at its stop bit, so that NUL is lost; 'A' is fine.
    let got = send(N81, &[BitFault::Flip { char: 0, bit: 9 }], b"\0\0A");
    assert_eq!(got, [(0, false, false, true), (b'A', false, false, false)]);
}

#[test]
fn a_flipped_parity_bit_is_one_parity_error() {
    let got = send(E71, &[BitFault::Flip { char: 1, bit: 8 }], b"ABC");
    assert_eq!(got, [(b'A', false, false, false), (b'B', false, true, false), (b'C', false, false, false)]);
}

#[test]
fn a_flipped_data_bit_changes_the_byte_and_only_parity_can_tell() {
    // Data bit 0 is bit time 1.
    assert_eq!(send(N81, &[BitFault::Flip { char: 0, bit: 1 }], b"A"), clean(b"@"));
    assert_eq!(send(E71, &[BitFault::Flip { char: 0, bit: 1 }], b"A"), [(b'@', false, true, false)]);
}

#[test]
fn a_flipped_start_bit_starts_the_character_at_its_first_zero_data_bit() {
    // 'A' = 0x41 sends (after the now-mark start bit) data 1 0 0 0 0 0 1 0, stop 1, idle. The
    // receiver starts at data bit 1 (the first space), reads 0 0 0 0 1 0 1 1 (the stop bit and
    // the idle after it as data bits 6 and 7) and a mark stop bit: 0xD0, no flag.
    assert_eq!(send(N81, &[BitFault::Flip { char: 0, bit: 0 }], b"A"), clean(&[0xD0]));
}

#[test]
fn glitches_in_idle_are_rejected_or_become_0xff() {
    // Glitches belong to a character and may reach into the idle after it: with a gap of 20
    // bits after 'A', a space glitch 15 bits after its start edge is in idle.
    let with_glitch = |width: BitSpan| {
        let g = [BitFault::Glitch { char: 0, at: BitSpan::bits(15), width, level: Symbol::Space }];
        let plan = FaultPlan { faults: &g[..], gap: BitSpan::bits(20), ..FaultPlan::CLEAN };
        send_with(N81, Polarity::Normal, plan, b"A", ReceiverConfig::new(N81))
    };
    // A quarter bit: the start bit fails its mid-bit check, nothing more is received.
    assert_eq!(with_glitch(BitSpan(64)), clean(b"A"));
    // A whole bit: a valid start bit followed by marks: 0xFF.
    assert_eq!(with_glitch(BitSpan::bits(1)), clean(b"A\xFF"));
}

#[test]
fn a_glitch_over_the_middle_samples_flips_a_bit_and_a_narrow_one_is_voted_away() {
    // Data bit 2 is bit time 3; its samples 7, 8 and 9 of 16 fall at 3.44 to 3.63 bits (plus up
    // to 1/16 bit of start detection delay): a mark glitch over 3.375 to 3.75 sets the bit.
    let wide = [BitFault::Glitch { char: 0, at: BitSpan(864), width: BitSpan(96), level: Symbol::Mark }];
    assert_eq!(send(N81, &wide, &[0x00]), clean(&[0x04]));
    // 1/32 bit can cover one of the three samples at most: the majority vote ignores it.
    let narrow = [BitFault::Glitch { char: 0, at: BitSpan(896), width: BitSpan(8), level: Symbol::Mark }];
    assert_eq!(send(N81, &narrow, &[0x00]), clean(&[0x00]));
}

#[test]
fn extra_idle_delays_the_next_character_only() {
    let runs = |faults: &[BitFault]| {
        let plan = FaultPlan { faults, ..FaultPlan::CLEAN };
        let r = encode_to_vec(N81, Polarity::Normal, plan, b"AB", 0, 20 * bit(N81)).unwrap();
        receive(ReceiverConfig::new(N81), &r).unwrap()
    };
    let plain = runs(&[]);
    let idled = runs(&[BitFault::Idle { after: 0, length: BitSpan::bits(20) }]);
    assert_eq!(plain.iter().map(|c| c.byte).collect::<Vec<_>>(), b"AB");
    assert_eq!(idled.iter().map(|c| c.byte).collect::<Vec<_>>(), b"AB");
    assert_eq!(idled[0].at, plain[0].at);
    // 20 bits later, give or take the one sample of detection quantisation.
    let delay = idled[1].at - plain[1].at;
    assert!(delay.abs_diff(20 * 8_680_556) <= 542_535, "{delay}");
}

#[test]
fn a_break_is_one_nul_with_the_break_flag() {
    let got = send(N81, &[BitFault::Break { after: 0, length: BitSpan::bits(30) }], b"AB");
    assert_eq!(got, [(b'A', false, false, false), (0, false, false, true), (b'B', false, false, false)]);
    // A break shorter than a character is just a character: 5 bits of space (start bit and data
    // bits 0-3), then mark for data bits 4-7 and the stop bit: 0xF0.
    let got = send(N81, &[BitFault::Break { after: 0, length: BitSpan::bits(5) }], b"A");
    assert_eq!(got, clean(b"A\xF0"));
}

#[test]
fn skew_within_tolerance_decodes_and_beyond_it_fails() {
    let (slow, fast) = ReceiverConfig::new(N81).skew_tolerance_ppm();
    let text = b"1-0:1.8.1(001234.567*kWh)\r\n1-0:1.8.2(007654.321*kWh)\r\n";
    let at = |ppm: i32| {
        let plan = FaultPlan { skew_ppm: ppm, ..FaultPlan::CLEAN };
        send_with(N81, Polarity::Normal, plan, text, ReceiverConfig::new(N81))
    };
    assert_eq!(at(slow + 100), clean(text));
    assert_eq!(at(fast - 100), clean(text));
    assert_eq!(at(30_000), clean(text), "3 % is fine");
    // Slow beyond -9/153: every stop bit is sampled in the last data bit, a space in ASCII.
    // Beyond the tolerance what else goes wrong depends on the sample phase, so each phase is
    // checked on its own.
    let runs = |ppm: i32| {
        let plan = FaultPlan { skew_ppm: ppm, ..FaultPlan::CLEAN };
        encode_to_vec(N81, Polarity::Normal, plan, text, 20 * bit(N81), 20 * bit(N81)).unwrap()
    };
    let (too_slow, too_fast) = (runs(-62_000), runs(fast + 3_000));
    for phase in [0u8, 64, 128, 192, 255] {
        let rx = ReceiverConfig { phase, ..ReceiverConfig::new(N81) };
        // Slow beyond -9/153: every stop bit is sampled in the last data bit, a space in ASCII.
        let got = receive(rx, &too_slow).unwrap();
        assert_eq!(got.len(), text.len(), "phase {phase}");
        assert!(got.iter().all(|c| c.framing_error), "phase {phase}: every character has a framing error");
        // Fast beyond 6/154: the receiver re-arms later and later until a stop bit lands in
        // the next start bit.
        let got = receive(rx, &too_fast).unwrap();
        assert!(got.iter().any(|c| !c.is_clean()), "phase {phase}");
    }
}

#[test]
fn an_inverted_line_into_a_plain_uart_is_a_break_a_wrong_byte_and_a_break() {
    // The P1 line idles low: the receiver sees a long space (a break) before the first
    // character. 'A' then arrives inverted: its start bit is mark, so the receiver starts on
    // data bit 0 (space), reads 1 1 1 1 1 0 1 0 = 0x5F from the rest, and the idle after it
    // (space) as a bad stop bit; the idle low line is then another break.
    let got = send_with(N81, Polarity::Inverted, FaultPlan::CLEAN, b"A", ReceiverConfig::new(N81));
    assert_eq!(got, [(0, false, false, true), (0x5F, true, false, false), (0, false, false, true)]);
    // An inverting receiver undoes it.
    let inv = ReceiverConfig { input: Polarity::Inverted, ..ReceiverConfig::new(N81) };
    assert_eq!(send_with(N81, Polarity::Inverted, FaultPlan::CLEAN, b"A", inv), clean(b"A"));
}

#[test]
fn seven_e1_read_as_8n1_puts_the_parity_bit_in_bit_7() {
    let header = b"/KMP5 KA6U001551500611\r\n";
    let rx = ReceiverConfig::new(LineSettings { baud: 9600, framing: Framing::EIGHT_N1 });
    let got = send_with(E71, Polarity::Normal, FaultPlan::CLEAN, header, rx);
    let expect: Vec<u8> = header.iter().map(|&c| c | (((c.count_ones() & 1) as u8) << 7)).collect();
    assert_eq!(got, clean(&expect));
    assert_eq!(expect[..2], [0xAF, b'K'], "'/' has five ones, 'K' four");
}

#[test]
fn eight_n1_read_as_7e1_flags_the_characters_with_odd_weight() {
    // DSMR 4 meters read with 7E1, as dsmr_parser opens them, "work" because ASCII bit 7 (0) lands
    // in the parity slot; the parity check then fails for every character with an odd number of
    // ones.
    let text = b"/ISK5\\2M550T-1012\r\n";
    let rx = ReceiverConfig::new(LineSettings { baud: 115_200, framing: Framing::SEVEN_E1 });
    let got = send_with(N81, Polarity::Normal, FaultPlan::CLEAN, text, rx);
    let expect: Got = text.iter().map(|&c| (c, false, c.count_ones() % 2 == 1, false)).collect();
    assert_eq!(got, expect);
    assert!(got.iter().any(|c| c.2) && got.iter().any(|c| !c.2));
}

#[test]
fn odd_parity_and_two_stop_bits_round_trip() {
    let line = LineSettings { baud: 2400, framing: Framing { data_bits: 8, parity: Parity::Odd, stop_bits: 2 } };
    assert_eq!(send(line, &[], b"\x00\xFF\x55"), clean(b"\x00\xFF\x55"));
    // The first stop bit is checked: flipping it is a framing error.
    assert_eq!(send(line, &[BitFault::Flip { char: 1, bit: 10 }], b"\x00\xFF\x55")[1], (0xFF, true, false, false));
    // The second is not, but a receiver armed after the first one takes it for the next start
    // bit: 0x55 is read one bit early, as 0 1 0 1 0 1 0 1 = 0xAA with its data bit 7 (0) as
    // parity (a parity error) and its parity bit as stop bit, and the real 0x55 is lost.
    let got = send(line, &[BitFault::Flip { char: 1, bit: 11 }], b"\x00\xFF\x55");
    assert_eq!(got, [(0x00, false, false, false), (0xFF, false, false, false), (0xAA, false, true, false)]);
}
