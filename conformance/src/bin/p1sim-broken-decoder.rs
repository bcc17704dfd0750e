//! Deliberately broken decoders for the mutation check: p1sim's reference decoder with one
//! defect each, reading a case on stdin and printing the conformance schema. A suite that does
//! not fail each of them, in the class that names the defect, cannot catch that bug in a real
//! decoder either.
//!
//! Usage: `p1sim-broken-decoder DEFECT` with P1SIM_KEY set for encrypted cases, where DEFECT is
//! - `ignore-crc`: accepts telegrams whatever their CRC (and without one);
//! - `buffer-1024`: a 1024-byte buffer, so longer telegrams are dropped;
//! - `no-resync`: does not restart on a `/` before the `!` (like the dsmr5 crate), so a cut-off
//!   telegram swallows the next one;
//! - `drops-gas-record`: ignores the continuation line of the DSMR 2.2/3 two-line gas record;
//! - `padded-crc-only`: wants exactly four CRC digits (like the dsmr5 crate), so the unpadded CRC
//!   a real heat meter sends is refused;
//! - `no-gcm-tag`: decrypts Smarty frames with the key alone (AES-CTR) and never checks the GCM
//!   tag, so tampered frames pass;
//! - `no-units`: reports bare numbers, without units;
//! - `naive-dst`: reads timestamps as Dutch wall-clock time, ignoring the S/W flag;
//! - `uppercase-crc-only`: rejects lowercase CRC hex (like dsmr_parser's regex): conformant, as
//!   the specification is silent and no meter sends it;
//! - `none`: no defect, the control that shows the harness itself passes.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use p1sim_conformance::schema::{Reported, parse_output};
use p1sim_core::decode::{Decoder, Discard, Event, Frame, json};
use p1sim_core::smarty;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Defect {
    None,
    IgnoreCrc,
    Buffer1024,
    NoResync,
    DropsGasRecord,
    PaddedCrcOnly,
    NoGcmTag,
    NoUnits,
    NaiveDst,
    UppercaseCrcOnly,
}

const DEFECTS: [(&str, Defect); 10] = [
    ("none", Defect::None),
    ("ignore-crc", Defect::IgnoreCrc),
    ("buffer-1024", Defect::Buffer1024),
    ("no-resync", Defect::NoResync),
    ("drops-gas-record", Defect::DropsGasRecord),
    ("padded-crc-only", Defect::PaddedCrcOnly),
    ("no-gcm-tag", Defect::NoGcmTag),
    ("no-units", Defect::NoUnits),
    ("naive-dst", Defect::NaiveDst),
    ("uppercase-crc-only", Defect::UppercaseCrcOnly),
];

fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let Some(&(_, defect)) = DEFECTS.iter().find(|(name, _)| *name == arg) else {
        let names: Vec<&str> = DEFECTS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: p1sim-broken-decoder DEFECT, one of: {}", names.join(", "));
        return ExitCode::from(2);
    };
    let mut input = Vec::new();
    if let Err(e) = io::stdin().lock().read_to_end(&mut input) {
        eprintln!("p1sim-broken-decoder: cannot read standard input: {e}");
        return ExitCode::from(2);
    }
    let key = |var: &str| std::env::var(var).ok().and_then(|k| smarty::parse_key(&k));
    let out = decode(defect, &input, key("P1SIM_KEY"), key("P1SIM_AUTH_KEY"));
    match io::stdout().lock().write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

fn decode(defect: Defect, input: &[u8], key: Option<[u8; 16]>, auth_key: Option<[u8; 16]>) -> Vec<u8> {
    let mut d = Decoder::new();
    let plain;
    let input = match (defect, key) {
        (Defect::NoGcmTag, Some(k)) => {
            plain = decrypt_ignoring_tags(input, &k);
            &plain[..]
        }
        (_, Some(k)) => {
            d = d.with_key(k);
            input
        }
        (_, None) => input,
    };
    if let Some(k) = auth_key {
        d = d.with_auth_key(k);
    }
    if defect == Defect::Buffer1024 {
        d = d.with_max_len(1024);
    }
    let mut out = Vec::new();
    // The reference decoder reports a telegram it found by restarting at an inner `/` right
    // after discarding the cut-off start; a decoder that cannot resync loses that telegram.
    let mut after_restart = false;
    let mut on = |ev: Event<'_>| match ev {
        Event::Discarded { reason: Discard::Incomplete, .. } => after_restart = true,
        Event::Discarded { .. } => after_restart = false,
        Event::Telegram(f) => {
            let restarted = std::mem::take(&mut after_restart);
            if accepts(defect, &f, restarted) {
                write(defect, &f, &mut out);
            }
        }
    };
    d.feed(input, &mut on);
    d.finish(&mut on);
    out
}

