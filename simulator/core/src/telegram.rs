//! The owned telegram model: header, ordered data lines, checksum, and its byte rendering.
//!
//! The generator's fast path renders straight from a compiled template (`render`); this model is
//! what tests compare against, what the fault catalogue edits (drop a line, lowercase a unit) and
//! what a decoder's output is normalised to.

use alloc::string::String;
use alloc::vec::Vec;

use crate::crc::{crc_hex, crc16};
use crate::format::Out;

/// One bracket pair's text, split at the first `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Value {
    pub text: String,
    pub unit: Option<String>,
}

impl Value {
    pub fn new(text: impl Into<String>, unit: Option<&str>) -> Self {
        Self { text: text.into(), unit: unit.map(String::from) }
    }

    /// Splits the text inside one bracket pair.
    pub fn from_bracket(inner: &str) -> Self {
        match inner.split_once('*') {
            Some((v, u)) => Value::new(v, Some(u)),
            None => Value::new(inner, None),
        }
    }
}

/// One data object: `obis(value)(value)...`, possibly continued on a second line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Line {
    /// The OBIS code as text, kept verbatim so faults can corrupt it.
    pub obis: String,
    pub values: Vec<Value>,
    /// DSMR 2.2/3.0 `24.3.0` puts its last value on the next line: the index of the value
    /// that starts the new line.
    pub break_before: Option<usize>,
}

/// What follows the `!`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Checksum {
    /// DSMR 2.2/3.0: nothing.
    None,
    /// The CRC-16/ARC of the rendered bytes, computed at render time: four uppercase hex digits.
    Computed,
    /// The same without leading zeros, as the NWA Warmtelink sends it (`!B9F`).
    ComputedUnpadded,
    /// Exactly this text after the `!`: what a decoder received, or a fault (a wrong, lowercase
    /// or unpadded CRC).
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Telegram {
    /// The identification line without `/`.
    pub header: String,
    pub blank_line: bool,
    pub lines: Vec<Line>,
    pub checksum: Checksum,
    /// Whether the `!` line ends the telegram; some Iskra MT382 send none (docs/quirks.md).
    #[serde(default = "yes")]
    pub end_marker: bool,
    /// Bytes after the telegram's last line that a gateway adds (EasyMeter's COM-1 gateway).
    #[serde(default)]
    pub trailer: Vec<u8>,
}

fn yes() -> bool {
    true
}

impl Telegram {
    /// A telegram as DSMR draws it: ended by `!`, nothing after it.
    pub fn new(header: impl Into<String>, lines: Vec<Line>, checksum: Checksum) -> Telegram {
        Telegram { header: header.into(), blank_line: true, lines, checksum, end_marker: true, trailer: Vec::new() }
    }

    /// Writes the telegram as a meter sends it: `/header CRLF [CRLF] lines ! [CRC] CRLF`, then any
    /// trailer; without an end marker the last data line ends it.
    pub fn render(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_byte(b'/');
        out.put(self.header.as_bytes());
        out.put(b"\r\n");
        if self.blank_line {
            out.put(b"\r\n");
        }
        for line in &self.lines {
            line.render(out);
        }
        if self.end_marker {
            out.put_byte(b'!');
            match &self.checksum {
                Checksum::None => {}
                Checksum::Computed => out.put(&crc_hex(crc16(&out[start..]))),
                Checksum::ComputedUnpadded => out.put(unpadded(&crc_hex(crc16(&out[start..])))),
                Checksum::Text(t) => out.put(t.as_bytes()),
            }
            out.put(b"\r\n");
        }
        out.put(&self.trailer);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1024);
        self.render(&mut v);
        v
    }

    /// The first line whose OBIS text equals `obis`.
    pub fn line(&self, obis: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.obis == obis)
    }
}

/// Hex digits without their leading zeros, keeping at least one.
pub fn unpadded(hex: &[u8]) -> &[u8] {
    let zeros = hex.iter().take_while(|&&b| b == b'0').count().min(hex.len().saturating_sub(1));
    &hex[zeros..]
}

