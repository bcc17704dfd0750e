//! Value formatting with the exact widths meters use: zero-padded fixed point, timestamps, hex
//! text.
//!
//! Everything writes into an [`Out`] so the same code fills a `Vec<u8>` on the host and a fixed
//! buffer on the firmware.

use core::fmt;
use core::str::FromStr;

/// A byte sink. Rendering never fails: a full fixed buffer records the overflow instead.
pub trait Out {
    fn put(&mut self, bytes: &[u8]);
    fn put_byte(&mut self, b: u8) {
        self.put(&[b]);
    }
}

#[cfg(feature = "alloc")]
impl Out for alloc::vec::Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        // Most pieces of a telegram are a few bytes (a unit, a number). A call to memmove costs
        // more than copying them one by one, and rendering is mostly such pieces.
        if bytes.len() <= 16 {
            self.reserve(bytes.len());
            for &b in bytes {
                self.push(b);
            }
        } else {
            self.extend_from_slice(bytes);
        }
    }
    #[inline]
    fn put_byte(&mut self, b: u8) {
        self.push(b);
    }
}

/// A fixed buffer for allocation-free targets; bytes past the end are counted, not written.
#[derive(Debug)]
pub struct SliceOut<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: usize,
}

impl<'a> SliceOut<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0, overflow: 0 }
    }
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes that did not fit; non-zero means the rendering is incomplete.
    pub fn overflow(&self) -> usize {
        self.overflow
    }
}

impl Out for SliceOut<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let room = self.buf.len() - self.len;
        let n = room.min(bytes.len());
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self.overflow += bytes.len() - n;
    }
}

/// Digits before and after the decimal point, as the spec tables write them (`F9(3,3)` is `6.3`).
/// `dec == 0` renders an integer with no point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NumFormat {
    pub int: u8,
    pub dec: u8,
}

impl NumFormat {
    pub const fn new(int: u8, dec: u8) -> Self {
        Self { int, dec }
    }
    /// Characters the value occupies, point included.
    pub const fn width(self) -> usize {
        self.int as usize + if self.dec > 0 { 1 + self.dec as usize } else { 0 }
    }
}

impl fmt::Display for NumFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dec == 0 { write!(f, "{}", self.int) } else { write!(f, "{}.{}", self.int, self.dec) }
    }
}

/// Why a width string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadWidth;

impl fmt::Display for BadWidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected INT.DEC digit counts such as \"6.3\" or an integer width such as \"5\" (1-12 integer digits, 0-7 decimals)")
    }
}

impl FromStr for NumFormat {
    type Err = BadWidth;
    fn from_str(s: &str) -> Result<Self, BadWidth> {
        let (i, d) = match s.split_once('.') {
            Some((i, d)) => (i, d),
            None => (s, "0"),
        };
        let digits = |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(i) || !digits(d) {
            return Err(BadWidth);
        }
        let int: u8 = i.parse().map_err(|_| BadWidth)?;
        let dec: u8 = d.parse().map_err(|_| BadWidth)?;
        // Seven decimals: EasyMeter's D0 output writes kWh as 8.7 (`00052185.7825309`).
        if !(1..=12).contains(&int) || dec > 7 {
            return Err(BadWidth);
        }
        Ok(NumFormat { int, dec })
    }
}

/// How a value with more precision than the format shows is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Registers show what has been completed: 1.9999 kWh reads 1.999.
    Truncate,
    /// Instantaneous values round half up.
    Nearest,
}

const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Rescales `value * 10^-scale` to `dec` decimals.
#[inline]
pub fn rescale(value: u64, scale: u8, dec: u8, rounding: Rounding) -> u64 {
    if dec == scale {
        value
    } else if dec > scale {
        value.saturating_mul(POW10[(dec - scale) as usize])
    } else {
        let div = POW10[(scale - dec) as usize];
        match rounding {
            Rounding::Truncate => value / div,
            Rounding::Nearest => (value + div / 2) / div,
        }
    }
}

/// "00" to "99": two digits per step halves the divisions of the digit loop.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `value * 10^-scale` in `fmt`: zero-padded, fixed decimals. A value too large for the
/// integer digits wraps around, as a meter's register rolls over.
#[inline]
pub fn write_fixed(out: &mut impl Out, value: u64, scale: u8, fmt: NumFormat, rounding: Rounding) {
    let digits = (fmt.int + fmt.dec).min(19) as usize;
    let mut v = rescale(value, scale, fmt.dec, rounding);
    // Registers roll over; the division only happens when a value actually overflows.
    if v >= POW10[digits] {
        v %= POW10[digits];
    }
    // Digits right-aligned in `buf`, two at a time, then the point spliced in.
    let mut buf = [b'0'; 24];
    let mut pos = 24;
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        pos -= 2;
        buf[pos] = PAIRS[pair];
        buf[pos + 1] = PAIRS[pair + 1];
    }
    if v >= 10 {
        let pair = v as usize * 2;
        pos -= 2;
        buf[pos] = PAIRS[pair];
        buf[pos + 1] = PAIRS[pair + 1];
    } else {
        pos -= 1;
        buf[pos] = b'0' + v as u8;
    }
    let digits_start = 24 - digits;
    if fmt.dec == 0 {
        out.put(&buf[digits_start..]);
    } else {
        let point = 24 - fmt.dec as usize;
        out.put(&buf[digits_start..point]);
        out.put_byte(b'.');
        out.put(&buf[point..]);
    }
}

