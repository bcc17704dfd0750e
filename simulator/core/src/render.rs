//! Profile + readings -> telegram bytes, exactly as the meter puts them on the wire.
//!
//! A profile is compiled once into a [`Template`]: the telegram's bytes with every fixed-width
//! value as a run of zeros, and the patches that write the digits in place. Rendering is a copy
//! and a few digit writes per value, which is what lets the generator produce over a million
//! telegrams a second. [`write_value_part`] formats an object in full; it serves the objects of
//! varying length and the owned model of [`build_telegram`].

use alloc::string::String;
use alloc::vec::Vec;

use crate::crc::{crc_hex, crc16};
use crate::format::{LocalTime, NumFormat, Out, Rounding, rescale, write_fixed, write_hex, write_uint};
use crate::obis::Obis;
use crate::profile::{Direction, EmptyLog, Energy, Kind, LogOrder, Num, PowerQuantity, Profile, Register, Trailer};
use crate::readings::{Billing, Readings};
use crate::telegram::{Checksum, Line, Telegram, unpadded};

/// The timestamp a meter writes where it has no data (Fluvius, Smarty;
/// docs/quirks.md#placeholder-timestamps).
pub const NO_DATA_TST: &[u8] = b"632525252525W";

/// A profile compiled for fast rendering: the telegram as a byte skeleton in which every
/// fixed-width value is a run of `0`s, plus a list of patches that write the digits in place.
///
/// Nearly every P1 value has a fixed width (`F9(3,3)`, a 13-character TST), so rendering is one
/// copy of the skeleton per run of objects and a few digit writes per value; only objects of
/// varying length (the failure log, the peak history, text messages) are formatted in full.
#[derive(Debug, Clone)]
pub struct Template {
    skeleton: Vec<u8>,
    chunks: Vec<Chunk>,
    patches: Vec<Patch>,
    /// `Some(padded)` when a CRC follows the `!`.
    crc: Option<bool>,
    end_marker: bool,
    trailer: Option<Trailer>,
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    /// Skeleton bytes `bytes`, then the patches `patches` applied relative to their start.
    Fixed { bytes: (u32, u32), patches: (u32, u32) },
    /// An object of varying length, formatted in full.
    Dynamic { object: u32 },
}

/// Digits to write at `offset` of a chunk.
#[derive(Debug, Clone, Copy)]
struct Patch {
    offset: u32,
    field: Field,
}

#[derive(Debug, Clone, Copy)]
enum Field {
    /// A fixed-point number: `width` characters, the point (if any) at `point`.
    Number { source: Source, scale: u8, fmt: NumFormat, rounding: Rounding },
    /// `YYMMDDhhmmssX`, or without the flag (`YYMMDDhhmmss`).
    Time { source: TimeSource, flag: bool },
}

/// Where a number comes from in the readings.
#[derive(Debug, Clone, Copy)]
enum Source {
    Register(Register),
    Power(PowerQuantity),
    Voltage(u8),
    Current(u8),
    Tariff,
    Failures { long: bool },
    Sags(u8),
    Swells(u8),
    Demand,
    DemandMax,
    MBus(u8),
    PowerFactor(Option<u8>),
    Frequency,
}

#[derive(Debug, Clone, Copy)]
enum TimeSource {
    Clock,
    MBusCapture(u8),
    /// The month's peak; the "no data" placeholder when there is none yet.
    DemandMax,
}

impl Template {
    pub fn compile(profile: &Profile) -> Template {
        let mut c = Compiler {
            t: Template {
                skeleton: Vec::new(),
                chunks: Vec::new(),
                patches: Vec::new(),
                crc: (profile.crc && profile.end_marker).then_some(profile.crc_padded),
                end_marker: profile.end_marker,
                trailer: profile.trailer,
            },
            chunk_start: 0,
            patch_start: 0,
        };
        c.t.skeleton.put_byte(b'/');
        c.t.skeleton.put(profile.header.as_bytes());
        c.t.skeleton.put(b"\r\n");
        if profile.blank_line {
            c.t.skeleton.put(b"\r\n");
        }
        for (i, obj) in profile.objects.iter().enumerate() {
            write_obis(&mut c.t.skeleton, obj.obis, profile.obis_f);
            c.object(profile, i, &obj.kind);
            c.t.skeleton.put(b"\r\n");
        }
        if profile.end_marker {
            c.t.skeleton.put_byte(b'!');
        }
        c.close_chunk();
        c.t
    }

