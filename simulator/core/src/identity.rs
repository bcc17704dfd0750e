//! A meter's identity: its equipment identifiers, the ids of its M-Bus devices and, for encrypted
//! meters, the system title, each derived from the seed so that every simulated meter is a
//! different meter.
//!
//! Home Assistant keys a DSMR entry on the equipment id and ingestion backends key on it too, so
//! two simulated meters must not share one. Derivation keeps each id's format: the manufacturer
//! prefix, the year digits where the id carries them, and the digit count. Only the serial digits
//! change, by a permutation of the seed (`serial + A * seed mod 10^n`, A coprime with 10): two
//! seeds below 10^n always give two different ids, and seed 0 gives the ids the profile writes.
//!
//! The rules, in order (docs/meters.md has the formats they come from):
//! 1. `X` and 16 digits, the DSMR layout `X MMMM SSSSSSSSSS YY` (type letter, manufacturer, serial,
//!    year): the ten serial digits;
//! 2. 16 hex digits whose first eight are decimal, an M-Bus secondary address (BCD id,
//!    manufacturer, version, medium): the eight id digits;
//! 3. otherwise the last run of four or more digits (at most its last 18 digits);
//! 4. an id with no such run is kept as it is.

use alloc::string::String;
use alloc::vec::Vec;

use crate::obis::Obis;
use crate::profile::{Kind, Profile};

/// The identifiers a meter sends, as text before any hex encoding. Saved with the meter state, so
/// a resumed meter keeps the ids it was created with.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The meter's own id objects: OBIS code (as text) and id.
    pub objects: Vec<(String, String)>,
    /// M-Bus device ids by channel.
    pub mbus: Vec<(u8, String)>,
    /// The system title of encrypted meters.
    #[serde(default)]
    pub system_title: Option<[u8; 8]>,
}

/// Odd and not a multiple of 5, so coprime with every power of ten; large, so consecutive seeds
/// give serials that do not look consecutive.
const MULTIPLIER: u128 = 2_862_933_555_777_941_757;

/// The meter's own identifier objects (channel 0): equipment ids, logical device names, serials.
fn is_id_object(o: Obis) -> bool {
    matches!((o.a, o.b, o.c, o.d, o.e), (0, 0, 96, 1, 0 | 1 | 255) | (0, 0, 42, 0, 0) | (1, 0, 0, 0, 0))
}

/// The id object Home Assistant keys an entry on, by preference: the logical device name
/// (Luxembourg, Hungary), the equipment id, the EasyMeter's device address, the serial.
const PRIMARY: [Obis; 4] =
    [Obis::new(0, 0, 42, 0, 0), Obis::new(0, 0, 96, 1, 1), Obis::new(1, 0, 0, 0, 0), Obis::new(0, 0, 96, 1, 0)];

impl Identity {
    /// The ids exactly as the profile writes them.
    pub fn of_profile(p: &Profile) -> Identity {
        let objects = p
            .objects
            .iter()
            .filter(|o| is_id_object(o.obis))
            .filter_map(|o| match &o.kind {
                Kind::Hex(t) | Kind::Text(t) => Some((alloc::format!("{}", o.obis), t.clone())),
                _ => None,
            })
            .collect();
        Identity {
            objects,
            mbus: p.mbus.iter().map(|d| (d.channel, d.id.clone())).collect(),
            system_title: p.encryption.as_ref().map(|e| e.system_title),
        }
    }

    /// The ids of the meter with this seed: derived as the module docs say, unless the profile
    /// fixes them; `equipment_id` replaces the primary id either way.
    pub fn derive(p: &Profile, seed: u64, equipment_id: Option<&str>) -> Identity {
        let written = Identity::of_profile(p);
        let mut id = written.clone();
        if p.derive_identity {
            for (_, text) in &mut id.objects {
                *text = derive_id(text, seed);
            }
            for (_, text) in &mut id.mbus {
                *text = derive_id(text, seed);
            }
            id.system_title = written.system_title.map(|t| derive_title(&t, &written, &id, seed));
        }
        if let Some(e) = equipment_id {
            id.set_primary(e);
        }
        id
    }

