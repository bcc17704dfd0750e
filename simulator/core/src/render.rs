//! Profile + readings -> telegram bytes, exactly as the meter puts them on the wire.
//!
//! A profile is compiled once into a [`Template`]: runs of fixed bytes (OBIS codes, literal
//! values, CRLFs) interleaved with holes that format one object's values from the readings.
//! Rendering is then a handful of memcpys and digit loops, which is what lets the generator
//! produce over a million telegrams a second.

use alloc::string::String;
use alloc::vec::Vec;

use crate::crc::{crc_hex, crc16};
use crate::format::{LocalTime, Out, Rounding, write_fixed, write_hex, write_uint};
use crate::obis::Obis;
use crate::profile::{EmptyLog, Kind, LogOrder, Num, Profile};
use crate::readings::Readings;
use crate::telegram::{Checksum, Line, Telegram};

/// The timestamp a meter writes where it has no data (Fluvius, Smarty; dsmr-facts.md A4).
pub const NO_DATA_TST: &[u8] = b"632525252525W";

/// A profile compiled for fast rendering.
#[derive(Debug, Clone)]
pub struct Template {
    fixed: Vec<u8>,
    segments: Vec<Segment>,
    crc: bool,
}

#[derive(Debug, Clone, Copy)]
enum Segment {
    Fixed { start: u32, end: u32 },
    Hole { object: u32 },
}

impl Template {
    pub fn compile(profile: &Profile) -> Template {
        let mut t = Template { fixed: Vec::new(), segments: Vec::new(), crc: profile.crc };
        let mut pending = Vec::new();
        pending.put_byte(b'/');
        pending.put(profile.header.as_bytes());
        pending.put(b"\r\n");
        if profile.blank_line {
            pending.put(b"\r\n");
        }
        for (i, obj) in profile.objects.iter().enumerate() {
            write_obis(&mut pending, obj.obis);
            match &obj.kind {
                Kind::Text(_) | Kind::Hex(_) | Kind::Raw(_) => {
                    write_value_part(profile, &obj.kind, &Readings::default(), &mut pending);
                }
                _ => {
                    t.flush(&mut pending);
                    t.segments.push(Segment::Hole { object: i as u32 });
                }
            }
            pending.put(b"\r\n");
        }
        pending.put_byte(b'!');
        t.flush(&mut pending);
        t
    }

    fn flush(&mut self, pending: &mut Vec<u8>) {
        if pending.is_empty() {
            return;
        }
        let start = self.fixed.len() as u32;
        self.fixed.extend_from_slice(pending);
        self.segments.push(Segment::Fixed { start, end: self.fixed.len() as u32 });
        pending.clear();
    }

    /// Appends the plaintext telegram to `out`, `/` through the final CRLF.
    pub fn render(&self, profile: &Profile, r: &Readings, out: &mut Vec<u8>) {
        let start = out.len();
        for seg in &self.segments {
            match *seg {
                Segment::Fixed { start, end } => out.put(&self.fixed[start as usize..end as usize]),
                Segment::Hole { object } => write_value_part(profile, &profile.objects[object as usize].kind, r, out),
            }
        }
        if self.crc {
            let crc = crc16(&out[start..]);
            out.put(&crc_hex(crc));
        }
        out.put(b"\r\n");
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
            Line::from_rendered(alloc::format!("{}", obj.obis), &text)
        })
        .collect();
    Telegram {
        header: profile.header.clone(),
        blank_line: profile.blank_line,
        lines,
        checksum: if profile.crc { Checksum::Computed } else { Checksum::None },
    }
}

fn write_obis(out: &mut impl Out, obis: Obis) {
    let mut buf = [0u8; 19];
    let n = obis.write_to(&mut buf);
    out.put(&buf[..n]);
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
        Kind::DemandMax { num } => match &r.demand.month_max {
            Some((t, w)) => {
                bracket_tst(out, t);
                bracket_num(out, u64::from(*w), 3, num, Rounding::Nearest);
            }
            None => {
                out.put_byte(b'(');
                out.put(NO_DATA_TST);
                out.put_byte(b')');
                bracket_num(out, 0, 3, num, Rounding::Nearest);
            }
        },
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
        Kind::MBusId { channel } => {
            bracket_hex(out, profile.mbus_device(*channel).map_or("", |d| d.id.as_str()));
        }
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
            out.put(b")(");
            out.put(status.as_bytes());
            out.put(b")(");
            out.put(period.as_bytes());
            out.put(b")(1)(");
            write_obis(out, *capture);
            out.put(b")(");
            out.put(num.unit.as_deref().unwrap_or("").as_bytes());
            out.put(b")\r\n(");
            write_fixed(out, value.map_or(0, |v| v.milli), 3, num.format, Rounding::Truncate);
            out.put_byte(b')');
        }
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