impl Line {
    pub fn render(&self, out: &mut Vec<u8>) {
        out.put(self.obis.as_bytes());
        for (i, v) in self.values.iter().enumerate() {
            if self.break_before == Some(i) {
                out.put(b"\r\n");
            }
            out.put_byte(b'(');
            out.put(v.text.as_bytes());
            if let Some(u) = &v.unit {
                out.put_byte(b'*');
                out.put(u.as_bytes());
            }
            out.put_byte(b')');
        }
        out.put(b"\r\n");
    }

    /// Builds a line from an OBIS code and the text a renderer wrote after it:
    /// `(a)(b*u)` or, for the two-line record, `(a)(b)\r\n(c)`.
    pub fn from_rendered(obis: String, rendered: &str) -> Line {
        let mut values = Vec::new();
        let mut break_before = None;
        let mut rest = rendered;
        while let Some(open) = rest.find('(') {
            if rest[..open].contains('\n') {
                break_before = Some(values.len());
            }
            let Some(close) = rest[open..].find(')') else { break };
            values.push(Value::from_bracket(&rest[open + 1..open + close]));
            rest = &rest[open + close + 1..];
        }
        Line { obis, values, break_before }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_arduino_dsmr_vector() {
        let t = Telegram::new(
            "KFM5KAIFA-METER",
            alloc::vec![
                Line::from_rendered("1-0:1.8.1".into(), "(000671.578*kWh)"),
                Line::from_rendered("1-0:1.7.0".into(), "(00.318*kW)"),
            ],
            Checksum::Computed,
        );
        assert_eq!(
            t.to_bytes(),
            b"/KFM5KAIFA-METER\r\n\r\n1-0:1.8.1(000671.578*kWh)\r\n1-0:1.7.0(00.318*kW)\r\n!1E1D\r\n"
        );
    }

    #[test]
    fn unpadded_crc_and_no_end_marker() {
        // The NWA Warmtelink's telegram in dsmr_parser's test data ends `!B9F`.
        let lines = alloc::vec![
            Line::from_rendered("1-3:0.2.8".into(), "(50)"),
            Line::from_rendered("0-0:1.0.0".into(), "(260215200523W)"),
            Line::from_rendered("0-0:96.1.1".into(), "(ADC3100000158491)"),
            Line::from_rendered("0-0:96.13.1".into(), "()"),
            Line::from_rendered("0-0:96.13.0".into(), "()"),
            Line::from_rendered("0-1:24.1.0".into(), "(004)"),
            Line::from_rendered("0-1:96.1.0".into(), "(621848012D2C0B0C)"),
            Line::from_rendered("0-1:24.2.1".into(), "(260215200523W)(240.860*GJ)"),
        ];
        let t = Telegram::new("NWA-WARMTELINK", lines, Checksum::ComputedUnpadded);
        assert!(t.to_bytes().ends_with(b"(240.860*GJ)\r\n!B9F\r\n"));
        let bare = Telegram { end_marker: false, checksum: Checksum::None, ..t };
        assert!(bare.to_bytes().ends_with(b"(240.860*GJ)\r\n"));
        assert!(!bare.to_bytes().contains(&b'!'));
        assert_eq!(unpadded(b"0000"), b"0");
    }

    #[test]
    fn two_line_gas_record_keeps_its_break() {
        let l = Line::from_rendered("0-1:24.3.0".into(), "(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(00001.001)");
        assert_eq!(l.values.len(), 7);
        assert_eq!(l.break_before, Some(6));
        let mut out = Vec::new();
        l.render(&mut out);
        assert_eq!(out, b"0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(00001.001)\r\n");
    }

    #[test]
    fn values_split_at_the_first_star() {
        assert_eq!(Value::from_bracket("0000000236*s"), Value::new("0000000236", Some("s")));
        assert_eq!(Value::from_bracket("0-0:96.7.19"), Value::new("0-0:96.7.19", None));
        assert_eq!(Value::from_bracket(""), Value::new("", None));
    }
}
