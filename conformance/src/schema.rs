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
//! - numbers with a unit compare after scaling the `k` prefix away (kWh/Wh, kW/W, kvarh/varh,
//!   kvar/var, kVA/VA) and m3 to dm3, so `(010238239*Wh)` reported as 10238.239 kWh is right;
//! - units compare case-insensitively (`kWh`, `kwh`; Sweden's `kVArh` and `kvarh`); energy and
//!   power registers must carry theirs, other values may come without one;
//! - timestamps may be the TST text (`260115120000W`) or an RFC 3339 instant; they compare as
//!   instants, and a "no data" placeholder (`632525252525W`, `000101010000W`) may be null or "";
//! - OBIS codes compare without surrounding whitespace;
//! - an accepting decoder must report the core objects (timestamp, energy registers, total power,
//!   M-Bus readings); other objects it may omit, and so an M-Bus reading that is only a
//!   placeholder (`(700101010000W)(00000000)`), but what it reports must match.

use p1sim_core::clock::Zone;
pub use p1sim_core::format::is_placeholder_tst;
use p1sim_core::telegram::{Line, Telegram, Value};
use serde::{Deserialize, Serialize};

/// One telegram as a decoder under test reported it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportedObject {
    pub obis: String,
    #[serde(default)]
    pub values: Vec<ReportedValue>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportedValue {
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    #[serde(default)]
    pub unit: Option<String>,
}

impl Reported {
    /// A telegram with these objects, for decoders reporting from Rust.
    pub fn new(header: Option<&str>, objects: Vec<ReportedObject>) -> Reported {
        Reported { header: header.map(str::to_string), crc: None, crc_ok: None, objects }
    }
}

impl ReportedObject {
    pub fn new(obis: &str, values: Vec<ReportedValue>) -> ReportedObject {
        ReportedObject { obis: obis.to_string(), values }
    }
}

