//! What a captured telegram says about its meter: the profile's shape (spec, objects, widths,
//! units, M-Bus channels, log style) and the values it showed (the readings and the `[start]`).
//! Every object is rendered back with those values and kept as fixed text where p1sim's model
//! cannot reproduce it.

use anyhow::{Result, bail};
use p1sim_core::clock::ClockRule;
use p1sim_core::format::{LocalTime, NumFormat, is_placeholder_tst};
use p1sim_core::household::HouseholdConfig;
use p1sim_core::obis::Obis;
use p1sim_core::profile::{
    Direction, EmptyLog, Encryption, FailureLogStyle, Kind, LogOrder, MBusDevice, Medium, Num, Object, PowerKind,
    Profile, Quantity, StartState, quantity_of,
};
use p1sim_core::readings::{DemandMonth, MBusValue, PowerFailure, Readings};
use p1sim_core::render::write_value_part;
use p1sim_core::spec::{Country, Spec};
use p1sim_core::telegram::{Checksum, Line, Telegram, Value};

use super::Fixed;
use crate::capture::{Capture, instant};

/// What inference found, before it is written and checked.
#[derive(Debug, Clone)]
pub struct Inferred {
    pub profile: Profile,
    pub readings: Readings,
    pub fixed: Vec<Fixed>,
    pub notes: Vec<String>,
    /// The first telegram's timestamp as written, for the comment.
    pub captured_at: Option<String>,
}

/// Duration of a Kaifa-style dummy failure-log entry: 2^31 - 1 seconds.
const DUMMY_DURATION: &str = "2147483647";

pub fn infer(capture: &Capture, name: &str) -> Result<Inferred> {
    let first = &capture.telegrams[0];
    let model = first.model();
    let t = &model;
    let mut notes = Vec::new();
    let (crc, crc_padded) = match &t.checksum {
        Checksum::None => (false, true),
        Checksum::Text(c) if c.bytes().any(|b| b.is_ascii_lowercase()) => bail!(
            "{}: the CRC {c:?} is written in lowercase, which no meter does and p1sim cannot reproduce; was the \
             capture edited?",
            capture.origin
        ),
        Checksum::Text(c) if c.len() < 4 => (true, false),
        _ => (true, true),
    };
    let encryption = first.frame.as_ref().map(|f| {
        let mut title = [0u8; 8];
        title.copy_from_slice(&f[2..10]);
        Encryption { system_title: title, auth_key: capture.auth_key }
    });
    let obis_f = t.lines.first().and_then(|l| Obis::parse_with_f(l.obis.as_bytes())).and_then(|(_, f)| f);
    let (country, spec) = spec_of(t, crc, encryption.is_some(), &mut notes);
    let phases = if t.lines.iter().any(|l| obis(l).is_some_and(is_phase_23)) { 3 } else { 1 };
    let summer = t.lines.iter().filter_map(|l| l.values.first()).any(|v| v.text.len() == 13 && v.text.ends_with('S'));
    let clock = ClockRule { zone: country.zone(), summer_time: country != Country::SE || summer };
    let mbus = mbus_devices(t, spec);
    let failure_log = log_style(t);
    let interval_s = interval(capture, spec, &mut notes);
    let mut readings = Readings::default();
    let mut objects = Vec::with_capacity(t.lines.len());
    for line in &t.lines {
        objects
            .push(Object { obis: obis(line).unwrap_or(Obis::new(0, 0, 0, 0, 0)), kind: kind_of(line, &mut readings) });
    }
    let mut profile = Profile {
        name: name.to_string(),
        description: format!("{}, learned from {}", t.header, capture.origin),
        country,
        spec,
        header: t.header.clone(),
        phases,
        interval_s,
        line: spec.default_line(),
        clock,
        blank_line: t.blank_line,
        crc,
        crc_padded,
        end_marker: t.end_marker,
        obis_f,
        // A gateway's lines after the telegram are not the meter's: a profile adds them by hand.
        trailer: None,
        // The ids are the meter's own, as captured.
        derive_identity: false,
        failure_log,
        mbus,
        objects,
        encryption,
        household: HouseholdConfig::for_country(country),
        start: None,
        sources: vec![format!("captured telegram: {} (/{})", capture.origin, t.header)],
    };
    fill_readings(t, &profile, &mut readings);
    if let Some(f) = &first.frame {
        readings_frame_counter(f, &mut profile);
    }
    // Every object must give back its captured text; what does not is kept as that text.
    let snapshot = profile.clone();
    let mut reasons: Vec<Option<&'static str>> = vec![None; t.lines.len()];
    for (k, line) in t.lines.iter().enumerate() {
        let want = value_part(line);
        let mut got = Vec::new();
        write_value_part(&snapshot, &snapshot.objects[k].kind, &readings, &mut got);
        if got != want.as_bytes() {
            reasons[k] = Some(reproduce_failure(&snapshot.objects[k].kind));
            profile.objects[k].kind = Kind::Raw(want);
        }
    }
    let fixed = profile
        .objects
        .iter()
        .zip(&t.lines)
        .zip(&reasons)
        .filter(|((o, _), _)| matches!(o.kind, Kind::Text(_) | Kind::Hex(_) | Kind::Raw(_)))
        .map(|((o, line), why)| Fixed {
            obis: line.obis.clone(),
            text: value_part(line),
            why: why.unwrap_or(if quantity_of(o.obis).is_some() {
                "written in a way p1sim's model does not"
            } else {
                "no meaning in p1sim's model"
            }),
        })
        .collect();
    if obis_unreadable(t) {
        bail!("{}: a data line has no OBIS code p1sim can read; the capture may be damaged", capture.origin);
    }
    profile.start = Some(start_state(&profile, &readings));
    let captured_at = t.line("0-0:1.0.0").and_then(|l| l.values.first()).map(|v| v.text.clone());
    if capture.telegrams.len() > 1 {
        notes.push(format!("{} telegrams in the capture; the first is the one reproduced", capture.telegrams.len()));
    }
    notes.extend(capture.notes.iter().cloned());
    Ok(Inferred { profile, readings, fixed, notes, captured_at })
}