/// Writes a signed value; a minus sign takes one of the integer digits, as in Smarty's `(-063*A)`.
pub fn write_signed_fixed(out: &mut impl Out, value: i64, scale: u8, fmt: NumFormat, rounding: Rounding) {
    if value < 0 && fmt.int > 1 {
        out.put_byte(b'-');
        write_fixed(out, value.unsigned_abs(), scale, NumFormat::new(fmt.int - 1, fmt.dec), rounding);
    } else {
        write_fixed(out, value.max(0) as u64, scale, fmt, rounding);
    }
}

/// An unpadded decimal integer, as in the entry count of `99.97.0(10)`.
pub fn write_uint(out: &mut impl Out, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.put(&buf[pos..]);
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Octet strings travel as two uppercase hex digits per byte (DSMR 5.0.2 §6.5).
pub fn write_hex(out: &mut impl Out, bytes: &[u8]) {
    for chunk in bytes.chunks(32) {
        let mut buf = [0u8; 64];
        for (i, b) in chunk.iter().enumerate() {
            buf[2 * i] = HEX_UPPER[(b >> 4) as usize];
            buf[2 * i + 1] = HEX_UPPER[(b & 0xF) as usize];
        }
        out.put(&buf[..chunk.len() * 2]);
    }
}

/// Placeholder timestamps real meters send where they have nothing: `632525252525W` (Fluvius,
/// Smarty), `000101010000W` (a Landis+Gyr E350 whose clock was never set), `700101010000W` (an
/// Iskra AM550's empty M-Bus channel).
pub fn is_placeholder_tst(text: &str) -> bool {
    ["632525252525", "000101", "700101"].iter().any(|p| text.starts_with(p))
}

/// Wall-clock time as the meter shows it, with the DST flag it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct LocalTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// `S` (summer time) when true, `W` otherwise.
    pub dst: bool,
}

impl LocalTime {
    /// Writes `YYMMDDhhmmss`, the 12-character TST of DSMR 2.2/3.0 (and of e-MUCS history months).
    pub fn write_tst12(&self, out: &mut impl Out) {
        let y = (self.year % 100) as u8;
        let fields = [y, self.month, self.day, self.hour, self.minute, self.second];
        let mut buf = [0u8; 12];
        for (i, f) in fields.iter().enumerate() {
            buf[2 * i] = b'0' + f / 10 % 10;
            buf[2 * i + 1] = b'0' + f % 10;
        }
        out.put(&buf);
    }

    /// Writes `YYMMDDhhmmssX` with X = `S` or `W` (DSMR 5.0.2 table 5-1).
    pub fn write_tst(&self, out: &mut impl Out) {
        self.write_tst12(out);
        out.put_byte(if self.dst { b'S' } else { b'W' });
    }

    /// Reads a TST as written: `YYMMDDhhmmss` followed by `S` or `W` (or nothing, with `W`
    /// assumed). The fields are taken as they are, so what a meter wrote is written back the
    /// same, placeholders such as `000101010000W` included; a two-digit year is 20YY.
    pub fn parse_tst(text: &str) -> Option<LocalTime> {
        let b = text.as_bytes();
        let dst = match b.get(12) {
            None if b.len() == 12 => false,
            Some(b'S') if b.len() == 13 => true,
            Some(b'W') if b.len() == 13 => false,
            _ => return None,
        };
        if !b[..12].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let two = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
        Some(LocalTime {
            year: 2000 + u16::from(two(0)),
            month: two(2),
            day: two(4),
            hour: two(6),
            minute: two(8),
            second: two(10),
            dst,
        })
    }

