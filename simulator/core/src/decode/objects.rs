//! Splitting a complete telegram's body into objects and bracketed values, as byte spans.

use alloc::vec::Vec;
use core::ops::Range;

use crate::obis::Obis;

/// Byte offsets into the telegram; u32 keeps the span tables small and cache friendly.
pub type Span = Range<u32>;

/// One bracket pair: the text before the first `*` and the unit after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueSpan {
    pub text: Span,
    pub unit: Option<Span>,
}

/// One object: the OBIS text and its values (a range into the value table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSpan {
    pub obis_text: Span,
    pub obis: Option<Obis>,
    pub values: Range<u32>,
    /// Index (within this object) of the first value that arrived on a continuation line.
    pub continued_at: Option<u32>,
}

/// The parsed body of a telegram, reused between telegrams to avoid allocation.
#[derive(Clone, Debug, Default)]
pub struct Body {
    pub objects: Vec<ObjectSpan>,
    pub values: Vec<ValueSpan>,
    /// Lines that are neither objects nor continuations (corrupted text).
    pub bad_lines: u32,
}

impl Body {
    pub fn clear(&mut self) {
        self.objects.clear();
        self.values.clear();
        self.bad_lines = 0;
    }

    /// Parses the data lines in `t[from..to]`, where `to` is the position of `!`.
    /// Lines end in LF with an optional CR; a line starting with `(` continues the previous
    /// object (the DSMR 2.2/3.0 two-line gas record).
    pub fn parse(&mut self, t: &[u8], from: usize, to: usize) {
        self.clear();
        let mut pos = from;
        while pos < to {
            let end = match memchr::memchr(b'\n', &t[pos..to]) {
                Some(i) => pos + i,
                None => to,
            };
            let mut line_end = end;
            if line_end > pos && t[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            if line_end > pos {
                self.parse_line(t, pos, line_end);
            }
            pos = end + 1;
        }
    }

    fn parse_line(&mut self, t: &[u8], start: usize, end: usize) {
        let line = &t[start..end];
        if line[0] == b'(' {
            // A continuation: append its values to the previous object.
            let before = self.values.len();
            if self.objects.is_empty() || !self.parse_values(t, start, end) {
                self.values.truncate(before);
                self.bad_lines += 1;
                return;
            }
            if let Some(last) = self.objects.last_mut() {
                last.continued_at.get_or_insert(last.values.end - last.values.start);
                last.values.end = self.values.len() as u32;
            }
            return;
        }
        let Some(open) = memchr::memchr(b'(', line) else {
            self.bad_lines += 1;
            return;
        };
        let obis_end = start + open;
        let first_value = self.values.len();
        if !self.parse_values(t, obis_end, end) {
            self.values.truncate(first_value);
            self.bad_lines += 1;
            return;
        }
        // Whitespace between the code and its bracket is tolerated
        // (docs/quirks.md#space-after-the-obis-code).
        let code = t[start..obis_end].trim_ascii_end();
        let obis = Obis::parse(code);
        if obis.is_none() {
            // Kept so the output shows what arrived, but a corrupted id makes the line bad.
            self.bad_lines += 1;
        }
        self.objects.push(ObjectSpan {
            obis_text: start as u32..obis_end as u32,
            obis,
            values: first_value as u32..self.values.len() as u32,
            continued_at: None,
        });
    }

    /// Parses `(a)(b*u)...` filling exactly `t[start..end]`; false on anything else.
    fn parse_values(&mut self, t: &[u8], start: usize, end: usize) -> bool {
        let mut pos = start;
        while pos < end {
            if t[pos] != b'(' {
                return false;
            }
            let Some(close) = memchr::memchr2(b')', b'(', &t[pos + 1..end]) else {
                return false;
            };
            let close = pos + 1 + close;
            if t[close] != b')' {
                return false;
            }
            let inner = pos + 1..close;
            let star = t[inner.clone()].iter().position(|&b| b == b'*');
            self.values.push(match star {
                Some(s) => ValueSpan {
                    text: inner.start as u32..(inner.start + s) as u32,
                    unit: Some((inner.start + s + 1) as u32..inner.end as u32),
                },
                None => ValueSpan { text: inner.start as u32..inner.end as u32, unit: None },
            });
            pos = close + 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    type Texts = Vec<(String, Vec<(String, Option<String>)>)>;

    fn texts(t: &[u8], b: &Body) -> Texts {
        let s = |r: &Span| String::from_utf8_lossy(&t[r.start as usize..r.end as usize]).into_owned();
        b.objects
            .iter()
            .map(|o| {
                let values = b.values[o.values.start as usize..o.values.end as usize]
                    .iter()
                    .map(|v| (s(&v.text), v.unit.as_ref().map(&s)))
                    .collect();
                (s(&o.obis_text), values)
            })
            .collect()
    }

    #[test]
    fn objects_values_and_units() {
        let t = b"1-0:1.8.1(000671.578*kWh)\r\n1-0:99.97.0(1)(0-0:96.7.19)(180417201458S)(0000000236*s)\r\n0-0:96.13.0()\r\n!";
        let mut b = Body::default();
        b.parse(t, 0, t.len() - 1);
        let got = texts(t, &b);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].1, alloc::vec![("000671.578".into(), Some("kWh".into()))]);
        assert_eq!(got[1].1.len(), 4);
        assert_eq!(got[1].1[3], ("0000000236".into(), Some("s".into())));
        assert_eq!(got[2].1, alloc::vec![("".into(), None)]);
        assert_eq!(b.bad_lines, 0);
    }

    #[test]
    fn continuation_lines_join_the_previous_object() {
        let t = b"0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(00001.001)\r\n!";
        let mut b = Body::default();
        b.parse(t, 0, t.len() - 1);
        let got = texts(t, &b);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.len(), 7);
        assert_eq!(got[0].1[6].0, "00001.001");
    }

    #[test]
    fn lf_only_lines_parse_the_same() {
        let t = b"1-0:1.8.1(000671.578*kWh)\n1-0:1.7.0(00.318*kW)\n!";
        let mut b = Body::default();
        b.parse(t, 0, t.len() - 1);
        assert_eq!(b.objects.len(), 2);
    }

    #[test]
    fn corrupted_lines_are_counted_not_kept() {
        for bad in [
            &b"1-0:1.8.1(000671.578*kWh\r\n!"[..],
            b"1-0:1.8.1 000671.578\r\n!",
            b"1-0:1.8.1(1)x(2)\r\n!",
            b"(00001.001)\r\n!",
        ] {
            let mut b = Body::default();
            b.parse(bad, 0, bad.len() - 1);
            assert_eq!(b.objects.len(), 0, "{:?}", core::str::from_utf8(bad));
            assert_eq!(b.bad_lines, 1);
        }
    }
}
