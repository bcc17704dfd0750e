//! Cases for the dialects beyond Dutch DSMR (EasyMeter's D0, Austria's integer units, E.ON
//! Hungary's four tariffs) and for two real-meter behaviours: telegrams without an end marker
//! (Iskra MT382) and encrypted meters with their own authentication key. docs/quirks.md has the
//! evidence for each.

use p1sim_core::fault::{Expect, Fault, Position, RandomWord};
use p1sim_core::generator::Generator;
use p1sim_core::meter::Command;
use p1sim_core::profile::Profile;

use super::{case, middle, profile, start_for, stream};
use crate::case::{Case, Class, ExpectedTelegram};

pub(super) fn cases(out: &mut Vec<Case>) {
    no_end_marker(out);
    own_auth_key(out);
    d0_gateway(out);
    unit_scaling(out);
    four_tariffs(out);
    heat_meter(out);
}

fn renamed(name: &str, variant: &str) -> Profile {
    let mut p = profile(name);
    p.name = format!("{name}-{variant}");
    p
}

/// Iskra MT382 that sends no `!`: a telegram cut mid-line must still be rejected, one cut at a
/// line end cannot be told from a whole one, and a `/` inside a text message is not a new
/// telegram (the real telegram in node-dsmr-parser's corpus has `test-/-test` there).
fn no_end_marker(out: &mut Vec<Case>) {
    let p = profile("iskra-mt382-no-end-marker");
    for seed in 1..=4 {
        out.push(middle(
            Class::Legacy,
            &p,
            "no-end-truncate",
            seed,
            "a telegram without `!`, the middle one cut off at a random point",
            Fault::Truncate { at: Position::Random(RandomWord::Random) },
        ));
    }
    for seed in 1..=2 {
        let (_, telegrams) = stream(&p, seed, start_for(seed), 3, None, &|_| vec![]);
        let telegrams: Vec<ExpectedTelegram> = telegrams
            .into_iter()
            .map(|mut t| {
                if let Some(l) = t.model.lines.iter_mut().find(|l| l.obis == "0-0:96.13.0") {
                    l.values[0].text = "test-/-test".into();
                }
                ExpectedTelegram {
                    expect: Expect::AcceptLenient,
                    faults: vec!["text message `test-/-test`, not hex encoded".into()],
                    ..t
                }
            })
            .collect();
        let input = telegrams.iter().flat_map(|t| t.model.to_bytes()).collect();
        out.push(case(
            Class::Legacy,
            &p,
            "no-end-slash-in-text",
            seed,
            "telegrams without `!` whose text message holds a `/` (node-dsmr-parser's MT382 sample)",
            input,
            telegrams,
        ));
    }
}

/// A Smarty meter whose authentication key is not the published one: a decoder given that key
/// must accept its frames, one left with the published key must reject them.
fn own_auth_key(out: &mut Vec<Case>) {
    let mut p = renamed("sagemcom-t210d-lu", "own-auth-key");
    if let Some(e) = p.encryption.as_mut() {
        e.auth_key = [0x5A; 16];
    }
    for seed in 1..=2 {
        let (input, telegrams) = stream(&p, seed, start_for(seed), 3, None, &|_| vec![]);
        out.push(case(
            Class::Encrypted,
            &p,
            "own-auth-key",
            seed,
            "frames authenticated with the meter's own key, which the decoder is given",
            input.clone(),
            telegrams.clone(),
        ));
        let rejected = telegrams
            .into_iter()
            .map(|t| ExpectedTelegram {
                expect: Expect::Reject,
                faults: vec!["authenticated with a key the decoder is not given".into()],
                ..t
            })
            .collect();
        let mut c = case(
            Class::Encrypted,
            &p,
            "own-auth-key-not-given",
            seed,
            "frames authenticated with the meter's own key; the decoder has only the published one",
            input,
            rejected,
        );
        c.auth_key = None;
        out.push(c);
    }
}