    /// Appends the plaintext telegram to `out`, `/` through the final CRLF and any trailer.
    pub fn render(&self, profile: &Profile, r: &Readings, out: &mut Vec<u8>) {
        let start = out.len();
        for chunk in &self.chunks {
            match *chunk {
                Chunk::Fixed { bytes: (b0, b1), patches: (p0, p1) } => {
                    let base = out.len();
                    out.extend_from_slice(&self.skeleton[b0 as usize..b1 as usize]);
                    let dst = &mut out[base..];
                    for p in &self.patches[p0 as usize..p1 as usize] {
                        p.apply(dst, r);
                    }
                }
                Chunk::Dynamic { object } => write_value_part(profile, &profile.objects[object as usize].kind, r, out),
            }
        }
        if let Some(padded) = self.crc {
            let crc = crc_hex(crc16(&out[start..]));
            out.put(if padded { &crc } else { unpadded(&crc) });
        }
        if self.end_marker {
            out.put(b"\r\n");
        }
        if let Some(t) = &self.trailer {
            write_trailer(t, r, out);
        }
    }
}

/// A gateway's lines after the telegram: the counter, right-aligned, then the 0xFF run.
fn write_trailer(t: &Trailer, r: &Readings, out: &mut impl Out) {
    if t.counter_width > 0 {
        let day = crate::clock::days_from_civil(i32::from(r.time.year), r.time.month, r.time.day)
            - crate::clock::days_from_civil(i32::from(r.time.year), 1, 1);
        let seconds = day as u64 * 86_400
            + u64::from(r.time.hour) * 3600
            + u64::from(r.time.minute) * 60
            + u64::from(r.time.second);
        let mut digits = Vec::new();
        write_uint(&mut digits, seconds);
        for _ in digits.len()..usize::from(t.counter_width) {
            out.put_byte(b' ');
        }
        out.put(&digits);
        out.put(b"\r\n");
    }
    if t.ff_padding > 0 {
        for _ in 0..t.ff_padding {
            out.put_byte(0xFF);
        }
        out.put(b"\r\n");
    }
}

/// Builds a [`Template`]: skeleton bytes accumulate into the current chunk until an object of
/// varying length closes it.
struct Compiler {
    t: Template,
    chunk_start: usize,
    patch_start: usize,
}

impl Compiler {
    fn close_chunk(&mut self) {
        let end = self.t.skeleton.len();
        if end > self.chunk_start {
            self.t.chunks.push(Chunk::Fixed {
                bytes: (self.chunk_start as u32, end as u32),
                patches: (self.patch_start as u32, self.t.patches.len() as u32),
            });
        }
        self.chunk_start = end;
        self.patch_start = self.t.patches.len();
    }

    /// A field of `width` placeholder characters (`0`s, with the point in place) and its patch.
    fn field(&mut self, field: Field) {
        let offset = (self.t.skeleton.len() - self.chunk_start) as u32;
        match field {
            Field::Number { fmt, .. } => {
                self.t.skeleton.extend(core::iter::repeat_n(b'0', fmt.int as usize));
                if fmt.dec > 0 {
                    self.t.skeleton.push(b'.');
                    self.t.skeleton.extend(core::iter::repeat_n(b'0', fmt.dec as usize));
                }
            }
            Field::Time { flag, .. } => {
                self.t.skeleton.extend(core::iter::repeat_n(b'0', 12));
                if flag {
                    self.t.skeleton.push(b'W');
                }
            }
        }
        self.t.patches.push(Patch { offset, field });
    }

