//! Decoder robustness: any bytes in any chunking, without panics, with the same result however
//! the input is split; telegrams survive garbage, truncation and resync.

use p1sim_core::decode::{Decoder, Discard, Event};
use p1sim_core::generator::Generator;
use p1sim_core::telegram::Telegram;
use proptest::prelude::*;

/// Everything the decoder reports, in order, as owned values.
#[derive(Debug, PartialEq)]
enum Seen {
    Telegram(Telegram, bool),
    Discarded(Discard, usize),
}

fn run(chunks: &[&[u8]]) -> Vec<Seen> {
    let mut d = Decoder::new().with_key([7; 16]).with_max_len(4096);
    let mut seen = Vec::new();
    let mut push = |ev: Event<'_>| match ev {
        Event::Telegram(f) => seen.push(Seen::Telegram(f.to_telegram(), f.is_valid())),
        Event::Discarded { reason, bytes } => seen.push(Seen::Discarded(reason, bytes)),
    };
    for c in chunks {
        d.feed(c, &mut push);
    }
    d.finish(&mut push);
    seen
}

/// Merges adjacent garbage reports, whose split legitimately depends on chunk boundaries.
fn normalise(seen: Vec<Seen>) -> Vec<Seen> {
    let mut out: Vec<Seen> = Vec::new();
    for s in seen {
        if let (Some(Seen::Discarded(Discard::Garbage, n)), Seen::Discarded(Discard::Garbage, m)) = (out.last_mut(), &s)
        {
            *n += m;
            continue;
        }
        out.push(s);
    }
    out
}

fn telegrams(profile: &str, seed: u64, count: usize) -> Vec<Vec<u8>> {
    let p = p1sim_core::builtin::get(profile).unwrap().unwrap();
    let mut g = Generator::new(p.clone(), p.household.clone(), seed, 1_700_000_000, None).unwrap();
    (0..count)
        .map(|_| {
            let mut b = Vec::new();
            g.next_into(&mut b);
            b
        })
        .collect()
}

fn split_at_points(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.iter_mut().for_each(|c| *c %= bytes.len() + 1);
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut prev = 0;
    for c in cuts {
        chunks.push(&bytes[prev..c]);
        prev = c;
    }
    chunks.push(&bytes[prev..]);
    chunks
}

/// Bytes that look like telegram fragments, so the fuzzing reaches the interesting states.
fn telegramish() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"/".to_vec()),
        Just(b"!".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"1-0:1.8.1(000123.456*kWh)".to_vec()),
        Just(b"(".to_vec()),
        Just(b")".to_vec()),
        Just(b"!1E1D".to_vec()),
        Just(vec![0xDB, 0x08]),
        Just(b"SYSTEMID\x82\x00\x40\x30".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_any_chunking_same_result(bytes in prop_oneof![telegramish(), proptest::collection::vec(any::<u8>(), 0..600)],
                                          cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let whole = normalise(run(&[&bytes]));
        let split = normalise(run(&split_at_points(&bytes, cuts)));
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn garbage_between_telegrams_is_skipped(seed in 0u64..1000,
                                            garbage in proptest::collection::vec(any::<u8>().prop_filter("no frame starts", |b| *b != b'/' && *b != 0xDB), 0..200)) {
        let ts = telegrams("sagemcom-t210d", seed, 3);
        let mut stream = garbage.clone();
        for t in &ts {
            stream.extend_from_slice(t);
            stream.extend_from_slice(&garbage);
        }
        let got: Vec<_> = run(&[&stream]).into_iter().filter_map(|s| match s { Seen::Telegram(t, v) => Some((t, v)), _ => None }).collect();
        prop_assert_eq!(got.len(), 3);
        for ((t, valid), sent) in got.iter().zip(&ts) {
            prop_assert!(valid);
            prop_assert_eq!(&t.to_bytes(), sent);
        }
    }

    #[test]
    fn a_telegram_cut_anywhere_is_discarded_and_the_next_one_survives(seed in 0u64..1000, cut in 1usize..1000) {
        let ts = telegrams("iskra-am550", seed, 2);
        let cut = cut % (ts[0].len() - 6) + 1;
        let mut stream = ts[0][..cut].to_vec();
        stream.extend_from_slice(&ts[1]);
        let seen = run(&[&stream]);
        let valid: Vec<_> = seen.iter().filter(|s| matches!(s, Seen::Telegram(_, true))).collect();
        prop_assert_eq!(valid.len(), 1, "{:?}", seen);
        // Cut before its `!`, it is incomplete; cut right after it, it is a telegram without CRC.
        prop_assert!(
            seen.iter().any(|s| matches!(s, Seen::Discarded(Discard::Incomplete, _) | Seen::Telegram(_, false))),
            "{:?}",
            seen
        );
        if let Seen::Telegram(t, _) = valid[0] {
            prop_assert_eq!(t.to_bytes(), ts[1].clone());
        }
    }
}

#[test]
fn a_slash_inside_the_header_keeps_the_telegram_when_the_crc_covers_it() {
    // Holley DTSD545 units send /HLY5/D545-METER (docs/quirks.md#slash-inside-a-telegram): the CRC
    // runs from the first `/`.
    let body = b"/HLY5/D545-METER\r\n\r\n1-0:1.8.0(00007137.694*kWh)\r\n!";
    let mut t = body.to_vec();
    t.extend_from_slice(&p1sim_core::crc::crc_hex(p1sim_core::crc::crc16(body)));
    t.extend_from_slice(b"\r\n");
    let seen = run(&[&t]);
    assert_eq!(seen.len(), 1, "{seen:?}");
    match &seen[0] {
        Seen::Telegram(tg, valid) => {
            assert!(valid);
            assert_eq!(tg.header, "HLY5/D545-METER");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_oversize_candidate_is_dropped_and_decoding_goes_on() {
    let ts = telegrams("kaifa-ma304", 3, 1);
    let mut stream = b"/XYZ5 endless\r\n".to_vec();
    stream.extend(std::iter::repeat_n(b'0', 10_000));
    stream.extend_from_slice(&ts[0]);
    let seen = run(&[&stream]);
    assert!(seen.iter().any(|s| matches!(s, Seen::Discarded(Discard::Overflow, _))), "{seen:?}");
    assert!(matches!(seen.last(), Some(Seen::Telegram(_, true))), "{seen:?}");
}