fn obis_unreadable(t: &Telegram) -> bool {
    t.lines.iter().any(|l| obis(l).is_none())
}

fn obis(line: &Line) -> Option<Obis> {
    Obis::parse(line.obis.trim().as_bytes())
}

/// Objects only poly-phase meters send.
fn is_phase_23(o: Obis) -> bool {
    o.a == 1 && matches!(o.c, 41..=44 | 51..=52 | 61..=64 | 71..=72)
}

/// The spec and country a telegram shows.
pub(super) fn spec_of(t: &Telegram, crc: bool, encrypted: bool, notes: &mut Vec<String>) -> (Country, Spec) {
    let has = |code: &str| t.line(code).is_some();
    let version = t.line("1-3:0.2.8").and_then(|l| l.values.first()).map(|v| v.text.clone());
    let country = if has("0-0:96.1.4") || t.header.starts_with("FLU") {
        Country::BE
    } else if encrypted || has("0-0:42.0.0") || t.header.starts_with("Lux") {
        Country::LU
    } else if version.is_none() && has("1-0:1.8.0") && !has("1-0:1.8.1") && crc {
        Country::SE
    } else {
        Country::NL
    };
    let spec = match (country, version.as_deref()) {
        (_, _) if encrypted => Spec::Smarty,
        (Country::BE, _) => Spec::EMucs,
        (Country::SE, _) => Spec::SeHan,
        (_, _) if !crc => {
            notes.push("no CRC: a DSMR 2.2 or 3.0 meter (they look alike; set spec = \"DSMR 3.0\" if yours is)".into());
            Spec::Dsmr22
        }
        (_, Some("40" | "41")) => Spec::Dsmr40,
        (_, Some("42")) => Spec::Dsmr42,
        (_, Some("50")) => Spec::Dsmr50,
        (_, v) => {
            notes.push(format!("version line {v:?} is not one p1sim knows: taken as DSMR 5.0"));
            Spec::Dsmr50
        }
    };
    if country == Country::LU && !encrypted {
        notes.push(
            "a plaintext Luxembourg telegram: the profile sends it unencrypted; to send Smarty frames set \
             spec = \"Smarty\" and add an [encryption] table"
                .into(),
        );
    }
    (country, spec)
}