    fn number(&mut self, source: Source, scale: u8, num: &Num, rounding: Rounding) {
        self.t.skeleton.push(b'(');
        self.field(Field::Number { source, scale, fmt: num.format, rounding });
        if let Some(u) = &num.unit {
            self.t.skeleton.push(b'*');
            self.t.skeleton.extend_from_slice(u.as_bytes());
        }
        self.t.skeleton.push(b')');
    }

    fn integer(&mut self, source: Source, format: NumFormat) {
        self.number(source, 0, &Num { format, unit: None }, Rounding::Truncate);
    }

    fn time(&mut self, source: TimeSource, flag: bool) {
        self.t.skeleton.push(b'(');
        self.field(Field::Time { source, flag });
        self.t.skeleton.push(b')');
    }

    fn object(&mut self, profile: &Profile, index: usize, kind: &Kind) {
        match kind {
            Kind::Text(_) | Kind::Hex(_) | Kind::Raw(_) | Kind::MBusId { .. } | Kind::MBusType { .. } => {
                write_value_part(profile, kind, &Readings::default(), &mut self.t.skeleton);
            }
            Kind::MBusReading { channel, .. }
                if profile.mbus_device(*channel).is_some_and(|d| d.placeholder.is_some()) =>
            {
                write_value_part(profile, kind, &Readings::default(), &mut self.t.skeleton);
            }
            Kind::Clock => self.time(TimeSource::Clock, true),
            Kind::Energy { register, num } => {
                self.number(Source::Register(*register), electrical_scale(num), num, Rounding::Truncate)
            }
            Kind::Tariff { format } => self.integer(Source::Tariff, *format),
            Kind::Power { quantity, num } => {
                self.number(Source::Power(*quantity), electrical_scale(num), num, Rounding::Nearest)
            }
            Kind::Voltage { phase, num } => self.number(Source::Voltage(*phase), 1, num, Rounding::Nearest),
            Kind::Current { phase, num } => self.number(Source::Current(*phase), 3, num, Rounding::Nearest),
            Kind::Failures { long, format } => self.integer(Source::Failures { long: *long }, *format),
            Kind::Sags { phase, format } => self.integer(Source::Sags(*phase), *format),
            Kind::Swells { phase, format } => self.integer(Source::Swells(*phase), *format),
            Kind::Demand { num } => self.number(Source::Demand, 3, num, Rounding::Nearest),
            Kind::DemandMax { num, value_first: false } => {
                self.time(TimeSource::DemandMax, true);
                self.number(Source::DemandMax, 3, num, Rounding::Nearest);
            }
            Kind::DemandMax { num, value_first: true } => {
                self.number(Source::DemandMax, 3, num, Rounding::Nearest);
                self.time(TimeSource::DemandMax, false);
            }
            Kind::PowerFactor { phase, format } => {
                self.number(Source::PowerFactor(*phase), 3, &Num { format: *format, unit: None }, Rounding::Nearest)
            }
            Kind::Frequency { num } => self.number(Source::Frequency, 3, num, Rounding::Nearest),
            Kind::MBusReading { channel, num } => {
                self.time(TimeSource::MBusCapture(*channel), true);
                self.number(Source::MBus(*channel), 3, num, Rounding::Truncate);
            }
            Kind::MBusLegacy { channel, num, status, period, capture } => {
                self.time(TimeSource::MBusCapture(*channel), false);
                write_legacy_header(&mut self.t.skeleton, status, period, *capture, num);
                self.number(Source::MBus(*channel), 3, &Num { format: num.format, unit: None }, Rounding::Truncate);
            }
            Kind::FailureLog { .. }
            | Kind::DemandHistory { .. }
            | Kind::Billing { .. }
            | Kind::TextMessage
            | Kind::TextCode => {
                self.close_chunk();
                self.t.chunks.push(Chunk::Dynamic { object: index as u32 });
            }
        }
    }
}

