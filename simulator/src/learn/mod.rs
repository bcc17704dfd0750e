//! `p1sim profiles learn`: a profile learned from a captured telegram, so that a user's own
//! meter can be simulated from what they have in hand.
//!
//! The first telegram of the capture decides the profile: its header, its spec and country, its
//! objects in order with every value's digit widths and unit spelling, its M-Bus channels (ghost
//! ones included), its failure-log style and its text fields; the values become the profile's
//! `[start]`, so a run continues from the meter's real state. Later telegrams give the interval.
//!
//! The result is checked, not hoped for: the profile is written as TOML, read back with the
//! normal loader, and rendered with the captured values, which must give the captured telegram
//! byte for byte. An object p1sim has no meaning for, or whose text its model cannot reproduce,
//! is kept as fixed text and listed in the profile's opening comment.

mod infer;
mod write;

use anyhow::{Result, bail};
use p1sim_core::profile::Profile;
use p1sim_core::readings::Readings;
use p1sim_core::render::Template;

use crate::capture::Capture;

/// A learned profile and the values that reproduce the capture with it.
#[derive(Debug, Clone)]
pub struct Learned {
    pub profile: Profile,
    /// The first captured telegram's values: rendering `profile` with them gives its bytes back.
    pub readings: Readings,
    /// The profile as a commented TOML file.
    pub toml: String,
    /// Objects kept as fixed text, and why.
    pub fixed: Vec<Fixed>,
    /// What a person should know about the result.
    pub notes: Vec<String>,
}

/// An object kept as the captured text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixed {
    pub obis: String,
    pub text: String,
    pub why: &'static str,
}

/// The spec a capture's first telegram shows (DSMR generation, e-MUCS, Swedish, Smarty), for
/// captures that need no whole profile (`p1sim conformance corpus add`).
pub fn spec_of(capture: &Capture) -> p1sim_core::spec::Spec {
    let first = &capture.telegrams[0];
    let model = first.model();
    let crc = model.checksum != p1sim_core::telegram::Checksum::None;
    infer::spec_of(&model, crc, first.frame.is_some(), &mut Vec::new()).1
}

/// Learns a profile named `name` from a capture.
pub fn learn(capture: &Capture, name: &str) -> Result<Learned> {
    let first = capture.telegrams.first().ok_or_else(|| anyhow::anyhow!("{}: no telegram", capture.origin))?;
    let inferred = infer::infer(capture, name)?;
    let toml = write::toml(&inferred, capture);
    // Read back with the loader users' files go through: what was written is what runs.
    let profile = p1sim_core::profile::load::parse(name, &format!("{name}.toml"), &toml)
        .map_err(|e| anyhow::anyhow!("the learned profile does not load back ({e}); this is a bug in p1sim"))?;
    let mut plain = Vec::new();
    Template::compile(&profile).render(&profile, &inferred.readings, &mut plain);
    if plain != first.bytes {
        let at = plain.iter().zip(&first.bytes).position(|(a, b)| a != b).unwrap_or(plain.len().min(first.bytes.len()));
        let line = first.bytes[..at.min(first.bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1;
        bail!(
            "{}: the learned profile does not reproduce the telegram exactly (first difference on line {line}: \
             {:?} instead of {:?}); please report it with the capture",
            capture.origin,
            String::from_utf8_lossy(&plain[at..(at + 40).min(plain.len())]),
            String::from_utf8_lossy(&first.bytes[at..(at + 40).min(first.bytes.len())])
        );
    }
    Ok(Learned { profile, readings: inferred.readings, toml, fixed: inferred.fixed, notes: inferred.notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{ReadOptions, parse};

    const AM550: &str = include_str!(
        "../../core/tests/data/real-telegrams/04-iskra-am550-dsmr-5-0-with-two-m-bus-channels-channel-1-empty.txt"
    );

    #[test]
    fn the_iskra_am550_with_its_ghost_channel() {
        let c = parse(AM550.as_bytes(), "am550.txt", &ReadOptions::default()).unwrap();
        let l = learn(&c, "my-am550").unwrap();
        let p = &l.profile;
        assert_eq!(p.header, "ISK5\\2M550T-1012");
        assert_eq!((p.spec.name(), p.country.code(), p.phases), ("DSMR 5.0", "NL", 3));
        assert_eq!(p.mbus.len(), 2);
        assert_eq!(p.mbus[0].medium, p1sim_core::profile::Medium::Ghost);
        assert_eq!(p.mbus[1].id, "G0039001936990619");
        let start = p.start.as_ref().unwrap();
        assert_eq!(start.import_wh, Some([2_130_115, 245_467, 0, 0]));
        assert_eq!(start.mbus[0].milli, 246_138);
        assert!(l.toml.contains("learned by `p1sim profiles learn` from am550.txt"), "{}", l.toml);
        assert!(l.toml.contains("\nstart_import_kwh = 2375.582\n"), "the household's total: {}", l.toml);
        assert!(l.fixed.iter().all(|f| f.obis != "1-0:1.8.1"), "{:?}", l.fixed);
    }
}