/// The interval: the shortest step between successive telegram timestamps (or logged times).
fn interval(capture: &Capture, spec: Spec, notes: &mut Vec<String>) -> u32 {
    let times: Vec<i64> = capture.telegrams.iter().filter_map(|c| c.stamp).collect();
    let logged: Vec<i64> = capture.telegrams.iter().filter_map(|c| c.logged_at.map(|t| t.round() as i64)).collect();
    let steps = |v: &[i64]| v.windows(2).map(|w| w[1] - w[0]).filter(|d| (1..=3600).contains(d)).min();
    match steps(&times).or_else(|| steps(&logged)) {
        Some(s) => {
            notes.push(format!("a telegram every {s} s, from the capture's timestamps"));
            s as u32
        }
        None => spec.default_interval_s(),
    }
}

/// The channel of an M-Bus object: `0-n:` with n in 1..=4.
fn channel_of(o: Obis) -> Option<u8> {
    (o.a == 0 && (1..=4).contains(&o.b)).then_some(o.b)
}

/// A placeholder reading: a placeholder capture time and a value without unit.
fn placeholder(line: &Line) -> Option<(String, String)> {
    let [t, v] = line.values.as_slice() else { return None };
    (is_placeholder_tst(&t.text) && v.unit.is_none()).then(|| (t.text.clone(), v.text.clone()))
}

/// The M-Bus devices a telegram lists, in channel order.
fn mbus_devices(t: &Telegram, spec: Spec) -> Vec<MBusDevice> {
    let mut devices: Vec<MBusDevice> = Vec::new();
    for line in &t.lines {
        let Some(o) = obis(line) else { continue };
        let Some(ch) = channel_of(o) else { continue };
        if !matches!(
            quantity_of(o),
            Some(Quantity::MBusType(_) | Quantity::MBusId(_) | Quantity::MBusReading(_) | Quantity::MBusLegacy(_))
        ) {
            continue;
        }
        if !devices.iter().any(|d| d.channel == ch) {
            devices.push(MBusDevice {
                channel: ch,
                medium: Medium::Gas,
                device_type: 3,
                id: String::new(),
                raw_id: false,
                capture_s: spec.mbus_capture_s(),
                placeholder: None,
            });
        }
        let d = devices.iter_mut().find(|d| d.channel == ch).expect("just added");
        match quantity_of(o) {
            Some(Quantity::MBusType(_)) => {
                if let Some(n) = line.values.first().and_then(|v| v.text.parse::<u8>().ok()) {
                    d.device_type = n;
                    d.medium = match n {
                        3 => Medium::Gas,
                        4 | 12 => Medium::Heat,
                        6 | 7 | 15 | 17 => Medium::Water,
                        _ => d.medium,
                    };
                }
            }
            Some(Quantity::MBusId(_)) => {
                if let Some(v) = line.values.first() {
                    match unhex(&v.text) {
                        Some(text) => d.id = text,
                        // An id sent as it is (the NWA Warmtelink's M-Bus secondary address).
                        None => (d.id, d.raw_id) = (v.text.clone(), true),
                    }
                }
            }
            Some(Quantity::MBusReading(_)) => {
                if let Some(p) = placeholder(line) {
                    d.medium = Medium::Ghost;
                    d.placeholder = Some(p);
                } else if d.device_type != 3
                    && d.device_type != 7
                    && let Some(u) = line.values.last().and_then(|v| v.unit.as_deref())
                    && (u.eq_ignore_ascii_case("GJ") || u.eq_ignore_ascii_case("MJ"))
                {
                    d.medium = Medium::Heat;
                }
            }
            _ => {}
        }
    }
    devices.sort_by_key(|d| d.channel);
    devices
}

