//! Loading a profile from TOML, with errors that name the file, line, column and key.
//!
//! The file's layout is `[meter]`, optional `[failure_log]`, `[encryption]`, `[household]` and
//! `[start]` (the meter's state at the start of a run, as `p1sim profiles learn` writes it from
//! a capture), any number of `[[mbus]]` channels, and `[telegram] objects = [...]`: one inline
//! table per line of the telegram, in order. Unknown keys, bad widths and unknown names are
//! rejected.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{
    CrcStyle, EmptyLog, Encryption, FailureLogStyle, Kind, LogOrder, MBusDevice, Medium, Num, Object, Profile,
    Quantity, StartState, quantity_of,
};
use crate::clock::{ClockRule, Zone};
use crate::format::{LocalTime, NumFormat};
use crate::household::HouseholdConfig;
use crate::obis::Obis;
use crate::spec::{Country, Framing, Spec};

/// A profile that could not be loaded, located as precisely as the problem allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(k) = &self.key {
            write!(f, "key `{k}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProfileError {}

impl ProfileError {
    /// An error at byte `offset` of `text`, which was read from `file`.
    pub fn at(file: &str, text: &str, offset: usize, key: Option<&str>, message: impl Into<String>) -> ProfileError {
        let (line, column) = Source { file, text }.position(offset);
        ProfileError { file: file.to_string(), line, column, key: key.map(String::from), message: message.into() }
    }

    /// A file that could not be read at all; `what` says what it was meant to be.
    pub fn unreadable(path: &Path, what: &str, e: &std::io::Error) -> ProfileError {
        ProfileError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            key: None,
            message: format!("cannot read the {what}: {e}"),
        }
    }

    /// Reads a TOML file of the given kind through the size cap for TOML inputs, or says why not.
    pub fn read(path: &Path, what: &'static str) -> Result<String, ProfileError> {
        crate::input::read_bounded_text(path, crate::input::Limit::new(what, crate::input::Limit::TOML))
            .map_err(|e| ProfileError::unreadable(path, what, &e))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    meter: MeterSection,
    failure_log: Option<FailureLogSection>,
    encryption: Option<EncryptionSection>,
    household: Option<Spanned<HouseholdConfig>>,
    start: Option<StartSection>,
    #[serde(default)]
    mbus: Vec<MBusSection>,
    telegram: TelegramSection,
}

/// `[start]`: registers in kWh/kvarh, counters, the log, M-Bus readings in their units.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartSection {
    import_kwh: Option<Spanned<Vec<f64>>>,
    export_kwh: Option<Spanned<Vec<f64>>>,
    reactive_import_kvarh: Option<Spanned<f64>>,
    reactive_export_kvarh: Option<Spanned<f64>>,
    tariff: Option<Spanned<u8>>,
    power_failures: Option<u32>,
    long_power_failures: Option<u32>,
    failure_log: Option<Vec<Spanned<LogEntrySection>>>,
    sags: Option<Spanned<Vec<u32>>>,
    swells: Option<Spanned<Vec<u32>>>,
    text_message: Option<String>,
    text_code: Option<String>,
    #[serde(default)]
    mbus: Vec<Spanned<MBusStartSection>>,
    peak: Option<Spanned<PeakSection>>,
    peak_history: Option<Vec<Spanned<HistorySection>>>,
    frame_counter: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogEntrySection {
    end: String,
    seconds: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MBusStartSection {
    channel: u8,
    reading: f64,
    captured: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeakSection {
    at: String,
    kw: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistorySection {
    month: String,
    at: String,
    kw: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeterSection {
    description: String,
    country: Spanned<String>,
    spec: Spanned<String>,
    header: Spanned<String>,
    /// True when no real identification line was found and the header is invented.
    #[serde(default)]
    header_assumed: bool,
    phases: Spanned<u8>,
    interval_s: Option<Spanned<u32>>,
    baud: Option<Spanned<u32>>,
    framing: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    summer_time: Option<bool>,
    blank_line: Option<bool>,
    crc: Option<bool>,
    crc_style: Option<Spanned<String>>,
    #[serde(default)]
    sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureLogSection {
    order: Option<Spanned<String>>,
    dummy: Option<Spanned<String>>,
    max_entries: Option<u8>,
    empty: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptionSection {
    system_title: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MBusSection {
    channel: Spanned<u8>,
    medium: Spanned<String>,
    device_type: Option<u8>,
    #[serde(default)]
    id: String,
    capture_s: Option<u32>,
    placeholder: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TelegramSection {
    objects: Vec<Spanned<ObjectSection>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectSection {
    obis: Spanned<String>,
    text: Option<Spanned<String>>,
    hex: Option<Spanned<String>>,
    raw: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    unit: Option<Spanned<String>>,
    status: Option<Spanned<String>>,
    period: Option<Spanned<String>>,
    capture: Option<Spanned<String>>,
}

/// Where the loader reads from, for error positions.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, column)
    }

    fn error(&self, span: Range<usize>, key: Option<&str>, message: impl Into<String>) -> ProfileError {
        let (line, column) = self.position(span.start);
        ProfileError {
            file: self.file.to_string(),
            line,
            column,
            key: key.map(String::from).or_else(|| self.key_before(span.start)),
            message: message.into(),
        }
    }

    /// The key whose value starts at or contains `offset`: the identifier before the `=` that
    /// precedes it on the same line.
    fn key_before(&self, offset: usize) -> Option<String> {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let head = &self.text[line_start..offset];
        let eq = head.rfind('=')?;
        let key = head[..eq].trim_end();
        let start = key
            .char_indices()
            .rfind(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let key = &key[start..];
        (!key.is_empty()).then(|| key.to_string())
    }
}

/// Loads a profile from a file; the name is the file stem.
pub fn load_file(path: &Path) -> Result<Profile, ProfileError> {
    let display = path.display().to_string();
    let text = ProfileError::read(path, "profile")?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("profile");
    parse(name, &display, &text)
}

/// Parses profile text. `file` is only used in error messages.
pub fn parse(name: &str, file: &str, text: &str) -> Result<Profile, ProfileError> {
    let raw: File = from_toml(file, text)?;
    build(name, &Source { file, text }, raw)
}

/// Deserializes TOML text of any of p1sim's file kinds (profiles, boards, bench plans), with
/// syntax and type errors located as a profile's are: file, line, column and key.
pub fn from_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ProfileError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        let key = unknown_field(&message);
        Source { file, text }.error(span, key.as_deref(), message)
    })
}

/// The key named by serde's "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

fn parse_named<T: std::str::FromStr<Err = crate::spec::UnknownName>>(
    src: &Source<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<T, ProfileError> {
    value.get_ref().parse().map_err(|e: crate::spec::UnknownName| {
        src.error(value.span(), Some(key), format!("unknown {key} {:?}: {e}", value.get_ref()))
    })
}

fn build(name: &str, src: &Source<'_>, raw: File) -> Result<Profile, ProfileError> {
    let m = &raw.meter;
    let country: Country = parse_named(src, &m.country, "country")?;
    let spec: Spec = parse_named(src, &m.spec, "spec")?;
    if m.header.get_ref().is_empty() || m.header.get_ref().contains(['\r', '\n', '!']) {
        return Err(src.error(m.header.span(), Some("header"), "the identification must be one line without `!`"));
    }
    let phases = *m.phases.get_ref();
    if !matches!(phases, 1 | 3) {
        return Err(src.error(m.phases.span(), Some("phases"), format!("expected 1 or 3, got {phases}")));
    }
    let mut line = spec.default_line();
    if let Some(b) = &m.baud {
        if !(300..=4_000_000).contains(b.get_ref()) {
            return Err(src.error(b.span(), Some("baud"), format!("{} is not a usable baud rate", b.get_ref())));
        }
        line.baud = *b.get_ref();
    }
    if let Some(f) = &m.framing {
        line.framing = f
            .get_ref()
            .parse::<Framing>()
            .map_err(|e| src.error(f.span(), Some("framing"), format!("unknown framing {:?}: {e}", f.get_ref())))?;
    }
    let interval_s = match &m.interval_s {
        Some(i) if *i.get_ref() == 0 => {
            return Err(src.error(i.span(), Some("interval_s"), "the interval must be at least 1 s"));
        }
        Some(i) => *i.get_ref(),
        None => spec.default_interval_s(),
    };
    let zone = match &m.timezone {
        Some(z) => parse_named::<Zone>(src, z, "timezone")?,
        None => match country {
            Country::NL => Zone::Amsterdam,
            Country::BE => Zone::Brussels,
            Country::LU => Zone::Luxembourg,
            Country::SE => Zone::Stockholm,
        },
    };
    let summer_time = m.summer_time.unwrap_or(country != Country::SE);

    let failure_log = build_failure_log(src, raw.failure_log.as_ref())?;
    let encryption = match &raw.encryption {
        Some(e) => Some(Encryption { system_title: system_title(src, &e.system_title)? }),
        None => None,
    };
    if encryption.is_some() != (spec == Spec::Smarty) {
        return Err(src.error(
            m.spec.span(),
            Some("spec"),
            "Smarty profiles need an [encryption] table, and only they may have one",
        ));
    }

    let mut mbus = Vec::new();
    for d in &raw.mbus {
        let channel = *d.channel.get_ref();
        if !(1..=4).contains(&channel) {
            return Err(src.error(d.channel.span(), Some("channel"), "M-Bus channels are 1 to 4"));
        }
        if mbus.iter().any(|x: &MBusDevice| x.channel == channel) {
            return Err(src.error(d.channel.span(), Some("channel"), format!("channel {channel} is defined twice")));
        }
        let medium = match d.medium.get_ref().as_str() {
            "gas" => Medium::Gas,
            "water" => Medium::Water,
            "heat" => Medium::Heat,
            "ghost" => Medium::Ghost,
            other => {
                return Err(src.error(
                    d.medium.span(),
                    Some("medium"),
                    format!("unknown medium {other:?}: expected gas, water, heat or ghost"),
                ));
            }
        };
        let placeholder = match &d.placeholder {
            Some(p) => match p.get_ref().as_slice() {
                [t, v] => Some((t.clone(), v.clone())),
                _ => {
                    return Err(src.error(
                        p.span(),
                        Some("placeholder"),
                        "expected [timestamp, value], e.g. [\"700101010000W\", \"00000000\"]",
                    ));
                }
            },
            None if medium == Medium::Ghost => {
                return Err(src.error(
                    d.medium.span(),
                    Some("medium"),
                    "a ghost channel needs a placeholder = [timestamp, value]",
                ));
            }
            None => None,
        };
        mbus.push(MBusDevice {
            channel,
            medium,
            device_type: d.device_type.unwrap_or(medium.device_type()),
            id: d.id.clone(),
            capture_s: d.capture_s.unwrap_or(spec.mbus_capture_s()).max(1),
            placeholder,
        });
    }

    // An invented identification is recorded among the sources, so it shows wherever they do.
    let mut sources = m.sources.clone();
    if m.header_assumed {
        sources
            .push("header assumed: no identification line of this model is documented (dsmr-facts.md E1)".to_string());
    }

    let mut objects = Vec::with_capacity(raw.telegram.objects.len());
    for o in &raw.telegram.objects {
        objects.push(build_object(src, o, phases, &mbus)?);
    }
    let crc_style = match &m.crc_style {
        None => CrcStyle::Padded,
        Some(s) => match s.get_ref().as_str() {
            "padded" => CrcStyle::Padded,
            "unpadded" => CrcStyle::Unpadded,
            other => {
                return Err(src.error(
                    s.span(),
                    Some("crc_style"),
                    format!("unknown CRC style {other:?}: expected padded or unpadded"),
                ));
            }
        },
    };
    let start = raw.start.as_ref().map(|s| build_start(src, s, &mbus)).transpose()?;
    let household = match raw.household {
        Some(h) => {
            let span = h.span();
            let h = h.into_inner();
            h.check().map_err(|(key, message)| {
                // The table's span may be its header only: look for the key's line after it.
                let after = src.text.get(span.start..).unwrap_or("");
                let at = after
                    .match_indices(key)
                    .find(|(o, _)| {
                        let line_start = after[..*o].rfind('\n').map_or(0, |n| n + 1);
                        after[line_start..*o].trim().is_empty()
                    })
                    .map_or(span.start, |(o, _)| span.start + o);
                src.error(at..at, Some(key), message)
            })?;
            h
        }
        None => HouseholdConfig::for_country(country),
    };
    // Two places can give the import registers: they must agree, or an edit of one would be
    // silently overruled by the other.
    if let (Some(kwh), Some(wh), Some(section)) =
        (household.start_import_kwh, start.as_ref().and_then(|s| s.import_wh), raw.start.as_ref())
    {
        let total = wh[0] + wh[1];
        if libm::round(kwh * 1000.0) as u64 != total {
            let span = section.import_kwh.as_ref().map_or(0..0, |v| v.span());
            return Err(src.error(
                span,
                Some("import_kwh"),
                format!(
                    "[start] import_kwh adds up to {}.{:03} kWh but [household] start_import_kwh is {kwh}: change both, \
                     or remove start_import_kwh",
                    total / 1000,
                    total % 1000
                ),
            ));
        }
    }

    Ok(Profile {
        name: name.to_string(),
        description: m.description.clone(),
        country,
        spec,
        header: m.header.get_ref().clone(),
        phases,
        interval_s,
        line,
        clock: ClockRule { zone, summer_time },
        blank_line: m.blank_line.unwrap_or(true),
        crc: m.crc.unwrap_or(spec.has_crc()),
        crc_style,
        failure_log,
        mbus,
        objects,
        encryption,
        household,
        start,
        sources,
    })
}

/// Thousandths of a decimal quantity (kWh to Wh, m3 to litres), refusing what a register
/// cannot hold.
fn milli(src: &Source<'_>, span: Range<usize>, key: &str, v: f64) -> Result<u64, ProfileError> {
    if !v.is_finite() || !(0.0..=1e12).contains(&v) {
        return Err(src.error(span, Some(key), format!("{v} is not a register reading (0 to 10^12)")));
    }
    Ok(libm::round(v * 1000.0) as u64)
}

fn tst(src: &Source<'_>, span: Range<usize>, key: &str, text: &str) -> Result<LocalTime, ProfileError> {
    LocalTime::parse_tst(text).ok_or_else(|| {
        src.error(span, Some(key), format!("{text:?} is not a timestamp: expected YYMMDDhhmmssX, e.g. 200426223325S"))
    })
}

fn build_start(src: &Source<'_>, s: &StartSection, mbus: &[MBusDevice]) -> Result<StartState, ProfileError> {
    let pair = |v: &Option<Spanned<Vec<f64>>>, key: &str| -> Result<Option<[u64; 2]>, ProfileError> {
        let Some(v) = v else { return Ok(None) };
        match v.get_ref().as_slice() {
            [a] => Ok(Some([milli(src, v.span(), key, *a)?, 0])),
            [a, b] => Ok(Some([milli(src, v.span(), key, *a)?, milli(src, v.span(), key, *b)?])),
            _ => Err(src.error(v.span(), Some(key), "expected [tariff 1, tariff 2] in kWh, or one total")),
        }
    };
    let single = |v: &Option<Spanned<f64>>, key: &str| -> Result<Option<u64>, ProfileError> {
        v.as_ref().map(|v| milli(src, v.span(), key, *v.get_ref())).transpose()
    };
    let phases = |v: &Option<Spanned<Vec<u32>>>, key: &str| -> Result<Option<[u32; 3]>, ProfileError> {
        let Some(v) = v else { return Ok(None) };
        let mut out = [0u32; 3];
        if v.get_ref().len() > 3 {
            return Err(src.error(v.span(), Some(key), "expected one count per phase, at most 3"));
        }
        out[..v.get_ref().len()].copy_from_slice(v.get_ref());
        Ok(Some(out))
    };
    if let Some(t) = &s.tariff {
        if !(1..=4).contains(t.get_ref()) {
            return Err(src.error(t.span(), Some("tariff"), "the tariff register is 1 to 4"));
        }
    }
    let mut log = None;
    if let Some(entries) = &s.failure_log {
        let mut v = Vec::with_capacity(entries.len());
        for e in entries {
            let end = tst(src, e.span(), "end", &e.get_ref().end)?;
            v.push(crate::readings::PowerFailure { end, duration_s: e.get_ref().seconds });
        }
        log = Some(v);
    }
    let mut readings = Vec::new();
    for m in &s.mbus {
        let r = m.get_ref();
        if !mbus.iter().any(|d| d.channel == r.channel) {
            return Err(src.error(
                m.span(),
                Some("channel"),
                format!("M-Bus channel {} has no [[mbus]] table", r.channel),
            ));
        }
        readings.push(crate::readings::MBusValue {
            channel: r.channel,
            milli: milli(src, m.span(), "reading", r.reading)?,
            captured: tst(src, m.span(), "captured", &r.captured)?,
        });
    }
    let kw = |span: Range<usize>, v: f64| milli(src, span, "kw", v).map(|w| w.min(u64::from(u32::MAX)) as u32);
    let month_max = match &s.peak {
        Some(p) => Some((tst(src, p.span(), "at", &p.get_ref().at)?, kw(p.span(), p.get_ref().kw)?)),
        None => None,
    };
    let mut history = None;
    if let Some(months) = &s.peak_history {
        let mut v = Vec::with_capacity(months.len());
        for h in months {
            let r = h.get_ref();
            let peak_time = if r.at.as_bytes() == crate::render::NO_DATA_TST {
                None
            } else {
                Some(tst(src, h.span(), "at", &r.at)?)
            };
            v.push(crate::readings::DemandMonth {
                period_end: tst(src, h.span(), "month", &r.month)?,
                peak_time,
                peak_w: kw(h.span(), r.kw)?,
            });
        }
        history = Some(v);
    }
    Ok(StartState {
        import_wh: pair(&s.import_kwh, "import_kwh")?,
        export_wh: pair(&s.export_kwh, "export_kwh")?,
        q_import_varh: single(&s.reactive_import_kvarh, "reactive_import_kvarh")?,
        q_export_varh: single(&s.reactive_export_kvarh, "reactive_export_kvarh")?,
        tariff: s.tariff.as_ref().map(|t| *t.get_ref()),
        power_failures: s.power_failures,
        long_power_failures: s.long_power_failures,
        failure_log: log,
        sags: phases(&s.sags, "sags")?,
        swells: phases(&s.swells, "swells")?,
        text_message: s.text_message.clone(),
        text_code: s.text_code.clone(),
        mbus: readings,
        month_max,
        demand_history: history,
        frame_counter: s.frame_counter,
    })
}

fn system_title(src: &Source<'_>, v: &Spanned<String>) -> Result<[u8; 8], ProfileError> {
    let s = v.get_ref();
    let mut t = [0u8; 8];
    if s.len() == 8 && s.is_ascii() {
        t.copy_from_slice(s.as_bytes());
        Ok(t)
    } else if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        for (i, b) in t.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        Ok(t)
    } else {
        Err(src.error(v.span(), Some("system_title"), "expected 8 ASCII characters or 16 hex digits"))
    }
}

fn build_failure_log(src: &Source<'_>, s: Option<&FailureLogSection>) -> Result<FailureLogStyle, ProfileError> {
    let mut style = FailureLogStyle::default();
    let Some(s) = s else { return Ok(style) };
    if let Some(o) = &s.order {
        style.order = match o.get_ref().as_str() {
            "newest-first" => LogOrder::NewestFirst,
            "oldest-first" => LogOrder::OldestFirst,
            other => {
                return Err(src.error(
                    o.span(),
                    Some("order"),
                    format!("unknown order {other:?}: expected newest-first or oldest-first"),
                ));
            }
        };
    }
    if let Some(d) = &s.dummy {
        if !is_tst(d.get_ref()) {
            return Err(src.error(d.span(), Some("dummy"), "expected a 13-character timestamp such as 000101000001W"));
        }
        style.dummy = Some(d.get_ref().clone());
    }
    if let Some(n) = s.max_entries {
        style.max_entries = n;
    }
    if let Some(e) = &s.empty {
        style.empty = match e.get_ref().as_str() {
            "zero-count" => EmptyLog::ZeroCount,
            "empty-brackets" => EmptyLog::EmptyBrackets,
            other => {
                return Err(src.error(
                    e.span(),
                    Some("empty"),
                    format!("unknown style {other:?}: expected zero-count or empty-brackets"),
                ));
            }
        };
    }
    Ok(style)
}

fn is_tst(s: &str) -> bool {
    s.len() == 13 && s.as_bytes()[..12].iter().all(u8::is_ascii_digit) && matches!(s.as_bytes()[12], b'S' | b'W')
}

fn build_object(
    src: &Source<'_>,
    o: &Spanned<ObjectSection>,
    phases: u8,
    mbus: &[MBusDevice],
) -> Result<Object, ProfileError> {
    let obj = o.get_ref();
    let obis = Obis::parse(obj.obis.get_ref().as_bytes()).ok_or_else(|| {
        src.error(
            obj.obis.span(),
            Some("obis"),
            format!("{:?} is not an OBIS code of the form A-B:C.D.E", obj.obis.get_ref()),
        )
    })?;
    let literals = [("text", &obj.text), ("hex", &obj.hex), ("raw", &obj.raw)];
    let given: Vec<_> = literals.iter().filter(|(_, v)| v.is_some()).collect();
    let reject_extra = |keys: &[(&str, &Option<Spanned<String>>)]| -> Result<(), ProfileError> {
        for (k, v) in keys {
            if let Some(v) = v {
                return Err(src.error(v.span(), Some(k), format!("`{k}` does not apply to {obis}")));
            }
        }
        Ok(())
    };
    if given.len() > 1 {
        let (k, v) = given[1];
        return Err(src.error(v.as_ref().map_or(0..0, |v| v.span()), Some(k), "give only one of text, hex or raw"));
    }
    if let Some((k, v)) = given.first() {
        reject_extra(&[
            ("format", &obj.format),
            ("unit", &obj.unit),
            ("status", &obj.status),
            ("period", &obj.period),
            ("capture", &obj.capture),
        ])?;
        let v = v.as_ref().map(|v| v.get_ref().clone()).unwrap_or_default();
        let bad = |what: &str| src.error(o.span(), Some(k), format!("a literal may not contain {what}"));
        if v.contains(['\r', '\n']) {
            return Err(bad("a line break"));
        }
        if *k != "raw" && v.contains([')', '(']) {
            return Err(bad("brackets (use raw for several values)"));
        }
        let kind = match *k {
            "text" => Kind::Text(v),
            "hex" => Kind::Hex(v),
            _ => Kind::Raw(v),
        };
        return Ok(Object { obis, kind });
    }

    let quantity = quantity_of(obis).ok_or_else(|| {
        src.error(
            obj.obis.span(),
            Some("obis"),
            format!("p1sim does not model {obis}; give its value as a literal with text = \"...\""),
        )
    })?;
    let format = |required: bool| -> Result<Option<NumFormat>, ProfileError> {
        match &obj.format {
            Some(f) => f
                .get_ref()
                .parse::<NumFormat>()
                .map(Some)
                .map_err(|e| src.error(f.span(), Some("format"), format!("bad width {:?}: {e}", f.get_ref()))),
            None if required => {
                Err(src.error(o.span(), Some("format"), format!("{obis} needs a format such as \"6.3\"")))
            }
            None => Ok(None),
        }
    };
    let num = || -> Result<Num, ProfileError> {
        Ok(Num {
            format: format(true)?.unwrap_or(NumFormat::new(1, 0)),
            unit: obj.unit.as_ref().map(|u| u.get_ref().clone()),
        })
    };
    let integer = || -> Result<NumFormat, ProfileError> {
        reject_extra(&[("unit", &obj.unit)])?;
        Ok(format(true)?.unwrap_or(NumFormat::new(1, 0)))
    };
    let check_phase = |p: u8| -> Result<u8, ProfileError> {
        if p > phases {
            Err(src.error(
                obj.obis.span(),
                Some("obis"),
                format!("{obis} is a phase {p} object but the meter has {phases} phase(s)"),
            ))
        } else {
            Ok(p)
        }
    };
    let check_channel = |c: u8| -> Result<u8, ProfileError> {
        if mbus.iter().any(|d| d.channel == c) {
            Ok(c)
        } else {
            Err(src.error(
                obj.obis.span(),
                Some("obis"),
                format!("{obis} refers to M-Bus channel {c}, which has no [[mbus]] table"),
            ))
        }
    };
    let no_extras = || reject_extra(&[("status", &obj.status), ("period", &obj.period), ("capture", &obj.capture)]);
    if !matches!(quantity, Quantity::MBusLegacy(_)) {
        no_extras()?;
    }
    let plain = |kind: Kind| -> Result<Kind, ProfileError> {
        reject_extra(&[("format", &obj.format), ("unit", &obj.unit)])?;
        Ok(kind)
    };
    let kind = match quantity {
        Quantity::Clock => plain(Kind::Clock)?,
        Quantity::TextMessage => plain(Kind::TextMessage)?,
        Quantity::TextCode => plain(Kind::TextCode)?,
        Quantity::Energy(register) => Kind::Energy { register, num: num()? },
        Quantity::Tariff => Kind::Tariff { format: integer()? },
        Quantity::Power(q) => {
            if let Some(p) = q.phase {
                check_phase(p)?;
            }
            Kind::Power { quantity: q, num: num()? }
        }
        Quantity::Voltage(p) => Kind::Voltage { phase: check_phase(p)?, num: num()? },
        Quantity::Current(p) => Kind::Current { phase: check_phase(p)?, num: num()? },
        Quantity::Failures { long } => Kind::Failures { long, format: integer()? },
        Quantity::FailureLog => Kind::FailureLog { num: num()? },
        Quantity::Sags(p) => Kind::Sags { phase: check_phase(p)?, format: integer()? },
        Quantity::Swells(p) => Kind::Swells { phase: check_phase(p)?, format: integer()? },
        Quantity::Demand => Kind::Demand { num: num()? },
        Quantity::DemandMax => Kind::DemandMax { num: num()? },
        Quantity::DemandHistory => Kind::DemandHistory { num: num()? },
        Quantity::MBusType(c) => Kind::MBusType { channel: check_channel(c)?, format: integer()? },
        Quantity::MBusId(c) => plain(Kind::MBusId { channel: check_channel(c)? })?,
        Quantity::MBusReading(c) => Kind::MBusReading { channel: check_channel(c)?, num: num()? },
        Quantity::MBusLegacy(c) => {
            let capture = match &obj.capture {
                Some(cap) => Obis::parse(cap.get_ref().as_bytes()).ok_or_else(|| {
                    src.error(cap.span(), Some("capture"), format!("{:?} is not an OBIS code", cap.get_ref()))
                })?,
                None => Obis::new(0, c, 24, 2, 1),
            };
            let text = |v: &Option<Spanned<String>>, default: &str| {
                v.as_ref().map_or(default.to_string(), |v| v.get_ref().clone())
            };
            Kind::MBusLegacy {
                channel: check_channel(c)?,
                num: num()?,
                status: text(&obj.status, "00"),
                period: text(&obj.period, "60"),
                capture,
            }
        }
    };
    Ok(Object { obis, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[meter]
description = "test meter"
country = "NL"
spec = "DSMR 5.0"
header = 'ISK5\2M550T-1012'
phases = 1

[telegram]
objects = [
  { obis = "1-3:0.2.8", text = "50" },
  { obis = "0-0:1.0.0" },
  { obis = "1-0:1.8.1", format = "6.3", unit = "kWh" },
]
"#;

    fn err(text: &str) -> ProfileError {
        parse("t", "t.toml", text).unwrap_err()
    }

    #[test]
    fn minimal_profile_loads_with_spec_defaults() {
        let p = parse("t", "t.toml", MINIMAL).unwrap();
        assert_eq!(p.interval_s, 1);
        assert_eq!(p.line.to_string(), "115200 8N1");
        assert!(p.crc);
        assert_eq!(p.objects.len(), 3);
        assert_eq!(p.clock.zone, Zone::Amsterdam);
    }

    #[test]
    fn unknown_key_is_named_with_its_position() {
        let e = err(&MINIMAL.replace("phases = 1", "phases = 1\ncolour = \"red\""));
        assert_eq!(e.key.as_deref(), Some("colour"));
        assert_eq!((e.line, e.column), (8, 1));
        assert!(e.to_string().starts_with("t.toml:8:1: key `colour`: unknown field"), "{e}");
    }

    #[test]
    fn bad_width_is_named_with_its_position() {
        let e = err(&MINIMAL.replace("\"6.3\"", "\"6.x\""));
        assert_eq!(e.key.as_deref(), Some("format"));
        assert_eq!(e.line, 13);
        assert!(e.message.contains("bad width \"6.x\""), "{e}");
    }

    #[test]
    fn unknown_spec_lists_the_choices() {
        let e = err(&MINIMAL.replace("DSMR 5.0", "DSMR 6"));
        assert_eq!((e.key.as_deref(), e.line), (Some("spec"), 5));
        assert!(e.message.contains("DSMR 5.0, e-MUCS"), "{e}");
    }

    #[test]
    fn unknown_obis_without_literal_is_refused() {
        let e = err(&MINIMAL.replace("\"1-3:0.2.8\", text = \"50\"", "\"1-3:0.2.8\""));
        assert_eq!(e.key.as_deref(), Some("obis"));
        assert!(e.message.contains("literal"), "{e}");
    }

    #[test]
    fn phase_objects_need_the_phases() {
        let e =
            err(&MINIMAL
                .replace("{ obis = \"0-0:1.0.0\" },", "{ obis = \"1-0:52.7.0\", format = \"3.1\", unit = \"V\" },"));
        assert!(e.message.contains("phase 2"), "{e}");
    }

    #[test]
    fn mbus_objects_need_their_channel() {
        let e = err(&MINIMAL
            .replace("{ obis = \"0-0:1.0.0\" },", "{ obis = \"0-1:24.2.1\", format = \"5.3\", unit = \"m3\" },"));
        assert!(e.message.contains("channel 1"), "{e}");
    }

    #[test]
    fn type_errors_come_with_positions() {
        let e = err(&MINIMAL.replace("phases = 1", "phases = \"one\""));
        assert_eq!((e.line, e.key.as_deref()), (7, Some("phases")));
    }

    #[test]
    fn syntax_errors_come_with_positions() {
        let e = err(&MINIMAL.replace("country = \"NL\"", "country = \"NL"));
        assert_eq!(e.line, 4);
    }

    #[test]
    fn a_start_state_loads_in_base_units() {
        let text = MINIMAL.replace("phases = 1\n", "phases = 1\ncrc_style = \"unpadded\"\n")
            + "\n[start]\nimport_kwh = [671.578, 842.472]\ntariff = 2\nfailure_log = [{ end = \"190326095015W\", seconds = 2014 }]\n";
        let p = parse("t", "t.toml", &text).unwrap();
        assert_eq!(p.crc_style, CrcStyle::Unpadded);
        let s = p.start.unwrap();
        assert_eq!(s.import_wh, Some([671_578, 842_472]));
        assert_eq!(s.tariff, Some(2));
        assert_eq!(s.failure_log.unwrap()[0].duration_s, 2014);
        let e = err(&(MINIMAL.to_string() + "\n[start]\ntariff = 9\n"));
        assert_eq!((e.key.as_deref(), e.line), (Some("tariff"), 17));
        let e = err(&(MINIMAL.to_string() + "\n[start]\nmbus = [{ channel = 1, reading = 1.0, captured = \"x\" }]\n"));
        assert!(e.message.contains("no [[mbus]] table"), "{e}");
        let e = err(&MINIMAL.replace("phases = 1\n", "phases = 1\ncrc_style = \"short\"\n"));
        assert_eq!(e.key.as_deref(), Some("crc_style"));
    }

    #[test]
    fn start_import_kwh_and_the_start_registers_must_agree() {
        let start = "\n[start]\nimport_kwh = [671.578, 842.472]\n";
        let with = |kwh: &str| MINIMAL.to_string() + "\n[household]\nstart_import_kwh = " + kwh + "\n" + start;
        let p = parse("t", "t.toml", &with("1514.05")).unwrap();
        assert_eq!(p.household.start_import_kwh, Some(1514.05));
        let e = err(&with("1600.0"));
        assert_eq!(e.key.as_deref(), Some("import_kwh"));
        assert!(e.message.contains("adds up to 1514.050 kWh"), "{e}");
    }
}
