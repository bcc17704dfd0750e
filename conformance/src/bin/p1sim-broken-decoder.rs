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
//! - `uppercase-crc-only`: rejects lowercase CRC hex (like dsmr_parser's regex);
//! - `none`: no defect, the control that shows the harness itself passes.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use p1sim_core::decode::{Decoder, Discard, Event, Frame, json};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Defect {
    None,
    IgnoreCrc,
    Buffer1024,
    NoResync,
    DropsGasRecord,
    UppercaseCrcOnly,
}

const DEFECTS: [(&str, Defect); 6] = [
    ("none", Defect::None),
    ("ignore-crc", Defect::IgnoreCrc),
    ("buffer-1024", Defect::Buffer1024),
    ("no-resync", Defect::NoResync),
    ("drops-gas-record", Defect::DropsGasRecord),
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
    let key = |var: &str| std::env::var(var).ok().and_then(|k| p1sim_core::smarty::parse_key(&k));
    let out = decode(defect, &input, key("P1SIM_KEY"), key("P1SIM_AUTH_KEY"));
    match io::stdout().lock().write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

fn decode(defect: Defect, input: &[u8], key: Option<[u8; 16]>, auth_key: Option<[u8; 16]>) -> Vec<u8> {
    let mut d = Decoder::new();
    if let Some(k) = key {
        d = d.with_key(k);
    }
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

fn accepts(defect: Defect, f: &Frame<'_>, restarted: bool) -> bool {
    match defect {
        Defect::IgnoreCrc => f.bad_lines() == 0,
        Defect::NoResync => f.is_valid() && !restarted,
        Defect::UppercaseCrcOnly => f.is_valid() && !f.crc_text().is_some_and(|c| c.iter().any(u8::is_ascii_lowercase)),
        Defect::Buffer1024 => f.is_valid() && f.raw.len() <= 1024,
        Defect::None | Defect::DropsGasRecord => f.is_valid(),
    }
}

/// The schema line for an accepted telegram, as `p1sim decode --json` writes it, with the
/// defect's mark on it.
fn write(defect: Defect, f: &Frame<'_>, out: &mut Vec<u8>) {
    if defect != Defect::DropsGasRecord {
        let start = out.len();
        json::write_frame(f, out);
        if defect == Defect::IgnoreCrc {
            // It never checked, so it does not report a failed check either.
            let line = String::from_utf8_lossy(&out[start..]).replacen("\"crc_ok\": false", "\"crc_ok\": null", 1);
            out.truncate(start);
            out.extend_from_slice(line.as_bytes());
        }
        out.push(b'\n');
        return;
    }
    out.extend_from_slice(b"{\"header\": ");
    json::write_str(f.header(), out);
    out.extend_from_slice(b", \"objects\": [");
    for (i, o) in f.objects().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"{\"obis\": ");
        json::write_str(o.obis_text, out);
        out.extend_from_slice(b", \"values\": [");
        // The values that arrived on the continuation line are never read.
        let kept = o.continued_at.map_or(o.value_count(), |c| c as usize);
        for (j, (text, unit)) in o.values().take(kept).enumerate() {
            if j > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(b"{\"value\": ");
            json::write_str(text, out);
            out.extend_from_slice(b", \"unit\": ");
            match unit {
                Some(u) => json::write_str(u, out),
                None => out.extend_from_slice(b"null"),
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}\n");
}