impl Patch {
    #[inline]
    fn apply(&self, chunk: &mut [u8], r: &Readings) {
        let at = self.offset as usize;
        match self.field {
            Field::Number { source, scale, fmt, rounding } => {
                let width = fmt.width();
                patch_digits(&mut chunk[at..at + width], source.value(r), scale, fmt, rounding);
            }
            Field::Time { source, flag } => {
                let dst = &mut chunk[at..at + 12 + usize::from(flag)];
                match source.time(r) {
                    Some(t) => patch_time(dst, &t),
                    // 13 characters like any timestamp: the field width never changes.
                    None => dst.copy_from_slice(&NO_DATA_TST[..dst.len()]),
                }
            }
        }
    }
}

impl Source {
    #[inline]
    fn value(self, r: &Readings) -> u64 {
        match self {
            Source::Register(reg) => r.registers.get(reg),
            Source::Power(q) => r.power(q),
            Source::Voltage(p) => u64::from(r.phases[p as usize - 1].voltage_dv),
            Source::Current(p) => u64::from(r.phases[p as usize - 1].current_ma),
            Source::Tariff => u64::from(r.tariff),
            Source::Failures { long } => u64::from(if long { r.long_power_failures } else { r.power_failures }),
            Source::Sags(p) => u64::from(r.sags[p as usize - 1]),
            Source::Swells(p) => u64::from(r.swells[p as usize - 1]),
            Source::Demand => u64::from(r.demand.current_avg_w),
            Source::DemandMax => r.demand.month_max.map_or(0, |(_, w)| u64::from(w)),
            Source::MBus(ch) => r.mbus_value(ch).map_or(0, |v| v.milli),
            Source::PowerFactor(phase) => r.power_factor_milli(phase),
            Source::Frequency => u64::from(r.frequency_mhz),
        }
    }
}

impl TimeSource {
    #[inline]
    fn time(self, r: &Readings) -> Option<LocalTime> {
        match self {
            TimeSource::Clock => Some(r.time),
            TimeSource::MBusCapture(ch) => Some(r.mbus_value(ch).map_or(r.time, |v| v.captured)),
            TimeSource::DemandMax => r.demand.month_max.map(|(t, _)| t),
        }
    }
}