    /// Replaces the primary equipment id (see [`PRIMARY`]); false when the profile has none.
    pub fn set_primary(&mut self, text: &str) -> bool {
        for code in PRIMARY {
            let code = alloc::format!("{code}");
            if let Some((_, t)) = self.objects.iter_mut().find(|(o, t)| *o == code && !t.is_empty()) {
                *t = text.into();
                return true;
            }
        }
        false
    }

    /// The primary equipment id, if the meter sends one.
    pub fn primary(&self) -> Option<&str> {
        PRIMARY.iter().find_map(|code| {
            let code = alloc::format!("{code}");
            self.objects.iter().find(|(o, t)| *o == code && !t.is_empty()).map(|(_, t)| t.as_str())
        })
    }

    /// Writes these ids into the profile the telegrams are rendered from.
    pub fn apply(&self, p: &mut Profile) {
        for o in &mut p.objects {
            if !is_id_object(o.obis) {
                continue;
            }
            let code = alloc::format!("{}", o.obis);
            if let (Kind::Hex(t) | Kind::Text(t), Some((_, id))) =
                (&mut o.kind, self.objects.iter().find(|(c, _)| *c == code))
            {
                t.clone_from(id);
            }
        }
        for d in &mut p.mbus {
            if let Some((_, id)) = self.mbus.iter().find(|(c, _)| *c == d.channel) {
                d.id.clone_from(id);
            }
        }
        if let (Some(e), Some(t)) = (p.encryption.as_mut(), self.system_title) {
            e.system_title = t;
        }
    }
}

/// The id of the meter with `seed`, in the format of `written` (module docs, rules 1 to 4).
pub fn derive_id(written: &str, seed: u64) -> String {
    let b = written.as_bytes();
    let digits = |r: core::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let span = if b.len() == 17 && b[0].is_ascii_uppercase() && digits(1..17) {
        Some(5..15)
    } else if b.len() == 16 && b.iter().all(u8::is_ascii_hexdigit) && digits(0..8) {
        Some(0..8)
    } else {
        last_digit_run(b).map(|r| r.start.max(r.end.saturating_sub(18))..r.end)
    };
    let Some(span) = span else { return written.into() };
    let mut out = String::with_capacity(written.len());
    out.push_str(&written[..span.start]);
    out.push_str(&permute(&written[span.clone()], seed));
    out.push_str(&written[span.end..]);
    out
}

/// The last run of at least four ASCII digits.
fn last_digit_run(b: &[u8]) -> Option<core::ops::Range<usize>> {
    let mut end = b.len();
    while end > 0 {
        if b[end - 1].is_ascii_digit() {
            let start = b[..end].iter().rposition(|c| !c.is_ascii_digit()).map_or(0, |i| i + 1);
            if end - start >= 4 {
                return Some(start..end);
            }
            end = start;
        } else {
            end -= 1;
        }
    }
    None
}

