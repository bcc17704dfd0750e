//! Properties of the wire model: encoder then receiver is the identity at any baud, framing,
//! polarity, gap and sample phase; one flipped stop or parity bit is exactly one error on that
//! character; skew inside the receiver's derived tolerance decodes, beyond it fails as real
//! UARTs do; the rig's slot stream decodes like the picosecond line.

use p1sim_core::spec::{Framing, LineSettings, Parity};
use p1sim_core::wire::coding::{CharFrame, parity_index, stop_index};
use p1sim_core::wire::encode::encode_to_vec;
use p1sim_core::wire::receiver::receive;
use p1sim_core::wire::slots::slots_to_runs;
use p1sim_core::wire::{
    BitFault, BitSpan, FaultPlan, Polarity, ReceiverConfig, Run, RxChar, SlotConfig, SlotEncoder, Symbol,
};
use proptest::prelude::*;

fn framing() -> impl Strategy<Value = Framing> {
    (5u8..=8, prop_oneof![Just(Parity::None), Just(Parity::Even), Just(Parity::Odd)], 1u8..=2)
        .prop_map(|(data_bits, parity, stop_bits)| Framing { data_bits, parity, stop_bits })
}

fn baud() -> impl Strategy<Value = u32> {
    prop_oneof![Just(9600u32), Just(115_200), Just(2400), 300u32..=3_000_000]
}

fn line() -> impl Strategy<Value = LineSettings> {
    (baud(), framing()).prop_map(|(baud, framing)| LineSettings { baud, framing })
}

fn bit_ps(line: LineSettings) -> u64 {
    1_000_000_000_000 / u64::from(line.baud) + 1
}

fn mask(line: LineSettings) -> u8 {
    (0xFFu16 >> (8 - line.framing.data_bits)) as u8
}

/// Encodes between 20 bit times of idle and receives with a receiver of the same settings.
fn round_trip(
    line: LineSettings,
    polarity: Polarity,
    plan: FaultPlan<&[BitFault]>,
    bytes: &[u8],
    phase: u8,
) -> Vec<RxChar> {
    let runs = encode_to_vec(line, polarity, plan, bytes, 20 * bit_ps(line), 20 * bit_ps(line)).unwrap();
    let cfg = ReceiverConfig { input: polarity, phase, ..ReceiverConfig::new(line) };
    receive(cfg, &runs).unwrap()
}

fn bytes_of(got: &[RxChar]) -> Vec<u8> {
    got.iter().map(|c| c.byte).collect()
}

