//! OBIS identifiers in the reduced form P1 telegrams use: `A-B:C.D.E`. DSMR never sends the F
//! group; IEC 62056-21 push output such as EasyMeter's writes it after a star (`1-0:1.8.0*255`).

use core::fmt;

/// One OBIS code. `B` is the channel: 0 for the meter itself, 1..=4 for M-Bus devices.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Obis {
    pub a: u8,
    pub b: u8,
    pub c: u8,
    pub d: u8,
    pub e: u8,
}

impl Obis {
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8) -> Self {
        Self { a, b, c, d, e }
    }

    /// Parses exactly `A-B:C.D.E`, optionally followed by `*F`, with 1..=3 decimal digits per
    /// group and nothing before or after. The F group is not part of the identity.
    pub fn parse(text: &[u8]) -> Option<Obis> {
        Obis::parse_with_f(text).map(|(o, _)| o)
    }

    /// [`Obis::parse`], also returning the `*F` group when the text carries one.
    pub fn parse_with_f(text: &[u8]) -> Option<(Obis, Option<u8>)> {
        let mut groups = [0u8; 5];
        let separators = [b'-', b':', b'.', b'.'];
        let mut i = 0;
        for (g, slot) in groups.iter_mut().enumerate() {
            let start = i;
            let mut value: u16 = 0;
            while i < text.len() && text[i].is_ascii_digit() && i - start < 3 {
                value = value * 10 + u16::from(text[i] - b'0');
                i += 1;
            }
            if i == start || value > 255 {
                return None;
            }
            *slot = value as u8;
            if g < 4 {
                if text.get(i) != Some(&separators[g]) {
                    return None;
                }
                i += 1;
            }
        }
        let obis = Obis::new(groups[0], groups[1], groups[2], groups[3], groups[4]);
        if i == text.len() {
            return Some((obis, None));
        }
        let f = &text[i..];
        let digits = f.get(1..).filter(|d| (1..=3).contains(&d.len()) && d.iter().all(u8::is_ascii_digit))?;
        let value = digits.iter().fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
        (f[0] == b'*' && value <= 255).then_some((obis, Some(value as u8)))
    }

    /// The same object on another channel: M-Bus objects are matched by `C.D.E` with `B` varying.
    pub const fn on_channel(self, b: u8) -> Self {
        Self { b, ..self }
    }

    /// `C.D.E` equality, ignoring medium and channel.
    pub const fn cde(self) -> (u8, u8, u8) {
        (self.c, self.d, self.e)
    }

    /// Writes the canonical text form into `out`, returning the number of bytes (at most 19).
    pub fn write_to(self, out: &mut [u8; 19]) -> usize {
        let mut n = 0;
        let groups = [self.a, self.b, self.c, self.d, self.e];
        let seps = [b'-', b':', b'.', b'.'];
        for (i, g) in groups.iter().enumerate() {
            n += write_u8(*g, &mut out[n..]);
            if i < 4 {
                out[n] = seps[i];
                n += 1;
            }
        }
        n
    }
}

fn write_u8(v: u8, out: &mut [u8]) -> usize {
    if v >= 100 {
        out[0] = b'0' + v / 100;
        out[1] = b'0' + (v / 10) % 10;
        out[2] = b'0' + v % 10;
        3
    } else if v >= 10 {
        out[0] = b'0' + v / 10;
        out[1] = b'0' + v % 10;
        2
    } else {
        out[0] = b'0' + v;
        1
    }
}

impl fmt::Display for Obis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}:{}.{}.{}", self.a, self.b, self.c, self.d, self.e)
    }
}

impl fmt::Debug for Obis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reduced_codes() {
        assert_eq!(Obis::parse(b"1-0:1.8.1"), Some(Obis::new(1, 0, 1, 8, 1)));
        assert_eq!(Obis::parse(b"0-2:24.2.1"), Some(Obis::new(0, 2, 24, 2, 1)));
        assert_eq!(Obis::parse(b"1-0:99.97.0"), Some(Obis::new(1, 0, 99, 97, 0)));
    }

    #[test]
    fn rejects_malformed_codes() {
        for bad in [
            &b""[..],
            b"1-0:1.8",
            b"1,0:1.8.1",
            b"1-0:72:32.0",
            b"1-0:31.7.0.255",
            b"1-0:1.8.1 ",
            b"1-0:256.8.1",
            b"1-0:1.8.1000",
            b"1-0:1.8.1*",
            b"1-0:1.8.1*256",
            b"1-0:1.8.1*25a",
        ] {
            assert_eq!(Obis::parse(bad), None, "{:?}", core::str::from_utf8(bad));
        }
    }

    #[test]
    fn the_f_group_after_a_star_is_accepted_and_reported() {
        assert_eq!(Obis::parse(b"1-0:1.8.0*255"), Some(Obis::new(1, 0, 1, 8, 0)));
        assert_eq!(Obis::parse_with_f(b"0-0:96.1.255*255"), Some((Obis::new(0, 0, 96, 1, 255), Some(255))));
        assert_eq!(Obis::parse_with_f(b"1-0:1.8.0"), Some((Obis::new(1, 0, 1, 8, 0), None)));
    }

    #[test]
    fn text_round_trip() {
        let o = Obis::new(0, 1, 24, 2, 1);
        let mut buf = [0u8; 19];
        let n = o.write_to(&mut buf);
        assert_eq!(&buf[..n], b"0-1:24.2.1");
        assert_eq!(Obis::parse(&buf[..n]), Some(o));
    }
}