/// Text sent as hex, if it is hex of text.
fn unhex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Vec<u8> =
        (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0)).collect();
    let text = String::from_utf8(bytes).ok()?;
    // Written back as uppercase hex: lowercase hex would not come back the same.
    (hex.bytes().all(|b| !b.is_ascii_lowercase())).then_some(text)
}

/// The failure log's style: order, dummy entry, the empty form.
fn log_style(t: &Telegram) -> FailureLogStyle {
    let mut style = FailureLogStyle::default();
    let Some(line) = t.line("1-0:99.97.0") else { return style };
    if line.values.len() == 1 && line.values[0].text.is_empty() {
        style.empty = EmptyLog::EmptyBrackets;
        return style;
    }
    let entries: Vec<&[Value]> = line.values.get(2..).map(|v| v.chunks(2).collect()).unwrap_or_default();
    let mut real = entries.clone();
    if let Some(last) = entries.last()
        && last.len() == 2
        && last[1].text == DUMMY_DURATION
    {
        style.dummy = Some(last[0].text.clone());
        real.pop();
    }
    let times: Vec<Option<i64>> = real.iter().map(|e| instant(&e[0].text)).collect();
    if times.len() >= 2 && times.windows(2).all(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if a < b)) {
        style.order = LogOrder::OldestFirst;
    }
    style.max_entries = style.max_entries.max(entries.len().min(255) as u8);
    style
}

/// Digit widths of a number as written: `001234.567` is 6.3. `None` for anything else.
fn format_of(text: &str) -> Option<NumFormat> {
    let (i, d) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if i.is_empty() || !digits(i) || !digits(d) || i.len() > 12 || d.len() > 4 || (text.contains('.') && d.is_empty()) {
        return None;
    }
    Some(NumFormat::new(i.len() as u8, d.len() as u8))
}

/// A number's value in thousandths (or in units for `scale` 0): `(001234.567, 3)` is 1234567.
/// `None` when it has more decimals than `scale` keeps.
fn scaled(text: &str, scale: u32) -> Option<u64> {
    let (i, d) = text.split_once('.').unwrap_or((text, ""));
    if d.len() as u32 > scale {
        return None;
    }
    let mut digits = format!("{i}{d}");
    for _ in d.len() as u32..scale {
        digits.push('0');
    }
    digits.parse().ok()
}

/// The value of a number with an electrical unit in base units (W, Wh, var, varh, VA).
fn electrical(v: &Value) -> Option<u64> {
    match v.unit.as_deref().map(|u| u.as_bytes().first().copied()) {
        Some(Some(b'k' | b'K')) => scaled(&v.text, 3),
        _ => scaled(&v.text, 0),
    }
}

fn num(v: &Value) -> Option<Num> {
    Some(Num { format: format_of(&v.text)?, unit: v.unit.clone() })
}