/// Writes the significant digits of a fixed-point value over the skeleton's zeros, right to
/// left, stepping over the point. The skeleton already holds the leading zeros and the point.
#[inline]
fn patch_digits(dst: &mut [u8], value: u64, scale: u8, fmt: NumFormat, rounding: Rounding) {
    let digits = u32::from(fmt.int + fmt.dec).min(19);
    let mut v = rescale(value, scale, fmt.dec, rounding);
    let limit = 10u64.pow(digits);
    if v >= limit {
        // Registers roll over; the division only happens when a value actually overflows.
        v %= limit;
    }
    let point = (fmt.dec > 0).then_some(fmt.int as usize);
    let mut i = dst.len();
    while v > 0 && i > 0 {
        i -= 1;
        if Some(i) == point {
            continue;
        }
        dst[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Writes `YYMMDDhhmmss` and, when there is room, the S/W flag.
#[inline]
fn patch_time(dst: &mut [u8], t: &LocalTime) {
    let fields = [(t.year % 100) as u8, t.month, t.day, t.hour, t.minute, t.second];
    for (k, f) in fields.iter().enumerate() {
        dst[2 * k] = b'0' + f / 10 % 10;
        dst[2 * k + 1] = b'0' + f % 10;
    }
    if let Some(flag) = dst.get_mut(12) {
        *flag = if t.dst { b'S' } else { b'W' };
    }
}

/// Builds the owned model of the telegram the template renders, object by object. Rendering it
/// gives the same bytes as [`Template::render`].
pub fn build_telegram(profile: &Profile, r: &Readings) -> Telegram {
    let mut scratch = Vec::new();
    let lines = profile
        .objects
        .iter()
        .map(|obj| {
            scratch.clear();
            write_value_part(profile, &obj.kind, r, &mut scratch);
            let text = String::from_utf8_lossy(&scratch);
            let mut obis = Vec::new();
            write_obis(&mut obis, obj.obis, profile.obis_f);
            Line::from_rendered(String::from_utf8_lossy(&obis).into_owned(), &text)
        })
        .collect();
    let mut trailer = Vec::new();
    if let Some(t) = &profile.trailer {
        write_trailer(t, r, &mut trailer);
    }
    let checksum = match (profile.crc && profile.end_marker, profile.crc_padded) {
        (false, _) => Checksum::None,
        (true, true) => Checksum::Computed,
        (true, false) => Checksum::ComputedUnpadded,
    };
    Telegram {
        header: profile.header.clone(),
        blank_line: profile.blank_line,
        lines,
        checksum,
        end_marker: profile.end_marker,
        trailer,
    }
}

/// An OBIS code as the meter writes it, with the `*F` group where the profile carries one.
fn write_obis(out: &mut impl Out, obis: Obis, f: Option<u8>) {
    let mut buf = [0u8; 19];
    let n = obis.write_to(&mut buf);
    out.put(&buf[..n]);
    if let Some(f) = f {
        out.put_byte(b'*');
        write_uint(out, u64::from(f));
    }
}

/// Electrical quantities are kept in W, Wh, var, varh; a `k` unit shows them with 3 decimals.
fn electrical_scale(num: &Num) -> u8 {
    match num.unit.as_deref().and_then(|u| u.as_bytes().first()) {
        Some(b'k' | b'K') => 3,
        _ => 0,
    }
}

#[inline]
fn bracket_num(out: &mut impl Out, value: u64, scale: u8, num: &Num, rounding: Rounding) {
    out.put_byte(b'(');
    write_fixed(out, value, scale, num.format, rounding);
    if let Some(u) = &num.unit {
        out.put_byte(b'*');
        out.put(u.as_bytes());
    }
    out.put_byte(b')');
}

#[inline]
fn bracket_tst(out: &mut impl Out, t: &LocalTime) {
    out.put_byte(b'(');
    t.write_tst(out);
    out.put_byte(b')');
}

fn bracket_hex(out: &mut impl Out, text: &str) {
    out.put_byte(b'(');
    write_hex(out, text.as_bytes());
    out.put_byte(b')');
}

/// Writes everything after the OBIS code of one object: its bracketed values.
pub fn write_value_part(profile: &Profile, kind: &Kind, r: &Readings, out: &mut impl Out) {
    match kind {
        Kind::Text(s) => {
            out.put_byte(b'(');
            out.put(s.as_bytes());
            out.put_byte(b')');
        }
        Kind::Hex(s) => bracket_hex(out, s),
        Kind::Raw(s) => out.put(s.as_bytes()),
        Kind::Clock => bracket_tst(out, &r.time),
        Kind::Energy { register, num } => {
            bracket_num(out, r.registers.get(*register), electrical_scale(num), num, Rounding::Truncate)
        }
        Kind::Tariff { format } => {
            out.put_byte(b'(');
            write_fixed(out, u64::from(r.tariff), 0, *format, Rounding::Truncate);
            out.put_byte(b')');
        }
        Kind::Power { quantity, num } => {
            bracket_num(out, r.power(*quantity), electrical_scale(num), num, Rounding::Nearest)
        }
        Kind::Voltage { phase, num } => {
            bracket_num(out, u64::from(r.phases[*phase as usize - 1].voltage_dv), 1, num, Rounding::Nearest)
        }
        Kind::Current { phase, num } => {
            bracket_num(out, u64::from(r.phases[*phase as usize - 1].current_ma), 3, num, Rounding::Nearest)
        }
        Kind::Failures { long, format } => {
            let n = if *long { r.long_power_failures } else { r.power_failures };
            out.put_byte(b'(');
            write_fixed(out, u64::from(n), 0, *format, Rounding::Truncate);
            out.put_byte(b')');
        }
        Kind::FailureLog { num } => write_failure_log(profile, r, num, out),
        Kind::Sags { phase, format } | Kind::Swells { phase, format } => {
            let counts = if matches!(kind, Kind::Sags { .. }) { &r.sags } else { &r.swells };
            out.put_byte(b'(');
            write_fixed(out, u64::from(counts[*phase as usize - 1]), 0, *format, Rounding::Truncate);
            out.put_byte(b')');
        }
        Kind::TextMessage => bracket_hex(out, &r.text_message),
        Kind::TextCode => bracket_hex(out, &r.text_code),
        Kind::Demand { num } => bracket_num(out, u64::from(r.demand.current_avg_w), 3, num, Rounding::Nearest),
        Kind::DemandMax { num, value_first } => {
            let (time, w) = match &r.demand.month_max {
                Some((t, w)) => (Some(t), u64::from(*w)),
                None => (None, 0),
            };
            if *value_first {
                bracket_num(out, w, 3, num, Rounding::Nearest);
            }
            out.put_byte(b'(');
            match time {
                Some(t) if *value_first => t.write_tst12(out),
                Some(t) => t.write_tst(out),
                None => out.put(&NO_DATA_TST[..if *value_first { 12 } else { 13 }]),
            }
            out.put_byte(b')');
            if !*value_first {
                bracket_num(out, w, 3, num, Rounding::Nearest);
            }
        }
        Kind::Billing { num } => write_billing(r.billing.as_ref(), num, out),
        Kind::PowerFactor { phase, format } => {
            bracket_num(out, r.power_factor_milli(*phase), 3, &Num { format: *format, unit: None }, Rounding::Nearest)
        }
        Kind::Frequency { num } => bracket_num(out, u64::from(r.frequency_mhz), 3, num, Rounding::Nearest),
        Kind::DemandHistory { num } => {
            out.put_byte(b'(');
            write_uint(out, r.demand.history.len() as u64);
            out.put(b")(1-0:1.6.0)(1-0:1.6.0)");
            for m in &r.demand.history {
                bracket_tst(out, &m.period_end);
                match &m.peak_time {
                    Some(t) => bracket_tst(out, t),
                    None => {
                        out.put_byte(b'(');
                        out.put(NO_DATA_TST);
                        out.put_byte(b')');
                    }
                }
                bracket_num(out, u64::from(m.peak_w), 3, num, Rounding::Nearest);
            }
        }
        Kind::MBusType { channel, format } => {
            let code = profile.mbus_device(*channel).map_or(0, |d| d.device_type);
            out.put_byte(b'(');
            write_fixed(out, u64::from(code), 0, *format, Rounding::Truncate);
            out.put_byte(b')');
        }
        Kind::MBusId { channel } => match profile.mbus_device(*channel) {
            Some(d) if d.raw_id => {
                out.put_byte(b'(');
                out.put(d.id.as_bytes());
                out.put_byte(b')');
            }
            d => bracket_hex(out, d.map_or("", |d| d.id.as_str())),
        },
        Kind::MBusReading { channel, num } => {
            let device = profile.mbus_device(*channel);
            if let Some((t, v)) = device.and_then(|d| d.placeholder.as_ref()) {
                out.put_byte(b'(');
                out.put(t.as_bytes());
                out.put(b")(");
                out.put(v.as_bytes());
                out.put_byte(b')');
            } else {
                let value = r.mbus_value(*channel);
                bracket_tst(out, &value.map_or(r.time, |v| v.captured));
                bracket_num(out, value.map_or(0, |v| v.milli), 3, num, Rounding::Truncate);
            }
        }
        Kind::MBusLegacy { channel, num, status, period, capture } => {
            let value = r.mbus_value(*channel);
            out.put_byte(b'(');
            value.map_or(r.time, |v| v.captured).write_tst12(out);
            out.put_byte(b')');
            write_legacy_header(out, status, period, *capture, num);
            out.put_byte(b'(');
            write_fixed(out, value.map_or(0, |v| v.milli), 3, num.format, Rounding::Truncate);
            out.put_byte(b')');
        }
    }
}

/// The middle of a DSMR 2.2/3 gas record, after its capture time: `(status)(period)(1)(capture
/// OBIS)(unit)` and the line break before the value's own line.
fn write_legacy_header(out: &mut impl Out, status: &str, period: &str, capture: Obis, num: &Num) {
    out.put_byte(b'(');
    out.put(status.as_bytes());
    out.put(b")(");
    out.put(period.as_bytes());
    out.put(b")(1)(");
    write_obis(out, capture, None);
    out.put(b")(");
    out.put(num.unit.as_deref().unwrap_or("").as_bytes());
    out.put(b")\r\n");
}

/// E.ON Hungary's month-end record: `(TST)`, thirteen registers, six peaks; a meter without a
/// completed month yet sends the "no data" timestamp and zeros.
fn write_billing(b: Option<&Billing>, num: &Num, out: &mut impl Out) {
    let none = Billing::default();
    let b = b.unwrap_or(&none);
    out.put_byte(b'(');
    match b.period_end.year {
        0 => out.put(NO_DATA_TST),
        _ => b.period_end.write_tst(out),
    }
    out.put_byte(b')');
    let active = |direction, tariff| Register { direction, energy: Energy::Active, tariff };
    let reactive_unit = num.unit.as_deref().map(|u| u.replace("Wh", "varh"));
    let reactive = Num { format: num.format, unit: reactive_unit };
    let scale = electrical_scale(num);
    for reg in [
        active(Direction::Import, None),
        active(Direction::Import, Some(1)),
        active(Direction::Import, Some(2)),
        active(Direction::Export, None),
        active(Direction::Export, Some(1)),
        active(Direction::Export, Some(2)),
    ] {
        bracket_num(out, b.registers.get(reg), scale, num, Rounding::Truncate);
    }
    let register = |direction, energy| Register { direction, energy, tariff: None };
    for reg in [
        register(Direction::Import, Energy::Reactive),
        register(Direction::Export, Energy::Reactive),
        register(Direction::Import, Energy::Quadrant(1)),
        register(Direction::Import, Energy::Quadrant(2)),
        register(Direction::Import, Energy::Quadrant(3)),
        register(Direction::Import, Energy::Quadrant(4)),
    ] {
        bracket_num(out, b.registers.get(reg), scale, &reactive, Rounding::Truncate);
    }
    bracket_num(out, b.registers.get(register(Direction::Import, Energy::Combined)), scale, num, Rounding::Truncate);
    let peak = Num { format: NumFormat::new(2, 3), unit: num.unit.as_deref().map(|u| u.trim_end_matches('h').into()) };
    for w in b.peaks_w {
        bracket_num(out, u64::from(w), 3, &peak, Rounding::Nearest);
    }
}

/// `(count)(0-0:96.7.19)(end)(duration*s)...` in the vendor's order, with Kaifa's dummy entry.
fn write_failure_log(profile: &Profile, r: &Readings, num: &Num, out: &mut impl Out) {
    let style = &profile.failure_log;
    let room = usize::from(style.max_entries).saturating_sub(usize::from(style.dummy.is_some()));
    let real = &r.failure_log[..r.failure_log.len().min(room)];
    let count = real.len() + usize::from(style.dummy.is_some());
    if count == 0 && style.empty == EmptyLog::EmptyBrackets {
        out.put(b"()");
        return;
    }
    out.put_byte(b'(');
    write_uint(out, count as u64);
    out.put(b")(0-0:96.7.19)");
    let entry = |out: &mut _, e: &crate::readings::PowerFailure| {
        bracket_tst(out, &e.end);
        bracket_num(out, u64::from(e.duration_s), 0, num, Rounding::Truncate);
    };
    match style.order {
        LogOrder::NewestFirst => real.iter().for_each(|e| entry(out, e)),
        LogOrder::OldestFirst => real.iter().rev().for_each(|e| entry(out, e)),
    }
    if let Some(dummy) = &style.dummy {
        out.put_byte(b'(');
        out.put(dummy.as_bytes());
        out.put_byte(b')');
        // 2^31 - 1 seconds: the maximum of the duration's signed 32-bit register.
        bracket_num(out, 2_147_483_647, 0, num, Rounding::Truncate);
    }
}