/// `digits + MULTIPLIER * seed mod 10^n`, written with the same number of digits.
fn permute(digits: &str, seed: u64) -> String {
    let n = digits.len() as u32;
    let modulus = 10u128.pow(n);
    let base: u128 = digits.bytes().fold(0, |v, d| v * 10 + u128::from(d - b'0'));
    let v = (base + MULTIPLIER % modulus * (u128::from(seed) % modulus)) % modulus;
    let mut out = alloc::vec![b'0'; n as usize];
    let mut rest = v;
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A system title of a FLAG id and five BCD bytes (Sagemcom's `SAG` and serial digits) keeps its
/// FLAG; its digits follow the derived equipment id when they were that id's first digits, and
/// are derived on their own otherwise. Any other title is kept.
fn derive_title(title: &[u8; 8], written: &Identity, derived: &Identity, seed: u64) -> [u8; 8] {
    let bcd = title[3..].iter().all(|b| b >> 4 <= 9 && b & 0xF <= 9);
    if !title[..3].iter().all(u8::is_ascii_alphabetic) || !bcd {
        return *title;
    }
    let digits: String =
        title[3..].iter().flat_map(|b| [char::from(b'0' + (b >> 4)), char::from(b'0' + (b & 0xF))]).collect();
    let serial_digits =
        |id: &Identity| id.primary().and_then(|t| last_digit_run(t.as_bytes()).map(|r| String::from(&t[r])));
    let new_digits = match (serial_digits(written), serial_digits(derived)) {
        (Some(old), Some(new)) if old.starts_with(&digits) && new.len() >= digits.len() => {
            String::from(&new[..digits.len()])
        }
        _ => permute(&digits, seed),
    };
    let mut out = *title;
    for (i, pair) in new_digits.as_bytes().chunks(2).enumerate() {
        out[3 + i] = ((pair[0] - b'0') << 4) | (pair[1] - b'0');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsmr_ids_keep_type_manufacturer_and_year() {
        let id = derive_id("E0044007382246019", 2);
        assert_eq!(id.len(), 17);
        assert!(id.starts_with("E0044") && id.ends_with("19"), "{id}");
        assert_ne!(id, "E0044007382246019");
        assert_eq!(derive_id("E0044007382246019", 0), "E0044007382246019", "seed 0 is the profile's own");
    }

    #[test]
    fn other_formats_change_their_serial_digits_only() {
        let belgian = derive_id("1SAG1100042167", 7);
        assert!(belgian.starts_with("1SAG") && belgian.len() == 14, "{belgian}");
        let kamstrup = derive_id(" KA6U001551500611", 7);
        assert!(kamstrup.starts_with(" KA6U") && kamstrup.len() == 17, "{kamstrup}");
        let mbus = derive_id("621848012D2C0B0C", 7);
        assert!(mbus.ends_with("2D2C0B0C") && mbus[..8].bytes().all(|b| b.is_ascii_digit()), "{mbus}");
        assert_eq!(derive_id("", 7), "");
        assert_eq!(derive_id("ABC-12", 7), "ABC-12", "no run of four digits: kept");
    }

    #[test]
    fn distinct_seeds_give_distinct_ids() {
        let mut seen: Vec<String> = (0..2000).map(|s| derive_id("09610", s)).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 2000, "a five-digit serial separates 2000 seeds");
    }

    #[test]
    fn a_profile_can_fix_its_ids_and_the_household_its_equipment_id() {
        let mut p = crate::builtin::get("sagemcom-t210d-lu").unwrap().unwrap();
        let derived = Identity::derive(&p, 3, None);
        assert_ne!(derived, Identity::of_profile(&p));
        assert_ne!(derived.system_title, p.encryption.as_ref().map(|e| e.system_title));
        p.derive_identity = false;
        assert_eq!(Identity::derive(&p, 3, None), Identity::of_profile(&p));
        let fixed = Identity::derive(&p, 3, Some("SAG0000000000001"));
        assert_eq!(fixed.primary(), Some("SAG0000000000001"));
        let mut applied = p.clone();
        fixed.apply(&mut applied);
        assert!(applied.objects.iter().any(|o| o.kind == Kind::Hex("SAG0000000000001".into())));
    }

    #[test]
    fn a_sagemcom_title_follows_the_derived_device_name() {
        let written =
            Identity { objects: alloc::vec![("0-0:42.0.0".into(), "SAG1030790002574".into())], ..Default::default() };
        let derived = Identity {
            objects: alloc::vec![("0-0:42.0.0".into(), derive_id("SAG1030790002574", 5))],
            ..Default::default()
        };
        let title = [0x53, 0x41, 0x47, 0x10, 0x30, 0x79, 0x00, 0x02];
        let t = derive_title(&title, &written, &derived, 5);
        assert_eq!(&t[..3], b"SAG");
        let digits: String = t[3..].iter().map(|b| alloc::format!("{b:02X}")).collect();
        assert!(derived.primary().unwrap()[3..].starts_with(&digits), "{digits} {:?}", derived.primary());
        assert_eq!(derive_title(b"SYSTEMID", &written, &derived, 5), *b"SYSTEMID");
    }
}