/// The kind of object a captured line is, recording its values in `r` on the way. Lines p1sim
/// has no meaning for, or writes in a way it does not model, are literals.
fn kind_of(line: &Line, r: &mut Readings) -> Kind {
    let literal = || literal(line);
    let Some(o) = obis(line) else { return literal() };
    let Some(q) = quantity_of(o) else { return literal() };
    let v = &line.values;
    let one = v.first();
    let kind = match (q, v.len()) {
        (Quantity::Clock, 1) => one.and_then(|x| LocalTime::parse_tst(&x.text)).map(|t| {
            r.time = t;
            Kind::Clock
        }),
        (Quantity::Energy(register), 1) => one.and_then(num).map(|num| Kind::Energy { register, num }),
        (Quantity::Tariff, 1) => {
            one.and_then(|x| format_of(&x.text).filter(|f| f.dec == 0)).map(|format| Kind::Tariff { format })
        }
        (Quantity::Power(quantity), 1) => one.and_then(num).map(|num| Kind::Power { quantity, num }),
        (Quantity::Voltage(phase), 1) => one.and_then(num).map(|num| Kind::Voltage { phase, num }),
        (Quantity::Current(phase), 1) => one.and_then(num).map(|num| Kind::Current { phase, num }),
        (Quantity::Failures { long }, 1) => integer(one).map(|format| Kind::Failures { long, format }),
        (Quantity::Sags(phase), 1) => integer(one).map(|format| Kind::Sags { phase, format }),
        (Quantity::Swells(phase), 1) => integer(one).map(|format| Kind::Swells { phase, format }),
        (Quantity::FailureLog, _) => log_num(v).map(|num| Kind::FailureLog { num }),
        (Quantity::TextMessage, 1) => {
            one.filter(|x| x.unit.is_none()).and_then(|x| unhex(&x.text)).map(|_| Kind::TextMessage)
        }
        (Quantity::TextCode, 1) => {
            one.filter(|x| x.unit.is_none()).and_then(|x| unhex(&x.text)).map(|_| Kind::TextCode)
        }
        (Quantity::Demand, 1) => one.and_then(num).map(|num| Kind::Demand { num }),
        // The Iskra IE5T writes the peak before its 12-digit time.
        (Quantity::DemandMax, 2) if v[0].unit.is_some() && v[1].unit.is_none() => {
            num(&v[0]).map(|num| Kind::DemandMax { num, value_first: true })
        }
        (Quantity::DemandMax, 2) => num(&v[1]).map(|num| Kind::DemandMax { num, value_first: false }),
        (Quantity::PowerFactor(phase), 1) => integer_or_decimal(one).map(|format| Kind::PowerFactor { phase, format }),
        (Quantity::Frequency, 1) => one.and_then(num).map(|num| Kind::Frequency { num }),
        (Quantity::DemandHistory, n) if n >= 3 => v
            .get(5)
            .and_then(num)
            .or_else(|| Some(Num { format: NumFormat::new(2, 3), unit: Some("kW".into()) }))
            .map(|num| Kind::DemandHistory { num }),
        (Quantity::MBusType(channel), 1) => integer(one).map(|format| Kind::MBusType { channel, format }),
        (Quantity::MBusId(channel), 1) => one.and_then(|x| unhex(&x.text)).map(|_| Kind::MBusId { channel }),
        (Quantity::MBusReading(channel), 2) => match placeholder(line) {
            Some(_) => Some(Kind::MBusReading { channel, num: Num { format: NumFormat::new(5, 3), unit: None } }),
            None => num(&v[1]).map(|num| Kind::MBusReading { channel, num }),
        },
        (Quantity::MBusLegacy(channel), 7) => {
            let capture = Obis::parse(v[4].text.as_bytes());
            let unit = Some(v[5].text.clone()).filter(|u| !u.is_empty());
            match (capture, format_of(&v[6].text)) {
                (Some(capture), Some(format)) => Some(Kind::MBusLegacy {
                    channel,
                    num: Num { format, unit },
                    status: v[1].text.clone(),
                    period: v[2].text.clone(),
                    capture,
                }),
                _ => None,
            }
        }
        _ => None,
    };
    kind.unwrap_or_else(literal)
}

/// A number without a unit, with or without decimals.
fn integer_or_decimal(v: Option<&Value>) -> Option<NumFormat> {
    v.filter(|x| x.unit.is_none()).and_then(|x| format_of(&x.text))
}

fn integer(v: Option<&Value>) -> Option<NumFormat> {
    v.filter(|x| x.unit.is_none()).and_then(|x| format_of(&x.text)).filter(|f| f.dec == 0)
}

/// The width and unit of a failure log's durations.
fn log_num(v: &[Value]) -> Option<Num> {
    match v {
        [only] if only.text.is_empty() => Some(Num { format: NumFormat::new(10, 0), unit: Some("s".into()) }),
        [_, _] => Some(Num { format: NumFormat::new(10, 0), unit: Some("s".into()) }),
        [_, _, _, d, ..] => num(d).filter(|n| n.format.dec == 0),
        _ => None,
    }
}

