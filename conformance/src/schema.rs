//! The decoder interface's output: one JSON line per telegram the decoder accepts, in the schema
//! of `p1sim decode --json`, and how it is compared with an expectation.
//!
//! ```json
//! {"header": "ISK5\\2M550T-1012", "crc": "1E1D", "crc_ok": true,
//!  "objects": [{"obis": "1-0:1.8.1", "values": [{"value": "001234.567", "unit": "kWh"}]}]}
//! ```
//!
//! Comparison rules, so that decoders written in any language can pass:
//! - numbers compare as decimals: `001234.567`, `1234.567` and the JSON number 1234.567 are equal;
//! - units compare case-insensitively (`kWh`, `kwh`; Sweden's `kVArh` and `kvarh`);
//! - timestamps may be the TST text (`260115120000W`) or an RFC 3339 instant; they compare as
//!   instants, and a "no data" placeholder (`632525252525W`, `000101010000W`) may be null or "";
//! - OBIS codes compare without surrounding whitespace;
//! - an accepting decoder must report the core objects (timestamp, energy registers, total power,
//!   M-Bus readings); other objects it may omit, but what it reports must match.

use p1sim_core::clock::Zone;
use p1sim_core::telegram::{Line, Telegram, Value};
use serde::Deserialize;

/// One telegram as a decoder under test reported it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Reported {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub crc: Option<String>,
    #[serde(default)]
    pub crc_ok: Option<bool>,
    #[serde(default)]
    pub objects: Vec<ReportedObject>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ReportedObject {
    pub obis: String,
    #[serde(default)]
    pub values: Vec<ReportedValue>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ReportedValue {
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    #[serde(default)]
    pub unit: Option<String>,
}

impl ReportedValue {
    /// The value as text: strings as given, numbers in their JSON spelling, null as "".
    pub fn text(&self) -> String {
        match &self.value {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        }
    }
}

/// Parses a decoder's stdout: every non-empty line must be a JSON telegram.
pub fn parse_output(text: &str) -> Result<Vec<Reported>, String> {
    parse_output_at_most(text, usize::MAX).map(|(r, _)| r)
}

/// [`parse_output`] of the first `most` telegrams only, with the count of all lines: a decoder
/// printing without end costs memory for `most` telegrams, not for everything it printed.
pub fn parse_output_at_most(text: &str, most: usize) -> Result<(Vec<Reported>, usize), String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let parsed = lines
        .by_ref()
        .take(most)
        .enumerate()
        .map(|(i, l)| serde_json::from_str::<Reported>(l).map_err(|e| format!("output line {}: {e}: {l:.120}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let total = parsed.len() + lines.count();
    Ok((parsed, total))
}

/// Whether the decoder accepted the telegram: it reported it, and did not say its CRC failed.
pub fn is_acceptance(r: &Reported) -> bool {
    r.crc_ok != Some(false)
}

/// Objects an accepting decoder must report: the ones every P1 consumer needs.
pub fn is_core(obis: &str) -> bool {
    let o = obis.trim();
    o == "0-0:1.0.0"
        || [":1.8.", ":2.8."].iter().any(|p| o.contains(p)) && o.starts_with("1-0")
        || o == "1-0:1.7.0"
        || o == "1-0:2.7.0"
        || o.contains(":24.2.1")
        || o.contains(":24.2.3")
        || o.contains(":24.3.0")
}

/// A decimal as (digits, scale) with trailing zeros removed; `None` if it is not a number.
pub fn decimal(text: &str) -> Option<(i128, u32)> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (i, f) = t.split_once('.').unwrap_or((t, ""));
    if i.is_empty() && f.is_empty() || !i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit()) || i.len() + f.len() > 30
    {
        return None;
    }
    let f = f.trim_end_matches('0');
    let v: i128 = format!("{i}{f}").parse().ok()?;
    Some((if neg { -v } else { v }, f.len() as u32))
}

/// The instant of a TST: `YYMMDDhhmmssX` with the S/W offset, or a 12-digit DSMR 2.2 TST read as
/// Dutch local time. `None` for placeholders and anything that is not a TST.
pub fn tst_instant(text: &str) -> Option<jiff::Timestamp> {
    let b = text.as_bytes();
    if !(b.len() == 12 || b.len() == 13) || !b[..12].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text[r].parse::<i8>().ok();
    let yy = i16::from(n(0..2)?);
    // Two-digit years pivot as Python's %y does: 69-99 are 19xx.
    let year = if yy >= 69 { 1900 + yy } else { 2000 + yy };
    let dt = jiff::civil::DateTime::new(year, n(2..4)?, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, 0).ok()?;
    match b.get(12) {
        Some(b'S' | b's') => jiff::tz::offset(2).to_timestamp(dt).ok(),
        Some(b'W' | b'w') => jiff::tz::offset(1).to_timestamp(dt).ok(),
        None => Zone::Amsterdam.tz().to_ambiguous_zoned(dt).compatible().ok().map(|z| z.timestamp()),
        Some(_) => None,
    }
}

/// Placeholder timestamps real meters send where they have nothing (dsmr-facts.md A4).
pub fn is_placeholder_tst(text: &str) -> bool {
    text.starts_with("632525252525") || text.starts_with("000101") || text.starts_with("700101")
}

/// Why an expected value and a reported one differ, or `None` when they are equal.
pub fn compare_value(expected: &Value, reported: &ReportedValue) -> Option<String> {
    let got = reported.text();
    let want = expected.text.as_str();
    let equal = if tst_instant(want).is_some() || is_placeholder_tst(want) {
        if is_placeholder_tst(want) && (got.is_empty() || got == want) {
            true
        } else {
            let reported = tst_instant(&got).or_else(|| got.parse::<jiff::Timestamp>().ok());
            reported.is_some() && reported == tst_instant(want)
        }
    } else if let (Some(a), Some(b)) = (decimal(want), decimal(&got)) {
        a == b
    } else {
        want == got
    };
    if !equal {
        return Some(format!("value {want:?}, got {got:?}"));
    }
    match (&expected.unit, &reported.unit) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => Some(format!("unit {a:?}, got {b:?}")),
        // A decoder that returns values without units (bare numbers) is not wrong about them.
        _ => None,
    }
}