/// Replaces every complete Smarty frame with its plaintext, decrypted as AES-CTR: the GCM tag
/// is never looked at. GCM's keystream is its own encryption, so encrypting the ciphertext again
/// under the same nonce gives the plaintext back.
fn decrypt_ignoring_tags(input: &[u8], key: &[u8; 16]) -> Vec<u8> {
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::aes::Aes128;
    use aes_gcm::aes::cipher::consts::U12;
    use aes_gcm::{AesGcm, KeyInit};
    let cipher = AesGcm::<Aes128, U12, U12>::new(key.into());
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let header = smarty::parse_header(&input[i..]).ok().flatten();
        match header {
            Some(h) if input.len() - i >= h.frame_len => {
                let mut iv = [0u8; 12];
                iv[..8].copy_from_slice(&h.system_title);
                iv[8..].copy_from_slice(&h.frame_counter.to_be_bytes());
                let mut body = input[i + smarty::HEADER_LEN..i + h.frame_len - smarty::TAG_LEN].to_vec();
                let _ = cipher.encrypt_inout_detached(&iv.into(), &[], (&mut body[..]).into());
                out.extend_from_slice(&body);
                i += h.frame_len;
            }
            _ => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    out
}

fn accepts(defect: Defect, f: &Frame<'_>, restarted: bool) -> bool {
    match defect {
        Defect::IgnoreCrc => f.bad_lines() == 0,
        Defect::NoResync => f.is_valid() && !restarted,
        Defect::UppercaseCrcOnly => f.is_valid() && !f.crc_text().is_some_and(|c| c.iter().any(u8::is_ascii_lowercase)),
        Defect::PaddedCrcOnly => f.is_valid() && f.crc_text().is_none_or(|c| c.len() == 4),
        Defect::Buffer1024 => f.is_valid() && f.raw.len() <= 1024,
        Defect::None | Defect::DropsGasRecord | Defect::NoGcmTag | Defect::NoUnits | Defect::NaiveDst => f.is_valid(),
    }
}

/// The schema line for an accepted telegram, as `p1sim decode --json` writes it, with the
/// defect's mark on it.
fn write(defect: Defect, f: &Frame<'_>, out: &mut Vec<u8>) {
    let mut line = Vec::new();
    json::write_frame(f, &mut line);
    let Ok(mut reported) = parse_output(&String::from_utf8_lossy(&line)).map(|mut r| r.remove(0)) else {
        return;
    };
    match defect {
        // It never checked, so it does not report a failed check either.
        Defect::IgnoreCrc => reported.crc_ok = None,
        Defect::DropsGasRecord => {
            // The values that arrived on the continuation line are never read.
            for (o, span) in reported.objects.iter_mut().zip(f.objects()) {
                if let Some(c) = span.continued_at {
                    o.values.truncate(c as usize);
                }
            }
        }
        Defect::NoUnits => {
            reported.objects.iter_mut().flat_map(|o| o.values.iter_mut()).for_each(|v| v.unit = None);
        }
        Defect::NaiveDst => naive_times(&mut reported),
        _ => {}
    }
    out.extend_from_slice(serde_json::to_string(&reported).expect("reports serialize").as_bytes());
    out.push(b'\n');
}

/// Every `YYMMDDhhmmssX` value as an instant of Dutch wall-clock time, the flag ignored: in the
/// hour an autumn change repeats, the earlier (summer) reading wins.
fn naive_times(r: &mut Reported) {
    for v in r.objects.iter_mut().flat_map(|o| o.values.iter_mut()) {
        let text = v.text();
        let b = text.as_bytes();
        if b.len() != 13 || !b[..12].iter().all(u8::is_ascii_digit) || text.starts_with("632525") {
            continue;
        }
        let n = |i: usize| text[i..i + 2].parse::<i8>().unwrap_or(0);
        let Ok(dt) = jiff::civil::DateTime::new(2000 + i16::from(n(0)), n(2), n(4), n(6), n(8), n(10), 0) else {
            continue;
        };
        if let Ok(z) = p1sim_core::clock::Zone::Amsterdam.tz().to_ambiguous_zoned(dt).compatible() {
            v.value = Some(z.timestamp().to_string().into());
        }
    }
}