/// A line kept as written: one bracket as text, several as raw text.
fn literal(line: &Line) -> Kind {
    let text = value_part(line);
    match line.values.as_slice() {
        [v] if !text.contains('\n') => {
            let inner = &text[1..text.len() - 1];
            match (unhex(&v.text), v.unit.is_none()) {
                (Some(t), true) if !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic() || c == ' ') => Kind::Hex(t),
                _ => Kind::Text(inner.to_string()),
            }
        }
        _ => Kind::Raw(text),
    }
}

/// What follows the OBIS code on a line, as sent.
pub fn value_part(line: &Line) -> String {
    let mut out = Vec::new();
    line.render(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    text[line.obis.len()..text.len() - 2].to_string()
}

/// Why a kind could not give back its captured text.
fn reproduce_failure(kind: &Kind) -> &'static str {
    match kind {
        Kind::Energy { .. } => "a register p1sim's model keeps differently (a reactive tariff, a fraction of a Wh)",
        Kind::Power { .. } => "a power p1sim's model keeps in whole W or var",
        Kind::FailureLog { .. } => "a failure log p1sim writes differently",
        Kind::DemandMax { .. } | Kind::DemandHistory { .. } => "a peak-demand layout p1sim writes differently",
        Kind::MBusReading { .. } | Kind::MBusLegacy { .. } | Kind::MBusType { .. } | Kind::MBusId { .. } => {
            "an M-Bus value p1sim writes differently"
        }
        Kind::Text(_) | Kind::Hex(_) | Kind::Raw(_) => "text p1sim cannot write back as it was",
        _ => "written in a way p1sim's model does not",
    }
}