/// EasyMeter Q3D: no CRC, so a telegram cut at a line end cannot be told from a whole one; read
/// straight from the optical port there is no gateway trailer.
fn d0_gateway(out: &mut Vec<Case>) {
    let p = profile("easymeter-q3d");
    for seed in 1..=2 {
        out.push(middle(
            Class::D0Gateway,
            &p,
            "truncate",
            seed,
            "the middle telegram is cut off at a random point",
            Fault::Truncate { at: Position::Random(RandomWord::Random) },
        ));
        out.push(middle(
            Class::D0Gateway,
            &p,
            "garbage-before",
            seed,
            "noise before the middle telegram",
            Fault::GarbageBefore { bytes: 40 },
        ));
    }
    let mut optical = renamed("easymeter-q3d", "optical");
    optical.trailer = None;
    for seed in 1..=2 {
        let (input, telegrams) = stream(&optical, seed, start_for(seed), 3, None, &|_| vec![]);
        out.push(case(
            Class::D0Gateway,
            &optical,
            "optical-port",
            seed,
            "read at the optical port, without the gateway's trailer",
            input,
            telegrams,
        ));
    }
}

/// Austria's T210-D-r as a decrypting proxy passes it on: the integer units alone, for decoders
/// without DLMS decryption.
fn unit_scaling(out: &mut Vec<Case>) {
    let mut p = renamed("sagemcom-t210d-r-at", "plaintext");
    p.encryption = None;
    for seed in 1..=3 {
        let (input, telegrams) = stream(&p, seed, start_for(seed), 3, None, &|_| vec![]);
        out.push(case(
            Class::UnitScaling,
            &p,
            "plaintext",
            seed,
            "integer Wh, W, varh and var in plaintext telegrams",
            input,
            telegrams,
        ));
    }
}

/// E.ON Hungary: tariffs 3 and 4 booked (forced, as a ripple-control tariff would), and the
/// month-end billing record rolling over.
fn four_tariffs(out: &mut Vec<Case>) {
    let p = profile("sagemcom-eon-hu");
    for seed in 1..=2 {
        let mut g = Generator::new(p.clone(), p.household.clone(), seed, start_for(seed), None).expect("no key");
        let mut input = Vec::new();
        let mut telegrams = Vec::new();
        for tariff in [3, 3, 4, 4] {
            g.meter_mut().apply(Command::SetTariff(Some(tariff)));
            g.advance();
            telegrams.push(ExpectedTelegram {
                faults: vec![format!("tariff {tariff} forced")],
                ..ExpectedTelegram::clean(g.current_model().1)
            });
            g.render_current(&mut input);
        }
        out.push(case(
            Class::FourTariffs,
            &p,
            "tariffs-3-and-4",
            seed,
            "energy booked on tariffs 3 and 4 (1.8.3, 1.8.4)",
            input,
            telegrams,
        ));
    }
    // 2026-01-31 23:00 UTC is midnight in Budapest: January's billing record is written.
    let at = 1_769_900_400i64;
    let step = i64::from(p.interval_s);
    let (input, telegrams) = stream(&p, 1, at - 2 * step, 5, None, &|_| vec![]);
    out.push(case(
        Class::FourTariffs,
        &p,
        "billing-month-end",
        1,
        "telegrams across a month end: 0-0:98.1.0 takes January's record",
        input,
        telegrams,
    ));
}

/// The NWA Warmtelink writes its own CRC without leading zeros (`!B9F`): streams whose middle
/// telegram's CRC is below 0x1000, so that it shows.
fn heat_meter(out: &mut Vec<Case>) {
    let p = profile("nwa-warmtelink");
    let mut found = 0;
    for seed in 1..400 {
        let (input, mut telegrams) = stream(&p, seed, start_for(seed), 3, None, &|_| vec![]);
        let short = |t: &ExpectedTelegram| {
            let bytes = t.model.to_bytes();
            let bang = bytes.iter().rposition(|&b| b == b'!').expect("a CRC");
            bytes[bang + 1..].iter().take_while(|b| b.is_ascii_hexdigit()).count() < 4
        };
        if !short(&telegrams[1]) {
            continue;
        }
        for t in telegrams.iter_mut().filter(|t| short(t)) {
            t.expect = Expect::AcceptLenient;
            t.faults.push("the meter's own CRC, without its leading zero".into());
        }
        out.push(case(
            Class::CrcFormat,
            &p,
            "own-unpadded-crc",
            seed,
            "a heat meter whose CRC lacks its leading zeros, as the NWA Warmtelink sends it",
            input,
            telegrams,
        ));
        found += 1;
        if found == 2 {
            break;
        }
    }
}