fn masked(line: LineSettings, bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b & mask(line)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn a_clean_line_is_the_identity(
        line in line(),
        bytes in proptest::collection::vec(any::<u8>(), 1..48),
        inverted in any::<bool>(),
        phase in any::<u8>(),
        gap in prop_oneof![Just(0u32), 0u32..1024],
    ) {
        let polarity = if inverted { Polarity::Inverted } else { Polarity::Normal };
        let plan = FaultPlan { gap: BitSpan(gap), ..FaultPlan::CLEAN };
        let got = round_trip(line, polarity, plan, &bytes, phase);
        prop_assert_eq!(bytes_of(&got), masked(line, &bytes));
        prop_assert!(got.iter().all(RxChar::is_clean), "{:?}", got);
    }

    #[test]
    fn one_flipped_stop_bit_is_one_framing_error(
        line in line(),
        bytes in proptest::collection::vec(any::<u8>(), 1..32),
        pick in any::<prop::sample::Index>(),
        phase in any::<u8>(),
        gap_bits in prop_oneof![Just(0u32), 1u32..=3],
    ) {
        let mut bytes = bytes;
        let i = pick.index(bytes.len());
        // With no mark before the stop bit the flipped frame is all space: a break, not a framing
        // error (see wire_faults.rs); keep one data bit set.
        if bytes[i] & mask(line) == 0 {
            bytes[i] |= 1;
        }
        let faults = [BitFault::Flip { char: i as u32, bit: stop_index(line.framing) }];
        let plan = FaultPlan { faults: &faults[..], gap: BitSpan::bits(gap_bits), ..FaultPlan::CLEAN };
        let got = round_trip(line, Polarity::Normal, plan, &bytes, phase);
        prop_assert_eq!(bytes_of(&got), masked(line, &bytes));
        for (k, c) in got.iter().enumerate() {
            prop_assert_eq!(c.framing_error, k == i, "character {}: {:?}", k, c);
            prop_assert!(!c.parity_error && !c.brk);
        }
    }

    #[test]
    fn one_flipped_parity_bit_is_one_parity_error(
        baud in baud(),
        data_bits in 5u8..=8,
        odd in any::<bool>(),
        stop_bits in 1u8..=2,
        bytes in proptest::collection::vec(any::<u8>(), 1..32),
        pick in any::<prop::sample::Index>(),
        phase in any::<u8>(),
    ) {
        let parity = if odd { Parity::Odd } else { Parity::Even };
        let line = LineSettings { baud, framing: Framing { data_bits, parity, stop_bits } };
        let i = pick.index(bytes.len());
        let faults = [BitFault::Flip { char: i as u32, bit: parity_index(line.framing).unwrap() }];
        let plan = FaultPlan { faults: &faults[..], ..FaultPlan::CLEAN };
        let got = round_trip(line, Polarity::Normal, plan, &bytes, phase);
        prop_assert_eq!(bytes_of(&got), masked(line, &bytes));
        for (k, c) in got.iter().enumerate() {
            prop_assert_eq!(c.parity_error, k == i, "character {}: {:?}", k, c);
            prop_assert!(!c.framing_error && !c.brk);
        }
    }

    /// Back to back, any data, any phase: the bounds of `skew_tolerance_ppm` hold.
    #[test]
    fn skew_inside_the_tolerance_decodes(
        line in line(),
        bytes in proptest::collection::vec(any::<u8>(), 1..48),
        phase in any::<u8>(),
        at in 0.0f64..=1.0,
    ) {
        let (slow, fast) = ReceiverConfig::new(line).skew_tolerance_ppm();
        // 200 ppm of margin covers the picosecond rounding of edges and samples.
        let ppm = (slow + 200) + ((fast - slow - 400) as f64 * at) as i32;
        let plan = FaultPlan { skew_ppm: ppm, ..FaultPlan::CLEAN };
        let got = round_trip(line, Polarity::Normal, plan, &bytes, phase);
        prop_assert_eq!(bytes_of(&got), masked(line, &bytes), "skew {} ppm", ppm);
        prop_assert!(got.iter().all(RxChar::is_clean), "skew {} ppm: {:?}", ppm, got);
    }

    /// A transmitter slower than the phase-independent limit -9/(16m+9) has every first stop
    /// bit sampled inside the bit before it: a framing error exactly where that bit is a space
    /// (a break where the whole frame then reads as space).
    #[test]
    fn too_slow_a_transmitter_breaks_the_stop_bits(
        line in line(),
        bytes in proptest::collection::vec(any::<u8>(), 1..48),
        phase in any::<u8>(),
    ) {
        let m = i64::from(stop_index(line.framing));
        let ppm = (-9_000_000 / (16 * m + 9) - 3_000) as i32;
        let plan = FaultPlan { skew_ppm: ppm, ..FaultPlan::CLEAN };
        let got = round_trip(line, Polarity::Normal, plan, &bytes, phase);
        prop_assert_eq!(got.len(), bytes.len());
        for (c, b) in got.iter().zip(&bytes) {
            let before_stop = CharFrame::new(*b, line.framing).symbol(m as u8 - 1);
            prop_assert_eq!(c.framing_error || c.brk, before_stop == Symbol::Space, "{:?} for {:#04x}", c, b);
        }
    }

    /// One stop bit, back to back, faster than 6/(16m+10): the receiver re-arms later with every
    /// character until a stop bit is sampled in the next start bit.
    #[test]
    fn too_fast_a_transmitter_fails_within_a_few_characters(
        baud in baud(),
        data_bits in 5u8..=8,
        parity in prop_oneof![Just(Parity::None), Just(Parity::Even), Just(Parity::Odd)],
        bytes in proptest::collection::vec(any::<u8>(), 40..64),
        phase in any::<u8>(),
    ) {
        let line = LineSettings { baud, framing: Framing { data_bits, parity, stop_bits: 1 } };
        let (_, fast) = ReceiverConfig::new(line).skew_tolerance_ppm();
        let plan = FaultPlan { skew_ppm: fast + 3_000, ..FaultPlan::CLEAN };
        let got = round_trip(line, Polarity::Normal, plan, &bytes, phase);
        let clean = got.len() == bytes.len() && got.iter().all(RxChar::is_clean) && bytes_of(&got) == masked(line, &bytes);
        prop_assert!(!clean, "{} ppm decoded cleanly", fast + 3_000);
    }

    /// Two stop bits: faster than 1/(2m-1) the last data (or parity) bit is sampled in the stop
    /// bit, so a character whose bit m-1 is a space cannot come through.
    #[test]
    fn too_fast_with_two_stop_bits_misreads_the_last_bit(
        baud in baud(),
        data_bits in 5u8..=8,
        parity in prop_oneof![Just(Parity::None), Just(Parity::Even), Just(Parity::Odd)],
        mut bytes in proptest::collection::vec(any::<u8>(), 1..16),
        phase in any::<u8>(),
    ) {
        let line = LineSettings { baud, framing: Framing { data_bits, parity, stop_bits: 2 } };
        let m = i64::from(stop_index(line.framing));
        // Make the first character's bit m-1 a space: 0 data (or a 0 parity bit with even parity).
        bytes[0] = match parity {
            Parity::Odd => 0x01,
            _ => 0x00,
        };
        prop_assert_eq!(CharFrame::new(bytes[0], line.framing).symbol(m as u8 - 1), Symbol::Space);
        let ppm = (1_000_000 / (2 * m - 1) + 3_000) as i32;
        let plan = FaultPlan { skew_ppm: ppm, ..FaultPlan::CLEAN };
        let got = round_trip(line, Polarity::Normal, plan, &bytes, phase);
        prop_assert!(got.first().is_none_or(|c| !c.is_clean() || c.byte != bytes[0] & mask(line)), "{:?}", got.first());
    }

    /// The rig's path: slot words shifted out at `oversample` slots per bit decode to the bytes.
    #[test]
    fn the_slot_stream_decodes_like_the_line(
        line in (prop_oneof![Just(9600u32), Just(115_200)], framing()).prop_map(|(baud, framing)| LineSettings { baud, framing }),
        bytes in proptest::collection::vec(any::<u8>(), 1..48),
        oversample in prop_oneof![Just(8u8), 4u8..=16],
        phase in any::<u8>(),
        chunk in 1usize..40,
    ) {
        let cfg = SlotConfig { line, oversample, polarity: Polarity::Inverted };
        let mut enc = SlotEncoder::new(cfg, FaultPlan::CLEAN).unwrap();
        // A pin at idle (low) for 32 slots, then the stream, filled in chunks as the firmware would.
        let mut words = vec![0u32];
        let mut src = bytes.iter().copied();
        loop {
            let mut buf = vec![0u32; chunk];
            let f = enc.fill(&mut buf, &mut src);
            words.extend_from_slice(&buf[..f.words]);
            if f.drained {
                break;
            }
        }
        words.extend_from_slice(&[enc.idle_word(); 16]);
        let mut runs: Vec<Run> = Vec::new();
        slots_to_runs(&words, words.len() as u64 * 32, line.baud, oversample, &mut |r| runs.push(r));
        let got = receive(ReceiverConfig { input: Polarity::Inverted, phase, ..ReceiverConfig::new(line) }, &runs).unwrap();
        prop_assert_eq!(bytes_of(&got), masked(line, &bytes));
        prop_assert!(got.iter().all(RxChar::is_clean));
    }
}