/// The readings the telegram shows, for rendering it back.
fn fill_readings(t: &Telegram, p: &Profile, r: &mut Readings) {
    let mut import = [None; 4];
    let mut export = [None; 4];
    let mut totals = Vec::new();
    for (line, obj) in t.lines.iter().zip(&p.objects) {
        let v = &line.values;
        match &obj.kind {
            Kind::Energy { register, .. } => {
                let Some(x) = v.first().and_then(electrical) else { continue };
                use p1sim_core::profile::Energy::*;
                match (register.direction, register.energy, register.tariff) {
                    (Direction::Import, Active, Some(k @ 1..=4)) => import[k as usize - 1] = Some(x),
                    (Direction::Export, Active, Some(k @ 1..=4)) => export[k as usize - 1] = Some(x),
                    (Direction::Import, Active, None) => totals.push((true, x)),
                    (Direction::Export, Active, None) => totals.push((false, x)),
                    (Direction::Import, Reactive, None) => r.registers.q_import_varh = x,
                    (Direction::Export, Reactive, None) => r.registers.q_export_varh = x,
                    (Direction::Import, Reactive, Some(k @ 1..=4)) => {
                        r.registers.q_import_tariff_varh[k as usize - 1] = x
                    }
                    (Direction::Export, Reactive, Some(k @ 1..=4)) => {
                        r.registers.q_export_tariff_varh[k as usize - 1] = x
                    }
                    (_, Quadrant(q @ 1..=4), _) => r.registers.q_quadrant_varh[usize::from(q) - 1] = x,
                    _ => {}
                }
            }
            Kind::Tariff { .. } => r.tariff = v[0].text.parse().unwrap_or(1),
            Kind::Power { quantity, .. } => {
                if let (Some(x), Some(n)) = (v.first().and_then(electrical), quantity.phase) {
                    let ph = &mut r.phases[usize::from(n.clamp(1, 3)) - 1];
                    let w = x.min(u64::from(u32::MAX)) as u32;
                    match (quantity.direction, quantity.kind) {
                        (Direction::Import, PowerKind::Active) => ph.import_w = w,
                        (Direction::Export, PowerKind::Active) => ph.export_w = w,
                        (Direction::Import, PowerKind::Reactive) => ph.q_import_var = w,
                        (Direction::Export, PowerKind::Reactive) => ph.q_export_var = w,
                        _ => {}
                    }
                }
            }
            Kind::Voltage { phase, .. } => {
                r.phases[usize::from(*phase) - 1].voltage_dv = scaled(&v[0].text, 1).unwrap_or(0) as u32
            }
            Kind::Current { phase, .. } => {
                r.phases[usize::from(*phase) - 1].current_ma = scaled(&v[0].text, 3).unwrap_or(0) as u32
            }
            Kind::Failures { long, .. } => {
                let n = v[0].text.parse().unwrap_or(0);
                if *long { r.long_power_failures = n } else { r.power_failures = n }
            }
            Kind::Sags { phase, .. } => r.sags[usize::from(*phase) - 1] = v[0].text.parse().unwrap_or(0),
            Kind::Swells { phase, .. } => r.swells[usize::from(*phase) - 1] = v[0].text.parse().unwrap_or(0),
            Kind::TextMessage => r.text_message = unhex(&v[0].text).unwrap_or_default(),
            Kind::TextCode => r.text_code = unhex(&v[0].text).unwrap_or_default(),
            Kind::FailureLog { .. } => {
                let mut entries: Vec<PowerFailure> = v
                    .get(2..)
                    .unwrap_or_default()
                    .chunks(2)
                    .filter(|e| e.len() == 2 && !(p.failure_log.dummy.is_some() && e[1].text == DUMMY_DURATION))
                    .filter_map(|e| {
                        Some(PowerFailure {
                            end: LocalTime::parse_tst(&e[0].text)?,
                            duration_s: e[1].text.parse().ok()?,
                        })
                    })
                    .collect();
                if p.failure_log.order == LogOrder::OldestFirst {
                    entries.reverse();
                }
                r.failure_log = entries;
            }
            Kind::Demand { .. } => r.demand.current_avg_w = scaled(&v[0].text, 3).unwrap_or(0) as u32,
            Kind::Frequency { .. } => r.frequency_mhz = scaled(&v[0].text, 3).unwrap_or(0) as u32,
            Kind::DemandMax { value_first: true, .. } => {
                if let (Some(t), Some(w)) = (LocalTime::parse_tst(&v[1].text), scaled(&v[0].text, 3)) {
                    r.demand.month_max = Some((t, w as u32));
                }
            }
            Kind::DemandMax { .. } => {
                if let (Some(t), Some(w)) = (LocalTime::parse_tst(&v[0].text), scaled(&v[1].text, 3))
                    && v[0].text.as_bytes() != p1sim_core::render::NO_DATA_TST
                {
                    r.demand.month_max = Some((t, w as u32));
                }
            }
            Kind::DemandHistory { .. } => {
                r.demand.history = v
                    .get(3..)
                    .unwrap_or_default()
                    .chunks(3)
                    .filter(|m| m.len() == 3)
                    .filter_map(|m| {
                        Some(DemandMonth {
                            period_end: LocalTime::parse_tst(&m[0].text)?,
                            peak_time: (m[1].text.as_bytes() != p1sim_core::render::NO_DATA_TST)
                                .then(|| LocalTime::parse_tst(&m[1].text))
                                .flatten(),
                            peak_w: scaled(&m[2].text, 3)? as u32,
                        })
                    })
                    .collect();
            }
            Kind::MBusReading { channel, .. } if placeholder(line).is_none() => {
                if let (Some(t), Some(m)) = (LocalTime::parse_tst(&v[0].text), scaled(&v[1].text, 3)) {
                    r.mbus.push(MBusValue { channel: *channel, milli: m, captured: t });
                }
            }
            Kind::MBusLegacy { channel, .. } => {
                if let (Some(t), Some(m)) = (LocalTime::parse_tst(&v[0].text), scaled(&v[6].text, 3)) {
                    r.mbus.push(MBusValue { channel: *channel, milli: m, captured: t });
                }
            }
            _ => {}
        }
    }
    // Registers: the tariff registers as they are, a total alone on the first.
    let has_tariffs = p.has_tariffs();
    r.registers.import_wh = import.map(|x| x.unwrap_or(0));
    r.registers.export_wh = export.map(|x| x.unwrap_or(0));
    if !has_tariffs {
        for (imp, x) in totals {
            if imp { r.registers.import_wh = [x, 0, 0, 0] } else { r.registers.export_wh = [x, 0, 0, 0] }
        }
    }
    // Powers the phase arithmetic does not give (totals, or a phase importing and exporting)
    // are kept as measured.
    for (line, obj) in t.lines.iter().zip(&p.objects) {
        if let Kind::Power { quantity, .. } = &obj.kind
            && let Some(x) = line.values.first().and_then(electrical)
            && r.power(*quantity) != x
        {
            r.measured.push((*quantity, x));
        }
    }
}