    /// The instant this wall-clock time names with the offset its flag says: UTC+2 for `S`,
    /// UTC+1 for `W` (CET/CEST, the zone of every P1 market), as Unix seconds. `None` for a
    /// time that does not exist, such as the placeholder `632525252525W`.
    pub fn unix_by_flag(&self) -> Option<i64> {
        let field = |v: u8| i8::try_from(v).ok();
        let dt = jiff::civil::DateTime::new(
            i16::try_from(self.year).ok()?,
            field(self.month)?,
            field(self.day)?,
            field(self.hour)?,
            field(self.minute)?,
            field(self.second)?,
            0,
        )
        .ok()?;
        let offset = jiff::tz::offset(if self.dst { 2 } else { 1 });
        offset.to_timestamp(dt).ok().map(|ts| ts.as_second())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn fixed(value: u64, scale: u8, fmt: &str, rounding: Rounding) -> alloc::string::String {
        let mut v = Vec::new();
        write_fixed(&mut v, value, scale, fmt.parse().unwrap(), rounding);
        alloc::string::String::from_utf8(v).unwrap()
    }

    #[test]
    fn widths_of_the_spec_tables() {
        assert_eq!(fixed(3_432_829, 3, "6.3", Rounding::Truncate), "003432.829");
        assert_eq!(fixed(433, 3, "2.3", Rounding::Nearest), "00.433");
        assert_eq!(fixed(2367, 1, "3.1", Rounding::Nearest), "236.7");
        assert_eq!(fixed(2, 0, "3", Rounding::Nearest), "002");
        assert_eq!(fixed(5, 0, "5", Rounding::Nearest), "00005");
        assert_eq!(fixed(7_041_882, 3, "5.3", Rounding::Truncate), "07041.882");
        // DSMR 2.2 power has 10 W resolution: 1.194 kW is (0001.19*kW).
        assert_eq!(fixed(1194, 3, "4.2", Rounding::Nearest), "0001.19");
        assert_eq!(fixed(6_678_394, 3, "8.3", Rounding::Truncate), "00006678.394");
        // EasyMeter Q3D: kWh with seven decimals, W with two.
        assert_eq!(fixed(52_185_782, 3, "8.7", Rounding::Truncate), "00052185.7820000");
        assert_eq!(fixed(747, 0, "6.2", Rounding::Nearest), "000747.00");
    }

    #[test]
    fn truncation_and_rounding_differ_only_in_the_last_digit() {
        assert_eq!(fixed(1999, 3, "1.2", Rounding::Truncate), "1.99");
        assert_eq!(fixed(1995, 3, "1.2", Rounding::Nearest), "2.00");
    }

    #[test]
    fn registers_roll_over() {
        assert_eq!(fixed(1_000_000_001, 3, "6.3", Rounding::Truncate), "000000.001");
    }

    #[test]
    fn signed_values_spend_a_digit_on_the_sign() {
        let mut v = Vec::new();
        write_signed_fixed(&mut v, -63, 0, NumFormat::new(3, 0), Rounding::Nearest);
        assert_eq!(v, b"-63");
    }

    #[test]
    fn width_strings() {
        assert_eq!("6.3".parse(), Ok(NumFormat::new(6, 3)));
        assert_eq!("5".parse(), Ok(NumFormat::new(5, 0)));
        for bad in ["", "6.", ".3", "6.x", "6.3.1", "0.3", "13.0", "6.8", "-1", " 6.3"] {
            assert_eq!(bad.parse::<NumFormat>(), Err(BadWidth), "{bad:?}");
        }
    }

    #[test]
    fn timestamps() {
        let t = LocalTime { year: 2019, month: 3, day: 24, hour: 15, minute: 5, second: 41, dst: false };
        let mut v = Vec::new();
        t.write_tst(&mut v);
        assert_eq!(v, b"190324150541W");
        v.clear();
        t.write_tst12(&mut v);
        assert_eq!(v, b"190324150541");
    }

    #[test]
    fn hex_text() {
        let mut v = Vec::new();
        write_hex(&mut v, b" KA6U001660297912");
        assert_eq!(v, b"204B413655303031363630323937393132");
    }

    #[test]
    fn slice_out_counts_overflow() {
        let mut buf = [0u8; 4];
        let mut o = SliceOut::new(&mut buf);
        o.put(b"abcdef");
        assert_eq!(o.written(), b"abcd");
        assert_eq!(o.overflow(), 2);
    }

    #[test]
    fn a_timestamp_names_the_instant_its_flag_says() {
        let at = |t: &str| LocalTime::parse_tst(t).unwrap().unix_by_flag();
        assert_eq!(at("200426223325S"), Some(1_587_933_205), "S is UTC+2");
        assert_eq!(at("161107190000W"), Some(1_478_541_600), "W is UTC+1");
        assert_eq!(at("632525252525W"), None, "a placeholder names no instant");
        assert!(is_placeholder_tst("632525252525W") && is_placeholder_tst("000101010000W"));
        assert!(!is_placeholder_tst("200426223325S"));
    }

    #[test]
    fn timestamps_read_back_as_written() {
        for text in ["200426223325S", "000101010000W", "632525252525W", "161107190000"] {
            let t = LocalTime::parse_tst(text).unwrap();
            let mut v = Vec::new();
            if text.len() == 13 {
                t.write_tst(&mut v)
            } else {
                t.write_tst12(&mut v)
            }
            assert_eq!(v, text.as_bytes());
        }
        assert_eq!(LocalTime::parse_tst("2004262233X5S"), None);
        assert_eq!(LocalTime::parse_tst("200426223325X"), None);
        assert_eq!(LocalTime::parse_tst("2004262233"), None);
    }
}