/// Differences between an expected telegram and a reported one; empty when they match.
pub fn compare_telegram(expected: &Telegram, reported: &Reported) -> Vec<String> {
    let mut diffs = Vec::new();
    if let Some(h) = &reported.header
        && h != &expected.header
        && h.trim_start_matches('/') != expected.header
    {
        diffs.push(format!("header {:?}, got {h:?}", expected.header));
    }
    let mut used = vec![false; reported.objects.len()];
    for line in &expected.lines {
        let obis = line.obis.trim();
        let found = reported.objects.iter().enumerate().find(|(i, o)| !used[*i] && o.obis.trim() == obis);
        match found {
            None if is_core(obis) => diffs.push(format!("{obis}: missing (expected {})", show(line))),
            None => {}
            Some((i, o)) => {
                used[i] = true;
                diffs.extend(compare_values(line, o).into_iter().map(|d| format!("{obis}: {d}")));
            }
        }
    }
    for (i, o) in reported.objects.iter().enumerate() {
        if !used[i] && !expected.lines.iter().any(|l| l.obis.trim() == o.obis.trim()) {
            diffs.push(format!("{}: reported, but the telegram has no such object", o.obis));
        }
    }
    diffs
}

/// Values compared one to one. A decoder may leave out leading header values of a record (the
/// count and capture OBIS of a log, the status of a DSMR 2.2 gas record): values align from the
/// end, where the readings are.
fn compare_values(line: &Line, o: &ReportedObject) -> Vec<String> {
    if o.values.len() > line.values.len() {
        return vec![format!("{} values, got {}", line.values.len(), o.values.len())];
    }
    if o.values.is_empty() && !line.values.is_empty() {
        return vec![format!("no values reported (expected {})", show(line))];
    }
    let offset = line.values.len() - o.values.len();
    line.values[offset..].iter().zip(&o.values).filter_map(|(e, r)| compare_value(e, r)).collect()
}

/// `(a)(b*u)` form of a line's values, for messages.
pub fn show(line: &Line) -> String {
    line.values
        .iter()
        .map(|v| match &v.unit {
            Some(u) => format!("({}*{u})", v.text),
            None => format!("({})", v.text),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(json: &str) -> Reported {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_compare_as_decimals() {
        assert_eq!(decimal("001234.567"), decimal("1234.567"));
        assert_eq!(decimal("1234.5670"), Some((1_234_567, 3)));
        assert_eq!(decimal("00005"), decimal("5"));
        assert_ne!(decimal("1234.567"), decimal("1234.568"));
        assert_eq!(decimal("0-0:96.7.19"), None);
        let v = Value::new("001234.567", Some("kWh"));
        assert_eq!(
            compare_value(
                &v,
                &reported(r#"{"objects":[{"obis":"x","values":[{"value":1234.567,"unit":"KWH"}]}]}"#).objects[0].values
                    [0]
            ),
            None
        );
        assert!(
            compare_value(&v, &ReportedValue { value: Some("1234.566".into()), unit: Some("kWh".into()) }).is_some()
        );
    }

    #[test]
    fn timestamps_compare_as_instants() {
        let v = Value::new("260115120000W", None);
        assert_eq!(compare_value(&v, &ReportedValue { value: Some("2026-01-15T11:00:00Z".into()), unit: None }), None);
        assert_eq!(compare_value(&v, &ReportedValue { value: Some("260115120000W".into()), unit: None }), None);
        assert!(compare_value(&v, &ReportedValue { value: Some("2026-01-15T12:00:00Z".into()), unit: None }).is_some());
        let none = Value::new("632525252525W", None);
        assert_eq!(compare_value(&none, &ReportedValue { value: None, unit: None }), None);
        // Dutch local time for 12-digit DSMR 2.2 timestamps: 2016-03-15 21:00 CET.
        assert_eq!(tst_instant("160315210000").unwrap().as_second(), 1_458_072_000);
    }

    #[test]
    fn core_objects_must_be_reported_others_may_be_omitted() {
        let t = Telegram::new(
            "X5",
            vec![
                Line::from_rendered("1-0:1.8.1".into(), "(000671.578*kWh)"),
                Line::from_rendered("0-0:96.13.0".into(), "()"),
            ],
            p1sim_core::telegram::Checksum::Computed,
        );
        let ok =
            reported(r#"{"header":"X5","objects":[{"obis":"1-0:1.8.1","values":[{"value":"671.578","unit":"kWh"}]}]}"#);
        assert!(compare_telegram(&t, &ok).is_empty());
        let missing = reported(r#"{"header":"X5","objects":[{"obis":"0-0:96.13.0","values":[{"value":""}]}]}"#);
        assert_eq!(compare_telegram(&t, &missing).len(), 1);
        let invented = reported(
            r#"{"header":"X5","objects":[{"obis":"1-0:1.8.1","values":[{"value":"671.578","unit":"kWh"}]},{"obis":"1-0:9.9.9","values":[]}]}"#,
        );
        assert_eq!(compare_telegram(&t, &invented).len(), 1);
    }
}