fn readings_frame_counter(frame: &[u8], p: &mut Profile) {
    if let Ok(Some(h)) = p1sim_core::smarty::parse_header(frame) {
        p.start.get_or_insert_with(StartState::default).frame_counter = Some(h.frame_counter);
    }
}

/// The `[start]` of a learned profile: what the meter showed.
fn start_state(p: &Profile, r: &Readings) -> StartState {
    let has = |f: &dyn Fn(&Kind) -> bool| p.objects.iter().any(|o| f(&o.kind));
    let frame_counter = p.start.as_ref().and_then(|s| s.frame_counter);
    use p1sim_core::profile::Energy;
    let register = |f: &dyn Fn(&p1sim_core::profile::Register) -> bool| {
        has(&|k| matches!(k, Kind::Energy { register, .. } if f(register)))
    };
    let active = |dir: Direction| register(&|g| g.direction == dir && g.energy == Energy::Active);
    let reactive = |dir: Direction, per_tariff: bool| {
        register(&|g| g.direction == dir && g.energy == Energy::Reactive && g.tariff.is_some() == per_tariff)
    };
    StartState {
        import_wh: active(Direction::Import).then_some(r.registers.import_wh),
        export_wh: active(Direction::Export).then_some(r.registers.export_wh),
        q_import_varh: reactive(Direction::Import, false).then_some(r.registers.q_import_varh),
        q_export_varh: reactive(Direction::Export, false).then_some(r.registers.q_export_varh),
        q_import_tariff_varh: reactive(Direction::Import, true).then_some(r.registers.q_import_tariff_varh),
        q_export_tariff_varh: reactive(Direction::Export, true).then_some(r.registers.q_export_tariff_varh),
        q_quadrant_varh: register(&|g| matches!(g.energy, Energy::Quadrant(_))).then_some(r.registers.q_quadrant_varh),
        tariff: has(&|k| matches!(k, Kind::Tariff { .. })).then_some(r.tariff),
        power_failures: has(&|k| matches!(k, Kind::Failures { long: false, .. })).then_some(r.power_failures),
        long_power_failures: has(&|k| matches!(k, Kind::Failures { long: true, .. })).then_some(r.long_power_failures),
        failure_log: has(&|k| matches!(k, Kind::FailureLog { .. })).then(|| r.failure_log.clone()),
        sags: has(&|k| matches!(k, Kind::Sags { .. })).then_some(r.sags),
        swells: has(&|k| matches!(k, Kind::Swells { .. })).then_some(r.swells),
        text_message: has(&|k| matches!(k, Kind::TextMessage)).then(|| r.text_message.clone()),
        text_code: has(&|k| matches!(k, Kind::TextCode)).then(|| r.text_code.clone()),
        mbus: r.mbus.clone(),
        month_max: r.demand.month_max,
        demand_history: has(&|k| matches!(k, Kind::DemandHistory { .. })).then(|| r.demand.history.clone()),
        frame_counter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_values_as_written() {
        assert_eq!(format_of("001234.567"), Some(NumFormat::new(6, 3)));
        assert_eq!(format_of("00005"), Some(NumFormat::new(5, 0)));
        assert_eq!(format_of("12a"), None);
        assert_eq!(format_of("1."), None);
        assert_eq!(scaled("001234.567", 3), Some(1_234_567));
        assert_eq!(scaled("229.9", 1), Some(2299));
        assert_eq!(scaled("01219311.383", 0), None, "a fraction of a Wh");
        assert_eq!(electrical(&Value::new("000000286", Some("W"))), Some(286));
        assert_eq!(unhex("4530303434"), Some("E0044".into()));
        assert_eq!(unhex("e0"), None);
    }
}
