//! Which meter sent the telegrams: its header, the shipped profile most like it (by header,
//! objects, version, end marker and encryption, against each profile's own telegram), the
//! specification it follows, its interval and how many telegrams passed their CRC.

use serde::Serialize;

use p1sim_core::spec::LineSettings;

use super::predict::{SAMPLE_KEY, samples};
use super::telegrams::{Decoded, Seen, decode};

/// What the doctor can say about the meter (the JSON's `meter`); fields it cannot know are null.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MeterInfo {
    /// The identification line without `/`.
    pub header: Option<String>,
    /// The shipped profile most like the meter.
    pub profile: Option<String>,
    /// What the profile guess rests on: `header and objects`, or `objects` alone.
    pub profile_match: Option<&'static str>,
    /// The specification: from the telegram's version object, else the profile's.
    pub spec: Option<String>,
    /// The line the meter sends at, as far as the doctor can tell.
    pub line: Option<String>,
    /// Seconds between telegrams.
    pub interval_s: Option<u32>,
    /// Where the interval comes from: `timestamps` (the telegrams' own), `arrivals` (when they
    /// came in) or `profile`.
    pub interval_from: Option<&'static str>,
    /// Valid telegrams as a share of complete ones.
    pub crc_pass_rate: Option<f64>,
    /// Home Assistant's "DSMR version" for the guessed profile, or why it cannot read it.
    pub home_assistant: Option<String>,
}

/// A shipped profile's telegram as the decoder sees it.
#[derive(Debug, Clone)]
struct Reference {
    profile: String,
    seen: Seen,
    without_end_marker: bool,
}

fn references() -> &'static [Reference] {
    static REFS: std::sync::OnceLock<Vec<Reference>> = std::sync::OnceLock::new();
    REFS.get_or_init(|| {
        samples()
            .iter()
            .filter_map(|s| {
                let d = decode(&s.bytes, Some(SAMPLE_KEY));
                let seen = d.first?;
                Some(Reference { profile: s.profile.clone(), seen, without_end_marker: d.without_end_marker > 0 })
            })
            .collect()
    })
}

/// The profile whose telegram is most like `seen`, with what the match rests on.
pub fn guess(seen: &Seen, without_end_marker: bool) -> Option<(String, &'static str)> {
    let mut best: Option<(f64, &Reference, bool)> = None;
    for r in references() {
        let header = r.seen.header == seen.header;
        let manufacturer = r.seen.header.get(..3) == seen.header.get(..3);
        let objects = jaccard(&r.seen.obis, &seen.obis);
        let score = 3.0 * objects
            + if header {
                4.0
            } else if manufacturer {
                1.0
            } else {
                0.0
            }
            + f64::from(u8::from(r.seen.version == seen.version))
            + f64::from(u8::from(r.without_end_marker == without_end_marker))
            + f64::from(u8::from(r.seen.encrypted == seen.encrypted));
        if best.is_none_or(|(s, _, _)| score > s) {
            best = Some((score, r, header));
        }
    }
    let (score, r, header) = best?;
    // Without the header, only a layout that shares most objects is a guess worth making.
    (header || score >= 3.0 * 0.6 + 3.0)
        .then(|| (r.profile.clone(), if header { "header and objects" } else { "objects" }))
}

/// Shared over either: 1 for the same codes, 0 for none in common.
fn jaccard(a: &[String], b: &[String]) -> f64 {
    let common = a.iter().filter(|x| b.contains(x)).count();
    let union = a.len() + b.len() - common;
    if union == 0 { 0.0 } else { common as f64 / union as f64 }
}

/// The specification a version object names: `1-3:0.2.8(50)` is DSMR 5.0; Belgium's
/// `0-0:96.1.4(50217)` is e-MUCS.
pub fn spec_of_version(version: &(String, String)) -> Option<&'static str> {
    match (version.0.as_str(), version.1.as_str()) {
        ("1-3:0.2.8", "40") => Some("DSMR 4.0"),
        ("1-3:0.2.8", "42") => Some("DSMR 4.2"),
        ("1-3:0.2.8", v) if v.starts_with('5') => Some("DSMR 5.0"),
        ("0-0:96.1.4", v) if v.starts_with("50") => Some("e-MUCS"),
        _ => None,
    }
}

/// Seconds between consecutive message timestamps (`YYMMDDhhmmssX`): the commonest positive
/// step, so a missed telegram or a summer-time change does not count.
pub fn interval_of_timestamps(timestamps: &[String]) -> Option<u32> {
    let secs: Vec<i64> = timestamps.iter().filter_map(|t| seconds(t)).collect();
    let mut steps: Vec<i64> = secs.windows(2).map(|w| w[1] - w[0]).filter(|d| (1..=3600).contains(d)).collect();
    steps.sort_unstable();
    let mut best: Option<(usize, i64)> = None;
    for run in steps.chunk_by(|a, b| a == b) {
        if best.is_none_or(|(n, _)| run.len() > n) {
            best = Some((run.len(), run[0]));
        }
    }
    best.map(|(_, s)| s as u32)
}

