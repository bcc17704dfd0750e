//! The built-in decoder under test: p1sim's reference decoder, run in-process on a case's bytes
//! and reported through the same JSON schema an external adapter prints.

use p1sim_core::decode::{Decoder, Event, json};

use crate::case::Case;
use crate::schema::{Reported, parse_output};

/// What `p1sim decode --json --valid-only` prints for the case's input, parsed.
pub fn decode(case: &Case) -> Vec<Reported> {
    let mut d = Decoder::new();
    if let Some(k) = case.key {
        d = d.with_key(k);
    }
    if let Some(k) = case.auth_key {
        d = d.with_auth_key(k);
    }
    let mut out = Vec::new();
    let mut on = |ev: Event<'_>| {
        if let Event::Telegram(f) = ev
            && f.is_valid()
        {
            json::write_frame(&f, &mut out);
            out.push(b'\n');
        }
    };
    d.feed(&case.input, &mut on);
    d.finish(&mut on);
    parse_output(&String::from_utf8_lossy(&out)).expect("the reference decoder writes the schema")
}
