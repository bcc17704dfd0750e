//! Loading a profile from TOML, with errors that name the file, line, column and key.
//!
//! The file's layout is `[meter]`, optional `[failure_log]`, `[encryption]`, `[gateway]`,
//! `[household]` and `[start]` (the meter's state at the start of a run, as `p1sim profiles
//! learn` writes it from a capture), any number of `[[mbus]]` channels, and `[telegram] objects =
//! [...]`: one inline table per line of the telegram, in order. Unknown keys, bad widths and
//! unknown names are rejected.
//!
//! A *variant* names another profile with `extends` in its `[meter]` table and changes only what
//! differs: `[meter]` keys (a new `description` and its own `sources` are required), `plaintext`
//! to drop the encryption, and a `[household]` table that replaces the base's.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{
    EmptyLog, Encryption, FailureLogStyle, Kind, LogOrder, MBusDevice, Medium, Num, Object, Profile, Quantity,
    StartState, Trailer, quantity_of,
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
    gateway: Option<GatewaySection>,
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
    reactive_import_tariff_kvarh: Option<Spanned<Vec<f64>>>,
    reactive_export_tariff_kvarh: Option<Spanned<Vec<f64>>>,
    quadrant_kvarh: Option<Spanned<Vec<f64>>>,
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

/// The first look at a file: whether it is a variant of another profile.
#[derive(Deserialize)]
struct Probe {
    meter: Option<ProbeMeter>,
}

#[derive(Deserialize)]
struct ProbeMeter {
    extends: Option<String>,
}