/// `YYMMDDhhmmss` with an optional S or W, as seconds on a calendar that only needs to give
/// the right differences between nearby instants.
fn seconds(t: &str) -> Option<i64> {
    let d = t.get(..12)?;
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| d[i..i + 2].parse::<i64>().ok();
    let (y, mo, da, h, mi, s) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?, n(10)?);
    let date = jiff::civil::Date::new(2000 + y as i16, mo as i8, da as i8).ok()?;
    let days = date.since(jiff::civil::date(2000, 1, 1)).ok()?.get_days();
    Some(((i64::from(days) * 24 + h) * 60 + mi) * 60 + s)
}

/// What the telegrams say about their meter; `line` is the setting they decoded at, `arrivals`
/// the interval measured from when they came in, if they came in live.
pub fn identify(d: &Decoded, line: LineSettings, arrivals: Option<u32>) -> MeterInfo {
    let mut m = MeterInfo { line: Some(line.to_string()), ..MeterInfo::default() };
    let complete = d.valid + d.failed();
    if complete > 0 {
        m.crc_pass_rate = Some((d.valid as f64 / complete as f64 * 1000.0).round() / 1000.0);
    }
    let Some(seen) = &d.first else { return m };
    m.header = Some(seen.header.clone());
    let profile = guess(seen, d.without_end_marker > 0)
        .and_then(|(name, why)| Some((p1sim_core::builtin::get(&name)?.ok()?, why)));
    m.spec = seen.version.as_ref().and_then(spec_of_version).map(str::to_string);
    if let Some((p, why)) = &profile {
        m.profile = Some(p.name.clone());
        m.profile_match = Some(why);
        m.spec.get_or_insert_with(|| p.spec.name().to_string());
        let hint = crate::live::hints::reader(p);
        m.home_assistant = Some(match (hint.unreadable, hint.home_assistant) {
            (Some(why), _) => format!("cannot read it: {why}"),
            (None, Some(label)) => format!("DSMR version {} (\"{label}\")", hint.version),
            (None, None) => format!("has no setting for it (dsmr_parser's {} specification reads it)", hint.spec),
        });
    }
    if m.spec.is_none() && !seen.crc {
        m.spec = Some("DSMR 2.2 or 3.0 (no CRC)".into());
    }
    (m.interval_s, m.interval_from) = match (interval_of_timestamps(&d.timestamps), arrivals, &profile) {
        (Some(s), _, _) => (Some(s), Some("timestamps")),
        (None, Some(s), _) => (Some(s), Some("arrivals")),
        (None, None, Some((p, _))) => (Some(p.interval_s), Some("profile")),
        _ => (None, None),
    };
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profiles_own_telegram_is_recognised_as_it() {
        for s in samples() {
            let d = decode(&s.bytes, Some(SAMPLE_KEY));
            let seen = d.first.as_ref().unwrap_or_else(|| panic!("{} decodes", s.profile));
            let (name, why) = guess(seen, d.without_end_marker > 0).unwrap();
            assert_eq!(why, "header and objects", "{}", s.profile);
            // Two profiles may send the very same telegram layout (a Kaifa meter sold in two
            // countries): then either is the right guess.
            let guessed = references().iter().find(|r| r.profile == name).unwrap();
            assert!(
                name == s.profile || (guessed.seen.header == seen.header && guessed.seen.obis == seen.obis),
                "{} guessed as {name}",
                s.profile
            );
        }
    }

    #[test]
    fn a_meter_not_shipped_is_guessed_by_its_objects_or_not_at_all() {
        let am550 = samples().iter().find(|s| s.profile == "iskra-am550").unwrap();
        let mut seen = decode(&am550.bytes, None).first.unwrap();
        seen.header = "XYZ5\\NOT-A-METER".into();
        assert_eq!(guess(&seen, false), Some(("iskra-am550".into(), "objects")));
        seen.obis = vec!["9-9:9.9.9".into()];
        seen.version = None;
        assert_eq!(guess(&seen, false), None);
    }

    #[test]
    fn versions_name_their_specification_and_timestamps_the_interval() {
        let v = |o: &str, x: &str| spec_of_version(&(o.into(), x.into()));
        assert_eq!(
            (v("1-3:0.2.8", "42"), v("1-3:0.2.8", "50"), v("0-0:96.1.4", "50217"), v("1-3:0.2.8", "x")),
            (Some("DSMR 4.2"), Some("DSMR 5.0"), Some("e-MUCS"), None)
        );
        let ts = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Ten-second steps across midnight and a month end, one telegram missed.
        let t = ts(&["260131235940W", "260131235950W", "260201000000W", "260201000020W", "260201000030W"]);
        assert_eq!(interval_of_timestamps(&t), Some(10));
        assert_eq!(interval_of_timestamps(&ts(&["260131235940W"])), None);
        assert_eq!(interval_of_timestamps(&ts(&["garbage", "26013123594"])), None);
    }
}
