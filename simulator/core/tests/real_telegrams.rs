//! Real telegrams from public sources (`tests/data/real-telegrams/INDEX.md` names each one's)
//! decode with their CRCs, and round-trip through the owned model byte for byte.

use std::fs;
use std::path::Path;

use p1sim_core::decode::{Decoder, Event};

struct Case {
    file: String,
    crc: Option<String>,
    bytes: Vec<u8>,
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real-telegrams");
    let index = fs::read_to_string(dir.join("INDEX.md")).unwrap();
    let cases: Vec<Case> = index
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".txt"))
        .map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            let file = cols[1].to_string();
            let crc = (!cols[2].is_empty()).then(|| cols[2].to_string());
            let bytes = fs::read(dir.join(&file)).unwrap();
            Case { file, crc, bytes }
        })
        .collect();
    assert_eq!(cases.len(), 33, "the corpus has 33 telegrams, 26 of them with a CRC");
    assert_eq!(cases.iter().filter(|c| c.crc.is_some()).count(), 26);
    cases
}

/// Counts data objects the way a reader of the listing would: lines starting with a digit.
fn object_lines(bytes: &[u8]) -> usize {
    bytes.split(|&b| b == b'\n').filter(|l| l.first().is_some_and(u8::is_ascii_digit)).count()
}

#[test]
fn every_verified_telegram_decodes_with_its_crc() {
    for case in corpus() {
        let mut seen = 0;
        let mut d = Decoder::new();
        let mut check = |ev: Event<'_>| match ev {
            Event::Telegram(f) => {
                seen += 1;
                assert!(f.is_valid(), "{}: not valid", case.file);
                match &case.crc {
                    Some(crc) => {
                        assert_eq!(f.crc_ok(), Some(true), "{}", case.file);
                        assert_eq!(f.crc_text(), Some(crc.as_bytes()), "{}", case.file);
                    }
                    None => {
                        assert_eq!(f.crc_text(), None, "{}", case.file);
                        assert_eq!(f.crc_ok(), None, "{}", case.file);
                    }
                }
                assert_eq!(f.objects().len(), object_lines(&case.bytes), "{}", case.file);
                assert_eq!(f.bad_lines(), 0, "{}", case.file);
            }
            Event::Discarded { reason, bytes } => panic!("{}: discarded {bytes} bytes: {reason:?}", case.file),
        };
        d.feed(&case.bytes, &mut check);
        d.finish(&mut check);
        assert_eq!(seen, 1, "{}", case.file);
    }
}

#[test]
fn decoded_models_render_back_to_the_same_bytes() {
    for case in corpus() {
        let decoded = p1sim_core::decode::decode_all(&case.bytes, None);
        assert_eq!(decoded.len(), 1, "{}", case.file);
        assert_eq!(
            String::from_utf8_lossy(&decoded[0].0.to_bytes()),
            String::from_utf8_lossy(&case.bytes),
            "{}",
            case.file
        );
    }
}

#[test]
fn the_two_line_gas_record_is_joined() {
    let case = corpus().into_iter().find(|c| c.file.starts_with("11-kamstrup-162")).unwrap();
    let t = &p1sim_core::decode::decode_all(&case.bytes, None)[0].0;
    let gas = t.line("0-1:24.3.0").expect("gas record");
    let texts: Vec<&str> = gas.values.iter().map(|v| v.text.as_str()).collect();
    assert_eq!(texts, ["160315210000", "00", "60", "1", "0-1:24.2.1", "m3", "04083.631"]);
}

#[test]
fn every_chunking_gives_the_same_telegrams() {
    // The decoder is push-based: split the whole corpus, concatenated, at every stride.
    let all: Vec<u8> = corpus().into_iter().flat_map(|c| c.bytes).collect();
    let whole = p1sim_core::decode::decode_all(&all, None);
    assert_eq!(whole.len(), 33);
    for stride in [1, 2, 3, 7, 64, 1000] {
        let mut d = Decoder::new();
        let mut got = Vec::new();
        let mut push = |ev: Event<'_>| {
            if let Event::Telegram(f) = ev {
                got.push((f.to_telegram(), f.is_valid()));
            }
        };
        for chunk in all.chunks(stride) {
            d.feed(chunk, &mut push);
        }
        d.finish(&mut push);
        assert_eq!(got, whole, "stride {stride}");
    }
}