/// A profile that changes another (`extends`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantFile {
    meter: VariantMeter,
    household: Option<Spanned<HouseholdConfig>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantMeter {
    extends: Spanned<String>,
    description: String,
    header: Option<Spanned<String>>,
    #[serde(default)]
    header_assumed: bool,
    interval_s: Option<Spanned<u32>>,
    blank_line: Option<bool>,
    crc_padded: Option<Spanned<bool>>,
    end_marker: Option<Spanned<bool>>,
    identity: Option<Spanned<String>>,
    /// Send the telegrams unencrypted, as a decrypting proxy hands them on.
    plaintext: Option<Spanned<bool>>,
    sources: Spanned<Vec<String>>,
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
struct GatewaySection {
    counter_width: Option<Spanned<u8>>,
    ff_padding: Option<Spanned<u16>>,
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
    /// False for meters that drop the CRC's leading zeros (`!B9F`).
    crc_padded: Option<Spanned<bool>>,
    /// False for meters that send no `!` line (some Iskra MT382).
    end_marker: Option<Spanned<bool>>,
    /// `derived` (default: ids from the seed) or `fixed` (the ids as written).
    identity: Option<Spanned<String>>,
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
    /// 32 hex digits; Smarty's published key when absent.
    auth_key: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MBusSection {
    channel: Spanned<u8>,
    medium: Spanned<String>,
    device_type: Option<u8>,
    #[serde(default)]
    id: String,
    /// An id sent as written rather than hex encoded (an M-Bus secondary address).
    raw_id: Option<Spanned<String>>,
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
    /// An alternative layout of an object: `value-first` (1-0:1.6.0), `billing` (0-0:98.1.0).
    form: Option<Spanned<String>>,
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

/// Parses profile text. `file` names it in error messages and locates a variant's base given as
/// a relative path.
pub fn parse(name: &str, file: &str, text: &str) -> Result<Profile, ProfileError> {
    parse_nested(name, file, text, 0)
}

/// A variant may extend a variant, this many deep; deeper chains are taken for a cycle.
const MAX_EXTENDS: usize = 4;

fn parse_nested(name: &str, file: &str, text: &str, depth: usize) -> Result<Profile, ProfileError> {
    let src = Source { file, text };
    let probe: Probe = from_toml(file, text)?;
    if probe.meter.and_then(|m| m.extends).is_some() {
        return build_variant(name, &src, from_toml(file, text)?, depth);
    }
    build(name, &src, from_toml(file, text)?)
}

/// Loads the base of a variant: a shipped profile by name, or a file relative to the variant.
fn base_profile(src: &Source<'_>, extends: &Spanned<String>, depth: usize) -> Result<Profile, ProfileError> {
    let given = extends.get_ref();
    let located = |message: String| src.error(extends.span(), Some("extends"), message);
    if depth >= MAX_EXTENDS {
        return Err(located(format!("{given:?} extends profiles more than {MAX_EXTENDS} deep (a cycle?)")));
    }
    if let Some((n, text)) = crate::builtin::PROFILES.iter().find(|(n, _)| n == given) {
        return parse_nested(n, &format!("profiles/{n}.toml"), text, depth + 1);
    }
    let path = Path::new(src.file).parent().unwrap_or(Path::new(".")).join(given);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| located(format!("no shipped profile named {given:?}, and {}: {e}", path.display())))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("profile").to_string();
    parse_nested(&stem, &path.display().to_string(), &text, depth + 1)
}

/// A variant: its base with the `[meter]` keys it gives changed.
fn build_variant(name: &str, src: &Source<'_>, raw: VariantFile, depth: usize) -> Result<Profile, ProfileError> {
    let m = raw.meter;
    let mut p = base_profile(src, &m.extends, depth)?;
    p.name = name.to_string();
    p.description = m.description;
    if let Some(h) = &m.header {
        check_header(src, h)?;
        p.header.clone_from(h.get_ref());
    }
    if let Some(i) = &m.interval_s {
        p.interval_s = check_interval(src, i)?;
    }
    if let Some(b) = m.blank_line {
        p.blank_line = b;
    }
    if let Some(c) = &m.crc_padded {
        p.crc_padded = *c.get_ref();
    }
    if let Some(e) = &m.end_marker {
        p.end_marker = *e.get_ref();
    }
    if let Some(i) = &m.identity {
        p.derive_identity = identity_mode(src, i)?;
    }
    if let Some(plain) = &m.plaintext {
        if *plain.get_ref() && p.encryption.is_none() {
            return Err(src.error(plain.span(), Some("plaintext"), "the base profile sends no encrypted frames"));
        }
        if *plain.get_ref() {
            p.encryption = None;
        }
    }
    if let Some(h) = raw.household {
        p.household = checked_household(src, h)?;
    }
    if m.sources.get_ref().is_empty() {
        return Err(src.error(m.sources.span(), Some("sources"), "a variant names the public facts it follows"));
    }
    let mut sources = m.sources.into_inner();
    if m.header_assumed {
        sources.push(ASSUMED_HEADER.to_string());
    }
    sources.append(&mut p.sources);
    p.sources = sources;
    let at = |key: &str| match key {
        "end_marker" => m.end_marker.as_ref().map(Spanned::span),
        "crc_padded" => m.crc_padded.as_ref().map(Spanned::span),
        _ => None,
    };
    consistent(&p).map_err(|(key, message)| src.error(at(key).unwrap_or(m.extends.span()), Some(key), message))?;
    Ok(p)
}

/// What every source list gains when the identification line is invented.
const ASSUMED_HEADER: &str = "header assumed: no identification line of this model is documented";

/// Rules that span several keys; `Err((key, why))` names the key to point at.
fn consistent(p: &Profile) -> Result<(), (&'static str, String)> {
    if !p.end_marker && (p.crc || p.encryption.is_some()) {
        return Err((
            "end_marker",
            "only a meter without a CRC can leave out the `!` line: set crc = false (DSMR 2.2/3 send none)".into(),
        ));
    }
    if !p.crc_padded && !p.crc {
        return Err(("crc_padded", "a meter without a CRC has no digits to pad".into()));
    }
    Ok(())
}

/// A `[household]` table, checked, with errors at the offending key's line.
fn checked_household(src: &Source<'_>, h: Spanned<HouseholdConfig>) -> Result<HouseholdConfig, ProfileError> {
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
    Ok(h)
}

fn check_header(src: &Source<'_>, h: &Spanned<String>) -> Result<(), ProfileError> {
    if h.get_ref().is_empty() || h.get_ref().contains(['\r', '\n', '!']) {
        return Err(src.error(h.span(), Some("header"), "the identification must be one line without `!`"));
    }
    Ok(())
}

fn check_interval(src: &Source<'_>, i: &Spanned<u32>) -> Result<u32, ProfileError> {
    if *i.get_ref() == 0 {
        return Err(src.error(i.span(), Some("interval_s"), "the interval must be at least 1 s"));
    }
    Ok(*i.get_ref())
}

fn identity_mode(src: &Source<'_>, i: &Spanned<String>) -> Result<bool, ProfileError> {
    match i.get_ref().as_str() {
        "derived" => Ok(true),
        "fixed" => Ok(false),
        other => Err(src.error(
            i.span(),
            Some("identity"),
            format!("unknown identity {other:?}: expected derived (ids from the seed) or fixed (as written)"),
        )),
    }
}

/// 32 hex digits as a 16-byte key.
fn key16(src: &Source<'_>, v: &Spanned<String>, key: &str) -> Result<[u8; 16], ProfileError> {
    crate::smarty::parse_key(v.get_ref())
        .ok_or_else(|| src.error(v.span(), Some(key), "expected 16 bytes as 32 hex digits"))
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
    check_header(src, &m.header)?;
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
        Some(i) => check_interval(src, i)?,
        None => spec.default_interval_s(),
    };
    let zone = match &m.timezone {
        Some(z) => parse_named::<Zone>(src, z, "timezone")?,
        None => country.zone(),
    };
    let summer_time = m.summer_time.unwrap_or(country != Country::SE);

    let failure_log = build_failure_log(src, raw.failure_log.as_ref())?;
    let encryption = match &raw.encryption {
        Some(e) => Some(Encryption {
            system_title: system_title(src, &e.system_title)?,
            auth_key: match &e.auth_key {
                Some(k) => key16(src, k, "auth_key")?,
                None => crate::smarty::AUTH_KEY,
            },
        }),
        None => None,
    };
    // A profile of these without [encryption] is the plaintext a decrypting proxy passes on.
    if encryption.is_some() && !matches!(spec, Spec::Smarty | Spec::Steiermark) {
        return Err(src.error(
            m.spec.span(),
            Some("spec"),
            "only Smarty and Steiermark meters encrypt their telegrams; remove the [encryption] table",
        ));
    }
    let trailer = match &raw.gateway {
        Some(g) => {
            let counter_width = g.counter_width.as_ref().map_or(0, |c| *c.get_ref());
            let ff_padding = g.ff_padding.as_ref().map_or(0, |f| *f.get_ref());
            if let Some(c) = g.counter_width.as_ref().filter(|_| counter_width > 20) {
                return Err(src.error(c.span(), Some("counter_width"), "at most 20 characters"));
            }
            if let Some(f) = g.ff_padding.as_ref().filter(|_| ff_padding > 4096) {
                return Err(src.error(f.span(), Some("ff_padding"), "at most 4096 bytes"));
            }
            Some(Trailer { counter_width, ff_padding })
        }
        None => None,
    };

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
        if let Some(r) = &d.raw_id
            && (!d.id.is_empty() || r.get_ref().contains(['(', ')', '\r', '\n']))
        {
            return Err(src.error(
                r.span(),
                Some("raw_id"),
                "give either id (sent hex encoded) or raw_id (sent as written, without brackets)",
            ));
        }
        mbus.push(MBusDevice {
            channel,
            medium,
            device_type: d.device_type.unwrap_or(medium.device_type()),
            id: d.raw_id.as_ref().map_or_else(|| d.id.clone(), |r| r.get_ref().clone()),
            raw_id: d.raw_id.is_some(),
            capture_s: d.capture_s.unwrap_or(spec.mbus_capture_s()).max(1),
            placeholder,
        });
    }

    // An invented identification is recorded among the sources, so it shows wherever they do.
    let mut sources = m.sources.clone();
    if m.header_assumed {
        sources.push(ASSUMED_HEADER.to_string());
    }

    let mut objects = Vec::with_capacity(raw.telegram.objects.len());
    let mut obis_f = None;
    for (i, o) in raw.telegram.objects.iter().enumerate() {
        let (object, f) = build_object(src, o, phases, &mbus)?;
        if i > 0 && f != obis_f {
            return Err(src.error(
                o.get_ref().obis.span(),
                Some("obis"),
                "every code of a telegram carries the same `*F` group, or none does",
            ));
        }
        obis_f = f;
        objects.push(object);
    }
    let start = raw.start.as_ref().map(|s| build_start(src, s, &mbus)).transpose()?;
    let household = match raw.household {
        Some(h) => checked_household(src, h)?,
        None => HouseholdConfig::for_country(country),
    };
    // Two places can give the import registers: they must agree, or an edit of one would be
    // silently overruled by the other.
    if let (Some(kwh), Some(wh), Some(section)) =
        (household.start_import_kwh, start.as_ref().and_then(|s| s.import_wh), raw.start.as_ref())
    {
        let total: u64 = wh.iter().sum();
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
    let derive_identity = match &m.identity {
        Some(i) => identity_mode(src, i)?,
        None => true,
    };

    let profile = Profile {
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
        crc_padded: m.crc_padded.as_ref().is_none_or(|c| *c.get_ref()),
        end_marker: m.end_marker.as_ref().is_none_or(|e| *e.get_ref()),
        obis_f,
        trailer,
        derive_identity,
        failure_log,
        mbus,
        objects,
        encryption,
        household,
        start,
        sources,
    };
    consistent(&profile).map_err(|(key, message)| {
        let span = match key {
            "end_marker" => m.end_marker.as_ref().map(Spanned::span),
            _ => m.crc_padded.as_ref().map(Spanned::span),
        };
        src.error(span.unwrap_or(m.spec.span()), Some(key), message)
    })?;
    Ok(profile)
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
    let pair = |v: &Option<Spanned<Vec<f64>>>, key: &str| -> Result<Option<[u64; 4]>, ProfileError> {
        let Some(v) = v else { return Ok(None) };
        let values = v.get_ref();
        if values.is_empty() || values.len() > 4 {
            return Err(src.error(
                v.span(),
                Some(key),
                "expected [tariff 1, tariff 2, ...] (1 to 4 values), or one total",
            ));
        }
        let mut wh = [0; 4];
        for (w, kwh) in wh.iter_mut().zip(values) {
            *w = milli(src, v.span(), key, *kwh)?;
        }
        Ok(Some(wh))
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
    if let Some(t) = &s.tariff
        && !(1..=4).contains(t.get_ref())
    {
        return Err(src.error(t.span(), Some("tariff"), "the tariff register is 1 to 4"));
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
        q_import_tariff_varh: pair(&s.reactive_import_tariff_kvarh, "reactive_import_tariff_kvarh")?,
        q_export_tariff_varh: pair(&s.reactive_export_tariff_kvarh, "reactive_export_tariff_kvarh")?,
        q_quadrant_varh: pair(&s.quadrant_kvarh, "quadrant_kvarh")?,
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

/// One telegram line; also the `*F` group its code carries.
fn build_object(
    src: &Source<'_>,
    o: &Spanned<ObjectSection>,
    phases: u8,
    mbus: &[MBusDevice],
) -> Result<(Object, Option<u8>), ProfileError> {
    let obj = o.get_ref();
    let (obis, f) = Obis::parse_with_f(obj.obis.get_ref().as_bytes()).ok_or_else(|| {
        src.error(
            obj.obis.span(),
            Some("obis"),
            format!("{:?} is not an OBIS code of the form A-B:C.D.E (or A-B:C.D.E*F)", obj.obis.get_ref()),
        )
    })?;
    let form = obj.form.as_ref().map(|f| (f.get_ref().as_str(), f.span()));
    let kind = build_kind(src, o, obis, form, phases, mbus)?;
    Ok((Object { obis, kind }, f))
}

fn build_kind(
    src: &Source<'_>,
    o: &Spanned<ObjectSection>,
    obis: Obis,
    form: Option<(&str, Range<usize>)>,
    phases: u8,
    mbus: &[MBusDevice],
) -> Result<Kind, ProfileError> {
    let obj = o.get_ref();
    let form_fits = |wanted: &str| form.as_ref().is_none_or(|(f, _)| *f == wanted);
    if let Some((f, span)) = &form {
        let fits = match quantity_of(obis) {
            Some(Quantity::DemandMax) => *f == "value-first",
            Some(Quantity::DemandHistory) => *f == "billing",
            _ => false,
        };
        let literal = obj.text.is_some() || obj.hex.is_some() || obj.raw.is_some();
        if !fits || literal {
            return Err(src.error(
                span.clone(),
                Some("form"),
                format!("{obis} has no form {f:?}: value-first fits 1-0:1.6.0, billing fits 0-0:98.1.0"),
            ));
        }
    }
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
        return Ok(kind);
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
        Quantity::DemandMax => Kind::DemandMax { num: num()?, value_first: !form_fits("") },
        Quantity::DemandHistory if !form_fits("") => Kind::Billing { num: num()? },
        Quantity::DemandHistory => Kind::DemandHistory { num: num()? },
        Quantity::PowerFactor(p) => {
            reject_extra(&[("unit", &obj.unit)])?;
            Kind::PowerFactor {
                phase: p.map(check_phase).transpose()?,
                format: format(true)?.unwrap_or(NumFormat::new(1, 3)),
            }
        }
        Quantity::Frequency => Kind::Frequency { num: num()? },
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
    Ok(kind)
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
    fn no_end_marker_needs_a_meter_without_crc() {
        let e = err(&MINIMAL.replace("phases = 1", "phases = 1\nend_marker = false"));
        assert_eq!((e.key.as_deref(), e.line), (Some("end_marker"), 8));
        assert!(e.message.contains("crc = false"), "{e}");
        let p = parse("t", "t.toml", &MINIMAL.replace("phases = 1", "phases = 1\nend_marker = false\ncrc = false"))
            .unwrap();
        assert!(!p.end_marker && !p.crc);
    }

    #[test]
    fn forms_fit_their_objects_only() {
        let e = err(&MINIMAL.replace(r#"{ obis = "0-0:1.0.0" }"#, r#"{ obis = "0-0:1.0.0", form = "billing" }"#));
        assert_eq!(e.key.as_deref(), Some("form"));
        assert!(e.message.contains("billing fits 0-0:98.1.0"), "{e}");
        let ok = MINIMAL.replace("country = \"NL\"", "country = \"BE\"").replace(
            r#"{ obis = "0-0:1.0.0" }"#,
            r#"{ obis = "1-0:1.6.0", format = "2.3", unit = "kW", form = "value-first" }"#,
        );
        let p = parse("t", "t.toml", &ok).unwrap();
        assert!(matches!(p.objects[1].kind, Kind::DemandMax { value_first: true, .. }));
    }

    #[test]
    fn the_f_group_is_every_codes_or_none() {
        let star = MINIMAL.replace("\"1-3:0.2.8\"", "\"1-3:0.2.8*255\"").replace("\"0-0:1.0.0\"", "\"0-0:1.0.0*255\"");
        let e = err(&star);
        assert_eq!((e.key.as_deref(), e.line), (Some("obis"), 13), "{e}");
        let all = star.replace("\"1-0:1.8.1\"", "\"1-0:1.8.1*255\"");
        assert_eq!(parse("t", "t.toml", &all).unwrap().obis_f, Some(255));
    }

    #[test]
    fn keys_and_encryption_are_checked() {
        let smarty =
            MINIMAL.replace("DSMR 5.0", "Smarty") + "\n[encryption]\nsystem_title = \"SAG10307\"\nauth_key = \"00\"\n";
        let e = err(&smarty);
        assert_eq!(e.key.as_deref(), Some("auth_key"));
        let e = err(&(MINIMAL.to_string() + "\n[encryption]\nsystem_title = \"SAG10307\"\n"));
        assert!(e.message.contains("only Smarty and Steiermark"), "{e}");
        let plain = parse("t", "t.toml", &MINIMAL.replace("DSMR 5.0", "Smarty")).unwrap();
        assert!(!plain.is_encrypted(), "a Smarty profile without [encryption] is plaintext");
    }

    #[test]
    fn a_variant_changes_its_base_and_is_checked_like_it() {
        let dir = std::env::temp_dir().join(format!("p1sim-variant-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("base.toml"), MINIMAL.replace("phases = 1", "phases = 1\ncrc = false")).unwrap();
        let variant =
            |extra: &str| format!("[meter]\nextends = \"base.toml\"\ndescription = \"v\"\nsources = [\"x\"]\n{extra}");
        let file = dir.join("v.toml").display().to_string();
        let p = parse("v", &file, &variant("end_marker = false\nheader = 'ABC5\\X'")).unwrap();
        assert_eq!((p.name.as_str(), p.header.as_str(), p.end_marker), ("v", "ABC5\\X", false));
        assert_eq!(p.sources.first().map(String::as_str), Some("x"));
        let e = parse("v", &file, &variant("crc_padded = false")).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("crc_padded"), 5), "{e}");
        let e = parse("v", &file, &variant("plaintext = true")).unwrap_err();
        assert!(e.message.contains("sends no encrypted frames"), "{e}");
        let e = parse("v", &file, &variant("colour = 1")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("colour"));
        let e = parse("v", &file, &variant("").replace("base.toml", "none.toml")).unwrap_err();
        assert!(e.message.contains("no shipped profile named \"none.toml\""), "{e}");
        std::fs::write(dir.join("loop.toml"), variant("").replace("base.toml", "loop.toml")).unwrap();
        let e = load_file(&dir.join("loop.toml")).unwrap_err();
        assert!(e.message.contains("more than 4 deep"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn syntax_errors_come_with_positions() {
        let e = err(&MINIMAL.replace("country = \"NL\"", "country = \"NL"));
        assert_eq!(e.line, 4);
    }

    #[test]
    fn a_start_state_loads_in_base_units() {
        let text = MINIMAL.to_string()
            + "\n[start]\nimport_kwh = [671.578, 842.472]\ntariff = 2\nfailure_log = [{ end = \"190326095015W\", seconds = 2014 }]\n";
        let p = parse("t", "t.toml", &text).unwrap();
        let s = p.start.unwrap();
        assert_eq!(s.import_wh, Some([671_578, 842_472, 0, 0]));
        assert_eq!(s.tariff, Some(2));
        assert_eq!(s.failure_log.unwrap()[0].duration_s, 2014);
        let e = err(&(MINIMAL.to_string() + "\n[start]\ntariff = 9\n"));
        assert_eq!((e.key.as_deref(), e.line), (Some("tariff"), 17));
        let e = err(&(MINIMAL.to_string() + "\n[start]\nmbus = [{ channel = 1, reading = 1.0, captured = \"x\" }]\n"));
        assert!(e.message.contains("no [[mbus]] table"), "{e}");
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