impl ReportedValue {
    /// A value as text (`"001234.567"`, `"260115120000W"`, `""` for empty brackets) or a number.
    pub fn new(value: impl Into<serde_json::Value>, unit: Option<&str>) -> ReportedValue {
        ReportedValue { value: Some(value.into()), unit: unit.map(str::to_string) }
    }

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

/// An OBIS code as compared: trimmed, without an F group of 255. IEC 62056-61 gives F = 255 as
/// "not used", so `1-0:1.8.0*255` (EasyMeter's D0 output) and `1-0:1.8.0` name the same object,
/// and a decoder may report either.
pub fn obis_key(obis: &str) -> &str {
    let o = obis.trim();
    o.strip_suffix("*255").unwrap_or(o)
}

/// Whether two OBIS codes name the same object (see [`obis_key`]).
pub fn same_obis(a: &str, b: &str) -> bool {
    obis_key(a) == obis_key(b)
}

/// Objects an accepting decoder must report: the ones every P1 consumer needs.
pub fn is_core(obis: &str) -> bool {
    let o = obis_key(obis);
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
    // At most 30 digits: no overflow of i128.
    let v = i.bytes().chain(f.bytes()).fold(0i128, |v, b| v * 10 + i128::from(b - b'0'));
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

/// An M-Bus reading that holds no reading: a placeholder capture time and a value without a
/// unit, as on an empty channel. A decoder may drop it.
pub fn is_placeholder_reading(line: &Line) -> bool {
    let o = line.obis.trim();
    (o.contains(":24.2.1") || o.contains(":24.2.3"))
        && line.values.first().is_some_and(|v| is_placeholder_tst(&v.text))
        && line.values.last().is_some_and(|v| v.unit.is_none())
}

/// Energy registers and powers (`1-0:C.8.x`, `1-0:C.7.0`): their unit is the difference between
/// Wh and kWh, so a decoder must report it.
pub fn needs_unit(obis: &str) -> bool {
    let o = obis.trim();
    let Some(rest) = o.strip_prefix("1-0:") else { return false };
    let mut parts = rest.split('.');
    let (Some(c), Some(d)) = (parts.next().and_then(|c| c.parse::<u8>().ok()), parts.next()) else {
        return false;
    };
    match d {
        "8" => (1..=4).contains(&c),
        "7" => matches!(c, 1..=4 | 9 | 10 | 21..=24 | 41..=44 | 61..=64),
        _ => false,
    }
}

/// A number with its unit in base units: the `k` prefix of energy and power units and the m3 of
/// volumes scaled away, the unit lowercased. `(1234567, 3, "kwh")` becomes `(1234567, 0, "wh")`.
pub fn to_base_unit(value: (i128, u32), unit: &str) -> ((i128, u32), String) {
    let unit = unit.trim().to_ascii_lowercase();
    let (base, factor_digits) = match unit.as_str() {
        "kwh" | "kw" | "kvarh" | "kvar" | "kva" | "kvah" => (unit[1..].to_string(), 3),
        "m3" => ("dm3".to_string(), 3),
        "mwh" | "mw" => (unit[1..].to_string(), 6),
        _ => (unit, 0),
    };
    let (mut digits, mut scale) = value;
    for _ in 0..factor_digits {
        if scale > 0 {
            scale -= 1;
        } else {
            digits = digits.saturating_mul(10);
        }
    }
    ((digits, scale), base)
}

/// Why an expected value and a reported one differ, or `None` when they are equal. `needs_unit`
/// says whether a value without a unit is wrong (energy and power registers).
pub fn compare_value(expected: &Value, reported: &ReportedValue, needs_unit: bool) -> Option<String> {
    let got = reported.text();
    let want = expected.text.as_str();
    if tst_instant(want).is_some() || is_placeholder_tst(want) {
        let equal = if is_placeholder_tst(want) && (got.is_empty() || got == want) {
            true
        } else {
            let reported = tst_instant(&got).or_else(|| got.parse::<jiff::Timestamp>().ok());
            reported.is_some() && reported == tst_instant(want)
        };
        return (!equal).then(|| format!("value {want:?}, got {got:?}"));
    }
    let (Some(a), Some(b)) = (decimal(want), decimal(&got)) else {
        return (want != got).then(|| format!("value {want:?}, got {got:?}"));
    };
    match (&expected.unit, &reported.unit) {
        (Some(eu), Some(ru)) => {
            let (wa, wu) = to_base_unit(a, eu);
            let (ga, gu) = to_base_unit(b, ru);
            if wu != gu {
                Some(format!("unit {eu:?}, got {ru:?}"))
            } else if wa != ga {
                Some(format!("value {want:?} {eu}, got {got:?} {ru}"))
            } else {
                None
            }
        }
        (Some(eu), None) if needs_unit => Some(format!("unit missing: value {got:?} without its unit {eu:?}")),
        // Other values without a unit (counts, bare numbers) are not wrong about it.
        _ => (a != b).then(|| format!("value {want:?}, got {got:?}")),
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
        let found = reported.objects.iter().enumerate().find(|(i, o)| !used[*i] && same_obis(&o.obis, obis));
        match found {
            None if is_core(obis) && !is_placeholder_reading(line) => {
                diffs.push(format!("{obis}: missing (expected {})", show(line)))
            }
            None => {}
            Some((i, o)) => {
                used[i] = true;
                diffs.extend(compare_values(line, o).into_iter().map(|d| format!("{obis}: {d}")));
            }
        }
    }
    for (i, o) in reported.objects.iter().enumerate() {
        if !used[i] && !expected.lines.iter().any(|l| same_obis(&l.obis, &o.obis)) {
            diffs.push(format!("{}: reported, but the telegram has no such object", o.obis));
        }
    }
    diffs
}

/// How many of the expected telegram's core objects the report carries with equal values: how
/// much a report resembles a telegram when they differ.
pub fn equal_core_objects(expected: &Telegram, reported: &Reported) -> usize {
    expected
        .lines
        .iter()
        .filter(|l| is_core(&l.obis))
        .filter(|l| {
            reported
                .objects
                .iter()
                .find(|o| same_obis(&o.obis, &l.obis))
                .is_some_and(|o| !o.values.is_empty() && compare_values(l, o).is_empty())
        })
        .count()
}

/// The instant of a report's message timestamp `0-0:1.0.0`, if it has one that parses.
pub fn reported_time(reported: &Reported) -> Option<jiff::Timestamp> {
    let o = reported.objects.iter().find(|o| obis_key(&o.obis) == "0-0:1.0.0")?;
    let got = o.values.last()?.text();
    tst_instant(&got).or_else(|| got.parse::<jiff::Timestamp>().ok())
}

/// The instant of a telegram's message timestamp.
pub fn telegram_time(t: &Telegram) -> Option<jiff::Timestamp> {
    tst_instant(&t.line("0-0:1.0.0")?.values.last()?.text)
}

/// Values compared one to one. A decoder may leave out leading header values of a record (the
/// count and capture OBIS of a log, the status of a DSMR 2.2 gas record): values align from the
/// end, where the readings are.
fn compare_values(line: &Line, o: &ReportedObject) -> Vec<String> {
    if o.values.len() > line.values.len() {
        return vec![format!("{} values, got {}", line.values.len(), o.values.len())];
    }
    if o.values.is_empty() && !line.values.is_empty() && !is_empty_record(line) {
        return vec![format!("no values reported (expected {})", show(line))];
    }
    let offset = line.values.len() - o.values.len();
    let unit = needs_unit(&line.obis);
    line.values[offset..].iter().zip(&o.values).filter_map(|(e, r)| compare_value(e, r, unit)).collect()
}

/// A line with nothing in it: empty brackets `()`, or a log or history whose count is 0. A
/// decoder that reports no values for it is right.
fn is_empty_record(line: &Line) -> bool {
    let o = line.obis.trim();
    line.values.iter().all(|v| v.text.is_empty())
        || ((o.ends_with(":99.97.0") || o.ends_with(":98.1.0"))
            && line.values.first().is_some_and(|v| decimal(&v.text) == Some((0, 0))))
}

/// The expected telegram in the decoder output schema: what a correct decoder prints for it
/// (values as the meter wrote them, units as given).
pub fn expected_report(t: &Telegram) -> Reported {
    Reported {
        header: Some(t.header.clone()),
        crc: None,
        crc_ok: None,
        objects: t
            .lines
            .iter()
            .map(|l| ReportedObject {
                obis: l.obis.trim().to_string(),
                values: l
                    .values
                    .iter()
                    .map(|v| ReportedValue { value: Some(v.text.clone().into()), unit: v.unit.clone() })
                    .collect(),
            })
            .collect(),
    }
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
                    [0],
                true
            ),
            None
        );
        assert!(compare_value(&v, &ReportedValue::new("1234.566", Some("kWh")), true).is_some());
    }

    #[test]
    fn timestamps_compare_as_instants() {
        let v = Value::new("260115120000W", None);
        assert_eq!(compare_value(&v, &ReportedValue::new("2026-01-15T11:00:00Z", None), false), None);
        assert_eq!(compare_value(&v, &ReportedValue::new("260115120000W", None), false), None);
        assert!(compare_value(&v, &ReportedValue::new("2026-01-15T12:00:00Z", None), false).is_some());
        let none = Value::new("632525252525W", None);
        assert_eq!(compare_value(&none, &ReportedValue { value: None, unit: None }, false), None);
        // Dutch local time for 12-digit DSMR 2.2 timestamps: 2016-03-15 21:00 CET.
        assert_eq!(tst_instant("160315210000").unwrap().as_second(), 1_458_072_000);
    }

    #[test]
    fn an_f_group_of_255_names_the_same_object() {
        let t = Telegram::new(
            "ESY5Q3DB1024 V3.04",
            vec![Line::from_rendered("1-0:1.8.0*255".into(), "(00026543.5840000*kWh)")],
            p1sim_core::telegram::Checksum::None,
        );
        for obis in ["1-0:1.8.0", "1-0:1.8.0*255"] {
            let r = reported(&format!(
                r#"{{"objects":[{{"obis":"{obis}","values":[{{"value":"26543.584","unit":"kWh"}}]}}]}}"#
            ));
            assert!(compare_telegram(&t, &r).is_empty(), "{obis}: {:?}", compare_telegram(&t, &r));
        }
        let other = reported(r#"{"objects":[{"obis":"1-0:1.8.0*1","values":[{"value":"26543.584","unit":"kWh"}]}]}"#);
        assert!(!compare_telegram(&t, &other).is_empty(), "F = 1 is another object");
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

    #[test]
    fn units_with_a_prefix_compare_after_scaling() {
        let wh = Value::new("010238239", Some("Wh"));
        assert_eq!(compare_value(&wh, &ReportedValue::new(10238.239, Some("kWh")), true), None);
        assert_eq!(compare_value(&wh, &ReportedValue::new("10238239", Some("wh")), true), None);
        assert!(compare_value(&wh, &ReportedValue::new(10238.239, Some("Wh")), true).is_some(), "scale matters");
        let kw = Value::new("01.234", Some("kW"));
        assert_eq!(compare_value(&kw, &ReportedValue::new(1234, Some("W")), true), None);
        let var = Value::new("0000.309", Some("kvar"));
        assert_eq!(compare_value(&var, &ReportedValue::new("309", Some("VAr")), true), None);
        let gas = Value::new("00246.138", Some("m3"));
        assert_eq!(compare_value(&gas, &ReportedValue::new(246138, Some("dm3")), false), None);
        assert!(compare_value(&gas, &ReportedValue::new(246.138, Some("kWh")), false).unwrap().contains("unit"));
    }

    #[test]
    fn energy_and_power_need_their_unit_other_values_do_not() {
        assert!(needs_unit("1-0:1.8.1") && needs_unit("1-0:4.8.0") && needs_unit("1-0:62.7.0"));
        assert!(needs_unit("1-0:1.7.0") && needs_unit("1-0:9.7.0"));
        assert!(!needs_unit("1-0:32.7.0") && !needs_unit("0-1:24.2.1") && !needs_unit("0-0:96.7.21"));
        let e = Value::new("000671.578", Some("kWh"));
        let bare = ReportedValue::new(671.578, None);
        assert!(compare_value(&e, &bare, true).unwrap().contains("unit missing"));
        let v = Value::new("229.9", Some("V"));
        assert_eq!(compare_value(&v, &ReportedValue::new(229.9, None), false), None);
    }

    #[test]
    fn placeholder_readings_may_be_dropped_but_must_match_when_reported() {
        let ghost = Line::from_rendered("0-1:24.2.1".into(), "(700101010000W)(00000000)");
        let gas = Line::from_rendered("0-2:24.2.1".into(), "(200426223001S)(00246.138*m3)");
        assert!(is_placeholder_reading(&ghost));
        assert!(!is_placeholder_reading(&gas));
        let t = Telegram::new("ISK5\\2M550T-1012", vec![ghost, gas], p1sim_core::telegram::Checksum::Computed);
        let without = reported(
            r#"{"objects":[{"obis":"0-2:24.2.1","values":[{"value":"200426223001S"},{"value":"246.138","unit":"m3"}]}]}"#,
        );
        assert!(compare_telegram(&t, &without).is_empty(), "{:?}", compare_telegram(&t, &without));
        let wrong = reported(
            r#"{"objects":[{"obis":"0-1:24.2.1","values":[{"value":"700101010000W"},{"value":"5"}]},{"obis":"0-2:24.2.1","values":[{"value":"200426223001S"},{"value":"246.138","unit":"m3"}]}]}"#,
        );
        assert_eq!(compare_telegram(&t, &wrong).len(), 1);
    }
}
